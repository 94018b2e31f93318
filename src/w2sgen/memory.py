"""Training memory, estimated from a model's config before a weight is loaded: will it fit?

A GPU run that does not fit dies with CUDA out-of-memory only after its weights have loaded
(and, in a sweep, after earlier steps have run), so `check_fits` estimates every training step
of a run up front and refuses one that cannot fit with the setting to change; on a CPU the
same estimate is held against the machine's RAM (where a run that does not fit swaps for hours
or is killed), and a model whose features are computed against its fp32 weights (`check_loads`).

What one training step keeps (bytes; `estimate` returns the four parts):
- parameters: every backbone weight at the dtype it is loaded in (fp32; LoRA's frozen base in
  bf16 where the learner loads it so: `weights_dtype`), the head and adapters in fp32, and under
  bf16/fp16 autocast the half-precision copy autocast caches of each trained fp32 weight;
- gradients: one per trained parameter, at its dtype;
- optimizer: AdamW's two fp32 moments per trained parameter, the fp32 temporary its
  multi-tensor (foreach) update allocates during the step, and an fp32 master copy of trained
  weights stored in half precision;
- activations: what autograd keeps for the backward pass, per transformer layer and token
  (`layer_bytes`), for the micro-batch (gradient accumulation runs one at a time); with
  gradient checkpointing only each layer's input is kept, plus one layer's activations while
  it is recomputed.
Not counted: the CUDA context, cuBLAS workspaces and allocator fragmentation (`check_fits`
leaves `1 - HEADROOM` of the device for them), and last_k's cache of the hidden states entering
its top blocks (one per training example, on the device).

Parameters are counted exactly: the model is built from its config on the meta device
(`accelerate.init_empty_weights`), where tensors have shapes and no storage.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
from dataclasses import dataclass
from typing import Any, Optional

from .errors import W2SError
from .loading_policy import hf_kwargs

HEADROOM = 0.9  # the share of a GPU's memory, or of the machine's RAM, a run may plan to use
BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
# i-sized (intermediate) tensors the MLP keeps per token, as bytes per element at compute
# width c: torch's GELU keeps its input and output; the Python tanh-GELU of GPT-2 (gelu_new)
# also keeps three of its intermediates, two of them fp32 under CUDA autocast (pow runs in
# fp32); a gated MLP (SwiGLU) keeps gate, up, activation and product.
MLP_BYTES = {"gelu": lambda c: 2 * c, "gelu_python": lambda c: 3 * c + 8, "gated": lambda c: 4 * c}
PYTHON_GELUS = ("NewGELUActivation", "FastGELUActivation", "QuickGELUActivation")
LORA_TARGETS = ("Linear", "Conv1D")  # what peft's target_modules="all-linear" adapts


class Unestimable(W2SError):
    """No estimate: a backbone whose shape the estimate cannot read (no config, no repeated
    blocks)."""


# The training-memory formulas `estimate` has; a training mode declares which its memory
# follows (`Learner.memory_estimate`), or none.
ESTIMATES = ("full", "lora", "last_k", "label_tokens")


@dataclass(frozen=True)
class Arch:
    """What the estimate needs of a backbone (the `AutoModel` that `models.load` builds)."""

    name: str
    params: int  # every parameter
    block_params: int  # one transformer block's (last_k trains k of them)
    lora_per_rank: int  # sum of in + out features of the linear layers LoRA adapts
    linear_inputs: int  # per block: sum of in features of those layers
    layers: int
    hidden: int
    intermediate: int
    heads: int
    mlp: str  # gelu | gelu_python | gated
    dropout: bool  # dropout in the blocks: training keeps its masks (1 byte an element)
    eager_attention: bool  # attention probabilities materialised (not SDPA's fused kernels)
    vocab: int = 0  # the LM head's rows (label_tokens computes them at each prompt's last token)
    tied: bool = True  # the LM head shares the input embedding (else it adds vocab x hidden)


def _shape(module: Any) -> tuple[int, ...]:
    return tuple(module.weight.shape)


def arch_from_config(config: Any, name: str = "") -> Arch:
    """Count a transformers config's backbone on the meta device: exact, and free."""
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoModel

    with init_empty_weights():
        model = AutoModel.from_config(config)
    blocks = next((m for m in model.modules() if isinstance(m, torch.nn.ModuleList)
                   and len(m) == config.num_hidden_layers), None)
    if blocks is None:
        raise Unestimable(f"model {name or type(model).__name__}: no list of "
                          f"{config.num_hidden_layers} transformer blocks found")
    block = blocks[0]
    linears = [_shape(m) for m in model.modules() if type(m).__name__ in LORA_TARGETS]
    # nn.Linear's weight is (out, in); transformers' Conv1D (GPT-2) stores (in, out)
    inputs = [_shape(m)[0 if type(m).__name__ == "Conv1D" else 1]
              for m in block.modules() if type(m).__name__ in LORA_TARGETS]
    names = [n for n, _ in block.named_modules()]
    kinds = {type(m).__name__ for m in block.modules()}
    hidden = config.hidden_size
    return Arch(
        name=name or type(model).__name__,
        params=sum(p.numel() for p in model.parameters()),
        block_params=sum(p.numel() for p in block.parameters()),
        lora_per_rank=sum(sum(shape) for shape in linears),
        linear_inputs=sum(inputs),
        layers=len(blocks),
        hidden=hidden,
        intermediate=(getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None)
                      or 4 * hidden),
        heads=config.num_attention_heads,
        mlp="gated" if any(n.endswith("gate_proj") for n in names)
        else "gelu_python" if kinds & set(PYTHON_GELUS) else "gelu",
        dropout=any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in block.modules()),
        eager_attention=getattr(model.config, "_attn_implementation", "eager") == "eager",
        vocab=int(getattr(config, "vocab_size", 0) or 0),
        tied=bool(getattr(config, "tie_word_embeddings", True)))


@functools.lru_cache(maxsize=64)
def _arch_at(path: str, kwargs: tuple) -> Arch:
    from transformers import AutoConfig

    return arch_from_config(AutoConfig.from_pretrained(path, **hf_kwargs(dict(kwargs))), path)


def arch_of(ref: Any) -> Arch:
    """A resolved model's `Arch`, from its config alone (no weights read); Unestimable when
    its config cannot be read or built on the meta device."""
    kwargs = tuple(sorted((k, v) for k, v in ref.load_kwargs.items() if k in ("revision", "gguf_file")))
    try:
        return _arch_at(ref.path, kwargs)
    except Unestimable:
        raise
    except Exception as e:  # noqa: BLE001 - config parsers and model classes raise many types
        raise Unestimable(f"model {ref.name!r}: {type(e).__name__}: {e}") from None


# Published config.json values of the models of suites/burns.yaml (their hub pages), so the
# suite's memory can be estimated without a network. GPT-2: vocabulary 50257, 1024 positions,
# 4 x hidden MLP, dropout 0.1; Qwen2.5: SwiGLU, grouped-query attention, no dropout.
GPT2 = dict(vocab_size=50257, n_positions=1024)


def _qwen2(hidden: int, intermediate: int, layers: int, heads: int, kv_heads: int, vocab: int,
           positions: int, tied: bool) -> tuple[str, dict[str, Any]]:
    return ("qwen2", dict(hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
                          num_attention_heads=heads, num_key_value_heads=kv_heads, vocab_size=vocab,
                          max_position_embeddings=positions, tie_word_embeddings=tied))


PUBLISHED: dict[str, tuple[str, dict[str, Any]]] = {
    "openai-community/gpt2": ("gpt2", dict(GPT2, n_embd=768, n_layer=12, n_head=12)),
    "openai-community/gpt2-medium": ("gpt2", dict(GPT2, n_embd=1024, n_layer=24, n_head=16)),
    "openai-community/gpt2-large": ("gpt2", dict(GPT2, n_embd=1280, n_layer=36, n_head=20)),
    "openai-community/gpt2-xl": ("gpt2", dict(GPT2, n_embd=1600, n_layer=48, n_head=25)),
    # hidden, intermediate, layers, heads, KV heads, vocabulary, positions, tied embeddings
    "Qwen/Qwen2.5-0.5B": _qwen2(896, 4864, 24, 14, 2, 151936, 32768, True),
    "Qwen/Qwen2.5-1.5B": _qwen2(1536, 8960, 28, 12, 2, 151936, 131072, True),
    "Qwen/Qwen2.5-3B": _qwen2(2048, 11008, 36, 16, 2, 151936, 32768, True),
    "Qwen/Qwen2.5-7B": _qwen2(3584, 18944, 28, 28, 4, 152064, 131072, False),
    # suites/testbed.yaml's pair (values of the models' published configs, not re-read from the
    # hub on this offline machine)
    "Qwen/Qwen1.5-0.5B-Chat": _qwen2(1024, 2816, 24, 16, 16, 151936, 32768, True),
    # the zoo's gemma3-270m (google/gemma-3-270m's published config: 18 layers, d=640, MLP
    # 2048, 4 heads of 256, 1 KV head, vocabulary 262144), for planning before it is pulled
    "google/gemma-3-270m": ("gemma3_text", dict(hidden_size=640, intermediate_size=2048,
                                                num_hidden_layers=18, num_attention_heads=4,
                                                num_key_value_heads=1, head_dim=256,
                                                vocab_size=262144, tie_word_embeddings=True)),
    "Qwen/Qwen3-4B-Base": ("qwen3", dict(_qwen2(2560, 9728, 36, 32, 8, 151936, 32768, True)[1], head_dim=128)),
}


def published(name: str) -> Arch:
    """The `Arch` of a model in `PUBLISHED`, built from those values (no network)."""
    from transformers import AutoConfig

    model_type, values = PUBLISHED[name]
    return arch_from_config(AutoConfig.for_model(model_type, **values), name)


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


@dataclass(frozen=True)
class Estimate:
    """Bytes one training step needs, in four parts; `setting` says for what."""

    parameters: int
    gradients: int
    optimizer: int
    activations: int
    setting: str = ""

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer + self.activations

    def parts(self) -> str:
        return (f"parameters {_gb(self.parameters)} + gradients {_gb(self.gradients)} + optimizer "
                f"{_gb(self.optimizer)} + activations {_gb(self.activations)}")

    def line(self) -> str:
        """One line, printed before training."""
        return f"memory estimate: {_gb(self.total)} = {self.parts()} ({self.setting})"


def layer_bytes(arch: Arch, micro: int, seq: int, c: int, lora_half: bool = False) -> int:
    """Activations one transformer layer keeps for backward at compute width `c` (bytes per
    element: 2 under bf16/fp16 autocast, 4 in fp32), for `micro` sequences of `seq` tokens.
    Per token: both norms' inputs in fp32 (autocast runs norms in fp32); the attention norm's
    output, q, k and v (grouped-query K/V repeated to every head, as transformers' SDPA path
    does), the attention output and the out-projection's input; the MLP norm's output and the
    MLP's intermediates (MLP_BYTES); dropout masks; under half-precision LoRA, the copy of each
    adapted layer's input cast for its adapter. Eager attention also keeps the (dropped-out)
    probabilities and their mask: heads x seq^2 per sequence. On CPU kernels this is 0.88-0.93 of
    the bytes autograd saves for BERT, GPT-2 and Llama blocks in fp32 (tests/test_memory.py)."""
    h, i = arch.hidden, arch.intermediate
    per_token = (2 * h * 4 + c * 6 * h + c * h + MLP_BYTES[arch.mlp](c) * i
                 + (2 * h if arch.dropout else 0) + (c * arch.linear_inputs if lora_half else 0))
    eager = micro * arch.heads * seq * seq * (2 * c + 1) if arch.eager_attention else 0
    return micro * seq * per_token + eager


def estimate(arch: Arch, mode: str, *, batch_size: int, seq_len: int, precision: str = "fp32",
             micro_batch_size: Optional[int] = None, checkpointing: bool = False,
             lora_rank: int = 8, last_k: int = 2, weights: str = "fp32",
             adapter: str = "lora") -> Optional[Estimate]:
    """Training memory of `mode` (full | lora | last_k | label_tokens) on `arch`, at autocast
    `precision` (resolved: fp32 | bf16 | fp16) with the backbone loaded in `weights`; None for a
    mode without a formula here (a plugin mode that declares none trains unchecked).

    label_tokens is `lora` (adapter lora) or `full` (adapter none) without the linear head,
    or `last_k` (adapter last_k: its two label-token rows are the head) plus an untied LM head,
    with the LM head's own weight when it is not tied to the embeddings (frozen under LoRA),
    and its vocabulary-wide logits at each prompt's last token in the activations. LoRA's
    count is all-linear's: an upper bound when train.lora_targets names fewer layers."""
    if mode == "label_tokens" and adapter == "last_k":  # last_k's, with a frozen untied LM head
        base = estimate(arch, "last_k", batch_size=batch_size, seq_len=seq_len, precision=precision,
                        micro_batch_size=micro_batch_size, last_k=last_k, weights=weights)
        assert base is not None  # last_k has a formula
        untied = 0 if arch.tied else arch.vocab * arch.hidden
        return dataclasses.replace(base, parameters=base.parameters + untied * BYTES[weights],
                                   setting=base.setting.replace("last_k", "label_tokens (last_k)", 1))
    if mode == "label_tokens":
        base = estimate(arch, "lora" if adapter == "lora" else "full", batch_size=batch_size,
                        seq_len=seq_len, precision=precision, micro_batch_size=micro_batch_size,
                        checkpointing=checkpointing, lora_rank=lora_rank, weights=weights)
        assert base is not None  # lora and full have formulas
        w, c = BYTES[weights], BYTES[precision]
        head = 2 * arch.hidden + 2
        untied = 0 if arch.tied else arch.vocab * arch.hidden
        lora = adapter == "lora"
        micro = min(micro_batch_size or batch_size, batch_size)
        parameters = base.parameters - head * (4 + (2 if c == 2 else 0)) + untied * w \
            + (untied * 2 if c == 2 and not lora and w == 4 else 0)
        gradients = base.gradients - head * 4 + (0 if lora else untied * w)
        optimizer = base.optimizer - head * 12 + (0 if lora else untied * (12 + (4 if w < 4 else 0)))
        # the last position's hidden state, its vocabulary logits (at compute width and in fp32)
        activations = base.activations + micro * (arch.hidden * c + arch.vocab * (c + 4))
        setting = base.setting.replace("lora" if lora else "full",
                                       f"label_tokens ({'LoRA' if lora else 'all weights'})", 1)
        return Estimate(parameters, gradients, optimizer, activations, setting)
    head = 2 * arch.hidden + 2  # the linear head: fp32, trained
    if mode == "full":
        frozen, trained, fp32_trained = 0, arch.params, head
    elif mode == "lora":
        frozen, trained, fp32_trained = arch.params, 0, lora_rank * arch.lora_per_rank + head
    elif mode == "last_k":
        trained = last_k * arch.block_params
        frozen, fp32_trained = arch.params - trained, head
    else:  # a mode without a formula: no estimate, and the run is not checked by one
        return None
    w, c = BYTES[weights], BYTES[precision]
    cached_casts = 2 * (fp32_trained + (trained if w == 4 else 0)) if c == 2 else 0
    parameters = (frozen + trained) * w + fp32_trained * 4 + cached_casts
    gradients = trained * w + fp32_trained * 4
    optimizer = (trained + fp32_trained) * 12 + (trained * 4 if w < 4 else 0)

    micro = min(micro_batch_size or batch_size, batch_size)
    layers = last_k if mode == "last_k" else arch.layers
    stream = micro * seq_len * arch.hidden * w  # one residual-stream tensor: a layer's input
    layer = layer_bytes(arch, micro, seq_len, c, lora_half=mode == "lora" and c == 2)
    body = layers * stream + layer if checkpointing else layers * layer
    activations = body + stream + micro * seq_len * arch.hidden * 4  # embeddings, final norm

    setting = (f"{mode}, {precision}{'' if weights == 'fp32' else f', {weights} weights'}, "
               f"batch {batch_size} x {seq_len} tokens"
               f"{f' in micro-batches of {micro}' if micro < batch_size else ''}"
               f"{', checkpointing' if checkpointing else ''}")
    return Estimate(parameters, gradients, optimizer, activations, setting)


def train_precision(train: Any, device: str) -> str:
    """The concrete precision full/lora/last_k train in. The pipeline resolves `auto` before a
    run starts (resolving again changes nothing); in library use it is resolved here, for
    `device`, with the same checks (fp16 needs CUDA)."""
    from .hardware import resolve_precision

    return resolve_precision(train.precision, device, "train.precision")


def weights_dtype(mode: str, precision: str, device: str, adapter: str = "lora") -> str:
    """The dtype a mode loads its backbone in: LoRA's frozen base (mode lora, or label_tokens
    with adapter lora) in bf16 on a GPU training in bf16 (half the memory; nothing of it
    trains), everything else fp32 (trained weights stay fp32 masters under autocast)."""
    on_gpu = str(device).startswith("cuda")
    lora = mode == "lora" or (mode == "label_tokens" and adapter == "lora")
    return "bf16" if lora and precision == "bf16" and on_gpu else "fp32"


def settings_of(cfg: Any, device: str, precision: Optional[str] = None,
                mode: Optional[str] = None) -> dict[str, Any]:
    """`estimate`'s keyword arguments for an experiment config on `device`, at `precision`
    (default: the config's, resolved for the device); `mode`: the estimate the config's
    training mode declares (default: the mode's own name)."""
    t = cfg.train
    mode = mode or t.mode
    precision = precision or train_precision(t, device)
    return dict(mode=mode, batch_size=t.batch_size, seq_len=cfg.features.max_length,
                precision=precision, micro_batch_size=t.micro_batch_size,
                checkpointing=t.gradient_checkpointing, lora_rank=t.lora_rank, last_k=t.last_k,
                weights=weights_dtype(mode, precision, device, t.adapter), adapter=t.adapter)


def plan(ref: Any, cfg: Any, device: str, mode: Optional[str] = None) -> Optional[Estimate]:
    """The estimate for training `ref` under `cfg` on `device`, by the formula `mode` (the one
    the training mode declares; default: its name); None for the probe (a linear head on cached
    features: nothing to plan, and for a mode without an estimate)."""
    if cfg.train.mode == "probe":
        return None
    if cfg.train.gradient_checkpointing and (cfg.train.mode == "last_k" or (
            cfg.train.mode == "label_tokens" and cfg.train.adapter == "last_k")):
        raise W2SError("train.gradient_checkpointing applies to train.mode=full or lora; last_k "
                       "keeps only its top blocks' activations (lower train.last_k instead)")
    return estimate(arch_of(ref), **settings_of(cfg, device, mode=mode))


CONFIG_KEYS = {"micro_batch_size": "train.micro_batch_size", "precision": "train.precision",
               "checkpointing": "train.gradient_checkpointing", "mode": "train.mode",
               "adapter": "train.adapter"}


def advice(arch: Arch, settings: dict[str, Any], budget: float, bf16: bool = True,
           where: str = "train", device: str = "cuda") -> str:
    """The least change of settings that fits `budget` by the estimate, as `set key=value ...`:
    a smaller micro-batch alone (the largest that fits), else checkpointing, bf16 or LoRA, one
    and then more at a time, each with the micro-batch it still needs. `where`: the config
    section the keys are named in (`weak_train` for a weak supervisor with its own settings)."""
    levers: list[tuple[str, Any]] = []
    if not settings["checkpointing"] and settings["mode"] in ("full", "lora", "label_tokens"):
        levers.append(("checkpointing", True))
    if settings["precision"] == "fp32" and bf16:
        levers.append(("precision", "bf16"))
    if settings["mode"] == "full":
        levers.append(("mode", "lora"))
    if settings["mode"] == "label_tokens" and settings.get("adapter") == "none":
        levers.append(("adapter", "lora"))
    batch = settings["batch_size"]
    current = min(settings["micro_batch_size"] or batch, batch)
    micros = [m for m in range(current - 1, 0, -1) if batch % m == 0]

    def fits(s: dict[str, Any]) -> bool:
        s = {**s, "weights": weights_dtype(s["mode"], s["precision"], device, s.get("adapter", "lora"))}
        est = estimate(arch, **s)
        return est is not None and est.total <= budget

    for n in range(len(levers) + 1):
        for combo in itertools.combinations(levers, n):
            change = dict(combo)
            if n and fits({**settings, **change}):
                return "set " + _named(change, where)
            micro = next((m for m in micros
                          if fits({**settings, **change, "micro_batch_size": m})), None)
            if micro is not None:
                return "set " + _named({**change, "micro_batch_size": micro}, where)
    tried = [{"checkpointing": "checkpointing", "precision": "bf16", "mode": "LoRA",
              "adapter": "LoRA"}[k]
             for k, _ in levers]
    return (f"it does not fit even with {', '.join([*tried, 'micro-batches of 1'])}: use a "
            "smaller model or lower features.max_length")


def _named(change: dict[str, Any], where: str = "train") -> str:
    return " ".join(f"{where}.{CONFIG_KEYS[k].split('.', 1)[1]}={str(v).lower()}"
                    for k, v in change.items())


def check_fits(ref: Any, cfg: Any, device: str, where: str = "train",
               mode: Optional[str] = None, gpu: Any = None) -> Optional[Estimate]:
    """The estimate for training `ref` under `cfg` (`cfg.train`: the settings of the model's
    role; the pipeline passes the weak supervisor's as cfg.for_weak(), with `where` =
    `weak_train`, the section its advice names); a W2SError (one line, naming the setting to
    change) when it exceeds HEADROOM of the memory it trains in: the GPU's on a CUDA device,
    this machine's RAM on the CPU (`memory_budget`). Cheap (a config and a meta-device model),
    so the pipeline calls it for every model before a run starts. None for the probe, for a
    backbone the estimate cannot read and for a training mode without an estimate (it trains
    unchecked). `mode`: the estimate the training mode declares. `gpu`: the card's figures
    (hardware.Probe; default: the GPU here)."""
    try:
        est = plan(ref, cfg, device, mode)
    except Unestimable:
        return None
    if est is None:
        return est
    budget, what, bf16 = memory_budget(device, gpu)
    if not what or est.total <= budget:
        return est
    fix = advice(arch_of(ref), settings_of(cfg, device, mode=mode), budget, bf16, where, device)
    who = " (the weak supervisor)" if where != "train" else ""
    raise W2SError(f"training {ref.name}{who} needs ~{_gb(est.total)} by estimate ({est.parts()}; "
                   f"{est.setting}) but {what} has {_gb(budget)} to use: {fix}")


def check_loads(ref: Any, device: str) -> Optional[int]:
    """The bytes of `ref`'s weights in fp32 (what computing its features, or any mode, holds at
    least); a W2SError (one line) when they alone exceed HEADROOM of the memory it runs in. None
    for a model the estimate cannot read."""
    try:
        need = arch_of(ref).params * BYTES["fp32"]
    except Unestimable:
        return None
    budget, what, _ = memory_budget(device)
    if what and need > budget:
        raise W2SError(f"model {ref.name!r} needs ~{_gb(need)} for its fp32 weights alone but "
                       f"{what} has {_gb(budget)} to use; use a smaller model or a machine with "
                       "more memory")
    return need


def memory_budget(device: str, gpu: Any = None) -> tuple[float, str, bool]:
    """(bytes a run may plan to use on `device`: HEADROOM of the GPU's memory or of this
    machine's RAM; what that memory is, in words, '' when unknown; whether bf16 is native).
    `gpu`: the card's figures (hardware.Probe; default: the GPU here)."""
    from . import hardware

    if str(device).startswith("cuda"):
        gpu = gpu or hardware.probe("cuda")
        return HEADROOM * (gpu.memory_bytes or 0), gpu.name, gpu.bf16_native
    ram = hardware.ram_bytes()
    return (HEADROOM * ram if ram else 0.0, f"this machine's {_gb(ram)} of RAM" if ram else "",
            hardware.bf16_native("cpu"))


@dataclass(frozen=True)
class Row:
    """One model a suite trains, under one pair's settings, and its estimate."""

    pair: str
    model: str
    estimate: Optional[Estimate]  # None: no estimate (a training mode without one)
