"""Every bad input in corpus.yaml (issue 16): exit 2 (3 for divergence, 0 where the input is
repaired or read around with a warning), no traceback, one error line holding the expected
fragments (the problem and the fix), and the store left as it was - sha256 of every database row
and every file, before and after, against a store seeded with one finished tiny run.

Most cases fail before anything trains and run in-process (`w2sgen.cli.main`, output captured);
the whole corpus takes about a minute on 2 CPU cores, most of it seeding the store."""
from __future__ import annotations

import harness
import pytest

CASES = harness.load_corpus()["cases"]


@pytest.fixture(scope="session")
def seeded(tmp_path_factory):
    """The store seeded with one finished tiny run, and its snapshot (shared by the fuzz tests)."""
    return harness.seeded_once(tmp_path_factory)

# Every input issue 16 lists, by case id: the corpus must keep them.
ISSUE_CASES = [
    # tracebacks after training, options checked late
    "logconf-alpha-max-abc", "logconf-balance-bogus", "window-radius-abc", "product-alpha-abc",
    "entropy-warmup-abc", "bootstrap-folds-abc", "seed-negative", "bootstrap-zero",
    "bootstrap-negative", "bootstrap-huge", "features-batch-size-zero", "max-length-negative",
    "max-length-over-positions", "lora-rank-zero",
    # other tracebacks
    "csv-field-too-long", "config-not-utf8", "db-metrics-corrupt-recovered",
    "predictions-garbage-html", "cache-swapped-repaired", "report-out-dev-null",
    "report-pipe-closed",
    # silently accepted
    "warmup-fraction-5", "logconf-alpha-max-5", "reverse-ce-floor-negative", "max-length-zero",
    "jsonl-nan-text", "jsonl-object-text", "config-train-scalar-plus-override",
    "device-cuda-without-gpu",
    # messages that mislead
    "task-txt-suffix", "task-dir-csv", "store-flag-empty-run", "icl-refine-lm-openai", "db-garbage",
    # keys
    "api-key-env-holds-key", "base-url-userinfo-key",
]


def _param(case: dict) -> object:
    marks = []
    if case.get("pending"):
        marks.append(pytest.mark.xfail(strict=True, reason=f"pending: {case['pending']}"))
    return pytest.param(case, id=case["id"], marks=marks)


def test_the_corpus_is_large_well_formed_and_holds_the_issue():
    ids = [c["id"] for c in CASES]
    assert len(ids) >= 150 and len(set(ids)) == len(ids)
    assert not [i for i in ISSUE_CASES if i not in ids]
    for c in CASES:
        assert isinstance(c["argv"], list) and all(isinstance(a, str) for a in c["argv"]), c["id"]
        assert all(isinstance(f, str) for f in harness.fragments(c.get("message"))), c["id"]
        assert c.get("exit", 2) in (0, 2, 3), c["id"]
        assert c.get("exit", 2) == 0 or c.get("message"), f"{c['id']}: an error case names its message"


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input(case, seeded, tmp_path):
    if case.get("requires") == "root":
        import os
        import shutil

        if os.geteuid() != 0 or not shutil.which("chattr"):
            pytest.skip("the case makes a file immutable (chattr +i): root only")
    if case.get("requires") == "no_cuda":
        import torch

        if torch.cuda.is_available():
            pytest.skip("the case is about a machine without a GPU")
    store_root, pristine = seeded
    outcome, before, after, store = harness.execute(case, tmp_path / "work", store_root)
    problems = harness.check(case, outcome, before, after, store, pristine)
    assert not problems, (f"{case['id']}: " + "; ".join(problems)
                          + f"\n--- stderr ---\n{outcome.err[-3000:]}\n--- stdout ---\n{outcome.out[-1500:]}")
