"""CONTRIBUTING.md's worked examples, run as written: its four files (a loss, a method, a task, a
training mode) and its entry points become a plugin package installed the way pip leaves one, and
`w2s run` uses all four on tiny models. The listings see them, and the built-in tests still pass
with a plugin installed."""
from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "CONTRIBUTING.md"


def code_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", GUIDE.read_text(), flags=re.S)


def entry_points_txt(toml: str) -> str:
    """The [project.entry-points."group"] tables of a pyproject.toml as entry_points.txt."""
    out = []
    for line in toml.splitlines():
        line = line.split("#", 1)[0].strip()
        if m := re.fullmatch(r'\[project\.entry-points\."([^"]+)"\]', line):
            out.append(f"\n[{m.group(1)}]")
        elif m := re.fullmatch(r'(\S+)\s*=\s*"([^"]+)"', line):
            out.append(f"{m.group(1)} = {m.group(2)}")
    return "\n".join(out).strip() + "\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The worked examples' package, with a .dist-info holding the page's entry points."""
    root = tmp_path_factory.mktemp("site")
    files = {}
    for block in code_blocks("python"):
        first = block.splitlines()[0]
        if first.startswith("# my_w2s_ext/"):
            files[first[2:].strip()] = block
    assert sorted(files) == ["my_w2s_ext/losses.py", "my_w2s_ext/methods.py",
                             "my_w2s_ext/modes.py", "my_w2s_ext/tasks.py"]
    (root / "my_w2s_ext").mkdir()
    (root / "my_w2s_ext" / "__init__.py").write_text("")
    for rel, text in files.items():
        (root / rel).write_text(text)
    [toml] = [b for b in code_blocks("toml") if "my_w2s_ext" in b]
    info = root / "my_w2s_ext-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-w2s-ext\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points_txt(toml))
    return root


def w2s(site: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "w2sgen", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_the_four_examples_run_through_w2s_run(site, tiny_bert_dir, tmp_path):
    store = tmp_path / "store"
    keys = ["task=toy_reviews", "task.n=120", "method=sharpen", "method.temperature=0.25",
            "loss=soft_hard", "loss.beta=0.8", "train.mode=mlp_probe", "train.epochs=3",
            f"weak_model={tiny_bert_dir}", f"strong_model={tiny_bert_dir}",
            "splits.weak_train=40", "splits.transfer=40", "splits.test=40",
            "features.max_length=16", "eval.bootstrap=20", "device=cpu"]
    out = w2s(site, "run", *keys, "--store", str(store))
    assert out.returncode == 0, out.stderr[-2000:]
    with sqlite3.connect(store / "runs.sqlite") as db:
        [(config, metrics, status)] = db.execute("SELECT config, metrics, status FROM runs").fetchall()
    config, metrics = json.loads(config), json.loads(metrics)
    assert status == "done"
    assert config["task"] == {"name": "toy_reviews", "options": {"n": 120}}
    assert config["method"] == {"name": "sharpen", "options": {"temperature": 0.25}}
    assert config["loss"] == {"name": "soft_hard", "options": {"beta": 0.8}}
    assert config["train"]["mode"] == "mlp_probe"
    assert metrics["split_sizes"] == {"weak_train": 40, "transfer": 40, "test": 40}
    assert metrics["method"]["name"] == "sharpen"
    assert 0.0 <= metrics["method"]["sharpened_label_accuracy"] <= 1.0
    # sharpening moves no weak label across 0.5: the sharpened labels agree with the weak ones
    assert metrics["method"]["sharpened_label_accuracy"] == pytest.approx(metrics["weak_label_accuracy"])
    assert len(metrics["curves"]["student"]["loss"]) == 3  # train.epochs of the plugin mode
    # the plugin's option bounds are checked from its signature, nothing recorded
    bad = w2s(site, "run", *keys, "loss.beta=1.5", "--store", str(tmp_path / "bad"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "config: loss.beta must be a number >= 0 and <= 1, got 1.5" in bad.stderr
    assert not (tmp_path / "bad" / "runs.sqlite").exists()


def test_the_listings_show_the_plugin_components(site):
    for command, name in (("losses", "soft_hard"), ("methods", "sharpen"), ("modes", "mlp_probe")):
        out = w2s(site, command, timeout=120)
        assert out.returncode == 0 and name in out.stdout, (command, out.stderr[-1000:])
    tasks = w2s(site, "tasks", timeout=120)  # a task with a source no built-in task has
    assert tasks.returncode == 0, tasks.stderr[-1000:]
    [row] = [ln for ln in tasks.stdout.splitlines() if ln.startswith("toy_reviews ")]
    assert row.split()[1:3] == ["generated", "generated"]


def test_the_loss_tests_pass_with_a_plugin_loss_installed(site):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "tests" / "test_losses.py"), "-q",
                          "-p", "no:xdist", "-p", "no:cacheprovider"], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:]
