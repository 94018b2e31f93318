"""`w2s report --refinement`'s controls table at the level of datasets, on a synthetic store whose
students and refiner are right on known test examples, so every number is known in advance."""
from __future__ import annotations

import numpy as np
import pytest

from w2sgen.cli import main
from w2sgen.metrics import evaluate
from w2sgen.report.refinement import controls_markdown, families, nested_prompting, refinement_controls
from w2sgen.store import Store
from w2sgen.validate import build_config

N = 100  # test examples per run
REFINE = {"name": "icl_refine", "lm": "smollm2-135m", "batch": "fixed", "balance": True}
# student accuracy per task and role: the first round(acc * N) test examples are right
STUDENT = {"rt_sentiment": {"naive": 0.70, "k=0": 0.75, "k=4 weak": 0.80, "k=4 true": 0.85},
           "nyt_sentiment": {"naive": 0.60, "k=0": 0.70, "k=4 weak": 0.72, "k=4 true": 0.72}}
PROMPTING = {"zero_shot": 0.60, "fewshot_ground_truth": 0.80, "fewshot_weak": 0.70}  # both tasks
METHODS = {"naive": {"method": "naive"},
           "k=0": {"method": {**REFINE, "k": 0, "eval_size": 0}},
           "k=4 weak": {"method": {**REFINE, "k": 4, "eval_size": N}},
           "k=4 true": {"method": {**REFINE, "k": 4, "demos": True, "eval_size": N}}}


def right(acc: float) -> str:
    return "1" * round(acc * N) + "0" * (N - round(acc * N))


def add_run(store: Store, task: str, seed: int, role: str, with_records: bool = True) -> None:
    cfg = build_config({"task": task, "weak_model": "minilm-l3", "strong_model": "mpnet-base",
                        "seed": seed, "store": str(store.root), "eval": {"bootstrap": 20},
                        **METHODS[role]})
    run_id = store.start_run(cfg)
    y = np.random.default_rng(seed).integers(0, 2, N)
    student = np.where(np.array([c == "1" for c in right(STUDENT[task][role])]), y, 1 - y).astype(float)
    weak, ceiling = np.where(y == 1, 0.6, 0.4), np.where(y == 1, 0.9, 0.1)
    store.save_arrays(run_id, "predictions.npz", {"ids": np.array([f"{task}:{i}" for i in range(N)]),
                                                  "labels": y, "weak": weak, "student": student,
                                                  "ceiling": ceiling})
    metrics = evaluate(y, weak, student, ceiling, 20, 0.95, seed)
    if role != "naive":
        k = 0 if role == "k=0" else 4
        m: dict = {"name": "icl_refine", "lm": "smollm2-135m", "k": k, "batch": "fixed", "balance": True,
                   "demos": "true" if role == "k=4 true" else "weak", "weak_label_accuracy": 0.7,
                   "refined_label_accuracy": 0.75}
        metrics["split_sizes"] = {"transfer": 400}
        if k:
            m["prompting"] = {"n": N, **{s: [a, a - 0.1, a + 0.1] for s, a in PROMPTING.items()}}
            if with_records:
                m["prompting"]["correct"] = {s: right(a) for s, a in PROMPTING.items()}
        metrics["method"] = m
    store.finish_run(run_id, metrics, {})


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("refine-controls"))
    for task in STUDENT:
        for seed in (0, 1):
            for role in METHODS:
                add_run(store, task, seed, role)
    return store


def test_roles_are_told_apart_by_k_and_demonstrations(store):
    (fam, roles), = families(store.runs("done")).items()
    assert fam[0] == "minilm-l3 -> mpnet-base (probe)"
    assert list(roles) == ["naive", "k=0", "k=4 true", "k=4 weak"]
    assert "demos=true" in roles["k=4 true"] and "demos" not in roles["k=4 weak"]


def test_controls_give_the_known_levels_differences_and_refiner_accuracies(store):
    fam, = refinement_controls(store, store.runs("done"), rounds=400)
    rows = {r["quantity"]: r["result"] for r in fam["rows"]}
    assert list(rows) == ["student: naive", "student: k=0", "student: k=4 true", "student: k=4 weak",
                          "k=4 weak - k=0", "k=4 weak - naive", "k=0 - naive", "k=4 true - k=4 weak",
                          "refiner zero-shot", "refiner 4-shot, true demos", "refiner 4-shot, weak demos"]
    expected = {"student: naive": (0.70, 0.60), "student: k=0": (0.75, 0.70),
                "student: k=4 weak": (0.80, 0.72), "student: k=4 true": (0.85, 0.72),
                "k=4 weak - k=0": (0.05, 0.02), "k=4 weak - naive": (0.10, 0.12),
                "k=0 - naive": (0.05, 0.10), "k=4 true - k=4 weak": (0.05, 0.0),
                "refiner zero-shot": (0.60, 0.60), "refiner 4-shot, true demos": (0.80, 0.80),
                "refiner 4-shot, weak demos": (0.70, 0.70)}
    for name, (rt, nyt) in expected.items():
        res = rows[name]
        assert res["datasets"]["rt_sentiment"].value == pytest.approx(rt), name
        assert res["datasets"]["nyt_sentiment"].value == pytest.approx(nyt), name
        pooled = res["pooled"]
        assert pooled.value == pytest.approx((rt + nyt) / 2) and pooled.datasets == 2, name
        assert pooled.low <= pooled.value <= pooled.high
    # nyt's oracle equals its refinement on every example: a zero-width interval there
    same = rows["k=4 true - k=4 weak"]["datasets"]["nyt_sentiment"]
    assert (same.low, same.high) == (0.0, 0.0)
    assert (rows["k=4 true - k=4 weak"]["pooled"].positive, rows["k=4 true - k=4 weak"]["pooled"].negative) == (1, 0)
    # rt's k=4 weak - k=0: 5 of 100 examples flip to right in both seeds -> the interval over
    # examples is about +-2 binomial sd (sqrt(.05 * .95 / 100) = 0.022) wide, above 0
    one = rows["k=4 weak - k=0"]["datasets"]["rt_sentiment"]
    assert 0.005 < one.low < 0.05 < one.high < 0.10
    # pooled over 2 datasets: a draw of nyt twice gives 0.02, of rt twice 0.05
    both = rows["k=4 weak - k=0"]["pooled"]
    assert both.low < 0.03 and both.high > 0.04


def test_the_table_and_the_cli_print_them(store, tmp_path, capsys):
    text = controls_markdown(refinement_controls(store, store.runs("done"), rounds=200))
    lines = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert lines["quantity"].split("|")[2:6] == [" nyt_sentiment ", " rt_sentiment ",
                                                  " pooled over datasets ", " datasets (+ / -) "]
    assert "| +0.110 [" in lines["k=4 weak - naive"] and lines["k=4 weak - naive"].endswith("| 2 (2 / 0) |")
    # 70 of 100 right in every run: the interval is the examples' binomial one (sd 0.046)
    rt = lines["refiner 4-shot, weak demos"].split("|")[3].strip()
    assert rt.startswith("0.700 [") and 0.58 < float(rt[7:12]) < 0.63 and 0.77 < float(rt[14:19]) < 0.82
    assert lines["student: naive"].endswith("| 2 |")
    assert main(["report", "--store", str(store.root), "--refinement", "--out", str(tmp_path / "r.png")]) == 0
    out = capsys.readouterr().out
    assert "ICL refinement and its controls, at the level of datasets" in out
    assert max(map(len, out.splitlines())) <= 100  # the table as terminal columns
    row = next(line.split() for line in out.splitlines() if line.startswith("k=4 weak - k=0 "))
    assert row[:5] == ["k=4", "weak", "-", "k=0", "+0.020"]


def test_runs_without_per_example_records_fall_back_to_run_means(tmp_path):
    store = Store(tmp_path)
    for task in STUDENT:
        for seed in (0, 1):
            add_run(store, task, seed, "k=4 weak", with_records=False)
    method = next(iter(families(store.runs("done")).values()))["k=4 weak"]
    nested, per_example = nested_prompting(store.runs("done"), method, "minilm-l3 -> mpnet-base (probe)",
                                           "zero_shot")
    assert not per_example
    assert [len(v) for splits in nested.values() for seeds in splits.values() for v in seeds.values()] == [1] * 4
    text = controls_markdown(refinement_controls(store, store.runs("done"), rounds=100))
    # one value per run, the same in all: no examples' noise left in the interval
    assert "| refiner zero-shot (per-run means) | 0.600 [0.600, 0.600] |" in text


def test_the_controls_suite_declares_refinement_and_its_controls():
    from pathlib import Path

    from w2sgen.sweep.suite import comparison_family, read_suite

    path = Path(__file__).resolve().parents[1] / "suites" / "refinement-controls.yaml"
    fam = {name: (m, b) for name, m, b in comparison_family(path)}
    assert list(fam) == ["refine_k4_weak vs refine_k0", "refine_k4_weak vs naive", "refine_k0 vs naive",
                         "refine_k4_true vs refine_k4_weak"]
    k4_weak, k0 = fam["refine_k4_weak vs refine_k0"]
    k4_true = fam["refine_k4_true vs refine_k4_weak"][0]
    assert "k=0" in k0 and "k=" not in k4_weak and "demos=true" in k4_true  # k = 4 is the default
    assert k4_true.replace("demos=true,", "") == k4_weak
    _, _, grid = read_suite(path)
    assert len(grid["task"]) >= 2 and grid["seeds"] == [0, 1, 2]
    assert {t["splits"]["transfer"] for t in grid["task"]} == {400}


def test_real_runs_of_every_role_fill_the_table(tmp_path, tiny_bert_dir, tiny_llama_dir):
    """The pipeline's own runs (tiny models): naive, k=0, k=2 weak and k=2 true pair by split
    and seed, and the k=2 runs record the refiner's per-example prompting results."""
    from conftest import sentiment_examples

    from w2sgen import pipeline
    from w2sgen.validate import load_config

    data = tmp_path / "toy.csv"
    data.write_text("text,label\n" + "".join(f"{e.text},{e.label}\n" for e in sentiment_examples(200)))
    common = [f"task={data}", f"weak_model={tiny_bert_dir}", f"strong_model={tiny_llama_dir}",
              "splits.weak_train=40", "splits.transfer=40", "splits.test=60", "train.epochs=1",
              "eval.bootstrap=20", "features.precision=fp32", "features.max_length=32", "device=cpu",
              f"store={tmp_path / 'store'}"]
    refine = ["method.name=icl_refine", "method.batch=fixed", "method.chunk=16", "method.balance=true",
              "method.words=[bad, good]", "method.template={text}\n{label}\n", "method.precision=fp32"]
    for seed in (0, 1):
        s = f"seed={seed}"
        pipeline.run(load_config(None, [*common, s]), quiet=True)
        pipeline.run(load_config(None, [*common, s, *refine, "method.k=0", "method.eval_size=0"]), quiet=True)
        for demos in ("weak", "true"):
            pipeline.run(load_config(None, [*common, s, *refine, "method.k=2", f"method.demos={demos}",
                                            "method.eval_size=20"]), quiet=True)
    store = Store(tmp_path / "store")
    fam, = refinement_controls(store, store.runs("done"), rounds=100)
    assert list(fam["roles"]) == ["naive", "k=0", "k=2 true", "k=2 weak"]
    rows = {r["quantity"]: r for r in fam["rows"]}
    assert all(r["result"] is not None for r in rows.values())
    for name in ("k=2 weak - k=0", "k=2 weak - naive", "k=0 - naive", "k=2 true - k=2 weak"):
        res = rows[name]["result"]["pooled"]
        assert (res.datasets, res.splits, res.runs) == (1, 1, 2)  # both seeds paired
    for name in ("refiner zero-shot", "refiner 2-shot, true demos", "refiner 2-shot, weak demos"):
        assert rows[name]["per_example"] and rows[name]["result"]["pooled"].runs == 2
    # the zero-shot prompting accuracy is the one the run reported, from the same record
    k2 = [r for r in store.runs("done") if r["metrics"]["method"].get("k") == 2
          and r["metrics"]["method"].get("demos") == "weak"]
    reported = np.mean([r["metrics"]["method"]["prompting"]["zero_shot"][0] for r in k2])
    assert rows["refiner zero-shot"]["result"]["pooled"].value == pytest.approx(reported)
    # the weak and true variants of a seed are scored on one set of examples and demonstrations
    true = {r["config"]["seed"]: r["metrics"]["method"]["prompting"] for r in store.runs("done")
            if r["metrics"]["method"].get("demos") == "true"}
    for r in k2:
        assert r["metrics"]["method"]["prompting"]["correct"] == true[r["config"]["seed"]]["correct"]
