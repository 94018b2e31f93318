"""Cache entries at an fsspec URL (cachefs.Remote): what the workers of a Ray sweep share when
the nodes have no common file system (--worker-cache s3://..., gs://..., file://...). Tested on
fsspec's in-memory file system (an object store: one put per entry) and its local file system
(a temporary object moved into place); a Ray worker's cell computed on a URL cache matches the
in-process run. Seconds on a CPU."""
from __future__ import annotations

import io
import sys
import uuid

import numpy as np
import pytest
from conftest import sentiment_examples

fsspec = pytest.importorskip("fsspec")

from w2sgen import cachefs  # noqa: E402
from w2sgen.errors import W2SError  # noqa: E402
from w2sgen.store import KEY_ARRAY, Store  # noqa: E402


@pytest.fixture
def url() -> str:
    """A fresh folder of fsspec's in-memory file system (one per process, as an object store's
    bucket is one per cluster); removed afterwards."""
    root = f"memory://w2s-test-{uuid.uuid4().hex[:8]}/cache-root"
    yield root
    fs = fsspec.filesystem("memory")
    fs.rm(root.split("://", 1)[1].split("/")[0], recursive=True)


def test_an_entry_is_computed_once_and_read_back_from_the_url(url):
    store = Store(url, database=False)
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "ids": np.array(["a", "b"])}

    first, cached1 = store.cached("features", {"model": "m", "n": 2}, compute)
    again, cached2 = store.cached("features", {"model": "m", "n": 2}, compute)
    assert (cached1, cached2, len(calls)) == (False, True, 1)
    assert again["x"].tolist() == [[0, 1, 2], [3, 4, 5]] and again["ids"].tolist() == ["a", "b"]
    fs, base = cachefs.filesystem(url)
    name = store.entry_name("features", {"model": "m", "n": 2})
    # one object at <url>/cache/<step>/<address>.npz, and nothing else (no temporary objects)
    assert fs.find(base) == [f"{base}/cache/features/{name}.npz"]
    with np.load(io.BytesIO(fs.cat_file(f"{base}/cache/features/{name}.npz"))) as z:
        assert str(z[KEY_ARRAY]) == name  # the entry carries its own content address
    assert not store.root.exists()  # nothing written on this machine's disk


def test_a_truncated_or_swapped_object_is_a_miss_and_is_replaced(url):
    store = Store(url, database=False)
    fs, base = cachefs.filesystem(url)
    store.cached("train", {"k": 1}, lambda: {"p": np.linspace(0, 1, 50)})
    store.cached("train", {"k": 2}, lambda: {"p": np.zeros(50)})
    one = f"{base}/cache/train/{store.entry_name('train', {'k': 1})}.npz"
    two = f"{base}/cache/train/{store.entry_name('train', {'k': 2})}.npz"
    whole = fs.cat_file(one)
    fs.pipe_file(one, whole[: len(whole) // 2])  # a partial object (an interrupted copy)
    arrays, cached = store.cached("train", {"k": 1}, lambda: {"p": np.full(50, 7.0)})
    assert not cached and arrays["p"][0] == 7.0
    assert len(fs.cat_file(one)) == len(whole)  # rewritten whole
    fs.pipe_file(two, fs.cat_file(one))  # another key's entry copied into its place
    arrays, cached = store.cached("train", {"k": 2}, lambda: {"p": np.full(50, 3.0)})
    assert not cached and arrays["p"].tolist() == [3.0] * 50


def test_a_file_url_writes_through_a_temporary_object_moved_into_place(tmp_path, monkeypatch):
    url = f"file://{tmp_path}/shared"
    store = Store(url, database=False)
    store.cached("features", {"a": 1}, lambda: {"x": np.ones(4)})
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == [f"shared/cache/features/{store.entry_name('features', {'a': 1})}.npz"]
    assert store.cached("features", {"a": 1}, lambda: pytest.fail("recomputed"))[1]
    # a move that fails: one line naming the entry and the URL, nothing half-written left
    fs = store.entries.fs

    def refused(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(fs, "mv", refused)
    with pytest.raises(W2SError) as e:
        store.cached("features", {"a": 2}, lambda: {"x": np.zeros(4)})
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"cannot write {url}/cache/features/") and "Permission denied" in msg
    assert "every finished step stays cached" in msg
    assert sorted(p.name for p in (tmp_path / "shared" / "cache" / "features").iterdir()) == [
        f"{store.entry_name('features', {'a': 1})}.npz"]


def test_urls_that_cannot_be_used_are_one_line(monkeypatch):
    with pytest.raises(W2SError, match=r"must be a folder on this machine .* --worker-cache"):
        Store("memory://w2s-x/store")  # the run database is SQLite: never at a URL
    with pytest.raises(W2SError, match=r"Protocol not known: nosuch; give a folder, or an fsspec URL"):
        Store("nosuch://bucket/x", database=False)
    try:
        import s3fs  # noqa: F401
    except ImportError:
        with pytest.raises(W2SError) as e:
            Store("s3://bucket/prefix", database=False)
        assert str(e.value).startswith("a cache at 's3://bucket/prefix' needs s3fs, which is not installed")
    monkeypatch.setitem(sys.modules, "fsspec", None)  # fsspec not installed
    with pytest.raises(W2SError) as e:
        Store("gs://bucket/prefix", database=False)
    assert str(e.value) == ("a cache at a URL ('gs://bucket/prefix') needs fsspec, which is not "
                            "installed: pip install 'w2sgen[cluster]'")


def test_a_ray_workers_cell_on_a_url_cache_matches_the_in_process_run(url, tmp_path, tiny_bert_dir,
                                                                     monkeypatch):
    """What a Ray task runs (executors._ray_cell, called here outside Ray): the cell computed
    with its cached steps at the URL, the same metrics as `pipeline.run` on a folder store; the
    second time every step is read back from the URL."""
    from w2sgen import pipeline
    from w2sgen.sweep import Cell
    from w2sgen.sweep.executors import WorkerSetup, _ray_cell
    from w2sgen.validate import load_config

    monkeypatch.chdir(tmp_path)  # the task changes into the driver's folder: restored after
    data = tmp_path / "toy.csv"
    data.write_text("text,label\n" + "".join(f"{e.text},{e.label}\n" for e in sentiment_examples(300)))
    cfg = load_config(None, [f"task={data}", f"weak_model={tiny_bert_dir}", f"strong_model={tiny_bert_dir}",
                             "splits.weak_train=60", "splits.transfer=60", "splits.test=100",
                             "eval.bootstrap=50", "features.max_length=16", "device=cpu"])
    reference = pipeline.run(cfg, Store(tmp_path / "folder"), quiet=True)
    mark = ".w2s-driver-test"
    cachefs.entries(url).put_mark(mark, "1\n")
    setup = WorkerSetup(url, mark, 1, str(tmp_path), {})
    first = _ray_cell(Cell(0, "c", cfg.resolved()), setup, None)
    assert first.error == "" and first.computed is not None
    assert first.computed.metrics == reference["metrics"]
    assert not any(t["cached"] for k, t in first.computed.timings.items() if k not in ("data", "evaluate"))
    second = _ray_cell(Cell(0, "c", cfg.resolved()), setup, None)
    steps = {k: t["cached"] for k, t in second.computed.timings.items() if k not in ("data", "evaluate")}
    assert steps and all(steps.values()), steps
    assert second.computed.metrics == reference["metrics"]
    fs, base = cachefs.filesystem(url)
    assert len(fs.find(f"{base}/cache")) == len(list((tmp_path / "folder" / "cache").rglob("*.npz")))
