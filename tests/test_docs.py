"""The documentation's runnable examples run as a user types them.

A fenced block right after the line `<!-- runnable -->` in README.md, docs/tutorial.md or
docs/api.md is run here: its `w2s ...` lines in order, in one folder for all three pages (a
clone's `configs/` and `suites/` in it, `data/my.csv` and `./my-model` made for the lines that
name them), through the same entry point as the `w2s` script, on the offline default's models
and data in the data home `make test` pulls them into. The only change to a line is tiny split
sizes appended to `w2s run` (the default's 2000 examples per split take minutes on a CPU; the
suites the pages name are tiny already). The set-up lines are what CI itself runs (`make test`
before the tests, `w2s pull --check` after them: .ci/run): `make` lines are checked with
`make -n`, and the experiment `make demo` runs is run (with the tiny splits). The pages' Python
blocks run in tests/test_api.py.
"""
from __future__ import annotations

import csv
import random
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from conftest import save_llama

from w2sgen import assets, cli

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("README.md", "docs/tutorial.md", "docs/api.md")
MARK = "<!-- runnable -->"
TINY = ["splits.weak_train=40", "splits.transfer=40", "splits.test=80", "eval.bootstrap=100"]
# lines a user types that CI runs itself (.ci/run), or that name this interpreter's environment
SET_UP = {". .venv/bin/activate", "w2s pull --check"}


def runnable(page: str, language: str) -> list[str]:
    """The code of every block of `language` marked runnable on `page`, in order."""
    text = (ROOT / page).read_text()
    return [m.group(1) for m in re.finditer(
        re.escape(MARK) + r"\n```" + language + r"\n(.*?)```", text, re.S)]


def shell_lines(page: str) -> list[str]:
    """Each command of the page's runnable shell blocks, its comment removed."""
    lines = []
    for block in runnable(page, "bash"):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def test_every_page_marks_its_runnable_examples():
    for page in PAGES:
        text = (ROOT / page).read_text()
        assert text.count(MARK) == len(re.findall(re.escape(MARK) + r"\n```(bash|python)\n", text)), \
            f"{page}: {MARK} must stand right before a ```bash or ```python block"
    assert len(shell_lines("README.md")) >= 5 and len(shell_lines("docs/tutorial.md")) >= 8
    assert len(runnable("docs/api.md", "python")) == 4


def write_my_csv(path: Path, n: int = 160) -> None:
    """The user's data the pages name: `text,label` rows of short reviews."""
    rng = random.Random(0)
    good, bad = ["great", "lovely", "moving", "sharp"], ["dull", "awful", "flat", "tedious"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n):
            w.writerow([f"review {i}: a {rng.choice(good if i % 2 else bad)} film with a "
                        f"{rng.choice(good + bad)} ending", i % 2])


@pytest.mark.skipif(not all(assets.installed(n) for n in assets.DEFAULT),
                    reason="the default's assets are not pulled (make test pulls them)")
def test_the_readme_and_tutorial_commands_run_as_written(tmp_path, monkeypatch, capsys):
    for folder in ("configs", "suites"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    write_my_csv(tmp_path / "data" / "my.csv")
    # the user's model: a tiny causal LM with the default features.max_length (128) positions
    save_llama(tmp_path / "my-model", hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, intermediate_size=48, max_position_embeddings=160)
    monkeypatch.chdir(tmp_path)
    ran: list[tuple[str, str]] = []
    for page in PAGES:
        for line in shell_lines(page):
            if line in SET_UP:
                continue
            args = shlex.split(line)
            if args[0] == "make":
                assert len(args) == 2, line
                dry = subprocess.run(["make", "-n", args[1]], cwd=ROOT, capture_output=True,
                                     text=True, timeout=60)
                assert dry.returncode == 0, f"{page}: `{line}`: {dry.stderr}"
                if args[1] == "demo":  # what it runs once set up: the default experiment
                    runs = [shlex.split(m.group(1)) for m in
                            re.finditer(r"^\S*/w2s (run .*)$", dry.stdout, re.M)]
                    assert runs == [["run", "configs/default.yaml"]], dry.stdout
                    assert cli.main([*runs[0], *TINY]) == 0
                    ran.append(("make demo", capsys.readouterr().out))
                continue
            assert args[0] == "w2s", f"{page}: `{line}` is neither w2s, make nor set-up"
            if args[1] == "run":
                args += TINY
            code = cli.main(args[1:])
            out, err = capsys.readouterr()
            assert code == 0, f"{page}: `{line}` exited {code}: {err.strip()[-400:]}"
            ran.append((line, out))
    outputs = dict(ran)
    # every `w2s run` printed its table and a verdict; the README's run is the default's pair
    for line, out in ran:
        if line.startswith(("w2s run", "make demo")):
            assert out.count("run  weak") == 1 and "student" in out, line
            assert re.search(r"\n  (a reliable (gain|loss)|no reliable gain|PGR undefined|the student "
                             r"beats)", out), out
    assert "rt_sentiment [minilm-l6->mpnet-base, probe, naive + logconf, seed 1]" in \
        outputs["w2s run configs/default.yaml loss=logconf seed=1"]
    assert "my.csv [minilm-l6->my-model" in outputs["w2s run task=data/my.csv strong_model=./my-model"]
    assert "nyt_sentiment [minilm-l6->mpnet-base" in \
        outputs["w2s run configs/default.yaml task=nyt_sentiment"]
    # the README's sweep ran the 4 cells; the tutorial's, in the same folder, resumed them all
    sweeps = [out for line, out in ran if line.startswith("w2s sweep") and "--dry-run" not in line]
    assert "4 cells: 4 run, 0 already finished" in sweeps[0]
    assert "4 cells: 0 run, 4 already finished" in sweeps[1]
    assert "rt_sentiment [minilm-l6->mpnet-base, probe, naive, seed 0]" in outputs["make demo"]
    assert (tmp_path / "runs" / "report" / "report.html").is_file()  # `w2s report --html`
    html = tmp_path / "runs" / "smoke" / "report" / "report.html"
    assert html.is_file() and "<img" in html.read_text() and "<script" not in html.read_text()
    with (tmp_path / "runs.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 4
