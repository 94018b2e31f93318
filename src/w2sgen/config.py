"""Typed experiment configuration: YAML in, validated dataclasses out, `key=value` overrides.

Every field has a default, so an empty file is the default experiment. Components that have
their own options (task, loss) are written `name` or `{name: ..., option: value}`; their
options are checked against the registered component's signature.
"""
from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Optional, Union

import yaml

from . import options
from .errors import W2SError, shown
from .options import Check, Fraction, Ge, Gt, NonEmpty, PositiveInt, Range, check_value
from .paths import read_yaml_mapping, yaml_load  # noqa: F401 - read_yaml_mapping: re-exported
from .spec import Component, stable_hash


@dataclass
class SplitsConfig:
    """Split sizes: an int is a count of examples, a float in (0, 1) a fraction of the task."""

    weak_train: Union[int, float] = 2000
    transfer: Union[int, float] = 2000
    test: Union[int, float] = 2000
    seed: Annotated[int, Ge(0)] = 0


@dataclass
class FeaturesConfig:
    max_length: Annotated[int, Ge(2)] = 128  # tokens; checked against the model's positions too
    batch_size: PositiveInt = 64
    precision: Literal["auto", "bf16", "fp32", "fp16"] = "auto"  # auto: fp32 on a CPU (ONNX Runtime), bf16 on a GPU with it
    pooling: Literal["auto", "mean", "cls", "last"] = "auto"
    # What one features computation covers: `split` - each split's examples (weak_train,
    # transfer, test) as cut; `task` - every example of the task once, each split reading its
    # rows, so runs on other split seeds of the task re-use them (sweeps over `splits.seed`).
    # How features are computed, not what: kept out of run identities.
    scope: Literal["split", "task"] = "split"

    def pooling_for(self, ref: Any) -> str:
        """`auto`: masked mean for encoders, last real token for causal LMs."""
        return ref.pooling if self.pooling == "auto" else self.pooling


@dataclass
class TrainConfig:
    mode: str = "probe"
    epochs: PositiveInt = 10
    lr: Optional[Annotated[float, Gt(0)]] = None  # None: the mode's default (probe 1e-3, full 2e-5, lora 1e-4)
    batch_size: PositiveInt = 32
    weight_decay: Annotated[float, Ge(0)] = 0.01
    warmup_fraction: Fraction = 0.0
    lora_rank: PositiveInt = 8
    last_k: PositiveInt = 2  # train.mode=last_k: how many top blocks train
    # Added after schema 1; each default keeps the earlier behaviour, so it stays out of run
    # identities at that value (see IDENTITY_DEFAULTS).
    precision: Literal["auto", "bf16", "fp32", "fp16"] = "auto"  # autocast of full/lora/last_k
    micro_batch_size: Optional[PositiveInt] = None  # None: the whole batch; else gradient accumulation
    gradient_checkpointing: bool = False  # recompute activations in backward (full/lora)
    # Which epoch's model a training step keeps: `last`, or `weak_val` - hold out `select_size`
    # of the student's transfer examples (a fraction < 1, else a count), labelled by the weak
    # model, and keep the epoch whose AUROC against those weak labels is best (no ground truth).
    select: Literal["last", "weak_val"] = "last"
    select_size: Union[Annotated[int, Ge(2)], Annotated[float, Range(0, 1, lo_open=True, hi_open=True)]] = 0.2
    # train.mode=label_tokens: the prompt and its two label words ([negative, positive], each one
    # token after the prompt; lm/tokens.py); None takes the task's instruction and words and
    # prompting.DEFAULT_TEMPLATE. `adapter`: LoRA adapters (lora) or every weight (none).
    label_words: Optional[Annotated[list[str], Check(
        lambda w: len(w) == 2 and all(isinstance(x, str) and x.strip() for x in w),
        "two label words [negative, positive]")]] = None
    instruction: Optional[str] = None
    template: Optional[Annotated[str, Check(
        lambda t: "{text}" in t and t.rstrip().endswith("{label}"),
        "a prompt template containing {text} and ending with {label}")]] = None
    adapter: Literal["lora", "none"] = "lora"
    # the modules LoRA adapts (lora and label_tokens): every linear layer, or these names
    lora_targets: Union[Literal["all-linear"], Annotated[list[str], NonEmpty()]] = "all-linear"


@dataclass(frozen=True)
class Overrides:
    """Annotation of a config field that is a partial mapping of another section's fields
    (`weak_train` of TrainConfig's): each value checked as that field is, unknown keys refused;
    the field holds the given keys only (None when empty), so unset ones follow the section."""

    cls: type
    section: str  # the config key of the section it overrides, for messages


# train.* options without meaning for the weak supervisor, which always keeps its last epoch
WEAK_ONLY_TRAIN = ("select", "select_size")


@dataclass
class EvalConfig:
    # resamples; the upper bound keeps the index matrix (resamples x test size) in memory
    bootstrap: Annotated[int, Range(1, 100_000)] = 1000
    confidence: Annotated[float, Range(0, 1, lo_open=True, hi_open=True)] = 0.95
    # What a sweep's report measures PGR against: each seed's own weak and ceiling (per_seed),
    # or their means over the sweep's seeds (fixed, as the 2026 testbed does;
    # metrics.fixed_baseline_pgr). A report setting: a run computes the same either way.
    pgr_baseline: Literal["per_seed", "fixed"] = "per_seed"


@dataclass
class ExperimentConfig:
    kind: ClassVar[str] = "classification"  # the run kind (runs.run_kind); not a field
    name: str = "default"
    task: Component = field(default_factory=lambda: Component("rt_sentiment"))
    weak_model: str = "minilm-l6"
    strong_model: str = "mpnet-base"
    seed: Annotated[int, Range(0, 2**32 - 1)] = 0  # torch and numpy seeds are 32-bit
    splits: SplitsConfig = field(default_factory=SplitsConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # The weak supervisor's train.* settings, field by field over `train` (e.g. {mode: probe}:
    # a cheap probe supervises a causal LM trained with label_tokens). None: it trains as the
    # strong models do. The ceiling, the student and bootstrap's rungs always use `train`.
    weak_train: Annotated[Optional[dict[str, Any]], Overrides(TrainConfig, "train")] = None
    method: Component = field(default_factory=lambda: Component("naive"))
    loss: Component = field(default_factory=lambda: Component("xent"))
    eval: EvalConfig = field(default_factory=EvalConfig)
    store: Annotated[str, NonEmpty()] = "runs"
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: a GPU when torch sees one
    # The names a suite gave this cell's values, per grid axis ({methods: logconf_strong}):
    # reports show them. A name, like `name`, is not part of what the results depend on.
    labels: Optional[dict[str, str]] = None

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data (what a run records): `weak_train` as the weak supervisor's
        whole effective train settings, and left out when there is none (so a config without
        it reads as it did before the key existed)."""
        d = dataclasses.asdict(self)
        if not self.labels:  # as configs without labels were recorded before the key existed
            d.pop("labels")
        if self.weak_train:
            d["weak_train"] = dataclasses.asdict(self.weak_train_config())
        else:
            d.pop("weak_train")
        return d

    def torch_device(self) -> str:
        return torch_device(self.device)

    def weak_train_config(self) -> TrainConfig:
        """The weak supervisor's training settings: `train` with `weak_train`'s fields over it."""
        return dataclasses.replace(self.train, **(self.weak_train or {}))

    def weak_inherited_note(self) -> Optional[str]:
        """One line when the weak supervisor trains under another mode than `train`
        (`weak_train.mode`) yet takes over fields of `train` set away from their defaults: set
        for the strong model, they apply to the weak one too unless weak_train names them (a
        full fine-tuning warm-up once leaked into a weak probe that way). None otherwise."""
        from .train import MODES

        weak = self.weak_train or {}
        if weak.get("mode", self.train.mode) == self.train.mode:
            return None
        default = TrainConfig()
        # a field some mode reads and the weak mode does not (label_words under a probe) is moot
        moot = set().union(*(m.own_fields for _, m in MODES.items())) - MODES.get(weak["mode"]).own_fields
        taken = [f"{f.name}={getattr(self.train, f.name)!r}" for f in dataclasses.fields(TrainConfig)
                 if f.name not in ("mode", *moot) and f.name not in weak
                 and getattr(self.train, f.name) != getattr(default, f.name)]
        if not taken:
            return None
        return (f"note: the weak supervisor (weak_train.mode={weak['mode']}) takes train's "
                f"{', '.join(taken)}; set weak_train.<key> where that was meant for the "
                f"strong model (train.mode={self.train.mode}) only")

    def for_weak(self) -> ExperimentConfig:
        """This config as the weak supervisor trains under it: `train` is weak_train_config()
        and there is no `weak_train`. Without an override, this very config."""
        if not self.weak_train:
            return self
        return dataclasses.replace(self, train=self.weak_train_config(), weak_train=None)

    def resolved(self, check: bool = True) -> ExperimentConfig:
        """This config with its component options canonical and every machine-dependent default
        made concrete (`precision: auto` -> bf16 or fp32 for the device it will run on): what
        runs, what is recorded, what is hashed. Resolving twice changes nothing. `check=False`
        (a stored run being re-keyed): a precision already concrete is kept as recorded,
        without this machine's checks (fp16 of a GPU run, read on a host without a GPU)."""
        from .models import MODELS

        device = self.torch_device() if check or self.device == "auto" else self.device
        task, method, loss = canonical_components(self)
        # Features on a CPU: fp32 through ONNX Runtime was faster than torch's bf16 even with
        # native bf16 units, and bf16 MPNet features miss cosine 0.999 to fp32 (docs/speed.md)
        features = dataclasses.replace(self.features, precision="fp32" if (
            self.features.precision == "auto" and device == "cpu") else _precision(
            self.features.precision, device, "features.precision", check))
        train = _resolved_train(self.train, device, "train", check)
        weak_train = None
        if self.weak_train:  # kept as what differs from `train` once both are resolved
            weak = _resolved_train(self.weak_train_config(), device,
                                   "weak_train" if "precision" in self.weak_train else "train", check)
            weak_train = {k: v for k, v in dataclasses.asdict(weak).items()
                          if v != getattr(train, k)} or None
        return dataclasses.replace(self, task=task, method=method, loss=loss, features=features,
                                   train=train, weak_train=weak_train,
                                   weak_model=MODELS.canonical(self.weak_model),
                                   strong_model=MODELS.canonical(self.strong_model))

    def identity(self, check: bool = True) -> dict[str, Any]:
        """What the results depend on: the resolved config (component options canonical,
        precision concrete) less where and how it runs, less the options added after schema 1
        while they keep the earlier behaviour. Nothing in it is measured: `precision: auto`
        follows the device's capability (hardware.auto_precision). `check`: see resolved."""
        cfg = self.resolved(check)
        d = cfg.to_dict()
        if IDENTITY_SCHEMA != 1:  # schema 1 is implicit, so the hashes it gave stay valid
            d["schema"] = IDENTITY_SCHEMA
        for key in ("store", "name", "device", "labels"):  # where, how and what it is called
            d.pop(key, None)
        d["features"].pop("scope", None)  # how features are computed, not what they are
        d["train"] = train_identity(cfg.train)
        if cfg.weak_train:  # added after schema 1: absent (or the same as train), not in it
            d["weak_train"] = train_identity(cfg.weak_train_config())
        for key in IDENTITY_DEFAULTS["eval"]:  # how a report reads runs, not what a run computes
            d["eval"].pop(key, None)
        return d

    def hash(self, check: bool = True) -> str:
        """Identity of the experiment's results: everything except where they are stored."""
        return stable_hash(self.identity(check))


# The version of what an identity holds and how (bump it when that changes in a way the values
# cannot say, and let `w2s store migrate` re-key stored runs). Schema 1 is left out of the hash.
IDENTITY_SCHEMA = 1

# Options added after schema 1, with the value that keeps the earlier behaviour. At that value they
# stay out of run identities and cache keys, so adding them re-keyed no stored run or cached step.
# The next option added goes here too (a test checks that old hashes stay the same).
IDENTITY_DEFAULTS: dict[str, dict[str, Any]] = {
    "train": {"precision": "fp32", "micro_batch_size": None, "gradient_checkpointing": False,
              "select": "last", "select_size": 0.2, "label_words": None, "instruction": None,
              "template": None, "adapter": "lora", "lora_targets": "all-linear"},
    "eval": {"pgr_baseline": "per_seed"},
}


def canonical_components(cfg: ExperimentConfig) -> tuple[Component, Component, Component]:
    """The config's task, method and loss with their options canonical (options.canonical:
    types conformed from the component's signature, defaults dropped), so every spelling of one
    choice records, hashes and keys its cached steps alike. A task written as a file or folder
    path (`task: data/my.csv`) keeps that form; its implied `path` option is not repeated."""
    from .losses import LOSSES
    from .methods import METHODS
    from .tasks import TASKS, task_component

    task = task_component(cfg.task)
    task_options = options.canonical(TASKS.get(task.name).load, task.options)
    if task is not cfg.task and task_options.get("path") == cfg.task.name:
        task_options.pop("path")
    return (Component(cfg.task.name, task_options),
            Component(cfg.method.name, options.canonical(METHODS.get(cfg.method.name), cfg.method.options)),
            Component(cfg.loss.name, options.canonical(LOSSES.get(cfg.loss.name), cfg.loss.options)))


PrecisionSetting = Literal["auto", "bf16", "fp32", "fp16"]


def _precision(requested: str, device: str, where: str, check: bool) -> PrecisionSetting:
    """A precision setting made concrete for `device`; one already concrete is kept as it is
    without this machine's checks where `check` is off."""
    from .hardware import resolve_precision

    if not check and requested in ("bf16", "fp32", "fp16"):
        return typing.cast(PrecisionSetting, requested)
    return resolve_precision(requested, device, where)


def _resolved_train(train: TrainConfig, device: str, where: str, check: bool = True) -> TrainConfig:
    """`train` with its precision concrete for `device` and a micro-batch equal to the batch
    made None (the same numbers); `where` names the section in errors."""
    # the probe trains a linear head on cached features in fp32, whatever is asked
    precision = "fp32" if train.mode == "probe" else _precision(
        train.precision, device, f"{where}.precision", check)
    micro = train.micro_batch_size
    return dataclasses.replace(train, precision=precision,
                               micro_batch_size=None if micro == train.batch_size else micro)


def train_identity(train: TrainConfig) -> dict[str, Any]:
    """The training settings' part of an identity (of a run and of a cached training step)."""
    d = dataclasses.asdict(train)
    for key, legacy in IDENTITY_DEFAULTS["train"].items():
        if d.get(key) == legacy:
            d.pop(key)
    d.pop("gradient_checkpointing", None)  # recomputes the same numbers: how, not what
    return d


# ---------------------------------------------------------------- loading and validation


def torch_device(device: str) -> str:
    """The torch device for a config's `device` (auto | cpu | cuda), checked against the machine."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise W2SError("device=cuda but torch sees no GPU; use device=cpu or device=auto")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


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


def apply_override(raw: dict[str, Any], item: str) -> None:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise W2SError(f"override {item!r} must look like key=value (e.g. train.lr=0.001)")
    try:
        parsed = yaml_load(value)
    except yaml.constructor.ConstructorError as e:
        if "given twice" in str(e.problem):
            raise W2SError(f"override {shown(item)}: {e.problem}") from None
        parsed = value
    except yaml.YAMLError:
        parsed = value
    old = raw.get(key) if "." not in key else None
    if isinstance(parsed, str) and isinstance(old, dict) and old.get("name") in (None, parsed):
        # `loss.alpha_max=0.5 loss=logconf` on a command line: naming the component after its
        # options keeps them (a suite's `method: naive` still replaces the whole component)
        parsed = {**old, "name": parsed}
    set_key(raw, key, parsed)


def set_key(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted key (`train.lr`, `method.probe`) in a raw config mapping."""
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if isinstance(child, str):  # `task: sciq` then `task.path=...`
            child = {"name": child}
        if child is not None and not isinstance(child, dict):
            raise W2SError(f"config: cannot set {key!r}: {part!r} is {child!r}, not a mapping; "
                           f"write {part} as a mapping of keys (or drop it from the file)")
        node[part] = child if isinstance(child, dict) else {}
        node = node[part]
    node[parts[-1]] = value


def from_dict(cls: type, raw: Any, where: str) -> Any:
    if cls is Component:
        return _component(raw, where)
    if not isinstance(raw, dict):
        raise W2SError(f"config: {where or 'top level'} must be a mapping, got {shown(raw)}")
    hints = _known_keys(cls, raw, where)
    kwargs = {}
    for k, v in raw.items():
        if hints[k] is Component and isinstance(v, dict) and "name" not in v:
            # `task.seed=3` alone keeps the default task and sets its option
            v = {"name": getattr(cls(), k).name, **v}
        kwargs[k] = _coerce(hints[k], v, _join(where, k))
    return cls(**kwargs)


def _known_keys(cls: type, raw: dict[str, Any], where: str) -> dict[str, Any]:
    """The type hints of dataclass `cls`'s fields, after refusing a key of `raw` it lacks."""
    fields = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in fields:
            raise W2SError(f"config: unknown key {_join(where, key)!r}; valid keys here: "
                           f"{', '.join(fields)}")
    return typing.get_type_hints(cls, include_extras=True)


def _overrides(over: Overrides, raw: Any, where: str) -> Optional[dict[str, Any]]:
    """A partial mapping of `over.cls`'s fields, each value checked as the field itself is."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise W2SError(f"config: {where} must be a mapping of {over.section} keys (e.g. "
                       f"{where}: {{mode: probe}}), got {shown(raw)}")
    hints = _known_keys(over.cls, raw, where)
    return {k: _coerce(hints[k], v, _join(where, k)) for k, v in raw.items()} or None


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _component(raw: Any, where: str) -> Component:
    if isinstance(raw, str):
        return Component(raw)
    if isinstance(raw, dict) and isinstance(raw.get("name"), str):
        opts = {k: v for k, v in raw.items() if k != "name"}
        return Component(raw["name"], opts)
    raise W2SError(f"config: {where} must be a name or a mapping with a 'name' key, got {shown(raw)}")


def _coerce(tp: Any, value: Any, where: str) -> Any:
    over = next((m for m in options.unwrap(tp)[1] if isinstance(m, Overrides)), None)
    if over is not None:
        return _overrides(over, value, where)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    return check_value(tp, value, where, ints_as_float=True)


def check_components(cfg: ExperimentConfig) -> None:
    """Names and options of registered components, checked before any work starts."""
    from .losses import LOSSES
    from .methods import METHODS, check_method
    from .tasks import TASKS, task_component
    from .train import MODES

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
    cfg.task, cfg.method, cfg.loss = canonical_components(cfg)
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
    from .methods import model_roles

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
    from .models import local_ref
    from .train import MODES

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


def check_options(factory: Any, comp: Component, where: str) -> None:
    """Names, types and bounds of a component's options, from its factory's signature; numeric
    strings become numbers in place."""
    comp.options = options.check(factory, comp.options, where, comp.name)


def dump_yaml(cfg: Any) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
