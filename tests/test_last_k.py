"""train.mode=last_k: the top k blocks run on cached activations exactly as in the full model."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import sentiment_examples

from w2sgen import features as feats
from w2sgen.errors import W2SError
from w2sgen.last_k import LastKLearner, TopBlocks
from w2sgen.losses import xent
from w2sgen.models import load, resolve
from w2sgen.tasks import Example
from w2sgen.validate import load_config


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
        TopBlocks(load(resolve(str(tiny_llama_dir)))[0], 1)  # a decoder: CausalTopBlocks' job


@pytest.mark.slow
def test_last_k_runs_the_protocol_on_minilm(tmp_path):
    from w2sgen import pipeline

    cfg = load_config(None, ["task=sms_spam",  # easy: every model is clearly above chance on 120 examples
                             "weak_model=minilm-l6", "strong_model=minilm-l6", "splits.weak_train=120",
                             "splits.transfer=120", "splits.test=200", "eval.bootstrap=100",
                             "features.max_length=64",  # half the sequence: half the test's time
                             "train.mode=last_k", "train.last_k=2", "train.epochs=3", "train.lr=5e-4",
                             f"store={tmp_path}"])
    m = pipeline.run(cfg, quiet=True)["metrics"]
    for k in ("weak", "student", "ceiling"):
        assert 0.6 < m[f"{k}_accuracy"]["value"] <= 1
    assert len(m["curves"]["student"]["test_accuracy"]) == 3


def causal_batch(tok, texts, side):
    tok.padding_side = side
    exs = [Example(f"e{i}", t, 0) for i, t in enumerate(texts)]
    return feats.collate(tok, feats.tokenize(tok, exs, 64, True), torch.device("cpu"))


@pytest.mark.parametrize("side", ["right", "left"])
def test_causal_last_k_matches_full_model_training_on_tiny_llama(tiny_llama_dir, side):
    """Outputs and gradients of the top k blocks, the final norm and the head, from cached
    hidden states, equal those of the whole model trained end to end (last-token pooling)."""
    from w2sgen.last_k import CausalTopBlocks, positions, top_blocks

    ref = resolve(str(tiny_llama_dir))
    assert ref.kind == "causal"
    model, tok = load(ref)
    texts = TEXTS + ["good", "awful awful service"]
    y = torch.tensor([1, 0, 1, 1, 0])
    batch = causal_batch(tok, texts, side)
    mask = batch["attention_mask"]
    assert (mask[:, 0] == 0).any() if side == "left" else (mask[:, -1] == 0).any()  # padded
    torch.manual_seed(1)
    head = torch.nn.Linear(model.config.hidden_size, 2)
    for k in (1, 2):
        top = top_blocks(model, k, "tiny")
        assert isinstance(top, CausalTopBlocks) and top.start == 2 - k
        # the reference: the full model, every parameter in the graph
        model.zero_grad()
        head.zero_grad()
        full = model(**batch, position_ids=positions(mask))
        logits_full = head(feats.pool(full.last_hidden_state, mask, "last"))
        torch.nn.functional.cross_entropy(logits_full, y).backward()
        want = {n: p.grad.clone() for n, p in top.trained.named_parameters()}
        want_head = head.weight.grad.clone()
        # last_k: hidden states below the top k cached once (no graph), real tokens only
        with torch.no_grad():
            h = model(**batch, position_ids=positions(mask), output_hidden_states=True).hidden_states[top.start]
        acts = [h[r][mask[r].bool()] for r in range(len(texts))]
        model.zero_grad()
        head.zero_grad()
        hidden = torch.nn.utils.rnn.pad_sequence(acts, batch_first=True)
        lengths = torch.tensor([len(a) for a in acts])
        m2 = (torch.arange(hidden.shape[1])[None] < lengths[:, None]).long()
        logits_top = head(feats.pool(top(hidden, m2), m2, "last"))
        assert float((logits_top - logits_full).detach().abs().max()) < 1e-5
        torch.nn.functional.cross_entropy(logits_top, y).backward()
        got = {n: p.grad for n, p in top.trained.named_parameters()}
        assert set(got) == set(want) and len(got) == 9 * k + 1  # 9 tensors a Llama block, + norm
        for n in want:
            torch.testing.assert_close(got[n], want[n], rtol=1e-4, atol=1e-6, msg=n)
            assert float(want[n].abs().max()) > 0, n  # a real gradient, not two zeros
        torch.testing.assert_close(head.weight.grad, want_head, rtol=1e-4, atol=1e-6)
        # the frozen bottom got nothing in the last_k pass
        assert all(p.grad is None or not p.grad.any() for n, p in model.named_parameters()
                   if not n.startswith(tuple(f"layers.{i}." for i in range(top.start, 2)) + ("norm.",)))


def test_causal_last_k_learns_and_refuses_depth_before_running(tiny_llama_dir):
    ref = resolve(str(tiny_llama_dir))
    data = sentiment_examples(96)
    y = np.array([e.label for e in data], np.float32)
    cfg = load_config(None, ["train.mode=last_k", "train.last_k=2", "train.epochs=30",
                             "train.batch_size=16", "train.lr=0.003", "train.precision=fp32"])
    learner = LastKLearner(ref, cfg)
    hist = learner.fit(data[:64], y[:64], xent(), seed=0, desc="last_k")
    assert hist.loss[-1] < 0.5 * hist.loss[0]
    # the bottom's pass is kept for the process: the same examples again are not recomputed
    assert learner.activations(list(data[:64])) is learner.activations(data[:64])
    assert ((learner.predict(data[64:]) > 0.5) == y[64:]).mean() >= 0.75
    base, _ = load(ref)
    trained = dict(learner.backbone.named_parameters())
    for name, p in base.named_parameters():  # embeddings untouched; both blocks and norm trained
        assert torch.equal(p, trained[name]) == name.startswith("embed_tokens"), name
    # beyond its depth: refused when the config is built, before any weight is read
    with pytest.raises(W2SError, match=r"^train.last_k=3 but model .* has 2 transformer blocks; "
                                       r"set train.last_k between 1 and 2$"):
        load_config(None, ["train.mode=last_k", "train.last_k=3", f"strong_model={tiny_llama_dir}"])


def test_last_k_beyond_a_causal_lms_depth_is_one_line_exit_2_before_anything_runs(
        tiny_llama_dir, tmp_path, capsys):
    import yaml

    from w2sgen.cli import main

    store = tmp_path / "store"
    over = ["train.mode=last_k", "train.last_k=4", f"weak_model={tiny_llama_dir}",
            f"strong_model={tiny_llama_dir}", "task=rt_sentiment"]
    assert main(["run", *over, "--store", str(store)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: train.last_k=4 but model {str(tiny_llama_dir)!r} has 2 transformer "
                   "blocks; set train.last_k between 1 and 2"]
    assert not (store / "runs.sqlite").exists()
    suite = tmp_path / "s.yaml"
    base = {"train": {"mode": "last_k", "last_k": 4}, "weak_model": str(tiny_llama_dir),
            "strong_model": str(tiny_llama_dir), "task": "rt_sentiment"}
    suite.write_text(yaml.safe_dump({"base": base, "grid": {"seeds": [0, 1]}}))
    assert main(["sweep", str(suite), "--store", str(store), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.last_k=4 but model" in err[0] and "between 1 and 2" in err[0]


# ---------------------------------------------------------------- label_tokens over the cache

def label_tokens_cfg(path, *extra):
    from test_label_tokens import TINY

    return load_config(None, [*TINY, f"weak_model={path}", f"strong_model={path}",
                              "train.adapter=last_k", *extra])


@pytest.mark.parametrize("k", [1, 2])
def test_label_tokens_on_cached_states_match_the_whole_models_gradients(tiny_llama_dir, k):
    """label_tokens with adapter=last_k: the label logits from cached hidden states, and the
    gradients of the top k blocks, the final norm and the label-token rows of the LM head, equal
    those of the whole model (label_tokens' own forward, every weight in the graph)."""
    from w2sgen.last_k import LabelTokensLastK
    from w2sgen.train import LabelTokenLearner

    ref = resolve(str(tiny_llama_dir))
    data = sentiment_examples(24)
    y = np.array([e.label for e in data], np.float32)
    lt = LabelTokenLearner(ref, label_tokens_cfg(tiny_llama_dir, f"train.last_k={k}", "train.epochs=1",
                                                 "train.lr=0.01"))
    assert type(lt) is LabelTokensLastK
    lt.fit(data[:16], y[:16], xent(), seed=0, desc="t")  # trained a little: not the initial weights
    lm, ids = lt.lm, lt.prompts.label_ids
    rows = lt.prompts.encode(data)
    assert len({len(r) for r in rows}) > 1  # ragged prompts: padding is exercised
    with torch.no_grad():  # the whole model with the trained label rows in its head
        lm.get_output_embeddings().weight[ids] = lt.head.weight
    # the reference: label_tokens' forward of the whole model (adapter none), every weight trainable
    full = LabelTokenLearner(ref, label_tokens_cfg(tiny_llama_dir, "train.adapter=none"))
    full.lm, full.prompts, full.pad, full.softcap, full.device = lm, lt.prompts, 0, None, torch.device("cpu")
    target = torch.tensor([e.label for e in data])
    for p in lm.parameters():
        p.requires_grad_(True)
    lm.zero_grad()
    want_logits = full.label_logits(rows)
    torch.nn.functional.cross_entropy(want_logits, target).backward()
    top_names = [n for n, _ in lt.top.trained.named_parameters()]
    want = {n: p.grad.clone() for n, p in lt.top.trained.named_parameters()}
    want_rows = lm.get_output_embeddings().weight.grad[ids].clone()
    assert len(want) == 9 * k + 1 and all(float(g.abs().max()) > 0 for g in want.values())
    # last_k: the cached states below the top k blocks, only the top in the graph
    lm.zero_grad()
    lt.head.zero_grad()
    logits = lt.top_logits(lt.activations(rows))
    torch.testing.assert_close(logits, want_logits.detach(), rtol=1e-5, atol=1e-5)
    torch.nn.functional.cross_entropy(logits, target).backward()
    got = dict(lt.top.trained.named_parameters())
    assert list(got) == top_names
    for n in want:
        torch.testing.assert_close(got[n].grad, want[n], rtol=1e-4, atol=1e-6, msg=n)
    torch.testing.assert_close(lt.head.weight.grad, want_rows, rtol=1e-4, atol=1e-6)
    # nothing below the top k blocks is in the cached pass's graph
    bottom = [p for n, p in lm.named_parameters() if n.startswith("model.embed_tokens")
              or any(n.startswith(f"model.layers.{i}.") for i in range(2 - k))]
    assert bottom and all(p.grad is None or not p.grad.any() for p in bottom)


def test_label_tokens_last_k_learns_trains_only_the_top_and_refuses_depth(tiny_llama_dir):
    from w2sgen.train import LabelTokenLearner

    ref = resolve(str(tiny_llama_dir))
    data = sentiment_examples(96)
    y = np.array([e.label for e in data], np.float32)
    lt = LabelTokenLearner(ref, label_tokens_cfg(tiny_llama_dir, "train.last_k=1", "train.epochs=30",
                                                 "train.lr=0.003"))
    hist = lt.fit(data[:64], y[:64], xent(), seed=0, desc="t")
    assert hist.loss[-1] < 0.5 * hist.loss[0]
    assert ((lt.predict(data[64:]) > 0.5) == y[64:]).mean() >= 0.75
    base, _ = load(ref, lm_head=True)
    trained = dict(lt.lm.named_parameters())
    for name, p in base.named_parameters():  # the top block and norm train; the rest, LM head too, not
        assert torch.equal(p, trained[name]) == (not name.startswith(("model.layers.1.", "model.norm."))), name
    assert not torch.equal(lt.head.weight, base.get_output_embeddings().weight[lt.prompts.label_ids])
    with pytest.raises(W2SError, match=r"^train.last_k=3 but model .* has 2 transformer blocks; "
                                       r"set train.last_k between 1 and 2$"):
        label_tokens_cfg(tiny_llama_dir, "train.last_k=3")


def test_label_tokens_last_k_memory_and_time_are_last_ks(tiny_llama_dir):
    from w2sgen import hardware, memory
    from w2sgen.sweep.cells import Cell
    from w2sgen.sweep.estimates import time_estimates

    ref = resolve(str(tiny_llama_dir))
    arch = memory.arch_of(ref)
    kw = dict(batch_size=16, seq_len=24, last_k=1)
    lk = memory.estimate(arch, "last_k", **kw)
    lt = memory.estimate(arch, "label_tokens", adapter="last_k", **kw)
    assert not arch.tied and lt.parameters == lk.parameters + arch.vocab * arch.hidden * 4
    assert (lt.gradients, lt.optimizer, lt.activations) == (lk.gradients, lk.optimizer, lk.activations)
    assert "label_tokens (last_k)" in lt.setting
    cfg = label_tokens_cfg(tiny_llama_dir, "train.gradient_checkpointing=true")
    with pytest.raises(W2SError, match="gradient_checkpointing applies to"):
        memory.plan(ref, cfg, "cpu")
    # time: the top k blocks train; with k = the model's depth, what training every weight costs
    machine = hardware.probe("cpu")

    def seconds(*extra):
        cfg = label_tokens_cfg(tiny_llama_dir, "task=rt_sentiment", "splits.weak_train=50",
                               "splits.transfer=50", "splits.test=50", *extra)
        return time_estimates([Cell(0, "c", cfg)], machine).total
    whole, top1, top2 = seconds("train.adapter=none"), seconds("train.last_k=1"), seconds("train.last_k=2")
    assert top2 == pytest.approx(whole, rel=1e-9) and 0 < top1 < 0.75 * whole
