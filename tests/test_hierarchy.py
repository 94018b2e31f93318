"""Dataset-level inference: the sign test, the nested bootstrap, the report's table over stored
runs (datasets x split seeds x training seeds), and the family a suite declares."""
from __future__ import annotations

import numpy as np
import pytest

from w2sgen.cli import main
from w2sgen.errors import W2SError
from w2sgen.metrics import evaluate, sign_test
from w2sgen.nested import clustered_mean_ci, hierarchical_difference
from w2sgen.report.hierarchy import dataset_cells, dataset_table
from w2sgen.store import Store
from w2sgen.sweep.suite import comparison_family, load_suite
from w2sgen.validate import build_config

# ------------------------------------------------------------------ sign test


def test_sign_test_exact_values():
    assert sign_test([0.1, 0.2, 0.05, 0.3]) == (4, 0, 0.125)  # 4 datasets: never below 0.125
    assert sign_test([-0.1, -0.2, -0.05, -0.3]) == (0, 4, 0.125)
    assert sign_test([0.1, 0.2, 0.3, -0.1]) == (3, 1, 0.625)  # 2 * (1 + 4) / 16
    assert sign_test([1] * 8)[2] == pytest.approx(2 / 256)
    assert sign_test([0.1, 0.0, 0.2, 0.0]) == (2, 0, 0.5)  # zeros dropped: 2 left, 2 / 4
    assert sign_test([0.0, 0.0]) == (0, 0, 1.0)


# ------------------------------------------------------------- nested bootstrap


def const(value, n=10):
    return np.full(n, value)


def test_four_equal_datasets_give_a_point_interval_and_p_0125():
    data = {f"d{i}": {"s0": {0: const(0.1)}} for i in range(4)}
    h = hierarchical_difference(data, rounds=300)
    assert (h.value, h.low, h.high) == pytest.approx((0.1, 0.1, 0.1))
    assert (h.datasets, h.splits, h.runs, h.positive, h.negative) == (4, 4, 4, 4, 0)
    assert h.p_sign == 0.125


def test_levels_are_averaged_in_order_not_pooled():
    # A: splits with means 0.0 and 0.2 -> 0.1; B: one split, seeds 0.1, 0.1, 0.4 -> 0.2
    data = {"A": {"s0": {0: const(0.0)}, "s1": {0: const(0.2)}},
            "B": {"s0": {0: const(0.1), 1: const(0.1), 2: const(0.4)}}}
    h = hierarchical_difference(data, rounds=400)
    assert h.per_dataset == pytest.approx({"A": 0.1, "B": 0.2})
    assert h.value == pytest.approx(0.15)  # pooling the 5 runs would give 0.16
    assert (h.datasets, h.splits, h.runs) == (2, 3, 5)
    # every resample is a mean of means drawn from {0, .1, .2, .4}: within [0, 0.4]
    assert 0.0 <= h.low <= 0.15 <= h.high <= 0.4


def test_test_examples_are_resampled_at_the_bottom():
    # one dataset, split and seed: the ordinary bootstrap of a mean of 0/1 values, p = 0.6,
    # n = 100: standard error sqrt(.24 / 100) = 0.049, so about 0.6 -+ 0.096
    d = np.array([1.0] * 60 + [0.0] * 40)
    h = hierarchical_difference({"d": {"s": {0: d}}}, rounds=2000)
    assert h.value == pytest.approx(0.6)
    assert 0.48 < h.low < 0.53 and 0.67 < h.high < 0.72


def test_ragged_seeds_of_one_split_are_refused():
    with pytest.raises(ValueError, match="same non-empty test set"):
        hierarchical_difference({"d": {"s": {0: const(0.1, 5), 1: const(0.1, 6)}}})


def test_clustered_interval_is_wider_than_pooled_when_seeds_disagree():
    from w2sgen.metrics import mean_ci

    a = [np.array([1.0] * 45 + [0.0] * 5), np.array([0.0] * 45 + [1.0] * 5)]  # 0.9 and 0.1
    clustered = clustered_mean_ci(a, seed=0)
    pooled = mean_ci(np.concatenate(a), seed=0)
    assert clustered[0] == pytest.approx(0.5) and pooled[0] == pytest.approx(0.5)
    assert clustered[2] - clustered[1] > 3 * (pooled[2] - pooled[1])
    # two seeds resampled: a round draws seed 0 twice a quarter of the time, so the 2.5% and 97.5%
    # quantiles sit near the seeds' own means
    assert clustered[1] < 0.2 and clustered[2] > 0.8
    assert clustered_mean_ci([np.array([np.nan])], seed=0) is None


# ------------------------------------------------------------ the report's table

TASKS = ["sciq", "boolq", "cosmos_qa", "piqa"]
N = 200


def add_run(store, task, split_seed, seed, overrides, y, student, weak, ceiling):
    cfg = build_config({"task": task, "weak_model": "minilm-l6", "strong_model": "mpnet-base",
                        "seed": seed, "splits": {"seed": split_seed}, "store": str(store.root),
                        "eval": {"bootstrap": 50}, **overrides})
    run_id = store.start_run(cfg)
    ids = np.array([f"{task}:{split_seed}:{i}" for i in range(N)])
    store.save_arrays(run_id, "predictions.npz", {"ids": ids, "labels": y, "weak": weak,
                                                  "student": student, "ceiling": ceiling})
    store.finish_run(run_id, evaluate(y, weak, student, ceiling, 50, 0.95, seed), {})


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """4 tasks x 2 split seeds x 2 training seeds: logconf's student fixes exactly 12 of naive's
    200 test answers in every run (+0.06); entropy's equals naive's."""
    store = Store(tmp_path_factory.mktemp("hier-store"))
    for t, task in enumerate(TASKS):
        for split_seed in (0, 1):
            y = np.random.default_rng(10 * t + split_seed).integers(0, 2, N)
            for seed in (0, 1):
                rng = np.random.default_rng(100 * t + 10 * split_seed + seed)
                right = rng.random(N) < 0.7
                naive = np.where(right == y.astype(bool), 0.8, 0.2)
                better = naive.copy()
                wrong = np.flatnonzero((naive > 0.5) != y.astype(bool))[:12]
                better[wrong] = 1 - better[wrong]
                weak, ceiling = np.full(N, 0.5) + 0.3 * (y - 0.5), np.where(y == 1, 0.9, 0.1)
                add_run(store, task, split_seed, seed, {}, y, naive, weak, ceiling)
                add_run(store, task, split_seed, seed, {"loss": "logconf"}, y, better, weak, ceiling)
                add_run(store, task, split_seed, seed, {"loss": "entropy"}, y, naive.copy(), weak, ceiling)
    return store


def test_dataset_table_rests_on_four_datasets(store):
    runs = store.runs("done")
    rows = dataset_table(store, runs, rounds=500)
    by = {r["comparison"]: r["result"] for r in rows}
    logconf, entropy = by["naive + logconf vs naive"], by["naive + entropy vs naive"]
    assert (logconf.datasets, logconf.splits, logconf.runs) == (4, 8, 16)
    assert logconf.value == pytest.approx(0.06)
    assert 0 < logconf.low < 0.06 < logconf.high  # the test examples still vary
    assert (logconf.positive, logconf.p_sign) == (4, 0.125)
    assert (entropy.value, entropy.low, entropy.high, entropy.p_sign) == (0.0, 0.0, 0.0, 1.0)
    assert logconf.p_holm == pytest.approx(0.25) and entropy.p_holm == 1.0  # Holm over 2
    assert not rows[0]["declared"]
    header, cells = dataset_cells(rows)
    assert header[2] == "datasets" and {c[2] for c in cells} == {"4"}


def suite_file(tmp_path, comparisons):
    p = tmp_path / "s.yaml"
    p.write_text("name: s\nbase: {task: sciq, weak_model: minilm-l6, strong_model: mpnet-base}\n"
                 "grid:\n  methods:\n    - {name: naive, method: naive}\n"
                 "    - {name: logconf, method: naive, loss: logconf}\n"
                 "    - {name: entropy, method: naive, loss: entropy}\n"
                 + (f"comparisons: {comparisons}\n" if comparisons else ""))
    return p


def test_suite_declares_the_family_and_report_uses_it(store, tmp_path, capsys):
    p = suite_file(tmp_path, "[[logconf, naive]]")
    assert comparison_family(p) == [("logconf vs naive", "naive + logconf", "naive")]
    rows = dataset_table(store, store.runs("done"), comparison_family(p), rounds=300)
    assert len(rows) == 1 and rows[0]["declared"]
    assert rows[0]["result"].p_holm == 0.125  # a family of one: Holm changes nothing
    # a declared comparison with no runs still counts in the family: Holm's m is 2
    fam = [*comparison_family(p), ("window vs naive", "naive + window", "naive")]
    rows = dataset_table(store, store.runs("done"), fam, rounds=300)
    assert rows[0]["result"].p_holm == 0.25 and rows[1]["result"] is None
    assert dataset_cells(rows)[1][1][2] == "0" and "no runs" in dataset_cells(rows)[1][1][4]
    assert main(["report", "--store", str(store.root), "--suite", str(p),
                 "--out", str(tmp_path / "r.png")]) == 0
    out = capsys.readouterr().out
    assert any(line.startswith("logconf vs naive ") for line in out.splitlines())
    assert max(map(len, out.splitlines())) <= 100 and f"the family declared in {p}" in " ".join(out.split())
    assert "smallest possible p is 0.125" in out
    assert main(["report", "--store", str(store.root), "--suite", str(p), "--html",
                 "--out", str(tmp_path / "html")]) == 0
    md = (tmp_path / "html" / "report.md").read_text()
    assert "## Methods against baselines at the level of datasets" in md
    assert f"the family declared in {p}" in md and "| logconf vs naive |" in md
    capsys.readouterr()
    (tmp_path / "none").mkdir()
    none = suite_file(tmp_path / "none", "")  # a suite that declares no family
    assert main(["report", "--store", str(store.root), "--suite", str(none)]) == 2
    assert capsys.readouterr().err.strip() == (f"error: suite {str(none)!r} declares no comparisons; "
                                               "add e.g. comparisons: [[logconf, naive]] to it, or "
                                               "leave out --suite")


def test_suite_comparisons_are_checked(tmp_path, capsys):
    with pytest.raises(W2SError, match="comparisons names 'window', which is no label of grid.methods"):
        comparison_family(suite_file(tmp_path, "[[window, naive]]"))
    with pytest.raises(W2SError, match=r"\[method, baseline\] pairs"):
        comparison_family(suite_file(tmp_path, "[logconf, naive]"))
    with pytest.raises(W2SError, match="with itself"):
        comparison_family(suite_file(tmp_path, "[[naive, naive]]"))
    assert comparison_family(suite_file(tmp_path, "")) == []


def test_load_suite_refuses_a_bad_family_before_any_cell(tmp_path):
    with pytest.raises(W2SError, match="no label of grid.methods"):
        load_suite(suite_file(tmp_path, "[[nope, naive]]"))


def test_clustered_paired_difference_pairs_within_runs():
    from w2sgen.nested import clustered_paired_difference

    a = [np.array([1.0, 1.0, 0.0, np.nan]), np.array([1.0, 1.0])]
    b = [np.array([0.0, 1.0, 0.0, 1.0]), np.array([0.0, 0.0])]
    d = clustered_paired_difference(a, b, seed=0, rounds=500)
    # run 1: differences 1, 0, 0 (the NaN question dropped) -> 1/3; run 2: 1, 1 -> 1
    assert d["diff"][0] == pytest.approx((1 / 3 + 1) / 2)
    assert (d["n"], d["groups"], d["better"], d["worse"]) == (5, 2, True, False)
    assert d["diff"][1] >= 0 and d["diff"][2] == pytest.approx(1.0)


def test_science_suite_declares_its_family_and_varies_both_seeds():
    from pathlib import Path

    from w2sgen.sweep.suite import read_suite

    path = Path(__file__).resolve().parents[1] / "suites" / "science.yaml"
    assert comparison_family(path) == [(f"{m} vs naive", f"naive + {m}", "naive")
                                       for m in ("logconf", "product", "reverse_ce")]
    _, _, grid = read_suite(path)
    assert grid["splits.seed"] == [0, 1, 2] and grid["seeds"] == [0, 1, 2]
    assert len(grid["task"]) >= 8 and not any("seed" in t["splits"] for t in grid["task"])
