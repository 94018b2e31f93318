"""Run identity survives growth: options added after schema 1 leave stored hashes unchanged."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from w2sgen import config as config_mod
from w2sgen import hardware
from w2sgen.config import ExperimentConfig, TrainConfig, load_config

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
BF16 = hardware.probe("cpu").bf16_fast


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
    from w2sgen.config import build_config

    d = r.to_dict()
    again = build_config({"device": "cpu", "train": d["train"], "weak_train": d["weak_train"]})
    assert again.resolved().weak_train == r.weak_train and again.resolved().train == r.train


def test_weak_train_changes_only_the_weak_steps_cache_key(tmp_path, tiny_llama_dir):
    from conftest import sentiment_examples

    from w2sgen.models import resolve
    from w2sgen.pipeline import GROUND_TRUTH_LOSS, train_key
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
