"""Where a store's cache entries live: `cache/<step>/<name>.npz` under a folder on this
machine's file system (`Folder`: also a path every node of a cluster mounts), or under an fsspec
URL (`Remote`: `s3://bucket/prefix`, `gs://...`, `file:///shared/...`, `memory://...` in tests),
which lets the workers of a cluster share cached steps without a shared file system.

Each entry is written whole or not at all: in a folder through a temporary file renamed into
place (atomic.atomic_write); on an object store (S3, GCS, Azure, memory) as one put of the whole
object, which readers see whole or not at all; on other fsspec file systems through a temporary
object moved into place. A read returns the entry's bytes or None when it is absent; whether
they are the entry asked for is checked by the store (each entry carries its own name, and an
npz is a zip whose members carry their CRC-32 and size: a truncated or altered object fails to
load and reads as a miss).

Only cache entries live at a URL: the run database stays on the driver's disk (SQLite's locking
is not safe over network file systems), and files that must be on a local disk to be used (an
adapted model a method saves and loads back) go under `local`, a folder of this machine.
"""
from __future__ import annotations

import hashlib
import io
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Optional

from .atomic import atomic_write, temp_prefix
from .errors import W2SError

URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# fsspec protocols whose put of a whole object is atomic (readers see the old object or the
# new one, never a part): no temporary object and rename needed
OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oci", "memory"}
# the fsspec package that serves a protocol, for the one-line error when it is missing
PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs",
            "abfs": "adlfs", "abfss": "adlfs", "adl": "adlfs", "oci": "ocifs"}


def is_url(root: str | Path) -> bool:
    return bool(URL.match(str(root)))


class Folder:
    """Cache entries under `root/cache` on a file system this process mounts."""

    def __init__(self, root: str | Path):
        self.root = str(root)
        self.local = Path(root)

    def location(self, step: str, name: str) -> str:
        return str(self.local / "cache" / step / f"{name}.npz")

    def open(self, step: str, name: str) -> Optional[IO[bytes]]:
        """The entry to read (None: absent). A folder or device in its place is one line;
        PermissionError passes through (the store names the file and its owner)."""
        path = Path(self.location(step, name))
        if path.exists() and not path.is_file():
            raise W2SError(f"cache entry {path} is not a file (a folder or a device is in its "
                           "place); move it away and run again")
        try:
            return open(path, "rb")
        except FileNotFoundError:
            return None

    def write(self, step: str, name: str, write: Callable[[Any], None]) -> None:
        atomic_write(Path(self.location(step, name)), write)

    def remove(self, step: str, name: str) -> None:
        Path(self.location(step, name)).unlink(missing_ok=True)

    def put_mark(self, name: str, text: str) -> str:
        """A small file at the root (the sweep driver's mark); returns where it is."""
        path = self.local / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return str(path)

    def has_mark(self, name: str) -> bool:
        return (self.local / name).is_file()

    def remove_mark(self, name: str) -> None:
        (self.local / name).unlink(missing_ok=True)


def filesystem(url: str) -> tuple[Any, str]:
    """(fsspec file system, path in it) for `url`; one line when fsspec, or the package that
    serves the URL's protocol, is not installed, or the URL is not one fsspec knows."""
    try:
        import fsspec
    except ImportError:
        raise W2SError(f"a cache at a URL ({url!r}) needs fsspec, which is not installed: "
                       "pip install 'w2sgen[cluster]'") from None
    protocol = url.split("://", 1)[0].lower()
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as e:
        package = PACKAGES.get(protocol, f"the fsspec package for {protocol}://")
        raise W2SError(f"a cache at {url!r} needs {package}, which is not installed "
                       f"(pip install {package if protocol in PACKAGES else '...'}): {e}") from None
    except ValueError as e:  # "Protocol not known"
        raise W2SError(f"cannot use the cache URL {url!r}: {e}; give a folder, or an fsspec URL "
                       "such as s3://bucket/prefix, gs://bucket/prefix or file:///shared/folder") from None


class Remote:
    """Cache entries under `<url>/cache` through fsspec. `local`: this machine's folder for
    what must be a local file (under the data home, one folder per URL)."""

    def __init__(self, url: str):
        from .paths import home

        self.root = url.rstrip("/")
        self.fs, self.base = filesystem(self.root)
        self.base = self.base.rstrip("/")
        self.protocol = self.root.split("://", 1)[0].lower()
        self.atomic_put = self.protocol in OBJECT_STORES
        self.local = home() / "url-cache" / hashlib.sha256(self.root.encode()).hexdigest()[:16]

    def _path(self, step: str, name: str) -> str:
        return f"{self.base}/cache/{step}/{name}.npz"

    def location(self, step: str, name: str) -> str:
        return f"{self.root}/cache/{step}/{name}.npz"

    def _failed(self, what: str, where: str, e: Exception) -> W2SError:
        return W2SError(f"cannot {what} {where}: {type(e).__name__}: {str(e).strip()[:300]}; check "
                        "the URL, its credentials (the fsspec package's usual environment) and "
                        "that this machine reaches it (every finished step stays cached)")

    def open(self, step: str, name: str) -> Optional[IO[bytes]]:
        try:
            data = self.fs.cat_file(self._path(step, name))
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise W2SError(f"cache entry {self.location(step, name)} is not a file (a folder is "
                           "in its place); remove it and run again") from None
        except Exception as e:  # noqa: BLE001 -- refused, unreachable, no credentials
            raise self._failed("read", self.location(step, name), e) from None
        return io.BytesIO(data)

    def _put(self, path: str, data: bytes, where: str) -> None:
        """`data` at `path`, whole or not at all: one put on an object store; elsewhere a
        temporary object beside it, moved into place. Any failure of the store (refused,
        unreachable, no credentials: each fsspec package raises its own) is one line."""
        parent, leaf = path.rsplit("/", 1)
        try:
            if self.atomic_put:
                self.fs.pipe_file(path, data)
                return
            self.fs.makedirs(parent, exist_ok=True)
            tmp = f"{parent}/{temp_prefix()}{uuid.uuid4().hex[:8]}-{leaf}"
            try:
                self.fs.pipe_file(tmp, data)
                self.fs.mv(tmp, path)
            finally:
                if self.fs.exists(tmp):
                    self.fs.rm_file(tmp)
        except Exception as e:  # noqa: BLE001 -- the store's own error types, said in one line
            raise self._failed("write", where, e) from None

    def write(self, step: str, name: str, write: Callable[[Any], None]) -> None:
        buf = io.BytesIO()
        write(buf)
        self._put(self._path(step, name), buf.getvalue(), self.location(step, name))

    def remove(self, step: str, name: str) -> None:
        try:
            self.fs.rm_file(self._path(step, name))
        except FileNotFoundError:
            pass
        except OSError as e:
            raise self._failed("remove", self.location(step, name), e) from None

    def put_mark(self, name: str, text: str) -> str:
        self._put(f"{self.base}/{name}", text.encode(), f"{self.root}/{name}")
        return f"{self.root}/{name}"

    def has_mark(self, name: str) -> bool:
        try:
            return bool(self.fs.exists(f"{self.base}/{name}"))
        except OSError:
            return False

    def remove_mark(self, name: str) -> None:
        try:
            self.fs.rm_file(f"{self.base}/{name}")
        except OSError:
            pass


Entries = Folder | Remote


def entries(root: str | Path, database: bool = False) -> Entries:
    """Where the cache of a store rooted at `root` (a folder or an fsspec URL) lives. A store
    with a run database (`database`) must be a folder: one line for a URL."""
    if not is_url(root):
        return Folder(root)
    if database:
        raise W2SError(f"the run store {str(root)!r} must be a folder on this machine (its "
                       "database is SQLite, whose locking is not safe over a network); a URL "
                       "can hold a Ray sweep's cached steps: --worker-cache (docs/cluster.md)")
    return Remote(str(root))


def resolved(root: str) -> str:
    """`root` as every process names it: a URL as given, a folder made absolute."""
    return root if is_url(root) else str(Path(root).resolve())

