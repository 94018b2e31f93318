"""Typed experiment configuration: YAML in, validated dataclasses out, `key=value` overrides.

Every field has a default, so an empty file is the default experiment. Components that have
their own options (task, loss) are written `name` or `{name: ..., option: value}`. This module is
the schema, how YAML and overrides are read into it, and the run identity; validate.py checks a
config (`load_config`, `build_config`: options against the registered component's signature).
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
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
    # prompting.DEFAULT_TEMPLATE. `adapter`: LoRA adapters (lora), every weight (none), or the
    # top train.last_k blocks on cached hidden states (last_k).
    label_words: Optional[Annotated[list[str], Check(
        lambda w: len(w) == 2 and all(isinstance(x, str) and x.strip() for x in w),
        "two label words [negative, positive]")]] = None
    instruction: Optional[str] = None
    template: Optional[Annotated[str, Check(
        lambda t: "{text}" in t and t.rstrip().endswith("{label}"),
        "a prompt template containing {text} and ending with {label}")]] = None
    adapter: Literal["lora", "none", "last_k"] = "lora"
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
    # A causal LM (zoo name or folder) whose zero-shot accuracy on test the run adds
    # (metrics.zero_shot; zero_shot.py): comparisons and candidate-answer tasks only. None: none.
    zero_shot: Optional[str] = None


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

    def for_weak(self) -> ExperimentConfig:
        """This config as the weak supervisor trains under it: `train` is weak_train_config()
        and there is no `weak_train`. Without an override, this very config."""
        if not self.weak_train:
            return self
        return dataclasses.replace(self, train=self.weak_train_config(), weak_train=None)

    def resolved(self, check: bool = True) -> ExperimentConfig:
        """This config with every machine-dependent default made concrete (`precision: auto` ->
        bf16 or fp32 for the device it will run on): what runs, what is recorded, what is hashed.
        Its components are canonical as validate.py leaves them (build_config; a config made in
        code: validate.canonical, which pipeline.run applies). Resolving twice changes nothing. `check=False`
        (a stored run being re-keyed): a precision already concrete is kept as recorded,
        without this machine's checks (fp16 of a GPU run, read on a host without a GPU)."""
        device = self.torch_device() if check or self.device == "auto" else self.device
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
        return dataclasses.replace(self, features=features, train=train, weak_train=weak_train)

    def identity(self, check: bool = True) -> dict[str, Any]:
        """What the results depend on: the resolved config (component options canonical as
        validate.py makes them, precision concrete) less where and how it runs, less the options added after schema 1
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
        if d["eval"].get("zero_shot") is None:  # added after schema 1: absent when unset
            d["eval"].pop("zero_shot", None)
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


# ---------------------------------------------------------------- reading a config (validate.py checks it)


def torch_device(device: str) -> str:
    """The torch device for a config's `device` (auto | cpu | cuda), checked against the machine."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise W2SError("device=cuda but torch sees no GPU; use device=cpu or device=auto")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


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


def check_options(factory: Any, comp: Component, where: str) -> None:
    """Names, types and bounds of a component's options, from its factory's signature; numeric
    strings become numbers in place."""
    comp.options = options.check(factory, comp.options, where, comp.name)


def dump_yaml(cfg: Any) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
