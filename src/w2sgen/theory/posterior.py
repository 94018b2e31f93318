"""The strong model's in-context inference: its exact posterior over the concepts given a set of
demonstrations (log space, logsumexp), the leave-one-out posteriors of a batch, and the
posterior mass off the target concept (the misalignment)."""
from __future__ import annotations

import math

import numpy as np


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
