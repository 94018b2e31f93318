"""Every registered loss: its value on a hand-computed example and the direction of its gradient.

Expected values are written with softplus on the log-odds z = l1 - l0 (CE(z, y) =
y softplus(-z) + (1 - y) softplus(z)), independently of the implementation's log_softmax.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from w2sgen.losses import LOSSES, Progress


def softplus(x):
    return math.log1p(math.exp(x))


def ce(z, y):
    return y * softplus(-z) + (1 - y) * softplus(z)


def sig(z):
    return 1 / (1 + math.exp(-z))


def logits_of(zs):
    return torch.tensor([[0.0, z] for z in zs], requires_grad=True)


def value(name, zs, target, progress=1.0, **opts):
    return LOSSES.get(name)(**opts)(logits_of(zs), torch.tensor(target), progress).item()


def grad_z(name, zs, target, progress=1.0, **opts):
    logits = logits_of(zs)
    LOSSES.get(name)(**opts)(logits, torch.tensor(target), progress).backward()
    return logits.grad[:, 1].numpy()


ZS = [-2.0, 0.5, 1.0, 3.0]
WEAK = [1.0, 0.0, 1.0, 0.0]


COVERED = ["xent", "logconf", "product", "window", "entropy", "reverse_ce", "logconf_openai",
           "logconf_eleuther"]


def test_every_built_in_loss_is_covered():
    """A loss added to losses.py gets its tests here; an installed plugin's losses are its own."""
    built_in = {name for name, factory in LOSSES.items() if factory.__module__ == "w2sgen.losses"}
    assert built_in == set(COVERED)


def test_xent():
    assert value("xent", ZS, [0.8, 0.2, 1.0, 0.0]) == pytest.approx(
        np.mean([ce(-2, 0.8), ce(0.5, 0.2), ce(1, 1), ce(3, 0)]), rel=1e-6)


def test_logconf_value_threshold_and_smooth_ramp():
    # weak prior 2/4 -> the top-2 log-odds (rows 3, 4) are hardened to 1
    hard = [0, 0, 1, 1]

    def expected(a):
        return np.mean([(1 - a) * ce(z, w) + a * ce(z, h) for z, w, h in zip(ZS, WEAK, hard)])

    assert value("logconf", ZS, WEAK, 1.0) == pytest.approx(expected(0.75), rel=1e-6)
    assert value("logconf", ZS, WEAK, 0.1) == pytest.approx(expected(0.375), rel=1e-6)  # half-way up
    assert value("logconf", ZS, WEAK, 0.0) == pytest.approx(value("xent", ZS, WEAK), rel=1e-6)
    a = [value("logconf", ZS, WEAK, p, alpha_max=0.5) for p in np.linspace(0, 0.3, 31)]
    steps = np.diff(a)
    # linear during the warm-up (equal steps, no jump), constant after it
    assert np.allclose(steps[:20], steps[0], atol=1e-6) and abs(steps[0]) > 0
    assert np.allclose(steps[20:], 0, atol=1e-6)
    # a prior of 1/4 hardens only the single most confident example
    assert value("logconf", ZS, [0.0, 0.0, 0.0, 1.0]) == pytest.approx(
        np.mean([0.25 * ce(z, w) + 0.75 * ce(z, h) for z, w, h in zip(ZS, [0, 0, 0, 1], [0, 0, 0, 1])]),
        rel=1e-6)


def test_logconf_lets_a_confident_student_overrule_the_weak_label():
    # row 4: student says 1 with z=3, weak label says 0
    assert grad_z("xent", ZS, WEAK)[3] > 0  # xent pulls it down to imitate the weak label
    assert grad_z("logconf", ZS, WEAK, alpha_max=1.0)[3] < 0  # full confidence weight pushes it up


def test_logconf_logodds_variant():
    zs = np.array(ZS)
    shift = np.quantile(zs, 0.5)  # torch.quantile uses linear interpolation, as numpy does
    soft = [sig(z - shift) for z in zs]
    got = value("logconf", ZS, WEAK, balance="logodds")
    assert got == pytest.approx(np.mean([0.25 * ce(z, w) + 0.75 * ce(z, s)
                                         for z, w, s in zip(ZS, WEAK, soft)]), rel=1e-5)


def test_product():
    # z=0 -> p_s=.5, weak .8 -> target .8 ; z=log 3 -> p_s=.75, weak .5 -> target .75
    zs = [0.0, math.log(3)]
    got = value("product", zs, [0.8, 0.5])
    assert got == pytest.approx(np.mean([ce(0, 0.8), ce(math.log(3), 0.75)]), rel=1e-5)
    # before any ramp the student's own belief is ignored: plain xent on the weak labels
    assert value("product", zs, [0.8, 0.5], 0.0) == pytest.approx(value("xent", zs, [0.8, 0.5]), rel=1e-5)
    g = grad_z("product", zs, [0.8, 0.5])
    assert g[0] < 0 and abs(g[1]) < 1e-6  # row 2 already matches its product target


def test_window_ignores_confident_examples():
    # p = sigmoid(z): rows with |p - .5| < .35 are z in (-1.735, 1.735): rows 2 and 3
    got = value("window", ZS, WEAK, radius=0.35)
    assert got == pytest.approx((ce(0.5, 0) + ce(1.0, 1)) / 2, rel=1e-6)
    g = grad_z("window", ZS, WEAK, radius=0.35)
    assert g[0] == 0 and g[3] == 0 and g[1] > 0 and g[2] < 0


def test_entropy():
    def h(z):
        p = sig(z)
        return -(p * math.log(p) + (1 - p) * math.log(1 - p))

    got = value("entropy", ZS, WEAK, alpha_max=0.5)
    assert got == pytest.approx(np.mean([ce(z, w) + 0.5 * h(z) for z, w in zip(ZS, WEAK)]), rel=1e-6)
    # where the soft label equals the prediction only the entropy term acts: it pushes z away
    # from 0 in the direction it already leans
    assert grad_z("entropy", [0.2], [sig(0.2)])[0] < 0  # xent is at its optimum here


def test_reverse_ce_and_reverse_kl():
    floor = 1e-4
    def rce(z, w):
        p = sig(z)
        return -(p * math.log(max(w, floor)) + (1 - p) * math.log(max(1 - w, floor)))

    targets = [0.9, 0.2, 1.0, 0.0]
    assert value("reverse_ce", ZS, targets) == pytest.approx(np.mean([rce(z, w) for z, w in zip(ZS, targets)]), rel=1e-6)

    def rkl(z, w):
        p = sig(z)
        return rce(z, w) + p * math.log(p) + (1 - p) * math.log(1 - p)

    assert value("reverse_ce", ZS, targets, kl=True) == pytest.approx(
        np.mean([rkl(z, w) for z, w in zip(ZS, targets)]), rel=1e-5)
    g = grad_z("reverse_ce", ZS, targets)
    assert g[0] < 0 and g[3] > 0  # toward the weak label


@pytest.mark.parametrize("name", COVERED)
def test_every_loss_moves_an_unsure_student_toward_a_confident_weak_label(name):
    assert grad_z(name, [0.0, 0.1], [1.0, 1.0], progress=Progress(0, 10))[0] < 0


# ------------------------------------------------------ the reference codebases' logconf
# Hand-computed: ZS = [-2, .5, 1, 3] -> p0 = sigmoid(-z) = [.881, .378, .269, .047].
SOFT = [0.9, 0.3, 0.6, 0.2]  # soft mean 0.5


def quantile_linear(values, q):
    """numpy's default (linear) quantile, as torch.quantile."""
    return float(np.quantile(np.array(values), q))


def hardened(zs, level):
    p0 = [sig(-z) for z in zs]
    t = quantile_linear(p0, level)
    return [0.0 if p >= t else 1.0 for p in p0]


def test_openai_threshold_is_the_soft_mean_quantile():
    # soft mean .5: t = the median of p0 = (.378 + .269) / 2; rows 1, 2 have p0 >= t -> class 0
    assert hardened(ZS, 0.5) == [0, 0, 1, 1]
    # soft mean .275: t = the .275 quantile of p0 sorted [.047, .269, .378, .881], at position
    # .825 of 3: .047 + .825 * (.269 - .047) = .230, so rows 1-3 (p0 >= .230) are class 0
    soft = [0.05, 0.05, 0.9, 0.1]
    assert hardened(ZS, np.mean(soft)) == [0, 0, 0, 1]
    for target in (SOFT, soft):
        h = hardened(ZS, np.mean(target))
        want = np.mean([0.5 * ce(z, w) + 0.5 * ce(z, x) for z, w, x in zip(ZS, target, h)])
        assert value("logconf_openai", ZS, target, 0.5) == pytest.approx(want, rel=1e-6)


def test_openai_schedule_rises_to_a_tenth_then_jumps():
    h = hardened(ZS, 0.5)

    def want(a):
        return np.mean([(1 - a) * ce(z, w) + a * ce(z, x) for z, w, x in zip(ZS, SOFT, h)])

    # a = 0.5 * progress during the warm-up (progress <= 0.1), then 0.5: a step from 0.05 to 0.5
    assert value("logconf_openai", ZS, SOFT, 0.0) == pytest.approx(want(0.0), rel=1e-6)
    assert value("logconf_openai", ZS, SOFT, 0.05) == pytest.approx(want(0.025), rel=1e-6)
    assert value("logconf_openai", ZS, SOFT, 0.1) == pytest.approx(want(0.05), rel=1e-6)
    assert value("logconf_openai", ZS, SOFT, 0.1001) == pytest.approx(want(0.5), rel=1e-6)
    assert value("logconf_openai", ZS, SOFT, 1.0) == pytest.approx(want(0.5), rel=1e-6)


def test_eleuther_warms_up_in_steps():
    h = hardened(ZS, 0.5)

    def want(a):
        return np.mean([(1 - a) * ce(z, w) + a * ce(z, x) for z, w, x in zip(ZS, SOFT, h)])

    for step, a in ((0, 0.0), (50, 0.125), (200, 0.5), (900, 0.5)):
        assert value("logconf_eleuther", ZS, SOFT, Progress(step, 1000)) == pytest.approx(want(a), rel=1e-6)
    assert value("logconf_eleuther", ZS, SOFT, Progress(0, 1000), warmup_steps=0) == pytest.approx(want(0.5), rel=1e-6)
    with pytest.raises(ValueError, match="optimiser steps"):
        value("logconf_eleuther", ZS, SOFT, 0.5)


def test_eleuther_balance_batch_centres_the_weak_log_odds():
    target = [0.9, 0.8, 0.6, 0.2]  # mostly positive: centring moves them toward balance
    lo = [math.log(w + 1e-7) - math.log(1 - w + 1e-7) for w in target]
    centred = [sig(x - np.mean(lo)) for x in lo]
    assert sum(c > 0.5 for c in centred) == 2 and centred[3] < 0.2
    h = hardened(ZS, 0.5)  # the quantile is 0.5 whatever the weak labels' mean
    want = np.mean([0.5 * ce(z, w) + 0.5 * ce(z, x) for z, w, x in zip(ZS, centred, h)])
    assert value("logconf_eleuther", ZS, target, Progress(400, 1000), balance_batch=True) == \
        pytest.approx(want, rel=1e-5)
    # without balancing, the mean .625 sets the quantile: position 1.875 of 3 in the sorted p0,
    # t = .269 + .875 * (.378 - .269) = .364, so rows 1 and 2 stay class 0
    h2 = hardened(ZS, 0.625)
    assert h2 == [0, 0, 1, 1]
    # a mean of .8: position 2.4, t = .378 + .4 * (.881 - .378) = .579: only row 1 is class 0
    high = [0.9, 0.9, 0.8, 0.6]
    h3 = hardened(ZS, 0.8)
    assert h3 == [0, 1, 1, 1]
    want3 = np.mean([0.5 * ce(z, w) + 0.5 * ce(z, x) for z, w, x in zip(ZS, high, h3)])
    assert value("logconf_eleuther", ZS, high, Progress(400, 1000)) == pytest.approx(want3, rel=1e-6)
    want2 = np.mean([0.5 * ce(z, w) + 0.5 * ce(z, x) for z, w, x in zip(ZS, target, h2)])
    assert value("logconf_eleuther", ZS, target, Progress(400, 1000)) == pytest.approx(want2, rel=1e-6)


def test_progress_is_the_share_and_carries_the_step():
    p = Progress(30, 120)
    assert p == 0.25 and (p.step, p.total) == (30, 120) and Progress(0, 0) == 0.0
