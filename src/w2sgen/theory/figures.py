"""The sweep's two figures: excess risk and misalignment against n (matplotlib, Agg)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..plotting import pyplot, save
from .closed_forms import finetune_floor, typical_rate
from .experiments import SweepResult


def _plt():
    return pyplot()


def plot_excess_risk(res: SweepResult, path: Path) -> Path:
    """Excess risk vs n (log y), one panel per (bias, noise)."""
    plt = _plt()
    nB, nT = len(res.biases), len(res.taus)
    fig, axes = plt.subplots(nT, nB, figsize=(3.2 * nB, 2.8 * nT), sharex=True, squeeze=False)
    ns = np.asarray(res.ns)
    ft, ftl, fth = res.mean("finetune"), *res.ci("finetune")
    rf, rfl, rfh = res.mean("refine"), *res.ci("refine")
    fs = res.mean("ft_shrink")
    oracle, (ol, oh) = float(res.mean("oracle")), res.ci("oracle")
    for it, t in enumerate(res.taus):
        for ib, b in enumerate(res.biases):
            ax = axes[it][ib]
            flat = np.ones_like(ns, dtype=float)
            if b > 0:
                ax.plot(ns, flat * b ** 2, color="0.5", lw=1.5, label="weak supervisor (B)")
                ax.plot(ns, flat * finetune_floor(b), "k--", lw=1.2, zorder=5,
                        label="fine-tuning floor B/(1+B)")
            else:
                ax.text(0.97, 0.97, "weak supervisor: 0\n(unbiased)", transform=ax.transAxes,
                        ha="right", va="top", color="0.3")
            ax.plot(ns, flat * ft[ib, it], color="C0", label="fine-tune (best λ)")
            ax.fill_between(ns, flat * ftl[ib, it], flat * fth[ib, it], color="C0", alpha=0.2)
            ax.plot(ns, flat * fs[ib, it], color="C0", ls=":", label="fine-tune → source mean")
            ax.plot(ns, rf[ib, it], "o-", color="C3", ms=3, label="refine (best λ)")
            ax.fill_between(ns, rfl[ib, it], rfh[ib, it], color="C3", alpha=0.2)
            ax.plot(ns, flat * oracle, color="C2", label="oracle (true labels)")
            ax.fill_between(ns, flat * float(ol), flat * float(oh), color="C2", alpha=0.2)
            ax.set_yscale("log")
            ax.set_title(f"bias {b:g}, noise τ {t:g}")
            ax.grid(alpha=0.3, which="both", lw=0.5)
            if it == nT - 1:
                ax.set_xlabel("n (in-context demonstrations)")
            if ib == 0:
                ax.set_ylabel("excess risk ||θ-β*||²")
    handles, labels = axes[0][-1].get_legend_handles_labels()
    ncol = 6 if nB >= 4 else 3
    fig.legend(handles, labels, loc="lower center", ncol=ncol, frameon=False)
    cfg = res.cfg
    fig.suptitle(f"Simulated W2S (d={cfg.d}, K={cfg.K}, N={cfg.N}, σ={cfg.sigma:g}, "
                 f"s²={cfg.assumed_var:g}, label={cfg.label}"
                 f"{', α_k*=0' if not cfg.target_in_support else ''}); "
                 f"mean over {len(res.seeds)} seeds, 95% bootstrap CI")
    fig.tight_layout(rect=(0, 0.05 if ncol == 6 else 0.1, 1, 1))
    return save(fig, Path(path), plt, dpi=130)


def plot_misalignment(res: SweepResult, path: Path) -> Path:
    """Posterior mass off k* vs n (log y): mean with CI, geometric mean, fitted rates."""
    plt = _plt()
    nT = len(res.taus)
    fig, axes = plt.subplots(1, nT, figsize=(4.8 * nT, 6.8), squeeze=False, sharey=True)
    ns = np.asarray(res.ns)
    mis, (ml, mh), lmis = res.mean("misalign"), res.ci("misalign"), res.mean("log_misalign")
    rates = {(r["bias"], r["noise"]): r for r in res.rates()}
    for it, t in enumerate(res.taus):
        ax = axes[0][it]
        for ib, b in enumerate(res.biases):
            r, c = rates[(b, t)], f"C{ib}"
            ax.plot(ns, mis[ib, it], "o-", color=c, ms=3,
                    label=f"bias {b:g}: mean, fit {r['fit_mean']:.2f}/ex "
                          f"(Chernoff {r['chernoff']:.2f})")
            ax.fill_between(ns, np.maximum(ml[ib, it], 1e-300), mh[ib, it], color=c, alpha=0.15)
            ax.plot(ns, np.exp(lmis[ib, it]), "--", color=c, lw=1,
                    label=f"bias {b:g}: geo. mean, fit {r['fit_typical']:.2f}/ex")
        ax.set_yscale("log")
        typ = typical_rate(2.0, res.cfg.assumed_var)
        ax.set_title(f"noise τ {t:g} (typical rate D/2s² = {typ:g})")
        ax.set_xlabel("n (in-context demonstrations)")
        ax.grid(alpha=0.3, which="both", lw=0.5)
        # below the panel, outside the data (each panel's fitted rates differ)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    axes[0][0].set_ylabel("posterior mass off k*")
    fig.suptitle(f"Refined labels' misalignment, {len(res.seeds)} seeds "
                 "(solid: mean with 95% CI; dashed: geometric mean)")
    fig.subplots_adjust(left=0.11, right=0.98, top=0.88, bottom=0.43, wspace=0.1)
    return save(fig, Path(path), plt, dpi=130)
