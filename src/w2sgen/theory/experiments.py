"""The sweep over seeds and (bias, noise, n) settings: every seed simulated, the results stacked
(SweepResult), with bootstrap intervals over seeds and the fitted exponential rates."""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import W2SError
from ..progress import bar as progress_bar
from .closed_forms import finetune_floor, misalignment_rate, shrink_to_mean_floor, typical_rate
from .estimators import simulate_seed
from .model import DEFAULT_BIASES, DEFAULT_NS, DEFAULT_TAUS, TheoryConfig


def bootstrap_ci(values: np.ndarray, reps: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of the mean over axis 0 (seeds)."""
    values = np.asarray(values, dtype=float)
    S = values.shape[0]
    if S < 2:
        return values.mean(0), values.mean(0)
    from ..metrics import bootstrap_indices

    means = values[bootstrap_indices(S, reps, seed)].mean(axis=1)
    q = (1 - level) / 2
    return np.quantile(means, q, axis=0), np.quantile(means, 1 - q, axis=0)


def fit_rate(ns: Sequence[int], values: Sequence[float], n_min: int = 1) -> float:
    """Least-squares slope of -log(values) against n over n >= n_min: an exponential rate."""
    n_arr, v_arr = np.asarray(ns, dtype=float), np.asarray(values, dtype=float)
    keep = (n_arr >= n_min) & (v_arr > 0)
    if keep.sum() < 2:
        return float("nan")
    return float(-np.polyfit(n_arr[keep], np.log(v_arr[keep]), 1)[0])


@dataclass
class SweepResult:
    cfg: TheoryConfig
    ns: tuple
    biases: tuple
    taus: tuple
    seeds: tuple
    data: dict  # metric -> array with a leading seed axis
    wall_s: float = 0.0
    _ci: dict = field(default_factory=dict, repr=False)

    def mean(self, metric: str) -> np.ndarray:
        return np.asarray(self.data[metric]).mean(axis=0)

    def ci(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        if metric not in self._ci:
            self._ci[metric] = bootstrap_ci(self.data[metric])
        return self._ci[metric]

    def v(self, bias: float, tau: float) -> float:
        """Variance of r = y_w - beta*^T x: bias^2 + sigma^2 + tau^2."""
        return bias ** 2 + self.cfg.sigma ** 2 + tau ** 2

    def rates(self) -> list[dict]:
        """Per (bias, tau): fitted and theoretical exponential rates of the misalignment."""
        rows, mis, lmis = [], self.mean("misalign"), self.mean("log_misalign")
        refine = self.mean("refine")
        s2 = self.cfg.assumed_var
        for ib, b in enumerate(self.biases):
            for it, t in enumerate(self.taus):
                rows.append({
                    "bias": b, "noise": t,
                    "fit_mean": fit_rate(self.ns, mis[ib, it]),
                    "chernoff": misalignment_rate(2.0, self.v(b, t), s2),
                    "fit_typical": fit_rate(self.ns, np.exp(lmis[ib, it])),
                    "typical": typical_rate(2.0, s2),
                    "fit_refine": fit_rate(self.ns, refine[ib, it])})
        return rows

    def rows(self) -> list[dict]:
        """One row per (bias, tau, n): means and 95% intervals over seeds."""
        alpha = self.cfg.weights()
        m = {k: self.mean(k) for k in ("finetune", "ft_shrink", "refine", "misalign")}
        ci = {k: self.ci(k) for k in ("finetune", "refine", "misalign", "oracle")}
        oracle = float(self.mean("oracle"))
        out = []
        for ib, b in enumerate(self.biases):
            for it, t in enumerate(self.taus):
                for j, n in enumerate(self.ns):
                    out.append({
                        "bias": b, "noise": t, "n": n, "weak": b ** 2,
                        "finetune": m["finetune"][ib, it],
                        "finetune_ci": (ci["finetune"][0][ib, it], ci["finetune"][1][ib, it]),
                        "floor": finetune_floor(b),
                        "ft_shrink": m["ft_shrink"][ib, it],
                        "shrink_floor": shrink_to_mean_floor(b, alpha, self.cfg.k_star),
                        "refine": m["refine"][ib, it, j],
                        "refine_ci": (ci["refine"][0][ib, it, j], ci["refine"][1][ib, it, j]),
                        "oracle": oracle,
                        "oracle_ci": (float(ci["oracle"][0]), float(ci["oracle"][1])),
                        "misalign": m["misalign"][ib, it, j],
                        "misalign_ci": (ci["misalign"][0][ib, it, j], ci["misalign"][1][ib, it, j]),
                    })
        return out


def run_sweep(ns: Iterable[int] = DEFAULT_NS, biases: Iterable[float] = DEFAULT_BIASES,
              taus: Iterable[float] = DEFAULT_TAUS, seeds: int | Iterable[int] = 50,
              cfg: TheoryConfig = TheoryConfig(), progress: bool = False) -> SweepResult:
    """Simulate every seed (0..seeds-1, or the given ids) and stack the results."""
    ns, biases, taus = tuple(int(n) for n in ns), tuple(float(b) for b in biases), \
        tuple(float(t) for t in taus)
    seeds = tuple(range(seeds)) if isinstance(seeds, int) else tuple(int(s) for s in seeds)
    if not seeds:
        raise W2SError("need at least one seed")
    if not ns or min(ns) < 0:
        raise W2SError("n values must be non-negative integers")
    if any(n + 1 > cfg.N for n in ns):
        raise W2SError(f"every batch size n+1 must be at most N={cfg.N}")
    if not biases or not taus or min(biases) < 0 or min(taus) < 0:
        raise W2SError("bias sizes and noise levels must be non-negative")
    t0 = time.perf_counter()
    per_seed = []
    bar = progress_bar(desc="w2s theory", unit="seed", iterable=seeds, quiet=not progress,
                       leave=False)
    for s in bar:
        per_seed.append(simulate_seed(s, cfg, ns, biases, taus))
        bar.set_postfix_str(f"{len(ns) * len(biases) * len(taus)} settings/seed")
    data = {k: np.stack([r[k] for r in per_seed]) for k in per_seed[0]}
    return SweepResult(cfg, ns, biases, taus, seeds, data, time.perf_counter() - t0)
