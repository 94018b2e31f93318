"""The theory's closed forms, each tested numerically against the simulation.

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

import numpy as np


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
