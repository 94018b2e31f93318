"""The simulated world: its sizes and knobs (TheoryConfig), the default grids of settings, and the
draws of its concepts and bias direction.

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
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import W2SError

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
