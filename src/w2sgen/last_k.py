"""`train.mode=last_k`: fine-tune only the top k transformer blocks (plus a linear head).

The bottom L-k blocks are frozen, so their output - the hidden states entering block L-k - is
computed once per example (under inference mode, no graph) and every epoch runs only the top k
blocks. On a CPU this is far cheaper than full fine-tuning and more expressive than a probe.
The activations live in memory for the training step; the step's predictions are cached in the
store like every other training step.

Supported backbones: BERT-family encoders (MiniLM) and MPNet, whose blocks take a
bidirectional attention mask (and, for MPNet, the encoder's shared relative position bias,
which stays frozen). Other architectures get a clear error: use `full` or `lora`.

The top blocks and the head train (and predict) under autocast to `train.precision`; the
frozen bottom's one pass stays fp32, so the cached hidden states do not depend on it.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from . import features as feats
from . import hardware
from .errors import W2SError
from .example import Example
from .train import MODES, Learner, _eval_callback, prepare, training_loop

SUPPORTED = ("BertModel", "MPNetModel")


class TopBlocks(nn.Module):
    """The last k blocks of an encoder, runnable on the hidden states that enter them."""

    def __init__(self, backbone: nn.Module, k: int):
        super().__init__()
        arch = type(backbone).__name__
        if arch not in SUPPORTED:
            raise W2SError(f"train.mode=last_k supports {', '.join(SUPPORTED)} backbones, not {arch}; "
                           "use train.mode=full or lora")
        layers = getattr(backbone.encoder, "layer", None)  # torch types it Tensor | Module
        if not isinstance(layers, nn.ModuleList):
            raise W2SError(f"train.mode=last_k found no encoder.layer block list in this {arch}; "
                           "use train.mode=full or lora")
        n_layers = len(layers)
        if not 1 <= k <= n_layers:
            raise W2SError(f"train.last_k must be between 1 and {n_layers} for this model, got {k}")
        self.blocks = nn.ModuleList(list(layers)[n_layers - k:])
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


@MODES.register("last_k")
class LastKLearner(Learner):
    default_lr = 1e-4
    # gradient_checkpointing: read to refuse it (memory.check_fits), so inheriting true matters
    own_fields = frozenset({"precision", "last_k", "gradient_checkpointing"})
    memory_estimate = "last_k"

    def fit(self, inputs: Sequence[Example], targets, loss_fn, seed, desc, eval_set=None):
        from .models import load

        where = self.cfg.torch_device()
        self.precision = prepare(self, where)  # the frozen bottom's pass stays fp32
        torch.manual_seed(seed)
        self.backbone, self.tokenizer = load(self.ref, where)
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.top = TopBlocks(self.backbone, self.cfg.train.last_k)
        for p in self.top.blocks.parameters():
            p.requires_grad_(True)
        device = next(self.backbone.parameters()).device
        self.head = nn.Linear(self.backbone.config.hidden_size, 2).to(device)
        self.pooling = self.cfg.features.pooling_for(self.ref)
        self._memo: dict[tuple, list[torch.Tensor]] = {}
        acts = self.activations(inputs)
        params = [*self.top.blocks.parameters(), *self.head.parameters()]
        self.top.train()

        def forward(idx: torch.Tensor) -> torch.Tensor:
            return self.logits([acts[i] for i in idx.tolist()])

        try:
            return training_loop(params, forward, targets, loss_fn, self.cfg.train, self.lr, seed,
                                 desc, _eval_callback(self, eval_set), self.precision, device)
        finally:
            self.top.eval()

    def activations(self, examples: Sequence[Example]) -> list[torch.Tensor]:
        """Per example, the unpadded hidden states entering the first trained block."""
        key = tuple(e.id for e in examples)
        if key not in self._memo:
            enc = feats.tokenize(self.tokenizer, examples, self.cfg.features.max_length, False)
            device = next(self.backbone.parameters()).device
            out: list[Any] = [None] * len(enc)
            bs = self.cfg.features.batch_size
            order = np.argsort([-len(e["input_ids"]) for e in enc], kind="stable")
            self.backbone.eval()
            with torch.inference_mode():
                for start in range(0, len(order), bs):
                    idx = order[start:start + bs]
                    batch = feats.collate(self.tokenizer, [enc[i] for i in idx], device)
                    h = self.backbone(**batch, output_hidden_states=True).hidden_states[self.top.start]
                    for row, i in enumerate(idx):
                        n = int(batch["attention_mask"][row].sum())
                        # right padding: the real tokens are the first n
                        out[i] = h[row, :n].clone()
            self._memo[key] = out
        return self._memo[key]

    def logits(self, acts: list[torch.Tensor]) -> torch.Tensor:
        hidden = nn.utils.rnn.pad_sequence(acts, batch_first=True)
        lengths = torch.tensor([len(a) for a in acts], device=hidden.device)
        mask = (torch.arange(hidden.shape[1], device=hidden.device)[None] < lengths[:, None]).long()
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
