"""The whole protocol on the real packaged MiniLM and real BIG-bench data, at a small size."""
from __future__ import annotations

import numpy as np
import pytest

from w2sgen import context, pipeline
from w2sgen.errors import TrainingDiverged, W2SError
from w2sgen.losses import LOSSES, xent
from w2sgen.store import Store
from w2sgen.validate import load_config

pytestmark = pytest.mark.slow

SMALL = ["weak_model=minilm-l6", "strong_model=minilm-l6", "splits.weak_train=150",
         "splits.transfer=150", "splits.test=300", "eval.bootstrap=200"]


def config(tmp_path, *extra):
    return load_config(None, [*SMALL, f"store={tmp_path}", *extra])


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    cfg = config(root)
    return cfg, pipeline.run(cfg, quiet=True)


def test_end_to_end_numbers_are_sane(first_run):
    cfg, result = first_run
    m = result["metrics"]
    assert m["split_sizes"] == {"weak_train": 150, "transfer": 150, "test": 300}
    for k in ("weak", "student", "ceiling"):
        acc = m[f"{k}_accuracy"]
        assert 0.6 < acc["value"] < 1.0  # MiniLM reads sentiment far above chance
        assert acc["low"] <= acc["value"] <= acc["high"]
        assert 0.6 < m[f"{k}_auc"]["value"] <= 1.0
    assert 0 <= m["agreement_on_weak_errors"] <= 1 and m["n_weak_errors"] > 0
    # the student trained on the weak labels agrees with them more where they are right
    assert m["agreement_on_weak_correct"] > m["agreement_on_weak_errors"]
    assert len(m["curves"]["student"]["test_accuracy"]) == cfg.train.epochs
    run = Store(cfg.store).runs("done")[-1]
    assert run["metrics"]["weak_accuracy"] == m["weak_accuracy"]
    assert run["config_hash"] == cfg.hash() and run["versions"]["torch"].startswith("2.13")


def test_nested_step_times_are_not_counted_twice(tmp_path):
    import time

    ctx = context.Context(config(tmp_path), Store(tmp_path), quiet=True)
    t0 = time.perf_counter()
    with ctx.step("train"):
        time.sleep(0.1)
        with ctx.step("features"):  # computed while training, as the pipeline does
            time.sleep(0.2)
    total = time.perf_counter() - t0
    own, inner = ctx.steps.timings["train"]["seconds"], ctx.steps.timings["features"]["seconds"]
    assert inner >= 0.2 and own >= 0.1
    assert own + inner == pytest.approx(total, abs=0.005)  # they add up to the wall time
    with pytest.raises(ValueError):  # a failing step leaves the nesting balanced
        with ctx.step("broken"):
            raise ValueError
    with ctx.step("after"):
        pass
    assert "broken" not in ctx.steps.timings and ctx.steps.timings["after"]["seconds"] < 0.05


def test_rerun_uses_the_cache_and_changing_the_student_keeps_weak_labels(first_run):
    cfg, result = first_run
    again = pipeline.run(cfg, quiet=True)
    assert all(t["cached"] for k, t in again["timings"].items() if k not in ("data", "evaluate"))
    assert again["metrics"]["student_accuracy"] == result["metrics"]["student_accuracy"]

    def half_xent(**_):
        base = xent()
        return lambda logits, target, progress: 0.5 * base(logits, target, progress)

    LOSSES.add("half_xent_for_test", half_xent)
    try:
        student_only = pipeline.run(load_config(None, [*SMALL, f"store={cfg.store}",
                                                       "loss=half_xent_for_test"]), quiet=True)
    finally:
        LOSSES._items.pop("half_xent_for_test")
    t = student_only["timings"]
    assert t["weak_supervisor"]["cached"] and t["strong_ceiling"]["cached"]
    assert not t["student"]["cached"]
    assert t["features minilm-l6 transfer"]["cached"]


def test_same_seed_gives_identical_results_in_a_fresh_store(first_run, tmp_path):
    cfg, result = first_run
    fresh = pipeline.run(config(tmp_path), quiet=True)
    assert fresh["metrics"] == result["metrics"]
    other = pipeline.run(config(tmp_path, "seed=1"), quiet=True)
    assert other["metrics"]["student_auc"] != result["metrics"]["student_auc"]


def test_weak_labels_are_soft_and_aligned_by_id(first_run):
    cfg, result = first_run
    store = Store(cfg.store)
    files = list((store.root / "cache" / "train").glob("*.npz"))
    weak = [np.load(f) for f in files if "p_transfer" in np.load(f).files]
    assert len(weak) == 1
    p = weak[0]["p_transfer"]
    assert len(p) == 150 and len(set(weak[0]["ids_transfer"].tolist())) == 150
    assert ((p > 0.02) & (p < 0.98)).mean() > 0.2  # soft, not hard, labels


def test_nan_loss_fails_the_run_and_keeps_what_was_computed(first_run, tmp_path):
    cfg, _ = first_run

    def nan_loss(**_):
        return lambda logits, target, progress: logits.sum() * float("nan")

    LOSSES.add("nan_for_test", nan_loss)
    try:
        with pytest.raises(TrainingDiverged, match="student: loss became nan"):
            pipeline.run(load_config(None, [*SMALL, f"store={cfg.store}", "loss=nan_for_test"]),
                         quiet=True)
    finally:
        LOSSES._items.pop("nan_for_test")
    runs = Store(cfg.store).runs()
    assert runs[-1]["status"] == "failed" and "loss became nan" in runs[-1]["error"]
    assert runs[-1]["timings"]["weak_supervisor"]["cached"]  # weak labels were re-used, kept
    assert any(r["status"] == "done" for r in runs)


def test_too_small_task_is_a_clear_error(tmp_path):
    path = tmp_path / "tiny.csv"
    path.write_text("text,label\n" + "".join(f"sentence {i},{i % 2}\n" for i in range(40)))
    with pytest.raises(W2SError, match="has 40 examples but the splits ask for 600"):
        pipeline.run(config(tmp_path, f"task={path}"), quiet=True)


def test_task_scoped_features_are_encoded_once_for_every_split_seed(tmp_path):
    """features.scope=task: the task's examples are encoded once per model, and a run on
    another split seed reads its rows from that entry (nothing encoded again); the scope is
    not part of the run's identity, and the rows equal what the split scope computes."""
    path = tmp_path / "words.csv"
    words = ["good", "great", "fine", "nice", "bad", "awful", "poor", "sad"]
    path.write_text("text,label\n" + "".join(f"a {words[i % 8]} film number {i},{int(i % 8 < 4)}\n"
                                               for i in range(96)))
    sizes = ["splits.weak_train=24", "splits.transfer=24", "splits.test=40", "train.epochs=2"]

    def run(*extra):
        cfg = config(tmp_path / "store", f"task={path}", *sizes, *extra)
        return cfg, pipeline.run(cfg, quiet=True)

    cfg0, first = run("features.scope=task")
    assert cfg0.hash() == config(tmp_path / "store", f"task={path}", *sizes).hash()
    assert not first["timings"]["features minilm-l6 task"]["cached"]
    _, second = run("features.scope=task", "splits.seed=1")
    feats = {k: t for k, t in second["timings"].items() if k.startswith("features")}
    assert list(feats) == ["features minilm-l6 task"] and feats["features minilm-l6 task"]["cached"]
    # the split scope computes the same features: same weak supervisor, same accuracies
    _, split_scoped = run("features.scope=split", "splits.seed=1", f"store={tmp_path / 'other'}")
    for k in ("weak_accuracy", "ceiling_accuracy", "student_accuracy"):
        assert split_scoped["metrics"][k]["value"] == pytest.approx(second["metrics"][k]["value"], abs=1 / 40)
