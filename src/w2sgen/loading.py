"""Loading a resolved model (refs.ModelRef): its tokenizer, its weights, and for a GGUF model the
dequantised copy kept in the data home so that later loads take seconds. What may be loaded is
loading_policy.py's rule."""
from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

from .errors import W2SError
from .loading_policy import hf_kwargs, weights_error
from .paths import home
from .refs import ModelRef

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
