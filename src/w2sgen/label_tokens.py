"""`train.mode=label_tokens`: a causal LM classifies by the next-token log-odds of two label
words after a prompt (the task's, or train.instruction / label_words / template), trained with
LoRA adapters or every weight (`train.adapter`). `LabelPrompts` builds the prompts and checks
them; `check_label_tokens` is the mode's preflight. train.py registers the mode.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
import torch

from . import hardware, memory
from .config import ExperimentConfig
from .errors import W2SError
from .example import Example
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
from .models import ModelRef


def label_prompt_format(cfg: ExperimentConfig) -> Any:
    """train.mode=label_tokens' prompt: train.instruction / label_words / template, each
    defaulting to the task's prompt (TaskSpec.prompt) and prompting.DEFAULT_TEMPLATE."""
    from .prompting import DEFAULT_TEMPLATE, PromptFormat
    from .tasks import TASKS, task_component

    instruction, words = TASKS.get(task_component(cfg.task).name).prompt
    t = cfg.train
    neg, pos = (w.strip() for w in (t.label_words or words))
    return PromptFormat(instruction if t.instruction is None else t.instruction, (neg, pos),
                        t.template or DEFAULT_TEMPLATE)


class LabelPrompts:
    """Zero-shot prompts as token ids for one tokenizer - start tokens, instruction, then the
    template's query (prompting.example_text) up to the label - and the token ids of the
    (negative, positive) label words as the next token (lm/tokens.py). The blocks are built as
    ICL's prompts are (lm.tokens.start_ids / block_ids, which LocalLM's blocks use too), so both
    see the same zero-shot prompt. A prompt is never cut (the label token must follow all of
    it): one longer than features.max_length is refused."""

    def __init__(self, tokenizer: Any, fmt: Any, model: str, max_length: int):
        from .lm.tokens import block_ids, label_token_ids, start_ids

        self.tok, self.fmt = tokenizer, fmt
        self.fixed = start_ids(tokenizer) + [t for b in block_ids(tokenizer, fmt.head_blocks()) for t in b]
        self.label_ids = list(label_token_ids(tokenizer, fmt.words, context=fmt.query(""),
                                              model=model))
        self.model, self.max_length = model, max_length

    def encode(self, examples: Sequence[Example]) -> list[list[int]]:
        from .lm.tokens import block_ids
        from .prompting import example_text

        queries = block_ids(self.tok, [self.fmt.query(example_text(e)) for e in examples])
        out = [self.fixed + q for q in queries]
        long = [i for i, x in enumerate(out) if len(x) > self.max_length]
        if long:
            worst = max(long, key=lambda i: len(out[i]))
            raise W2SError(f"train.mode=label_tokens: {len(long)} of {len(out)} prompts for "
                           f"{self.model} are longer than features.max_length={self.max_length} "
                           f"tokens (longest {len(out[worst])}, example {examples[worst].id!r}); "
                           f"set features.max_length={len(out[worst])} or more, or shorten "
                           "train.instruction (a prompt is never cut)")
        return out

    def check_bare(self) -> None:
        """Before any data is read: the prompt of an empty text (instruction and template alone)
        within features.max_length, else no prompt can be."""
        from .lm.tokens import block_ids

        n = len(self.fixed) + len(block_ids(self.tok, [self.fmt.query("")])[0])
        if n > self.max_length:
            raise W2SError(f"train.mode=label_tokens: the prompt for {self.model} is {n} tokens "
                           "before any text (instruction and template), longer than "
                           f"features.max_length={self.max_length} tokens; set "
                           f"features.max_length above {n} (with room for the texts), or shorten "
                           "train.instruction (a prompt is never cut)")


def check_label_tokens(ref: ModelRef, cfg: ExperimentConfig,
                       examples: Optional[Sequence[Example]] = None) -> None:
    """train.mode=label_tokens' refusals for one model, from its config and tokenizer (no
    weights): an encoder, a label word that is not one token after the prompt, a prompt longer
    than features.max_length (every prompt of `examples`; without them, the prompt of an empty
    text), a LoRA target the model lacks. The one check behind LabelTokenLearner.preflight,
    which runs it when a config is built (validate.check_models) and before a run is recorded."""
    from .models import load_tokenizer

    if ref.kind != "causal":
        weak = ("; the weak supervisor can train otherwise on its own (weak_train.mode=probe)"
                if ref.name == cfg.weak_model else "")
        raise W2SError(f"train.mode=label_tokens trains a causal LM's label-token logits, but "
                       f"{ref.name!r} is an encoder; use causal weak and strong models (e.g. "
                       f"smollm2-135m) or another train.mode{weak}")
    prompts = LabelPrompts(load_tokenizer(ref), label_prompt_format(cfg), ref.name,
                           cfg.features.max_length)
    if examples is None:
        prompts.check_bare()
    else:
        prompts.encode(examples)
    if cfg.train.adapter == "last_k":  # an architecture last_k splits, k within its depth
        MODES.get("last_k").preflight(ref, cfg)
    check_lora_targets(ref, cfg, causal_lm=True)


class LabelTokenLearner(Learner):
    """A causal LM trained to put probability on two label tokens after a prompt (the 2026
    reference setting): the LM's next-token logits of the (negative, positive) label tokens at
    the prompt's last position are the 2-class logits every loss takes, so a soft weak label p
    is the target distribution (1 - p, p) over the two tokens (the rest of the vocabulary is
    left free: only their difference is trained and read). LoRA adapters on
    train.lora_targets by default (train.adapter=lora; `none` trains every weight; `last_k`
    the top train.last_k blocks on cached hidden states, last_k.LabelTokensLastK); no new
    head. Predictions are the softmax over the two label logits. Precision, micro-batches and
    gradient checkpointing as in `full`/`lora`; the frozen base loads in bf16 on a GPU
    training in bf16 under LoRA."""

    default_lr = 1e-4
    checks_models = True
    reads_texts = True  # every prompt must fit features.max_length
    own_fields = BACKBONE_FIELDS | LORA_FIELDS | {"adapter", "label_words", "instruction", "template",
                                                  "last_k"}
    memory_estimate = "label_tokens"

    def __new__(cls, ref: ModelRef, cfg: ExperimentConfig) -> LabelTokenLearner:
        """adapter=last_k: the top blocks on cached hidden states (last_k.LabelTokensLastK)."""
        if cls is LabelTokenLearner and cfg.train.adapter == "last_k":
            from .last_k import LabelTokensLastK

            return super().__new__(LabelTokensLastK)
        return super().__new__(cls)

    @property
    def lr(self) -> float:
        t = self.cfg.train
        return t.lr if t.lr is not None else (1e-4 if t.adapter == "lora" else 2e-5)

    @classmethod
    def key(cls, cfg):  # the prompt as resolved: a task's default prompt may change
        fmt = label_prompt_format(cfg)
        return {"prompt": {"instruction": fmt.instruction, "words": list(fmt.words),
                           "template": fmt.template}}

    @classmethod
    def preflight(cls, ref, cfg, examples=None):
        check_label_tokens(ref, cfg, examples)

    def fit(self, inputs: Sequence[Example], targets, loss_fn, seed, desc, eval_set=None):
        from .models import load

        where = self.cfg.torch_device()
        self.precision = prepare(self, where)
        torch.manual_seed(seed)
        t = self.cfg.train
        weights = memory.weights_dtype(t.mode, self.precision, where, t.adapter)
        ref = self.ref if weights == "fp32" else dataclasses.replace(
            self.ref, load_kwargs={**self.ref.load_kwargs, "dtype": hardware.torch_dtype(weights)})
        lm, tokenizer = load(ref, where, lm_head=True)
        self.prompts = LabelPrompts(tokenizer, label_prompt_format(self.cfg), self.ref.name,
                                    self.cfg.features.max_length)
        enc = self.prompts.encode(inputs)  # before any work: a too-long prompt fails here
        if t.gradient_checkpointing:
            enable_checkpointing(lm)
        self.net = add_lora(lm, t) if t.adapter == "lora" else lm
        self.lm, self.pad = lm, tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.softcap = getattr(lm.config, "final_logit_softcapping", None)
        self.device = next(lm.parameters()).device
        self.net.train()

        def forward(idx: torch.Tensor) -> torch.Tensor:
            return self.label_logits([enc[i] for i in idx.tolist()])

        params = [p for p in self.net.parameters() if p.requires_grad]
        try:
            return training_loop(params, forward, targets, loss_fn, t, self.lr, seed, desc,
                                 eval_callback(self, eval_set), self.precision, self.device)
        finally:
            self.net.eval()

    def label_logits(self, rows: Sequence[Sequence[int]]) -> torch.Tensor:
        """(len(rows), 2): the LM's next-token logits of the negative and positive label tokens
        after each prompt (token id lists; right-padded, so positions are those of each prompt
        alone; the vocabulary head runs on the last real position only)."""
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.as_tensor(list(r), dtype=torch.long)
            mask[i, :len(r)] = 1
        hidden = self.lm.base_model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                    use_cache=False).last_hidden_state
        last = torch.tensor([len(r) - 1 for r in rows], device=self.device)
        logits = self.lm.get_output_embeddings()(hidden[torch.arange(len(rows), device=self.device), last])
        logits = logits.float()
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits[:, self.prompts.label_ids]

    def predict(self, inputs: Sequence[Example]) -> np.ndarray:
        was_training = self.net.training
        self.net.eval()
        enc = self.prompts.encode(inputs)
        order = np.argsort([-len(e) for e in enc], kind="stable")
        out = np.empty(len(enc), dtype=np.float32)
        bs = self.cfg.features.batch_size
        with torch.inference_mode(), hardware.autocast(self.precision, self.device):
            for start in range(0, len(order), bs):
                rows = order[start:start + bs]
                logits = self.label_logits([enc[i] for i in rows])
                out[rows] = torch.softmax(logits.float(), -1)[:, 1].cpu().numpy()
        self.net.train(was_training)
        return out
