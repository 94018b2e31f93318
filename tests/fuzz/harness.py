"""The bad-input corpus (corpus.yaml) and what runs it: every case is data, one runner.

A case gives the `w2s` arguments, the files to create in its working folder (configs, data
files, suites), optional edits to a copy of the seeded store (corrupted databases, metrics,
predictions, cache files), the expected exit code and fragments of the expected message. The
runner checks, for every case: the exit code, no traceback, the error as one line holding every
fragment, and the store left as it was (sha256 of every database row and every file before and
after). Cases run in-process (`w2sgen.cli.main` with captured output) unless they need a real
process (`mode: subprocess`: `w2s report | head`, a closed stdout pipe).

    .venv/bin/python tests/fuzz/harness.py [CASE_ID ...]   # print every case's outcome

The seeded store holds one finished tiny run (tiny.csv, MiniLM-L6 -> MiniLM-L6, 100 / 100 /
100 examples, 3 epochs), so "unchanged" means something and cases that pass validation find
their features cached.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus.yaml"
ROOT = HERE.parents[1]
STORE_DB = ("runs.sqlite", "runs.sqlite-wal", "runs.sqlite-shm", "runs.sqlite-journal")


def tiny_csv() -> str:
    """400 short two-class sentences: the issue's tiny CSV task."""
    rng = random.Random(0)
    pos = "good great fine happy love nice wonderful excellent".split()
    neg = "bad awful sad hate poor terrible horrible dreadful".split()
    fill = "the a movie food was is it this very and service room hotel".split()
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["text", "label"])
    for i in range(400):
        label = i % 2
        words = [rng.choice(pos if label else neg) for _ in range(rng.randint(1, 3))]
        words += [rng.choice(fill) for _ in range(rng.randint(2, 6))]
        rng.shuffle(words)
        w.writerow([" ".join(words) + f" #{i}", label])
    return out.getvalue()


def load_corpus() -> dict[str, Any]:
    return yaml.safe_load(CORPUS.read_text(encoding="utf-8"))


def base_args() -> list[str]:
    return list(load_corpus()["base"])


# ------------------------------------------------------------------------ files and stores


def content(spec: Any) -> bytes:
    """A file's bytes from its spec: text, {hex: ...}, or {parts: [text | {repeat, times} | {hex}]}."""
    if isinstance(spec, str):
        return spec.encode("utf-8")
    if isinstance(spec, dict) and "hex" in spec:
        return bytes.fromhex(spec["hex"])
    if isinstance(spec, dict) and "repeat" in spec:
        return content(spec["repeat"]) * int(spec["times"])
    if isinstance(spec, dict) and "parts" in spec:
        return b"".join(content(p) for p in spec["parts"])
    raise ValueError(f"corpus: bad file spec {spec!r}")


def model_folder(path: Path, spec: dict[str, Any], subst: dict[str, str]) -> None:
    """A model folder made from a zoo model's: its files linked (not copied), config.json
    rewritten with `config` (keys set to null are removed), `drop` left out, `add` written."""
    import json

    from w2sgen.models import resolve

    source = Path(resolve(spec["model"]).path)
    path.mkdir(parents=True, exist_ok=True)
    drop = set(spec.get("drop") or [])
    for f in source.iterdir():
        if f.is_file() and f.name not in drop and f.name != "config.json":
            (path / f.name).symlink_to(f)
    if "config.json" not in drop:
        config = json.loads((source / "config.json").read_text())
        config.update(spec.get("config") or {})
        config = {k: v for k, v in config.items() if v is not None}
        (path / "config.json").write_text(json.dumps(config))
    write_files(path, spec.get("add") or {}, subst)


def write_files(folder: Path, files: dict[str, Any], subst: dict[str, str]) -> None:
    for name, spec in (files or {}).items():
        path = folder / name
        if isinstance(spec, dict) and spec.get("dir"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        if isinstance(spec, dict) and "model" in spec:
            model_folder(path, spec, subst)
            continue
        if isinstance(spec, dict) and "symlink" in spec:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to(spec["symlink"])
            continue
        if isinstance(spec, dict) and "copy" in spec:  # another file of the folder (tiny.csv)
            shutil.copyfile(folder / spec["copy"], path)
            continue
        if isinstance(spec, dict) and spec.get("fifo"):
            path.parent.mkdir(parents=True, exist_ok=True)
            os.mkfifo(path)
            continue
        path.unlink(missing_ok=True)  # a linked file of a model folder is replaced, not written through
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content(spec)
        for k, v in subst.items():
            data = data.replace(k.encode(), v.encode())
        path.write_bytes(data)


def edit_store(root: Path, edits: list[dict[str, Any]]) -> None:
    """Damage a copy of the seeded store as a case asks."""
    for e in edits or []:
        if "sql" in e:
            with contextlib.closing(sqlite3.connect(root / "runs.sqlite")) as db, db:
                db.execute(e["sql"])
        elif "write" in e:
            path = root / e["write"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content(e["content"]))
        elif "truncate" in e:
            path = root / e["truncate"]
            blob = path.read_bytes()
            path.write_bytes(blob[: int(len(blob) * float(e.get("keep", 0.5)))])
        elif "flip" in e:  # damage one byte at a fraction of the file
            path = root / e["flip"]
            blob = bytearray(path.read_bytes())
            blob[int(len(blob) * float(e.get("at", 0.5)))] ^= 0xFF
            path.write_bytes(bytes(blob))
        elif "swap_cache" in e:  # exchange two entries of one step: each holds the other's arrays
            a, b = sorted((root / "cache" / e["swap_cache"]).glob("*.npz"))[:2]
            tmp = a.with_suffix(".swap")
            a.rename(tmp)
            b.rename(a)
            tmp.rename(b)
        elif "remove" in e:
            path = root / e["remove"]
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        elif "mkdir" in e:
            (root / e["mkdir"]).mkdir(parents=True, exist_ok=True)
        elif "fifo" in e:  # a named pipe where a file belongs
            path = root / e["fifo"]
            path.unlink(missing_ok=True)
            os.mkfifo(path)
        elif "folder_over_cache" in e:  # a folder where a step's first cache entry belongs
            first = sorted((root / "cache" / e["folder_over_cache"]).glob("*.npz"))[0]
            first.unlink()
            first.mkdir()
        elif "immutable" in e:  # chattr +i: unwritable even for root (undone by `execute`)
            subprocess.run(["chattr", "+i", str(root / e["immutable"])], check=True)
        else:
            raise ValueError(f"corpus: bad store edit {e!r}")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Snapshot:
    rows: dict[Any, str] = field(default_factory=dict)   # run id -> sha256 of the row
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256 of the bytes

    def text(self) -> str:
        return "\n".join([*self.rows.values(), *self.files.values()])


def snapshot(root: Path) -> Snapshot:
    """sha256 of every database row (by content: a checkpoint may rewrite the file's bytes) and
    of every other file in the store. An unreadable database counts by its bytes."""
    snap = Snapshot()
    if not root.exists():
        return snap
    db = root / "runs.sqlite"
    if db.is_file():
        try:
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
                for row in con.execute("SELECT * FROM runs ORDER BY id"):
                    snap.rows[row[0]] = sha(repr(row).encode())
        except sqlite3.DatabaseError:
            snap.rows = {"<database bytes>": sha(db.read_bytes())}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and rel not in STORE_DB:
            snap.files[rel] = sha(p.read_bytes())
        elif p.is_dir() and rel not in STORE_DB:
            snap.files[rel + "/"] = "dir"
    return snap


def store_dump(root: Path) -> str:
    """Everything a store holds as text (rows and file bytes), to look for leaked secrets."""
    parts = []
    db = root / "runs.sqlite"
    if db.is_file():
        with contextlib.suppress(sqlite3.DatabaseError), \
                contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            parts += [repr(r) for r in con.execute("SELECT * FROM runs")]
    for p in root.rglob("*"):
        if p.is_file():
            parts.append(p.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


# ---------------------------------------------------------------------------- running


@dataclass
class Outcome:
    rc: int
    out: str
    err: str
    seconds: float


def expand(argv: list[Any], subst: dict[str, str]) -> list[str]:
    out: list[str] = []
    for a in argv:
        if a == "$C":
            out += base_args()
            continue
        a = str(a)
        for k, v in subst.items():
            a = a.replace(k, v)
        out.append(a)
    return out


def run_inprocess(argv: list[str], cwd: Path, env: dict[str, str]) -> Outcome:
    from w2sgen.cli import main
    from w2sgen.models import resolve

    resolve.cache_clear()  # cached by name: `./pk` is another folder in another case's folder

    out, err = io.StringIO(), io.StringIO()
    saved_env = {k: os.environ.get(k) for k in env}
    old = Path.cwd()
    t0 = time.perf_counter()
    try:
        os.environ.update(env)
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(argv)
            except SystemExit as e:  # argparse
                rc = e.code if isinstance(e.code, int) else 2
            except BaseException:  # noqa: BLE001 - a traceback is what the corpus looks for
                import traceback

                traceback.print_exc()
                rc = -1
    finally:
        os.chdir(old)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return Outcome(rc, out.getvalue(), err.getvalue(), time.perf_counter() - t0)


def run_subprocess(argv: list[str], cwd: Path, env: dict[str, str], stdout: str = "pipe",
                   timeout: float = 120, stdin: str = "") -> Outcome:
    cmd = [sys.executable, "-m", "w2sgen", *argv]
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    t0 = time.perf_counter()
    if stdout == "closed":  # `w2s report | head`: the reader is gone before the first line
        proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        proc.stdout.close()
        err = proc.stderr.read().decode("utf-8", "replace")
        rc = proc.wait(timeout=timeout)
        return Outcome(rc, "", err, time.perf_counter() - t0)
    p = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
                       input=stdin)
    return Outcome(p.returncode, p.stdout, p.stderr, time.perf_counter() - t0)


def prepare(case: dict[str, Any], work: Path, seeded: Path) -> tuple[Path, list[str], dict[str, str]]:
    """The case's folder (tiny.csv and its files) and store; returns (store, argv, env)."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "tiny.csv").write_text(tiny_csv(), encoding="utf-8")
    store_kind = case.get("store", "shared")
    if store_kind == "shared":
        store = seeded
    elif store_kind == "copy":
        store = work / "store"
        shutil.copytree(seeded, store, ignore=shutil.ignore_patterns("runs.sqlite-*"))
        edit_store(store, case.get("store_edits"))
    elif store_kind == "none":
        store = work / "no-store"
    else:
        raise ValueError(f"corpus: bad store kind {store_kind!r}")
    subst = {"{store}": str(store), "{dir}": str(work), "{root}": str(ROOT)}
    write_files(work, case.get("files"), subst)
    argv = expand(case["argv"], subst)
    if argv and argv[0] in ("run", "report", "sweep", "generate") and case.get("auto_store", True) \
            and "--store" not in argv:
        argv += ["--store", str(store)]
    return store, argv, {k: str(v) for k, v in (case.get("env") or {}).items()}


def execute(case: dict[str, Any], work: Path, seeded: Path) -> tuple[Outcome, Snapshot, Snapshot, Path]:
    store, argv, env = prepare(case, work, seeded)
    before = snapshot(store)
    try:
        if case.get("mode", "inprocess") == "subprocess":
            outcome = run_subprocess(argv, work, env, case.get("stdout", "pipe"),
                                     stdin=case.get("stdin", ""))
        else:
            outcome = run_inprocess(argv, work, env)
    finally:
        for e in case.get("store_edits") or []:
            if "immutable" in e:
                subprocess.run(["chattr", "-i", str(store / e["immutable"])], check=True)
    return outcome, before, snapshot(store), store


MAX_ERR = 2000  # characters of stderr for an error: an error line is cut at 1000 (errors.cut)
PROGRESS = re.compile(r"\d+%\|")  # a tqdm progress bar (stderr is its place, not an error)


def error_lines(err: str) -> list[str]:
    return [ln for ln in err.replace("\r", "\n").splitlines() if ln.strip() and not PROGRESS.search(ln)]


def fragments(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def check(case: dict[str, Any], outcome: Outcome, before: Snapshot, after: Snapshot,
          store: Path, pristine: Snapshot) -> list[str]:
    """Every way the case's outcome falls short; empty when it is clean."""
    problems = []
    text = outcome.out + outcome.err
    want = case.get("exit", 2)
    if outcome.rc != want:
        problems.append(f"exit {outcome.rc}, expected {want}")
    if "Traceback" in text:
        problems.append("a traceback")
    lines = error_lines(outcome.err)
    if want != 0:
        if case.get("argparse"):  # argparse's own form: usage lines, then `w2s ...: error: ...`
            msg = lines[-1] if lines else ""
            if not (msg.startswith("w2s") and ": error: " in msg):
                problems.append(f"not an argparse error line: {msg!r}")
        else:
            msg = lines[0] if len(lines) == 1 else ""
            if len(lines) != 1 or not msg.startswith("error: "):
                problems.append(f"stderr is not one 'error: ...' line: {lines[-4:]!r}")
        for f in fragments(case.get("message")):
            if f not in msg:
                problems.append(f"message lacks {f!r}: {msg[:2000]!r}")
        if len(outcome.err) > MAX_ERR:  # a long value is cut in a message, never printed whole
            problems.append(f"stderr holds {len(outcome.err)} characters (at most {MAX_ERR})")
    else:
        for f in fragments(case.get("message")):
            if f not in text:
                problems.append(f"output lacks {f!r}")
        if case.get("quiet") and outcome.err.strip():
            problems.append(f"stderr not empty: {outcome.err[-300:]!r}")
        noise = [ln for ln in lines if not ln.startswith("warning: ")]
        if noise:  # a repaired or read-around input says so in warning lines, nothing else
            problems.append(f"stderr holds more than warnings: {noise[-3:]!r}")
    for secret in fragments(case.get("absent")):
        if secret in text:
            problems.append(f"output shows {secret!r}")
        if store.exists() and secret in store_dump(store):
            problems.append(f"the store holds {secret!r}")
    kind = case.get("store_check", "unchanged")
    if kind == "unchanged":
        if before.rows != after.rows:
            problems.append(f"database rows changed: {sorted(set(after.rows) ^ set(before.rows)) or 'content'}")
        if before.files != after.files:
            changed = sorted(k for k in set(before.files) | set(after.files)
                             if before.files.get(k) != after.files.get(k))
            problems.append(f"store files changed: {changed[:5]}")
    elif kind in ("preserved", "restored"):
        # preserved: whatever was there (after the case's damage) is still there, byte for byte;
        # restored: the seeded store's rows and files are all back as they were before the damage
        ref = before if kind == "preserved" else pristine
        lost_rows = [k for k, v in ref.rows.items() if after.rows.get(k) != v]
        lost_files = [k for k, v in ref.files.items() if after.files.get(k) != v]
        if lost_rows or lost_files:
            problems.append(f"stored data changed or lost: rows {lost_rows}, files {lost_files[:5]}")
    elif kind != "any":
        problems.append(f"corpus: bad store_check {kind!r}")
    return problems


def seed_store(root: Path) -> Path:
    """A store with one finished tiny run, made once (in-process)."""
    work, store = root / "work", root / "store"
    work.mkdir(parents=True, exist_ok=True)
    (work / "tiny.csv").write_text(tiny_csv(), encoding="utf-8")
    outcome = run_inprocess(["run", *base_args(), "--store", str(store)], work, {})
    if outcome.rc != 0:
        raise RuntimeError(f"seeding the store failed (exit {outcome.rc}):\n{outcome.err[-3000:]}")
    return store


_SEEDED: dict[str, tuple[Path, Snapshot]] = {}


def seeded_once(tmp_path_factory: Any) -> tuple[Path, Snapshot]:
    """(the seeded store, its snapshot right after seeding), made once per test session for
    every module that asks (a fixture in each module calls this; no conftest.py here, so the
    suite's `from conftest import ...` keeps finding tests/conftest.py)."""
    if "store" not in _SEEDED:
        store = seed_store(tmp_path_factory.mktemp("fuzz-seed"))
        _SEEDED["store"] = (store, snapshot(store))
    return _SEEDED["store"]


def main(ids: list[str]) -> int:
    import tempfile

    corpus = load_corpus()["cases"]
    cases = [c for c in corpus if not ids or c["id"] in ids]
    with tempfile.TemporaryDirectory(prefix="w2s-fuzz-") as tmp:
        seeded = seed_store(Path(tmp) / "seed")
        pristine = snapshot(seeded)
        clean = 0
        for case in cases:
            outcome, before, after, store = execute(case, Path(tmp) / "cases" / case["id"], seeded)
            problems = check(case, outcome, before, after, store, pristine)
            clean += not problems
            last = (error_lines(outcome.err) or [""])[-1]
            print(f"{'ok  ' if not problems else 'FAIL'} {case['id']:<44} rc={outcome.rc} "
                  f"{outcome.seconds:5.1f}s  {last[:220]}")
            for p in problems:
                print(f"       - {p}")
    print(f"{len(cases)} cases, {clean} clean")
    return 0 if clean == len(cases) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    sys.exit(main(sys.argv[1:]))
