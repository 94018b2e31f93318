"""Each dataset on its own, pooled over its split seeds and training seeds: weak, student and
ceiling accuracy, the ceiling - weak gap and PGR, with intervals from the nested bootstrap of
one dataset (`nested.within_dataset_means`: splits, then training seeds and test examples, one
draw shared by weak, student and ceiling). Then the question "is naive PGR above 0?" answered
with the dataset as the unit: how many datasets have a gap at all, on how many of them PGR is
above 0, the sign test over them, and the mean PGR over datasets with an interval that
resamples datasets. PGR follows the one rule (`metrics.gap_defined`): undefined where the
gap's interval is not wholly above 0, and left out of every count and mean.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..metrics import gap_defined, gap_words, sign_test
from ..nested import within_dataset_means
from ..store import Store
from .runs import (
    classification_runs,
    is_diagnostic,
    method_name,
    method_of,
    pair_of,
    shared_predictions,
    task_of,
    unit_key,
)

WEAK, STUDENT, CEILING = 0, 1, 2


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    a = (1 - confidence) / 2
    lo, hi = np.nanquantile(values, [a, 1 - a])
    return float(lo), float(hi)


def dataset_rows(store: Store, runs: list[dict[str, Any]], rounds: int = 2000,
                 confidence: float = 0.95) -> list[dict[str, Any]]:
    """One row per (model pair, task, method) with stored predictions: accuracies, gap and PGR
    pooled over the task's splits and training seeds, each with its interval, and the
    (rounds,) resampled PGR (NaN where a resample's gap is 0) for pooling over datasets."""
    groups: dict[tuple[str, str, str], dict[str, dict[Any, np.ndarray]]] = {}
    names: dict[str, str] = {}  # method_of -> the name a suite gave it, where one did
    for r in classification_runs(runs):
        if is_diagnostic(r):
            continue
        loaded = shared_predictions(store, [r])
        if loaded is None:
            continue
        p = loaded[0]
        y = p["labels"].astype(bool)
        correct = np.stack([((p[k] > 0.5) == y) for k in ("weak", "student", "ceiling")]).astype(np.float64)
        key = (pair_of(r), task_of(r), method_of(r))  # runs recorded before a suite named it too
        groups.setdefault(key, {}).setdefault(unit_key(r, False), {})[r["config"]["seed"]] = correct
        given = method_name(r)
        names[key[2]] = given if given != method_of(r) else names.get(key[2], given)
    rows = []
    for (pair, task, key_method), splits in sorted(groups.items()):
        method = names[key_method]
        try:
            point, boot = within_dataset_means(splits, rounds=rounds, seed=0)
        except ValueError:  # seeds of one split scored on different test sets: not poolable
            continue
        gap, gap_boot = point[CEILING] - point[WEAK], boot[:, CEILING] - boot[:, WEAK]
        gap_lo, gap_hi = _interval(gap_boot, confidence)
        with np.errstate(divide="ignore", invalid="ignore"):
            pgr_boot = np.where(gap_boot != 0, (boot[:, STUDENT] - boot[:, WEAK]) / gap_boot, np.nan)
        defined = gap_defined(gap_lo)
        row: dict[str, Any] = {
            "pair": pair, "task": task, "method": method, "splits": len(splits),
            "runs": sum(len(v) for v in splits.values()),
            "gap": (float(gap), gap_lo, gap_hi), "pgr_boot": pgr_boot if defined else None,
            "pgr": ((float((point[STUDENT] - point[WEAK]) / gap), *_interval(pgr_boot, confidence))
                    if defined else None),
            "gap_text": gap_words(float(gap), gap_lo, gap_hi)}
        for name, ch in (("weak", WEAK), ("student", STUDENT), ("ceiling", CEILING)):
            row[name] = (float(point[ch]), *_interval(boot[:, ch], confidence))
        rows.append(row)
    return rows


def _iv(t: tuple[float, float, float], signed: bool = False) -> str:
    f = "{:+.3f}" if signed else "{:.3f}"
    return f"{f.format(t[0])} [{f.format(t[1])}, {f.format(t[2])}]"


def dataset_cells(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = ["task", "model pair", "method", "splits / runs", "weak", "student", "ceiling",
              "ceiling - weak", "PGR"]
    cells = []
    for r in rows:
        pgr = _iv(r["pgr"]) if r["pgr"] else "undefined (" + r["gap_text"].split(":")[0] + ")"
        cells.append([r["task"], r["pair"], r["method"], f"{r['splits']} / {r['runs']}",
                      _iv(r["weak"]), _iv(r["student"]), _iv(r["ceiling"]), _iv(r["gap"], True), pgr])
    return header, cells


def pgr_summary(rows: list[dict[str, Any]], method: str, rounds: int = 2000,
                confidence: float = 0.95) -> list[dict[str, Any]]:
    """Per model pair, `method`'s PGR with the dataset as the unit: datasets with a gap, how
    many of them have a PGR interval wholly above 0, the exact sign test of the per-dataset PGR
    against 0, and the mean over datasets with a percentile interval from resampling the
    datasets (each draw a random row of that dataset's own bootstrap)."""
    out = []
    for pair in sorted({r["pair"] for r in rows if r["method"] == method}):
        mine = [r for r in rows if r["method"] == method and r["pair"] == pair]
        have = [r for r in mine if r["pgr"] is not None]
        summary: dict[str, Any] = {"pair": pair, "method": method, "datasets": len(mine),
                                   "with_gap": len(have), "above_0": sum(r["pgr"][1] > 0 for r in have),
                                   "mean": None}
        if have:
            rng = np.random.default_rng(0)
            banks = np.stack([r["pgr_boot"] for r in have])  # (datasets, rounds)
            pick = rng.integers(0, len(have), size=(rounds, len(have)))
            boot = np.nanmean(banks[pick, rng.integers(0, banks.shape[1], size=pick.shape)], axis=1)
            values = [r["pgr"][0] for r in have]
            pos, neg, p = sign_test(values)
            summary.update(mean=(float(np.mean(values)), *_interval(boot, confidence)),
                           positive=pos, negative=neg, p_sign=p)
        out.append(summary)
    return out


def summary_lines(summaries: list[dict[str, Any]]) -> str:
    lines = []
    for s in summaries:
        head = (f"{s['method']} on {s['pair']}: {s['with_gap']} of {s['datasets']} datasets have a "
                "ceiling - weak gap whose interval is above 0")
        if s["mean"] is None:
            lines.append(head + "; PGR is undefined on every one")
            continue
        lines.append(f"{head}; on them PGR's interval is above 0 on {s['above_0']}; mean PGR over "
                     f"those datasets {_iv(s['mean'])} (datasets resampled); PGR > 0 on "
                     f"{s['positive']}, < 0 on {s['negative']} (exact sign test over datasets, "
                     f"two-sided p = {s['p_sign']:.3g})")
    return "\n".join(lines)


def command_text(store: Store, runs: list[dict[str, Any]], baseline: str = "naive",
                 rounds: int = 2000) -> Optional[str]:
    """What `w2s report --datasets` prints, or None without stored predictions."""
    from .text import markdown_table

    rows = dataset_rows(store, runs, rounds=rounds)
    if not rows:
        return None
    note = ("Pooled over each task's split seeds and training seeds; intervals: nested bootstrap "
            "within the dataset (splits, then training seeds and test examples; weak, student and "
            "ceiling drawn together), 95%. PGR is undefined where the gap's interval is not wholly "
            "above 0.")
    return ("per dataset (task), pooled over split and training seeds:\n"
            + markdown_table(*dataset_cells(rows)) + "\n" + note + "\n\n"
            + summary_lines(pgr_summary(rows, baseline, rounds=rounds)))
