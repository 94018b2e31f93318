"""`w2s report --ladder`: the trend along a model ladder, Burns et al.'s Figure 3 offline.

For each weak model (and train mode and method), the strong model's size against: student and
ceiling accuracy, PGR, and the confidence loss's gain over naive (student accuracy of the
method minus naive's, same seed: same supervisor and ceiling). Every value is the median over
seeds, with a percentile-bootstrap interval over the test set (one resample for every seed,
model and pair of a task: `tables.resample_index`).

Two trend statistics per weak model, task and measure, reported apart because they answer
different questions:
- within a family: the slope against log10(parameters) over strong models of one family
  (`ZooEntry.family`: one training recipe at several sizes), where only size changes;
- across families: the same slope over every strong model, where size and family change
  together.
A slope is per decade of parameters; its interval comes from the same resamples (the points
share the test set), so it is paired across pairs. A PGR slope needs every point's gap
interval above 0 (`metrics.gap_defined`). Pairs whose weak and strong model are of one family
(the only steps that change size alone) are marked in the figures with filled markers.
"""
from __future__ import annotations

import math
import textwrap
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..metrics import gap_defined
from ..plotting import pyplot, save
from ..store import Store
from .runs import seed_units, shared_predictions
from .scaling import model_size
from .tables import ratio, resample_index, resampled_accuracy
from .text import markdown_table

Rows = list[dict[str, Any]]
BASELINE = "naive"
MEASURES = {"pgr": "PGR", "gain": f"student accuracy minus {BASELINE}'s"}
MARKERS = "osD^vP*X"


def family_of(name: str) -> str:
    """A model's family (`ZooEntry.family`); a model outside the zoo, or without one, is its own."""
    from ..models import MODELS

    return (MODELS.get(name).family or name) if name in MODELS else name


def short(name: str) -> str:
    """A zoo name without the variant words tables do not need ('qwen2.5-coder-1.5b-instruct'
    -> 'qwen2.5-1.5b')."""
    return name.replace("-coder", "").replace("-instruct", "")


def points(store: Store, runs: list[dict[str, Any]], rounds: int = 1000, confidence: float = 0.95) -> Rows:
    """One row per (task, weak, strong, train mode, method) whose strong model has a zoo size:
    the per-resample medians over seeds (`arrays`: row 0 the full test set) of weak, student and
    ceiling accuracy, PGR (NaN unless `pgr_defined`) and, for a method other than naive with
    naive runs of the same seeds, its gain over naive."""
    units = seed_units(runs, lambda r: True)
    out: Rows = []
    for (task, _, _), by_method in sorted(units.items()):
        first = next(iter(next(iter(by_method.values())).values()))["config"]
        weak, strong, mode = first["weak_model"], first["strong_model"], first["train"]["mode"]
        size = model_size(strong)
        if size is None:
            continue
        acc: dict[str, dict[int, dict[str, np.ndarray]]] = {}
        test = ""
        for method, by_seed in by_method.items():
            seeds = sorted(by_seed)
            preds = shared_predictions(store, [by_seed[s] for s in seeds])
            if preds is None:
                continue
            y = preds[0]["labels"].astype(bool)
            test = preds[0]["ids"].tobytes().hex()[:64] + str(len(y))
            idx = resample_index(len(y), rounds)
            acc[method] = {s: {k: resampled_accuracy(p[k], y, idx) for k in ("weak", "student", "ceiling")}
                           for s, p in zip(seeds, preds)}
        for method, per_seed in acc.items():
            seeds = sorted(per_seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = {k: np.median(np.vstack([per_seed[s][k] for s in seeds]), 0)
                       for k in ("weak", "student", "ceiling")}
                gap = np.median(np.vstack([per_seed[s]["ceiling"] - per_seed[s]["weak"] for s in seeds]), 0)
                pgr = np.nanmedian(np.vstack([ratio(per_seed[s]["student"] - per_seed[s]["weak"],
                                                    per_seed[s]["ceiling"] - per_seed[s]["weak"])
                                              for s in seeds]), 0)
            defined = gap_defined(float(np.quantile(gap[1:], (1 - confidence) / 2)))
            arrays = {**med, "gap": gap, "pgr": pgr if defined else np.full_like(pgr, np.nan)}
            paired = sorted(set(seeds) & set(acc.get(BASELINE, {}))) if method != BASELINE else []
            if paired:
                arrays["gain"] = np.median(np.vstack([per_seed[s]["student"] - acc[BASELINE][s]["student"]
                                                      for s in paired]), 0)
            out.append({"task": task, "weak": weak, "strong": strong, "mode": mode, "method": method,
                        "seeds": seeds, "size": size, "family": family_of(strong),
                        "same_family": family_of(weak) == family_of(strong), "test": test,
                        "pgr_defined": defined, "arrays": arrays})
    return out


def interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """(row 0, percentile interval over the resamples); NaNs when row 0 is NaN."""
    a = (1 - confidence) / 2
    if not np.isfinite(values[0]):
        return math.nan, math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanquantile(values[1:], [a, 1 - a])
    return float(values[0]), float(lo), float(hi)


def slope(pts: Rows, measure: str, confidence: float = 0.95) -> Optional[tuple[float, float, float]]:
    """The least-squares slope of `measure` against log10(strong parameters) over `pts`, with its
    interval over the shared resamples; None with fewer than two sizes or an undefined point."""
    if len({p["size"] for p in pts}) < 2 or any(measure not in p["arrays"] for p in pts):
        return None
    y = np.vstack([p["arrays"][measure] for p in pts])
    if not np.isfinite(y[:, 0]).all():
        return None
    x = np.log10([p["size"] for p in pts])
    x = x - x.mean()
    return interval((x @ y) / (x @ x), confidence)


def trends(pts: Rows, confidence: float = 0.95) -> Rows:
    """Per (task, weak, train mode, method, test set) and measure: the slope within each strong
    family that has two sizes or more, and the slope across every strong model."""
    series: dict[tuple, Rows] = {}
    for p in pts:
        series.setdefault((p["task"], p["weak"], p["mode"], p["method"], p["test"]), []).append(p)
    out: Rows = []
    for (task, weak, mode, method, _), ps in sorted(series.items()):
        for measure in MEASURES:
            if measure == "gain" and method == BASELINE:
                continue
            base = {"task": task, "weak": weak, "mode": mode, "method": method, "measure": measure}
            for family in sorted({p["family"] for p in ps}):
                mine = [p for p in ps if p["family"] == family]
                if len({p["size"] for p in mine}) >= 2:
                    out.append({**base, "scope": f"within {family}", "strongs": [p["strong"] for p in mine],
                                "slope": slope(mine, measure, confidence)})
            if len({p["family"] for p in ps}) >= 2:
                out.append({**base, "scope": "across families", "strongs": [p["strong"] for p in ps],
                            "slope": slope(ps, measure, confidence)})
    return out


def _iv(v: tuple[float, float, float], digits: int = 2, sign: bool = False) -> str:
    if not np.isfinite(v[0]):
        return "undefined"
    f = f"{{:{'+' if sign else ''}.{digits}f}}"
    return f"{f.format(v[0])} [{f.format(v[1])}, {f.format(v[2])}]"


def method_label(method: str) -> str:
    """A method as the ladder's tables name it: a loss over naive by the loss ('logconf')."""
    return method.removeprefix(f"{BASELINE} + ")


def text(pts: Rows, trend_rows: Rows, confidence: float = 0.95) -> str:
    """Per task and train mode, the points (medians over seeds with intervals) and the trend
    slopes, as Markdown tables that fit 100 columns; model names shortened (`short`), `*` marks
    a pair within one family."""
    parts = [textwrap.fill(f"Along the ladder: medians over seeds, {confidence:.0%} bootstrap intervals over the "
             "test set; `*`: weak and strong of one family; PGR undefined where the gap's interval "
             "holds 0. Slopes are per decade of strong-model parameters: within a family size alone "
             "changes, across families size and family change together.", 100)]
    for task, mode in sorted({(p["task"], p["mode"]) for p in pts}):
        here = sorted((p for p in pts if (p["task"], p["mode"]) == (task, mode)),
                      key=lambda p: (p["method"] != BASELINE, p["method"], p["weak"], p["size"]))
        rows = [[f"{short(p['weak'])} -> {short(p['strong'])}{'*' if p['same_family'] else ''}",
                 method_label(p["method"]), f"{p['arrays']['ceiling'][0]:.3f}",
                 _iv(interval(p["arrays"]["student"], confidence), 3),
                 _iv(interval(p["arrays"]["pgr"], confidence))] for p in here]
        parts += [f"{task}, train.mode={mode}:",
                  markdown_table(["pair", "method", "ceiling", "student", "PGR"], rows)]
        srows = [[short(t["weak"]), method_label(t["method"]),
                  "PGR" if t["measure"] == "pgr" else f"- {BASELINE}", t["scope"],
                  "undefined" if t["slope"] is None else _iv(t["slope"], 3, sign=True)]
                 for t in trend_rows if (t["task"], t["mode"]) == (task, mode)]
        if srows:
            parts.append(markdown_table(["weak", "method", "measure", "over", "slope per decade"], srows))
    return "\n\n".join(parts)


def figures(pts: Rows, out_dir: Path, confidence: float = 0.95) -> list[Path]:
    """Per train mode: `ladder-accuracy`, `ladder-pgr` and `ladder-gain` (PNG with SVG beside)
    in `out_dir`, one panel per task, one colour per weak model, one marker per strong family
    (filled: a pair within one family), lines joining the sizes of one family only."""
    drawn = []
    modes = sorted({p["mode"] for p in pts})
    for mode in modes:
        mine = [p for p in pts if p["mode"] == mode]
        suffix = "" if len(modes) == 1 else f"-{mode}"
        for name, measure, ylabel in (("accuracy", "student", "test accuracy"), ("pgr", "pgr", "PGR"),
                                      ("gain", "gain", f"student accuracy: method - {BASELINE}")):
            path = _figure(mine, measure, ylabel, out_dir / f"ladder-{name}{suffix}.png", confidence)
            if path is not None:
                drawn.append(path)
    return drawn


def _figure(pts: Rows, measure: str, ylabel: str, out: Path, confidence: float) -> Optional[Path]:
    pts = [p for p in pts if measure in p["arrays"]]
    if len({p["strong"] for p in pts}) < 2:
        return None
    plt = pyplot()
    tasks = sorted({p["task"] for p in pts})
    weaks = sorted({p["weak"] for p in pts}, key=lambda w: (model_size(w) or 0, w))
    families = sorted({p["family"] for p in pts})
    methods = sorted({p["method"] for p in pts}, key=lambda m: (m != BASELINE, m))
    colours = dict(zip(weaks, plt.get_cmap("viridis")(np.linspace(0.05, 0.8, len(weaks)))))
    marker = dict(zip(families, MARKERS))
    cols = min(3, len(tasks))
    rows = (len(tasks) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.9 * rows), squeeze=False)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    for ax, task in zip(axes.flat, tasks):
        here = [p for p in pts if p["task"] == task]
        if measure == "student":  # the ceiling: one per strong model
            for p in sorted({p["strong"]: p for p in here}.values(), key=lambda p: p["size"]):
                v = interval(p["arrays"]["ceiling"], confidence)
                ax.errorbar([p["size"]], [v[0]], yerr=[[v[0] - v[1]], [v[2] - v[0]]], color="black",
                            marker=marker[p["family"]], mfc="white", ms=7, capsize=2, lw=1, ls="none",
                            label="strong ceiling")
        if measure == "gain":
            ax.axhline(0, color="#999", lw=0.8, ls="--")
        for j, (weak, (k, method)) in enumerate((w, km) for w in weaks for km in enumerate(methods)):
            dodge = 10 ** (0.012 * (j - (len(weaks) * len(methods) - 1) / 2))  # points side by side
            series = sorted((p for p in here if p["weak"] == weak and p["method"] == method),
                            key=lambda p: p["size"])
            for family in families:  # lines only within a family: there size alone changes
                fam = [p for p in series if p["family"] == family]
                vals = [interval(p["arrays"][measure], confidence) for p in fam]
                ok = [(p, v) for p, v in zip(fam, vals) if np.isfinite(v[0])]
                if not ok:
                    continue
                ax.plot([p["size"] * dodge for p, _ in ok], [v[0] for _, v in ok], color=colours[weak],
                        ls="-" if k == 0 else "--", lw=1.2,
                        label=f"weak {short(weak)}, {method_label(method)}")
                for p, v in ok:
                    ax.errorbar([p["size"] * dodge], [v[0]], yerr=[[v[0] - v[1]], [v[2] - v[0]]],
                                color=colours[weak], marker=marker[family], ms=6, capsize=2, lw=0.9,
                                mfc=colours[weak] if p["same_family"] else "white", ls="none")
        ax.set_xscale("log")
        strongs = sorted({p["strong"]: p["size"] for p in here}.items(), key=lambda kv: kv[1])
        ax.set_xticks([s for _, s in strongs], [short(n) for n, _ in strongs], rotation=30, ha="right")
        ax.minorticks_off()
        ax.set_title(task)
        ax.set_xlabel("strong model (log parameters)")
        ax.set_ylabel(ylabel)
    for family in families:
        axes.flat[0].plot([], [], ls="none", marker=marker[family], color="#555", mfc="white",
                          label=f"strong family {family}")
    axes.flat[0].plot([], [], ls="none", marker="o", color="#555", label="filled: weak of the same family")
    handles = {h.get_label(): h for ax in axes.flat for h in ax.get_legend_handles_labels()[0]}
    fig.tight_layout()
    fig.legend(list(handles.values()), list(handles.keys()), loc="center left", bbox_to_anchor=(1.0, 0.5),
               frameon=False)
    return save(fig, out, plt)


def command_text(store: Store, runs: list[dict[str, Any]], out_dir: Path, rounds: int = 1000) -> str:
    """`w2s report --ladder`: the tables, and the figures written to `out_dir`."""
    pts = points(store, runs, rounds)
    if len({p["strong"] for p in pts}) < 2:
        return ("no ladder: --ladder needs runs with stored predictions of two or more strong zoo "
                "models")
    drawn = figures(pts, out_dir)
    return text(pts, trends(pts)) + "\n\nfigures (SVG beside each): " + ", ".join(map(str, drawn))
