"""A config checked before anything runs: loaded from YAML and overrides, its components' names
and options checked against their registries (and each method's own check of the whole config),
its numbers' ranges, and the train mode's checks of every model on this machine.

The schema and the run identity are config.py's; the checks live here, above the registries
they read, so a component never imports the checks that use it.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from . import options
from .config import (
    WEAK_ONLY_TRAIN,
    ExperimentConfig,
    TrainConfig,
    apply_override,
    check_options,
    from_dict,
)
from .errors import W2SError
from .losses import LOSSES
from .methods import METHODS, check_method, model_roles
from .models import MODELS, local_ref
from .paths import read_yaml_mapping
from .spec import Component, stable_hash
from .tasks import TASKS, canonical_task, task_component
from .train import MODES


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> ExperimentConfig:
    raw = read_yaml_mapping(path, "config file") if path is not None else {}
    for item in overrides:
        apply_override(raw, item)
    return build_config(raw)


def build_config(raw: dict[str, Any]) -> ExperimentConfig:
    """A validated config from a raw mapping of keys (as read from YAML)."""
    cfg = from_dict(ExperimentConfig, raw, "")
    check_components(cfg)
    return cfg


def canonical_components(cfg: ExperimentConfig) -> tuple[Component, Component, Component]:
    """The config's task, method and loss with their options canonical (options.canonical:
    types conformed from the component's signature, defaults dropped), so every spelling of one
    choice records, hashes and keys its cached steps alike (a task: tasks.canonical_task)."""
    return (canonical_task(cfg.task),
            Component(cfg.method.name, options.canonical(METHODS.get(cfg.method.name), cfg.method.options)),
            Component(cfg.loss.name, options.canonical(LOSSES.get(cfg.loss.name), cfg.loss.options)))


def weak_inherited_note(cfg: ExperimentConfig) -> Optional[str]:
    """One line when the weak supervisor trains under another mode than `train`
    (`weak_train.mode`) yet takes over fields of `train` set away from their defaults: set
    for the strong model, they apply to the weak one too unless weak_train names them (a
    full fine-tuning warm-up once leaked into a weak probe that way). None otherwise."""
    weak = cfg.weak_train or {}
    if weak.get("mode", cfg.train.mode) == cfg.train.mode:
        return None
    default = TrainConfig()
    # a field some mode reads and the weak mode does not (label_words under a probe) is moot
    moot = set().union(*(m.own_fields for _, m in MODES.items())) - MODES.get(weak["mode"]).own_fields
    taken = [f"{f.name}={getattr(cfg.train, f.name)!r}" for f in dataclasses.fields(TrainConfig)
             if f.name not in ("mode", *moot) and f.name not in weak
             and getattr(cfg.train, f.name) != getattr(default, f.name)]
    if not taken:
        return None
    return (f"note: the weak supervisor (weak_train.mode={weak['mode']}) takes train's "
            f"{', '.join(taken)}; set weak_train.<key> where that was meant for the "
            f"strong model (train.mode={cfg.train.mode}) only")


def canonical(cfg: ExperimentConfig) -> ExperimentConfig:
    """`cfg` with its components and model names canonical (a model's former name -> its name),
    as build_config makes them: what `resolved`, `identity` and `hash` expect."""
    task, method, loss = canonical_components(cfg)
    return dataclasses.replace(cfg, task=task, method=method, loss=loss,
                               weak_model=MODELS.canonical(cfg.weak_model),
                               strong_model=MODELS.canonical(cfg.strong_model))


def check_components(cfg: ExperimentConfig) -> None:
    """Names and options of registered components, checked before any work starts."""
    MODES.get(cfg.train.mode)
    weak = cfg.weak_train or {}
    if "mode" in weak:
        try:
            MODES.get(weak["mode"])
        except W2SError as e:
            raise W2SError(f"config: weak_train.mode: {e}") from None
    for key in WEAK_ONLY_TRAIN:  # train's own value is allowed: a recorded config reloads
        if key in weak and weak[key] != getattr(cfg.train, key):
            raise W2SError(f"config: weak_train.{key}: the weak supervisor always keeps its last "
                           f"epoch (train.{key} chooses a student's); drop it from weak_train")
    check_options(LOSSES.get(cfg.loss.name), cfg.loss, "loss")
    check_options(METHODS.get(cfg.method.name), cfg.method, "method")
    check_method(cfg)  # the method's own check of the whole config (methods.checked_by)
    task = task_component(cfg.task)
    check_options(TASKS.get(task.name).load, task, "task")
    made = canonical(cfg)
    cfg.task, cfg.method, cfg.loss = made.task, made.method, made.loss
    cfg.weak_model, cfg.strong_model = made.weak_model, made.strong_model
    s = cfg.splits
    for name in ("weak_train", "transfer", "test"):
        v = getattr(s, name)
        if v <= 0 or (isinstance(v, float) and v >= 1):
            raise W2SError(f"config: splits.{name} must be a positive count or a fraction in "
                           f"(0, 1), got {v!r}")
    _check_micro_batch(cfg.train, "train")
    if "batch_size" in weak or "micro_batch_size" in weak:
        _check_micro_batch(cfg.weak_train_config(), "weak_train")
    check_models(cfg)


def _check_micro_batch(train: TrainConfig, where: str) -> None:
    micro = train.micro_batch_size
    if micro is not None and train.batch_size % micro:
        raise W2SError(f"config: {where}.micro_batch_size ({micro}) must be a positive divisor of "
                       f"{where}.batch_size ({train.batch_size}); e.g. {where}.micro_batch_size="
                       f"{_divisor_below(train.batch_size, micro)}")


def weak_problem(cfg: ExperimentConfig, problem: W2SError) -> W2SError:
    """A mode check's refusal of the weak supervisor, naming weak_train when it has its own
    settings (the check's words name train.* keys)."""
    if not cfg.weak_train:
        return problem
    return W2SError(f"weak supervisor {cfg.weak_model!r} (weak_train over train): {problem}")


# train-mode checks already made in this process: inputs -> the error, or None (a sweep's cells
# share models and settings; a GGUF tokenizer takes seconds to read)
_MODEL_CHECKS: dict[str, Optional[W2SError]] = {}


def check_models(cfg: ExperimentConfig) -> None:
    """The train mode's own checks (`Learner.preflight`: tokenizer and model config, never the
    weights, no data) on each model of the config that is on this machine - an installed zoo
    model or a local folder - so `w2s run` and `w2s sweep --dry-run` refuse a bad setting (a
    label word that is not one token, a prompt too long before any text, a LoRA target the model
    lacks, an encoder for train.mode=label_tokens) before anything runs. Models not installed
    and hub ids are left to the run, which names what is missing first and checks them then."""
    weak = cfg.for_weak()
    roles = model_roles(cfg, str)
    if weak is cfg:  # one set of settings for every model: each checked once
        groups = [(cfg, [name for name, _, _ in roles])]
    else:
        groups = [(weak, [name for name, _, supervisor in roles if supervisor]),
                  (cfg, [name for name, _, supervisor in roles if not supervisor])]
    for role, names in groups:
        problem = _check_role(role, names)
        if problem is not None:
            raise weak_problem(cfg, problem) if role is not cfg else problem


def _check_role(cfg: ExperimentConfig, names: list[str]) -> Optional[W2SError]:
    """The first refusal of `cfg.train.mode`'s checks for the models `names`, else None."""

    mode = MODES.get(cfg.train.mode)
    if not mode.checks_models:
        return None
    for name in dict.fromkeys(names):
        ref = local_ref(name)
        if ref is None:
            continue
        d = cfg.to_dict()
        key = stable_hash([cfg.train.mode, ref.identity, ref.path, ref.kind, d["task"], d["train"],
                           d["features"]])
        if key not in _MODEL_CHECKS:
            try:
                mode.preflight(ref, cfg, None)
                _MODEL_CHECKS[key] = None
            except W2SError as e:
                _MODEL_CHECKS[key] = e
        problem = _MODEL_CHECKS[key]
        if problem is not None:
            return W2SError(str(problem))
    return None


def _divisor_below(n: int, m: int) -> int:
    return max([d for d in range(1, max(1, min(n, m)) + 1) if n % d == 0] or [1])
