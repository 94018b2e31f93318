"""`w2s report --ladder` (report/ladder.py) on a constructed causal-LM ladder whose accuracies are
exact, so its PGRs and slopes are known numbers."""
from __future__ import annotations

import math

import numpy as np
import pytest
from test_report_scaling import add, exact_model

from w2sgen.report import ladder, latest_done
from w2sgen.report.scaling import model_size
from w2sgen.store import Store

QWEN05, QWEN15 = "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"
WEAK = {"minilm-l3": 0.70, "smollm2-135m": 0.74, QWEN05: 0.78}
CEILING = {"smollm2-135m": 0.80, "gemma3-270m": 0.82, QWEN05: 0.85, QWEN15: 0.90}
PGR = {("minilm-l3", "smollm2-135m"): 0.3, ("minilm-l3", "gemma3-270m"): 0.2,
       ("minilm-l3", QWEN05): 0.4, ("minilm-l3", QWEN15): 0.5, ("smollm2-135m", QWEN05): 0.0,
       ("smollm2-135m", QWEN15): 0.25, (QWEN05, QWEN15): 0.5}
FIX = 6  # logconf's student is right on this many more test examples than naive's
N = 400


def student_acc(weak, strong):
    w, c = round(WEAK[weak] * N) / N, round(CEILING[strong] * N) / N
    return round((w + PGR[(weak, strong)] * (c - w)) * N) / N


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("causal-ladder"))
    y = np.random.default_rng(0).integers(0, 2, N)
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        for weak, strong in PGR:
            w, c = exact_model(y, WEAK[weak], rng), exact_model(y, CEILING[strong], rng)
            naive = exact_model(y, student_acc(weak, strong), rng)
            better = naive.copy()
            wrong = np.flatnonzero((naive > 0.5) != y.astype(bool))[:FIX]
            better[wrong] = 1 - better[wrong]
            add(store, "rt_sentiment", weak, strong, seed, {}, y, w, naive, c)
            add(store, "rt_sentiment", weak, strong, seed, {"loss": "logconf"}, y, w, better, c)
    return store


def test_points_families_and_slopes_are_the_constructed_numbers(store):
    pts = ladder.points(store, latest_done(store), rounds=300)
    assert len(pts) == 2 * len(PGR)
    for p in pts:
        assert p["seeds"] == [0, 1] and p["size"] == model_size(p["strong"])
        want = (student_acc(p["weak"], p["strong"]) - round(WEAK[p["weak"]] * N) / N) / (
            round(CEILING[p["strong"]] * N) / N - round(WEAK[p["weak"]] * N) / N)
        if p["method"] == "naive":
            assert p["arrays"]["pgr"][0] == pytest.approx(want)
            assert "gain" not in p["arrays"]
        else:
            assert p["arrays"]["gain"][0] == pytest.approx(FIX / N)
        assert p["same_family"] == ((p["weak"], p["strong"]) == (QWEN05, QWEN15))
    assert {p["family"] for p in pts} == {"SmolLM2-Instruct", "Gemma-3", "Qwen2.5-Coder-Instruct"}
    rows = ladder.trends(pts)
    within = {(t["weak"], t["method"], t["measure"]): t for t in rows
              if t["scope"] == "within Qwen2.5-Coder-Instruct"}
    # only the Qwen family has two sizes, for the weak models that supervise both
    assert {k[0] for k in within} == {"minilm-l3", "smollm2-135m"}
    decade = math.log10(model_size(QWEN15)) - math.log10(model_size(QWEN05))
    for weak in ("minilm-l3", "smollm2-135m"):
        t = within[(weak, "naive", "pgr")]
        pgr = [(student_acc(weak, s) - round(WEAK[weak] * N) / N)
               / (round(CEILING[s] * N) / N - round(WEAK[weak] * N) / N) for s in (QWEN05, QWEN15)]
        v, lo, hi = t["slope"]
        assert v == pytest.approx((pgr[1] - pgr[0]) / decade) and lo < v < hi
        assert within[(weak, "naive + logconf", "gain")]["slope"][0] == pytest.approx(0.0, abs=1e-12)
    across = [t for t in rows if t["scope"] == "across families" and t["measure"] == "pgr"
              and t["method"] == "naive"]
    assert {t["weak"] for t in across} == {"minilm-l3"}  # smollm2 supervises one family only
    a = across[0]
    assert sorted(a["strongs"], key=model_size) == ["smollm2-135m", "gemma3-270m", QWEN05, QWEN15]
    x = np.log10([model_size(s) for s in a["strongs"]])
    y = [PGR[("minilm-l3", s)] for s in a["strongs"]]
    assert a["slope"][0] == pytest.approx(np.polyfit(x, y, 1)[0], abs=0.02)  # PGRs rounded to N


def test_ladder_report_text_figures_and_cli(store, tmp_path, capsys):
    from w2sgen.cli import main

    pts = ladder.points(store, latest_done(store), rounds=200)
    out = ladder.text(pts, ladder.trends(pts))
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "| qwen2.5-0.5b -> qwen2.5-1.5b* | naive |" in out
    assert "within Qwen2.5-Coder-Instruct" in out and "across families" in out
    drawn = ladder.figures(pts, tmp_path)
    assert [p.name for p in drawn] == ["ladder-accuracy.png", "ladder-pgr.png", "ladder-gain.png"]
    assert all(p.stat().st_size > 10000 and p.with_suffix(".svg").is_file() for p in drawn)
    assert main(["report", "--store", str(store.root), "--ladder", "--out", str(tmp_path / "r" / "x.png")]) == 0
    printed = capsys.readouterr().out
    assert "slope per decade" in printed and (tmp_path / "r" / "ladder-pgr.svg").is_file()
