"""The report's figures (matplotlib, Agg): per-run bars, training curves, PGR per method,
accuracy per task, student against ceiling, agreement with the supervisor, refinement by k."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import W2SError
from ..escape import sanitize_figure
from ..metrics import PGR
from ..plotting import pyplot, save
from .runs import classification_runs, estimate, icl_runs, is_diagnostic, method_of, row_names
from .tables import curve_medians
from .text import label, pgr_text

COLOURS = {"weak": "#9aa5b1", "ceiling": "#1b2a41"}


def classification_plot(runs: list[dict[str, Any]], out: Path) -> Optional[Path]:
    """Weak / student / ceiling accuracy per experiment, and PGR with its interval."""
    if not runs:
        return None
    plt = _pyplot()
    import numpy as np

    names = [label(r).replace(" [", "\n[") for r in runs]
    y = np.arange(len(runs))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 1.8 + 0.9 * len(runs)), sharey=True,
                                   gridspec_kw={"width_ratios": [3, 2]})
    colours = {"weak": "#9aa5b1", "student": "#2f6fba", "ceiling": "#1b2a41"}
    for k, (model, c) in enumerate(colours.items()):
        est = [estimate(r["metrics"][f"{model}_accuracy"]) for r in runs]
        v = np.array([e.value for e in est])
        err = np.array([[e.value - e.low for e in est], [e.high - e.value for e in est]])
        ax1.barh(y + (k - 1) * 0.26, v, height=0.25, xerr=err, color=c, label=model, capsize=2)
    ax1.set_yticks(y, names)
    ax1.invert_yaxis()
    lo = min(r["metrics"][f"{m}_accuracy"]["low"] for r in runs for m in colours)
    ax1.set_xlim(max(0.0, min(0.5, lo - 0.05)), upper_limit(
        [r["metrics"][f"{m}_accuracy"]["high"] for r in runs for m in colours]))
    ax1.set_xlabel("test accuracy")
    ax1.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    for i, r in enumerate(runs):
        p = PGR(**r["metrics"]["pgr_accuracy"])
        if p.value is None or p.low is None or p.high is None:
            ax2.text(0.5, i, pgr_text(r["metrics"]), va="center", ha="center",
                     color="#a33")
        else:
            ax2.errorbar(p.value, i, xerr=[[p.value - p.low], [p.high - p.value]], fmt="o",
                         color="#2f6fba", capsize=3)
    ax2.axvline(0, color="#999", lw=0.8)
    ax2.axvline(1, color="#999", lw=0.8, ls="--")
    ax2.set_xlabel("PGR (accuracy)")
    ax2.set_xlim(-0.5, 1.5)
    ax2.set_xticks([-0.5, 0, 0.5, 1, 1.5])
    fig.suptitle("weak-to-strong: weak supervisor, student, strong ceiling")
    _layout(fig)
    return _save(fig, out, plt, dpi=120)


def plot_curves(runs: list[dict[str, Any]], out: Path, most: int = 12) -> Optional[Path]:
    """Test accuracy after every epoch of weak supervisor, student and ceiling, one panel per
    run: imitation of the supervisor shows as a student curve that peaks and then sinks toward
    the weak line. Recorded for analysis only; no model was selected on it."""
    runs = [r for r in runs if r["metrics"].get("curves", {}).get("student", {}).get("test_accuracy")][-most:]
    if not runs:
        return None
    plt = _pyplot()

    cols = min(3, len(runs))
    rows = (len(runs) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(max(6.0, 4.2 * cols), 3.2 * rows), squeeze=False)
    colours = {"weak": "#9aa5b1", "student": "#2f6fba", "ceiling": "#1b2a41"}
    for ax, r in zip(axes.flat, runs):
        for name, c in colours.items():
            acc = r["metrics"]["curves"][name]["test_accuracy"]
            ax.plot(range(1, len(acc) + 1), acc, color=c, label=name, marker="." if len(acc) < 30 else None)
        ax.set_title(textwrap.fill(label(r), 40))
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy")
    for ax in list(axes.flat)[len(runs):]:
        ax.axis("off")
    fig.suptitle("test accuracy per epoch (analysis only: never used to pick a model)")
    _layout(fig)
    _legend_right(fig, *axes.flat[0].get_legend_handles_labels())
    return _save(fig, out, plt, dpi=110)


def plot_methods(rows: list[dict[str, Any]], out: Path) -> Optional[Path]:
    """Median PGR per method (rows), one marker colour per task, with bootstrap intervals."""
    rows = [r for r in rows if r["gap"]]
    if not rows:
        return None
    plt = _pyplot()

    rows = [{**r, "method": name + (" [DIAGNOSTIC]" if r["diagnostic"] else "")}
            for r, name in zip(rows, row_names(rows))]  # with the pair / setting where they vary
    methods = sorted({r["method"] for r in rows})
    tasks = sorted({r["task"] for r in rows})
    fig, ax = plt.subplots(figsize=(8, 1 + 0.45 * len(methods)))
    for t, task in enumerate(tasks):
        for r in (r for r in rows if r["task"] == task):
            y = methods.index(r["method"]) + (t - (len(tasks) - 1) / 2) * 0.2
            ax.errorbar(r["median_pgr"], y, xerr=[[r["median_pgr"] - r["low"]], [r["high"] - r["median_pgr"]]],
                        fmt="o", color=f"C{t}", capsize=2, label=task if r is not None else None)
    handles = {str(h.get_label()): h for h in ax.get_legend_handles_labels()[0]}
    ax.legend(list(handles.values()), list(handles.keys()), loc="lower center",
              bbox_to_anchor=(0.5, 1.0), ncol=len(tasks), frameon=False)
    ax.set_yticks(range(len(methods)), methods)
    ax.axvline(0, color="#999", lw=0.8)
    ax.axvline(1, color="#999", lw=0.8, ls="--")
    ax.set_xlabel("median PGR over seeds (95% bootstrap interval over test examples)")
    ax.invert_yaxis()
    _layout(fig)
    return _save(fig, out, plt, dpi=120)


def plot_refinement_k(runs: list[dict[str, Any]], out: Path) -> Optional[Path]:
    """Refined-label accuracy against k (weakly labelled demonstrations per prompt), one line per
    task and batching, with the weak labels' accuracy on the same transfer examples dashed; runs
    with true demonstrations (`demos: true`) are left out."""
    plt = _pyplot()

    series: dict[tuple[str, str, int, int], dict[int, tuple[float, float]]] = {}
    for r in icl_runs(runs):
        m, c = r["metrics"]["method"], r["config"]
        if m.get("demos", "weak") != "weak":  # the oracle control (true demonstrations) is no point of the curve
            continue
        name = f"{c['task']['name']}, {m['batch']}{' balanced' if m['balance'] else ''}"
        key = (name, m["lm"], c["seed"], r["metrics"]["split_sizes"]["transfer"])
        series.setdefault(key, {})[m["k"]] = (m["refined_label_accuracy"], m["weak_label_accuracy"])
    series = {k: v for k, v in series.items() if len(v) >= 3}
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, ((name, lm, seed, n), pts) in enumerate(sorted(series.items())):
        ks = sorted(pts)
        ax.plot(ks, [pts[k][0] for k in ks], "o-", color=f"C{i}",
                label=f"{name} ({lm}, seed {seed}, {n} examples)")
        ax.axhline(pts[ks[0]][1], color=f"C{i}", ls="--", lw=1)
    ax.set_xscale("symlog", linthresh=1)
    ticks = sorted({k for pts in series.values() for k in pts})
    ax.set_xticks(ticks, [str(k) for k in ticks])
    ax.minorticks_off()
    ax.set_xlabel("k, weakly labelled demonstrations per prompt")
    ax.set_ylabel("label accuracy on transfer")
    ax.set_title("ICL-refined labels (solid) vs the weak labels they came from (dashed)")
    _layout(fig)
    _legend_right(fig, *ax.get_legend_handles_labels())
    return _save(fig, out, plt, dpi=120)


def _pyplot() -> Any:
    return pyplot()


def upper_limit(highs: list[float]) -> float:
    """An accuracy axis' right end: 1, or past the highest interval end, with room for the
    error bars' caps (so none is cut at 1.0)."""
    return max([1.0, *highs]) + 0.02


def check_plot_path(out: Path) -> None:
    """A figure path whose suffix matplotlib writes (.png, .pdf, .svg, ...), else one line."""
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    if out.suffix.lower().lstrip(".") not in formats:
        raise W2SError(f"--out {str(out)!r}: matplotlib cannot write {out.suffix or 'suffix-less'!r} "
                       "files; give a name ending in .png, .pdf or .svg")


def _layout(fig: Any) -> None:
    """tight_layout of a figure whose texts were made safe first (escape.sanitize_figure: a
    name's `$...$` is not maths, control and bidirectional characters are ?)."""
    import warnings

    sanitize_figure(fig)
    with warnings.catch_warnings():  # labels too long to fit: the saved figure is cropped to them
        warnings.filterwarnings("ignore", "Tight layout not applied", UserWarning)
        fig.tight_layout()


def _method_colours(methods: list[str]) -> dict[str, Any]:
    """Distinct colours: the default cycle for up to 10 methods, tab20 for up to 20."""
    if len(methods) <= 10:
        return {m: f"C{i}" for i, m in enumerate(methods)}
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return {m: cmap(i % 20) for i, m in enumerate(methods)}


def _legend_right(fig: Any, handles: list, labels: list[str]) -> None:
    """The legend outside the axes, on the right (`_save` crops to include it)."""
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)


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
        ax.set_title(_title(pair))
        ax.set_xlabel("test accuracy")
        lows = [r[k][1] if r[k][1] is not None else r[k][0] for r in rows for k in ("weak", "student")]
        ax.set_xlim(max(0.0, min(0.5, min(lows) - 0.03)), upper_limit(
            [r[k][2] for r in rows for k in ("weak", "student", "ceiling") if r[k][2] is not None]))
    axes[0][0].set_yticks(range(len(tasks)), tasks)
    axes[0][0].invert_yaxis()
    handles = {h.get_label(): h for ax in axes[0] for h in ax.get_legend_handles_labels()[0]}
    order = [s for s in slots if s in handles]
    _layout(fig)
    names = {m: _shown_name(m, rows) for m in methods}
    _legend_right(fig, [handles[s] for s in order], [f"student: {names[s]}" if s in methods else s
                                                     for s in order])
    return _save(fig, out, plt)


def _title(text: str, width: int = 40) -> str:
    """A panel title on lines of `width` characters: a long model pair does not run into the
    next panel's."""
    return "\n".join(textwrap.wrap(text, width, break_on_hyphens=False)) or text


def _shown_name(family: str, rows: list[dict[str, Any]]) -> str:
    """A method as the tables name it: the suite's variant name where all its rows share one."""
    labels = {r.get("method_label", family) for r in rows if r["method_family"] == family}
    return labels.pop() if len(labels) == 1 else family


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
        ax.set_title(f"{task}\n{_title(pair)}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy")
    for ax in list(axes.flat)[len(med):]:
        ax.axis("off")
    handles = {lab: h for ax in axes.flat for h, lab in zip(*ax.get_legend_handles_labels())}
    order = ["weak", *[f"student: {m}" for m in methods], "ceiling"]
    _layout(fig)
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
        ax.set_title(task)
        ax.set_xlabel("strong ceiling accuracy")
        ax.set_ylabel("test accuracy")
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    return _legend_and_save(fig, axes, out, plt)


def plot_agreement(runs: list[dict[str, Any]], out: Path) -> Path | None:
    """Per method: how often the student agrees with its supervisor where the supervisor is
    wrong and where it is right, median over runs with the interquartile range."""
    rs = [r for r in classification_runs(runs) if not is_diagnostic(r)]
    if not rs:
        return None
    plt = _pyplot()
    methods = sorted({method_of(r) for r in rs})
    fig, ax = plt.subplots(figsize=(7.0, 1.0 + 0.42 * len(methods)))
    for k, (key, what, colour) in enumerate((
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
                    capsize=2, label=None if labelled else what)
            labelled = True
    ax.set_yticks(range(len(methods)), methods)
    ax.invert_yaxis()
    ax.set_xlim(0, upper_limit([]))
    ax.set_xlabel("student-supervisor agreement (median over runs, bars: interquartile range)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    _layout(fig)
    return _save(fig, out, plt)


def _save(fig: Any, out: Path, plt: Any, dpi: int = 100) -> Path:
    sanitize_figure(fig)  # texts added since the layout (legends)
    return save(fig, out, plt, dpi)


def _legend_and_save(fig: Any, axes: Any, out: Path, plt: Any) -> Path:
    """One legend entry per label across every panel, to the right of the figure; then save."""
    handles = {h.get_label(): h for ax in axes.flat for h in ax.get_legend_handles_labels()[0]}
    _layout(fig)
    _legend_right(fig, list(handles.values()), list(handles.keys()))
    return _save(fig, out, plt)
