"""`confidence_filter`: train the student only on the weak labels the supervisor is sure of.

The 2026 testbed's `train_only_on_confident_labels` baseline: keep the transfer examples whose
weak soft label p (the supervisor's probability of class 1) is at least `hi` or at most
`1 - hi`, and train the strong student on those alone, with their weak labels as they are (soft;
the configured loss decides what it does with them). `hi=0.75` keeps p >= 0.75 or p <= 0.25;
`hi=0.5` keeps everything, the naive method. Unlike `filter` (methods/relabel.py) no probe is
fitted: the supervisor's own confidence decides.

The report gives how many examples were kept, and the weak labels' accuracy against transfer
ground truth before and after filtering (for analysis only; ground truth never enters the
method).
"""
from __future__ import annotations

from typing import Annotated, Any

import numpy as np

from ..errors import W2SError
from ..options import Range
from ..splits import Part
from . import METHODS, Arrays, Setting

MIN_KEPT = 10  # as `filter`: fewer examples than this do not make a student worth reporting

Threshold = Annotated[float, Range(0.5, 1)]


def confident_index(weak: np.ndarray, hi: float) -> np.ndarray:
    """Positions (ascending) of the weak labels with p >= hi or p <= 1 - hi."""
    # in float32, the precision weak labels are stored in, so a label equal to a bound (0.8 as
    # float32) counts as reaching it rather than falling short by rounding
    p = np.asarray(weak, dtype=np.float32)
    return np.flatnonzero((p >= np.float32(hi)) | (p <= np.float32(1 - hi)))


@METHODS.register("confidence_filter")
def confidence_filter(s: Setting, *, hi: Threshold = 0.75) -> tuple[Arrays, dict[str, Any]]:
    """The student trained only on transfer examples whose weak label is >= hi or <= 1 - hi."""
    weak = s.weak_labels
    idx = confident_index(weak, hi)
    classes = len(np.unique(weak[idx] > 0.5))
    if len(idx) < MIN_KEPT or classes < 2:
        raise W2SError(f"method confidence_filter kept {len(idx)} of {len(weak)} transfer "
                       f"examples ({classes} weak class(es)) at hi={hi}; the student needs at "
                       f"least {MIN_KEPT} of both classes (lower method.hi, or use a larger "
                       "transfer split)")
    part = Part("transfer", tuple(idx.tolist()))
    student = s.train_student(weak[idx], part=part)
    return student, {"hi": float(hi), "n_kept": len(idx), "kept_fraction": len(idx) / len(weak),
                     "weak_label_accuracy": s.label_accuracy(weak),
                     "kept_weak_label_accuracy": s.label_accuracy(weak[idx], part)}
