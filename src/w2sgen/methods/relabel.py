"""`relabel` and `filter`: correct or drop weak labels with a probe on the strong model's features.

Weak labels are noisy, and their errors are often ones the strong model can see: an example the
supervisor got wrong tends to sit, in the strong model's representation, among examples it got
right. So a simple probe on the strong model's *frozen* features of transfer (whatever
`train.mode` is), fitted to the weak labels, smooths the labels along that representation:

- `probe=knn`: an example's new label is the mean weak label of its `k` nearest neighbours by
  cosine similarity among the *other* transfer examples (leave-one-out);
- `probe=logistic`: a logistic-regression probe (`ProbeLearner`, soft weak labels as targets,
  cross-entropy) cross-fitted over `folds` seeded folds, so every example is labelled by a probe
  that never saw it. It trains with the run's `train` settings when `train.mode=probe`, and with
  the probe defaults otherwise (settings chosen for fine-tuning, e.g. lr=2e-5, starve a probe).

Either way the probe's label for an example never uses that example's own weak label: a probe
that did would hand it back and correct nothing.

- `relabel` trains the student on all of transfer with `mix * probe + (1 - mix) * weak`;
- `filter` keeps the weak labels unchanged but trains the student only on the examples whose
  weak hard label the probe agrees with (`keep` unset), or on the fraction `keep` of transfer
  where it agrees most (agreement = the probe's probability of the weak hard label; ties go to
  the earlier example).

Both report the labels' accuracy against transfer ground truth (for analysis only; the ground
truth never enters the method).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Annotated, Any, Literal, Optional

import numpy as np

from .. import pairwise
from ..config import ExperimentConfig
from ..errors import W2SError
from ..losses import xent
from ..models import ModelRef
from ..options import Fraction, Ge, PositiveInt, Range
from ..splits import Part
from ..train import ProbeLearner
from . import METHODS, Arrays, Setting, checked_on_splits, folds_fit_transfer
from .bootstrap import fold_of

MIN_KEPT = 10


def knn_labels(x: np.ndarray, y: np.ndarray, k: int = 20, block: int = 1024) -> np.ndarray:
    """Leave-one-out kNN: mean of `y` over each row's k most cosine-similar *other* rows.

    Similarities are computed `block` rows at a time, so memory is block * n, not n * n."""
    n = len(x)
    if n < 2:
        raise W2SError("the knn probe needs at least 2 transfer examples")
    k = min(k, n - 1)
    x = np.asarray(x, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    y = np.asarray(y, dtype=np.float32)
    out = np.empty(n, dtype=np.float32)
    for start in range(0, n, block):
        rows = np.arange(start, min(start + block, n))
        sim = x[rows] @ x.T
        sim[np.arange(len(rows)), rows] = -np.inf  # leave the example itself out
        nearest = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        out[rows] = y[nearest].mean(axis=1)
    return out


def logistic_labels(x: np.ndarray, y: np.ndarray, ref: ModelRef, cfg: ExperimentConfig,
                    folds: int = 5, seed: int = 0) -> np.ndarray:
    """Cross-fitted logistic probe on `ref`'s features `x`: each fold is predicted by a probe
    trained on the others (soft `y` as targets, cross-entropy, `cfg.train` settings)."""
    n = len(x)
    fold = fold_of(n, folds, seed)
    out = np.empty(n, dtype=np.float32)
    for f in range(folds):
        held, rest = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
        probe = ProbeLearner(ref, cfg)
        probe.fit(x[rest], np.asarray(y)[rest], xent(), seed + f, f"logistic probe fold {f + 1}/{folds}")
        out[held] = probe.predict(x[held])
    return out


Probe = Literal["knn", "logistic"]
Folds = Annotated[int, Ge(2)]  # cross-fitting needs a fold to hold out


def probe_labels(s: Setting, probe: str, k: int, folds: int) -> np.ndarray:
    """Out-of-sample probe predictions for every transfer example, fitted to the weak labels."""
    x = s.ctx.features(s.strong_ref, "transfer", s.splits.transfer)
    cfg = s.ctx.cfg
    with s.ctx.step(f"{probe} probe {s.strong_ref.name}"):
        if probe == "knn":  # a comparison: its A-side minus B-side features
            return knn_labels(pairwise.flat(x), s.weak_labels, k)
        if cfg.train.mode != "probe":
            cfg = dataclasses.replace(cfg, train=type(cfg.train)())  # the probe defaults
        return logistic_labels(x, s.weak_labels, s.strong_ref, cfg, folds, cfg.seed)


def probe_report(probe: str, k: int, folds: int) -> dict[str, Any]:
    return {"probe": probe, **({"k": k} if probe == "knn" else {"folds": folds})}


def kept_index(pred: np.ndarray, weak: np.ndarray, keep: Optional[float]) -> np.ndarray:
    """Positions (ascending) of the examples `filter` keeps.

    keep=None: those whose probe hard prediction equals the weak hard label. keep=q: the
    ceil(q * n) with the highest agreement |pred - (1 - weak_hard)|, ties to the lower index."""
    weak_hard = np.asarray(weak) > 0.5
    if keep is None:
        return np.flatnonzero((np.asarray(pred) > 0.5) == weak_hard)
    agreement = np.abs(np.asarray(pred, dtype=np.float64) - (1.0 - weak_hard))
    n_keep = math.ceil(keep * len(agreement) - 1e-9)
    return np.sort(np.argsort(-agreement, kind="stable")[:n_keep])


@METHODS.register("relabel")
@checked_on_splits(folds_fit_transfer)
def relabel(s: Setting, *, probe: Probe = "knn", k: PositiveInt = 20, folds: Folds = 5,
            mix: Fraction = 1.0) -> tuple[Arrays, dict[str, Any]]:
    weak = s.weak_labels
    targets = (mix * probe_labels(s, probe, k, folds) + (1 - mix) * weak).astype(np.float32)
    student = s.train_student(targets)
    return student, {**probe_report(probe, k, folds), "mix": float(mix),
                     "weak_label_accuracy": s.label_accuracy(weak),
                     "relabelled_label_accuracy": s.label_accuracy(targets),
                     "flipped_fraction": float(((targets > 0.5) != (weak > 0.5)).mean())}


@METHODS.register("filter")
@checked_on_splits(folds_fit_transfer)
def filter_(s: Setting, *, probe: Probe = "knn", k: PositiveInt = 20, folds: Folds = 5,
            keep: Optional[Annotated[float, Range(0, 1, lo_open=True)]] = None
            ) -> tuple[Arrays, dict[str, Any]]:
    weak = s.weak_labels
    idx = kept_index(probe_labels(s, probe, k, folds), weak, keep)
    kept_classes = len(np.unique(weak[idx] > 0.5))
    if len(idx) < MIN_KEPT or kept_classes < 2:
        raise W2SError(f"method filter kept {len(idx)} transfer example(s) of {kept_classes} weak "
                       f"class(es); the student needs at least {MIN_KEPT} examples of both classes "
                       "(raise method.keep, or use a larger transfer split)")
    part = Part("transfer", tuple(idx.tolist()))
    student = s.train_student(weak[idx], part=part)
    return student, {**probe_report(probe, k, folds), "keep": keep,
                     "kept_fraction": len(idx) / len(weak), "n_kept": len(idx),
                     "weak_label_accuracy": s.label_accuracy(weak),
                     "kept_weak_label_accuracy": s.label_accuracy(weak[idx], part)}
