"""`w2s report --html` / `--export` (the report package), the paired test, and the tracker loggers."""
from __future__ import annotations

import html as htmllib
import re

import numpy as np
import pytest

from w2sgen import loggers
from w2sgen.cli import main
from w2sgen.errors import W2SError
from w2sgen.metrics import evaluate, holm, wilcoxon_signed_rank
from w2sgen.report import document, export, figures, latest_done, refinement_pairs_markdown, tables
from w2sgen.report.export import run_rows
from w2sgen.report.ranking import method_ranking
from w2sgen.store import Store
from w2sgen.validate import build_config

TASKS = ["sciq", "boolq", "cosmos_qa", "amazon_polarity", "piqa", "wic"]
N_TEST = 200


def synthetic_predictions(task_index: int, seed: int):
    """Test labels and weak / naive-student / ceiling probabilities for one (task, seed): the
    ceiling beats the student, which beats the weak supervisor."""
    y = np.random.default_rng(task_index).integers(0, 2, N_TEST)  # a task's test set is shared
    rng = np.random.default_rng(100 * task_index + seed)

    def model(acc):
        right = rng.random(N_TEST) < acc
        conf = rng.uniform(0.55, 0.95, N_TEST)
        return np.where(right == y.astype(bool), conf, 1 - conf)

    return y, model(0.70), model(0.78), model(0.90)


def add_run(store, task, seed, method_overrides, y, weak, student, ceiling, extra_metrics=None):
    raw = {"task": task, "weak_model": "minilm-l6", "strong_model": "mpnet-base", "seed": seed,
           "store": str(store.root), "eval": {"bootstrap": 100}, **method_overrides}
    cfg = build_config(raw)
    run_id = store.start_run(cfg)
    metrics = evaluate(y, weak, student, ceiling, 100, 0.95, seed)
    metrics["weak_label_accuracy"] = 0.7
    metrics.update(extra_metrics or {})
    ids = np.array([f"{task}:{i}" for i in range(len(y))])
    store.save_arrays(run_id, "predictions.npz", {"ids": ids, "labels": y, "weak": weak,
                                                  "student": student, "ceiling": ceiling})
    store.finish_run(run_id, metrics, {"evaluate": {"seconds": 0.5, "cached": False}})
    return run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """6 tasks x 2 seeds x 3 methods: `naive`; `naive + logconf`, whose student fixes 12 of the
    naive student's errors in every (task, seed); `naive + entropy`, identical to naive."""
    store = Store(tmp_path_factory.mktemp("report-store"))
    for t, task in enumerate(TASKS):
        for seed in (0, 1):
            y, weak, naive, ceiling = synthetic_predictions(t, seed)
            better = naive.copy()
            wrong = np.flatnonzero((naive > 0.5) != y.astype(bool))[:12]
            better[wrong] = 1 - better[wrong]
            add_run(store, task, seed, {}, y, weak, naive, ceiling)
            add_run(store, task, seed, {"loss": "logconf"}, y, weak, better, ceiling)
            add_run(store, task, seed, {"loss": "entropy"}, y, weak, naive.copy(), ceiling)
    return store


# ----------------------------------------------------------------------- statistics


def test_wilcoxon_exact_on_constructed_cases():
    assert wilcoxon_signed_rank([0.01] * 6)[1] == pytest.approx(2 / 2 ** 6)   # better everywhere
    assert wilcoxon_signed_rank([-0.02, -0.01, -0.03, -0.04, -0.05])[1] == pytest.approx(2 / 2 ** 5)
    assert wilcoxon_signed_rank([0.0] * 8) == (0.0, 1.0, 0)                  # identical methods
    w, p, n = wilcoxon_signed_rank([1, -1, 2, -2, 0])                       # symmetric, a zero dropped
    assert (n, p) == (4, 1.0) and w == pytest.approx(5.0)


def test_wilcoxon_agrees_with_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    for n in (5, 9, 14, 30):
        d = rng.normal(0.3, 1, n)
        ours = wilcoxon_signed_rank(d)
        ref = stats.wilcoxon(d, method="exact")
        assert ours[1] == pytest.approx(ref.pvalue, rel=1e-9)
        assert min(ours[0], n * (n + 1) / 2 - ours[0]) == pytest.approx(ref.statistic)
    d = rng.normal(0.1, 1, 450)  # above EXACT_MAX: the normal approximation
    ref = stats.wilcoxon(d, method="approx", correction=True)
    assert wilcoxon_signed_rank(d)[1] == pytest.approx(ref.pvalue, rel=1e-6)


def test_holm_adjustment():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]


def test_ranking_finds_the_better_method_and_not_the_identical_one(store):
    ranking = method_ranking(latest_done(store))
    assert ranking.baseline == "naive" and ranking.units == ranking.ranked_units == 6
    assert len(ranking.ranked) == 3
    by = {c.method: c for c in ranking.comparisons}
    better, same = by["naive + logconf"], by["naive + entropy"]
    assert (better.units, better.wins, better.losses) == (6, 6, 0)
    assert better.p == pytest.approx(2 / 2 ** 6) and better.p < 0.05
    assert (better.seed_wins, better.seed_losses) == (12, 0)
    assert better.median_diff == pytest.approx(12 / N_TEST)
    assert (same.ties, same.p, same.p_holm) == (6, 1.0, 1.0)
    assert ranking.mean_rank["naive + logconf"] == 1.0
    assert ranking.mean_rank["naive"] == ranking.mean_rank["naive + entropy"] == 2.5


# --------------------------------------------------------------------------- report


def html_tables(text):
    tables = []
    for body in re.findall(r"<table>(.*?)</table>", text, re.DOTALL):
        rows = re.findall(r"<tr>(.*?)</tr>", body, re.DOTALL)
        tables.append([[htmllib.unescape(c) for c in re.findall(r"<t[hd]>(.*?)</t[hd]>", r, re.DOTALL)]
                       for r in rows])
    return tables


def markdown_tables(text):
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            if not re.fullmatch(r"\|(---\|)+", line):
                cells = re.split(r"(?<!\\) \| ", line[2:-2])
                current.append([c.replace("\\|", "|") for c in cells])
        elif current:
            tables.append(current)
            current = []
    return tables


def test_html_report_is_self_contained_and_the_markdown_says_the_same(store, tmp_path):
    runs = latest_done(store)
    html_path, md_path = document.write_report(store, runs, tmp_path / "report", rounds=200)
    text, md = html_path.read_text(), md_path.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.IGNORECASE)
    assert "<script" not in text and "<link" not in text and "http://" not in text and "https://" not in text
    images = re.findall(r'<img [^>]*src="([^"]+)"', text)
    assert len(images) >= 4 and all(src.startswith("data:image/png;base64,") for src in images)
    for heading in ("Accuracy per task", "Performance gap recovered per method", "Student against strong ceiling",
                    "imitate its supervisor", "Methods ranked across tasks", "Every run"):
        assert heading in text and heading in md
    assert "Wilcoxon signed-rank" in text and "numpy" in text
    span = max(r["finished"] for r in runs) - min(r["started"] for r in runs)
    own = sum(r["finished"] - r["started"] for r in runs)
    assert f"({span:.0f} s wall; the runs' own times add up to {own:.0f} s)" in md

    tables_html, tables_md = html_tables(text), markdown_tables(md)
    assert tables_html == tables_md and len(tables_html) >= 5
    ranking = next(t for t in tables_html if t[0][0] == "method" and t[0][1] == "mean rank")
    row = next(r for r in ranking if r[0] == "naive + logconf")
    assert row[1:4] == ["1.00", "6", "6 / 0 / 0"] and row[8] == "0.031"
    same = next(r for r in ranking if r[0] == "naive + entropy")
    assert same[3] == "0 / 6 / 0" and same[8] == "1"
    every = next(t for t in tables_html if t[0][0] == "run")
    assert len(every) == 1 + len(runs)
    first = runs[0]["metrics"]["student_accuracy"]
    assert f"{first['value']:.3f} [{first['low']:.3f}, {first['high']:.3f}]" in md
    for png in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (md_path.parent / png).is_file()


def test_accuracy_medians_use_the_stored_predictions(store):
    runs = [r for r in latest_done(store) if r["config"]["task"]["name"] == "sciq"
            and r["config"]["loss"]["name"] == "xent"]
    (row,) = tables.accuracy_table(store, runs, rounds=200)
    accs = sorted(r["metrics"]["student_accuracy"]["value"] for r in runs)
    assert row["student"][0] == pytest.approx(np.median(accs))
    assert row["student"][1] <= row["student"][0] <= row["student"][2]
    assert row["seeds"] == [0, 1] and row["pair"] == "minilm-l6 -> mpnet-base (probe)"
    gaps = [r["metrics"]["ceiling_accuracy"]["value"] - r["metrics"]["weak_accuracy"]["value"]
            for r in runs]
    assert row["gap"][0] == pytest.approx(np.median(gaps))
    assert row["gap"][1] <= row["gap"][0] <= row["gap"][2]
    one = tables.accuracy_table(store, runs[:1], rounds=200)[0]["gap"]
    (gap,) = [r["metrics"]["gap_accuracy"] for r in runs[:1]]  # one seed: the run's own interval
    assert one[0] == pytest.approx(gap["value"]) and gap["low"] - 0.02 < one[1] < gap["low"] + 0.02


def test_training_curves_are_medians_over_seeds_per_method(store, tmp_path):
    import copy

    runs = copy.deepcopy([r for r in latest_done(store) if r["config"]["task"]["name"] == "sciq"])
    assert len(runs) == 6  # 3 methods x 2 seeds
    for r in runs:
        s, entropy = r["config"]["seed"], r["config"]["loss"]["name"] == "entropy"
        student = [0.6 + s, 0.7 + s, 0.65 + s] + ([0.1] if entropy else [])  # entropy: one epoch more
        r["metrics"]["curves"] = {"weak": {"test_accuracy": [0.5, 0.5 + s, 0.5]},
                                  "student": {"test_accuracy": student},
                                  "ceiling": {"test_accuracy": [0.8, 0.9, 1.0 + s]}}
    no_curves = copy.deepcopy(runs[0])
    no_curves["metrics"].pop("curves")
    med = tables.curve_medians([*runs, no_curves])
    ((key, g),) = med.items()
    assert key == ("sciq", "minilm-l6 -> mpnet-base (probe)")
    assert set(g) == {"weak", "ceiling", "naive", "naive + logconf", "naive + entropy"}
    assert np.allclose(g["naive"], [1.1, 1.2, 1.15])  # seeds 0 and 1: medians of two
    assert np.allclose(g["naive + entropy"], [1.1, 1.2, 1.15, 0.1])
    assert np.allclose(g["weak"], [0.5, 1.0, 0.5]) and np.allclose(g["ceiling"], [0.8, 0.9, 1.5])
    png = figures.plot_training_curves(runs, tmp_path / "curves.png")
    assert png.is_file() and png.stat().st_size > 5000
    assert figures.plot_training_curves([no_curves], tmp_path / "none.png") is None


def test_export_round_trips_csv_and_parquet(store, tmp_path):
    pd = pytest.importorskip("pandas")
    runs = latest_done(store)
    rows = run_rows(runs)
    assert len(rows) == 36 and {r["method"] for r in rows} == {"naive", "naive + logconf", "naive + entropy"}
    for name, read in (("runs.csv", pd.read_csv), ("runs.parquet", pd.read_parquet)):
        if name.endswith("parquet"):
            pytest.importorskip("pyarrow")
        path, n = export.export(runs, tmp_path / name)
        back = read(path)
        assert n == len(back) == 36 and list(back.columns) == list(rows[0])
        assert back["run_id"].tolist() == [r["run_id"] for r in rows]
        assert back["task"].tolist() == [r["task"] for r in rows]
        assert np.allclose(back["student_accuracy"], [r["student_accuracy"] for r in rows])
        assert np.allclose(back["pgr_accuracy"].astype(float),
                           [np.nan if r["pgr_accuracy"] is None else r["pgr_accuracy"] for r in rows],
                           equal_nan=True)
    with pytest.raises(W2SError, match=".csv or .parquet"):
        export.export(runs, tmp_path / "runs.xlsx")


def test_cli_report_html_and_export(store, tmp_path, capsys):
    out = tmp_path / "html"
    assert main(["report", "--store", str(store.root), "--html", "--out", str(out),
                 "--export", str(tmp_path / "runs.csv")]) == 0
    said = capsys.readouterr().out
    assert "exported 36 run(s)" in said and "report.html" in said
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    assert (tmp_path / "runs.csv").is_file()
    assert main(["report", "--store", str(store.root), "--export", str(tmp_path / "runs.txt")]) == 2


# ------------------------------------------------- a real (tiny) pipeline run, end to end


@pytest.mark.slow
def test_pipeline_runs_feed_the_report_and_the_logger_hook(tmp_path, tiny_bert_dir, monkeypatch):
    import csv

    from conftest import sentiment_examples

    from w2sgen import pipeline
    from w2sgen.validate import load_config

    for var in ("W2S_WANDB_PROJECT", "MLFLOW_TRACKING_URI", "W2S_MLFLOW_EXPERIMENT", "W2S_LOGGERS"):
        monkeypatch.delenv(var, raising=False)
    data = tmp_path / "tiny.csv"
    with data.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "label"])
        w.writerows((e.id, e.text, e.label) for e in sentiment_examples(240))
    logged = []

    class Recorder:  # a tracker session that keeps what it is sent
        def __init__(self, run):
            self.run, self.steps = run, []
            logged.append(self)

        def curves(self, step, series, first_epoch=1):
            self.steps.append((step, first_epoch, len(series["loss"])))

        def finish(self, metrics, tables, files):
            self.metrics = metrics

        def abort(self):
            pass

    monkeypatch.setitem(loggers.LOGGERS._items, "wandb", loggers.Logger("json", lambda: True, Recorder, "X"))
    base = [f"task={data}", f"weak_model={tiny_bert_dir}", f"strong_model={tiny_bert_dir}",
            "splits.weak_train=60", "splits.transfer=60", "splits.test=100", "train.epochs=2",
            "eval.bootstrap=50", "features.max_length=64", f"store={tmp_path / 'store'}"]
    for extra in ([], ["loss=logconf"]):
        pipeline.run(load_config(None, base + extra), quiet=True)
    assert [r.run.run_id for r in logged] == [1, 2]
    assert logged[1].run.config["loss"]["name"] == "logconf" and "student_accuracy" in logged[1].metrics
    # trained here: each epoch as it ends; found in the cache (the second run's supervisor and
    # ceiling): the stored curve at once
    assert logged[0].steps == [("weak_supervisor", 1, 1), ("weak_supervisor", 2, 1), ("strong_ceiling", 1, 1),
                               ("strong_ceiling", 2, 1), ("student", 1, 1), ("student", 2, 1)]
    assert logged[1].steps == [("weak_supervisor", 1, 2), ("strong_ceiling", 1, 2), ("student", 1, 1),
                               ("student", 2, 1)]
    store = Store(tmp_path / "store")
    html_path, md_path = document.write_report(store, latest_done(store), tmp_path / "report", rounds=100)
    text = html_path.read_text()
    assert "tiny.csv" in text and "naive + logconf" in text and "data:image/png;base64," in text
    assert html_tables(text) == markdown_tables(md_path.read_text())


def test_fixed_pgr_baseline_rows(tmp_path):
    """eval.pgr_baseline=fixed: PGR of the mean student against the mean weak and ceiling over the
    seeds (the 2026 testbed's PGR), not the median of per-seed PGRs."""
    from w2sgen.report.tables import median_pgr_table
    from w2sgen.report.text import median_pgr_cells

    store = Store(tmp_path / "fixed")
    y = np.random.default_rng(0).integers(0, 2, N_TEST)
    accs = {0: (0.60, 0.66, 0.80), 1: (0.64, 0.70, 0.84), 2: (0.62, 0.62, 0.82)}  # weak, student, ceiling
    for seed, (w, s, c) in accs.items():
        def model(acc, salt, seed=seed):
            right = np.zeros(N_TEST, bool)
            right[np.random.default_rng(seed * 10 + salt).permutation(N_TEST)[:round(acc * N_TEST)]] = True
            return np.where(right == y.astype(bool), 0.8, 0.2)
        add_run(store, "sciq", seed, {"eval": {"bootstrap": 100, "pgr_baseline": "fixed"}}, y,
                model(w, 1), model(s, 2), model(c, 3))
    (row,) = median_pgr_table(store, rounds=300)
    mean = {k: np.mean([a[i] for a in accs.values()]) for i, k in enumerate(("weak", "student", "ceiling"))}
    assert row["baseline"] == "fixed" and row["gap"]
    assert row["median_pgr"] == pytest.approx((mean["student"] - mean["weak"]) / (mean["ceiling"] - mean["weak"]))
    per_seed = [(s - mean["weak"]) / (mean["ceiling"] - mean["weak"]) for _, s, _ in accs.values()]
    assert row["sd"] == pytest.approx(np.std(per_seed, ddof=1))
    assert row["low"] < row["median_pgr"] < row["high"]
    assert "(of means, fixed baselines)" in median_pgr_cells([row])[1][0][-1]


def exact_model(y, acc, salt):
    """Probabilities right on exactly round(acc * N_TEST) of the test examples."""
    right = np.zeros(N_TEST, bool)
    right[np.random.default_rng(salt).permutation(N_TEST)[:round(acc * N_TEST)]] = True
    return np.where(right == y.astype(bool), 0.8, 0.2)


def test_median_pgr_rows_per_pair_mode_and_setting(tmp_path, store):
    """A store with two weak->strong pairs, two train modes and, for naive, a second epoch count:
    the same method names give one row per (pair, mode, setting), each the median over its own
    seeds only, labelled by its pair and setting; statistics against naive pair within a group."""
    from w2sgen.report.tables import median_pgr_table
    from w2sgen.report.text import median_pgr_cells

    st = Store(tmp_path / "pairs")
    y = np.random.default_rng(0).integers(0, 2, N_TEST)
    pairs = {("minilm-l6", "mpnet-base"): (0.60, 0.80), ("minilm-l3", "minilm-l6"): (0.55, 0.65)}
    # the share of the gap each group's student recovers; seeds add -0.1, 0, +0.1
    share = {("probe", "naive", 10): 0.2, ("probe", "naive + logconf", 10): 0.5,
             ("full", "naive", 10): 0.6, ("full", "naive + logconf", 10): 0.9, ("probe", "naive", 3): 0.0}
    expected = {}
    for (weak_m, strong_m), (w, c) in pairs.items():
        for (mode, method, epochs), frac in share.items():
            for seed in (0, 1, 2):
                s = w + (frac + 0.1 * (seed - 1)) * (c - w)
                over = {"weak_model": weak_m, "strong_model": strong_m,
                        "train": {"mode": mode, "epochs": epochs},
                        **({"loss": "logconf"} if "logconf" in method else {})}
                add_run(st, "sciq", seed, over, y, exact_model(y, w, seed * 10 + 1),
                        exact_model(y, s, seed * 10 + 2), exact_model(y, c, seed * 10 + 3))
            pgr = np.median([(round(s * N_TEST) - round(w * N_TEST)) / (round(c * N_TEST) - round(w * N_TEST))
                             for s in (w + (frac + 0.1 * (k - 1)) * (c - w) for k in (0, 1, 2))])
            setting = "" if (mode, method) != ("probe", "naive") else f"train.epochs={epochs}"
            expected[(f"{weak_m} -> {strong_m} ({mode})", method, setting)] = pgr
    rows = median_pgr_table(st, rounds=100)
    assert len(rows) == len(expected) == 10
    got = {(r["pair"], r["method"], r["setting"]): r for r in rows}
    assert set(got) == set(expected)
    for key, pgr in expected.items():
        assert got[key]["seeds"] == [0, 1, 2]
        assert got[key]["median_pgr"] == pytest.approx(pgr, abs=1e-9), key
    header, cells = median_pgr_cells(rows)
    assert header[:4] == ["task", "model pair", "method", "setting"]
    assert ["sciq", "minilm-l3 -> minilm-l6 (full)", "naive", "-"] == cells[0][:4]
    assert ["sciq", "minilm-l3 -> minilm-l6 (probe)", "naive", "train.epochs=3"] in [c[:4] for c in cells]
    # one pair, one mode, one setting per method (the module's store): the columns of old
    assert median_pgr_cells(median_pgr_table(store, rounds=50))[0] == \
        ["task", "method", "seeds", "median student acc.", "median PGR [95% CI]"]
    # the accuracy table groups the same way
    acc = tables.accuracy_table(st, latest_done(st), rounds=50)
    assert sorted((r["pair"], r["method"], r["setting"]) for r in acc) == sorted(expected)
    # naive is paired with logconf only within one pair, mode and setting: 2 pairs x 2 modes x
    # 2 epoch counts (of the probe) = 6 units, logconf ran in 4, beating naive by 0.3 of the gap
    ranking = method_ranking(latest_done(st))
    (lc,) = ranking.comparisons
    assert ranking.units == 6 and (lc.units, lc.wins, lc.losses) == (4, 4, 0)
    assert lc.seed_wins == 12


def test_setting_ignores_seed_and_legacy_defaults():
    """Runs that differ by seed, name, store, device, eval or a training option at its legacy
    value (older stores lack it) share a row; another epoch count does not."""
    from w2sgen.report.runs import group_key

    def run(**train):
        return {"config": {"name": "x", "task": {"name": "sciq", "options": {}}, "weak_model": "a",
                           "strong_model": "b", "seed": 0, "store": "/s", "device": "auto",
                           "train": {"mode": "probe", "epochs": 10, **train},
                           "method": {"name": "naive", "options": {}}, "loss": {"name": "xent", "options": {}},
                           "eval": {"bootstrap": 1000}}}

    base = run()
    other = run(select="last", gradient_checkpointing=True)
    other["config"].update(seed=3, name="y", store="/t", device="cpu", eval={"bootstrap": 200})
    assert group_key(base) == group_key(other)
    assert group_key(base) != group_key(run(epochs=3))


# ------------------------------------------------------------- icl_refine against naive


N_PAIRED = 20
PAIRED_Y = np.arange(N_PAIRED) % 2


def right_on(count):
    """Probabilities right on exactly the first `count` of the N_PAIRED test examples."""
    right = np.arange(N_PAIRED) < count
    return np.where(right == PAIRED_Y.astype(bool), 0.8, 0.2)


def refine_metrics(lm, flips, flips_correct, transfer=100, k=4):
    """What icl_refine records of its labels: weak at 0.700, refined by the flips' net gain."""
    return {"method": {"name": "icl_refine", "lm": lm, "k": k, "batch": "loo", "balance": False,
                       "weak_label_accuracy": 0.7,
                       "refined_label_accuracy": 0.7 + (2 * flips_correct - flips) / transfer,
                       "flips": flips, "flips_correct": flips_correct},
            "split_sizes": {"transfer": transfer}}


def add_paired(store, seed, overrides, student, extra=None, weak=14):
    """A sciq run (minilm-l6 -> mpnet-base unless overridden) whose weak supervisor is right on
    the first `weak` test examples, its ceiling on the first 18, its student on `student`."""
    return add_run(store, "sciq", seed, overrides, PAIRED_Y, right_on(weak), right_on(student),
                   right_on(18), extra)


QWEN = {"method": {"name": "icl_refine", "lm": "qwen2.5-coder-0.5b-instruct"}}


@pytest.fixture(scope="module")
def refine_store(tmp_path_factory):
    """icl_refine (qwen2.5-coder-0.5b-instruct) in seeds 0-2, right on 3 more of the 20 test examples than the
    naive student of seeds 0 and 1; seed 2 has no naive run of its pair, only one of another pair
    (minilm-l3 -> mpnet-base, another supervisor) and a naive + logconf run; a second refiner
    (smollm2-135m, k=2) in seed 0, 1 example worse than naive."""
    store = Store(tmp_path_factory.mktemp("refine-store"))
    for seed, naive in ((0, 15), (1, 16)):
        add_paired(store, seed, {}, naive)
        add_paired(store, seed, QWEN, naive + 3, refine_metrics("qwen2.5-coder-0.5b-instruct", 12, 11))
    add_paired(store, 2, QWEN, 17, refine_metrics("qwen2.5-coder-0.5b-instruct", 10, 5))
    add_paired(store, 2, {"weak_model": "minilm-l3"}, 10, weak=12)
    add_paired(store, 2, {"loss": "logconf"}, 12)
    add_paired(store, 0, {"method": {"name": "icl_refine", "lm": "smollm2-135m", "k": 2}}, 14,
               refine_metrics("smollm2-135m", 4, 1, k=2))
    return store


def refine_section(text, title):
    """The per-seed rows (cells) and the mean line of the section whose heading has `title`."""
    (section,) = [s for s in text.split("### ")[1:] if s.startswith(title)]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| seed")]
    means = [line for line in section.splitlines() if line.startswith("student icl_refine - naive")]
    return rows, means


def test_refinement_pairs_are_per_seed_within_the_unit(refine_store):
    text = refinement_pairs_markdown(refine_store, latest_done(refine_store))
    assert text.count("### ") == 2
    rows, (mean,) = refine_section(
        text, "sciq, minilm-l6 -> mpnet-base (probe), icl_refine(lm=qwen2.5-coder-0.5b-instruct), refiner qwen2.5-coder-0.5b-instruct")
    # flips: 11 of 12 right on 100 transfer examples -> +0.100, matched-pairs interval, McNemar
    # p = 2 * 13 / 2^12; the students 15 -> 18 and 16 -> 19 of 20 right; PGR with weak 14/20,
    # ceiling 18/20
    assert rows[0] == ["0", "0.700", "0.800", "+0.100 [+0.035, +0.165]", "6.3e-03", "0.750", "0.900",
                       "+0.150", "0.25 -> 1.00"]
    assert rows[1] == ["1", "0.700", "0.800", "+0.100 [+0.035, +0.165]", "6.3e-03", "0.800", "0.950",
                       "+0.150", "0.50 -> 1.25"]
    # seed 2: the naive runs of another pair and of another loss are not its baseline
    assert rows[2] == ["2", "0.700", "0.700", "+0.000 [-0.062, +0.062]", "1.0e+00",
                       "(no naive run with this seed)", "0.850", "-", "- -> 0.75"]
    assert len(rows) == 3
    est, low, high = map(float, re.search(r"seeds: (\S+) \[(\S+), (\S+)\]", mean).groups())
    assert "mean over 2 seeds" in mean and "over 20 test examples" in mean and "better in 2 of 2 seeds" in mean
    assert est == pytest.approx(0.15) and 0 <= low < est < high <= 0.3
    # 1 of 4 flips right: (1 - 3) / 100, p = 2 * 5 / 2^4
    rows, (mean,) = refine_section(text, "sciq, minilm-l6 -> mpnet-base (probe), icl_refine(k=2,lm=smollm2-135m)")
    assert rows == [["0", "0.700", "0.680", "-0.020 [-0.059, +0.019]", "6.2e-01", "0.750", "0.700",
                     "-0.050", "0.25 -> 0.00"]]
    assert "-0.0500" in mean and "better in 0 of 1 seeds" in mean


def test_refinement_pairs_refuse_mismatched_predictions(tmp_path):
    store = Store(tmp_path / "weak")
    add_paired(store, 0, {}, 15)
    add_paired(store, 0, QWEN, 18, refine_metrics("qwen2.5-coder-0.5b-instruct", 12, 11), weak=13)
    with pytest.raises(W2SError, match="different weak predictions"):
        refinement_pairs_markdown(store, latest_done(store))
    store = Store(tmp_path / "ids")
    add_paired(store, 0, {}, 15)
    run_id = add_paired(store, 0, QWEN, 18, refine_metrics("qwen2.5-coder-0.5b-instruct", 12, 11))
    store.save_arrays(run_id, "predictions.npz", {"ids": np.array([f"other:{i}" for i in range(N_PAIRED)]),
                                                  "labels": PAIRED_Y, "weak": right_on(14),
                                                  "student": right_on(18), "ceiling": right_on(18)})
    with pytest.raises(W2SError, match="different test examples"):
        refinement_pairs_markdown(Store(store.root), latest_done(store))
    assert refinement_pairs_markdown(store, [r for r in latest_done(store) if r["id"] != run_id]) == ""


def test_cli_report_refinement_prints_the_pairs(refine_store, tmp_path, capsys):
    assert main(["report", "--store", str(refine_store.root), "--refinement",
                 "--out", str(tmp_path / "report.png")]) == 0
    said = capsys.readouterr().out
    medians, pairs = said.split("ICL refinement against naive, per seed")
    assert "ICL refinement, medians over seeds" in medians
    assert pairs.count("### sciq, minilm-l6 -> mpnet-base (probe)") == 2
    assert max(map(len, said.splitlines())) <= 100  # the Markdown tables as terminal columns
    row = next(line.split() for line in pairs.splitlines() if line.split()[:3] == ["0", "0.700", "0.800"])
    assert row[3] == "+0.100" and row[-7:] == ["6.3e-03", "0.750", "0.900", "+0.150", "0.25", "->",
                                               "1.00"]
    assert "(no naive run with" in pairs  # the cell wraps in its column


def test_refinement_sections_order_numbers_by_value():
    from w2sgen.report.text import natural_key

    variants = ["icl_refine(k=16)", "icl_refine(k=2)", "icl_refine(k=0)", "icl_refine(k=8,lm=b)"]
    assert sorted(variants, key=lambda v: natural_key((v,))) == [
        "icl_refine(k=0)", "icl_refine(k=2)", "icl_refine(k=8,lm=b)", "icl_refine(k=16)"]
    assert sorted(variants) != sorted(variants, key=lambda v: natural_key((v,)))  # plain text order differs


def test_one_rule_for_undefined_pgr_says_which_way_the_gap_points(tmp_path):
    """A ceiling clearly below its supervisor: no PGR anywhere (run table, median table, its
    cells, the methods figure), and the words say 'strong below weak', not 'includes 0'."""
    from w2sgen.report.figures import plot_methods
    from w2sgen.report.tables import median_pgr_table
    from w2sgen.report.text import median_pgr_cells, pgr_text

    store = Store(tmp_path / "below")
    y = np.random.default_rng(0).integers(0, 2, N_TEST)
    for seed in (0, 1, 2):  # weak right on 160 of 200, ceiling on 120: gap exactly -0.200
        add_run(store, "sciq", seed, {}, y, exact_model(y, 0.8, 1 + seed), exact_model(y, 0.7, 5 + seed),
                exact_model(y, 0.6, 9 + seed))
    runs = store.runs("done")
    assert all(pgr_text(r["metrics"]) == "undefined: strong below weak" for r in runs)
    (row,) = median_pgr_table(store, rounds=300)
    assert not row["gap"] and np.isnan(row["median_pgr"]) and np.isnan(row["low"])
    assert row["gap_text"].startswith("strong below weak: gap -0.200 [-0.")
    cell = median_pgr_cells([row])[1][0][-1]
    assert cell.startswith("undefined (strong below weak: gap -0.200") and "includes" not in cell
    assert plot_methods([row], tmp_path / "m.png") is None  # nothing to plot
    assert all(r["pgr_undefined_reason"].startswith("strong below weak: gap -0.200")
               for r in run_rows(runs))  # the export says the same
