"""What would stop a suite's cell before it runs: packages of models or task data that are not
installed, hub models that cannot be loaded from here. `suite.expand` asks this for every cell,
so that every problem is named, once, before any work starts."""
from __future__ import annotations

from pathlib import Path

from ..config import ExperimentConfig
from ..errors import MissingAsset, W2SError

HUB_UNREACHABLE = "hub model(s) could not be loaded"


def assets_error(cfg: ExperimentConfig, missing: dict[str, MissingAsset],
                 unreachable: dict[str, bool] | None = None) -> W2SError | None:
    """The error a cell's models or task data would stop it with (missing packages are also
    collected in `missing`, and hub ids that do not load in `unreachable`, to be named
    together). A task's data is not read here."""
    from ..assets import require

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
