"""Each dataset pooled over its split and training seeds (`w2s report --datasets`): the nested
bootstrap of one dataset, PGR under the one rule, and naive PGR with the dataset as the unit."""
from __future__ import annotations

import numpy as np
import pytest

from w2sgen.cli import main
from w2sgen.metrics import evaluate
from w2sgen.nested import within_dataset_means
from w2sgen.report.datasets import dataset_cells, dataset_rows, pgr_summary
from w2sgen.store import Store
from w2sgen.validate import build_config

N = 100


def test_channels_share_every_draw():
    """weak == student on every example: their resampled means are equal in every round, and
    the point estimate is the mean over splits of the mean over seeds."""
    rng = np.random.default_rng(0)
    splits = {}
    for sp in range(3):
        splits[sp] = {}
        for seed in range(2):
            w = (rng.random(N) < 0.5 + 0.1 * sp).astype(float)
            splits[sp][seed] = np.stack([w, w, np.ones(N)])
    point, boot = within_dataset_means(splits, rounds=400, seed=1)
    assert boot.shape == (400, 3)
    assert np.array_equal(boot[:, 0], boot[:, 1]) and np.all(boot[:, 2] == 1.0)
    expected = np.mean([np.mean([v[0].mean() for v in s.values()]) for s in splits.values()])
    assert point[0] == pytest.approx(expected)
    assert boot[:, 0].std() > 0.01  # splits, seeds and examples vary


def test_ragged_seeds_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        within_dataset_means({0: {0: np.ones((3, 5)), 1: np.ones((3, 6))}})


def add_run(store, task, split_seed, seed, loss, y, weak, student, ceiling):
    cfg = build_config({"task": task, "weak_model": "minilm-l6", "strong_model": "mpnet-base",
                        "seed": seed, "splits": {"seed": split_seed}, "store": str(store.root),
                        "eval": {"bootstrap": 50}, **({"loss": loss} if loss else {})})
    run_id = store.start_run(cfg)
    ids = np.array([f"{task}:{split_seed}:{i}" for i in range(N)])
    store.save_arrays(run_id, "predictions.npz", {"ids": ids, "labels": y, "weak": weak,
                                                  "student": student, "ceiling": ceiling})
    store.finish_run(run_id, evaluate(y, weak, student, ceiling, 50, 0.95, seed), {})


def probs(y, right):
    """Probabilities that are right exactly on the examples `right` marks."""
    return np.where(right == y.astype(bool), 0.9, 0.1)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Three tasks x 2 split seeds x 2 training seeds. sciq and boolq: weak right on the first
    60 of 100 examples, naive's student on 70, the ceiling on 80 -> gap 0.2, PGR 0.5;
    logconf's student on 75 -> PGR 0.75. piqa: the ceiling is the weak model (gap 0), so PGR is
    undefined there."""
    store = Store(tmp_path_factory.mktemp("datasets-store"))
    idx = np.arange(N)
    for task in ("sciq", "boolq", "piqa"):
        for split_seed in (0, 1):
            y = np.random.default_rng(split_seed).integers(0, 2, N)
            for seed in (0, 1):
                weak = probs(y, idx < 60)
                ceiling = weak if task == "piqa" else probs(y, idx < 80)
                add_run(store, task, split_seed, seed, None, y, weak, probs(y, idx < 70), ceiling)
                add_run(store, task, split_seed, seed, "logconf", y, weak, probs(y, idx < 75), ceiling)
    return store


def test_rows_pool_splits_and_seeds(store):
    rows = dataset_rows(store, store.runs("done"), rounds=300)
    by = {(r["task"], r["method"]): r for r in rows}
    assert len(rows) == 6
    naive = by[("sciq", "naive")]
    assert (naive["splits"], naive["runs"]) == (2, 4)
    assert naive["weak"][0] == pytest.approx(0.6) and naive["ceiling"][0] == pytest.approx(0.8)
    assert naive["gap"][0] == pytest.approx(0.2) and naive["gap"][1] > 0.05
    assert naive["pgr"][0] == pytest.approx(0.5) and naive["pgr"][1] < 0.5 < naive["pgr"][2]
    assert by[("boolq", "naive + logconf")]["pgr"][0] == pytest.approx(0.75)
    piqa = by[("piqa", "naive")]
    assert piqa["pgr"] is None and piqa["gap"] == (0.0, 0.0, 0.0)
    header, cells = dataset_cells(rows)
    piqa_cell = [c for c in cells if c[0] == "piqa" and c[2] == "naive"][0]
    assert piqa_cell[-1] == "undefined (no clear gap)"


def test_naive_pgr_with_the_dataset_as_unit(store, capsys):
    rows = dataset_rows(store, store.runs("done"), rounds=300)
    (s,) = pgr_summary(rows, "naive", rounds=300)
    assert (s["datasets"], s["with_gap"], s["above_0"]) == (3, 2, 2)
    assert s["mean"][0] == pytest.approx(0.5) and (s["positive"], s["negative"]) == (2, 0)
    assert s["p_sign"] == 0.5  # 2 datasets: the smallest two-sided p is 2 / 2^2
    assert main(["report", "--store", str(store.root), "--datasets"]) == 0
    out = capsys.readouterr().out
    assert "naive on minilm-l6 -> mpnet-base (probe): 2 of 3 datasets have a ceiling - weak gap" \
        in " ".join(out.split())
    assert max(map(len, out.splitlines())) <= 100  # the table as terminal columns
    piqa = next(line.split() for line in out.splitlines() if line.startswith("piqa "))
    assert piqa[:2] == ["piqa", "minilm-l6"] and "naive" in piqa
    assert "run  weak" not in out  # the per-run table is replaced by one line
