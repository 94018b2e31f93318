"""What one run's steps share: the cached features of each model and split, training a model
(the cache key of a training step, `train.select`'s held-out part), step timing, and the
trackers of the run. `MethodContext` is what a method may use of it.

Every cache key here carries a version: TRAIN_FORMAT, and FEATURES_FORMAT (implicit at 1).
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict
from typing import Any, Optional, Protocol

import numpy as np

from . import features as feats
from . import loggers, onnx_features, oom, pairwise, progress, zero_shot
from .config import Component, ExperimentConfig, train_identity
from .example import Example
from .losses import LOSSES
from .models import ModelRef, load
from .progress import epochs_to
from .runs import Arrays, StepMark, Steps
from .splits import Part, Splits, hold_out, labels
from .store import Store
from .train import MODES

# Bumped whenever the cached training step's arrays or recipe change, so entries written by older
# code are not read.
TRAIN_FORMAT = 2  # 2: per-epoch test predictions (eval_p)
# The version of a features step's arrays. Version 1 is implicit (left out of the key), so every
# features entry cached before the key carried a version is still found; a bump (2, ...) puts
# "format" in every key from then on and recomputes the features once.
FEATURES_FORMAT = 1


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


def features_key(ref: ModelRef, examples: list[Example], pooling: str, max_length: int,
                 precision: str) -> dict[str, Any]:
    """The cache key of `ref`'s features of `examples` (FEATURES_FORMAT above 1 in it)."""
    key: dict[str, Any] = {"model": ref.identity, "examples": content_hash(examples),
                           "pooling": pooling, "max_length": max_length, "precision": precision}
    if FEATURES_FORMAT != 1:
        key["format"] = FEATURES_FORMAT
    return key


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
            **({"pairwise": "bradley_terry"} if mode.uses_features and
               pairwise.is_pairwise(train.examples(splits)) else {}),
            **mode.key(cfg)}


class MethodContext(Protocol):
    """What a method (methods/) may use of its run: the config, whether to print, the store
    (where a method keeps a model it derives), timed and cached steps, a model's features of a
    split, and training a model. The pipeline's Context is the one implementation."""

    cfg: ExperimentConfig
    quiet: bool
    store: Store

    def step(self, name: str) -> AbstractContextManager[StepMark]:
        """Time a step of the method (`mark.cached = True` when it re-used stored work)."""
        ...

    def cached(self, label: str, kind: str, key: dict[str, Any],
               compute: Callable[[], Arrays]) -> tuple[Arrays, bool]:
        """The arrays of step `label` stored under `kind`/`key` (computed once), and whether
        they came from the store."""
        ...

    def features(self, ref: ModelRef, split: str, examples: list[Example]) -> np.ndarray: ...

    def train(self, name: str, ref: ModelRef, splits: Splits, train: Part, targets: np.ndarray,
              loss: Component, predict: dict[str, Part], seed: Optional[int] = None,
              select: Optional[bool] = None, weak: bool = False) -> Arrays: ...


class Context:
    """Caching, timing and model loading shared by the steps of one run (a MethodContext)."""

    def __init__(self, cfg: ExperimentConfig, store: Store, quiet: bool):
        self.cfg, self.store, self.quiet = cfg, store, quiet
        self.steps = Steps(store, quiet)
        self._backbones: dict[str, tuple[Any, Any]] = {}
        self._features: dict[tuple[str, str], np.ndarray] = {}
        # features.scope=task: the task's examples, encoded once per model; splits read rows
        self.pool: Optional[list[Example]] = None
        self.live = loggers.Live(0, [])  # the run's trackers, once it is recorded (`tracked`)

    def step(self, name: str) -> AbstractContextManager[StepMark]:
        return self.steps.step(name)

    def cached(self, label: str, kind: str, key: dict[str, Any],
               compute: Callable[[], Arrays]) -> tuple[Arrays, bool]:
        with self.steps.step(label) as mark:
            arrays, mark.cached = self.store.cached(kind, key, compute)
        return arrays, mark.cached

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
        key = features_key(ref, examples, pooling, f.max_length, f.precision)
        sides = pairwise.is_pairwise(examples)
        if sides:  # a comparison's two sides, each prompt + response: (N, 2, d)
            key["pairwise"] = "sides"
        onnx = (f.precision == "fp32" and ref.kind == "encoder" and self.cfg.torch_device() == "cpu"
                and onnx_features.available())
        if onnx:  # the CPU's fast fp32 path; entries computed by torch keep their keys
            key["runtime"] = "onnxruntime"
        extract = onnx_features.extract if onnx else feats.extract
        extra = {"identity": ref.identity} if onnx else {}

        def compute() -> dict[str, np.ndarray]:
            model, tok = self.backbone(ref)
            rows = pairwise.side_examples(examples) if sides else examples
            x = extract(model, tok, rows, pooling=pooling, max_length=f.max_length,
                        batch_size=f.batch_size, precision=f.precision,
                        join_pairs=ref.kind == "causal", desc=f"{ref.name} {split}", **extra)
            return {"x": pairwise.side_array(x, len(examples)) if sides else x,
                    "ids": ids_of(examples)}

        device = self.cfg.torch_device()
        with oom.step(f"extracting features of {ref.name} ({split})",
                      f"features.batch_size={f.batch_size}, features.max_length={f.max_length}",
                      f"features.batch_size={max(1, f.batch_size // 2)} or a lower features.max_length",
                      device):
            arrays = self.steps.cached(f"features {ref.name} {split}", "features", key, compute)
        assert_aligned(arrays["ids"], examples, "features")
        return arrays["x"]

    def zero_shot(self, model: str, examples: list[Example]) -> np.ndarray:
        """eval.zero_shot: P(label 1) of every example by the causal LM `model`'s likelihoods
        (zero_shot.py), a cached step."""
        from .lm import LocalLM

        lm = LocalLM(model, self.cfg.torch_device(), self.cfg.features.precision,
                     batch_size=self.cfg.features.batch_size)
        how = zero_shot.kind(examples, self.cfg.task.name)
        key = {"model": lm.identity, "examples": content_hash(examples), "how": how,
               "format": zero_shot.FORMAT}

        def compute() -> dict[str, np.ndarray]:
            bar = progress.bar(len(examples) * 2 if how == "comparison" else len(examples),
                               f"zero-shot {lm.name}", "text", leave=False, quiet=self.quiet)
            with bar:
                p = zero_shot.probabilities(lm, examples, how, bar)
            return {"p": p.astype(np.float32), "ids": ids_of(examples)}

        arrays = self.steps.cached(f"zero-shot {lm.name}", "zero_shot", key, compute)
        assert_aligned(arrays["ids"], examples, "zero-shot predictions")
        return arrays["p"]

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
            arrays = self.steps.cached(name, "train", key, compute)
        if not live:  # found in the cache: its curves go to the trackers whole
            self.live.curves(name, arrays["loss"], arrays["eval_accuracy"])
        for k, part in predict.items():
            assert_aligned(arrays[f"ids_{k}"], part.examples(splits), f"{name} predictions on {k}")
        return arrays
