"""`bootstrap`: a ladder of models of increasing size (Burns et al.). Each intermediate rung is
trained on the previous rung's labels and relabels transfer for the next; the strong model,
trained on the last rung's labels, is the student.

A rung must not label the examples it was trained on (it would hand its training targets back
almost unchanged), so each rung is cross-fitted: transfer is cut into `folds` parts by a
seeded permutation, and every part is labelled by the rung trained on the other parts.

Rungs are students of the rung below (trained on its labels of transfer, with the run's loss
and train.select), so they train under `train`, as the strong student does; `weak_train`
applies to the weak supervisor alone.
"""
from __future__ import annotations

from typing import Annotated, Any

import numpy as np

from ..models import resolve
from ..options import Ge
from ..splits import Part
from . import METHODS, Arrays, Setting, StudentModels, checked_on_splits, folds_fit_transfer


def fold_of(n: int, folds: int, seed: int) -> np.ndarray:
    """Fold number of each of n examples: balanced, deterministic for a seed."""
    return np.random.default_rng(seed).permutation(np.arange(n) % folds)


@METHODS.register("bootstrap")
@checked_on_splits(folds_fit_transfer)
def bootstrap(s: Setting, *, ladder: StudentModels,
              folds: Annotated[int, Ge(2)] = 2) -> tuple[Arrays, dict[str, Any]]:
    """Intermediate models, weakest first, each trained on the previous rung's labels of held-out
    folds (every rung labels only examples it did not train on: folds >= 2)."""
    n = len(s.splits.transfer)
    fold = fold_of(n, folds, s.ctx.cfg.seed)
    targets = s.weak_labels
    rungs = []
    for name in ladder:
        ref = resolve(name)
        relabelled = np.empty(n, dtype=np.float32)
        test_acc = []
        for k in range(folds):
            held, rest = np.flatnonzero(fold == k), np.flatnonzero(fold != k)
            r = s.train_student(targets[rest], f"rung {name} fold {k + 1}/{folds}", ref,
                                Part("transfer", tuple(rest.tolist())),
                                {"held": Part("transfer", tuple(held.tolist())), "test": Part("test")})
            relabelled[held] = r["p_held"]
            test_acc.append(float(r["eval_accuracy"][-1]))
        rungs.append({"model": name, "label_accuracy": s.label_accuracy(relabelled),
                      "test_accuracy": float(np.mean(test_acc))})
        targets = relabelled
    student = s.train_student(targets)
    report = {"ladder": [s.weak_ref.name, *ladder, s.strong_ref.name], "folds": folds,
              "weak_label_accuracy": s.label_accuracy(s.weak_labels), "rungs": rungs}
    return student, report
