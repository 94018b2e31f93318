"""Which stored runs a report reads, and how it names them: the newest finished run per
configuration, classification vs generative runs, and the task / model pair / method of a run."""
from __future__ import annotations

import json
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..config import IDENTITY_DEFAULTS
from ..methods import model_options
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


def is_icl_refine(run: dict[str, Any]) -> bool:
    return run["metrics"].get("method", {}).get("name") == "icl_refine"


def icl_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in runs if is_icl_refine(r)]




def classification_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Finished weak-to-strong classification runs (not `w2s generate` runs)."""
    return [r for r in runs if (r.get("config") or {}).get("kind") != "generative"
            and r.get("metrics") and "student_accuracy" in r["metrics"]]


def task_of(run: dict[str, Any]) -> str:
    """The task's short name: a data file's name, in-memory examples' label, else the task."""
    c = run["config"]["task"]
    if c["name"] == "file":
        return Path(c["options"]["path"]).name
    if c["name"] == "examples":  # w2sgen.run(examples=...): its label, else the content key
        return str(c["options"].get("label") or f"examples:{c['options'].get('key', '?')}")
    return short_name(c["name"])  # `task: data/my.csv` (a file or testbed folder) by its name


def short_name(name: str) -> str:
    """A model or task as a label: a local folder or data file by its last part (a full path is
    no label), a zoo name, task name or hub id as it is."""
    if (name.startswith(("/", "~", ".")) or "\\" in name or name.count("/") > 1
            or name.lower().endswith((".csv", ".jsonl", ".json")) or Path(name).is_dir()):
        return Path(name).name or name
    return name


def pair_of(run: dict[str, Any]) -> str:
    c = run["config"]
    return f"{short_name(c['weak_model'])} -> {short_name(c['strong_model'])} ({c['train']['mode']})"


def method_name(run: dict[str, Any], family: bool = False) -> str:
    """The method as reports show it: the name a suite gave the variant (config `labels`), else
    `method_key` (`method_of` with `family`)."""
    given = (run["config"].get("labels") or {}).get("methods")
    return str(given) if given else method_of(run) if family else method_key(run)


def method_of(run: dict[str, Any]) -> str:
    """`report.method_key` without the options that name models the method trains (a
    bootstrap's ladder, an ensemble's models: methods.Trains): they differ between model
    pairs, and a ranking across pairs compares the method, not these."""
    c = run["config"]
    m = c.get("method", {"name": "naive", "options": {}})
    pair_specific = model_options(m["name"])
    m = {"name": m["name"], "options": {k: v for k, v in m["options"].items() if k not in pair_specific}}
    return method_key({"config": {**c, "method": m}})


# Config keys that do not make two runs' results incomparable: what the run is called, where
# and how it ran, and the seed (what a median over seeds pools); and `eval`, how the run's own
# intervals were computed (a report recomputes them from the stored predictions).
NOT_A_SETTING = ("name", "store", "device", "seed", "eval", "labels")


def setting_of(run: dict[str, Any]) -> dict[str, Any]:
    """A run's configuration less `NOT_A_SETTING`: two runs with the same setting differ by seed
    alone, so a median over seeds may pool them. The training options added after schema 1 are
    dropped at the value that keeps the earlier behaviour, as the run's identity drops them
    (`config.IDENTITY_DEFAULTS`), so a store's older runs (which lack them) and newer ones agree."""
    d = {k: v for k, v in run["config"].items() if k not in NOT_A_SETTING}
    train = dict(d.get("train") or {})
    for key, legacy in IDENTITY_DEFAULTS["train"].items():
        if key in train and train[key] == legacy:
            train.pop(key)
    train.pop("gradient_checkpointing", None)  # recomputes the same numbers: how, not what
    d["train"] = train
    return d


def unit_key(run: dict[str, Any], with_seed: bool) -> str:
    """What a run's weak supervisor and ceiling depend on (task, models, splits, training, and
    the seed when `with_seed`): runs with the same key differ only in how the student is made."""
    d = {k: v for k, v in setting_of(run).items() if k not in NOT_SHARED}
    if with_seed:
        d["seed"] = run["config"].get("seed")
    return stable_hash(d)


def seed_units(runs: list[dict[str, Any]], keep: Callable[[dict[str, Any]], bool]
               ) -> dict[tuple[str, str, str], dict[str, dict[Any, dict[str, Any]]]]:
    """The classification runs `keep` accepts (diagnostics never), by (task, model pair,
    `unit_key` without the seed), then by `method_of`, then by seed: within one unit, two
    methods' runs of the same seed share their weak supervisor and ceiling, so they pair (a
    baseline run pairs only with runs of its own settings). The last run of a seed in `runs` wins."""
    units: dict[tuple[str, str, str], dict[str, dict[Any, dict[str, Any]]]] = {}
    for r in classification_runs(runs):
        if is_diagnostic(r) or not keep(r):
            continue
        unit = (task_of(r), pair_of(r), unit_key(r, False))
        units.setdefault(unit, {}).setdefault(method_of(r), {})[r["config"]["seed"]] = r
    return units


def group_key(run: dict[str, Any]) -> tuple[str, str, str, str]:
    """(task, model pair, method, setting hash): the runs of one row of a table of medians over
    seeds, which differ by seed alone (`setting_of`)."""
    return task_of(run), pair_of(run), method_key(run), stable_hash(setting_of(run))


# What a row's task, pair and method already say: left out of its setting label.
_NAMED = ("task.name", "weak_model", "strong_model", "train.mode", "method.", "loss.")


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    return out


def setting_labels(groups: dict[tuple[str, str, str, str], list[dict[str, Any]]]
                   ) -> dict[tuple[str, str, str, str], str]:
    """For each group of `group_key`, the settings that tell it apart from the other groups of
    the same task, pair and method ('train.epochs=20, splits.transfer=400'); '' where there is
    no other (so a store with one setting per method gets no labels)."""
    flats = {key: _flat(setting_of(rs[0])) for key, rs in groups.items()}
    buckets: dict[tuple[str, str, str], list[tuple[str, str, str, str]]] = {}
    for key in groups:
        buckets.setdefault(key[:3], []).append(key)
    labels = {}
    for keys in buckets.values():
        names = sorted({n for k in keys for n in flats[k]})
        varying = [n for n in names if not n.startswith(_NAMED)
                   and len({flats[k].get(n, "-") for k in keys}) > 1]
        for k in keys:
            labels[k] = ", ".join(f"{n}={flats[k].get(n, '-')}" for n in varying)
    return labels


def row_names(rows: list[dict[str, Any]]) -> list[str]:
    """The rows' method names, with their model pair where the rows hold several pairs and with
    their setting label where they have one (figures label rows by these)."""
    pairs = len({r.get("pair") for r in rows}) > 1
    return [r.get("method_label", r["method"]) + (f" | {r['pair']}" if pairs else "")
            + (f" [{r['setting']}]" if r.get("setting") else "") for r in rows]


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
