"""An OpenAI-compatible server behind the `LanguageModel` interface (HTTP: endpoint.Client).

Generation: one `chat/completions` request per conversation, `concurrency` at a time; the seed
is sent only when sampling.

Label scoring: prompts are *text* (blocks are strings; the server tokenises), one request per
prompt for a single next token with its top log-probabilities (`api: completions`: the raw
prompt, as for a base model; `api: chat`: the prompt as one user message). A label word is
recognised among the returned tokens by text: every returned token that, stripped and
lower-cased, is a non-empty prefix of the word (and not of the other word) counts for it, their
probabilities summed. A word missing from the top list gets the smallest returned
log-probability, an upper bound (`bounded`); a prompt where neither word appears scores 0
(`unscored`). Both counts are reported, so a too-short top list shows.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

import numpy as np

from ..endpoint import Client
from ..errors import W2SError
from .base import Conversation, LanguageModel, Sampling

API = ("completions", "chat")


def word_logprob(top: dict[str, float], word: str, other: str) -> Optional[float]:
    """log p(word) from a next-token top list: the tokens that are a non-empty prefix of `word`
    (stripped, case-insensitive) but not of `other`, their probabilities summed; None if none."""
    w, o = word.strip().lower(), other.strip().lower()
    hits = [lp for tok, lp in top.items()
            if (t := tok.strip().lower()) and w.startswith(t) and not o.startswith(t)]
    return float(np.logaddexp.reduce(hits)) if hits else None


class EndpointLM(LanguageModel):
    """A model served over the OpenAI protocol. `api` and `top_logprobs` are how label words
    are scored; generation always uses chat completions."""

    def __init__(self, client: Client, api: str = "completions", top_logprobs: int = 20):
        if api not in API:
            raise W2SError(f"endpoint api must be one of {', '.join(API)}; got {api!r}")
        if not isinstance(top_logprobs, int) or isinstance(top_logprobs, bool) or top_logprobs < 2:
            raise W2SError(f"endpoint top_logprobs must be an integer >= 2, got {top_logprobs!r}")
        self.client, self.api, self.top = client, api, top_logprobs
        self.name, self.identity = client.name, client.identity
        self.prompts = self.bounded = self.unscored = 0

    # ------------------------------------------------------------------ generation

    def complete(self, conversation: Conversation, sampling: Sampling) -> str:
        body: dict[str, Any] = {"model": self.client.model, "messages": conversation,
                                "max_tokens": sampling.max_new_tokens,
                                "temperature": sampling.temperature}
        if sampling.temperature > 0:
            body["seed"] = sampling.seed
        reply = self.client.post("chat/completions", body)
        try:
            content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise W2SError(f"{self.client.base}/chat/completions answered without "
                           f"choices[0].message.content: {self.client.redact(json.dumps(reply)[:200])}") from None
        return (content or "").strip()

    def _each(self, fn: Any, items: Sequence[Any], progress: Any) -> list[Any]:
        def one(item: Any) -> Any:
            result = fn(item)
            if progress is not None:
                progress.update(1)
            return result

        with ThreadPoolExecutor(self.client.concurrency) as pool:
            return list(pool.map(one, items))

    def generate(self, conversations: Sequence[Conversation], sampling: Sampling,
                 progress: Any = None) -> list[str]:
        return self._each(lambda c: self.complete(c, sampling), conversations, progress)

    # ------------------------------------------------------------------ label scoring

    def check_words(self, words: Sequence[str], context: str = "") -> None:
        neg, pos = (w.strip().lower() for w in words)
        if neg.startswith(pos) or pos.startswith(neg):
            raise W2SError(f"label words {list(words)}: one is a prefix of the other, so an "
                           "endpoint's tokens cannot tell them apart")

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
            path = "completions" if self.api == "completions" else "chat/completions"
            raise W2SError(f"{self.client.base}/{path} returned no top log-probabilities; "
                           "icl_refine needs a server that does (vLLM does; try api: chat or "
                           "api: completions)") from None

    def logodds_one(self, prompt: str, words: Sequence[str]) -> tuple[float, int]:
        """(log-odds, how many label words were missing from the top list)."""
        top = self.top_list(prompt)
        if not top:
            raise W2SError(f"{self.client.base} returned an empty top log-probability list")
        neg_w, pos_w = words
        neg, pos = word_logprob(top, neg_w, pos_w), word_logprob(top, pos_w, neg_w)
        if neg is None and pos is None:
            return 0.0, 2
        floor = min(top.values())
        return (floor if pos is None else pos) - (floor if neg is None else neg), int(neg is None or pos is None)

    def label_logodds(self, prefix: str, continuations: Sequence[str], words: Sequence[str],
                      progress: Any = None, context: str = "") -> np.ndarray:
        self.check_words(words)
        results = self._each(lambda c: self.logodds_one(prefix + c, words), continuations, progress)
        missing = [m for _, m in results]
        self.prompts += len(results)
        self.bounded += missing.count(1)
        self.unscored += missing.count(2)
        return np.array([v for v, _ in results], dtype=np.float64)

    def report(self) -> dict[str, Any]:
        return {"endpoint_prompts": self.prompts, "endpoint_bounded": self.bounded,
                "endpoint_unscored": self.unscored}
