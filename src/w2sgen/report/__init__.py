"""Reports from the run store, one module per job:

- `runs`: which stored runs a report reads and how it names their task, model pair and method;
- `text`: the terminal table and Markdown tables (names escaped), among them icl_refine
  against naive per seed (`refinement_pairs_markdown`);
- `tables`: aggregates over seeds with bootstrap intervals (median PGR, accuracies, curves);
- `ranking`: methods ranked across tasks, paired Wilcoxon signed-rank tests with Holm;
- `figures`: the figures of the report; `scaling`: the model-ladder figures (Burns et al. style);
- `export`: the per-run table as CSV / Parquet;
- `document`: the HTML / Markdown report assembled from blocks, and `w2s report --html`.

`REPORTS` holds, per run kind (`runs.run_kind`: which pipeline wrote the run), the terminal
table and the overview plot of that kind's runs; `table` and `plot` below dispatch on it, so a
store holding both kinds reports both. The names below are the package's public surface.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..generative import report as generative
from ..registry import Registry
from ..runs import CLASSIFICATION, run_kind
from .figures import check_plot_path, classification_plot, plot_curves, plot_methods, plot_refinement_k
from .runs import latest_done
from .tables import median_pgr_table
from .text import (
    classification_table,
    for_terminal,
    label,
    md_escape,
    median_pgr_markdown,
    median_pgr_verdict,
    method_summary,
    pgr_verdict,
    refinement_markdown,
    refinement_pairs_markdown,
)

Runs = list[dict[str, Any]]


@dataclass(frozen=True)
class KindReport:
    """How runs of one kind are shown: a terminal table and an overview plot."""

    table: Callable[[Runs], str]
    plot: Callable[[Runs, Path], Optional[Path]]


REPORTS: Registry[KindReport] = Registry("report")
REPORTS.add(CLASSIFICATION, KindReport(classification_table, classification_plot))
REPORTS.add("generative", KindReport(generative.table, generative.plot))


def by_kind(runs: Runs) -> list[tuple[KindReport, Runs]]:
    """The runs grouped by kind, classification first, each with its kind's report."""
    groups: dict[str, Runs] = {}
    for r in runs:
        groups.setdefault(run_kind(r), []).append(r)
    order = sorted(groups, key=lambda k: (k != CLASSIFICATION, k))
    return [(REPORTS.get(k), groups[k]) for k in order]


def table(runs: Runs) -> str:
    """Every run, one table per kind."""
    return "\n\n".join(t for rep, rs in by_kind(runs) if (t := rep.table(rs)))


def plot(runs: Runs, out: Path) -> Optional[Path]:
    """The overview plot of the first kind present (classification runs if any)."""
    for rep, rs in by_kind(runs):
        return rep.plot(rs, out)
    return None


def run_figures(run: dict[str, Any], folder: Optional[Path] = None) -> list[Path]:
    """One run's figures in its folder (or `folder`): results.png and curves.png, each with an
    SVG beside it. `run`: a stored run's row (id, config, metrics) and `run["store"]`, its store's
    folder, where `folder` is not given."""
    out = folder if folder is not None else Path(run["store"]) / "artifacts" / str(run["id"])
    drawn = [plot([run], out / "results.png"), plot_curves([run], out / "curves.png")]
    return [p for p in drawn if p is not None]


__all__ = ["REPORTS", "KindReport", "check_plot_path", "label", "latest_done", "md_escape",
           "for_terminal", "median_pgr_markdown", "median_pgr_table", "median_pgr_verdict", "method_summary", "pgr_verdict",
           "plot", "plot_curves", "plot_methods", "plot_refinement_k", "run_figures",
           "refinement_markdown", "refinement_pairs_markdown", "table"]
