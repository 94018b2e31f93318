"""Hugging Face hub tasks (online), read with `datasets.load_dataset`.

Every task takes `split`, `seed`, `max_examples` (the first N rows, before conversion) and
`source`: a local copy in the hub's schema (.jsonl/.json/.csv/.parquet, read as its only
split, so `split` is ignored), which is how these tasks run offline.
"""
from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Optional

from ..errors import W2SError
from . import TASKS, Example, TaskSpec, binarize_choices, pairwise_example, text_id
from .files import parse_label

FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
ASSISTANT = "\n\nAssistant:"

Rows = Iterable[dict[str, Any]]


def _reason(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0][:160]}" if lines else type(e).__name__


def _rows(hub_id: str, split: str, source: Optional[str], max_examples: Optional[int],
          fields: tuple[str, ...], config: str | None = None) -> Rows:
    """The dataset's rows (the first `max_examples`), from the hub (its `config`, when the
    dataset has several) or a local `source` file."""
    try:
        import datasets
    except ImportError:
        raise W2SError("the Hugging Face tasks need the `datasets` package; "
                       "run `pip install datasets`") from None
    if max_examples is not None and (not isinstance(max_examples, int) or max_examples < 1):
        raise W2SError(f"task.max_examples must be a positive integer, got {max_examples!r}")
    if source is not None:
        path = Path(str(source)).expanduser()
        where = repr(str(path))
        fmt = FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise W2SError(f"task.source {where}: use a {'/'.join(FORMATS)} file")
        if not path.is_file():
            raise W2SError(f"task.source {where} not found")
        try:
            ds = datasets.load_dataset(fmt, data_files=str(path), split="train")
        except Exception as e:
            raise W2SError(f"could not read task.source {where} ({_reason(e)})") from None
    else:
        where = hub_id if config is None else f"{hub_id} ({config})"
        try:
            ds = datasets.load_dataset(hub_id, config, split=split)
        except Exception as e:
            if isinstance(e, (ValueError, KeyError)) and "split" in str(e).lower():
                raise W2SError(f"{hub_id} has no split {split!r} ({_reason(e)}); "
                               "set task.split=...") from None
            raise W2SError(f"could not load {hub_id} from the Hugging Face hub ({_reason(e)}); "
                           "you are probably offline: pass task.source=<local file> or use an "
                           "offline task (w2s tasks)") from None
    missing = [f for f in fields if f not in ds.column_names]
    if missing:
        raise W2SError(f"{where} lacks field(s) {', '.join(missing)} (has: "
                       f"{', '.join(ds.column_names) or 'none'}); {hub_id} rows need "
                       f"{', '.join(fields)}")
    if max_examples is not None and max_examples < len(ds):
        ds = ds.select(range(max_examples))
    return ds


def _s(value: Any) -> str:
    """A text field; empty cells (None in CSV/parquet) read as ''."""
    return "" if value is None else str(value).strip()


def _unique(per_row: Iterable[list[Example]]) -> list[Example]:
    """The rows' examples in order, dropping a row whose ids were already seen (a repeated
    text or question), so ids stay unique and question pairs stay whole."""
    out: list[Example] = []
    seen: set[str] = set()
    for exs in per_row:
        ids = {e.id for e in exs}
        if not ids & seen:
            seen |= ids
            out += exs
    return out


def _single(name: str, text: str, label: int, pair: Optional[str] = None) -> list[Example]:
    """One example, its own group, id from its content."""
    eid = text_id(name, text, pair or "")
    return [Example(eid, text, label, eid, pair)]


# -------------------------------------------------------------- row -> examples converters


def _sciq(rows: Rows, rng: random.Random) -> list[Example]:
    return _unique(binarize_choices(
        "sciq", _s(r["question"]),
        [_s(r[k]) for k in ("correct_answer", "distractor1", "distractor2", "distractor3")],
        0, rng) for r in rows)


def _cosmos_qa(rows: Rows, rng: random.Random) -> list[Example]:
    # the hub's test split is unlabelled (label -1): such rows are skipped
    return _unique(binarize_choices(
        "cosmos_qa", f"{_s(r['context'])}\n{_s(r['question'])}",
        [_s(r[f"answer{i}"]) for i in range(4)], int(r["label"]), rng,
        qid=f"cosmos_qa:{r['id']}" if _s(r.get("id")) else None)
        for r in rows if r["label"] is not None and 0 <= int(r["label"]) < 4)


def _boolq(rows: Rows, rng: random.Random) -> list[Example]:
    return _unique(_single("boolq", _s(r["passage"]), parse_label(r["answer"], "boolq answer"),
                           _s(r["question"])) for r in rows)


def _amazon_polarity(rows: Rows, rng: random.Random) -> list[Example]:
    def text(r: dict[str, Any]) -> str:
        return f"{_s(r['title'])}. {_s(r['content'])}" if _s(r["title"]) else _s(r["content"])

    return _unique(_single("amazon_polarity", text(r),
                           parse_label(r["label"], "amazon_polarity label")) for r in rows)


def split_dialogue(chosen: str, rejected: str) -> Optional[tuple[str, str, str]]:
    """(prompt, chosen reply, rejected reply): the dialogue before the last Assistant turn the
    two share, and what each says from there; None when they share no Assistant turn."""
    cut = chosen.rfind(ASSISTANT, 0, len(os.path.commonprefix([chosen, rejected])))
    if cut < 0:
        return None
    start = cut + len(ASSISTANT)
    return chosen[:cut].strip(), chosen[start:].strip(), rejected[start:].strip()


def _anthropic_hh(rows: Rows, rng: random.Random) -> list[Example]:
    """Pairwise: (prompt, A, B) -> is A the chosen reply? Exactly half the pairs (in an order
    drawn with the seed) put the chosen reply first, so the classes balance."""
    split = (split_dialogue(_s(r["chosen"]), _s(r["rejected"])) for r in rows)
    pairs = list(dict.fromkeys(p for p in split if p and p[1] != p[2]))
    firsts = [i % 2 for i in range(len(pairs))]
    rng.shuffle(firsts)
    return _unique([pairwise_example("anthropic_hh", p, *((c, r) if f else (r, c)), f)]
                   for (p, c, r), f in zip(pairs, firsts))


# ----------------------------------------------------------------------- registration


def _task(name: str, hub_id: str, fields: tuple[str, ...],
          convert: Callable[[Rows, random.Random], list[Example]], description: str, *,
          config: str | None = None, split: str = "train") -> None:
    default_split = split

    def load(*, split: str = default_split, seed: int = 0, max_examples: Optional[int] = None,
             source: Optional[str] = None) -> list[Example]:
        return convert(_rows(hub_id, split, source, max_examples, fields, config), random.Random(seed))

    hub = hub_id if config is None else f"{hub_id}, config {config}"
    load.__doc__ = f"{description} (hub: {hub}; offline: task.source=<local copy>)"
    TASKS.add(name, TaskSpec(load, "hf", description, None, ("online",)))


_task("sciq", "allenai/sciq",
      ("question", "correct_answer", "distractor1", "distractor2", "distractor3"), _sciq,
      "SciQ science questions, 4 choices binarised (question, answer) -> correct?")
_task("boolq", "google/boolq", ("question", "answer", "passage"), _boolq,
      "BoolQ: (passage, yes/no question) -> is the answer yes?")
_task("cosmos_qa", "allenai/cosmos_qa",
      ("context", "question", "answer0", "answer1", "answer2", "answer3", "label"), _cosmos_qa,
      "Cosmos QA commonsense reading comprehension, 4 choices binarised")
_task("amazon_polarity", "fancyzhx/amazon_polarity", ("label", "title", "content"),
      _amazon_polarity, "Amazon reviews: positive vs negative")
_task("anthropic_hh", "Anthropic/hh-rlhf", ("chosen", "rejected"), _anthropic_hh,
      "Anthropic HH-RLHF pairs: is response A the preferred one? (reward modelling)")
