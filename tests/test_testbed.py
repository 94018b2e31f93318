"""The 2026 reference testbed: its file layout as a task (fixed splits), its bad input, its
suite, and its fixed-baseline PGR against the published numbers."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from w2sgen.config import Component
from w2sgen.errors import W2SError
from w2sgen.metrics import fixed_baseline_pgr
from w2sgen.splits import Splits
from w2sgen.tasks import TASKS, Example, load_task, predefined_splits, task_component
from w2sgen.validate import load_config

ROWS = {
    "train_label": [
        {"prompt": "How do I boil an egg?", "first": "Put it in boiling water for 8 minutes.",
         "second": "Eggs are birds.", "label": "A", "idx": 0},
        {"prompt": "How do I boil an egg?", "first": "Microwave it whole.",
         "second": "Simmer it for 8 minutes, then cool it.", "label": "B", "idx": 1},
        {"prompt": "Name a prime.", "first": "Seven.", "second": "Nine.", "label": "A", "idx": 2},
    ],
    "train_unlabel": [
        {"prompt": "Capital of France?", "first": "Lyon.", "second": "Paris.", "label": "B", "idx": 3},
        {"prompt": "2 + 2?", "first": "4", "second": "5", "label": "A", "idx": 4},
    ],
    "test": [
        {"prompt": "Name a prime.", "first": "Eleven.", "second": "Twelve.", "label": "A", "idx": 0},
        {"prompt": "Colour of the sky?", "first": "Green.", "second": "Blue.", "label": "B", "idx": 1},
    ],
}


def write(folder: Path, rows: dict[str, list] = ROWS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for stem, items in rows.items():
        (folder / f"{stem}.jsonl").write_text("".join(
            (r if isinstance(r, str) else json.dumps(r)) + "\n" for r in items))
    return folder


def load(folder: Path, **options) -> list[Example]:
    return load_task(Component("testbed", {"path": str(folder), **options}))


def test_files_map_onto_the_splits_with_the_testbed_prompt(tmp_path):
    examples = load(write(tmp_path / "chat"))
    splits = predefined_splits(examples, "testbed")
    assert {s: [e.id for e in v] for s, v in splits.items()} == {
        "weak_train": ["train_label:0", "train_label:1", "train_label:2"],
        "transfer": ["train_unlabel:3", "train_unlabel:4"],
        "test": ["test:0", "test:1"]}
    assert [e.label for e in examples] == [0, 1, 0, 1, 0, 0, 1]  # label 1 = answer B is better
    first = examples[0]
    assert first.text == ("Question: How do I boil an egg?\nAnswer A: Put it in boiling water for "
                          "8 minutes.\nAnswer B: Eggs are birds.") and first.text_pair is None
    # pairs on one question share a group within a file, never across files
    assert examples[0].group == examples[1].group != examples[2].group
    assert examples[2].group != examples[5].group  # "Name a prime." in train_label and in test
    Splits(**splits)  # disjoint ids and groups
    # the task's label words are the testbed's label tokens
    assert TASKS.get("testbed").prompt == ("", ("A", "B"))


def test_ids_without_idx_are_content_hashes_and_max_examples_cuts_each_file(tmp_path):
    rows = {k: [{f: v for f, v in r.items() if f != "idx"} for r in v] for k, v in ROWS.items()}
    a = load(write(tmp_path / "a", rows))
    b = load(write(tmp_path / "b", {k: v[::-1] for k, v in rows.items()}))
    assert sorted(e.id for e in a) == sorted(e.id for e in b)  # not the row order
    assert all(e.id.split(":")[0] in ROWS for e in a)
    cut = predefined_splits(load(tmp_path / "a", max_examples=2), "testbed")
    assert [len(v) for v in cut.values()] == [2, 2, 2]


def test_a_folder_is_shorthand_for_the_task(tmp_path):
    folder = write(tmp_path / "chat")
    comp = task_component(Component(str(folder)))
    assert (comp.name, comp.options) == ("testbed", {"path": str(folder)})
    cfg = load_config(None, [f"task={folder}"])
    assert task_component(cfg.task).name == "testbed"
    with pytest.raises(W2SError, match="task.max_examples must be"):
        load_config(None, ["task=testbed", f"task.path={folder}", "task.max_examples=0"])


def test_the_random_splitter_does_not_apply(tmp_path):
    """Predefined splits ignore splits.* sizes; a task without them gets None (the splitter)."""
    assert predefined_splits([Example("x", "t", 0), Example("y", "u", 1)], "file") is None


def bad_rows(**replace):
    rows = {k: [dict(r) for r in v] for k, v in ROWS.items()}
    for key, value in replace.items():
        stem, n, field = key.split("__")
        if value is None:
            rows[stem][int(n)].pop(field)
        else:
            rows[stem][int(n)][field] = value
    return rows


@pytest.mark.parametrize("rows, match", [
    (bad_rows(test__1__label="C"), r"test.jsonl' row 2: label \"C\" is not A or B"),
    (bad_rows(train_label__0__label=1), "row 1: label 1 is not A or B"),
    (bad_rows(train_unlabel__0__label=None), r"row 1 lacks 'label'.*labeled_data/ folder"),
    (bad_rows(train_label__2__second=None), "train_label.jsonl' row 3 lacks 'second'"),
    (bad_rows(test__0__prompt=7), "row 1: 'prompt' must be text"),
    ({**ROWS, "test": ["[1, 2]"]}, "row 1 must be a record with 'prompt'"),
    ({**ROWS, "test": ["{not json"]}, "test.jsonl' line 1 is not valid JSON"),
    ({**ROWS, "test": [""]}, "test.jsonl' has no rows"),
    ({**ROWS, "test": [ROWS["test"][1]]}, "split 'test' has only class 1"),
    ({**ROWS, "test": [{**ROWS["test"][0], "idx": 1}, ROWS["test"][1]]}, "duplicate example ids"),
])
def test_bad_rows_are_one_line_errors(tmp_path, rows, match):
    folder = write(tmp_path / "bad", rows)
    with pytest.raises(W2SError, match=match) as e:
        predefined_splits(load(folder), "testbed")
    assert "\n" not in str(e.value)


def test_a_missing_file_or_folder_is_one_line(tmp_path):
    folder = write(tmp_path / "partial", {k: v for k, v in ROWS.items() if k != "train_unlabel"})
    with pytest.raises(W2SError, match=r"has no train_unlabel.jsonl \(has: test.jsonl, "
                                       r"train_label.jsonl\)") as e:
        load(folder)
    assert "\n" not in str(e.value)
    # a folder with only some of the files is still read as the testbed, naming what is missing
    with pytest.raises(W2SError, match="has no train_unlabel.jsonl"):
        load_task(Component(str(folder)))
    with pytest.raises(W2SError, match="testbed folder .*nowhere' not found"):
        load(tmp_path / "nowhere")
    with pytest.raises(W2SError, match="is a file, not a folder"):
        load(folder / "test.jsonl")
    with pytest.raises(W2SError, match="is a folder; .*testbed layout"):
        load_task(Component(str(tmp_path)))  # a folder without any of the files


def test_mixed_split_naming_is_refused():
    from w2sgen.tasks import check_examples

    ex = [Example("a", "t", 0, split="test"), Example("b", "u", 1)]
    with pytest.raises(W2SError, match="names the split of 1 examples but not of 1"):
        check_examples(ex, "mine")
    with pytest.raises(W2SError, match="split 'validation'"):
        check_examples([Example("a", "t", 0, split="validation"), Example("b", "u", 1, split="test")], "mine")


def test_a_run_uses_the_files_as_its_splits(tmp_path, tiny_bert_dir):
    from conftest import sentiment_examples

    from w2sgen import pipeline

    gen = iter(sentiment_examples(120, seed=1))
    rows = {}
    for stem, n in (("train_label", 40), ("train_unlabel", 40), ("test", 40)):
        rows[stem] = [{"prompt": e.text, "first": "good", "second": "bad",
                       "label": "AB"[e.label], "idx": i} for i, e in zip(range(n), gen)]
    folder = write(tmp_path / "toy", rows)
    cfg = load_config(None, [f"task={folder}", f"weak_model={tiny_bert_dir}",
                             f"strong_model={tiny_bert_dir}", "train.epochs=2", "eval.bootstrap=50",
                             "features.precision=fp32", "features.max_length=48",
                             f"store={tmp_path / 'store'}", "method=confidence_filter",
                             "method.hi=0.5"])
    m = pipeline.run(cfg, quiet=True)["metrics"]
    assert m["split_sizes"] == {"weak_train": 40, "transfer": 40, "test": 40}
    assert m["method"]["n_kept"] == 40  # hi=0.5 keeps every weak label


# ------------------------------------------------------------------ fixed-baseline PGR

WEAK_MEAN, CEILING_MEAN = 0.528, 0.733  # the testbed's baselines: means over 16 seeds


def seeds_with(mean: float, sd: float, n: int) -> np.ndarray:
    """n values with exactly this mean and standard deviation (ddof 1)."""
    z = np.linspace(-1, 1, n)
    return mean + sd * (z - z.mean()) / z.std(ddof=1)


def test_fixed_baseline_pgr_reproduces_the_published_numbers():
    weak = seeds_with(WEAK_MEAN, 0.02, 16)
    ceiling = seeds_with(CEILING_MEAN, 0.015, 16)
    gap = CEILING_MEAN - WEAK_MEAN
    # the worked example: a student at 0.528 + 0.20 * (0.733 - 0.528) = 0.569 has PGR 0.20
    one = fixed_baseline_pgr(weak, ceiling, [0.569])
    assert one.value == pytest.approx(0.20, abs=1e-9) and one.sd is None
    assert (one.weak_mean, one.ceiling_mean) == (pytest.approx(0.528), pytest.approx(0.733))
    # vanilla 0.20 +- 0.09 and the confidence filter 0.23 +- 0.11, over 5 seeds each
    for pgr_mean, pgr_sd in ((0.20, 0.09), (0.23, 0.11)):
        student = WEAK_MEAN + seeds_with(pgr_mean, pgr_sd, 5) * gap
        out = fixed_baseline_pgr(weak, ceiling, student, rounds=2000, seed=0)
        assert out.value == pytest.approx(pgr_mean, abs=1e-9)
        assert out.sd == pytest.approx(pgr_sd, abs=1e-9)
        assert np.mean(out.per_seed) == pytest.approx(out.value)
        assert out.n_seeds == {"weak": 16, "ceiling": 16, "student": 5}
        assert out.low < out.value < out.high
        # the seed-bootstrap interval of a mean of 5 is about +- 1.96 sd / sqrt(5)
        half = (out.high - out.low) / 2
        assert 0.5 * 1.96 * pgr_sd / 5 ** 0.5 < half < 1.5 * 1.96 * pgr_sd / 5 ** 0.5
        assert str(out).startswith(f"{pgr_mean:.2f} +- {pgr_sd:.2f} [")


# ------------------------------------------------------------------ suites/testbed.yaml

SUITE = Path(__file__).resolve().parents[1] / "suites" / "testbed.yaml"
HUB = {"Qwen/Qwen1.5-0.5B-Chat", "Qwen/Qwen3-4B-Base"}


def test_testbed_suite_validates_when_the_hub_models_resolve(monkeypatch, tmp_path):
    from w2sgen import assets, models, sweep

    real = models.resolve

    def resolve(name):
        return models.ModelRef(name, "causal", name, f"hub:{name}@main", {}) if name in HUB else real(name)

    monkeypatch.setattr(models, "resolve", resolve)
    monkeypatch.setattr(assets, "resolve", resolve)
    suite = sweep.load_suite(SUITE, str(tmp_path / "store"))  # reads no data
    assert len(suite.cells) == 2 * 5 and suite.merged == 0
    by_label = {c.label: c.cfg for c in suite.cells}
    cfg = by_label["confidence_filter | seed 44"]
    assert (cfg.weak_model, cfg.strong_model) == ("Qwen/Qwen1.5-0.5B-Chat", "Qwen/Qwen3-4B-Base")
    # the suite writes hi: 0.75, confidence_filter's default: canonically absent
    assert (cfg.method.name, cfg.method.options) == ("confidence_filter", {})
    assert (cfg.task.name, cfg.task.options) == ("testbed", {"path": "labeled_data/chat"})
    t = cfg.train
    assert (t.mode, t.adapter, t.lora_rank, t.precision, t.epochs, t.lr, t.batch_size) == \
        ("label_tokens", "lora", 32, "bf16", 5, 1e-4, 32)
    assert t.label_words == ["A", "B"] and t.template == "{text}\nLabel:{label}"
    assert cfg.eval.pgr_baseline == "fixed"
    assert by_label["vanilla | seed 42"].method.name == "naive"
    assert sorted({c.cfg.seed for c in suite.cells}) == [42, 43, 44, 45, 46]
    # the fixed baseline is how the report reads runs: it does not re-key a run
    per_seed = sweep.load_suite(SUITE, str(tmp_path / "store")).cells[0].cfg
    per_seed.eval.pgr_baseline = "per_seed"
    assert per_seed.hash() == suite.cells[0].cfg.hash()


def test_the_suites_prompt_is_the_testbeds(tmp_path):
    from w2sgen.config import read_yaml_mapping
    from w2sgen.prompting import PromptFormat

    train = read_yaml_mapping(SUITE, "suite")["base"]["train"]
    fmt = PromptFormat(train["instruction"], tuple(train["label_words"]), train["template"])
    e = load(write(tmp_path / "chat"))[3]
    assert fmt.head() + fmt.query(e.text) == \
        "Question: Capital of France?\nAnswer A: Lyon.\nAnswer B: Paris.\nLabel:"
    assert fmt.words[e.label] == "B"
