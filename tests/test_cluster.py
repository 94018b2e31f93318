"""`w2s sweep --executor ray --address` on a real multi-node Ray cluster on this machine: a head
and a second node, each started by `ray start` with one CPU of its own, so that two cells at
once land on both. The driver (`w2s sweep`) is the only writer of the run database; workers
read and write cache entries in --worker-cache, a folder apart from the store's database.

A tiny suite (tests/conftest.py's in-memory BERT and Llama, a CSV task, full fine-tuning,
2 methods x 3 seeds = 6 cells). Each test starts its own nodes (about 10-20 s on 2 cores)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import sentiment_examples

pytest.importorskip("ray")
from ray_nodes import cluster  # noqa: E402

import w2sgen  # noqa: E402
from w2sgen import sweep  # noqa: E402
from w2sgen.store import Store  # noqa: E402

SRC = str(Path(w2sgen.__file__).resolve().parents[1])
pytestmark = pytest.mark.slow


def env(**extra) -> dict[str, str]:
    """The environment of the nodes and the driver: this checkout's sources first, 1 thread."""
    return {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled", **extra}


@pytest.fixture(scope="module")
def suite(tmp_path_factory, tiny_bert_dir, tiny_llama_dir) -> Path:
    folder = tmp_path_factory.mktemp("suite")
    data = folder / "toy.csv"
    data.write_text("text,label\n" + "".join(f"{e.text},{e.label}\n" for e in sentiment_examples(600)))
    base = {"task": str(data), "weak_model": str(tiny_bert_dir), "strong_model": str(tiny_llama_dir),
            "splits": {"weak_train": 100, "transfer": 100, "test": 200},
            "train": {"mode": "full", "epochs": 4, "batch_size": 16}, "eval": {"bootstrap": 100},
            "features": {"max_length": 32}, "device": "cpu"}
    grid = {"methods": [{"name": "naive", "method": "naive"}, {"name": "logconf", "loss": "logconf"}],
            "seeds": [0, 1, 2]}
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump({"name": "tiny", "base": base, "grid": grid}))
    return path


@pytest.fixture(scope="module")
def reference(suite, tmp_path_factory) -> Path:
    """The suite run in-process, uninterrupted."""
    root = tmp_path_factory.mktemp("reference")
    result = sweep.run_sweep(sweep.load_suite(suite, str(root)), progress=False, echo=lambda s: None)
    assert result.ok and result.count("done") == 6
    return root


def metrics_by_hash(root: Path) -> dict[str, dict]:
    return {r["config_hash"]: r["metrics"] for r in Store(root).runs("done")}


def sweep_cmd(suite: Path, store: Path, address: str, cache: Path | str) -> list[str]:
    return [sys.executable, "-m", "w2sgen", "sweep", str(suite), "--store", str(store),
            "--executor", "ray", "--address", address, "--workers", "2", "--worker-cache", str(cache)]


def test_two_nodes_match_in_process_and_only_the_driver_writes_the_database(suite, reference, tmp_path):
    store, cache = tmp_path / "driver", tmp_path / "shared"
    with cluster(env()) as (address, _, _):
        t0 = time.perf_counter()
        out = subprocess.run(sweep_cmd(suite, store, address, cache), capture_output=True, text=True,
                             env=env(), cwd=tmp_path, timeout=400)
        print(f"6 cells on 2 nodes: {time.perf_counter() - t0:.1f} s")
        unshared_cache_is_one_line(address, tmp_path / "elsewhere")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert out.stdout.count("done     ") == 6
    nodes = set(re.findall(r" on node ([0-9a-f]{8})", out.stdout))
    assert len(nodes) == 2, out.stdout  # cells ran on both nodes
    runs = Store(store).runs()
    assert [r["status"] for r in runs] == ["done"] * 6
    owners = {r["owner"] for r in runs}
    assert len(owners) == 1  # every row written by one process: the driver, not a worker
    assert metrics_by_hash(store) == metrics_by_hash(reference)  # identical to in-process
    for r in runs:
        assert Store(store).load_arrays(r["id"], "predictions.npz")["student"].shape == (200,)
    # the database and the cache apart: no database where the workers wrote, no cache entry
    # where the database is, and the entries the in-process sweep computed, no more
    assert not (cache / "runs.sqlite").exists() and not (store / "cache").exists()
    entries = {p.parent.name for p in (cache / "cache").rglob("*.npz")}
    assert entries == {p.parent.name for p in (reference / "cache").rglob("*.npz")}
    assert not list(cache.glob(".w2s-driver-*"))  # the driver's mark is removed at the end
    again = subprocess.run([sys.executable, "-m", "w2sgen", "sweep", str(suite), "--store", str(store)],
                           capture_output=True, text=True, env=env(), cwd=tmp_path, timeout=300)
    assert "6 already finished, 0 to run" in again.stdout  # resumes from the driver's database


def test_killing_the_worker_node_mid_sweep_loses_and_duplicates_no_cell(suite, reference, tmp_path):
    """The second node is killed (SIGKILL of all its processes) while it computes a cell, after
    the first cell is recorded: Ray re-runs the cells that were on it on the head (task
    retries), the sweep finishes with every cell done exactly once, and the numbers are those
    of the in-process sweep. The workers' cache is an fsspec URL (file://: written through
    fsspec, a temporary object moved into place), apart from the driver's database."""
    store, cache = tmp_path / "driver", tmp_path / "shared"
    with cluster(env()) as (address, _, worker):
        proc = subprocess.Popen(sweep_cmd(suite, store, address, f"file://{cache}"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env(), cwd=tmp_path)
        lines = []
        try:
            assert proc.stdout is not None and worker is not None
            for line in proc.stdout:
                lines.append(line)
                if line.startswith("done     "):
                    end = time.monotonic() + 120
                    while not worker.running("_ray_cell") and time.monotonic() < end:
                        time.sleep(0.1)
                    assert worker.running("_ray_cell"), "no cell ran on the second node"
                    worker.kill(signal.SIGKILL)
                    killed_after = len(lines)
                    break
            rest, err = proc.communicate(timeout=400)
        finally:
            if proc.poll() is None:
                proc.kill()
    out = "".join(lines) + rest
    assert proc.returncode == 0, out[-2000:] + err[-2000:]
    assert out.count("done     ") == 6 and "FAILED" not in out
    nodes_after = re.findall(r" on node ([0-9a-f]{8})", "".join(lines[killed_after:]) + rest)
    assert len(nodes_after) >= 1 and len(set(nodes_after)) == 1  # the rest ran on the head alone
    runs = Store(store).runs()
    assert sorted(r["config_hash"] for r in runs) == sorted(metrics_by_hash(reference))  # one row each
    assert [r["status"] for r in runs] == ["done"] * 6
    assert metrics_by_hash(store) == metrics_by_hash(reference)
    entries = {p.parent.name for p in (cache / "cache").rglob("*.npz")}  # written at the URL
    assert entries == {p.parent.name for p in (reference / "cache").rglob("*.npz")}
    assert not (cache / "runs.sqlite").exists() and not (store / "cache").exists()
    assert not list(cache.rglob(".tmp-*")) and not list(cache.glob(".w2s-driver-*"))


def test_a_local_cluster_started_by_the_sweep(suite, reference, tmp_path, monkeypatch, capsys):
    """No --address: the sweep starts a local Ray cluster of --num-cpus CPUs and shuts it down;
    the same numbers, every row written by this process (the driver)."""
    from w2sgen.cli import main
    from w2sgen.owner import process_owner

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "store"
    assert main(["sweep", str(suite), "--store", str(store), "--executor", "ray", "--num-cpus", "2"]) == 0
    assert capsys.readouterr().out.count("done     ") == 6
    runs = Store(store).runs()
    assert [r["status"] for r in runs] == ["done"] * 6
    assert all(r["owner"] == process_owner() for r in runs)
    assert metrics_by_hash(store) == metrics_by_hash(reference)
    assert not list(store.glob(".w2s-driver-*"))


def test_a_cluster_without_w2sgen_is_one_line(suite, tmp_path):
    """A node whose Python cannot import w2sgen (here: a package of that name that fails to
    import, first on its path) stops the sweep before any cell, in one line, exit 2."""
    broken = tmp_path / "broken"
    (broken / "w2sgen").mkdir(parents=True)
    (broken / "w2sgen" / "__init__.py").write_text("raise ImportError('w2sgen is not installed here')\n")
    store = tmp_path / "store"
    with cluster(env(PYTHONPATH=str(broken)), worker_cpus=None) as (address, _, _):
        out = subprocess.run(sweep_cmd(suite, store, address, tmp_path / "cache"), capture_output=True,
                             text=True, env=env(), cwd=tmp_path, timeout=300)
    err = out.stderr.strip().splitlines()
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    assert len(err) == 1 and err[0].startswith("error: ") and "cannot import w2sgen" in err[0], err
    assert "w2sgen is not installed here" in err[0]
    assert [r["status"] for r in Store(store).runs()] == []  # nothing claimed or recorded


def unshared_cache_is_one_line(address: str, folder: Path) -> None:
    """The driver's probe: a node that does not see the driver's mark in the cache folder (as
    a node without the shared file system would not) stops the sweep in one line."""
    import ray

    from w2sgen.errors import W2SError

    folder.mkdir()
    ray.init(address=address, log_to_driver=False)
    try:
        sweep.check_nodes(address, str(folder / ".w2s-driver-x"))  # made on no node: unshared
    except W2SError as e:
        assert f"does not see the cache folder {str(folder)!r}" in str(e) and "\n" not in str(e)
    else:
        raise AssertionError("check_nodes passed a mark no node has")
    (folder / ".w2s-driver-x").write_text("1\n")
    try:
        sweep.check_nodes(address, str(folder / ".w2s-driver-x"))  # every node sees it now
        # a URL only this process sees (fsspec's in-memory file system: one per process, as a
        # bucket a node cannot reach): the nodes' probes do not find the driver's mark
        from w2sgen.cachefs import entries

        url = "memory://w2s-unshared/cache"
        mark = entries(url).put_mark(".w2s-driver-y", "1\n")
        try:
            sweep.check_nodes(address, mark)
        except W2SError as e:
            assert f"does not see the cache folder {url!r}" in str(e) and "\n" not in str(e)
        else:
            raise AssertionError("check_nodes passed a URL no node reaches")
    finally:
        ray.shutdown()
