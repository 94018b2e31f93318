"""The typed config of `w2s generate`: YAML in, validated dataclasses out, key=value overrides.

Models are backend components: `{name: hf, model: smollm2-135m}` or `{name: openai, base_url:
http://host:8000/v1, model: <served name>, api_key_env: OPENAI_API_KEY}`; a bare model name
(`weak: gemma3-270m`) is short for the `hf` backend. `methods` is a list of method names or a
mapping of method name to options (`methods: {naive: {}, icl_refine: {batch_size: 5}}`, which
`methods.icl_refine.batch_size=5` overrides). When the strong model is an endpoint, the run
writes each method's training file and stops; `students: {icl_refine: <backend of the model
tuned on it>}` evaluates the tuned models as the students. Configs hold the *name* of the environment
variable with the API key, never the key, so configs saved with results hold no secret.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import yaml

from ..config import (
    Component,
    _component,
    apply_override,
    check_options,
    from_dict,
    read_yaml_mapping,
    stable_hash,
    torch_device,
)
from ..errors import W2SError

SMOLLM = {"model": "smollm2-135m"}
DEFAULT_METHODS = ("naive", "icl_refine", "infer_and_respond", "ask_to_improve")


@dataclass
class QuestionsConfig:
    train: int = 24  # weakly labelled questions the student is fine-tuned on
    eval: int = 16  # held-out questions every system answers and is scored on
    seed: int = 0  # which questions go where


@dataclass
class GenerationConfig:
    max_new_tokens: int = 48
    temperature: float = 0.0  # 0: greedy, as in the paper


@dataclass
class FinetuneConfig:
    epochs: int = 3
    lr: float = 2e-4
    batch_size: int = 4
    lora_rank: int = 8
    max_length: int = 384  # tokens of prompt + answer
    precision: Literal["auto", "bf16", "fp32", "fp16"] = "auto"  # forward-pass autocast while training


@dataclass
class JudgeConfig:
    backend: Component = field(default_factory=lambda: Component("hf", dict(SMOLLM)))
    samples: int = 2  # 0: no judge
    temperature: float = 0.7
    max_new_tokens: int = 24
    prompt: str = "v1"


@dataclass
class GenerativeConfig:
    kind: Literal["generative"] = "generative"
    name: str = "generative"
    task: Component = field(default_factory=lambda: Component("persona"))
    weak: Component = field(default_factory=lambda: Component("hf", dict(SMOLLM)))
    strong: Component = field(default_factory=lambda: Component("hf", dict(SMOLLM)))
    methods: list = field(default_factory=lambda: [Component(m) for m in DEFAULT_METHODS])
    questions: QuestionsConfig = field(default_factory=QuestionsConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    # strong model behind an endpoint: method name -> backend of the model you fine-tuned on that
    # method's exported training file, evaluated as that method's student
    students: dict = field(default_factory=dict)
    seed: int = 0
    store: str = "runs"
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def resolved(self) -> GenerativeConfig:
        """`finetune.precision: auto` made concrete for the device (see ExperimentConfig)."""
        from ..hardware import resolve_precision

        precision = resolve_precision(self.finetune.precision, self.torch_device(),
                                      "finetune.precision")
        # resolve_precision returns one of hardware.PRECISIONS (typed str there)
        ft = dataclasses.replace(self.finetune, precision=cast(
            Literal["auto", "bf16", "fp32", "fp16"], precision))
        return dataclasses.replace(self, finetune=ft)

    def hash(self) -> str:
        d = self.resolved().to_dict()
        for key in ("store", "name", "device"):
            d.pop(key)
        return stable_hash(d)

    def torch_device(self) -> str:
        return torch_device(self.device)


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> GenerativeConfig:
    raw = read_yaml_mapping(path, "config file") if path is not None else {}
    if any(o.partition("=")[0].startswith("methods.") for o in overrides):
        # `methods.<name>.<option>=` needs the mapping form (and keeps the other methods)
        methods = _methods(raw.get("methods", list(DEFAULT_METHODS)))
        raw["methods"] = {m.name: dict(m.options) for m in methods}
    for item in overrides:
        apply_override(raw, item)
    return build_config(raw)


def _methods(raw: Any) -> list[Component]:
    if isinstance(raw, str):
        raw = [raw]
    if isinstance(raw, dict) and raw and all(isinstance(v, (dict, type(None))) for v in raw.values()):
        return [Component(str(k), dict(v or {})) for k, v in raw.items()]
    if isinstance(raw, list) and raw:
        return [_component(m, "methods") for m in raw]
    raise W2SError(f"config: methods must be a method name, a list of them, or a mapping of name "
                   f"to options; got {raw!r}")


def backend_component(comp: Component) -> Component:
    """`smollm2-135m` alone is short for `{name: hf, model: smollm2-135m}`."""
    from .backends import BACKENDS

    if comp.name not in BACKENDS and "model" not in comp.options:
        return Component("hf", {"model": comp.name, **comp.options})
    return comp


def build_config(raw: dict[str, Any]) -> GenerativeConfig:
    from .backends import BACKENDS
    from .judge import prompt
    from .methods import GEN_METHODS
    from .tasks import GEN_TASKS

    raw = dict(raw)
    methods = _methods(raw.pop("methods")) if "methods" in raw else None
    cfg = from_dict(GenerativeConfig, raw, "")
    if methods is not None:
        cfg.methods = methods
    names = [m.name for m in cfg.methods]
    if len(set(names)) != len(names):
        raise W2SError(f"config: methods lists a method twice: {names}")
    for m in cfg.methods:
        check_options(GEN_METHODS.get(m.name), m, "method")
    check_options(GEN_TASKS.get(cfg.task.name).load, cfg.task, "task")
    cfg.weak, cfg.strong = backend_component(cfg.weak), backend_component(cfg.strong)
    cfg.judge.backend = backend_component(cfg.judge.backend)
    for where, comp in (("weak", cfg.weak), ("strong", cfg.strong), ("judge.backend", cfg.judge.backend)):
        check_options(BACKENDS.get(comp.name), comp, where)
        if "api_key" in comp.options:  # checked above too; say why it is not an option
            raise W2SError(f"config: {where} takes api_key_env (the variable's name), not the key")
    cfg.students = {str(k): backend_component(_component(v, f"students.{k}")) for k, v in cfg.students.items()}
    for name, comp in cfg.students.items():
        if name not in names:
            raise W2SError(f"config: students.{name} names no method in methods ({', '.join(names)})")
        check_options(BACKENDS.get(comp.name), comp, f"students.{name}")
    prompt(cfg.judge.prompt)
    for where, v, lo in (("questions.train", cfg.questions.train, 1), ("questions.eval", cfg.questions.eval, 1),
                         ("generation.max_new_tokens", cfg.generation.max_new_tokens, 1),
                         ("finetune.epochs", cfg.finetune.epochs, 1),
                         ("finetune.batch_size", cfg.finetune.batch_size, 1),
                         ("finetune.lora_rank", cfg.finetune.lora_rank, 1),
                         ("finetune.max_length", cfg.finetune.max_length, 8),
                         ("judge.samples", cfg.judge.samples, 0),
                         ("judge.max_new_tokens", cfg.judge.max_new_tokens, 1)):
        if v < lo:
            raise W2SError(f"config: {where} must be at least {lo}, got {v}")
    for where, v in (("generation.temperature", cfg.generation.temperature),
                     ("judge.temperature", cfg.judge.temperature)):
        if v < 0:
            raise W2SError(f"config: {where} must be >= 0, got {v}")
    if cfg.finetune.lr <= 0:
        raise W2SError("config: finetune.lr must be positive")
    return cfg


def dump_yaml(cfg: GenerativeConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
