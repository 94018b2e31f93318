"""The `LanguageModel` interface and the conversation types every implementation shares.

A language model does two things for the toolkit:

- `generate(conversations, sampling)`: answers to OpenAI-style conversations (lists of
  `{"role", "content"}` messages), greedy at temperature 0, seeded sampling above it;
- `label_logodds(prefix, continuations, words)`: for every continuation c, log p(words[1]) -
  log p(words[0]) as the next token after `prefix + c` (two label words, negative then positive).
  The prefix is shared by every continuation, so an implementation may compute it once.
- `continuation_logprob(prompts, continuations)` (local models): log p(c | prompt) of each
  continuation, summed over its tokens.

Prompts for scoring are made of *blocks*: `blocks(texts)` encodes each text on its own (token id
lists for a local model, the text itself for an endpoint, which tokenises on the server), `join`
concatenates blocks, and `start` is what every prompt opens with (a local tokenizer's start
tokens). Building prompts from blocks makes them the same however they are cut (prompting.py).
`check_prompts` refuses, before any weights load, prompts longer than the model's context.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import W2SError

Message = dict[str, str]
Conversation = list[Message]

PLAIN_STOP = "\nQuestion:"


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int = 48
    temperature: float = 0.0  # 0: greedy
    seed: int = 0

    def key(self) -> dict[str, Any]:
        """What of the sampling changes an answer (the seed only matters when sampling)."""
        return {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature,
                "seed": self.seed if self.temperature > 0 else None}


class LanguageModel:
    """Interface: `name` (for people), `identity` (for cache keys), `generate`, and label
    scoring over prompt blocks (`start`, `blocks`, `join`, `check_words`, `label_logodds`)."""

    name: str = ""
    identity: str = ""
    can_finetune: bool = False
    start: Any = ""  # the opening block of every scoring prompt

    def generate(self, conversations: Sequence[Conversation], sampling: Sampling,
                 progress: Any = None) -> list[str]:
        raise NotImplementedError

    def blocks(self, texts: Sequence[str]) -> list[Any]:
        """Each text as a prompt block of its own."""
        return list(texts)

    def join(self, blocks: Sequence[Any]) -> Any:
        return "".join(blocks)

    def check_words(self, words: Sequence[str], context: str = "") -> None:
        """Refuse label words this model cannot score (one line); `context` is the text a
        prompt ends with right before the word."""

    def check_prompts(self, prompts: Sequence[Any], where: str) -> None:
        """Refuse prompts longer than the model's context (one line)."""

    def label_logodds(self, prefix: Any, continuations: Sequence[Any], words: Sequence[str],
                      progress: Any = None, context: str = "") -> np.ndarray:
        """log p(words[1]) - log p(words[0]) as the next token after `prefix + c` for every
        continuation c; `context` is what prompts end with before the word (lm/tokens.py)."""
        raise NotImplementedError

    def continuation_logprob(self, prompts: Sequence[Any], continuations: Sequence[Any],
                             progress: Any = None) -> np.ndarray:
        """For every (prompt, continuation) pair of blocks: log p(continuation | prompt), the sum
        over the continuation's tokens (zero-shot scoring of candidate answers, zero_shot.py)."""
        raise NotImplementedError(f"{type(self).__name__} does not score continuations")

    def report(self) -> dict[str, Any]:
        """Counters worth reporting with a run (an endpoint's missing label words)."""
        return {}


def user(content: str, system: str | None = None) -> Conversation:
    """A one-question conversation, with an optional system prompt."""
    return ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": content}]


def plain_prompt(conversation: Conversation) -> str:
    """The prompt format for models without a chat template: the system text as a header, then
    `Question:`/`Answer:` blocks, ending right after the last `Answer:`."""
    parts = []
    for m in conversation:
        if m["role"] == "system":
            parts.append(m["content"].strip() + "\n\n")
        elif m["role"] == "user":
            parts.append(f"Question: {m['content'].strip()}\nAnswer:")
        elif m["role"] == "assistant":
            parts.append(f" {m['content'].strip()}\n\n")
        else:
            raise W2SError(f"unknown message role {m['role']!r}")
    return "".join(parts)


def merge_system(conversation: Conversation) -> Conversation:
    """For chat templates without a system role: the system text opens the first user turn."""
    system = [m["content"] for m in conversation if m["role"] == "system"]
    rest = [dict(m) for m in conversation if m["role"] != "system"]
    if system and rest and rest[0]["role"] == "user":
        rest[0]["content"] = "\n\n".join(system) + "\n\n" + rest[0]["content"]
    return rest
