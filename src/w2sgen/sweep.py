"""`w2s sweep SUITE.yaml`: a grid of experiments, resumable, run in-process or on Ray.

A suite is YAML with a `base` (a config file, relative to the suite's folder, or an inline
mapping of config keys) and a `grid` of axes, each a list:

  task     task names, or mappings: with a `task` key, config keys set together with that task
           (e.g. its splits); without one, the task component itself (`{name: sciq, ...}`)
  pairs    mappings of config keys, usually {weak_model: ..., strong_model: ...}
           (task and pair mappings may carry a `label`, the cell labels' text for them)
  methods  named variants: {name: LABEL, <config keys>...}, e.g. {name: logconf, loss: logconf}
           or {name: relabel_knn, method: {name: relabel, probe: knn}}; a plain string is a
           method name
  seeds    training seeds
  <key>    any other dotted config key (`train.epochs`, `loss.alpha_max`) -> its values

A mapping value of any axis may carry `only: {AXIS: [LABEL, ...]}`: its cells are made only in
combination with those values of the other axis (e.g. `bootstrap` only for the pairs that have
an intermediate rung); a label that names no value of that axis is an error.

Cells are the cartesian product, each a full validated config; every error of every cell is
reported (one line each) before any work starts. A cell is identified by its config hash (what
it computes, not where it is stored or what it is called): a cell with a finished run of that
hash in the store is skipped, so a sweep that stops for any reason is resumed by running it
again, and adding a method to a finished suite runs only the new cells.

Kill -9 safety: each cell is one `pipeline.run`, whose steps are cached by atomic renames and
whose run row flips to `done` in one transaction after everything else is written; a cell
killed before that stays `running` with its owner process recorded, so it never counts as
finished, and the next sweep marks it `killed` (its process is gone) and runs it again. Reports
read only `done` rows, the newest per hash. A cell is claimed (store.start_run(exclusive=True))
in the transaction that checks for a finished or live run of its hash, so two sweeps sharing a
store never run one cell twice.

Shared work (features, weak supervisor, ceiling) is cached by content, so it is computed once
when the cells that share it run one after another. Cells are ordered so that they do: grouped
by what they share. With parallel executors, a cell waits for the first cell of its group:
the first cell computing a (task, splits, models, features) combination runs alone, then one
cell per seed/training setting of it, then the remaining (method) cells of each group, which
find everything but their student in the cache.
"""
from __future__ import annotations

import copy
import functools
import itertools
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import (
    ExperimentConfig,
    build_config,
    read_yaml_mapping,
    set_key,
    stable_hash,
)
from .errors import MissingAsset, W2SError
from .registry import Registry
from .runs import NOT_SHARED

AXES = ("task", "pairs", "methods", "seeds")
COMPONENTS = ("task", "method", "loss")  # config keys whose mapping (with a name) is replaced whole
# What a cell's features do not depend on, besides what its supervisor and ceiling do not (NOT_SHARED).
NOT_IN_FEATURES = ("seed", "train")


@dataclass
class Cell:
    index: int
    label: str
    cfg: ExperimentConfig

    @functools.cached_property
    def hash(self) -> str:  # resolving a config for the machine is not free: once per cell
        return self.cfg.hash()

    @property
    def group(self) -> str:
        """Cells with the same group share weak supervisor and ceiling (and features)."""
        d = self.cfg.to_dict()
        return stable_hash({k: v for k, v in d.items() if k not in NOT_SHARED})

    @property
    def features_group(self) -> str:
        """Cells with the same features group share the extracted features."""
        d = self.cfg.to_dict()
        return stable_hash({k: v for k, v in d.items() if k not in NOT_SHARED + NOT_IN_FEATURES})


@dataclass
class Suite:
    name: str
    path: Path
    store: str
    cells: list[Cell]
    merged: int = 0  # cells that were the same experiment as an earlier one (same hash)


@dataclass
class Outcome:
    index: int
    status: str  # done | skipped | failed | busy
    run_id: int | None = None
    seconds: float = 0.0
    computed: list[str] = field(default_factory=list)  # steps not found in the cache
    error: str = ""


@dataclass
class Options:
    workers: int | None = None
    address: str | None = None
    num_cpus: int | None = None


# ---------------------------------------------------------------- suites


def load_suite(path: str | Path, store: str | None = None) -> Suite:
    path = Path(path)
    raw = read_yaml_mapping(path, "suite file")
    unknown = [k for k in raw if k not in ("name", "description", "base", "grid")]
    if unknown:
        raise W2SError(f"suite {str(path)!r}: unknown key {unknown[0]!r}; valid keys: name, "
                       "description, base, grid")
    base = raw.get("base", {})
    if isinstance(base, str):
        base = read_yaml_mapping(path.parent / base, f"suite {str(path)!r}: base config")
    elif not isinstance(base, dict):
        raise W2SError(f"suite {str(path)!r}: base must be a config file path or a mapping of "
                       f"config keys, got {base!r}")
    grid = raw.get("grid") or {}
    if not isinstance(grid, dict):
        raise W2SError(f"suite {str(path)!r}: grid must be a mapping of axes to lists")
    name = str(raw.get("name") or path.stem)
    store = store or str(base.get("store", "runs"))
    return Suite(name, path, store, *expand(name, base, grid, store, str(path)))


def expand(name: str, base: dict[str, Any], grid: dict[str, Any], store: str, where: str
           ) -> tuple[list[Cell], int]:
    """Cells of the grid, each validated; raises one error listing every invalid cell."""
    axes: list[list[tuple[str, dict[str, Any]]]] = []
    axis_names: list[str] = []  # the axis of each entry of `axes`
    only: list[list[dict[str, list[str]]]] = []  # per axis value: {other axis: allowed labels}
    for axis in (*AXES, *(k for k in grid if k not in AXES)):
        if axis not in grid:
            continue
        values = grid[axis]
        if not isinstance(values, list) or not values:
            raise W2SError(f"suite {where!r}: grid.{axis} must be a non-empty list, got {values!r}")
        axes.append([variant(axis, without_only(v), where) for v in values])
        axis_names.append(axis)
        only.append([only_of(axis, v, where) for v in values])
    check_only(axis_names, axes, only, where)
    cells: list[Cell] = []
    errors: dict[str, list[str]] = {}
    seen: set[str] = set()
    merged = 0
    missing: dict[str, MissingAsset] = {}
    checked: dict[str, W2SError | None] = {}
    unreachable: dict[str, bool] = {}  # hub model id -> could not be loaded from here
    for picks in itertools.product(*(range(len(ax)) for ax in axes)):
        combo = [axes[a][i] for a, i in enumerate(picks)]
        labels_of = {axis_names[a]: axes[a][i][0] for a, i in enumerate(picks)}
        if any(labels_of[other] not in allowed for a, i in enumerate(picks)
               for other, allowed in only[a][i].items()):
            continue  # left out by an `only`
        raw = copy.deepcopy(base)
        for _, overrides in combo:
            for key, value in overrides.items():
                set_key(raw, key, copy.deepcopy(value))
        raw["store"] = store
        label = " | ".join(lab for lab, _ in combo) or "base"
        raw["name"] = f"{name}: {label}"
        try:
            cfg = build_config(raw)
            assets = stable_hash([cfg.weak_model, cfg.strong_model, cfg.task.name, cfg.task.options])
            if assets not in checked:
                checked[assets] = assets_error(cfg, missing, unreachable)
            problem = checked[assets]
            if problem is not None:
                raise problem
        except W2SError as e:
            errors.setdefault(str(e), []).append(label)
            continue
        identity = cfg.hash()  # resolves the config for this machine: once per cell
        if identity in seen:
            merged += 1
            continue
        seen.add(identity)
        cells.append(Cell(len(cells), label, cfg))
    for ax in axes:  # labels name the cells: two values of one axis must differ
        labels = [lab for lab, _ in ax]
        for dup in dict.fromkeys(lab for lab in labels if labels.count(lab) > 1):
            errors.setdefault(f"two values of one grid axis are both labelled {dup!r}; give them "
                              "distinct names", [])
    if missing:  # one line naming every package to pull
        errors = {k: v for k, v in errors.items() if not any(k == str(m) for m in missing.values())}
        errors[str(MissingAsset.combine(list(missing.values())))] = []
    if any(unreachable.values()):  # offline (w2s's default) or wrong ids: one line for all of them
        cells_hit = errors.pop(HUB_UNREACHABLE, [])
        names = ", ".join(n for n, bad in unreachable.items() if bad)
        errors[f"hub model(s) {names} could not be loaded: w2s runs offline by default; export "
               "HF_HUB_OFFLINE=0 HF_DATASETS_OFFLINE=0 TRANSFORMERS_OFFLINE=0 to fetch them "
               "(or check the ids)"] = cells_hit
    if errors:
        lines = [f"{msg} (cell {cs[0]!r}{f' and {len(cs) - 1} more' if len(cs) > 1 else ''})"
                 if cs else msg for msg, cs in errors.items()]
        n = sum(len(cs) for cs in errors.values()) or len(errors)
        if len(lines) == 1:  # one problem: one line
            raise W2SError(f"suite {where!r}: {n} invalid cell(s), nothing was run: {lines[0]}")
        raise W2SError(f"suite {where!r}: {n} invalid cell(s), nothing was run:\n  "
                       + "\n  ".join(lines))
    return cells, merged


HUB_UNREACHABLE = "hub model(s) could not be loaded"


def assets_error(cfg: ExperimentConfig, missing: dict[str, MissingAsset],
                 unreachable: dict[str, bool] | None = None) -> W2SError | None:
    """The error a cell's models or task data would stop it with (missing packages are also
    collected in `missing`, and hub ids that do not load in `unreachable`, to be named
    together). A task's data is not read here."""
    from .assets import require

    try:
        require([cfg.weak_model, cfg.strong_model], cfg.task)
    except MissingAsset as e:
        missing.setdefault(e.what, e)
        return e
    except W2SError as e:
        bad = [] if unreachable is None else _unreachable_hub_models([cfg.weak_model, cfg.strong_model],
                                                                     unreachable)
        if any(repr(n.removeprefix("hf:").partition("@")[0]) in str(e) for n in bad):
            return W2SError(HUB_UNREACHABLE)  # (named with the others after the grid is expanded)
        return e
    return None


def _unreachable_hub_models(names: list[str], seen: dict[str, bool]) -> list[str]:
    """The hub ids (`org/name`, `hf:...`) among `names` that cannot be resolved from here, each
    tried once (`seen` remembers)."""
    from .models import MODELS, resolve

    for name in dict.fromkeys(names):
        hub = name.startswith("hf:") or ("/" in name and not name.startswith((".", "/", "~")))
        if name in seen or name in MODELS or not hub or Path(name).expanduser().exists():
            continue
        try:
            resolve(name)
            seen[name] = False
        except W2SError:
            seen[name] = True
    return [n for n in names if seen.get(n)]


def variant(axis: str, value: Any, where: str) -> tuple[str, dict[str, Any]]:
    """(label, flat dotted-key overrides) of one value of one axis."""
    if axis == "task":
        if isinstance(value, str):
            return value, {"task": value}
        if isinstance(value, dict) and "task" in value:
            task = value["task"]
            label = str(value.get("label") or (task.get("name") if isinstance(task, dict) else task))
            return label, flatten({k: v for k, v in value.items() if k != "label"})
        if isinstance(value, dict) and "name" in value:
            return str(value["name"]), {"task": value}
        raise W2SError(f"suite {where!r}: grid.task values are task names or mappings with a "
                       f"'task' (or task 'name') key, got {value!r}")
    if axis == "pairs":
        if not isinstance(value, dict):
            raise W2SError(f"suite {where!r}: grid.pairs values are mappings like "
                           f"{{weak_model: minilm-l6, strong_model: mpnet-base}}, got {value!r}")
        label = str(value.get("label") or f"{value.get('weak_model', 'default')}->"
                    f"{value.get('strong_model', 'default')}")
        return label, flatten({k: v for k, v in value.items() if k != "label"})
    if axis == "methods":
        if isinstance(value, str):
            return value, {"method": value}
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            raise W2SError(f"suite {where!r}: grid.methods values are method names or mappings "
                           f"with a 'name' (the variant's label) and config keys, got {value!r}")
        return value["name"], flatten({k: v for k, v in value.items() if k != "name"})
    if axis == "seeds":
        return f"seed {value}", {"seed": value}
    return f"{axis}={value}", {axis: value}


def without_only(value: Any) -> Any:
    return {k: v for k, v in value.items() if k != "only"} if isinstance(value, dict) else value


def only_of(axis: str, value: Any, where: str) -> dict[str, list[str]]:
    """A grid value's `only: {axis: [labels]}` restriction, checked for shape."""
    spec = value.get("only") if isinstance(value, dict) else None
    if spec is None:
        return {}
    if not isinstance(spec, dict) or not all(
            isinstance(v, list) and v and all(isinstance(x, str) for x in v) for v in spec.values()):
        raise W2SError(f"suite {where!r}: grid.{axis} value {value.get('name', '')!r}: `only` must "
                       f"map an axis to a non-empty list of its labels, e.g. only: {{pairs: "
                       f"[minilm-l3->mpnet-base]}}, got {spec!r}")
    return {str(k): list(v) for k, v in spec.items()}


def check_only(names: list[str], axes: list[list[tuple[str, dict[str, Any]]]],
               only: list[list[dict[str, list[str]]]], where: str) -> None:
    labels = {n: [lab for lab, _ in ax] for n, ax in zip(names, axes)}
    for axis, values in zip(names, only):
        for restriction in values:
            for other, allowed in restriction.items():
                if other == axis or other not in labels:
                    raise W2SError(f"suite {where!r}: grid.{axis}: `only` names axis {other!r}, "
                                   f"which is not another axis of the grid ({', '.join(names)})")
                unknown = [x for x in allowed if x not in labels[other]]
                if unknown:
                    raise W2SError(f"suite {where!r}: grid.{axis}: `only` names {unknown[0]!r}, "
                                   f"which is no label of grid.{other} (labels: "
                                   f"{', '.join(labels[other])})")


def flatten(overrides: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys: a mapping sets its keys one by one, except a component written with its
    `name` ({method: {name: relabel, probe: knn}}), which replaces the whole component."""
    out: dict[str, Any] = {}
    for k, v in overrides.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and not (key in COMPONENTS and "name" in v):
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def memory_estimates(path: str, auto_precision: str = "bf16") -> list[Any]:
    """The estimate of every model each pair of a suite trains (weak, bootstrap ladder,
    strong), on a GPU where `precision: auto` means `auto_precision` (bf16 on A100/H100-class
    GPUs). Hub models in PUBLISHED are estimated from those values, others from their configs.
    The cells are expanded as `w2s sweep` does, without its check that the assets exist."""
    from .memory import PUBLISHED, Row, arch_of, estimate, published, settings_of
    from .models import resolve

    raw = read_yaml_mapping(path, "suite file")
    base, grid = raw.get("base") or {}, raw.get("grid") or {}
    pairs = [variant("pairs", v, path) for v in grid.get("pairs") or [{}]]
    methods = [variant("methods", v, path) for v in grid.get("methods") or [{"name": "base"}]]
    models: dict[tuple[str, str], Any] = {}  # (pair, model) -> cfg, first seen
    for (pair, p_over), (_, m_over) in itertools.product(pairs, methods):
        cell = copy.deepcopy(base)
        for key, value in {**p_over, **m_over}.items():
            set_key(cell, key, copy.deepcopy(value))
        cfg = build_config(cell)
        for name in (cfg.weak_model, *cfg.method.options.get("ladder", ()), cfg.strong_model):
            models.setdefault((pair, name), cfg)
    rows = []
    for (pair, name), cfg in models.items():
        arch = published(name) if name in PUBLISHED else arch_of(resolve(name))
        precision = auto_precision if cfg.train.precision == "auto" else cfg.train.precision
        est = estimate(arch, **settings_of(cfg, "cuda", precision))
        rows.append((pair, arch.params, Row(pair, name, est)))
    order = list(dict.fromkeys(pair for pair, _, _ in rows))  # pairs as listed, models by size
    return [row for _, _, row in sorted(rows, key=lambda r: (order.index(r[0]), r[1]))]


# ---------------------------------------------------------------- running one cell


def run_cell(cell: Cell, store_root: str) -> Outcome:
    """Run one cell unless a finished run of it exists or another live process is running it:
    the store checks both in the transaction that claims the cell. A failure is returned, not
    raised, so the sweep goes on."""
    from . import pipeline
    from .store import RunTaken, Store

    t0 = time.perf_counter()
    try:
        result = pipeline.run(cell.cfg, Store(store_root), quiet=True, exclusive=True)
    except RunTaken as taken:
        if taken.status == "done":
            return Outcome(cell.index, "skipped", taken.run_id)
        return Outcome(cell.index, "busy", taken.run_id,
                       error=f"run {taken.run_id} is in progress in process {taken.owner}")
    except Exception as e:  # noqa: BLE001 -- recorded as failed by the run; the sweep goes on
        msg = str(e) if isinstance(e, W2SError) else f"{type(e).__name__}: {e}"
        return Outcome(cell.index, "failed", seconds=time.perf_counter() - t0,
                       error=msg.strip().splitlines()[0] if msg.strip() else type(e).__name__)
    computed = [k for k, t in result["timings"].items()
                if not t["cached"] and k not in ("data", "evaluate")]
    return Outcome(cell.index, "done", result["run_id"], time.perf_counter() - t0, computed)


# ---------------------------------------------------------------- executors

Executor = Callable[[list[Cell], str, Options], Iterator[Outcome]]
EXECUTORS: Registry[Executor] = Registry("executor")


def ordered(cells: list[Cell]) -> list[Cell]:
    """Cells sharing features, then sharing supervisor and ceiling, next to each other."""
    first_f: dict[str, int] = {}
    first_g: dict[str, int] = {}
    for c in cells:
        first_f.setdefault(c.features_group, c.index)
        first_g.setdefault(c.group, c.index)
    return sorted(cells, key=lambda c: (first_f[c.features_group], first_g[c.group], c.index))


def dependencies(cells: list[Cell]) -> dict[int, int | None]:
    """For parallel executors: the cell each cell waits for (None: none). The first cell of a
    features group starts at once; the first cell of each group in it waits for that one; the
    other cells of a group wait for the group's first."""
    after: dict[int, int | None] = {}
    lead_f: dict[str, int] = {}
    lead_g: dict[str, int] = {}
    for c in ordered(cells):
        if c.features_group not in lead_f:
            lead_f[c.features_group] = lead_g[c.group] = c.index
            after[c.index] = None
        elif c.group not in lead_g:
            lead_g[c.group] = c.index
            after[c.index] = lead_f[c.features_group]
        else:
            after[c.index] = lead_g[c.group]
    return after


@EXECUTORS.register("inprocess")
def inprocess(cells: list[Cell], store_root: str, opts: Options) -> Iterator[Outcome]:
    """One cell after another in this process."""
    if opts.workers not in (None, 1) or opts.address or opts.num_cpus:
        raise W2SError("the inprocess executor runs one cell at a time in this process; "
                       "--workers, --address and --num-cpus need --executor ray")
    return (run_cell(c, store_root) for c in ordered(cells))


@dataclass(frozen=True)
class WorkerSetup:
    """What a Ray worker takes from the driver: the store, its torch threads, folder and env."""

    store_root: str
    threads: int
    cwd: str
    env: dict[str, str]


def _ray_cell(cell: Cell, setup: WorkerSetup, after: Outcome | None) -> Outcome:
    """A cell in a Ray worker, with the driver's environment and folder. `after`: the outcome of
    the cell whose shared work this one reuses (Ray passes it once that cell has finished; only
    the ordering matters here)."""
    os.environ.update(setup.env)
    os.chdir(setup.cwd)  # relative paths in configs (data files, models) mean what they meant there
    import torch

    torch.set_num_threads(setup.threads)
    return run_cell(cell, setup.store_root)


@EXECUTORS.register("ray")
def ray_executor(cells: list[Cell], store_root: str, opts: Options) -> Iterator[Outcome]:
    """Each cell a Ray task on a local cluster (started here) or one at --address. Checks Ray
    and the options at once; starts the cluster only when there is a cell to run."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise W2SError("--executor ray needs Ray, which is not installed: "
                       "pip install 'w2sgen[ray]'") from None
    if opts.address and opts.num_cpus:
        raise W2SError("--num-cpus sets up a local Ray cluster; leave it out with --address")
    for name in ("workers", "num_cpus"):
        if getattr(opts, name) is not None and getattr(opts, name) < 1:
            raise W2SError(f"--{name.replace('_', '-')} must be at least 1")
    if cells and opts.address:
        check_reachable(opts.address)
    return _ray_cells(cells, store_root, opts) if cells else iter(())


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """A host:port address that does not answer fails here, at once: Ray itself keeps retrying
    for minutes. (`auto` and `ray://` addresses are left to Ray.)"""
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise W2SError(f"no Ray cluster answers at {address!r} ({e.strerror or e}); start one with "
                       "`ray start --head`, or leave out --address for a local one") from None


def _ray_cells(cells: list[Cell], store_root: str, opts: Options) -> Iterator[Outcome]:
    import logging

    import ray

    from .store import Store

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline-first: no usage report
    ours = not ray.is_initialized()
    if ours:
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": logging.WARNING}
        try:
            if opts.address:
                ray.init(address=opts.address, **kwargs)
            else:
                ray.init(num_cpus=opts.num_cpus or os.cpu_count() or 1, **kwargs)
        except Exception as e:  # noqa: BLE001 -- unreachable address, no room for a cluster, ...
            where = f"at {opts.address!r}" if opts.address else "locally"
            text = str(e).strip().splitlines()
            raise W2SError(f"could not start or join a Ray cluster {where}: "
                           f"{text[0] if text else type(e).__name__}") from None
    try:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        workers = opts.workers or cpus
        threads = max(1, cpus // workers)  # 2 cells on 2 cores: 1 torch thread each
        # Ray hides GPUs from tasks that do not ask for one: cells that may use a GPU share them
        gpus = ray.cluster_resources().get("GPU", 0)
        share = min(1.0, gpus / workers) if gpus and any(c.cfg.device != "cpu" for c in cells) else 0
        task = ray.remote(_ray_cell).options(num_cpus=threads, num_gpus=share, max_retries=0)
        env = {k: v for k, v in os.environ.items()
               if k.startswith(("W2S_", "HF_", "TRANSFORMERS_", "TOKENIZERS_"))}
        root = str(Path(store_root).resolve())
        setup = WorkerSetup(root, threads, os.getcwd(), env)
        # Ordering by object references: a cell that shares its group's features, supervisor and
        # ceiling takes the reference of the group's first cell as an argument, so Ray starts it
        # only once that cell has finished (and cached the shared work). Every cell is submitted
        # at once; the CPUs each asks for bound how many run together.
        after = dependencies(cells)
        refs: dict[int, Any] = {}
        for c in ordered(cells):
            lead = after[c.index]
            refs[c.index] = task.remote(c, setup, None if lead is None else refs[lead])
        index_of = {ref: i for i, ref in refs.items()}
        pending = list(refs.values())
        try:
            while pending:
                (ref,), pending = ray.wait(pending, num_returns=1)
                i = index_of[ref]
                try:
                    out = ray.get(ref)
                except Exception as e:  # noqa: BLE001 -- a worker died (out of memory, killed)
                    text = str(e).strip().splitlines()  # (its dependants fail with it: rerun resumes)
                    out = Outcome(i, "failed", error=f"Ray task failed: {text[0] if text else type(e).__name__}")
                    Store(root).mark_stale()  # its run row, if it had one, is no longer running
                yield out
        except BaseException:
            for ref in pending:  # Ctrl-C: interrupt the running cells, so they record it
                ray.cancel(ref)
            raise
    finally:
        if ours:
            ray.shutdown()


# ---------------------------------------------------------------- the sweep


@dataclass
class SweepResult:
    suite: Suite
    outcomes: dict[int, Outcome]
    stale: list[int]
    seconds: float

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes.values())

    @property
    def ok(self) -> bool:
        return all(o.status in ("done", "skipped") for o in self.outcomes.values())


def cell_states(suite: Suite) -> dict[int, tuple[str, int | None]]:
    """Read-only: each cell's state in the store (finished run / in progress elsewhere / to run)."""
    from .store import Store

    if not (Path(suite.store) / "runs.sqlite").is_file():
        return {c.index: ("todo", None) for c in suite.cells}
    store = Store(suite.store)
    out = {}
    for c in suite.cells:
        done = store.finished_run(c.hash)
        busy = None if done else store.running_elsewhere(c.hash)
        out[c.index] = ("done", done["id"]) if done else ("busy", busy[0]["id"]) if busy else ("todo", None)
    return out


def run_sweep(suite: Suite, executor: str = "inprocess", opts: Options | None = None,
              echo: Callable[[str], None] = print, progress: bool = True) -> SweepResult:
    from tqdm.auto import tqdm

    from .store import Store

    run = EXECUTORS.get(executor)
    opts = opts or Options()
    run([], suite.store, opts)  # the executor's checks (is Ray installed, options), before any work
    t0 = time.perf_counter()
    store = Store(suite.store)
    stale = store.stale  # marked as the store opened
    if stale:
        echo(f"marked {len(stale)} run(s) left 'running' by a process that no longer exists as "
             f"killed: {', '.join(map(str, stale))}")
    orphans = store.remove_orphans()
    if orphans:
        echo(f"removed {orphans} temporary file(s) left by killed processes")
    outcomes: dict[int, Outcome] = {}
    todo = []
    for c in suite.cells:
        done = store.finished_run(c.hash)
        if done:
            outcomes[c.index] = Outcome(c.index, "skipped", done["id"])
        else:
            todo.append(c)
    outcomes_iter = run(todo, suite.store, opts)  # checks its options before anything is said
    n = len(suite.cells)
    echo(f"w2s sweep {suite.name}: {n} cells, {n - len(todo)} already finished, {len(todo)} to "
         f"run ({executor}); store {suite.store}")
    bar = tqdm(total=n, initial=n - len(todo), desc=suite.name, unit="cell", file=sys.stderr,
               disable=not progress or None, dynamic_ncols=True)
    by_index = {c.index: c for c in suite.cells}
    try:
        for out in outcomes_iter:
            outcomes[out.index] = out
            c = by_index[out.index]
            if out.status == "done":
                fresh = f"computed {', '.join(out.computed)}" if out.computed else "all steps cached"
                line = f"done     {c.label}  ({out.seconds:.1f} s, run {out.run_id}; {fresh})"
            elif out.status == "skipped":
                line = f"skipped  {c.label}  (finished: run {out.run_id})"
            elif out.status == "busy":
                line = f"busy     {c.label}  ({out.error})"
            else:
                line = f"FAILED   {c.label}: {out.error}"
            bar.write(line, file=sys.stdout)
            bar.update(1)
    finally:
        bar.close()
    return SweepResult(suite, outcomes, stale, time.perf_counter() - t0)


def report(result: SweepResult, most_rows: int = 40) -> str:
    """The sweep's finished cells: the per-run table and the median PGR over seeds."""
    from . import report as rep
    from .store import Store

    store = Store(result.suite.store)
    runs = {}
    for c in result.suite.cells:
        r = store.finished_run(c.hash)
        if r:
            runs[r["id"]] = r
    runs_list = sorted(runs.values(), key=lambda r: r["id"])
    parts = []
    if not runs_list:
        parts.append("no finished cells")
    elif len(runs_list) <= most_rows:
        parts.append(rep.table(runs_list))
    else:
        parts.append(f"{len(runs_list)} finished cells; every run: w2s report --store {result.suite.store} --all")
    if runs_list:
        with warnings.catch_warnings():  # resamples where ceiling == weak give NaN medians
            warnings.simplefilter("ignore", RuntimeWarning)
            rows = rep.median_pgr_table(store, runs=runs_list)
        if rows:
            parts.append("median PGR over seeds, per task and method:\n" + rep.median_pgr_markdown(rows))
    bad = [(result.suite.cells[i], o) for i, o in sorted(result.outcomes.items())
           if o.status in ("failed", "busy")]
    if bad:
        parts.append("not finished:\n" + "\n".join(f"  {o.status:<7} {c.label}: {o.error}" for c, o in bad))
    s = result
    parts.append(f"{len(s.suite.cells)} cells: {s.count('done')} run, {s.count('skipped')} already "
                 f"finished, {s.count('failed')} failed, {s.count('busy')} running elsewhere; "
                 f"{s.seconds:.1f} s")
    return "\n\n".join(parts)
