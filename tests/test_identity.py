"""Run identity survives growth: options added after schema 1 leave stored hashes unchanged."""
from __future__ import annotations

import dataclasses
from typing import Annotated, Optional, Union

import numpy as np
import pytest
import yaml

from w2sgen import config as config_mod
from w2sgen import hardware, validate
from w2sgen.config import ExperimentConfig, TrainConfig
from w2sgen.options import Ge, canonical
from w2sgen.validate import load_config

# Hashes written by the code before `precision: auto` and the GPU training options existed
# (commit 8cbeb5d), for the same keys. A store holding those runs must still find them. The
# default task was multiemo_pos_neg then: OLD_DEFAULT names it.
OLD_DEFAULT = ["task=multiemo_pos_neg"]
LEGACY = {
    "default, features bf16": "64b3691f48fcbf0b",
    "default, features fp32": "b5bbdb6ae9b2ee69",
    "fever seed 2, features bf16": "69ce92bb018af7a7",
    "full 2 epochs, fp32 training": "2723fda7ca48a7d2",
    "bootstrap ladder": "3ae9a2ea70b81e05",
}
BF16 = hardware.bf16_native("cpu")  # what `precision: auto` means on this CPU


def test_probe_runs_keep_their_hashes():
    # features.precision auto on a CPU is fp32 (the ONNX Runtime path): the legacy fp32 identity
    assert load_config(None, [*OLD_DEFAULT, "device=cpu"]).hash() == LEGACY["default, features fp32"]
    assert load_config(None, [*OLD_DEFAULT, "features.precision=fp32"]).hash() == LEGACY["default, features fp32"]
    if BF16:  # an explicit bf16 keeps the identity runs made with the old bf16 default
        assert load_config(None, [*OLD_DEFAULT, "features.precision=bf16"]).hash() == LEGACY["default, features bf16"]
        assert load_config(None, ["task=fever", "seed=2", "features.precision=bf16"]).hash() \
            == LEGACY["fever seed 2, features bf16"]
        assert load_config(None, [*OLD_DEFAULT, "method=bootstrap", "method.ladder=[minilm-l6]",
                                  "features.precision=bf16"]).hash() == LEGACY["bootstrap ladder"]


def test_new_training_options_at_their_legacy_value_keep_the_hash():
    keys = [*OLD_DEFAULT, "train.mode=full", "train.epochs=2", "train.precision=fp32", "features.precision=bf16"]
    cfg = load_config(None, keys)
    assert cfg.hash() == LEGACY["full 2 epochs, fp32 training"]
    # a micro-batch equal to the batch, or checkpointing, computes the same numbers
    assert load_config(None, keys + ["train.micro_batch_size=32"]).hash() == cfg.hash()
    assert load_config(None, keys + ["train.gradient_checkpointing=true"]).hash() == cfg.hash()
    # real changes of what is computed re-key
    assert load_config(None, keys + ["train.micro_batch_size=8"]).hash() != cfg.hash()
    if BF16:
        assert load_config(None, [*keys[:2], "train.precision=bf16"]).hash() != cfg.hash()


def test_probe_ignores_training_precision():
    """The probe trains a linear head in fp32 whatever train.precision says."""
    a = load_config(None, ["train.precision=fp32"])
    b = load_config(None, ["train.precision=bf16"]) if BF16 else a
    assert a.hash() == b.hash() and a.resolved().train.precision == "fp32"


def test_resolving_is_idempotent_and_concrete():
    cfg = load_config(None, ["train.mode=lora"])
    r = cfg.resolved()
    assert r.features.precision in ("bf16", "fp32") and r.train.precision in ("bf16", "fp32")
    assert r.resolved() == r and r.hash() == cfg.hash()


def test_adding_an_option_with_a_legacy_default_keeps_every_hash(monkeypatch):
    """What the next engineer does: add a field to TrainConfig and list it in IDENTITY_DEFAULTS."""
    grown = dataclasses.make_dataclass("TrainConfig", [("ema_decay", float, dataclasses.field(default=0.0))],
                                       bases=(TrainConfig,))
    monkeypatch.setitem(config_mod.IDENTITY_DEFAULTS, "train",
                        {**config_mod.IDENTITY_DEFAULTS["train"], "ema_decay": 0.0})
    for opts in ({"mode": "full"}, {}, {"epochs": 4, "lr": 0.01}):
        old = ExperimentConfig(train=TrainConfig(**opts), seed=3, device="cpu")
        new = dataclasses.replace(old, train=grown(**opts))
        assert new.hash() == old.hash()
        assert dataclasses.replace(old, train=grown(**opts, ema_decay=0.9)).hash() != old.hash()


@pytest.mark.parametrize("micro,batch", [(0, 32), (5, 32), (-1, 32), (64, 32)])
def test_micro_batch_must_divide_the_batch(micro, batch):
    from w2sgen.errors import W2SError

    with pytest.raises(W2SError, match="micro_batch_size"):
        load_config(None, [f"train.micro_batch_size={micro}", f"train.batch_size={batch}"])


def test_measuring_the_machine_leaves_the_callers_random_stream_alone():
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    hardware.matmul_gflops(torch.float32, "cpu", n=256, seconds=0.01)
    assert torch.equal(torch.rand(3), expected)


# ------------------------------------------------ weak_train: the weak supervisor's own settings


def test_without_weak_train_every_hash_and_record_is_unchanged():
    """Absent, null, empty or the same as `train` (once resolved): the legacy identities, and
    no `weak_train` key in what a run records (reports group runs by those dicts)."""
    for same in ([], ["weak_train=null"], ["weak_train={}"], ["weak_train.mode=probe"],
                 ["weak_train.epochs=10", "weak_train.lr=null"]):
        cfg = load_config(None, [*OLD_DEFAULT, "device=cpu", *same])
        assert cfg.hash() == LEGACY["default, features fp32"], same
        assert "weak_train" not in cfg.resolved().to_dict()
    keys = [*OLD_DEFAULT, "train.mode=full", "train.epochs=2", "train.precision=fp32", "features.precision=bf16"]
    for same in ([], ["weak_train.mode=full", "weak_train.micro_batch_size=32"]):
        assert load_config(None, keys + same).hash() == LEGACY["full 2 epochs, fp32 training"]
    assert "weak_train" not in ExperimentConfig().to_dict()


def test_weak_train_rekeys_the_run_and_records_the_effective_settings():
    base = load_config(None, ["device=cpu", "train.mode=full", "train.precision=fp32"])
    cfg = load_config(None, ["device=cpu", "train.mode=full", "train.precision=fp32",
                             "weak_train.mode=probe", "weak_train.epochs=4"])
    assert cfg.hash() != base.hash()
    assert cfg.hash() != load_config(None, ["device=cpu", "train.mode=full", "train.precision=fp32",
                                            "weak_train.mode=probe"]).hash()
    r = cfg.resolved()
    assert r.resolved() == r and r.hash() == cfg.hash()
    assert r.weak_train == {"mode": "probe", "epochs": 4}  # what differs from train, resolved
    recorded = r.to_dict()["weak_train"]  # the whole effective setting, as a run records it
    assert recorded == {**r.to_dict()["train"], "mode": "probe", "epochs": 4}
    weak = r.for_weak()
    assert weak.weak_train is None and weak.train.mode == "probe" and weak.train.epochs == 4
    assert weak.train.precision == "fp32" and r.train == base.resolved().train
    assert r.identity()["train"] == base.identity()["train"]
    # the recorded sections load back as the same settings (select included: train's value)
    from w2sgen.validate import build_config

    d = r.to_dict()
    again = build_config({"device": "cpu", "train": d["train"], "weak_train": d["weak_train"]})
    assert again.resolved().weak_train == r.weak_train and again.resolved().train == r.train


def test_weak_train_changes_only_the_weak_steps_cache_key(tmp_path, tiny_llama_dir):
    from conftest import sentiment_examples

    from w2sgen.context import train_key
    from w2sgen.models import resolve
    from w2sgen.pipeline import GROUND_TRUTH_LOSS
    from w2sgen.splits import Part, Splits, labels

    common = ["device=cpu", "train.mode=label_tokens", "train.label_words=[bad, good]",
              "train.instruction=''", "train.precision=fp32", "features.max_length=24",
              f"weak_model={tiny_llama_dir}", f"strong_model={tiny_llama_dir}",
              "method=bootstrap", f"method.ladder=[{tiny_llama_dir}]"]
    plain = load_config(None, common).resolved()
    weak = load_config(None, [*common, "weak_train.mode=probe", "weak_train.epochs=3"]).resolved()
    ex = sentiment_examples(30)
    splits = Splits(ex[:10], ex[10:20], ex[20:])
    ref = resolve(str(tiny_llama_dir))
    y = labels(splits.weak_train)
    soft = np.linspace(0.1, 0.9, 10).astype(np.float32)
    test = {"test": Part("test")}

    def keys(cfg):
        return {"weak": train_key(cfg.for_weak(), ref, splits, Part("weak_train"), y,
                                  GROUND_TRUTH_LOSS, {"transfer": Part("transfer"), **test},
                                  cfg.seed, False),
                "ceiling": train_key(cfg, ref, splits, Part("transfer"), labels(splits.transfer),
                                     GROUND_TRUTH_LOSS, test, cfg.seed, False),
                "rung": train_key(cfg, ref, splits, Part("transfer", (0, 1, 2)), soft[:3],
                                  cfg.loss, {"held": Part("transfer", (3,)), **test}, cfg.seed, True),
                "student": train_key(cfg, ref, splits, Part("transfer"), soft, cfg.loss, test,
                                     cfg.seed, True)}

    a, b = keys(plain), keys(weak)
    assert a["weak"] != b["weak"] and b["weak"]["mode"] == "probe" and b["weak"]["train"]["epochs"] == 3
    assert a["weak"]["mode"] == "label_tokens" and "prompt" not in b["weak"]
    for step in ("ceiling", "rung", "student"):  # trained under `train` either way
        assert a[step] == b[step], step
    assert plain.for_weak() is plain  # no weak_train: the weak step keys as it always did


# ------------------------------------------------ canonical identity: one experiment, one hash

# Hashes 72a4526 gave configs already written canonically (non-default options, as their
# signatures type them; its default task, OLD_DEFAULT): canonicalising options must leave them,
# and their stored runs, alone.
CANONICAL_BEFORE = {
    ("loss=logconf",): "8d98a0f59cf1fdb3",
    ("loss=logconf", "loss.alpha_max=0.5"): "ba498af909010f41",
    ("loss=product", "loss.beta=2.0"): "ef620007ec4884e5",
    ("method=bootstrap", "method.ladder=[minilm-l6]", "method.folds=3"): "89f93fe2e4569f40",
    ("method=confidence_filter", "method.hi=0.9"): "8df41ff4e3c5d9bb",
}


def test_configs_already_canonical_keep_their_hashes():
    for keys, expected in CANONICAL_BEFORE.items():
        assert load_config(None, [*OLD_DEFAULT, "device=cpu", *keys]).hash() == expected, keys


def test_four_spellings_of_two_losses_give_two_hashes(tmp_path):
    from w2sgen.validate import build_config

    def hash_of(loss):
        return build_config({"task": "multiemo_pos_neg", "device": "cpu", "loss": loss}).hash()

    default = {hash_of("logconf"), hash_of({"name": "logconf"}),
               hash_of({"name": "logconf", "alpha_max": 0.75}), hash_of({"name": "logconf", "alpha_max": "0.75"})}
    one = {hash_of({"name": "logconf", "alpha_max": 1}), hash_of({"name": "logconf", "alpha_max": 1.0}),
           hash_of({"name": "logconf", "alpha_max": "1"})}
    assert len(default) == 1 and len(one) == 1 and default != one
    assert default == {CANONICAL_BEFORE[("loss=logconf",)]}
    # from YAML files and overrides too (YAML reads `1` as an int, `1.0` as a float)
    files = []
    for i, text in enumerate(("loss: logconf", "loss: {name: logconf, alpha_max: 0.75}",
                              "loss: {name: logconf, alpha_max: 1}", "loss: {name: logconf, alpha_max: 1.0}")):
        (tmp_path / f"{i}.yaml").write_text(f"task: multiemo_pos_neg\ndevice: cpu\n{text}\n")
        files.append(load_config(tmp_path / f"{i}.yaml").hash())
    assert files[0] == files[1] == next(iter(default)) and files[2] == files[3] == next(iter(one))
    assert load_config(None, [*OLD_DEFAULT, "device=cpu", "loss=logconf", "loss.alpha_max=1"]).hash() == files[2]
    # what a run records is the canonical form: reports group the four as two settings
    assert load_config(tmp_path / "1.yaml").resolved().to_dict()["loss"] == {"name": "logconf", "options": {}}
    assert load_config(tmp_path / "2.yaml").resolved().to_dict()["loss"]["options"] == {"alpha_max": 1.0}
    # and the cache key of the student's training step holds the same loss
    from w2sgen.config import ExperimentConfig
    from w2sgen.spec import Component

    spelled = ExperimentConfig(task=Component("multiemo_pos_neg"), device="cpu",
                               loss=Component("logconf", {"alpha_max": 1}))
    made = validate.canonical(spelled)  # a config made in code, as pipeline.run records it
    assert made.resolved().loss == Component("logconf", {"alpha_max": 1.0})
    assert made.hash() == files[2] and validate.canonical(made) == made


def component(*, a: float = 0.5, n: int = 3, size: Union[int, float] = 0.2,
              cut: Optional[Annotated[float, Ge(0)]] = None, xs: tuple[float, ...] = (),
              flag: bool = False, word: str = "x") -> None:
    """A component's options, as a loss or method declares them."""


def test_options_are_conformed_from_the_signature_then_defaults_dropped():
    assert canonical(component, {"a": 1}) == {"a": 1.0} and isinstance(canonical(component, {"a": 1})["a"], float)
    assert canonical(component, {"a": "1e-1"}) == {"a": 0.1}
    assert canonical(component, {"a": 0.5, "n": 3, "flag": False, "word": "x", "xs": []}) == {}
    # an int where an int is meant too stays an int: a count is not a fraction (splits' sizes)
    assert canonical(component, {"size": 1}) == {"size": 1} and type(canonical(component, {"size": 1})["size"]) is int
    assert canonical(component, {"size": 0.2}) == {} and canonical(component, {"size": 20}) == {"size": 20}
    assert canonical(component, {"cut": 2}) == {"cut": 2.0} and type(canonical(component, {"cut": 2})["cut"]) is float
    assert canonical(component, {"xs": [1, 2.5]}) == {"xs": [1.0, 2.5]}
    assert canonical(component, {"n": 4, "flag": True}) == {"n": 4, "flag": True}
    assert canonical(component, {"flag": 0}) == {"flag": 0}  # ill-typed: left for `check` to refuse
    for opts in ({"a": 1}, {"size": 1, "xs": [1]}, {"a": 0.5, "n": 5}):
        once = canonical(component, opts)
        assert canonical(component, once) == once


def test_task_and_method_options_are_canonical_too(tmp_path):
    data = tmp_path / "toy.csv"
    data.write_text("text,label\n" + "".join(f"t{i} w,{i % 2}\n" for i in range(40)))
    short = load_config(None, ["device=cpu", f"task={data}"])
    assert short.resolved().to_dict()["task"] == {"name": str(data), "options": {}}  # path not repeated
    a = load_config(None, ["device=cpu", "method=confidence_filter"])
    b = load_config(None, ["device=cpu", "method=confidence_filter", "method.hi=0.75"])
    assert a.hash() == b.hash() and b.method.options == {}
    c = load_config(None, ["device=cpu", "method=bootstrap", "method.ladder=[minilm-l6]", "method.folds=2"])
    assert c.method.options == {"ladder": ["minilm-l6"]}


def test_the_identity_schema_is_implicit_at_1_and_rekeys_when_bumped(monkeypatch):
    cfg = load_config(None, [*OLD_DEFAULT, "device=cpu"])
    assert "schema" not in cfg.identity() and cfg.hash() == LEGACY["default, features fp32"]
    monkeypatch.setattr(config_mod, "IDENTITY_SCHEMA", 2)
    assert cfg.identity()["schema"] == 2 and cfg.hash() != LEGACY["default, features fp32"]


def test_hardware_timing_cannot_change_a_hash(monkeypatch, tmp_path):
    """`precision: auto` follows the bf16 units, never a matmul timing: nothing is measured while
    hashing, and a measurement on a busy machine (not cached), or one that finds bf16 slow,
    changes no hash."""
    keys = ["device=cpu", "train.mode=lora"]
    before = load_config(None, keys).hash()
    monkeypatch.setenv("W2S_HOME", str(tmp_path))  # no cached measurement
    monkeypatch.setattr(hardware, "_PROBES", {})

    def no_timing(*a, **k):
        raise AssertionError("a matmul was timed while resolving or hashing a config")

    monkeypatch.setattr(hardware, "matmul_gflops", no_timing)
    cfg = load_config(None, keys)
    assert cfg.hash() == before and cfg.resolved().train.precision == hardware.auto_precision("cpu")
    for fp32, bf16, busy in ((100.0, 0.4, True), (100.0, 0.4, False), (10.0, 400.0, True)):
        monkeypatch.setattr(hardware, "matmul_gflops",
                            lambda dtype, *a, f=fp32, b=bf16, **k: f if "float32" in str(dtype) else b)
        monkeypatch.setattr(hardware, "_busy", lambda busy=busy: busy)
        hardware.probe("cpu", refresh=True)  # measured (and cached when idle)
        assert load_config(None, keys).hash() == before
    # the capability is what decides: a CPU without bf16 units resolves auto to fp32
    monkeypatch.setattr(hardware, "_NATIVE", {"cpu": False})
    assert load_config(None, keys).resolved().train.precision == "fp32"
    if BF16:
        assert load_config(None, keys).hash() != before


# ------------------------------------------------ w2s store migrate: a store keyed as written


def legacy_spelling(monkeypatch) -> None:
    """Component options kept as written, as 72a4526 recorded, hashed and keyed them (its
    options.check conformed types as today's does; nothing was canonicalised after it)."""
    def as_written(cfg):
        return cfg.task, cfg.method, cfg.loss

    monkeypatch.setattr(validate, "canonical_components", as_written)


def test_store_migrate_rekeys_runs_and_steps_without_recomputing(tmp_path, tiny_bert_dir, monkeypatch):
    import json

    from conftest import sentiment_examples

    from w2sgen import cli, pipeline
    from w2sgen.store import Store

    data = tmp_path / "toy.csv"
    data.write_text("text,label\n" + "".join(f"{e.text},{e.label}\n" for e in sentiment_examples(160)))
    store_dir = tmp_path / "store"
    keys = [f"task={data}", f"weak_model={tiny_bert_dir}", f"strong_model={tiny_bert_dir}",
            "splits.weak_train=40", "splits.transfer=40", "splits.test=40", "train.epochs=3",
            "train.lr=0.01", "eval.bootstrap=20", "device=cpu", f"store={store_dir}", "loss=logconf",
            "features.max_length=32"]
    spellings = {"default": ["loss.alpha_max=0.75"], "one": ["loss.alpha_max=1"]}
    canonical_spelling = {"default": [], "one": ["loss.alpha_max=1.0"]}
    with monkeypatch.context() as m:
        legacy_spelling(m)
        legacy = {k: pipeline.run(load_config(None, keys + extra), quiet=True)
                  for k, extra in spellings.items()}
        legacy_hash = {k: load_config(None, keys + extra).hash() for k, extra in spellings.items()}
    canonical_hash = {k: load_config(None, keys + extra).hash() for k, extra in canonical_spelling.items()}
    import sqlite3

    with sqlite3.connect(store_dir / "runs.sqlite") as db:  # 72a4526 never set a keys version
        db.execute("PRAGMA user_version=0")
    store = Store(store_dir)
    assert "w2s store migrate --store" in (store.keys_note() or "")
    before = {r["id"]: r for r in store.runs()}
    assert {r["config_hash"] for r in before.values()} == set(legacy_hash.values())
    assert set(legacy_hash.values()).isdisjoint(canonical_hash.values())  # today's code misses them
    assert all(store.finished_run(h) is None for h in canonical_hash.values())
    cache = sorted(p.name for p in (store_dir / "cache").rglob("*.npz"))

    assert cli.main(["store", "migrate", "--store", str(store_dir)]) == 0
    assert Store(store_dir).keys_note() is None
    after = {r["id"]: r for r in Store(store_dir).runs()}
    assert after.keys() == before.keys()
    for k, res in legacy.items():
        row = after[res["run_id"]]
        assert row["config_hash"] == canonical_hash[k]
        assert json.dumps(row["metrics"], sort_keys=True) == json.dumps(before[res["run_id"]]["metrics"], sort_keys=True)
        assert row["timings"] == before[res["run_id"]]["timings"] and row["status"] == "done"
        assert row["config"]["loss"] == {"name": "logconf", "options": {"alpha_max": 1.0} if k == "one" else {}}
        art = yaml.safe_load((store_dir / "artifacts" / str(res["run_id"]) / "config.yaml").read_text())
        assert art["loss"] == row["config"]["loss"]
    # two student steps moved (their key holds the loss); features, supervisor, ceiling untouched
    moved = sorted(p.name for p in (store_dir / "cache").rglob("*.npz"))
    assert len(moved) == len(cache) and len(set(moved) - set(cache)) == 2

    # a rerun of either canonical spelling is a cache hit at every step, with the same numbers
    for k, extra in canonical_spelling.items():
        again = pipeline.run(load_config(None, keys + extra), quiet=True)
        assert all(t["cached"] for name, t in again["timings"].items() if name not in ("data", "evaluate")), \
            again["timings"]
        assert json.dumps(again["metrics"], sort_keys=True) == json.dumps(legacy[k]["metrics"], sort_keys=True)
    assert legacy["default"]["metrics"]["student_accuracy"] != legacy["one"]["metrics"]["student_accuracy"]
    # once is enough: a second migration changes nothing
    from w2sgen.migrate import migrate

    second = migrate(store_dir)
    assert second.rehashed == [] and second.moved == 0 and second.kept == []


def test_a_new_store_is_keyed_as_today(tmp_path, capsys):
    from w2sgen import cli
    from w2sgen.store import KEYS_VERSION, Store

    assert Store(tmp_path / "s").keys_note() is None and Store(tmp_path / "s").keys_version == KEYS_VERSION
    assert cli.main(["report", "--store", str(tmp_path / "s")]) == 0
    assert "migrate" not in capsys.readouterr().err


def test_store_migrate_without_a_store_is_one_line(tmp_path, capsys):
    from w2sgen import cli

    assert cli.main(["store", "migrate", "--store", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no run store at") and err.count("\n") == 1
    assert not (tmp_path / "none").exists()  # nothing made where there was nothing


def test_store_migrate_keeps_what_it_cannot_rebuild(tmp_path, capsys):
    """A run whose method is no longer installed keeps its row as it was, and says so."""
    from w2sgen import cli
    from w2sgen.store import Store

    record = ExperimentConfig(device="cpu").resolved().to_dict()
    record["method"] = {"name": "gone_plugin", "options": {"alpha": 1}}

    class Recorded:
        name, store, kind = "old", str(tmp_path), "classification"

        def hash(self):
            return "0123456789abcdef"

        def to_dict(self):
            return record

    store = Store(tmp_path)
    run_id = store.start_run(Recorded())
    store.finish_run(run_id, {"student_accuracy": 0.75}, {})
    assert cli.main(["store", "migrate", "--store", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"kept: run {run_id}: its config does not build today (unknown method 'gone_plugin'" in out
    row = Store(tmp_path).runs()[0]
    assert row["config_hash"] == "0123456789abcdef" and row["metrics"] == {"student_accuracy": 0.75}
    assert row["config"]["method"] == {"name": "gone_plugin", "options": {"alpha": 1}}


def test_a_replay_is_only_made_where_the_method_gets_the_same_arguments():
    from w2sgen.migrate import same_arguments
    from w2sgen.spec import Component

    assert same_arguments(Component("confidence_filter", {}), {"hi": 0.75})  # a default dropped
    assert same_arguments(Component("confidence_filter", {"hi": 0.9}), {"hi": 0.9})
    assert not same_arguments(Component("confidence_filter", {"hi": 1.0}), {"hi": 1})  # int -> float


# ------------------------------------------------ every cache key carries a version


def test_features_key_carries_a_version_that_leaves_todays_entries_found(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from w2sgen import context
    from w2sgen.example import Example
    from w2sgen.store import Store

    ref = SimpleNamespace(identity="zoo:minilm-l6:abc")
    examples = [Example("a", "good film", 1), Example("b", "bad film", 0)]
    store = Store(tmp_path, database=False)
    key = context.features_key(ref, examples, "mean", 128, "fp32")
    # version 1 is implicit: the entry's name is the one the code before FEATURES_FORMAT gave
    # (printed by 04a6061's pipeline for the same key), so stored features are not recomputed
    assert context.FEATURES_FORMAT == 1 and "format" not in key
    assert store.cache_path("features", key).name == "cdab9fd59aea00661dcccae4.npz"
    monkeypatch.setattr(context, "FEATURES_FORMAT", 2)  # a bump re-keys every features entry
    bumped = context.features_key(ref, examples, "mean", 128, "fp32")
    assert bumped == {**key, "format": 2}
    assert store.cache_path("features", bumped) != store.cache_path("features", key)


def test_a_data_file_task_has_one_identity_however_it_is_spelled(tmp_path):
    from conftest import sentiment_examples

    data = tmp_path / "toy.csv"
    data.write_text("text,label\n" + "".join(f"{e.text},{e.label}\n" for e in sentiment_examples(40)))
    base = ["device=cpu"]
    short = load_config(None, [*base, f"task={data}"])
    spelled = {
        "long": load_config(None, [*base, "task=file", f"task.path={data}"]),
        "long, default option": load_config(None, [*base, "task=file", f"task.path={data}",
                                                   "task.text_column=text"]),
    }
    for how, cfg in spelled.items():
        assert cfg.task == short.task, how
        assert cfg.hash() == short.hash(), how
    assert short.task.name == str(data) and short.task.options == {}
    # an option that differs from its default still tells the runs apart, in either spelling
    other = load_config(None, [*base, "task=file", f"task.path={data}", "task.label_column=y"])
    assert other.task.name == str(data) and other.task.options == {"label_column": "y"}
    assert other.hash() == load_config(None, [*base, f"task={data}", "task.label_column=y"]).hash()
    assert other.hash() != short.hash()


def test_a_models_former_name_is_the_same_experiment():
    """qwen2.5-0.5b was renamed qwen2.5-coder-0.5b-instruct: either name, as a pair member or as
    a method's model option, gives one identity holding the current name, and the model's
    identity string (the feature caches' key) is the one the former name had."""
    from w2sgen.models import MODELS

    def cfg(name: str) -> ExperimentConfig:
        return load_config(None, [f"weak_model={name}", "strong_model=qwen2.5-coder-1.5b-instruct",
                                  "method=icl_refine", f"method.lm={name}"])

    old, new = cfg("qwen2.5-0.5b"), cfg("qwen2.5-coder-0.5b-instruct")
    assert old.hash() == new.hash()
    ident = old.identity()
    assert ident["weak_model"] == "qwen2.5-coder-0.5b-instruct"
    assert ident["method"]["options"]["lm"] == "qwen2.5-coder-0.5b-instruct"
    assert MODELS.get("qwen2.5-0.5b") is MODELS.get("qwen2.5-coder-0.5b-instruct")
    assert MODELS.get("qwen2.5-1.5b").identity.startswith("zoo:qwen2.5-1.5b:gguf-sha256=cc324af070c2ecbf")
    assert "qwen2.5-0.5b" not in list(MODELS)  # listed once, under its current name
    assert MODELS.former_names("qwen2.5-coder-0.5b-instruct") == ["qwen2.5-0.5b"]


def test_a_file_task_without_a_data_suffix_keeps_its_long_spelling():
    """`{name: file, path: /dev/null}` has no short form (the path alone is no data file name):
    its own check, not the shorthand's, speaks when it runs."""
    from w2sgen.spec import Component
    from w2sgen.tasks import canonical_task

    assert canonical_task(Component("file", {"path": "/dev/null"})) == Component("file", {"path": "/dev/null"})
    assert canonical_task(Component("file", {"path": "a/b.CSV"})) == Component("a/b.CSV")
