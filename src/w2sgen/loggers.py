"""Optional logging of finished runs to experiment trackers (Weights & Biases, MLflow).

A logger acts only when it is configured AND its package is installed; nothing is logged, and
nothing is imported, otherwise. The run store stays the record: a tracker that fails (no
network, bad credentials) prints one warning and the run is still `done`.

  wandb   configured by W2S_WANDB_PROJECT (and optionally W2S_WANDB_ENTITY); `pip install wandb`
  mlflow  configured by MLFLOW_TRACKING_URI (or W2S_MLFLOW_EXPERIMENT, the experiment name,
          default `w2sgen`; without a URI MLflow uses ./mlruns); `pip install mlflow`
  W2S_LOGGERS=none turns every logger off; W2S_LOGGERS=mlflow,wandb chooses among them.

Each logger receives the run's id, its config (as stored), its metrics and timings; it records
the config as flat dotted parameters and every scalar metric (estimates as value/low/high).
`pipeline.run` calls `log_finished` right after the run is stored as finished.
"""
from __future__ import annotations

import importlib.util
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import W2SError
from .registry import Registry


@dataclass
class Finished:
    run_id: int
    name: str
    config: dict[str, Any]
    config_hash: str
    metrics: dict[str, Any]
    timings: dict[str, Any]
    artifacts: Path | None = None  # the run's artifact folder (config.yaml, metrics.json, ...)


@dataclass
class Logger:
    package: str                               # import name; the logger is skipped without it
    configured: Callable[[], bool]             # from the environment
    log: Callable[[Finished], None]
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


def log_finished(run_id: int, cfg: Any, metrics: dict[str, Any], timings: dict[str, Any],
                 store: Any = None) -> list[str]:
    """Send a finished run to every configured tracker whose package is installed. Returns the
    names of the loggers that logged it; never raises (a tracker's failure is a warning)."""
    try:
        todo = selected()
    except W2SError:  # refused before the run started (pipeline.run); never after it finished
        return []
    if not todo:
        return []
    from .endpoint import redact_tree

    config = redact_tree(cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg))
    metrics = redact_tree(metrics)
    run = Finished(run_id, str(config.get("name", "")), config,
                   cfg.hash() if hasattr(cfg, "hash") else "", metrics, timings,
                   Path(store.root) / "artifacts" / str(run_id) if store is not None else None)
    done = []
    for name, lg in todo:
        if not installed(lg.package):
            _warn(f"missing:{name}", f"{lg.setting} is set but {lg.package} is not installed; "
                  f"`pip install {lg.package}` to log runs there (not logged)")
            continue
        try:
            lg.log(run)
            done.append(name)
        except Exception as e:  # noqa: BLE001 -- a tracker must never fail a finished run
            text = str(e).strip().splitlines()
            _warn(f"failed:{name}:{run_id}", f"logging run {run_id} to {name} failed "
                  f"({type(e).__name__}: {text[0][:200] if text else ''}); the run is stored as usual")
    return done


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


# ------------------------------------------------------------------ the trackers


def _wandb_configured() -> bool:
    return bool(_env("W2S_WANDB_PROJECT"))


def _wandb_log(run: Finished) -> None:
    import wandb

    handle = wandb.init(project=_env("W2S_WANDB_PROJECT"), entity=_env("W2S_WANDB_ENTITY") or None,
                        name=f"w2s-{run.run_id}: {run.name}"[:128], job_type="w2s-run",
                        config={**flat_params(run.config), "w2s.run_id": run.run_id,
                                "w2s.config_hash": run.config_hash})
    try:
        handle.summary.update(flat_metrics(run.metrics))
    finally:
        handle.finish()


def _mlflow_configured() -> bool:
    return bool(_env("MLFLOW_TRACKING_URI") or _env("W2S_MLFLOW_EXPERIMENT"))


def _mlflow_log(run: Finished) -> None:
    import mlflow

    mlflow.set_experiment(_env("W2S_MLFLOW_EXPERIMENT") or "w2sgen")
    with mlflow.start_run(run_name=f"w2s-{run.run_id}"):
        params = flat_params(run.config)
        mlflow.log_params({k: v[:500] for k, v in params.items()})
        mlflow.log_metrics(flat_metrics(run.metrics))
        mlflow.set_tags({"w2s.run_id": str(run.run_id), "w2s.config_hash": run.config_hash,
                         "w2s.name": run.name[:5000]})
        if run.artifacts is not None:
            for name in ("config.yaml", "metrics.json"):
                if (run.artifacts / name).is_file():
                    mlflow.log_artifact(str(run.artifacts / name))


LOGGERS.add("wandb", Logger("wandb", _wandb_configured, _wandb_log, "W2S_WANDB_PROJECT"))
LOGGERS.add("mlflow", Logger("mlflow", _mlflow_configured, _mlflow_log,
                             "MLFLOW_TRACKING_URI (or W2S_MLFLOW_EXPERIMENT)"))
