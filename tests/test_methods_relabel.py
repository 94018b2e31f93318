"""relabel / filter (probe on the strong model's features) and weak_ensemble: label functions
on synthetic features, filter's selection on a hand example, option errors, and one real run
of each method through the pipeline."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import FakeContext

from w2sgen import pipeline
from w2sgen.config import ExperimentConfig
from w2sgen.errors import W2SError
from w2sgen.example import Example
from w2sgen.losses import xent
from w2sgen.methods import METHODS, Setting, relabel
from w2sgen.methods.relabel import kept_index, knn_labels, logistic_labels, probe_labels
from w2sgen.models import ModelRef
from w2sgen.splits import Splits
from w2sgen.train import ProbeLearner
from w2sgen.validate import load_config


def noisy_clusters(n: int = 400, dim: int = 16, flip: float = 0.2, seed: int = 0):
    """Two Gaussian clusters (truth = cluster) and weak labels with exactly `flip` of them wrong."""
    rng = np.random.default_rng(seed)
    truth = np.arange(n) % 2
    x = rng.normal(size=(n, dim)).astype(np.float32)
    x[:, :4] += np.where(truth[:, None] == 1, 2.0, -2.0)
    wrong = rng.permutation(n)[:int(flip * n)]
    weak = truth.astype(np.float32)
    weak[wrong] = 1 - weak[wrong]
    return x, truth, weak


def acc(p, truth):
    return float(((np.asarray(p) > 0.5) == truth).mean())


def test_knn_relabelling_corrects_most_flipped_labels():
    x, truth, weak = noisy_clusters()
    assert acc(weak, truth) == pytest.approx(0.8)
    p = knn_labels(x, weak, k=20)
    assert p.shape == weak.shape and ((p >= 0) & (p <= 1)).all()
    assert acc(p, truth) > 0.95
    # blocking the similarity matrix changes nothing
    np.testing.assert_allclose(knn_labels(x, weak, k=20, block=37), p)


def test_knn_leaves_the_example_itself_out():
    # five points near (1, 0) labelled 0 and one isolated point at (0, 1) labelled 1
    x = np.array([[1, 0], [1, .1], [1, .2], [1, -.1], [1, -.2], [0, 1]], dtype=np.float32)
    y = np.array([0, 0, 0, 0, 0, 1], dtype=np.float32)
    p = knn_labels(x, y, k=1)
    assert p[5] == 0.0  # its own label 1 does not count, even though it is its own nearest point
    # k=2 from point (1, .2): nearest others by cosine are (1, .1) and (1, 0); the isolated point
    # counts only when k reaches it
    y2 = np.array([1, 0, 1, 0, 0, 1], dtype=np.float32)
    assert knn_labels(x, y2, k=2)[2] == pytest.approx(0.5)
    assert knn_labels(x, y2, k=5)[0] == pytest.approx((0 + 1 + 0 + 0 + 1) / 5)
    # k larger than n - 1 uses all the others
    assert knn_labels(x, y, k=50)[5] == 0.0 and knn_labels(x, y, k=50)[0] == pytest.approx(0.2)


def test_cross_fitted_logistic_relabelling_corrects_most_flipped_labels():
    x, truth, weak = noisy_clusters()
    # 400 examples give the default lr (1e-3) too few steps to leave the head's random init
    # (0.83 here; 0.9995 at 2000 examples), so this small test takes a larger step
    cfg = load_config(None, ["train.lr=0.01"])
    p = logistic_labels(x, weak, None, cfg, folds=5, seed=0)
    assert p.shape == weak.shape and ((p > 0) & (p < 1)).all()
    assert acc(p, truth) > 0.93
    np.testing.assert_array_equal(p, logistic_labels(x, weak, None, cfg, folds=5, seed=0))


def test_cross_fitting_keeps_each_label_out_of_its_own_prediction():
    # labels that are pure noise: a probe that saw an example's label reproduces it (in sample
    # this one fits them all); out of sample neither probe can beat chance by much
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 200)).astype(np.float32)
    y = (rng.random(100) > 0.5).astype(np.float32)
    cfg = load_config(None, ["train.epochs=30", "train.lr=0.05"])
    probe = ProbeLearner(None, cfg)
    probe.fit(x, y, xent(), 0, "in sample")
    assert acc(probe.predict(x), y) == 1.0
    assert acc(logistic_labels(x, y, None, cfg, folds=2, seed=0), y) < 0.7
    assert acc(knn_labels(x, y, k=1), y) < 0.7


def test_filter_keeps_agreeing_examples_or_the_most_agreeing_fraction():
    pred = np.array([0.9, 0.2, 0.6, 0.4, 0.5, 0.5])
    weak = np.array([0.8, 0.7, 0.3, 0.1, 0.6, 0.4])
    # weak hard 1 1 0 0 1 0; probe hard 1 0 1 0 0 0; agreement .9 .2 .4 .6 .5 .5
    assert kept_index(pred, weak, None).tolist() == [0, 3, 5]
    assert kept_index(pred, weak, 0.5).tolist() == [0, 3, 4]  # the .5 tie goes to index 4
    assert kept_index(pred, weak, 0.4).tolist() == [0, 3, 4]  # ceil(2.4) = 3
    assert kept_index(pred, weak, 1 / 3).tolist() == [0, 3]
    assert kept_index(pred, weak, 0.1).tolist() == [0]
    assert kept_index(pred, weak, 1.0).tolist() == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("method, options, match", [
    ("relabel", {"probe": "svm"}, "method.probe must be one of 'knn', 'logistic'"),
    ("relabel", {"k": 0}, "method.k .* >= 1"),
    ("relabel", {"folds": 1, "probe": "logistic"}, "method.folds .* >= 2"),
    ("relabel", {"mix": 1.5}, r"method.mix .* >= 0 and <= 1"),
    ("relabel", {"mix": -0.1}, r"method.mix .* >= 0 and <= 1"),
    ("filter", {"probe": "forest"}, "method.probe must be one of"),
    ("filter", {"keep": 0}, r"method.keep .* > 0 and <= 1"),
    ("filter", {"keep": 1.2}, r"method.keep .* > 0 and <= 1"),
    ("weak_ensemble", {"seeds": 0}, "method.seeds .* >= 1"),
    ("weak_ensemble", {"models": []}, "method.models must be .*a non-empty list of model names"),
    ("weak_ensemble", {"models": "minilm-l6"}, "method.models must be .*a non-empty list of model names"),
    ("weak_ensemble", {"models": ["no-such-model"]}, "method.models must be .*list of model names"),
])
def test_invalid_options_are_one_line_errors_at_config_time(method, options, match):
    """Checked when the config is built, from the method's signature: nothing has trained."""
    keys = [f"method={method}"] + [f"method.{k}={json.dumps(v)}" for k, v in options.items()]
    with pytest.raises(W2SError, match=match) as e:
        load_config(None, keys)
    assert "\n" not in str(e.value)


def fake_setting(x, weak, cfg=None):
    """Just enough of a Setting for the probe: features, a step timer, the config, weak labels."""
    ctx = FakeContext(cfg=cfg or ExperimentConfig(), features=lambda ref, split, ex: x)
    transfer = [Example(f"t{i}", f"text {i}", 0) for i in range(len(x))]
    ref = ModelRef("fake", "encoder", "", "fake")
    return Setting(ctx, Splits([], transfer, []), ref, ref, {"p_transfer": weak})


def test_filter_refuses_to_train_on_too_few_examples_or_one_class():
    x, _, weak = noisy_clusters(n=200)
    with pytest.raises(W2SError, match="kept 4 transfer example"):
        METHODS.get("filter")(fake_setting(x, weak), keep=0.02)
    with pytest.raises(W2SError, match="of 1 weak class"):
        METHODS.get("filter")(fake_setting(x, np.ones(200, np.float32)))


def test_logistic_probe_trains_with_probe_settings_whatever_the_mode(monkeypatch):
    seen = []
    monkeypatch.setattr(relabel, "logistic_labels",
                        lambda x, y, ref, cfg, folds, seed: seen.append(cfg) or np.zeros(len(x)))
    x, _, weak = noisy_clusters(n=20)
    probe_labels(fake_setting(x, weak, load_config(None, ["train.lr=0.01"])), "logistic", 20, 5)
    probe_labels(fake_setting(x, weak, load_config(None, ["train.mode=full", "train.lr=2e-5",
                                                          "train.epochs=2", "seed=3"])),
                 "logistic", 20, 5)
    assert seen[0].train.lr == 0.01  # probe mode: the run's own settings
    assert (seen[1].train.mode, seen[1].train.lr, seen[1].train.epochs, seen[1].seed) == \
        ("probe", None, 10, 3)  # fine-tuning settings replaced by the probe defaults


# ------------------------------------------------------------------ through the pipeline

SMALL = ["weak_model=minilm-l6", "strong_model=minilm-l6", "splits.weak_train=150",
         "splits.transfer=150", "splits.test=300", "eval.bootstrap=200"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tmp_path_factory.mktemp("store")  # shared: features and the weak supervisor are cached


def run(store, *extra):
    return pipeline.run(load_config(None, [*SMALL, f"store={store}", *extra]), quiet=True)


def in_unit(v):
    return isinstance(v, float) and 0 <= v <= 1


@pytest.mark.slow
def test_relabel_knn_through_the_pipeline(store):
    m = run(store, "method=relabel", "method.k=10")["metrics"]
    r = m["method"]
    assert r["name"] == "relabel" and r["probe"] == "knn" and r["k"] == 10 and r["mix"] == 1.0
    for key in ("weak_label_accuracy", "relabelled_label_accuracy", "flipped_fraction"):
        assert in_unit(r[key]), key
    assert r["weak_label_accuracy"] == m["weak_label_accuracy"]
    assert 0 < r["flipped_fraction"] < 0.5
    print(f"\nrelabel knn: weak labels {r['weak_label_accuracy']:.3f} -> "
          f"{r['relabelled_label_accuracy']:.3f}, flipped {r['flipped_fraction']:.3f}")


@pytest.mark.slow
def test_filter_logistic_through_the_pipeline(store):
    m = run(store, "method=filter", "method.probe=logistic", "method.folds=3")["metrics"]
    r = m["method"]
    assert r["name"] == "filter" and r["probe"] == "logistic" and r["folds"] == 3
    for key in ("kept_fraction", "weak_label_accuracy", "kept_weak_label_accuracy"):
        assert in_unit(r[key]), key
    assert r["n_kept"] == round(r["kept_fraction"] * 150) and r["n_kept"] >= 10
    print(f"\nfilter logistic: kept {r['kept_fraction']:.3f}, weak labels "
          f"{r['weak_label_accuracy']:.3f} all, {r['kept_weak_label_accuracy']:.3f} kept")


@pytest.mark.slow
def test_weak_ensemble_through_the_pipeline(store):
    result = run(store, "method=weak_ensemble", "method.seeds=2")
    m, r = result["metrics"], result["metrics"]["method"]
    assert r["name"] == "weak_ensemble"
    assert [(x["model"], x["seed"]) for x in r["members"]] == [("minilm-l6", 0), ("minilm-l6", 1)]
    for x in r["members"]:
        assert in_unit(x["test_accuracy"]) and in_unit(x["label_accuracy"])
    assert in_unit(r["ensemble_test_accuracy"]) and in_unit(r["ensemble_label_accuracy"])
    # the first member is the pipeline's own supervisor (a cache hit), still the PGR baseline
    assert r["members"][0]["test_accuracy"] == m["weak_accuracy"]["value"]
    assert r["members"][0]["label_accuracy"] == m["weak_label_accuracy"]
    assert result["timings"]["weak minilm-l6 seed 0"]["cached"]
    assert not result["timings"]["weak minilm-l6 seed 1"]["cached"]
    print(f"\nweak_ensemble: members label acc {[x['label_accuracy'] for x in r['members']]}, "
          f"ensemble {r['ensemble_label_accuracy']:.3f}; test acc "
          f"{[x['test_accuracy'] for x in r['members']]} -> {r['ensemble_test_accuracy']:.3f}")
