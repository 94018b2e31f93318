"""The GPU path checked in one run (at most ~8 minutes on one H100), with nothing from a hub:
models are built from configs with random weights - Qwen2 architectures at the sizes of
Qwen2.5-0.5B and Qwen2.5-1.5B, a BERT-base-sized encoder - and the tiny test models.

  .venv/bin/python benchmarks/gpu_check.py --out gpu-check.md      # on a CUDA GPU
  .venv/bin/python benchmarks/gpu_check.py --cpu-smoke              # tiny models, seconds, CPU

One table, four sections; each section catches its own failure and reports it as a row, and a
global time budget (--budget) skips what no longer fits:
  1 tests     tests/test_gpu.py through pytest
  2 train     full, lora and label_tokens training at two sizes through the project's learners
              (train.MODES): memory.plan's estimate against torch.cuda.max_memory_allocated
              (target: within 15%), tokens/s of the training loop and model FLOPs utilisation
              against the GPU's bf16 peak
  3 same      micro-batches and gradient checkpointing against plain training: the per-step
              loss trajectory within bf16 tolerance
  4 features  features.extract throughput for an encoder and a causal LM

Model FLOPs per trained token (the PaLM convention, recomputation not counted): full and
label_tokens with adapter none 6N + 12 L h T, LoRA 4N + 8 L h T (forward, and backward through
frozen weights without their gradients), feature extraction 2N + 4 L h T; N the backbone's
parameters less its embeddings, L layers, h hidden width, T tokens per sequence. The peak is the
card's dense bf16 figure (hardware.NOMINAL, by device name), else a bf16 matmul measured here.
On a GPU, the card's bf16 and fp32 matrix-product rates and its memory are measured and
recorded in the data home's hardware.json (as `w2s doctor` does), where `w2s sweep --dry-run`
reads them for a GPU suite's estimate, on any machine with that data home.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tiny tokenizer and models of the test suite

# Qwen2.5 shapes (memory.PUBLISHED): hidden, intermediate, layers, heads, KV heads
QWEN = {"qwen2-0.5b": "Qwen/Qwen2.5-0.5B", "qwen2-1.5b": "Qwen/Qwen2.5-1.5B"}
MODES = ("full", "lora", "label_tokens")


@dataclass
class Row:
    section: str
    check: str
    result: str
    target: str = ""
    status: str = "ok"  # ok | FAIL | info | skipped | error


@dataclass
class Plan:
    """The sizes of one run: the GPU check, or the CPU smoke mode."""

    device: str
    sizes: dict[str, dict[str, Any]]  # name -> config values of a Qwen2 (or a tiny) model
    batch: int
    seq: int
    steps: int
    same_steps: int
    feature_examples: int
    budget: float
    rows: list[Row] = field(default_factory=list)
    t0: float = field(default_factory=time.perf_counter)

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.t0)


def gpu_plan(budget: float) -> Plan:
    from w2sgen.memory import PUBLISHED

    sizes = {name: dict(PUBLISHED[hub][1]) for name, hub in QWEN.items()}
    return Plan("cuda", sizes, batch=8, seq=512, steps=10, same_steps=6, feature_examples=2048,
                budget=budget)


def smoke_plan(budget: float) -> Plan:
    tiny = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=True)
    sizes = {"qwen2-tiny": tiny, "qwen2-tiny-x2": {**tiny, "hidden_size": 64, "intermediate_size": 96}}
    return Plan("cpu", sizes, batch=4, seq=32, steps=3, same_steps=4, feature_examples=64,
                budget=budget)


# ------------------------------------------------------------------ models and data


def bpe_tokenizer() -> Any:
    """A byte-level BPE over the tests' words (transformers reads a Qwen2 folder's tokenizer as
    Qwen2's byte-level BPE, whatever it was saved as): each word, with its leading space, one
    token, as are the label words after the label_tokens prompt."""
    from conftest import WORDS  # type: ignore[import-not-found]  # tests/ is on sys.path
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([" ".join([*WORDS, "Input:", "Answer: good", "Answer: bad"])] * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>")


def build_qwen2(path: Path, device: str, **values: Any) -> Path:
    """A Qwen2 LM of these config values with random weights (seed 0) and `bpe_tokenizer`,
    saved to `path` in bf16 (the learners load it at the dtype they train in)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = bpe_tokenizer()
    values.setdefault("vocab_size", len(tok))
    values.setdefault("max_position_embeddings", 4096)
    cfg = Qwen2Config(pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                      architectures=["Qwen2ForCausalLM"], **values)
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(cfg)
    model.to(torch.bfloat16).save_pretrained(path)  # type: ignore[arg-type]  # transformers wraps `to`
    tok.save_pretrained(path)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return path


def build_bert(path: Path, device: str, **values: Any) -> Path:
    import torch
    from conftest import tiny_tokenizer  # type: ignore[import-not-found]  # tests/ is on sys.path
    from transformers import BertConfig, BertModel

    tok = tiny_tokenizer(causal=False)
    cfg = BertConfig(vocab_size=len(tok), architectures=["BertModel"], **values)
    torch.manual_seed(0)
    with torch.device(device):
        model = BertModel(cfg)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    del model
    return path


def examples(n: int, words: int) -> list[Any]:
    """n two-class examples of `words` words each (one token per word for both tokenizers:
    every sequence fills max_length)."""
    import random

    from conftest import WORDS  # type: ignore[import-not-found]  # tests/ is on sys.path

    from w2sgen.tasks import Example

    rng = random.Random(0)
    return [Example(f"e{i}", " ".join(rng.choice(WORDS) for _ in range(words)), i % 2) for i in range(n)]


def flops_per_token(ref: Any, seq: int, kind: str) -> float:
    """Model FLOPs per token (module docstring): kind train (6N), lora (4N) or forward (2N)."""
    from w2sgen.memory import arch_of

    arch = arch_of(ref)
    n = arch.params - arch.vocab * arch.hidden  # no matmul in an embedding lookup
    k = {"train": 6, "lora": 4, "forward": 2}[kind]
    return k * n + 2 * k * arch.layers * arch.hidden * seq


@functools.lru_cache(maxsize=1)
def peak_flops(device: str) -> tuple[float, str]:
    """(bf16 FLOP/s, where the figure comes from)."""
    import torch

    from w2sgen.hardware import matmul_gflops, nominal

    if device == "cuda":
        name = torch.cuda.get_device_name()
        card = nominal(name)
        if card is not None:
            return card.bf16_gflops * 1e9, f"{name}: data sheet {card.bf16_gflops / 1e3:g} TFLOP/s"
        measured = matmul_gflops(torch.bfloat16, "cuda", n=8192, seconds=1.0)
        return measured * 1e9, f"{name}: measured bf16 matmul {measured / 1e3:.0f} TFLOP/s"
    measured = matmul_gflops(torch.bfloat16, "cpu", n=1024, seconds=0.3)
    return measured * 1e9, f"CPU: measured bf16 matmul {measured:.0f} GFLOP/s"


# ------------------------------------------------------------------ measuring the project's code


@contextlib.contextmanager
def timed_loops() -> Iterator[list[float]]:
    """Wall seconds of every learner.training_loop call inside the block (the learners' training
    steps: not the weights' loading nor the tokenisation)."""
    import torch

    from w2sgen import label_tokens, last_k, learner, train

    modes = (train, label_tokens, last_k)  # each mode module trains through the loop it imports
    original = learner.training_loop
    spent: list[float] = []

    def loop(*args: Any, **kwargs: Any) -> Any:
        sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
        sync()
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            sync()
            spent.append(time.perf_counter() - t0)

    for m in modes:
        m.training_loop = loop  # type: ignore[attr-defined]
    try:
        yield spent
    finally:
        for m in modes:
            m.training_loop = original  # type: ignore[attr-defined]


def config(model: Path, mode: str, plan: Plan, *extra: str) -> Any:
    from w2sgen.validate import load_config

    return load_config(None, [f"weak_model={model}", f"strong_model={model}", f"train.mode={mode}",
                              f"device={plan.device}", f"train.batch_size={plan.batch}",
                              "train.epochs=1", f"features.max_length={plan.seq}",
                              "train.label_words=[bad, good]", "train.instruction=''", *extra])


def fit(model: Path, mode: str, plan: Plan, n: int, *extra: str) -> tuple[Any, Any, float, int | None]:
    """One learner trained on n examples: (history, estimate, loop seconds, CUDA peak bytes
    above what was allocated before, or None on the CPU)."""
    import numpy as np
    import torch

    from w2sgen import memory
    from w2sgen.losses import xent
    from w2sgen.models import resolve
    from w2sgen.train import MODES as LEARNERS

    cfg = config(model, mode, plan, *extra)
    ref = resolve(str(model))
    words = plan.seq - (8 if mode == "label_tokens" else 0)  # room for the prompt's template
    data = examples(n, words)
    est = memory.plan(ref, cfg, plan.device)
    cuda = plan.device == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    learner = LEARNERS.get(mode)(ref, cfg)
    with timed_loops() as spent:
        hist = learner.fit(data, np.array([e.label for e in data], np.float32), xent(), seed=0,
                           desc=f"{model.name} {mode}")
    peak = None
    if cuda:
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
    del learner
    if cuda:
        torch.cuda.empty_cache()
    return hist, est, sum(spent), peak


# ------------------------------------------------------------------ the sections


def section_tests(plan: Plan) -> None:
    timeout = max(10.0, min(240.0, plan.left() - 60))
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "tests" / "test_gpu.py"), "-q", "-p", "no:xdist",
           "-p", "no:cacheprovider", "-m", "not slow or slow"]
    t0 = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        plan.rows.append(Row("1 tests", "tests/test_gpu.py", f"stopped after {timeout:.0f} s",
                             "all pass", "FAIL"))
        return
    summary = (out.stdout.strip().splitlines() or ["(no output)"])[-1].strip("= ")
    failed = re.search(r"(\d+) (failed|error)", summary)
    passed = re.search(r"(\d+) passed", summary)
    status = "FAIL" if failed or out.returncode not in (0, 5) else "ok" if passed else "skipped"
    plan.rows.append(Row("1 tests", "tests/test_gpu.py", f"{summary} ({time.perf_counter() - t0:.0f} s)",
                         "all pass", status))
    for line in out.stdout.splitlines():
        if line.startswith(("FAILED", "ERROR")):
            plan.rows.append(Row("1 tests", line.split(" ", 1)[1].split(" - ")[0][:70],
                                 line.split(" - ", 1)[-1][:120], "", "FAIL"))


def section_train(plan: Plan, models: dict[str, Path]) -> None:
    peak, where = peak_flops(plan.device)
    plan.rows.append(Row("2 train", "bf16 peak", where, "", "info"))
    if plan.device == "cuda":  # what `w2s sweep --dry-run` reads for a GPU suite's estimate
        from w2sgen.hardware import probe
        from w2sgen.paths import home

        p = probe("cuda", refresh=True)
        plan.rows.append(Row("2 train", "recorded", f"bf16 matmul {p.bf16_gflops / 1e3:.0f} TFLOP/s, "
                             f"fp32 {p.fp32_gflops / 1e3:.0f} TFLOP/s, memory "
                             f"{(p.memory_bytes or 0) / 2**30:.1f} GiB in {home() / 'hardware.json'}",
                             "", "info"))
    n = plan.batch * plan.steps
    for name, path in models.items():
        for mode in MODES:
            label = f"{name} {mode}"
            if plan.left() < 30:
                plan.rows.append(Row("2 train", label, "time budget spent", "", "skipped"))
                continue
            try:
                _hist, est, seconds, used = fit(path, mode, plan, n, "train.precision=bf16")
            except Exception as e:  # noqa: BLE001 -- reported in its row; the other checks go on
                plan.rows.append(Row("2 train", label, error_line(e), "", "error"))
                continue
            from w2sgen.models import resolve

            ref = resolve(str(path))
            tokens = n * plan.seq
            kind = "lora" if mode in ("lora", "label_tokens") else "train"
            rate = tokens / seconds
            mfu = rate * flops_per_token(ref, plan.seq, kind) / peak
            plan.rows.append(Row("2 train", f"{label} speed", f"{rate:,.0f} tokens/s, MFU {mfu:.1%} "
                                 f"({plan.steps} steps of {plan.batch} x {plan.seq} in {seconds:.2f} s)",
                                 "", "info"))
            if est is None:
                continue
            if used is None:
                plan.rows.append(Row("2 train", f"{label} memory", f"estimate {est.total / 1e6:,.1f} MB "
                                     "(no CUDA peak on the CPU)", "within 15%", "skipped"))
                continue
            ratio = used / est.total
            plan.rows.append(Row("2 train", f"{label} memory",
                                 f"peak {used / 1e9:.2f} GB / estimate {est.total / 1e9:.2f} GB "
                                 f"= {ratio:.2f}",
                                 "within 15%", "ok" if abs(ratio - 1) <= 0.15 else "FAIL"))


def section_same(plan: Plan, model: Path) -> None:
    """Per-step losses (one batch per epoch) of plain training, micro-batches of a quarter of
    the batch, and gradient checkpointing, in bf16: the largest relative difference."""
    variants = {"plain": (), "micro-batches": (f"train.micro_batch_size={max(1, plan.batch // 4)}",),
                "checkpointing": ("train.gradient_checkpointing=true",)}
    for mode in ("full", "lora"):
        losses = {}
        for name, extra in variants.items():
            if plan.left() < 20:
                plan.rows.append(Row("3 same", f"{mode} {name}", "time budget spent", "", "skipped"))
                break
            try:
                hist, *_ = fit(model, mode, plan, plan.batch, "train.precision=bf16",
                               f"train.epochs={plan.same_steps}", *extra)
                losses[name] = hist.loss
            except Exception as e:  # noqa: BLE001
                plan.rows.append(Row("3 same", f"{mode} {name}", error_line(e), "", "error"))
        base = losses.get("plain")
        for name, got in losses.items():
            if name == "plain" or base is None:
                continue
            worst = max(abs(a - b) / max(abs(b), 1e-6) for a, b in zip(got, base))
            plan.rows.append(Row("3 same", f"{mode} {name} vs plain",
                                 f"{len(got)} steps, largest relative loss difference {worst:.2e} "
                                 f"(losses {fmt(base)} vs {fmt(got)})", "<= 2e-2 (bf16)",
                                 "ok" if worst <= 2e-2 else "FAIL"))


def section_features(plan: Plan, models: dict[str, Path]) -> None:
    import torch

    from w2sgen.features import extract
    from w2sgen.models import load, resolve
    from w2sgen.validate import load_config

    peak, _ = peak_flops(plan.device)
    data = examples(plan.feature_examples, plan.seq)
    for name, path in models.items():
        if plan.left() < 15:
            plan.rows.append(Row("4 features", name, "time budget spent", "", "skipped"))
            continue
        try:
            ref = resolve(str(path))
            cfg = load_config(None, [f"features.max_length={plan.seq}"])
            model, tok = load(ref, plan.device)
            precision = "bf16"
            kwargs: dict[str, Any] = dict(pooling=cfg.features.pooling_for(ref), max_length=plan.seq,
                                          batch_size=64, precision=precision,
                                          join_pairs=ref.kind == "causal", desc=name)
            extract(model, tok, data[:64], **kwargs)  # warm-up: kernels, allocator
            sync = torch.cuda.synchronize if plan.device == "cuda" else (lambda: None)
            sync()
            t0 = time.perf_counter()
            extract(model, tok, data, **kwargs)
            sync()
            seconds = time.perf_counter() - t0
            rate = len(data) / seconds
            mfu = rate * plan.seq * flops_per_token(ref, plan.seq, "forward") / peak
            plan.rows.append(Row("4 features", f"{name} ({ref.kind}, {precision})",
                                 f"{rate:,.0f} examples/s = {rate * plan.seq:,.0f} tokens/s, MFU {mfu:.1%} "
                                 f"({len(data)} x {plan.seq} tokens in {seconds:.2f} s)", "", "info"))
            del model
        except Exception as e:  # noqa: BLE001
            plan.rows.append(Row("4 features", name, error_line(e), "", "error"))


# ------------------------------------------------------------------ the table


def fmt(xs: list[float]) -> str:
    return "[" + ", ".join(f"{x:.4f}" for x in xs) + "]"


def error_line(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def table(plan: Plan, title: str) -> str:
    head = ["section", "check", "result", "target", "status"]
    rows = [[r.section, r.check, r.result, r.target, r.status] for r in plan.rows]
    lines = [f"{title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def guarded(plan: Plan, section: str, fn: Callable[..., None], *args: Any) -> None:
    """A section whose failure becomes its row, not the end of the check."""
    try:
        fn(plan, *args)
    except Exception as e:  # noqa: BLE001
        plan.rows.append(Row(section, "(section)", error_line(e), "", "error"))
        traceback.print_exc(file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny models on the CPU (seconds)")
    ap.add_argument("--out", help="also write the table as Markdown to this file")
    ap.add_argument("--budget", type=float, help="seconds for everything (default: 450 on a GPU, "
                    "120 in --cpu-smoke)")
    ap.add_argument("--skip-tests", action="store_true", help="leave out section 1 (pytest)")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    from w2sgen import hardware

    if not args.cpu_smoke and not torch.cuda.is_available():
        print("error: torch sees no CUDA GPU; run with --cpu-smoke for the reduced CPU check",
              file=sys.stderr)
        return 2
    plan = smoke_plan(args.budget or 120) if args.cpu_smoke else gpu_plan(args.budget or 450)
    with tempfile.TemporaryDirectory(prefix="w2s-gpu-check-") as tmp:
        if not args.skip_tests:
            guarded(plan, "1 tests", section_tests)
        models: dict[str, Path] = {}
        try:
            for name, values in plan.sizes.items():
                models[name] = build_qwen2(Path(tmp) / name, plan.device, **values)
        except Exception as e:  # noqa: BLE001
            plan.rows.append(Row("2 train", "building the models", error_line(e), "", "error"))
        if models:
            guarded(plan, "2 train", section_train, models)
            guarded(plan, "3 same", section_same, next(iter(models.values())))
        encoder = ({"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                    "intermediate_size": 3072, "max_position_embeddings": 512}
                   if plan.device == "cuda" else
                   {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                    "intermediate_size": 37, "max_position_embeddings": 64})
        feature_models = {}
        try:
            name = "bert-base-sized" if plan.device == "cuda" else "bert-tiny"
            feature_models[name] = build_bert(Path(tmp) / "bert", plan.device, **encoder)
        except Exception as e:  # noqa: BLE001
            plan.rows.append(Row("4 features", "building the encoder", error_line(e), "", "error"))
        if models:
            first = next(iter(models))
            feature_models[first] = models[first]
        guarded(plan, "4 features", section_features, feature_models)
    device = torch.cuda.get_device_name() if plan.device == "cuda" else hardware.header("cpu")
    spent = time.perf_counter() - plan.t0
    title = (f"w2sgen GPU check{' (--cpu-smoke)' if args.cpu_smoke else ''}: {device}"
             f"{'; torch ' + torch.__version__ if plan.device == 'cuda' else ''}; {spent:.0f} s of a "
             f"{plan.budget:.0f} s budget")
    text = table(plan, title)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    bad = [r for r in plan.rows if r.status in ("FAIL", "error")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
