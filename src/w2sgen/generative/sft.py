"""Supervised fine-tuning of a local causal LM with LoRA adapters (peft), for the student.

Each training example is a conversation (system prompt if any, the question) and its target
answer, rendered exactly as at generation time (lm.LocalLM.render: the chat template,
or the plain `Question:`/`Answer:` format). Prompt and answer are tokenised as separate blocks
and concatenated, so the prompt tokens are exactly those the model sees when it generates; the
answer block includes the template's end-of-turn marker (the tokenizer's end token in the plain
format), so the student also learns where to stop. Labels are -100 on every prompt token: the
loss is the mean cross-entropy over answer tokens only.

Adapters: LoRA of rank `rank` (alpha = 2 * rank, no dropout) on every linear layer but the
output head. Training is AdamW with linear warm-up over the first 10% of steps then cosine
decay, with a seeded example order; `precision=bf16` runs the forward pass under bfloat16
autocast (adapter weights and optimizer state stay fp32; fast only where the CPU or GPU has
bf16 units, and `auto`, the default, picks it only there), `fp32` does not. The adapter's weights come back as a dict of numpy
arrays (what the run store caches) and are attached to and detached from the one loaded base
model (`attach_lora` / `detach_lora`), so students never need a second copy of the weights.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import W2SError
from .backends import Conversation, HFBackend

IGNORE = -100


def sft_example(backend: HFBackend, conversation: Conversation, answer: str,
                max_length: int) -> tuple[list[int], list[int]]:
    """(input ids, labels) with labels = IGNORE on the prompt; cut to `max_length` tokens."""
    prompt, answer_text = backend.render(conversation, answer)
    tok = backend.tokenizer
    prompt_ids = backend.encode(prompt)
    answer_ids = list(tok(answer_text, add_special_tokens=False)["input_ids"])
    if not backend.chat and tok.eos_token_id is not None:
        answer_ids.append(tok.eos_token_id)
    if not answer_ids:
        raise W2SError("an answer to fine-tune on tokenises to nothing")
    ids = (prompt_ids + answer_ids)[:max_length]
    labels = ([IGNORE] * len(prompt_ids) + answer_ids)[:max_length]
    return ids, labels


def collate(examples: Sequence[tuple[list[int], list[int]]], pad: int) -> dict[str, Any]:
    """Right-padded batch: ids, attention mask, labels (IGNORE on padding)."""
    import torch

    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for r, (x, y) in enumerate(examples):
        ids[r, :len(x)], labels[r, :len(y)], mask[r, :len(x)] = torch.tensor(x), torch.tensor(y), 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def answer_loss(model: Any, batch: dict[str, Any], precision: str = "fp32") -> Any:
    """Mean next-token cross-entropy over positions whose label is not IGNORE. The output head
    runs on those positions only (on a 49k-word vocabulary it is a fair share of the cost)."""
    import torch
    import torch.nn.functional as F

    from ..hardware import autocast

    causal = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft or not
    device = next(model.parameters()).device
    targets = batch["labels"].to(device)[:, 1:]
    keep = targets != IGNORE
    with autocast(precision, device):
        hidden = causal.base_model(input_ids=batch["input_ids"].to(device),
                                   attention_mask=batch["attention_mask"].to(device)).last_hidden_state
        logits = causal.get_output_embeddings()(hidden[:, :-1][keep]).float()
    softcap = getattr(causal.config, "final_logit_softcapping", None)
    if softcap:  # Gemma
        logits = torch.tanh(logits / softcap) * softcap
    return F.cross_entropy(logits, targets[keep])


def mean_answer_loss(model: Any, examples: Sequence[tuple[list[int], list[int]]], pad: int,
                     batch_size: int, precision: str = "fp32") -> float:
    """Answer-token loss over a set of examples, weighted by answer tokens."""
    import torch

    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(examples), batch_size):
            batch = collate(examples[start:start + batch_size], pad)
            n = int((batch["labels"][:, 1:] != IGNORE).sum())
            total += float(answer_loss(model, batch, precision)) * n
            count += n
    return total / max(count, 1)


def attach_lora(model: Any, rank: int) -> Any:
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0,
                                            target_modules="all-linear"))


def detach_lora(peft_model: Any) -> Any:
    """The base model with the LoRA layers removed, unmerged: its weights as before."""
    model = peft_model.unload()
    model.eval()
    return model


def lora_state(peft_model: Any) -> dict[str, np.ndarray]:
    from peft import get_peft_model_state_dict

    return {k: v.detach().float().cpu().numpy() for k, v in get_peft_model_state_dict(peft_model).items()}


def load_lora_state(peft_model: Any, state: dict[str, np.ndarray]) -> None:
    import torch
    from peft import set_peft_model_state_dict

    result = set_peft_model_state_dict(peft_model, {k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
    unexpected = getattr(result, "unexpected_keys", None)
    if unexpected:
        raise W2SError(f"a cached LoRA adapter does not fit this model ({unexpected[0]!r}); "
                       "delete the store's cache/gen_adapter folder")


def train_lora(backend: HFBackend, conversations: Sequence[Conversation], answers: Sequence[str],
               *, epochs: int, lr: float, batch_size: int, rank: int, max_length: int,
               seed: int, precision: str = "fp32", desc: str = "sft") -> dict[str, Any]:
    """Fine-tune LoRA adapters on (conversation -> answer). Returns the adapter state, the mean
    answer-token loss per epoch, and the loss on the training set before and after."""
    import torch

    from ..learner import optimise, warmup_cosine

    if len(conversations) != len(answers) or not answers:
        raise W2SError("fine-tuning needs one answer per conversation, and at least one")
    model, _ = backend.loaded()
    pad = backend.pad_id()
    examples = [sft_example(backend, c, a, max_length) for c, a in zip(conversations, answers)]
    torch.manual_seed(seed)
    peft_model = attach_lora(model, rank)
    try:
        before = mean_answer_loss(peft_model, examples, pad, batch_size, precision)
        params = [p for p in peft_model.parameters() if p.requires_grad]
        steps = epochs * math.ceil(len(examples) / batch_size)

        def batch_loss(idx: torch.Tensor, _progress: float) -> tuple[torch.Tensor, int]:
            batch = collate([examples[i] for i in idx.tolist()], pad)
            return (answer_loss(peft_model, batch, precision),
                    int((batch["labels"][:, 1:] != IGNORE).sum()))  # the answer tokens

        peft_model.train()
        history = optimise(params, batch_loss, len(examples), epochs=epochs, batch_size=batch_size,
                           lr=lr, weight_decay=0.0, seed=seed, desc=desc,
                           schedule=warmup_cosine(max(1, steps // 10)), lr_key="finetune.lr",
                           hint="").loss
        peft_model.eval()
        after = mean_answer_loss(peft_model, examples, pad, batch_size, precision)
        state = lora_state(peft_model)
    finally:
        detach_lora(peft_model)  # the same model object, its LoRA layers removed
    return {"state": state, "epoch_loss": history, "loss_before": before, "loss_after": after}
