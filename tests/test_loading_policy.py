"""The loading policy (loading_policy.py): no remote code at any transformers call site,
safetensors only for local folders unless W2S_ALLOW_PICKLE_WEIGHTS opts in, a tokenizer in
every folder. The refusals of hostile folders are corpus cases (tests/fuzz, model-*)."""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from w2sgen import models
from w2sgen.errors import W2SError
from w2sgen.loading_policy import PICKLE_ENV, check_folder, hf_kwargs

SRC = Path(models.__file__).resolve().parent


def test_every_from_pretrained_in_the_package_refuses_remote_code():
    calls = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("from_pretrained", "pipeline"):
                star = [k.value for k in node.keywords if k.arg is None]
                ok = any(isinstance(v, ast.Call) and getattr(v.func, "id", "") == "hf_kwargs"
                         for v in star)
                calls.append((f"{path.relative_to(SRC)}:{node.lineno}", ok))
    assert len(calls) >= 10  # models, train, memory, lm.local, methods.generative
    assert [c for c, ok in calls if not ok] == []
    assert hf_kwargs({"trust_remote_code": True, "revision": "x"}) == {"trust_remote_code": False,
                                                                      "revision": "x"}


def _bin_only(src: Path, dst: Path) -> Path:
    import torch
    from safetensors.torch import load_file

    shutil.copytree(src, dst)
    (dst / "model.safetensors").unlink()
    torch.save(load_file(src / "model.safetensors"), dst / "pytorch_model.bin")
    return dst


def test_pickled_weights_need_the_opt_in_and_then_load_as_the_safetensors_do(
        tiny_bert_dir, tmp_path, monkeypatch):
    import torch

    folder = _bin_only(tiny_bert_dir, tmp_path / "bin-only")
    monkeypatch.delenv(PICKLE_ENV, raising=False)
    models.resolve.cache_clear()
    with pytest.raises(W2SError, match=f"holds only pickled weights.*{PICKLE_ENV}=1"):
        models.resolve(str(folder))
    monkeypatch.setenv(PICKLE_ENV, "1")
    models.resolve.cache_clear()
    ref = models.resolve(str(folder))
    assert ref.load_kwargs == {}
    picked, _ = models.load(ref)
    plain, tok = models.load(models.resolve(str(tiny_bert_dir)))
    ids = tok(["good movie"], return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(picked(**ids).last_hidden_state, plain(**ids).last_hidden_state)
    models.resolve.cache_clear()


def test_a_folder_with_safetensors_never_reads_its_pickles(tiny_bert_dir, tmp_path, monkeypatch):
    folder = tmp_path / "both"
    shutil.copytree(tiny_bert_dir, folder)
    (folder / "pytorch_model.bin").write_bytes(b"cposix\nsystem\n(Vfalse\ntR.")  # never unpickled
    monkeypatch.setenv(PICKLE_ENV, "1")
    assert check_folder(folder, "both") == {"use_safetensors": True}
    models.resolve.cache_clear()
    ref = models.resolve(str(folder))
    assert ref.load_kwargs == {"use_safetensors": True}
    model, _ = models.load(ref)  # would fail on the fake pickle if it were read
    assert model.config.hidden_size == 32
    models.resolve.cache_clear()


def test_no_home_directory_is_one_line(monkeypatch):
    """HOME unset and a uid without a passwd entry: Path.home() raises RuntimeError."""
    from pathlib import Path as P

    from w2sgen.paths import home

    monkeypatch.delenv("W2S_HOME", raising=False)

    def nowhere() -> P:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(P, "home", staticmethod(nowhere))
    with pytest.raises(W2SError, match="no home directory .*set W2S_HOME"):
        home()
