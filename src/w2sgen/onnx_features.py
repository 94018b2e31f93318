"""Frozen-feature extraction through ONNX Runtime: the fp32 CPU fast path for encoders.

On the CPU, the same fp32 arithmetic runs faster in ONNX Runtime than in eager PyTorch: its
graph optimiser fuses the attention, layer-norm and GELU chains that eager mode runs as separate
kernels, with a copy between them. `benchmarks/encode.py` compares the two on the same texts: on
a shared, noisy 2-core AVX512 CPU, 600 multiemo sentences, this path ran 1.5x (MiniLM) and 3.4x
(MPNet) the torch fp32 path, and faster than its bf16 autocast too, with min cosine 1.00000 to the
torch fp32 features (the test asserts >= 0.99999 on a tiny BERT).

Batches are planned by length (`plan`): texts of (nearly) one length share a batch, at most
`batch_size` of them, so padding stays under 5% of the real tokens instead of the +41% that fixed
batches of 64 length-sorted sentences padded; the int64 feeds are filled directly (`feed`), not
through `tokenizer.pad`. The values are those of padded batches to fp32 rounding (the attention
mask hides padding), so cached features keep their keys.

The model is exported once (torch.onnx, pooling inside the graph) into the data home,
`onnx/<key>.onnx`, keyed by the model's identity (`ModelRef.identity` when the caller passes it,
else a digest of the weights), the pooling, the input names and the torch/transformers versions;
the write is atomic, so a killed export leaves no half file. `extract` has the signature and the
output of `features.extract`. Anything this path does not cover -- a precision other than fp32,
a model not on the CPU, a causal LM, onnxruntime not installed, an export that fails -- goes to
`features.extract`, so calling this is never worse than calling that.
"""
from __future__ import annotations

import hashlib
import json
import sys
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import features, progress
from .atomic import temp_prefix
from .example import Example
from .paths import home

FORMAT = 1  # of the exported graphs: bump when the export changes
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")

_SESSIONS: dict[tuple[str, int], Any] = {}
_DIGESTS: weakref.WeakKeyDictionary[Any, tuple[tuple, str]] = weakref.WeakKeyDictionary()
_FAILED: set[str] = set()


def available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def supports(model: Any, precision: str) -> bool:
    """Whether `extract` runs this model through ONNX Runtime (else it hands over to
    `features.extract`): fp32, on the CPU, an encoder (no causal LM), onnxruntime installed."""
    if precision != "fp32" or not available():
        return False
    try:
        device = next(model.parameters()).device
    except (StopIteration, AttributeError):
        return False
    config = getattr(model, "config", None)
    if device.type != "cpu" or config is None or getattr(config, "is_decoder", False):
        return False
    archs = getattr(config, "architectures", None) or []
    return not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs)


def input_names(model: Any, tokenizer: Any) -> list[str]:
    """The tokenizer outputs the model takes, in the export's order."""
    import inspect

    accepted = set(inspect.signature(model.forward).parameters)
    given = set(getattr(tokenizer, "model_input_names", INPUTS[:2])) | {"input_ids", "attention_mask"}
    return [k for k in INPUTS if k in given and k in accepted]


def weights_digest(model: Any) -> str:
    """A digest of the config and every weight. Remembered per model object until any parameter
    changes in place (torch's version counters), so repeated calls cost nothing."""
    import torch

    state = model.state_dict()
    versions = tuple(t._version for t in state.values())
    known = _DIGESTS.get(model)
    if known is not None and known[0] == versions:
        return known[1]
    h = hashlib.blake2b(digest_size=16)
    h.update(model.config.to_json_string().encode())
    for name, t in state.items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    digest = f"weights:{h.hexdigest()}"
    _DIGESTS[model] = (versions, digest)
    return digest


def export_path(model: Any, tokenizer: Any, pooling: str, identity: str | None = None) -> Path:
    import torch
    import transformers

    parts = [FORMAT, OPSET, identity or weights_digest(model), pooling, input_names(model, tokenizer),
             torch.__version__, transformers.__version__]
    key = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:20]
    return home() / "onnx" / f"{key}.onnx"


def pooled_module(model: Any, names: Sequence[str], pooling: str) -> Any:
    """The backbone and the pooling as one module: token ids in (positionally, in `names`
    order), one fp32 vector per text out."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return features.backbone_forward(self.model, dict(zip(names, inputs)), pooling)

    return Pooled().eval()


def export(model: Any, tokenizer: Any, pooling: str, path: Path) -> Path:
    """Export to `path` atomically (a temporary file in the same folder, then a rename)."""
    import torch

    names = input_names(model, tokenizer)
    # Two texts of different lengths: the example batch must contain padding, or a mask that
    # happens to be all ones could be traced away.
    sample = tokenizer(["a short text", "a somewhat longer text that needs a few more tokens"],
                       padding=True, return_tensors="pt")
    args = tuple(sample[k] for k in names)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{temp_prefix()}{path.name}")  # swept by the next command if killed
    try:
        import warnings

        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(pooled_module(model, names, pooling), args, str(tmp), dynamo=False,
                              input_names=names, output_names=["pooled"], opset_version=OPSET,
                              dynamic_axes={k: {0: "batch", 1: "length"} for k in names})
        meta = {"format": FORMAT, "inputs": names, "pooling": pooling,
                "model": getattr(model.config, "_name_or_path", "")}
        path.with_suffix(".json").write_text(json.dumps(meta, indent=1))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def session(path: Path, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session for `path` (kept for the process), with torch's thread count
    unless told otherwise."""
    import onnxruntime as ort
    import torch

    threads = threads or torch.get_num_threads()
    key = (str(path), threads)
    if key not in _SESSIONS:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        _SESSIONS[key] = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return _SESSIONS[key]


def prepare(model: Any, tokenizer: Any, pooling: str, identity: str | None = None) -> Path:
    """The cached export for this model and pooling, exporting it first if needed."""
    path = export_path(model, tokenizer, pooling, identity)
    if not path.is_file():
        export(model, tokenizer, pooling, path)
    return path


def extract(model: Any, tokenizer: Any, examples: Sequence[Example], *, pooling: str,
            max_length: int, batch_size: int, precision: str, join_pairs: bool,
            desc: str = "features", identity: str | None = None) -> np.ndarray:
    """`features.extract`, through ONNX Runtime where `supports(model, precision)`. `identity`
    (the ModelRef's) names the export; give it only for weights loaded unchanged from that ref.
    Without it the weights are digested (a fraction of a second for a 110M model)."""
    if not supports(model, precision):
        return features.extract(model, tokenizer, examples, pooling=pooling, max_length=max_length,
                                batch_size=batch_size, precision=precision,
                                join_pairs=join_pairs, desc=desc)
    try:
        path = prepare(model, tokenizer, pooling, identity)
        sess = session(path)
    except Exception as e:  # noqa: BLE001 - any exporter/runtime failure: the torch path
        reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        if reason not in _FAILED:
            _FAILED.add(reason)
            print(f"warning: ONNX Runtime export failed ({reason[:200]}); extracting with torch",
                  file=sys.stderr, flush=True)
        return features.extract(model, tokenizer, examples, pooling=pooling, max_length=max_length,
                                batch_size=batch_size, precision=precision,
                                join_pairs=join_pairs, desc=desc)
    return run(sess, tokenizer, examples, max_length=max_length, batch_size=batch_size,
               join_pairs=join_pairs, desc=desc)


PAD_SLACK = 0.05  # a batch pads at most this fraction of its real tokens (see `plan`)


def plan(lengths: Sequence[int], batch_size: int, slack: float = PAD_SLACK) -> list[np.ndarray]:
    """Batches of text indices, longest first: at most `batch_size` texts each, and padding (to
    the batch's longest text) at most `slack` of the batch's real tokens, so texts of one length
    share a batch and a batch never mixes lengths far apart. Fixed-size batches of length-sorted
    texts padded +41% on the encode benchmark's sentences; with this, under 5%."""
    lens = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lens, kind="stable")
    batches, start, n = [], 0, len(order)
    while start < n:
        longest = int(lens[order[start]])
        end, real = start + 1, longest
        while end < n and end - start < batch_size:
            nxt = int(lens[order[end]])
            if (end - start + 1) * longest > (1 + slack) * (real + nxt):
                break
            real += nxt
            end += 1
        batches.append(order[start:end])
        start = end
    return batches


def feed(encodings: Sequence[dict], idx: np.ndarray, names: Sequence[str], pad_id: int,
         left: bool = False) -> dict[str, np.ndarray]:
    """The padded int64 arrays of one batch (what `tokenizer.pad` makes, without its per-text
    Python overhead): input ids padded with `pad_id`, mask and segment ids with 0."""
    rows = [encodings[i] for i in idx]
    width = max(len(r["input_ids"]) for r in rows)
    out = {k: np.full((len(rows), width), pad_id if k == "input_ids" else 0, dtype=np.int64)
           for k in names}
    for j, r in enumerate(rows):
        n = len(r["input_ids"])
        cols = slice(width - n, width) if left else slice(0, n)
        for k in names:
            if k == "attention_mask":
                out[k][j, cols] = 1
            elif k in r:
                out[k][j, cols] = r[k]
    return out


def run(sess: Any, tokenizer: Any, examples: Sequence[Example], *, max_length: int,
        batch_size: int, join_pairs: bool, desc: str = "features") -> np.ndarray:
    """Texts -> pooled fp32 vectors through an exported session, in the examples' order; in
    batches of (nearly) equal length (`plan`)."""
    names = [i.name for i in sess.get_inputs()]
    encodings = features.tokenize(tokenizer, examples, max_length, join_pairs)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    left = getattr(tokenizer, "padding_side", "right") == "left"
    out: np.ndarray | None = None
    bar = progress.bar(len(examples), desc, "example", leave=False)
    for idx in plan([len(e["input_ids"]) for e in encodings], batch_size):
        vec = sess.run(None, feed(encodings, idx, names, pad_id, left))[0]
        if out is None:
            out = np.empty((len(examples), vec.shape[1]), dtype=np.float32)
        out[idx] = vec
        bar.update(len(idx))
    bar.close()
    if out is None:
        raise ValueError("no examples to extract features from")
    return out
