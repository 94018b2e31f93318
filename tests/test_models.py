"""The model zoo on the fetcher (zoo.py, fetch.py): what each model is pinned to, the names that
say how to get it, and the ONNX-only MiniLM-L3 converted to a transformers folder.

The unit tests build a tiny ONNX export in tmp_path and need no download (the fetcher itself is
tested in test_fetch.py). The `slow` tests use the real pulled models: each is skipped when its
model is not pulled, except that on CI (`CI` set) a missing minilm-l3 fails, since `make test`
pulls it. The 1.5B Qwen also needs W2S_TEST_BIG=1: it takes ~90 s and ~9 GB of RAM to load.
"""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from w2sgen import zoo_fetch
from w2sgen.errors import MissingAsset, W2SError
from w2sgen.fetch import Asset, File
from w2sgen.models import MODELS, load, resolve
from w2sgen.zoo import MINILM_L3_ONNX, QWEN_05B, QWEN_15B

ON_CI = bool(os.environ.get("CI"))


@pytest.fixture
def data_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("W2S_HOME", str(home))
    resolve.cache_clear()
    yield home
    resolve.cache_clear()


def test_zoo_pins_the_joined_files_and_their_parts():
    for asset, n, version, size in ((QWEN_05B, 6, "0.9.0", 5 * 89_128_960 + 45_755_264),
                                    (QWEN_15B, 22, "0.2.0", 21 * 52_428_800 + 16_315_968)):
        (src, *_hub) = asset.sources
        assert len(src.packages) == n and src.join
        assert [p.member.rsplit("/", 1)[1] for p in src.packages] == \
            [f"part{i:02d}.bin" for i in range(1, n + 1)]
        assert {p.version for p in src.packages} == {version}
        assert asset.files[0].size == size and len(asset.files[0].sha256) == 64
        assert "unknown-origin" in asset.tags and MODELS.get(asset.name).unknown_origin
    assert QWEN_05B.files[0].size == 491_400_064 and QWEN_15B.files[0].size == 1_117_320_768


def test_unpulled_models_name_the_pull_command(data_home):
    for name in ("qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct", "minilm-l3"):
        with pytest.raises(MissingAsset, match=f"run `w2s pull {name}`"):
            resolve(name)
        assert not MODELS.get(name).installed()


def test_models_listing_says_what_licence_and_provenance(tmp_path):
    out = subprocess.run([sys.executable, "-m", "w2sgen", "models"], capture_output=True,
                         env={**os.environ, "W2S_HOME": str(tmp_path)},  # nothing installed
                         text=True, timeout=120, check=True).stdout
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "\n    install: w2s pull --allow-unknown-origin qwen2.5-coder-1.5b-instruct\n" in out
    assert "no: w2s pull minilm-l6\n" in out
    for name in ("minilm-l3", "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"):
        assert name in out
    assert "Qwen2.5-Coder-0.5B-Instruct" in out and "Qwen2.5-Coder-1.5B-Instruct" in out
    assert "Apache-2.0 upstream (Qwen2.5-Coder)" in out
    assert out.count("unknown origin") >= 2


# ----------------------------------------------------------------------------- ONNX -> BERT


PREFIX = "model.0.auto_model."


@pytest.fixture(scope="module")
def tiny_onnx_bert():
    """A tiny BERT exported the way sentence-transformers' ONNX exports are laid out (the
    encoder at `model.0.auto_model`, token states out), with random non-zero biases so that the
    exporter keeps every initializer apart."""
    pytest.importorskip("onnx")
    import warnings

    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=40, max_position_embeddings=64, attn_implementation="eager")

    class Export(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = torch.nn.ModuleList([torch.nn.Module()])
            self.model[0].auto_model = BertModel(cfg, add_pooling_layer=False)

        def forward(self, input_ids, attention_mask):
            return self.model[0].auto_model(input_ids=input_ids,
                                            attention_mask=attention_mask).last_hidden_state

    m = Export().eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.2)
    ids = torch.randint(1, 60, (2, 7))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (ids, torch.ones_like(ids)), buf, dynamo=False, opset_version=17,
                          input_names=["input_ids", "attention_mask"], output_names=["tokens"],
                          dynamic_axes={k: {0: "batch", 1: "seq"} for k in ("input_ids", "attention_mask")})
    return buf.getvalue(), m, cfg


def test_onnx_conversion_reproduces_the_exported_model(tiny_onnx_bert, tmp_path):
    import torch
    from transformers import AutoModel

    data, original, _ = tiny_onnx_bert
    config, state = zoo_fetch.onnx_to_bert(data, PREFIX)
    assert (config["num_hidden_layers"], config["num_attention_heads"], config["hidden_size"],
            config["intermediate_size"], config["vocab_size"]) == (2, 4, 32, 40, 60)
    zoo_fetch.write_bert_folder((config, state), tmp_path / "bert")
    model = AutoModel.from_pretrained(tmp_path / "bert").eval()
    ids = torch.tensor([[2, 5, 9, 14, 3, 0, 0], [2, 7, 7, 30, 41, 22, 3]])
    mask = (ids != 0).long()
    with torch.inference_mode():
        ours = model(input_ids=ids, attention_mask=mask).last_hidden_state
        ref = original(ids, mask)
    assert (ours - ref)[mask.bool()].abs().max() < 1e-5
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    onnx_out = sess.run(["tokens"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    assert abs(ours.numpy() - onnx_out)[mask.bool().numpy()].max() < 1e-4


def test_onnx_conversion_rejects_a_graph_it_cannot_map(tiny_onnx_bert):
    import onnx

    data, _, _ = tiny_onnx_bert
    model = onnx.load_from_string(data)
    renamed = {}
    for t in model.graph.initializer:  # hide the linear biases: their MatMul weights map to nothing
        if t.name.endswith(".bias") and "LayerNorm" not in t.name:
            renamed[t.name] = t.name = "hidden." + t.name
    for n in model.graph.node:
        n.input[:] = [renamed.get(i, i) for i in n.input]
    with pytest.raises(W2SError, match="feed no biased layer"):
        zoo_fetch.onnx_to_bert(model.SerializeToString(), PREFIX)


def test_interrupted_onnx_conversion_leaves_nothing(tmp_path, data_home, monkeypatch,
                                                    tiny_onnx_bert, tiny_bert_dir):
    data, _, _ = tiny_onnx_bert
    onnx = Asset("tiny-onnx", "a tiny ONNX graph", (File("m.onnx", len(data),
                                                          hashlib.sha256(data).hexdigest()),), ())
    tok_files = [f.name for f in tiny_bert_dir.iterdir() if f.name.startswith(("tokenizer", "special"))]
    tokenizer = Asset("tiny-tok", "tokenizer", tuple(
        File(n, (tiny_bert_dir / n).stat().st_size, hashlib.sha256((tiny_bert_dir / n).read_bytes()).hexdigest())
        for n in tok_files), ())
    folder = data_home / "models" / "tiny-l2"
    with pytest.raises(MissingAsset, match="run `w2s pull tiny-l2`"):
        zoo_fetch.convert_onnx_bert("tiny-l2", onnx, tokenizer, folder, PREFIX)
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "m.onnx").write_bytes(data)
    onnx.pull(tmp_path / "onnx", say=lambda _: None)
    tokenizer.pull(tiny_bert_dir, say=lambda _: None)
    monkeypatch.setattr(zoo_fetch, "TOKENIZER_FILES", tuple(tok_files))
    real = zoo_fetch.write_bert_folder

    def write_then_die(converted, target):
        real(converted, target)
        raise KeyboardInterrupt  # after the weights, before the tokenizer: a half folder

    monkeypatch.setattr(zoo_fetch, "write_bert_folder", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        zoo_fetch.convert_onnx_bert("tiny-l2", onnx, tokenizer, folder, PREFIX)
    assert not folder.exists() and not list(folder.parent.glob(".*partial*"))
    monkeypatch.setattr(zoo_fetch, "write_bert_folder", real)
    out = zoo_fetch.convert_onnx_bert("tiny-l2", onnx, tokenizer, folder, PREFIX)
    assert out == folder and (folder / "model.safetensors").is_file()
    assert (folder / "tokenizer_config.json").is_file()
    source = (folder / "w2sgen_source.json").read_text()
    assert onnx.identity in source and tokenizer.identity in source


# ----------------------------------------------------------------------------- real models


def pulled(name: str, ci_required: bool = False):
    """Skip unless `name` is pulled; on CI a required model that is missing fails instead."""
    if MODELS.get(name).installed() or (ci_required and ON_CI):
        return pytest.mark.skipif(False, reason="")
    return pytest.mark.skipif(True, reason=f"{name} not pulled (w2s pull {name})")


@pytest.mark.slow
@pulled("minilm-l3", ci_required=True)
def test_minilm_l3_matches_onnxruntime():
    import numpy as np
    import torch

    try:
        ort = pytest.importorskip("onnxruntime") if not ON_CI else __import__("onnxruntime")
        ref = resolve("minilm-l3")
    except (MissingAsset, ImportError) as e:
        pytest.fail(f"on CI minilm-l3 and onnxruntime must be installed: {e}")
    assert ref.kind == "encoder" and ref.pooling == "mean"
    model, tok = load(ref)
    assert model.config.num_hidden_layers == 3 and model.config.hidden_size == 384
    texts = ["A man is eating food.", "The quick brown fox jumps over the lazy dog!", "ok",
             "Weak-to-strong generalisation, measured offline with bootstrap intervals."]
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        ours = model(**enc).last_hidden_state.numpy()
    graph = (MINILM_L3_ONNX.folder / MINILM_L3_ONNX.files[0].path).read_bytes()
    sess = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    token_out = next(o.name for o in sess.get_outputs() if len(o.shape) == 3)
    theirs = sess.run([token_out], {"input_ids": enc["input_ids"].numpy(),
                                    "attention_mask": enc["attention_mask"].numpy()})[0]
    real = enc["attention_mask"].numpy().astype(bool)
    assert np.abs(ours - theirs)[real].max() <= 1e-4  # measured 1.1e-6


def _load_and_forward(name: str, hidden: int):
    import torch

    ref = resolve(name)
    assert ref.kind == "causal" and ref.pooling == "last"
    assert ref.load_kwargs["gguf_file"].endswith(".gguf")
    model, tok = load(ref, lm_head=True)
    assert tok.chat_template is not None and "<|im_start|>" in tok.chat_template
    enc = tok(["The capital of France is"], return_tensors="pt")
    with torch.inference_mode():
        out = model(**enc, output_hidden_states=True)
    assert out.hidden_states[-1].shape == (1, enc["input_ids"].shape[1], hidden)
    assert torch.isfinite(out.hidden_states[-1]).all()
    assert tok.decode(out.logits[0, -1].argmax()).strip() == "Paris"  # a trained model


@pytest.mark.slow
@pulled("qwen2.5-coder-0.5b-instruct")
def test_qwen05b_assembled_file_is_the_pinned_one_and_loads():
    assert QWEN_05B.verify() == []  # full sha256 of the joined file, ~2 s
    _load_and_forward("qwen2.5-coder-0.5b-instruct", 896)  # ~70-100 s load, ~4 GB peak RAM


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("W2S_TEST_BIG"), reason="set W2S_TEST_BIG=1 (~90 s, ~9 GB RAM)")
@pulled("qwen2.5-coder-1.5b-instruct")
def test_qwen15b_assembled_file_is_the_pinned_one_and_loads():
    assert QWEN_15B.verify() == []
    _load_and_forward("qwen2.5-coder-1.5b-instruct", 1536)


@pytest.mark.slow
@pulled("smollm2-135m", ci_required=True)
def test_a_gguf_model_is_dequantised_once_and_then_loads_the_same_from_the_copy(tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM

    from w2sgen import loading, models

    monkeypatch.setattr(loading, "home", lambda: tmp_path)
    ref = resolve("smollm2-135m")
    folder = models.dequantised_dir(ref)
    assert folder is not None and folder.parent.parent == tmp_path / "models" and not folder.exists()
    assert models.source(ref) == (ref.path, ref.load_kwargs)  # no copy yet, and none is made
    first = models.load_tokenizer(ref)  # converted from the GGUF file once, and kept
    kept = folder.with_name(folder.name + "-tokenizer")
    assert (kept / "complete").is_file() and not folder.exists()
    assert models.load_tokenizer(ref)("a b").input_ids == first("a b").input_ids
    built: list = []  # the model transformers dequantises from the GGUF file, kept for the check
    real_load = AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained",
                        lambda *a, **k: built.append((k, real_load(*a, **k))) or built[-1][1])
    model, tok = load(ref, lm_head=True)  # the first load makes the copy
    assert (folder / "complete").is_file() and list(folder.glob("*.safetensors"))
    # the first read was the GGUF file's (dequantised in Python, what the copy saves), the
    # second the copy; one GGUF read fewer than loading it again here
    assert "gguf_file" in built[0][0] and "gguf_file" not in built[-1][0]
    direct = built[0][1].eval()
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", real_load)
    enc = tok(["The capital of France is", "ok"], return_tensors="pt", padding=True)
    with torch.inference_mode():
        ours = model(**enc, output_hidden_states=True)
        assert torch.equal(ours.logits, direct(**enc).logits)  # the same fp32 values

    calls: list[dict] = []
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained",
                        lambda *a, **k: calls.append(k) or real_load(*a, **k))
    again, tok2 = load(ref, lm_head=True)
    assert calls and all("gguf_file" not in k for k in calls)  # read from the copy
    assert tok2(["x y, z"]).input_ids == tok(["x y, z"]).input_ids
    assert tok2.chat_template == tok.chat_template and tok2.pad_token == tok.pad_token
    backbone, _ = load(ref)  # the backbone without the LM head, from the same copy
    with torch.inference_mode():
        assert torch.equal(again(**enc).logits, ours.logits)
        assert torch.equal(backbone(**enc).last_hidden_state, ours.hidden_states[-1])
