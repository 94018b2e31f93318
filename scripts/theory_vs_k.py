"""docs/refinement.md, 3.3, "Against the theory": the theory simulation's
prediction of how refinement improves with the number of demonstrations, beside the refined-label
accuracy measured at each k in a store of icl_refine runs (suites/refinement-qwen-k.yaml).

The two live on different scales (excess risk of a regression fit on Gaussian data against the
accuracy of binary labels), so what is compared is the *shape*: the share of the largest gain over
k=0 that has happened by each k. Theory: (mis(0) - mis(k)) / (mis(0) - mis(k_max)), with mis the
posterior mass off the target concept (section 1), for each simulated bias at noise tau=1, mean
over simulated seeds. Measured: (acc(k) - acc(0)) / (max over k of acc - acc(0)) of the refined labels,
per seed, with the mean and range over seeds. Also printed: each k's refined-minus-weak label accuracy
per seed (matched-pairs 95% interval, metrics.flip_difference) and the exponential rate fitted to
the measured error 1 - acc(k) next to the theory's fitted and closed-form rates.

Usage: python scripts/theory_vs_k.py STORE [--out docs/refinement-k-qwen.png] [--seeds 50]
"""
from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from w2sgen.report.runs import icl_runs, latest_done, task_of
from w2sgen.report.text import flips
from w2sgen.store import Store
from w2sgen.theory.experiments import fit_rate, run_sweep

BIASES = (0.5, 1.0, 2.0)


def spread(a: np.ndarray) -> np.ndarray:
    """Error bars from the mean down to the smallest and up to the largest value per column,
    clipped at 0 (equal values, e.g. k=0's prompt shared by every seed, round to -1e-17)."""
    mean = np.nanmean(a, 0)
    return np.maximum(0.0, np.vstack([mean - np.nanmin(a, 0), np.nanmax(a, 0) - mean]))


def measured(store: Store) -> dict[tuple[str, str], dict[int, dict[int, dict]]]:
    """(task, refiner) -> seed -> k -> the run's method metrics, with its refined - weak
    difference from the recorded flips under "flips" (report.text.flips)."""
    out: dict[tuple[str, str], dict[int, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    for r in icl_runs(latest_done(store)):
        m = {**r["metrics"]["method"], "flips": flips(r)}
        out[(task_of(r), m["lm"])][r["config"]["seed"]][int(m["k"])] = m
    return out


def share(values: np.ndarray) -> np.ndarray:
    """The share of the largest gain over the first point reached at each point (0 at the first,
    1 where the gain is largest)."""
    span = values.max() - values[0]
    return (values - values[0]) / span if span else np.full_like(values, np.nan)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store")
    ap.add_argument("--out", default="docs/refinement-k-qwen.png")
    ap.add_argument("--seeds", type=int, default=50, help="simulated seeds (default 50)")
    args = ap.parse_args()
    data = measured(Store(args.store))
    if not data:
        raise SystemExit(f"no icl_refine runs in {args.store}")
    ks = sorted({k for by_seed in data.values() for by_k in by_seed.values() for k in by_k})
    sim = run_sweep(ns=ks, biases=BIASES, taus=(1.0,), seeds=args.seeds)
    mis = sim.mean("misalign")[:, 0, :]  # bias x n
    lo, hi = (c[:, 0, :] for c in sim.ci("misalign"))
    rates = {(r["bias"], r["noise"]): r for r in sim.rates()}

    print(f"theory ({args.seeds} simulated seeds, tau = 1): mean misalignment [95% CI] by n")
    print("| bias | " + " | ".join(f"n={k}" for k in ks) + " | fitted rate | Chernoff rate |")
    print("|---|" + "---|" * (len(ks) + 2))
    for i, b in enumerate(BIASES):
        r = rates[(b, 1.0)]
        print(f"| {b} | " + " | ".join(f"{mis[i, j]:.3f} [{lo[i, j]:.3f}, {hi[i, j]:.3f}]"
                                       for j in range(len(ks)))
              + f" | {r['fit_mean']:.3f} | {r['chernoff']:.3f} |")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_abs, ax_share) = plt.subplots(1, 2, figsize=(11, 4))
    for i, b in enumerate(BIASES):
        ax_share.plot(ks, share(mis[i][0] - mis[i]), "--", color=f"C{i + 3}",
                      label=f"theory, bias {b} (1 - misalignment)")
    for c, ((task, lm), by_seed) in enumerate(sorted(data.items())):
        seeds = sorted(s for s, by_k in by_seed.items() if all(k in by_k for k in ks))
        print(f"\n## {task}, refiner {lm}: refined-label accuracy on transfer by k "
              f"(seeds {seeds}; in brackets refined - weak with its matched-pairs 95% CI)")
        print("| seed | weak labels | " + " | ".join(f"k={k}" for k in ks) + " | fitted rate of 1 - acc |")
        print("|---|---|" + "---|" * (len(ks) + 1))
        accs = []
        for s in seeds:
            row = by_seed[s]
            acc = np.array([row[k]["refined_label_accuracy"] for k in ks])
            accs.append(acc)
            cells = []
            for k in ks:
                m, f = row[k], row[k]["flips"]
                cells.append(f"{m['refined_label_accuracy']:.3f}" + ("" if f is None else
                             f" ({f['diff']:+.3f} [{f['low']:+.3f}, {f['high']:+.3f}])"))
            print(f"| {s} | {row[ks[0]]['weak_label_accuracy']:.3f} | " + " | ".join(cells)
                  + f" | {fit_rate(ks, 1 - acc):.3f} |")
        if not accs:
            continue
        a = np.vstack(accs)
        weak = np.mean([by_seed[s][ks[0]]["weak_label_accuracy"] for s in seeds])
        ax_abs.errorbar(ks, a.mean(0), yerr=spread(a), fmt="o-",
                        color=f"C{c}", capsize=3, label=f"{task}, {lm}: refined (mean, range over {len(seeds)} seeds)")
        ax_abs.axhline(weak, color=f"C{c}", ls=":", label=f"{task}: weak labels (mean)")
        sh = np.vstack([share(x) for x in a])
        ax_share.errorbar(ks, np.nanmean(sh, 0), yerr=spread(sh), fmt="o-", color=f"C{c}", capsize=3, label=f"measured, {task}, {lm}")
        print("share of the largest gain over k=0 reached, mean over seeds: "
              + ", ".join(f"k={k}: {v:.2f}" for k, v in zip(ks, np.nanmean(sh, 0))))
        print("theory, same share:           " + "; ".join(
            f"bias {b}: " + ", ".join(f"{v:.2f}" for v in share(mis[i][0] - mis[i]))
            for i, b in enumerate(BIASES)))
    for ax in (ax_abs, ax_share):
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.minorticks_off()
        ax.set_xlabel("k, weakly labelled demonstrations per prompt")
        ax.legend(fontsize=7)
    ax_abs.set_ylabel("label accuracy on transfer")
    ax_abs.set_title("measured: refined labels against k")
    ax_share.set_ylabel("share of the largest gain over k=0")
    ax_share.set_title("shape: theory (dashed) vs measured")
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"\nplot: {args.out}")


if __name__ == "__main__":
    main()
