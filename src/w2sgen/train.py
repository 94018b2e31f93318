"""Training modes, registered in MODES (the loop and the Learner interface: learner.py).

- `probe`: a linear head on frozen, cached features (the CPU default);
- `full`: fine-tune the whole backbone with a linear head on pooled features;
- `lora`: LoRA adapters (peft, lm/lora.py) on the linear layers (`train.lora_targets`) plus the
  head;
- `label_tokens` (label_tokens.py): a causal LM scored by the next-token log-odds of two label
  words after a prompt, trained with LoRA adapters or every weight (`train.adapter`);
- `last_k` (last_k.py): the top `train.last_k` blocks and the head; the frozen blocks below run
  once per example.
Plugins add modes through the `w2sgen.modes` entry points; code that reads MODES imports it from
here, so every built-in mode is registered.

On a GPU the backbone modes fit large models: autocast to `train.precision` (bf16, or fp16
with a gradient scaler; fp32 is no autocast at all), gradient accumulation over
`train.micro_batch_size`, gradient checkpointing (`train.gradient_checkpointing`), LoRA's frozen
base in bf16, and a memory estimate (memory.py) printed before training that refuses a run
which cannot fit.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Optional

import numpy as np
import torch
from torch import nn

from . import features as feats
from . import hardware, last_k, memory
from .example import Example
from .label_tokens import LabelTokenLearner
from .learner import (
    BACKBONE_FIELDS,
    MODES,
    Learner,
    enable_checkpointing,
    eval_callback,
    prepare,
    training_loop,
)
from .lm.lora import LORA_FIELDS, add_lora, check_lora_targets
from .pairwise import PairwiseScorer


@MODES.register("probe")
class ProbeLearner(Learner):
    """Linear head on standardised frozen features; inputs are the cached feature matrix. For a
    pairwise-preference task the features are (N, 2, d), one row per side (prompt + response A,
    prompt + response B; pairwise.py): the head is then a reward model, one linear score shared
    by both sides, compared by Bradley-Terry (`PairwiseScorer`), and both sides standardise
    together."""

    default_lr = 1e-3
    uses_features = True

    def fit(self, inputs, targets, loss_fn, seed, desc, eval_set=None):
        torch.manual_seed(seed)
        x = torch.as_tensor(inputs, dtype=torch.float32)
        rows = x.reshape(-1, x.shape[-1])
        self.mean, self.std = rows.mean(0), rows.std(0).clamp(min=1e-6)
        x = (x - self.mean) / self.std
        self.head = PairwiseScorer(x.shape[-1]) if x.ndim == 3 else self.make_head(x.shape[1])
        return training_loop(list(self.head.parameters()), lambda idx: self.head(x[idx]),
                             targets, loss_fn, self.cfg.train, self.lr, seed, desc,
                             eval_callback(self, eval_set))

    def make_head(self, width: int) -> nn.Module:
        """The classifier trained on `width` standardised features: two logits per example."""
        return nn.Linear(width, 2)

    def predict(self, inputs):
        with torch.inference_mode():
            x = (torch.as_tensor(inputs, dtype=torch.float32) - self.mean) / self.std
            return torch.softmax(self.head(x), -1)[:, 1].numpy()


class _Classifier(nn.Module):
    def __init__(self, backbone: nn.Module, pooling: str, width: int):
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.head = nn.Linear(width, 2)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(feats.backbone_forward(self.backbone, batch, self.pooling))


@MODES.register("full")
class FineTuneLearner(Learner):
    """The whole backbone and a linear head, trained end to end on tokenised examples."""

    default_lr = 2e-5
    own_fields = BACKBONE_FIELDS
    memory_estimate: Optional[str] = "full"

    def build(self, backbone: nn.Module) -> nn.Module:
        return backbone

    def fit(self, inputs: Sequence[Example], targets, loss_fn, seed, desc, eval_set=None):
        from .models import load

        where = self.cfg.torch_device()
        self.precision = prepare(self, where)
        torch.manual_seed(seed)
        weights = memory.weights_dtype(self.cfg.train.mode, self.precision, where)
        ref = self.ref if weights == "fp32" else dataclasses.replace(
            self.ref, load_kwargs={**self.ref.load_kwargs, "dtype": hardware.torch_dtype(weights)})
        backbone, self.tokenizer = load(ref, where)
        if self.cfg.train.gradient_checkpointing:
            enable_checkpointing(backbone)
        backbone = self.build(backbone)
        width = int(getattr(backbone.config, "hidden_size"))  # noqa: B009 (config is typed loosely)
        device = next(backbone.parameters()).device
        self.model = _Classifier(backbone, self.cfg.features.pooling_for(self.ref), width).to(device)
        self.model.train()
        self.join = self.ref.kind == "causal"
        enc = feats.tokenize(self.tokenizer, inputs, self.cfg.features.max_length, self.join)

        def forward(idx: torch.Tensor) -> torch.Tensor:
            return self.model(feats.collate(self.tokenizer, [enc[i] for i in idx.tolist()], device))

        params = [p for p in self.model.parameters() if p.requires_grad]
        try:
            return training_loop(params, forward, targets, loss_fn, self.cfg.train, self.lr,
                                 seed, desc, eval_callback(self, eval_set), self.precision, device)
        finally:
            self.model.eval()

    def predict(self, inputs: Sequence[Example]) -> np.ndarray:
        was_training = self.model.training
        self.model.eval()
        enc = feats.tokenize(self.tokenizer, inputs, self.cfg.features.max_length, self.join)
        device = next(self.model.parameters()).device
        out = []
        bs = self.cfg.features.batch_size
        with torch.inference_mode(), hardware.autocast(self.precision, device):
            for start in range(0, len(enc), bs):
                logits = self.model(feats.collate(self.tokenizer, enc[start:start + bs], device))
                out.append(torch.softmax(logits.float(), -1)[:, 1].cpu().numpy())
        self.model.train(was_training)
        return np.concatenate(out)


@MODES.register("lora")
class LoraLearner(FineTuneLearner):
    """LoRA adapters on all linear layers of the backbone (peft); the head trains fully. On a
    GPU training in bf16 the frozen base loads in bf16; peft keeps the adapters in fp32."""

    default_lr = 1e-4
    checks_models = True
    own_fields = BACKBONE_FIELDS | LORA_FIELDS
    memory_estimate = "lora"

    @classmethod
    def preflight(cls, ref, cfg, examples=None):
        check_lora_targets(ref, cfg, causal_lm=False)

    def build(self, backbone: nn.Module) -> nn.Module:
        return add_lora(backbone, self.cfg.train)


MODES.add("label_tokens", LabelTokenLearner)
MODES.add("last_k", last_k.LastKLearner)
