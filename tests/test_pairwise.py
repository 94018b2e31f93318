"""The reward-model head of pairwise-preference tasks (pairwise.py): Bradley-Terry over one shared
linear score per side, its loss and gradient by hand, what it learns that a pooled probe cannot,
and a run through the pipeline whose features are per side."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from w2sgen.config import ExperimentConfig
from w2sgen.losses import LOSSES
from w2sgen.pairwise import PairwiseScorer, flat, is_pairwise, side_array, side_examples
from w2sgen.tasks import Comparison, comparison_examples
from w2sgen.train import ProbeLearner

# Two comparisons, d = 2, reward weights w = (1, -1):
#   pair 1: x_A = (1, 0), x_B = (0, 1): r_A = 1, r_B = -1, d = r_A - r_B = 2, target 1 (A preferred)
#   pair 2: x_A = (0, 1), x_B = (0, 0): r_A = -1, r_B = 0, d = -1, soft target 0.25
X = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 0.0]]])
T = torch.tensor([1.0, 0.25])


def scorer() -> PairwiseScorer:
    s = PairwiseScorer(2)
    with torch.no_grad():
        s.score.weight.copy_(torch.tensor([[1.0, -1.0]]))
    return s


def test_logits_are_the_bradley_terry_preference():
    logits = scorer()(X)
    assert logits.tolist() == [[-1.0, 1.0], [0.0, -1.0]]  # (r_B, r_A)
    # softmax class 1 = sigmoid(r_A - r_B): sigmoid(2) = 0.880797, sigmoid(-1) = 0.268941
    assert torch.softmax(logits, -1)[:, 1].tolist() == pytest.approx([0.880797, 0.268941], abs=1e-6)


def test_xent_on_a_soft_preference_is_the_bradley_terry_loss_with_its_gradient():
    s = scorer()
    loss = LOSSES.get("xent")()(s(X), T, 0.0)
    # pair 1: -log sigmoid(2) = log(1 + e^-2) = 0.126928
    # pair 2: -(0.25 log sigmoid(-1) + 0.75 log sigmoid(1)) = 0.25 * 1.313262 + 0.75 * 0.313262 = 0.563262
    assert loss.item() == pytest.approx((0.126928 + 0.563262) / 2, abs=1e-6)
    loss.backward()
    # dL/dw = mean over pairs of (sigmoid(d) - t) (x_A - x_B):
    #   pair 1: (0.880797 - 1) * (1, -1) = (-0.119203, 0.119203)
    #   pair 2: (0.268941 - 0.25) * (0, 1) = (0, 0.018941)
    assert s.score.weight.grad[0].tolist() == pytest.approx([-0.119203 / 2, (0.119203 + 0.018941) / 2],
                                                            abs=1e-6)


def test_logconf_hardens_the_students_own_preferences():
    s = scorer()
    # at the end of training a = 0.75; the weak labels' positive share 1/2 hardens the top
    # half of the student's d = (2, -1): own targets (1, 0). Own losses: 0.126928 and
    # -log sigmoid(1) = 0.313262; mixed: 0.25 * weak + 0.75 * own per pair
    loss = LOSSES.get("logconf")()(s(X), T, 1.0)
    want = ((0.25 * 0.126928 + 0.75 * 0.126928) + (0.25 * 0.563262 + 0.75 * 0.313262)) / 2
    assert loss.item() == pytest.approx(want, abs=1e-6)


def synthetic(n: int, d: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n comparisons: each side is its prompt's vector (shared by both sides, large) plus its
    own noise, and the preferred side has +1 on dimension 0; label 1 when A is preferred."""
    rng = np.random.default_rng(seed)
    prompt = rng.normal(0, 3, (n, 1, d))
    x = prompt + rng.normal(0, 0.5, (n, 2, d))
    y = (np.arange(n) % 2).astype(np.float32)
    rng.shuffle(y)
    x[np.arange(n), np.where(y == 1, 0, 1), 0] += 1.5
    return x.astype(np.float32), y


def probe(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> float:
    cfg = ExperimentConfig()
    learner = ProbeLearner(None, cfg)  # type: ignore[arg-type]  (the probe never reads its ref)
    learner.fit(x, y, LOSSES.get("xent")(), 0, "test")
    return float(((learner.predict(x_test) > 0.5) == y_test).mean())


def test_the_reward_head_learns_a_preference_that_a_pooled_probe_cannot_see():
    x, y = synthetic(600)
    xt, yt = synthetic(400, seed=1)
    assert probe(x, y, xt, yt) > 0.9
    # what a probe of one pooled vector of both responses reads: their mean, symmetric in A and B
    assert abs(probe(x.mean(1), y, xt.mean(1), yt) - 0.5) < 0.1
    # soft weak preferences (the truth at 0.8 confidence, 25% of it flipped) still train it
    weak = np.where(np.random.default_rng(2).random(len(y)) < 0.25, 1 - y, y) * 0.6 + 0.2
    assert probe(x, weak.astype(np.float32), xt, yt) > 0.85


def comparisons(n: int) -> list:
    good, bad = "good great nice happy love".split(), "bad awful sad poor terrible".split()
    rng = random.Random(0)
    cs = [Comparison(f"row {i}", "the movie was", " ".join(rng.choices(good, k=3)),
                     " ".join(rng.choices(bad, k=3)), f"g{i}") for i in range(n)]
    return comparison_examples("syn", cs, random.Random(1))


def test_sides_are_prompt_plus_each_response_in_reshape_order():
    ex = comparisons(3)
    assert is_pairwise(ex) and not is_pairwise([e.__class__(e.id, e.text, e.label) for e in ex])
    sides = side_examples(ex)
    assert [(s.text, s.text_pair) for s in sides[:2]] == [(ex[0].text, r) for r in ex[0].responses]
    assert [s.label for s in sides[:2]] == [ex[0].label, 1 - ex[0].label]
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    assert side_array(x, 3)[1].tolist() == [[4, 5], [6, 7]]
    assert flat(side_array(x, 3)).tolist() == [[-2, -2]] * 3


def test_a_mix_of_comparisons_and_other_examples_is_one_line():
    from w2sgen.errors import W2SError

    ex = comparisons(2)
    with pytest.raises(W2SError, match="1 of 2 examples are comparisons"):
        is_pairwise([ex[0], ex[1].__class__(ex[1].id, ex[1].text, ex[1].label)])


def test_a_pairwise_run_reads_features_per_side_and_learns_the_preference(tmp_path, tiny_bert_dir):
    import w2sgen

    res = w2sgen.run(examples=comparisons(260), weak_model=str(tiny_bert_dir),
                     strong_model=str(tiny_bert_dir), store=str(tmp_path), quiet=True,
                     splits={"weak_train": 80, "transfer": 80, "test": 80},
                     features={"max_length": 32}, train={"epochs": 30, "lr": 0.01})
    x = [np.load(p)["x"] for p in (tmp_path / "cache" / "features").glob("*.npz")]
    assert len(x) == 3 and all(a.ndim == 3 and a.shape[1:] == (2, 32) for a in x)
    # the tiny encoder's mean-pooled words separate "good" from "bad" responses per side
    assert res.ceiling.value > 0.9 and res.weak.value > 0.9 and res.student.value > 0.9
