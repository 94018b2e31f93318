"""What a stopped `w2s run` leaves behind (issue 16), next to the sweep's kill -9 test
(test_sweep.py): SIGTERM ends it like Ctrl-C (its row `interrupted`, exit 143, finished steps
cached), kill -9 leaves a `running` row that the next command opening the store marks `killed`,
and either way a rerun finishes with the numbers of a run never stopped.

The config is the fuzz corpus's tiny one (tiny.csv, MiniLM-L6 -> MiniLM-L6, 100 / 100 / 100
examples, 3 epochs): about a minute for the whole module on 2 CPU cores."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fuzz"))

import harness  # noqa: E402

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def w2s(*args: str) -> list[str]:
    return [sys.executable, "-m", "w2sgen", *args]


def rows(store: Path) -> list[tuple]:
    """(id, status, error, metrics) of every run, read with sqlite alone (opening a Store would
    mark dead owners itself)."""
    if not (store / "runs.sqlite").is_file():
        return []
    with contextlib.closing(sqlite3.connect(store / "runs.sqlite", timeout=30)) as db:
        return db.execute("SELECT id, status, error, metrics FROM runs ORDER BY id").fetchall()


def cached_features(store: Path) -> list[Path]:
    """Finished feature files: pathlib's `*` also matches a `.tmp-...` file still being written,
    which a stopped run removes (seen once as a flaky failure, under different timing)."""
    return sorted(p for p in (store / "cache" / "features").glob("*.npz") if not p.name.startswith("."))


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 180) -> None:
    t0 = time.monotonic()
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"w2s run ended (exit {proc.returncode}) before the moment to stop it")
        if time.monotonic() - t0 > timeout:
            raise TimeoutError("w2s run did not get there in time")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("signals")
    (folder / "tiny.csv").write_text(harness.tiny_csv(), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def reference(work) -> dict:
    """The metrics of the tiny run never stopped (in-process)."""
    store = harness.seed_store(work / "reference")
    ((_, status, _, metrics),) = rows(store)
    assert status == "done"
    return json.loads(metrics)


def start(work: Path, store: Path) -> subprocess.Popen:
    return subprocess.Popen(w2s("run", *harness.base_args(), "--store", str(store)), cwd=work,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rerun(work: Path, store: Path) -> subprocess.CompletedProcess:
    return subprocess.run(w2s("run", *harness.base_args(), "--store", str(store)), cwd=work, env=ENV,
                          capture_output=True, text=True, timeout=300)


def stop_inside_the_run(work: Path, store: Path, sig: int) -> subprocess.Popen:
    """Start `w2s run` and send `sig` once its row is recorded and its first step (the test
    split's features) is cached, while the later steps are still to come."""
    proc = start(work, store)
    wait_for(lambda: bool(cached_features(store)) and [r[1] for r in rows(store)] == ["running"], proc)
    proc.send_signal(sig)
    proc.wait(timeout=120)
    return proc


def test_sigterm_ends_a_run_like_ctrl_c_and_the_rerun_matches(work, reference):
    store = work / "sigterm"
    proc = stop_inside_the_run(work, store, signal.SIGTERM)
    err = proc.stderr.read()
    assert proc.returncode == 143, err[-2000:]
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "terminated; finished steps are cached and will be re-used"
    ((_, status, error, metrics),) = rows(store)
    assert (status, error, metrics) == ("interrupted", "terminated (SIGTERM)", None)
    kept = cached_features(store)
    assert kept and not list(store.rglob(".tmp-*"))  # finished steps kept, no half-written file

    again = rerun(work, store)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "features minilm-l6 test" in again.stdout and "(cached)" in again.stdout
    assert [r[1] for r in rows(store)] == ["interrupted", "done"]
    assert json.loads(rows(store)[1][3]) == reference  # the numbers of a run never stopped
    assert set(kept) <= set(cached_features(store))


def test_kill_9_of_a_run_is_marked_killed_by_the_next_command_and_the_rerun_matches(work, reference):
    store = work / "kill9"
    proc = stop_inside_the_run(work, store, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert [r[1] for r in rows(store)] == ["running"]  # nobody could say otherwise yet

    report = subprocess.run(w2s("report", "--store", str(store)), cwd=work, env=ENV,
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0 and "no finished runs yet" in report.stdout, report.stderr[-2000:]
    ((_, status, error, _),) = rows(store)  # any command that opens the store marks it
    assert status == "killed" and "killed" in error

    again = rerun(work, store)
    assert again.returncode == 0, again.stderr[-2000:]
    assert [r[1] for r in rows(store)] == ["killed", "done"]
    assert json.loads(rows(store)[1][3]) == reference
    for f in cached_features(store):  # every entry the killed run left is readable
        with np.load(f, allow_pickle=False) as z:
            assert z.files


def test_sighup_ends_a_run_like_sigterm(work):
    """A closed terminal (SIGHUP) ends the run as SIGTERM does: exit 128 + 1, the row
    `interrupted` at once (not `running` until the next command), finished steps kept."""
    store = work / "sighup"
    proc = stop_inside_the_run(work, store, signal.SIGHUP)
    err = proc.stderr.read()
    assert proc.returncode == 129, err[-2000:]
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "stopped by SIGHUP; finished steps are cached and will be re-used"
    ((_, status, error, metrics),) = rows(store)
    assert (status, error, metrics) == ("interrupted", "terminated (SIGHUP)", None)
    assert cached_features(store) and not list(store.rglob(".tmp-*"))


def test_repeated_sigterms_end_a_run_once(work):
    """Five SIGTERMs half a millisecond apart: the first ends the run, the others are ignored
    while it records its row (no traceback from a second signal inside the first's cleanup)."""
    store = work / "sigterm-x5"
    proc = start(work, store)
    wait_for(lambda: bool(cached_features(store)) and [r[1] for r in rows(store)] == ["running"], proc)
    for _ in range(5):
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.0005)
    proc.wait(timeout=120)
    err = proc.stderr.read()
    assert proc.returncode == 143, err[-2000:]
    assert "Traceback" not in err and err.count("terminated; finished steps") == 1
    ((_, status, error, _),) = rows(store)
    assert (status, error) == ("interrupted", "terminated (SIGTERM)")
