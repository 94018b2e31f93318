"""`train.mode=last_k`: fine-tune only the top k transformer blocks (plus a linear head).

The bottom L-k blocks are frozen, so their output - the hidden states entering block L-k - is
computed once per example (under inference mode, no graph) and every epoch runs only the top k
blocks. On a CPU this is far cheaper than full fine-tuning and more expressive than a probe.
The activations live in memory (SHARED: per process, for a model, depth and list of examples,
so a sweep's later steps on the same data reuse them); the step's predictions are cached in the
store like every other training step.

Supported backbones: BERT-family encoders (MiniLM) and MPNet, whose blocks take a
bidirectional attention mask (and, for MPNet, the encoder's shared relative position bias,
which stays frozen), and decoder-only causal LMs of the Llama, Qwen2 and Gemma 3 families
(`CausalTopBlocks`): their top blocks get the causal (and, for sliding-window layers, windowed)
mask and rotary position embeddings of positions counted from the attention mask, and the final
norm trains with them; causal LMs pool their last real token. Other architectures, or a last_k
beyond the model's depth, get a one-line error when the config is built (`preflight`).

The top blocks and the head train (and predict) under autocast to `train.precision`; the
frozen bottom's one pass stays fp32, so the cached hidden states do not depend on it.
"""
from __future__ import annotations

import hashlib
import inspect
import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from . import features as feats
from . import hardware
from .errors import W2SError
from .example import Example
from .label_tokens import LabelPrompts, LabelTokenLearner, label_prompt_format
from .learner import Learner, eval_callback, prepare, training_loop

ENCODERS = ("BertModel", "MPNetModel")
DECODERS = ("LlamaModel", "Qwen2Model", "Gemma3TextModel")
SUPPORTED = ENCODERS + DECODERS
# the frozen bottoms' outputs, shared within a process (least recently used dropped past SHARED_BYTES)
SHARED: OrderedDict[tuple, list[torch.Tensor]] = OrderedDict()
SHARED_BYTES = 2 * 2**30
# model_type in config.json -> the backbone AutoModel builds (what preflight reads, no weights)
MODEL_TYPES = {"bert": "BertModel", "mpnet": "MPNetModel", "llama": "LlamaModel",
               "qwen2": "Qwen2Model", "gemma3_text": "Gemma3TextModel"}


def _unsupported(arch: str) -> W2SError:
    return W2SError(f"train.mode=last_k supports {', '.join(SUPPORTED)} backbones, not {arch}; "
                    "use train.mode=full or lora")


def _check_depth(k: int, n_layers: int, name: str) -> None:
    if not 1 <= k <= n_layers:
        raise W2SError(f"train.last_k={k} but model {name!r} has {n_layers} transformer blocks; "
                       f"set train.last_k between 1 and {n_layers}")


def top_blocks(backbone: nn.Module, k: int, name: str = "") -> TopBlocks | CausalTopBlocks:
    """The trainable top of `backbone`: TopBlocks for an encoder, CausalTopBlocks for a decoder."""
    arch = type(backbone).__name__
    if arch in DECODERS:
        return CausalTopBlocks(backbone, k, name)
    return TopBlocks(backbone, k, name)


class TopBlocks(nn.Module):
    """The last k blocks of an encoder, runnable on the hidden states that enter them."""

    def __init__(self, backbone: nn.Module, k: int, name: str = ""):
        super().__init__()
        arch = type(backbone).__name__
        if arch not in ENCODERS:
            raise _unsupported(arch)
        layers = getattr(backbone.encoder, "layer", None)  # torch types it Tensor | Module
        if not isinstance(layers, nn.ModuleList):
            raise W2SError(f"train.mode=last_k found no encoder.layer block list in this {arch}; "
                           "use train.mode=full or lora")
        n_layers = len(layers)
        _check_depth(k, n_layers, name or arch)
        self.blocks = nn.ModuleList(list(layers)[n_layers - k:])
        self.trained = self.blocks  # what trains besides the head
        self.config = backbone.config
        self.start = n_layers - k  # hidden_states[start] enters the first trained block
        # MPNet's relative position bias is shared with the frozen blocks: computed, not trained
        self._position_bias = getattr(backbone.encoder, "compute_position_bias", None)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        from transformers.masking_utils import create_bidirectional_mask

        attn = create_bidirectional_mask(config=self.config, inputs_embeds=hidden, attention_mask=mask)
        bias = None
        if self._position_bias is not None:
            with torch.no_grad():
                bias = self._position_bias(hidden)
        for block in self.blocks:
            out = block(hidden, attn, bias) if bias is not None else block(hidden, attention_mask=attn)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden


class CausalTopBlocks(nn.Module):
    """The last k decoder blocks of a causal LM and its final norm, runnable on the hidden
    states that enter them. Positions are counted from the attention mask (its cumulative sum),
    so a sequence's hidden states do not depend on the batch it was padded in, whichever side
    the tokenizer pads; the bottom pass uses the same positions (`positions`)."""

    def __init__(self, backbone: nn.Module, k: int, name: str = ""):
        super().__init__()
        arch = type(backbone).__name__
        config = backbone.config
        if arch not in DECODERS or getattr(config, "use_bidirectional_attention", False):
            raise _unsupported(arch + (" (bidirectional)" if arch in DECODERS else ""))
        layers, norm, rotary = backbone.layers, backbone.norm, backbone.rotary_emb
        assert isinstance(layers, nn.ModuleList) and isinstance(norm, nn.Module)
        assert isinstance(rotary, nn.Module)
        n_layers = len(layers)
        _check_depth(k, n_layers, name or arch)
        self.start = n_layers - k
        self.blocks = nn.ModuleList(list(layers)[self.start:])
        self.norm: nn.Module = norm
        self.trained = nn.ModuleList([self.blocks, norm])
        self.rotary: nn.Module = rotary
        self.config = config
        types = getattr(config, "layer_types", None) or ["full_attention"] * n_layers
        self.types = list(types)[self.start:]
        self._typed_rotary = "layer_type" in inspect.signature(self.rotary.forward).parameters

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask

        pos = positions(mask)
        kw = dict(config=self.config, inputs_embeds=hidden, attention_mask=mask, cache=None,
                  position_ids=pos)
        makers = {"sliding_attention": create_sliding_window_causal_mask}
        masks = {t: makers.get(t, create_causal_mask)(**kw) for t in set(self.types)}
        rope = {t: self.rotary(hidden, pos, t) if self._typed_rotary else self.rotary(hidden, pos)
                for t in set(self.types)}
        for block, t in zip(self.blocks, self.types):
            out = block(hidden, attention_mask=masks[t], position_embeddings=rope[t], position_ids=pos)
            hidden = out[0] if isinstance(out, tuple) else out
        return self.norm(hidden)


def positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids counted over the real tokens: 0, 1, ... from each sequence's first."""
    return (mask.long().cumsum(1) - 1).clamp(min=0)


class LastKLearner(Learner):
    default_lr = 1e-4
    # gradient_checkpointing: read to refuse it (memory.check_fits), so inheriting true matters
    own_fields = frozenset({"precision", "last_k", "gradient_checkpointing"})
    memory_estimate = "last_k"
    checks_models = True

    @classmethod
    def preflight(cls, ref, cfg, examples=None):
        """The backbone's architecture and depth, from its config alone (no weights)."""
        from .memory import Unestimable, arch_of

        model_type = _model_type(ref)
        if model_type is not None and model_type not in MODEL_TYPES:
            raise _unsupported(f"a {model_type!r} model ({ref.name})")
        try:
            layers = arch_of(ref).layers
        except Unestimable:
            return  # unreadable here: the run's own check names the problem
        _check_depth(cfg.train.last_k, layers, ref.name)

    def fit(self, inputs: Sequence[Example], targets, loss_fn, seed, desc, eval_set=None):
        from .models import load

        where = self.cfg.torch_device()
        self.precision = prepare(self, where)  # the frozen bottom's pass stays fp32
        torch.manual_seed(seed)
        self.backbone, self.tokenizer = load(self.ref, where)
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.top = top_blocks(self.backbone, self.cfg.train.last_k, self.ref.name)
        for p in self.top.trained.parameters():
            p.requires_grad_(True)
        device = next(self.backbone.parameters()).device
        self.head = nn.Linear(self.backbone.config.hidden_size, 2).to(device)
        self.pooling = self.cfg.features.pooling_for(self.ref)
        acts = self.activations(inputs)
        params = [*self.top.trained.parameters(), *self.head.parameters()]
        self.top.train()

        def forward(idx: torch.Tensor) -> torch.Tensor:
            return self.logits([acts[i] for i in idx.tolist()])

        try:
            return training_loop(params, forward, targets, loss_fn, self.cfg.train, self.lr, seed,
                                 desc, eval_callback(self, eval_set), self.precision, device)
        finally:
            self.top.eval()

    def activations(self, examples: Sequence[Example]) -> list[torch.Tensor]:
        """Per example, the unpadded hidden states entering the first trained block: computed
        once per process for a model, depth and list of examples (SHARED: a ceiling's pass serves
        the students of every later cell of an in-process sweep), else by one fp32 pass."""
        causal = isinstance(self.top, CausalTopBlocks)
        content = hashlib.sha256()
        for e in examples:
            content.update(f"{e.id}\x1f{e.text}\x1f{e.text_pair}\x1e".encode())

        def encode() -> list[dict[str, Any]]:
            return feats.tokenize(self.tokenizer, examples, self.cfg.features.max_length, causal)
        return bottom_states(self.backbone, self.tokenizer, self.top, encode, self.cfg.features.batch_size,
                             (self.ref.identity, self.cfg.features.max_length, content.hexdigest()))

    def logits(self, acts: list[torch.Tensor]) -> torch.Tensor:
        hidden, mask = padded(acts)
        return self.head(feats.pool(self.top(hidden, mask), mask, self.pooling))

    def predict(self, inputs: Sequence[Example]) -> np.ndarray:
        acts = self.activations(inputs)
        was = self.top.training
        self.top.eval()
        bs = self.cfg.features.batch_size
        out = []
        device = next(self.head.parameters()).device
        with torch.inference_mode(), hardware.autocast(self.precision, device):
            for start in range(0, len(acts), bs):
                out.append(torch.softmax(self.logits(acts[start:start + bs]).float(), -1)[:, 1].cpu().numpy())
        self.top.train(was)
        return np.concatenate(out)


class LabelTokensLastK(LabelTokenLearner):
    """train.mode=label_tokens with train.adapter=last_k: the top train.last_k blocks of a causal
    LM, its final norm and the LM head's rows of the two label tokens train on the hidden states
    entering those blocks, computed once per prompt (`bottom_states`, as last_k's; the prompts are
    label_tokens' own). The label logits are the whole model's: those rows (a trained copy, so
    with tied embeddings the input embeddings stay as they were) at each prompt's last token,
    after the final norm (and a logit softcap where the model has one). LabelTokenLearner builds
    this learner for adapter last_k."""

    def fit(self, inputs: Sequence[Example], targets, loss_fn, seed, desc, eval_set=None):
        from .models import load

        where = self.cfg.torch_device()
        self.precision = prepare(self, where)  # the frozen bottom's pass stays fp32
        torch.manual_seed(seed)
        self.lm, self.tokenizer = load(self.ref, where, lm_head=True)
        self.prompts = LabelPrompts(self.tokenizer, label_prompt_format(self.cfg), self.ref.name,
                                    self.cfg.features.max_length)
        rows = self.prompts.encode(inputs)  # before any work: a too-long prompt fails here
        for p in self.lm.parameters():
            p.requires_grad_(False)
        self.top = top_blocks(self.lm.base_model, self.cfg.train.last_k, self.ref.name)
        for p in self.top.trained.parameters():
            p.requires_grad_(True)
        self.head = label_head(self.lm, self.prompts.label_ids)
        self.softcap = getattr(self.lm.config, "final_logit_softcapping", None)
        self.device = next(self.lm.parameters()).device
        acts = self.activations(rows)
        params = [*self.top.trained.parameters(), *self.head.parameters()]
        self.top.train()

        def forward(idx: torch.Tensor) -> torch.Tensor:
            return self.top_logits([acts[i] for i in idx.tolist()])

        try:
            return training_loop(params, forward, targets, loss_fn, self.cfg.train, self.lr, seed,
                                 desc, eval_callback(self, eval_set), self.precision, self.device)
        finally:
            self.top.eval()

    def activations(self, rows: Sequence[Sequence[int]]) -> list[torch.Tensor]:
        """Per prompt (token ids), the hidden states entering the first trained block."""
        content = hashlib.sha256(json.dumps([list(r) for r in rows]).encode()).hexdigest()

        def encode() -> list[dict[str, Any]]:
            return [{"input_ids": list(r), "attention_mask": [1] * len(r)} for r in rows]
        return bottom_states(self.lm.base_model, self.tokenizer, self.top, encode,
                             self.cfg.features.batch_size, (self.ref.identity, "label_tokens", content))

    def top_logits(self, acts: Sequence[torch.Tensor]) -> torch.Tensor:
        """(len(acts), 2): the negative and positive label tokens' logits after each prompt."""
        hidden, mask = padded(acts)
        logits = self.head(feats.pool(self.top(hidden, mask), mask, "last")).float()
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits

    def predict(self, inputs: Sequence[Example]) -> np.ndarray:
        acts = self.activations(self.prompts.encode(inputs))
        was = self.top.training
        self.top.eval()
        bs = self.cfg.features.batch_size
        out = []
        with torch.inference_mode(), hardware.autocast(self.precision, self.device):
            for start in range(0, len(acts), bs):
                out.append(torch.softmax(self.top_logits(acts[start:start + bs]), -1)[:, 1].cpu().numpy())
        self.top.train(was)
        return np.concatenate(out)


def label_head(lm: Any, label_ids: Sequence[int]) -> nn.Linear:
    """A trainable copy of the rows of `lm`'s output head for `label_ids`, in fp32."""
    out = lm.get_output_embeddings()
    assert isinstance(out, nn.Linear)
    head = nn.Linear(out.in_features, len(label_ids), bias=out.bias is not None)
    with torch.no_grad():
        head.weight.copy_(out.weight[list(label_ids)].float())
        if out.bias is not None and head.bias is not None:
            head.bias.copy_(out.bias[list(label_ids)].float())
    return head.to(out.weight.device)


def bottom_states(backbone: nn.Module, tokenizer: Any, top: TopBlocks | CausalTopBlocks,
                  encode: Callable[[], list[dict[str, Any]]], batch_size: int, key: tuple
                  ) -> list[torch.Tensor]:
    """Per encoded input (`encode()`: token id dicts, unpadded), its hidden states entering
    `top`'s first block at its real tokens: from SHARED when this process computed them for the
    same `key` (what the inputs are) and depth, else by one fp32 pass of `backbone` under
    inference mode, longest inputs first; kept in SHARED (least recently used dropped past
    SHARED_BYTES)."""
    device = next(backbone.parameters()).device
    key = (*key, top.start, batch_size, str(device))
    if key in SHARED:
        SHARED.move_to_end(key)
        return SHARED[key]
    enc = encode()
    causal = isinstance(top, CausalTopBlocks)
    out: list[Any] = [None] * len(enc)
    order = np.argsort([-len(e["input_ids"]) for e in enc], kind="stable")
    backbone.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            batch = feats.collate(tokenizer, [enc[i] for i in idx], device)
            if causal:  # the positions the top blocks count (padding-side free)
                batch["position_ids"] = positions(batch["attention_mask"])
            h = backbone(**batch, output_hidden_states=True).hidden_states[top.start]
            for row, i in enumerate(idx):
                real = batch["attention_mask"][row].bool()  # either padding side
                out[i] = h[row][real].clone()
    SHARED[key] = out
    while len(SHARED) > 1 and sum(t.numel() * t.element_size() for v in SHARED.values()
                                  for t in v) > SHARED_BYTES:
        SHARED.popitem(last=False)  # the least recently used first
    return out


def padded(acts: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Cached hidden states right-padded into one batch, and its attention mask."""
    hidden = nn.utils.rnn.pad_sequence(list(acts), batch_first=True)
    lengths = torch.tensor([len(a) for a in acts], device=hidden.device)
    return hidden, (torch.arange(hidden.shape[1], device=hidden.device)[None] < lengths[:, None]).long()


def _model_type(ref: Any) -> Optional[str]:
    """`model_type` of a model folder's config.json (None for a GGUF file or an unreadable one)."""
    try:
        value = json.loads((Path(ref.path) / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
