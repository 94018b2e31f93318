"""BIG-bench tasks (an optional asset): conversion rules on a fixture archive in the sdist's
layout, installed through the fetcher as a user would (`w2s pull bigbench --from FILE`), a task
read from a checkout of the original repository, and the real package's numbers when present."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import tarfile
from collections import Counter

import pytest

from w2sgen.config import Component
from w2sgen.errors import MissingAsset, W2SError
from w2sgen.fetch import ASSETS, File
from w2sgen.fetch_sources import Package, PyPI
from w2sgen.tasks import bigbench, load_task


def add(tf: tarfile.TarFile, folder: str, examples: list[dict]) -> None:
    data = json.dumps({"name": folder, "examples": examples}).encode()
    info = tarfile.TarInfo(bigbench.MEMBER_PREFIX + folder + "/task.json")
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


@pytest.fixture
def fixture_home(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_HOME", str(tmp_path / "home"))
    archive = tmp_path / bigbench.SDIST
    with tarfile.open(archive, "w:gz") as tf:
        emo = [{"input": f"s{i}", "target_scores": {"positive": int(i % 4 == 0), "negative": int(i % 4 == 1),
                                                     "neutral": int(i % 4 == 2), "ambivalent": int(i % 4 == 3)}}
               for i in range(40)]
        emo.append({"input": "s0", "target_scores": {"positive": 1, "negative": 0, "neutral": 0, "ambivalent": 0}})
        emo += [{"input": f"extra-neg{i}", "target_scores": {"positive": 0, "negative": 1, "neutral": 0, "ambivalent": 0}}
                for i in range(6)]
        add(tf, "multiemo/all_sentence_en", emo)
        add(tf, "social_iqa", [{"input": f"q{i}?", "target_scores": {"a": int(i % 3 == 0), "b": int(i % 3 == 1),
                                                                   "c": int(i % 3 == 2)}} for i in range(12)])
        add(tf, "checkmate_in_one", [{"input": f"1. e4 e5 {i}", "target": f"Q{i}#"} for i in range(5)])
        for part in bigbench.HHH_PARTS:
            add(tf, f"hhh_alignment/{part}", [{"input": f"{part} prompt",
                                                "target_scores": {"good": 1, "bad": 0, "worse": 0}}])
        add(tf, "unrelated", [])
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    fake = dataclasses.replace(bigbench.ASSET, files=(File(bigbench.SDIST, 0, digest),), sources=(
        PyPI((Package("bigbench", bigbench.VERSION, digest, sdist=True),)),))
    monkeypatch.setattr(bigbench, "ASSET", fake)
    monkeypatch.setitem(ASSETS._items, "bigbench", fake)
    fake.pull(archive, say=lambda _: None)  # `w2s pull bigbench --from bigbench-1.0.0.tar.gz`
    return tmp_path


def test_multiemo_keeps_positive_vs_negative_deduplicated_and_balanced(fixture_home):
    ex = load_task(Component("multiemo_pos_neg"))
    counts = Counter(e.label for e in ex)
    assert counts == {0: 10, 1: 10}  # 10 positive (s0 repeated once), 16 negative -> 10
    assert len({e.text for e in ex}) == 20
    assert all(e.text.startswith(("s", "extra-neg")) for e in ex)
    assert ex == load_task(Component("multiemo_pos_neg"))  # deterministic
    assert (bigbench.data_dir() / "tasks" / "multiemo/all_sentence_en/task.json").is_file()


def test_multiple_choice_is_binarised_in_question_groups(fixture_home):
    ex = load_task(Component("social_iqa"))
    assert len(ex) == 24 and Counter(e.label for e in ex) == {0: 12, 1: 12}
    groups = Counter(e.group for e in ex)
    assert set(groups.values()) == {2}
    for g in groups:
        pair = [e for e in ex if e.group == g]
        assert {e.label for e in pair} == {0, 1} and pair[0].text == pair[1].text
    other = load_task(Component("social_iqa", {"seed": 1}))
    assert [e.text_pair for e in other] != [e.text_pair for e in ex]


def test_checkmate_and_hhh(fixture_home):
    chess = load_task(Component("checkmate_in_one"))
    assert len(chess) == 10 and sum(e.label for e in chess) == 5
    right = [e for e in chess if e.label == 1]
    assert all(e.text_pair == f"Q{e.text.split()[-1]}#" for e in right)
    hhh = load_task(Component("hhh_alignment", {"seed": 0}))
    assert len(hhh) == 8  # 4 prompts x 2 worse answers
    for e in hhh:
        a = e.text_pair.split("Response A: ")[1].split("\n\n")[0]
        assert e.label == int(a == "good")


def test_missing_package_and_folder(tmp_path, monkeypatch, fixture_home):
    with pytest.raises(Exception, match="has no task folder"):
        load_task(Component("bigbench", {"path": "no/such/task", "positive": "x"}))
    monkeypatch.setenv("W2S_HOME", str(tmp_path / "empty"))
    with pytest.raises(MissingAsset, match="w2s pull bigbench"):
        load_task(Component("fever"))


def test_a_task_from_a_checkout_of_the_repository(tmp_path):
    folder = tmp_path / "BIG-bench" / "bigbench" / "benchmark_tasks" / "toy"
    folder.mkdir(parents=True)
    (folder / "task.json").write_text(json.dumps({"examples": [
        {"input": f"claim {i}", "target_scores": {"true": i % 2, "false": 1 - i % 2}} for i in range(10)]}))
    ex = load_task(Component("bigbench", {"path": str(folder), "positive": "true"}))
    assert len(ex) == 10 and Counter(e.label for e in ex) == {0: 5, 1: 5}
    (folder / "task.json").write_text("{not json")
    with pytest.raises(W2SError, match="is not readable JSON"):
        load_task(Component("bigbench", {"path": str(folder), "positive": "true"}))


def test_a_wrong_file_given_for_bigbench_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_HOME", str(tmp_path / "home"))
    other = tmp_path / bigbench.SDIST
    other.write_bytes(b"not the sdist")
    with pytest.raises(W2SError) as e:
        bigbench.ASSET.pull(other, say=lambda _: None)
    assert "is not the pinned bigbench==1.0.0 (sha256 differs)" in str(e.value)
    assert not bigbench.installed()


@pytest.mark.skipif(not bigbench.installed(), reason="needs the optional asset bigbench (its sdist "
                    "is gone from the package index: `w2s pull bigbench --from bigbench-1.0.0.tar.gz`)")
def test_real_offline_tasks_sizes_and_balance():
    expected = {"multiemo_pos_neg": 30468, "fever": 6518, "sports_understanding": 980,
                "strategyqa": 2140, "winowhy": 2530, "epistemic_reasoning": 1482,
                "social_iqa": 3860, "elementary_math_qa": 15376}
    for name, n in expected.items():
        ex = load_task(Component(name))
        counts = Counter(e.label for e in ex)
        assert len(ex) == n and counts[0] == counts[1], name
