"""Plugins: a package outside w2sgen registers a loss and a method through entry points, and the
config checks (names, types, bounds from the signature) and the registries see them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PLUGIN = '''
"""A plugin with one loss (registered as the entry point's object) and one method (registered
by its module's decorator when the entry point imports it)."""
from typing import Annotated, Any

import torch

from w2sgen.methods import METHODS
from w2sgen.options import Ge


def squared_error(*, weight: Annotated[float, Ge(0)] = 1.0):
    def loss(logits, target, progress):
        p = torch.softmax(logits, -1)[:, 1]
        return weight * ((p - target) ** 2).mean()
    return loss


@METHODS.register("demo_twice_naive")
def twice_naive(s, *, repeats: Annotated[int, Ge(1)] = 2) -> tuple[Any, dict]:
    return s.train_student(s.weak_labels), {"repeats": repeats}
'''


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    """A distribution 'installed' the way pip leaves one: the module and its .dist-info with
    entry_points.txt, on a folder that goes on PYTHONPATH."""
    root = tmp_path_factory.mktemp("site")
    (root / "w2s_demo_plugin.py").write_text(PLUGIN)
    info = root / "w2s_demo_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: w2s-demo-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [w2sgen.losses]
        demo_squared = w2s_demo_plugin:squared_error

        [w2sgen.methods]
        demo = w2s_demo_plugin
        """))
    return root


def run_python(code: str, path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)


def test_plugin_components_are_seen_and_checked_like_built_in_ones(plugin_path):
    code = textwrap.dedent("""
        import json, torch
        from w2sgen.validate import load_config
        from w2sgen.losses import LOSSES
        from w2sgen.methods import METHODS
        cfg = load_config(None, ["loss=demo_squared", "loss.weight=2", "method=demo_twice_naive"])
        fn = LOSSES.get(cfg.loss.name)(**cfg.loss.options)
        value = float(fn(torch.zeros(2, 2), torch.tensor([0.0, 1.0]), 0.0))
        print(json.dumps({"loss": value, "losses": list(LOSSES), "methods": list(METHODS)}))
    """)
    out = run_python(code, plugin_path)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["loss"] == pytest.approx(2 * 0.25)  # p = 0.5 against targets 0 and 1
    assert "demo_squared" in got["losses"] and "xent" in got["losses"]
    assert "demo_twice_naive" in got["methods"] and "naive" in got["methods"]


def test_plugin_options_are_validated_from_the_plugin_signature(plugin_path):
    env = {**os.environ, "PYTHONPATH": str(plugin_path)}
    out = subprocess.run([sys.executable, "-m", "w2sgen", "run", "loss=demo_squared", "loss.weight=-1",
                          "--store", str(plugin_path / "store")], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "loss.weight must be a number >= 0, got -1" in out.stderr
    assert not (plugin_path / "store" / "runs.sqlite").exists()


def test_a_broken_plugin_is_one_line_naming_its_package(tmp_path):
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('boom')\n")
    info = tmp_path / "broken_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[w2sgen.losses]\nbad = broken_plugin:thing\n")
    out = run_python("from w2sgen.validate import load_config; load_config(None, ['loss=xent'])", tmp_path)
    assert out.returncode != 0
    assert "loss plugin 'bad' (broken_plugin:thing, from package broken-plugin) failed to load: " \
           "RuntimeError: boom" in out.stderr
