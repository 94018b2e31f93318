"""The results of `w2s generate` runs as text: one table per run, and the paper's bar.

The bar (Somerstep et al.): true weak-to-strong alignment means the aligned student adopts the
target behaviour *and* is not worse than the unaltered strong model on content. For each
student the report gives the paired difference in judged content (and in exact match, for
maths) against the unaltered strong model over the same eval questions, with its bootstrap
interval, and says "worse" only when the whole interval lies below 0.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..escape import sanitize_figure
from ..plotting import pyplot, save


def is_generative(run: dict[str, Any]) -> bool:
    return (run.get("config") or {}).get("kind") == "generative"


def _ci(v: list | None, fmt: str = "{:.2f}") -> str:
    if not v:
        return "-"
    return f"{fmt.format(v[0])} [{fmt.format(v[1])}, {fmt.format(v[2])}]"


def _diff(d: dict | None, fmt: str = "{:+.2f}") -> str:
    if not d:
        return "-"
    return _ci(d["diff"], fmt)


def _grid(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def bar_lines(m: dict[str, Any]) -> list[str]:
    """Is each aligned student worse than the unaltered strong model on content?"""
    out = []
    for name, s in m["systems"].items():
        if not name.startswith("student:"):
            continue
        parts = []
        for key, what in (("content", "judged content"), ("exact_match", "exact match"),
                          ("reference", "reference mention (proxy)")):
            d = (s.get("vs_strong") or {}).get(key)
            if d:
                verdict = "WORSE" if d["worse"] else "better" if d["better"] else "not worse (interval includes 0)"
                parts.append(f"{what} {_diff(d)} (n={d['n']}): {verdict}")
        out.append(f"  {name[len('student:'):]}: " + ("; ".join(parts) if parts else
                                                      "no content measure (no judge, no reference)"))
    return out


def run_text(run: dict[str, Any]) -> str:
    m, c = run["metrics"], run["config"]
    j = m.get("judge")
    head = (f"run {run['id']}: {c['task']['name']} ({m['behaviour']}), weak {m['weak_model']} "
            f"(prompted with the behaviour) -> strong {m['strong_model']}; {m['n_train']} train / "
            f"{m['n_eval']} eval questions; judge: "
            + (f"{j['model']}, prompt {j['prompt']}, {j['samples']} sample(s) at T={j['temperature']}" if j else "none"))
    rows = [("system", "content (1-10)", "style (1-10)", "marker rate", "exact match", "mentions ref.",
             "words", "content - strong", "judge missing")]
    for name, s in m["systems"].items():
        vs = s.get("vs_strong") or {}
        missing = "-" if "content" not in s else f"{s['content_missing']}/{s['style_missing']} of {s['n']}"
        rows.append((name, _ci(s.get("content")), _ci(s.get("style")), _ci(s.get("marker_rate")),
                     _ci(s.get("exact_match")), _ci(s.get("reference_mention")), f"{s['mean_words']:.0f}",
                     _diff(vs.get("content")), missing))
    lines = [head, *_grid(rows)]
    for name, info in m["methods"].items():
        bits = []
        if info.get("targets_marker_rate") is not None:
            bits.append(f"targets' marker rate {info['targets_marker_rate']:.2f}")
        if info.get("targets_exact_match") is not None:
            bits.append(f"targets' exact match {info['targets_exact_match']:.2f}")
        if "sft_loss_before" in info:
            bits.append(f"SFT answer-token loss {info['sft_loss_before']:.2f} -> {info['sft_loss_after']:.2f}")
        if "training_file" in info:
            bits.append(f"endpoint: not fine-tuned here, training file {info['training_file']}")
        if info.get("styles"):
            bits.append(f"inferred style e.g. {info['styles'][0]!r}")
        lines.append(f"  method {name}: " + ", ".join(bits))
    if m.get("weak_train_marker_rate") is not None:
        lines.append(f"  weak answers on train: marker rate {m['weak_train_marker_rate']:.2f}")
    bar = bar_lines(m)
    if bar:
        lines += [("the paper's bar: is the aligned student worse than the unaltered strong model "
                   "on content? (paired bootstrap, 95%)"), *bar]
    lines.append("means with 95% bootstrap intervals over eval questions; mentions ref. = answers "
                 "containing the short reference answer (a content proxy); judge missing = answers "
                 "with no parseable content/style score")
    return "\n".join(lines)


def table(runs: list[dict[str, Any]]) -> str:
    return "\n\n".join(run_text(r) for r in runs if is_generative(r))


def seed_groups(runs: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Generative runs whose configs differ only in their seeds (`seed`, `questions.seed`),
    in groups of two or more (the newest run of each seed pair), oldest group first."""
    from ..spec import stable_hash

    groups: dict[str, dict[tuple, dict[str, Any]]] = {}
    for r in runs:
        if not is_generative(r):
            continue
        c = dict(r["config"])
        seeds = (c.pop("seed", 0), (c.get("questions") or {}).get("seed", 0))
        c["questions"] = {k: v for k, v in (c.get("questions") or {}).items() if k != "seed"}
        c.pop("store", None)
        groups.setdefault(stable_hash(c), {})[seeds] = r
    return [sorted(g.values(), key=lambda r: r["id"]) for g in groups.values() if len(g) > 1]


def _minus(scores: dict[str, list[Any]], name: str, other: str, seed: int) -> str:
    """A student's paired difference to another system on the same questions of each run,
    clustered by run (seeds resampled, then questions), or '-'."""
    from ..nested import clustered_paired_difference

    if other not in scores or name == other or not name.startswith("student:"):
        return "-"
    return _diff(clustered_paired_difference(scores[name], scores[other], seed))


def pooled_text(root: Path, runs: list[dict[str, Any]], seed: int = 0) -> str:
    """For each seed group (seed_groups): every system's automatic scores (exact match, marker
    rate, reference mention) per run and pooled over the runs (the mean of the runs' means), with
    a 95% bootstrap interval clustered by seed (`metrics.clustered_mean_ci`: runs resampled, then
    questions within each), and each student minus the unaltered strong model (the paper's bar)
    and minus the naive student, paired on the same questions and clustered the same way. Recomputed from each run's answers.jsonl, so runs
    recorded before this report existed pool too; judge scores are per run only (run_text)."""
    import json

    import numpy as np

    from ..nested import clustered_mean_ci
    from .pipeline import AUTOMATIC, automatic_scores
    from .tasks import GEN_TASKS

    blocks = []
    for group in seed_groups(runs):
        c = group[0]["config"]
        _, behaviour = GEN_TASKS.get(c["task"]["name"]).load(**c["task"].get("options", {}))
        per_run: list[dict[str, dict[str, np.ndarray]]] = []
        for r in group:
            rows: dict[str, list[tuple[str, str | None]]] = {}
            for line in (root / "artifacts" / str(r["id"]) / "answers.jsonl").read_text().splitlines():
                row = json.loads(line)
                rows.setdefault(row["system"], []).append((row["answer"], row["reference"]))
            per_run.append({name: automatic_scores([a for a, _ in v], [ref for _, ref in v], behaviour)
                            for name, v in rows.items()})
        systems = [n for n in per_run[0] if all(n in p for p in per_run)]
        keys = [k for k in AUTOMATIC if all(k in p[n] for p in per_run for n in systems)]
        n = sum(len(p["strong"][keys[0]]) for p in per_run) if keys and "strong" in systems else 0
        seeds = ", ".join(f"{r['config'].get('seed', 0)}/{(r['config'].get('questions') or {}).get('seed', 0)}"
                          for r in group)
        lines = [f"pooled over {len(group)} runs of {c.get('name', c['task']['name'])} (runs "
                 f"{', '.join(str(r['id']) for r in group)}; seed/questions.seed {seeds}; {n} eval "
                 "questions in all)"]
        for k in keys:
            head = ("system", *(f"run {r['id']}" for r in group), f"{AUTOMATIC[k]}, pooled",
                    "minus strong, pooled (paired)", "minus naive, pooled (paired)")
            table = [head]
            by_run = {name: [p[name][k] for p in per_run] for name in systems}
            for name in systems:
                table.append((name, *(f"{np.nanmean(p[name][k]):.2f}" for p in per_run),
                              _ci(clustered_mean_ci(by_run[name], seed)),
                              _minus(by_run, name, "strong", seed), _minus(by_run, name, "student:naive", seed)))
            lines += _grid(table)
        lines.append("pooled: mean over runs of each run's mean over its eval questions, with a 95% "
                     "bootstrap interval clustered by run: seeds resampled, then questions within "
                     "each (a run's questions share its seed's training order, demonstrations and "
                     f"question draw, so they are not independent); {len(group)} seeds bound how "
                     "narrow it can be")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def plot(runs: list[dict[str, Any]], out: Path, most: int = 4) -> Path | None:
    """Per run (the last `most`): judged content and style of every system (1-10), and the
    behaviour proxy (marker rate) or exact match (0-1), with 95% intervals."""
    runs = [r for r in runs if is_generative(r)][-most:]
    if not runs:
        return None
    import numpy as np

    plt = pyplot()

    fig, axes = plt.subplots(len(runs), 2, figsize=(11, 1.2 + 0.45 * max(len(r["metrics"]["systems"]) for r in runs) * len(runs)),
                             squeeze=False, gridspec_kw={"width_ratios": [3, 2]})
    for (ax1, ax2), r in zip(axes, runs):
        systems = r["metrics"]["systems"]
        names = list(systems)
        y = np.arange(len(names))
        for k, (key, colour) in enumerate((("content", "#2f6fba"), ("style", "#d08a2c"))):
            est = [systems[n].get(key) for n in names]
            v = np.array([e[0] if e else np.nan for e in est])
            err = np.array([[e[0] - e[1] if e else 0 for e in est], [e[2] - e[0] if e else 0 for e in est]])
            ax1.barh(y + (k - 0.5) * 0.38, v, height=0.36, xerr=err, color=colour, label=key, capsize=2)
        if not any(systems[n].get("content") or systems[n].get("style") for n in names):
            ax1.text(5, (len(names) - 1) / 2, "no parseable judge scores", ha="center", va="center",
                     color="#a33")
        ax1.set_yticks(y, names)
        ax1.invert_yaxis()
        ax1.set_xlim(0, 10.5)
        ax1.set_xlabel("judge score (1-10)")
        ax1.set_title(f"run {r['id']}: {r['config']['task']['name']} ({r['metrics']['behaviour']})")
        key = "exact_match" if any(systems[n].get("exact_match") for n in names) else "marker_rate"
        est = [systems[n].get(key) for n in names]
        v = np.array([e[0] if e else np.nan for e in est])
        err = np.array([[e[0] - e[1] if e else 0 for e in est], [e[2] - e[0] if e else 0 for e in est]])
        ax2.barh(y, v, xerr=err, color="#1b2a41", capsize=2)
        ax2.set_yticks(y, [""] * len(names))
        ax2.invert_yaxis()
        ax2.set_xlim(0, 1.05)
        ax2.set_xlabel(key.replace("_", " "))
    sanitize_figure(fig)  # a task or model name's `$...$` is not maths
    fig.tight_layout()
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1.0, 0.5),
               frameon=False)  # outside the bars
    return save(fig, out, plt, dpi=110)
