"""Terminal and Markdown text: the per-run table, PGR and gap strings, Markdown tables.

Names in runs (tasks, model folders, methods) are the user's: Markdown tables escape them
(`md_escape`: no raw HTML, no links, no broken rows) and terminal labels drop control
characters."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..metrics import PGR, flip_difference
from .runs import component_text, estimate, icl_runs, method_key, short

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


def gap_text(m: dict) -> str:
    g = m.get("gap_accuracy")
    return "-" if g is None else f"{g['value']:+.3f} [{g['low']:+.3f}, {g['high']:+.3f}]"


def pgr_text(m: dict) -> str:
    """PGR, or why it is undefined (the gap column already shows the gap)."""
    p = PGR(**m["pgr_accuracy"])
    return "undefined: gap CI includes 0" if p.value is None else str(p)


def classification_table(runs: list[dict[str, Any]]) -> str:
    """One row per weak-to-strong classification run."""
    head = ("run", "experiment", "weak", "student", "ceiling", "ceiling-weak gap", "PGR (accuracy)",
            "agree|weak wrong")
    rows = [head]
    for r in runs:
        m = r["metrics"]
        rows.append((str(r["id"]), label(r), str(estimate(m["weak_accuracy"])),
                     str(estimate(m["student_accuracy"])), str(estimate(m["ceiling_accuracy"])),
                     gap_text(m), pgr_text(m), f"{m['agreement_on_weak_errors']:.2f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    note = (f"test accuracy with {runs[0]['metrics']['confidence']:.0%} bootstrap intervals "
            f"({runs[0]['metrics']['bootstrap']} resamples of the test set)") if runs else ""
    return "\n".join(lines + ([note] if note else []))


def method_summary(metrics: dict[str, Any]) -> str:
    """One line per extra number a method reported (rungs, relabelled-label accuracy, ...)."""
    rep = {k: v for k, v in metrics.get("method", {}).items() if k != "name"}
    nested = {k: rep.pop(k) for k in [k for k, v in rep.items() if isinstance(v, dict)]}
    m = metrics.get("misfit")
    lines = [f"method {metrics.get('method', {}).get('name', 'naive')}: "
             + ", ".join(f"{k}={short(v)}" for k, v in rep.items())] if rep else []
    for k, d in nested.items():  # e.g. icl_refine's prompting baselines: one line of their own
        lines.append(f"  {k}: " + ", ".join(f"{n}={short(v)}" for n, v in d.items()))
    if m:
        lines.append(f"misfit diagnostic (squared loss, test): err(student) {m['err_student']:.4f} vs "
                     f"err(weak) - misfit {m['err_weak'] - m['misfit']:.4f} -> "
                     f"{'holds' if m['holds'] else 'violated'} (slack {m['slack']:+.4f})")
    return "\n".join(lines)


def median_pgr_cells(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The median-PGR table as (header, rows of cell text), unescaped; with a model pair column
    where the rows hold several pairs (or train modes) and a setting column where a method ran
    with several other settings (`tables.median_pgr_table`), so rows that look alike are not."""
    pairs = len({r.get("pair") for r in rows}) > 1
    settings = any(r.get("setting") for r in rows)
    header = (["task"] + (["model pair"] if pairs else []) + ["method"] + (["setting"] if settings else [])
              + ["seeds", "median student acc.", "median PGR [95% CI]"])
    cells = []
    for r in rows:
        pgr = f"{r['median_pgr']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"
        if r.get("baseline") == "fixed":  # eval.pgr_baseline: fixed (the 2026 testbed's PGR)
            pgr += (f" +- {r['sd']:.2f}" if r.get("sd") is not None else "") + " (of means, fixed baselines)"
        if not r["gap"]:
            pgr += " (no real gap: not interpretable)"
        method = r["method"] + (" (DIAGNOSTIC, uses test labels)" if r["diagnostic"] else "")
        cells.append([str(r["task"])] + ([str(r.get("pair"))] if pairs else []) + [method]
                     + ([r.get("setting") or "-"] if settings else [])
                     + [str(len(r["seeds"])), f"{r['student_accuracy']:.3f}", pgr])
    return header, cells


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(map(md_escape, header)) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(map(md_escape, row)) + " |" for row in rows])


def median_pgr_markdown(rows: list[dict[str, Any]]) -> str:
    return markdown_table(*median_pgr_cells(rows))


def refinement_markdown(runs: list[dict[str, Any]]) -> str:
    """ICL refinement, per task and variant, medians over seeds: weak vs refined label accuracy
    on transfer, the refining LM's own prompting accuracy on the evaluated test subset, the
    student there, and in how many seeds the student is worse than the unaltered LM (few-shot
    with weak demonstrations; paired bootstrap interval of the difference below 0)."""
    import numpy as np

    groups: dict[tuple[str, str], list[dict]] = {}
    for r in icl_runs(runs):
        if r["metrics"]["method"].get("prompting"):
            groups.setdefault((r["config"]["task"]["name"], method_key(r)), []).append(r)
    if not groups:
        return ""
    lines = ["| task | variant | seeds | weak labels | refined labels | refined - weak (median; seeds with "
             "95% CI > 0) | LM zero-shot | LM few-shot (true demos) "
             "| LM few-shot (weak demos) | student (same subset) | student worse than LM (weak demos) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (task, method), rs in sorted(groups.items()):
        def med(get: Any, rs: list = rs) -> str:  # this group's runs, bound now
            return f"{np.median([get(r) for r in rs]):.3f}"

        ms = [r["metrics"]["method"] for r in rs]
        p = [m["prompting"] for m in ms]
        cols = [med(lambda r: r["metrics"]["method"]["weak_label_accuracy"]),
                med(lambda r: r["metrics"]["method"]["refined_label_accuracy"])]
        cols.append(refined_gain(rs))
        for name in ("zero_shot", "fewshot_ground_truth", "fewshot_weak", "student"):
            cols.append(f"{np.median([q[name][0] for q in p]):.3f}" if all(name in q for q in p) else "-")
        worse = sum(bool(q.get("student_worse_than_unaltered")) for q in p)
        variant = md_escape(method.replace("\n", "\\n"))  # keep the row on one line
        lines.append(f"| {md_escape(task)} | {variant} | {len(rs)} | " + " | ".join(cols)
                     + f" | {worse} of {len(rs)} (n={p[0]['n']}) |")
    return "\n".join(lines)


def refined_gain(runs: list[dict[str, Any]]) -> str:
    """Refined minus weak label accuracy on transfer: the median over seeds, and in how many
    seeds its matched-pairs 95% interval (metrics.flip_difference, from the recorded flips)
    lies above 0; "-" for runs recorded before flips were."""
    import numpy as np

    diffs = []
    for r in runs:
        m, n = r["metrics"]["method"], r["metrics"].get("split_sizes", {}).get("transfer")
        if "flips" not in m or "flips_correct" not in m or not n:
            return "-"
        right = int(m["flips_correct"])
        diffs.append(flip_difference(right, int(m["flips"]) - right, int(n)))
    above = sum(d["low"] > 0 for d in diffs)
    return f"{np.median([d['diff'] for d in diffs]):+.3f}; {above} of {len(diffs)}"


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
