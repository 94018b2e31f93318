"""Estimates of a suite before any cell runs: the training memory of the models it trains, from
its file alone with no GPU needed (`benchmarks/memory.py`), and each cell's time on this
machine from the models' FLOPs and the machine's measured throughput (`w2s sweep --dry-run`,
`--max-hours`)."""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Any

from ..config import read_yaml_mapping, set_key
from ..errors import W2SError
from ..methods import model_roles
from ..validate import build_config
from .suite import variant


def memory_estimates(path: str, auto_precision: str = "bf16") -> list[Any]:
    """The estimate of every model each pair of a suite trains (weak, the method's own models
    such as a bootstrap ladder, strong), on a GPU where `precision: auto` means `auto_precision` (bf16 on A100/H100-class
    GPUs). Hub models in PUBLISHED are estimated from those values, others from their configs.
    The cells are expanded as `w2s sweep` does, without its check that the assets exist."""
    from ..memory import PUBLISHED, Row, arch_of, estimate, published, settings_of
    from ..models import resolve
    from ..train import MODES

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
        for name, _, _ in model_roles(cfg, str):  # the method's own models too
            models.setdefault((pair, name), cfg)
    rows = []
    for (pair, name), cfg in models.items():
        arch = published(name) if name in PUBLISHED else arch_of(resolve(name))
        precision = auto_precision if cfg.train.precision == "auto" else cfg.train.precision
        formula = MODES.get(cfg.train.mode).memory_estimate  # None: the mode declares none
        est = None if formula is None else estimate(arch, **settings_of(cfg, "cuda", precision, formula))
        rows.append((pair, arch.params, Row(pair, name, est)))
    order = list(dict.fromkeys(pair for pair, _, _ in rows))  # pairs as listed, models by size
    return [row for _, _, row in sorted(rows, key=lambda r: (order.index(r[0]), r[1]))]


# Time. A model's forward pass costs ~2 FLOPs per weight per token (the embedding table, a
# lookup, excepted), a training step ~6 (forward and backward); attention's own products are
# left out (short sentences: a few percent). Divided by the matrix-product throughput measured
# on this machine once (hardware.probe, cached in the data home's hardware.json: never timed
# here, never part of a config's hash) at the precision the step computes in, times the share
# of that peak whole models reach (MODEL_EFFICIENCY; benchmarks/causal_features.py measures it).
MODEL_EFFICIENCY = 0.5
ESTIMATE_NOTE = (f"from the models' FLOPs at {MODEL_EFFICIENCY:.0%} of the matrix-product rate "
                 "measured on this machine; shared steps counted once")
TRAIN_FLOPS, FORWARD_FLOPS = 6, 2
CHARS_PER_TOKEN = 4  # English text in BPE/WordPiece vocabularies, roughly; plus 2 special tokens
# zoo models of unknown-origin packages that may not be pulled: the published shapes they share
ZOO_PUBLISHED = {"qwen2.5-coder-0.5b-instruct": "Qwen/Qwen2.5-0.5B",
                 "qwen2.5-coder-1.5b-instruct": "Qwen/Qwen2.5-1.5B",
                 "gemma3-270m": "google/gemma-3-270m"}


@dataclass(frozen=True)
class Shape:
    """What the time estimate needs of a model: weights that compute, per block and in all."""

    compute_params: int  # every weight a token's forward pass multiplies (embeddings excepted)
    layers: int
    unknown: str = ""  # why there is no shape (then the cells with this model get no estimate)


@dataclass
class CellCost:
    index: int
    seconds: float  # the work this cell adds to the cells before it (shared steps once)
    steps: int
    unknown: str = ""  # why there is no estimate (a model whose shape cannot be read here)


@dataclass
class TimeEstimate:
    cells: list[CellCost]
    gflops: dict[str, float]  # precision -> the measured matrix-product rate used
    machine: str

    @property
    def total(self) -> float:
        return sum(c.seconds for c in self.cells)

    @property
    def unknown(self) -> list[str]:
        """Why some cells have no estimate, once each."""
        return list(dict.fromkeys(c.unknown for c in self.cells if c.unknown))


def shape_of(name: str) -> Shape:
    """A model's compute shape from its config (no weights read)."""
    from ..memory import PUBLISHED, arch_of, published
    from ..models import resolve

    key = ZOO_PUBLISHED.get(name, name)
    if key in PUBLISHED:
        arch = published(key)
    else:
        arch = arch_of(resolve(name))
    return Shape(arch.params - arch.vocab * arch.hidden, arch.layers)


def split_tokens(cfg: Any, cache: dict[str, Any]) -> dict[str, float]:
    """Tokens in each split of a cell's task (characters / CHARS_PER_TOKEN + 2 per example,
    at most features.max_length); a task not on this machine counts max_length per example
    at its configured sizes (a fraction of an unknown task: 1000 examples)."""
    from ..spec import stable_hash
    from ..splits import SPLITS, make_splits
    from ..tasks import TASKS, load_task, task_component

    d = cfg.to_dict()
    key = "tokens:" + stable_hash([d["task"], d["splits"], cfg.features.max_length])
    if key not in cache:
        cap = cfg.features.max_length
        task = task_component(cfg.task)
        try:
            if TASKS.get(task.name).source == "hf":
                raise LookupError
            splits = make_splits(load_task(task), cfg.splits, task.name)
            cache[key] = {s: float(sum(min(cap, len(e.text) // CHARS_PER_TOKEN + 2
                                           + len(e.text_pair or "") // CHARS_PER_TOKEN)
                                       for e in getattr(splits, s))) for s in SPLITS}
        except (LookupError, W2SError):
            sizes = {s: getattr(cfg.splits, s) for s in SPLITS}
            cache[key] = {s: float(cap * (v if isinstance(v, int) else 1000)) for s, v in sizes.items()}
    return cache[key]


def step_flops(shape: Shape, mode: str, last_k: int, epochs: int, train_tokens: float,
               seen_tokens: float) -> tuple[float, float]:
    """(FLOPs per token of the frozen pass each split gets once per model - a probe's features,
    cached in the store; last_k's bottom blocks in fp32, shared in the process (last_k.SHARED);
    FLOPs of one training step in train.precision: training on `train_tokens` for `epochs` and
    predicting `seen_tokens`)."""
    if mode == "probe":  # the head on cached features: negligible next to the features
        return FORWARD_FLOPS * shape.compute_params, 0.0
    if mode == "last_k":
        top = shape.compute_params / max(shape.layers, 1) * min(last_k, shape.layers)
        return (FORWARD_FLOPS * (shape.compute_params - top),
                TRAIN_FLOPS * top * train_tokens * epochs + FORWARD_FLOPS * top * seen_tokens)
    # full, lora, label_tokens: the whole model forward and backward (LoRA's frozen weights
    # still carry the gradient back, so it costs about what full does)
    return 0.0, (TRAIN_FLOPS * shape.compute_params * train_tokens * epochs
                 + FORWARD_FLOPS * shape.compute_params * seen_tokens)


def time_estimates(cells: list[Any], probe: Any = None, skip: frozenset[int] = frozenset(),
                   gpu: tuple[Any, str] | None = None) -> TimeEstimate:
    """Each cell's estimated seconds on this machine, in order, with the steps cells share
    (features, a weak supervisor, a ceiling: the store caches them) counted in the first cell
    that needs them; cells in `skip` (finished) cost nothing. `probe`: the machine's measured
    rates (default: hardware.probe for the cells' device, cached). `gpu`: for cells on a CUDA
    device, hardware.gpu_figures' (figures, where they come from); default: hardware.probe."""
    from ..hardware import probe as measured
    from ..hardware import resolve_precision
    from ..methods import model_roles
    from ..spec import stable_hash
    from ..splits import SPLITS

    shapes: dict[str, Shape] = {}
    tokens_cache: dict[str, Any] = {}
    done: set[str] = set()
    out: list[CellCost] = []
    machine = probe
    for cell in cells:
        cfg = cell.cfg
        device = cfg.torch_device()
        if probe is None and device.startswith("cuda"):
            if gpu is None and not _cuda():
                out.append(CellCost(cell.index, 0.0, 0, "no estimate for a GPU suite without a GPU here"))
                continue
            machine = gpu[0] if gpu is not None else measured(device)
        else:
            machine = probe if probe is not None else measured(device)
        tokens = split_tokens(cfg, tokens_cache)
        d = cfg.to_dict()
        resolved = cfg.resolved()
        where = [d["task"], d["splits"], d["features"]]
        seconds, steps = 0.0, 0
        unknown = ""
        for name, role, supervisor in model_roles(cfg, str):
            if name not in shapes:
                try:
                    shapes[name] = shape_of(name)
                except W2SError as e:  # Unestimable, or a model that does not resolve here
                    shapes[name] = Shape(0, 0, f"no estimate for {name}: {str(e).splitlines()[0]}")
            if shapes[name].unknown:
                unknown = shapes[name].unknown
                continue
            t = role.train
            train_split = "weak_train" if supervisor else "transfer"
            seen = [s for s in SPLITS if supervisor or s != "weak_train"]
            # label_tokens with adapter last_k costs what last_k does (on its prompts)
            mode = "last_k" if t.mode == "label_tokens" and t.adapter == "last_k" else t.mode
            per_token, trained = step_flops(shapes[name], mode, t.last_k, t.epochs,
                                            tokens[train_split], sum(tokens[s] for s in seen))
            # features in features.precision (resolved: fp32 for `auto` on a CPU); last_k's
            # frozen bottom in fp32; training in the role's train.precision
            frozen = "fp32" if mode == "last_k" else resolved.features.precision
            frozen_rate = rate_of(machine, frozen)
            own = trained / rate_of(machine, resolve_precision(t.precision, device))
            train = role.to_dict()["train"]
            # features: 0; last_k: the blocks above (label_tokens' passes are over its prompts)
            depth = 0 if mode != "last_k" else t.last_k if t.mode == "last_k" else f"prompts {t.last_k}"
            if depth == 0 and cfg.features.scope == "task":  # one pass per task and model,
                # shared by every split seed (counted as the three splits' tokens)
                task_tokens = sum(tokens[s] for s in SPLITS)
                work: list[tuple[list[Any], float]] = [
                    (["frozen", name, 0, "task", [d["task"], d["features"]]],
                     per_token * task_tokens / frozen_rate)]
            else:
                work = [(["frozen", name, depth, s, where], per_token * tokens[s] / frozen_rate)
                        for s in seen]
            work.append((["ceiling", name, train, supervisor, where, d["seed"]], own))
            if not supervisor:  # a student trains on the weak labels, per method and loss
                work.append((["student", name, train, where, d["seed"], d["method"], d["loss"],
                              d.get("weak_train"), cfg.weak_model], own))
            for parts, secs in work:
                h = stable_hash(parts)
                if secs and h not in done:
                    done.add(h)  # a finished cell's steps are cached: later cells reuse them
                    if cell.index not in skip:
                        seconds += secs
                        steps += 1
        out.append(CellCost(cell.index, seconds, steps, unknown))
    gflops = {} if machine is None else {"fp32": machine.fp32_gflops, "bf16": machine.bf16_gflops}
    return TimeEstimate(out, gflops, "" if machine is None else machine.summary())


def memory_checks(cells: list[Any], gpu: Any, skip: frozenset[int] = frozenset()) -> tuple[list[str], str]:
    """The memory estimate of every model the GPU cells train (each model and its settings
    once) against `gpu`'s memory (hardware.Probe): (a line for each that would not fit, with the
    setting to change; a line for the largest that fits). Models whose shape cannot be read
    here are left out, as the runs' own check leaves them."""
    from ..memory import HEADROOM, _gb, check_fits
    from ..models import resolve
    from ..spec import stable_hash
    from ..train import MODES

    over: list[str] = []
    seen: set[str] = set()
    largest: tuple[float, str] = (0.0, "")
    for cell in cells:
        if cell.index in skip or not cell.cfg.torch_device().startswith("cuda"):
            continue
        for name, role, supervisor in model_roles(cell.cfg, str):
            formula = MODES.get(role.train.mode).memory_estimate
            key = stable_hash([name, role.to_dict()["train"], role.features.max_length])
            if formula is None or key in seen:
                continue
            seen.add(key)
            where = "weak_train" if supervisor else "train"
            try:
                ref = resolve(name)
            except W2SError:  # not on this machine: its cells' time has no estimate either
                continue
            try:
                est = check_fits(ref, role, "cuda", where, formula, gpu=gpu)
            except W2SError as e:  # would not fit: the line the run would refuse with
                over.append(f"  memory, cell {cell.index + 1}: {str(e).splitlines()[0]}")
                continue
            if est is not None and est.total > largest[0]:
                largest = (est.total, f"{name} ({est.setting})")
    budget = HEADROOM * (gpu.memory_bytes or 0)
    fits = (f"memory: the largest model a GPU cell trains, {largest[1]}, needs ~{_gb(largest[0])} "
            f"by estimate of the {_gb(budget)} {gpu.name} leaves to use" if largest[1] else "")
    return over, fits


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def rate_of(machine: Any, precision: str) -> float:
    """FLOP/s a whole model reaches at `precision` on the probed machine."""
    gflops = machine.bf16_gflops if precision == "bf16" else machine.fp32_gflops
    return gflops * 1e9 * MODEL_EFFICIENCY


def hours(seconds: float) -> str:
    """A duration for a person: 40 s, 12 min, 3.4 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
