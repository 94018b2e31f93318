"""Experiment trackers (Weights & Biases, MLflow): a run's per-epoch curves as its training steps
finish, then its summary metrics, its result table and its figures and files.

A tracker acts only when it is configured AND its package is installed (`pip install
'w2sgen[wandb]'` or `'w2sgen[mlflow]'`); nothing is imported otherwise. The run store stays the
record: a tracker that fails (no network, bad credentials) prints one warning and the run goes on.

  wandb   configured by W2S_WANDB_PROJECT (and optionally W2S_WANDB_ENTITY); W&B's own settings
          apply (WANDB_MODE=offline writes under WANDB_DIR, to `wandb sync` later)
  mlflow  configured by MLFLOW_TRACKING_URI or W2S_MLFLOW_EXPERIMENT (the experiment, default
          `w2sgen`); MLflow's own settings apply (a file store needs MLFLOW_ALLOW_FILE_STORE=true
          from MLflow 3 on; sqlite:///mlflow.db needs none)
  W2S_LOGGERS=none turns every tracker off; W2S_LOGGERS=mlflow,wandb chooses among them.

What each run sends: its config as flat dotted parameters; for every training step (weak
supervisor, ceiling, student, a method's extra models) the training loss and test accuracy after
every epoch, against that step's own epoch axis, as each epoch ends (a step found in the cache:
its stored curves at once); at the end every
scalar metric (estimates as value/low/high), a table of the three models' accuracies with their
intervals and the PGR, the figures the caller drew and the run's config.yaml and metrics.json.
Runs of one sweep share a group: the W&B group, the MLflow tag `w2s.group`. `w2s report --to`
sends the runs of a store after the fact (loggers.backfill).
"""
from __future__ import annotations

import importlib.util
import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol

from .errors import W2SError
from .registry import Registry

Table = tuple[list[str], list[list[Any]]]  # header, rows


@dataclass
class RunInfo:
    run_id: int
    name: str
    config: dict[str, Any]
    config_hash: str
    group: Optional[str] = None  # the sweep (suite) the run belongs to
    artifacts: Optional[Path] = None  # the run's artifact folder (config.yaml, metrics.json, ...)


class Session(Protocol):
    """One run in one tracker."""

    def curves(self, step: str, series: dict[str, Sequence[float]], first_epoch: int = 1) -> None: ...

    def finish(self, metrics: dict[str, float], tables: dict[str, Table], files: list[Path]) -> None: ...

    def abort(self) -> None: ...


@dataclass
class Logger:
    package: str                               # import name; the logger is skipped without it
    configured: Callable[[], bool]             # from the environment
    start: Callable[[RunInfo], Session]
    setting: str                               # what configures it, for messages


LOGGERS: Registry[Logger] = Registry("logger")


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def selected() -> list[tuple[str, Logger]]:
    """The loggers that are configured (and not turned off by W2S_LOGGERS)."""
    choice = os.environ.get("W2S_LOGGERS")
    if choice is not None and choice.strip().lower() in ("", "none", "off", "0", "false"):
        return []
    wanted = None if choice is None else {c.strip() for c in choice.split(",") if c.strip()}
    unknown = sorted((wanted or set()) - set(LOGGERS))
    if unknown:
        raise W2SError(f"W2S_LOGGERS names unknown logger(s) {', '.join(map(repr, unknown))}; "
                       f"use some of {', '.join(LOGGERS)}, or none")
    return [(name, lg) for name, lg in LOGGERS.items()
            if (wanted is None or name in wanted) and lg.configured()]


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


_warned: set[str] = set()


def _warn(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        print(f"warning: {message}", file=sys.stderr)


def _failed(name: str, run_id: int, e: Exception) -> None:
    text = str(e).strip().splitlines()
    _warn(f"failed:{name}:{run_id}", f"logging run {run_id} to {name} failed ({type(e).__name__}: "
          f"{text[0][:200] if text else ''}); the run is stored as usual")


class Live:
    """The tracker sessions of one run. Every call is guarded: a tracker that fails is warned
    about once and dropped, never failing the run."""

    def __init__(self, run_id: int, sessions: list[tuple[str, Session]]):
        self.run_id, self.sessions = run_id, sessions

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.sessions]

    def _each(self, what: Callable[[Session], None]) -> None:
        for name, session in list(self.sessions):
            try:
                what(session)
            except Exception as e:  # noqa: BLE001 -- a tracker must never fail a run
                self.sessions.remove((name, session))
                _failed(name, self.run_id, e)
                try:
                    session.abort()
                except Exception:  # noqa: BLE001, S110 -- already warned
                    pass

    def curves(self, step: str, loss: Iterable[Any], accuracy: Iterable[Any]) -> None:
        """A training step's per-epoch training loss and test accuracy."""
        series: dict[str, Sequence[float]] = {"loss": [float(x) for x in loss],
                                              "test_accuracy": [float(x) for x in accuracy]}
        self._each(lambda s: s.curves(step, series))

    def epoch(self, step: str, epoch: int, loss: float, accuracy: float) -> None:
        """One epoch of a training step, as it ends (`progress.epochs_to`)."""
        series: dict[str, Sequence[float]] = {
            k: [float(v)] for k, v in (("loss", loss), ("test_accuracy", accuracy)) if math.isfinite(v)}
        self._each(lambda s: s.curves(step, series, epoch))

    def finish(self, metrics: dict[str, Any], files: Sequence[Path] = ()) -> list[str]:
        """Summary metrics, the result table, the files; the sessions end. Returns the names
        of the trackers that took the run."""
        from .endpoint import redact_tree

        metrics = redact_tree(metrics)
        tables = {"results": result_table(metrics)} if "student_accuracy" in metrics else {}
        paths = [Path(f) for f in files if Path(f).is_file()]
        self._each(lambda s: s.finish(flat_metrics(metrics), tables, paths))
        names = self.names
        self.sessions = []
        return names

    def abort(self) -> None:
        for _, s in self.sessions:
            try:
                s.abort()
            except Exception:  # noqa: BLE001, S110 -- a failed run is failing already
                pass
        self.sessions = []


def start(run_id: int, cfg: Any, store: Any = None, only: Optional[str] = None) -> Live:
    """Open a session in every configured tracker (or in tracker `only`, configured or not:
    `w2s report --to`) for run `run_id` of `cfg`."""
    try:
        todo = selected() if only is None else [(only, LOGGERS.get(only))]
    except W2SError:  # W2S_LOGGERS naming no logger: refused before the run started (pipeline.run)
        return Live(run_id, [])
    if not todo:
        return Live(run_id, [])
    from .endpoint import redact_tree

    config = redact_tree(cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg))
    labels = config.get("labels") or {}
    info = RunInfo(run_id, str(config.get("name", "")), config,
                   cfg.hash() if hasattr(cfg, "hash") else "",
                   labels.get("suite"),
                   Path(store.root) / "artifacts" / str(run_id) if store is not None else None)
    sessions = []
    for name, lg in todo:
        if not installed(lg.package):
            _warn(f"missing:{name}", f"{lg.setting} is set but {lg.package} is not installed; "
                  f"`pip install 'w2sgen[{lg.package}]'` to log runs there (not logged)")
            continue
        try:
            sessions.append((name, lg.start(info)))
        except Exception as e:  # noqa: BLE001 -- a tracker must never fail a run
            _failed(name, run_id, e)
    return Live(run_id, sessions)


def log_finished(run_id: int, cfg: Any, metrics: dict[str, Any], store: Any = None,
                 files: Sequence[Path] = (), only: Optional[str] = None) -> list[str]:
    """A finished run sent whole (its stored curves, metrics, table and files): `w2s report --to`
    and callers that did not log as the run went. Returns the trackers that took it."""
    live = start(run_id, cfg, store, only)
    for name, c in (metrics.get("curves") or {}).items():
        live.curves(name, c.get("loss") or [], c.get("test_accuracy") or [])
    art = Path(store.root) / "artifacts" / str(run_id) if store is not None else None
    return live.finish(metrics, [*files, *run_files(art)])


@dataclass
class Stored:
    """A stored run's config (its row's `config` and `config_hash`), read as `start` reads a
    config."""

    config: dict[str, Any]
    config_hash: str

    def to_dict(self) -> dict[str, Any]:
        return self.config

    def hash(self) -> str:
        return self.config_hash


def backfill(runs: list[dict[str, Any]], store: Any, tracker: str,
             figures: Callable[[dict[str, Any]], list[Path]]) -> int:
    """Send stored runs (rows of the store) to `tracker`, each with the figures `figures` draws
    for it; returns how many it took (a failure is a warning, as during a run)."""
    lg = LOGGERS.get(tracker)
    if not installed(lg.package):
        raise W2SError(f"{tracker} is not installed; `pip install 'w2sgen[{tracker}]'` and "
                       f"run again (configured by {lg.setting})")
    sent = 0
    for r in runs:
        if r.get("metrics"):
            sent += bool(log_finished(r["id"], Stored(r["config"], r["config_hash"]), r["metrics"],
                                      store, figures(r), only=tracker))
    return sent


def run_files(artifacts: Optional[Path]) -> list[Path]:
    """The files of a run folder a tracker keeps: its config and metrics."""
    if artifacts is None:
        return []
    return [artifacts / n for n in ("config.yaml", "metrics.json") if (artifacts / n).is_file()]


# ------------------------------------------------------------------ flattening


def flat_params(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted keys -> string values (lists as their text)."""
    out: dict[str, str] = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_params(v, f"{key}."))
        else:
            out[key] = str(v)
    return out


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def flat_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Every finite scalar: estimates {value, low, high} -> name, name_low, name_high; nested
    mappings -> dotted names; booleans -> 0/1; lists (curves), text and NaN are left out."""
    out: dict[str, float] = {}
    for k, v in metrics.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and "value" in v and ("low" in v or "high" in v):
            for part, suffix in (("value", ""), ("low", "_low"), ("high", "_high")):
                if _finite(v.get(part)) and not isinstance(v.get(part), bool):
                    out[key + suffix] = float(v[part])
        elif isinstance(v, dict):
            out.update(flat_metrics(v, f"{key}."))
        elif _finite(v):
            out[key] = float(v)
    return out


def result_table(metrics: dict[str, Any]) -> Table:
    """Test accuracy of the weak supervisor, the student and the ceiling, and the PGR, each with
    its interval (None where undefined)."""
    rows = []
    for name, key in (("weak", "weak_accuracy"), ("student", "student_accuracy"),
                      ("ceiling", "ceiling_accuracy"), ("PGR", "pgr_accuracy")):
        e = metrics.get(key) or {}
        rows.append([name, e.get("value"), e.get("low"), e.get("high")])
    return ["measure", "value", "low", "high"], rows


# ------------------------------------------------------------------ the trackers


def _wandb_configured() -> bool:
    return bool(_env("W2S_WANDB_PROJECT"))


class WandbSession:
    def __init__(self, run: RunInfo):
        import wandb

        self.wandb = wandb
        self.run = wandb.init(project=_env("W2S_WANDB_PROJECT") or "w2sgen",
                              entity=_env("W2S_WANDB_ENTITY") or None, group=run.group,
                              name=f"w2s-{run.run_id}: {run.name}"[:128], job_type="w2s-run",
                              config={**flat_params(run.config), "w2s.run_id": run.run_id,
                                      "w2s.config_hash": run.config_hash},
                              reinit="create_new")
        self.steps: set[str] = set()

    def curves(self, step: str, series: dict[str, Sequence[float]], first_epoch: int = 1) -> None:
        # each training step on its own epoch axis (W&B's global step only ever increases)
        if step not in self.steps:
            self.steps.add(step)
            self.run.define_metric(f"{step}/epoch", hidden=True)
            self.run.define_metric(f"{step}/*", step_metric=f"{step}/epoch")
        n = max(map(len, series.values()), default=0)
        for e in range(n):
            self.run.log({f"{step}/epoch": first_epoch + e,
                          **{f"{step}/{k}": v[e] for k, v in series.items() if e < len(v)}})

    def finish(self, metrics: dict[str, float], tables: dict[str, Table], files: list[Path]) -> None:
        self.run.summary.update(metrics)
        logged: dict[str, Any] = {name: self.wandb.Table(columns=list[Any](head), data=rows)
                                  for name, (head, rows) in tables.items()}
        for f in files:
            if f.suffix == ".png":
                logged[f"figures/{f.stem}"] = self.wandb.Image(str(f))
            else:
                self.run.save(str(f), base_path=str(f.parent), policy="now")
        if logged:
            self.run.log(logged)
        self.run.finish()

    def abort(self) -> None:
        self.run.finish(exit_code=1)


def _mlflow_configured() -> bool:
    return bool(_env("MLFLOW_TRACKING_URI") or _env("W2S_MLFLOW_EXPERIMENT"))


class MlflowSession:
    def __init__(self, run: RunInfo):
        from mlflow import MlflowClient

        self.client = MlflowClient()
        name = _env("W2S_MLFLOW_EXPERIMENT") or "w2sgen"
        exp = self.client.get_experiment_by_name(name)
        exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(name)
        tags = {"w2s.run_id": str(run.run_id), "w2s.config_hash": run.config_hash,
                "w2s.name": run.name[:5000], **({"w2s.group": run.group} if run.group else {})}
        self.id = self.client.create_run(exp_id, run_name=f"w2s-{run.run_id}", tags=tags).info.run_id
        from mlflow.entities import Param

        params = [Param(k, v[:500]) for k, v in flat_params(run.config).items()]
        for i in range(0, len(params), 100):
            self.client.log_batch(self.id, params=params[i:i + 100])

    def curves(self, step: str, series: dict[str, Sequence[float]], first_epoch: int = 1) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.id, metrics=[Metric(f"{step}/{k}", float(x), now, first_epoch + e)
                                                for k, v in series.items() for e, x in enumerate(v)])

    def finish(self, metrics: dict[str, float], tables: dict[str, Table], files: list[Path]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, v, now, 0) for k, v in metrics.items()]
        for i in range(0, len(batch), 500):
            self.client.log_batch(self.id, metrics=batch[i:i + 500])
        for name, (head, rows) in tables.items():
            self.client.log_dict(self.id, {"columns": head, "data": rows}, f"{name}.json")
        for f in files:
            self.client.log_artifact(self.id, str(f), "figures" if f.suffix in (".png", ".svg") else None)
        self.client.set_terminated(self.id, "FINISHED")

    def abort(self) -> None:
        self.client.set_terminated(self.id, "FAILED")


LOGGERS.add("wandb", Logger("wandb", _wandb_configured, WandbSession, "W2S_WANDB_PROJECT"))
LOGGERS.add("mlflow", Logger("mlflow", _mlflow_configured, MlflowSession,
                             "MLFLOW_TRACKING_URI (or W2S_MLFLOW_EXPERIMENT)"))
