"""Config loading: defaults, YAML, `key=value` overrides, validation errors, the config hash."""
from __future__ import annotations

import dataclasses

import pytest

from w2sgen.config import Component, ExperimentConfig, TrainConfig
from w2sgen.errors import W2SError
from w2sgen.train import MODES
from w2sgen.validate import load_config, weak_inherited_note


def write(tmp_path, text, name="exp.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def error(*args, **kwargs) -> str:
    with pytest.raises(W2SError) as e:
        load_config(*args, **kwargs)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# ------------------------------------------------------------------------------ loading


def test_defaults_without_file():
    cfg = load_config()
    assert cfg == ExperimentConfig()
    assert cfg.task == Component("rt_sentiment", {})
    assert cfg.loss == Component("xent", {})
    assert cfg.train.mode == "probe" and cfg.train.epochs == 10 and cfg.train.lr is None
    assert cfg.splits.weak_train == 2000 and type(cfg.splits.weak_train) is int
    assert cfg.features.precision == "auto" and cfg.train.precision == "auto"
    assert cfg.eval.bootstrap == 1000 and cfg.eval.confidence == 0.95


def test_empty_file_is_the_default(tmp_path):
    assert load_config(write(tmp_path, "")) == ExperimentConfig()


def test_yaml_file_loads_and_coerces(tmp_path):
    p = write(tmp_path, """
name: mine
task: {name: fever, seed: 4, balanced: false}
seed: 7
splits: {weak_train: 500, transfer: 0.25, test: 300, seed: 2}
features: {precision: fp32, pooling: mean, max_length: 64}
train: {epochs: 3, lr: 1, weight_decay: 0, batch_size: 16}
eval: {bootstrap: 200, confidence: 0.9}
""")
    cfg = load_config(p)
    assert cfg.name == "mine" and cfg.seed == 7
    assert cfg.task == Component("fever", {"seed": 4, "balanced": False})
    assert cfg.train.lr == 1.0 and type(cfg.train.lr) is float  # int -> Optional[float]
    assert cfg.train.weight_decay == 0.0 and type(cfg.train.weight_decay) is float
    assert cfg.train.epochs == 3 and cfg.train.batch_size == 16
    assert cfg.splits.weak_train == 500 and type(cfg.splits.weak_train) is int
    assert cfg.splits.transfer == 0.25 and type(cfg.splits.transfer) is float
    assert cfg.splits.seed == 2
    assert (cfg.features.precision, cfg.features.pooling, cfg.features.max_length) == \
        ("fp32", "mean", 64)
    assert cfg.eval.bootstrap == 200 and cfg.eval.confidence == 0.9


def test_exponent_without_dot_is_a_float(tmp_path):
    # YAML 1.1 reads `1e-4` as a string; a learning rate written that way must still load
    cfg = load_config(write(tmp_path, "train: {lr: 1e-4}\n"), ["train.weight_decay=1e-2"])
    assert cfg.train.lr == pytest.approx(1e-4) and type(cfg.train.lr) is float
    assert cfg.train.weight_decay == pytest.approx(0.01)


def test_overrides(tmp_path):
    p = write(tmp_path, "task: fever\ntrain: {epochs: 8}\n")
    cfg = load_config(p, ["train.epochs=3", "task.seed=3", "seed=5", "features.precision=fp32",
                          "train.lr=0.001", "splits.test=2000", "splits.transfer=0.3"])
    assert cfg.train.epochs == 3
    assert cfg.task == Component("fever", {"seed": 3})  # string task became a mapping
    assert cfg.seed == 5
    assert cfg.features.precision == "fp32"
    assert cfg.train.lr == 0.001
    assert cfg.splits.test == 2000 and type(cfg.splits.test) is int
    assert cfg.splits.transfer == 0.3 and type(cfg.splits.transfer) is float


def test_override_task_name_then_option():
    cfg = load_config(None, ["task=fever", "task.seed=3", "task.balanced=false"])
    assert cfg.task == Component("fever", {"seed": 3, "balanced": False})


def test_override_wins_over_file_and_keeps_siblings(tmp_path):
    p = write(tmp_path, "train: {epochs: 8, batch_size: 4}\n")
    cfg = load_config(p, ["train.epochs=2"])
    assert (cfg.train.epochs, cfg.train.batch_size) == (2, 4)


def test_file_task_shorthand_is_accepted(tmp_path):
    cfg = load_config(None, ["task=data/my.csv"])
    assert cfg.task == Component("data/my.csv", {})


# ------------------------------------------------------------------------------ errors


def test_unknown_top_level_key():
    msg = error(None, ["bogus=1"])
    assert "unknown key 'bogus'" in msg and "valid keys" in msg and "train" in msg


def test_unknown_nested_key(tmp_path):
    msg = error(write(tmp_path, "train:\n  epochz: 3\n"))
    assert "'train.epochz'" in msg and "epochs" in msg
    assert "'features.bogus'" in error(None, ["features.bogus=1"])


def test_wrong_types():
    assert "train.epochs must be an integer >= 1" in error(None, ["train.epochs=abc"])
    assert "train.epochs must be an integer >= 1" in error(None, ["train.epochs=2.5"])
    assert "seed must be an integer >= 0" in error(None, ["seed=true"])  # bool is not an int
    assert "train.lr" in error(None, ["train.lr=fast"])
    assert "train must be a mapping" in error(None, ["train=3"])


def test_bad_literal():
    msg = error(None, ["features.precision=fp8"])
    assert "features.precision" in msg and "'bf16'" in msg and "'fp32'" in msg and "fp8" in msg


def test_malformed_yaml_names_the_line(tmp_path):
    p = write(tmp_path, "name: x\ntrain:\n  epochs: 3\n  lr: [0.1, 0.2\nseed: 1\n")
    msg = error(p)
    assert "not valid YAML" in msg and "line 5" in msg


def test_file_not_found(tmp_path):
    msg = error(tmp_path / "nope.yaml")
    assert "nope.yaml" in msg and "not found" in msg


def test_non_mapping_yaml(tmp_path):
    assert "must be a mapping" in error(write(tmp_path, "- a\n- b\n"))
    assert "must be a mapping" in error(write(tmp_path, "just a string\n"))


def test_override_without_equals():
    msg = error(None, ["train.epochs"])
    assert "key=value" in msg
    assert "key=value" in error(None, ["=3"])


def test_unknown_component_names_suggest():
    msg = error(None, ["loss=xnet"])
    assert "unknown loss 'xnet'" in msg and "did you mean 'xent'" in msg
    msg = error(None, ["task=fevr"])
    assert "unknown task 'fevr'" in msg and "did you mean 'fever'" in msg
    msg = error(None, ["train.mode=prob"])
    assert "unknown training mode 'prob'" in msg and "did you mean 'probe'" in msg


def test_unknown_task_option():
    msg = error(None, ["task=fever", "task.bogus=1"])
    assert "unknown option 'bogus'" in msg and "'fever'" in msg
    assert "seed" in msg and "balanced" in msg  # lists the valid ones


def test_unknown_loss_option():
    msg = error(None, ["loss=xent", "loss.alpha=0.5"])
    assert "unknown option 'alpha'" in msg and "valid options: none" in msg


def test_component_needing_an_option():
    msg = error(None, ["task=file"])
    assert "needs option(s) path" in msg and "task.path=" in msg


@pytest.mark.parametrize("override", ["splits.test=0", "splits.transfer=-5",
                                      "splits.weak_train=1.5", "splits.test=1.0"])
def test_bad_split_sizes(override):
    msg = error(None, [override])
    assert f"splits.{override.split('.')[1].split('=')[0]}" in msg and "(0, 1)" in msg


@pytest.mark.parametrize("override,text", [("eval.confidence=1", "eval.confidence"),
                                           ("train.epochs=0", "train.epochs"),
                                           ("train.lr=-0.1", "train.lr")])
def test_range_checks(override, text):
    assert text in error(None, [override])


# ------------------------------------------------------------------------------ hash


def test_hash_is_stable_and_ignores_name_and_store(tmp_path):
    p = write(tmp_path, "task: fever\ntrain: {epochs: 3}\n")
    h = load_config(p).hash()
    assert len(h) == 16 and int(h, 16) >= 0
    assert load_config(p).hash() == h
    assert load_config(p, ["train.epochs=3"]).hash() == h
    assert load_config(p, ["store=elsewhere", "name=other"]).hash() == h
    assert load_config(p, ["seed=1"]).hash() != h
    assert load_config(p, ["splits.seed=1"]).hash() != h
    assert load_config(p, ["task.seed=1"]).hash() != h
    assert load_config(p, ["train.epochs=4"]).hash() != h


def test_hash_same_for_equivalent_spellings(tmp_path):
    a = load_config(write(tmp_path, "task: fever\ntrain: {lr: 1}\n", "a.yaml"))
    b = load_config(None, ["task=fever", "train.lr=1.0"])
    assert a.hash() == b.hash()


# ------------------------------------------------------------- weak_train (the weak supervisor)


def test_weak_train_overrides_train_field_by_field(tmp_path):
    path = write(tmp_path, "train: {mode: full, epochs: 3, lr: 2.0e-5}\n"
                           "weak_train: {mode: probe, epochs: 10}\n")
    cfg = load_config(path, ["weak_train.lr=0.001"])
    assert cfg.weak_train == {"mode": "probe", "epochs": 10, "lr": 0.001}
    assert (cfg.train.mode, cfg.train.epochs, cfg.train.lr) == ("full", 3, 2e-5)  # untouched
    weak = cfg.weak_train_config()
    assert (weak.mode, weak.epochs, weak.lr, weak.batch_size) == ("probe", 10, 0.001, 32)
    # a field weak_train leaves alone follows train, also when train is changed afterwards
    assert load_config(path, ["train.batch_size=8"]).weak_train_config().batch_size == 8
    assert load_config(None, ["weak_train.lr=1"]).weak_train == {"lr": 1.0}  # coerced as train.lr
    assert load_config(None).weak_train is None and load_config(None).for_weak().train.mode == "probe"


@pytest.mark.parametrize("override,text", [
    ("weak_train.epochs=0", "config: weak_train.epochs must be an integer >= 1, got 0"),
    ("weak_train.epochs=ten", "config: weak_train.epochs must be an integer >= 1, got 'ten'"),
    ("weak_train.lr=-1", "config: weak_train.lr must be a number > 0 or null, got -1"),
    ("weak_train.warmup_fraction=2", "config: weak_train.warmup_fraction must be a number >= 0 and <= 1"),
    ("weak_train.adapter=qlora", "config: weak_train.adapter must be one of"),
    ("weak_train.label_words=[good]", "config: weak_train.label_words must be two label words"),
    ("weak_train.nope=1", "config: unknown key 'weak_train.nope'; valid keys here: mode, epochs"),
    ("weak_train=5", "config: weak_train must be a mapping of train keys"),
    ("weak_train.mode=adaptor", "config: weak_train.mode: unknown training mode 'adaptor'"),
    ("weak_train.select=weak_val", "config: weak_train.select: the weak supervisor always keeps"),
    ("weak_train.select_size=0.5", "config: weak_train.select_size: the weak supervisor always keeps"),
    ("weak_train.micro_batch_size=5", "config: weak_train.micro_batch_size (5) must be a positive "
                                      "divisor of weak_train.batch_size (32)"),
])
def test_bad_weak_train_options_are_one_line_at_load(override, text):
    assert error(None, [override]).startswith(text)


def test_weak_train_is_a_sweep_axis(tmp_path, tiny_bert_dir, tiny_llama_dir):
    from conftest import sentiment_examples

    from w2sgen.sweep.suite import expand

    data = tmp_path / "toy.csv"
    data.write_text("text,label\n" + "".join(f"{e.text},{e.label}\n" for e in sentiment_examples(40)))
    base = {"task": str(data), "weak_model": str(tiny_bert_dir), "strong_model": str(tiny_llama_dir),
            "device": "cpu", "features": {"max_length": 64}}  # within the tiny models' positions
    cells, merged = expand("s", base, {"weak_train.mode": ["probe", "full"], "weak_train.epochs": [10, 2]},
                           str(tmp_path / "store"), "suite.yaml")
    # probe with 10 epochs is the default: the same experiment as no weak_train at all
    modes = [(c.cfg.weak_train_config().mode, c.cfg.weak_train_config().epochs) for c in cells]
    assert modes == [("probe", 10), ("probe", 2), ("full", 10), ("full", 2)] and merged == 0
    assert len({c.hash for c in cells}) == 4
    plain = load_config(None, [f"{k}={v}" for k, v in base.items() if k != "features"]
                        + ["features.max_length=64"])
    assert cells[0].hash == plain.hash() and cells[0].cfg.resolved().weak_train is None


def test_a_weak_supervisor_under_another_mode_is_told_what_it_inherits(tmp_path, capsys):
    from w2sgen import cli

    keys = ["train.mode=full", "train.warmup_fraction=0.05", "train.epochs=3", "train.lr=2e-5",
            "weak_train.mode=probe", "weak_train.epochs=10"]
    note = weak_inherited_note(load_config(None, keys))
    assert note == ("note: the weak supervisor (weak_train.mode=probe) takes train's lr=2e-05, "
                    "warmup_fraction=0.05; set weak_train.<key> where that was meant for the "
                    "strong model (train.mode=full) only")
    # named in weak_train, or the same mode, or nothing set away from the defaults: no note
    assert weak_inherited_note(load_config(None, [*keys, "weak_train.warmup_fraction=0", "weak_train.lr=1e-3"]
                       )) is None
    assert weak_inherited_note(load_config(None, [k for k in keys if k != "weak_train.mode=probe"]
                       )) is None
    assert weak_inherited_note(load_config(None, ["train.mode=full", "weak_train.mode=probe"])) is None
    # only fields the weak mode reads: a probe ignores precision and the label-token prompt,
    # LoRA reads train.lora_rank, last_k does not
    lt = ["train.mode=label_tokens", "train.label_words=[bad, good]", "train.precision=bf16",
          "strong_model=smollm2-135m",
          "train.lora_rank=4", "train.warmup_fraction=0.1"]
    assert weak_inherited_note(load_config(None, [*lt, "weak_train.mode=probe"])).startswith(
        "note: the weak supervisor (weak_train.mode=probe) takes train's warmup_fraction=0.1; ")
    assert "takes train's warmup_fraction=0.1, lora_rank=4, precision='bf16';" in weak_inherited_note(load_config(
        None, [*lt, "weak_train.mode=lora"]))
    assert "takes train's warmup_fraction=0.1, precision='bf16';" in weak_inherited_note(load_config(
        None, [*lt, "weak_train.mode=last_k"]))
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert all(m.own_fields <= fields for _, m in MODES.items())  # no misspelt field
    # a sweep says it once before running (and in --dry-run), however many cells share it
    suite = tmp_path / "s.yaml"
    suite.write_text("base:\n  train: {mode: full, warmup_fraction: 0.05}\n"
                     "  weak_train: {mode: probe}\ngrid:\n  seeds: [0, 1, 2]\n")
    assert cli.main(["sweep", str(suite), "--dry-run", "--store", str(tmp_path / "st")]) == 0
    out = capsys.readouterr().out
    assert out.count("note: the weak supervisor (weak_train.mode=probe) takes train's "
                     "warmup_fraction=0.05;") == 1


def test_naming_a_component_after_its_options_keeps_them():
    """`loss.alpha_max=0.5 loss=logconf` (issue 33: the later bare name dropped the option)."""
    assert load_config(None, ["loss.alpha_max=0.5", "loss=logconf"]).loss.options == {"alpha_max": 0.5}
    assert load_config(None, ["loss=logconf", "loss.alpha_max=0.3", "loss=logconf"]).loss.options == \
        {"alpha_max": 0.3}
    with pytest.raises(W2SError, match="unknown option 'alpha_max' for loss 'xent'"):
        load_config(None, ["loss.alpha_max=0.5", "loss=xent"])
    with pytest.raises(W2SError, match="key 'epochs' is given twice"):
        load_config(None, ["train={epochs: 3, epochs: 4}"])
