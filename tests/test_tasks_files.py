"""User data files (CSV, JSONL, JSON) loaded as tasks, and their error messages."""
from __future__ import annotations

import json

import pytest

from w2sgen.config import Component
from w2sgen.errors import W2SError
from w2sgen.tasks import load_task


def csv_file(tmp_path, text, name="data.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def jsonl_file(tmp_path, rows, name="data.jsonl"):
    p = tmp_path / name
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(p)


def load(path, **options):
    return load_task(Component("file", {"path": path, **options}))


def error(path, **options) -> str:
    with pytest.raises(W2SError) as e:
        load(path, **options)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_csv_basic_and_shorthand(tmp_path):
    path = csv_file(tmp_path, "text,label\ngood film,1\nbad film,0\n\"a, quoted\",1\n")
    ex = load(path)
    assert [(e.text, e.label) for e in ex] == [("good film", 1), ("bad film", 0),
                                               ("a, quoted", 1)]
    assert all(e.text_pair is None for e in ex)
    assert len({e.id for e in ex}) == 3 and all(e.id.startswith("file:") for e in ex)
    assert all(e.group == e.id for e in ex)  # no group column: each row is its own group
    assert load_task(Component(path)) == ex  # `task: data.csv` shorthand
    assert load(path) == ex  # content-hash ids are stable


@pytest.mark.parametrize("pos,neg", [("1", "0"), ("true", "false"), ("yes", "no"),
                                     ("True", "FALSE"), (" Yes ", "No"), ("1.0", "0.0")])
def test_csv_label_forms(tmp_path, pos, neg):
    path = csv_file(tmp_path, f"text,label\na,{pos}\nb,{neg}\nc,{pos}\n")
    assert [e.label for e in load(path)] == [1, 0, 1]


def test_jsonl_label_forms_and_optional_columns(tmp_path):
    rows = [{"id": 7, "text": "q1", "text_pair": "cand a", "group": "q1", "label": True},
            {"id": "x8", "text": "q1", "text_pair": "cand b", "group": "q1", "label": False},
            {"text": "q2", "label": 1},
            {"text": "q3", "label": "no"},
            {"text": "q4", "label": 0.0}]
    ex = load(jsonl_file(tmp_path, rows))
    assert [e.label for e in ex] == [1, 0, 1, 0, 0]
    assert [e.id for e in ex[:2]] == ["7", "x8"]
    assert [e.group for e in ex[:2]] == ["q1", "q1"]
    assert [e.text_pair for e in ex] == ["cand a", "cand b", None, None, None]
    assert ex[2].group == ex[2].id and ex[2].id.startswith("file:")


def test_csv_optional_columns(tmp_path):
    path = csv_file(tmp_path, "id,text,text_pair,group,label\n"
                              "a,Is it?,yes it is,g1,1\nb,Is it?,no,g1,0\nc,Other,,,0\n")
    ex = load(path)
    assert [e.id for e in ex] == ["a", "b", "c"]
    assert [e.group for e in ex] == ["g1", "g1", "c"]  # empty group falls back to the id
    assert [e.text_pair for e in ex[:2]] == ["yes it is", "no"]


def test_custom_columns(tmp_path):
    path = csv_file(tmp_path, "sentence,answer,gold\nA,x,yes\nB,y,no\n")
    ex = load(path, text_column="sentence", label_column="gold", pair_column="answer")
    assert [(e.text, e.text_pair, e.label) for e in ex] == [("A", "x", 1), ("B", "y", 0)]


def test_json_list_and_examples_key(tmp_path):
    rows = [{"text": "a", "label": 1}, {"text": "b", "label": 0}]
    (tmp_path / "l.json").write_text(json.dumps(rows))
    (tmp_path / "d.json").write_text(json.dumps({"examples": rows}))
    assert load(str(tmp_path / "l.json")) == load(str(tmp_path / "d.json"))
    assert [e.label for e in load(str(tmp_path / "l.json"))] == [1, 0]


def test_utf8_bom_is_ignored(tmp_path):
    # spreadsheet programs save CSV with a byte-order mark before the first column name
    p = tmp_path / "excel.csv"
    p.write_bytes("text,label\nnaïve,1\nb,0\n".encode("utf-8-sig"))
    assert [(e.text, e.label) for e in load(str(p))] == [("naïve", 1), ("b", 0)]
    q = tmp_path / "bom.jsonl"
    q.write_bytes('{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n'.encode("utf-8-sig"))
    assert [e.label for e in load(str(q))] == [1, 0]


# ------------------------------------------------------------------------------ errors


def test_missing_column(tmp_path):
    msg = error(csv_file(tmp_path, "sentence,label\na,1\nb,0\n"))
    assert "lacks column(s) text" in msg and "has: label, sentence" in msg
    assert "needs 'text' and 'label'" in msg
    msg = error(csv_file(tmp_path, "text,gold\na,1\n", "g.csv"))
    assert "lacks column(s) label" in msg


def test_one_class_only(tmp_path):
    msg = error(csv_file(tmp_path, "text,label\na,1\nb,yes\nc,true\n"))
    assert "only class 1" in msg and "3 examples" in msg and "both classes" in msg


def test_non_binary_label(tmp_path):
    msg = error(csv_file(tmp_path, "text,label\na,1\nb,2\n"))
    assert "row 2" in msg and "label '2' is not binary" in msg and "0/1" in msg
    msg = error(jsonl_file(tmp_path, [{"text": "a", "label": 1}, {"text": "b", "label": None}]))
    assert "row 2" in msg and "not binary" in msg


def test_invalid_json_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "a", "label": 1}\n\n{"text": "b", "label": 0\n')
    msg = error(str(p))
    assert "line 3" in msg and "not valid JSON" in msg


def test_invalid_json_file(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('[{"text": "a", "label": 1},')
    assert "not valid JSON" in error(str(p))
    p.write_text('{"text": "a"}')
    assert "list of records" in error(str(p))


@pytest.mark.parametrize("name,content", [("e.csv", ""), ("h.csv", "text,label\n"),
                                          ("e.jsonl", "\n\n"), ("e.json", "[]")])
def test_empty_file(tmp_path, name, content):
    p = tmp_path / name
    p.write_text(content)
    assert "has no rows" in error(str(p))


def test_missing_text_value(tmp_path):
    msg = error(csv_file(tmp_path, "text,label\na,1\n,0\n"))
    assert "row 2" in msg and "no 'text'" in msg


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.csv")
    assert "not found" in error(path) and "nope.csv" in error(path)
    with pytest.raises(W2SError, match="not found"):
        load_task(Component(path))


def test_unsupported_suffix(tmp_path):
    p = tmp_path / "data.txt"
    p.write_text("text,label\na,1\n")
    assert ".csv, .jsonl or .json" in error(str(p))


def test_duplicate_ids(tmp_path):
    msg = error(csv_file(tmp_path, "id,text,label\nx,a,1\ny,b,0\nx,c,0\n"))
    assert "duplicate example ids" in msg and "'x'" in msg


def test_a_folder_as_task_names_both_ways_to_give_data(tmp_path):
    """A folder is no data file; the error names a file inside it and the testbed's layout
    (a folder holding any of its files is read as the testbed task: tests/test_testbed.py)."""
    with pytest.raises(W2SError, match=r"is a folder; give a data file inside it .*train_label"
                                       r".jsonl, train_unlabel.jsonl, test.jsonl") as e:
        load_task(Component(str(tmp_path)))
    assert "\n" not in str(e.value)
    (tmp_path / "notes.jsonl").write_text('{"text": "a", "label": 1}\n')
    with pytest.raises(W2SError, match="is a folder"):  # other .jsonl files do not make it one
        load_task(Component(str(tmp_path)))
