"""The LLM judge: content and style scores from 1 to 10, from any language model (lm.LanguageModel:
a local model or an endpoint, as a generative run's backends are).

Prompts are versioned: a score is only comparable with scores from the same prompt, so the
version string (`judge-v1`, ...) is stored with every score and is part of the cache key. A
changed wording gets a new version; old versions stay registered so old runs can be re-scored
the same way.

judge-v1 shows the judge the question, the reference answer when the task has one, the target
style (Behaviour.style) and the answer, and asks for two lines, `Content: <1-10>` (correct,
relevant, helpful, style ignored) and `Style: <1-10>` (how well the answer follows the target
style, correctness ignored). judge-v2 asks the same with the scales and the target style
before the question, so that the part every answer shares comes first and a local judge computes
it once. Each answer is judged `samples` times at `temperature` (seeds 0, 1,
...), and each score is the mean over the samples that parsed. A reply with no parseable score
counts as missing for that sample; an answer with no parsed sample is missing (NaN) and counted
in the report, never replaced by a guess.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import W2SError
from ..lm import Conversation, LanguageModel, Sampling, user


@dataclass(frozen=True)
class JudgePrompt:
    version: str
    system: str
    template: str  # fields: {question}, {reference}, {style}, {answer}
    reference_line: str  # inserted as {reference} when the question has a reference answer


PROMPTS = {
    "v1": JudgePrompt(
        "judge-v1",
        "You are a strict, fair grader of answers to questions.",
        "Question: {question}\n{reference}Target style: {style}\n\nAnswer to grade:\n{answer}\n\n"
        "Grade the answer on two scales from 1 (worst) to 10 (best).\n"
        "Content: is the answer correct, relevant and helpful? Ignore its style.\n"
        "Style: how well does the answer follow the target style? Ignore its correctness.\n"
        "Reply with exactly two lines:\nContent: <1-10>\nStyle: <1-10>",
        "Reference answer (for the content score): {reference}\n"),
    # v1's request with everything that is the same for every answer (the scales, the target
    # style) first, so a local judge runs that part once (lm.local's shared-prefix cache); the
    # reply format is repeated after the answer, where small judges look for it
    "v2": JudgePrompt(
        "judge-v2",
        "You are a strict, fair grader of answers to questions.",
        "Grade an answer to a question on two scales from 1 (worst) to 10 (best).\n"
        "Content: is the answer correct, relevant and helpful? Ignore its style.\n"
        "Style: how well does the answer follow the target style? Ignore its correctness.\n"
        "Target style: {style}\n\n"
        "Question: {question}\n{reference}\nAnswer to grade:\n{answer}\n\n"
        "Reply with exactly two lines:\nContent: <1-10>\nStyle: <1-10>",
        "Reference answer (for the content score): {reference}\n"),
}


def prompt(version: str) -> JudgePrompt:
    if version not in PROMPTS:
        raise W2SError(f"unknown judge prompt {version!r}; available: {', '.join(sorted(PROMPTS))}")
    return PROMPTS[version]


def judge_conversation(p: JudgePrompt, question: str, answer: str, style: str,
                       reference: str | None) -> Conversation:
    ref = p.reference_line.format(reference=reference) if reference else ""
    return user(p.template.format(question=question, reference=ref, style=style,
                                  answer=answer.strip() or "(empty answer)"), system=p.system)


_NUM = r"(\d+(?:\.\d+)?)"


def _score(text: str, label: str) -> float | None:
    """The number after a label: `Content: 7`, `**Style**: 8/10`, `Content (1-10): 6`,
    `content score of 6 out of 10`, `Style is 9`; a range such as `<1-10>` (the template echoed)
    is not a score, nor is a value outside 1..10."""
    m = re.search(rf"\b{label}\W{{0,6}}(?:\([^)]*\))?\W{{0,4}}(?:score|rating)?\W{{0,4}}(?:is|of|=)?"
                  rf"\W{{0,4}}{_NUM}(?!\s*-\s*\d)", text, flags=re.IGNORECASE)
    if not m:
        return None
    value = float(m.group(1))
    return value if 1 <= value <= 10 else None


def parse_scores(text: str) -> tuple[float | None, float | None]:
    """(content, style) from a judge's reply; None where a score is missing or out of range."""
    return _score(text, "content"), _score(text, "style")


def judge(backend: LanguageModel, p: JudgePrompt, questions: Sequence[str], answers: Sequence[str],
          style: str, references: Sequence[str | None], samples: int, temperature: float,
          max_new_tokens: int, progress: Any = None) -> dict[str, np.ndarray]:
    """Scores of every (question, answer): arrays `content` and `style` of shape (n, samples)
    with NaN where a sample did not parse, and the raw replies."""
    convs = [judge_conversation(p, q, a, style, r) for q, a, r in zip(questions, answers, references)]
    content = np.full((len(convs), samples), np.nan)
    style_ = np.full((len(convs), samples), np.nan)
    replies = np.empty((len(convs), samples), dtype=object)
    for s in range(samples):
        texts = backend.generate(convs, Sampling(max_new_tokens, temperature, seed=s), progress)
        for i, t in enumerate(texts):
            c, st = parse_scores(t)
            content[i, s] = np.nan if c is None else c
            style_[i, s] = np.nan if st is None else st
            replies[i, s] = t
    return {"content": content, "style": style_, "replies": replies.astype(str)}
