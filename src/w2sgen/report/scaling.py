"""The model-ladder figures, in the style of Burns et al. (2023), for stores with several pairs.

Every figure reads the medians over seeds of `tables.accuracy_table` (one resample of the shared
test set applied to every seed and model) or, for method differences, `paired_gain`:

- `plot_ladder`: student and ceiling accuracy against the strong model's size, one line per weak
  model (their Figure 3 analogue); the weak model's own accuracy as a dotted level;
- `plot_pgr_heatmap`: median PGR of one method per (weak, strong) pair, one panel per task;
- `plot_gain_vs_gap`: a method's PGR minus the baseline's against the ceiling - weak gap, with
  intervals (do confidence losses help most where the gap is large?);
- `plot_bootstrap_vs_direct`: along a ladder with an intermediate rung, the direct student, the
  bootstrapped one, the weak model and the ceiling;
- `plot_agreement_vs_size`: the student's agreement with its supervisor's errors against the
  strong model's size.

A model's size is its zoo parameter count (`models.MODELS`); a model outside the zoo is placed by
its ceiling accuracy instead, and the axis says so.
"""
from __future__ import annotations

import math
import re
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..store import Store
from .figures import COLOURS, _layout, _legend_and_save, _legend_right, _method_colours, _pyplot, _save
from .runs import method_of, seed_units, shared_predictions
from .tables import ratio, resample_index, resampled_accuracy

Rows = list[dict[str, Any]]


def model_size(name: str) -> Optional[float]:
    """Parameters of a zoo model ('17.2M' -> 1.72e7), None outside the zoo."""
    from ..models import MODELS

    if name not in MODELS:
        return None
    m = re.fullmatch(r"([\d.]+)\s*([KMB])", MODELS.get(name).params.strip())
    return float(m.group(1)) * {"K": 1e3, "M": 1e6, "B": 1e9}[m.group(2)] if m else None


def split_pair(pair: str) -> tuple[str, str]:
    """(weak, strong) of a `runs.pair_of` label, 'minilm-l3 -> mpnet-base (probe)'."""
    m = re.fullmatch(r"(.+?) -> (.+?)(?: \(.*\))?", pair)
    return (m.group(1), m.group(2)) if m else (pair, pair)


def ladder_models(rows: Rows) -> list[str]:
    """Every model of the pairs, weakest first: by size where every one has a zoo size, else by
    ceiling accuracy (weak-only models by their own accuracy)."""
    level: dict[str, list[float]] = {}
    for r in rows:
        weak, strong = split_pair(r["pair"])
        level.setdefault(weak, []).append(r["weak"][0])
        level.setdefault(strong, []).append(r["ceiling"][0])
    sizes = {m: model_size(m) for m in level}
    if all(s is not None for s in sizes.values()):
        return sorted(level, key=lambda m: (sizes[m], m))
    return sorted(level, key=lambda m: (float(np.median(level[m])), m))


def _x_axis(models: list[str]) -> tuple[dict[str, float], str, bool]:
    sizes = {m: model_size(m) for m in models}
    known = {m: s for m, s in sizes.items() if s is not None}
    if len(known) == len(models):
        return known, "strong model parameters", True
    return {m: float(i) for i, m in enumerate(models)}, "strong model (weakest to strongest)", False


def _panels(plt: Any, n: int, cols: int = 4, w: float = 3.2, h: float = 2.9) -> tuple[Any, Any]:
    cols = max(1, min(cols, n))
    nrows = (n + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(w * cols, h * nrows + 0.4), squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, axes


def _err(v: tuple) -> Optional[list[list[float]]]:
    if v[1] is None:
        return None
    return [[v[0] - v[1]], [v[2] - v[0]]]


def size_axis(ax: Any, xs: dict[str, float], strongs: list[str], log: bool, task: str, xlabel: str,
              ylabel: str) -> None:
    """A panel's strong-model axis (log size where sizes are known) and its labels."""
    if log:
        ax.set_xscale("log")
    ax.set_xticks([xs[m] for m in strongs], strongs, fontsize=9)
    ax.minorticks_off()
    ax.set_title(task, fontsize=10)
    ax.tick_params(labelsize=9)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)


def usable(rows: Rows) -> Rows:
    return [r for r in rows if not r["diagnostic"] and " -> " in r["pair"]]


def plot_ladder(rows: Rows, out: Path, methods: tuple[str, ...] = ("naive", "naive + logconf")
                ) -> Optional[Path]:
    """Student accuracy (solid: first method, dashed: the others) and strong-ceiling accuracy
    (black) against the strong model, one line per weak model, one panel per task."""
    rows = usable(rows)
    models = ladder_models(rows)
    if len({r["pair"] for r in rows}) < 2:
        return None
    plt = _pyplot()
    xs, xlabel, log = _x_axis(models)
    weak_colours = dict(zip(models, plt.get_cmap("viridis")(np.linspace(0.05, 0.8, len(models)))))
    tasks = sorted({r["task"] for r in rows})
    fig, axes = _panels(plt, len(tasks))
    for ax, task in zip(axes.flat, tasks):
        cell = [r for r in rows if r["task"] == task]
        ceiling: dict[str, tuple] = {}
        for r in cell:
            ceiling.setdefault(split_pair(r["pair"])[1], r["ceiling"])
        cs = sorted(ceiling, key=lambda m: xs[m])
        ax.errorbar([xs[m] for m in cs], [ceiling[m][0] for m in cs], color=COLOURS["ceiling"], marker="s",
                    ms=4, lw=1.4, label="strong ceiling",
                    yerr=None if any(ceiling[m][1] is None for m in cs) else
                    np.array([[ceiling[m][0] - ceiling[m][1] for m in cs], [ceiling[m][2] - ceiling[m][0] for m in cs]]))
        for weak in models:
            mine = [r for r in cell if split_pair(r["pair"])[0] == weak]
            if not mine:
                continue
            colour = weak_colours[weak]
            ax.axhline(mine[0]["weak"][0], color=colour, ls=":", lw=0.9)
            for k, method in enumerate(methods):
                pts = sorted((r for r in mine if r["method_family"] == method), key=lambda r: xs[split_pair(r["pair"])[1]])
                if not pts:
                    continue
                px = [xs[split_pair(r["pair"])[1]] for r in pts]
                ax.errorbar(px, [r["student"][0] for r in pts], color=colour, marker="o", ms=3.5,
                            ls="-" if k == 0 else "--", lw=1.1, capsize=2,
                            yerr=None if any(r["student"][1] is None for r in pts) else np.array(
                                [[r["student"][0] - r["student"][1] for r in pts],
                                 [r["student"][2] - r["student"][0] for r in pts]]),
                            label=f"weak {weak}: {method} student")
        size_axis(ax, xs, cs, log, task, xlabel, "test accuracy")
    return _legend_and_save(fig, axes, out, plt)


def plot_pgr_heatmap(pgr_rows: dict[str, Rows], out: Path, method: str = "naive") -> Optional[Path]:
    """Median PGR of `method` for each (weak, strong) pair, one panel per task; `pgr_rows` maps a
    pair label to its `tables.median_pgr_table` rows. Cells whose gap is not real (the one rule,
    `metrics.gap_defined`) are left blank, marked undefined with the way their gap points."""
    cells: dict[str, dict[tuple[str, str], dict]] = {}
    for pair, rows in pgr_rows.items():
        if " -> " not in pair:
            continue
        for r in rows:
            if r["method"] == method:
                cells.setdefault(r["task"], {})[split_pair(pair)] = r
    if not cells or len({p for c in cells.values() for p in c}) < 2:
        return None
    plt = _pyplot()
    models_all = {m for c in cells.values() for p in c for m in p}
    xs, _, _ = _x_axis(sorted(models_all))  # by size where every size is known, else by name
    order = sorted(models_all, key=lambda m: (xs[m], m))
    weaks = [m for m in order if any(p[0] == m for c in cells.values() for p in c)]
    strongs = [m for m in order if any(p[1] == m for c in cells.values() for p in c)]
    fig, axes = _panels(plt, len(cells), w=0.9 + 1.0 * len(strongs), h=0.9 + 0.75 * len(weaks))
    cmap = plt.get_cmap("RdBu")
    for ax, task in zip(axes.flat, sorted(cells)):
        grid = np.full((len(weaks), len(strongs)), np.nan)
        for (w, s), r in cells[task].items():
            grid[weaks.index(w), strongs.index(s)] = r["median_pgr"]
        ax.imshow(np.clip(grid, -1, 1), cmap=cmap, vmin=-1, vmax=1, aspect="auto")
        for (w, s), r in cells[task].items():
            i, j = weaks.index(w), strongs.index(s)
            text = (f"{r['median_pgr']:.2f}\n[{r['low']:.2f}, {r['high']:.2f}]" if r["gap"]
                    else "undefined\n" + (r.get("gap_text") or "no clear gap").split(":")[0])
            ax.text(j, i, text, ha="center", va="center", fontsize=9)
        ax.set_xticks(range(len(strongs)), strongs, fontsize=9)
        ax.set_yticks(range(len(weaks)), weaks, fontsize=9)
        ax.set_xlabel("strong", fontsize=9)
        ax.set_ylabel("weak", fontsize=9)
        ax.set_title(f"{task}: {method}", fontsize=10)
    _layout(fig)
    return _save(fig, out, plt)


def paired_gain(store: Store, runs: list[dict[str, Any]], method: str, baseline: str = "naive",
                rounds: int = 1000, confidence: float = 0.95) -> Rows:
    """Per (task, pair, unit): medians over seeds, each with a percentile-bootstrap interval over
    the shared test set (one resample for every seed), of the ceiling - weak gap, of the gain on
    the accuracy scale (student accuracy of `method` minus `baseline`'s, same seed = same
    supervisor and ceiling, so paired) and of the gain on the PGR scale (PGR(method) -
    PGR(baseline) = accuracy gain / gap: NaN, with `pgr_defined` False, where the gap's interval
    does not lie above 0, `metrics.gap_defined`). `student`: the strong model and train mode,
    what a comparison across pairs must hold fixed."""
    from ..metrics import gap_defined

    groups = seed_units(runs, lambda r: method_of(r) in (method, baseline))
    a = (1 - confidence) / 2
    out = []
    nan = float("nan")
    for (task, pair, _), by_method in sorted(groups.items()):
        seeds = sorted(set(by_method.get(method, {})) & set(by_method.get(baseline, {})))
        if not seeds:
            continue
        keys = [(m, s) for m in (method, baseline) for s in seeds]
        loaded = shared_predictions(store, [by_method[m][s] for m, s in keys])
        if loaded is None:
            continue
        preds = dict(zip(keys, loaded))
        y = loaded[0]["labels"].astype(bool)
        idx = resample_index(len(y), rounds)
        gains, acc_gains, gaps = [], [], []
        for s in seeds:
            pm, pb = preds[(method, s)], preds[(baseline, s)]
            acc = {k: resampled_accuracy(pb[k], y, idx) for k in ("weak", "ceiling", "student")}
            gap = acc["ceiling"] - acc["weak"]
            acc_gains.append(resampled_accuracy(pm["student"], y, idx) - acc["student"])
            gains.append(ratio(acc_gains[-1], gap))
            gaps.append(gap)
        c = by_method[baseline][seeds[0]]["config"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            gain, gap = np.nanmedian(np.vstack(gains), 0), np.median(np.vstack(gaps), 0)
            acc_gain = np.median(np.vstack(acc_gains), 0)
            gap_lo, gap_hi = np.quantile(gap[1:], [a, 1 - a])
            defined = gap_defined(gap_lo)
            out.append({"task": task, "pair": pair, "seeds": seeds,
                        "student": f"{c['strong_model']} ({c['train']['mode']})", "pgr_defined": defined,
                        "gain": float(gain[0]) if defined else nan,
                        "gain_low": float(np.nanquantile(gain[1:], a)) if defined else nan,
                        "gain_high": float(np.nanquantile(gain[1:], 1 - a)) if defined else nan,
                        "acc_gain": float(acc_gain[0]), "acc_gain_low": float(np.quantile(acc_gain[1:], a)),
                        "acc_gain_high": float(np.quantile(acc_gain[1:], 1 - a)),
                        "gap": float(gap[0]), "gap_low": float(gap_lo), "gap_high": float(gap_hi)})
    return out


def gain_correlations(gains: Rows, permutations: int = 10000, scale: str = "accuracy") -> Rows:
    """Gain against gap, one row per student (strong model and mode, held fixed within a row):
    the (task, pair) points, Spearman's rho of the gain with the ceiling - weak gap and its
    permutation p (NaN with fewer than 3 points). `scale`: `accuracy` (the difference in student
    accuracy, every point) or `pgr` (PGR(method) - PGR(baseline), only the points whose PGR is
    defined under the one rule, `metrics.gap_defined`)."""
    key = "acc_gain" if scale == "accuracy" else "gain"
    if scale != "accuracy":
        gains = [g for g in gains if g["pgr_defined"]]
    out = []
    for student in sorted({g["student"] for g in gains}):
        pts = [g for g in gains if g["student"] == student]
        rho, p = rank_correlation([g["gap"] for g in pts], [g[key] for g in pts], permutations)
        out.append({"student": student, "points": len(pts), "rho": rho, "p": p})
    return out


def rank_correlation(x: list[float], y: list[float], permutations: int = 10000, seed: int = 0
                     ) -> tuple[float, float]:
    """Spearman's rho of x and y and its two-sided permutation p-value (numpy only); values that
    agree to 12 decimals count as ties."""
    from ..metrics import average_ranks

    if len(x) < 3:
        return math.nan, math.nan
    # values equal but for rounding (two accuracy differences of 8/400) tie
    rx, ry = (average_ranks(np.round(np.asarray(v, float), 12)) for v in (x, y))

    def rho(a: np.ndarray, b: np.ndarray) -> float:
        a, b = a - a.mean(), b - b.mean()
        d = math.sqrt(float((a * a).sum() * (b * b).sum()))
        return float((a * b).sum() / d) if d else math.nan

    r0 = rho(rx, ry)
    rng = np.random.default_rng(seed)
    perm = np.array([rho(rx, rng.permutation(ry)) for _ in range(permutations)])
    return r0, float((np.sum(np.abs(perm) >= abs(r0) - 1e-12) + 1) / (permutations + 1))


def plot_gain_vs_gap(gains: Rows, out: Path, method: str, baseline: str = "naive",
                     scale: str = "pgr") -> Optional[Path]:
    """The gain of `method` over `baseline` against the ceiling - weak gap, one point per (task,
    pair): on the PGR scale (PGR(method) - PGR(baseline); points whose PGR is undefined are left
    out) or, with scale="accuracy", as the difference in student accuracy (every point)."""
    if scale == "pgr":
        gains = [g for g in gains if g["pgr_defined"]]
    else:
        key = {"gain": "acc_gain", "gain_low": "acc_gain_low", "gain_high": "acc_gain_high"}
        gains = [{**g, **{k: g[v] for k, v in key.items()}} for g in gains]
    if len(gains) < 2:
        return None
    plt = _pyplot()
    tasks = sorted({g["task"] for g in gains})
    colours = _method_colours(tasks)
    markers = dict(zip(sorted({g["pair"] for g in gains}), "osD^v<>p*h"))
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    ax.axhline(0, color="#999", lw=0.8, ls="--")
    for g in gains:
        ax.errorbar(g["gap"], g["gain"], xerr=[[g["gap"] - g["gap_low"]], [g["gap_high"] - g["gap"]]],
                    yerr=[[g["gain"] - g["gain_low"]], [g["gain_high"] - g["gain"]]], fmt=markers[g["pair"]],
                    color=colours[g["task"]], ms=5, capsize=2, lw=0.8, label=f"{g['task']}")
    for pair, mk in markers.items():
        ax.scatter([], [], marker=mk, color="#555", label=pair)
    ax.set_xlabel("ceiling - weak accuracy gap (median over seeds)", fontsize=10)
    ax.set_ylabel(f"PGR({method}) - PGR({baseline})" if scale == "pgr"
                  else f"student accuracy: {method} - {baseline}", fontsize=10)
    ax.tick_params(labelsize=9)
    handles = dict(zip(*reversed(ax.get_legend_handles_labels())))
    _layout(fig)
    _legend_right(fig, list(handles.values()), list(handles.keys()))
    return _save(fig, out, plt)


def plot_bootstrap_vs_direct(rows: Rows, out: Path, method: str = "bootstrap", direct: str = "naive"
                             ) -> Optional[Path]:
    """For each pair where `method` ran: weak, direct student, bootstrapped student and ceiling
    accuracy, one group of bars per (task, pair), with intervals."""
    rows = usable(rows)
    boot = {(r["task"], r["pair"]): r for r in rows if r["method_family"] == method}
    dirs = {(r["task"], r["pair"]): r for r in rows if r["method_family"] == direct}
    keys = sorted(k for k in boot if k in dirs)
    if not keys:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.2 + 1.6 * len(keys), 3.4))
    bars = (("weak", "weak supervisor", COLOURS["weak"], dirs), ("student", f"{direct} student", "#2f6fba", dirs),
            ("student", f"{method} student", "#c0504d", boot), ("ceiling", "strong ceiling", COLOURS["ceiling"], dirs))
    lows = []
    for j, (field_, name, colour, source) in enumerate(bars):
        for i, k in enumerate(keys):
            v = source[k][field_]
            lows.append(v[1] if v[1] is not None else v[0])
            ax.bar(i + (j - 1.5) * 0.2, v[0], width=0.19, color=colour, yerr=_err(v), capsize=2,
                   label=name if i == 0 else None)
    ax.set_xticks(range(len(keys)), [f"{t}\n{' -> '.join(split_pair(p))}" for t, p in keys], fontsize=9)
    ax.set_ylim(max(0.0, min(lows) - 0.05), 1.0)
    ax.set_ylabel("test accuracy (median over seeds)", fontsize=10)
    ax.tick_params(labelsize=9)
    _layout(fig)
    h, lab = ax.get_legend_handles_labels()
    _legend_right(fig, h, lab)
    return _save(fig, out, plt)


def plot_agreement_vs_size(rows: Rows, out: Path, method: str = "naive") -> Optional[Path]:
    """The `method` student's agreement with its supervisor on the supervisor's test errors
    against the strong model, one line per weak model, one panel per task."""
    rows = [r for r in usable(rows) if r["method_family"] == method and np.isfinite(r["agreement_on_weak_errors"])]
    if len({r["pair"] for r in rows}) < 2:
        return None
    plt = _pyplot()
    models = ladder_models(rows)
    xs, xlabel, log = _x_axis(models)
    weak_colours = dict(zip(models, plt.get_cmap("viridis")(np.linspace(0.05, 0.8, len(models)))))
    tasks = sorted({r["task"] for r in rows})
    fig, axes = _panels(plt, len(tasks))
    for ax, task in zip(axes.flat, tasks):
        for weak in models:
            pts = sorted((r for r in rows if r["task"] == task and split_pair(r["pair"])[0] == weak),
                         key=lambda r: xs[split_pair(r["pair"])[1]])
            if pts:
                ax.plot([xs[split_pair(r["pair"])[1]] for r in pts], [r["agreement_on_weak_errors"] for r in pts],
                        marker="o", ms=4, color=weak_colours[weak], label=f"weak {weak}")
        strongs = sorted({split_pair(r["pair"])[1] for r in rows}, key=lambda m: xs[m])
        size_axis(ax, xs, strongs, log, task, xlabel, "agreement on weak errors")
        ax.set_ylim(0, 1)
    return _legend_and_save(fig, axes, out, plt)
