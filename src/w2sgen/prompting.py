"""Few-shot prompting of a causal LM for binary classification, scored by two label words.

A prompt is an instruction, then demonstrations, then the query, written with a template whose
`{text}` and `{label}` fields are filled per example; the last line ends right before the label
word. The model's next-token logits for the first token of each label word (with the leading
space the template puts before it) give log p(positive) - log p(negative); its sigmoid is the
prompt's soft label.

Prompts are built from token ids, not strings: the instruction, every demonstration and the
query are tokenised on their own (the tokeniser's start tokens once, in front) and concatenated.
Tokenising a joined string can merge tokens across a block boundary (SmolLM2 writes a blank line
followed by text as two newline tokens but a trailing blank line as one), which would make a
prompt depend on how it was cut; block-wise tokenisation makes it the same however it is cut.

Speed. Prompts are the cost of ICL refinement, and they share a lot of text. `PrefixScorer`
runs a shared prefix (instruction, and demonstrations when they are shared) through the model
once, keeps its key/value cache, and scores continuations in length-sorted, right-padded batches
on copies of that cache, so the shared tokens are never recomputed. Continuation positions start
after the prefix, so the result equals scoring each whole prompt on its own (a test asserts it).

Endpoints. `EndpointScorer` scores prompt *text* on an OpenAI-compatible server: one request per
prompt for a single next token with its top log-probabilities (`completions` API: the raw prompt,
as for a base model; `chat` API: the prompt as one user message). The server tokenises, so a
label word is recognised among the returned tokens by text: every returned token that, stripped
and lower-cased, is a non-empty prefix of the word (and not of the other word) counts for it,
their probabilities summed. A word missing from the top list gets the smallest returned
log-probability, an upper bound (`bounded`); a prompt where neither word appears scores 0
(`unscored`). Both counts are reported, so a too-short top list shows.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .errors import W2SError
from .hardware import autocast

DEFAULT_TEMPLATE = "Input: {text}\nAnswer:{label}\n\n"


@dataclass(frozen=True)
class PromptFormat:
    """How examples become prompt text. `words` are (negative, positive) label words."""

    instruction: str = "Answer yes or no."
    words: tuple[str, str] = ("no", "yes")
    template: str = DEFAULT_TEMPLATE

    def __post_init__(self) -> None:
        if "{text}" not in self.template or not self.template.rstrip().endswith("{label}"):
            raise W2SError("icl template must contain {text} and end with {label} (then "
                           f"whitespace); got {self.template!r}")
        if len(self.words) != 2 or self.words[0] == self.words[1]:
            raise W2SError(f"label words must be two different words; got {list(self.words)}")

    def head(self) -> str:
        return f"{self.instruction}\n\n" if self.instruction else ""

    def demo(self, text: str, label: int) -> str:
        return self.template.format(text=text, label=" " + self.words[int(label)])

    def query(self, text: str) -> str:
        """The template up to, not including, the label word."""
        cut = self.template.rstrip().rindex("{label}")
        return self.template[:cut].format(text=text)


class PromptTokens:
    """Token ids of prompt blocks for one tokenizer: start tokens, head, demos, queries."""

    def __init__(self, tokenizer: Any, fmt: PromptFormat):
        self.tok, self.fmt = tokenizer, fmt
        self.start = list(tokenizer("", add_special_tokens=True)["input_ids"])
        self.head = self._ids([fmt.head()])[0] if fmt.head() else []

    def _ids(self, texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        return [list(x) for x in self.tok(list(texts), add_special_tokens=False)["input_ids"]]

    def demos(self, texts: Sequence[str], labels: Sequence[int]) -> list[list[int]]:
        return self._ids([self.fmt.demo(t, y) for t, y in zip(texts, labels)])

    def queries(self, texts: Sequence[str]) -> list[list[int]]:
        return self._ids([self.fmt.query(t) for t in texts])


def label_token_ids(tokenizer: Any, words: Sequence[str]) -> tuple[int, int]:
    """First token of ' word' for each label word; they must differ."""
    ids = []
    for w in words:
        toks = tokenizer.encode(" " + w, add_special_tokens=False)
        if not toks:
            raise W2SError(f"label word {w!r} tokenises to nothing")
        ids.append(toks[0])
    if ids[0] == ids[1]:
        raise W2SError(f"label words {list(words)} start with the same token; choose words that "
                       "differ in their first token")
    return ids[0], ids[1]


class PrefixScorer:
    """Label-word log-odds of continuations of one shared prefix, the prefix computed once."""

    def __init__(self, model: Any, tokenizer: Any, words: Sequence[str], precision: str = "fp32",
                 batch_size: int = 16, max_tokens: int = 4096):
        self.model, self.tok, self.precision = model, tokenizer, precision
        self.batch_size, self.max_tokens = batch_size, max_tokens
        self.neg_id, self.pos_id = label_token_ids(tokenizer, words)
        self.device = next(model.parameters()).device
        self.softcap = getattr(model.config, "final_logit_softcapping", None)
        self.prompts = 0
        self.tokens = 0

    def _prefix_cache(self, prefix: Sequence[int]) -> tuple[Optional[Any], int]:
        import torch

        if not len(prefix):
            return None, 0
        ids = torch.tensor([list(prefix)], dtype=torch.long, device=self.device)
        with torch.inference_mode(), autocast(self.precision, self.device):
            out = self.model(input_ids=ids, use_cache=True)
        self.tokens += ids.shape[1]
        return out.past_key_values, ids.shape[1]

    def logodds(self, prefix: Sequence[int], continuations: Sequence[Sequence[int]],
                progress: Any = None) -> np.ndarray:
        """log p(pos word) - log p(neg word) after the tokens `prefix + c`, for every
        continuation c (token id lists)."""
        import torch

        cache, n_prefix = self._prefix_cache(prefix)
        enc = [list(c) for c in continuations]
        order = np.argsort([-len(e) for e in enc], kind="stable")  # long first: memory peaks early
        out = np.empty(len(continuations), dtype=np.float64)
        head, base = self.model.get_output_embeddings(), self.model.base_model
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        start = 0
        while start < len(order):
            longest = max(len(enc[order[start]]), 1)
            size = max(1, min(self.batch_size, self.max_tokens // (longest + n_prefix)))
            rows = order[start:start + size]
            start += size
            width = max(len(enc[i]) for i in rows)
            if width == 0:
                raise W2SError("a prompt continuation tokenises to nothing")
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), n_prefix + width), dtype=torch.long)
            mask[:, :n_prefix] = 1
            for r, i in enumerate(rows):
                ids[r, :len(enc[i])] = torch.tensor(enc[i])
                mask[r, n_prefix:n_prefix + len(enc[i])] = 1
            positions = torch.arange(n_prefix, n_prefix + width).expand(len(rows), width)
            kwargs: dict[str, Any] = {}
            if cache is not None:
                batch_cache = copy.deepcopy(cache)
                batch_cache.batch_repeat_interleave(len(rows))
                kwargs["past_key_values"] = batch_cache
            with torch.inference_mode(), autocast(self.precision, self.device):
                hidden = base(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                              position_ids=positions.to(self.device), use_cache=cache is not None,
                              **kwargs).last_hidden_state
                last = torch.tensor([len(enc[i]) - 1 for i in rows], device=self.device)
                logits = head(hidden[torch.arange(len(rows), device=self.device), last]).float()
            if self.softcap:
                logits = torch.tanh(logits / self.softcap) * self.softcap
            logp = torch.log_softmax(logits, dim=-1)
            out[rows] = (logp[:, self.pos_id] - logp[:, self.neg_id]).double().cpu().numpy()
            self.prompts += len(rows)
            self.tokens += int(sum(len(enc[i]) for i in rows))
            if progress is not None:
                progress.update(len(rows))
        return out


API = ("completions", "chat")


def word_logprob(top: dict[str, float], word: str, other: str) -> Optional[float]:
    """log p(word) from a next-token top list: the tokens that are a non-empty prefix of `word`
    (stripped, case-insensitive) but not of `other`, their probabilities summed; None if none."""
    w, o = word.strip().lower(), other.strip().lower()
    hits = [lp for tok, lp in top.items()
            if (t := tok.strip().lower()) and w.startswith(t) and not o.startswith(t)]
    return float(np.logaddexp.reduce(hits)) if hits else None


class EndpointScorer:
    """Label-word log-odds of prompt texts from an OpenAI-compatible server (endpoint.Client)."""

    def __init__(self, client: Any, words: Sequence[str], api: str = "completions",
                 top_logprobs: int = 20):
        if api not in API:
            raise W2SError(f"endpoint api must be one of {', '.join(API)}; got {api!r}")
        if not isinstance(top_logprobs, int) or isinstance(top_logprobs, bool) or top_logprobs < 2:
            raise W2SError(f"endpoint top_logprobs must be an integer >= 2, got {top_logprobs!r}")
        self.client, self.api, self.top = client, api, top_logprobs
        self.neg, self.pos = words
        if self.neg.strip().lower().startswith(self.pos.strip().lower()) or \
                self.pos.strip().lower().startswith(self.neg.strip().lower()):
            raise W2SError(f"label words {list(words)}: one is a prefix of the other, so an "
                           "endpoint's tokens cannot tell them apart")
        self.prompts = self.bounded = self.unscored = 0

    def top_list(self, prompt: str) -> dict[str, float]:
        """The next token's top log-probabilities after `prompt`, as {token text: logprob}."""
        body: dict[str, Any] = {"model": self.client.model, "max_tokens": 1, "temperature": 0}
        if self.api == "completions":
            reply = self.client.post("completions", {**body, "prompt": prompt, "logprobs": self.top})
        else:
            reply = self.client.post("chat/completions", {
                **body, "messages": [{"role": "user", "content": prompt}], "logprobs": True,
                "top_logprobs": self.top})
        try:
            lp = reply["choices"][0]["logprobs"]
            if self.api == "completions":
                return {str(t): float(v) for t, v in lp["top_logprobs"][0].items()}
            return {str(e["token"]): float(e["logprob"]) for e in lp["content"][0]["top_logprobs"]}
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            raise W2SError(f"{self.client.base}/{'completions' if self.api == 'completions' else 'chat/completions'} "
                           "returned no top log-probabilities; icl_refine needs a server that "
                           "does (vLLM does; try api: chat or api: completions)") from None

    def logodds_one(self, prompt: str) -> tuple[float, int]:
        """(log-odds, how many label words were missing from the top list)."""
        top = self.top_list(prompt)
        if not top:
            raise W2SError(f"{self.client.base} returned an empty top log-probability list")
        neg, pos = word_logprob(top, self.neg, self.pos), word_logprob(top, self.pos, self.neg)
        if neg is None and pos is None:
            return 0.0, 2
        floor = min(top.values())
        return (floor if pos is None else pos) - (floor if neg is None else neg), int(neg is None or pos is None)

    def logodds(self, prompts: Sequence[str], progress: Any = None) -> np.ndarray:
        from concurrent.futures import ThreadPoolExecutor

        def one(prompt: str) -> tuple[float, int]:
            result = self.logodds_one(prompt)
            if progress is not None:
                progress.update(1)
            return result

        with ThreadPoolExecutor(self.client.concurrency) as pool:
            results = list(pool.map(one, prompts))
        missing = [m for _, m in results]
        self.prompts += len(prompts)
        self.bounded += missing.count(1)
        self.unscored += missing.count(2)
        return np.array([v for v, _ in results], dtype=np.float64)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))
