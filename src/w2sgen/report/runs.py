"""Which stored runs a report reads, and how it names them: the newest finished run per
configuration, classification vs generative runs, and the task / model pair / method of a run."""
from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..metrics import Estimate
from ..runs import NOT_SHARED
from ..spec import stable_hash
from ..store import Store

PREDICTION_ARRAYS = ("ids", "labels", "weak", "student", "ceiling")  # of predictions.npz


def latest_done(store: Store) -> list[dict[str, Any]]:
    """The newest finished run of each distinct configuration."""
    latest: dict[str, dict] = {}
    for r in store.runs("done"):
        latest[r["config_hash"]] = r
    return sorted(latest.values(), key=lambda r: r["id"])


def is_generative(run: dict[str, Any]) -> bool:
    """A `w2s generate` run (generative/report.py formats those)."""
    return (run.get("config") or {}).get("kind") == "generative"




def component_text(comp: dict) -> str:
    opts = ",".join(f"{k}={v}" for k, v in sorted(comp["options"].items()))
    return comp["name"] + (f"({opts})" if opts else "")


def estimate(d: dict) -> Estimate:
    return Estimate(d["value"], d["low"], d["high"])


def short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, list) and len(v) == 3 and all(isinstance(x, float) for x in v):
        return f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]"  # estimate with its interval
    if isinstance(v, list) and v and isinstance(v[0], dict):
        return "[" + "; ".join(", ".join(f"{k}={short(x)}" for k, x in d.items()) for d in v) + "]"
    return str(v)


def method_key(run: dict[str, Any]) -> str:
    c = run["config"]
    method = component_text(c.get("method", {"name": "naive", "options": {}}))
    loss = component_text(c["loss"])
    return method if loss == "xent" else f"{method} + {loss}" if method != "naive" else f"naive + {loss}"


def icl_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in runs if r["metrics"].get("method", {}).get("name") == "icl_refine"]


# Method options that name models and so differ between model pairs (a bootstrap ladder, an
# ensemble's models): a ranking across pairs compares the method, not these.
PAIR_SPECIFIC = ("ladder", "models")


def classification_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Finished weak-to-strong classification runs (not `w2s generate` runs)."""
    return [r for r in runs if (r.get("config") or {}).get("kind") != "generative"
            and r.get("metrics") and "student_accuracy" in r["metrics"]]


def task_of(run: dict[str, Any]) -> str:
    c = run["config"]["task"]
    return Path(c["options"]["path"]).name if c["name"] == "file" else c["name"]


def pair_of(run: dict[str, Any]) -> str:
    c = run["config"]
    return f"{c['weak_model']} -> {c['strong_model']} ({c['train']['mode']})"


def method_of(run: dict[str, Any]) -> str:
    """`report.method_key` without the pair-specific options (a bootstrap's ladder)."""
    c = run["config"]
    m = c.get("method", {"name": "naive", "options": {}})
    m = {"name": m["name"], "options": {k: v for k, v in m["options"].items() if k not in PAIR_SPECIFIC}}
    return method_key({"config": {**c, "method": m}})


def unit_key(run: dict[str, Any], with_seed: bool) -> str:
    """What a run's weak supervisor and ceiling depend on (task, models, splits, training, and
    the seed when `with_seed`): runs with the same key differ only in how the student is made."""
    d = {k: v for k, v in run["config"].items() if k not in NOT_SHARED}
    if not with_seed:
        d.pop("seed", None)
    return stable_hash(d)


def is_diagnostic(run: dict[str, Any]) -> bool:
    return run["config"].get("method", {}).get("name") == "gt_early_stop"


# Each store object's predictions read so far: run id -> (the file's size and mtime, its arrays).
# A report asks for a run's predictions from several tables and figures; each file is read once
# per store object (one per report command) and again only if it changed.
_PREDICTIONS: weakref.WeakKeyDictionary[Store, dict[int, tuple[Any, Optional[dict[str, np.ndarray]]]]] = \
    weakref.WeakKeyDictionary()


def run_predictions(store: Store, run_id: int) -> Optional[dict[str, np.ndarray]]:
    """A run's stored test predictions (read-only arrays), or None when it has none or the file
    is damaged (the store warns once); read from the file once per store object."""
    path = store.root / "artifacts" / str(run_id) / "predictions.npz"
    try:
        st = path.stat()
        stamp: Any = (st.st_size, st.st_mtime_ns)
    except OSError:
        stamp = None
    seen = _PREDICTIONS.setdefault(store, {})
    if run_id in seen and seen[run_id][0] == stamp and stamp is not None:
        return seen[run_id][1]
    arrays = store.load_arrays(run_id, "predictions.npz", PREDICTION_ARRAYS)
    for a in (arrays or {}).values():
        a.flags.writeable = False  # shared by every table of the report
    seen[run_id] = (stamp, arrays)
    return arrays


def shared_predictions(store: Store, runs: list[dict[str, Any]]) -> Optional[list[dict[str, np.ndarray]]]:
    """Each run's stored test predictions, or None when a run has none (older stores) or the runs
    were not scored on one test set (so they cannot share a bootstrap resample)."""
    preds = [run_predictions(store, r["id"]) for r in runs]
    if not preds or any(p is None for p in preds):
        return None
    out = [p for p in preds if p is not None]
    return out if len({p["ids"].tobytes() for p in out}) == 1 else None
