"""The 2026 reference testbed's file layout: a folder of three JSONL files, already split.

    train_label.jsonl    the weak supervisor's ground-truth training data  -> weak_train
    train_unlabel.jsonl  the student's data (its labels train the ceiling) -> transfer
    test.jsonl           evaluation                                         -> test

Each row is a preference pair: `prompt` (the question), `first` and `second` (the two answers)
and `label`, "A" when the first answer is the better one and "B" when the second is. An
optional `idx` (what the testbed writes) gives the example id; else the id is a hash of the
row's content. Any folder in this shape is read the same way (`task: path/to/folder` is
shorthand for `task: {name: testbed, path: path/to/folder}`).

An example's text is the testbed's prompt less its last line, "Question: ...\\nAnswer A: ...\\n
Answer B: ...", and its label is the index of the better answer in the label words (A, B):
label 1 means answer B. The files fix the split of every example (`Example.split`), so
`splits.*` sizes and `splits.seed` do not apply to this task; `max_examples` keeps the first N
rows of each file, for a quick run. Examples on the same question share a group within a file.

The files must carry labels: the testbed's stripped `data/` copy (made by its prepare script for
agents that must not see ground truth) has none; point at its `labeled_data/<name>` folder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..errors import W2SError
from ..options import PositiveInt
from . import TASKS, Example, TaskSpec, dedupe, text_id
from .files import key_cell, read_records, shown, text_cell

FILES = {"train_label": "weak_train", "train_unlabel": "transfer", "test": "test"}
FIELDS = ("prompt", "first", "second", "label")
LABELS = ("A", "B")  # label words, in label order: label 0 = A is better, 1 = B is better
# How the testbed asks its models; the label word comes next (after one space).
INSTRUCTION = ""
TEMPLATE = "Question: {prompt}\nAnswer A: {first}\nAnswer B: {second}"


def is_testbed_folder(name: str) -> bool:
    """Whether `name` is a folder holding any of the testbed's files (a folder with only some
    of them is one too, so that loading it names the file that is missing)."""
    p = Path(name).expanduser()
    return p.is_dir() and any((p / f"{stem}.jsonl").is_file() for stem in FILES)


def parse_ab(value: object, where: str) -> int:
    if isinstance(value, str) and value.strip().upper() in LABELS:
        return LABELS.index(value.strip().upper())
    raise W2SError(f"{where}: label {shown(value)} is not A or B (A: the first answer is "
                   "better, B: the second)")


def read_split(folder: Path, stem: str, max_examples: Optional[int]) -> list[Example]:
    p = folder / f"{stem}.jsonl"
    if not p.is_file():
        have = sorted(x.name for x in folder.glob("*.jsonl")) or ["no .jsonl files"]
        raise W2SError(f"testbed folder {str(folder)!r} has no {stem}.jsonl (has: "
                       f"{', '.join(have)}); it needs {', '.join(f'{s}.jsonl' for s in FILES)}")
    rows = read_records(p, ", ".join(repr(f) for f in FIELDS))
    if max_examples is not None:
        rows = rows[:max_examples]
    out = []
    for n, r in enumerate(rows, 1):
        where = f"data file {str(p)!r} row {n}"
        missing = [f for f in FIELDS if r.get(f) is None or r.get(f) == ""]
        if missing:
            hint = (" (the testbed's label-stripped data/ copy has no labels; use its "
                    "labeled_data/ folder)" if missing == ["label"] else "")
            raise W2SError(f"{where} lacks {', '.join(map(repr, missing))}; each row needs "
                           f"{', '.join(map(repr, FIELDS))}{hint}")
        prompt, first, second = (text_cell(r, f, where) or "" for f in FIELDS[:3])
        label = parse_ab(r["label"], where)
        idx = key_cell(r, "idx", where)
        eid = f"{stem}:{idx}" if idx is not None else text_id(stem, prompt, first, second)
        text = TEMPLATE.format(prompt=prompt, first=first, second=second)
        out.append(Example(eid, text, label, text_id(stem, prompt), split=FILES[stem]))
    # without idx, a repeated pair would repeat its id: keep one (drop conflicting ones)
    return out if rows and "idx" in rows[0] else dedupe(out)


def load_testbed(*, path: str, max_examples: Optional[PositiveInt] = None) -> list[Example]:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "not found"
        where = "" if folder.is_absolute() or folder.exists() else f" (relative to {Path.cwd()})"
        raise W2SError(f"testbed folder {str(folder)!r} {what}{where}; give the folder holding "
                       f"{', '.join(f'{s}.jsonl' for s in FILES)}")
    return [e for stem in FILES for e in read_split(folder, stem, max_examples)]


TASKS.add("testbed", TaskSpec(
    load_testbed, "file",
    "a folder in the 2026 testbed layout: train_label/train_unlabel/test.jsonl preference pairs "
    "(prompt, first, second, label A/B); the files fix the splits",
    tags=("pairwise", "preference"), prompt=(INSTRUCTION, LABELS)))
