"""Reward models for pairwise-preference tasks: one scalar score per response, compared by
Bradley-Terry.

A comparison (prompt, response A, response B; `Example.responses`) is read as two sides,
prompt + A and prompt + B (`side_examples`), each encoded on its own, so the frozen features of
a pairwise split are an (N, 2, d) array. A reward model scores a side with one linear map shared
by both sides, r(x) = w . x, and says P(A preferred) = sigmoid(r(x_A) - r(x_B)). As the two-class
logits every loss takes (losses.py) that is (r(x_B), r(x_A)): their softmax is exactly that
probability. So the losses apply unchanged: `xent` on a soft preference p is the Bradley-Terry
loss -(p log sigmoid(r_A - r_B) + (1 - p) log sigmoid(r_B - r_A)), with hard labels the usual
reward-model loss; `logconf` hardens the student's own preferences as it hardens any binary
prediction. A bias would cancel in the difference, so the scorer has none.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .errors import W2SError
from .example import Example

SIDES = ("A", "B")


def is_pairwise(examples: Sequence[Example]) -> bool:
    """Whether `examples` are comparisons (every one carries its two responses); a mix of
    comparisons and other examples is refused."""
    n = sum(e.responses is not None for e in examples)
    if n and n < len(examples):
        raise W2SError(f"{n} of {len(examples)} examples are comparisons (two responses) and the "
                       "rest are not; a task gives comparisons only or none")
    return bool(examples) and n == len(examples)


def side_examples(examples: Sequence[Example]) -> list[Example]:
    """Each comparison's two sides, A then B, as (prompt, response) examples: 2N of them, in
    the order that reshapes to (N, 2, ...). A side's label says whether it is the preferred one."""
    out = []
    for e in examples:
        assert e.responses is not None
        for side, response, label in zip(SIDES, e.responses, (e.label, 1 - e.label)):
            out.append(Example(f"{e.id}#{side}", e.text, label, e.group, response))
    return out


def side_array(x: np.ndarray, n: int) -> np.ndarray:
    """The (2N, d) features of `side_examples` as (N, 2, d): row i holds comparison i's A and B."""
    if len(x) != 2 * n:
        raise AssertionError(f"{len(x)} side features for {n} comparisons")
    return x.reshape(n, 2, *x.shape[1:])


def flat(x: np.ndarray) -> np.ndarray:
    """One vector per example for code that takes a matrix (a nearest-neighbour rule): a
    comparison's A-side minus B-side features, which swapping the two responses negates."""
    return x[:, 0] - x[:, 1] if x.ndim == 3 else x


class PairwiseScorer(nn.Module):
    """The shared linear reward r(x) = w . x over each side of a (B, 2, d) batch; its output is
    the two-class logits (r(B), r(A)), class 1 being "A is preferred". It starts at zero (every
    preference 0.5): the loss is convex in w, and a random start would only add noise along
    directions the data never moves."""

    def __init__(self, width: int):
        super().__init__()
        self.score = nn.Linear(width, 1, bias=False)
        nn.init.zeros_(self.score.weight)

    def rewards(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2): the reward of side A and of side B."""
        return self.score(x).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rewards(x).flip(-1)
