"""Suite files: parsing, validation and the expansion of the grid into cells.

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

`order` (optional) lists axes from the slowest-varying to the fastest, e.g. [pairs, task,
methods, seeds] to run every task of the first pair before the second pair; axes it leaves out
follow in the default order (task, pairs, methods, seeds, then the others as written). It
changes only the order cells run in (so what a partial run holds), never a cell or its label.

`comparisons` (optional) declares, before the run, the family of method-vs-baseline
comparisons the report tests at the level of datasets and adjusts with Holm (`w2s report
--hierarchy --suite FILE`): a list of [method, baseline] pairs of grid.methods labels.

A mapping value of any axis may carry `only: {AXIS: [LABEL, ...]}`: its cells are made only in
combination with those values of the other axis (e.g. `bootstrap` only for the pairs that have
an intermediate rung); a label that names no value of that axis is an error.

Cells are the cartesian product, each a full validated config; every error of every cell is
reported (one line each) before any work starts. A cell is identified by its config hash (what
it computes, not where it is stored or what it is called): a cell with a finished run of that
hash in the store is skipped, so a sweep that stops for any reason is resumed by running it
again, and adding a method to a finished suite runs only the new cells.
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import read_yaml_mapping, set_key
from ..errors import MissingAsset, W2SError, cut
from ..validate import build_config, weak_inherited_note
from .cells import Cell
from .checks import HUB_UNREACHABLE, cell_error

AXES = ("task", "pairs", "methods", "seeds")
COMPONENTS = ("task", "method", "loss")
# axes whose value names reports show (config `labels`, with the suite's name: trackers group by it)
LABELLED_AXES = ("methods",)  # config keys whose mapping (with a name) is replaced whole


@dataclass
class Suite:
    name: str
    path: Path
    store: str
    cells: list[Cell]
    merged: int = 0  # cells that were the same experiment as an earlier one (same hash)

    @property
    def notes(self) -> list[str]:
        """What a user should know before running, once each (weak_inherited_note)."""
        return list(dict.fromkeys(n for c in self.cells if (n := weak_inherited_note(c.cfg))))


KEYS = ("name", "description", "base", "grid", "order", "comparisons")


def read_suite(path: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(the file's mapping, its base config, its grid), checked for shape."""
    raw = read_yaml_mapping(path, "suite file")
    unknown = [k for k in raw if k not in KEYS]
    if unknown:
        raise W2SError(f"suite {str(path)!r}: unknown key {unknown[0]!r}; valid keys: "
                       + ", ".join(KEYS))
    base = raw.get("base", {})
    if isinstance(base, str):
        base = read_yaml_mapping(path.parent / base, f"suite {str(path)!r}: base config")
    elif not isinstance(base, dict):
        raise W2SError(f"suite {str(path)!r}: base must be a config file path or a mapping of "
                       f"config keys, got {base!r}")
    grid = raw.get("grid") or {}
    if not isinstance(grid, dict):
        raise W2SError(f"suite {str(path)!r}: grid must be a mapping of axes to lists")
    return raw, base, grid


def load_suite(path: str | Path, store: str | None = None, check_assets: bool = True) -> Suite:
    """A suite file's cells, every one validated. `check_assets=False` (planning: the time
    estimate of a suite whose models are not pulled yet) skips the checks that need the models
    and task data on this machine, and keeps cells that repeat another."""
    path = Path(path)
    raw, base, grid = read_suite(path)
    declared_comparisons(raw, grid, str(path))  # a family that names no method fails now
    name = str(raw.get("name") or path.stem)
    store = store or str(base.get("store", "runs"))
    return Suite(name, path, store, *expand(name, base, grid, store, str(path), check_assets,
                                            raw.get("order")))


def expand(name: str, base: dict[str, Any], grid: dict[str, Any], store: str, where: str,
           check_assets: bool = True, order: Any = None) -> tuple[list[Cell], int]:
    """Cells of the grid, each validated, in the suite's `order`; raises one error listing every
    invalid cell."""
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
    slow_to_fast = axis_order(order, axis_names, where)
    cells: list[Cell] = []
    errors: dict[str, list[str]] = {}
    seen: set[str] = set()
    merged = 0
    missing: dict[str, MissingAsset] = {}
    unreachable: dict[str, bool] = {}  # hub model id -> could not be loaded from here
    seen_checks: dict[str, Any] = {}  # the checks' outcomes and each task's splits, once each
    for ordered_picks in itertools.product(*(range(len(axes[a])) for a in slow_to_fast)):
        picks = [0] * len(axes)
        for a, i in zip(slow_to_fast, ordered_picks):
            picks[a] = i
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
        raw["labels"] = {"suite": name, **{a: lab for a, lab in labels_of.items() if a in LABELLED_AXES}}
        try:
            cfg = build_config(raw)
            if not check_assets:
                cells.append(Cell(len(cells), label, cfg))
                continue
            problem = cell_error(cfg, missing, unreachable, seen_checks)
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
        lines = [cut(f"{msg} (cell {cs[0]!r}{f' and {len(cs) - 1} more' if len(cs) > 1 else ''})"
                     if cs else msg, 400) for msg, cs in errors.items()]
        n = sum(len(cs) for cs in errors.values()) or len(errors)
        if len(lines) == 1:  # one problem: one line
            raise W2SError(f"suite {where!r}: {n} invalid cell(s), nothing was run: {lines[0]}")
        raise W2SError(f"suite {where!r}: {n} invalid cell(s), nothing was run:\n  "
                       + "\n  ".join(lines))
    return cells, merged


def axis_order(order: Any, names: list[str], where: str) -> list[int]:
    """The indices of the grid's axes (`names`, in label order) from the slowest-varying to the
    fastest: those `order` lists, then the others in label order."""
    if order is None:
        return list(range(len(names)))
    if not isinstance(order, list) or not all(isinstance(a, str) for a in order) \
            or len(set(order)) != len(order):
        raise W2SError(f"suite {where!r}: order must be a list of distinct grid axes, slowest-"
                       f"varying first, e.g. order: [pairs, task], got {order!r}")
    unknown = [a for a in order if a not in names]
    if unknown:
        raise W2SError(f"suite {where!r}: order names {unknown[0]!r}, which is no axis of the grid "
                       f"({', '.join(names)})")
    first = [names.index(a) for a in order]
    return first + [i for i in range(len(names)) if i not in first]


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


COMPARISONS_FORM = ("comparisons: a list of [method, baseline] pairs of grid.methods labels, e.g. "
                    "comparisons: [[logconf, naive], [product, naive]]")


def declared_comparisons(raw: dict[str, Any], grid: dict[str, Any], where: str) -> list[tuple[str, str]]:
    """The suite's `comparisons:` (the family its report adjusts for, declared before the run),
    as (method label, baseline label) pairs of grid.methods; [] when the suite declares none."""
    spec = raw.get("comparisons")
    if spec is None:
        return []
    if not isinstance(spec, list) or not spec or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in spec):
        raise W2SError(f"suite {where!r}: {COMPARISONS_FORM}; got {spec!r}")
    labels = [variant("methods", without_only(v), where)[0] for v in grid.get("methods") or []]
    for pair in spec:
        for label in pair:
            if label not in labels:
                raise W2SError(f"suite {where!r}: comparisons names {label!r}, which is no label of "
                               f"grid.methods ({', '.join(labels) or 'none'})")
        if pair[0] == pair[1]:
            raise W2SError(f"suite {where!r}: comparisons pairs {pair[0]!r} with itself")
    return [(a, b) for a, b in spec]


def comparison_family(path: str | Path) -> list[tuple[str, str, str]]:
    """The declared family of a suite file as the report names methods: (\"label vs label\",
    method, baseline), each method as `report.runs.method_of` names the runs of that grid.methods
    variant. Reads the file only (no data, no models); [] when it declares none."""
    from ..report.runs import method_of

    path = Path(path)
    raw, base, grid = read_suite(path)
    where = str(path)
    pairs = declared_comparisons(raw, grid, where)
    variants = {lab: over for lab, over in (variant("methods", without_only(v), where)
                                            for v in grid.get("methods") or [])}
    firsts = [variant(axis, without_only(grid[axis][0]), where)[1] for axis in ("task", "pairs")
              if isinstance(grid.get(axis), list) and grid[axis]]

    def name(label: str) -> str:
        cfg = copy.deepcopy(base)
        for overrides in (*firsts, variants[label]):
            for key, value in overrides.items():
                set_key(cfg, key, copy.deepcopy(value))
        return method_of({"config": build_config(cfg).to_dict()})

    return [(f"{a} vs {b}", name(a), name(b)) for a, b in pairs]
