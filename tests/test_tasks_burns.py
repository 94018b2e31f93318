"""Burns et al.'s NLP datasets (tasks/burns.py), read offline from small fixture files written in
each hub dataset's schema (as the dataset cards give it: not checked against the hub here)."""
from __future__ import annotations

from collections import Counter

import pytest

datasets = pytest.importorskip("datasets")

from hf_fixtures import offline, write_jsonl  # noqa: E402,F401  (offline: autouse fixture)

from w2sgen.tasks import TASKS, check_examples  # noqa: E402
from w2sgen.tasks.burns import BURNS_TASKS, NLI_OPTIONS  # noqa: E402


def load(tmp_path, name, rows, **options):
    path = write_jsonl(tmp_path / f"{name}.jsonl", rows)
    examples = TASKS.get(name).load(source=path, **options)
    check_examples(examples, name)
    assert examples == TASKS.get(name).load(source=path, **options)  # deterministic
    return examples


def labels(examples):
    return Counter(e.label for e in examples)


def assert_mc_pairs(ex, n_questions):
    """Each question -> its right answer (label 1) then one wrong answer (label 0), one group."""
    assert len(ex) == 2 * n_questions and labels(ex) == {0: n_questions, 1: n_questions}
    for right, wrong in zip(ex[::2], ex[1::2]):
        assert (right.label, wrong.label) == (1, 0)
        assert right.group == wrong.group and right.text == wrong.text
        assert right.text_pair != wrong.text_pair
    assert len({e.group for e in ex}) == n_questions


# ------------------------------------------------------------------ multiple choice


def test_dream_joins_the_dialogue_and_finds_the_answer_among_the_choices(tmp_path):
    rows = [{"id": i, "dialogue_id": f"d{i}", "dialogue": [f"M: hello {i}", f"W: bye {i}"],
             "question": f"Who left {i}?", "choice": [f"man {i}", f"woman {i}", f"dog {i}"],
             "answer": f"woman {i}"} for i in range(4)]
    rows.append({**rows[0], "id": 9, "question": "odd", "answer": "not a choice"})  # skipped
    ex = load(tmp_path, "dream", rows)
    assert_mc_pairs(ex, 4)
    assert ex[0].text == "M: hello 0\nW: bye 0\nWho left 0?" and ex[0].text_pair == "woman 0"
    assert ex[1].text_pair in {"man 0", "dog 0"}


def test_hellaswag_skips_unlabelled_rows_and_prefixes_the_activity(tmp_path):
    rows = [{"ind": i, "activity_label": "Cooking", "ctx": f"She stirs the pot {i}",
             "endings": [f"e{i}a", f"e{i}b", f"e{i}c", f"e{i}d"], "label": str(i % 4)} for i in range(5)]
    rows.append({**rows[0], "ctx": "test row", "label": ""})  # the hub's test split
    ex = load(tmp_path, "hellaswag", rows)
    assert_mc_pairs(ex, 5)
    assert ex[2].text == "Cooking: She stirs the pot 1" and ex[2].text_pair == "e1b"


def test_openbookqa_and_quartz_map_the_answer_key_to_a_choice(tmp_path):
    obqa = [{"id": f"q{i}", "question_stem": f"Stem {i}?",
             "choices": {"text": [f"t{i}{c}" for c in "ABCD"], "label": list("ABCD")},
             "answerKey": "ABCD"[i % 4]} for i in range(4)]
    ex = load(tmp_path, "openbookqa", obqa)
    assert_mc_pairs(ex, 4)
    assert [e.text_pair for e in ex[::2]] == ["t0A", "t1B", "t2C", "t3D"]
    assert ex[0].group == "openbookqa:q0" and ex[0].id == "openbookqa:q0/0"

    quartz = [{"id": f"z{i}", "question": f"More or less {i}?", "para": f"Fact {i}.",
               "choices": {"text": ["more", "less"], "label": ["A", "B"]}, "answerKey": "AB"[i % 2]}
              for i in range(4)]
    ex = load(tmp_path, "quartz", quartz)
    assert_mc_pairs(ex, 4)
    assert ex[2].text == "Fact 1.\nMore or less 1?" and ex[2].text_pair == "less"


def test_quail_piqa_and_social_i_qa(tmp_path):
    quail = [{"id": f"c{i}_q", "context": f"Story {i}.", "question": f"Why {i}?",
              "answers": [f"a{i}", f"b{i}", f"c{i}", f"d{i}"], "correct_answer_id": i % 4} for i in range(4)]
    ex = load(tmp_path, "quail", quail)
    assert_mc_pairs(ex, 4)
    assert ex[6].text == "Story 3.\nWhy 3?" and ex[6].text_pair == "d3"

    piqa = [{"goal": f"Open jar {i}", "sol1": f"twist {i}", "sol2": f"smash {i}", "label": i % 2}
            for i in range(4)]
    piqa.append({**piqa[0], "goal": "unlabelled", "label": -1})
    ex = load(tmp_path, "piqa", piqa)
    assert_mc_pairs(ex, 4)
    assert [e.text_pair for e in ex[::2]] == ["twist 0", "smash 1", "twist 2", "smash 3"]

    siqa = [{"context": f"Kai helped {i}.", "question": "Why?", "answerA": f"A{i}", "answerB": f"B{i}",
             "answerC": f"C{i}", "label": str(i % 3 + 1)} for i in range(3)]
    ex = load(tmp_path, "social_i_qa", siqa)
    assert_mc_pairs(ex, 3)
    assert [e.text_pair for e in ex[::2]] == ["A0", "B1", "C2"]  # labels are 1-based on the hub
    assert TASKS.get("social_iqa").source == "bigbench"  # the BIG-bench task keeps its name


def test_anli_r2_is_the_three_option_nli_question(tmp_path):
    rows = [{"uid": f"u{i}", "premise": f"P{i}.", "hypothesis": f"H{i}.", "label": i % 3, "reason": ""}
            for i in range(6)]
    ex = load(tmp_path, "anli_r2", rows)
    assert_mc_pairs(ex, 6)
    assert ex[0].text == "Premise: P0.\nHypothesis: H0.\nDoes the premise entail the hypothesis?"
    assert [e.text_pair for e in ex[::2]] == [NLI_OPTIONS[i % 3] for i in range(6)]
    assert TASKS.get("anli_r2").load.__kwdefaults__["split"] == "train_r2"


# ---------------------------------------------------------- binary tasks, balanced


def test_glue_tasks_balance_classes_and_skip_unlabelled_rows(tmp_path):
    rows = [{"sentence": f"sentence {i}", "label": int(i < 7), "idx": i} for i in range(10)]
    rows.append({"sentence": "test", "label": -1, "idx": 99})
    for name in ("glue_cola", "glue_sst2"):
        ex = load(tmp_path, name, rows, seed=1)
        assert labels(ex) == {0: 3, 1: 3}
        assert all(e.text_pair is None and e.group == e.id for e in ex)
        assert {e.text for e in ex if e.label == 0} == {"sentence 7", "sentence 8", "sentence 9"}
    other = load(tmp_path, "glue_cola", rows, seed=2)
    assert labels(other) == {0: 3, 1: 3}


def test_paws_and_wic_are_sentence_pairs(tmp_path):
    paws = [{"id": i, "sentence1": f"a {i}", "sentence2": f"b {i}", "label": i % 2} for i in range(6)]
    ex = load(tmp_path, "paws", paws)
    assert labels(ex) == {0: 3, 1: 3} and (ex[0].text, ex[0].text_pair) == ("a 0", "b 0")

    wic = [{"word": "bank", "sentence1": f"river bank {i}", "sentence2": f"bank loan {i}", "start1": 0,
            "start2": 0, "end1": 4, "end2": 4, "idx": i, "label": i % 2} for i in range(4)]
    ex = load(tmp_path, "wic", wic)
    assert labels(ex) == {0: 2, 1: 2}
    assert ex[0].text == "river bank 0\nbank loan 0" and '"bank"' in ex[0].text_pair


def test_multirc_and_mc_taco_keep_the_candidates_of_a_question_together(tmp_path):
    multirc = [{"paragraph": f"Para {q}.", "question": f"Q{q}?", "answer": f"ans {q}{k}",
                "idx": {"paragraph": q, "question": q, "answer": k}, "label": int(k == 0)}
               for q in range(3) for k in range(3)]
    ex = load(tmp_path, "multirc", multirc)
    assert labels(ex) == {0: 3, 1: 3}
    by_group = Counter(e.group for e in ex)
    assert len(by_group) == 3
    right = [e for e in ex if e.label == 1]
    assert right[0].text == "Para 0." and right[0].text_pair == "Q0?\nans 00"

    taco = [{"sentence": f"He slept {q}.", "question": "How long?", "answer": f"{k} hours",
             "label": int(k == 8), "category": 0} for q in range(2) for k in (1, 8, 100)]
    ex = load(tmp_path, "mc_taco", taco)
    assert labels(ex) == {0: 2, 1: 2}
    assert len({e.group for e in ex}) <= 2
    assert TASKS.get("mc_taco").load.__kwdefaults__["split"] == "validation"


def test_twitter_sentiment_drops_neutral_and_maps_positive_to_1(tmp_path):
    rows = [{"text": f"tweet {i}", "label": i % 3} for i in range(9)]
    ex = load(tmp_path, "twitter_sentiment", rows)
    assert labels(ex) == {0: 3, 1: 3}
    assert {e.text for e in ex if e.label == 1} == {"tweet 2", "tweet 5", "tweet 8"}


# -------------------------------------------------------------------------- ETHICS


def test_ethics_justice_deontology_and_virtue(tmp_path):
    justice = [{"label": i % 2, "scenario": f"I deserve it because {i}."} for i in range(6)]
    ex = load(tmp_path, "ethics_justice", justice)
    assert labels(ex) == {0: 3, 1: 3} and ex[0].text == "I deserve it because 0."

    deon = [{"label": int(k == 0), "scenario": f"Can you cook {q}?", "excuse": f"excuse {q}{k}"}
            for q in range(2) for k in range(3)]
    ex = load(tmp_path, "ethics_deontology", deon)
    assert labels(ex) == {0: 2, 1: 2}
    assert {e.text for e in ex} == {"Can you cook 0?", "Can you cook 1?"}
    assert len({e.group for e in ex}) == 2

    virtue = [{"label": int(t == "kind"), "scenario": f"She fed the cat {q}. [SEP] {t}"}
              for q in range(2) for t in ("kind", "rude", "lazy")]
    virtue.append({"label": 1, "scenario": "no separator"})  # skipped
    ex = load(tmp_path, "ethics_virtue", virtue)
    assert labels(ex) == {0: 2, 1: 2}
    right = [e for e in ex if e.label == 1]
    assert (right[0].text, right[0].text_pair) == ("She fed the cat 0.", "kind")


def test_ethics_utilitarianism_is_pairwise_and_balanced(tmp_path):
    rows = [{"baseline": f"I won {i} dollars.", "less_pleasant": f"I lost {i} dollars."} for i in range(10)]
    rows.append({"baseline": "same", "less_pleasant": "same"})  # no contrast: dropped
    ex = load(tmp_path, "ethics_utilitarianism", rows, seed=0)
    assert len(ex) == 10 and labels(ex) == {0: 5, 1: 5}
    for i, e in enumerate(ex):
        won, lost = f"I won {i} dollars.", f"I lost {i} dollars."
        a, b = (won, lost) if e.label else (lost, won)
        assert e.text == f"Scenario A: {a}" and e.text_pair.startswith(f"Scenario B: {b}\n")
    other = load(tmp_path, "ethics_utilitarianism", rows, seed=1)
    assert [e.label for e in other] != [e.label for e in ex] and labels(other) == {0: 5, 1: 5}


# ---------------------------------------------------------------- hub plumbing


def test_every_task_asks_the_hub_for_its_config_and_split(monkeypatch):
    calls = []

    def fake_load_dataset(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    from w2sgen.errors import W2SError

    for name, hub, config, split, *_ in BURNS_TASKS:
        with pytest.raises(W2SError, match="task.source") as err:
            TASKS.get(name).load()
        assert calls[-1] == (hub, config, split)
        assert hub in str(err.value)
        spec = TASKS.get(name)
        assert spec.source == "hf" and "online" in spec.tags
    assert len(BURNS_TASKS) == 19  # + boolq, cosmos_qa, sciq (hf.py) = Burns et al.'s 22


def test_rows_from_the_hub_are_converted_like_a_source_file(monkeypatch):
    rows = [{"label": i % 2, "scenario": f"s{i}"} for i in range(4)]
    monkeypatch.setattr(datasets, "load_dataset",
                        lambda path, name=None, split=None, **kw: datasets.Dataset.from_list(rows))
    ex = TASKS.get("ethics_justice").load()
    assert labels(ex) == {0: 2, 1: 2}
    assert len(TASKS.get("ethics_justice").load(max_examples=2)) == 2


def test_missing_columns_name_the_hub_schema(tmp_path):
    from w2sgen.errors import W2SError

    path = write_jsonl(tmp_path / "u.jsonl", [{"baseline": "a", "worse": "b"}])
    with pytest.raises(W2SError, match="less_pleasant"):
        TASKS.get("ethics_utilitarianism").load(source=path)


# ------------------------------------------------------------------ suites/burns.yaml

SUITE = __import__("pathlib").Path(__file__).resolve().parents[1] / "suites" / "burns.yaml"
HUB_MODELS = {"openai-community/gpt2", "openai-community/gpt2-medium", "openai-community/gpt2-large",
              "openai-community/gpt2-xl", "Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-1.5B", "Qwen/Qwen2.5-3B",
              "Qwen/Qwen2.5-7B"}


def fake_resolve(reachable):
    from w2sgen import models

    real = models.resolve

    def resolve(name):
        if name in HUB_MODELS:
            if not reachable:
                raise models.W2SError(f"could not load hub model {name!r} (OSError); offline?")
            return models.ModelRef(name, "causal", name, f"hub:{name}@main", {})
        return real(name)

    return resolve


def test_burns_suite_validates_when_the_hub_models_resolve(monkeypatch, tmp_path):
    from w2sgen import assets, models, sweep

    monkeypatch.setattr(models, "resolve", fake_resolve(True))
    monkeypatch.setattr(assets, "resolve", fake_resolve(True))
    suite = sweep.load_suite(SUITE, str(tmp_path / "store"))  # reads no data
    assert len(suite.cells) == 24 * 4 * 3 * 3 and suite.merged == 0
    tasks = {c.cfg.task.name for c in suite.cells}
    assert tasks == {name for name, *_ in BURNS_TASKS} | {"boolq", "cosmos_qa", "sciq",
                                                          "amazon_polarity", "anthropic_hh"}
    by_label = {c.label: c.cfg for c in suite.cells}
    boot = by_label["piqa | gpt2->gpt2-xl | bootstrap | seed 2"]
    assert boot.method.name == "bootstrap"
    assert boot.method.options == {"ladder": ["openai-community/gpt2-medium", "openai-community/gpt2-large"]}
    assert boot.train.mode == "full" and boot.seed == 2
    naive = by_label["piqa | qwen2.5-0.5b->7b | naive | seed 0"]
    assert (naive.method.name, naive.method.options, naive.loss.name) == ("naive", {}, "xent")
    assert naive.train.mode == "lora" and naive.strong_model == "Qwen/Qwen2.5-7B"
    logconf = by_label["wic | qwen2.5-1.5b->7b | logconf | seed 1"]
    assert (logconf.method.name, logconf.method.options, logconf.loss.name) == ("naive", {}, "logconf")
    assert by_label["wic | qwen2.5-1.5b->7b | bootstrap | seed 1"].method.options["ladder"] == ["Qwen/Qwen2.5-3B"]
    assert all(c.cfg.task.options["max_examples"] == 12000 for c in suite.cells)


def test_burns_suite_offline_is_one_line_naming_the_hub_models(monkeypatch, tmp_path):
    from w2sgen import assets, models, sweep
    from w2sgen.errors import W2SError

    monkeypatch.setattr(models, "resolve", fake_resolve(False))
    monkeypatch.setattr(assets, "resolve", fake_resolve(False))
    with pytest.raises(W2SError) as err:
        sweep.load_suite(SUITE, str(tmp_path / "store"))
    lines = str(err.value).splitlines()
    assert len(lines) == 1 and "864 invalid cell(s)" in lines[0]  # one problem: one line
    assert "HF_HUB_OFFLINE=0" in lines[0]
    for name in ("openai-community/gpt2", "openai-community/gpt2-xl", "Qwen/Qwen2.5-7B"):
        assert name in lines[0]
