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

import hashlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from . import features as feats
from . import loggers, memory, onnx_features, oom
from .assets import require
from .config import Component, ExperimentConfig, train_identity, weak_problem
from .errors import W2SError
from .losses import LOSSES
from .methods import METHODS, Setting, check_method, model_roles
from .metrics import evaluate
from .models import ModelRef, load, resolve
from .progress import epochs_to
from .runs import Steps, recorded
from .splits import Part, Splits, hold_out, labels, make_splits
from .store import Store
from .tasks import Example, load_task, task_component
from .train import MODES

GROUND_TRUTH_LOSS = Component("xent")
# Bumped whenever the cached training step's arrays or recipe change, so entries written by older
# code are not read (features have had one format so far; give them a key entry when they change).
TRAIN_FORMAT = 2  # 2: per-epoch test predictions (eval_p)


def run(cfg: ExperimentConfig, store: Optional[Store] = None, quiet: bool = False,
        exclusive: bool = False, log: bool = True,
        figures: Optional[Callable[[dict[str, Any]], list[Path]]] = None) -> dict[str, Any]:
    """One experiment, recorded as a run in the store. exclusive (sweeps): raise
    store.RunTaken instead of starting when this config already has a finished run or one in
    progress in another process. log: send the run to the configured trackers (loggers.py) as it
    goes. figures: draws the finished run's figures (given its stored row: id, config, metrics),
    which the trackers then receive with the run's files."""
    if not quiet and (note := cfg.weak_inherited_note()):
        print(note, file=sys.stderr)
    cfg = cfg.resolved()  # precision auto -> what this machine computes fast, before recording
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
    return {"run_id": run_id, "metrics": metrics, "timings": ctx.timings, "config": cfg,
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
    cfg = cfg.resolved()
    check_method(cfg)
    ctx, roles, splits = prepare(cfg, cache, quiet)
    return protocol(ctx, roles, splits)


def record(store: Store, run_id: int, done: Computed) -> None:
    """A computed run's predictions and metrics into its (started) run row, which turns `done`."""
    store.save_arrays(run_id, "predictions.npz", done.predictions)
    store.finish_run(run_id, done.metrics, done.timings)


Roles = list[tuple[ModelRef, ExperimentConfig, bool]]


def prepare(cfg: ExperimentConfig, store: Store, quiet: bool) -> tuple[Context, Roles, Splits]:
    """The checks before a run is recorded (models and data present, lengths, GPU memory) and
    its data, read and checked: bad data records nothing. `cfg` is resolved, its method checked."""
    # fail before starting, naming every gap (the models the method trains included)
    require([name for name, _, _ in model_roles(cfg, str)], cfg.task)
    roles = model_roles(cfg, resolve)
    device = cfg.torch_device()
    for ref, role, _ in roles:
        check_length(ref, cfg.features.max_length)
        if device.startswith("cuda"):  # a run that cannot fit the GPU: one line, nothing recorded
            check_memory(ref, role, device, "train" if role is cfg else "weak_train", quiet)
    ctx = Context(cfg, store, quiet)
    with ctx.step("data"):
        task = task_component(cfg.task)
        examples = load_task(task)
        splits = make_splits(examples, cfg.splits, task.name)
        if cfg.features.scope == "task" and len({e.id for e in examples}) == len(examples):
            ctx.pool = examples
        check_roles(cfg, roles, splits)
        folds, n = cfg.method.options.get("folds"), len(splits.transfer)
        if isinstance(folds, int) and folds > n:  # cross-fitting over transfer: empty folds
            raise W2SError(f"method.folds={folds} but the transfer split has {n} examples; set "
                           f"method.folds={min(5, n)} (at most {n})")
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
    return Computed(metrics, ctx.timings, predictions)


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


def check_roles(cfg: ExperimentConfig, roles: Sequence[tuple[Optional[ModelRef], ExperimentConfig, bool]],
                splits: Splits) -> None:
    """The train modes' checks (`Learner.preflight`) on the texts each role reads, once per
    model and role (methods.model_roles): a weak supervisor trains on weak_train and predicts the
    other splits, a model under `train` (ceiling, student, ladder rungs) sees transfer and test
    only. Roles without a ref are skipped. Run before a run is recorded, and for each cell of a
    suite as it loads (sweep/checks.py)."""
    everything = splits.weak_train + splits.transfer + splits.test
    strong_sees = splits.transfer + splits.test
    checked = set()
    for ref, role, supervisor in roles:
        if ref is None or (ref.identity, supervisor) in checked:
            continue
        checked.add((ref.identity, supervisor))
        try:
            MODES.get(role.train.mode).preflight(ref, role, everything if supervisor else strong_sees)
        except W2SError as e:
            raise (e if role is cfg else weak_problem(cfg, e)) from None


def check_memory(ref: ModelRef, role: ExperimentConfig, device: str, where: str, quiet: bool) -> None:
    """The training mode's memory estimate (the one it declares: Learner.memory_estimate) of
    `ref` under `role` against the GPU; a mode that declares none is said to train unchecked."""
    mode = MODES.get(role.train.mode)
    if mode.memory_estimate is not None:
        memory.check_fits(ref, role, device, where, mode.memory_estimate)
    elif not mode.uses_features and not quiet:
        print(f"note: train.mode={role.train.mode} has no memory estimate; {ref.name} trains "
              "without a check that it fits the GPU", file=sys.stderr)


def check_length(ref: ModelRef, max_length: int) -> None:
    """features.max_length within the positions the model has (read from its config.json, when
    the folder has one), before anything is recorded."""
    config = Path(ref.path) / "config.json"
    if not config.is_file():
        return
    try:
        c = json.loads(config.read_text())
    except (OSError, ValueError):
        return
    positions = c.get("max_position_embeddings")
    if not isinstance(positions, int):
        return
    if c.get("model_type") in ("mpnet", "roberta", "xlm-roberta", "camembert"):
        positions -= int(c.get("pad_token_id") or 1) + 1  # their positions start after the pad id
    if max_length > positions:
        raise W2SError(f"features.max_length={max_length} but model {ref.name!r} has "
                       f"{positions} positions; set features.max_length={min(positions, 512)} "
                       "or less")


def hold_out_parts(splits: Splits, train: Part, size: Any, seed: int
                   ) -> tuple[Part, Part, list[int], list[int]]:
    """train.select=weak_val's split of a training part: (kept part, held-out part, and their
    positions within `train`, to index its targets)."""
    examples = train.examples(splits)
    keep, out = hold_out(examples, size, seed, "train.select_size")
    index = train.index if train.index is not None else range(len(examples))
    return (Part(train.split, tuple(index[i] for i in keep)),
            Part(train.split, tuple(index[i] for i in out)), keep, out)


def ids_of(examples: list[Example]) -> np.ndarray:
    return np.array([e.id for e in examples])


def content_hash(examples: list[Example]) -> str:
    h = hashlib.sha256()
    for e in examples:
        h.update(f"{e.id}\x1f{e.text}\x1f{e.text_pair}\x1e".encode())
    return h.hexdigest()[:24]


def assert_aligned(ids: np.ndarray, examples: list[Example], what: str) -> None:
    if ids.tolist() != [e.id for e in examples]:
        raise AssertionError(f"{what} are not aligned with their examples by id")


def train_key(cfg: ExperimentConfig, ref: ModelRef, splits: Splits, train: Part,
              targets: np.ndarray, loss: Component, predict: dict[str, Part], seed: int,
              select: bool) -> dict[str, Any]:
    """The cache key of a training step: `ref` trained under `cfg.train` (its role's settings:
    the weak supervisor's are cfg.for_weak()'s) on (train, targets) with `loss`, predicting on
    each part of `predict`; `select`: train.select=weak_val applies."""
    mode = MODES.get(cfg.train.mode)
    settings = train_identity(cfg.train)
    if not select:  # the same model however the student's epoch is chosen: re-used
        settings.pop("select", None)
        settings.pop("select_size", None)
    return {"format": TRAIN_FORMAT, "model": ref.identity, "mode": cfg.train.mode, "train": settings,
            "features": {k: v for k, v in asdict(cfg.features).items() if k != "scope"}
            if not mode.uses_features else
            {"pooling": cfg.features.pooling_for(ref), "max_length": cfg.features.max_length,
             "precision": cfg.features.precision},
            "seed": seed, "examples": content_hash(train.examples(splits)),
            "targets": hashlib.sha256(np.asarray(targets, np.float32).tobytes()).hexdigest()[:24],
            "loss": asdict(loss),
            "predict": {k: content_hash(p.examples(splits)) for k, p in predict.items()},
            **mode.key(cfg)}


class Context:
    """Caching, timing and model loading shared by the steps of one run."""

    def __init__(self, cfg: ExperimentConfig, store: Store, quiet: bool):
        self.cfg, self.store, self.quiet = cfg, store, quiet
        self.steps = Steps(store, quiet)
        self.step, self.cached = self.steps.step, self.steps.cached
        self.timings = self.steps.timings
        self._backbones: dict[str, tuple[Any, Any]] = {}
        self._features: dict[tuple[str, str], np.ndarray] = {}
        # features.scope=task: the task's examples, encoded once per model; splits read rows
        self.pool: Optional[list[Example]] = None
        self.live = loggers.Live(0, [])  # the run's trackers, once it is recorded (`tracked`)

    def backbone(self, ref: ModelRef) -> tuple[Any, Any]:
        if ref.identity not in self._backbones:
            self._backbones[ref.identity] = load(ref, self.cfg.torch_device())
        return self._backbones[ref.identity]

    def features(self, ref: ModelRef, split: str, examples: list[Example]) -> np.ndarray:
        if self.pool is not None:  # rows of the task's features, computed once per model
            x = self._memo_features(ref, "task", self.pool)
            row = self._pool_rows()
            if all(e.id in row for e in examples):
                return x[[row[e.id] for e in examples]]
        return self._memo_features(ref, split, examples)

    def _pool_rows(self) -> dict[str, int]:
        assert self.pool is not None
        if not hasattr(self, "_rows"):
            self._rows = {e.id: i for i, e in enumerate(self.pool)}
        return self._rows

    def _memo_features(self, ref: ModelRef, split: str, examples: list[Example]) -> np.ndarray:
        memo = (ref.identity, content_hash(examples))
        if memo not in self._features:
            self._features[memo] = self._cached_features(ref, split, examples)
        return self._features[memo]

    def _cached_features(self, ref: ModelRef, split: str, examples: list[Example]) -> np.ndarray:
        f = self.cfg.features
        pooling = f.pooling_for(ref)
        key = {"model": ref.identity, "examples": content_hash(examples), "pooling": pooling,
               "max_length": f.max_length, "precision": f.precision}
        onnx = (f.precision == "fp32" and ref.kind == "encoder" and self.cfg.torch_device() == "cpu"
                and onnx_features.available())
        if onnx:  # the CPU's fast fp32 path; entries computed by torch keep their keys
            key["runtime"] = "onnxruntime"
        extract = onnx_features.extract if onnx else feats.extract
        extra = {"identity": ref.identity} if onnx else {}

        def compute() -> dict[str, np.ndarray]:
            model, tok = self.backbone(ref)
            x = extract(model, tok, examples, pooling=pooling, max_length=f.max_length,
                        batch_size=f.batch_size, precision=f.precision,
                        join_pairs=ref.kind == "causal", desc=f"{ref.name} {split}", **extra)
            return {"x": x, "ids": ids_of(examples)}

        device = self.cfg.torch_device()
        with oom.step(f"extracting features of {ref.name} ({split})",
                      f"features.batch_size={f.batch_size}, features.max_length={f.max_length}",
                      f"features.batch_size={max(1, f.batch_size // 2)} or a lower features.max_length",
                      device):
            arrays = self.cached(f"features {ref.name} {split}", "features", key, compute)
        assert_aligned(arrays["ids"], examples, "features")
        return arrays["x"]

    def inputs(self, learner: Any, ref: ModelRef, splits: Splits, part: Part) -> Any:
        """What a learner reads for `part`: rows of the split's cached features, or examples."""
        if not learner.uses_features:
            return part.examples(splits)
        x = self.features(ref, part.split, getattr(splits, part.split))
        return x if part.index is None else x[np.asarray(part.index, dtype=int)]

    def train(self, name: str, ref: ModelRef, splits: Splits, train: Part, targets: np.ndarray,
              loss: Component, predict: dict[str, Part], seed: Optional[int] = None,
              select: Optional[bool] = None, weak: bool = False) -> dict[str, np.ndarray]:
        """Train `ref` on (train, targets) with `loss`; predict on each named part. `weak`: a
        weak supervisor, trained under the weak supervisor's settings (`weak_train` over
        `train`: cfg.for_weak()); otherwise under `train`.

        Returns arrays: p_<name> and ids_<name> per prediction, the per-epoch training loss,
        and test accuracy and test predictions after every epoch (eval_accuracy, eval_p).

        `select` (default: for training on transfer examples, i.e. every student; the pipeline
        passes False for the weak supervisor and the ceiling): apply train.select. With
        `weak_val`, train.select_size of the examples (by a seeded hash of their groups) are
        held out with their targets - the weak labels - and the epoch whose AUROC against them
        is best is kept; the arrays add select_epoch, select_auroc, select_size and
        select_ids (the held-out examples)."""
        cfg = self.cfg.for_weak() if weak else self.cfg
        seed = cfg.seed if seed is None else seed
        learner = MODES.get(cfg.train.mode)(ref, cfg)
        if select is None:
            select = train.split == "transfer"
        select = select and cfg.train.select == "weak_val"
        key = train_key(cfg, ref, splits, train, targets, loss, predict, seed, select)

        live: list[str] = []  # `name` once its training runs here (not read from the cache)

        def compute() -> dict[str, np.ndarray]:
            test = (self.inputs(learner, ref, splits, Part("test")), labels(splits.test))
            loss_fn = LOSSES.get(loss.name)(**loss.options)
            fit_part, fit_targets, held = train, np.asarray(targets), None
            if select:
                fit_part, held, keep, out_pos = hold_out_parts(splits, train, cfg.train.select_size, seed)
                fit_targets = np.asarray(targets)[keep]
                learner.select_set = (self.inputs(learner, ref, splits, held),
                                      np.asarray(targets)[out_pos])
            live.append(name)  # its epochs go to the trackers as they end
            with epochs_to(lambda e, loss, acc: self.live.epoch(name, e, loss, acc)):
                hist = learner.fit(self.inputs(learner, ref, splits, fit_part), fit_targets,
                                   loss_fn, seed, name, test)
            out = {"loss": np.array(hist.loss), "eval_accuracy": np.array(hist.eval_accuracy),
                   "eval_p": np.array(hist.eval_probs, dtype=np.float32)}
            if held is not None:
                out["select_epoch"] = np.array(hist.selected_epoch)
                out["select_auroc"] = np.array(hist.select_auroc)
                out["select_size"] = np.array(len(held.examples(splits)))
                out["select_ids"] = ids_of(held.examples(splits))
            for k, part in predict.items():
                if part == Part("test") and hist.eval_probs:
                    # the kept model (the last epoch's, or the selected one's) already predicted
                    # test after its epoch: the same model on the same inputs, so not again
                    out[f"p_{k}"] = hist.eval_probs[(hist.selected_epoch or len(hist.eval_probs)) - 1]
                else:
                    out[f"p_{k}"] = learner.predict(self.inputs(learner, ref, splits, part)).astype(np.float32)
                out[f"ids_{k}"] = ids_of(part.examples(splits))
            return out

        where, device = ("weak_train" if weak else "train"), cfg.torch_device()
        with oom.step(f"training {ref.name}" + (" (the weak supervisor)" if weak else ""),
                      oom.train_settings(cfg.train, where), oom.train_advice(cfg.train, where, device),
                      device):
            arrays = self.cached(name, "train", key, compute)
        if not live:  # found in the cache: its curves go to the trackers whole
            self.live.curves(name, arrays["loss"], arrays["eval_accuracy"])
        for k, part in predict.items():
            assert_aligned(arrays[f"ids_{k}"], part.examples(splits), f"{name} predictions on {k}")
        return arrays
