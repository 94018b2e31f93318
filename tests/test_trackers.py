"""Trackers (loggers.py) against the real packages, offline: W&B in offline mode into a tmp
folder (its run file read back record by record), MLflow with a file store in a tmp folder (read
back with its client). A run's per-epoch curves, summary, result table, figures and group, and
`w2s report --to` sending a store's runs after the fact."""
from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest
from conftest import save_llama, sentiment_examples

import w2sgen
from w2sgen import loggers
from w2sgen.cli import main
from w2sgen.errors import W2SError

TRACKER_VARS = ("W2S_WANDB_PROJECT", "W2S_WANDB_ENTITY", "MLFLOW_TRACKING_URI", "W2S_MLFLOW_EXPERIMENT",
                "W2S_LOGGERS")


@pytest.fixture
def no_tracker_env(monkeypatch):
    for var in TRACKER_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(loggers, "_warned", set())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_llama(tmp_path_factory.mktemp("trackers-llama"), hidden_size=32, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, intermediate_size=48,
                      max_position_embeddings=160)


ROWS = [{"id": e.id, "text": e.text, "label": e.label} for e in sentiment_examples(160)]


def tiny_run(tiny, store, **extra):
    return w2sgen.run(examples=ROWS, task_label="toy", weak_model=str(tiny), strong_model=str(tiny),
                      splits={"weak_train": 0.3, "transfer": 0.3, "test": 0.4}, store=str(store),
                      train={"epochs": 4}, eval={"bootstrap": 50}, quiet=True, **extra)


def wandb_env(monkeypatch, root: Path):
    wandb = pytest.importorskip("wandb")
    wandb.teardown()  # W&B keeps its settings (WANDB_DIR) per process once set up
    for k, v in {"WANDB_MODE": "offline", "WANDB_DIR": root, "WANDB_SILENT": "true",
                 "WANDB_CONFIG_DIR": root / "config", "WANDB_CACHE_DIR": root / "cache",
                 "WANDB_DATA_DIR": root / "data", "W2S_WANDB_PROJECT": "w2s-tests",
                 "W2S_LOGGERS": "wandb"}.items():
        monkeypatch.setenv(k, str(v))


def wandb_records(run_dir: Path):
    """The records of an offline W&B run file (LevelDB log blocks of protobuf records)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = next(run_dir.glob("run-*.wandb")).read_bytes()
    assert data[:4] == b":W&B"
    pos, block, buf = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # the rest of a block too short for a header: padding
            pos += block - pos % block
            continue
        _, n, kind = struct.unpack("<IHB", data[pos:pos + 7])
        buf, pos = buf + data[pos + 7:pos + 7 + n], pos + 7 + n
        if kind in (1, 4):  # a full record, or the last piece of one
            record = pb.Record()
            record.ParseFromString(buf)
            buf = b""
            yield record


def key(item) -> str:
    return item.key or "/".join(item.nested_key)  # `a/b` may come as a nested key


def wandb_run(run_dir: Path, wait: float = 60.0) -> dict:
    """An offline run's config, group, history and summary, once its file holds the exit record
    (W&B's service may still be writing when `finish` returns)."""
    import time

    from google.protobuf.message import DecodeError

    deadline = time.monotonic() + wait
    while True:
        try:
            out = read_wandb_run(run_dir)
        except DecodeError:  # a block the service is still writing: read again
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
            continue
        if out["exited"] or time.monotonic() > deadline:
            return out
        time.sleep(0.5)


def read_wandb_run(run_dir: Path) -> dict:
    out: dict = {"history": [], "summary": {}, "exited": False}
    for r in wandb_records(run_dir):
        kind = r.WhichOneof("record_type")
        if kind == "run":
            out["group"], out["name"] = r.run.run_group, r.run.display_name
            out["config"] = {i.key: json.loads(i.value_json) for i in r.run.config.update}
        elif kind == "history":
            out["history"].append({key(i): json.loads(i.value_json) for i in r.history.item})
        elif kind == "summary":
            out["summary"].update({key(i): json.loads(i.value_json) for i in r.summary.update})
        elif kind == "exit":
            out["exited"] = True
    return out


def curve(history: list[dict], step: str, key: str) -> list[float]:
    rows = sorted((h for h in history if f"{step}/{key}" in h), key=lambda h: h[f"{step}/epoch"])
    assert [h[f"{step}/epoch"] for h in rows] == list(range(1, len(rows) + 1))
    return [h[f"{step}/{key}"] for h in rows]


def test_a_run_in_wandb_offline(tmp_path, tiny, monkeypatch, no_tracker_env):
    wandb_env(monkeypatch, tmp_path / "wb")
    result = tiny_run(tiny, tmp_path / "store", labels={"suite": "sweep-a"})
    runs = sorted((tmp_path / "wb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    got = wandb_run(runs[0])
    m = result.metrics
    assert got["exited"]
    assert got["group"] == "sweep-a" and got["name"] == f"w2s-{result.run_id}: default"
    assert got["config"]["train.epochs"] == "4" and got["config"]["w2s.run_id"] == result.run_id
    for step, name in (("weak_supervisor", "weak"), ("strong_ceiling", "ceiling"), ("student", "student")):
        assert curve(got["history"], step, "test_accuracy") == pytest.approx(m["curves"][name]["test_accuracy"])
        assert curve(got["history"], step, "loss") == pytest.approx(m["curves"][name]["loss"])
    assert got["summary"]["student_accuracy"] == pytest.approx(m["student_accuracy"]["value"])
    assert got["summary"]["ceiling_accuracy_low"] == pytest.approx(m["ceiling_accuracy"]["low"])
    media = runs[0] / "files" / "media"
    table = json.loads(next(media.glob("table/results_*.table.json")).read_text())
    assert table["columns"] == ["measure", "value", "low", "high"]
    assert table["data"][1][:2] == ["student", pytest.approx(m["student_accuracy"]["value"])]
    images = sorted(p.name.split("_")[0] for p in media.glob("images/figures/*.png"))
    assert images == ["curves", "results"]


def mlflow_env(monkeypatch, root: Path) -> str:
    pytest.importorskip("mlflow")
    uri = root.as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for the opt-in
    return uri


def test_a_run_in_an_mlflow_file_store(tmp_path, tiny, monkeypatch, no_tracker_env):
    uri = mlflow_env(monkeypatch, tmp_path / "mlruns")
    monkeypatch.setenv("W2S_MLFLOW_EXPERIMENT", "w2s-tests")
    monkeypatch.setenv("W2S_LOGGERS", "mlflow")
    result = tiny_run(tiny, tmp_path / "store", labels={"suite": "sweep-b"})
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("w2s-tests")
    (run,) = client.search_runs([exp.experiment_id])
    m = result.metrics
    assert run.info.status == "FINISHED" and run.data.tags["w2s.group"] == "sweep-b"
    assert run.data.params["train.epochs"] == "4" and run.data.tags["w2s.run_id"] == str(result.run_id)
    assert run.data.metrics["student_accuracy"] == pytest.approx(m["student_accuracy"]["value"])
    history = client.get_metric_history(run.info.run_id, "student/test_accuracy")
    assert [h.step for h in sorted(history, key=lambda h: h.step)] == [1, 2, 3, 4]
    assert [h.value for h in sorted(history, key=lambda h: h.step)] == pytest.approx(
        m["curves"]["student"]["test_accuracy"])
    files = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert {"results.json", "config.yaml", "metrics.json", "figures"} <= files
    figures = {f.path for f in client.list_artifacts(run.info.run_id, "figures")}
    assert figures == {"figures/results.png", "figures/curves.png"}
    table = json.loads(Path(client.download_artifacts(run.info.run_id, "results.json", str(tmp_path))).read_text())
    assert table["data"][3][0] == "PGR"


def test_report_to_sends_a_stores_runs(tmp_path, tiny, monkeypatch, no_tracker_env, capsys):
    monkeypatch.setenv("W2S_LOGGERS", "none")  # the runs themselves log nowhere
    store = tmp_path / "store"
    first, second = tiny_run(tiny, store), tiny_run(tiny, store, loss="logconf")
    monkeypatch.delenv("W2S_LOGGERS")
    uri = mlflow_env(monkeypatch, tmp_path / "mlruns")
    assert main(["report", "--store", str(store), "--to", "mlflow"]) == 0
    assert "sent 2 of 2 run(s) to mlflow" in capsys.readouterr().out
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("w2sgen").experiment_id])
    by_id = {r.data.tags["w2s.run_id"]: r for r in runs}
    assert set(by_id) == {str(first.run_id), str(second.run_id)}
    r2 = by_id[str(second.run_id)]
    assert r2.data.params["loss.name"] == "logconf"
    assert len(client.get_metric_history(r2.info.run_id, "student/loss")) == 4
    wandb_env(monkeypatch, tmp_path / "wb")
    assert main(["report", "--store", str(store), "--to", "wandb"]) == 0
    offline = sorted((tmp_path / "wb" / "wandb").glob("offline-run-*"))
    assert len(offline) == 2
    got = [wandb_run(d) for d in offline]
    assert all(g["exited"] for g in got)
    assert sorted(g["summary"]["student_accuracy"] for g in got) == pytest.approx(
        sorted([first.student.value, second.student.value]))


def test_loggers_do_nothing_unless_configured(no_tracker_env, monkeypatch):
    assert set(loggers.LOGGERS) == {"wandb", "mlflow"}
    assert loggers.selected() == []
    imported = set(sys.modules)
    assert loggers.log_finished(1, {"name": "x"}, {"student_accuracy": {"value": 0.8, "low": 0.7, "high": 0.9}}) == []
    assert not {"wandb", "mlflow"} & (set(sys.modules) - imported)
    monkeypatch.setenv("W2S_WANDB_PROJECT", "w2s-test")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "file:///tmp/nowhere")
    assert [n for n, _ in loggers.selected()] == ["mlflow", "wandb"]
    monkeypatch.setenv("W2S_LOGGERS", "mlflow")
    assert [n for n, _ in loggers.selected()] == ["mlflow"]
    monkeypatch.setenv("W2S_LOGGERS", "none")
    assert loggers.selected() == []


def test_configured_but_not_installed_warns_once(no_tracker_env, monkeypatch, capsys):
    monkeypatch.setenv("W2S_WANDB_PROJECT", "w2s-test")
    monkeypatch.setattr(loggers, "installed", lambda package: False)
    for run_id in (1, 2):
        assert loggers.log_finished(run_id, {"name": "x"}, {}) == []
    err = capsys.readouterr().err
    assert err.count("W2S_WANDB_PROJECT is set but wandb is not installed") == 1
    assert "pip install 'w2sgen[wandb]'" in err
    with pytest.raises(W2SError,
                       match=r"mlflow is not installed; `pip install 'w2sgen\[mlflow\]'`"):
        loggers.backfill([], None, "mlflow", lambda r: [])


def test_a_failing_tracker_never_fails_the_run(no_tracker_env, monkeypatch, capsys):
    class Flaky:
        def __init__(self, run):
            self.aborted = False

        def curves(self, step, series):
            raise ConnectionError("no network\nmore")

        def finish(self, metrics, tables, files):
            raise AssertionError("not reached: dropped after its first failure")

        def abort(self):
            self.aborted = True

    def boom(run):
        raise ConnectionError("refused")

    monkeypatch.setitem(loggers.LOGGERS._items, "wandb", loggers.Logger("json", lambda: True, Flaky, "X"))
    monkeypatch.setitem(loggers.LOGGERS._items, "mlflow", loggers.Logger("json", lambda: True, boom, "Y"))
    live = loggers.start(5, {"name": "x"})
    assert live.names == ["wandb"]
    session = live.sessions[0][1]
    live.curves("student", [1.0], [0.5])
    assert live.finish({"student_accuracy": {"value": 0.8, "low": 0.7, "high": 0.9}}) == []
    err = capsys.readouterr().err
    assert "logging run 5 to mlflow failed (ConnectionError: refused)" in err
    assert "logging run 5 to wandb failed (ConnectionError: no network)" in err and session.aborted
