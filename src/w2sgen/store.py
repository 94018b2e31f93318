"""The run store: a content-addressed cache of arrays plus an SQLite database of runs.

Layout under the store folder:
  cache/<step>/<key>.npz    one file per computed step (features, predictions, labels),
                            keyed by a hash of everything the step depends on
  runs.sqlite               one row per run: config, config hash, status, timings, metrics,
                            versions
  artifacts/<run id>/       the run's config.yaml and metrics.json, and what its pipeline
                            and command add: predictions.npz and the plots of `w2s run`,
                            answers.jsonl and training files of `w2s generate`
Writes go to a temporary file that is renamed into place, and each database change is one
transaction, so a run killed at any moment leaves every finished step and run intact. A run
killed without a chance to record it (kill -9, power loss) stays `running`; each row names the
process that owns it, and `mark_stale` (run by every open of a store) turns rows whose process
is gone into `killed`. Several processes may share a store: the database is in WAL mode with a
30 s busy timeout.

Damage is read around, never repaired by deleting what is stored: a cache entry that cannot be
read, or that holds another key's arrays (each entry carries its own name), is a miss and is
recomputed; a run's damaged JSON column is read from its artifacts (metrics.json, config.yaml)
or the run is left out with a warning; a damaged predictions.npz is reported without; a
database sqlite cannot read is one error line saying how to start afresh without losing the
cache. Configs, metrics and errors are recorded through `endpoint.redact`: no API key or URL
userinfo reaches the database or config.yaml.
"""
from __future__ import annotations

import json
import platform
import sqlite3
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional, Protocol

import numpy as np
import yaml

from .atomic import (  # noqa: F401 - the store's writes; re-exported for their users
    TEMP_NAME,
    _host_tag,
    _proc_start,
    atomic_write,
    remove_dead_temporaries,
    temp_prefix,
    write_failed,
)
from .cachefs import entries, is_url
from .endpoint import redact, redact_tree
from .errors import W2SError
from .owner import live_elsewhere, owner_state, process_owner
from .spec import stable_hash

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,          -- running | done | failed | interrupted | killed
    started REAL NOT NULL,
    finished REAL,
    timings TEXT,
    metrics TEXT,
    versions TEXT,
    error TEXT,
    owner TEXT                     -- host:boot:pid:start of the process running it
);
CREATE INDEX IF NOT EXISTS runs_config_hash ON runs(config_hash);
"""
COLUMNS = ("id", "name", "config_hash", "config", "status", "started", "finished", "timings",
           "metrics", "versions", "error")  # every column but owner (added to old stores)
# How the rows' config hashes and the cached steps' keys are made, kept in the database's
# user_version: 0, a store written before run identities were canonical (component options
# hashed as written; `w2s store migrate` re-keys it); 1, canonical (migrate.py).
KEYS_VERSION = 1


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in ("w2sgen", "torch", "transformers", "numpy"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


class RunConfig(Protocol):
    """A config that can be recorded as a run."""

    name: str
    store: str

    @property
    def kind(self) -> str: ...

    def hash(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


# Inside every cache entry: the entry's own name, so a file swapped or copied in from another
# key reads as a miss instead of handing a step the wrong arrays.
KEY_ARRAY = "__w2s_key__"


UNWRITABLE = ("readonly database", "disk I/O error", "database or disk is full", "unable to open")


class StoreUnwritable(W2SError):
    """The runs database cannot be written (read-only, immutable, full): one line."""


def config_shape_ok(config: dict[str, Any]) -> bool:
    """A stored config's JSON has the shape reports read: components as {name, options}
    mappings, sections as mappings, model names as strings (valid JSON of another shape is
    damage, read around as a column that does not parse is)."""
    for key in ("task", "loss", "method"):
        c = config.get(key)
        if c is not None and not (isinstance(c, dict) and isinstance(c.get("name"), str)
                                  and isinstance(c.get("options", {}), dict)):
            return False
    for key in ("train", "splits", "eval", "features", "weak_train"):
        if config.get(key) is not None and not isinstance(config[key], dict):
            return False
    return all(isinstance(config.get(k, ""), str) for k in ("weak_model", "strong_model", "name"))


class RunTaken(Exception):
    """An exclusive start found the configuration finished, or running in another process."""

    def __init__(self, run_id: int, status: str, owner: str):
        where = "finished" if status == "done" else f"in progress in process {owner}"
        super().__init__(f"run {run_id} of this configuration is {where}")
        self.run_id, self.status, self.owner = run_id, status, owner


class Store:
    """database=False: the cache alone (a cluster's worker: it reads and writes cache entries
    and never opens runs.sqlite, which only the sweep's driver writes)."""

    def __init__(self, root: str | Path, database: bool = True):
        self.entries = entries(root, database)
        self.root = self.entries.local  # a URL's cache: this machine's folder for local files
        self.database = database
        self._warned: set[str] = set()
        self.stale: list[int] = []
        if not database:
            if not is_url(root):
                try:
                    self.root.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise W2SError(f"cannot use cache folder {str(self.root)!r}: {e}") from None
            return
        db_file = self.root / "runs.sqlite"
        if db_file.exists() and not db_file.is_file() and not db_file.is_dir():
            raise W2SError(f"cannot use run store {str(self.root)!r}: {db_file} is not a regular "
                           "file (a FIFO, socket or device); move it away")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with self._db() as db:
                db.executescript(SCHEMA)
                self.keys_version = int(db.execute("PRAGMA user_version").fetchone()[0])
                if self.keys_version < KEYS_VERSION and not db.execute("SELECT 1 FROM runs LIMIT 1").fetchone():
                    self.keys_version = KEYS_VERSION  # nothing stored yet: keyed as today
                    try:
                        db.execute(f"PRAGMA user_version={KEYS_VERSION}")
                    except sqlite3.OperationalError:  # read-only: nothing to re-key anyway
                        pass
                columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
                lacking = [c for c in COLUMNS if c not in columns]
                if lacking:  # a table of another shape: not read, not "repaired"
                    raise W2SError(f"cannot use run store {str(self.root)!r}: its runs table has no "
                                   f"column(s) {', '.join(lacking)} (not a w2s store, or damaged); "
                                   f"move runs.sqlite aside to start a fresh one")
                if "owner" not in columns:  # a store made before owners were recorded
                    try:
                        db.execute("ALTER TABLE runs ADD COLUMN owner TEXT")
                    except sqlite3.OperationalError as e:
                        if "duplicate column" not in str(e):  # another process added it first
                            raise
            # Every command that opens a store, not only a sweep, marks the rows of processes
            # that are gone (kill -9 of `w2s run`), so no row stays `running` for good.
            try:
                self.stale = self.mark_stale()
            except (sqlite3.OperationalError, StoreUnwritable):  # read-only: report from it as it is
                self.stale = []
            self.orphans = self.remove_orphans()
        except (OSError, sqlite3.DatabaseError) as e:
            db_file = self.root / "runs.sqlite"
            hint = (f"; {db_file} is a folder, not a database: move it away" if db_file.is_dir()
                    else "; check that the folder is writable" if isinstance(e, sqlite3.OperationalError)
                    else "")
            raise W2SError(f"cannot use run store {str(self.root)!r}: {e}{hint}") from None

    def damaged(self, e: Exception) -> W2SError:
        """The one line for a database sqlite cannot read: what to do, and that nothing else
        in the store is lost."""
        db = self.root / "runs.sqlite"
        return W2SError(f"cannot use run store {str(self.root)!r}: its database runs.sqlite is "
                        f"damaged ({e}); move it aside (mv {db} {db}.damaged) to start a fresh one "
                        "- the cached steps under cache/ and the artifacts are kept and re-used - "
                        f"and `sqlite3 {db}.damaged .recover` may rescue its rows")

    def unreadable(self, path: Path) -> W2SError:
        """The one line for a store file this user may not read: nothing is replaced."""
        try:
            st = path.stat()
            whose = f"owned by uid {st.st_uid}, mode {st.st_mode & 0o777:04o}"
        except OSError:
            whose = "permission denied"
        return W2SError(f"cannot read {path} ({whose}); it is left as it is. A store shared "
                        "between users needs its files group-readable (umask 002 and a group "
                        "folder: docs/reliability.md); or pass your own --store")

    def _warn(self, message: str) -> None:
        """A one-line warning on stderr, once per store object: something stored is damaged
        and was read around, not lost."""
        if message not in self._warned:
            self._warned.add(message)
            print(f"warning: {message}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ cache

    def entry_name(self, step: str, key: dict[str, Any]) -> str:
        """The content address of a step's entry: a hash of the step and everything it depends on."""
        return stable_hash({'step': step, **key}, 24)

    def cache_path(self, step: str, key: dict[str, Any]) -> Path:  # (a store that is a folder)
        return Path(self.entries.location(step, self.entry_name(step, key)))

    def cached(self, step: str, key: dict[str, Any],
               compute: Callable[[], dict[str, np.ndarray]]) -> tuple[dict[str, np.ndarray], bool]:
        """Arrays of a step, computed once per key. Returns (arrays, was it cached)."""
        name = self.entry_name(step, key)
        try:
            f = self.entries.open(step, name)
        except PermissionError:  # unreadable is not damaged: another user's entry is kept
            raise self.unreadable(Path(self.entries.location(step, name))) from None
        if f is not None:
            try:
                with f, np.load(f, allow_pickle=False) as z:
                    arrays = {k: z[k] for k in z.files}
            except (OSError, ValueError, EOFError, zipfile.BadZipFile):
                arrays = None
            if arrays is not None:
                tag = arrays.pop(KEY_ARRAY, None)
                if tag is None or str(tag) == name:  # untagged: written before tags
                    return arrays, True
            # unreadable, or another entry's arrays (a file swapped or copied in): a miss
            self.entries.remove(step, name)
        arrays = compute()
        # Any values: numpy's stub also matches **kwds against `allow_pickle: bool`
        payload: dict[str, Any] = {**arrays, KEY_ARRAY: np.array(name)}
        self.entries.write(step, name, lambda f: np.savez(f, **payload))
        return arrays, False

    # ------------------------------------------------------------------ runs

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A connection in one transaction. A damaged database (not sqlite, malformed) raises
        the one-line `damaged` error; operational errors (locked, read-only) pass through."""
        if not self.database:  # a programming error, not bad input: workers never record runs
            raise RuntimeError(f"the cache-only store {str(self.root)!r} has no run database")
        db = sqlite3.connect(self.root / "runs.sqlite", timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            with db:
                yield db
        except sqlite3.DatabaseError as e:
            if isinstance(e, sqlite3.OperationalError):
                if any(m in str(e) for m in UNWRITABLE):
                    raise StoreUnwritable(f"cannot write run store {str(self.root)!r}: {e}; check "
                                          "that runs.sqlite and its folder are writable and the "
                                          "disk is not full, or pass another --store") from None
                raise
            raise self.damaged(e) from None
        finally:
            db.close()

    def check_writable(self) -> None:
        """One line now (StoreUnwritable) if runs cannot be recorded here (a read-only or
        immutable database, a full disk), rather than a failure in every cell of a sweep. The
        probe writes nothing: an update of no row, rolled back."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("UPDATE runs SET id=id WHERE 0")
            db.rollback()

    def start_run(self, cfg: RunConfig, exclusive: bool = False) -> int:
        """A new `running` row for `cfg`, owned by this process; its id.

        exclusive: claim the configuration instead. In the same write transaction as the insert,
        a finished run of the same config hash, or one in progress in another live process,
        raises `RunTaken` and nothing is written, so two sweeps sharing a store never run one
        cell twice (a check before the insert would leave a window between the two)."""
        with self._db() as db:
            if exclusive:
                db.execute("BEGIN IMMEDIATE")  # other writers wait until this one commits
                rows = db.execute("SELECT id, status, owner FROM runs WHERE config_hash=? AND "
                                  "status IN ('done', 'running') ORDER BY id DESC", (cfg.hash(),))
                for run_id, status, owner in rows.fetchall():
                    if status == "done" or live_elsewhere(owner):
                        raise RunTaken(run_id, status, owner or "")
            config = redact_tree(cfg.to_dict())  # no key or URL userinfo is ever stored
            cur = db.execute(
                "INSERT INTO runs (name, config_hash, config, status, started, versions, owner) "
                "VALUES (?, ?, ?, 'running', ?, ?, ?)",
                (redact(cfg.name), cfg.hash(), json.dumps(config), time.time(),
                 json.dumps(versions()), process_owner()))
            if cur.lastrowid is None:
                raise W2SError("the runs database did not return an id for the new run")
            run_id = int(cur.lastrowid)
        art = self.root / "artifacts" / str(run_id)
        try:
            atomic_write(art / "config.yaml", lambda f: f.write(yaml.safe_dump(config, sort_keys=False)), "w")
        except BaseException as e:  # the row says why, instead of staying `running`
            self.end_run(run_id, "failed", f"{type(e).__name__}: {e}", {})
            raise
        return run_id

    def finish_run(self, run_id: int, metrics: dict, timings: dict) -> None:
        metrics = redact_tree(metrics)  # e.g. an endpoint's name
        atomic_write(self.root / "artifacts" / str(run_id) / "metrics.json",
                     lambda f: json.dump(metrics, f, indent=2), "w")
        with self._db() as db:
            db.execute("UPDATE runs SET status='done', finished=?, metrics=?, timings=? WHERE id=?",
                       (time.time(), json.dumps(metrics), json.dumps(timings), run_id))

    def save_arrays(self, run_id: int, name: str, arrays: dict[str, np.ndarray]) -> Path:
        path = self.root / "artifacts" / str(run_id) / name
        payload: dict[str, Any] = dict(arrays)  # see `cached`: the stub's allow_pickle: bool
        atomic_write(path, lambda f: np.savez_compressed(f, **payload))
        return path

    def load_arrays(self, run_id: int, name: str, need: tuple[str, ...] = ()
                    ) -> Optional[dict[str, np.ndarray]]:
        """A run's stored arrays, or None when there are none; a damaged file, or one without
        every array in `need`, is warned about and read as none (the file is left as it is)."""
        path = self.root / "artifacts" / str(run_id) / name
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            self._warn(f"{path} is damaged (not a readable .npz file); run {run_id} is "
                       "reported without it (its numbers in runs.sqlite are kept)")
            return None
        missing = [k for k in need if k not in arrays]
        if missing:
            self._warn(f"{path} is damaged (no {', '.join(missing)} array); run {run_id} is "
                       "reported without it (its numbers in runs.sqlite are kept)")
            return None
        return arrays

    def end_run(self, run_id: int, status: str, error: str, timings: dict) -> None:
        with self._db() as db:
            db.execute("UPDATE runs SET status=?, finished=?, error=?, timings=? WHERE id=?",
                       (status, time.time(), redact(error), json.dumps(timings), run_id))

    def keys_note(self) -> Optional[str]:
        """One line for a store keyed before run identities were canonical, else None."""
        if self.keys_version >= KEYS_VERSION:
            return None
        return (f"note: run store {str(self.root)!r} was written before run identities were "
                "canonical; runs whose options were spelled otherwise (alpha_max: 1 for 1.0, a "
                "default written out) are found again after `w2s store migrate --store "
                f"{self.root}` (once; nothing is recomputed)")

    def mark_keys_current(self) -> None:
        """Record that every row and cached step is keyed as today's code keys them."""
        with self._db() as db:
            db.execute(f"PRAGMA user_version={KEYS_VERSION}")
        self.keys_version = KEYS_VERSION

    def rekey_run(self, run_id: int, config_hash: str, config: dict[str, Any]) -> None:
        """Give a run its configuration's hash and recorded config as today's code writes them
        (`w2s store migrate`): the row and artifacts/<id>/config.yaml; metrics, timings and
        predictions are left as they are."""
        config = redact_tree(config)
        with self._db() as db:
            db.execute("UPDATE runs SET config_hash=?, config=? WHERE id=?",
                       (config_hash, json.dumps(config), run_id))
        art = self.root / "artifacts" / str(run_id)
        if art.is_dir():
            atomic_write(art / "config.yaml",
                         lambda f: f.write(yaml.safe_dump(config, sort_keys=False)), "w")

    def runs(self, status: Optional[str] = None) -> list[dict[str, Any]]:
        query = "SELECT * FROM runs" + (" WHERE status=?" if status else "") + " ORDER BY id"
        return self._select(query, (status,) if status else ())

    def finished_run(self, config_hash: str) -> dict[str, Any] | None:
        """The newest finished (`done`) run of a configuration, or None."""
        rows = self._select("SELECT * FROM runs WHERE config_hash=? AND status='done' "
                            "ORDER BY id DESC LIMIT 1", (config_hash,))
        return rows[0] if rows else None

    def running_elsewhere(self, config_hash: str) -> list[dict[str, Any]]:
        """Runs of a configuration in progress in another live process on this host."""
        rows = self._select("SELECT * FROM runs WHERE config_hash=? AND status='running'",
                            (config_hash,))
        return [r for r in rows if live_elsewhere(r["owner"])]

    def mark_stale(self) -> list[int]:
        """Mark `running` rows whose process is gone (killed with no chance to say so) as
        `killed`, so they are neither taken for finished nor left looking alive. Rows owned by
        a process on another host are left alone. Returns the ids marked."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")  # read and update in one write transaction
            rows = db.execute("SELECT id, owner FROM runs WHERE status='running'").fetchall()
            stale = [i for i, owner in rows if owner_state(owner) == "dead"]
            db.executemany("UPDATE runs SET status='killed', finished=?, error=? WHERE id=?",
                           [(time.time(), "its process ended without finishing it (killed)", i)
                            for i in stale])
        return stale

    def remove_orphans(self) -> int:
        """Delete temporary files and folders (under cache/ and artifacts/) of processes on this
        host that are gone: a kill -9 during a write leaves its temporary file behind. Those of
        live processes, and of other hosts sharing the store, are kept. Returns how many. Run
        by every command as it opens the store."""
        return sum(remove_dead_temporaries(self.root / sub) for sub in ("cache", "artifacts"))

    def _select(self, query: str, params: tuple = ()) -> list[dict[str, Any]]:
        with self._db() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(query, params).fetchall()
        return [d for d in (self._decode(dict(r)) for r in rows) if d is not None]

    def _decode(self, d: dict[str, Any]) -> Optional[dict[str, Any]]:
        """A row with its JSON columns read. A damaged column (not JSON, or not a mapping) is
        read from the run's artifacts where they hold a copy (metrics.json, config.yaml), else
        left empty; a run whose config, or a finished run whose metrics, cannot be read at all
        is left out, with a warning: nothing is rewritten or deleted."""
        for k in ("config", "metrics", "timings", "versions"):
            raw = d.get(k)
            needed = k == "config" or (k == "metrics" and d.get("status") == "done")
            if not raw and not needed:
                d[k] = None
                continue
            try:
                value = json.loads(raw) if raw else None
            except (ValueError, TypeError):
                value = None
            if isinstance(value, dict) and (k != "config" or config_shape_ok(value)):
                d[k] = value
                continue
            d[k], copy = self._artifact_copy(d["id"], k)
            if d[k] is not None:
                self._warn(f"run store {str(self.root)!r}: run {d['id']} has damaged {k} in "
                           f"runs.sqlite; read them from {copy}")
            elif k == "config" or (k == "metrics" and d.get("status") == "done"):
                where = f" nor in {copy}" if copy else ""
                self._warn(f"run store {str(self.root)!r}: run {d['id']} is left out: its {k} "
                           f"are damaged in runs.sqlite{where}; rerun its configuration (w2s run) "
                           "to replace it")
                return None
        return d

    def _artifact_copy(self, run_id: int, column: str) -> tuple[Optional[dict], Optional[Path]]:
        """A run's config or metrics as its artifacts folder keeps them, when readable."""
        name = {"config": "config.yaml", "metrics": "metrics.json"}.get(column)
        if name is None:
            return None, None
        path = self.root / "artifacts" / str(run_id) / name
        try:
            text = path.read_text(encoding="utf-8")
            value = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError):
            return None, path
        ok = isinstance(value, dict) and (column != "config" or config_shape_ok(value))
        return (value, path) if ok else (None, path)
