"""The generated reference: `w2s config --keys`, `w2s methods / losses / modes`, and
docs/reference.md, which must equal what `w2s reference` prints (so it cannot drift)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from test_cli import w2s

from w2sgen import reference
from w2sgen.config import ExperimentConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "reference.md"


def test_the_committed_reference_is_what_the_code_generates():
    p = w2s("reference")  # a fresh process: no component a test registered
    assert p.returncode == 0, p.stderr
    assert DOC.read_text() == p.stdout, ("docs/reference.md is out of date: run "
                                         "`w2s reference > docs/reference.md`")


def test_every_config_key_is_listed_with_its_words():
    rows = {r.key: r for r in reference.config_keys()}
    assert set(rows) == set(reference.KEY_DOCS), "KEY_DOCS must name exactly the config keys"
    assert all(r.doc for r in rows.values())
    top = {f.name for f in dataclasses.fields(ExperimentConfig)}
    assert {k.split(".")[0] for k in rows} == top
    assert rows["train.epochs"].type == "an integer >= 1" and rows["train.epochs"].default == "10"
    assert rows["eval.confidence"].type == "a number > 0 and < 1"
    assert rows["loss"].default == "xent" and rows["weak_train"].default == "null"


def test_listings_show_options_and_defaults_within_100_columns():
    keys = w2s("config", "--keys")
    assert keys.returncode == 0 and "train.epochs  (an integer >= 1; default 10)" in keys.stdout
    methods = w2s("methods").stdout
    # every registered method, with its options as its signature declares them
    from w2sgen.methods import METHODS

    for name in METHODS:
        assert f"\n{name}\n" in methods
    assert "    hi = 0.75  (a number >= 0.5 and <= 1)" in methods  # confidence_filter
    assert "    ladder = (required)" in methods  # bootstrap
    losses = w2s("losses").stdout
    assert "    alpha_max = 0.75  (a number >= 0 and <= 1)" in losses  # logconf
    modes = w2s("modes").stdout
    assert "Default train.lr: 0.001." in " ".join(modes.split()) and "    train.last_k = 2  (an integer >= 1)" in modes
    for text in (keys.stdout, methods, losses, modes):
        assert max(map(len, text.splitlines())) <= 100


def test_run_help_points_at_the_keys_and_config_prints_the_effective_config(tmp_path):
    help_text = " ".join(w2s("run", "--help").stdout.split())
    assert "`w2s config --keys`" in help_text
    p = w2s("config", "train.epochs=3", "loss=logconf")
    assert p.returncode == 0 and "  epochs: 3\n" in p.stdout and "name: logconf" in p.stdout
    bad = w2s("config", "train.epochs=0")
    assert bad.returncode == 2 and bad.stderr.startswith("error: config: train.epochs must be")
