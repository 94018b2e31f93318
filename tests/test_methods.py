"""The method registry, naive, bootstrap and the ground-truth early-stopping diagnostic."""
from __future__ import annotations

import numpy as np
import pytest

from w2sgen import pipeline
from w2sgen.errors import W2SError
from w2sgen.methods import METHODS
from w2sgen.methods.bootstrap import fold_of
from w2sgen.report import label
from w2sgen.store import Store
from w2sgen.validate import load_config

SMALL = ["weak_model=minilm-l6", "strong_model=minilm-l6", "splits.weak_train=150",
         "splits.transfer=150", "splits.test=300", "eval.bootstrap=100"]


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("methods")


def run(store_dir, *extra):
    return pipeline.run(load_config(None, [*SMALL, f"store={store_dir}", *extra]), quiet=True)


def test_fold_assignment_is_balanced_and_seeded():
    f = fold_of(11, 3, seed=0)
    assert sorted(np.bincount(f).tolist()) == [3, 4, 4]
    assert np.array_equal(f, fold_of(11, 3, seed=0)) and not np.array_equal(f, fold_of(11, 3, seed=1))


def test_method_options_are_checked_before_running(store_dir):
    with pytest.raises(W2SError, match="unknown method 'bootstrapp'.*did you mean 'bootstrap'"):
        load_config(None, ["method=bootstrapp"])
    with pytest.raises(W2SError, match="needs option\\(s\\) ladder"):
        load_config(None, ["method=bootstrap"])
    with pytest.raises(W2SError, match="unknown option 'rungs'"):
        load_config(None, ["method=bootstrap", "method.ladder=[minilm-l6]", "method.rungs=2"])
    with pytest.raises(W2SError, match="method.ladder must be a non-empty list of model names"):
        load_config(None, ["method=bootstrap", "method.ladder=minilm-l6"])
    with pytest.raises(W2SError, match="method.ladder must be"):  # issue 16: a name that is none
        load_config(None, ["method=bootstrap", "method.ladder=[smollm2]"])
    assert not (store_dir / "runs.sqlite").exists()  # nothing ran, nothing recorded


@pytest.mark.slow
def test_naive_is_the_default_and_gt_early_stop_picks_the_best_test_epoch(store_dir):
    naive = run(store_dir)
    assert naive["metrics"]["method"] == {"name": "naive"}
    diag = run(store_dir, "method=gt_early_stop")
    rep = diag["metrics"]["method"]
    curve = naive["metrics"]["curves"]["student"]["test_accuracy"]
    # same training as naive (a cache hit), then the epoch with the best test accuracy
    assert diag["timings"]["student"]["cached"]
    assert rep["best_epoch"] == int(np.argmax(curve)) + 1
    assert diag["metrics"]["student_accuracy"]["value"] == pytest.approx(max(curve))
    assert diag["metrics"]["student_accuracy"]["value"] >= naive["metrics"]["student_accuracy"]["value"]
    assert "diagnostic" in rep["diagnostic"]
    last = Store(store_dir).runs("done")[-1]
    assert "DIAGNOSTIC" in label(last)


@pytest.mark.slow
def test_bootstrap_cross_fits_each_rung(store_dir):
    # SMS spam: an easy task, so a rung trained on a third of 100 examples is clearly above chance
    out = run(store_dir, "task=sms_spam", "method=bootstrap", "method.ladder=[minilm-l6]",
              "method.folds=3", "seed=2")
    rep = out["metrics"]["method"]
    assert rep["ladder"] == ["minilm-l6", "minilm-l6", "minilm-l6"] and rep["folds"] == 3
    (rung,) = rep["rungs"]
    assert 0.6 < rung["label_accuracy"] <= 1 and 0.6 < rung["test_accuracy"] <= 1
    steps = [k for k in out["timings"] if k.startswith("rung ")]
    assert steps == [f"rung minilm-l6 fold {k}/3" for k in (1, 2, 3)]
    assert set(METHODS) >= {"naive", "bootstrap", "gt_early_stop"}


# ------------------------------------------------------------------ confidence_filter


def recording_setting(weak, truth):
    """A Setting whose student training records what it was given (no model is trained)."""
    from w2sgen.methods import Setting
    from w2sgen.splits import Splits
    from w2sgen.tasks import Example

    transfer = [Example(f"t{i}", f"text {i}", int(y)) for i, y in enumerate(truth)]
    splits = Splits([Example("w", "w", 0)], transfer, [Example("x", "x", 1)])
    seen = {}

    def train(name, ref, splits, part, targets, loss, predict, seed=None):
        seen.update(part=part, targets=np.asarray(targets), examples=part.examples(splits))
        return {"p_test": np.array([0.5])}

    from conftest import FakeContext

    ctx = FakeContext(train=train)
    return Setting(ctx, splits, None, None, {"p_transfer": np.asarray(weak, np.float32)}), seen


def test_confidence_filter_keeps_labels_at_or_beyond_the_threshold():
    from w2sgen.methods.confidence_filter import confident_index

    weak = np.array([0.9, 0.75, 0.74, 0.5, 0.26, 0.25, 0.1, 1.0, 0.0, 0.8, 0.2, 0.6], np.float32)
    assert confident_index(weak, 0.75).tolist() == [0, 1, 5, 6, 7, 8, 9, 10]
    assert confident_index(weak, 0.8).tolist() == [0, 6, 7, 8, 9, 10]  # 0.8 and 0.2 as float32
    assert confident_index(weak, 0.5).tolist() == list(range(12))  # everything: naive
    assert confident_index(weak, 1.0).tolist() == [7, 8]


def test_confidence_filter_trains_on_the_confident_weak_labels_only():
    # 40 transfer examples: the weak labels of the first 20 are confident (0.9 / 0.1) and right
    # on 18; the other 20 are unsure (0.6 / 0.4) and right on 10
    truth = np.arange(40) % 2
    weak = np.where(truth == 1, 0.9, 0.1)
    weak[:2] = 1 - weak[:2]  # two confident mistakes
    weak[20:] = np.where(np.arange(20) % 4 < 2, 0.6, 0.4)  # unsure, right on half
    s, seen = recording_setting(weak, truth)
    student, rep = METHODS.get("confidence_filter")(s)
    assert seen["part"].index == tuple(range(20))
    np.testing.assert_allclose(seen["targets"], weak[:20].astype(np.float32))  # soft, unchanged
    assert [e.id for e in seen["examples"]] == [f"t{i}" for i in range(20)]
    assert rep == {"hi": 0.75, "n_kept": 20, "kept_fraction": 0.5,
                   "weak_label_accuracy": pytest.approx(28 / 40),
                   "kept_weak_label_accuracy": pytest.approx(18 / 20)}
    # hi=0.55 keeps the unsure ones too
    _, rep = METHODS.get("confidence_filter")(s, hi=0.55)
    assert rep["n_kept"] == 40


def test_confidence_filter_refuses_too_few_or_one_class():
    truth = np.arange(40) % 2
    s, _ = recording_setting(np.full(40, 0.6), truth)
    with pytest.raises(W2SError, match=r"kept 0 of 40 transfer examples .*lower method.hi"):
        METHODS.get("confidence_filter")(s)
    s, _ = recording_setting(np.r_[np.full(30, 0.9), np.full(10, 0.6)], truth)
    with pytest.raises(W2SError, match=r"kept 30 of 40 .*\(1 weak class"):
        METHODS.get("confidence_filter")(s)


@pytest.mark.parametrize("value", ["0.4", "1.5"])
def test_confidence_filter_threshold_is_checked_at_config_time(value):
    with pytest.raises(W2SError, match=r"method.hi must be a number >= 0.5 and <= 1") as e:
        load_config(None, ["method=confidence_filter", f"method.hi={value}"])
    assert "\n" not in str(e.value)
    assert load_config(None, ["method=confidence_filter"]).method.options == {}
