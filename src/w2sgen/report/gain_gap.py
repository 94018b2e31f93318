"""Gain against gap on the accuracy scale, the student held fixed (`w2s report --gain-gap`).

Does a method help more where the weak supervisor leaves more to recover? One point per (task,
model pair): x the ceiling - weak gap in test accuracy, y the method's gain over the baseline in
student test accuracy (runs that differ by method alone: report/hierarchy.py), each the mean over
split seeds, training seeds and test examples with its nested-bootstrap interval
(nested.hierarchical_difference, one dataset). Both are on the accuracy scale: the PGR scale
(gain / gap) is tied to the gap by construction. Points whose gap interval holds 0 are kept (an
accuracy gain needs no gap to be defined) and the gap column says which way each gap points.

Spearman's rho is computed per student (strong model and train mode), never across students: a
student that gains more and also has larger gaps would otherwise make a correlation out of which
model is the student. Its interval resamples datasets (tasks) with replacement, every point of a
drawn task with it (the pairs of one task share its test set and labels), and recomputes rho;
its permutation p treats the points as exchangeable, which they are not when several pairs share
a task, so the interval is the number to read.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from ..metrics import gap_words
from ..nested import Hierarchical, Nested, hierarchical_difference
from ..store import Store
from .hierarchy import Family, default_family, nested_differences
from .runs import classification_runs, is_diagnostic, method_of, pair_of, run_predictions, task_of, unit_key
from .scaling import rank_correlation


def nested_gaps(store: Store, runs: list[dict[str, Any]], method: str) -> dict[str, Nested]:
    """Per model pair: task -> split unit -> training seed -> per-test-example ceiling - weak
    correctness (1, 0 or -1) from `method`'s runs (their supervisor and ceiling)."""
    out: dict[str, Nested] = {}
    for r in classification_runs(runs):
        if is_diagnostic(r) or method_of(r) != method:
            continue
        p = run_predictions(store, r["id"])
        if p is None:
            continue
        y = p["labels"].astype(bool)
        d = ((p["ceiling"] > 0.5) == y).astype(np.float64) - ((p["weak"] > 0.5) == y)
        out.setdefault(pair_of(r), {}).setdefault(task_of(r), {}).setdefault(unit_key(r, False), {})[
            r["config"]["seed"]] = d
    return out


def student_of(pair: str) -> str:
    """'mpnet-base (probe)' from 'minilm-l3 -> mpnet-base (probe)' (`runs.pair_of`)."""
    return pair.split(" -> ", 1)[-1]


def gain_gap_points(store: Store, runs: list[dict[str, Any]], method: str, baseline: str = "naive",
                    rounds: int = 2000, confidence: float = 0.95) -> list[dict[str, Any]]:
    """One point per (task, pair) with paired runs: `gap` and `gain` (`Hierarchical`, one
    dataset each) and the pair's student."""
    gaps = nested_gaps(store, runs, baseline)
    points = []
    for pair, nested in sorted(nested_differences(store, runs, method, baseline).items()):
        for task, splits in sorted(nested.items()):
            gap_splits = {u: seeds for u, seeds in gaps.get(pair, {}).get(task, {}).items() if u in splits}
            if not gap_splits:
                continue
            points.append({"task": task, "pair": pair, "student": student_of(pair),
                           "gap": hierarchical_difference({task: gap_splits}, rounds, confidence),
                           "gain": hierarchical_difference({task: splits}, rounds, confidence)})
    return points


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    return rank_correlation(list(x), list(y), permutations=0)[0]


def rho_over_datasets(points: list[dict[str, Any]], rounds: int = 2000, confidence: float = 0.95,
                      seed: int = 0, permutations: int = 10000) -> dict[str, Any]:
    """Spearman's rho of gain with gap over `points` (one student), its percentile interval from
    resampling datasets (all points of a drawn task), and the permutation p. Draws with fewer
    than 3 points or no spread give no rho and are counted (`undefined_draws`)."""
    tasks = sorted({p["task"] for p in points})
    by_task = {t: [p for p in points if p["task"] == t] for t in tasks}
    xs, ys = [p["gap"].value for p in points], [p["gain"].value for p in points]
    rho, perm_p = rank_correlation(xs, ys, permutations)
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(rounds):
        drawn = [q for t in rng.choice(len(tasks), size=len(tasks)) for q in by_task[tasks[t]]]
        boot.append(spearman([q["gap"].value for q in drawn], [q["gain"].value for q in drawn]))
    vals = np.array([b for b in boot if not math.isnan(b)])
    a = (1 - confidence) / 2
    low, high = (np.quantile(vals, [a, 1 - a]) if len(vals) else (math.nan, math.nan))
    return {"rho": rho, "low": float(low), "high": float(high), "p_permutation": perm_p,
            "points": len(points), "datasets": len(tasks), "undefined_draws": rounds - len(vals),
            "rounds": rounds}


def gain_gap_table(store: Store, runs: list[dict[str, Any]], family: Optional[Family] = None,
                   rounds: int = 2000, confidence: float = 0.95) -> list[dict[str, Any]]:
    """Per comparison of the family (declared, else every method vs naive) and student: its
    points and `rho_over_datasets`."""
    out = []
    for name, method, baseline in (list(family) if family is not None else default_family(runs)):
        points = gain_gap_points(store, runs, method, baseline, rounds, confidence)
        for student in sorted({p["student"] for p in points}):
            pts = [p for p in points if p["student"] == student]
            out.append({"comparison": name, "student": student, "points": pts,
                        "rho": rho_over_datasets(pts, rounds, confidence)})
    return out


def _iv(h: Hierarchical) -> str:
    return f"{h.value:+.4f} [{h.low:+.4f}, {h.high:+.4f}]"


def gain_gap_markdown(rows: list[dict[str, Any]]) -> str:
    """The points and each student's rho, as Markdown; '' without paired runs."""
    from .text import markdown_table, md_escape

    if not rows:
        return ""
    parts = []
    for row in rows:
        r = row["rho"]
        cells = [[p["task"], p["pair"], gap_words(p["gap"].value, p["gap"].low, p["gap"].high),
                  _iv(p["gain"])] for p in row["points"]]
        rho = ("undefined (fewer than 3 points or no spread)" if math.isnan(r["rho"]) else
               f"{r['rho']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}]")
        parts.append(f"### {md_escape(row['comparison'])}, student {md_escape(row['student'])}\n\n"
                     + markdown_table(["dataset", "model pair", "ceiling - weak accuracy [95% CI]",
                                       "gain in student accuracy [95% CI]"],
                                      [[md_escape(c) for c in line] for line in cells])
                     + f"\n\nSpearman rho(gap, gain) over {r['points']} points from {r['datasets']} "
                       f"datasets: {rho} (95% bootstrap over datasets, {r['rounds']} draws"
                     + (f", {r['undefined_draws']} without a rho left out" if r["undefined_draws"] else "")
                     + f"); permutation p {r['p_permutation']:.3g} (treats points as independent)")
    return "\n\n".join(parts) + (
        "\n\nGain and gap on the accuracy scale, each the mean over split seeds, training seeds and "
        "test examples of its dataset with a nested-bootstrap interval; points with no clear gap are "
        "kept. rho is computed within one student (strong model and mode) only.")


def command_text(store: Store, runs: list[dict[str, Any]], family: Optional[Family] = None) -> str:
    """What `w2s report --gain-gap` prints."""
    return ("gain against gap on the accuracy scale, the student held fixed:\n\n"
            + (gain_gap_markdown(gain_gap_table(store, runs, family))
               or "no runs that differ by method alone (with stored predictions)"))
