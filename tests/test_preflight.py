"""One preflight (preflight.py) for `w2s run` and `w2s sweep --dry-run`: a problem the run refuses
before recording anything is refused by the dry run too, with the same line, and nothing runs."""
from __future__ import annotations

import pytest
import yaml
from conftest import sentiment_examples

from w2sgen.cli import main
from w2sgen.models import MODELS
from w2sgen.store import Store


def refusals(tmp_path, capsys, keys: list[str]) -> tuple[str, str]:
    """The error line of `w2s run keys` and of `w2s sweep --dry-run` on a one-cell suite with
    `keys` as its base; both must exit 2 and record no run."""
    store = tmp_path / "store"
    assert main(["run", *keys, "--store", str(store)]) == 2
    run_err = capsys.readouterr().err.strip()
    base: dict = {}
    for k in keys:
        key, _, value = k.partition("=")
        node = base
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"base": base, "grid": {"seeds": [0]}}))
    assert main(["sweep", str(suite), "--store", str(store), "--dry-run"]) == 2
    dry_err = capsys.readouterr().err.strip()
    assert not (store / "runs.sqlite").exists() or Store(store).runs() == []
    assert run_err.count("\n") == 0 and dry_err.count("\n") == 0, (run_err, dry_err)
    assert run_err.startswith("error: ") and dry_err.startswith("error: ")
    return run_err.removeprefix("error: "), dry_err


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    path = tmp_path_factory.mktemp("toy") / "toy.csv"
    path.write_text("text,label\n" + "".join(f"{e.text},{e.label}\n" for e in sentiment_examples(60)))
    return path


def common(toy, model) -> list[str]:
    return [f"task={toy}", f"weak_model={model}", f"strong_model={model}", "device=cpu",
            "splits.weak_train=20", "splits.transfer=20", "splits.test=20"]


def test_max_length_beyond_the_positions_is_refused_by_both(tmp_path, capsys, toy, tiny_bert_dir):
    run, dry = refusals(tmp_path, capsys, [*common(toy, tiny_bert_dir), "features.max_length=100"])
    assert run == f"features.max_length=100 but model {str(tiny_bert_dir)!r} has 64 positions; " \
                  "set features.max_length=64 or less"
    assert run in dry and "1 invalid cell(s), nothing was run" in dry


def test_a_method_check_of_the_splits_is_refused_by_both(tmp_path, capsys, toy, tiny_bert_dir):
    """relabel's folds against the transfer split: a check on the data, which the dry run reads."""
    run, dry = refusals(tmp_path, capsys, [*common(toy, tiny_bert_dir), "features.max_length=32",
                                           "method.name=relabel", "method.folds=30"])
    assert run == "method.folds=30 but the transfer split has 20 examples; set method.folds=5 (at most 20)"
    assert run in dry


def test_an_uninstalled_model_is_refused_by_both(tmp_path, capsys, toy, tiny_bert_dir):
    absent = next((n for n in MODELS if not MODELS.get(n).installed()), None)
    if absent is None:
        pytest.skip("every zoo model is installed here")
    run, dry = refusals(tmp_path, capsys, [*common(toy, tiny_bert_dir), f"strong_model={absent}"])
    assert f"{absent!r}" in run and "w2s pull" in run
    assert run in dry


def test_a_model_folder_that_is_not_there_is_refused_by_both(tmp_path, capsys, toy, tiny_bert_dir):
    gone = tmp_path / "no-such-model"
    run, dry = refusals(tmp_path, capsys, [*common(toy, tiny_bert_dir), f"strong_model={gone}"])
    assert str(gone) in run
    assert run in dry
