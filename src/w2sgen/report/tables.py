"""Aggregates over seeds: median PGR and accuracies with percentile-bootstrap intervals over the
shared test set (one resample applied to every seed), and median training curves."""
from __future__ import annotations

import warnings
from typing import Any, Optional

import numpy as np

from ..metrics import fixed_baseline_pgr, gap_defined, gap_words
from ..store import Store
from .runs import (
    classification_runs,
    group_key,
    is_diagnostic,
    is_generative,
    latest_done,
    method_name,
    method_of,
    pair_of,
    setting_labels,
    shared_predictions,
    task_of,
)


def median_pgr_table(store: Store, rounds: int = 1000, confidence: float = 0.95,
                     runs: Optional[list[dict[str, Any]]] = None) -> list[dict[str, Any]]:
    """Median PGR over seeds for each task, model pair (with its train mode) and method, with a
    bootstrap interval; a row pools runs that differ by seed alone (`runs.group_key`: runs of one
    method with other settings, a loss or an epoch count, are rows of their own, told apart by
    the row's `setting`, e.g. 'train.epochs=20', '' where the method has one setting).

    The seeds of one task share its test set (the split seed is fixed), so one resample of the
    test examples is applied to every seed's predictions, PGR is computed per seed, and the
    median over seeds is taken; the interval is the percentile interval of that median over
    resamples. One rule for undefined PGR (`metrics.gap_defined`): the median over seeds of the
    ceiling - weak gap, on the same resamples, must have its interval above 0; otherwise the row
    has `gap` False, NaN PGR and `gap_text` saying which way the gap points. `runs`: only these
    finished runs (e.g. a sweep's), instead of the latest of every configuration in the store."""
    import numpy as np

    groups: dict[tuple[str, str, str, str], list[dict]] = {}
    for r in latest_done(store) if runs is None else runs:
        if is_generative(r):
            continue
        groups.setdefault(group_key(r), []).append(r)
    labels = setting_labels(groups)
    rows = []
    a = (1 - confidence) / 2
    for key, runs in sorted(groups.items(), key=lambda kv: (*kv[0][:3], labels[kv[0]])):
        task, pair, method, _ = key
        preds = shared_predictions(store, runs)
        if preds is None:
            continue  # runs from before predictions were stored, or different test sets
        y = preds[0]["labels"].astype(bool)
        where = {"pair": pair, "setting": labels[key], "method_label": method_name(runs[0])}
        if all((r["config"].get("eval") or {}).get("pgr_baseline") == "fixed" for r in runs):
            rows.append({**fixed_baseline_row(task, method, runs, preds, y, rounds, confidence), **where})
            continue
        idx = resample_index(len(y), rounds)
        per_seed, gaps = [], []
        for p in preds:
            acc = {k: resampled_accuracy(p[k], y, idx) for k in ("weak", "student", "ceiling")}
            per_seed.append(ratio(acc["student"] - acc["weak"], acc["ceiling"] - acc["weak"]))
            gaps.append(acc["ceiling"] - acc["weak"])
        with warnings.catch_warnings():  # no gap in any resample (weak = ceiling): PGR is NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(np.vstack(per_seed), axis=0)
            gap = np.median(np.vstack(gaps), axis=0)  # the median gap over seeds, per resample
            gap_lo, gap_hi = np.quantile(gap[1:], [a, 1 - a])
            defined = gap_defined(gap_lo)
            lo, hi = np.nanquantile(med[1:], [a, 1 - a]) if defined else (np.nan, np.nan)
        rows.append({"task": task, "method": method, "seeds": sorted(r["config"]["seed"] for r in runs),
                     "median_pgr": float(med[0]) if defined else float("nan"), "low": float(lo),
                     "high": float(hi), "gap": defined,
                     "gap_text": gap_words(float(gap[0]), float(gap_lo), float(gap_hi)),
                     "student_accuracy": float(np.median([r["metrics"]["student_accuracy"]["value"] for r in runs])),
                     "diagnostic": any(r["config"].get("method", {}).get("name") == "gt_early_stop" for r in runs),
                     **where})
    return rows


def resample_index(n: int, rounds: int) -> np.ndarray:
    """Row 0 the full test set, then `rounds` bootstrap resamples (rng seed 0: every table and
    figure of a report draws the same resamples)."""
    return np.vstack([np.arange(n)[None], np.random.default_rng(0).integers(0, n, (rounds, n))])


def resampled_accuracy(prob: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Accuracy of probabilities `prob` against labels `y` on each resample of `idx`."""
    return ((prob > 0.5) == y)[idx].mean(1)


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 (a PGR whose gap vanished in that resample)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1), np.nan)


def fixed_baseline_row(task: str, method: str, runs: list[dict[str, Any]], preds: list[dict[str, Any]],
                       y: np.ndarray, rounds: int, confidence: float) -> dict[str, Any]:
    """A `median_pgr_table` row for runs with `eval.pgr_baseline: fixed`: PGR of the mean student
    accuracy against the mean weak and ceiling accuracies over the group's seeds
    (`metrics.fixed_baseline_pgr`, seeds and test examples resampled), with the sd over seeds."""
    correct = {k: np.stack([(p[k] > 0.5) == y for p in preds]).astype(np.float64)
               for k in ("weak", "ceiling", "student")}
    acc = {k: c.mean(axis=1) for k, c in correct.items()}
    f = fixed_baseline_pgr(acc["weak"], acc["ceiling"], acc["student"], correct=correct, rounds=rounds,
                           confidence=confidence)
    nan = float("nan")
    return {"task": task, "method": method, "seeds": sorted(r["config"]["seed"] for r in runs),
            "median_pgr": nan if f.value is None else f.value, "low": nan if f.low is None else f.low,
            "high": nan if f.high is None else f.high, "gap": f.value is not None, "gap_text": f.reason,
            "baseline": "fixed",
            "sd": f.sd, "student_accuracy": f.student_mean, "diagnostic": any(is_diagnostic(r) for r in runs)}


def _resample_counts(n: int, rounds: int) -> np.ndarray:
    """How often each test example is drawn in each bootstrap resample, row 0 the full test set:
    the same draws as `report.median_pgr_table` (rng seed 0), as a count matrix so every seed's
    and model's accuracy is one matrix product."""
    idx = np.random.default_rng(0).integers(0, n, (rounds, n))
    counts = np.zeros((rounds + 1, n), dtype=np.float32)  # small integers: exact in float32
    counts[0] = 1
    for i, row in enumerate(idx, start=1):
        counts[i] = np.bincount(row, minlength=n)
    return counts


def accuracy_table(store: Store, runs: list[dict[str, Any]], rounds: int = 1000,
                   confidence: float = 0.95) -> list[dict[str, Any]]:
    """Per (task, model pair, method, setting: `runs.group_key`, as `median_pgr_table`): weak,
    student and ceiling test accuracy, medians over seeds with percentile-bootstrap intervals (the test examples resampled, the same resample for
    every seed and model), the ceiling - weak gap likewise (`gap`: the median over seeds of each
    seed's gap), and the median agreement figures. Runs without stored predictions
    (older stores) give medians without intervals."""
    groups: dict[tuple[str, str, str, str], list[dict]] = {}
    for r in classification_runs(runs):
        groups.setdefault(group_key(r), []).append(r)
    labels = setting_labels(groups)
    a = (1 - confidence) / 2
    counts_for: dict[int, np.ndarray] = {}
    rows = []
    for key, rs in sorted(groups.items(), key=lambda kv: (*kv[0][:3], labels[kv[0]])):
        task, pair, method, _ = key
        preds = shared_predictions(store, rs)
        row: dict[str, Any] = {"task": task, "pair": pair, "method": method, "setting": labels[key],
                               "method_family": method_of(rs[0]), "method_label": method_name(rs[0]),
                               "seeds": sorted(r["config"]["seed"] for r in rs),
                               "diagnostic": any(is_diagnostic(r) for r in rs)}
        if preds is not None:
            n = len(preds[0]["ids"])
            if n not in counts_for:
                counts_for[n] = _resample_counts(n, rounds)
            w = counts_for[n]
            correct = {model: np.stack([(p[model] > 0.5) == p["labels"].astype(bool) for p in preds],
                                       axis=1).astype(np.float32)
                       for model in ("weak", "student", "ceiling")}
            correct["gap"] = correct["ceiling"] - correct["weak"]  # per seed, per example
            for k, c in correct.items():
                med = np.median((w @ c).astype(np.float64) / n, axis=1)
                lo, hi = np.quantile(med[1:], [a, 1 - a])
                row[k] = (float(med[0]), float(lo), float(hi))
        else:
            for model in ("weak", "student", "ceiling"):
                row[model] = (float(np.median([r["metrics"][f"{model}_accuracy"]["value"] for r in rs])),
                              None, None)
            row["gap"] = (float(np.median([r["metrics"]["ceiling_accuracy"]["value"]
                                           - r["metrics"]["weak_accuracy"]["value"] for r in rs])),
                          None, None)
        for k in ("agreement", "agreement_on_weak_errors", "agreement_on_weak_correct", "n_weak_errors"):
            vals = np.array([r["metrics"].get(k, np.nan) for r in rs], dtype=float)
            row[k] = float(np.nanmedian(vals)) if np.isfinite(vals).any() else float("nan")
        rows.append(row)
    return rows


def pgr_tables(store: Store, runs: list[dict[str, Any]], rounds: int = 1000) -> list[tuple[str, list[dict]]]:
    """`report.median_pgr_table` for each model pair (`runs.pair_of`: models and train mode)."""
    by_pair: dict[str, list[dict]] = {}
    for r in classification_runs(runs):
        by_pair.setdefault(pair_of(r), []).append(r)
    out: list[tuple[str, list[dict]]] = []
    for pair, rs in sorted(by_pair.items()):
        with warnings.catch_warnings():  # resamples where ceiling == weak give NaN medians
            warnings.simplefilter("ignore", RuntimeWarning)
            rows = median_pgr_table(store, rounds=rounds, runs=rs)
        if rows:
            out.append((pair, rows))
    return out


def curve_medians(runs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """Per (task, model pair): test accuracy after every epoch, median over seeds, of the weak
    supervisor, the ceiling and each method's student (`method_of`). Runs without curves are
    left out; curves of unequal length are cut to the shortest."""
    groups: dict[tuple[str, str], dict[str, list[list[float]]]] = {}
    for r in classification_runs(runs):
        curves = r["metrics"].get("curves") or {}
        if not all((curves.get(k) or {}).get("test_accuracy") for k in ("weak", "student", "ceiling")):
            continue
        g = groups.setdefault((task_of(r), pair_of(r)), {})
        for name, key in (("weak", "weak"), ("ceiling", "ceiling"), (method_of(r), "student")):
            g.setdefault(name, []).append(curves[key]["test_accuracy"])
    out: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for unit, g in groups.items():
        out[unit] = {}
        for name, cs in g.items():
            n = min(map(len, cs))
            out[unit][name] = np.median(np.array([c[:n] for c in cs], dtype=float), axis=0)
    return out
