"""Judge parsing, exact-match number extraction, marker rates, question files and their errors,
the offline and online question sets, the question split, and the config."""
from __future__ import annotations

import json
from decimal import Decimal

import numpy as np
import pytest
from generative_fixtures import Recorder

from w2sgen.errors import W2SError
from w2sgen.generative.config import load_config
from w2sgen.generative.judge import PROMPTS, judge, parse_scores
from w2sgen.generative.scoring import (
    exact_match,
    extract_number,
    has_marker,
    marker_rate,
    paired_difference,
)
from w2sgen.generative.tasks import (
    GEN_TASKS,
    PIRATE_MARKERS,
    Question,
    _gsm8k,
    read_questions,
    split_questions,
)
from w2sgen.tasks import bigbench


@pytest.mark.parametrize("text,want", [
    ("Content: 7\nStyle: 9", (7, 9)),
    ("**Content**: 8/10\n**Style**: 3/10", (8, 3)),
    ("content score of 6 out of 10, style = 4", (6, 4)),
    ("Content (1-10): 5\nStyle (1-10): 10", (5, 10)),
    ("CONTENT - 7.5. STYLE is 2", (7.5, 2)),
    ("Content: <1-10>\nStyle: <1-10>", (None, None)),  # the template echoed is no score
    ("Content: 0\nStyle: 11", (None, None)),  # out of range
    ("I think it is good. 8", (None, None)),
    ("Style: 6", (None, 6)),
])
def test_judge_replies_parse(text, want):
    assert parse_scores(text) == want


def test_judge_averages_samples_and_records_missing():
    replies = iter(["Content: 8\nStyle: 2", "garbage", "Content: 4 Style: 6", "Style: 5",
                    "Content: 6\nStyle: 4", "nothing"])
    rec = Recorder(lambda conv: next(replies))
    out = judge(rec, PROMPTS["v1"], ["q1", "q2", "q3"], ["a1", "", "a3"], "pirate", ["r1", None, None],
                samples=2, temperature=0.7, max_new_tokens=16)
    # sample 0 of every answer, then sample 1 (replies are consumed in that order)
    np.testing.assert_array_equal(out["content"], [[8, np.nan], [np.nan, 6], [4, np.nan]])
    np.testing.assert_array_equal(out["style"], [[2, 5], [np.nan, 4], [6, np.nan]])
    first = rec.seen[0][-1]["content"]
    assert "Question: q1" in first and "Reference answer (for the content score): r1" in first
    assert "Target style: pirate" in first and "a1" in first
    assert "Reference answer" not in rec.seen[1][-1]["content"] and "(empty answer)" in rec.seen[1][-1]["content"]


def test_judge_v2_asks_v1s_question_with_the_shared_part_first():
    """judge-v2 carries every field v1 does; the text before the question is the same for every
    answer (so a local judge runs it once), and the reply format still ends the request."""
    from w2sgen.generative.judge import judge_conversation

    v1, v2 = PROMPTS["v1"], PROMPTS["v2"]
    a = judge_conversation(v2, "q1", "a1", "pirate", "r1")[-1]["content"]
    b = judge_conversation(v2, "q2", "another answer", "pirate", None)[-1]["content"]
    shared = a[:a.index("Question: q1")]
    assert b.startswith(shared) and "Target style: pirate" in shared and "1 (worst) to 10" in shared
    assert a.endswith("Content: <1-10>\nStyle: <1-10>")
    for text in (a, judge_conversation(v1, "q1", "a1", "pirate", "r1")[-1]["content"]):
        assert "Reference answer (for the content score): r1" in text and "a1" in text
    assert parse_scores("Content: 7\nStyle: 3") == (7, 3) and v2.version == "judge-v2"


@pytest.mark.parametrize("text,want", [
    ("So 3 + 4 = 7. The answer is 7.", "7"),
    ("#### 1,234", "1234"),
    ("She pays $12.50 in total.", "12.50"),
    ("first 5 then 6, answer: -3", "-3"),
    ("no number here", None),
    ("The answer is 12.0.", "12"),
])
def test_number_extraction(text, want):
    got = extract_number(text)
    assert got == (None if want is None else Decimal(want))


def test_exact_match_and_markers():
    assert exact_match("It is 109.", "109") and not exact_match("It is 108.", "109")
    assert exact_match("2 + 2 = 4, so the answer is 4", "4.0")
    assert not exact_match("no idea", "4")
    assert has_marker("Arr, matey! Four legs.", PIRATE_MARKERS)
    assert has_marker("Ye be right", PIRATE_MARKERS) and not has_marker("Yes, four.", PIRATE_MARKERS)
    assert not has_marker("Barrels of arrows", PIRATE_MARKERS)
    assert marker_rate(["arr", "no", "matey", "yes"], PIRATE_MARKERS) == 0.5
    d = paired_difference(np.array([5, 6, np.nan, 7.0]), np.array([8, 9, 9, 9.0]), seed=0)
    assert d["n"] == 3 and d["diff"][0] == pytest.approx(-8 / 3) and d["worse"]


def test_question_files_and_their_errors(tmp_path):
    good = tmp_path / "q.jsonl"
    good.write_text('{"id": "a", "question": " Why? ", "answer": 4}\n\n{"question": "How?"}\n{"id": 7, "question": "What?"}\n')
    qs = read_questions(good)
    assert [q.id for q in qs][0::2] == ["a", "7"] and qs[0] == Question("a", "Why?", "4")
    assert qs[1].id.startswith("q:") and qs[1].answer is None
    cases = {
        "missing.jsonl": (None, "not found"),
        "q.csv": ("question\nx\n", "use a .jsonl file"),
        "bad.jsonl": ('{"question": "x"}\n{"question": \n', "line 2 is not valid JSON"),
        "list.jsonl": ('["x"]\n', "line 1 must be a JSON object"),
        "noq.jsonl": ('{"id": 1, "text": "x"}\n', 'line 1 has no "question"'),
        "dup.jsonl": ('{"id": 1, "question": "x"}\n{"id": "1", "question": "y"}\n', "id '1' repeats line 1"),
        "empty.jsonl": ("\n\n", "holds no questions"),
        "ans.jsonl": ('{"question": "x", "answer": [1]}\n', '"answer" must be text or a number'),
    }
    for name, (content, message) in cases.items():
        p = tmp_path / name
        if content is not None:
            p.write_text(content)
        with pytest.raises(W2SError, match=message):
            read_questions(p)


def test_split_is_seeded_disjoint_and_independent_of_order():
    qs = [Question(f"q{i}", f"question {i}") for i in range(30)]
    train, ev = split_questions(qs, 10, 5, seed=0)
    assert len(train) == 10 and len(ev) == 5 and not {q.id for q in train} & {q.id for q in ev}
    assert split_questions(qs[::-1], 10, 5, seed=0) == (train, ev)
    assert split_questions(qs, 10, 5, seed=1) != (train, ev)
    with pytest.raises(W2SError, match="30 questions"):
        split_questions(qs, 25, 10, 0)


@pytest.mark.skipif(not bigbench.installed(), reason="BIG-bench data not installed (w2s pull bigbench)")
def test_offline_question_sets():
    qs, behaviour = GEN_TASKS.get("persona").load()
    assert len(qs) > 100 and len({q.id for q in qs}) == len(qs) and all(q.answer for q in qs)
    assert "pirate" in behaviour.instruction and "matey" in behaviour.markers
    assert [q.id for q in GEN_TASKS.get("persona").load()[0]] == [q.id for q in qs]  # stable
    qs, behaviour = GEN_TASKS.get("analogies").load()
    assert len(qs) == 80 and "analogy" in behaviour.instruction and "like" in behaviour.markers
    qs, behaviour = GEN_TASKS.get("maths").load(subtask="2_digit_addition")
    assert len(qs) > 900 and behaviour.exact_match
    assert all(extract_number(q.answer) is not None for q in qs)
    q = next(q for q in qs if q.question == "What is 80 plus 29?")
    assert q.answer == "109"
    em, _ = GEN_TASKS.get("maths").load(source="elementary_math")
    assert len(em) > 1000 and all(extract_number(q.answer) is not None for q in em)


def test_gsm8k_from_a_local_copy(tmp_path):
    rows = [{"question": "Tom has 3 apples and buys 4. How many?", "answer": "3 + 4 = 7\n#### 7"},
            {"question": "A book costs $1,200. Twice?", "answer": "2 * 1200 = 2400\n#### 2,400"}]
    path = tmp_path / "gsm8k.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    qs = _gsm8k("test", str(path), None)
    assert [q.answer for q in qs] == ["7", "2400"] and qs[0].id.startswith("gsm8k:")
    qs2, behaviour = GEN_TASKS.get("maths").load(source="gsm8k", gsm8k_file=str(path), max_examples=1)
    assert len(qs2) == 1 and behaviour.exact_match
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "x"}\n')
    with pytest.raises(W2SError, match="missing answer"):
        _gsm8k("test", str(bad), None)
    with pytest.raises(W2SError, match="task.source must be one of"):
        GEN_TASKS.get("maths").load(source="math500")


def test_config_defaults_overrides_and_errors(tmp_path):
    cfg = load_config(None, ["weak=gemma3-270m", "methods.icl_refine.batch_size=5", "questions.train=8"])
    assert cfg.weak.name == "hf" and cfg.weak.options == {"model": "gemma3-270m"}
    assert [m.name for m in cfg.methods] == ["naive", "icl_refine", "infer_and_respond", "ask_to_improve"]
    assert cfg.methods[1].options == {"batch_size": 5} and cfg.questions.train == 8
    assert load_config(None, ["methods=[naive, ask_to_improve]"]).methods[1].name == "ask_to_improve"
    assert cfg.hash() == load_config(None, ["weak=gemma3-270m", "methods.icl_refine.batch_size=5",
                                            "questions.train=8", "store=elsewhere"]).hash()
    for overrides, message in [
        (["methods=[naive, naive]"], "lists a method twice"),
        (["methods.icl_refine.k=3"], "unknown option 'k' for method 'icl_refine'"),
        (["methods=[reinforce]"], "unknown generative method 'reinforce'"),
        (["task=pirates"], "unknown generative task 'pirates'"),
        (["strong={name: openai, model: m}"], "needs option"),
        (["strong={name: openai, base_url: 'http://x/v1', model: m, api_key: sk-1}"], "unknown option 'api_key'"),
        (["judge.prompt=v0"], "unknown judge prompt 'v0'"),
        (["questions.eval=0"], "questions.eval must be at least 1"),
        (["generation.temperature=-1"], "must be >= 0"),
    ]:
        with pytest.raises(W2SError, match=message):
            load_config(None, overrides)


def test_reference_mention_proxy():
    from w2sgen.generative.scoring import mentions_reference

    assert mentions_reference("Horses have four legs, matey!", "four") == 1.0
    assert mentions_reference("Horses have 4 legs.", "four") == 0.0
    assert mentions_reference("Nobody knows what he ate.", "Unknown") == 1.0
    assert mentions_reference("He ate eggs.", "Unknown") == 0.0
    assert np.isnan(mentions_reference("x", None)) and np.isnan(mentions_reference("x", "a b c d e"))
