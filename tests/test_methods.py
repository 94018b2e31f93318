"""The method registry, naive, bootstrap and the ground-truth early-stopping diagnostic."""
from __future__ import annotations

import numpy as np
import pytest

from w2sgen import pipeline
from w2sgen.config import load_config
from w2sgen.errors import W2SError
from w2sgen.methods import METHODS
from w2sgen.methods.bootstrap import fold_of
from w2sgen.report import label
from w2sgen.store import Store

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
    out = run(store_dir, "method=bootstrap", "method.ladder=[minilm-l6]", "method.folds=3", "seed=2")
    rep = out["metrics"]["method"]
    assert rep["ladder"] == ["minilm-l6", "minilm-l6", "minilm-l6"] and rep["folds"] == 3
    (rung,) = rep["rungs"]
    assert 0.6 < rung["label_accuracy"] <= 1 and 0.6 < rung["test_accuracy"] <= 1
    steps = [k for k in out["timings"] if k.startswith("rung ")]
    assert steps == [f"rung minilm-l6 fold {k}/3" for k in (1, 2, 3)]
    assert set(METHODS) >= {"naive", "bootstrap", "gt_early_stop"}
