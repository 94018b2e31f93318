"""benchmarks/gpu_check.py in its reduced CPU mode (tiny models, seconds), so that the GPU
check cannot rot between the runs on a GPU: every section runs through the project's own
learners and feature extraction and lands in the table."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_check  # noqa: E402


def rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| section")]


def check_table(text: str) -> list[list[str]]:
    table = rows(text)
    assert all(len(r) == 5 for r in table)
    assert not [r for r in table if r[4] in ("FAIL", "error")], text
    checks = {r[1]: r for r in table}
    for size in ("qwen2-tiny", "qwen2-tiny-x2"):
        for mode in gpu_check.MODES:
            speed = checks[f"{size} {mode} speed"][2]
            assert float(re.match(r"([\d,]+) tokens/s", speed)[1].replace(",", "")) > 0, speed
            assert "MFU" in speed
            # no CUDA peak on the CPU: the estimate is reported and the comparison skipped
            assert checks[f"{size} {mode} memory"][4] == "skipped"
    for mode in ("full", "lora"):
        for variant in ("micro-batches", "checkpointing"):
            row = checks[f"{mode} {variant} vs plain"]
            assert row[4] == "ok" and "4 steps" in row[2]
    feats = [r for r in table if r[0] == "4 features"]
    assert {r[1].split(" (")[1] for r in feats} == {"encoder, bf16)", "causal, bf16)"}
    for r in feats:
        assert float(re.match(r"([\d,]+) examples/s", r[2])[1].replace(",", "")) > 0
    return table


def test_cpu_smoke_fills_every_section(tmp_path, capsys):
    out = tmp_path / "check.md"
    assert gpu_check.main(["--cpu-smoke", "--skip-tests", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    text = out.read_text()
    assert text.strip() in printed  # the same table, printed and written
    assert text.startswith("w2sgen GPU check (--cpu-smoke)")
    check_table(text)


def test_a_failing_section_is_a_row_and_the_rest_still_runs(tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("no such kernel")

    monkeypatch.setattr(gpu_check, "section_same", broken)
    monkeypatch.setattr(gpu_check, "build_bert", broken)
    out = tmp_path / "check.md"
    assert gpu_check.main(["--cpu-smoke", "--skip-tests", "--out", str(out)]) == 1
    table = rows(out.read_text())
    errors = {(r[0], r[1]): r[2] for r in table if r[4] == "error"}
    assert errors == {("3 same", "(section)"): "RuntimeError: no such kernel",
                      ("4 features", "building the encoder"): "RuntimeError: no such kernel"}
    assert any(r[0] == "2 train" and r[4] == "info" for r in table)  # the others ran
    assert any(r[0] == "4 features" and r[4] == "info" for r in table)


def test_a_spent_budget_skips_instead_of_running_over(tmp_path, capsys):
    out = tmp_path / "check.md"
    assert gpu_check.main(["--cpu-smoke", "--skip-tests", "--budget", "1", "--out", str(out)]) == 0
    table = rows(out.read_text())
    skipped = [r for r in table if r[4] == "skipped"]
    assert skipped and all(r[2] == "time budget spent" for r in skipped)
    assert not [r for r in table if "speed" in r[1]]  # no training ran


@pytest.mark.slow
def test_cpu_smoke_with_the_gpu_tests(tmp_path):
    """Section 1 too: tests/test_gpu.py through pytest (every test skipped without CUDA)."""
    out = tmp_path / "check.md"
    assert gpu_check.main(["--cpu-smoke", "--out", str(out)]) == 0
    table = check_table(out.read_text())
    tests = [r for r in table if r[0] == "1 tests"]
    assert len(tests) == 1 and re.match(r"\d+ skipped", tests[0][2]) and tests[0][4] == "skipped"
