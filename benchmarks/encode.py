"""CPU feature extraction: the project's paths against the backends a user would otherwise pick.

One run, for each installed zoo encoder, on the same N real rt_sentiment sentences (the first N after
a seeded shuffle), truncated to the project's max_length (128) on every path, batch size the same
everywhere (--batch-size, default the project's 64), times end to end (texts in, pooled vectors
out, tokenising included):

  w2s-fp32           features.extract, precision fp32 (torch eager)
  w2s-bf16           features.extract, precision bf16 (autocast); only where hardware.probe()
                     finds native bf16 units
  w2s-int8           torch.ao.quantization.quantize_dynamic of every nn.Linear of the fp32 model
                     (qint8 weights, per-channel scales), run through features.extract fp32
  w2s-ort-fp32       w2sgen.onnx_features.extract: ONNX Runtime, fp32, the model exported once
                     (pooling inside the graph) and cached in the data home; batches
                     planned by length (onnx_features.plan: <= 5% padding, <= batch size)
  ort-int8           ONNX Runtime dynamic int8 quantisation (per-channel) of that export, cached
  ov-fp32, ov-bf16   the OpenVINO runtime (pip package `openvino`, no optimum) compiling that same
                     export with INFERENCE_PRECISION_HINT f32 / bf16 (bf16 only where native)
  st-torch           sentence-transformers SentenceTransformer(path).encode, torch backend, fp32
  st-onnx            the same with backend="onnx" (optimum-onnx + onnxruntime; exported once from
                     the local folder, offline, and cached)
  st-openvino        backend="openvino" (optimum-intel), OpenVINO's default precision hint,
                     which is bf16 on CPUs with bf16 units and f32 elsewhere
  st-openvino-f32    backend="openvino" with INFERENCE_PRECISION_HINT=f32

Every variant runs once on a warm-up subset, then --repeats rounds in which each runs once on
all N texts (the order rotates per round, so background load spreads over all of them); a
variant's time is its best round. Reported per variant: sentences/s; the ratio to each
sentence-transformers backend (>1: this variant is faster); achieved GFLOP/s and its share of the
peak hardware.probe() measured for the variant's precision (bf16 peak for bf16 variants, the fp32
peak otherwise, int8 included); the minimum and mean cosine of its vectors to the project's fp32
features (w2s-fp32; masked-mean pooling); "eligible" = min cosine >= 0.999.

FLOPs are the matrix products of the encoder layers, counted from the model's config, on real
tokens only (padding excluded; the header shows how much the length-sorted batches pad): per
token 2 * L * (4 d^2 + 2 d ff) for the linear layers, plus 4 * L * d * n for attention scores and
their product with the values (n = the text's token count).

The ONNX and OpenVINO backends of sentence-transformers cannot be installed into the project's
environment: optimum-onnx 0.1.0 pins transformers < 4.58 and optimum-intel 2.2.0 pins
transformers < 5.6, huggingface-hub < 1.22, while the project runs transformers 5.x. They run in
two small overlay virtualenvs (only the conflicting packages at compatible pins; torch, numpy and
the rest come from the project's .venv through a .pth line) as worker processes that this script
drives over a pipe; `--setup-envs` creates them under ~/.cache/w2sgen-bench (--envs). Variants
whose environment is missing are skipped with a note.

    .venv/bin/python benchmarks/encode.py --setup-envs          # once (needs PyPI)
    .venv/bin/python benchmarks/encode.py [--n 600] [--models minilm-l6,mpnet-base]
        [--batch-size 64] [--repeats 3] [--skip st-openvino,ort-int8] [--threads T]
        [--refresh-probe]
"""
from __future__ import annotations

import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import contextlib
import hashlib
import json
import random
import subprocess
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

ENCODERS = ("minilm-l6", "mpnet-base")
ELIGIBLE_COS = 0.999
PROTO = "@@W2S "  # prefix of the worker's reply lines
DEFAULT_ENVS = Path.home() / ".cache" / "w2sgen-bench"

# (variant, precision class, short description); the table keeps this order
VARIANTS = [
    ("w2s-fp32", "fp32", "features.extract fp32 (torch)"),
    ("w2s-bf16", "bf16", "features.extract bf16 autocast (torch)"),
    ("w2s-int8", "int8", "torch quantize_dynamic(Linear) + features.extract"),
    ("w2s-ort-fp32", "fp32", "onnx_features.extract (ONNX Runtime fp32)"),
    ("ort-int8", "int8", "ONNX Runtime quantize_dynamic (per-channel) of that export"),
    ("ov-fp32", "fp32", "OpenVINO runtime on that export, hint f32"),
    ("ov-bf16", "bf16", "OpenVINO runtime on that export, hint bf16"),
    ("st-torch", "fp32", "SentenceTransformer.encode, torch backend"),
    ("st-onnx", "fp32", "SentenceTransformer.encode, backend=onnx"),
    ("st-openvino", "?", "SentenceTransformer.encode, backend=openvino (default hint)"),
    ("st-openvino-f32", "fp32", "SentenceTransformer.encode, backend=openvino, hint f32"),
]
ST_VARIANTS = [v for v, _, _ in VARIANTS if v.startswith("st-")]
WORKER_ENV = {"st-onnx": "st-onnx", "st-openvino": "st-openvino", "st-openvino-f32": "st-openvino"}

# Overlay environments: the packages each needs at pins compatible with its backend, installed
# with --no-deps on top of the project's .venv (whose site-packages a .pth line appends).
OVERLAYS = {
    "st-onnx": ["sentence-transformers==5.2.0", "transformers==4.57.6", "tokenizers==0.22.2",
                "huggingface_hub==0.36.2", "optimum==2.1.0", "optimum-onnx==0.1.0",
                "datasets==4.4.2"],
    "st-openvino": ["transformers==5.5.4", "tokenizers==0.22.2", "huggingface_hub==1.21.0",
                    "optimum==2.3.0", "optimum-intel==2.2.0", "openvino==2026.4.1",
                    "openvino-tokenizers==2026.4.1.0", "openvino-telemetry", "datasets==4.4.2"],
}
OVERLAY_WITH_DEPS = ["httpx"]  # small, absent from the project's .venv


# ============================================================================ worker (overlay env)
# Runs under an overlay environment's python: imports neither w2sgen nor anything the project
# pins, only sentence-transformers and its backend.

def _st_load(variant: str, path: str, cache: str, threads: int, max_length: int) -> tuple[Any, str]:
    from sentence_transformers import SentenceTransformer

    kwargs: dict[str, Any] = {"device": "cpu"}
    subdir = None
    if variant == "st-onnx":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        kwargs["backend"] = "onnx"
        # ST picks onnxruntime's first provider, which can be Azure's: name the CPU one
        kwargs["model_kwargs"] = {"provider": "CPUExecutionProvider", "session_options": opts}
        subdir = Path(cache) / "onnx" / "model.onnx"
    elif variant.startswith("st-openvino"):
        ov_config = {"INFERENCE_NUM_THREADS": str(threads)}
        if variant == "st-openvino-f32":
            ov_config["INFERENCE_PRECISION_HINT"] = "f32"
        kwargs["backend"] = "openvino"
        kwargs["model_kwargs"] = {"ov_config": ov_config}
        subdir = Path(cache) / "openvino" / "openvino_model.xml"
    elif variant != "st-torch":
        raise ValueError(f"unknown worker variant {variant}")
    info = ""
    if subdir is not None:
        if not subdir.is_file():  # export once from the local folder, offline; atomic rename
            t0 = time.perf_counter()
            exported = SentenceTransformer(path, **kwargs)
            tmp = Path(tempfile.mkdtemp(dir=Path(cache).parent, prefix=".tmp-"))
            exported.save_pretrained(str(tmp))
            try:
                tmp.rename(cache)
            except OSError:
                if not subdir.is_file():
                    raise
            info = f"exported once in {time.perf_counter() - t0:.0f} s"
            del exported
        path = cache
    st = SentenceTransformer(path, **kwargs)
    st.max_seq_length = max_length
    if variant.startswith("st-openvino"):
        info = "; ".join(x for x in (info, f"OpenVINO inference precision {_ov_precision(st)}") if x)
    return st, info


def _ov_class(text: str) -> str:
    """fp32 | bf16 | ? from an OpenVINO precision as printed (<Type: 'bfloat16'>, f32, ...)."""
    low = text.lower()
    return "bf16" if "bfloat16" in low or "bf16" in low else \
        "fp32" if "float32" in low or "f32" in low else "?"


def _ov_precision(st: Any) -> str:
    """The precision OpenVINO compiled the model for (its hint resolved on this CPU)."""
    auto = getattr(st[0], "auto_model", None) or getattr(st[0], "model", None)
    handles = [getattr(auto, a, None) for a in ("compiled_model", "request")]
    handles += [getattr(h, "get_compiled_model", lambda: None)() for h in handles if h is not None]
    for h in handles:
        get = getattr(h, "get_property", None)
        if get is not None:
            with contextlib.suppress(Exception):
                return str(get("INFERENCE_PRECISION_HINT"))
    return "unknown"


def worker_main() -> None:
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # libraries' prints go to the log, not into the protocol
    warnings.simplefilter("ignore")
    import numpy as np

    models: dict[str, Any] = {}
    texts: dict[str, list[str]] = {}

    def reply(**kw: Any) -> None:
        proto.write(PROTO + json.dumps(kw) + "\n")
        proto.flush()

    for line in sys.stdin:
        req = json.loads(line)
        try:
            if req["cmd"] == "load":
                import torch

                torch.set_num_threads(req["threads"])
                t0 = time.perf_counter()
                models[req["variant"]], info = _st_load(req["variant"], req["path"], req["cache"],
                                                        req["threads"], req["max_length"])
                import sentence_transformers
                import transformers

                versions = (f"sentence-transformers {sentence_transformers.__version__}, "
                            f"transformers {transformers.__version__}")
                reply(ok=True, seconds=time.perf_counter() - t0,
                      info="; ".join(x for x in (info, versions) if x))
            elif req["cmd"] == "run":
                if req["texts"] not in texts:
                    texts[req["texts"]] = json.loads(Path(req["texts"]).read_text())
                batch = texts[req["texts"]]
                t0 = time.perf_counter()
                emb = models[req["variant"]].encode(batch, batch_size=req["batch_size"],
                                                    show_progress_bar=False, convert_to_numpy=True)
                seconds = time.perf_counter() - t0
                np.save(req["out"], np.asarray(emb, dtype=np.float32))
                reply(ok=True, seconds=seconds)
            elif req["cmd"] == "quit":
                reply(ok=True)
                return
        except Exception as e:  # noqa: BLE001 - reported to the driver, which skips the variant
            reply(ok=False, error=f"{type(e).__name__}: {e}"[:400],
                  trace=traceback.format_exc()[-2000:])


class Worker:
    """One overlay-env process holding sentence-transformers models, driven line by line."""

    def __init__(self, python: str, log: Path):
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        self.log = log
        self.proc = subprocess.Popen([python, os.path.abspath(__file__), "--worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=log.open("w"), text=True, env=env)

    def call(self, **req: Any) -> dict:
        assert self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        for line in self.proc.stdout:
            if line.startswith(PROTO):
                return json.loads(line[len(PROTO):])
        tail = self.log.read_text()[-1500:] if self.log.exists() else ""
        return {"ok": False, "error": "worker exited", "trace": tail}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.call(cmd="quit")
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def setup_envs(root: Path) -> None:
    """Create the overlay envs (see the module docstring). Idempotent."""
    main_site = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" \
        / "site-packages"
    base = getattr(sys, "_base_executable", sys.executable)
    for name, pins in OVERLAYS.items():
        env = root / name
        py = env / "bin" / "python"
        if not py.exists():
            subprocess.run([base, "-m", "venv", str(env)], check=True)
        site = next((env / "lib").glob("python*/site-packages"))
        pth = site / "zz_w2sgen_main_venv.pth"
        pth.unlink(missing_ok=True)  # pip must not see the project's packages while installing
        pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, *OVERLAY_WITH_DEPS], check=True)
        subprocess.run([*pip, "--no-deps", *pins], check=True)
        pth.write_text(str(main_site) + "\n")
        print(f"{name}: {py}")


# ============================================================================ driver (project env)

@dataclass
class Result:
    variant: str
    precision: str
    seconds: float = float("inf")
    vectors: Any = None
    setup_s: float = 0.0
    info: str = ""
    error: str = ""
    cos: tuple[float, float] = (float("nan"), float("nan"))  # min, mean to w2s-fp32


@dataclass
class Variant:
    name: str
    precision: str
    run: Callable[[str], Any]  # "warmup" | "all" -> vectors (N, d) for those texts, and seconds
    setup_s: float = 0.0
    info: str = ""
    close: Callable[[], None] = field(default=lambda: None)


class OVSession:
    """The OpenVINO runtime behind the interface `onnx_features.run` uses (get_inputs, run)."""

    def __init__(self, onnx_path: Path, hint: str, threads: int):
        import openvino as ov

        core = ov.Core()
        self.compiled = core.compile_model(str(onnx_path), "CPU", {
            "INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": str(threads),
            "PERFORMANCE_HINT": "LATENCY"})
        self.request = self.compiled.create_infer_request()
        self.names = [i.get_any_name() for i in self.compiled.inputs]
        self.precision = str(self.compiled.get_property("INFERENCE_PRECISION_HINT"))
        self.version = ov.__version__.split("-")[0]

    def get_inputs(self) -> list:
        return [type("Input", (), {"name": n}) for n in self.names]

    def run(self, _outputs: Any, feed: dict) -> list:
        result = self.request.infer(feed)
        return [next(iter(result.values())).copy()]


def sentences(n: int, seed: int) -> list:
    from w2sgen.config import Component
    from w2sgen.tasks import load_task

    examples = load_task(Component("rt_sentiment"))
    random.Random(seed).shuffle(examples)
    return examples[:n]


def cosines(a: Any, b: Any) -> Any:
    import numpy as np

    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(1)


def flops(config: Any, lengths: list[int]) -> float:
    """Matrix-product FLOPs of the encoder layers for texts of these token counts (see above)."""
    d, layers, ff = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    per_token = 2 * layers * (4 * d * d + 2 * d * ff)
    return float(sum(per_token * n + 4 * layers * d * n * n for n in lengths))


def padded_tokens(lengths: list[int], batch_size: int) -> int:
    ordered = sorted(lengths, reverse=True)
    return sum(len(ordered[i:i + batch_size]) * ordered[i] for i in range(0, len(ordered), batch_size))


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def build_variants(name: str, examples: list, args: argparse.Namespace, tmp: Path,
                   skip: set[str], notes: list[str]) -> tuple[list[Variant], Any, Any]:
    import numpy as np
    import torch

    from w2sgen import features, hardware, onnx_features
    from w2sgen.config import FeaturesConfig
    from w2sgen.models import load, resolve
    from w2sgen.paths import home

    cfg = FeaturesConfig()
    ref = resolve(name)
    model, tokenizer = load(ref)
    pooling = cfg.pooling_for(ref)
    bs = args.batch_size
    subsets = {"all": examples, "warmup": examples[:min(len(examples), 2 * bs)]}
    probe = hardware.probe("cpu")
    out: list[Variant] = []

    def project(m: Any, precision: str) -> Callable[[str], Any]:
        return lambda which: _timed(lambda: features.extract(
            m, tokenizer, subsets[which], pooling=pooling, max_length=cfg.max_length,
            batch_size=bs, precision=precision, join_pairs=False))

    def want(v: str) -> bool:
        return v not in skip

    if want("w2s-fp32"):
        out.append(Variant("w2s-fp32", "fp32", project(model, "fp32")))
    if want("w2s-bf16"):
        if probe.bf16_native:
            out.append(Variant("w2s-bf16", "bf16", project(model, "bf16")))
        else:
            notes.append(f"{name}: w2s-bf16 skipped: no native bf16 on this CPU ({probe.capability})")
    if want("w2s-int8"):
        from torch.ao.quantization import per_channel_dynamic_qconfig

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (qmodel, t) = _timed(lambda: torch.ao.quantization.quantize_dynamic(
                model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8))
        out.append(Variant("w2s-int8", "int8", project(qmodel, "fp32"), t))
    onnx_path, t_export = None, 0.0
    if any(want(v) for v in ("w2s-ort-fp32", "ort-int8", "ov-fp32", "ov-bf16")):
        # the one export the ORT and OpenVINO variants share (cached in the data home)
        onnx_path, t_export = _timed(lambda: onnx_features.prepare(model, tokenizer, pooling,
                                                                   ref.identity))
    if (want("w2s-ort-fp32") or want("ort-int8")) and not onnx_features.available():
        notes.append(f"{name}: ONNX Runtime variants skipped: onnxruntime is not installed")
    elif onnx_path is not None and (want("w2s-ort-fp32") or want("ort-int8")):
        if want("w2s-ort-fp32"):
            _, t_sess = _timed(lambda: onnx_features.session(onnx_path))
            out.append(Variant("w2s-ort-fp32", "fp32", lambda which: _timed(
                lambda: onnx_features.extract(model, tokenizer, subsets[which], pooling=pooling,
                                              max_length=cfg.max_length, batch_size=bs,
                                              precision="fp32", join_pairs=False,
                                              identity=ref.identity)),
                t_export + t_sess, f"cached export {onnx_path}"))
        if want("ort-int8"):
            import onnxruntime

            q_path = home() / "bench" / f"{onnx_path.stem}.int8-pc-{onnxruntime.__version__}.onnx"

            def quantize() -> Any:
                if not q_path.is_file():
                    from onnxruntime.quantization import QuantType, quantize_dynamic

                    q_path.parent.mkdir(parents=True, exist_ok=True)
                    part = q_path.with_name(f".tmp-{os.getpid()}-{q_path.name}")
                    import logging

                    logging.getLogger().setLevel(logging.ERROR)  # its pre-processing advice
                    quantize_dynamic(str(onnx_path), str(part), weight_type=QuantType.QInt8,
                                     per_channel=True)
                    part.replace(q_path)
                return onnx_features.session(q_path)

            q_sess, t_q = _timed(quantize)
            out.append(Variant("ort-int8", "int8", lambda which: _timed(lambda: onnx_features.run(
                q_sess, tokenizer, subsets[which], max_length=cfg.max_length, batch_size=bs,
                join_pairs=False)), t_q))

    for v, hint in (("ov-fp32", "f32"), ("ov-bf16", "bf16")):
        if not want(v) or onnx_path is None:
            continue
        if v == "ov-bf16" and not probe.bf16_native:
            notes.append(f"{name}: ov-bf16 skipped: no native bf16 on this CPU ({probe.capability})")
            continue
        try:
            import openvino  # noqa: F401
        except ImportError:
            notes.append(f"{name}: {v} skipped: the openvino package is not installed")
            continue
        ov_sess, t_compile = _timed(partial(OVSession, onnx_path, hint, args.threads))

        def run_ov(which: str, s: OVSession = ov_sess) -> Any:
            return _timed(lambda: onnx_features.run(s, tokenizer, subsets[which],
                                                    max_length=cfg.max_length, batch_size=bs,
                                                    join_pairs=False))

        out.append(Variant(v, _ov_class(ov_sess.precision), run_ov, t_export + t_compile,
                           f"OpenVINO {ov_sess.version}, inference precision {ov_sess.precision}"))

    # sentence-transformers: torch in this process, the other backends in overlay workers
    texts = {k: [e.text for e in v] for k, v in subsets.items()}
    files = {}
    for k, batch in texts.items():
        files[k] = tmp / f"texts-{k}.json"
        files[k].write_text(json.dumps(batch))
    if want("st-torch"):
        from sentence_transformers import SentenceTransformer

        st, t_load = _timed(lambda: SentenceTransformer(ref.path, device="cpu"))
        st.max_seq_length = cfg.max_length
        out.append(Variant("st-torch", "fp32", lambda which: _timed(lambda: np.asarray(st.encode(
            texts[which], batch_size=bs, show_progress_bar=False, convert_to_numpy=True),
            dtype=np.float32)), t_load))
    workers: dict[str, Worker] = {}
    for v in ("st-onnx", "st-openvino", "st-openvino-f32"):
        if not want(v):
            continue
        env = WORKER_ENV[v]
        python = Path(args.envs) / env / "bin" / "python"
        if not python.exists():
            notes.append(f"{name}: {v} skipped: no {python} (run with --setup-envs once)")
            continue
        if env not in workers:
            workers[env] = Worker(str(python), tmp / f"{name}-{env}.log")
        w = workers[env]
        backend = v.removesuffix("-f32")  # both OpenVINO variants share one export
        key = hashlib.sha256(json.dumps([ref.identity, backend, OVERLAYS[env]]).encode()).hexdigest()[:16]
        cache = home() / "bench" / f"{backend}-{key}"
        cache.parent.mkdir(parents=True, exist_ok=True)
        r = w.call(cmd="load", variant=v, path=ref.path, cache=str(cache), threads=args.threads,
                   max_length=cfg.max_length)
        if not r.get("ok"):
            notes.append(f"{name}: {v} failed to load: {r.get('error')}\n{r.get('trace', '')}")
            continue
        precision = "fp32" if v != "st-openvino" else _ov_class(r["info"])

        def run_worker(which: str, w: Worker = w, v: str = v) -> Any:
            dest = tmp / f"{v}-{which}.npy"
            r = w.call(cmd="run", variant=v, texts=str(files[which]), out=str(dest), batch_size=bs)
            if not r.get("ok"):
                raise RuntimeError(f"{r.get('error')}\n{r.get('trace', '')}")
            return np.load(dest), r["seconds"]

        out.append(Variant(v, precision, run_worker, r["seconds"], r["info"]))
    def close_workers() -> None:
        for w in workers.values():
            w.close()

    if out:
        out[-1].close = close_workers
    return out, model, tokenizer


def bench(name: str, examples: list, args: argparse.Namespace, skip: set[str],
          notes: list[str]) -> dict | None:
    import numpy as np

    from w2sgen import features
    from w2sgen.config import FeaturesConfig
    from w2sgen.models import resolve

    cfg = FeaturesConfig()
    with tempfile.TemporaryDirectory(prefix="w2s-encode-") as tmpdir:
        variants, model, tokenizer = build_variants(name, examples, args, Path(tmpdir), skip, notes)
        try:
            results = {v.name: Result(v.name, v.precision, setup_s=v.setup_s, info=v.info)
                       for v in variants}
            alive = list(variants)
            for v in alive:  # warm-up: threads, kernels, first shapes
                try:
                    v.run("warmup")
                except Exception as e:  # noqa: BLE001 - a variant that fails is reported, not fatal
                    results[v.name].error = f"{type(e).__name__}: {e}"[:300]
            alive = [v for v in alive if not results[v.name].error]
            for r in range(args.repeats):
                k = r % max(1, len(alive))
                for v in alive[k:] + alive[:k]:
                    res = results[v.name]
                    if res.error:
                        continue
                    try:
                        vectors, seconds = v.run("all")
                    except Exception as e:  # noqa: BLE001
                        res.error = f"{type(e).__name__}: {e}"[:300]
                        continue
                    res.seconds = min(res.seconds, seconds)
                    res.vectors = vectors
        finally:
            for v in variants:
                v.close()

    # the reference: the project's fp32 features (computed untimed if w2s-fp32 was skipped)
    if "w2s-fp32" in results and results["w2s-fp32"].vectors is not None:
        reference = results["w2s-fp32"].vectors
    else:
        ref = resolve(name)
        reference = features.extract(model, tokenizer, examples, pooling=cfg.pooling_for(ref),
                                     max_length=cfg.max_length, batch_size=args.batch_size,
                                     precision="fp32", join_pairs=False)
    lengths = [len(ids) for ids in tokenizer([e.text for e in examples], truncation=True,
                                             max_length=cfg.max_length)["input_ids"]]
    full = [len(ids) for ids in tokenizer([e.text for e in examples])["input_ids"]]
    useful = flops(model.config, lengths)
    padded = padded_tokens(lengths, args.batch_size)
    from w2sgen.onnx_features import plan

    planned = sum(len(b) * max(lengths[i] for i in b) for b in plan(lengths, args.batch_size))
    for res in results.values():
        if res.vectors is not None:
            c = cosines(np.asarray(res.vectors, dtype=np.float32), reference)
            res.info = (res.info + "; " if res.info else "") + f"min cos at text {int(c.argmin())}"
            res.cos = (float(c.min()), float(c.mean()))
    return {"name": name, "path": resolve(name).path, "results": results, "lengths": lengths,
            "over": sum(n > cfg.max_length for n in full), "useful": useful, "padded": padded, "planned": planned,
            "config": model.config}


def fmt_table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    right = [i > 1 and head[i] not in ("eligible",) for i in range(len(head))]
    fmt = "  ".join(("{:>%d}" if r else "{:<%d}") % w for w, r in zip(widths, right))
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths)),
                      *(fmt.format(*r) for r in rows)])


def report(run: dict, probe: Any, default: str, n: int) -> None:
    import numpy as np

    results: dict[str, Result] = run["results"]
    lengths = run["lengths"]
    real = sum(lengths)
    print(f"\n{run['name']}: {run['path']}")
    print(f"  {n} texts, tokens/text mean {np.mean(lengths):.1f}, max {max(lengths)} "
          f"({run['over']} texts truncated to 128 on every path); {real} real tokens; the "
          f"length-sorted batches pad to {run['padded']} (+{100 * (run['padded'] / real - 1):.0f}%, "
          f"not counted in GFLOP/s); the project's ONNX paths batch by length (onnx_features.plan) "
          f"and pad +{100 * (run['planned'] / real - 1):.0f}%; {run['useful'] / 1e9:.1f} GFLOP per pass")
    sts = [v for v in ST_VARIANTS if v in results and np.isfinite(results[v].seconds)]
    head = ["variant", "prec", "sent/s", "GFLOP/s", "% peak", *[f"x {v}" for v in sts],
            "cos min", "cos mean", "eligible", "setup s"]
    rows = []
    for v, _, _ in VARIANTS:
        if v not in results:
            continue
        res = results[v]
        label = v + (" *" if v == default else "")
        if not np.isfinite(res.seconds):
            rows.append([label, res.precision, "failed", *[""] * (len(head) - 4), res.error[:60]])
            continue
        gflops = run["useful"] / res.seconds / 1e9
        peak = probe.bf16_gflops if res.precision == "bf16" else probe.fp32_gflops
        cmin, cmean = res.cos
        rows.append([label, res.precision, f"{n / res.seconds:.1f}", f"{gflops:.1f}",
                     f"{100 * gflops / peak:.0f}% {'bf16' if res.precision == 'bf16' else 'fp32'}",
                     *[f"{results[s].seconds / res.seconds:.2f}x" for s in sts],
                     f"{cmin:.5f}", f"{cmean:.6f}", "yes" if cmin >= ELIGIBLE_COS else "no",
                     f"{res.setup_s:.1f}"])
    print(fmt_table(head, rows))
    for v, _, _ in VARIANTS:
        if v in results and results[v].info:
            print(f"  {v}: {results[v].info}")
        if v in results and results[v].error and np.isfinite(results[v].seconds):
            print(f"  {v}: {results[v].error}")
    def over_peak(r: Result) -> bool:
        peak = probe.bf16_gflops if r.precision == "bf16" else probe.fp32_gflops
        return bool(np.isfinite(r.seconds)) and run["useful"] / r.seconds / 1e9 > peak

    if any(over_peak(r) for r in results.values()):
        print("  note: a variant exceeds the probed peak: the cached probe is stale or was taken "
              "under load (--refresh-probe measures it again)")


def summary(runs: list[dict], default: str) -> None:
    import numpy as np

    def ok(r: Result) -> bool:
        return np.isfinite(r.seconds)

    def eligible(r: Result) -> bool:
        return ok(r) and r.cos[0] >= ELIGIBLE_COS

    def fastest(run: dict, names: list[str], pred: Callable[[Result], bool]) -> Result | None:
        cands = [run["results"][v] for v in names if v in run["results"] and pred(run["results"][v])]
        return min(cands, key=lambda r: r.seconds) if cands else None

    allv = [v for v, _, _ in VARIANTS]
    parts = []
    for run in runs:
        best = fastest(run, allv, eligible)
        parts.append(f"{run['name']}: {best.variant} ({len(run['lengths']) / best.seconds:.1f} sent/s)"
                     if best else f"{run['name']}: none")
    print("\nfastest eligible (min cos >= 0.999 to w2s fp32): " + "; ".join(parts))

    def versus(mine: str, st_pred: Callable[[Result], bool], label: str) -> None:
        per, tot_mine, tot_st = [], 0.0, 0.0
        for run in runs:
            r = run["results"].get(mine)
            st = fastest(run, ST_VARIANTS, st_pred)
            if r is None or not ok(r) or st is None:
                per.append(f"{run['name']} n/a")
                continue
            tot_mine += r.seconds
            tot_st += st.seconds
            flags = [f"{x.variant} min cos {x.cos[0]:.4f} < 0.999" for x in (r, st)
                     if not eligible(x)]
            per.append(f"{run['name']} {st.seconds / r.seconds:.2f}x vs {st.variant}"
                       + (f" ({'; '.join(flags)})" if flags else ""))
        total = f"{tot_st / tot_mine:.2f}x" if tot_mine else "n/a"
        print(f"{label}: {total} (by total time over the models; {', '.join(per)})")

    versus(default, ok, f"project default path vs fastest sentence-transformers backend "
                        f"[{default}]")
    versus(default, eligible, "  the same vs the fastest eligible sentence-transformers backend")
    print("fp32 only (what a CPU without native bf16, e.g. AVX2, has), vs the fastest fp32 "
          "sentence-transformers backend:")
    for mine in ("w2s-fp32", "w2s-ort-fp32"):
        if any(mine in run["results"] for run in runs):
            versus(mine, lambda r: ok(r) and r.precision == "fp32", f"  {mine}")


def main() -> None:
    if "--worker" in sys.argv[1:]:
        worker_main()
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=600, help="number of rt_sentiment sentences")
    p.add_argument("--models", default=",".join(ENCODERS), help="comma-separated zoo encoders")
    p.add_argument("--batch-size", type=int, default=None,
                   help="batch size of every variant (default: the project's features.batch_size)")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds after the warm-up; best counts")
    p.add_argument("--skip", default="", help="comma-separated variants to leave out: "
                   + ",".join(v for v, _, _ in VARIANTS))
    p.add_argument("--threads", type=int, default=None, help="torch/ORT/OpenVINO threads "
                   "(default: torch's)")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed for picking the sentences")
    p.add_argument("--refresh-probe", action="store_true",
                   help="measure the fp32/bf16 peak again instead of using the cached probe")
    p.add_argument("--envs", default=str(DEFAULT_ENVS), help="where the overlay envs live")
    p.add_argument("--setup-envs", action="store_true", help="create the overlay envs and exit")
    args = p.parse_args()
    if args.setup_envs:
        setup_envs(Path(args.envs))
        return

    import torch

    from w2sgen import hardware
    from w2sgen.config import FeaturesConfig
    from w2sgen.models import MODELS

    if args.threads:
        torch.set_num_threads(args.threads)
    args.threads = torch.get_num_threads()
    cfg = FeaturesConfig()
    args.batch_size = args.batch_size or cfg.batch_size
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - {v for v, _, _ in VARIANTS}
    if unknown:
        p.error(f"unknown variants in --skip: {sorted(unknown)}")
    probe = hardware.probe("cpu", refresh=args.refresh_probe)
    print(hardware.header("cpu"))
    # the project's own choice for a CPU run (ExperimentConfig.resolved: features auto -> fp32
    # on a CPU, through ONNX Runtime where it is installed, as context.Context picks it)
    from w2sgen import onnx_features
    from w2sgen.config import ExperimentConfig

    auto = ExperimentConfig(device="cpu").resolved().features.precision
    default = ("w2s-ort-fp32" if auto == "fp32" and onnx_features.available()
               else {"bf16": "w2s-bf16", "fp32": "w2s-fp32"}[auto])
    examples = sentences(args.n, args.seed)
    print(f"{len(examples)} rt_sentiment sentences (seed {args.seed}); max_length {cfg.max_length}, "
          f"batch {args.batch_size}, {args.threads} threads, best of {args.repeats} rounds after "
          f"a warm-up; * = project default (features.precision={cfg.precision} -> {auto}: {default})")
    notes: list[str] = []
    runs = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        entry = MODELS.get(name)
        if entry.kind != "encoder":
            notes.append(f"{name}: not an encoder, skipped")
            continue
        if not entry.installed():
            notes.append(f"{name}: not installed (w2s pull {name}), skipped")
            continue
        run = bench(name, examples, args, skip, notes)
        if run:
            report(run, probe, default, len(examples))
            runs.append(run)
    if runs:
        summary(runs, default)
    for note in notes:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
