"""The model-ladder section of the report (report/scaling.py) on a constructed three-rung store."""
from __future__ import annotations

import numpy as np
import pytest

from w2sgen.metrics import evaluate
from w2sgen.report import document, latest_done, scaling, tables
from w2sgen.store import Store
from w2sgen.validate import build_config

N = 400
LADDER = ("minilm-l3", "minilm-l6", "mpnet-base")
PAIRS = [("minilm-l3", "minilm-l6"), ("minilm-l3", "mpnet-base"), ("minilm-l6", "mpnet-base")]
ACC = {"minilm-l3": 0.70, "minilm-l6": 0.78, "mpnet-base": 0.90}
FIXES = {"rt_sentiment": 8, "trec": 24}  # logconf's student fixes this many naive errors


def probs(y, correct, rng):
    conf = rng.uniform(0.55, 0.95, len(y))
    return np.where(correct == y.astype(bool), conf, 1 - conf)


def exact_model(y, acc, rng):
    """Predictions right on exactly round(acc * N) examples."""
    right = np.zeros(len(y), bool)
    right[rng.permutation(len(y))[:round(acc * len(y))]] = True
    return probs(y, right, rng)


def add(store, task, weak, strong, seed, overrides, y, w, s, c):
    cfg = build_config({"task": task, "weak_model": weak, "strong_model": strong, "seed": seed,
                        "store": str(store.root), "eval": {"bootstrap": 100}, **overrides})
    run_id = store.start_run(cfg)
    metrics = evaluate(y, w, s, c, 100, 0.95, seed)
    store.save_arrays(run_id, "predictions.npz", {"ids": np.array([f"{task}:{i}" for i in range(N)]),
                                                  "labels": y, "weak": w, "student": s, "ceiling": c})
    store.finish_run(run_id, metrics, {"evaluate": {"seconds": 0.1, "cached": False}})


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("ladder-store"))
    for t, task in enumerate(FIXES):
        y = np.random.default_rng(t).integers(0, 2, N)
        for seed in (0, 1):
            rng = np.random.default_rng(10 * t + seed)
            for weak, strong in PAIRS:
                w, c = exact_model(y, ACC[weak], rng), exact_model(y, ACC[strong], rng)
                naive = exact_model(y, (ACC[weak] + ACC[strong]) / 2, rng)
                better = naive.copy()
                wrong = np.flatnonzero((naive > 0.5) != y.astype(bool))[:FIXES[task]]
                better[wrong] = 1 - better[wrong]
                add(store, task, weak, strong, seed, {}, y, w, naive, c)
                add(store, task, weak, strong, seed, {"loss": "logconf"}, y, w, better, c)
                if (weak, strong) == ("minilm-l3", "mpnet-base"):
                    add(store, task, weak, strong, seed, {"method": {"name": "bootstrap", "ladder": ["minilm-l6"]}},
                        y, w, better, c)
    return store


def test_sizes_and_pair_labels():
    assert scaling.model_size("minilm-l3") == pytest.approx(17.2e6)
    assert scaling.model_size("qwen2.5-coder-1.5b-instruct") == pytest.approx(1.78e9)
    assert scaling.model_size("/some/folder") is None
    assert scaling.split_pair("minilm-l3 -> mpnet-base (probe)") == ("minilm-l3", "mpnet-base")


def test_paired_gain_is_the_constructed_difference(store):
    runs = latest_done(store)
    gains = scaling.paired_gain(store, runs, "naive + logconf", "naive", rounds=200)
    assert len(gains) == len(FIXES) * len(PAIRS)
    for g in gains:
        weak, strong = scaling.split_pair(g["pair"])
        gap = round(ACC[strong] * N) / N - round(ACC[weak] * N) / N
        assert g["gap"] == pytest.approx(gap)
        assert g["gain"] == pytest.approx(FIXES[g["task"]] / N / gap)  # every seed fixes the same count
        assert g["gain_low"] <= g["gain"] <= g["gain_high"] and g["gap_low"] <= g["gap"] <= g["gap_high"]
        assert g["seeds"] == [0, 1]
    rho, p = scaling.rank_correlation([g["gap"] for g in gains], [g["gain"] for g in gains])
    assert -1 <= rho <= 1 and 0 < p <= 1


def test_gain_against_gap_on_the_accuracy_scale_with_the_student_fixed(store):
    gains = scaling.paired_gain(store, latest_done(store), "naive + logconf", "naive", rounds=200)
    for g in gains:
        assert g["acc_gain"] == pytest.approx(FIXES[g["task"]] / N) and g["pgr_defined"]
        assert g["student"] == f"{scaling.split_pair(g['pair'])[1]} (probe)"
    corr = {c["student"]: c for c in scaling.gain_correlations(gains, permutations=2000)}
    # minilm-l6 is the student of one pair: 2 points (rt, trec), too few for a correlation
    assert corr["minilm-l6 (probe)"]["points"] == 2 and np.isnan(corr["minilm-l6 (probe)"]["rho"])
    # mpnet-base: gaps .20 (from l3) and .12 (from l6) on both tasks; the accuracy gain is the
    # task's own (.02 rt, .06 trec), whatever the gap: rho exactly 0
    assert corr["mpnet-base (probe)"]["points"] == 4 and corr["mpnet-base (probe)"]["rho"] == pytest.approx(0)
    # on the PGR scale the same points correlate by construction (gain / gap): gap ranks
    # [3.5, 1.5, 3.5, 1.5] against gain ranks [1, 2, 3, 4] -> -2 / sqrt(4 * 5)
    mp = sorted((g for g in gains if g["student"] == "mpnet-base (probe)"), key=lambda g: (g["task"], -g["gap"]))
    rho, _ = scaling.rank_correlation([g["gap"] for g in mp], [g["gain"] for g in mp], permutations=200)
    assert rho == pytest.approx(-2 / np.sqrt(20))
    # gain_correlations on the PGR scale gives the same, per student, over defined points only
    pgr = {c["student"]: c for c in scaling.gain_correlations(gains, permutations=200, scale="pgr")}
    assert pgr["mpnet-base (probe)"]["rho"] == pytest.approx(-2 / np.sqrt(20))
    undefined = [{**g, "pgr_defined": False} if g["task"] == mp[0]["task"] else g for g in gains]
    assert scaling.gain_correlations(undefined, permutations=200, scale="pgr")[-1]["points"] == 2


def test_rank_correlation():
    x = [1, 2, 3, 4, 5, 6, 7]
    assert scaling.rank_correlation(x, [v * 2 + 1 for v in x])[0] == pytest.approx(1.0)
    rho, p = scaling.rank_correlation(x, [-v for v in x], permutations=2000)
    assert rho == pytest.approx(-1.0) and p < 0.01  # 2 / 7! exactly, estimated by permutation
    assert np.isnan(scaling.rank_correlation([1, 2], [2, 1])[0])


def test_ladder_order_and_figures(store, tmp_path):
    runs = latest_done(store)
    acc = tables.accuracy_table(store, runs, rounds=100)
    assert scaling.ladder_models(acc) == list(LADDER)
    assert scaling.plot_ladder(acc, tmp_path / "ladder.png").stat().st_size > 5000
    assert scaling.plot_agreement_vs_size(acc, tmp_path / "agree.png").is_file()
    assert scaling.plot_bootstrap_vs_direct(acc, tmp_path / "boot.png").is_file()
    pgr = dict(tables.pgr_tables(store, runs, rounds=100))
    assert scaling.plot_pgr_heatmap(pgr, tmp_path / "heat.png").is_file()
    # one pair: nothing to draw along a ladder
    one = [r for r in acc if r["pair"].startswith("minilm-l3 -> mpnet-base")]
    assert scaling.plot_ladder(one, tmp_path / "none.png") is None


def test_the_report_has_the_ladder_section(store, tmp_path):
    html_path, md_path = document.write_report(store, latest_done(store), tmp_path / "report", rounds=100)
    md = md_path.read_text()
    assert "## Along the model ladder" in md
    for png in ("ladder.png", "pgr-heatmap-naive.png", "pgr-heatmap-logconf.png", "bootstrap-vs-direct.png",
                "agreement-vs-size.png"):
        assert (tmp_path / "report" / png).is_file() and png in md
    pgr_caption = md.split("PGR(naive + logconf) - PGR(naive) against the ceiling - weak gap")[1].split("\n")[0]
    # per student, never pooled across students (the ladder store has two: mpnet-base, minilm-l6)
    assert "Spearman per student model, held fixed (minilm-l6 (probe): rho " in pgr_caption
    assert "; mpnet-base (probe): rho " in pgr_caption
