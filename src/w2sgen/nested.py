"""Nested (clustered) bootstrap intervals, for data whose units are not independent: a
difference over datasets, split seeds, training seeds and test examples
(`hierarchical_difference`, what report/hierarchy.py tests methods with), and means over runs of
one seed each and the questions within them (`clustered_mean_ci`, generative/report.py). The
tests themselves (sign test, Wilcoxon, Holm) are metrics.py's.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .metrics import sign_test

# dataset -> split (a split seed, with the other settings) -> training seed -> per-example
# differences on that split's test set (every training seed of a split: one test set, one order)
Nested = dict[Any, dict[Any, dict[Any, np.ndarray]]]


@dataclass
class Hierarchical:
    """A difference estimated at the level of datasets (`hierarchical_difference`)."""

    value: float                 # mean over datasets of (mean over splits of (mean over seeds))
    low: float
    high: float
    datasets: int                # the independent units it rests on
    splits: int                  # (dataset, split) units in all
    runs: int                    # (dataset, split, training seed) units in all
    per_dataset: dict[Any, float]
    positive: int                # datasets whose own mean difference is above 0 ...
    negative: int                # ... below 0
    p_sign: float                # exact two-sided sign test over datasets
    p_holm: float = 1.0          # Holm-adjusted over the declared family


def _nested_arrays(data: Nested) -> dict[Any, list[np.ndarray]]:
    """Per dataset, one (training seeds, test examples) matrix per split; refuses ragged or
    empty levels in one line."""
    out: dict[Any, list[np.ndarray]] = {}
    for ds, splits in data.items():
        mats = []
        for sp, seeds in splits.items():
            rows = [np.asarray(v, dtype=np.float64).reshape(-1) for v in seeds.values()]
            if not rows or not len(rows[0]) or len({len(r) for r in rows}) != 1:
                raise ValueError(f"dataset {ds!r}, split {sp!r}: every training seed needs the same "
                                 "non-empty test set, got sizes " + str([len(r) for r in rows]))
            mats.append(np.vstack(rows))
        if not mats:
            raise ValueError(f"dataset {ds!r} has no split")
        out[ds] = mats
    if not out:
        raise ValueError("no dataset to compare")
    return out


def _example_bank(m: np.ndarray, rounds: int, rng: np.random.Generator) -> np.ndarray:
    """(rounds, seeds): each training seed's mean over one resample of the test examples per
    row (the same resample for every seed of the split: they share its test set)."""
    n = m.shape[1]
    bank = np.empty((rounds, m.shape[0]))
    for start in range(0, rounds, 256):  # how often each example is drawn, 256 rounds at a time
        k = min(256, rounds - start)
        draws = rng.integers(0, n, size=(k, n)) + n * np.arange(k)[:, None]
        counts = np.bincount(draws.ravel(), minlength=k * n).reshape(k, n)
        bank[start:start + k] = counts @ m.T / n
    return bank


def _dataset_bank(mats: list[np.ndarray], rounds: int, rng: np.random.Generator) -> np.ndarray:
    """`rounds` resampled means of one dataset: its splits drawn with replacement, and for each
    draw an example resample (a random row of that split's example bank) and its training
    seeds drawn with replacement."""
    s = len(mats)
    chosen = rng.integers(0, s, size=(rounds, s))
    value = np.zeros((rounds, s))
    for j, m in enumerate(mats):
        bank = _example_bank(m, rounds, rng)
        rows = rng.integers(0, rounds, size=(rounds, s))
        seeds = rng.integers(0, m.shape[0], size=(rounds, s, m.shape[0]))
        drawn = bank[rows[..., None], seeds].mean(axis=2)  # (rounds, s) had split j been drawn
        value = np.where(chosen == j, drawn, value)
    return value.mean(axis=1)


def within_dataset_means(splits: dict[Any, dict[Any, np.ndarray]], rounds: int = 2000,
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Several per-example scores of one dataset resampled together: `splits[split][training
    seed]` is a (channels, test examples) array (e.g. weak, student and ceiling correctness on
    that split's test set). Returns (the point estimate, (rounds, channels) resampled means):
    the mean over splits of the mean over training seeds of the mean over examples, resampled
    as `hierarchical_difference` resamples one dataset (splits, then training seeds and one
    draw of the test examples per drawn split). Every channel sees the same draws, so ratios of
    differences (PGR) keep the correlation between weak, student and ceiling."""
    rng = np.random.default_rng(seed)
    mats = []
    for sp, by_seed in splits.items():
        arrays = [np.asarray(v, dtype=np.float64) for v in by_seed.values()]
        if not arrays or len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 2 or not arrays[0].shape[1]:
            raise ValueError(f"split {sp!r}: every training seed needs one (channels, examples) "
                             "array of the same shape, got " + str([a.shape for a in arrays]))
        mats.append(np.stack(arrays))  # (seeds, channels, examples)
    if not mats:
        raise ValueError("no split to resample")
    point = np.mean([m.mean(axis=(0, 2)) for m in mats], axis=0)
    s, channels = len(mats), mats[0].shape[1]
    chosen = rng.integers(0, s, size=(rounds, s))
    value = np.zeros((rounds, s, channels))
    for j, m in enumerate(mats):
        n_seeds = m.shape[0]
        bank = _example_bank(m.reshape(n_seeds * channels, -1), rounds, rng)
        bank = bank.reshape(rounds, n_seeds, channels)
        rows = rng.integers(0, rounds, size=(rounds, s))
        seeds = rng.integers(0, n_seeds, size=(rounds, s, n_seeds))
        drawn = bank[rows[..., None], seeds].mean(axis=2)  # (rounds, s, channels)
        value = np.where((chosen == j)[..., None], drawn, value)
    return point, value.mean(axis=1)


def hierarchical_difference(data: Nested, rounds: int = 2000, confidence: float = 0.95,
                            seed: int = 0) -> Hierarchical:
    """A method-vs-baseline difference with the dataset as the unit of inference.

    `data[dataset][split][training seed]` is the per-test-example difference (e.g. correct
    under the method minus correct under the baseline, same supervisor and ceiling). The
    estimate is the mean over datasets of the mean over their splits of the mean over training
    seeds of the mean over test examples. Its percentile interval comes from a nested bootstrap:
    each round resamples datasets, then within each drawn dataset its splits, then within each
    drawn split its training seeds and its test examples (one draw of the examples per drawn
    split, applied to all its seeds: they share that test set). Lower levels are drawn from
    banks of `rounds` resamples (per split of its examples, per dataset of its splits), a row
    picked at random for each draw, so that repeated draws of one unit are independent. The
    sign test counts datasets by the sign of their own mean difference. Pure; the draws follow
    `seed`."""
    mats = _nested_arrays(data)
    rng = np.random.default_rng(seed)
    per_dataset = {ds: float(np.mean([m.mean(axis=1).mean() for m in ms])) for ds, ms in mats.items()}
    # each dataset's own bank of `rounds` resampled means (splits, then seeds and examples); a
    # round of the top level draws datasets and, for each draw, an independent row of its bank
    banks = np.stack([_dataset_bank(ms, rounds, rng) for ms in mats.values()])
    pick = rng.integers(0, len(mats), size=(rounds, len(mats)))
    boot = banks[pick, rng.integers(0, rounds, size=pick.shape)].mean(axis=1)
    a = (1 - confidence) / 2
    lo, hi = np.quantile(boot, [a, 1 - a])
    pos, neg, p = sign_test(list(per_dataset.values()))
    return Hierarchical(float(np.mean(list(per_dataset.values()))), float(lo), float(hi), len(mats),
                        sum(len(ms) for ms in mats.values()),
                        sum(m.shape[0] for ms in mats.values() for m in ms), per_dataset, pos, neg, p)


def clustered_mean_ci(groups: Sequence[np.ndarray], seed: int, rounds: int = 2000,
                      confidence: float = 0.95) -> list[float] | None:
    """[mean, low, high] of values clustered in groups (e.g. one run's questions per seed): the
    mean over groups of each group's mean (NaN values left out), with a two-level percentile
    bootstrap that resamples the groups, then the values within each drawn group. None when no
    group has a value. One group gives the ordinary bootstrap over its values."""
    gs = [v[~np.isnan(v)] for v in (np.asarray(g, dtype=float).reshape(-1) for g in groups)]
    gs = [g for g in gs if len(g)]
    if not gs:
        return None
    rng = np.random.default_rng(seed)
    boot = np.empty(rounds)
    for r in range(rounds):
        boot[r] = np.mean([g[rng.integers(0, len(g), len(g))].mean()
                           for g in (gs[i] for i in rng.integers(0, len(gs), len(gs)))])
    a = (1 - confidence) / 2
    return [float(np.mean([g.mean() for g in gs])), float(np.quantile(boot, a)),
            float(np.quantile(boot, 1 - a))]


def clustered_paired_difference(a: Sequence[np.ndarray], b: Sequence[np.ndarray], seed: int,
                                rounds: int = 2000, confidence: float = 0.95) -> dict | None:
    """`paired_difference` for values clustered in groups (one run per seed): a[i] and b[i] are
    two systems' scores on group i's questions; the mean of a - b (questions where both are
    present) with `clustered_mean_ci`'s interval (groups, then questions within them)."""
    diffs = []
    for x, y in zip(a, b):
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        ok = ~np.isnan(x) & ~np.isnan(y)
        diffs.append((x - y)[ok])
    ci = clustered_mean_ci(diffs, seed, rounds, confidence)
    if ci is None:
        return None
    return {"diff": ci, "n": int(sum(len(d) for d in diffs)), "groups": sum(bool(len(d)) for d in diffs),
            "worse": ci[2] < 0, "better": ci[1] > 0}
