"""Weak-to-strong methods: how the student is made from the weak supervisor's output.

The pipeline trains the weak supervisor and the strong ceiling, then calls the configured
method with a `Setting`; the method returns the student's arrays (at least `p_test`,
`ids_test`, `loss`, `eval_accuracy`, `eval_p`) and a JSON-able report of anything else it
measured. Every method trains its student(s) with the configured `loss`, so methods and losses
combine freely. A method is one registered function with keyword-only options, one module each;
the options' types and bounds are in the signature, where the config checks them (options.py).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import numpy as np

from ..models import MODELS, ModelRef
from ..options import Check
from ..registry import Registry
from ..spec import Component
from ..splits import Part, Splits, labels

if TYPE_CHECKING:
    from ..pipeline import Context

Arrays = dict[str, np.ndarray]


def model_name(name: str) -> bool:
    """A name `models.resolve` can mean: a zoo name, a local folder, or a hub id."""
    return (name in MODELS or Path(name).expanduser().is_dir() or name.startswith("hf:")
            or ("/" in name and not name.startswith((".", "/", "~"))))


ModelName = Annotated[str, Check(model_name, f"a model name ({', '.join(MODELS)}), a local "
                                 "folder, or an org/name hub id")]
ModelNames = Annotated[list[ModelName], Check(bool, "a non-empty list of model names, e.g. "
                                              "[minilm-l6, smollm2-135m]")]
METHODS: Registry[Callable[..., tuple[Arrays, dict[str, Any]]]] = Registry("method")


@dataclass
class Setting:
    """What a method works with: the run's context, the splits, both models, the supervisor."""

    ctx: Context
    splits: Splits
    weak_ref: ModelRef
    strong_ref: ModelRef
    weak: Arrays  # the supervisor's p_transfer / p_test and curves

    @property
    def weak_labels(self) -> np.ndarray:
        return self.weak["p_transfer"]

    @property
    def loss(self) -> Component:
        return self.ctx.cfg.loss

    def train_student(self, targets: np.ndarray, name: str = "student",
                      ref: Optional[ModelRef] = None, part: Part = Part("transfer"),
                      predict: Optional[dict[str, Part]] = None, seed: Optional[int] = None,
                      loss: Optional[Component] = None) -> Arrays:
        """Train a model (the strong one by default) on `targets` for `part` of transfer."""
        return self.ctx.train(name, ref or self.strong_ref, self.splits, part, targets,
                              loss or self.loss, predict or {"test": Part("test")}, seed=seed)

    def label_accuracy(self, soft: np.ndarray, part: Part = Part("transfer")) -> float:
        """Accuracy of (soft) labels against the ground truth of `part` (for reports only)."""
        return float(((soft > 0.5) == labels(part.examples(self.splits))).mean())


@METHODS.register("naive")
def naive(s: Setting) -> tuple[Arrays, dict[str, Any]]:
    """Burns et al.'s baseline: the strong model trained on the weak labels."""
    return s.train_student(s.weak_labels), {}


from . import bootstrap, confidence_filter, early_stop, ensemble, generative, icl_refine, relabel  # noqa: E402,F401  (register the methods)
