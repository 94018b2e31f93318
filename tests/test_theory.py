"""The transfer-learning simulation (w2sgen.theory) against its closed forms."""
from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from w2sgen import theory as th
from w2sgen.errors import W2SError


def brute_force_posterior(X, y, concepts, alpha, s2):
    """p(k|D) by multiplying Gaussian densities directly (no logs)."""
    like = np.ones(concepts.shape[1])
    for x_i, y_i in zip(X, y):
        mu = x_i @ concepts
        like = like * np.exp(-(y_i - mu) ** 2 / (2 * s2)) / math.sqrt(2 * math.pi * s2)
    unnorm = np.asarray(alpha) * like
    return unnorm / unnorm.sum()


@pytest.mark.parametrize("alpha,s2", [((0.25, 0.25, 0.25, 0.25), 1.0), ((0.5, 0.3, 0.2, 0.0), 0.7),
                                      ((0.1, 0.2, 0.3, 0.4), 2.5)])
def test_exact_posterior_matches_brute_force(alpha, s2):
    rng = np.random.default_rng(1)
    concepts = th.draw_concepts(rng, 6, 4)
    for n in (0, 1, 3, 5):
        X = rng.standard_normal((n, 6))
        y = X @ concepts[:, 1] + rng.standard_normal(n)
        got = np.exp(th.log_posterior(X, y, concepts, np.asarray(alpha), s2))
        want = brute_force_posterior(X, y, concepts, alpha, s2)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
        assert abs(got.sum() - 1) < 1e-12


def test_leave_one_out_batches_use_the_other_examples_of_the_batch():
    rng = np.random.default_rng(2)
    concepts = th.draw_concepts(rng, 5, 3)
    alpha = np.array([0.2, 0.5, 0.3])
    X = rng.standard_normal((11, 5))
    y = X @ concepts[:, 0] + 0.8 * rng.standard_normal(11)
    n = 2  # batches of 3; the 11th example is dropped
    lp = th.loo_log_posteriors(th.gaussian_loglik(X, y, concepts, 1.3), n, alpha)
    assert lp.shape == (9, 3)
    for i in range(9):
        mates = [j for j in range(3 * (i // 3), 3 * (i // 3) + 3) if j != i]
        want = th.log_posterior(X[mates], y[mates], concepts, alpha, 1.3)
        np.testing.assert_allclose(lp[i], want, atol=1e-12)
    # n = 0: no demonstrations, the posterior is the prior
    np.testing.assert_allclose(np.exp(th.loo_log_posteriors(np.zeros((4, 3)), 0, alpha)),
                               np.tile(alpha, (4, 1)), atol=1e-15)


def test_log_misalignment_is_accurate_far_below_machine_epsilon():
    lp = np.array([[0.0, -60.0, -70.0]])
    lp = lp - th.logsumexp(lp)[:, None]
    want = math.log(math.exp(-60) + math.exp(-70))
    assert abs(th.log_misalignment(lp, 0)[0] - want) < 1e-9


def test_concepts_are_orthonormal_and_bias_direction_orthogonal():
    rng = np.random.default_rng(3)
    B = th.draw_concepts(rng, 32, 4)
    np.testing.assert_allclose(B.T @ B, np.eye(4), atol=1e-12)
    u = th.draw_orthogonal_unit(rng, B)
    assert abs(np.linalg.norm(u) - 1) < 1e-12 and np.max(np.abs(B.T @ u)) < 1e-12


def test_ridge_path_matches_normal_equations_and_lstsq():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((200, 7))
    y = X @ rng.standard_normal(7) + rng.standard_normal(200)
    center = rng.standard_normal(7)
    lams = (0.0, 1e-3, 0.1, 1.0, 30.0)
    path = th.RidgePath(X, lams)
    for center_ in (None, center):
        thetas = path.thetas(y, center_)
        for lp, theta in zip(lams, thetas):
            lam = lp * 200
            np.testing.assert_allclose(theta, th.ridge(X, y, lam, center_), atol=1e-10)
            direct = np.linalg.solve(X.T @ X + lam * np.eye(7),
                                     X.T @ y + (0 if center_ is None else lam * center_))
            np.testing.assert_allclose(theta, direct, atol=1e-10)
        target = rng.standard_normal(7)
        np.testing.assert_allclose(path.risks(y, target, center_),
                                   np.sum((thetas - target) ** 2, axis=1), atol=1e-10)
    np.testing.assert_allclose(path.thetas(y)[0], np.linalg.lstsq(X, y, rcond=None)[0],
                               atol=1e-10)


def test_floor_formulas_are_the_minimum_over_shrinkage():
    g = np.linspace(-1, 2, 300001)
    for bias in (0.5, 1.0, 2.0):
        B = bias ** 2
        assert abs(np.min((1 - g) ** 2 + g ** 2 * B) - th.finetune_floor(bias)) < 1e-9
        alpha = np.array([0.25, 0.25, 0.25, 0.25])
        A = th.source_mean_gap(alpha, 0)
        assert abs(A - 0.75) < 1e-15
        assert abs(np.min((1 - g) ** 2 * A + g ** 2 * B)
                   - th.shrink_to_mean_floor(bias, alpha, 0)) < 1e-9
    assert th.finetune_floor(1.0) == 0.5
    assert abs(th.shrink_to_mean_floor(1.0, alpha, 0) - 3 / 7) < 1e-15


def test_measured_finetuning_sits_on_the_floor_and_refinement_far_below():
    cfg = th.TheoryConfig(d=16, K=4, N=20000)
    res = th.run_sweep(ns=(0, 16), biases=(1.0, 2.0), taus=(0.0,), seeds=3, cfg=cfg)
    ft, fs = res.mean("finetune")[:, 0], res.mean("ft_shrink")[:, 0]
    assert abs(ft[0] - 0.5) < 0.02 and abs(ft[1] - 0.8) < 0.02
    assert abs(fs[0] - 3 / 7) < 0.02
    refine = res.mean("refine")[:, 0]
    assert abs(refine[0, 0] - 0.75) < 0.01  # n = 0: the source's mean concept, A = 3/4
    assert refine[0, 1] < 0.1 * th.finetune_floor(1.0)  # n = 16, bias 1
    assert refine[0, 1] < ft[0] / 10
    assert res.mean("oracle") < 0.01


def test_misalignment_decreases_with_n_and_follows_the_expected_rate():
    ns = (0, 1, 2, 4, 8, 16)
    res = th.run_sweep(ns=ns, biases=(0.0, 1.0), taus=(0.0, 1.0), seeds=2,
                       cfg=th.TheoryConfig(d=12, K=4, N=1500))
    mis = res.mean("misalign")
    assert np.all(np.diff(mis, axis=-1) < 0)
    assert np.allclose(mis[..., 0], 0.75)  # n = 0: the prior's mass off k*
    assert np.all(np.diff(res.mean("refine"), axis=-1) < 0)
    # the bias slows the *mean* misalignment (larger variance of the log odds)...
    assert mis[1, 0, -1] > mis[0, 0, -1]
    # ...and the fitted rate is of the order of the Chernoff rate (finite-n prefactors: above it)
    for r in res.rates():
        assert 0.8 * r["chernoff"] < r["fit_mean"] < 2.0 * r["chernoff"]


def test_target_outside_support_makes_refinement_fail():
    cfg = th.TheoryConfig(d=12, K=4, N=1500, target_in_support=False)
    assert cfg.weights()[0] == 0 and abs(cfg.weights().sum() - 1) < 1e-15
    res = th.run_sweep(ns=(0, 4, 16), biases=(1.0,), taus=(0.0,), seeds=2, cfg=cfg)
    np.testing.assert_allclose(res.mean("misalign"), 1.0)
    refine = res.mean("refine")[0, 0]
    assert np.all(refine > 0.95)  # best possible: shrink everything to 0, excess risk ||beta*||^2
    assert np.all(refine > 1.5 * res.mean("finetune")[0, 0])


def test_expected_log_odds_and_variance_against_monte_carlo():
    rng = np.random.default_rng(5)
    d, K, n, reps, bias, tau, s2 = 10, 3, 6, 20000, 1.0, 0.5, 1.5
    concepts = th.draw_concepts(rng, d, K)
    b = bias * th.draw_orthogonal_unit(rng, concepts)
    X = rng.standard_normal((reps, n, d))
    noise = rng.standard_normal((reps, n)) + tau * rng.standard_normal((reps, n))
    y = X @ (concepts[:, 0] + b) + noise
    alpha = np.array([0.5, 0.3, 0.2])
    ll = -0.5 * (y[..., None] - X @ concepts) ** 2 / s2  # (reps, n, K)
    log_odds = (np.log(alpha[0]) + ll[..., 0].sum(1)) - (np.log(alpha[1]) + ll[..., 1].sum(1))
    v = bias ** 2 + 1 + tau ** 2
    mean = th.expected_log_odds(n, 2.0, s2, math.log(0.5 / 0.3))
    var = th.log_odds_variance(n, 2.0, v, s2)
    assert abs(log_odds.mean() - mean) < 4 * math.sqrt(var / reps)
    assert abs(log_odds.var() / var - 1) < 0.05
    # moment generating function at the Chernoff point
    z = (ll[:, 0, 0] - ll[:, 0, 1])
    t = s2 / (2 * v)
    assert abs(np.mean(np.exp(-t * z)) / th.log_odds_mgf(t, 2.0, v, s2) - 1) < 0.02


def test_rate_closed_forms():
    assert abs(th.misalignment_rate(2.0, 1.0, 1.0) - 0.5 * math.log(1.5)) < 1e-12
    assert abs(th.misalignment_rate(2.0, 2.0, 1.0) - 0.5 * math.log(1.25)) < 1e-12
    t = np.linspace(0, 1, 10001)
    for v, s2 in ((2.0, 1.0), (1.0, 3.0), (5.0, 0.5)):
        grid_min = np.min(th.log_odds_mgf(t, 2.0, v, s2))
        assert abs(th.misalignment_rate(2.0, v, s2) + np.log(grid_min)) < 1e-7
    assert th.typical_rate(2.0, 1.0) == 1.0
    assert abs(th.fit_rate([1, 2, 3, 4], np.exp(-0.3 * np.arange(1, 5)) * 2) - 0.3) < 1e-12


def test_determinism_and_seed_independence():
    cfg = th.TheoryConfig(d=8, K=3, N=300)
    a = th.simulate_seed(7, cfg, (0, 2, 5), (0.0, 1.0), (0.5,))
    b = th.simulate_seed(7, cfg, (0, 2, 5), (0.0, 1.0), (0.5,))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    res = th.run_sweep((0, 2, 5), (0.0, 1.0), (0.5,), seeds=(5, 7), cfg=cfg)
    np.testing.assert_array_equal(res.data["refine"][1], a["refine"])
    s = th.simulate_seed(7, th.TheoryConfig(d=8, K=3, N=300, label="sample"), (4,), (1.0,), (0.0,))
    s2 = th.simulate_seed(7, th.TheoryConfig(d=8, K=3, N=300, label="sample"), (4,), (1.0,), (0.0,))
    np.testing.assert_array_equal(s["refine"], s2["refine"])


def test_weak_labels_equal_ground_truth_without_bias_or_noise():
    res = th.run_sweep((0,), (0.0,), (0.0,), seeds=2, cfg=th.TheoryConfig(d=8, K=3, N=500))
    np.testing.assert_allclose(res.data["finetune"][:, 0, 0], res.data["oracle"], rtol=1e-12)


@pytest.mark.parametrize("label", ["map", "sample"])
def test_other_refined_labels_also_recover_the_target(label):
    cfg = th.TheoryConfig(d=12, K=4, N=1500, label=label)
    res = th.run_sweep((0, 16), (1.0,), (0.0,), seeds=2, cfg=cfg)
    assert res.mean("refine")[0, 0, 1] < 0.25 * th.finetune_floor(1.0)
    assert res.mean("refine")[0, 0, 0] > 0.7  # n = 0: no information, not a lucky tie-break


@pytest.mark.parametrize("kwargs,needle", [
    ({"d": 4, "K": 4}, "d must be"), ({"K": 1}, "K must be"), ({"s2": 0.0}, "assumed noise"),
    ({"label": "median"}, "label must be"), ({"alpha": (1, 2)}, "alpha must be"),
    ({"k_star": 9}, "k_star")])
def test_bad_config_is_a_w2s_error(kwargs, needle):
    with pytest.raises(W2SError, match=needle):
        th.TheoryConfig(**kwargs)


def test_cli_quick_writes_plots_and_rejects_bad_arguments(tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    # without --out: ./theory of the current folder (never ./docs, whose plots a clone tracks)
    p = subprocess.run([sys.executable, "-m", "w2sgen", "theory", "--quick", "--seeds", "2"],
                       check=False, capture_output=True, text=True, env=env, timeout=120,
                       cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "misalignment" in p.stdout and "floor B/(1+B) = 0.5" in p.stdout
    assert max(len(line) for line in p.stdout.splitlines() if "plots written" not in line) <= 100
    out = tmp_path / "theory"
    assert f"plots written to {out.resolve()}: theory-excess-risk.png" in p.stdout
    assert (out / "theory-excess-risk.png").stat().st_size > 10000
    assert (out / "theory-misalignment.png").stat().st_size > 10000
    assert not (tmp_path / "docs").exists()
    bad = subprocess.run([sys.executable, "-m", "w2sgen", "theory", "--seeds", "0"],
                         check=False, capture_output=True, text=True, env=env, timeout=120)
    lines = [x for x in bad.stderr.splitlines() if x.strip()]
    assert bad.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: --seeds")
