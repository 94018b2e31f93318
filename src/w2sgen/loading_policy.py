"""How every model is read: the one loading policy, for every transformers call in w2sgen.

- No code from a model is ever run: every `from_pretrained` gets `trust_remote_code=False`
  (`hf_kwargs`), and a local folder whose config.json has an `auto_map` or a `model_type` this
  transformers does not know is refused before transformers sees it.
- Local folders are read from safetensors only. A folder whose weights are only pickles
  (`pytorch_model.bin`, `*.pt`, ...) is refused unless the user opts in with
  `W2S_ALLOW_PICKLE_WEIGHTS=1` (then transformers reads them with torch's restricted unpickler,
  `weights_only=True`). A safetensors file whose header does not match its size (truncated,
  padded, a header length past the end) is refused before it is mapped.
- A local folder must hold its tokenizer (`tokenizer.json`, `vocab.txt`, ...): without one,
  transformers builds a tokenizer of a few special tokens and a run trains on nothing.

Each refusal is one line naming the folder and what to do. Zoo models (hash-pinned packages)
and hub ids go through `hf_kwargs` too; the folder checks are for folders a user names.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import W2SError

PICKLE_ENV = "W2S_ALLOW_PICKLE_WEIGHTS"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model", "spiece.model",
                   "sentencepiece.bpe.model", "sentencepiece.model", "vocab.model")
MAX_HEADER = 100 * 2**20  # a safetensors header over 100 MiB is not a model's header


def hf_kwargs(kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`kwargs` for a transformers `from_pretrained`, with remote code refused whatever they say."""
    return {**(kwargs or {}), "trust_remote_code": False}


def pickles_allowed() -> bool:
    return os.environ.get(PICKLE_ENV, "").strip().lower() in ("1", "true", "yes")


def _refuse(name: str, what: str) -> W2SError:
    return W2SError(f"model folder {name!r} {what}")


def read_config(folder: Path, name: str) -> dict[str, Any]:
    """config.json as a mapping, or one line saying why it cannot be read."""
    path = folder / "config.json"
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _refuse(name, "has a config.json that is not UTF-8 text; save the model again "
                      "with save_pretrained") from None
    except OSError as e:
        raise _refuse(name, f"has a config.json that cannot be read ({e.strerror or e}); check "
                      "its permissions") from None
    try:
        config = json.loads(text)
    except ValueError as e:
        raise _refuse(name, f"has a config.json that is not valid JSON ({e}); save the model "
                      "again with save_pretrained") from None
    if not isinstance(config, dict):
        raise _refuse(name, "has a config.json that is not a JSON object; save the model again "
                      "with save_pretrained")
    return config


def _check_config(config: dict[str, Any], name: str) -> None:
    if "auto_map" in config:
        raise _refuse(name, "asks for custom code (config.json has auto_map); w2s never runs code "
                      "from a model folder: use a model whose model_type transformers knows, "
                      "without auto_map")
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise _refuse(name, "has no model_type in its config.json; save the model again with "
                      "save_pretrained")
    from transformers import CONFIG_MAPPING, __version__

    if model_type not in CONFIG_MAPPING:
        raise _refuse(name, f"has model_type {model_type[:60]!r}, which transformers {__version__} "
                      "does not know; w2s never runs code from a model folder: use a supported "
                      "architecture")
    positions = config.get("max_position_embeddings")
    if positions is not None and (isinstance(positions, bool) or not isinstance(positions, int)
                                  or positions < 1):
        raise _refuse(name, f"has max_position_embeddings={str(positions)[:40]} in its "
                      "config.json; it must be a positive integer")


def check_safetensors(path: Path, name: str) -> None:
    """The file's header (an 8-byte length, then JSON) must describe exactly the bytes after
    it: a truncated or padded file, or a header length past the end, is refused."""
    def bad(why: str) -> W2SError:
        return _refuse(name, f"has a damaged {path.name} ({why}); copy or save the model again")

    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise bad(f"{size} bytes, shorter than a header")
            n = int.from_bytes(head, "little")
            if n > min(size - 8, MAX_HEADER):
                raise bad(f"its header claims {n} bytes, the file has {size}")
            header = json.loads(f.read(n))
    except OSError as e:
        raise _refuse(name, f"has a {path.name} that cannot be read ({e.strerror or e}); check its "
                      "permissions") from None
    except ValueError:
        raise bad("its header is not JSON") from None
    try:
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        raise bad("its header does not list tensors") from None
    if 8 + n + max(ends, default=0) != size:
        raise bad(f"its tensors end at byte {8 + n + max(ends, default=0)}, the file has {size}")


def check_folder(folder: Path, name: str) -> dict[str, Any]:
    """Refuse a local model folder that breaks the policy (one line naming it); the extra
    `from_pretrained` kwargs its weights are loaded with."""
    _check_config(read_config(folder, name), name)
    files = [p for p in folder.iterdir() if p.is_file()]
    safetensors = sorted(p for p in files if p.suffix == ".safetensors")
    pickles = sorted(p.name for p in files if p.suffix in PICKLE_SUFFIXES)
    if not any(p.name in TOKENIZER_FILES for p in files):
        raise _refuse(name, f"has no tokenizer files (one of {', '.join(TOKENIZER_FILES[:3])}, ...); "
                      "save the tokenizer into it with tokenizer.save_pretrained(folder)")
    if safetensors:
        for p in safetensors:
            check_safetensors(p, name)
        return {"use_safetensors": True}
    if pickles and not pickles_allowed():
        raise _refuse(name, f"holds only pickled weights ({', '.join(pickles[:3])}); w2s reads "
                      "safetensors only: convert them (save_pretrained(folder, "
                      f"safe_serialization=True) where you trust the file) or set {PICKLE_ENV}=1 "
                      "to load them with torch's restricted unpickler")
    if not pickles:
        raise _refuse(name, "has no weights (*.safetensors); save the model into it with "
                      "save_pretrained")
    return {}


def weights_error(ref: Any, path: str, e: Exception) -> Exception:
    """What a failed weights load becomes: one line for what a file can cause (damaged
    safetensors, a pickle the restricted unpickler refuses, a missing or unreadable file);
    anything else (out of memory, a bug) as it was."""
    import pickle

    kinds = (OSError, ValueError, EOFError, pickle.UnpicklingError)
    if not isinstance(e, kinds) and type(e).__name__ != "SafetensorError":
        return e
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    if isinstance(e, pickle.UnpicklingError):  # never relay torch's advice to load it unrestricted
        first = "a pickle that torch's restricted unpickler refuses: it may run code"
    return W2SError(f"model {ref.name!r}: cannot load its weights from {path} ({type(e).__name__}: "
                    f"{first}); save the model again with save_pretrained (safetensors)")
