"""Losses for training on (soft) labels, one registry.

Signature of every loss: `loss(logits, target, progress) -> scalar`, where logits are (B, 2),
target is (B,) the probability of class 1 (hard labels are 0/1), and progress in [0, 1] is
the fraction of training done (for losses whose weights follow a schedule); the training loop
passes a `Progress`, a float that also carries the optimiser step, for schedules in steps. A registry entry
is a factory taking keyword-only options, typed and bounded in its signature (the config checks
them there, options.py), and returning the loss.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

import torch
import torch.nn.functional as F

from .options import Fraction, Ge, Range
from .registry import Registry

LossFn = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
LOSSES: Registry[Callable[..., LossFn]] = Registry("loss")


def two_class(target: torch.Tensor) -> torch.Tensor:
    return torch.stack([1 - target, target], dim=-1)


class Progress(float):
    """The share of training done (step / total), which also knows `step` (0 for the first
    batch: the optimiser steps taken before it) and `total` (the steps of the whole run)."""

    step: int
    total: int

    def __new__(cls, step: int, total: int) -> Progress:
        out = super().__new__(cls, step / total if total else 0.0)
        out.step, out.total = step, total
        return out


@LOSSES.register("xent")
def xent() -> LossFn:
    """Cross-entropy against the soft target distribution (hard labels are one-hot)."""

    def loss(logits: torch.Tensor, target: torch.Tensor, progress: float) -> torch.Tensor:
        return -(two_class(target) * F.log_softmax(logits, dim=-1)).sum(-1).mean()

    return loss


def soft_xent(logits: torch.Tensor, target_dist: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy against a (B, 2) target distribution."""
    return -(target_dist * F.log_softmax(logits, dim=-1)).sum(-1)


def ramp(progress: float, warmup: float) -> float:
    """0 -> 1 linearly over the first `warmup` fraction of training, then 1 (smooth: no jump)."""
    return 1.0 if warmup <= 0 else min(1.0, progress / warmup)


def prior_matched_hardening(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """h_t of Burns et al.: the student's own predictions hardened at a per-batch threshold t
    chosen so that the share of hardened positives equals the weak labels' share of positives
    in the batch. No gradient flows through it."""
    z = (logits[:, 1] - logits[:, 0]).detach()
    prior = (target > 0.5).float().mean()
    n_pos = int(torch.round(prior * len(z)).item())
    hard = torch.zeros_like(z)
    if n_pos > 0:
        hard[torch.topk(z, n_pos).indices] = 1.0
    return hard


@LOSSES.register("logconf")
def logconf(*, alpha_max: Fraction = 0.75, warmup: Fraction = 0.2,
            balance: Literal["prior", "logodds"] = "prior") -> LossFn:
    """Auxiliary confidence loss (Burns et al.):
    L = (1 - a) CE(f(x), y_weak) + a CE(f(x), h_t(f(x))), with a ramping smoothly from 0 to
    `alpha_max` over the first `warmup` fraction of training. `balance`: `prior` hardens the
    top share of the student's log-odds that matches the weak labels' positive share; `logodds`
    instead centres the student's log-odds at that same quantile and uses sigmoid of the centred
    log-odds as a soft self-target (a gentler variant that keeps the batch balanced in
    log-odds)."""
    def loss(logits: torch.Tensor, target: torch.Tensor, progress: float) -> torch.Tensor:
        a = alpha_max * ramp(progress, warmup)
        if balance == "prior":
            self_target = prior_matched_hardening(logits, target)
        else:
            z = (logits[:, 1] - logits[:, 0]).detach()
            prior = (target > 0.5).float().mean().clamp(1e-3, 1 - 1e-3)
            self_target = torch.sigmoid(z - torch.quantile(z, 1 - prior))
        weak = soft_xent(logits, two_class(target))
        own = soft_xent(logits, two_class(self_target))
        return ((1 - a) * weak + a * own).mean()

    return loss


@LOSSES.register("product")
def product(*, alpha: Annotated[float, Ge(0)] = 1.0, beta: Annotated[float, Ge(0)] = 1.0,
            warmup: Fraction = 0.2) -> LossFn:
    """Product loss: cross-entropy to the target proportional to p_weak^alpha * p_student^beta
    (student part detached); beta ramps from 0 over `warmup` so training starts on the weak
    labels."""

    def loss(logits: torch.Tensor, target: torch.Tensor, progress: float) -> torch.Tensor:
        b = beta * ramp(progress, warmup)
        log_t = alpha * torch.log(two_class(target).clamp_min(1e-6)) + \
            b * F.log_softmax(logits.detach(), dim=-1)
        return soft_xent(logits, torch.softmax(log_t, dim=-1)).mean()

    return loss


@LOSSES.register("window")
def window(*, radius: Annotated[float, Range(0, 0.5, lo_open=True)] = 0.4) -> LossFn:
    """Confidence window: cross-entropy on the weak labels only for examples where the student
    is unsure, |p_student - 0.5| < radius; confident examples contribute nothing."""

    def loss(logits: torch.Tensor, target: torch.Tensor, progress: float) -> torch.Tensor:
        p1 = torch.softmax(logits.detach(), -1)[:, 1]
        mask = ((p1 - 0.5).abs() < radius).float()
        return (soft_xent(logits, two_class(target)) * mask).sum() / mask.sum().clamp_min(1.0)

    return loss


@LOSSES.register("entropy")
def entropy(*, alpha_max: Annotated[float, Ge(0)] = 0.5, warmup: Fraction = 0.2) -> LossFn:
    """Cross-entropy on the weak labels plus a * H(student), the entropy-minimisation auxiliary
    loss (pushes the student to commit), with a ramping like logconf's."""

    def loss(logits: torch.Tensor, target: torch.Tensor, progress: float) -> torch.Tensor:
        a = alpha_max * ramp(progress, warmup)
        logp = F.log_softmax(logits, -1)
        h = -(logp.exp() * logp).sum(-1)
        return (soft_xent(logits, two_class(target)) + a * h).mean()

    return loss


@LOSSES.register("reverse_ce")
def reverse_ce(*, kl: bool = False, floor: Annotated[float, Range(0, 1, lo_open=True, hi_open=True)] = 1e-4) -> LossFn:
    """Reverse cross-entropy -sum_c p_student(c) log p_weak(c) (weak probabilities floored at
    `floor`, since hard labels have log 0); with `kl`, the reverse KL(student || weak), which adds
    the student's negative entropy."""

    def loss(logits: torch.Tensor, target: torch.Tensor, progress: float) -> torch.Tensor:
        logp = F.log_softmax(logits, -1)
        p = logp.exp()
        log_w = torch.log(two_class(target).clamp_min(floor))
        out = -(p * log_w).sum(-1)
        if kl:
            out = out + (p * logp).sum(-1)
        return out.mean()

    return loss


def quantile_hardening(logits: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """(B, 2) one-hot self-targets as both reference codebases harden: t is the `level`-quantile
    (linear interpolation) of the student's probabilities of class 0 over the batch; an example
    is class 0 where that probability is >= t, else class 1. So about a share `level` of the
    batch is called class 1. No gradient flows through it."""
    p0 = torch.softmax(logits.detach(), dim=-1)[:, 0]
    t = torch.quantile(p0, level.clamp(0.0, 1.0).to(p0.dtype))
    zero = (p0 >= t).to(logits.dtype)
    return torch.stack([zero, 1 - zero], dim=-1)


def mixed_target_xent(logits: torch.Tensor, weak: torch.Tensor, own: torch.Tensor, a: float) -> torch.Tensor:
    """Mean cross-entropy against (1 - a) * weak + a * own, both (B, 2) distributions."""
    return soft_xent(logits, (1 - a) * weak + a * own).mean()


@LOSSES.register("logconf_openai")
def logconf_openai(*, aux_coef: Fraction = 0.5, warmup_frac: Fraction = 0.1) -> LossFn:
    """The auxiliary confidence loss as openai/weak-to-strong computes it (a reproduction of its
    formula, for comparisons with that codebase; `logconf` is the intended smooth version).
    Weight a = aux_coef * (progress if progress <= warmup_frac else 1): it rises from 0 to
    aux_coef * warmup_frac over the warm-up and then steps up to aux_coef. Self-targets harden
    at the quantile of the weak labels' *soft* mean (`quantile_hardening`). Loss: cross-entropy
    against (1 - a) * weak + a * hardened, averaged over the batch."""

    def loss(logits: torch.Tensor, target: torch.Tensor, progress: float) -> torch.Tensor:
        a = aux_coef * (1.0 if progress > warmup_frac else float(progress))
        own = quantile_hardening(logits, target.float().mean())
        return mixed_target_xent(logits, two_class(target), own, a)

    return loss


@LOSSES.register("logconf_eleuther")
def logconf_eleuther(*, aux_coef: Fraction = 0.5, warmup_steps: Annotated[int, Ge(0)] = 200,
                     balance_batch: bool = False) -> LossFn:
    """The auxiliary confidence loss as EleutherAI/w2s computes it (a reproduction of its
    formula). Weight a = aux_coef * min(1, step / warmup_steps), in optimiser steps (aux_coef
    from the first step when warmup_steps = 0). Without `balance_batch`, self-targets harden at
    the quantile of the weak labels' soft mean, as openai's; with it, the weak labels are first
    centred in log-odds over the batch, w' = sigmoid(logit(w) - mean(logit(w))) with logit(w) =
    log(w + 1e-7) - log(1 - w + 1e-7), and the hardening quantile is 0.5. Loss: cross-entropy
    against (1 - a) * w' + a * hardened. The threshold is taken over the batch (that codebase
    takes it over its last 32 predictions: the same for batches of 32 or more)."""

    def loss(logits: torch.Tensor, target: torch.Tensor, progress: float) -> torch.Tensor:
        step = getattr(progress, "step", None)
        if step is None:
            raise ValueError("logconf_eleuther warms up in optimiser steps: pass losses.Progress")
        a = aux_coef * (min(1.0, step / warmup_steps) if warmup_steps > 0 else 1.0)
        w = target.float()
        if balance_batch:
            z = torch.log(w + 1e-7) - torch.log(1 - w + 1e-7)
            w = torch.sigmoid(z - z.mean())
            level = torch.tensor(0.5)
        else:
            level = w.mean()
        return mixed_target_xent(logits, two_class(w), quantile_hardening(logits, level), a)

    return loss
