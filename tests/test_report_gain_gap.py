"""Gain against gap on the accuracy scale (`w2s report --gain-gap`): per-(task, pair) points with
known gaps and gains, Spearman's rho within one student, its bootstrap over datasets."""
from __future__ import annotations

import math

import numpy as np
import pytest

from w2sgen.cli import main
from w2sgen.metrics import evaluate
from w2sgen.report.gain_gap import gain_gap_markdown, gain_gap_table, rho_over_datasets
from w2sgen.store import Store
from w2sgen.validate import build_config

N = 400
TASKS = ["sciq", "boolq", "cosmos_qa", "piqa"]
# (weak, strong) -> per task (gap, logconf's gain): mpnet-base gains more where the gap is larger;
# minilm-l6 as the student gains less there (and its gaps are all smaller)
PAIRS = {("minilm-l3", "mpnet-base"): [(0.05, 0.01), (0.10, 0.02), (0.15, 0.03), (0.20, 0.04)],
         ("minilm-l6", "mpnet-base"): [(0.04, 0.005), (0.09, 0.015), (0.14, 0.025), (0.19, 0.035)],
         ("minilm-l3", "minilm-l6"): [(0.02, 0.04), (0.03, 0.03), (0.04, 0.02), (0.01, 0.05)]}


def first(share: float) -> np.ndarray:
    """Right on the first round(share * N) test examples."""
    return np.arange(N) < round(share * N)


def add_run(store, task, weak_model, strong_model, seed, loss, right_weak, right_student, right_ceiling):
    cfg = build_config({"task": task, "weak_model": weak_model, "strong_model": strong_model, "seed": seed,
                        "store": str(store.root), "eval": {"bootstrap": 20}, "loss": loss})
    run_id = store.start_run(cfg)
    y = np.random.default_rng(seed).integers(0, 2, N)
    as_prob = lambda right: np.where(right, y, 1 - y).astype(float)  # noqa: E731
    weak, student, ceiling = as_prob(right_weak), as_prob(right_student), as_prob(right_ceiling)
    store.save_arrays(run_id, "predictions.npz", {"ids": np.array([f"{task}:{i}" for i in range(N)]),
                                                  "labels": y, "weak": weak, "student": student,
                                                  "ceiling": ceiling})
    store.finish_run(run_id, evaluate(y, weak, student, ceiling, 20, 0.95, seed), {})


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("gain-gap"))
    for (weak_model, strong_model), points in PAIRS.items():
        for task, (gap, gain) in zip(TASKS, points):
            for seed in (0, 1):
                w, s = 0.6, 0.6 + gap / 2
                args = (store, task, weak_model, strong_model, seed)
                add_run(*args, "xent", first(w), first(s), first(w + gap))
                add_run(*args, "logconf", first(w), first(s + gain), first(w + gap))
    return store


def test_points_carry_the_known_gaps_and_gains_and_rho_is_per_student(store):
    rows = gain_gap_table(store, store.runs("done"), [("logconf vs naive", "naive + logconf", "naive")],
                          rounds=300)
    by = {r["student"]: r for r in rows}
    assert list(by) == ["minilm-l6 (probe)", "mpnet-base (probe)"]
    mpnet = by["mpnet-base (probe)"]
    assert len(mpnet["points"]) == 8 and mpnet["rho"]["datasets"] == 4
    for p in mpnet["points"]:
        weak = p["pair"].split(" ->")[0]
        gap, gain = PAIRS[(weak, "mpnet-base")][TASKS.index(p["task"])]
        assert p["gap"].value == pytest.approx(gap) and p["gain"].value == pytest.approx(gain)
        assert p["gain"].low < gain < p["gain"].high  # the examples still vary
    # mpnet-base: gain rises with gap in every task and pair -> rho 1 in every draw of datasets
    assert mpnet["rho"]["rho"] == pytest.approx(1.0)
    assert (mpnet["rho"]["low"], mpnet["rho"]["high"]) == pytest.approx((1.0, 1.0))
    l6 = by["minilm-l6 (probe)"]["rho"]  # the other student: gain falls with gap
    assert l6["rho"] == pytest.approx(-1.0) and l6["points"] == 4
    # a draw of fewer than 3 distinct tasks has no rho: counted, not silently used
    assert 0 < l6["undefined_draws"] < 300


def test_rho_interval_resamples_datasets_not_points():
    from w2sgen.nested import Hierarchical

    def pt(task, gap, gain):
        h = lambda v: Hierarchical(v, v, v, 1, 1, 1, {}, 0, 0, 1.0)  # noqa: E731
        return {"task": task, "gap": h(gap), "gain": h(gain)}

    # five datasets; one (e) has 4 pairs that break the trend: as points it dominates, as a dataset
    # it is one of five
    pts = [pt("a", 0.1, 0.01), pt("b", 0.2, 0.02), pt("c", 0.3, 0.03), pt("d", 0.4, 0.04)]
    pts += [pt("e", 0.05 * i, 0.05 - 0.01 * i) for i in range(1, 5)]
    r = rho_over_datasets(pts, rounds=500, permutations=200)
    assert r["points"] == 8 and r["datasets"] == 5
    assert r["low"] < r["rho"] < r["high"] and r["high"] - r["low"] > 0.5


def test_markdown_and_cli(store, tmp_path, capsys):
    rows = gain_gap_table(store, store.runs("done"), rounds=200)
    text = gain_gap_markdown(rows)
    assert "### naive + logconf vs naive, student mpnet-base (probe)" in text
    assert "| sciq | minilm-l3 -> mpnet-base (probe) | ceiling above weak: gap +0.050 [" in text
    assert "Spearman rho(gap, gain) over 8 points from 4 datasets: +1.00 [+1.00, +1.00]" in text
    assert gain_gap_markdown([]) == ""
    assert main(["report", "--store", str(store.root), "--gain-gap", "--out", str(tmp_path / "r.png")]) == 0
    out = capsys.readouterr().out
    assert "gain against gap on the accuracy scale, the student held fixed:" in out
    assert "student minilm-l6 (probe)" in out and not math.isnan(rows[0]["rho"]["rho"])
