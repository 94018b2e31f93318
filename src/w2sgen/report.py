"""Tables and plots from the run store.

Names in runs (tasks, model folders, methods) are the user's: Markdown tables escape them
(`md_escape`: no raw HTML, no links, no broken rows) and terminal labels drop control
characters.
"""
from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any, Optional

from .metrics import PGR, Estimate
from .store import Store

PREDICTION_ARRAYS = ("ids", "labels", "weak", "student", "ceiling")  # of predictions.npz
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def md_escape(text: Any) -> str:
    """Text for a Markdown document or table cell, shown as written: HTML tags (`<img ...>`),
    entities, inline links and images (`](`) and table pipes are escaped, line breaks and tabs
    become spaces so a row stays one row, other control characters ?."""
    text = CONTROL.sub("?", re.sub(r"[\r\n\t]+", " ", str(text)))
    text = re.sub(r"\\(?=[!-/:-@\[-`{-~])", r"\\\\", text)  # a backslash that would escape
    text = text.replace("|", "\\|")
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    return text.replace("](", "]\\(")


def terminal_text(text: Any) -> str:
    """A name as a terminal line: control characters (escape sequences, line breaks) become ?."""
    return CONTROL.sub("?", str(text))


def latest_done(store: Store) -> list[dict[str, Any]]:
    """The newest finished run of each distinct configuration."""
    latest: dict[str, dict] = {}
    for r in store.runs("done"):
        latest[r["config_hash"]] = r
    return sorted(latest.values(), key=lambda r: r["id"])


def _generative(run: dict[str, Any]) -> bool:
    """A `w2s generate` run (generative/report.py formats those)."""
    return (run.get("config") or {}).get("kind") == "generative"


def label(run: dict[str, Any]) -> str:
    c = run["config"]
    task = c["task"]["name"] if c["task"]["name"] != "file" else Path(c["task"]["options"]["path"]).name
    parts = [f"{c['weak_model']}->{c['strong_model']}", c["train"]["mode"]]
    method = c.get("method", {"name": "naive", "options": {}})
    if method["name"] != "naive" or method["options"]:
        parts.append(component_text(method))
    parts += [component_text(c["loss"]), f"seed {c['seed']}"]
    text = terminal_text(f"{task} [{', '.join(parts)}]")
    if method["name"] == "gt_early_stop":
        text += " DIAGNOSTIC: picks epochs with test labels"
    return text


def component_text(comp: dict) -> str:
    opts = ",".join(f"{k}={v}" for k, v in sorted(comp["options"].items()))
    return comp["name"] + (f"({opts})" if opts else "")


def _est(d: dict) -> Estimate:
    return Estimate(d["value"], d["low"], d["high"])


def gap_text(m: dict) -> str:
    g = m.get("gap_accuracy")
    return "-" if g is None else f"{g['value']:+.3f} [{g['low']:+.3f}, {g['high']:+.3f}]"


def pgr_text(m: dict) -> str:
    """PGR, or why it is undefined (the gap column already shows the gap)."""
    p = PGR(**m["pgr_accuracy"])
    return "undefined: gap CI includes 0" if p.value is None else str(p)


def table(runs: list[dict[str, Any]]) -> str:
    generative = [r for r in runs if _generative(r)]
    if generative:  # `w2s generate` runs: their own tables, after the classification table
        from .generative.report import table as generative_table

        rest = [r for r in runs if not _generative(r)]
        return "\n\n".join(t for t in (table(rest) if rest else "", generative_table(generative)) if t)
    head = ("run", "experiment", "weak", "student", "ceiling", "ceiling-weak gap", "PGR (accuracy)",
            "agree|weak wrong")
    rows = [head]
    for r in runs:
        m = r["metrics"]
        rows.append((str(r["id"]), label(r), str(_est(m["weak_accuracy"])),
                     str(_est(m["student_accuracy"])), str(_est(m["ceiling_accuracy"])),
                     gap_text(m), pgr_text(m), f"{m['agreement_on_weak_errors']:.2f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    note = (f"test accuracy with {runs[0]['metrics']['confidence']:.0%} bootstrap intervals "
            f"({runs[0]['metrics']['bootstrap']} resamples of the test set)") if runs else ""
    return "\n".join(lines + ([note] if note else []))


def plot(runs: list[dict[str, Any]], out: Path) -> Optional[Path]:
    """Weak / student / ceiling accuracy per experiment, and PGR with its interval."""
    generative = [r for r in runs if _generative(r)]
    runs = [r for r in runs if not _generative(r)]
    if not runs:  # only `w2s generate` runs: their own plot
        if generative:
            from .generative.report import plot as generative_plot

            return generative_plot(generative, out)
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [label(r).replace(" [", "\n[") for r in runs]
    y = np.arange(len(runs))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 1.2 + 0.9 * len(runs)), sharey=True,
                                   gridspec_kw={"width_ratios": [3, 2]})
    colours = {"weak": "#9aa5b1", "student": "#2f6fba", "ceiling": "#1b2a41"}
    for k, (model, c) in enumerate(colours.items()):
        est = [_est(r["metrics"][f"{model}_accuracy"]) for r in runs]
        v = np.array([e.value for e in est])
        err = np.array([[e.value - e.low for e in est], [e.high - e.value for e in est]])
        ax1.barh(y + (k - 1) * 0.26, v, height=0.25, xerr=err, color=c, label=model, capsize=2)
    ax1.set_yticks(y, names, fontsize=8)
    ax1.invert_yaxis()
    lo = min(_est(r["metrics"]["weak_accuracy"]).low for r in runs)
    ax1.set_xlim(max(0.0, min(0.5, lo - 0.05)), 1.0)
    ax1.set_xlabel("test accuracy")
    ax1.legend(loc="lower right", fontsize=8)
    for i, r in enumerate(runs):
        p = PGR(**r["metrics"]["pgr_accuracy"])
        if p.value is None:
            ax2.text(0.5, i, "undefined: gap CI includes 0", va="center", ha="center", fontsize=8,
                     color="#a33")
        else:
            ax2.errorbar(p.value, i, xerr=[[p.value - p.low], [p.high - p.value]], fmt="o",
                         color="#2f6fba", capsize=3)
    ax2.axvline(0, color="#999", lw=0.8)
    ax2.axvline(1, color="#999", lw=0.8, ls="--")
    ax2.set_xlabel("PGR (accuracy)")
    ax2.set_xlim(-0.5, 1.5)
    ax2.set_xticks([-0.5, 0, 0.5, 1, 1.5])
    fig.suptitle("weak-to-strong: weak supervisor, student, strong ceiling", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_curves(runs: list[dict[str, Any]], out: Path, most: int = 12) -> Optional[Path]:
    """Test accuracy after every epoch of weak supervisor, student and ceiling, one panel per
    run: imitation of the supervisor shows as a student curve that peaks and then sinks toward
    the weak line. Recorded for analysis only; no model was selected on it."""
    runs = [r for r in runs if r["metrics"].get("curves", {}).get("student", {}).get("test_accuracy")][-most:]
    if not runs:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(runs))
    rows = (len(runs) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(max(6.0, 4.2 * cols), 3.2 * rows), squeeze=False)
    colours = {"weak": "#9aa5b1", "student": "#2f6fba", "ceiling": "#1b2a41"}
    for ax, r in zip(axes.flat, runs):
        for name, c in colours.items():
            acc = r["metrics"]["curves"][name]["test_accuracy"]
            ax.plot(range(1, len(acc) + 1), acc, color=c, label=name, marker="." if len(acc) < 30 else None)
        ax.set_title(textwrap.fill(label(r), 55), fontsize=7)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("test accuracy", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(runs):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("test accuracy per epoch (analysis only: never used to pick a model)", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def method_summary(metrics: dict[str, Any]) -> str:
    """One line per extra number a method reported (rungs, relabelled-label accuracy, ...)."""
    rep = {k: v for k, v in metrics.get("method", {}).items() if k != "name"}
    nested = {k: rep.pop(k) for k in [k for k, v in rep.items() if isinstance(v, dict)]}
    m = metrics.get("misfit")
    lines = [f"method {metrics.get('method', {}).get('name', 'naive')}: "
             + ", ".join(f"{k}={_short(v)}" for k, v in rep.items())] if rep else []
    for k, d in nested.items():  # e.g. icl_refine's prompting baselines: one line of their own
        lines.append(f"  {k}: " + ", ".join(f"{n}={_short(v)}" for n, v in d.items()))
    if m:
        lines.append(f"misfit diagnostic (squared loss, test): err(student) {m['err_student']:.4f} vs "
                     f"err(weak) - misfit {m['err_weak'] - m['misfit']:.4f} -> "
                     f"{'holds' if m['holds'] else 'violated'} (slack {m['slack']:+.4f})")
    return "\n".join(lines)


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, list) and len(v) == 3 and all(isinstance(x, float) for x in v):
        return f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]"  # estimate with its interval
    if isinstance(v, list) and v and isinstance(v[0], dict):
        return "[" + "; ".join(", ".join(f"{k}={_short(x)}" for k, x in d.items()) for d in v) + "]"
    return str(v)


def method_key(run: dict[str, Any]) -> str:
    c = run["config"]
    method = component_text(c.get("method", {"name": "naive", "options": {}}))
    loss = component_text(c["loss"])
    return method if loss == "xent" else f"{method} + {loss}" if method != "naive" else f"naive + {loss}"


def median_pgr_table(store: Store, rounds: int = 1000, confidence: float = 0.95,
                     runs: Optional[list[dict[str, Any]]] = None) -> list[dict[str, Any]]:
    """Median PGR over seeds for each (task, method), with a bootstrap interval.

    The seeds of one task share its test set (the split seed is fixed), so one resample of the
    test examples is applied to every seed's predictions, PGR is computed per seed, and the
    median over seeds is taken; the interval is the percentile interval of that median over
    resamples. Tasks whose ceiling-weak gap interval (from the seed-0-style paired bootstrap of
    each run) includes 0 in a majority of seeds are marked `gap: no`. `runs`: only these
    finished runs (e.g. a sweep's), instead of the latest of every configuration in the store."""
    import numpy as np

    groups: dict[tuple[str, str], list[dict]] = {}
    for r in latest_done(store) if runs is None else runs:
        if _generative(r):
            continue
        task = r["config"]["task"]["name"]
        groups.setdefault((task, method_key(r)), []).append(r)
    rows = []
    a = (1 - confidence) / 2
    for (task, method), runs in sorted(groups.items()):
        preds = [store.load_arrays(r["id"], "predictions.npz", PREDICTION_ARRAYS) for r in runs]
        if any(p is None for p in preds) or len({p["ids"].tobytes() for p in preds}) != 1:
            continue  # runs from before predictions were stored, or different test sets
        y = preds[0]["labels"].astype(bool)
        n = len(y)
        idx = np.vstack([np.arange(n)[None], np.random.default_rng(0).integers(0, n, (rounds, n))])
        per_seed = []
        for p in preds:
            acc = {k: ((p[k] > 0.5) == y)[idx].mean(1) for k in ("weak", "student", "ceiling")}
            gap = acc["ceiling"] - acc["weak"]
            with np.errstate(divide="ignore", invalid="ignore"):
                per_seed.append(np.where(gap != 0, (acc["student"] - acc["weak"]) / np.where(gap != 0, gap, 1), np.nan))
        med = np.nanmedian(np.vstack(per_seed), axis=0)
        gaps_real = sum(r["metrics"]["gap_accuracy"]["low"] > 0 for r in runs if "gap_accuracy" in r["metrics"])
        lo, hi = np.nanquantile(med[1:], [a, 1 - a])
        rows.append({"task": task, "method": method, "seeds": sorted(r["config"]["seed"] for r in runs),
                     "median_pgr": float(med[0]), "low": float(lo), "high": float(hi),
                     "gap": gaps_real * 2 > len(runs),
                     "student_accuracy": float(np.median([r["metrics"]["student_accuracy"]["value"] for r in runs])),
                     "diagnostic": any(r["config"].get("method", {}).get("name") == "gt_early_stop" for r in runs)})
    return rows


def median_pgr_cells(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The median-PGR table as (header, rows of cell text), unescaped."""
    header = ["task", "method", "seeds", "median student acc.", "median PGR [95% CI]"]
    cells = []
    for r in rows:
        pgr = f"{r['median_pgr']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"
        if not r["gap"]:
            pgr += " (no real gap: not interpretable)"
        method = r["method"] + (" (DIAGNOSTIC, uses test labels)" if r["diagnostic"] else "")
        cells.append([str(r["task"]), method, str(len(r["seeds"])), f"{r['student_accuracy']:.3f}", pgr])
    return header, cells


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(map(md_escape, header)) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(map(md_escape, row)) + " |" for row in rows])


def median_pgr_markdown(rows: list[dict[str, Any]]) -> str:
    return markdown_table(*median_pgr_cells(rows))


def plot_methods(rows: list[dict[str, Any]], out: Path) -> Optional[Path]:
    """Median PGR per method (rows), one marker colour per task, with bootstrap intervals."""
    rows = [r for r in rows if r["gap"]]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [{**r, "method": r["method"] + (" [DIAGNOSTIC]" if r["diagnostic"] else "")} for r in rows]
    methods = sorted({r["method"] for r in rows})
    tasks = sorted({r["task"] for r in rows})
    fig, ax = plt.subplots(figsize=(8, 1 + 0.45 * len(methods)))
    for t, task in enumerate(tasks):
        for r in (r for r in rows if r["task"] == task):
            y = methods.index(r["method"]) + (t - (len(tasks) - 1) / 2) * 0.2
            ax.errorbar(r["median_pgr"], y, xerr=[[r["median_pgr"] - r["low"]], [r["high"] - r["median_pgr"]]],
                        fmt="o", color=f"C{t}", capsize=2, label=task if r is not None else None)
    handles = {h.get_label(): h for h in ax.get_legend_handles_labels()[0]}
    ax.legend(handles.values(), handles.keys(), fontsize=7, loc="lower center",
              bbox_to_anchor=(0.5, 1.0), ncol=len(tasks), frameon=False)
    ax.set_yticks(range(len(methods)), methods, fontsize=8)
    ax.axvline(0, color="#999", lw=0.8)
    ax.axvline(1, color="#999", lw=0.8, ls="--")
    ax.set_xlabel("median PGR over seeds (95% bootstrap interval over test examples)")
    ax.invert_yaxis()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def _icl_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in runs if r["metrics"].get("method", {}).get("name") == "icl_refine"]


def refinement_markdown(runs: list[dict[str, Any]]) -> str:
    """ICL refinement, per task and variant, medians over seeds: weak vs refined label accuracy
    on transfer, the refining LM's own prompting accuracy on the evaluated test subset, the
    student there, and in how many seeds the student is worse than the unaltered LM (few-shot
    with weak demonstrations; paired bootstrap interval of the difference below 0)."""
    import numpy as np

    groups: dict[tuple[str, str], list[dict]] = {}
    for r in _icl_runs(runs):
        if r["metrics"]["method"].get("prompting"):
            groups.setdefault((r["config"]["task"]["name"], method_key(r)), []).append(r)
    if not groups:
        return ""
    lines = ["| task | variant | seeds | weak labels | refined labels | LM zero-shot | LM few-shot (true demos) "
             "| LM few-shot (weak demos) | student (same subset) | student worse than LM (weak demos) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for (task, method), rs in sorted(groups.items()):
        def med(get: Any, rs: list = rs) -> str:  # this group's runs, bound now
            return f"{np.median([get(r) for r in rs]):.3f}"

        ms = [r["metrics"]["method"] for r in rs]
        p = [m["prompting"] for m in ms]
        cols = [med(lambda r: r["metrics"]["method"]["weak_label_accuracy"]),
                med(lambda r: r["metrics"]["method"]["refined_label_accuracy"])]
        for name in ("zero_shot", "fewshot_ground_truth", "fewshot_weak", "student"):
            cols.append(f"{np.median([q[name][0] for q in p]):.3f}" if all(name in q for q in p) else "-")
        worse = sum(bool(q.get("student_worse_than_unaltered")) for q in p)
        variant = md_escape(method.replace("\n", "\\n"))  # keep the row on one line
        lines.append(f"| {md_escape(task)} | {variant} | {len(rs)} | " + " | ".join(cols)
                     + f" | {worse} of {len(rs)} (n={p[0]['n']}) |")
    return "\n".join(lines)


def plot_refinement_k(runs: list[dict[str, Any]], out: Path) -> Optional[Path]:
    """Refined-label accuracy against k (demonstrations per prompt), one line per task and
    batching, with the weak labels' accuracy on the same transfer examples dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[tuple[str, str, int, int], dict[int, tuple[float, float]]] = {}
    for r in _icl_runs(runs):
        m, c = r["metrics"]["method"], r["config"]
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
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
