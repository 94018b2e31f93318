"""Examples held in memory (a list, a pandas DataFrame, a Hugging Face `datasets.Dataset`) as a
task: `w2sgen.run(examples=...)` registers them here under a content hash of the examples, and
the run's config names the task `{name: examples, key: <hash>, label: <name>}`, so the run's
identity (and every cached step) follows the examples' content, not where they came from.

Records are read as data files' rows are (tasks/files.py): `text` and `label` columns, optional
`id`, `group`, `text_pair`; labels 0/1, true/false or yes/no. `Example` objects are taken as they
are. The registry lives as long as the process: a config naming a key that was not registered in
this process (a rerun from the command line) gets one line saying how to register it.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from typing import Annotated, Any, Optional

from ..errors import W2SError
from ..options import NonEmpty
from . import TASKS, Example, TaskSpec, check_examples
from .files import examples_from_rows

NAME = "examples"
_REGISTERED: dict[str, list[Example]] = {}


def examples_key(examples: list[Example]) -> str:
    """The content hash of examples, in order: every field of every example."""
    h = hashlib.sha256()
    for e in examples:
        fields = [e.id, e.text, e.label, e.group, e.text_pair, e.split]
        h.update(json.dumps(fields if e.responses is None else [*fields, list(e.responses)]).encode())
        h.update(b"\x1e")
    return h.hexdigest()[:16]


def _plain(value: Any) -> Any:
    """A DataFrame / Arrow cell as plain Python: NaN and None as None, numpy scalars as theirs."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        try:
            value = value.item()
        except (ValueError, TypeError):
            pass
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def records(data: Any) -> tuple[list[Any], str]:
    """The records of `data` and what to call it in errors: a pandas DataFrame, a Hugging Face
    Dataset, or an iterable of mappings / Examples."""
    if hasattr(data, "column_names") and hasattr(data, "to_list"):  # datasets.Dataset
        return [{k: _plain(v) for k, v in r.items()} for r in data.to_list()], "Dataset"
    if hasattr(data, "columns") and hasattr(data, "to_dict"):  # pandas.DataFrame
        return [{str(k): _plain(v) for k, v in r.items()} for r in data.to_dict("records")], "DataFrame"
    if isinstance(data, (str, bytes, dict)) or not isinstance(data, Iterable):
        raise W2SError(f"examples must be a list of records ({{'text': ..., 'label': 0 or 1}}) or "
                       f"Examples, a pandas DataFrame or a datasets.Dataset, got {type(data).__name__}")
    return list(data), "examples"


def to_examples(data: Any, text_column: str = "text", label_column: str = "label",
                pair_column: Optional[str] = None) -> list[Example]:
    """In-memory data as checked examples (see the module's docstring)."""
    rows, what = records(data)
    if not rows:
        raise W2SError(f"{what}: no examples given")
    if all(isinstance(r, Example) for r in rows):
        out = list(rows)
    else:
        for n, r in enumerate(rows, 1):
            if not isinstance(r, dict):
                raise W2SError(f"{what} row {n} must be a record with {text_column!r} and "
                               f"{label_column!r} (or an Example), got {type(r).__name__}")
        need = [c for c in (text_column, label_column) if c not in rows[0]]
        if need:
            raise W2SError(f"{what} lack(s) column(s) {', '.join(need)} (has: "
                           f"{', '.join(sorted(map(str, rows[0]))) or 'none'}); name yours with "
                           "text_column=... label_column=...")
        pair = pair_column or ("text_pair" if "text_pair" in rows[0] else None)
        out = examples_from_rows(rows, what, NAME, text_column, label_column, pair)
    check_examples(out, NAME)
    return out


def register(examples: list[Example]) -> str:
    """Keep `examples` for this process's runs; returns their key (content hash)."""
    key = examples_key(examples)
    _REGISTERED[key] = examples
    return key


def load_examples(*, key: Annotated[str, NonEmpty()], label: str = NAME) -> list[Example]:
    """The examples registered under `key` (`label`: the name reports show for them)."""
    if key not in _REGISTERED:
        raise W2SError(f"task {NAME!r}: no examples with key {key!r} in this process; in-memory "
                       "examples are given to w2sgen.run(examples=...) in the same Python process "
                       "(from the command line, save them as a .csv or .jsonl file and use task=FILE)")
    return _REGISTERED[key]


TASKS.add(NAME, TaskSpec(load_examples, "memory", "examples passed to w2sgen.run(examples=...): a list, "
                         "a pandas DataFrame or a datasets.Dataset"))
