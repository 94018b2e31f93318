"""Methods describe themselves: the models they train (their `Trains` annotations) and a
`check(cfg)` hook; the pipeline, the config's checks, the sweep and the report ask the method
instead of naming its options."""
from __future__ import annotations

from typing import Annotated, Any, Optional

import pytest
import yaml
from conftest import sentiment_examples

from w2sgen import cli, pipeline
from w2sgen.errors import W2SError
from w2sgen.methods import (
    METHODS,
    ModelNames,
    Setting,
    Trains,
    checked_by,
    model_options,
    model_roles,
    trained_models,
)
from w2sgen.spec import Component
from w2sgen.validate import load_config


def teachers_method(s: Setting, *, teachers: Annotated[ModelNames, Trains("supervisor")],
                    helpers: Optional[Annotated[ModelNames, Trains("student")]] = None,
                    lm: str = "strong") -> Any:
    """A plugin's method: trains extra supervisors and, optionally, extra students."""
    return s.train_student(s.weak_labels), {}


def refuse_lr(cfg: Any) -> None:
    if cfg.train.lr is not None:
        raise W2SError("method=teachers_for_test sets its own learning rate; drop train.lr")


@pytest.fixture
def plugin_method(monkeypatch):
    METHODS.items()  # plugins loaded first, so the test entry is not shadowed
    monkeypatch.setitem(METHODS._items, "teachers_for_test", checked_by(refuse_lr)(teachers_method))


@pytest.fixture
def toy(tmp_path):
    data = tmp_path / "toy.csv"
    data.write_text("text,label\n" + "".join(f"{e.text},{e.label}\n" for e in sentiment_examples(160)))
    return data


def test_methods_declare_the_models_they_train(plugin_method):
    assert model_options("bootstrap") == {"ladder": Trains("student")}
    assert model_options("weak_ensemble") == {"models": Trains("supervisor")}
    assert model_options("icl_refine") == {} and model_options("naive") == {}  # lm scores, not trained
    assert model_options("not_installed_any_more") == {}  # a stored run of a plugin that is gone
    boot = trained_models(Component("bootstrap", {"ladder": ["a", "b"]}))
    assert (boot.supervisors, boot.students) == ([], ["a", "b"])
    ens = trained_models(Component("weak_ensemble", {"models": ["x"]}))
    assert (ens.supervisors, ens.students) == (["x"], [])
    assert trained_models(Component("weak_ensemble")).supervisors == []  # seeds of the weak model
    plug = trained_models(Component("teachers_for_test", {"teachers": ["t1"], "helpers": ["h1"]}))
    assert (plug.supervisors, plug.students) == (["t1"], ["h1"])
    assert model_options("teachers_for_test") == {"teachers": Trains("supervisor"),
                                                  "helpers": Trains("student")}


def test_model_roles_put_each_declared_model_under_its_settings(plugin_method, tiny_bert_dir, toy):
    keys = [f"task={toy}", f"weak_model={tiny_bert_dir}", f"strong_model={tiny_bert_dir}", "device=cpu",
            "weak_train.epochs=3", "method=teachers_for_test", "method.teachers=[minilm-l6, minilm-l3]",
            "method.helpers=[mpnet-base]", "features.max_length=32"]
    cfg = load_config(None, keys)
    roles = model_roles(cfg, str)
    assert [(n, c.train.epochs, s) for n, c, s in roles] == [  # weak_train.epochs=3 over train's 10
        (str(tiny_bert_dir), 3, True), ("minilm-l6", 3, True), ("minilm-l3", 3, True),
        ("mpnet-base", 10, False), (str(tiny_bert_dir), 10, False)]
    assert roles[-1][1] is cfg
    # the report ranks the method across pairs without its pair-specific model lists
    from w2sgen.report.runs import method_of

    run = {"config": {**cfg.resolved().to_dict(), "method": {"name": "teachers_for_test", "options": {
        "teachers": ["minilm-l6"], "helpers": ["mpnet-base"], "lm": "other"}}}}
    assert method_of(run) == method_of({"config": {**run["config"], "method": {
        "name": "teachers_for_test", "options": {"lm": "other"}}}})
    assert "lm=other" in method_of(run) and "minilm" not in method_of(run)


def test_a_methods_check_refuses_the_config_in_run_and_dry_run(plugin_method, tiny_bert_dir, toy, tmp_path, capsys):
    keys = [f"task={toy}", f"weak_model={tiny_bert_dir}", f"strong_model={tiny_bert_dir}", "device=cpu",
            "features.max_length=32", "method=teachers_for_test", "method.teachers=[minilm-l6]"]
    load_config(None, keys)  # fine without train.lr
    with pytest.raises(W2SError, match="sets its own learning rate"):
        load_config(None, [*keys, "train.lr=0.01"])
    # the built-in diagnostic's hook, in `w2s sweep --dry-run`: one line, exit 2, nothing run
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({
        "base": {"task": str(toy), "weak_model": str(tiny_bert_dir), "strong_model": str(tiny_bert_dir),
                 "device": "cpu", "features": {"max_length": 32}, "train": {"select": "weak_val"}},
        "grid": {"methods": [{"name": "naive"}, {"name": "diag", "method": "gt_early_stop"}]}}))
    assert cli.main(["sweep", str(suite), "--dry-run", "--store", str(tmp_path / "st")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "gt_early_stop picks the student's epoch" in err
    assert not (tmp_path / "st" / "runs.sqlite").exists()


def test_declared_models_get_the_mode_checks_and_the_asset_check(tiny_bert_dir, tiny_llama_dir, toy, tmp_path):
    """weak_ensemble's `models` are weak supervisors: checked under the weak supervisor's mode
    when the config is built, and named by the asset check before a run starts."""
    keys = [f"task={toy}", f"weak_model={tiny_llama_dir}", f"strong_model={tiny_llama_dir}", "device=cpu",
            "train.mode=label_tokens", "train.label_words=[bad, good]", "train.instruction=''",
            "train.precision=fp32", "features.max_length=24", "method=weak_ensemble",
            f"store={tmp_path / 'store'}"]
    load_config(None, [*keys, f"method.models=[{tiny_llama_dir}]"])
    with pytest.raises(W2SError, match="is an encoder"):  # an encoder cannot train with label_tokens
        load_config(None, [*keys, f"method.models=[{tiny_bert_dir}]"])
    from w2sgen.models import MODELS

    absent = next((n for n in MODELS if not MODELS.get(n).installed()), None)
    if absent is None:
        pytest.skip("every zoo model is installed here")
    cfg = load_config(None, [*keys, f"method.models=[{absent}]"])
    with pytest.raises(W2SError, match=f"model {absent!r}"):
        pipeline.run(cfg, quiet=True)
    from w2sgen.store import Store

    assert Store(tmp_path / "store").runs() == []
    from w2sgen.sweep.checks import cell_error

    assert absent in str(cell_error(cfg, {}, {}, {}))


def test_a_methods_data_check_refuses_before_the_run_is_recorded(tiny_bert_dir, toy, tmp_path):
    """Cross-fitted methods (bootstrap, relabel, filter) declare their folds check on the data
    (checked_on_splits); the pipeline runs the hook on the read splits and names no option."""
    from w2sgen.example import Example
    from w2sgen.methods import check_method_splits
    from w2sgen.splits import Splits
    from w2sgen.store import Store

    def splits(n):
        return Splits([Example("w", "w", 0)], [Example(f"t{i}", f"t {i}", i % 2) for i in range(n)],
                      [Example("x", "x", 1)])

    relabel = load_config(None, ["method=relabel", "method.folds=7"])
    check_method_splits(relabel, splits(7))  # one example per fold: fine
    with pytest.raises(W2SError, match=r"method.folds=7 but the transfer split has 6 examples; "
                                       r"set method.folds=5 \(at most 6\)"):
        check_method_splits(relabel, splits(6))
    # bootstrap's default (2 folds) counts too; a method without the hook checks nothing
    with pytest.raises(W2SError, match="method.folds=2 but the transfer split has 1 examples"):
        check_method_splits(load_config(None, ["method=bootstrap", f"method.ladder=[{tiny_bert_dir}]"]),
                            splits(1))
    check_method_splits(load_config(None, ["method=naive"]), splits(1))
    # through the pipeline: refused after reading the data, nothing recorded
    keys = [f"task={toy}", f"weak_model={tiny_bert_dir}", f"strong_model={tiny_bert_dir}",
            "splits.weak_train=20", "splits.transfer=20", "splits.test=20", "device=cpu",
            "features.max_length=32", f"store={tmp_path / 'store'}", "method=relabel", "method.folds=21"]
    with pytest.raises(W2SError, match="method.folds=21 but the transfer split has 20 examples"):
        pipeline.run(load_config(None, keys), quiet=True)
    assert Store(tmp_path / "store").runs() == []


def test_a_sweeps_feature_count_reads_the_models_a_method_declares(tiny_bert_dir, tiny_llama_dir):
    from w2sgen.sweep.cells import Cell
    from w2sgen.sweep.runner import models_of

    base = [f"weak_model={tiny_bert_dir}", f"strong_model={tiny_bert_dir}"]
    ensemble = load_config(None, [*base, "method=weak_ensemble", f"method.models=[{tiny_llama_dir}]"])
    assert models_of(Cell(0, "e", ensemble)) == {str(tiny_bert_dir), str(tiny_llama_dir)}
    assert models_of(Cell(1, "n", load_config(None, base))) == {str(tiny_bert_dir)}
