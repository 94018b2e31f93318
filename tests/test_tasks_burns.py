"""Burns et al.'s NLP datasets (tasks/burns.py), read offline from small fixture files written in
each hub dataset's schema (as the dataset cards give it: not checked against the hub here)."""
from __future__ import annotations

from collections import Counter

import pytest

datasets = pytest.importorskip("datasets")

from hf_fixtures import offline, write_jsonl  # noqa: E402,F401  (offline: autouse fixture)
from parquet_fixtures import (  # noqa: E402
    ANLI,
    DREAM,
    ETHICS,
    MC_TACO,
    MULTIRC,
    PIQA,
    SIQA,
    TWITTER_SENTIMENT,
    LocalHub,
    parquet_export,
    write_parquet,
)

from w2sgen.errors import W2SError  # noqa: E402
from w2sgen.tasks import TASKS, check_examples  # noqa: E402
from w2sgen.tasks.burns import BURNS_TASKS, NLI_OPTIONS  # noqa: E402
from w2sgen.tasks.hf import PARQUET, Hub  # noqa: E402


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


def test_anli_r2_as_entailment_vs_not_is_one_balanced_example_per_row(tmp_path):
    rows = [{"uid": f"u{i}", "premise": f"P{i}.", "hypothesis": f"H{i}.", "label": i % 3, "reason": ""}
            for i in range(9)]
    ex = load(tmp_path, "anli_r2", rows, form="entailment", seed=2)
    path = write_parquet(tmp_path / "anli.parquet", rows, ANLI)  # the label a ClassLabel, as on the hub
    assert TASKS.get("anli_r2").load(source=str(path), form="entailment", seed=2) == ex
    assert labels(ex) == {0: 3, 1: 3}  # 3 entailments; 6 others downsampled to 3
    assert {e.text for e in ex if e.label == 1} == {
        f"Premise: P{i}.\nHypothesis: H{i}.\nDoes the premise entail the hypothesis?" for i in (0, 3, 6)}
    assert all(e.text_pair is None and e.group == e.id for e in ex)


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


def test_multirc_and_mc_taco_grouped_by_passage_keep_each_passage_in_one_split(tmp_path):
    from w2sgen.config import SplitsConfig
    from w2sgen.splits import SPLITS, make_splits

    multirc = [{"paragraph": f"Para {p}.", "question": f"Q{p}.{q}?", "answer": f"ans {k}",
                "idx": {"paragraph": p, "question": q, "answer": k}, "label": int(k == 0)}
               for p in range(20) for q in range(3) for k in range(2)]
    taco = [{"sentence": f"He slept {p}.", "question": f"How long {q}?", "answer": f"{k} hours",
             "label": int(k == 8), "category": 0} for p in range(20) for q in range(3) for k in (1, 8)]
    for name, rows in (("multirc", multirc), ("mc_taco", taco)):
        by_question = load(tmp_path, name, rows)
        if name == "multirc":
            path = write_parquet(tmp_path / "multirc.parquet", rows, MULTIRC)
            assert TASKS.get(name).load(source=str(path)) == by_question
        assert len({e.group for e in by_question}) == 60  # today's default: one group per question
        ex = load(tmp_path, name, rows, group="passage")
        assert [e.id for e in ex] == [e.id for e in by_question]  # the same examples, regrouped
        assert len({e.group for e in ex}) == 20
        splits = make_splits(ex, SplitsConfig(weak_train=0.4, transfer=0.4, test=0.2, seed=1), name)
        where = {}
        for s in SPLITS:
            for e in getattr(splits, s):
                where.setdefault(e.text, set()).add(s)
        assert all(len(v) == 1 for v in where.values())  # no passage sits in two splits
        leaky = make_splits(by_question, SplitsConfig(weak_train=0.4, transfer=0.4, test=0.2, seed=1), name)
        seen = {}
        for s in SPLITS:
            for e in getattr(leaky, s):
                seen.setdefault(e.text, set()).add(s)
        assert any(len(v) > 1 for v in seen.values())  # what grouping by passage prevents


def test_twitter_sentiment_drops_neutral_and_maps_positive_to_1(tmp_path):
    rows = [{"text": f"tweet {i}", "label": i % 3} for i in range(9)]
    ex = load(tmp_path, "twitter_sentiment", rows)
    assert labels(ex) == {0: 3, 1: 3}
    assert {e.text for e in ex if e.label == 1} == {"tweet 2", "tweet 5", "tweet 8"}


def test_twitter_sentiment_from_eleuthers_binary_dataset(tmp_path, monkeypatch):
    hub = LocalHub(monkeypatch, tmp_path / "hub")
    rows = [{"text": f"tweet {i}", "label": int(i % 4 == 0)} for i in range(12)]
    parquet_export(hub.repo("EleutherAI/twitter-sentiment"), {"train": rows, "test": rows[:4]},
                   TWITTER_SENTIMENT, subset="data")
    ex = TASKS.get("twitter_sentiment").load(dataset="eleuther")
    check_examples(ex, "twitter_sentiment")
    assert labels(ex) == {0: 3, 1: 3}
    assert {e.text for e in ex if e.label == 1} == {"tweet 0", "tweet 4", "tweet 8"}
    assert hub.calls[-1]["path"] == "EleutherAI/twitter-sentiment" and hub.calls[-1]["name"] is None


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


def test_every_task_asks_the_hub_for_its_source_and_split(monkeypatch):
    calls = []

    def fake_load_dataset(path, name=None, split=None, **kwargs):
        calls.append((path, name, split, kwargs))
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    for name, hub, split, *_ in BURNS_TASKS:
        hub = hub if isinstance(hub, Hub) else hub({"dataset": "tweet_eval"})
        with pytest.raises(W2SError, match="task.source") as err:
            TASKS.get(name).load()
        path, subset, asked, kwargs = calls[-1]
        assert (path, subset, asked) == (hub.id, hub.subset, split)
        assert (kwargs["revision"], kwargs["data_dir"], kwargs["data_files"]) == (
            hub.revision, hub.data_dir, hub.data_files)
        assert hub.id in str(err.value)
        spec = TASKS.get(name)
        assert spec.source == "hf" and "online" in spec.tags
    assert len(BURNS_TASKS) == 19  # + boolq, cosmos_qa, sciq (hf.py) = Burns et al.'s 22
    # the script-only datasets read parquet: the hub's export, or a parquet copy
    sources = {name: hub for name, hub, *_ in BURNS_TASKS}
    for name in ("dream", "ethics_justice", "ethics_deontology", "ethics_virtue", "ethics_utilitarianism",
                 "mc_taco", "piqa"):
        assert sources[name].revision == PARQUET, name
    assert {sources[f"ethics_{s}"].data_dir for s in ETHICS} == set(ETHICS)
    assert sources["dream"].data_dir == "plain_text"
    assert sources["social_i_qa"].id == "lighteval/siqa" and sources["social_i_qa"].revision is None


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


# --------------------------------------- the script-only datasets, from their parquet sources


def dream_rows(n, split):
    return [{"id": i, "dialogue_id": f"{split}-d{i // 2}", "dialogue": [f"M: hello {split} {i}", "W: bye"],
             "question": f"Who left {i}?", "choice": [f"man {i}", f"woman {i}", f"dog {i}"],
             "answer": f"woman {i}"} for i in range(n)]


def ethics_rows(subset, n, split):
    if subset == "utilitarianism":
        return [{"baseline": f"I won {i} ({split}).", "less_pleasant": f"I lost {i} ({split})."} for i in range(n)]
    if subset == "virtue":
        return [{"label": i % 2, "scenario": f"She fed the cat {i} ({split}). [SEP] {'kind' if i % 2 else 'rude'}"}
                for i in range(n)]
    extra = (lambda i: {"excuse": f"excuse {i}"}) if subset == "deontology" else (lambda i: {})
    return [{"label": i % 2, "scenario": f"Scenario {i} ({split}).", **extra(i)} for i in range(n)]


def taco_rows(n, split):
    return [{"sentence": f"He slept {i // 2} ({split}).", "question": "How long?", "answer": f"{i} hours",
             "label": i % 2, "category": 0} for i in range(n)]


def piqa_rows(n, split):
    label = -1 if split == "test" else None  # the hub's PIQA test split is unlabelled
    return [{"goal": f"Open jar {i} ({split})", "sol1": f"twist {i}", "sol2": f"smash {i}",
             "label": i % 2 if label is None else label} for i in range(n)]


def siqa_rows(n, split):
    return [{"context": f"Kai helped {i} ({split}).", "question": "Why?", "answerA": f"A{i}",
             "answerB": f"B{i}", "answerC": f"C{i}", "label": str(i % 3 + 1)} for i in range(n)]


# task -> (the hub id of its source, the original repository whose main is a loading script,
#          subset directory, features, rows(n, split), the source's splits)
PARQUET_SOURCES = {
    **{f"ethics_{s}": ("hendrycks/ethics", "hendrycks/ethics", s, ETHICS[s],
                       lambda n, split, s=s: ethics_rows(s, n, split), ("train", "validation", "test"))
       for s in ETHICS},
    "dream": ("dataset-org/dream", "dataset-org/dream", "plain_text", DREAM, dream_rows,
              ("train", "validation", "test")),
    "mc_taco": ("CogComp/mc_taco", "CogComp/mc_taco", "plain_text", MC_TACO, taco_rows, ("validation", "test")),
    "piqa": ("ybisk/piqa", "ybisk/piqa", "default", PIQA, piqa_rows, ("train", "validation", "test")),
    "social_i_qa": ("lighteval/siqa", "allenai/social_i_qa", "default", SIQA, siqa_rows, ("train", "validation")),
}


@pytest.mark.parametrize("name", sorted(PARQUET_SOURCES))
def test_script_only_datasets_load_from_their_parquet_source(tmp_path, monkeypatch, name):
    """Each task reads its parquet source through `datasets` itself, laid out as the hub keeps it;
    the original repository's main branch (a loading script) is not what it asks for."""
    hub_id, original, subset, features, rows, split_names = PARQUET_SOURCES[name]
    hub = LocalHub(monkeypatch, tmp_path / "hub")
    hub.script_repo(original)
    sizes = dict(zip(split_names, (12, 8, 6)))
    revision = PARQUET if hub_id == original else "main"
    repo = hub.repo(hub_id, revision)
    parquet_export(repo, {s: rows(n, s) for s, n in sizes.items()}, features, subset=subset)
    if name.startswith("ethics_"):  # the export holds every subset: only data_dir picks this one
        for other in set(ETHICS) - {subset}:
            parquet_export(repo, {"train": ethics_rows(other, 40, "train")}, ETHICS[other], subset=other)
    spec = TASKS.get(name)
    default_split = spec.load.__kwdefaults__["split"]
    ex = spec.load(seed=1)
    check_examples(ex, name)
    assert hub.calls[-1]["path"] == hub_id and hub.calls[-1]["revision"] == revision
    n = sizes[default_split]
    assert {e.text for e in ex} <= texts(name, rows(n, default_split))  # the split it asked for
    want = {"ethics_utilitarianism": n, "mc_taco": n, "ethics_justice": n, "ethics_deontology": n,
            "ethics_virtue": n}.get(name, 2 * n)  # multiple choice: a pair per question
    assert len(ex) == want and labels(ex) == {0: want // 2, 1: want // 2}
    assert ex == spec.load(seed=1)
    for split in set(split_names) - {default_split, "test"}:  # every labelled split loads by name
        assert len(spec.load(split=split)) > 0
    with pytest.raises(W2SError) as err:  # what reading the original repo's main branch says
        spec.load(hub_id=original, revision="main")
    assert "loading script" in str(err.value) and f"task.revision={PARQUET}" in str(err.value)


def texts(name, rows):
    """The example texts rows may give (the text column each converter reads), to check that a
    task read the split it asked for and not its neighbour."""
    out = set()
    for r in rows:
        if name == "dream":
            out.add("\n".join(r["dialogue"]) + f"\n{r['question']}")
        elif name == "ethics_utilitarianism":
            out |= {f"Scenario A: {r['baseline']}", f"Scenario A: {r['less_pleasant']}"}
        elif name == "ethics_virtue":
            out.add(r["scenario"].rpartition("[SEP]")[0].strip())
        elif name.startswith("ethics_"):
            out.add(r["scenario"])
        elif name == "mc_taco":
            out.add(r["sentence"])
        elif name == "piqa":
            out.add(r["goal"])
        else:
            out.add(f"{r['context']}\n{r['question']}")
    return out


def test_ethics_validation_and_test_are_the_original_test_and_test_hard(tmp_path, monkeypatch):
    """In hendrycks/ethics's parquet export, `validation` holds ETHICS's test.csv and `test` its
    test_hard.csv: asking for split=test gets the hard set."""
    hub = LocalHub(monkeypatch, tmp_path / "hub")
    repo = hub.repo("hendrycks/ethics", PARQUET)
    parquet_export(repo, {s: [{"label": i % 2, "scenario": f"{csv} {i}"} for i in range(4)]
                          for s, csv in (("train", "train.csv"), ("validation", "test.csv"),
                                         ("test", "test_hard.csv"))}, ETHICS["justice"], subset="justice")
    assert {e.text for e in TASKS.get("ethics_justice").load(split="test")} == {f"test_hard.csv {i}" for i in range(4)}
    assert {e.text for e in TASKS.get("ethics_justice").load(split="validation")} == {f"test.csv {i}" for i in range(4)}
    with pytest.raises(W2SError, match="has no data files there") as err:
        TASKS.get("ethics_justice").load(data_dir="commonsense")
    assert "hendrycks/ethics (revision refs/convert/parquet, data_dir commonsense)" in str(err.value)


def test_multiple_choice_tasks_take_a_coin_flip_binarisation(tmp_path):
    rows = {"piqa": [{"goal": f"Open jar {i}", "sol1": f"twist {i}", "sol2": f"smash {i}", "label": i % 2}
                     for i in range(100)],
            "social_i_qa": siqa_rows(100, "train"),
            "anli_r2": [{"uid": f"u{i}", "premise": f"P{i}.", "hypothesis": f"H{i}.", "label": i % 3,
                         "reason": ""} for i in range(100)],
            "dream": dream_rows(100, "train")}
    for name, rs in rows.items():
        ex = load(tmp_path, name, rs, binarize="coin", seed=4)
        assert len(ex) == 100 and len({e.group for e in ex}) == 100, name
        assert 30 < labels(ex)[1] < 70, name
        pair = load(tmp_path, name, rs, seed=4)
        right = {e.group: e.text_pair for e in pair if e.label == 1}
        assert all((e.text_pair == right[e.group]) == (e.label == 1) for e in ex), name


def test_the_default_binarisation_is_unchanged(tmp_path):
    """binarize=pair, group=question, form=three_option and dataset=tweet_eval are what these
    tasks did before the options existed, so stored runs keep their examples."""
    rows = [{"goal": f"Open jar {i}", "sol1": f"twist {i}", "sol2": f"smash {i}", "label": i % 2} for i in range(6)]
    assert load(tmp_path, "piqa", rows) == load(tmp_path, "piqa", rows, binarize="pair")
    defaults = {name: TASKS.get(name).load.__kwdefaults__ for name, *_ in BURNS_TASKS}
    assert defaults["multirc"]["group"] == defaults["mc_taco"]["group"] == "question"
    assert defaults["anli_r2"]["form"] == "three_option" and defaults["twitter_sentiment"]["dataset"] == "tweet_eval"
    assert all(d.get("binarize", "pair") == "pair" for d in defaults.values())


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
                raise W2SError(f"could not load hub model {name!r} (OSError); offline?")
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
