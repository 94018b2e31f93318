"""The weak-to-strong protocol of Burns et al., top to bottom.

  data      task -> examples with ids -> weak_train / transfer / test
  step 1    weak supervisor: weak model trained on weak_train ground truth
  step 2    weak labels: its soft predictions on transfer (kept with their ids)
  step 3    strong ceiling: strong model trained on transfer ground truth
  step 4    weak-to-strong student: strong model trained on the weak labels
  step 5    evaluation on test: accuracy, ROC-AUC, PGR, agreement, with bootstrap intervals

Every step is cached in the store under a hash of everything it depends on (model weights'
identity, examples, settings, seed), so a rerun, or a change to the student's settings alone,
re-uses the features, the weak labels and the ceiling.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from . import loggers
from .config import Component, ExperimentConfig
from .context import Context, assert_aligned, ids_of
from .methods import METHODS, Setting, check_method
from .metrics import evaluate, mean_ci
from .models import resolve
from .preflight import Roles, preflight
from .runs import recorded
from .splits import Part, Splits, labels, make_splits
from .store import Store
from .tasks import load_task, task_component
from .validate import canonical, weak_inherited_note

GROUND_TRUTH_LOSS = Component("xent")


def run(cfg: ExperimentConfig, store: Optional[Store] = None, quiet: bool = False,
        exclusive: bool = False, log: bool = True,
        figures: Optional[Callable[[dict[str, Any]], list[Path]]] = None) -> dict[str, Any]:
    """One experiment, recorded as a run in the store. exclusive (sweeps): raise
    store.RunTaken instead of starting when this config already has a finished run or one in
    progress in another process. log: send the run to the configured trackers (loggers.py) as it
    goes. figures: draws the finished run's figures (given its stored row: id, config, metrics),
    which the trackers then receive with the run's files."""
    if not quiet and (note := weak_inherited_note(cfg)):
        print(note, file=sys.stderr)
    # components canonical (a config made in code), precision auto -> what this machine computes
    # fast, before recording
    cfg = canonical(cfg).resolved()
    loggers.selected()  # W2S_LOGGERS naming no logger: one line now, not a silent skip after the run
    check_method(cfg)  # as the config builder does: for a config made in code too
    store = store or Store(cfg.store)
    ctx, roles, splits = prepare(cfg, store, quiet)
    with recorded(store, cfg, ctx.steps, exclusive) as run_id, tracked(ctx, run_id, log):
        done = protocol(ctx, roles, splits)
        record(store, run_id, done)
    metrics = done.metrics
    # After the run is final: an interrupt while logging cannot mark a finished run interrupted.
    row = {"id": run_id, "config": cfg.to_dict(), "metrics": metrics}
    try:
        drawn = figures(row) if figures is not None else []
    except BaseException:
        ctx.live.abort()
        raise
    ctx.live.finish(metrics, [*drawn, *loggers.run_files(Path(store.root) / "artifacts" / str(run_id))])
    return {"run_id": run_id, "metrics": metrics, "timings": ctx.steps.timings, "config": cfg,
            "figures": drawn}


@dataclass
class Computed:
    """What a run computed, before it is recorded: its metrics, step times and test
    predictions. A cluster's worker hands this back to the sweep's driver, which records it."""

    metrics: dict[str, Any]
    timings: dict[str, Any]
    predictions: dict[str, np.ndarray]


def compute(cfg: ExperimentConfig, cache: Store, quiet: bool = True) -> Computed:
    """One experiment computed and not recorded nor tracked: `cache` is only read and written
    for cached steps (a cache-only Store on a cluster's worker); `record` stores the result."""
    cfg = canonical(cfg).resolved()
    check_method(cfg)
    ctx, roles, splits = prepare(cfg, cache, quiet)
    return protocol(ctx, roles, splits)


def record(store: Store, run_id: int, done: Computed) -> None:
    """A computed run's predictions and metrics into its (started) run row, which turns `done`."""
    store.save_arrays(run_id, "predictions.npz", done.predictions)
    store.finish_run(run_id, done.metrics, done.timings)


def prepare(cfg: ExperimentConfig, store: Store, quiet: bool) -> tuple[Context, Roles, Splits]:
    """The run's checks (preflight: models and data present, lengths, memory, the data as each
    model reads it) and its data, read once: a problem records nothing. `cfg` is resolved, its
    method checked."""
    ctx = Context(cfg, store, quiet)

    def read() -> Splits:
        with ctx.step("data"):
            task = task_component(cfg.task)
            examples = load_task(task)
            if cfg.features.scope == "task" and len({e.id for e in examples}) == len(examples):
                ctx.pool = examples
            return make_splits(examples, cfg.splits, task.name)

    roles, splits = preflight(cfg, read, resolve, quiet)
    assert splits is not None
    return ctx, roles, splits


def protocol(ctx: Context, roles: Roles, splits: Splits) -> Computed:
    """Steps 1-5 on read data: weak supervisor, ceiling, the method's student, evaluation."""
    cfg = ctx.cfg
    (weak_ref, weak_cfg, _), strong_ref = roles[0], roles[-1][0]
    weak = ctx.train("weak_supervisor", weak_ref, splits, Part("weak_train"),
                     labels(splits.weak_train), GROUND_TRUTH_LOSS,
                     predict={"transfer": Part("transfer"), "test": Part("test")}, select=False,
                     weak=True)
    ceiling = ctx.train("strong_ceiling", strong_ref, splits, Part("transfer"),
                        labels(splits.transfer), GROUND_TRUTH_LOSS, predict={"test": Part("test")},
                        select=False)
    setting = Setting(ctx, splits, weak_ref, strong_ref, weak)
    student, method_report = METHODS.get(cfg.method.name)(setting, **cfg.method.options)
    weak_labels = weak["p_transfer"]

    with ctx.step("evaluate"):
        for name, r in (("weak", weak), ("ceiling", ceiling), ("student", student)):
            assert_aligned(r["ids_test"], splits.test, f"{name} test predictions")
        y = labels(splits.test)
        metrics = evaluate(y, weak["p_test"], student["p_test"], ceiling["p_test"],
                           cfg.eval.bootstrap, cfg.eval.confidence, cfg.seed)
    metrics["weak_label_accuracy"] = float(((weak_labels > 0.5) == labels(splits.transfer)).mean())
    metrics["split_sizes"] = {s: len(getattr(splits, s)) for s in ("weak_train", "transfer", "test")}
    metrics["curves"] = {name: {"loss": r["loss"].tolist(), "test_accuracy": r["eval_accuracy"].tolist()}
                         for name, r in (("weak", weak), ("ceiling", ceiling), ("student", student))}
    metrics["method"] = {"name": cfg.method.name, **method_report}
    metrics["select"] = selection_report(cfg, student)
    metrics["precision"] = {"features": cfg.features.precision, "train": cfg.train.precision,
                            **({"weak_train": weak_cfg.train.precision} if cfg.weak_train else {})}
    predictions = {"ids": ids_of(splits.test), "labels": y, "weak": weak["p_test"],
                   "student": student["p_test"], "ceiling": ceiling["p_test"]}
    if cfg.eval.zero_shot:
        predictions["zero_shot"] = ctx.zero_shot(cfg.eval.zero_shot, splits.test)
        metrics["zero_shot"] = {"model": cfg.eval.zero_shot, "accuracy": accuracy_interval(
            y, predictions["zero_shot"], cfg)}
    return Computed(metrics, ctx.steps.timings, predictions)


def accuracy_interval(y: np.ndarray, p: np.ndarray, cfg: ExperimentConfig) -> dict[str, float]:
    """Test accuracy of predictions `p` with the run's bootstrap interval (eval.*), laid out as
    metrics' other accuracies ({value, low, high})."""
    ci = mean_ci(((p > 0.5) == y).astype(float), cfg.seed, cfg.eval.bootstrap, cfg.eval.confidence)
    assert ci is not None
    return {"value": ci[0], "low": ci[1], "high": ci[2]}


@contextmanager
def tracked(ctx: Context, run_id: int, log: bool = True) -> Iterator[None]:
    """The run's tracker sessions (W&B, MLflow: loggers.py; none unless `log`) while its steps
    compute: each epoch goes out as it ends; a run that fails ends its sessions as failed."""
    ctx.live = loggers.start(run_id, ctx.cfg, ctx.store) if log else loggers.Live(run_id, [])
    try:
        yield
    except BaseException:
        ctx.live.abort()
        raise


def selection_report(cfg: ExperimentConfig, student: dict[str, np.ndarray]) -> dict[str, Any]:
    """Which epoch of the student was kept, and why (train.select): `last`, or `weak_val` with
    the chosen epoch (1-based), the held-out size and the AUROC against the weak labels after
    every epoch. Ground truth never enters it."""
    if cfg.train.select == "last" or "select_epoch" not in student:
        return {"rule": "last", "epoch": cfg.train.epochs}
    return {"rule": cfg.train.select, "epoch": int(student["select_epoch"]),
            "epochs": int(len(student["select_auroc"])), "size": int(student["select_size"]),
            "weak_val_auroc": [round(float(a), 6) for a in student["select_auroc"]]}
