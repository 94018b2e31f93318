"""What would stop a suite's cell before it runs: packages of models or task data that are not
installed, hub models that cannot be loaded from here, a model that cannot fit the memory it
would run in (the GPU's, or this machine's RAM), and - for a train mode that checks the texts
(train.mode=label_tokens) - a prompt of the cell's data that its settings refuse.
`suite.expand` asks this for every cell, so that every problem is named, once, before any work
starts, not when the cell's turn comes hours into a suite."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import ExperimentConfig
from ..errors import MissingAsset, W2SError
from ..methods import model_roles
from ..spec import stable_hash

HUB_UNREACHABLE = "hub model(s) could not be loaded"


def assets_error(cfg: ExperimentConfig, missing: dict[str, MissingAsset],
                 unreachable: dict[str, bool] | None = None) -> W2SError | None:
    """The error a cell's models or task data would stop it with (missing packages are also
    collected in `missing`, and hub ids that do not load in `unreachable`, to be named
    together). A task's data is not read here."""
    from ..assets import require

    names = [name for name, _, _ in model_roles(cfg, str)]  # the method's own models too
    try:
        require(names, cfg.task)
    except MissingAsset as e:
        missing.setdefault(e.what, e)
        return e
    except W2SError as e:
        bad = [] if unreachable is None else _unreachable_hub_models(names, unreachable)
        if any(repr(n.removeprefix("hf:").partition("@")[0]) in str(e) for n in bad):
            return W2SError(HUB_UNREACHABLE)  # (named with the others after the grid is expanded)
        return e
    return None


def _unreachable_hub_models(names: list[str], seen: dict[str, bool]) -> list[str]:
    """The hub ids (`org/name`, `hf:...`) among `names` that cannot be resolved from here, each
    tried once (`seen` remembers)."""
    from ..models import MODELS, resolve

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


def texts_error(cfg: ExperimentConfig, seen: dict[str, Any]) -> W2SError | None:
    """The refusal `pipeline.run` would stop this cell with once its data is read - the train
    mode's checks over the texts each role sees (pipeline.check_roles: a prompt longer than
    features.max_length under label_tokens) - or None. Only for a mode that reads texts
    (`Learner.reads_texts`), on the installed models, and for task data on this machine (a hub
    dataset is left to the run). `seen` keeps, for one suite, each task's splits (read once)
    and each outcome, keyed by what the checks depend on, so cells differing only in method,
    loss or seed cost nothing."""
    d = cfg.to_dict()
    key = "check:" + stable_hash([d.get(k) for k in ("task", "splits", "features", "train", "weak_train")]
                                 + [[name, supervisor] for name, _, supervisor in model_roles(cfg, str)])
    if key not in seen:
        seen[key] = _texts_error(cfg, d, seen)
    return seen[key]


def _texts_error(cfg: ExperimentConfig, d: dict[str, Any], seen: dict[str, Any]) -> W2SError | None:
    from ..models import local_ref
    from ..pipeline import check_roles
    from ..splits import make_splits
    from ..tasks import TASKS, load_task, task_component
    from ..train import MODES

    roles = model_roles(cfg, local_ref)
    if not any(ref is not None and MODES.get(role.train.mode).reads_texts for ref, role, _ in roles):
        return None
    task = task_component(cfg.task)
    if TASKS.get(task.name).source == "hf":
        return None
    splits = "splits:" + stable_hash([d["task"], d["splits"]])
    try:
        if splits not in seen:
            seen[splits] = make_splits(load_task(task), cfg.splits, task.name)
        check_roles(cfg, roles, seen[splits])
    except W2SError as e:
        return e
    return None


def memory_error(cfg: ExperimentConfig, seen: dict[str, Any]) -> W2SError | None:
    """The refusal `pipeline.run` would stop this cell with for memory (pipeline.check_memory:
    each installed model under its role's settings against the GPU's memory or this machine's
    RAM), or None; a CUDA cell on a machine without CUDA is left to the run. `seen` keeps each
    outcome, keyed by what the check depends on."""
    from ..models import local_ref
    from ..pipeline import check_memory

    device = cfg.torch_device()
    d = cfg.to_dict()
    roles = model_roles(cfg, str)
    key = "memory:" + stable_hash([d.get(k) for k in ("features", "train", "weak_train", "device")]
                                  + [[name, supervisor] for name, _, supervisor in roles])
    if key in seen:
        return seen[key]
    seen[key] = None
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return None
    try:
        for ref, role, _ in model_roles(cfg, local_ref):
            if ref is not None:
                check_memory(ref, role, device, "train" if role is cfg else "weak_train", True)
    except W2SError as e:
        seen[key] = e
    return seen[key]
