"""The ONNX Runtime extraction path: same output as `features.extract` at fp32, exported once,
cached atomically, and handing over to torch wherever it does not apply."""
from __future__ import annotations

import random

import numpy as np
import pytest
from conftest import WORDS, sentiment_examples

from w2sgen import features, onnx_features
from w2sgen.models import load, resolve
from w2sgen.tasks import Example

pytest.importorskip("onnxruntime")

MAX_LEN = 60  # below the tiny models' 64 positions


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_HOME", str(tmp_path))
    onnx_features._SESSIONS.clear()
    return tmp_path


@pytest.fixture(scope="module")
def bert(tiny_bert_dir):
    ref = resolve(str(tiny_bert_dir))
    model, tokenizer = load(ref)
    return ref, model, tokenizer


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(1)


def both(model, tokenizer, examples, pooling="mean", batch_size=8, join_pairs=False, **kw):
    args = {"pooling": pooling, "max_length": MAX_LEN, "batch_size": batch_size,
            "precision": "fp32", "join_pairs": join_pairs}
    return (onnx_features.extract(model, tokenizer, examples, **args, **kw),
            features.extract(model, tokenizer, examples, **args))


def mixed_lengths(n: int, seed: int = 1) -> list[Example]:
    """Lengths from 1 to beyond MAX_LEN, unsorted: batches pad, and some texts truncate."""
    rng = random.Random(seed)
    return [Example(f"m{i}", " ".join(rng.choice(WORDS) for _ in range(rng.choice(
        [1, 2, 5, 9, 17, 33, 70]))), i % 2) for i in range(n)]


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_matches_torch_path(home, bert, pooling):
    ref, model, tokenizer = bert
    examples = mixed_lengths(40) + sentiment_examples(20)
    got, want = both(model, tokenizer, examples, pooling=pooling, batch_size=7,
                     identity=ref.identity)
    assert got.shape == want.shape and got.dtype == np.float32
    assert cosine_rows(got, want).min() >= 0.99999
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    assert len(list((home / "onnx").glob("*.onnx"))) == 1


def test_pairs_and_batch_shapes(home, bert):
    """Segment ids travel (pairs), and batch size 1 (no padding at all) works on a graph traced
    with padding."""
    _, model, tokenizer = bert
    examples = [Example(f"p{i}", "the movie was good", 1, text_pair=" ".join(["bad"] * i))
                for i in range(1, 6)]
    for batch_size in (1, 3):
        got, want = both(model, tokenizer, examples, batch_size=batch_size)
        assert cosine_rows(got, want).min() >= 0.99999


def test_export_once_keyed_and_atomic(home, bert, monkeypatch):
    ref, model, tokenizer = bert
    examples = sentiment_examples(6)
    path = onnx_features.export_path(model, tokenizer, "mean", ref.identity)
    assert path.parent == home / "onnx"
    both(model, tokenizer, examples, identity=ref.identity)
    assert path.is_file() and not list(path.parent.glob(".tmp-*"))
    calls = []
    monkeypatch.setattr(onnx_features, "export", lambda *a: calls.append(a))
    onnx_features._SESSIONS.clear()
    both(model, tokenizer, examples, identity=ref.identity)
    assert calls == []  # the cached file was used
    # another pooling or identity is another file; no identity keys by the weights' digest
    assert onnx_features.export_path(model, tokenizer, "cls", ref.identity) != path
    assert onnx_features.export_path(model, tokenizer, "mean", "other") != path
    digest = onnx_features.weights_digest(model)
    assert digest.startswith("weights:") and onnx_features.weights_digest(model) == digest


def test_digest_follows_weights(home, tiny_bert_dir):
    model, _ = load(resolve(str(tiny_bert_dir)))
    before = onnx_features.weights_digest(model)
    import torch

    with torch.no_grad():
        next(model.parameters()).add_(1e-3)
    assert onnx_features.weights_digest(model) != before


def test_failed_export_leaves_nothing_and_falls_back(home, bert, monkeypatch, capsys):
    _, model, tokenizer = bert

    def broken(*args, **kwargs):
        raise RuntimeError("exporter broke")

    monkeypatch.setattr("torch.onnx.export", broken)
    examples = sentiment_examples(5)
    got, want = both(model, tokenizer, examples, identity="broken-model")
    np.testing.assert_array_equal(got, want)
    assert "ONNX Runtime export failed" in capsys.readouterr().err
    assert not list((home / "onnx").glob("*"))


def test_other_precisions_and_causal_go_to_torch(home, bert, tiny_llama_dir):
    _, model, tokenizer = bert
    assert onnx_features.supports(model, "fp32")
    assert not onnx_features.supports(model, "bf16")
    llama, _ = load(resolve(str(tiny_llama_dir)))
    assert not onnx_features.supports(llama, "fp32")
    examples = sentiment_examples(4)
    got = onnx_features.extract(model, tokenizer, examples, pooling="mean", max_length=MAX_LEN,
                                batch_size=4, precision="bf16", join_pairs=False)
    want = features.extract(model, tokenizer, examples, pooling="mean", max_length=MAX_LEN,
                            batch_size=4, precision="bf16", join_pairs=False)
    np.testing.assert_array_equal(got, want)
    assert not (home / "onnx").exists()


@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_plan_covers_every_text_once_and_pads_little(batch_size):
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 129, size=500)
    batches = onnx_features.plan(lengths, batch_size)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    longest = [int(lengths[b].max()) for b in batches]
    assert longest == sorted(longest, reverse=True)
    for b in batches:
        assert 1 <= len(b) <= batch_size
        padded, real = len(b) * int(lengths[b].max()), int(lengths[b].sum())
        assert len(b) == 1 or padded <= (1 + onnx_features.PAD_SLACK) * real
    # texts of one length share batches up to the batch size
    same = onnx_features.plan([7] * 10, 4)
    assert [len(b) for b in same] == [4, 4, 2]


def test_feed_matches_tokenizer_pad(bert):
    _, _, tokenizer = bert
    examples = mixed_lengths(9) + [Example("p", "a b c", 0, text_pair="d e")]
    encodings = features.tokenize(tokenizer, examples, MAX_LEN, False)
    names = onnx_features.INPUTS
    idx = np.arange(len(encodings))
    want = tokenizer.pad(encodings, return_tensors="np")
    got = onnx_features.feed(encodings, idx, names, tokenizer.pad_token_id)
    for k in names:
        np.testing.assert_array_equal(got[k], want[k])
        assert got[k].dtype == np.int64
