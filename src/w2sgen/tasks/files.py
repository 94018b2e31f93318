"""User data files: CSV or JSONL (or a JSON list) with `text` and `label` columns.

Optional columns: `id` (else the row's content hash), `text_pair` (a second segment, e.g. a
candidate answer), `group` (rows sharing a group stay in one split). Labels may be 0/1,
true/false, or yes/no. Every row is checked as it is read: `text` and `text_pair` must be
strings (a JSON NaN, number or object is refused, not stored as its Python spelling), `id` and
`group` strings or integers, and each label binary, so a bad file fails with the row to fix
before anything is recorded.
"""
from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

from ..errors import W2SError
from ..paths import regular_file
from . import TASKS, Example, TaskSpec, dedupe, text_id

TRUE = {"1", "true", "yes", "positive", "pos"}
FALSE = {"0", "false", "no", "negative", "neg"}
SUFFIXES = (".csv", ".jsonl", ".json")
ACCEPTED = ".csv, .jsonl or .json"
# Longest CSV field read (Python's csv module stops at 131,072 characters by default; a long
# document is a valid text: the tokenizer truncates it at features.max_length).
CSV_FIELD_LIMIT = 64 * 2**20


def check_task_name(name: str) -> None:
    """A task name that is no registered task but looks like a data file path (it has a file
    suffix, a folder, or names an existing file): one error naming the suffixes that are read.
    Called for names that are not tasks, before the generic `unknown task` list."""
    p = Path(name).expanduser()
    suffix = p.suffix
    looks_like_path = ("/" in name or "\\" in name or p.exists()
                       or bool(re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix)))
    if not looks_like_path:
        return
    if p.is_dir():
        raise W2SError(f"task {name!r} is a folder; give a data file inside it ({ACCEPTED}), "
                       "a folder in the testbed layout (train_label.jsonl, train_unlabel.jsonl, "
                       "test.jsonl), or a task name from `w2s tasks`")
    what = f"has suffix {suffix!r}" if suffix else "has no suffix"
    raise W2SError(f"task {name!r} is not a task name, and as a data file it {what}: w2s reads "
                   f"{ACCEPTED} files (rename or convert it; `w2s tasks` lists the task names)")


@contextmanager
def _csv_field_limit() -> Iterator[None]:
    old = csv.field_size_limit()
    csv.field_size_limit(max(old, CSV_FIELD_LIMIT))
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _read_csv(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="", encoding="utf-8-sig") as f, _csv_field_limit():
        reader = csv.DictReader(f)
        try:
            rows = list(reader)
        except csv.Error as e:
            raise W2SError(f"data file {str(path)!r} line {reader.line_num} is not valid CSV: "
                           f"{e} (fields may hold up to {CSV_FIELD_LIMIT // 2**20} MiB)") from None
        header = list(reader.fieldnames or [])  # read while the file is open (empty file: none)
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:  # DictReader keeps the last of two same-named columns: a silent choice
        raise W2SError(f"data file {str(path)!r} has column(s) {', '.join(map(repr, twice))} more "
                       "than once in its header; rename or drop the extra column")
    for n, row in enumerate(rows, 1):
        if None in row:  # more fields than the header names
            raise W2SError(f"data file {str(path)!r} row {n} has {len(header) + len(row[None])} "
                           f"fields, its header {len(header)}; quote fields that hold commas")
    return rows


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (json keeps the last one silently)."""
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise DuplicateKey(twice[0])
    return dict(pairs)


class DuplicateKey(ValueError):
    pass


def read_rows(path: Path) -> list[Any]:
    if path.is_dir():
        raise W2SError(f"data file {str(path)!r} is a folder, not a file; give a {ACCEPTED} "
                       "file")
    if path.exists() and not path.is_file():
        raise W2SError(f"data file {str(path)!r} is not a regular file (a device, pipe or "
                       f"socket); give a {ACCEPTED} file")
    if not path.is_file():  # missing, a broken or looping link: regular_file says which
        where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
        regular_file(path, "data file", f"not found{where}")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise W2SError(f"data file {str(path)!r} has suffix {path.suffix!r}: w2s reads {ACCEPTED} "
                       "files (rename or convert it)")
    try:
        if suffix == ".csv":
            return _read_csv(path)
        if suffix == ".jsonl":
            rows = []
            for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line, object_pairs_hook=_unique_keys))
                    except json.JSONDecodeError as e:
                        raise W2SError(f"data file {str(path)!r} line {n} is not valid JSON: "
                                       f"{e.msg}") from None
                    except DuplicateKey as e:
                        raise W2SError(f"data file {str(path)!r} line {n} gives key {e.args[0]!r} "
                                       "twice; keep one") from None
            return rows
        try:
            rows = json.loads(path.read_text(encoding="utf-8-sig"), object_pairs_hook=_unique_keys)
        except DuplicateKey as e:
            raise W2SError(f"data file {str(path)!r} gives key {e.args[0]!r} twice in one record; "
                           "keep one") from None
        if isinstance(rows, dict) and "examples" in rows:
            rows = rows["examples"]
        if not isinstance(rows, list):
            raise W2SError(f"data file {str(path)!r} must hold a list of records (or "
                           '{"examples": [...]})')
        return rows
    except UnicodeDecodeError as e:
        raise W2SError(f"data file {str(path)!r} is not UTF-8 text (byte 0x{e.object[e.start]:02x} "
                       f"at offset {e.start}); save it as UTF-8") from None
    except json.JSONDecodeError as e:
        raise W2SError(f"data file {str(path)!r} is not valid JSON: {e.msg} at line {e.lineno}") from None
    except RecursionError:
        raise W2SError(f"data file {str(path)!r} is nested too deeply to read") from None
    except OSError as e:
        raise W2SError(f"cannot read data file {str(path)!r}: {e.strerror or e}") from None


def shown(value: Any, most: int = 60) -> str:
    """A value as the file spells it (JSON), shortened: NaN, {"a": 1}, true."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= most else text[: most - 3] + "..."


def parse_label(value: Any, where: str) -> int:
    s = str(value).strip().lower()
    if s in TRUE or s == "1.0":
        return 1
    if s in FALSE or s == "0.0":
        return 0
    raise W2SError(f"{where}: label {value!r} is not binary (use 0/1, true/false or yes/no)")


def text_cell(r: dict[str, Any], column: str, where: str) -> Optional[str]:
    """A text cell: a string, or None where it is missing, empty or null."""
    v = r.get(column)
    if v is None or v == "":
        return None
    if not isinstance(v, str):
        raise W2SError(f"{where}: {column!r} must be text (a string), got {shown(v)}; fix that "
                       "row or drop it")
    if not any(c.isprintable() and not c.isspace() for c in v):
        raise W2SError(f"{where}: {column!r} holds only spaces or control characters "
                       f"({shown(v)}); fix that row or drop it")
    return v


def key_cell(r: dict[str, Any], column: str, where: str) -> Optional[str]:
    """An `id` or `group` cell: a string or an integer, or missing."""
    v = r.get(column)
    if v is None or v == "":
        return None
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise W2SError(f"{where}: {column!r} must be a string or an integer, got {shown(v)}")
    return str(v)


def read_records(p: Path, fields: str) -> list[dict[str, Any]]:
    """The rows of a data file, each a record (a JSON object or CSV row), at least one;
    `fields` names what a record holds, for the error."""
    rows = read_rows(p)
    if not rows:
        raise W2SError(f"data file {str(p)!r} has no rows")
    for n, r in enumerate(rows, 1):
        if not isinstance(r, dict):
            raise W2SError(f"data file {str(p)!r} row {n} must be a record with {fields}, got "
                           f"{shown(r)}")
    return rows


def load_file(*, path: str, text_column: str = "text", label_column: str = "label",
              pair_column: Optional[str] = None) -> list[Example]:
    p = Path(path).expanduser()
    rows = read_records(p, f"{text_column!r} and {label_column!r}")
    cols = set(rows[0])
    need = [c for c in (text_column, label_column) if c not in cols]
    if need:
        raise W2SError(f"data file {str(p)!r} lacks column(s) {', '.join(need)} "
                       f"(has: {', '.join(sorted(map(str, cols))) or 'none'}); it needs "
                       f"{text_column!r} and {label_column!r} (or name yours with "
                       "task.text_column=... task.label_column=...)")
    if pair_column is not None and pair_column not in cols:
        raise W2SError(f"data file {str(p)!r} has no column {pair_column!r} (task.pair_column)")
    pair_column = pair_column or ("text_pair" if "text_pair" in cols else None)
    return examples_from_rows(rows, f"data file {str(p)!r}", "file", text_column, label_column,
                              pair_column)


def examples_from_rows(rows: list[dict[str, Any]], what: str, prefix: str, text_column: str = "text",
                       label_column: str = "label", pair_column: Optional[str] = None) -> list[Example]:
    """Records (a file's rows, or in-memory ones) as examples, each checked as it is read; `what`
    names their source in errors ('data file ...'), `prefix` starts the ids made from the text
    where a record has no `id`."""
    out = []
    for n, r in enumerate(rows, 1):
        where = f"{what} row {n}"
        text = text_cell(r, text_column, where)
        if text is None:
            raise W2SError(f"{where} has no {text_column!r}")
        pair = text_cell(r, pair_column, where) if pair_column else None
        eid = key_cell(r, "id", where) or text_id(prefix, text, pair or "")
        group = key_cell(r, "group", where) or eid
        out.append(Example(eid, text, parse_label(r.get(label_column), where), group, pair))
    # without an id column, repeated texts would share an id: keep one (drop conflicting ones)
    return out if rows and "id" in rows[0] else dedupe(out)


TASKS.add("file", TaskSpec(load_file, "file",
                           "your CSV/JSONL/JSON file with text,label columns (task: path.csv)"))
