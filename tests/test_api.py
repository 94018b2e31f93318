"""The Python API (`w2sgen.run`, docs/api.md): the page's code runs as written, on a tiny model."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import save_llama, sentiment_examples
from test_docs import runnable

import w2sgen
from w2sgen.errors import W2SError
from w2sgen.tasks import Example
from w2sgen.tasks.memory import examples_key, to_examples

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
MODELS_LINE = 'WEAK, STRONG = "minilm-l6", "mpnet-base"  # `w2s models` names, or local model folders'


def doc_code() -> str:
    """Every runnable ```python block of docs/api.md, in order (test_docs.runnable)."""
    return "\n".join(runnable("docs/api.md", "python"))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    # 160 positions: the default features.max_length (128) fits, so the page needs no change
    return save_llama(tmp_path_factory.mktemp("api-llama"), hidden_size=32, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, intermediate_size=48,
                      max_position_embeddings=160)


def test_the_docs_example_runs_and_its_numbers_hold(tmp_path, tiny_model, monkeypatch, capsys):
    code = doc_code()
    assert MODELS_LINE in code and code.count("w2sgen.run(") == 4
    code = code.replace(MODELS_LINE, f"WEAK, STRONG = {str(tiny_model)!r}, {str(tiny_model)!r}")
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(code, str(DOC), "exec"), ns)  # noqa: S102 - the documentation's own code
    out = capsys.readouterr().out
    result = ns["result"]
    m = result.metrics
    # 200 records with ids: 0.3 / 0.3 / 0.4 of them
    assert m["split_sizes"] == {"weak_train": 60, "transfer": 60, "test": 80}
    for est in (result.weak, result.student, result.ceiling):
        assert 0 <= est.low <= est.value <= est.high <= 1
    assert result.student.value == m["student_accuracy"]["value"]
    frame = ns["frame"]
    assert len(frame) == 80 and list(frame.columns) == ["ids", "labels", "weak", "student", "ceiling"]
    assert ((frame["student"] > 0.5) == frame["labels"].astype(bool)).mean() == pytest.approx(
        result.student.value)
    assert result.paths["predictions"].is_file() and (tmp_path / "runs" / "runs.sqlite").is_file()
    assert ns["figure"].is_file() and ns["figure"].with_suffix(".svg").is_file()
    # the same content from a DataFrame and a Dataset: one key, one experiment, all steps cached
    key = result.config.task.options["key"]
    assert ns["from_frame"].config.task.options["key"] == key
    assert ns["from_dataset"].config.hash() == result.config.hash()
    assert ns["from_dataset"].student.value == result.student.value
    assert out.count("True") == 2 and "False" not in out
    assert "toy reviews" in out  # the label names the task in the table
    longer = ns["longer"]
    assert longer.config.train.epochs == 3 and longer.config.loss.name == "logconf"
    assert len(longer.metrics["curves"]["student"]["loss"]) == 3
    assert longer.config.hash() != result.config.hash()


def test_import_does_not_load_torch():
    code = "import sys; from w2sgen import run, Result; print('torch' in sys.modules)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "False", p.stderr


def test_in_memory_examples_are_checked_and_keyed_by_content():
    rows = [{"text": e.text, "label": e.label, "id": e.id} for e in sentiment_examples(20)]
    examples = to_examples(rows)
    assert [e.id for e in examples] == [r["id"] for r in rows]
    assert examples_key(to_examples([*examples])) == examples_key(examples)  # Examples as given
    changed = [dict(rows[0], label=1 - rows[0]["label"]), *rows[1:]]
    assert examples_key(to_examples(changed)) != examples_key(examples)  # a label is content
    assert examples_key(to_examples(rows[::-1])) != examples_key(examples)  # so is the order
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(rows)
    assert examples_key(to_examples(frame)) == examples_key(examples)
    with pytest.raises(W2SError, match=r"lack\(s\) column\(s\) label"):
        to_examples([{"text": "a"}])
    with pytest.raises(W2SError, match="row 2: label 'maybe' is not binary"):
        to_examples([{"text": "a", "label": 1}, {"text": "b", "label": "maybe"}])
    with pytest.raises(W2SError, match="DataFrame row 1 has no 'text'"):  # a missing cell
        to_examples(pd.DataFrame([{"text": float("nan"), "label": 1}, {"text": "b", "label": 0}]))
    with pytest.raises(W2SError, match="DataFrame row 2: 'text' must be text"):
        to_examples(pd.DataFrame([{"text": "a", "label": 1}, {"text": 3, "label": 0}]))
    with pytest.raises(W2SError, match="only class 1"):
        to_examples([Example("a", "x", 1), Example("b", "y", 1)])
    with pytest.raises(W2SError, match="got str"):
        to_examples("text,label")


def test_bad_calls_are_one_clear_error(tmp_path, tiny_model):
    with pytest.raises(W2SError, match="unknown key 'trian'"):
        w2sgen.run(trian={"epochs": 3}, store=str(tmp_path))
    with pytest.raises(W2SError, match="task_label names in-memory examples"):
        w2sgen.run(task_label="x", store=str(tmp_path))
    # a config naming in-memory examples, outside the process that had them: nothing recorded
    with pytest.raises(W2SError, match="no examples with key '0123' in this process"):
        w2sgen.run({"task": {"name": "examples", "key": "0123"}}, weak_model=str(tiny_model),
                   strong_model=str(tiny_model), store=str(tmp_path))
    assert not list((tmp_path / "artifacts").glob("*")) if (tmp_path / "artifacts").exists() else True


def test_a_config_object_round_trips_through_the_api():
    from w2sgen.api import merge, raw_config
    from w2sgen.validate import build_config, load_config

    cfg = load_config(None, ["train.epochs=3", "loss=logconf", "loss.alpha_max=0.5", "weak_train.mode=full",
                             "method=confidence_filter", "method.hi=0.8"])
    raw = raw_config(cfg)
    assert build_config(raw).hash() == cfg.hash()
    merge(raw, "train", {"lr": 0.01})
    merge(raw, "splits__test", 0.4)
    again = build_config(raw)
    assert (again.train.lr, again.train.epochs, again.splits.test) == (0.01, 3, 0.4)
    assert again.loss.options == {"alpha_max": 0.5} and again.weak_train == {"mode": "full"}
