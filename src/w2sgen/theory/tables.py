"""The sweep's results as text: the per-setting table, the fine-tuning floors, the rates."""
from __future__ import annotations

import textwrap

from .closed_forms import finetune_floor, shrink_to_mean_floor
from .experiments import SweepResult


def _g(x: float) -> str:
    return f"{x:.3g}" if x != 0 else "0"


def format_table(res: SweepResult) -> str:
    """Excess risk per setting, then the refined labels' misalignment (two tables within 100
    columns)."""
    head = (f"{'bias':>4} {'noise':>5} {'n':>3}  {'weak':>5}  {'finetune [95% CI]':>23}  "
            f"{'ft-shrink':>9}  {'refine [95% CI]':>28}  {'oracle':>6}")
    mhead = f"{'bias':>4} {'noise':>5} {'n':>3}  {'misalignment [95% CI]':>29}"
    lines = ["excess risk ||theta - beta*||^2:", head, "-" * len(head)]
    mis = ["", "refined labels' misalignment (posterior mass off k*):", mhead, "-" * len(mhead)]
    for r in res.rows():
        ft = f"{_g(r['finetune'])} [{_g(r['finetune_ci'][0])}, {_g(r['finetune_ci'][1])}]"
        rf = f"{_g(r['refine'])} [{_g(r['refine_ci'][0])}, {_g(r['refine_ci'][1])}]"
        ms = f"{_g(r['misalign'])} [{_g(r['misalign_ci'][0])}, {_g(r['misalign_ci'][1])}]"
        setting = f"{r['bias']:>4g} {r['noise']:>5g} {r['n']:>3d}"
        lines.append(f"{setting}  {_g(r['weak']):>5}  {ft:>23}  {_g(r['ft_shrink']):>9}  {rf:>28}  "
                     f"{_g(r['oracle']):>6}")
        mis.append(f"{setting}  {ms:>29}")
    return "\n".join(lines + mis)


def format_floors(res: SweepResult) -> str:
    alpha = res.cfg.weights()
    ft, fs = res.mean("finetune"), res.mean("ft_shrink")
    lines = [("fine-tuning floor (closed form) vs measured, best lam in hindsight (noise 0 / "
             "noise > 0 columns in order):")]
    for ib, b in enumerate(res.biases):
        meas = ", ".join(f"{ft[ib, it]:.4g}" for it in range(len(res.taus)))
        meas_s = ", ".join(f"{fs[ib, it]:.4g}" for it in range(len(res.taus)))
        lines.append(f"  bias {b:g}: floor B/(1+B) = {finetune_floor(b):.4g}, measured {meas}; "
                     f"toward source mean: floor AB/(A+B) = "
                     f"{shrink_to_mean_floor(b, alpha, res.cfg.k_star):.4g}, measured {meas_s}")
    return "\n".join(wrapped(lines))


def wrapped(lines: list[str]) -> list[str]:
    return [w for line in lines for w in textwrap.wrap(line, 100, subsequent_indent="      ")]


def format_rates(res: SweepResult) -> str:
    lines = ["misalignment rate per demonstration (natural log): fitted on n >= 1 vs theory"]
    for r in res.rates():
        lines.append(f"  bias {r['bias']:g}, noise {r['noise']:g}: mean misalignment fitted "
                     f"{r['fit_mean']:.3f} (Chernoff asymptote {r['chernoff']:.3f}); geometric "
                     f"mean fitted {r['fit_typical']:.3f} (typical rate {r['typical']:.3f}); "
                     f"refine excess risk fitted {r['fit_refine']:.3f}")
    return "\n".join(wrapped(lines))
