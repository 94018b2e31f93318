"""train.mode=last_k: the top k blocks run on cached activations exactly as in the full model."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import sentiment_examples

from w2sgen import features as feats
from w2sgen.config import load_config
from w2sgen.errors import W2SError
from w2sgen.last_k import LastKLearner, TopBlocks
from w2sgen.losses import xent
from w2sgen.models import load, resolve
from w2sgen.tasks import Example


def full_vs_top(ref_name: str, k: int, texts: list[str]) -> float:
    ref = resolve(ref_name)
    model, tok = load(ref)
    top = TopBlocks(model, k).eval()
    exs = [Example(f"e{i}", t, 0) for i, t in enumerate(texts)]
    batch = feats.collate(tok, feats.tokenize(tok, exs, 64, False), torch.device("cpu"))
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
        again = top(out.hidden_states[top.start], batch["attention_mask"])
    m = batch["attention_mask"].bool()
    return float((again[m] - out.last_hidden_state[m]).abs().max())


TEXTS = ["good movie", "the food was awful and the service was very poor indeed", "not bad"]


def test_top_blocks_reproduce_the_full_forward_on_tiny_bert(tiny_bert_dir):
    for k in (1, 2):
        assert full_vs_top(str(tiny_bert_dir), k, TEXTS) < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("name", ["minilm-l6", "mpnet-base"])
def test_top_blocks_reproduce_the_full_forward_on_packaged_encoders(name):
    assert full_vs_top(name, 2, ["A lovely, quiet hotel.", "Terrible service; never again!", "ok"]) < 1e-4


def test_last_k_learns_trains_only_the_top_blocks_and_rejects_bad_k(tiny_bert_dir, tiny_llama_dir):
    ref = resolve(str(tiny_bert_dir))
    cfg = load_config(None, ["train.mode=last_k", "train.last_k=1", "train.epochs=8",
                             "train.batch_size=16", "train.lr=0.003"])
    data = sentiment_examples(96)
    y = np.array([e.label for e in data], np.float32)
    learner = LastKLearner(ref, cfg)
    hist = learner.fit(data[:64], y[:64], xent(), seed=0, desc="last_k")
    assert hist.loss[-1] < hist.loss[0]
    # the tiny model is random below the top block: learning the toy task needs both blocks
    both = LastKLearner(ref, load_config(None, ["train.mode=last_k", "train.last_k=2", "train.epochs=30",
                                                "train.batch_size=16", "train.lr=0.003"]))
    both.fit(data[:64], y[:64], xent(), seed=0, desc="last_k")
    assert ((both.predict(data[64:]) > 0.5) == y[64:]).mean() >= 0.75
    base, _ = load(ref)
    trained = dict(learner.backbone.named_parameters())
    for name, p in base.named_parameters():  # bottom block and embeddings untouched, top changed
        same = torch.equal(p, trained[name])
        assert same == (not name.startswith("encoder.layer.1.")), name
    with pytest.raises(W2SError, match="between 1 and 2"):
        LastKLearner(ref, load_config(None, ["train.mode=last_k", "train.last_k=5"])).fit(
            data[:8], y[:8], xent(), 0, "x")
    with pytest.raises(W2SError, match="use train.mode=full or lora"):
        LastKLearner(resolve(str(tiny_llama_dir)), cfg).fit(data[:8], y[:8], xent(), 0, "x")


@pytest.mark.slow
def test_last_k_runs_the_protocol_on_minilm(tmp_path):
    from w2sgen import pipeline

    cfg = load_config(None, ["weak_model=minilm-l6", "strong_model=minilm-l6", "splits.weak_train=120",
                             "splits.transfer=120", "splits.test=200", "eval.bootstrap=100",
                             "features.max_length=64",  # half the sequence: half the test's time
                             "train.mode=last_k", "train.last_k=2", "train.epochs=3", "train.lr=5e-4",
                             f"store={tmp_path}"])
    m = pipeline.run(cfg, quiet=True)["metrics"]
    for k in ("weak", "student", "ceiling"):
        assert 0.6 < m[f"{k}_accuracy"]["value"] <= 1
    assert len(m["curves"]["student"]["test_accuracy"]) == 3
