"""Methods ranked across tasks: each compared with the baseline by an exact Wilcoxon
signed-rank test on paired per-unit differences, Holm-adjusted (numpy only)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..metrics import average_ranks, holm, wilcoxon_signed_rank
from .runs import classification_runs, is_diagnostic, method_of, unit_key


@dataclass
class Comparison:
    method: str
    units: int                  # (task, model pair) units with both methods
    wins: int                   # units where the method's student is more accurate
    ties: int
    losses: int
    median_diff: float          # of the per-unit mean differences in student accuracy
    mean_diff: float
    w_plus: float
    p: float
    p_holm: float = 1.0
    seed_wins: int = 0          # the same counts over single (task, pair, seed) blocks
    seed_ties: int = 0
    seed_losses: int = 0


@dataclass
class Ranking:
    baseline: str
    methods: list[str]
    mean_rank: dict[str, float]  # the ranked methods' (NaN for the others)
    units: int
    ranked: list[str]            # the methods ranked (see `method_ranking`)
    ranked_units: int            # the units their mean ranks are over
    comparisons: list[Comparison] = field(default_factory=list)


def method_ranking(runs: list[dict[str, Any]], baseline: str = "naive") -> Ranking | None:
    """Methods ranked by student test accuracy across (task, model pair) units, and each
    compared with `baseline`.

    A unit is a task with a model pair and every setting but the method (and the seed); the
    seeds of a unit share its data, so they are not independent replicates: a method's
    difference to the baseline in a unit is the mean over the seeds both ran of the paired
    difference (same seed = same weak supervisor and ceiling), and the test runs over units.
    Mean ranks (1 = most accurate student) need units that ran the same methods: of the method
    sets the units ran, the one with the most (methods x units that ran them all) is ranked,
    over those units (a whole sweep, or its cells that finished). Methods outside it get no
    rank but are still compared with the baseline wherever both ran. Diagnostics
    (gt_early_stop) are left out."""
    acc: dict[str, dict[str, dict[int, float]]] = {}  # unit -> method -> seed -> student accuracy
    for r in classification_runs(runs):
        if is_diagnostic(r):
            continue
        acc.setdefault(unit_key(r, False), {}).setdefault(method_of(r), {})[r["config"]["seed"]] = \
            float(r["metrics"]["student_accuracy"]["value"])
    methods = sorted({m for per in acc.values() for m in per})
    if len(methods) < 2:
        return None
    if baseline not in methods:
        baseline = max(methods, key=lambda m: sum(m in per for per in acc.values()))
    best: tuple[int, int, list[str]] = (0, 0, [])
    for candidate in {frozenset(per) for per in acc.values()}:
        if len(candidate) > 1:
            covering = sum(candidate <= set(per) for per in acc.values())
            best = max(best, (len(candidate) * covering, covering, sorted(candidate)))
    ranked = best[2]
    ranks: dict[str, list[float]] = {m: [] for m in ranked}
    for per in acc.values():
        if ranked and set(ranked) <= set(per):
            means = np.array([np.mean(list(per[m].values())) for m in ranked])
            for m, rank in zip(ranked, average_ranks(-means)):
                ranks[m].append(float(rank))
    out = Ranking(baseline, methods, {m: float(np.mean(ranks[m])) if ranks.get(m) else float("nan")
                                      for m in methods}, len(acc), ranked, best[1])
    for m in methods:
        if m == baseline:
            continue
        diffs, seed_diffs = [], []
        for per in acc.values():
            if m in per and baseline in per:
                shared = sorted(set(per[m]) & set(per[baseline]))
                if shared:
                    d = [per[m][s] - per[baseline][s] for s in shared]
                    seed_diffs += d
                    diffs.append(float(np.mean(d)))
        if not diffs:
            continue
        w_plus, p, _ = wilcoxon_signed_rank(diffs)
        dd, sd = np.array(diffs), np.array(seed_diffs)
        out.comparisons.append(Comparison(
            m, len(diffs), int((dd > 1e-12).sum()), int((np.abs(dd) <= 1e-12).sum()), int((dd < -1e-12).sum()),
            float(np.median(dd)), float(dd.mean()), w_plus, p,
            seed_wins=int((sd > 1e-12).sum()), seed_ties=int((np.abs(sd) <= 1e-12).sum()),
            seed_losses=int((sd < -1e-12).sum())))
    for c, adjusted in zip(out.comparisons, holm([c.p for c in out.comparisons])):
        c.p_holm = adjusted
    return out
