"""An executable simulation of the transfer-learning view of weak-to-strong generalisation.

Somerstep et al. (ICLR 2025) argue that fine-tuning a strong model on a weak supervisor's labels
inherits the supervisor's bias, while *refinement* -- the strong model re-deriving each label by
in-context Bayesian inference over the latent concepts it already knows -- transfers the target
concept, with a misalignment that decays exponentially in the number n of in-context examples.
The paper has no synthetic experiment of this; this module is one, small enough to run in
seconds and exact enough to test against closed forms.

The model (everything float64)
------------------------------
* Representation phi(x) = x in R^d, x ~ N(0, I_d). For a linear predictor theta the excess risk
  against the target beta* is therefore exactly ``||theta - beta*||^2``.
* K orthonormal concepts beta_1..beta_K in R^d (K < d; the Q factor of a Gaussian d x K matrix,
  drawn afresh for every seed). The unaligned strong model's conditional is the mixture
  ``p(y|x) = sum_k alpha_k N(y; beta_k^T x, sigma^2)``.
* Target: concept k*, y = beta_{k*}^T x + eps, eps ~ N(0, sigma^2).
  Key assumption: alpha_{k*} > 0 (the target lies in the support of the source's mixture).
  ``TheoryConfig(target_in_support=False)`` violates it (alpha_{k*} = 0, the rest renormalised);
  refinement then cannot recover the target.
* Weak supervisor beta_w = beta* + b, b orthogonal to every beta_k, ||b|| = ``bias``; its labels
  are y_w = beta_w^T x + eps + tau * xi, xi ~ N(0, 1) (the same eps as the ground truth, so with
  bias = tau = 0 the weak labels *are* the ground-truth labels). bias = 0, tau > 0 is the *noisy*
  supervisor, bias > 0 the *biased* one (optionally noisy too). As a predictor the supervisor's
  excess risk is ||b||^2 = bias^2 whatever tau is.

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

Closed forms (implemented below and tested numerically)
-------------------------------------------------------
* Population ridge with identity covariance: theta = (beta* + b + lam' c) / (1 + lam'). Toward 0,
  excess risk (1-g)^2 ||beta*||^2 + g^2 ||b||^2 with g = 1/(1+lam') (b ⊥ beta*); minimised at
  g = T/(T+B), T = ||beta*||^2, B = ||b||^2, the **fine-tuning floor** ``T B / (T + B)``, i.e.
  B/(1+B) for a unit target. No shrinkage strength removes it (and any g in R, not only
  g in (0, 1], gives the same minimum). With N examples the measured value is about
  floor + g^2 d (sigma^2 + tau^2) / (N - d - 1) (the OLS variance, shrunk by g = 1/(1+B)).
* Shrinking toward m0 = sum_k alpha_k beta_k: excess risk (1-g)^2 A + g^2 B with
  A = ||m0 - beta*||^2 = (1 - alpha_{k*})^2 + sum_{k != k*} alpha_k^2 (b ⊥ m0 - beta*); the
  floor is ``A B / (A + B)`` (3/7 for bias 1, K = 4 uniform).
* Log posterior odds of k* against k after n demonstrations from the biased, noisy supervisor:
  each example adds Z = (2 r u + u^2) / (2 s2), with u = (beta* - beta_k)^T x ~ N(0, D),
  D = ||beta* - beta_k||^2 (= 2 for orthonormal concepts), and r = b^T x + eps + tau xi
  ~ N(0, v), v = B + sigma^2 + tau^2, independent of u because b ⊥ beta* - beta_k. Hence
  ``E[log odds] = log(alpha_{k*}/alpha_k) + n D / (2 s2)`` -- independent of the bias -- and
  ``Var = n (4 v D + 2 D^2) / (4 s2^2)``.
* Moment generating function: E[exp(-t Z)] = (1 + 2 D c(t))^(-1/2) with
  c(t) = t/(2 s2) - t^2 v/(2 s2^2) (infinite where 1 + 2 D c(t) <= 0).
  The *mean* misalignment decays like exp(-rate n) (up to polynomial factors) with the Chernoff
  rate ``rate = -log min_{t in [0, 1]} E[exp(-t Z)]``; for s2 <= 2 v this is
  ``0.5 log(1 + D / (4 v))`` (0.203, 0.112, 0.048 for v = 1, 2, 5), far slower than the
  *typical* rate D / (2 s2) at which a median query's log odds grow: the mean is dominated by
  rare batches whose demonstrations happen to fit a wrong concept.
* Refined labels with posterior mean: since a query's posterior does not depend on its own x,
  the population fit is sum_k E[p_k] beta_k; its excess risk is (E[mis])^2 + sum_{k != k*}
  E[p_k]^2 ((E mis)^2 K/(K-1) when spread evenly), plus a finite-N variance term of order
  d E[mis] / N. The n = 0 value is A (the mean concept; ridge cannot improve on it).
"""
from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import W2SError

LABELS = ("mean", "map", "sample")
DEFAULT_LAMBDAS = tuple([0.0] + list(np.logspace(-4, 2, 49)))  # lam' = lam / N_fit
DEFAULT_NS = (0, 1, 2, 4, 8, 16, 32)
DEFAULT_BIASES = (0.0, 0.5, 1.0, 2.0)
DEFAULT_TAUS = (0.0, 1.0)
QUICK_NS = (0, 1, 2, 4, 8, 16)
QUICK_BIASES = (0.0, 1.0)
QUICK_TAUS = (0.0, 1.0)


@dataclass(frozen=True)
class TheoryConfig:
    """Sizes and knobs of the simulated world (see the module docstring)."""

    d: int = 32
    K: int = 4
    N: int = 2000
    sigma: float = 1.0
    s2: float | None = None  # strong model's assumed noise variance; None: sigma^2
    alpha: tuple | None = None  # mixture weights; None: uniform
    k_star: int = 0
    target_in_support: bool = True  # False sets alpha_{k*} = 0 (violates the key assumption)
    label: str = "mean"  # refined label: posterior-predictive "mean", "map" concept, or "sample"
    lambdas: tuple = DEFAULT_LAMBDAS

    def __post_init__(self):
        if not (isinstance(self.K, int) and self.K >= 2):
            raise W2SError(f"K must be an integer >= 2 (got {self.K!r})")
        if not (isinstance(self.d, int) and self.d > self.K):
            raise W2SError(f"d must be an integer > K={self.K} so that a bias direction "
                           f"orthogonal to every concept exists (got d={self.d!r})")
        if not (isinstance(self.N, int) and self.N >= 1):
            raise W2SError(f"N must be a positive integer (got {self.N!r})")
        if not self.sigma > 0:
            raise W2SError(f"sigma must be > 0 (got {self.sigma!r})")
        if self.s2 is not None and not self.s2 > 0:
            raise W2SError(f"the assumed noise variance must be > 0 (got {self.s2!r})")
        if not 0 <= self.k_star < self.K:
            raise W2SError(f"k_star must be in [0, {self.K}) (got {self.k_star!r})")
        if self.label not in LABELS:
            raise W2SError(f"label must be one of {', '.join(LABELS)} (got {self.label!r})")
        if self.alpha is not None:
            a = np.asarray(self.alpha, dtype=float)
            if a.shape != (self.K,) or np.any(a < 0) or not a.sum() > 0:
                raise W2SError(f"alpha must be {self.K} non-negative weights with a positive sum")
        if len(self.lambdas) == 0 or min(self.lambdas) < 0:
            raise W2SError("lambdas must be a non-empty grid of non-negative values")

    @property
    def assumed_var(self) -> float:
        return self.sigma ** 2 if self.s2 is None else float(self.s2)

    def weights(self) -> np.ndarray:
        """The source's mixture weights alpha (normalised; alpha_{k*} = 0 if violated)."""
        a = np.full(self.K, 1.0) if self.alpha is None else np.asarray(self.alpha, dtype=float)
        a = a.copy()
        if not self.target_in_support:
            a[self.k_star] = 0.0
            if not a.sum() > 0:
                raise W2SError("alpha has no mass off the target concept")
        return a / a.sum()


# ---------------------------------------------------------------- closed forms

def finetune_floor(bias: float, target_norm_sq: float = 1.0) -> float:
    """Fine-tuning's excess-risk floor: min over g of (1-g)^2 T + g^2 B = T B / (T + B)."""
    B, T = float(bias) ** 2, float(target_norm_sq)
    return 0.0 if B == 0 else T * B / (T + B)


def source_mean_gap(alpha: np.ndarray, k_star: int) -> float:
    """A = ||m0 - beta*||^2 for orthonormal concepts, m0 = sum_k alpha_k beta_k."""
    a = np.asarray(alpha, dtype=float)
    off = np.delete(a, k_star)
    return float((1.0 - a[k_star]) ** 2 + np.sum(off ** 2))


def shrink_to_mean_floor(bias: float, alpha: np.ndarray, k_star: int) -> float:
    """Floor of ridge shrunk toward the source mean: A B / (A + B)."""
    A, B = source_mean_gap(alpha, k_star), float(bias) ** 2
    return 0.0 if A == 0 or B == 0 else A * B / (A + B)


def expected_log_odds(n, delta_sq: float = 2.0, s2: float = 1.0,
                      log_prior_ratio: float = 0.0):
    """E log p(k*|D)/p(k|D) after n demonstrations: log(alpha*/alpha_k) + n D / (2 s2)."""
    return log_prior_ratio + np.asarray(n, dtype=float) * delta_sq / (2.0 * s2)


def log_odds_variance(n, delta_sq: float = 2.0, v: float = 1.0, s2: float = 1.0):
    """Var of those log odds: n (4 v D + 2 D^2) / (4 s2^2), v = bias^2 + sigma^2 + tau^2."""
    return np.asarray(n, dtype=float) * (4 * v * delta_sq + 2 * delta_sq ** 2) / (4 * s2 ** 2)


def log_odds_mgf(t, delta_sq: float = 2.0, v: float = 1.0, s2: float = 1.0):
    """E exp(-t Z) for one example's log-odds increment Z: (1 + 2 D c(t))^(-1/2), and +inf
    where 1 + 2 D c(t) <= 0 (the expectation diverges there)."""
    t = np.asarray(t, dtype=float)
    c = t / (2 * s2) - t ** 2 * v / (2 * s2 ** 2)
    base = 1 + 2 * delta_sq * c
    with np.errstate(divide="ignore"):
        return np.where(base > 0, np.abs(base) ** -0.5, np.inf)


def misalignment_rate(delta_sq: float = 2.0, v: float = 1.0, s2: float = 1.0) -> float:
    """Chernoff rate of the mean misalignment: -log min_{t in [0,1]} E exp(-t Z)."""
    t = min(1.0, s2 / (2 * v))
    return float(-np.log(log_odds_mgf(t, delta_sq, v, s2)))


def typical_rate(delta_sq: float = 2.0, s2: float = 1.0) -> float:
    """Growth per example of the expected log odds, D / (2 s2): the median query's rate."""
    return delta_sq / (2 * s2)


# ---------------------------------------------------------------- building blocks

def draw_concepts(rng: np.random.Generator, d: int, K: int) -> np.ndarray:
    """K orthonormal columns (d x K): the Q factor of a Gaussian matrix, signs fixed by R."""
    q, r = np.linalg.qr(rng.standard_normal((d, K)))
    return q * np.sign(np.diag(r))


def draw_orthogonal_unit(rng: np.random.Generator, concepts: np.ndarray) -> np.ndarray:
    """A unit vector orthogonal to every column of ``concepts`` (orthonormal)."""
    g = rng.standard_normal(int(concepts.shape[0]))
    g = g - concepts @ (concepts.T @ g)
    g = g - concepts @ (concepts.T @ g)  # a second pass for round-off
    return g / np.linalg.norm(g)


def logsumexp(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """log sum exp along ``axis``, safe when some (not all) entries are -inf."""
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(a - m), axis=axis)) + np.squeeze(m, axis=axis)


def gaussian_loglik(X: np.ndarray, y: np.ndarray, concepts: np.ndarray, s2: float) -> np.ndarray:
    """log N(y_i; beta_k^T x_i, s2) for every example i and concept k: shape (N, K)."""
    resid = y[:, None] - X @ concepts
    return -0.5 * resid ** 2 / s2 - 0.5 * math.log(2 * math.pi * s2)


def _log(alpha: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(alpha, dtype=float))


def log_posterior(X: np.ndarray, y: np.ndarray, concepts: np.ndarray, alpha: np.ndarray,
                  s2: float) -> np.ndarray:
    """Exact log p(k | D) for one demonstration set D = (X, y); shape (K,)."""
    lp = _log(alpha) + gaussian_loglik(X, y, concepts, s2).sum(axis=0)
    return lp - logsumexp(lp)


def loo_log_posteriors(loglik: np.ndarray, n: int, alpha: np.ndarray) -> np.ndarray:
    """Leave-one-out posteriors within consecutive batches of n+1 examples.

    ``loglik`` is (N, K) per-example log-likelihoods; the first (N // (n+1)) * (n+1) rows are
    used (the remainder is dropped). Row i of the (N_used, K) result is log p(k | the other n
    examples of i's batch)."""
    N, K = loglik.shape
    nb = N // (n + 1)
    used = loglik[: nb * (n + 1)]
    batch = used.reshape(nb, n + 1, K)
    others = batch.sum(axis=1, keepdims=True) - batch  # sum over the batch minus the query
    lp = (others + _log(alpha)).reshape(nb * (n + 1), K)
    return lp - logsumexp(lp)[:, None]


def log_misalignment(logpost: np.ndarray, k_star: int) -> np.ndarray:
    """log of the posterior mass off k*, accurate when that mass is far below 1e-16."""
    off = logpost.copy()
    off[:, k_star] = -np.inf
    return logsumexp(off)


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


# ---------------------------------------------------------------- one seed, the sweep

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


def bootstrap_ci(values: np.ndarray, reps: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of the mean over axis 0 (seeds)."""
    values = np.asarray(values, dtype=float)
    S = values.shape[0]
    if S < 2:
        return values.mean(0), values.mean(0)
    from .metrics import bootstrap_indices

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
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    per_seed = []
    bar = tqdm(seeds, desc="w2s theory", unit="seed", disable=not progress, file=sys.stderr,
               leave=False)
    for s in bar:
        per_seed.append(simulate_seed(s, cfg, ns, biases, taus))
        bar.set_postfix_str(f"{len(ns) * len(biases) * len(taus)} settings/seed")
    data = {k: np.stack([r[k] for r in per_seed]) for k in per_seed[0]}
    return SweepResult(cfg, ns, biases, taus, seeds, data, time.perf_counter() - t0)


# ---------------------------------------------------------------- table and plots

def _g(x: float) -> str:
    return f"{x:.3g}" if x != 0 else "0"


def format_table(res: SweepResult) -> str:
    head = (f"{'bias':>4} {'noise':>5} {'n':>3}  {'weak':>6}  {'finetune [95% CI]':>24}  "
            f"{'ft-shrink':>9}  {'refine [95% CI]':>28}  {'oracle':>7}  "
            f"{'misalignment [95% CI]':>30}")
    lines = [head, "-" * len(head)]
    for r in res.rows():
        ft = f"{_g(r['finetune'])} [{_g(r['finetune_ci'][0])}, {_g(r['finetune_ci'][1])}]"
        rf = f"{_g(r['refine'])} [{_g(r['refine_ci'][0])}, {_g(r['refine_ci'][1])}]"
        ms = f"{_g(r['misalign'])} [{_g(r['misalign_ci'][0])}, {_g(r['misalign_ci'][1])}]"
        lines.append(f"{r['bias']:>4g} {r['noise']:>5g} {r['n']:>3d}  {_g(r['weak']):>6}  "
                     f"{ft:>24}  {_g(r['ft_shrink']):>9}  {rf:>28}  {_g(r['oracle']):>7}  "
                     f"{ms:>30}")
    return "\n".join(lines)


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
    return "\n".join(lines)


def format_rates(res: SweepResult) -> str:
    lines = ["misalignment rate per demonstration (natural log): fitted on n >= 1 vs theory"]
    for r in res.rates():
        lines.append(f"  bias {r['bias']:g}, noise {r['noise']:g}: mean misalignment fitted "
                     f"{r['fit_mean']:.3f} (Chernoff asymptote {r['chernoff']:.3f}); geometric "
                     f"mean fitted {r['fit_typical']:.3f} (typical rate {r['typical']:.3f}); "
                     f"refine excess risk fitted {r['fit_refine']:.3f}")
    return "\n".join(lines)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
                ax.text(0.97, 0.97, "weak supervisor: 0 (unbiased)", transform=ax.transAxes,
                        ha="right", va="top", fontsize=7, color="0.3")
            ax.plot(ns, flat * ft[ib, it], color="C0", label="fine-tune (best λ)")
            ax.fill_between(ns, flat * ftl[ib, it], flat * fth[ib, it], color="C0", alpha=0.2)
            ax.plot(ns, flat * fs[ib, it], color="C0", ls=":", label="fine-tune → source mean")
            ax.plot(ns, rf[ib, it], "o-", color="C3", ms=3, label="refine (best λ)")
            ax.fill_between(ns, rfl[ib, it], rfh[ib, it], color="C3", alpha=0.2)
            ax.plot(ns, flat * oracle, color="C2", label="oracle (true labels)")
            ax.fill_between(ns, flat * float(ol), flat * float(oh), color="C2", alpha=0.2)
            ax.set_yscale("log")
            ax.set_title(f"bias {b:g}, noise τ {t:g}", fontsize=9)
            ax.grid(alpha=0.3, which="both", lw=0.5)
            if it == nT - 1:
                ax.set_xlabel("n (in-context demonstrations)")
            if ib == 0:
                ax.set_ylabel("excess risk ||θ-β*||²")
    handles, labels = axes[0][-1].get_legend_handles_labels()
    ncol = 6 if nB >= 4 else 3
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=7, frameon=False)
    cfg = res.cfg
    fig.suptitle(f"Simulated W2S (d={cfg.d}, K={cfg.K}, N={cfg.N}, σ={cfg.sigma:g}, "
                 f"s²={cfg.assumed_var:g}, label={cfg.label}"
                 f"{', α_k*=0' if not cfg.target_in_support else ''}); "
                 f"mean over {len(res.seeds)} seeds, 95% bootstrap CI", fontsize=9)
    fig.tight_layout(rect=(0, 0.05 if ncol == 6 else 0.1, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plot_misalignment(res: SweepResult, path: Path) -> Path:
    """Posterior mass off k* vs n (log y): mean with CI, geometric mean, fitted rates."""
    plt = _plt()
    nT = len(res.taus)
    fig, axes = plt.subplots(1, nT, figsize=(4.6 * nT, 3.6), squeeze=False, sharey=True)
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
        ax.set_title(f"noise τ {t:g} (typical rate D/2s² = {typ:g})", fontsize=9)
        ax.set_xlabel("n (in-context demonstrations)")
        ax.grid(alpha=0.3, which="both", lw=0.5)
        ax.legend(fontsize=6)
    axes[0][0].set_ylabel("posterior mass off k*")
    fig.suptitle(f"Refined labels' misalignment, {len(res.seeds)} seeds "
                 "(solid: mean with 95% CI; dashed: geometric mean)", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- CLI

def command(args) -> int:
    """`w2s theory`: run the sweep, print the table, write the two plots."""
    seeds = args.seeds if args.seeds is not None else (10 if args.quick else 50)
    if seeds < 2:
        raise W2SError(f"--seeds must be at least 2 for a confidence interval (got {seeds})")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise W2SError(f"--out {str(out)!r} is a file; pass a folder for the plots")
    cfg = TheoryConfig(target_in_support=not args.outside_support, s2=args.assumed_var,
                       label=args.label)
    ns, biases, taus = (QUICK_NS, QUICK_BIASES, QUICK_TAUS) if args.quick else \
        (DEFAULT_NS, DEFAULT_BIASES, DEFAULT_TAUS)
    print(f"w2s theory: d={cfg.d}, K={cfg.K}, N={cfg.N}, sigma={cfg.sigma:g}, assumed "
          f"s2={cfg.assumed_var:g}, label={cfg.label}, alpha={np.round(cfg.weights(), 3).tolist()}"
          f", k*={cfg.k_star}, {seeds} seeds; n in {list(ns)}, bias in {list(biases)}, "
          f"noise in {list(taus)}", flush=True)
    res = run_sweep(ns, biases, taus, seeds=seeds, cfg=cfg, progress=True)
    print(format_table(res))
    print()
    print(format_floors(res))
    print(format_rates(res))
    suffix = "" if cfg.target_in_support else "-outside-support"
    p1 = plot_excess_risk(res, out / f"theory-excess-risk{suffix}.png")
    p2 = plot_misalignment(res, out / f"theory-misalignment{suffix}.png")
    print(f"plots: {p1}, {p2}\nsweep took {res.wall_s:.1f} s")
    return 0


def add_arguments(p) -> None:
    p.add_argument("--seeds", type=int, help="number of seeds (default 50; 10 with --quick)")
    p.add_argument("--out", default="docs", help="folder for the PNG plots (default: docs)")
    p.add_argument("--quick", action="store_true", help="a small grid, for a smoke test")
    p.add_argument("--outside-support", action="store_true",
                   help="violate the key assumption: alpha_{k*} = 0")
    p.add_argument("--assumed-var", type=float, default=None,
                   help="strong model's assumed noise variance s2 (default sigma^2 = 1)")
    p.add_argument("--label", choices=LABELS, default="mean",
                   help="refined label: posterior-predictive mean (default), MAP concept, sample")

