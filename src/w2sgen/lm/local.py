"""A local transformers causal LM behind the `LanguageModel` interface.

Loading is lazy and in two steps: the tokenizer and the config first (enough to tokenise prompt
blocks, check label words and check prompt lengths against the context), the weights only when
something is computed, so a run whose steps are all cached, or whose input is refused, loads no
weights. With `shared`, one copy of the weights serves every `LocalLM` of the same model and
device (a model used as weak, strong and judge in one generative run).

Generation. Prompts use the tokenizer's chat template when it has one, and a plain format
otherwise (`system` text, then `Question: ...` / `Answer: ...` blocks; the answer is cut where the
model starts a new `Question:`). Conversations are generated in batches sorted by length; the
first tokens all prompts of a call share (at least MIN_SHARED: a judge's rubric, a system prompt)
run through the model once, and each batch starts from that key/value cache, with the padding
between the shared prefix and each row's own part, so each row's new tokens follow its own prompt
directly (the answers equal generating without the cache: tests/test_lm.py). Temperature 0 is
greedy; above 0, sampling with `torch.manual_seed(seed)` before each batch.

Label scoring. The shared prefix runs through the model once and its key/value cache is kept;
continuations are scored in length-sorted, right-padded batches on that cache (repeated once per
row, cropped back to the prefix after each batch), with positions starting after the prefix, so
the result equals
scoring each whole prompt on its own (tests/test_lm.py asserts it for a Llama and a Qwen2). The
output head runs on each row's last position only. A batch holds at most `batch_size` rows and
about `max_tokens` positions (prefix included), which bounds the attention's memory, and only
rows at least 3/4 as long as its longest, so padding wastes at most a quarter of its positions.

Precision: `auto` (default) is bf16 where the device computes it natively, else fp32
(hardware.resolve_precision); weights stay fp32 and the forward pass runs under autocast.
"""
from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from ..errors import W2SError
from ..hardware import Precision, autocast, resolve_precision
from ..loading_policy import hf_kwargs
from .base import PLAIN_STOP, Conversation, LanguageModel, Sampling, merge_system, plain_prompt
from .tokens import block_ids, label_token_ids, start_ids

MIN_FILL = 0.75  # a scoring batch's rows are at least this share of its longest row's length
MIN_SHARED = 16  # generation caches the prompts' common first tokens when there are this many


def shared_length(prompts: Sequence[Sequence[int]]) -> int:
    """How many first tokens all `prompts` have in common, leaving each at least one of its own
    (generation needs one uncached position per row)."""
    if not prompts:
        return 0
    first, n = prompts[0], min(len(p) for p in prompts) - 1
    for p in prompts[1:]:
        k = 0
        while k < n and p[k] == first[k]:
            k += 1
        n = k
    return max(n, 0)

_LOADED: dict[tuple[str, str], tuple[Any, Any]] = {}  # shared weights: (identity, device)


def _unwrapped(model: Any) -> Any:
    """The causal LM inside a peft model (a generative student's LoRA adapter), else `model`:
    its LoRA layers sit in place, so its backbone computes the adapted prefix without the
    output head that peft's own forward would add."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _ref(model: Any) -> Any:
    from ..models import ModelRef, resolve

    return model if isinstance(model, ModelRef) else resolve(model)


class LocalLM(LanguageModel):
    """A local causal LM (zoo name, folder, hub id or ModelRef)."""

    def __init__(self, model: Any, device: str = "cpu", precision: str = "auto",
                 batch_size: int = 8, max_tokens: int = 4096, shared: bool = False,
                 where: str = "precision"):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise W2SError(f"{model}: batch_size must be a positive integer, got {batch_size!r}")
        self.ref = _ref(model)
        if self.ref.kind != "causal":
            raise W2SError(f"model {self.ref.name!r} is an encoder; prompting and generation need "
                           "a causal LM (e.g. smollm2-135m)")
        self.name, self.device, self.batch_size, self.max_tokens = self.ref.name, device, batch_size, max_tokens
        self.precision = resolve_precision(precision, device, where)
        self.shared = shared
        self.cache_shared_prefix = True  # generation runs the prompts' shared first tokens once
        self._model: Any = None
        self._tok: Any = None
        self._config: Any = None
        self.prompts = self.tokens = 0  # scored prompts, and positions computed for them

    @classmethod
    def from_loaded(cls, model: Any, tokenizer: Any, precision: Precision = "fp32", batch_size: int = 16,
                    max_tokens: int = 4096, name: str = "model") -> LocalLM:
        """Around a model and tokenizer already in memory (tests, scripts)."""
        self = cls.__new__(cls)
        self.ref, self.name, self.shared = None, name, False
        self.device = str(next(model.parameters()).device)
        self.batch_size, self.max_tokens, self.precision = batch_size, max_tokens, precision
        self._model, self._tok, self._config = model, tokenizer, model.config
        self.prompts = self.tokens = 0
        self.cache_shared_prefix = True
        return self

    # ------------------------------------------------------------------ loading

    @property
    def identity(self) -> str:  # type: ignore[override]
        # fp32 keeps the identity generations had before precisions were chosen per machine
        half = "" if self.precision == "fp32" else f"@{self.precision}"
        return self.ref.identity + half

    def _file_kwargs(self) -> dict[str, Any]:
        return {k: v for k, v in self.ref.load_kwargs.items() if k in ("gguf_file", "revision")}

    @property
    def tokenizer(self) -> Any:
        """Read once (models.load_tokenizer), for the checks and then with the weights."""
        if self._tok is None:
            from ..models import load_tokenizer

            self._tok = load_tokenizer(self.ref)
        return self._tok

    @property
    def config(self) -> Any:
        if self._config is None:
            from transformers import AutoConfig

            self._config = AutoConfig.from_pretrained(self.ref.path, **hf_kwargs(self._file_kwargs()))
        return self._config

    @property
    def context(self) -> Optional[int]:
        """The most positions the model was trained for, if its config says."""
        n = getattr(self.config, "max_position_embeddings", None)
        return int(n) if isinstance(n, int) and n > 0 else None

    def loaded(self) -> tuple[Any, Any]:
        """(model, tokenizer), loading the weights on first use."""
        if self._model is None:
            from ..models import load

            key = (self.ref.identity, self.device)
            if self.shared and key in _LOADED:
                model, tok = _LOADED[key]
            else:  # the tokenizer the checks read, if they ran: it is not read twice
                model, tok = load(self.ref, self.device, lm_head=True, tokenizer=self._tok)
                if self.shared:
                    _LOADED[key] = (model, tok)
            self._model, self._config = model, model.config
            if self._tok is None:
                self._tok = tok
        return self._model, self.tokenizer

    @property
    def model(self) -> Any:
        return self.loaded()[0]

    # ------------------------------------------------------------------ generation

    @property
    def chat(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def render(self, conversation: Conversation, answer: str | None = None) -> tuple[str, str]:
        """(prompt text, answer text) for a conversation that ends with a user turn; the answer
        text is what the model should generate for `answer`, end-of-turn markers included."""
        if not self.chat:
            return plain_prompt(conversation), (f" {answer.strip()}" if answer is not None else "")
        tok = self.tokenizer
        conv = conversation
        try:
            prompt = tok.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
        except Exception:  # noqa: BLE001 - templates that reject a system turn raise many types
            conv = merge_system(conversation)
            prompt = tok.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
        if answer is None:
            return prompt, ""
        full = tok.apply_chat_template(conv + [{"role": "assistant", "content": answer.strip()}],
                                       tokenize=False)
        if not full.startswith(prompt):
            raise W2SError(f"the chat template of {self.name!r} renders a conversation with an "
                           "answer differently from its generation prompt; cannot mask the prompt")
        return prompt, full[len(prompt):]

    def encode(self, text: str) -> list[int]:
        """Prompt ids: a chat template writes its own special tokens; the plain format gets the
        tokenizer's start tokens."""
        return list(self.tokenizer(text, add_special_tokens=not self.chat)["input_ids"])

    def eos_ids(self) -> list[int]:
        model, tok = self.loaded()
        ids = model.generation_config.eos_token_id
        ids = [ids] if isinstance(ids, int) else list(ids or [])
        if tok.eos_token_id is not None and tok.eos_token_id not in ids:
            ids.append(tok.eos_token_id)
        return ids

    def pad_id(self) -> int:
        tok = self.tokenizer
        return tok.pad_token_id if tok.pad_token_id is not None else self.eos_ids()[0]

    def clean(self, text: str) -> str:
        if not self.chat:
            text = text.split(PLAIN_STOP)[0]
        return text.strip()

    def generate(self, conversations: Sequence[Conversation], sampling: Sampling,
                 progress: Any = None) -> list[str]:
        import torch

        prompts = [self.encode(self.render(c)[0]) for c in conversations]
        model, tok = self.loaded()
        config = copy.deepcopy(model.generation_config)
        config.max_new_tokens = sampling.max_new_tokens
        config.do_sample = sampling.temperature > 0
        if config.do_sample:
            config.temperature, config.top_k, config.top_p = sampling.temperature, 0, 1.0
        else:
            config.temperature = config.top_k = config.top_p = None
        pad = self.pad_id()
        config.pad_token_id, config.eos_token_id = pad, self.eos_ids()
        device = next(model.parameters()).device
        # the tokens every prompt starts with (a judge's rubric, icl demonstrations) run once
        shared = shared_length(prompts) if self.cache_shared_prefix else 0
        cache, n = self._prefix_cache(prompts[0][:shared]) if shared >= MIN_SHARED else (None, 0)
        cache_arg = self._cache_arg(_unwrapped(model))  # generate's name for the cache
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))  # little padding
        out: list[str] = [""] * len(prompts)
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            width = max(len(prompts[i]) for i in rows)  # the prefix, then the longest own part
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            ids[:, :n] = torch.tensor(prompts[rows[0]][:n])
            mask[:, :n] = 1
            for r, i in enumerate(rows):  # padding between the prefix and each row's own part:
                own = prompts[i][n:]     # new tokens follow each prompt directly
                ids[r, width - len(own):] = torch.tensor(own)
                mask[r, width - len(own):] = 1
            past = {} if cache is None else {cache_arg: self._rows(cache, n, len(rows))}
            if config.do_sample:
                torch.manual_seed(sampling.seed)
            with torch.inference_mode(), autocast(self.precision, device):
                gen = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                     generation_config=config, **past)
            self.tokens += int(mask[:, n:].sum()) + len(rows) * config.max_new_tokens
            for r, i in enumerate(rows):
                out[i] = self.clean(tok.decode(gen[r, width:], skip_special_tokens=True))
            if progress is not None:
                progress.update(len(rows))
        return out

    # ------------------------------------------------------------------ label scoring

    @property
    def start(self) -> list[int]:  # type: ignore[override]
        return start_ids(self.tokenizer)

    def blocks(self, texts: Sequence[str]) -> list[list[int]]:
        return block_ids(self.tokenizer, texts)

    def join(self, blocks: Sequence[Any]) -> list[int]:
        return [t for b in blocks for t in b]

    def label_ids(self, words: Sequence[str], context: str = "") -> tuple[int, int]:
        """The single token of each label word after a prompt ending in `context` (lm.tokens)."""
        neg, pos = label_token_ids(self.tokenizer, words, context=context, model=self.name)
        return neg, pos

    def check_words(self, words: Sequence[str], context: str = "") -> None:
        self.label_ids(words, context)

    def check_prompts(self, prompts: Sequence[Any], where: str) -> None:
        limit = self.context
        if limit is None or not prompts:
            return
        longest = max(len(p) for p in prompts)
        if longest > limit:
            raise W2SError(f"{where}: a prompt of {longest} tokens is longer than {self.name}'s "
                           f"context of {limit} tokens; use fewer or shorter demonstrations "
                           "(method.k) or shorter inputs")

    def _forward(self, base: Any, ids: Any, cache: Any = None, **kwargs: Any) -> Any:
        """The backbone's forward pass, passing a key/value cache under the name this
        transformers version takes (`cache`; `past_key_values` before 5.x)."""
        name = self._cache_arg(base)
        if cache is not None:
            kwargs[name] = cache
        return base(input_ids=ids, **kwargs)

    @staticmethod
    def _cache_arg(base: Any) -> str:
        params = inspect.signature(base.forward).parameters
        return "cache" if "cache" in params else "past_key_values"

    def _prefix_cache(self, prefix: Sequence[int]) -> tuple[Optional[Any], int]:
        import torch

        if not len(prefix):
            return None, 0
        model = self.model
        device = next(model.parameters()).device
        ids = torch.tensor([list(prefix)], dtype=torch.long, device=device)
        with torch.inference_mode(), autocast(self.precision, device):
            out = self._forward(_unwrapped(model).base_model, ids, use_cache=True)
        self.tokens += ids.shape[1]
        cache = getattr(out, "cache", None)
        return (out.past_key_values if cache is None else cache), ids.shape[1]

    @staticmethod
    def _rows(cache: Any, n_prefix: int, rows: int) -> Any:
        """The prefix cache with `rows` rows, for the next batch. A croppable cache is reused:
        the positions the last batch appended are cropped off and rows are dropped or repeated,
        so the prefix is not copied per batch (the forward pass's concatenation aside). Other
        caches (sliding windows) are copied and repeated, the prefix's own cache kept intact."""
        import torch

        if not getattr(cache, "is_croppable", True):
            batch = copy.deepcopy(cache)
            batch.batch_repeat_interleave(rows)
            return batch
        extra = cache.get_seq_length() - n_prefix
        if extra:
            cache.crop(-extra)  # a negative count removes that many positions (4.x and 5.x)
        have = cache.batch_size if isinstance(getattr(cache, "batch_size", None), int) else \
            cache[0][0].shape[0]
        if have < rows:
            if have != 1:
                cache.batch_select_indices(torch.arange(1))
            cache.batch_repeat_interleave(rows)
        elif have > rows:
            cache.batch_select_indices(torch.arange(rows))
        return cache

    def label_logodds(self, prefix: Sequence[int], continuations: Sequence[Sequence[int]],
                      words: Sequence[str], progress: Any = None, context: str = "") -> np.ndarray:
        """log p(words[1]) - log p(words[0]) as the next token after `prefix + c`, for every
        continuation c (token id lists); the prefix is computed once."""
        import torch

        neg_id, pos_id = self.label_ids(words, context)
        enc = [list(c) for c in continuations]
        if any(not e for e in enc):
            raise W2SError("a prompt continuation tokenises to nothing")
        self.check_prompts([list(prefix) + e for e in enc], f"scoring with {self.name}")
        model = self.model
        device = next(model.parameters()).device
        cache, n_prefix = self._prefix_cache(prefix)
        order = np.argsort([-len(e) for e in enc], kind="stable")  # long first: memory peaks early
        out = np.empty(len(enc), dtype=np.float64)
        head, base = model.get_output_embeddings(), model.base_model
        softcap = getattr(model.config, "final_logit_softcapping", None)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        start = 0
        while start < len(order):
            longest = len(enc[order[start]])
            size = max(1, min(self.batch_size, self.max_tokens // (longest + n_prefix)))
            # rows much shorter than the batch's first wait for a later batch: padding is
            # computed like real positions, and short rows padded to a long one waste most of it
            while size > 1 and len(enc[order[min(start + size, len(order)) - 1]]) < MIN_FILL * longest:
                size -= 1
            rows = order[start:start + size]
            start += size
            width = longest
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), n_prefix + width), dtype=torch.long)
            mask[:, :n_prefix] = 1
            for r, i in enumerate(rows):
                ids[r, :len(enc[i])] = torch.tensor(enc[i])
                mask[r, n_prefix:n_prefix + len(enc[i])] = 1
            positions = torch.arange(n_prefix, n_prefix + width).expand(len(rows), width)
            if cache is not None:
                cache = self._rows(cache, n_prefix, len(rows))
            with torch.inference_mode(), autocast(self.precision, device):
                hidden = self._forward(base, ids.to(device), cache,
                                       attention_mask=mask.to(device),
                                       position_ids=positions.to(device),
                                       use_cache=cache is not None).last_hidden_state
                last = torch.tensor([len(enc[i]) - 1 for i in rows], device=device)
                logits = head(hidden[torch.arange(len(rows), device=device), last]).float()
            if softcap:  # Gemma
                logits = torch.tanh(logits / softcap) * softcap
            logp = torch.log_softmax(logits, dim=-1)
            out[rows] = (logp[:, pos_id] - logp[:, neg_id]).double().cpu().numpy()
            self.prompts += len(rows)
            self.tokens += int(sum(len(enc[i]) for i in rows))
            if progress is not None:
                progress.update(len(rows))
        return out

    # ------------------------------------------------------------------ continuation scoring

    def continuation_logprob(self, prompts: Sequence[Sequence[int]],
                             continuations: Sequence[Sequence[int]], progress: Any = None) -> np.ndarray:
        """log p(c | prompt) for every (prompt, continuation c) pair of token id lists: the sum
        of each token's log-probability after the prompt and the tokens of c before it. Rows run
        in length-sorted, right-padded batches of at most `batch_size` rows and about
        `max_tokens` positions; the output head runs on the continuation's positions only."""
        import torch

        rows = [list(p) + list(c) for p, c in zip(prompts, continuations)]
        if any(not p for p in prompts) or any(not c for c in continuations):
            raise W2SError("continuation scoring needs a prompt and a continuation of at least one "
                           "token each")
        self.check_prompts(rows, f"scoring with {self.name}")
        model = self.model
        device = next(model.parameters()).device
        head, base = model.get_output_embeddings(), model.base_model
        softcap = getattr(model.config, "final_logit_softcapping", None)
        pad = self.pad_id()
        order = np.argsort([-len(r) for r in rows], kind="stable")
        out = np.empty(len(rows), dtype=np.float64)
        start = 0
        while start < len(order):
            width = len(rows[order[start]])
            size = max(1, min(self.batch_size, self.max_tokens // width))
            idx = order[start:start + size]
            start += size
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, :len(rows[i])] = torch.tensor(rows[i])
                mask[r, :len(rows[i])] = 1
            # position t predicts token t + 1: a continuation's tokens are predicted from
            # positions len(prompt) - 1 ... len(row) - 2
            at = [(r, t) for r, i in enumerate(idx) for t in range(len(prompts[i]) - 1, len(rows[i]) - 1)]
            row_of = torch.tensor([r for r, _ in at])
            pos = torch.tensor([t for _, t in at])
            with torch.inference_mode(), autocast(self.precision, device):
                hidden = self._forward(base, ids.to(device), attention_mask=mask.to(device),
                                       use_cache=False).last_hidden_state
                logits = head(hidden[row_of.to(device), pos.to(device)]).float()
            if softcap:  # Gemma
                logits = torch.tanh(logits / softcap) * softcap
            logp = torch.log_softmax(logits, -1).gather(
                1, ids[row_of, pos + 1].to(device).unsqueeze(1)).squeeze(1).double().cpu()
            sums = torch.zeros(len(idx), dtype=torch.float64).index_add_(0, row_of, logp)
            out[idx] = sums.numpy()
            self.prompts += len(idx)
            self.tokens += int(mask.sum())
            if progress is not None:
                progress.update(len(idx))
        return out
