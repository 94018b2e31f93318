"""A BERT encoder shipped only as an ONNX graph (paraphrase-MiniLM-L3-v2, the `minilm-l3-onnx`
asset), converted once to a transformers `BertModel` folder (safetensors, config, and the
WordPiece tokenizer of another asset with the same vocabulary) in the data home, atomically.
The `onnx` package is needed for the conversion only.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from .atomic import atomic_dir, remove_partials
from .errors import MissingAsset, W2SError
from .fetch import Asset, pull_lock

CONVERTER = "1"  # bump when the conversion changes: it is part of the cache identity
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def convert_onnx_bert(name: str, onnx: Asset, tokenizer: Asset, folder: Path, prefix: str) -> Path:
    """`folder`, made once from the installed ONNX asset and the tokenizer files of another
    (same vocabulary); `prefix` is stripped from the graph's initializer names."""
    with pull_lock(name):
        if (folder / "model.safetensors").is_file():
            return folder
        for asset in (onnx, tokenizer):
            if not asset.installed():
                raise MissingAsset(f"model {name!r} ({asset.what})", name)
        remove_partials(folder.parent, folder.name)
        data = (onnx.folder / onnx.files[0].path).read_bytes()
        with atomic_dir(folder) as tmp:
            write_bert_folder(onnx_to_bert(data, prefix), tmp)
            for f in TOKENIZER_FILES:
                shutil.copy2(tokenizer.folder / f, tmp / f)
            (tmp / "w2sgen_source.json").write_text(json.dumps({
                "converted_from": onnx.identity, "tokenizer_from": tokenizer.identity,
                "converter": CONVERTER}, indent=1) + "\n")
    return folder


def onnx_to_bert(data: bytes, prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(BertConfig keyword arguments, state dict of numpy arrays) from a sentence-transformers
    ONNX export of a BERT encoder.

    Named initializers keep their names (less `prefix`). The linear layers' weights are unnamed
    (`onnx::MatMul_*`, stored input-major): each is the second input of a MatMul whose output an
    Add consumes together with a named `.bias`, so it is that layer's `.weight`, transposed."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise W2SError("converting an ONNX model needs the onnx package; run `w2s pull` for the "
                       "model again (it installs onnx)") from None
    graph = onnx.load_from_string(data).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    state = {k[len(prefix):]: v for k, v in inits.items() if k.startswith(prefix)}
    matmul_weight = {n.output[0]: n.input[1] for n in graph.node
                     if n.op_type == "MatMul" and len(n.input) == 2 and n.input[1] in inits
                     and not n.input[1].startswith(prefix)}
    used = set()
    for n in graph.node:
        if n.op_type != "Add":
            continue
        biases = [i for i in n.input if i.startswith(prefix) and i.endswith(".bias")]
        products = [i for i in n.input if i in matmul_weight]
        if len(biases) == 1 and len(products) == 1:
            w = matmul_weight[products[0]]
            state[biases[0][len(prefix):-len(".bias")] + ".weight"] = inits[w].T.copy()
            used.add(w)
    left = sorted(set(matmul_weight.values()) - used)
    if left:
        raise W2SError(f"ONNX graph: weights {', '.join(left[:3])} feed no biased layer; this "
                       "is not the BERT export the zoo expects")

    layers = {int(m.group(1)) for k in state if (m := re.match(r"encoder\.layer\.(\d+)\.", k))}
    vocab, hidden = state["embeddings.word_embeddings.weight"].shape
    eps = [a.f for n in graph.node if n.op_type == "LayerNormalization"
           for a in n.attribute if a.name == "epsilon"]
    # attention scores are scaled by 1/sqrt(head size): a scalar Constant that an attention Div
    # divides by (older exporters, this package) or a Mul multiplies by (newer transformers)
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
              if n.op_type == "Constant" and n.attribute
              and n.attribute[0].type == onnx.AttributeProto.TENSOR}
    scales = set()
    for n in graph.node:
        c = consts.get(n.input[-1]) if n.op_type in ("Div", "Mul") and "attention" in n.name else None
        if c is not None and c.size == 1 and 0 < float(c) and float(c) != 1:
            scales.add(round(float(c) ** (2 if n.op_type == "Div" else -2)))
    if len(scales) != 1 or hidden % next(iter(scales)):
        raise W2SError(f"ONNX graph: cannot read the attention head size (found {sorted(scales)})")
    gelu = any(n.op_type == "Erf" for n in graph.node)
    config = {
        "vocab_size": int(vocab), "hidden_size": int(hidden), "num_hidden_layers": len(layers),
        "num_attention_heads": int(hidden // next(iter(scales))),
        "intermediate_size": int(state["encoder.layer.0.intermediate.dense.bias"].shape[0]),
        "max_position_embeddings": int(state["embeddings.position_embeddings.weight"].shape[0]),
        "type_vocab_size": int(state["embeddings.token_type_embeddings.weight"].shape[0]),
        "layer_norm_eps": float(f"{eps[0]:.6g}") if eps else 1e-12,
        "hidden_act": "gelu" if gelu else "gelu_new", "architectures": ["BertModel"],
        "pad_token_id": 0}
    return config, state


def write_bert_folder(converted: tuple[dict[str, Any], dict[str, Any]], folder: Path) -> None:
    """Save as a transformers folder, checking that the weights cover `BertModel` exactly. The
    export has no pooler (sentence-transformers does not use it): it is written as identity
    weight and zero bias, so loading fills nothing at random (pooler_output = tanh([CLS]))."""
    import numpy as np
    import torch
    from transformers import BertConfig, BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the one-shard "Writing model shards" bar
    config_kwargs, state = converted
    config = BertConfig(**config_kwargs)
    hidden = config.hidden_size
    state = dict(state)
    state.setdefault("pooler.dense.weight", np.eye(hidden, dtype=np.float32))
    state.setdefault("pooler.dense.bias", np.zeros(hidden, dtype=np.float32))
    with torch.device("meta"):
        expected = BertModel(config).state_dict()
    tensors = {k: torch.from_numpy(np.array(v, dtype=np.float32, copy=True)) for k, v in state.items()}
    buffers = {k for k in expected if k.endswith(("position_ids", "token_type_ids"))}
    missing = sorted(set(expected) - set(tensors) - buffers)
    extra = sorted(set(tensors) - set(expected))
    bad = [k for k in set(expected) & set(tensors) if tuple(expected[k].shape) != tuple(tensors[k].shape)]
    if missing or extra or bad:
        raise W2SError(f"ONNX graph does not map onto BertModel (missing {missing[:3]}, extra "
                       f"{extra[:3]}, wrong shape {bad[:3]})")
    model = BertModel(config)
    model.load_state_dict(tensors, strict=False)
    model.save_pretrained(folder)
