"""The checks before a run: what stops an experiment before anything is recorded or computed.

`preflight` is the one list of them, in order: the models and task data installed, a zero-shot
scorer that is a causal LM, features.max_length within each model's positions, each model's
memory under its role's settings (the GPU's, or this machine's RAM), and then, on the run's data,
the train modes' checks of the texts each role reads, the zero-shot scorer's kind of task and the
method's checks of the splits. `w2s run` (pipeline.prepare) calls it on the data it goes on to
use; `w2s sweep --dry-run`, and every suite as it loads (sweep/checks.py), call it for each cell,
so a problem the run would refuse is named by the same one line before any cell runs.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional, TypeVar

from . import memory, zero_shot
from .assets import require
from .config import ExperimentConfig
from .errors import W2SError
from .methods import METHODS, check_method_splits, model_roles
from .models import ModelRef, resolve
from .spec import stable_hash
from .splits import Splits
from .tasks import TASKS, task_component
from .train import MODES
from .validate import weak_problem

Roles = list[tuple[ModelRef, ExperimentConfig, bool]]
R = TypeVar("R", bound=Optional[ModelRef])


def preflight(cfg: ExperimentConfig, read: Callable[[], Splits], refer: Callable[[str], R],
              quiet: bool = True, dry: bool = False, memo: Optional[dict[str, Any]] = None
              ) -> tuple[list[tuple[R, ExperimentConfig, bool]], Optional[Splits]]:
    """Raise the first problem that stops `cfg` (its method checked) before anything is
    recorded, as one line (W2SError); else its models' refs by role (methods.model_roles, each
    name turned into a ref by `refer`) and the splits `read` returned. The run calls it with its
    own reader and `models.resolve`.
    dry (a suite's cells, before any runs): models are referred to by `refer` (`local_ref`: a hub
    id is left to the asset check), a CUDA cell's memory is left to the dry-run's listing of GPU
    memory (sweep/estimates.py), and `read` is called only when a check reads the data and the
    task's data is on this machine (a hub dataset is left to the run): then splits is None.
    `memo` keeps, across the cells of one suite, each check's outcome keyed by what it depends
    on, so cells differing only in seed, loss or method options cost nothing."""
    memo = {} if memo is None else memo
    d = cfg.to_dict()
    names = [name for name, _, _ in model_roles(cfg, str)]
    zero = [cfg.eval.zero_shot] if cfg.eval.zero_shot else []
    remembered(memo, ["assets", names + zero, d["task"]], lambda: require(names + zero, cfg.task))
    if zero and resolve(zero[0]).kind != "causal":
        raise W2SError(f"eval.zero_shot={zero[0]!r} is an encoder; zero-shot scoring needs a causal "
                       "LM (e.g. smollm2-135m)")
    roles = model_roles(cfg, refer)
    device = cfg.torch_device()
    for ref, _, _ in roles:
        if ref is not None:
            check_length(ref, cfg.features.max_length)
    if not (dry and device.startswith("cuda")):
        remembered(memo, ["memory", names, *(d.get(k) for k in ("features", "train", "weak_train", "device"))],
                   lambda: check_memories(cfg, roles, device, quiet))
    if dry and not reads_data(cfg, roles):
        return roles, None
    splits = read()
    remembered(memo, ["texts", *(d.get(k) for k in ("task", "splits", "features", "train", "weak_train")),
                      [[name, supervisor] for name, (_, _, supervisor) in zip(names, roles)]],
               lambda: check_roles(cfg, roles, splits))
    if zero:
        zero_shot.kind(splits.test, task_component(cfg.task).name)
    check_method_splits(cfg, splits)
    return roles, splits


def remembered(memo: dict[str, Any], key: Any, check: Callable[[], None]) -> None:
    """Run `check` once per `key` in `memo`; a refusal is kept and raised again."""
    k = stable_hash(key)
    if k not in memo:
        try:
            check()
            memo[k] = None
        except W2SError as e:
            memo[k] = e
    if memo[k] is not None:
        raise memo[k]


def reads_data(cfg: ExperimentConfig, roles: Sequence[tuple[Optional[ModelRef], ExperimentConfig, bool]]) -> bool:
    """Whether a dry run reads this cell's data: a check needs it (a train mode that reads the
    texts, eval.zero_shot, a method's check of the splits) and the task's data is on this machine."""
    if TASKS.get(task_component(cfg.task).name).source == "hf":
        return False
    return (any(ref is not None and MODES.get(role.train.mode).reads_texts for ref, role, _ in roles)
            or bool(cfg.eval.zero_shot)
            or getattr(METHODS.get(cfg.method.name), "check_splits", None) is not None)


def check_roles(cfg: ExperimentConfig, roles: Sequence[tuple[Optional[ModelRef], ExperimentConfig, bool]],
                splits: Splits) -> None:
    """The train modes' checks (`Learner.preflight`) on the texts each role reads, once per
    model and role (methods.model_roles): a weak supervisor trains on weak_train and predicts the
    other splits, a model under `train` (ceiling, student, ladder rungs) sees transfer and test
    only. Roles without a ref are skipped."""
    everything = splits.weak_train + splits.transfer + splits.test
    strong_sees = splits.transfer + splits.test
    checked = set()
    for ref, role, supervisor in roles:
        if ref is None or (ref.identity, supervisor) in checked:
            continue
        checked.add((ref.identity, supervisor))
        try:
            MODES.get(role.train.mode).preflight(ref, role, everything if supervisor else strong_sees)
        except W2SError as e:
            raise (e if role is cfg else weak_problem(cfg, e)) from None


def check_memories(cfg: ExperimentConfig, roles: Sequence[tuple[Optional[ModelRef], ExperimentConfig, bool]],
                   device: str, quiet: bool) -> None:
    """check_memory for each model with a ref, under its role's settings."""
    for ref, role, _ in roles:
        if ref is not None:
            check_memory(ref, role, device, "train" if role is cfg else "weak_train", quiet)


def check_memory(ref: ModelRef, role: ExperimentConfig, device: str, where: str, quiet: bool) -> None:
    """The training mode's memory estimate (the one it declares: Learner.memory_estimate) of
    `ref` under `role` against the GPU's memory or this machine's RAM; for a mode on features
    (the probe), the model's fp32 weights; a mode that declares none is said to train unchecked."""
    mode = MODES.get(role.train.mode)
    if mode.memory_estimate is not None:
        memory.check_fits(ref, role, device, where, mode.memory_estimate)
    elif mode.uses_features:
        memory.check_loads(ref, device)
    elif not quiet and device.startswith("cuda"):
        print(f"note: train.mode={role.train.mode} has no memory estimate; {ref.name} trains "
              "without a check that it fits the GPU", file=sys.stderr)


def check_length(ref: ModelRef, max_length: int) -> None:
    """features.max_length within the positions the model has (read from its config.json, when
    the folder has one), before anything is recorded."""
    config = Path(ref.path) / "config.json"
    if not config.is_file():
        return
    try:
        c = json.loads(config.read_text())
    except (OSError, ValueError):
        return
    positions = c.get("max_position_embeddings")
    if not isinstance(positions, int):
        return
    if c.get("model_type") in ("mpnet", "roberta", "xlm-roberta", "camembert"):
        positions -= int(c.get("pad_token_id") or 1) + 1  # their positions start after the pad id
    if max_length > positions:
        raise W2SError(f"features.max_length={max_length} but model {ref.name!r} has "
                       f"{positions} positions; set features.max_length={min(positions, 512)} "
                       "or less")
