"""`w2s store migrate`: re-key a run store once to today's canonical run identities.

Run identities hash component options canonically (options.canonical: types conformed from the
signature, defaults dropped). Runs recorded before that with another spelling of the same choice
(`loss: {name: logconf, alpha_max: 0.75}`, `alpha_max: 1`) are stored under another hash, and
their cached training steps under another key (a step's key holds its loss). Migrating:

- each classification run's row gets the hash its recorded config has today, and its recorded
  task, method and loss the canonical options (runs.sqlite and artifacts/<id>/config.yaml);
  metrics, timings and predictions are not touched;
- for a run whose loss was spelled otherwise, its training steps are re-keyed: the pipeline is
  replayed against the store with nothing allowed to compute, and each step found under the old
  spelling's key is moved to the canonical key. A step the store does not hold is left for the
  next run to compute; nothing is recomputed here, and no run is recorded.

Migrating twice changes nothing. `w2s generate` runs keep their keys (their options are hashed as
written, as before).
"""
from __future__ import annotations

import inspect
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import ExperimentConfig, from_dict
from .endpoint import redact_tree
from .errors import W2SError
from .methods import METHODS
from .options import parameters, same_value
from .runs import CLASSIFICATION, run_kind
from .spec import Component
from .store import KEY_ARRAY, RunConfig, Store, atomic_write
from .validate import canonical


@dataclass
class Migration:
    """What a migration did: run ids re-keyed, cache entries moved, and what it left, why."""

    rehashed: list[int] = field(default_factory=list)
    moved: int = 0
    kept: list[str] = field(default_factory=list)  # one line per run or step left as it was

    def summary(self) -> str:
        return (f"{len(self.rehashed)} run(s) re-keyed, {self.moved} cached step(s) moved to "
                f"their canonical keys" + "".join(f"\n  kept: {k}" for k in self.kept))


def config_of(record: dict[str, Any]) -> ExperimentConfig:
    """The config a run recorded (`to_dict` of its resolved config), built again with today's
    canonical component options and model names. Models are not checked (they may be gone: the record stays)."""
    raw = {k: v for k, v in record.items() if k != "kind"}
    for key in ("task", "method", "loss"):
        comp = raw.get(key)
        if isinstance(comp, dict) and "options" in comp:
            raw[key] = {"name": comp["name"], **(comp.get("options") or {})}
    return canonical(from_dict(ExperimentConfig, raw, ""))


class _NotCached(Exception):
    """A replayed step the store does not hold: the replay stops, nothing is computed."""


class _Rekeying(Store):
    """The store as a replayed run sees it: a training step whose key holds the canonical loss
    is moved there from the old spelling's key when only that one exists; every other step must
    be a hit; nothing is recorded."""

    def __init__(self, root: Path, spelled: dict[str, Any], canonical: dict[str, Any]):
        super().__init__(root)
        self.spelled, self.canonical, self.moved = spelled, canonical, 0

    def cached(self, step: str, key: dict[str, Any],
               compute: Callable[[], dict[str, np.ndarray]]) -> tuple[dict[str, np.ndarray], bool]:
        path = self.cache_path(step, key)
        if step == "train" and key.get("loss") == self.canonical and not path.is_file():
            old = self.cache_path(step, {**key, "loss": self.spelled})
            if old.is_file() and _move(old, path):
                self.moved += 1

        def refuse() -> dict[str, np.ndarray]:
            raise _NotCached(step)

        return super().cached(step, key, refuse)

    def start_run(self, cfg: RunConfig, exclusive: bool = False) -> int:
        return 0

    def finish_run(self, run_id: int, metrics: dict, timings: dict) -> None:
        pass

    def end_run(self, run_id: int, status: str, error: str, timings: dict) -> None:
        pass

    def save_arrays(self, run_id: int, name: str, arrays: dict[str, np.ndarray]) -> Path:
        return self.root / "artifacts" / "0" / name


def _move(old: Path, new: Path) -> bool:
    """A cache entry's arrays re-tagged with their new key's name, written atomically, the old
    file removed. A damaged old entry is left (a miss either way)."""
    try:
        with np.load(old, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != KEY_ARRAY}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return False
    payload: dict[str, Any] = {**arrays, KEY_ARRAY: np.array(new.stem)}
    atomic_write(new, lambda f: np.savez(f, **payload))
    old.unlink(missing_ok=True)
    return True


def migrate(root: str | Path) -> Migration:
    """Re-key the store at `root` (see the module's docstring)."""
    root = Path(root)
    if not (root / "runs.sqlite").is_file():
        raise W2SError(f"no run store at {str(root)!r} (no runs.sqlite); pass the folder a "
                       "`w2s run` wrote (--store PATH)")
    store = Store(root)
    out = Migration()
    for row in store.runs():
        if run_kind(row) == CLASSIFICATION:
            _migrate_run(store, row, out)
    store.mark_keys_current()
    return out


def _migrate_run(store: Store, row: dict[str, Any], out: Migration) -> None:
    """One classification run: its row re-keyed, and its training steps when its loss was
    spelled otherwise (replayed against the store, nothing computed)."""
    from .pipeline import run as run_pipeline

    try:
        cfg = config_of(row["config"])
        new_hash = cfg.hash(check=False)
    except W2SError as e:
        out.kept.append(f"run {row['id']}: its config does not build today ({e})")
        return
    record = dict(row["config"])
    spelled_loss, spelled_method = record.get("loss") or {}, record.get("method") or {}
    for key, comp in (("task", cfg.task), ("method", cfg.method), ("loss", cfg.loss)):
        record[key] = asdict(comp)
    record = redact_tree(record)
    if new_hash != row["config_hash"] or not same_value(record, row["config"]):
        store.rekey_run(row["id"], new_hash, record)
        out.rehashed.append(row["id"])
    if same_value(spelled_loss, asdict(cfg.loss)) or row["status"] != "done":
        return
    if not same_arguments(cfg.method, spelled_method.get("options") or {}):
        # an int option now a float reaches the method as another value: steps it keys itself
        # may key otherwise, and a replay could compute; the student is left to the next run
        out.kept.append(f"run {row['id']}: its method's options changed type "
                        f"({spelled_method.get('options')} -> {cfg.method.options}); its cached "
                        "steps keep their keys")
        return
    replay = _Rekeying(store.root, spelled_loss, asdict(cfg.loss))
    try:
        run_pipeline(cfg, replay, quiet=True, log=False)
    except _NotCached as e:
        out.kept.append(f"run {row['id']}: the store holds no {e} step it needs; the next run "
                        "of its config computes it")
    except W2SError as e:
        out.kept.append(f"run {row['id']}: its cached steps keep their keys ({e})")
    out.moved += replay.moved


def same_arguments(method: Component, spelled: dict[str, Any]) -> bool:
    """Is the method called with the same arguments under its canonical options as under
    `spelled`? Dropped defaults change nothing; an int made a float does."""
    params = parameters(METHODS.get(method.name))

    def called(opts: dict[str, Any]) -> dict[str, Any]:
        return {k: opts.get(k, p.default) for k, p in params.items()
                if k in opts or p.default is not inspect.Parameter.empty}

    return same_value(called(spelled), called(method.options))

