"""`gt_early_stop`: a diagnostic, not a method. It trains like `naive` and then keeps the epoch
whose *test* accuracy is highest, which uses the ground truth of the test set - the "cheat"
Burns et al. use to show how much overfitting to weak errors costs. Its scores must never be
reported as a method's; the report and the run store mark it."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..config import ExperimentConfig
from ..errors import W2SError
from . import METHODS, Arrays, Setting, checked_by

DIAGNOSTIC = "uses test ground truth to pick the epoch: a diagnostic upper bound, not a method"


def one_epoch_rule(cfg: ExperimentConfig) -> None:
    """The diagnostic picks the student's epoch itself: train.select must leave it alone."""
    if cfg.train.select != "last":
        raise W2SError("method=gt_early_stop picks the student's epoch by test accuracy (a "
                       f"diagnostic); it cannot be combined with train.select={cfg.train.select}: "
                       "set train.select=last, or use another method")


@METHODS.register("gt_early_stop")
@checked_by(one_epoch_rule)
def gt_early_stop(s: Setting) -> tuple[Arrays, dict[str, Any]]:
    student = s.train_student(s.weak_labels)
    curve = student["eval_accuracy"]
    best = int(np.argmax(curve))
    out = dict(student)
    out["p_test"] = student["eval_p"][best]
    return out, {"diagnostic": DIAGNOSTIC, "best_epoch": best + 1, "epochs": len(curve),
                 "final_epoch_accuracy": float(curve[-1]), "best_epoch_accuracy": float(curve[best])}
