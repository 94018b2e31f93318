"""The run store: cached arrays (compute once, survive corruption) and the runs database."""
from __future__ import annotations

import builtins
import errno
import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from w2sgen import store as store_module
from w2sgen.config import ExperimentConfig
from w2sgen.errors import W2SError
from w2sgen.owner import process_owner
from w2sgen.store import RunTaken, Store, atomic_write
from w2sgen.validate import load_config


def files_under(path):
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())


class Counter:
    def __init__(self, arrays):
        self.arrays, self.calls = arrays, 0

    def __call__(self):
        self.calls += 1
        return self.arrays


def sample_arrays():
    return {"features": np.arange(12, dtype=np.float32).reshape(3, 4),
            "labels": np.array([0, 1, 1], dtype=np.int64)}


def test_cached_computes_once(tmp_path):
    store = Store(tmp_path / "s")
    compute = Counter(sample_arrays())
    first, hit = store.cached("features", {"model": "m", "n": 3}, compute)
    assert hit is False and compute.calls == 1
    again, hit = store.cached("features", {"n": 3, "model": "m"}, compute)  # key order irrelevant
    assert hit is True and compute.calls == 1
    assert set(again) == {"features", "labels"}
    for k, v in sample_arrays().items():
        np.testing.assert_array_equal(again[k], v)
        assert again[k].dtype == v.dtype
    # a fresh Store object on the same folder sees the cache too
    _, hit = Store(tmp_path / "s").cached("features", {"model": "m", "n": 3}, compute)
    assert hit is True and compute.calls == 1


def test_different_keys_and_steps_are_separate(tmp_path):
    store = Store(tmp_path)
    a, _ = store.cached("step", {"k": 1}, lambda: {"x": np.array([1])})
    b, hit = store.cached("step", {"k": 2}, lambda: {"x": np.array([2])})
    c, hit2 = store.cached("other", {"k": 1}, lambda: {"x": np.array([3])})
    assert (hit, hit2) == (False, False)
    assert [int(a["x"][0]), int(b["x"][0]), int(c["x"][0])] == [1, 2, 3]
    assert store.cache_path("step", {"k": 1}) != store.cache_path("step", {"k": 2})
    assert store.cache_path("step", {"k": 1}).parent.name == "step"


@pytest.mark.parametrize("corrupt", ["garbage", "truncated", "bitflip", "empty"])
def test_corrupted_cache_is_recomputed(tmp_path, corrupt):
    store = Store(tmp_path)
    key = {"k": corrupt}
    arrays = {"x": np.arange(1000, dtype=np.int64)}
    store.cached("step", key, lambda: arrays)
    path = store.cache_path("step", key)
    blob = path.read_bytes()
    if corrupt == "garbage":
        path.write_bytes(b"not an npz file at all")
    elif corrupt == "truncated":
        path.write_bytes(blob[: len(blob) // 2])
    elif corrupt == "bitflip":
        b = bytearray(blob)
        b[len(b) // 3] ^= 0xFF  # inside the array data: the zip CRC check fails
        path.write_bytes(bytes(b))
    else:
        path.write_bytes(b"")
    compute = Counter(arrays)
    out, hit = store.cached("step", key, compute)
    assert hit is False and compute.calls == 1
    np.testing.assert_array_equal(out["x"], arrays["x"])
    out, hit = store.cached("step", key, compute)  # the rewritten file is good again
    assert hit is True and compute.calls == 1
    np.testing.assert_array_equal(out["x"], arrays["x"])


def test_failing_compute_leaves_nothing(tmp_path):
    store = Store(tmp_path)
    before = files_under(tmp_path)

    def boom():
        raise RuntimeError("compute failed")

    with pytest.raises(RuntimeError, match="compute failed"):
        store.cached("step", {"k": 1}, boom)
    assert not store.cache_path("step", {"k": 1}).exists()
    assert files_under(tmp_path) == before
    # and the next attempt computes normally
    _, hit = store.cached("step", {"k": 1}, lambda: {"x": np.zeros(2)})
    assert hit is False and store.cache_path("step", {"k": 1}).is_file()


def test_failing_write_leaves_no_temp_file(tmp_path):
    target = tmp_path / "d" / "out.npz"

    def half_write(f):
        f.write(b"partial")
        raise KeyboardInterrupt  # killed mid-write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_write)
    assert files_under(tmp_path) == []
    atomic_write(target, lambda f: f.write(b"whole"))
    assert target.read_bytes() == b"whole" and files_under(tmp_path) == ["d/out.npz"]
    with pytest.raises(KeyboardInterrupt):  # an existing file survives a failed rewrite
        atomic_write(target, half_write)
    assert target.read_bytes() == b"whole" and files_under(tmp_path) == ["d/out.npz"]


def test_run_lifecycle(tmp_path):
    store = Store(tmp_path)
    cfg = load_config(None, ["name=exp1", "task=fever", "seed=3"])
    run_id = store.start_run(cfg)
    (running,) = store.runs("running")
    assert running["id"] == run_id and running["finished"] is None and running["metrics"] is None
    assert store.runs("done") == []
    metrics = {"n_test": 200, "student_accuracy": {"value": 0.75, "low": 0.7, "high": 0.8}}
    store.finish_run(run_id, metrics, {"features": 1.5, "train": 2.0})
    (run,) = store.runs("done")
    assert run["id"] == run_id and run["status"] == "done" and run["name"] == "exp1"
    assert run["metrics"] == metrics
    assert run["timings"] == {"features": 1.5, "train": 2.0}
    assert run["config"] == cfg.to_dict() and run["config"]["task"]["name"] == "fever"
    assert run["config_hash"] == cfg.hash()
    assert run["versions"]["python"] and "numpy" in run["versions"]
    assert run["started"] <= run["finished"] and run["error"] is None
    assert store.runs("running") == []
    art = tmp_path / "artifacts" / str(run_id)
    assert json.loads((art / "metrics.json").read_text()) == metrics
    assert yaml.safe_load((art / "config.yaml").read_text()) == cfg.to_dict()


def test_failed_run_records_error(tmp_path):
    store = Store(tmp_path)
    ok = store.start_run(ExperimentConfig(name="ok"))
    bad = store.start_run(ExperimentConfig(name="bad"))
    assert bad == ok + 1
    store.finish_run(ok, {"a": 1}, {})
    store.end_run(bad, "failed", "W2SError: something broke", {"features": 0.1})
    (failed,) = store.runs("failed")
    assert failed["id"] == bad and failed["name"] == "bad"
    assert failed["error"] == "W2SError: something broke"
    assert failed["metrics"] is None and failed["timings"] == {"features": 0.1}
    assert failed["finished"] is not None
    assert [r["name"] for r in store.runs()] == ["ok", "bad"]
    assert not (tmp_path / "artifacts" / str(bad) / "metrics.json").exists()


def test_exclusive_start_refuses_finished_and_live_runs(tmp_path):
    store = Store(tmp_path)
    cfg, other = ExperimentConfig(name="a", seed=1), ExperimentConfig(name="b", seed=2)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        first = store.start_run(cfg)
        with sqlite3.connect(tmp_path / "runs.sqlite") as db:
            db.execute("UPDATE runs SET owner=? WHERE id=?", (process_owner(live.pid), first))
        with pytest.raises(RunTaken) as taken:
            store.start_run(cfg, exclusive=True)
        assert (taken.value.run_id, taken.value.status) == (first, "running")
        assert str(live.pid) in taken.value.owner
        assert len(store.runs()) == 1  # nothing was written
        assert store.start_run(other, exclusive=True) == first + 1  # another config is free
        with sqlite3.connect(tmp_path / "runs.sqlite") as db:  # its process dies: free again
            db.execute("UPDATE runs SET owner=? WHERE id=?", (process_owner(dead.pid), first))
        second = store.start_run(cfg, exclusive=True)
        own = store.start_run(cfg, exclusive=True)  # this process's own running row: no block
        store.finish_run(second, {"x": 1}, {})
        with pytest.raises(RunTaken) as taken:
            store.start_run(cfg, exclusive=True)
        assert (taken.value.run_id, taken.value.status) == (second, "done")
        assert "finished" in str(taken.value)
        assert [r["id"] for r in store.runs()] == [first, first + 1, second, own]
        assert store.start_run(cfg) == own + 1  # a plain start never refuses
    finally:
        live.kill()
        live.wait()


def _claim(root, barrier, release, results):
    barrier.wait()  # every process claims at the same moment
    try:
        results.put(("started", Store(root).start_run(ExperimentConfig(name="race"), exclusive=True)))
    except RunTaken as e:
        results.put((e.status, e.run_id))
    release.wait()  # stay alive until all have tried, so a claim never looks abandoned


def test_racing_exclusive_starts_claim_a_config_once(tmp_path):
    Store(tmp_path)  # the database exists before the race
    mp = multiprocessing.get_context("spawn")
    n = 6
    barrier, release, results = mp.Barrier(n), mp.Event(), mp.Queue()
    procs = [mp.Process(target=_claim, args=(str(tmp_path), barrier, release, results))
             for _ in range(n)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in range(n)]
    release.set()
    for p in procs:
        p.join(timeout=60)
    started = [run_id for status, run_id in outcomes if status == "started"]
    assert len(started) == 1
    assert sorted(outcomes) == sorted([("started", started[0])] + [("running", started[0])] * (n - 1))
    assert [r["id"] for r in Store(tmp_path).runs()] == started


def test_temporary_files_of_gone_processes_are_removed(tmp_path):
    store = Store(tmp_path)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    tag = store_module.temp_prefix().split("-")[1]
    leftovers = [tmp_path / "cache" / "features" / f".tmp-{tag}-{gone.pid}-abc.npz",
                 tmp_path / "artifacts" / "3" / f".tmp-{tag}-{gone.pid}-def.json"]
    kept = [tmp_path / "cache" / "train" / f"{store_module.temp_prefix()}ghi.npz",  # this process
            tmp_path / "cache" / "train" / f".tmp-0123abcd-{gone.pid}-jkl.npz",  # another host
            tmp_path / "cache" / "train" / "finished.npz"]
    folder = tmp_path / "cache" / "models" / f".tmp-{tag}-{gone.pid}-key-x"  # a half-saved model
    for p in [*leftovers, *kept, folder / "model.safetensors"]:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    assert store.remove_orphans() == 3
    assert not folder.exists() and not any(p.exists() for p in leftovers)
    assert all(p.exists() for p in kept)
    assert store.remove_orphans() == 0
    atomic_write(tmp_path / "cache" / "train" / "new.npz", lambda f: f.write(b"y"))
    assert sorted(p.name for p in (tmp_path / "cache" / "train").iterdir()) == sorted(
        p.name for p in [*kept, tmp_path / "new.npz"])


def test_reopening_keeps_runs(tmp_path):
    first = Store(tmp_path / "runs")
    a = first.start_run(ExperimentConfig(name="a"))
    first.finish_run(a, {"x": 1}, {})
    second = Store(tmp_path / "runs")
    b = second.start_run(ExperimentConfig(name="b"))
    assert b > a
    runs = second.runs()
    assert [(r["id"], r["name"], r["status"]) for r in runs] == [(a, "a", "done"),
                                                                 (b, "b", "running")]
    assert runs[0]["metrics"] == {"x": 1}


def test_store_path_is_a_file(tmp_path):
    f = tmp_path / "runs"
    f.write_text("not a folder")
    with pytest.raises(W2SError) as e:
        Store(f)
    assert "cannot use run store" in str(e.value) and str(f) in str(e.value)
    with pytest.raises(W2SError, match="cannot use run store"):
        Store(f / "inside")


def test_store_with_a_corrupt_database(tmp_path):
    (tmp_path / "runs.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(W2SError, match="cannot use run store"):
        Store(tmp_path)


def test_opening_a_store_removes_what_killed_processes_left(tmp_path):
    Store(tmp_path)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    tag = store_module.temp_prefix().split("-")[1]
    left = tmp_path / "cache" / "features" / f".tmp-{tag}-{gone.pid}-abc.npz"
    mine = tmp_path / "cache" / "features" / f"{store_module.temp_prefix()}def.npz"
    left.parent.mkdir(parents=True)
    for p in (left, mine):
        p.write_bytes(b"x")
    again = Store(tmp_path)  # what `w2s run`, `report`, `generate` do first
    assert again.orphans == 1 and not left.exists() and mine.exists()


def test_the_data_homes_export_leftovers_are_swept_by_every_command(tmp_path, monkeypatch, capsys):
    from w2sgen.cli import main

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    tag = store_module.temp_prefix().split("-")[1]
    onnx = tmp_path / "onnx"
    onnx.mkdir()
    left, done = onnx / f".tmp-{tag}-{gone.pid}-abc.onnx", onnx / "abc.onnx"
    left.write_bytes(b"half an export")
    done.write_bytes(b"an export")
    monkeypatch.setenv("W2S_HOME", str(tmp_path))
    assert main(["models"]) == 0
    assert not left.exists() and done.exists()


def test_store_files_get_the_umask_s_permissions(tmp_path):
    old = os.umask(0o002)
    try:
        atomic_write(tmp_path / "a.npz", lambda f: f.write(b"x"))
        os.umask(0o077)
        atomic_write(tmp_path / "b.npz", lambda f: f.write(b"x"))
    finally:
        os.umask(old)
    assert (tmp_path / "a.npz").stat().st_mode & 0o777 == 0o664  # a group can share the store
    assert (tmp_path / "b.npz").stat().st_mode & 0o777 == 0o600  # a private store stays private


def test_an_entry_this_user_cannot_read_is_reported_and_left_alone(tmp_path, monkeypatch):
    """Another user's entry (mode 0600): unreadable is not damaged. One line, the entry kept
    byte for byte, nothing computed. (Root reads any file, so the denial is simulated.)"""
    store = Store(tmp_path)
    store.cached("step", {"k": 1}, lambda: {"x": np.arange(3)})
    path = store.cache_path("step", {"k": 1})
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    real_open = builtins.open

    def denied(file, *a, **k):
        if isinstance(file, (str, Path)) and Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *a, **k)

    monkeypatch.setattr(builtins, "open", denied)
    with pytest.raises(W2SError) as e:
        store.cached("step", {"k": 1}, lambda: pytest.fail("recomputed"))
    msg = str(e.value)
    assert "\n" not in msg and f"cannot read {path}" in msg and "left as it is" in msg
    assert "group-readable" in msg and "--store" in msg
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


@pytest.mark.parametrize("err, why", [(errno.ENOSPC, "no space left"), (errno.EROFS, "read-only"),
                                      (errno.EPERM, "immutable")])
def test_a_write_that_fails_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch, err, why):
    target = tmp_path / "entry.npz"
    atomic_write(target, lambda f: f.write(b"old"))

    def fail(f):
        raise OSError(err, os.strerror(err))

    with pytest.raises(W2SError) as e:
        atomic_write(target, fail)
    assert why in str(e.value) and "--store" in str(e.value) and "\n" not in str(e.value)
    assert target.read_bytes() == b"old" and files_under(tmp_path) == ["entry.npz"]
