"""`w2s sweep`: suite expansion and validation, skipping finished cells, kill -9 resume, Ray.

The runs use the smoke suite (MultiEmo, MiniLM-L6 -> MiniLM-L6, 100 / 100 / 200 examples,
2 methods x 2 seeds): about 25 s from an empty store on 2 CPU cores."""
from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from w2sgen import sweep
from w2sgen.cli import main
from w2sgen.errors import W2SError
from w2sgen.losses import LOSSES
from w2sgen.owner import process_owner
from w2sgen.store import Store
from w2sgen.validate import load_config

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "suites" / "smoke.yaml"
OFFLINE = ROOT / "suites" / "offline.yaml"


def write_suite(tmp_path: Path, grid: dict, base=None, name: str = "suite.yaml") -> Path:
    base = base if base is not None else yaml.safe_load(SMOKE.read_text())["base"]
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"base": base, "grid": grid}))
    return path


def smoke_grid(**extra) -> dict:
    return {**yaml.safe_load(SMOKE.read_text())["grid"], **extra}


# ---------------------------------------------------------------- expansion and validation


def test_smoke_suite_cells(tmp_path):
    suite = sweep.load_suite(SMOKE, str(tmp_path / "s"))
    assert len(suite.cells) == 4 and suite.merged == 0
    assert len({c.hash for c in suite.cells}) == 4
    assert [c.label for c in suite.cells] == [
        "rt_sentiment | minilm-l6->minilm-l6 | naive | seed 0",
        "rt_sentiment | minilm-l6->minilm-l6 | naive | seed 1",
        "rt_sentiment | minilm-l6->minilm-l6 | logconf | seed 0",
        "rt_sentiment | minilm-l6->minilm-l6 | logconf | seed 1"]
    for c in suite.cells:
        cfg = c.cfg
        assert (cfg.weak_model, cfg.strong_model) == ("minilm-l6", "minilm-l6")
        assert (cfg.splits.weak_train, cfg.splits.transfer, cfg.splits.test) == (100, 100, 200)
        assert cfg.store == str(tmp_path / "s")
    assert {c.cfg.loss.name for c in suite.cells} == {"xent", "logconf"}
    # same experiment, same hash as `w2s run` with the same keys: finished runs are shared
    same = load_config(None, ["task=rt_sentiment", "weak_model=minilm-l6", "strong_model=minilm-l6", "loss=logconf",
                              "splits.weak_train=100", "splits.transfer=100", "splits.test=200",
                              "eval.bootstrap=200", "seed=1"])
    assert same.hash() == suite.cells[3].hash


def load_or_skip_optional(path, store):
    """The suite, or a skip naming the optional asset it needs (BIG-bench) when not installed."""
    from w2sgen.fetch import ASSETS

    try:
        return sweep.load_suite(path, store)
    except W2SError as e:
        optional = [n for n in ASSETS if ASSETS.get(n).optional and f"w2s pull {n}" in str(e)]
        if optional:
            pytest.skip(f"{Path(path).name} needs the optional asset {optional[0]} (not installed)")
        raise


# The `w2s run configs/default.yaml KEY=VALUE...` runs that wrote docs/results.md and
# docs/refinement.md (as shell loops, before the suites replaced them): each suite must have
# exactly their config hashes, so a store holding those runs is reused as is.
GAP_TASKS = ["task=multiemo_pos_neg",
             "task=epistemic_reasoning splits.weak_train=0.3 splits.transfer=0.3 splits.test=0.4",
             "task=sports_understanding splits.weak_train=0.3 splits.transfer=0.3 splits.test=0.4"]
SMALL = "splits.weak_train=0.3 splits.transfer=0.3 splits.test=0.4"
METHOD_VARIANTS = [
    "method=naive", "loss=logconf", "loss=logconf loss.alpha_max=0.5",
    "loss=logconf loss.balance=logodds", "loss=product", "loss=window", "loss=entropy",
    "loss=reverse_ce", "loss=reverse_ce loss.kl=true", "method=bootstrap method.ladder=[smollm2-135m]",
    "method=relabel method.probe=knn", "method=relabel method.probe=logistic",
    "method=filter method.probe=knn", "method=filter method.probe=logistic", "method=weak_ensemble",
    "method=generative_pretrain method.max_examples=1000", "method=gt_early_stop"]
REFINE = "method=icl_refine method.lm=smollm2-135m"
SCRIPT_RUNS = {
    "offline": [f"{t} {v} seed={s}" for s in (0, 1, 2) for t in GAP_TASKS for v in METHOD_VARIANTS],
    "refinement": [f"{t} {v} seed={s}" for s in (0, 1, 2) for t in GAP_TASKS for v in (
        "method=naive", f"{REFINE} method.k=4",
        f"{REFINE} method.k=8 method.batch=fixed method.balance=true")],
    "refinement-k": [f"splits.transfer=500 {REFINE} method.k={k} {b} method.eval_size=0"
                     for k in (0, 1, 2, 4, 8, 16)
                     for b in ("method.batch=loo", "method.batch=fixed method.balance=true")],
    "offline-tasks": [f"task={t}" for t in ("multiemo_pos_neg", "fever", "elementary_math_qa")]
    + [f"task={t} {SMALL}" for t in ("sports_understanding", "strategyqa", "winowhy",
                                     "epistemic_reasoning", "social_iqa")],
}


@pytest.mark.parametrize("name, n", [("offline", 3 * 17 * 3), ("refinement", 3 * 3 * 3),
                                     ("refinement-k", 6 * 2), ("offline-tasks", 8)])
def test_suites_have_the_hashes_of_the_runs_they_replace(tmp_path, name, n):
    suite = load_or_skip_optional(ROOT / "suites" / f"{name}.yaml", str(tmp_path))
    assert len(suite.cells) == len(SCRIPT_RUNS[name]) == n and suite.merged == 0
    expected = {load_config(ROOT / "configs" / "default.yaml", keys.split()).hash()
                for keys in SCRIPT_RUNS[name]}
    assert len(expected) == n
    assert {c.hash for c in suite.cells} == expected


def test_extra_axes_components_and_repeats(tmp_path):
    base = {"method": {"name": "filter", "keep": 0.5}, "splits": {"weak_train": 100, "transfer": 100}}
    path = write_suite(tmp_path, {
        "task": ["rt_sentiment", {"task": "nyt_sentiment", "splits": {"test": 0.4}}],
        "methods": [{"name": "knn", "method": {"name": "relabel", "probe": "knn"}},
                    {"name": "keep", "method.keep": 0.25},
                    {"name": "keep_again", "method": {"keep": 0.25}}],  # the same experiment
        "seeds": [0, 1],
        "train.epochs": [3, 5]}, base=base)
    suite = sweep.load_suite(path, str(tmp_path / "s"))
    assert len(suite.cells) == 2 * 2 * 2 * 2 and suite.merged == 2 * 2 * 2
    knn = next(c.cfg for c in suite.cells if "knn" in c.label)
    # replaced whole (no `keep` of the base); probe=knn is relabel's default, so canonically absent
    assert knn.method.name == "relabel" and knn.method.options == {}
    keep = next(c.cfg for c in suite.cells if "| keep |" in c.label)
    assert keep.method.name == "filter" and keep.method.options == {"keep": 0.25}  # merged
    nyt = next(c.cfg for c in suite.cells if c.label.startswith("nyt_sentiment"))
    assert (nyt.splits.weak_train, nyt.splits.test) == (100, 0.4)  # plain mappings merge
    assert {c.cfg.train.epochs for c in suite.cells} == {3, 5}
    assert any(c.label.endswith("| train.epochs=5") for c in suite.cells)


def test_only_leaves_out_the_cells_a_value_does_not_apply_to(tmp_path):
    pairs = [{"label": "l3->mpnet", "weak_model": "minilm-l3", "strong_model": "mpnet-base"},
             {"label": "l6->mpnet", "weak_model": "minilm-l6", "strong_model": "mpnet-base"}]
    path = write_suite(tmp_path, {
        "pairs": pairs,
        "methods": ["naive", {"name": "bootstrap", "method": {"name": "bootstrap", "ladder": ["minilm-l6"]},
                              "only": {"pairs": ["l3->mpnet"]}},
                    {"name": "logconf", "loss": "logconf", "only": {"seeds": ["seed 1"]}}],
        "seeds": [0, 1]})
    suite = sweep.load_suite(path, str(tmp_path / "s"))
    labels = sorted(c.label for c in suite.cells)
    # naive: 2 pairs x 2 seeds; bootstrap: 1 pair x 2 seeds; logconf: 2 pairs x seed 1
    assert len(labels) == 4 + 2 + 2
    assert [lab for lab in labels if "bootstrap" in lab] == [
        "l3->mpnet | bootstrap | seed 0", "l3->mpnet | bootstrap | seed 1"]
    assert [lab for lab in labels if "logconf" in lab] == [
        "l3->mpnet | logconf | seed 1", "l6->mpnet | logconf | seed 1"]
    boot = next(c.cfg for c in suite.cells if "bootstrap" in c.label)
    assert boot.method.name == "bootstrap" and boot.method.options == {"ladder": ["minilm-l6"]}


def test_order_changes_the_run_order_not_the_cells(tmp_path):
    grid = {"task": ["rt_sentiment", "nyt_sentiment"],
            "pairs": [{"label": "a", "weak_model": "minilm-l3", "strong_model": "minilm-l6"},
                      {"label": "b", "weak_model": "minilm-l6", "strong_model": "mpnet-base"}],
            "seeds": [0, 1]}
    default = write_suite(tmp_path, grid, {}, "default.yaml")
    path = tmp_path / "ordered.yaml"
    path.write_text(yaml.safe_dump({"base": {}, "grid": grid, "order": ["pairs"]}))
    plain = sweep.load_suite(default, str(tmp_path / "s"), check_assets=False)
    ordered = sweep.load_suite(path, str(tmp_path / "s"), check_assets=False)
    assert [c.label for c in plain.cells][:3] == [
        "rt_sentiment | a | seed 0", "rt_sentiment | a | seed 1", "rt_sentiment | b | seed 0"]
    assert [c.label for c in ordered.cells] == [  # pairs slowest, then the default order
        "rt_sentiment | a | seed 0", "rt_sentiment | a | seed 1",
        "nyt_sentiment | a | seed 0", "nyt_sentiment | a | seed 1",
        "rt_sentiment | b | seed 0", "rt_sentiment | b | seed 1",
        "nyt_sentiment | b | seed 0", "nyt_sentiment | b | seed 1"]
    assert sorted(c.hash for c in ordered.cells) == sorted(c.hash for c in plain.cells)
    for order, needle in ((["seeds", "pairs", "seeds"], "order must be a list of distinct grid axes"),
                          ("pairs", "order must be a list"),
                          (["pair"], "order names 'pair', which is no axis of the grid")):
        path.write_text(yaml.safe_dump({"base": {}, "grid": grid, "order": order}))
        with pytest.raises(W2SError, match=needle):
            sweep.load_suite(path, check_assets=False)


def test_ladder_suites_share_splits_and_weak_supervisors():
    """The causal ladder's two parts: the same 72 (task, pair, seed) cells, each part 144 cells,
    every pair's tasks together, the probe part's first pairs the minilm-l3 column."""
    probe = sweep.load_suite(ROOT / "suites" / "ladder-causal-probe.yaml", "/x", check_assets=False)
    lastk = sweep.load_suite(ROOT / "suites" / "ladder-causal-lastk.yaml", "/x", check_assets=False)
    assert len(probe.cells) == len(lastk.cells) == 144
    pairs = list(dict.fromkeys(c.label.split(" | ")[1] for c in probe.cells))
    assert pairs[:3] == ["l3->smollm", "l3->gemma", "l3->qwen0.5b"] and len(pairs) == 8
    assert [c.label.split(" | ")[0] for c in probe.cells[:18:6]] == ["rt", "nyt", "valence"]
    assert max(len(c.label) for c in (*probe.cells, *lastk.cells)) <= 60
    assert {c.cfg.train.mode for c in lastk.cells} == {"last_k"}

    def weak(c):
        w = c.cfg.for_weak()
        return (w.train.mode, w.train.epochs, w.train.batch_size, w.train.weight_decay,
                c.cfg.weak_model, c.cfg.to_dict()["task"], c.cfg.to_dict()["splits"])
    by_key = {(c.label.split(" | ")[0], c.cfg.weak_model, c.cfg.strong_model, c.cfg.seed): weak(c)
              for c in probe.cells}
    for c in lastk.cells:
        assert weak(c) == by_key[(c.label.split(" | ")[0], c.cfg.weak_model, c.cfg.strong_model,
                                  c.cfg.seed)]
    assert min(c.cfg.splits.test for c in probe.cells) >= 1500


@pytest.mark.parametrize("only, needle", [
    ({"pairs": ["nope"]}, "names 'nope', which is no label of grid.pairs"),
    ({"task": ["x"]}, "names axis 'task', which is not another axis"),
    ({"methods": ["naive"]}, "names axis 'methods', which is not another axis"),
    ("l3", "`only` must map an axis to a non-empty list"),
    ({"pairs": []}, "`only` must map an axis to a non-empty list"),
])
def test_bad_only(tmp_path, only, needle):
    path = write_suite(tmp_path, {
        "pairs": [{"label": "a", "weak_model": "minilm-l6", "strong_model": "mpnet-base"}],
        "methods": ["naive", {"name": "lc", "loss": "logconf", "only": only}]})
    with pytest.raises(W2SError, match=needle):
        sweep.load_suite(path)


def test_every_invalid_cell_is_named_before_any_work(tmp_path, capsys):
    path = write_suite(tmp_path, smoke_grid(
        methods=[{"name": "ok", "method": "naive"},
                 {"name": "typo", "method": "relabl"},
                 {"name": "badopt", "loss": {"name": "logconf", "alpha": 1}}],
        **{"train.epoch": [3]}))
    store = tmp_path / "store"
    assert main(["sweep", str(path), "--store", str(store)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("error: suite") and "nothing was run" in err[0]
    text = "\n".join(err)
    assert "unknown key 'train.epoch'" in text  # the extra axis' key fails every cell: one line
    assert len([line for line in err if "train.epoch" in line]) == 1
    assert not store.exists()  # no store, no run, no cache
    path = write_suite(tmp_path, smoke_grid(methods=[{"name": "typo", "method": "relabl"},
                                                     {"name": "badopt", "loss": {"name": "logconf", "alpha": 1}}]))
    with pytest.raises(W2SError) as e:
        sweep.load_suite(path, str(store))
    lines = str(e.value).splitlines()
    assert len(lines) == 3  # the header, then one line per distinct error
    assert "unknown method 'relabl' (did you mean 'relabel'?)" in lines[1] and "typo | seed 0" in lines[1]
    assert "unknown option 'alpha' for loss 'logconf'" in lines[2] and "and 1 more" in lines[2]


@pytest.mark.parametrize("suite, needle", [
    ({"grid": {"seeds": 3}}, "grid.seeds must be a non-empty list"),
    ({"grid": {"methods": [{"loss": "logconf"}]}}, "grid.methods values are method names or mappings"),
    ({"grid": {"pairs": ["minilm-l6"]}}, "grid.pairs values are mappings"),
    ({"grid": {"seeds": [0]}, "bsae": {}}, "unknown key 'bsae'"),
    ({"base": "nowhere.yaml"}, "base config"),
    ({"grid": {"methods": ["naive", {"name": "naive", "loss": "logconf"}]}}, "both labelled 'naive'"),
])
def test_malformed_suites(tmp_path, suite, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(suite))
    with pytest.raises(W2SError, match=needle):
        sweep.load_suite(path)


def test_unknown_executor_and_missing_ray(tmp_path, capsys, monkeypatch):
    assert main(["sweep", str(SMOKE), "--store", str(tmp_path), "--executor", "dask"]) == 2
    assert "unknown executor 'dask'" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(["sweep", str(SMOKE), "--store", str(tmp_path), "--executor", "ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'w2sgen[ray]'" in err[0]
    assert Store(tmp_path).runs() == []
    assert main(["sweep", str(SMOKE), "--store", str(tmp_path), "--workers", "2"]) == 2
    assert "need --executor ray" in capsys.readouterr().err


def test_parallel_order_computes_shared_work_first(tmp_path):
    """Offline suite: the first cell of each task starts alone; the first cell of every other
    seed of that task waits for it; the other methods of a (task, seed) wait for that one."""
    cells = load_or_skip_optional(OFFLINE, str(tmp_path)).cells
    after = sweep.dependencies(cells)
    roots = [i for i, a in after.items() if a is None]
    assert len(roots) == 3 and {cells[i].cfg.task.name for i in roots} == {
        "multiemo_pos_neg", "epistemic_reasoning", "sports_understanding"}
    order = sweep.ordered(cells)
    leaders = {}
    for c in order:
        leaders.setdefault(c.group, c.index)
    for c in cells:
        a = after[c.index]
        if a is None:
            continue
        if leaders[c.group] == c.index:  # a group's first cell waits for its task's first cell
            assert a in roots and cells[a].features_group == c.features_group
            assert cells[a].cfg.seed != c.cfg.seed
        else:  # the group's other cells wait for the group's first
            assert a == leaders[c.group] and (cells[a].cfg.task, cells[a].cfg.seed) == (c.cfg.task, c.cfg.seed)
    runs = [g for i, g in enumerate(c.group for c in order) if i == 0 or order[i - 1].group != g]
    assert len(runs) == len(set(runs)) == 9  # sequentially, each (task, seed) group is contiguous


def test_stale_running_rows_are_marked_killed_and_live_ones_are_not(tmp_path):
    store = Store(tmp_path)
    cfg = load_config(None, ["seed=7"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ids = [store.start_run(cfg) for _ in range(3)]
        with sqlite3.connect(tmp_path / "runs.sqlite") as db:
            db.execute("UPDATE runs SET owner=? WHERE id=?", (process_owner(dead.pid), ids[0]))
            db.execute("UPDATE runs SET owner=? WHERE id=?", (process_owner(live.pid), ids[1]))
            db.execute("UPDATE runs SET owner=NULL WHERE id=?", (ids[2],))  # a row from older code
        assert store.finished_run(cfg.hash()) is None
        assert [r["id"] for r in store.running_elsewhere(cfg.hash())] == [ids[1]]
        assert store.mark_stale() == [ids[0], ids[2]]
        assert {r["id"]: r["status"] for r in store.runs()} == {
            ids[0]: "killed", ids[1]: "running", ids[2]: "killed"}
        assert store.mark_stale() == []
    finally:
        live.kill()
        live.wait()
    assert store.mark_stale() == [ids[1]]


# ---------------------------------------------------------------- real runs (MiniLM, BIG-bench)


def metrics_by_hash(store_root) -> dict[str, dict]:
    return {r["config_hash"]: r["metrics"] for r in Store(store_root).runs("done")}


def cache_files(store_root) -> dict[str, float]:
    return {str(p.relative_to(store_root)): p.stat().st_mtime_ns
            for p in Path(store_root, "cache").rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The smoke suite run once, uninterrupted, in-process."""
    root = tmp_path_factory.mktemp("reference")
    result = sweep.run_sweep(sweep.load_suite(SMOKE, str(root)), progress=False, echo=lambda s: None)
    assert result.ok and result.count("done") == 4
    return root, result


@pytest.mark.slow
def test_sweep_runs_every_cell_and_shares_work(reference):
    root, result = reference
    runs = Store(root).runs()
    assert [r["status"] for r in runs] == ["done"] * 4
    computed = {o.index: o.computed for o in result.outcomes.values()}
    # the first cell computes the features; later cells of the same seed compute only a student
    assert sum(any(s.startswith("features") for s in c) for c in computed.values()) == 1
    assert sorted(map(len, computed.values())) == [1, 1, 3, 6]
    for r in runs:
        assert Store(root).load_arrays(r["id"], "predictions.npz")["student"].shape == (200,)
    text = sweep.report(result)
    assert "median PGR over seeds" in text
    assert re.search(r"^rt_sentiment +logconf ", text, re.M)  # the suite's variant name
    assert "naive + logconf" not in text
    flat = " ".join(text.split())  # the terminal table wraps its notes
    assert "ceiling-weak gap, its interval holding 0 (PGR undefined)" in flat  # minilm-l6 -> minilm-l6
    assert "4 cells: 4 run, 0 already finished, 0 failed" in text


@pytest.mark.slow
def test_second_sweep_computes_nothing(reference, capsys):
    root, _ = reference
    before_runs, before_cache = Store(root).runs(), cache_files(root)
    assert main(["sweep", str(SMOKE), "--store", str(root)]) == 0
    out = capsys.readouterr().out
    assert "4 cells, 4 already finished, 0 to run" in out
    assert Store(root).runs() == before_runs  # no new run row
    assert cache_files(root) == before_cache  # no cache file written or rewritten
    assert main(["sweep", str(SMOKE), "--store", str(root), "--dry-run"]) == 0
    assert capsys.readouterr().out.count("finished: run") == 4


@pytest.mark.slow
def test_adding_a_method_runs_only_its_cells_and_failures_do_not_stop(reference, tmp_path, capsys):
    """A cell that fails while it runs (its student's loss turns NaN; the checks before a
    run cannot see that) is recorded as failed, and the other new cells still run."""
    root = tmp_path / "copy"
    shutil.copytree(reference[0], root)

    def nan_loss(**_):
        return lambda logits, target, progress: logits.sum() * float("nan")

    broken = {"name": "broken", "loss": "nan_for_sweep_test"}
    path = write_suite(tmp_path, smoke_grid(methods=[
        *smoke_grid()["methods"], {"name": "entropy", "loss": "entropy"}, broken]))
    LOSSES.add("nan_for_sweep_test", nan_loss)
    try:
        assert main(["sweep", str(path), "--store", str(root)]) == 1  # a cell failed
    finally:
        LOSSES._items.pop("nan_for_sweep_test")
    out = capsys.readouterr().out
    assert out.count("skipped ") == 0 and "4 already finished, 4 to run" in out
    assert out.count("FAILED   ") == 2 and "loss became nan" in out
    runs = Store(root).runs()
    assert sorted(r["status"] for r in runs[4:]) == ["done", "done", "failed", "failed"]
    for r in runs[4:]:
        if r["status"] == "done":  # features, supervisor and ceiling came from the cache
            assert [k for k, t in r["timings"].items() if not t["cached"]] == ["data", "student", "evaluate"]
    assert "8 cells: 2 run, 4 already finished, 2 failed" in out


def test_a_bad_option_stops_the_suite_before_any_cell_runs(tmp_path, capsys):
    """Option values are checked as the suite loads (issue 13/16): not one failed cell per seed."""
    root = tmp_path / "store"
    path = write_suite(tmp_path, smoke_grid(methods=[
        {"name": "broken", "method": {"name": "bootstrap", "ladder": "smollm2"}}]))
    for extra in ([], ["--dry-run"]):
        assert main(["sweep", str(path), "--store", str(root), *extra]) == 2
        err = capsys.readouterr().err
        assert "method.ladder must be a non-empty list of model names" in err
    assert not (root / "runs.sqlite").exists()


def wait_for(predicate, timeout: float = 120.0) -> None:
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError("the sweep did not get there in time")
        time.sleep(0.05)


def statuses(root: Path) -> list[str]:
    if not (root / "runs.sqlite").is_file():
        return []
    return [r["status"] for r in Store(root).runs()]


@pytest.mark.slow
def test_kill_9_at_any_moment_then_resume(reference, tmp_path):
    """Killed mid-cell (features being written) and again right after a cell finished; the
    third run finishes the suite with one finished run per cell and the reference's numbers."""
    root = tmp_path / "store"
    cmd = [sys.executable, "-m", "w2sgen", "sweep", str(SMOKE), "--store", str(root)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wait_for(lambda: "running" in statuses(root))
    time.sleep(1.5)  # inside the first cell: loading the model or extracting features
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert "done" not in statuses(root)

    second = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wait_for(lambda: "done" in statuses(root))
    second.send_signal(signal.SIGKILL)  # the next cell has started (or is about to)
    second.wait()

    third = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=300)
    assert third.returncode == 0, third.stderr[-2000:]

    runs = Store(root).runs()
    assert "running" not in [r["status"] for r in runs]
    assert [r["status"] for r in runs].count("killed") >= 1
    done = [r["config_hash"] for r in runs if r["status"] == "done"]
    suite = sweep.load_suite(SMOKE, str(root))
    assert sorted(done) == sorted(c.hash for c in suite.cells)  # exactly one finished run each
    assert metrics_by_hash(root) == metrics_by_hash(reference[0])
    for f in Path(root, "cache").rglob("*.npz"):  # every cache entry readable
        with np.load(f, allow_pickle=False) as z:
            assert z.files
    # the same entries as one uninterrupted sweep: no temporary file of the killed sweeps is left
    assert set(cache_files(root)) == set(cache_files(reference[0]))
    assert not list(root.rglob(".tmp-*"))


@pytest.mark.slow
def test_two_sweeps_on_one_store_run_each_cell_once(reference, tmp_path):
    """Two sweeps of one suite started together: each cell is claimed by one of them (the
    other says busy or skips it), and a third sweep finds every cell finished."""
    root = tmp_path / "store"
    Store(root)
    cmd = [sys.executable, "-m", "w2sgen", "sweep", str(SMOKE), "--store", str(root)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    runs = Store(root).runs()
    suite = sweep.load_suite(SMOKE, str(root))
    assert sorted(r["config_hash"] for r in runs) == sorted(c.hash for c in suite.cells)  # one row each
    assert [r["status"] for r in runs] == ["done"] * 4
    assert len({r["owner"] for r in runs}) == 2  # both sweeps did work
    assert sum(o.count("done     ") for o in outs) == 4
    assert metrics_by_hash(root) == metrics_by_hash(reference[0])
    third = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0 and "4 already finished, 0 to run" in third.stdout


@pytest.mark.slow
def test_ray_executor_matches_in_process(reference, tmp_path, capsys):
    pytest.importorskip("ray")
    root = tmp_path / "ray"
    assert main(["sweep", str(SMOKE), "--store", str(root), "--executor", "ray",
                 "--num-cpus", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("done     ") == 4
    runs = Store(root).runs()
    assert [r["status"] for r in runs] == ["done"] * 4
    # computed in Ray workers, recorded by the driver (this process): the only database writer
    assert all(r["owner"] == process_owner() for r in runs)
    assert len(set(re.findall(r" on node ([0-9a-f]{8})", out))) == 1  # the one local node
    assert metrics_by_hash(root) == metrics_by_hash(reference[0])


def test_an_address_where_nothing_answers_is_one_line_at_once(tmp_path, capsys, tiny_bert_dir):
    pytest.importorskip("ray")
    from conftest import sentiment_examples

    data = tmp_path / "toy.csv"
    data.write_text("text,label\n" + "".join(f"{e.text},{e.label}\n" for e in sentiment_examples(400)))
    suite = write_suite(tmp_path, {"seeds": [0, 1]}, base={
        "task": str(data), "weak_model": str(tiny_bert_dir), "strong_model": str(tiny_bert_dir),
        "splits": {"weak_train": 100, "transfer": 100, "test": 200}, "features": {"max_length": 64}})
    t0 = time.perf_counter()
    code = main(["sweep", str(suite), "--store", str(tmp_path / "s"), "--executor", "ray",
                 "--address", "127.0.0.1:1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no Ray cluster answers at '127.0.0.1:1'" in err[0]
    assert time.perf_counter() - t0 < 10
    assert Store(tmp_path / "s").runs() == []
    # something that accepts connections and says nothing (not a Ray head): one line, in 5 s,
    # where Ray would wait for minutes
    import socket

    silent = socket.create_server(("127.0.0.1", 0))
    try:
        t0 = time.perf_counter()
        code = main(["sweep", str(suite), "--store", str(tmp_path / "s"), "--executor", "ray",
                     "--address", f"127.0.0.1:{silent.getsockname()[1]}"])
        err = capsys.readouterr().err.strip().splitlines()
    finally:
        silent.close()
    assert code == 2 and len(err) == 1 and "but it is not a Ray cluster" in err[0], err
    assert time.perf_counter() - t0 < 15
    assert Store(tmp_path / "s").runs() == []


def test_a_worker_cache_the_nodes_do_not_share_is_one_line_before_any_cell(tmp_path, capsys, tiny_bert_dir,
                                                                             monkeypatch):
    """--worker-cache at a URL only the driver reaches (fsspec's in-memory file system is one
    per process, as a bucket a node has no route to): the probe on the local cluster's node does
    not find the driver's mark; one line, exit 2, nothing claimed. A URL whose fsspec package
    is missing is one line before any cluster starts."""
    pytest.importorskip("ray")
    pytest.importorskip("fsspec")
    from conftest import sentiment_examples

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    data = tmp_path / "toy.csv"
    data.write_text("text,label\n" + "".join(f"{e.text},{e.label}\n" for e in sentiment_examples(300)))
    suite = write_suite(tmp_path, {"seeds": [0]}, base={
        "task": str(data), "weak_model": str(tiny_bert_dir), "strong_model": str(tiny_bert_dir),
        "splits": {"weak_train": 60, "transfer": 60, "test": 100}, "features": {"max_length": 64}})
    store = tmp_path / "s"
    code = main(["sweep", str(suite), "--store", str(store), "--executor", "ray", "--num-cpus", "1",
                 "--worker-cache", "memory://w2s-driver-only/cache"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: node ") and ("of the local Ray cluster does not see the cache folder "
                                                  "'memory://w2s-driver-only/cache'") in err[0]
    assert Store(store).runs() == []
    code = main(["sweep", str(suite), "--store", str(store), "--executor", "ray", "--num-cpus", "1",
                 "--worker-cache", "nosuch://bucket/cache"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["error: cannot use the cache URL 'nosuch://bucket/cache': Protocol not "
                                 "known: nosuch; give a folder, or an fsspec URL such as "
                                 "s3://bucket/prefix, gs://bucket/prefix or file:///shared/folder"]


def test_a_worker_that_does_not_see_the_drivers_cache_fails_its_cell_in_one_line(tmp_path, tiny_bert_dir,
                                                                                 monkeypatch):
    """The safety net behind the driver's probe (a node that joins after it): the cell comes back
    failed, naming the folder, and nothing is computed or written."""
    pytest.importorskip("ray")
    from w2sgen.sweep.executors import WorkerSetup, _ray_cell

    monkeypatch.chdir(tmp_path)  # the task changes into the driver's folder: restored after
    cell = sweep.Cell(0, "c", load_config(None, [f"weak_model={tiny_bert_dir}", f"strong_model={tiny_bert_dir}"]))
    handed = _ray_cell(cell, WorkerSetup(str(tmp_path), ".w2s-driver-gone", 1, str(tmp_path), {}), None)
    assert handed.computed is None
    assert handed.error.startswith(f"the cache {tmp_path} is not the driver's on this node")
    assert list(tmp_path.iterdir()) == []
    import ray

    assert not ray.is_initialized()  # called outside a worker, it started no Ray
