"""`w2s theory`: its arguments, and the command (the sweep, its tables and its two figures)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import W2SError
from .experiments import run_sweep
from .figures import plot_excess_risk, plot_misalignment
from .model import (
    DEFAULT_BIASES,
    DEFAULT_NS,
    DEFAULT_TAUS,
    LABELS,
    QUICK_BIASES,
    QUICK_NS,
    QUICK_TAUS,
    TheoryConfig,
)
from .tables import format_floors, format_rates, format_table, wrapped


def command(args) -> int:
    """`w2s theory`: run the sweep, print the table, write the two plots."""
    seeds = args.seeds if args.seeds is not None else (10 if args.quick else 50)
    if seeds < 2:
        raise W2SError(f"--seeds must be at least 2 for a confidence interval (got {seeds})")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise W2SError(f"--out {str(out)!r} is a file; pass a folder for the plots")
    try:  # before the sweep, not after it
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise W2SError(f"cannot make --out folder {str(out)!r}: {e.strerror or e}; pass a folder "
                       "you can write") from None
    cfg = TheoryConfig(target_in_support=not args.outside_support, s2=args.assumed_var,
                       label=args.label)
    ns, biases, taus = (QUICK_NS, QUICK_BIASES, QUICK_TAUS) if args.quick else \
        (DEFAULT_NS, DEFAULT_BIASES, DEFAULT_TAUS)
    print("\n".join(wrapped([f"w2s theory: d={cfg.d}, K={cfg.K}, N={cfg.N}, sigma={cfg.sigma:g}, "
                             f"assumed s2={cfg.assumed_var:g}, label={cfg.label}, alpha="
                             f"{np.round(cfg.weights(), 3).tolist()}, k*={cfg.k_star}, {seeds} "
                             f"seeds; n in {list(ns)}, bias in {list(biases)}, noise in "
                             f"{list(taus)}"])), flush=True)
    res = run_sweep(ns, biases, taus, seeds=seeds, cfg=cfg, progress=True)
    print(format_table(res))
    print()
    print(format_floors(res))
    print(format_rates(res))
    suffix = "" if cfg.target_in_support else "-outside-support"
    p1 = plot_excess_risk(res, out / f"theory-excess-risk{suffix}.png")
    p2 = plot_misalignment(res, out / f"theory-misalignment{suffix}.png")
    print(f"plots written to {out.resolve()}: {p1.name}, {p2.name}\nsweep took {res.wall_s:.1f} s")
    return 0


def add_arguments(p) -> None:
    p.add_argument("--seeds", type=int, help="number of seeds (default 50; 10 with --quick)")
    p.add_argument("--out", default="theory", help="folder for the plots (default: ./theory, "
                   "made if missing)")
    p.add_argument("--quick", action="store_true", help="a small grid, for a smoke test")
    p.add_argument("--outside-support", action="store_true",
                   help="violate the key assumption: alpha_{k*} = 0")
    p.add_argument("--assumed-var", type=float, default=None,
                   help="strong model's assumed noise variance s2 (default sigma^2 = 1)")
    p.add_argument("--label", choices=LABELS, default="mean",
                   help="refined label: posterior-predictive mean (default), MAP concept, sample")
