"""What would stop a suite's cell before it runs: the run's own checks (preflight.py: models and
task data installed, lengths, the memory a model runs in, the data as each model's train mode
reads it, the method's checks of the splits), with the problems that concern several cells
gathered: packages not installed, to be pulled in one command, and hub models that cannot be
loaded from here. `suite.expand` asks this for every cell, so that every problem is named, once,
before any work starts, not when the cell's turn comes hours into a suite."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import ExperimentConfig
from ..errors import MissingAsset, W2SError
from ..methods import model_roles
from ..spec import stable_hash

HUB_UNREACHABLE = "hub model(s) could not be loaded"


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


def cell_error(cfg: ExperimentConfig, missing: dict[str, MissingAsset], unreachable: dict[str, bool],
               seen: dict[str, Any]) -> W2SError | None:
    """The refusal `w2s run` would stop this cell with before recording it (preflight.preflight,
    on installed models and on task data on this machine), or None. A missing package is also
    collected in `missing` and a hub id that does not load in `unreachable`, to be named
    together. `seen` keeps, for one suite, each check's outcome and each task's splits."""
    from ..models import local_ref
    from ..preflight import preflight
    from ..splits import make_splits
    from ..tasks import load_task, task_component

    def read() -> Any:
        key = "splits:" + stable_hash([cfg.to_dict()["task"], cfg.to_dict()["splits"]])
        if key not in seen:
            task = task_component(cfg.task)
            seen[key] = make_splits(load_task(task), cfg.splits, task.name)
        return seen[key]

    try:
        preflight(cfg, read, local_ref, quiet=True, dry=True, memo=seen)
    except MissingAsset as e:
        missing.setdefault(e.what, e)
        return e
    except W2SError as e:
        bad = _unreachable_hub_models([name for name, _, _ in model_roles(cfg, str)], unreachable)
        if any(repr(n.removeprefix("hf:").partition("@")[0]) in str(e) for n in bad):
            return W2SError(HUB_UNREACHABLE)  # (named with the others after the grid is expanded)
        return e
    return None
