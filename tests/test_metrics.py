"""Metrics: accuracy, AUC against scikit-learn, PGR by hand, agreement, bootstrap intervals."""
from __future__ import annotations

import math

import numpy as np
import pytest

from w2sgen.metrics import accuracy, agreement, evaluate, pgr, roc_auc

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def probs_for(labels: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """Confident probabilities whose hard prediction is right exactly where `correct`."""
    pred = np.where(correct, labels, 1 - labels)
    return np.where(pred == 1, 0.9, 0.1)


def test_accuracy():
    labels = np.array([1, 0, 1, 0, 1])
    assert accuracy(labels, np.array([0.9, 0.2, 0.6, 0.7, 0.1])) == pytest.approx(0.6)
    # 0.5 is not above the threshold: it predicts class 0
    assert accuracy(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
    assert accuracy(labels, labels.astype(float)) == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_auc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 500)
    probs = np.round(np.clip(0.5 + 0.3 * (labels - 0.5) + rng.normal(0, 0.3, 500), 0, 1), 1)
    assert len(np.unique(probs)) < 15  # heavy ties
    assert roc_auc(labels, probs) == pytest.approx(sklearn_metrics.roc_auc_score(labels, probs),
                                                   abs=1e-12)


def test_roc_auc_edge_cases():
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert roc_auc(np.array([0, 1, 0, 1]), np.full(4, 0.3)) == 0.5  # all tied
    assert math.isnan(roc_auc(np.array([1, 1, 1]), np.array([0.1, 0.5, 0.9])))


def hand_pgr_data(n: int = 200):
    """Weak right on 60%, student on 75%, ceiling on 90% (nested), so PGR = 0.15/0.3 = 0.5."""
    labels = np.arange(n) % 2
    idx = np.arange(n)
    weak = probs_for(labels, idx < 0.6 * n)
    student = probs_for(labels, idx < 0.75 * n)
    ceiling = probs_for(labels, idx < 0.9 * n)
    return labels, weak, student, ceiling


def test_pgr_by_hand():
    labels, weak, student, ceiling = hand_pgr_data()
    out = evaluate(labels, weak, student, ceiling, rounds=300, confidence=0.95, seed=0)
    assert out["n_test"] == 200 and out["bootstrap"] == 300
    assert out["weak_accuracy"]["value"] == pytest.approx(0.6)
    assert out["student_accuracy"]["value"] == pytest.approx(0.75)
    assert out["ceiling_accuracy"]["value"] == pytest.approx(0.9)
    p = out["pgr_accuracy"]
    assert p["value"] == pytest.approx(0.5, abs=1e-12)
    assert p["reason"] == ""
    assert p["low"] < 0.5 < p["high"]
    assert 0.3 < p["low"] and p["high"] < 0.7
    gap = out["gap_accuracy"]
    assert gap["value"] == pytest.approx(0.3) and 0 < gap["low"] < 0.3 < gap["high"]
    for k in ("weak", "student", "ceiling"):
        est = out[f"{k}_accuracy"]
        assert est["low"] < est["value"] < est["high"]


def test_pgr_undefined_when_ceiling_equals_weak():
    labels, weak, student, _ = hand_pgr_data()
    out = evaluate(labels, weak, student, weak.copy(), rounds=200, confidence=0.95, seed=0)
    for key in ("pgr_accuracy", "pgr_auc"):
        p = out[key]
        assert p["value"] is None and p["low"] is None and p["high"] is None
        assert p["reason"] == "no clear gap: gap +0.000 [+0.000, +0.000] holds 0"
    assert out["gap_accuracy"] == {"value": 0.0, "low": 0.0, "high": 0.0}


def test_pgr_function_directly():
    # index 0 is the point estimate, the rest are resamples
    weak = np.array([0.6, 0.58, 0.62, 0.6, 0.61])
    student = np.array([0.7, 0.69, 0.71, 0.72, 0.70])
    ceiling = np.array([0.8, 0.79, 0.83, 0.8, 0.8])
    p = pgr(weak, student, ceiling, 0.95)
    assert p.value == pytest.approx(0.5)
    assert "undefined" in str(pgr(weak, student, weak, 0.95))


def test_agreement_hand_example():
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    weak = np.array([1, 1, 0, 0, 0, 0, 1, 1]) * 0.6 + 0.2     # wrong on 2, 3, 6, 7
    student = np.array([1, 0, 0, 1, 0, 0, 1, 0]) * 0.6 + 0.2
    a = agreement(labels, weak, student)
    assert a["agreement"] == 5 / 8
    assert a["agreement_on_weak_errors"] == 2 / 4   # agrees on 2 and 6
    assert a["agreement_on_weak_correct"] == 3 / 4  # agrees on 0, 4, 5
    assert a["n_weak_errors"] == 4 and isinstance(a["n_weak_errors"], int)
    # a supervisor with no mistakes: agreement on its errors is undefined
    a = agreement(labels, labels * 0.8 + 0.1, student)
    assert a["n_weak_errors"] == 0 and math.isnan(a["agreement_on_weak_errors"])


def test_bootstrap_width_matches_normal_approximation():
    rng = np.random.default_rng(7)
    n = 2000
    labels = rng.integers(0, 2, n)
    preds = [probs_for(labels, rng.random(n) < p) for p in (0.7, 0.8, 0.9)]
    out = evaluate(labels, *preds, rounds=1000, confidence=0.95, seed=0)
    for name in ("weak", "student", "ceiling"):
        est = out[f"{name}_accuracy"]
        p = est["value"]
        normal = 2 * 1.959964 * math.sqrt(p * (1 - p) / n)
        assert est["high"] - est["low"] == pytest.approx(normal, rel=0.2)
        assert abs((est["low"] + est["high"]) / 2 - p) < 0.2 * normal  # roughly centred


def test_evaluate_is_deterministic_for_a_seed():
    rng = np.random.default_rng(1)
    n = 300
    labels = rng.integers(0, 2, n)
    preds = [np.clip(labels * q + rng.random(n) * (1 - q), 0, 1) for q in (0.2, 0.4, 0.6)]
    a = evaluate(labels, *preds, rounds=200, confidence=0.9, seed=3)
    b = evaluate(labels, *preds, rounds=200, confidence=0.9, seed=3)
    assert a == b
    c = evaluate(labels, *preds, rounds=200, confidence=0.9, seed=4)
    assert c["student_accuracy"]["value"] == a["student_accuracy"]["value"]
    assert (c["student_accuracy"]["low"], c["student_accuracy"]["high"]) != \
        (a["student_accuracy"]["low"], a["student_accuracy"]["high"]) or \
        (c["student_auc"]["low"], c["student_auc"]["high"]) != \
        (a["student_auc"]["low"], a["student_auc"]["high"])


def test_misfit_identity_by_hand():
    from w2sgen.metrics import misfit

    y = np.array([1, 0, 1, 0])
    weak = np.array([0.6, 0.6, 0.4, 0.2])
    student = np.array([0.9, 0.3, 0.7, 0.1])
    m = misfit(y, weak, student)
    assert m["err_weak"] == pytest.approx((0.16 + 0.36 + 0.36 + 0.04) / 4)
    assert m["err_student"] == pytest.approx((0.01 + 0.09 + 0.09 + 0.01) / 4)
    assert m["misfit"] == pytest.approx((0.09 + 0.09 + 0.09 + 0.01) / 4)
    assert m["slack"] == pytest.approx(0.23 - 0.07 - 0.05) and m["holds"]
    # a student that copies the weak labels has no misfit and no gain: slack exactly 0
    assert misfit(y, weak, weak)["slack"] == pytest.approx(0.0)


# ------------------------------------------------------------------ fixed-baseline PGR


def test_fixed_baseline_uses_the_mean_baselines_not_each_seeds_own():
    from w2sgen.metrics import fixed_baseline_pgr

    weak, ceiling, student = [0.5, 0.6], [0.7, 0.7], [0.6, 0.62]
    # per seed: (0.1 / 0.2 + 0.02 / 0.1) / 2 = 0.35; fixed: (0.61 - 0.55) / (0.7 - 0.55) = 0.4
    per_seed = np.mean([(s - w) / (c - w) for w, c, s in zip(weak, ceiling, student)])
    assert per_seed == pytest.approx(0.35)
    out = fixed_baseline_pgr(weak, ceiling, student, rounds=500)
    assert out.value == pytest.approx(0.4)
    assert out.per_seed == pytest.approx([(0.6 - 0.55) / 0.15, (0.62 - 0.55) / 0.15])
    assert out.sd == pytest.approx(np.std(out.per_seed, ddof=1))
    assert out.resampled == "seeds" and out.low <= out.value <= out.high
    # deterministic for a seed
    assert fixed_baseline_pgr(weak, ceiling, student, rounds=500) == out


def test_fixed_baseline_with_examples_resamples_the_test_set_too():
    from w2sgen.metrics import fixed_baseline_pgr

    rng = np.random.default_rng(0)
    n = 400

    def runs(acc, k):  # k seeds, each right on a random `acc` share of the n test examples
        return np.array([rng.permutation(n) < acc * n for _ in range(k)], dtype=float)

    correct = {"weak": runs(0.6, 4), "ceiling": runs(0.8, 4), "student": runs(0.7, 3)}
    accs = {k: v.mean(axis=1) for k, v in correct.items()}
    seeds_only = fixed_baseline_pgr(accs["weak"], accs["ceiling"], accs["student"], rounds=400)
    both = fixed_baseline_pgr(accs["weak"], accs["ceiling"], accs["student"], correct=correct,
                              rounds=400)
    assert both.value == seeds_only.value == pytest.approx(0.5)
    assert seeds_only.high - seeds_only.low == pytest.approx(0.0)  # identical accuracies per seed
    assert both.resampled == "seeds+examples" and both.low < 0.5 < both.high
    # a share of 400 examples: the PGR interval is some +- 0.1 wide, not 0 and not 1
    assert 0.05 < (both.high - both.low) / 2 < 0.3
    with pytest.raises(ValueError, match="row means"):  # rows must belong to their seeds
        fixed_baseline_pgr(accs["weak"][::-1] + [0, 0, 0, 0.01], accs["ceiling"], accs["student"],
                           correct=correct)
    with pytest.raises(ValueError, match="must be"):
        fixed_baseline_pgr(accs["weak"], accs["ceiling"], accs["student"],
                           correct={**correct, "student": correct["student"][:, :10]})


def test_fixed_baseline_is_undefined_without_a_clear_gap():
    from w2sgen.errors import W2SError
    from w2sgen.metrics import fixed_baseline_pgr

    out = fixed_baseline_pgr([0.6, 0.7], [0.62, 0.66], [0.65], rounds=500)
    assert out.value is None and "no clear gap" in out.reason and str(out).startswith("undefined")
    assert fixed_baseline_pgr([0.7], [0.6], [0.65]).value is None  # ceiling below weak
    with pytest.raises(W2SError, match="at least one student run"):
        fixed_baseline_pgr([0.6], [0.7], [])


def test_flip_difference_matches_a_paired_bootstrap_and_the_exact_mcnemar_test():
    from w2sgen.metrics import flip_difference

    # 800 examples: 141 flips wrong -> right, 79 right -> wrong, the rest unchanged
    d = np.zeros(800)
    d[:141], d[141:220] = 1.0, -1.0
    r = flip_difference(141, 79, 800)
    assert r["diff"] == pytest.approx(d.mean()) and r["flips"] == 220
    rng = np.random.default_rng(0)
    boot = d[rng.integers(0, 800, size=(4000, 800))].mean(axis=1)
    assert r["low"] == pytest.approx(np.quantile(boot, 0.025), abs=0.004)
    assert r["high"] == pytest.approx(np.quantile(boot, 0.975), abs=0.004)
    assert (r["low"], r["high"]) == pytest.approx((0.04156, 0.11344), abs=1e-4)
    # exact McNemar: 3 right flips and none wrong is 2 * (1/2)^3
    assert flip_difference(3, 0, 10)["p"] == pytest.approx(0.25)
    assert flip_difference(5, 5, 10)["p"] == 1.0 and flip_difference(0, 0, 10)["diff"] == 0.0
    with pytest.raises(ValueError, match="do not fit"):
        flip_difference(8, 5, 10)
