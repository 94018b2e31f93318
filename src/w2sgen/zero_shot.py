"""Zero-shot accuracy of a causal LM on a run's test split (`eval.zero_shot`): no training and no
labels, the LM's likelihoods alone.

- Comparisons (pairwise-preference tasks): the likelier response. Each response's mean
  log-probability per token after the prompt (a newline between them); P(A preferred) =
  sigmoid(mean_A - mean_B). Mean, not sum, so that a shorter response does not win by length.
- Candidates (examples grouped by question, the candidate in `text_pair`: a chess puzzle's
  candidate moves, a binarised multiple-choice question): log p(candidate | question), summed
  over the candidate's tokens; a question's candidates compete by softmax (with two candidates,
  as binarised tasks have, an example is predicted correct, > 0.5, exactly where its candidate
  is the likelier: the argmax).

Other tasks (a single text per example) have no zero-shot answer here; icl_refine's prompting
baselines ask an LM a question about each text instead.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import W2SError
from .example import Example
from .lm import LanguageModel
from .pairwise import is_pairwise

FORMAT = 1  # bumped when how examples become prompts changes (part of the cache key)


def kind(examples: Sequence[Example], task: str) -> str:
    """`comparison` or `candidates`; one line when the examples allow neither."""
    if is_pairwise(examples):
        return "comparison"
    sizes: dict[str, int] = defaultdict(int)
    for e in examples:
        sizes[e.group] += 1
    if all(e.text_pair is not None and e.group for e in examples) and min(sizes.values()) >= 2:
        return "candidates"
    raise W2SError(f"eval.zero_shot scores comparisons (two responses) or candidate answers (two "
                   f"or more per question, in text_pair); task {task!r} has neither; remove "
                   "eval.zero_shot (method icl_refine's prompting baselines ask an LM about single "
                   "texts)")


def prompt_pairs(lm: LanguageModel, examples: Sequence[Example], how: str
                 ) -> tuple[list[Any], list[Any]]:
    """(prompts, continuations) as the LM's blocks: one per candidate, two per comparison (A, B)."""
    if how == "comparison":
        texts = [(e.text, r) for e in examples for r in (e.responses or ())]
    else:
        texts = [(e.text, e.text_pair or "") for e in examples]
    heads = lm.blocks([f"{q}\n" for q, _ in texts])
    return [lm.join([lm.start, h]) for h in heads], lm.blocks([c for _, c in texts])


def probabilities(lm: LanguageModel, examples: Sequence[Example], how: str,
                  progress: Any = None) -> np.ndarray:
    """P(label 1) for every example (see the module's docstring)."""
    prompts, continuations = prompt_pairs(lm, examples, how)
    logp = lm.continuation_logprob(prompts, continuations, progress)
    if how == "comparison":
        mean = logp / np.array([len(c) for c in continuations])
        return 1 / (1 + np.exp(-(mean[0::2] - mean[1::2])))
    out = np.empty(len(examples))
    members: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(examples):
        members[e.group].append(i)
    for rows in members.values():
        z = logp[rows] - logp[rows].max()
        out[rows] = np.exp(z) / np.exp(z).sum()
    return out
