"""`weak_ensemble`: the student learns from the average of several weak supervisors.

A single supervisor's errors are partly idiosyncratic (its seed, its architecture); averaging
the soft labels of several supervisors cancels some of them, so the student sees fewer, and
less confident, wrong labels. Members are the configured weak model trained with seeds
`seed, seed + 1, ...` (`seeds` of them), or, with `models`, one supervisor per listed model
(each with the run's seed; `seeds` is then ignored). Every member is trained exactly like the
pipeline's weak supervisor - weak_train ground truth, cross-entropy, the weak supervisor's
settings (`weak_train` over `train`) - so the member with the base model and base seed is a
cache hit of the pipeline's own supervisor.

The PGR baseline stays the single configured supervisor (the pipeline's `weak`), not the
ensemble: the ensemble's own test accuracy is in the report, to tell how much of the student's
gain comes from better labels rather than from weak-to-strong generalisation.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..metrics import accuracy
from ..models import resolve
from ..options import PositiveInt
from ..spec import Component
from ..splits import Part, labels
from . import METHODS, Arrays, Setting, SupervisorModels


@METHODS.register("weak_ensemble")
def weak_ensemble(s: Setting, *, seeds: PositiveInt = 3,
                  models: Optional[SupervisorModels] = None) -> tuple[Arrays, dict[str, Any]]:
    base = s.ctx.cfg.seed
    if models is None:
        members = [(s.weak_ref, base + k) for k in range(seeds)]
    else:
        members = [(resolve(m), base) for m in models]
    y_test = labels(s.splits.test)
    p_transfer, p_test, report = [], [], []
    for ref, seed in members:
        r = s.ctx.train(f"weak {ref.name} seed {seed}", ref, s.splits, Part("weak_train"),
                        labels(s.splits.weak_train), Component("xent"),
                        {"transfer": Part("transfer"), "test": Part("test")}, seed=seed, weak=True)
        p_transfer.append(r["p_transfer"])
        p_test.append(r["p_test"])
        report.append({"model": ref.name, "seed": seed,
                       "test_accuracy": accuracy(y_test, r["p_test"]),
                       "label_accuracy": s.label_accuracy(r["p_transfer"])})
    targets = np.mean(p_transfer, axis=0).astype(np.float32)
    student = s.train_student(targets)
    return student, {"members": report,
                     "ensemble_test_accuracy": accuracy(y_test, np.mean(p_test, axis=0)),
                     "ensemble_label_accuracy": s.label_accuracy(targets),
                     "baseline": "the single configured weak supervisor (PGR, weak_accuracy)"}
