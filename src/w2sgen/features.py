"""Tokenising, pooling and fast frozen-feature extraction.

Extraction is the hot path of every sweep. It sorts texts by token length so each batch pads
little, runs under `torch.inference_mode`, and autocasts to `features.precision` (default `auto`:
fp32 on a CPU, where encoders go through ONNX Runtime instead (onnx_features.py, chosen by
context.Context); bfloat16 on a GPU that computes it natively, else fp32; see config.resolved and
hardware.py); pooling and the output stay float32. benchmarks/encode.py compares this path with
sentence-transformers' backends on the same texts (docs/speed.md has the figures and the CPU
they were measured on).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from . import progress
from .example import Example
from .hardware import autocast, resolve_precision


def tokenize(tokenizer: Any, examples: Sequence[Example], max_length: int, join_pairs: bool) -> list[dict]:
    """One encoding per example, unpadded. Causal LMs get the pair joined by a newline; encoders
    get it as the tokenizer's second segment."""
    texts = [e.text for e in examples]
    pairs = [e.text_pair for e in examples]
    if any(p is not None for p in pairs):
        if join_pairs:
            texts = [t if p is None else f"{t}\n{p}" for t, p in zip(texts, pairs)]
            enc = tokenizer(texts, truncation=True, max_length=max_length)
        else:
            enc = tokenizer(texts, [p or "" for p in pairs], truncation="longest_first",
                            max_length=max_length)
    else:
        enc = tokenizer(texts, truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    return [{k: enc[k][i] for k in keys} for i in range(len(examples))]


def collate(tokenizer: Any, encodings: Sequence[dict], device: torch.device) -> dict[str, torch.Tensor]:
    batch = tokenizer.pad(list(encodings), return_tensors="pt")
    return {k: v.to(device) for k, v in batch.items()}


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Sequence -> one vector. `last` finds the last real token from the mask, so it is right
    for left and right padding alike (never by comparing token ids with a pad id)."""
    hidden = hidden.float()
    if how == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
    if how == "cls":
        return hidden[:, 0]
    if how == "last":
        length = mask.shape[1]
        last = length - 1 - mask.flip(1).long().argmax(1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"unknown pooling {how!r}")


def backbone_forward(model: Any, batch: dict[str, torch.Tensor], how: str) -> torch.Tensor:
    out = model(**batch)
    return pool(out.last_hidden_state, batch["attention_mask"], how)


def extract(model: Any, tokenizer: Any, examples: Sequence[Example], *, pooling: str,
            max_length: int, batch_size: int, precision: str, join_pairs: bool,
            desc: str = "features") -> np.ndarray:
    encodings = tokenize(tokenizer, examples, max_length, join_pairs)
    order = np.argsort([-len(e["input_ids"]) for e in encodings], kind="stable")
    device = next(model.parameters()).device
    out: np.ndarray | None = None
    precision = resolve_precision(precision, device.type, "features.precision")
    with torch.inference_mode(), autocast(precision, device):
        bar = progress.bar(len(examples), desc, "example", leave=False)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            batch = collate(tokenizer, [encodings[i] for i in idx], device)
            vec = backbone_forward(model, batch, pooling).float().cpu().numpy()
            if out is None:
                out = np.empty((len(examples), vec.shape[1]), dtype=np.float32)
            out[idx] = vec
            bar.update(len(idx))
        bar.close()
    assert out is not None
    return out
