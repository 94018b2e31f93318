"""Hugging Face tasks, read offline from small fixture files in each hub dataset's schema."""
from __future__ import annotations

import csv
from collections import Counter

import pytest

datasets = pytest.importorskip("datasets")

from hf_fixtures import offline, write_jsonl  # noqa: E402,F401  (offline: autouse fixture)
from parquet_fixtures import COSMOS_QA, LocalHub, parquet_export  # noqa: E402

from w2sgen.errors import W2SError  # noqa: E402
from w2sgen.tasks import TASKS, check_examples  # noqa: E402
from w2sgen.tasks.hf import PARQUET, split_dialogue  # noqa: E402


def load(name, path, **options):
    examples = TASKS.get(name).load(source=path, **options)
    check_examples(examples, name)
    return examples


def labels(examples):
    return Counter(e.label for e in examples)


# --------------------------------------------------------------------------- sciq


def sciq_rows(n=5):
    return [{"question": f"What is fact {i}?", "correct_answer": f"right {i}",
             "distractor1": f"wrong {i}a", "distractor2": f"wrong {i}b",
             "distractor3": f"wrong {i}c", "support": f"support {i}"} for i in range(n)]


def test_sciq_binarises_each_question_into_a_balanced_pair(tmp_path):
    path = write_jsonl(tmp_path / "sciq.jsonl", sciq_rows())
    ex = load("sciq", path)
    assert len(ex) == 10 and labels(ex) == {0: 5, 1: 5}
    for i in range(5):
        right, wrong = ex[2 * i], ex[2 * i + 1]
        assert right.text == wrong.text == f"What is fact {i}?"
        assert (right.label, right.text_pair) == (1, f"right {i}")
        assert wrong.label == 0 and wrong.text_pair in {f"wrong {i}{c}" for c in "abc"}
        assert right.group == wrong.group  # a question never straddles two splits
    assert len({e.group for e in ex}) == 5


def test_sciq_is_deterministic_with_stable_ids_and_drops_repeated_questions(tmp_path):
    rows = sciq_rows(20)
    path = write_jsonl(tmp_path / "sciq.jsonl", rows + rows[:3])
    first = load("sciq", path, seed=3)
    assert first == load("sciq", path, seed=3)
    assert len(first) == 40  # the three repeated rows are dropped
    other = load("sciq", path, seed=4)
    assert [e.id for e in other if e.label == 1] == [e.id for e in first if e.label == 1]
    assert [e.text_pair for e in other] != [e.text_pair for e in first]  # wrong answers redrawn


# -------------------------------------------------------------------------- boolq


def test_boolq_passage_and_question_with_bool_labels(tmp_path):
    rows = [{"question": "is the sky blue", "answer": True, "passage": "The sky is blue."},
            {"question": "is grass red", "answer": False, "passage": "Grass is green."},
            {"question": "do cats bark", "answer": False, "passage": "Cats meow."}]
    path = write_jsonl(tmp_path / "boolq.jsonl", rows)
    ex = load("boolq", path)
    assert [(e.text, e.text_pair, e.label) for e in ex] == [
        ("The sky is blue.", "is the sky blue", 1), ("Grass is green.", "is grass red", 0),
        ("Cats meow.", "do cats bark", 0)]
    assert all(e.group == e.id for e in ex)
    assert [e.id for e in ex] == [e.id for e in load("boolq", path)]
    assert len(load("boolq", path, max_examples=2)) == 2


def test_missing_fields_are_named(tmp_path):
    path = write_jsonl(tmp_path / "boolq.jsonl", [{"question": "q", "answer": True}])
    with pytest.raises(W2SError, match="passage"):
        load("boolq", path)
    path = write_jsonl(tmp_path / "sciq.jsonl", [{"question": "q", "correct_answer": "a"}])
    with pytest.raises(W2SError, match="distractor1, distractor2, distractor3"):
        load("sciq", path)


# ---------------------------------------------------------------------- cosmos_qa


def cosmos_rows(n=6):
    return [{"id": f"q{i}", "context": f"Context {i}.", "question": f"Why {i}?",
             "answer0": f"a{i}", "answer1": f"b{i}", "answer2": f"c{i}", "answer3": f"d{i}",
             "label": i % 4} for i in range(n)]


def test_cosmos_qa_from_parquet_uses_the_dataset_ids(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    rows = cosmos_rows()
    rows.append({**rows[0], "id": "unlabelled", "label": -1})  # the hub's test split
    path = tmp_path / "cosmos.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    ex = load("cosmos_qa", str(path))
    assert len(ex) == 12 and labels(ex) == {0: 6, 1: 6}
    right = [e for e in ex if e.label == 1]
    assert [(e.id, e.group) for e in right] == [(f"cosmos_qa:q{i}/{i % 4}", f"cosmos_qa:q{i}")
                                                for i in range(6)]
    assert right[1].text == "Context 1.\nWhy 1?" and right[1].text_pair == "b1"
    for i, wrong in enumerate(e for e in ex if e.label == 0):
        assert wrong.group == right[i].group
        assert wrong.text_pair in {f"{c}{i}" for c in "abcd"} - {right[i].text_pair}
    assert ex == load("cosmos_qa", str(path))
    assert len(load("cosmos_qa", str(path), max_examples=2)) == 4


def test_cosmos_qa_reads_the_hubs_parquet_export_not_the_loading_script(tmp_path, monkeypatch):
    """allenai/cosmos_qa's main branch is a loading script (datasets >= 4 refuses it); the task
    reads the export at refs/convert/parquet, <subset>/<split>/0000.parquet."""
    hub = LocalHub(monkeypatch, tmp_path / "hub")
    hub.script_repo("allenai/cosmos_qa")
    test_rows = [{**r, "label": -1} for r in cosmos_rows(3)]
    parquet_export(hub.repo("allenai/cosmos_qa", PARQUET),
                   {"train": cosmos_rows(8), "validation": cosmos_rows(4), "test": test_rows}, COSMOS_QA)
    ex = TASKS.get("cosmos_qa").load()
    check_examples(ex, "cosmos_qa")
    assert len(ex) == 16 and labels(ex) == {0: 8, 1: 8}
    assert hub.calls[-1]["revision"] == PARQUET and hub.calls[-1]["split"] == "train"
    assert len(TASKS.get("cosmos_qa").load(split="validation")) == 8
    with pytest.raises(W2SError, match="no examples"):
        check_examples(TASKS.get("cosmos_qa").load(split="test"), "cosmos_qa")  # unlabelled
    # the loading script itself: one line saying what is wrong and what to set
    with pytest.raises(W2SError) as err:
        TASKS.get("cosmos_qa").load(revision="main")
    msg = str(err.value)
    assert "\n" not in msg and "loading script" in msg and "no longer runs" in msg
    assert f"task.revision={PARQUET}" in msg and "Samsoup/cosmos_qa" in msg
    assert "offline" not in msg


def test_cosmos_qa_coin_flip_gives_one_example_per_question(tmp_path):
    rows = cosmos_rows(200)
    path = write_jsonl(tmp_path / "cosmos.jsonl", rows)
    ex = load("cosmos_qa", path, binarize="coin", seed=1)
    assert len(ex) == 200 and len({e.group for e in ex}) == 200
    n1 = labels(ex)[1]
    assert 70 < n1 < 130  # a fair coin, not a balanced draw
    for e, r in zip(ex, rows):
        right = r[f"answer{r['label']}"]
        assert (e.text_pair == right) == (e.label == 1)
        assert e.text_pair in {r[f"answer{i}"] for i in range(4)}
        assert e.id.startswith(f"cosmos_qa:{r['id']}/")
    assert ex == load("cosmos_qa", path, binarize="coin", seed=1)
    assert [e.label for e in load("cosmos_qa", path, binarize="coin", seed=2)] != [e.label for e in ex]
    # the same candidate of the same question has the same id in both modes
    pair_ids = {e.id for e in load("cosmos_qa", path, seed=1)}
    assert {e.id for e in ex if e.label == 1} <= pair_ids


def test_cosmos_qa_none_of_the_above_as_openai_does(tmp_path):
    rows = cosmos_rows(4)
    rows[1]["answer1"] = "None of the above choices ."  # the right answer of question 1
    rows[2]["answer0"] = "None of the above choices ."  # a wrong answer of question 2
    path = write_jsonl(tmp_path / "cosmos.jsonl", rows)
    keep = load("cosmos_qa", path)
    assert len(keep) == 8 and any(e.text_pair.startswith("None of the above") and e.label for e in keep)
    for binarize in ("pair", "coin"):
        neg = load("cosmos_qa", path, none_of_the_above="negative", binarize=binarize, seed=3)
        q1 = [e for e in neg if e.group == "cosmos_qa:q1"]
        assert len(q1) == 1 and q1[0].label == 0 and q1[0].text_pair in {"a1", "c1", "d1"}
        assert not any(e.label == 1 and "None of the above" in e.text_pair for e in neg)
    assert len(load("cosmos_qa", path, none_of_the_above="negative")) == 7  # 3 pairs + 1 negative


def test_sciq_coin_flip_draws_the_label_then_the_distractor(tmp_path):
    import random

    path = write_jsonl(tmp_path / "sciq.jsonl", sciq_rows(50))
    ex = load("sciq", path, binarize="coin", seed=7)
    rng = random.Random(7)  # the draws openai/weak-to-strong's formatter makes, in its order
    for e, r in zip(ex, sciq_rows(50)):
        label = int(rng.random() < 0.5)
        want = r["correct_answer"] if label else r[f"distractor{rng.choice([1, 2, 3])}"]
        assert (e.label, e.text_pair) == (label, want)


# ---------------------------------------------------------------- amazon_polarity


def test_amazon_polarity_from_csv_joins_title_and_content(tmp_path):
    path = tmp_path / "amazon.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["label", "title", "content"])
        w.writerows([[1, "Great", "Loved it."], [0, "", "Broke in a day."],
                     [0, "Meh", "Not worth it."], [1, "Great", "Loved it."]])
    ex = load("amazon_polarity", str(path))
    assert [(e.text, e.label) for e in ex] == [
        ("Great. Loved it.", 1), ("Broke in a day.", 0), ("Meh. Not worth it.", 0)]
    assert all(e.text_pair is None and e.group == e.id for e in ex)
    assert len({e.id for e in ex}) == 3


# -------------------------------------------------------------------- anthropic_hh


def hh_row(i):
    prompt = f"\n\nHuman: Hi {i}\n\nAssistant: Hello.\n\nHuman: Question {i}?"
    return {"chosen": f"{prompt}\n\nAssistant: Good answer {i}.",
            "rejected": f"{prompt}\n\nAssistant: Bad answer {i}."}


def test_split_dialogue_takes_the_last_shared_assistant_turn():
    chosen = ("\n\nHuman: What is 2+2?\n\nAssistant: Let me think.\n\nHuman: Well?"
              "\n\nAssistant: It is 4.")
    rejected = ("\n\nHuman: What is 2+2?\n\nAssistant: Let me think.\n\nHuman: Well?"
                "\n\nAssistant: It is 5, I think.")
    assert split_dialogue(chosen, rejected) == (
        "Human: What is 2+2?\n\nAssistant: Let me think.\n\nHuman: Well?",
        "It is 4.", "It is 5, I think.")
    assert split_dialogue("Human: a", "Human: b") is None


def test_anthropic_hh_pairs_are_balanced_and_split_at_the_reply(tmp_path):
    rows = [hh_row(i) for i in range(10)]
    rows.insert(3, {"chosen": rows[0]["chosen"], "rejected": rows[0]["chosen"]})  # no contrast
    path = write_jsonl(tmp_path / "hh.jsonl", rows)
    with pytest.raises(W2SError, match="row 4 has two identical responses"):
        load("anthropic_hh", path, seed=0)
    ex = load("anthropic_hh", path, seed=0, identical="drop")
    assert len(ex) == 10 and labels(ex) == {0: 5, 1: 5}
    for i, e in enumerate(ex):
        assert e.text == f"Human: Hi {i}\n\nAssistant: Hello.\n\nHuman: Question {i}?"
        good, bad = f"Good answer {i}.", f"Bad answer {i}."
        a, b = (good, bad) if e.label else (bad, good)
        assert e.text_pair == f"Response A: {a}\n\nResponse B: {b}"
    assert ex == load("anthropic_hh", path, seed=0, identical="drop")
    other = load("anthropic_hh", path, seed=1, identical="drop")
    assert labels(other) == {0: 5, 1: 5}
    assert [e.label for e in other] != [e.label for e in ex]
    assert len(load("anthropic_hh", path, max_examples=4, identical="drop")) == 3  # the 4th row is skipped


# ------------------------------------------------------------------------- errors


def test_hub_failure_points_to_task_source(monkeypatch):
    def unreachable(*args, **kwargs):
        raise ConnectionError("Couldn't reach the Hub")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(W2SError, match="task.source") as err:
        TASKS.get("anthropic_hh").load()
    assert "Anthropic/hh-rlhf" in str(err.value) and "ConnectionError" in str(err.value)
    assert "HF_HUB_OFFLINE=0" in str(err.value)  # the tests switch the hub off: say so
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False)
    with pytest.raises(W2SError, match="check the network") as err:
        TASKS.get("anthropic_hh").load()
    assert "HF_HUB_OFFLINE" not in str(err.value)


def test_hub_options_replace_parts_of_the_source(tmp_path, monkeypatch):
    hub = LocalHub(monkeypatch, tmp_path / "hub")
    parquet_export(hub.repo("Samsoup/cosmos_qa"), {"train": cosmos_rows(3)}, COSMOS_QA, subset="data")
    ex = TASKS.get("cosmos_qa").load(hub_id="Samsoup/cosmos_qa")  # another repo: its own main branch
    assert len(ex) == 6 and hub.calls[-1]["revision"] == "main"
    ex = TASKS.get("cosmos_qa").load(hub_id="Samsoup/cosmos_qa", data_files={"train": "data/train/*.parquet"})
    assert len(ex) == 6 and hub.calls[-1]["data_files"] == {"train": "data/train/*.parquet"}
    with pytest.raises(W2SError, match="not on the Hugging Face hub") as err:
        TASKS.get("cosmos_qa").load(hub_id="Samsoup/cosmos_qa", revision="v9")
    assert "task.revision" in str(err.value)
    with pytest.raises(W2SError, match="has no data files there") as err:
        TASKS.get("cosmos_qa").load(hub_id="Samsoup/cosmos_qa", data_dir="nope")
    assert "task.data_dir" in str(err.value) and "data_dir nope" in str(err.value)
    with pytest.raises(W2SError, match="has no split 'dev'"):
        TASKS.get("cosmos_qa").load(hub_id="Samsoup/cosmos_qa", split="dev")


def test_hub_options_are_checked_from_the_signature():
    from w2sgen.options import OptionError, check

    load = TASKS.get("cosmos_qa").load
    assert check(load, {"revision": PARQUET, "data_files": ["a.parquet"], "binarize": "coin"},
                 "task", "cosmos_qa") == {"revision": PARQUET, "data_files": ["a.parquet"], "binarize": "coin"}
    with pytest.raises(OptionError, match="task.binarize must be one of 'pair', 'coin'"):
        check(load, {"binarize": "one"}, "task", "cosmos_qa")
    with pytest.raises(OptionError, match="unknown option 'none_of_the_above' for task 'sciq'"):
        check(TASKS.get("sciq").load, {"none_of_the_above": "negative"}, "task", "sciq")
    with pytest.raises(OptionError, match="data_files"):
        check(load, {"data_files": 3}, "task", "cosmos_qa")
    with pytest.raises(TypeError):
        load(bogus=1)


def test_bad_sources_and_options(tmp_path):
    with pytest.raises(W2SError, match="not found"):
        TASKS.get("sciq").load(source=str(tmp_path / "missing.jsonl"))
    with pytest.raises(W2SError, match=".parquet"):
        TASKS.get("sciq").load(source=str(tmp_path / "data.txt"))
    path = write_jsonl(tmp_path / "sciq.jsonl", sciq_rows())
    with pytest.raises(W2SError, match="max_examples"):
        TASKS.get("sciq").load(source=path, max_examples=0)


def test_tasks_are_registered_as_online_hf_tasks():
    for name in ("sciq", "boolq", "cosmos_qa", "amazon_polarity", "anthropic_hh"):
        spec = TASKS.get(name)
        assert spec.source == "hf" and "online" in spec.tags
