"""Target-making methods: leave-one-out demonstrations never include the question's own weak
answer, fixed demonstrations never include the question itself, Infer-and-Respond puts the
inferred style sentence in the system prompt, Ask-to-Improve shows the weak answer."""
from __future__ import annotations

import re

import pytest
from generative_fixtures import Recorder

from w2sgen.errors import W2SError
from w2sgen.generative.backends import Sampling
from w2sgen.generative.methods import (
    GEN_METHODS,
    STYLE_PREFIX,
    Inputs,
    batches,
    loo_demonstrations,
    style_sentence,
)
from w2sgen.generative.tasks import Question

N = 13


def inputs(backend, n=N):
    qs = [Question(f"q{i}", f"question number {i}?") for i in range(n)]
    return Inputs(qs, [f"weak answer {i}" for i in range(n)], backend, Sampling(8), seed=3)


def answers_in(conv):
    return {m["content"] for m in conv if m["role"] == "assistant"}


def test_batches_cover_every_question_once_and_are_seeded():
    b = batches(N, 4, seed=0)
    assert sorted(i for x in b for i in x) == list(range(N))
    assert all(4 <= len(x) <= 5 for x in b)
    assert b == batches(N, 4, seed=0) and b != batches(N, 4, seed=1)
    assert loo_demonstrations([5, 2, 9], 2) == [5, 9]
    with pytest.raises(W2SError, match="at least 2"):
        batches(N, 1, 0)
    with pytest.raises(W2SError, match="only 3 training questions"):
        batches(3, 4, 0)


def test_icl_refine_leave_one_out_never_shows_the_own_answer():
    rec = Recorder(lambda conv: "refined: " + conv[-1]["content"])
    x = inputs(rec)
    targets, report = GEN_METHODS.get("icl_refine")(x, batch_size=4)
    assert len(rec.seen) == N and report["batches"] == N // 4
    groups: dict[frozenset, int] = {}
    for i, conv in enumerate(rec.seen):
        assert conv[-1] == {"role": "user", "content": x.questions[i].question}
        shown = answers_in(conv)
        assert x.weak_answers[i] not in shown  # never its own weak answer
        assert len(shown) in (3, 4)  # all the other members of its batch
        members = frozenset(int(re.search(r"\d+", a).group()) for a in shown) | {i}
        groups[members] = groups.get(members, 0) + 1
        # each demonstration is a (question, its own weak answer) pair, in order
        for u, a in zip(conv[0::2], conv[1::2]):
            assert u["content"].split()[-1].rstrip("?") == a["content"].split()[-1]
    assert all(len(m) == count for m, count in groups.items())  # leave-one-out within batches
    assert sorted(i for m in groups for i in m) == list(range(N))
    assert targets == [f"refined: {q.question}" for q in x.questions]


def test_icl_refine_fixed_demonstrations_exclude_the_question():
    rec = Recorder()
    x = inputs(rec)
    _, report = GEN_METHODS.get("icl_refine")(x, fixed=2)
    fixed = [int(q[1:]) for q in report["fixed"]]
    for i, conv in enumerate(rec.seen):
        shown = answers_in(conv)
        assert len(shown) == 2 and x.weak_answers[i] not in shown
        if i not in fixed:
            assert shown == {x.weak_answers[j] for j in fixed}


def test_infer_and_respond_uses_the_inferred_style_as_system_prompt():
    def reply(conv):
        if "describe the style" in conv[-1]["content"]:
            return "Sure! The used style is: short answers that end with arr. And more text."
        return "answer"

    rec = Recorder(reply)
    x = inputs(rec, 8)
    targets, report = GEN_METHODS.get("infer_and_respond")(x, batch_size=4)
    assert report["styles"] == [f"{STYLE_PREFIX} short answers that end with arr."] * 2
    infer, answer = rec.seen[:2], rec.seen[2:]
    assert all(f"Answer: {w}" in infer[0][-1]["content"] or f"Answer: {w}" in infer[1][-1]["content"]
               for w in x.weak_answers)
    assert len(answer) == 8 and targets == ["answer"] * 8
    for conv, q in zip(answer, x.questions):
        assert conv[0]["role"] == "system" and conv[0]["content"].startswith(report["styles"][0])
        assert conv[1] == {"role": "user", "content": q.question}


def test_style_sentence_parsing():
    assert style_sentence("The used style is: pirate talk.\nMore.") == f"{STYLE_PREFIX} pirate talk."
    assert style_sentence("the used style is:   formal") == f"{STYLE_PREFIX} formal"
    assert style_sentence("Pirate speak with arr") == f"{STYLE_PREFIX} Pirate speak with arr"
    assert style_sentence("") == f"{STYLE_PREFIX} the same as in the examples."


def test_ask_to_improve_and_naive():
    rec = Recorder(lambda conv: "better")
    x = inputs(rec, 4)
    targets, _ = GEN_METHODS.get("ask_to_improve")(x)
    assert targets == ["better"] * 4
    for conv, q, w in zip(rec.seen, x.questions, x.weak_answers):
        assert len(conv) == 1 and q.question in conv[0]["content"] and w in conv[0]["content"]
    assert GEN_METHODS.get("naive")(x)[0] == x.weak_answers
