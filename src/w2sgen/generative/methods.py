"""How the training targets of the student are made from the weak answers (GEN_METHODS).

Each method is a registered function `(Inputs, **options) -> (targets, report)`: one training
target per weakly labelled question, and a JSON-able report of what it did. The student is then
the strong model fine-tuned on (question, target) (sft.py), asked without any system prompt.
The strong model answers at temperature 0 in every method, and it never sees the weak model's
instruction: it has to infer the behaviour from the weak answers.

- `naive`: the weak answers themselves (fine-tuning on weak labels).
- `icl_refine` (Somerstep et al.): the training questions are shuffled (seeded) into batches of
  `batch_size`; for each question, the *other* (question, weak answer) pairs of its batch are
  in-context demonstrations (earlier chat turns, or Question/Answer blocks for a model without a
  chat template) and the strong model answers the question; that answer is the target. The
  question's own weak answer never enters its prompt (`loo_demonstrations`). `fixed=k` uses k
  fixed demonstrations for every question instead (the paper used 2-3 for maths), drawn with the
  seed from the training set, a question never being its own demonstration.
- `infer_and_respond`: per batch, the strong model reads the batch's (question, weak answer) pairs
  and states their style and intent in one sentence starting "The used style is:"; then it
  answers each question of the batch with that sentence as its system prompt.
- `ask_to_improve`: the strong model sees (question, weak answer) and is asked for an improved
  answer.
Prompt wordings are versioned by PROMPTS_VERSION (part of the cache key of the targets).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import W2SError
from ..lm import Conversation, LanguageModel, Sampling, user
from ..registry import Registry
from .tasks import Question

PROMPTS_VERSION = 1
STYLE_PREFIX = "The used style is:"
INFER_PROMPT = ("Here are some questions, each followed by the answer it was given.\n\n{pairs}\n\n"
                "In one sentence, describe the style and intent of these answers, as an "
                "instruction for answering new questions the same way. Start with \""
                + STYLE_PREFIX + "\"")
IMPROVE_PROMPT = ("Here is a question and an answer to it.\n\nQuestion: {question}\n\nAnswer: "
                  "{answer}\n\nImprove the answer. Reply with the improved answer only.")


@dataclass
class Inputs:
    questions: list[Question]  # the weakly labelled training questions
    weak_answers: list[str]
    strong: LanguageModel
    sampling: Sampling  # temperature 0 unless configured otherwise
    seed: int
    progress: Any = None

    def answer(self, conversations: Sequence[Conversation]) -> list[str]:
        return self.strong.generate(conversations, self.sampling, self.progress)


Result = tuple[list[str], dict[str, Any]]
GEN_METHODS: Registry[Callable[..., Result]] = Registry("generative method")


def batches(n: int, size: int, seed: int) -> list[list[int]]:
    """A seeded shuffle of range(n) cut into batches of `size` or `size + 1` (so no batch is
    left with a single question that would have no demonstration)."""
    from ..methods.icl_refine import loo_batches

    if size < 2:
        raise W2SError(f"method.batch_size must be at least 2 (a question and a demonstration), got {size}")
    if n < size:
        raise W2SError(f"method.batch_size={size} but only {n} training questions")
    return [b.tolist() for b in loo_batches(np.zeros(n), size - 1, False, np.random.default_rng(seed))]


def loo_demonstrations(batch: Sequence[int], i: int) -> list[int]:
    """The demonstrations of question `i`: every other member of its batch."""
    return [j for j in batch if j != i]


def with_demonstrations(demos: Sequence[tuple[str, str]], question: str,
                        system: str | None = None) -> Conversation:
    conv = user(demos[0][0], system) if demos else user(question, system)
    if not demos:
        return conv
    conv.append({"role": "assistant", "content": demos[0][1]})
    for q, a in demos[1:]:
        conv += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return conv + [{"role": "user", "content": question}]


def _positive(name: str, v: Any, lo: int = 1) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < lo:
        raise W2SError(f"method.{name} must be an integer >= {lo}, got {v!r}")
    return v


@GEN_METHODS.register("naive")
def naive(x: Inputs) -> Result:
    return list(x.weak_answers), {}


@GEN_METHODS.register("icl_refine")
def icl_refine(x: Inputs, *, batch_size: int = 4, fixed: int = 0) -> Result:
    n = len(x.questions)
    _positive("fixed", fixed, 0)
    pairs = [(q.question, a) for q, a in zip(x.questions, x.weak_answers)]
    if fixed:
        if fixed >= n:
            raise W2SError(f"method.fixed={fixed} demonstrations but only {n} training questions")
        pool = np.random.default_rng(x.seed).permutation(n)[:fixed + 1].tolist()
        demos = {i: [j for j in pool if j != i][:fixed] for i in range(n)}
        report: dict[str, Any] = {"demonstrations": fixed, "fixed": [x.questions[j].id for j in pool[:fixed]]}
    else:
        demos = {i: loo_demonstrations(b, i) for b in batches(n, _positive("batch_size", batch_size, 2), x.seed) for i in b}
        report = {"batches": len({tuple(sorted(d + [i])) for i, d in demos.items()})}
    convs = [with_demonstrations([pairs[j] for j in demos[i]], x.questions[i].question) for i in range(n)]
    return x.answer(convs), report


def style_sentence(text: str) -> str:
    """The inferred style as one sentence beginning with STYLE_PREFIX, whatever the model wrote
    around it."""
    found = re.search(re.escape(STYLE_PREFIX) + r"\s*(.*)", text, flags=re.IGNORECASE | re.DOTALL)
    body = (found.group(1) if found else text).strip()
    body = re.split(r"(?<=[.!?])\s|\n", body, maxsplit=1)[0].strip() if body else ""
    return f"{STYLE_PREFIX} {body or 'the same as in the examples.'}"


@GEN_METHODS.register("infer_and_respond")
def infer_and_respond(x: Inputs, *, batch_size: int = 4) -> Result:
    groups = batches(len(x.questions), _positive("batch_size", batch_size, 2), x.seed)
    prompts = []
    for b in groups:
        pairs = "\n\n".join(f"Question: {x.questions[j].question}\nAnswer: {x.weak_answers[j]}" for j in b)
        prompts.append(user(INFER_PROMPT.format(pairs=pairs)))
    styles = [style_sentence(t) for t in x.answer(prompts)]
    system = {i: s for b, s in zip(groups, styles) for i in b}
    convs = [user(q.question, system[i] + " Answer the question in this style.")
             for i, q in enumerate(x.questions)]
    return x.answer(convs), {"styles": styles}


@GEN_METHODS.register("ask_to_improve")
def ask_to_improve(x: Inputs) -> Result:
    convs = [user(IMPROVE_PROMPT.format(question=q.question, answer=a))
             for q, a in zip(x.questions, x.weak_answers)]
    return x.answer(convs), {}
