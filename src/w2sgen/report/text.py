"""Terminal and Markdown text: the per-run table, PGR and gap strings, Markdown tables.

Names in runs (tasks, model folders, methods) are the user's: Markdown tables escape them
(`md_escape`: no raw HTML, no links, no broken rows) and terminal labels drop control
characters."""
from __future__ import annotations

import re
import textwrap
from typing import TYPE_CHECKING, Any, Optional

from ..errors import W2SError
from ..escape import display
from ..metrics import PGR, flip_difference, gap_defined, gap_words, mean_ci
from .runs import (
    group_key,
    icl_runs,
    is_icl_refine,
    method_key,
    method_name,
    method_of,
    run_predictions,
    seed_units,
    setting_labels,
    shared_predictions,
    short,
    short_name,
    task_of,
)

if TYPE_CHECKING:
    import numpy as np

    from ..store import Store

def md_escape(text: Any) -> str:
    """Text for a Markdown document or table cell, shown as written (escape.display: HTML tags,
    entities, inline links and table pipes escaped, line breaks and tabs spaces, control and
    bidirectional characters ?)."""
    return display(text, "markdown")


def terminal_text(text: Any) -> str:
    """A name as a terminal line: control characters (escape sequences, line breaks) and
    bidirectional overrides become ? (escape.display)."""
    return display(text, "terminal")


def pgr_text(m: dict) -> str:
    """PGR, or why it is undefined: which way the gap points (`metrics.gap_words`)."""
    p = PGR(**m["pgr_accuracy"])
    if p.value is not None:
        return str(p)
    g = m.get("gap_accuracy")
    return "undefined: " + (gap_words(g["value"], g["low"], g["high"]).split(":")[0] if g else "no clear gap")


def compact(e: dict[str, Any]) -> str:
    """An estimate in 19 characters: 0.596 [0.457,0.723]."""
    return f"{e['value']:.3f} [{e['low']:.3f},{e['high']:.3f}]"


def pgr_verdict(pgr: dict[str, Any], gap: Optional[dict[str, Any]], what: str = "the interval") -> str:
    """What a PGR with its interval means, in plain words (one line): a reliable gain, none, a
    loss, or why it is undefined (the one rule, `metrics.gap_defined`: the ceiling-weak gap's
    interval must lie above 0), saying which way the gap points."""
    if gap is not None and not gap_defined(gap["low"]):
        iv = f"{gap['value']:+.3f} [{gap['low']:+.3f}, {gap['high']:+.3f}]"
        if gap["high"] < 0:
            return (f"PGR undefined: the weak supervisor beats the ceiling (gap {iv}, below 0), so "
                    "there is no gap to recover")
        way = "above" if gap["value"] > 0 else "below" if gap["value"] < 0 else "level with"
        by = f" by {gap['value']:+.3f}" if gap["value"] else ""
        return (f"PGR undefined: the ceiling is {way} the weak supervisor{by}, "
                f"but the gap's interval [{gap['low']:+.3f}, {gap['high']:+.3f}] includes 0 "
                "(no real gap to recover)")
    if pgr.get("value") is None:
        return f"PGR undefined: {pgr.get('reason') or 'no ceiling-weak gap was measured'}"
    lo, hi = pgr["low"], pgr["high"]
    if lo > 1:
        return f"the student beats the ceiling: {what} lies above 1"
    if lo > 0:
        return f"a reliable gain: {what} lies above 0 (the student recovers part of the gap)"
    if hi < 0:
        return f"a reliable loss: {what} lies below 0 (the student is worse than its supervisor)"
    return f"no reliable gain: {what} includes 0"


TABLE_WIDTH = 100  # terminal tables fit this many columns; labels go on lines of their own


def classification_table(runs: list[dict[str, Any]]) -> str:
    """One row per weak-to-strong classification run, then a line per run with what it is and
    what its PGR says in plain words."""
    head = ("run", "weak", "student", "ceiling", "PGR (accuracy)", "agree|wrong")
    rows = [head]
    for r in runs:
        m = r["metrics"]
        p = PGR(**m["pgr_accuracy"])
        rows.append((str(r["id"]), compact(m["weak_accuracy"]), compact(m["student_accuracy"]),
                     compact(m["ceiling_accuracy"]), "undefined" if p.value is None else
                     f"{p.value:.2f} [{p.low:.2f},{p.high:.2f}]", f"{m['agreement_on_weak_errors']:.2f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if runs:
        lines += textwrap.wrap(
            f"test accuracy, {runs[0]['metrics']['confidence']:.0%} bootstrap intervals "
            f"({runs[0]['metrics']['bootstrap']} resamples of the test set); agree|wrong: how often "
            "the student agrees with the weak labels where they are wrong", TABLE_WIDTH)
    for r in runs:
        m = r["metrics"]
        lines += textwrap.wrap(f"run {r['id']}: {label(r)}", TABLE_WIDTH, subsequent_indent="    ")
        lines += textwrap.wrap(pgr_verdict(m["pgr_accuracy"], m.get("gap_accuracy"), "its interval"),
                               TABLE_WIDTH, initial_indent="  ", subsequent_indent="    ")
        if "zero_shot" in m:  # eval.zero_shot
            z = m["zero_shot"]
            lines.append(f"  zero-shot {terminal_text(z['model'])}: {compact(z['accuracy'])}")
    return "\n".join(lines)


def method_summary(metrics: dict[str, Any]) -> str:
    """One line per extra number a method reported (rungs, relabelled-label accuracy, ...)."""
    rep = {k: v for k, v in metrics.get("method", {}).items() if k != "name"}
    nested = {k: rep.pop(k) for k in [k for k, v in rep.items() if isinstance(v, dict)]}
    m = metrics.get("misfit")
    lines = [f"method {metrics.get('method', {}).get('name', 'naive')}: "
             + ", ".join(f"{k}={short(v)}" for k, v in rep.items())] if rep else []
    for k, d in nested.items():  # e.g. icl_refine's prompting baselines: one line of their own
        lines.append(f"  {k}: " + ", ".join(f"{n}={short(v)}" for n, v in d.items()
                                            if not isinstance(v, dict)))  # not per-example records
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
        if not r["gap"]:  # the one rule (metrics.gap_defined): no number, the gap's direction
            pgr = f"undefined ({r.get('gap_text') or 'no clear gap'})"
        else:
            pgr = f"{r['median_pgr']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"
        if r.get("baseline") == "fixed" and r["gap"]:  # eval.pgr_baseline: fixed (the testbed's PGR)
            pgr += (f" +- {r['sd']:.2f}" if r.get("sd") is not None else "") + " (of means, fixed baselines)"
        method = r.get("method_label", r["method"]) + (" (DIAGNOSTIC, uses test labels)" if r["diagnostic"] else "")
        cells.append([str(r["task"])] + ([str(r.get("pair"))] if pairs else []) + [method]
                     + ([r.get("setting") or "-"] if settings else [])
                     + [str(len(r["seeds"])), f"{r['student_accuracy']:.3f}", pgr])
    return header, cells


def median_pgr_verdict(rows: list[dict[str, Any]]) -> str:
    """One line under the median-PGR table: how many rows gain reliably, how many do not."""
    if not rows:
        return ""
    gap = [r for r in rows if r["gap"]]
    gain = sum(r["low"] > 0 for r in gap)
    loss = sum(r["high"] < 0 for r in gap)
    flat = len(gap) - gain - loss
    parts = [f"{gain} of {len(rows)} rows gain reliably (interval above 0)"]
    if flat:
        parts.append(f"{flat} show no reliable gain (interval includes 0)")
    if loss:
        parts.append(f"{loss} lose (interval below 0)")
    below = sum("strong below weak" in (r.get("gap_text") or "") for r in rows if not r["gap"])
    if below:
        parts.append(f"{below} have the ceiling below the weak supervisor (PGR undefined)")
    if len(rows) - len(gap) - below:
        parts.append(f"{len(rows) - len(gap) - below} have no clear ceiling-weak gap, its interval "
                     "holding 0 (PGR undefined)")
    return "reading: " + "; ".join(parts)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(map(md_escape, header)) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(map(md_escape, row)) + " |" for row in rows])


def fit_table(header: list[str], rows: list[list[str]], width: int = TABLE_WIDTH) -> list[str]:
    """Aligned columns under an underlined header, in at most `width` columns where the number
    of columns allows: headers wrap first, then the widest columns are narrowed and their cells
    wrap onto more lines (a word longer than its column is broken)."""
    n = len(header)
    cells = [list(header), *[list(r) + [""] * (n - len(r)) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(n)]
    sep = 2 if n <= 6 else 1
    floor = [min(w, max(4, min(13, max((len(word) for r in cells for word in r[i].split()),
                                       default=0)))) for i, w in enumerate(widths)]
    data = [max([floor[i], *(len(r[i]) for r in cells[1:])]) for i in range(n)]
    for limit in (data, floor, [4] * n):  # headers wrap first, then the widest cells
        while sum(widths) + sep * (n - 1) > width:
            i = max(range(n), key=lambda j: widths[j] - limit[j])
            if widths[i] <= limit[i]:
                break
            widths[i] -= 1
    out = []
    for k, row in enumerate(cells):
        wrapped = [textwrap.wrap(c, widths[i], break_long_words=True) or [""] for i, c in enumerate(row)]
        for line in range(max(map(len, wrapped))):
            parts = [(w[line] if line < len(w) else "").ljust(widths[i]) for i, w in enumerate(wrapped)]
            out.append((" " * sep).join(parts).rstrip())
        if k == 0:
            out.append((" " * sep).join("-" * w for w in widths))
    return out


TABLE_ROW = re.compile(r"\|.*\|")
TABLE_RULE = re.compile(r"\|(\s*:?-+:?\s*\|)+")


def for_terminal(markdown: str, width: int = TABLE_WIDTH) -> str:
    """A Markdown fragment of the report as terminal lines of at most `width` columns: each
    table through `fit_table`, every other line wrapped."""
    out: list[str] = []
    table: list[list[str]] = []
    for line in [*markdown.splitlines(), ""]:
        if TABLE_ROW.fullmatch(line.strip()):
            if not TABLE_RULE.fullmatch(line.strip()):
                table.append([c.strip().replace("\\|", "|")
                              for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])])
            continue
        if table:
            out += fit_table(table[0], table[1:], width)
            table = []
        out += textwrap.wrap(line, width, subsequent_indent="  ", break_on_hyphens=False,
                             break_long_words=False) or [""]  # a path stays whole
    return "\n".join(out[:-1])


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
    for (task, _key), rs in sorted(groups.items()):
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
        # the suite's name for the variant where it gave one; kept on one line
        variant = md_escape(method_name(rs[0]).replace("\n", "\\n"))
        lines.append(f"| {md_escape(task)} | {variant} | {len(rs)} | " + " | ".join(cols)
                     + f" | {worse} of {len(rs)} (n={p[0]['n']}) |")
    return "\n".join(lines)


def natural_key(parts: tuple[str, ...]) -> tuple:
    """A sort key that orders the numbers inside strings by value: `k=2` before `k=16`."""
    return tuple(tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", p))
                 for p in parts)


def refined_gain(runs: list[dict[str, Any]]) -> str:
    """Refined minus weak label accuracy on transfer: the median over seeds, and in how many
    seeds its matched-pairs 95% interval (metrics.flip_difference, from the recorded flips)
    lies above 0; "-" for runs recorded before flips were."""
    import numpy as np

    found = [flips(r) for r in runs]
    diffs = [d for d in found if d is not None]
    if len(diffs) < len(found):
        return "-"
    above = sum(d["low"] > 0 for d in diffs)
    return f"{np.median([d['diff'] for d in diffs]):+.3f}; {above} of {len(diffs)}"


def flips(run: dict[str, Any]) -> Optional[dict[str, Any]]:
    """A relabelling run's refined minus weak label accuracy on transfer from its recorded flips
    (`metrics.flip_difference`), None for runs recorded before flips were."""
    m, n = run["metrics"]["method"], run["metrics"].get("split_sizes", {}).get("transfer")
    if "flips" not in m or "flips_correct" not in m or not n:
        return None
    right = int(m["flips_correct"])
    return flip_difference(right, int(m["flips"]) - right, int(n))


REFINEMENT_PAIR_COLUMNS = ["seed", "weak labels", "refined labels", "refined - weak [95% CI]", "McNemar p",
                           "student naive", "student icl_refine", "difference", "PGR naive -> icl_refine"]
MEAN_ROUNDS = 2000  # bootstrap resamples of the mean-over-seeds difference


def _is_refinement_or_naive(run: dict[str, Any]) -> bool:
    return method_of(run) == "naive" or is_icl_refine(run)


def _pgr_value(run: dict[str, Any]) -> str:
    """A run's PGR, or 'undefined (which way its gap points)' (`pgr_text`)."""
    v = run["metrics"]["pgr_accuracy"]["value"]
    return f"{v:.2f}" if v is not None else "undefined (" + pgr_text(run["metrics"]).split(": ", 1)[-1] + ")"


def _paired(store: Store, run: dict[str, Any], base: dict[str, Any]
            ) -> Optional[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """The stored predictions of an icl_refine run and its naive baseline, None where either has
    none; refuses a pair that was not scored on one test set or not with one supervisor."""
    import numpy as np

    loaded = shared_predictions(store, [run, base])
    if loaded is None:
        if run_predictions(store, run["id"]) is None or run_predictions(store, base["id"]) is None:
            return None
        raise W2SError(f"icl_refine run {run['id']} and naive run {base['id']} (same task, models, "
                       "settings and seed) were scored on different test examples, so their "
                       "students cannot be compared; rerun one of them")
    a, b = loaded
    if not np.array_equal(a["weak"], b["weak"]):
        raise W2SError(f"icl_refine run {run['id']} and naive run {base['id']} (same task, models, "
                       "settings and seed) have different weak predictions on test: they did not "
                       "share a weak supervisor, so the student difference is not paired; rerun one "
                       "of them")
    return a, b


def refinement_pairs_markdown(store: Store, runs: list[dict[str, Any]]) -> str:
    """icl_refine against naive, per seed: one section per (task, model pair, icl_refine variant,
    other settings) with a row per seed of the variant, paired with the naive run of the same
    unit and seed (`runs.seed_units`: same supervisor, ceiling and test set): refined minus weak
    label accuracy on transfer (matched-pairs 95% interval and exact McNemar p from the recorded
    flips, `metrics.flip_difference`), both students' test accuracy, their difference and the
    runs' PGR; then the mean over seeds of the student difference with a 95% bootstrap interval
    over test examples (the per-example difference averaged over seeds is what is resampled, so
    the interval covers test-set noise and the seeds show training noise). '' without
    icl_refine runs."""
    import numpy as np

    sections: dict[tuple[str, str, str, str], tuple[dict[Any, dict], dict[Any, dict]]] = {}
    for (task, pair, unit), by_method in seed_units(runs, _is_refinement_or_naive).items():
        for variant, by_seed in by_method.items():
            if variant != "naive":
                sections[(task, pair, variant, unit)] = (by_seed, by_method.get("naive", {}))
    if not sections:
        return ""
    keys = {k: group_key(next(iter(refined.values()))) for k, (refined, _) in sections.items()}
    settings = setting_labels({keys[k]: list(refined.values()) for k, (refined, _) in sections.items()})
    out = []
    for key, (refined, naive) in sorted(sections.items(), key=lambda kv: natural_key(kv[0])):
        task, pair, variant, _ = key
        first = next(iter(refined.values()))
        setting = settings.get(keys[key])
        head = (f"### {md_escape(task)}, {md_escape(pair)}, {md_escape(method_name(first))}"
                + (f" [{md_escape(setting)}]" if setting else "")
                + f", refiner {md_escape(short_name(first['metrics']['method'].get('lm', '?')))}")
        rows, diffs = [], []
        ids: Optional[np.ndarray] = None
        for seed in sorted(refined):
            r, base = refined[seed], naive.get(seed)
            m, f = r["metrics"]["method"], flips(r)
            cells = [str(seed), f"{m['weak_label_accuracy']:.3f}", f"{m['refined_label_accuracy']:.3f}",
                     "-" if f is None else f"{f['diff']:+.3f} [{f['low']:+.3f}, {f['high']:+.3f}]",
                     "-" if f is None else f"{f['p']:.1e}"]
            mine = f"{r['metrics']['student_accuracy']['value']:.3f}"
            if base is None:
                rows.append(cells + ["(no naive run with this seed)", mine, "-", f"- -> {_pgr_value(r)}"])
                continue
            loaded = _paired(store, r, base)
            if loaded is None:
                rows.append(cells + ["(no stored predictions)", mine, "-",
                                     f"{_pgr_value(base)} -> {_pgr_value(r)}"])
                continue
            a, b = loaded
            if ids is not None and not np.array_equal(ids, a["ids"]):
                raise W2SError(f"the seeds of {task}, {pair}, {variant} were scored on different "
                               f"test examples (run {r['id']} and an earlier seed's), so their "
                               "differences cannot be averaged per example")
            ids = a["ids"]
            y = a["labels"].astype(bool)
            ca, cb = (a["student"] > 0.5) == y, (b["student"] > 0.5) == y
            diffs.append(ca.astype(float) - cb.astype(float))
            rows.append(cells + [f"{cb.mean():.3f}", f"{ca.mean():.3f}", f"{ca.mean() - cb.mean():+.3f}",
                                 f"{_pgr_value(base)} -> {_pgr_value(r)}"])
        text = head + "\n\n" + markdown_table(REFINEMENT_PAIR_COLUMNS, rows)
        ci = mean_ci(np.mean(diffs, axis=0), seed=0, rounds=MEAN_ROUNDS) if diffs else None
        if ci is not None:
            est, lo, hi = ci
            better = sum(float(d.mean()) > 0 for d in diffs)
            text += (f"\n\nstudent icl_refine - naive, mean over {len(diffs)} seeds: {est:+.4f} "
                     f"[{lo:+.4f}, {hi:+.4f}] (95% bootstrap over {len(diffs[0])} test examples, "
                     f"{MEAN_ROUNDS} resamples); better in {better} of {len(diffs)} seeds")
        out.append(text)
    return "\n\n".join(out)


def label(run: dict[str, Any]) -> str:
    """A run in a few words, as the tables name it: task, models, train mode, method, seed."""
    c = run["config"]
    parts = [f"{short_name(c['weak_model'])}->{short_name(c['strong_model'])}", c["train"]["mode"],
             method_name(run), f"seed {c['seed']}"]
    text = terminal_text(f"{task_of(run)} [{', '.join(parts)}]")
    if c.get("method", {}).get("name") == "gt_early_stop":
        text += " DIAGNOSTIC: picks epochs with test labels"
    return text
