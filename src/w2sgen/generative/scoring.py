"""Cheap automatic measures of generated answers, and intervals for them.

- Exact match (maths): the answer's final number is compared with the reference number. The
  final number is the one after the last "answer is" / "####" / "=" if there is one, else the
  last number in the text; commas, currency signs and a trailing full stop are ignored, and
  numbers compare by value (`12.0` matches `12`).
- Marker rate: the fraction of answers containing at least one marker word or phrase as whole
  words, case-insensitive (pirate: "arr", "matey", "ye", ...; analogies: "like", "as if",
  "imagine", ...). A proxy only: it counts words, not whether the persona or the analogy is
  any good.
- Reference mention (a content proxy for open questions with a short reference answer, e.g.
  BIG-bench's "four", "water", "Unknown"): the answer contains the reference as whole words,
  case-insensitive; for the reference "Unknown" (a question nobody can answer) any of a few
  phrases saying so counts. Only references of at most three words are checked; others are
  missing. A proxy only: "not four" mentions "four".
- Means come with percentile bootstrap intervals over questions; a student is compared with
  the unaltered strong model by a paired bootstrap of the per-question difference.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

import numpy as np

from ..metrics import mean_ci, paired_difference  # noqa: F401  (the scores' intervals)

_NUMBER = r"-?\$?\d[\d,]*(?:\.\d+)?"
_CUE = re.compile(r"(?:answer\s*(?:is|:)|####|=)\s*(?:\*\*)?\s*(" + _NUMBER + ")", re.IGNORECASE)


def _value(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "").replace("$", "").rstrip("."))
    except InvalidOperation:
        return None


def extract_number(text: str) -> Decimal | None:
    """The final numeric answer of a solution, or None when the text holds no number."""
    cued = _CUE.findall(text)
    if cued:
        return _value(cued[-1])
    found = re.findall(_NUMBER, text)
    return _value(found[-1]) if found else None


def exact_match(answer: str, reference: str) -> bool:
    got, want = extract_number(answer), extract_number(reference)
    return got is not None and want is not None and got == want


def has_marker(answer: str, markers: Sequence[str]) -> bool:
    text = answer.lower()
    return any(re.search(rf"(?<![\w']){re.escape(m)}(?![\w'])", text) for m in markers)


def marker_rate(answers: Sequence[str], markers: Sequence[str]) -> float:
    return float(np.mean([has_marker(a, markers) for a in answers])) if answers else float("nan")


UNKNOWN = ("unknown", "not known", "no one knows", "nobody knows", "don't know", "do not know",
           "cannot know", "can't know", "impossible to know", "no way to know", "not possible to know",
           "no record", "not recorded")


def mentions_reference(answer: str, reference: str | None) -> float:
    """1.0 / 0.0, or NaN when there is no short reference to look for."""
    ref = (reference or "").strip().rstrip(".").lower()
    if not ref or len(ref.split()) > 3:
        return float("nan")
    words = UNKNOWN if ref == "unknown" else (ref,)
    return float(has_marker(answer, words))


