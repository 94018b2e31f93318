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
import html
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import report as rep
from .config import stable_hash
from .errors import W2SError
from .store import Store
from .sweep import NOT_SHARED

# Method options that name models and so differ between model pairs (a bootstrap ladder, an
# ensemble's models): a ranking across pairs compares the method, not these.
PAIR_SPECIFIC = ("ladder", "models")
EXPORT_FORMATS = (".csv", ".parquet")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet evaluates such a cell
COLOURS = {"weak": "#9aa5b1", "ceiling": "#1b2a41"}


# ---------------------------------------------------------------------------- runs


def classification_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Finished weak-to-strong classification runs (not `w2s generate` runs)."""
    return [r for r in runs if (r.get("config") or {}).get("kind") != "generative"
            and r.get("metrics") and "student_accuracy" in r["metrics"]]


def task_of(run: dict[str, Any]) -> str:
    c = run["config"]["task"]
    return Path(c["options"]["path"]).name if c["name"] == "file" else c["name"]


def pair_of(run: dict[str, Any]) -> str:
    c = run["config"]
    return f"{c['weak_model']} -> {c['strong_model']} ({c['train']['mode']})"


def method_of(run: dict[str, Any]) -> str:
    """`report.method_key` without the pair-specific options (a bootstrap's ladder)."""
    c = run["config"]
    m = c.get("method", {"name": "naive", "options": {}})
    m = {"name": m["name"], "options": {k: v for k, v in m["options"].items() if k not in PAIR_SPECIFIC}}
    return rep.method_key({"config": {**c, "method": m}})


def unit_key(run: dict[str, Any], with_seed: bool) -> str:
    """What a run's weak supervisor and ceiling depend on (task, models, splits, training, and
    the seed when `with_seed`): runs with the same key differ only in how the student is made."""
    d = {k: v for k, v in run["config"].items() if k not in NOT_SHARED}
    if not with_seed:
        d.pop("seed", None)
    return stable_hash(d)


def _diagnostic(run: dict[str, Any]) -> bool:
    return run["config"].get("method", {}).get("name") == "gt_early_stop"


def _iso(t: float | None) -> str | None:
    return dt.datetime.fromtimestamp(t).isoformat(timespec="seconds") if t else None


def compute_span(runs: list[dict[str, Any]]) -> str:
    """When the runs were computed: first start to last finish, and the sum of their own times
    (less than the span where cells waited, more where they ran in parallel)."""
    started = min(r["started"] for r in runs)
    finished = max(r.get("finished") or r["started"] for r in runs)
    own = sum(r["finished"] - r["started"] for r in runs if r.get("finished"))
    return (f"Computed from {_iso(started)} to {_iso(finished)} ({finished - started:.0f} s wall; "
            f"the runs' own times add up to {own:.0f} s).")


def run_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per finished classification run: what the CSV / Parquet export holds."""
    rows = []
    for r in classification_runs(runs):
        c, m = r["config"], r["metrics"]
        row: dict[str, Any] = {
            "run_id": r["id"], "name": r["name"], "config_hash": r["config_hash"], "status": r["status"],
            "started": _iso(r["started"]), "finished": _iso(r.get("finished")),
            "task": task_of(r), "weak_model": c["weak_model"], "strong_model": c["strong_model"],
            "mode": c["train"]["mode"], "method": method_of(r), "method_detail": rep.method_key(r),
            "loss": rep.component_text(c["loss"]), "seed": c["seed"], "diagnostic": _diagnostic(r),
            "n_test": m.get("n_test")}
        for model in ("weak", "student", "ceiling"):
            for metric in ("accuracy", "auc"):
                est = m.get(f"{model}_{metric}") or {}
                for part in ("value", "low", "high"):
                    row[f"{model}_{metric}{'' if part == 'value' else '_' + part}"] = est.get(part)
        gap = m.get("gap_accuracy") or {}
        row.update({"gap_accuracy": gap.get("value"), "gap_accuracy_low": gap.get("low"),
                    "gap_accuracy_high": gap.get("high")})
        pgr = m.get("pgr_accuracy") or {}
        row.update({"pgr_accuracy": pgr.get("value"), "pgr_accuracy_low": pgr.get("low"),
                    "pgr_accuracy_high": pgr.get("high"), "pgr_undefined_reason": pgr.get("reason") or None})
        for k in ("agreement", "agreement_on_weak_errors", "agreement_on_weak_correct", "n_weak_errors",
                  "weak_label_accuracy"):
            row[k] = m.get(k)
        row["misfit_holds"] = (m.get("misfit") or {}).get("holds")
        timings = r.get("timings") or {}
        row["seconds"] = float(sum(t.get("seconds", 0.0) for t in timings.values())) if timings else None
        rows.append(row)
    return rows


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell no spreadsheet runs as a formula: text starting with =, +, -, @, tab or CR
    gets a leading ' (OWASP's advice); numbers and other values are unchanged."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def unwritable(what: str, path: Path | str, e: OSError, flag: str) -> W2SError:
    return W2SError(f"cannot write {what} {str(path)!r}: {e.strerror or e}; pass {flag} a path "
                    "in a folder you can write")


def export(runs: list[dict[str, Any]], path: str | Path) -> tuple[Path, int]:
    """The per-run table as CSV or Parquet (by the file's suffix). Returns (path, rows)."""
    path = Path(path)
    if path.suffix.lower() not in EXPORT_FORMATS:
        raise W2SError(f"--export {str(path)!r}: use a .csv or .parquet file name")
    try:
        import pandas as pd
    except ImportError:
        raise W2SError("--export needs pandas (it comes with `datasets`): pip install pandas") from None
    rows = run_rows(runs)
    csv = path.suffix.lower() == ".csv"
    cells = [{k: spreadsheet_safe(v) for k, v in row.items()} for row in rows] if csv else rows
    frame = pd.DataFrame(cells, columns=list(rows[0]) if rows else None)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if csv:
            frame.to_csv(path, index=False)
        else:
            try:
                frame.to_parquet(path, index=False)
            except ImportError:
                raise W2SError("--export .parquet needs pyarrow (it comes with `datasets`): "
                               "pip install pyarrow") from None
    except OSError as e:
        raise unwritable("the export", path, e, "--export") from None
    return path, len(rows)


# ---------------------------------------------------------------------- statistics


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
        if _diagnostic(r):
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
    """Per (task, model pair, method): weak, student and ceiling test accuracy, medians over
    seeds with percentile-bootstrap intervals (the test examples resampled, the same resample for
    every seed and model), the ceiling - weak gap likewise (`gap`: the median over seeds of each
    seed's gap), and the median agreement figures. Runs without stored predictions
    (older stores) give medians without intervals."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in classification_runs(runs):
        groups.setdefault((task_of(r), pair_of(r), rep.method_key(r)), []).append(r)
    a = (1 - confidence) / 2
    counts_for: dict[int, np.ndarray] = {}
    rows = []
    for (task, pair, method), rs in sorted(groups.items()):
        preds = [store.load_arrays(r["id"], "predictions.npz", rep.PREDICTION_ARRAYS) for r in rs]
        row: dict[str, Any] = {"task": task, "pair": pair, "method": method, "method_family": method_of(rs[0]),
                               "seeds": sorted(r["config"]["seed"] for r in rs),
                               "diagnostic": any(_diagnostic(r) for r in rs)}
        if all(p is not None for p in preds) and len({p["ids"].tobytes() for p in preds}) == 1:
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
    """`report.median_pgr_table` for each model pair (it groups by task and method only)."""
    by_pair: dict[str, list[dict]] = {}
    for r in classification_runs(runs):
        by_pair.setdefault(pair_of(r), []).append(r)
    out = []
    for pair, rs in sorted(by_pair.items()):
        with warnings.catch_warnings():  # resamples where ceiling == weak give NaN medians
            warnings.simplefilter("ignore", RuntimeWarning)
            rows = rep.median_pgr_table(store, rounds=rounds, runs=rs)
        if rows:
            out.append((pair, rows))
    return out


# --------------------------------------------------------------------------- figures


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _method_colours(methods: list[str]) -> dict[str, Any]:
    """Distinct colours: the default cycle for up to 10 methods, tab20 for up to 20."""
    if len(methods) <= 10:
        return {m: f"C{i}" for i, m in enumerate(methods)}
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return {m: cmap(i % 20) for i, m in enumerate(methods)}


def _legend_right(fig: Any, handles: list, labels: list[str]) -> None:
    """The legend outside the axes, on the right (`_save` crops to include it)."""
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False)


def plot_task_accuracy(rows: list[dict[str, Any]], out: Path) -> Path | None:
    """Per task (rows) and model pair (panels): weak, each method's student and the ceiling,
    medians over seeds with their bootstrap intervals."""
    if not rows:
        return None
    plt = _pyplot()
    pairs = sorted({r["pair"] for r in rows})
    tasks = sorted({r["task"] for r in rows})
    methods = sorted({r["method_family"] for r in rows})
    colours = _method_colours(methods)
    slots = ["weak", *methods, "ceiling"]
    height = 0.8 / len(slots)
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.5 * len(pairs) + 1.5, 1.2 + 0.16 * len(slots) * len(tasks) + 0.3),
                             sharey=True, squeeze=False)
    for ax, pair in zip(axes[0], pairs):
        for t, task in enumerate(tasks):
            cell = [r for r in rows if r["pair"] == pair and r["task"] == task]
            if not cell:
                continue
            bars = [("weak", cell[0]["weak"], COLOURS["weak"])]
            bars += [(r["method_family"], r["student"], colours[r["method_family"]]) for r in cell]
            bars.append(("ceiling", cell[0]["ceiling"], COLOURS["ceiling"]))
            for name, (v, lo, hi), colour in bars:
                y = t - 0.4 + (slots.index(name) + 0.5) * height
                err = None if lo is None else [[v - lo], [hi - v]]
                ax.barh(y, v, height=height * 0.9, xerr=err, color=colour, capsize=1.5,
                        error_kw={"lw": 0.8}, label=name)
        ax.set_title(pair, fontsize=8)
        ax.set_xlabel("test accuracy", fontsize=8)
        lows = [r[k][1] if r[k][1] is not None else r[k][0] for r in rows for k in ("weak", "student")]
        ax.set_xlim(max(0.0, min(0.5, min(lows) - 0.03)), 1.0)
        ax.tick_params(labelsize=7)
    axes[0][0].set_yticks(range(len(tasks)), tasks)
    axes[0][0].invert_yaxis()
    handles = {h.get_label(): h for ax in axes[0] for h in ax.get_legend_handles_labels()[0]}
    order = [s for s in slots if s in handles]
    fig.tight_layout()
    _legend_right(fig, [handles[s] for s in order], [f"student: {s}" if s in methods else s for s in order])
    return _save(fig, out, plt)


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
    out = {}
    for key, g in groups.items():
        out[key] = {}
        for name, cs in g.items():
            n = min(map(len, cs))
            out[key][name] = np.median(np.array([c[:n] for c in cs], dtype=float), axis=0)
    return out


def plot_training_curves(runs: list[dict[str, Any]], out: Path, cols: int = 3) -> Path | None:
    """One panel per (task, model pair): test accuracy after every epoch, medians over seeds;
    a student curve that rises and then sinks toward the weak line is imitation of its
    supervisor's errors setting in. Recorded for analysis only: no model was selected on it."""
    med = curve_medians(runs)
    if not med:
        return None
    plt = _pyplot()
    methods = sorted({m for g in med.values() for m in g} - {"weak", "ceiling"})
    colours = _method_colours(methods)
    cols = min(cols, len(med))
    rows = (len(med) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, ((task, pair), g) in zip(axes.flat, sorted(med.items())):
        for name, y in sorted(g.items()):
            x = np.arange(1, len(y) + 1)
            if name in ("weak", "ceiling"):
                ax.plot(x, y, color=COLOURS[name], lw=2.2, ls="--" if name == "weak" else "-", label=name)
            else:
                ax.plot(x, y, color=colours[name], lw=1.0, label=f"student: {name}")
        ax.set_title(f"{task}\n{pair}", fontsize=7)
        ax.set_xlabel("epoch", fontsize=7)
        ax.set_ylabel("test accuracy", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(med):]:
        ax.axis("off")
    handles = {lab: h for ax in axes.flat for h, lab in zip(*ax.get_legend_handles_labels())}
    order = ["weak", *[f"student: {m}" for m in methods], "ceiling"]
    fig.tight_layout()
    _legend_right(fig, [handles[k] for k in order if k in handles], [k for k in order if k in handles])
    return _save(fig, out, plt)


def plot_vs_ceiling(rows: list[dict[str, Any]], out: Path, cols: int = 4) -> Path | None:
    """Student against strong-ceiling test accuracy, one panel per task: a point per (model
    pair, method), medians over seeds; grey crosses are the weak supervisor at the same ceiling,
    joined to its students; on the dashed y = x line a student matches its ceiling (PGR 1)."""
    rows = [r for r in rows if not r["diagnostic"]]
    if not rows:
        return None
    plt = _pyplot()
    tasks = sorted({r["task"] for r in rows})
    methods = sorted({r["method_family"] for r in rows})
    colours = _method_colours(methods)
    cols = min(cols, len(tasks))
    nrows = (len(tasks) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 3.0 * nrows + 0.4), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        cell = [r for r in rows if r["task"] == task]
        vals = [v for r in cell for v in (r["weak"][0], r["student"][0], r["ceiling"][0])]
        lo, hi = max(0.0, min(vals) - 0.03), min(1.0, max(vals) + 0.03)
        ax.plot([lo, hi], [lo, hi], ls="--", color="#999", lw=0.8)
        for r in cell:
            x, w, s = r["ceiling"][0], r["weak"][0], r["student"][0]
            ax.plot([x, x], [w, s], color="#bbb", lw=0.7, zorder=1)
            ax.scatter([x], [w], marker="x", color=COLOURS["weak"], s=18, zorder=2,
                       label="weak supervisor")
            ax.scatter([x], [s], color=colours[r["method_family"]], s=16, zorder=3,
                       label=f"student: {r['method_family']}")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_title(task, fontsize=8)
        ax.tick_params(labelsize=6)
        ax.set_xlabel("strong ceiling accuracy", fontsize=7)
        ax.set_ylabel("test accuracy", fontsize=7)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    handles = {h.get_label(): h for ax in axes.flat for h in ax.get_legend_handles_labels()[0]}
    fig.tight_layout()
    _legend_right(fig, list(handles.values()), list(handles.keys()))
    return _save(fig, out, plt)


def plot_agreement(runs: list[dict[str, Any]], out: Path) -> Path | None:
    """Per method: how often the student agrees with its supervisor where the supervisor is
    wrong and where it is right, median over runs with the interquartile range."""
    rs = [r for r in classification_runs(runs) if not _diagnostic(r)]
    if not rs:
        return None
    plt = _pyplot()
    methods = sorted({method_of(r) for r in rs})
    fig, ax = plt.subplots(figsize=(7.0, 1.0 + 0.42 * len(methods)))
    for k, (key, label, colour) in enumerate((
            ("agreement_on_weak_errors", "on the supervisor's errors", "#c0504d"),
            ("agreement_on_weak_correct", "on its correct answers", "#2f6fba"))):
        labelled = False
        for i, m in enumerate(methods):
            vals = np.array([r["metrics"].get(key, np.nan) for r in rs if method_of(r) == m], dtype=float)
            vals = vals[np.isfinite(vals)]
            if not len(vals):
                continue
            q1, med, q3 = np.quantile(vals, [0.25, 0.5, 0.75])
            ax.barh(i + (k - 0.5) * 0.38, med, height=0.36, color=colour, xerr=[[med - q1], [q3 - med]],
                    capsize=2, label=None if labelled else label)
            labelled = True
    ax.set_yticks(range(len(methods)), methods, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.0)
    ax.set_xlabel("student-supervisor agreement (median over runs, bars: interquartile range)", fontsize=8)
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    fig.tight_layout()
    return _save(fig, out, plt)


def _save(fig: Any, out: Path, plt: Any) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return out


# ------------------------------------------------------------------------ document


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


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def build(store: Store, runs: list[dict[str, Any]], out_dir: Path, rounds: int = 1000,
          confidence: float = 0.95) -> list[Block]:
    """The report's blocks; figures are written to `out_dir`."""
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
                        rows=[[r["task"], r["pair"], r["method"] + (" (DIAGNOSTIC)" if r["diagnostic"] else ""),
                               str(len(r["seeds"])), _ci(r["weak"]), _ci(r["student"]), _ci(r["ceiling"]),
                               _ci(r["gap"], sign=True)] for r in acc]))

    blocks.append(Block("h2", "Performance gap recovered per method"))
    blocks.append(Block("p", "Median PGR over seeds with a bootstrap interval (one resample of the "
                        "shared test set applied to every seed), per model pair."))
    for i, (pair, rows) in enumerate(pgr_tables(store, runs, rounds)):
        blocks.append(Block("h3", pair))
        header, cells = rep.median_pgr_cells(rows)
        blocks.append(Block("table", header=header, rows=cells))
        png = rep.plot_methods(rows, out_dir / f"pgr-{i + 1}.png")
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
                        rows=[[r["task"], r["pair"], r["method"], _num(r["agreement"]),
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
        rows = [[ranking.baseline, _num(ranking.mean_rank[ranking.baseline]), "-", "-", "-", "-", "-",
                 "-", "-", "-"]]
        def order(c: Comparison) -> tuple[bool, float, str]:
            rank = ranking.mean_rank.get(c.method, math.nan)
            return math.isnan(rank), 0.0 if math.isnan(rank) else rank, c.method

        for c in sorted(ranking.comparisons, key=order):
            rows.append([c.method, _num(ranking.mean_rank[c.method]), str(c.units),
                         f"{c.wins} / {c.ties} / {c.losses}", f"{c.seed_wins} / {c.seed_ties} / {c.seed_losses}",
                         f"{c.median_diff:+.4f}", f"{c.mean_diff:+.4f}", f"{c.w_plus:g}", _p(c.p), _p(c.p_holm)])
        blocks.append(Block("table", header=header, rows=rows))

    blocks.append(Block("h2", "Every run"))
    blocks.append(Block("p", "The newest finished run of each configuration (all finished runs with "
                        "--all). The same table as data: w2s report --export runs.csv (or .parquet)."))
    blocks.append(Block("table", header=["run", "task", "model pair", "method", "seed", "weak", "student",
                                         "ceiling", "PGR", "agree on weak errors"],
                        rows=[[str(r["id"]), task_of(r), pair_of(r), rep.method_key(r), str(r["config"]["seed"]),
                               str(rep._est(r["metrics"]["weak_accuracy"])),
                               str(rep._est(r["metrics"]["student_accuracy"])),
                               str(rep._est(r["metrics"]["ceiling_accuracy"])), rep.pgr_text(r["metrics"]),
                               _num(r["metrics"].get("agreement_on_weak_errors"))] for r in runs]))
    if len(runs) <= 24:
        png = rep.plot(runs, out_dir / "runs.png")
        if png:
            blocks.append(Block("figure", "Each run: weak, student and ceiling accuracy and PGR.", path=png))
    return blocks


# ------------------------------------------------------------------------- rendering

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
    e = rep.md_escape
    out = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append("#" * int(b.kind[1]) + " " + e(b.text))
        elif b.kind == "p":
            out.append(e(b.text))
        elif b.kind == "table":
            out.append(rep.markdown_table(b.header, b.rows))
        elif b.kind == "figure" and b.path is not None:
            out.append(f"![{e(b.text)}]({b.path.relative_to(out_dir).as_posix()})\n\n*{e(b.text)}*")
    return "\n\n".join(out) + "\n"


def render_html(blocks: list[Block]) -> str:
    e = html.escape
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
                 rounds: int = 1000, confidence: float = 0.95) -> tuple[Path, Path]:
    """report.html (self-contained) and report.md (with its PNGs) in `out_dir`."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        blocks = build(store, runs, out_dir, rounds, confidence)
        html_path, md_path = out_dir / "report.html", out_dir / "report.md"
        html_path.write_text(render_html(blocks), encoding="utf-8")
        md_path.write_text(render_markdown(blocks, out_dir), encoding="utf-8")
    except OSError as e:
        raise unwritable("the report to", out_dir, e, "--out") from None
    return html_path, md_path


def command(store: Store, runs: list[dict[str, Any]], html_report: bool, out: str | None,
            export_to: str | None) -> int:
    """`w2s report --html [--out DIR]` and/or `--export FILE`."""
    if export_to:
        path, n = export(runs, export_to)
        print(f"exported {n} run(s) to {path}")
    if html_report:
        out_dir = Path(out) if out else store.root / "report"
        html_path, md_path = write_report(store, runs, out_dir)
        print(f"report: {html_path} (self-contained) and {md_path} (figures next to it)")
    return 0
