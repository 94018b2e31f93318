"""Metrics with paired bootstrap intervals, PGR, and student-supervisor agreement; and the
paired tests the reports run across tasks (exact Wilcoxon signed-rank, Holm, average ranks).
The project's one statistics module: reports and methods compute intervals and tests here.

All intervals resample the *test examples* (the same resample for weak, student and ceiling,
since their errors are correlated), percentile method. PGR = (student - weak) / (ceiling - weak)
is reported as undefined unless the interval of the denominator lies wholly above 0
(`gap_defined`): otherwise the ceiling does not clearly beat the weak model and any ratio is
noise; `gap_words` says which way such a gap points.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Optional

import numpy as np

from .errors import W2SError


def accuracy(labels: np.ndarray, probs: np.ndarray) -> float:
    return float(((probs > 0.5) == labels).mean())


def roc_auc(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mann-Whitney form with average ranks for ties; NaN when one class is absent."""
    labels = np.asarray(labels).astype(bool)
    n_pos = labels.sum()
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(probs, kind="mergesort")
    ranks = np.empty(len(probs))
    sorted_p = np.asarray(probs)[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass
class Estimate:
    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclass
class PGR:
    value: Optional[float]
    low: Optional[float]
    high: Optional[float]
    reason: str = ""  # why it is undefined

    def __str__(self) -> str:
        if self.value is None:
            return f"undefined ({self.reason})"
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"


def _interval(samples: np.ndarray, point: float, confidence: float) -> Estimate:
    a = (1 - confidence) / 2
    lo, hi = np.nanquantile(samples, [a, 1 - a])
    return Estimate(float(point), float(lo), float(hi))


def bootstrap_indices(n: int, rounds: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(rounds, n))


def gap_defined(low: float) -> bool:
    """The one rule for PGR: it is defined only where the interval of the ceiling - weak gap
    lies wholly above 0 (tables, figures, medians over seeds and correlations all ask this)."""
    return bool(low > 0)


def gap_words(value: float, low: float, high: float) -> str:
    """A ceiling - weak gap with its interval, saying which way it points: 'ceiling above weak',
    'strong below weak' (the whole interval below 0) or 'no clear gap' (it holds 0)."""
    iv = f"{value:+.3f} [{low:+.3f}, {high:+.3f}]"
    if gap_defined(low):
        return f"ceiling above weak: gap {iv}"
    if high < 0:
        return f"strong below weak: gap {iv}"
    return f"no clear gap: gap {iv} holds 0"


def pgr(weak: np.ndarray, student: np.ndarray, ceiling: np.ndarray, confidence: float) -> PGR:
    """PGR from per-resample scores (index 0 is the point estimate on the full test set)."""
    gap = ceiling - weak
    a = (1 - confidence) / 2
    gap_lo, gap_hi = np.nanquantile(gap[1:], [a, 1 - a])
    if not gap_defined(gap_lo):
        return PGR(None, None, None, gap_words(gap[0], gap_lo, gap_hi))
    with np.errstate(divide="ignore", invalid="ignore"):  # resamples with a zero gap -> nan
        ratio = np.where(gap != 0, (student - weak) / np.where(gap != 0, gap, 1), np.nan)
    lo, hi = np.nanquantile(ratio[1:], [a, 1 - a])
    return PGR(float(ratio[0]), float(lo), float(hi))


def evaluate(labels: np.ndarray, weak: np.ndarray, student: np.ndarray, ceiling: np.ndarray,
             rounds: int, confidence: float, seed: int) -> dict:
    """Everything reported for one experiment, as plain JSON-able data."""
    labels = np.asarray(labels)
    n = len(labels)
    idx = np.vstack([np.arange(n)[None], bootstrap_indices(n, rounds, seed)])
    models = {"weak": weak, "student": student, "ceiling": ceiling}
    correct = {k: ((p > 0.5) == labels).astype(np.float64) for k, p in models.items()}
    acc = {k: c[idx].mean(1) for k, c in correct.items()}
    auc = {k: np.array([roc_auc(labels[i], p[i]) for i in idx]) for k, p in models.items()}
    out: dict = {"n_test": n, "bootstrap": rounds, "confidence": confidence}
    for k in models:
        out[f"{k}_accuracy"] = asdict(_interval(acc[k][1:], acc[k][0], confidence))
        out[f"{k}_auc"] = asdict(_interval(auc[k][1:], auc[k][0], confidence))
    for metric, scores in (("accuracy", acc), ("auc", auc)):
        gap = scores["ceiling"] - scores["weak"]
        out[f"gap_{metric}"] = asdict(_interval(gap[1:], gap[0], confidence))
    out["pgr_accuracy"] = asdict(pgr(acc["weak"], acc["student"], acc["ceiling"], confidence))
    out["pgr_auc"] = asdict(pgr(auc["weak"], auc["student"], auc["ceiling"], confidence))
    out.update(agreement(labels, weak, student))
    out["misfit"] = misfit(labels, weak, student)
    return out


def misfit(labels: np.ndarray, weak: np.ndarray, student: np.ndarray) -> dict:
    """The misfit identity of Charikar et al. as a diagnostic, with squared loss on
    probabilities: if the student is the projection of the weak labels onto a convex class that
    holds the target, err(student) <= err(weak) - misfit(student, weak). `slack` is
    err(weak) - misfit - err(student): >= 0 when the inequality holds on this test set."""
    y = labels.astype(np.float64)
    err_s = float(np.mean((student - y) ** 2))
    err_w = float(np.mean((weak - y) ** 2))
    fit = float(np.mean((student - weak) ** 2))
    return {"err_student": err_s, "err_weak": err_w, "misfit": fit,
            "slack": err_w - fit - err_s, "holds": bool(err_s <= err_w - fit)}


def agreement(labels: np.ndarray, weak: np.ndarray, student: np.ndarray) -> dict:
    """How far the student imitates the supervisor: agreement of hard predictions overall, on
    the supervisor's mistakes, and on its correct answers (NaN where a subset is empty)."""
    w, s = weak > 0.5, student > 0.5
    agree = w == s
    wrong = w != labels.astype(bool)

    def mean(mask: np.ndarray) -> float:
        return float(agree[mask].mean()) if mask.any() else float("nan")

    return {"agreement": float(agree.mean()), "agreement_on_weak_errors": mean(wrong),
            "agreement_on_weak_correct": mean(~wrong), "n_weak_errors": int(wrong.sum())}


def mean_ci(values: np.ndarray, seed: int, rounds: int = 1000,
            confidence: float = 0.95) -> list[float] | None:
    """[mean, low, high] over the non-missing values, or None when all are missing: the mean
    with its percentile bootstrap interval (`rounds` resamples, seeded)."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if not len(v):
        return None
    boot = v[bootstrap_indices(len(v), rounds, seed)].mean(axis=1)
    a = (1 - confidence) / 2
    return [float(v.mean()), float(np.quantile(boot, a)), float(np.quantile(boot, 1 - a))]


def paired_difference(a: np.ndarray, b: np.ndarray, seed: int, rounds: int = 1000,
                      confidence: float = 0.95) -> dict | None:
    """Mean of a - b over questions where both are present, with a paired bootstrap interval;
    `worse` when the whole interval lies below 0."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = ~np.isnan(a) & ~np.isnan(b)
    ci = mean_ci((a - b)[ok], seed, rounds, confidence)
    if ci is None:
        return None
    return {"diff": ci, "n": int(ok.sum()), "worse": ci[2] < 0, "better": ci[1] > 0}


def flip_difference(right: int, wrong: int, n: int, confidence: float = 0.95) -> dict:
    """Accuracy of relabelled labels minus that of the labels they replaced, on the same n
    examples, from the flips alone: `right` flips turned a wrong label right, `wrong` flips a
    right one wrong. Matched-pairs interval (normal approximation with the discordant counts:
    var = (r + w)/n^2 - (r - w)^2/n^3) and the exact two-sided McNemar p-value (binomial test of
    r against r + w flips at 1/2)."""
    from math import comb
    from statistics import NormalDist

    if n <= 0 or right < 0 or wrong < 0 or right + wrong > n:
        raise ValueError(f"flip counts right={right}, wrong={wrong} do not fit n={n}")
    d = (right - wrong) / n
    var = max((right + wrong) / n**2 - (right - wrong) ** 2 / n**3, 0.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    m = right + wrong
    tail = sum(comb(m, i) for i in range(min(right, wrong) + 1)) / 2**m if m else 1.0
    return {"diff": d, "low": d - z * var**0.5, "high": d + z * var**0.5,
            "p": min(1.0, 2 * tail), "n": n, "flips": m}


@dataclass
class FixedPGR:
    """PGR of a method's seeds against fixed baselines: the mean weak and ceiling accuracies over
    the seeds of a sweep (the 2026 testbed's PGR), rather than each seed's own weak and ceiling.

    `value` = (mean student - mean weak) / (mean ceiling - mean weak), which is also the mean of
    `per_seed` (each student seed's PGR against the same fixed baselines; the map is linear);
    `sd` is their standard deviation over student seeds (ddof 1; None with one seed), the
    testbed's "0.20 +- 0.09". [low, high] is a percentile bootstrap interval resampling the
    seeds of each group (and, with `correct`, the test examples too). value, low and high are
    None, with `reason`, when the interval of mean ceiling - mean weak reaches 0."""

    value: Optional[float]
    low: Optional[float]
    high: Optional[float]
    sd: Optional[float]
    per_seed: list[float]
    weak_mean: float
    ceiling_mean: float
    student_mean: float
    n_seeds: dict[str, int]
    resampled: str  # "seeds" or "seeds+examples"
    reason: str = ""

    def __str__(self) -> str:
        if self.value is None:
            return f"undefined ({self.reason})"
        sd = "" if self.sd is None else f" +- {self.sd:.2f}"
        return f"{self.value:.2f}{sd} [{self.low:.2f}, {self.high:.2f}]"


GROUPS = ("weak", "ceiling", "student")


def _accuracies(name: str, values: np.ndarray) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    if not len(a):
        raise W2SError(f"fixed-baseline PGR needs at least one {name} run; the sweep has none")
    if not np.all((a >= 0) & (a <= 1)):
        raise ValueError(f"{name} accuracies must lie in [0, 1], got {a.tolist()}")
    return a


def _resampled_accuracies(acc: np.ndarray, correct: Optional[np.ndarray],
                          counts: Optional[np.ndarray], name: str) -> np.ndarray:
    """(rounds, seeds) accuracy of every seed on every resample of the test examples, or the
    accuracies themselves broadcast when examples are not resampled."""
    if correct is None or counts is None:
        return acc[None, :]
    c = np.asarray(correct, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != len(acc) or c.shape[1] != counts.shape[1]:
        raise ValueError(f"correct[{name!r}] must be (seeds={len(acc)}, n_test={counts.shape[1]}), "
                         f"got {c.shape}")
    if not np.allclose(c.mean(axis=1), acc, atol=1e-6):
        raise ValueError(f"correct[{name!r}] row means {c.mean(axis=1).tolist()} are not the "
                         f"{name} accuracies {acc.tolist()}: rows must be aligned with the seeds")
    return (counts @ c.T) / counts.shape[1]


def fixed_baseline_pgr(weak: np.ndarray, ceiling: np.ndarray, student: np.ndarray, *,
                       correct: Optional[dict[str, np.ndarray]] = None, rounds: int = 1000,
                       confidence: float = 0.95, seed: int = 0) -> FixedPGR:
    """PGR against fixed baselines (see `FixedPGR`), from accuracies per seed.

    weak, ceiling: test accuracy of each weak-supervisor and strong-ceiling run over the seeds
    of the sweep (any number, e.g. 16); student: the method's accuracy per seed (e.g. 5). All
    on one test set. correct (optional): {"weak", "ceiling", "student"} -> (seeds, n_test) 0/1
    arrays of per-example correctness, rows in the order of the accuracies (their row means must
    be the accuracies); given, each bootstrap round also resamples the test examples, the same
    draw for all three groups, as `evaluate` does. Seeds are resampled independently per group
    (a fixed baseline does not pair a student seed with its own weak run). Pure: no I/O, the
    bootstrap drawn from `seed`."""
    acc = {"weak": _accuracies("weak", weak), "ceiling": _accuracies("ceiling", ceiling),
           "student": _accuracies("student", student)}
    means = {k: float(v.mean()) for k, v in acc.items()}
    gap = means["ceiling"] - means["weak"]
    per_seed = ((acc["student"] - means["weak"]) / gap).tolist() if gap > 0 else []
    sd = float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else None
    rng = np.random.default_rng(seed)
    counts = None
    if correct is not None:
        missing = [k for k in GROUPS if k not in correct]
        if missing:
            raise ValueError(f"correct lacks {missing}; give all of {list(GROUPS)} or none")
        n = np.asarray(correct["weak"]).shape[-1]
        draws = rng.integers(0, n, size=(rounds, n))
        counts = np.zeros((rounds, n))
        np.add.at(counts, (np.repeat(np.arange(rounds), n), draws.reshape(-1)), 1.0)
    boot = {}
    for k in GROUPS:
        per_round = np.broadcast_to(_resampled_accuracies(
            acc[k], None if correct is None else correct[k], counts, k), (rounds, len(acc[k])))
        pick = rng.integers(0, len(acc[k]), size=(rounds, len(acc[k])))
        boot[k] = np.take_along_axis(per_round, pick, axis=1).mean(axis=1)
    out = FixedPGR(None, None, None, sd, per_seed, means["weak"], means["ceiling"],
                   means["student"], {k: len(v) for k, v in acc.items()},
                   "seeds" if correct is None else "seeds+examples")
    tail = (1 - confidence) / 2
    boot_gap = boot["ceiling"] - boot["weak"]
    gap_lo, gap_hi = np.quantile(boot_gap, [tail, 1 - tail])
    if gap <= 0 or not gap_defined(gap_lo):
        return replace(out, sd=None, per_seed=[],
                       reason="mean ceiling - mean weak: " + gap_words(gap, gap_lo, gap_hi))
    ratio = (boot["student"] - boot["weak"]) / boot_gap
    lo, hi = np.quantile(ratio, [tail, 1 - tail])
    return replace(out, value=(means["student"] - means["weak"]) / gap, low=float(lo), high=float(hi))


# ------------------------------------------------ paired tests across units (report/ranking.py)


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of x, ties sharing the mean of their ranks."""
    x = np.asarray(x, dtype=float)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return (first + (counts + 1) / 2.0)[inverse]


EXACT_MAX = 400  # above this many non-zero differences, the normal approximation


def wilcoxon_signed_rank(d: Any, zero: float = 1e-12) -> tuple[float, float, int]:
    """Two-sided Wilcoxon signed-rank test of paired differences `d` against a null of symmetry
    about 0. Returns (W+ = sum of the ranks of the positive differences, p, n used).

    Differences within `zero` of 0 are dropped (Wilcoxon's convention); no difference left
    gives p = 1. Ranks of |d| average over ties. Up to EXACT_MAX differences, p is exact: the
    null distribution of W+ given these ranks (each rank's sign + or - with probability 1/2) is
    built by convolution over doubled ranks, which are integers even with tied half-ranks. Beyond
    it, a normal approximation with tie and continuity corrections."""
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d) & (np.abs(d) > zero)]
    n = len(d)
    if n == 0:
        return 0.0, 1.0, 0
    ranks = average_ranks(np.abs(d))
    w_plus = float(ranks[d > 0].sum())
    if n <= EXACT_MAX:
        twice = np.rint(2 * ranks).astype(int)
        dist = np.zeros(int(twice.sum()) + 1)
        dist[0] = 1.0
        for r in twice:
            shifted = np.zeros_like(dist)
            shifted[r:] = dist[:-r]
            dist = 0.5 * (dist + shifted)
        w = round(2 * w_plus)
        p = 2 * min(dist[: w + 1].sum(), dist[w:].sum())
    else:
        _, counts = np.unique(np.abs(d), return_counts=True)
        mean = n * (n + 1) / 4
        var = n * (n + 1) * (2 * n + 1) / 24 - float((counts ** 3 - counts).sum()) / 48
        z = (abs(w_plus - mean) - 0.5) / math.sqrt(var) if var > 0 else 0.0
        p = math.erfc(max(z, 0.0) / math.sqrt(2))
    return w_plus, float(min(1.0, p)), n


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error) of several p-values."""
    order = np.argsort(pvalues)
    m = len(pvalues)
    out = [1.0] * m
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * pvalues[i]))
        out[i] = running
    return out


# ------------------------------------------ dataset-level inference (report/hierarchy.py)


def sign_test(d: Any, zero: float = 1e-12) -> tuple[int, int, float]:
    """Exact two-sided sign test of paired differences `d` against a median of 0: (positives,
    negatives, p). Differences within `zero` of 0 are dropped; none left gives p = 1. With n
    non-zero differences the smallest p is 2 / 2^n (4 datasets: 0.125)."""
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    pos, neg = int((d > zero).sum()), int((d < -zero).sum())
    n = pos + neg
    if n == 0:
        return pos, neg, 1.0
    tail = sum(math.comb(n, i) for i in range(min(pos, neg) + 1)) / 2 ** n
    return pos, neg, float(min(1.0, 2 * tail))
