"""`generative_pretrain`: Burns et al.'s generative fine-tuning. Before weak-to-strong training,
the strong model is fine-tuned without labels on the task's text, so its representation is
shaped by the task's domain before it ever sees a weak label; the student is then trained on the
weak labels from that adapted model.

- Text (`texts=all`): every example of weak_train and transfer (`text`, plus "\\n" + `text_pair`
  when there is one), never test. `texts=preferred` (pairwise-preference tasks: the paper's
  fine-tuning on the comparison data's preferred responses): the prompt, "\\n" and the
  human-preferred response of each comparison of weak_train, whose labels the weak supervisor
  trains on anyway; transfer's preferences stay unseen, as the student's labels must be weak.
  `max_examples` keeps the first N after a shuffle with seed 0.
- Objective: masked-LM for encoders (AutoModelForMaskedLM, 15% of tokens masked by transformers'
  DataCollatorForLanguageModeling), causal-LM for causal models (AutoModelForCausalLM). AdamW at
  a constant `lr`, gradient norm clipped to 1, fp32, on the run's device. An encoder whose
  tokenizer has no mask token gets one added (and its embeddings grow by a row).
- The packaged sentence-transformer encoders (minilm-l6, mpnet-base) ship without MLM-head
  weights, so for them the LM head starts random (transformers warns; the report's
  `lm_head_random` says so): the first steps train the head as much as the backbone.
- The adaptation does not depend on the run's seed (masking, order and dropout all use seed 0),
  so one adapted model is shared by every seed. It is saved once, as the backbone without its LM
  head plus the tokenizer, in `<store>/cache/models/<hash>/`, keyed by the base model's identity,
  the texts and the options; it is written to a temporary sibling and renamed into place, so a
  killed run leaves no half model, and a later run reuses it (`cached`).
- Only the student is adapted: the strong ceiling is still the unadapted strong model trained on
  ground truth, so PGR here compares an adapted student against an unadapted ceiling (and can
  exceed 1 if adaptation alone helps).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import numpy as np

from ..errors import W2SError
from ..loading_policy import hf_kwargs
from ..models import ModelRef
from ..options import Ge, Gt, PositiveInt
from ..pairwise import is_pairwise
from ..spec import stable_hash
from ..splits import Splits
from ..store import temp_prefix
from . import METHODS, Arrays, Setting

MLM_PROBABILITY = 0.15
# Bumped when the training recipe changes, so old adapted models are not reused
VERSION = 2  # 2: the LM head's random initialisation is seeded too (it followed the process's RNG)
META = "w2s_adaptation.json"


def collect_texts(splits: Splits) -> list[str]:
    """The unlabelled text the strong model adapts to: weak_train and transfer, never test."""
    return [e.text if e.text_pair is None else f"{e.text}\n{e.text_pair}"
            for e in (*splits.weak_train, *splits.transfer)]


def preferred_texts(splits: Splits) -> list[str]:
    """texts=preferred: prompt + the preferred response of each comparison of weak_train."""
    if not is_pairwise(splits.weak_train):
        raise W2SError("generative_pretrain: method.texts=preferred fine-tunes on the preferred "
                       "responses of a pairwise-preference task, and this task has no comparisons; "
                       "set method.texts=all")
    return [f"{e.text}\n{e.responses[1 - e.label]}" for e in splits.weak_train if e.responses]


def select_texts(texts: list[str], max_examples: Optional[int]) -> list[str]:
    """All texts in a seed-0 shuffled order, or the first `max_examples` of that order."""
    order = np.random.default_rng(0).permutation(len(texts))
    if max_examples is not None:
        order = order[:max_examples]
    return [texts[i] for i in order]


def texts_hash(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode() + b"\x1e")
    return h.hexdigest()[:24]


def adapt(ref: ModelRef, texts: list[str], store_root: str | Path, device: str = "cpu", *,
          epochs: int = 1, lr: float = 5e-5, batch_size: int = 16, max_length: int = 128
          ) -> tuple[ModelRef, dict[str, Any]]:
    """Fine-tune `ref` on `texts` with its LM objective and save the backbone, or reuse the one
    saved before. Returns the adapted model's ref and a report (losses are per-epoch means over
    the predicted tokens)."""
    lr = float(lr)  # the cache key holds a float however the option was written
    if not texts:
        raise W2SError("generative_pretrain: no texts to adapt to")
    objective = "clm" if ref.kind == "causal" else "mlm"
    options = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "max_length": max_length,
               "objective": objective, "mlm_probability": MLM_PROBABILITY, "version": VERSION}
    key = stable_hash({"base": ref.identity, "texts": texts_hash(texts), "options": options}, 24)
    models = Path(store_root) / "cache" / "models"
    folder = models / key
    adapted = ModelRef(f"{ref.name}+generative", ref.kind, str(folder), f"adapted:{key}")
    cached = folder.is_dir()
    if cached:
        try:
            meta = json.loads((folder / META).read_text())
        except (OSError, ValueError):
            meta = {}
    else:
        models.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=models, prefix=f"{temp_prefix()}{key}-"))
        try:
            meta = _train_and_save(ref, texts, tmp, device, objective, epochs, lr, batch_size,
                                   max_length)
            meta.update({"base": ref.identity, "base_name": ref.name, "kind": ref.kind,
                         "texts": len(texts), "options": options})
            (tmp / META).write_text(json.dumps(meta, indent=2))
            tmp.chmod(0o755)  # mkdtemp makes it private; the model is as shareable as the store
            try:
                os.rename(tmp, folder)  # atomic: the folder appears whole or not at all
            except OSError:
                if not folder.is_dir():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)  # a concurrent run finished first
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    losses = meta.get("lm_loss") or [None]
    return adapted, {"adapted_model": str(folder), "texts": len(texts), "objective": objective,
                     "lm_loss_first_epoch": losses[0], "lm_loss_last_epoch": losses[-1],
                     "lm_loss": meta.get("lm_loss"), "lm_head_random": meta.get("lm_head_random"),
                     "cached": cached}


def _train_and_save(ref: ModelRef, texts: list[str], out: Path, device: str, objective: str,
                    epochs: int, lr: float, batch_size: int, max_length: int) -> dict[str, Any]:
    """Adapt under seed 0 from the start: the LM head a checkpoint lacks is initialised from
    the global generator, whose state would otherwise depend on what ran before in the process
    (a sweep's earlier cells), which the cache key cannot see. The caller's RNG is untouched."""
    import torch

    cuda = [torch.device(device).index or 0] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(0)
        return _adapt_seeded(ref, texts, out, device, objective, epochs, lr, batch_size, max_length)


def _adapt_seeded(ref: ModelRef, texts: list[str], out: Path, device: str, objective: str,
                  epochs: int, lr: float, batch_size: int, max_length: int) -> dict[str, Any]:
    import torch
    from transformers import (
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
    )

    from ..learner import optimise

    tok_kwargs = {k: v for k, v in ref.load_kwargs.items() if k in ("gguf_file", "revision")}
    tok = AutoTokenizer.from_pretrained(ref.path, **hf_kwargs(tok_kwargs))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    if tok.pad_token is None:
        raise W2SError(f"model {ref.name!r}: its tokenizer has no pad, eos or unk token to pad with")
    kwargs = dict(ref.load_kwargs)
    kwargs.setdefault("dtype", torch.float32)
    auto = AutoModelForCausalLM if objective == "clm" else AutoModelForMaskedLM
    try:
        # with output_loading_info=True it returns (model, info); transformers types only the model
        loaded: Any = auto.from_pretrained(ref.path, output_loading_info=True, **hf_kwargs(kwargs))
    except ValueError as e:
        raise W2SError(f"model {ref.name!r} has no {objective.upper()} head class in transformers "
                       f"({e}); generative_pretrain cannot adapt it") from None
    lm, info = loaded
    lm_head_random = bool(info.get("missing_keys"))
    if objective == "mlm" and tok.mask_token is None:
        tok.add_special_tokens({"mask_token": "[MASK]"})
    if len(tok) > lm.get_input_embeddings().weight.shape[0]:
        lm.resize_token_embeddings(len(tok))
    lm.to(device)

    enc = tok(texts, truncation=True, max_length=max_length,
              return_special_tokens_mask=objective == "mlm")
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids", "special_tokens_mask")
            if k in enc]
    rows = [{k: enc[k][i] for k in keys} for i in range(len(texts)) if len(enc["input_ids"][i])]
    if not rows:
        raise W2SError("generative_pretrain: every text tokenises to nothing")
    padding_side = tok.padding_side
    tok.padding_side = "right"
    collate = DataCollatorForLanguageModeling(tok, mlm=objective == "mlm",
                                              mlm_probability=MLM_PROBABILITY, seed=0)

    def batch_loss(idx: torch.Tensor, _progress: float) -> tuple[torch.Tensor, int] | None:
        batch = collate([dict(rows[i]) for i in idx.tolist()])
        labels = batch["labels"][:, 1:] if objective == "clm" else batch["labels"]
        count = int((labels != -100).sum())  # clm: the model shifts, a row's first token is no target
        if count == 0:  # nothing masked in this batch (tiny texts): no loss to learn from
            return None
        return lm(**{k: v.to(device) for k, v in batch.items()}).loss, count  # noqa: F821  (deleted after training, not before)

    lm.train()
    hist = optimise([p for p in lm.parameters() if p.requires_grad], batch_loss, len(rows),
                    epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=0.01, seed=0,
                    desc=f"generative_pretrain {ref.name}", clip_norm=1.0, lr_key="method.lr",
                    hint="")
    losses = hist.loss
    tok.padding_side = padding_side
    lm.eval()

    # The backbone as `models.load` builds it, with the adapted weights: parameters the LM class
    # lacks (BERT's pooler) keep the base model's values instead of loading as random.
    backbone = AutoModel.from_pretrained(ref.path, **hf_kwargs(kwargs))
    if len(tok) > backbone.get_input_embeddings().weight.shape[0]:
        backbone.resize_token_embeddings(len(tok))
    state = {k: v.detach().cpu() for k, v in lm.base_model.state_dict().items()}
    _missing, unexpected = backbone.load_state_dict(state, strict=False)
    if unexpected:
        raise W2SError(f"generative_pretrain: {type(lm).__name__}'s backbone has weights "
                       f"{type(backbone).__name__} lacks ({', '.join(unexpected[:3])}); cannot save it")
    if getattr(backbone, "hf_quantizer", None) is not None:
        # Loaded from GGUF: the weights are dequantised float32 already, but transformers refuses
        # to save a model marked quantised, so copy them into a plain model of the same config.
        config = backbone.config.to_dict()
        config.pop("quantization_config", None)
        plain = AutoModel.from_config(type(backbone.config).from_dict(config))
        plain.load_state_dict(backbone.state_dict())
        backbone = plain
    backbone.save_pretrained(out)
    tok.save_pretrained(out)
    if objective == "clm":  # so `models.resolve` of the folder still sees a causal model
        cfg_path = out / "config.json"
        config = json.loads(cfg_path.read_text())
        config["architectures"] = [type(lm).__name__]
        cfg_path.write_text(json.dumps(config, indent=2))
    del lm, backbone
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
    return {"lm_loss": losses, "lm_head_random": lm_head_random}


@METHODS.register("generative_pretrain")
def generative_pretrain(s: Setting, *, epochs: PositiveInt = 1, lr: Annotated[float, Gt(0)] = 5e-5,
                        batch_size: PositiveInt = 16, max_examples: Optional[PositiveInt] = None,
                        max_length: Optional[Annotated[int, Ge(2)]] = None,
                        texts: Literal["all", "preferred"] = "all") -> tuple[Arrays, dict[str, Any]]:
    cfg = s.ctx.cfg
    max_length = cfg.features.max_length if max_length is None else max_length
    chosen = select_texts(preferred_texts(s.splits) if texts == "preferred" else
                          collect_texts(s.splits), max_examples)
    with s.ctx.step(f"generative_pretrain {s.strong_ref.name}") as mark:
        adapted, report = adapt(s.strong_ref, chosen, s.ctx.store.root, cfg.torch_device(),
                                epochs=epochs, lr=lr, batch_size=batch_size,
                                max_length=max_length)
        mark.cached = report["cached"]
    return s.train_student(s.weak_labels, name="student", ref=adapted), report
