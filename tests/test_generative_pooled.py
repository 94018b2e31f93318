"""The generative report's intervals over seeds are clustered by seed (runs resampled, then the
questions within each): on synthetic runs whose two seeds disagree, the interval of the pooled
mean spans both seeds' means, where a bootstrap of the pooled questions as if independent would
be several times narrower."""
from __future__ import annotations

import json

import numpy as np
import pytest

from w2sgen.generative.report import pooled_text
from w2sgen.metrics import mean_ci

Q = 50  # eval questions per run


def write_run(root, run_id: int, seed: int, student_right: int) -> dict:
    """A maths run (generated arithmetic, exact match): the strong model right on 40 of Q
    questions, the naive student on `student_right`."""
    lines = []
    for i in range(Q):
        ref = str(10 + i)
        for system, right in (("strong", i < 40), ("student:naive", i < student_right)):
            lines.append(json.dumps({"system": system, "answer": f"The answer is {ref if right else '0'}.",
                                     "reference": ref}))
    folder = root / "artifacts" / str(run_id)
    folder.mkdir(parents=True)
    (folder / "answers.jsonl").write_text("\n".join(lines) + "\n")
    return {"id": run_id, "config": {"kind": "generative", "name": "maths",
                                     "task": {"name": "maths", "options": {"source": "generated"}},
                                     "seed": seed, "questions": {"seed": seed}}}


def pooled_row(text: str, system: str) -> list[str]:
    block = text.split("exact_match, pooled")[1]
    return next(line.split() for line in block.splitlines() if line.startswith(system + " "))


def test_pooled_interval_is_clustered_by_seed_not_pooled_over_questions(tmp_path):
    runs = [write_run(tmp_path, 1, 0, 45), write_run(tmp_path, 2, 1, 5)]  # 0.9 and 0.1
    text = pooled_text(tmp_path, runs)
    assert "pooled over 2 runs" in text and "100 eval questions in all" in text
    row = pooled_row(text, "student:naive")
    assert row[1:3] == ["0.90", "0.10"]
    est, low, high = float(row[3]), float(row[4].strip("[,")), float(row[5].strip("]"))
    assert est == pytest.approx(0.5)
    # two seeds resampled: a draw holds seed 0 twice (or seed 1 twice) half the time, so the
    # interval reaches near each seed's own mean
    assert low < 0.2 and high > 0.8
    naive = mean_ci(np.array([1.0] * 45 + [0.0] * 5 + [1.0] * 5 + [0.0] * 45), 0)
    assert naive[2] - naive[1] < 0.25 and (high - low) > 3 * (naive[2] - naive[1])
    # the strong model is right on the same 40 questions in both runs: seeds agree, and its
    # interval is the questions' alone
    s_low, s_high = (float(v.strip("[],")) for v in pooled_row(text, "strong")[4:6])
    assert 0.65 < s_low < 0.8 < s_high < 0.92
