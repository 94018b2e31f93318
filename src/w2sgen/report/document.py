"""`w2s report --html` and `w2s report --export FILE`: a report people can read, and the per-run
table as data.

The report is one self-contained HTML file (figures embedded as base64 PNG, inline CSS, no
scripts, no external links) and the same content as Markdown (figures as PNG files next to it),
both rendered from one list of blocks, so they say the same thing. Its sections:

- accuracy per task: weak supervisor, student (per method) and strong ceiling, medians over
  seeds with percentile-bootstrap intervals (one resample of the shared test set applied to every
  seed, as `report.median_pgr_table` does for PGR);
- PGR per method: `report.median_pgr_table` / `median_pgr_markdown` / `plot_methods`, per model
  pair;
- student against strong-ceiling accuracy (the axes of Burns et al.'s scaling figures, with the
  ceiling in place of compute), weak performance and the y = x line;
- student-supervisor agreement on the supervisor's errors and on its correct answers;
- methods ranked across tasks, each compared with the baseline (naive) by an exact Wilcoxon
  signed-rank test on paired differences (numpy only; see `wilcoxon_signed_rank`);
- methods against baselines with the dataset as the unit (report/hierarchy.py): a nested
  bootstrap and a sign test over datasets, Holm over the family a suite declared;
- every run, as a table (and `--export runs.csv|runs.parquet` writes it as data).
Runs of `w2s generate` (generative tasks) are left out: their report is generative/report.py's.

Names come from the user (a model folder called `<img src=x onerror=...>`): the HTML escapes
every text, the Markdown escapes it with `report.md_escape`, and the CSV export prefixes a cell
that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) with `'`. A report
or export that cannot be written ends in one line naming the path.
"""
from __future__ import annotations

import base64
import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..escape import display
from ..store import Store
from . import scaling
from .export import compute_span, export, unwritable
from .figures import (
    classification_plot,
    plot_agreement,
    plot_methods,
    plot_task_accuracy,
    plot_training_curves,
    plot_vs_ceiling,
)
from .hierarchy import Family, dataset_cells, dataset_note, dataset_table
from .ranking import Comparison, method_ranking
from .runs import classification_runs, estimate, method_name, method_of, pair_of, task_of
from .tables import accuracy_table, pgr_tables
from .text import markdown_table, md_escape, median_pgr_cells, median_pgr_verdict, pgr_text


@dataclass
class Block:
    kind: str                                   # h1 | h2 | h3 | p | table | figure
    text: str = ""                              # heading / paragraph / figure caption
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    path: Path | None = None                 # figure file


def _ci(est: tuple, digits: int = 3, sign: bool = False) -> str:
    v, lo, hi = est
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    f = f"{'+' if sign else ''}.{digits}f"
    return f"{v:{f}}" if lo is None else f"{v:{f}} [{lo:{f}}, {hi:{f}}]"


def _num(v: Any, digits: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _method_cell(row: dict[str, Any]) -> str:
    """An `accuracy_table` row's method, with the settings that tell it apart from the same
    method's other rows of its task and pair (none where the method ran with one setting)."""
    return row.get("method_label", row["method"]) + (f" [{row['setting']}]" if row.get("setting") else "")


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def build(store: Store, runs: list[dict[str, Any]], out_dir: Path, rounds: int = 1000,
          confidence: float = 0.95, family: Optional[Family] = None, source: str = "") -> list[Block]:
    """The report's blocks; figures are written to `out_dir`. `family`: the comparisons a suite
    declared (report/hierarchy.py), else every method against naive."""
    runs = classification_runs(runs)
    blocks = [Block("h1", "Weak-to-strong generalization: results")]
    if not runs:
        return blocks + [Block("p", "No finished classification runs in this store.")]
    tasks = sorted({task_of(r) for r in runs})
    pairs = sorted({pair_of(r) for r in runs})
    methods = sorted({method_of(r) for r in runs})
    seeds = sorted({r["config"]["seed"] for r in runs})
    versions = runs[-1].get("versions") or {}
    blocks += [
        Block("p", f"Store {store.root} - {len(runs)} finished runs: {len(tasks)} task(s), "
                   f"{len(pairs)} model pair(s), {len(methods)} method(s), seeds {', '.join(map(str, seeds))}. "
                   f"{compute_span(runs)} "
                   f"Generated {dt.datetime.now().isoformat(timespec='seconds')} with "
                   + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) + "."),
        Block("p", "Accuracies are on each task's test split. Intervals are "
                   f"{confidence:.0%} percentile-bootstrap intervals over the test examples "
                   f"({rounds} resamples; the same resample for the weak supervisor, the student and "
                   "the ceiling, and for every seed, since they share the test set). Where several "
                   "seeds ran, numbers are medians over seeds. PGR = (student - weak) / (ceiling - "
                   "weak): the share of the weak-to-ceiling gap the student recovers; it is not "
                   "interpretable where the ceiling does not clearly beat the weak supervisor.")]

    acc = accuracy_table(store, runs, rounds, confidence)
    blocks.append(Block("h2", "Accuracy per task"))
    blocks.append(Block("figure", "Weak supervisor, students and strong ceiling per task, medians "
                        "over seeds with bootstrap intervals.",
                        path=plot_task_accuracy(acc, out_dir / "accuracy-per-task.png")))
    blocks.append(Block("table", header=["task", "model pair", "method", "seeds", "weak", "student",
                                         "ceiling", "ceiling - weak"],
                        rows=[[r["task"], r["pair"], _method_cell(r) + (" (DIAGNOSTIC)" if r["diagnostic"] else ""),
                               str(len(r["seeds"])), _ci(r["weak"]), _ci(r["student"]), _ci(r["ceiling"]),
                               _ci(r["gap"], sign=True)] for r in acc]))

    blocks.append(Block("h2", "Performance gap recovered per method"))
    blocks.append(Block("p", "Median PGR over seeds with a bootstrap interval (one resample of the "
                        "shared test set applied to every seed), per model pair."))
    pgr_by_pair = dict(pgr_tables(store, runs, rounds))
    for i, (pair, rows) in enumerate(pgr_by_pair.items()):
        blocks.append(Block("h3", pair))
        header, cells = median_pgr_cells(rows)
        blocks.append(Block("table", header=header, rows=cells))
        blocks.append(Block("p", median_pgr_verdict(rows)))
        png = plot_methods(rows, out_dir / f"pgr-{i + 1}.png")
        if png:
            blocks.append(Block("figure", f"Median PGR per method, {pair}.", path=png))

    blocks.append(Block("h2", "Student against strong ceiling"))
    blocks.append(Block("p", "As in Burns et al.'s figures, but with the strong ceiling's accuracy on "
                        "the x axis: each dot is a student (one model pair and method, median over "
                        "seeds), each grey cross the weak supervisor at the same ceiling. A dot on the "
                        "dashed line matches its ceiling (PGR 1); at its cross it only matches its "
                        "supervisor (PGR 0)."))
    blocks.append(Block("figure", "Student and weak accuracy against strong-ceiling accuracy.",
                        path=plot_vs_ceiling(acc, out_dir / "student-vs-ceiling.png")))

    if len(pairs) >= 2:
        blocks += ladder_blocks(store, runs, acc, pgr_by_pair, out_dir, rounds, confidence)

    blocks.append(Block("h2", "Does the student imitate its supervisor's mistakes?"))
    blocks.append(Block("p", "Agreement of the student's hard predictions with the supervisor's on the "
                        "test set: overall, on the test examples the supervisor gets wrong, and on "
                        "those it gets right (medians over seeds). A student that generalises beyond "
                        "its supervisor agrees far less on the supervisor's errors than on its correct "
                        "answers; agreement near 1 on errors is imitation."))
    blocks.append(Block("figure", "Agreement on the supervisor's errors and correct answers per method "
                        "(median over runs, bars: interquartile range).",
                        path=plot_agreement(runs, out_dir / "agreement.png")))
    blocks.append(Block("table", header=["task", "model pair", "method", "agreement", "on weak errors",
                                         "on weak correct", "weak errors (n)"],
                        rows=[[r["task"], r["pair"], _method_cell(r), _num(r["agreement"]),
                               _num(r["agreement_on_weak_errors"]), _num(r["agreement_on_weak_correct"]),
                               _num(r["n_weak_errors"], 0)] for r in acc]))
    curves = plot_training_curves(runs, out_dir / "curves.png")
    if curves:
        blocks.append(Block("p", "Over training: test accuracy after every epoch, medians over seeds. "
                            "A student curve that rises and then sinks toward the weak line is the "
                            "student learning its supervisor's errors. Recorded for analysis only: no "
                            "model was selected on it (except by the gt_early_stop diagnostic)."))
        blocks.append(Block("figure", "Test accuracy per epoch: weak supervisor (dashed), ceiling, and "
                            "each method's student, medians over seeds.", path=curves))

    blocks.append(Block("h2", "Methods ranked across tasks"))
    ranking = method_ranking(runs)
    if ranking is None:
        blocks.append(Block("p", "Only one method ran: nothing to rank."))
    else:
        n_min = min((c.units for c in ranking.comparisons), default=0)
        blocks.append(Block("p", f"Unit: a task with a model pair and its settings ({ranking.units} "
                            "units). Mean rank: 1 = the most accurate student (mean over seeds), over "
                            f"the {ranking.ranked_units} units that ran the same {len(ranking.ranked)} "
                            "methods (methods run elsewhere get '-'). Each method is compared with "
                            f"{ranking.baseline!r} wherever both ran, by the difference in student test "
                            "accuracy: in each unit, the mean over the seeds both ran of the paired "
                            "difference (same seed = same supervisor and ceiling); seeds are not "
                            "treated as independent, since they share the task's data. The test is "
                            "the Wilcoxon signed-rank test on those differences, two-sided, exact "
                            "(its null distribution enumerated; computed with numpy, so the report "
                            "needs no scipy), chosen over a t-test because accuracy differences "
                            "across tasks are neither normal nor on a common scale, and over the sign "
                            "test because it also weighs how large each difference is; ties (zero "
                            "differences) are dropped. Holm's adjustment corrects for comparing "
                            "several methods. Wins/ties/losses are counted per unit and, for "
                            f"reference, per (unit, seed). With n units the smallest p the test can "
                            f"give is 2/2^n ({min(1.0, 2 / 2 ** n_min):.2g} for {n_min}, the fewest here): few tasks "
                            "cannot show a difference, however consistent."))
        header = ["method", "mean rank", f"units vs {ranking.baseline}", "wins / ties / losses",
                  "per seed: w / t / l", "median diff.", "mean diff.", "W+", "p (Wilcoxon)", "p (Holm)"]
        rank_rows = [[ranking.baseline, _num(ranking.mean_rank[ranking.baseline]), "-", "-", "-", "-", "-",
                      "-", "-", "-"]]
        def order(c: Comparison) -> tuple[bool, float, str]:
            rank = ranking.mean_rank.get(c.method, math.nan)
            return math.isnan(rank), 0.0 if math.isnan(rank) else rank, c.method

        for c in sorted(ranking.comparisons, key=order):
            rank_rows.append([c.method, _num(ranking.mean_rank[c.method]), str(c.units),
                         f"{c.wins} / {c.ties} / {c.losses}", f"{c.seed_wins} / {c.seed_ties} / {c.seed_losses}",
                         f"{c.median_diff:+.4f}", f"{c.mean_diff:+.4f}", f"{c.w_plus:g}", _p(c.p), _p(c.p_holm)])
        blocks.append(Block("table", header=header, rows=rank_rows))

    blocks.append(Block("h2", "Methods against baselines at the level of datasets"))
    dataset_rows = dataset_table(store, runs, family, confidence=confidence)
    blocks.append(Block("p", dataset_note(dataset_rows, source)))
    if dataset_rows:
        header, cells = dataset_cells(dataset_rows)
        blocks.append(Block("table", header=header, rows=cells))

    blocks.append(Block("h2", "Every run"))
    blocks.append(Block("p", "The newest finished run of each configuration (all finished runs with "
                        "--all). The same table as data: w2s report --export runs.csv (or .parquet)."))
    blocks.append(Block("table", header=["run", "task", "model pair", "method", "seed", "weak", "student",
                                         "ceiling", "PGR", "agree on weak errors"],
                        rows=[[str(r["id"]), task_of(r), pair_of(r), method_name(r), str(r["config"]["seed"]),
                               str(estimate(r["metrics"]["weak_accuracy"])),
                               str(estimate(r["metrics"]["student_accuracy"])),
                               str(estimate(r["metrics"]["ceiling_accuracy"])), pgr_text(r["metrics"]),
                               _num(r["metrics"].get("agreement_on_weak_errors"))] for r in runs]))
    if len(runs) <= 24:
        png = classification_plot(runs, out_dir / "runs.png")
        if png:
            blocks.append(Block("figure", "Each run: weak, student and ceiling accuracy and PGR.", path=png))
    return blocks


def ladder_blocks(store: Store, runs: list[dict[str, Any]], acc: list[dict[str, Any]],
                  pgr_by_pair: dict[str, list[dict]], out_dir: Path, rounds: int, confidence: float
                  ) -> list[Block]:
    """The model-ladder section (report/scaling.py): figures in the style of Burns et al."""
    methods = {r["method_family"] for r in acc}
    blocks = [Block("h2", "Along the model ladder"),
              Block("p", "Burns et al.'s views of the same runs: student and ceiling against the strong "
                    "model's size for each weak model (solid: naive, dashed: logconf; dotted: the weak "
                    "model's own accuracy), the median PGR of every (weak, strong) pair, the gain of "
                    "the confidence loss against the gap, bootstrapping against direct supervision, "
                    "and imitation of the supervisor's errors against size. Medians over seeds; "
                    "intervals resample the shared test set.")]
    figures = [("Student and strong-ceiling accuracy against the strong model, per weak model.",
                scaling.plot_ladder(acc, out_dir / "ladder.png"))]
    for method in ("naive", "naive + logconf"):
        if method in methods:
            figures.append((f"Median PGR of {method} per (weak, strong) pair.",
                            scaling.plot_pgr_heatmap(pgr_by_pair, out_dir / f"pgr-heatmap-{method.split()[-1]}.png", method)))
    for i, method in enumerate(sorted(methods - {"naive"})):
        if "logconf" in method or method == "bootstrap":
            gains = scaling.paired_gain(store, runs, method, "naive", rounds, confidence)
            png = scaling.plot_gain_vs_gap(gains, out_dir / f"gain-acc-{i + 1}.png", method, scale="accuracy")
            if png:
                corr = "; ".join(f"{c['student']}: rho {c['rho']:+.2f}, permutation p {_p(c['p'])}, "
                                 f"{c['points']} points" for c in scaling.gain_correlations(gains))
                figures.append((f"Student accuracy of {method} minus naive against the ceiling - weak "
                                f"gap, one point per task and pair; Spearman per student model, held "
                                f"fixed ({corr}).", png))
            defined = [g for g in gains if g["pgr_defined"]]
            png = scaling.plot_gain_vs_gap(gains, out_dir / f"gain-{i + 1}.png", method)
            if png:
                corr = "; ".join(f"{c['student']}: rho {c['rho']:+.2f}, permutation p {_p(c['p'])}, "
                                 f"{c['points']} points" for c in scaling.gain_correlations(gains, scale="pgr"))
                figures.append((f"PGR({method}) - PGR(naive) against the ceiling - weak gap (accuracy "
                                f"gain / gap, tied to the gap by construction), over the {len(defined)} "
                                f"of {len(gains)} points with a defined PGR; Spearman per student model, "
                                f"held fixed ({corr}).", png))
    if "bootstrap" in methods:
        figures.append(("Bootstrapping through the intermediate rung against direct supervision.",
                        scaling.plot_bootstrap_vs_direct(acc, out_dir / "bootstrap-vs-direct.png")))
    figures.append(("Agreement of the naive student with its supervisor's test errors against the "
                    "strong model's size.", scaling.plot_agreement_vs_size(acc, out_dir / "agreement-vs-size.png")))
    return blocks + [Block("figure", caption, path=png) for caption, png in figures if png]


CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #1b2a41; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.05em; }
table { border-collapse: collapse; font-size: 0.82em; margin: 0.8em 0; }
th, td { border: 1px solid #d8dde3; padding: 0.25em 0.55em; text-align: left; vertical-align: top; }
th { background: #f2f4f7; } tr:nth-child(even) td { background: #fafbfc; }
figure { margin: 1em 0; } figure img { max-width: 100%; }
figcaption { font-size: 0.85em; color: #555; }
"""


def render_markdown(blocks: list[Block], out_dir: Path) -> str:
    """The blocks as Markdown; every text is escaped (`report.md_escape`), as the HTML is."""
    e = md_escape
    out = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append("#" * int(b.kind[1]) + " " + e(b.text))
        elif b.kind == "p":
            out.append(e(b.text))
        elif b.kind == "table":
            out.append(markdown_table(b.header, b.rows))
        elif b.kind == "figure" and b.path is not None:
            out.append(f"![{e(b.text)}]({b.path.relative_to(out_dir).as_posix()})\n\n*{e(b.text)}*")
    return "\n\n".join(out) + "\n"


def render_html(blocks: list[Block]) -> str:
    def e(text: Any) -> str:
        return display(text, "html")

    title = next((b.text for b in blocks if b.kind == "h1"), "w2sgen report")
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{e(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>"]
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append(f"<{b.kind}>{e(b.text)}</{b.kind}>")
        elif b.kind == "p":
            out.append(f"<p>{e(b.text)}</p>")
        elif b.kind == "table":
            out.append("<table>\n<thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in b.header) + "</tr></thead>")
            out.append("<tbody>" + "\n".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>"
                                             for row in b.rows) + "</tbody>\n</table>")
        elif b.kind == "figure" and b.path is not None:
            data = base64.b64encode(b.path.read_bytes()).decode("ascii")
            out.append(f'<figure><img alt="{e(b.text)}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{e(b.text)}</figcaption></figure>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def write_report(store: Store, runs: list[dict[str, Any]], out_dir: str | Path,
                 rounds: int = 1000, confidence: float = 0.95, family: Optional[Family] = None,
                 source: str = "") -> tuple[Path, Path]:
    """report.html (self-contained) and report.md (with its PNGs) in `out_dir`."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        blocks = build(store, runs, out_dir, rounds, confidence, family, source)
        html_path, md_path = out_dir / "report.html", out_dir / "report.md"
        html_path.write_text(render_html(blocks), encoding="utf-8")
        md_path.write_text(render_markdown(blocks, out_dir), encoding="utf-8")
    except OSError as e:
        raise unwritable("the report to", out_dir, e, "--out") from None
    return html_path, md_path


def command(store: Store, runs: list[dict[str, Any]], html_report: bool, out: str | None,
            export_to: str | None, family: Optional[Family] = None, source: str = "") -> int:
    """`w2s report --html [--out DIR]` and/or `--export FILE`."""
    if export_to:
        path, n = export(runs, export_to)
        print(f"exported {n} run(s) to {path}")
    if html_report:
        out_dir = Path(out) if out else store.root / "report"
        html_path, md_path = write_report(store, runs, out_dir, family=family, source=source)
        print(f"report: {html_path} (self-contained) and {md_path} (figures next to it)")
    return 0
