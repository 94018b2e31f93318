"""Method-vs-baseline differences with the dataset as the unit of inference.

Runs of one task on one model pair differ by split seed (which examples are weak_train,
transfer and test), by training seed and by method. Two runs pair when they differ by method
alone: same task, models, splits and training seed, so the same weak supervisor, ceiling and
test set. Their per-test-example difference in correctness is one leaf of the hierarchy
task -> split -> training seed -> test example that `metrics.hierarchical_difference`
resamples level by level; the sign test counts tasks. Seeds and splits of one task are not
independent replicates (they share the task's data, its ceiling, its supervisor's kind), so no
p-value here treats them as such: with n tasks the smallest two-sided sign-test p is 2 / 2^n.

The family of comparisons that Holm's adjustment covers is the one a suite file declares
(`comparisons:`, before the run); without one, every method against `naive`, which the output
calls a family chosen after the fact.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from ..metrics import holm
from ..nested import Hierarchical, Nested, hierarchical_difference
from ..store import Store
from .runs import (
    classification_runs,
    is_diagnostic,
    method_of,
    pair_of,
    shared_predictions,
    task_of,
    unit_key,
)

Family = Sequence[tuple[str, str, str]]  # (name shown, method, baseline): `runs.method_of` names


def default_family(runs: list[dict[str, Any]], baseline: str = "naive") -> list[tuple[str, str, str]]:
    """Every method the runs hold against `baseline` (a family chosen after the fact)."""
    methods = sorted({method_of(r) for r in classification_runs(runs) if not is_diagnostic(r)} - {baseline})
    return [(f"{m} vs {baseline}", m, baseline) for m in methods]


def nested_differences(store: Store, runs: list[dict[str, Any]], method: str, baseline: str
                       ) -> dict[str, Nested]:
    """Per model pair: task -> split unit -> training seed -> per-test-example difference in
    correctness (method's student minus baseline's), from the stored predictions of runs that
    differ by method alone. Pairs without stored predictions are left out."""
    cells: dict[tuple[str, str, str, Any], dict[str, dict[str, Any]]] = {}
    for r in classification_runs(runs):
        m = method_of(r)
        if is_diagnostic(r) or m not in (method, baseline):
            continue
        key = (pair_of(r), task_of(r), unit_key(r, False), r["config"]["seed"])
        cells.setdefault(key, {})[m] = r
    out: dict[str, Nested] = {}
    for (pair, task, split, seed), by in sorted(cells.items(), key=lambda kv: str(kv[0])):
        if method not in by or baseline not in by:
            continue
        loaded = shared_predictions(store, [by[method], by[baseline]])
        if loaded is None:
            continue
        a, b = loaded
        y = a["labels"].astype(bool)
        d = ((a["student"] > 0.5) == y).astype(np.float64) - ((b["student"] > 0.5) == y)
        out.setdefault(pair, {}).setdefault(task, {}).setdefault(split, {})[seed] = d
    return out


def dataset_table(store: Store, runs: list[dict[str, Any]], family: Optional[Family] = None,
                  rounds: int = 2000, confidence: float = 0.95) -> list[dict[str, Any]]:
    """One row per (model pair, comparison of the family) with paired runs: the hierarchical
    difference in student test accuracy (`metrics.Hierarchical`), how many tasks, splits and
    runs it rests on, and the sign test over tasks, Holm-adjusted over every row. A declared
    comparison without paired runs is a row with `result` None, counted in Holm's m at p = 1."""
    declared = family is not None
    fam = list(family) if family is not None else default_family(runs)
    rows: list[dict[str, Any]] = []
    for name, method, baseline in fam:
        found = sorted(nested_differences(store, runs, method, baseline).items())
        for pair, nested in found:
            h = hierarchical_difference(nested, rounds=rounds, confidence=confidence)
            rows.append({"comparison": name, "method": method, "baseline": baseline, "pair": pair,
                         "declared": declared, "result": h})
        if declared and not found:  # still a member of the family: it counts in Holm's m
            rows.append({"comparison": name, "method": method, "baseline": baseline, "pair": "-",
                         "declared": declared, "result": None})
    ps = [r["result"].p_sign if r["result"] is not None else 1.0 for r in rows]
    for row, adjusted in zip(rows, holm(ps)):
        if row["result"] is not None:
            row["result"].p_holm = adjusted
    return rows


def _p(p: float) -> str:
    return f"{p:.3g}"


def dataset_cells(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = ["comparison", "model pair", "datasets", "splits / runs", "difference in accuracy [95% CI]",
              "datasets + / -", "sign test p", "Holm p"]
    cells = []
    for r in rows:
        h: Optional[Hierarchical] = r["result"]
        if h is None:
            cells.append([r["comparison"], r["pair"], "0", "-", "no runs that differ by these methods "
                          "alone (with stored predictions)", "-", "-", "-"])
            continue
        cells.append([r["comparison"], r["pair"], str(h.datasets), f"{h.splits} / {h.runs}",
                      f"{h.value:+.4f} [{h.low:+.4f}, {h.high:+.4f}]", f"{h.positive} / {h.negative}",
                      _p(h.p_sign), _p(h.p_holm)])
    return header, cells


def dataset_note(rows: list[dict[str, Any]], source: str) -> str:
    """What the table's numbers are, with the family's origin and the power its tasks allow."""
    if not rows:
        return "no pair of runs that differ by method alone (with stored predictions)"
    fewest = min((r["result"].datasets for r in rows if r["result"] is not None), default=0)
    family = (f"the family declared in {source}" if rows[0]["declared"]
              else "every method vs naive, a family chosen after the fact (declare one with "
                   "`comparisons:` in the suite file)")
    return (f"Unit: the dataset (task). Difference: student test accuracy of the method minus the "
            f"baseline's, paired on split and training seed, averaged over test examples, training "
            f"seeds, splits, then datasets; interval: nested bootstrap (datasets, then splits, then "
            f"training seeds and test examples). Sign test over datasets, exact, two-sided; Holm over "
            f"{family} ({len(rows)} rows). With {fewest} dataset(s), the fewest here, the smallest "
            f"possible p is {min(1.0, 2 / 2 ** fewest):.3g}.")
