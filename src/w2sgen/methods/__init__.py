"""Weak-to-strong methods: how the student is made from the weak supervisor's output.

The pipeline trains the weak supervisor and the strong ceiling, then calls the configured
method with a `Setting`; the method returns the student's arrays (at least `p_test`,
`ids_test`, `loss`, `eval_accuracy`, `eval_p`) and a JSON-able report of anything else it
measured. Every method trains its student(s) with the configured `loss`, so methods and losses
combine freely. A method is one registered function with keyword-only options, one module each;
the options' types and bounds are in the signature, where the config checks them (options.py).
"""
from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, TypeVar

import numpy as np

from ..config import ExperimentConfig
from ..context import MethodContext
from ..errors import W2SError
from ..models import MODELS, ModelRef
from ..options import Canon, Check, hints_of, parameters, unwrap
from ..registry import Registry
from ..spec import Component
from ..splits import Part, Splits, labels

Arrays = dict[str, np.ndarray]


def model_name(name: str) -> bool:
    """A name `models.resolve` can mean: a zoo name, a local folder, or a hub id."""
    return (name in MODELS or Path(name).expanduser().is_dir() or name.startswith("hf:")
            or ("/" in name and not name.startswith((".", "/", "~"))))


ModelName = Annotated[str, Check(model_name, f"a model name ({', '.join(MODELS)}), a local "
                                 "folder, or an org/name hub id"), Canon(MODELS.canonical)]
ModelNames = Annotated[list[ModelName], Check(bool, "a non-empty list of model names, e.g. "
                                              "[minilm-l6, smollm2-135m]")]
METHODS: Registry[Callable[..., tuple[Arrays, dict[str, Any]]]] = Registry("method")


@dataclass(frozen=True)
class Trains:
    """Annotation of a method option that names models the method trains, with the settings
    they train under: `supervisor` (as the weak supervisor: weak_train over train) or `student`
    (under train, as the strong student). The pipeline, the config's model checks, the sweep's
    asset, text and memory checks and the report read it, so a method that trains more models
    says so once, in its signature."""

    role: Literal["supervisor", "student"]


# what bootstrap's ladder and weak_ensemble's models are
StudentModels = Annotated[ModelNames, Trains("student")]
SupervisorModels = Annotated[ModelNames, Trains("supervisor")]


@dataclass
class TrainedModels:
    """The models a method trains besides the pipeline's weak supervisor and strong model."""

    supervisors: list[str] = field(default_factory=list)
    students: list[str] = field(default_factory=list)


def _trains(tp: Any) -> Optional[Trains]:
    """The Trains marker of an option's annotation, looking inside Optional[...] too."""
    base, meta = unwrap(tp)
    found = next((m for m in meta if isinstance(m, Trains)), None)
    if found is None and typing.get_origin(base) in (typing.Union, types.UnionType):
        found = next((t for t in map(_trains, typing.get_args(base)) if t is not None), None)
    return found


def model_options(name: str) -> dict[str, Trains]:
    """The options of method `name` that name models it trains (from its `Trains` annotations);
    empty for a method that is not registered here (a stored run of a plugin that is gone)."""
    if name not in METHODS:
        return {}
    fn = METHODS.get(name)
    hints = hints_of(fn)
    return {k: t for k in parameters(fn) if (t := _trains(hints.get(k))) is not None}


def trained_models(method: Component) -> TrainedModels:
    """The models `method` (with its options, defaults filled) trains, by role."""
    out = TrainedModels()
    if method.name not in METHODS:
        return out
    params = parameters(METHODS.get(method.name))
    for key, trains in model_options(method.name).items():
        default = params[key].default
        value = method.options.get(key, None if default is inspect.Parameter.empty else default)
        names = [value] if isinstance(value, str) else list(value or ())
        (out.supervisors if trains.role == "supervisor" else out.students).extend(names)
    return out


R = TypeVar("R")


def model_roles(cfg: ExperimentConfig, refer: Callable[[str], R]) -> list[tuple[R, ExperimentConfig, bool]]:
    """Each model a run trains, with the settings it trains under and whether it trains as a
    weak supervisor (on weak_train ground truth, predicting the other splits): the weak
    supervisor first (its own settings, weak_train over train), then the models the method
    declares it trains (`methods.Trains`: weak_ensemble's supervisors, bootstrap's rungs), the
    strong model last (ceiling and students: `train`). `refer` turns a name into what the
    caller needs (`str`, `models.resolve`, `local_ref`)."""
    trained = trained_models(cfg.method)
    weak = cfg.for_weak()
    named = [(cfg.weak_model, weak, True), *((n, weak, True) for n in trained.supervisors),
             *((n, cfg, False) for n in trained.students), (cfg.strong_model, cfg, False)]
    return [(refer(name), role, supervisor) for name, role, supervisor in named]


M = TypeVar("M", bound=Callable[..., Any])


def checked_by(check: Callable[[ExperimentConfig], None]) -> Callable[[M], M]:
    """Give a method a `check(cfg)` hook: a refusal of the whole config (its combination with
    other settings) that the config builder runs, so `w2s run`, `w2s sweep` and `--dry-run`
    refuse it before anything runs. A method's own options need none: their annotations say it."""
    def attach(fn: M) -> M:
        fn.check = check  # type: ignore[attr-defined]
        return fn

    return attach


def check_method(cfg: ExperimentConfig) -> None:
    """Run the configured method's `check(cfg)` hook, if it has one (checked_by)."""
    hook = getattr(METHODS.get(cfg.method.name), "check", None)
    if hook is not None:
        hook(cfg)


def checked_on_splits(check: Callable[[ExperimentConfig, Splits], None]) -> Callable[[M], M]:
    """Give a method a `check_splits(cfg, splits)` hook: a refusal that needs the run's data
    (how many examples a split has), which the pipeline runs on the data it has read, before
    the run is recorded and before anything trains."""
    def attach(fn: M) -> M:
        fn.check_splits = check  # type: ignore[attr-defined]
        return fn

    return attach


def check_method_splits(cfg: ExperimentConfig, splits: Splits) -> None:
    """Run the configured method's `check_splits(cfg, splits)` hook, if it has one."""
    hook = getattr(METHODS.get(cfg.method.name), "check_splits", None)
    if hook is not None:
        hook(cfg, splits)


def folds_fit_transfer(cfg: ExperimentConfig, splits: Splits) -> None:
    """A method cross-fitted over transfer (option `folds`, given or its default) needs at least
    one example per fold."""
    folds = cfg.method.options.get("folds", parameters(METHODS.get(cfg.method.name))["folds"].default)
    n = len(splits.transfer)
    if isinstance(folds, int) and folds > n:
        raise W2SError(f"method.folds={folds} but the transfer split has {n} examples; set "
                       f"method.folds={min(5, n)} (at most {n})")


@dataclass
class Setting:
    """What a method works with: the run's context, the splits, both models, the supervisor."""

    ctx: MethodContext
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
