"""The estimators of the simulation and the ridge fits they share; `simulate_seed` computes every
one of them for one seed.

Estimators, all fit on the same N inputs and scored by ||theta_hat - beta*||^2
----------------------------------------------------------------------------
* weak: theta = beta_w.
* oracle: ridge on the ground-truth labels.
* finetune: ridge on the weak labels; ``ft_shrink``: ridge shrunk toward the source's mean
  concept m0 = sum_k alpha_k beta_k instead of toward 0.
* refine: split the N weakly labelled examples into consecutive batches of n+1 (a remainder of
  N mod (n+1) examples is dropped); each query's demonstrations are the other n examples of its
  batch (leave-one-out). The strong model's exact posterior over concepts is
  ``p(k|D) ∝ alpha_k prod_i N(y_w,i; beta_k^T x_i, s2)`` (log space, logsumexp), s2 the strong
  model's *assumed* noise variance (default sigma^2). The refined label is the posterior
  predictive mean sum_k p(k|D) beta_k^T x_query (``label="mean"``; ``"map"`` uses the MAP
  concept, ties broken at random, the analogue of temperature-0 decoding; ``"sample"`` draws y
  from the posterior predictive, noise s2 included). Then the same ridge fit on the refined
  labels. ``misalignment`` is the posterior mass off k*, averaged over queries. The mean label
  carries no sigma noise, so once the posterior concentrates refinement can beat the oracle.
Every ridge fit is ``argmin ||y - X theta||^2 + lam ||theta - c||^2`` with lam = N_fit * lam' over
a fixed grid of lam' (``TheoryConfig.lambdas``), and the lam' with the smallest excess risk *in
hindsight* is reported: this favours fine-tuning (and the other fits) over anything a practitioner
could do without the target.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .model import (
    DEFAULT_BIASES,
    DEFAULT_NS,
    DEFAULT_TAUS,
    TheoryConfig,
    draw_concepts,
    draw_orthogonal_unit,
)
from .posterior import log_misalignment, loo_log_posteriors


def ridge(X: np.ndarray, y: np.ndarray, lam: float, center: np.ndarray | None = None):
    """argmin ||y - X theta||^2 + lam ||theta - center||^2 (normal equations, one lam)."""
    d = X.shape[1]
    rhs = X.T @ y + (0.0 if center is None else lam * center)
    return np.linalg.solve(X.T @ X + lam * np.eye(d), rhs)


class RidgePath:
    """Ridge over a whole grid of lam at the cost of one eigendecomposition of X^T X."""

    def __init__(self, X: np.ndarray, lambdas: Sequence[float]):
        self.X = X
        self.lam = np.asarray(lambdas, dtype=float) * X.shape[0]  # lam = N_fit * lam'
        self.evals, self.V = np.linalg.eigh(X.T @ X)

    def thetas(self, y: np.ndarray, center: np.ndarray | None = None) -> np.ndarray:
        """(L, d): the ridge solution for every lam of the grid."""
        z = self.V.T @ (self.X.T @ y)
        zc = np.zeros_like(z) if center is None else self.V.T @ center
        coef = (z[None, :] + self.lam[:, None] * zc[None, :]) / (self.evals[None, :]
                                                                  + self.lam[:, None])
        return coef @ self.V.T

    def risks(self, y: np.ndarray, target: np.ndarray,
              center: np.ndarray | None = None) -> np.ndarray:
        """(L,): ||theta(lam) - target||^2 for every lam, computed in the eigenbasis."""
        z = self.V.T @ (self.X.T @ y)
        zc = np.zeros_like(z) if center is None else self.V.T @ center
        w = self.V.T @ target
        coef = (z[None, :] + self.lam[:, None] * zc[None, :]) / (self.evals[None, :]
                                                                  + self.lam[:, None])
        return np.sum((coef - w[None, :]) ** 2, axis=1)

    def best(self, y, target, center=None) -> tuple[float, float]:
        """(smallest excess risk over the grid, its lam'): the best lam in hindsight."""
        r = self.risks(y, target, center)
        i = int(np.argmin(r))
        return float(r[i]), float(self.lam[i] / self.X.shape[0])


METRICS_BT = ("finetune", "ft_shrink", "ft_lambda")
METRICS_BTN = ("refine", "misalign", "log_misalign", "refine_lambda")


def simulate_seed(seed: int, cfg: TheoryConfig = TheoryConfig(), ns: Sequence[int] = DEFAULT_NS,
                  biases: Sequence[float] = DEFAULT_BIASES,
                  taus: Sequence[float] = DEFAULT_TAUS) -> dict:
    """Every estimator for one seed and every (bias, tau, n). The inputs, concepts, bias direction
    and noise are drawn once per seed and shared by all settings (common random numbers).

    Returns arrays: oracle (), finetune/ft_shrink/ft_lambda (B, T), refine/misalign/
    log_misalign/refine_lambda (B, T, n); misalign is the mean over queries of the posterior
    mass off k*, log_misalign the mean of its natural log (a geometric mean's log)."""
    rng = np.random.default_rng(seed)
    d, K, N, ks = cfg.d, cfg.K, cfg.N, cfg.k_star
    alpha, s2 = cfg.weights(), cfg.assumed_var
    concepts = draw_concepts(rng, d, K)
    u = draw_orthogonal_unit(rng, concepts)
    X = rng.standard_normal((N, d))
    eps = rng.standard_normal(N)
    xi = rng.standard_normal(N)
    beta = concepts[:, ks]
    m0 = concepts @ alpha
    preds = X @ concepts  # (N, K): beta_k^T x_i
    xb = X @ u
    full = RidgePath(X, cfg.lambdas)
    oracle, _ = full.best(preds[:, ks] + cfg.sigma * eps, beta)
    paths = {N: full}
    nB, nT, nn = len(biases), len(taus), len(ns)
    out: dict[str, Any] = {"oracle": np.float64(oracle)}
    out.update({k: np.zeros((nB, nT)) for k in METRICS_BT})
    out.update({k: np.zeros((nB, nT, nn)) for k in METRICS_BTN})
    for ib, bias in enumerate(biases):
        for it, tau in enumerate(taus):
            yw = preds[:, ks] + bias * xb + cfg.sigma * eps + tau * xi
            out["finetune"][ib, it], out["ft_lambda"][ib, it] = full.best(yw, beta)
            out["ft_shrink"][ib, it], _ = full.best(yw, beta, center=m0)
            ll = -0.5 * (yw[:, None] - preds) ** 2 / s2  # constants cancel in the posterior
            for j, n in enumerate(ns):
                lp = loo_log_posteriors(ll, n, alpha)
                nu = int(lp.shape[0])
                lmis = log_misalignment(lp, ks)
                post = np.exp(lp)
                if cfg.label == "mean":
                    yr = np.sum(post * preds[:nu], axis=1)
                else:
                    srng = np.random.default_rng([seed, 7, int(n), round(bias * 1e6),
                                                  round(tau * 1e6)])
                    if cfg.label == "map":  # ties (n = 0 with a uniform prior) broken at random
                        tied = lp >= lp.max(axis=1, keepdims=True) - 1e-12
                        k = np.argmax(tied * srng.random((nu, K)), axis=1)
                    else:
                        cum = np.cumsum(post, axis=1)
                        draw = srng.random(nu)[:, None] * cum[:, -1:]
                        k = np.minimum((cum < draw).sum(axis=1), K - 1)
                    yr = preds[np.arange(nu), k]
                    if cfg.label == "sample":
                        yr = yr + math.sqrt(s2) * srng.standard_normal(nu)
                if nu not in paths:
                    paths[nu] = RidgePath(X[:nu], cfg.lambdas)
                r, lam = paths[nu].best(yr, beta)
                out["refine"][ib, it, j], out["refine_lambda"][ib, it, j] = r, lam
                out["misalign"][ib, it, j] = np.mean(np.exp(lmis))
                out["log_misalign"][ib, it, j] = np.mean(lmis)
    return out
