"""Label-scoring speed of ICL refinement (lm.LocalLM): the same k-shot prompts scored whole and
unbatched (one forward pass per prompt, no cache) and through the shared-prefix cache in batches,
for each LM given (SmolLM2-135M, a Llama; Qwen2.5-0.5B, a Qwen2), with prompts/s, the ratio, the
largest log-odds difference, and the achieved GFLOP/s against the matrix-product peak that
`w2s doctor` measures (fp32, or bf16 where it is native and `auto` picks it). Then leave-one-out
refinement (prompts share only the instruction), batched. The CPU capability and the load average
are printed with the figures: on a shared machine the figures move with the load.

FLOPs counted are the useful ones: 2 per weight of every linear layer per computed position,
attention 4 * width * (positions attended) per layer, and the output head on the scored
positions only (2 * d * vocab per prompt); padding and the cache copies are not counted.

  .venv/bin/python benchmarks/icl_refine.py                           # smollm2-135m, qwen2.5-coder-0.5b-instruct
  .venv/bin/python benchmarks/icl_refine.py --lm smollm2-135m --queries 64 --demos 16
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from w2sgen.hardware import header, probe
from w2sgen.lm import LocalLM
from w2sgen.methods.icl_refine import Refiner, loo_batches, prompt_text
from w2sgen.models import resolve
from w2sgen.prompting import PromptFormat
from w2sgen.tasks import TASKS


def shape(model) -> tuple[int, int, int, int]:
    """(linear weights per position, layers, attention width, vocabulary) of a causal LM."""
    layers = model.base_model.layers
    linear = sum(m.weight.numel() for m in layers.modules() if isinstance(m, torch.nn.Linear))
    cfg = model.config
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    width = cfg.num_attention_heads * head_dim
    return linear, len(layers), width, model.get_output_embeddings().weight.shape[0]


def flops(model, runs: list[tuple[int, int]], scored: int) -> float:
    """Useful FLOPs of forward passes computing `new` positions after `past` cached ones, for
    each (past, new) in `runs`, with the output head on `scored` positions."""
    linear, layers, width, vocab = shape(model)
    total = 0.0
    for past, new in runs:
        attended = new * past + new * (new + 1) / 2  # causal: position j sees past + j + 1
        total += 2 * linear * new + 4 * layers * width * attended
    return total + 2 * model.config.hidden_size * vocab * scored


def bench(name: str, args: argparse.Namespace, texts: list[str], labels: np.ndarray, fmt: PromptFormat) -> None:
    lm = LocalLM(resolve(name), args.device, args.precision, batch_size=args.batch, shared=True)
    single = LocalLM(resolve(name), args.device, lm.precision, batch_size=1, shared=True)  # same weights
    refiner = Refiner(lm, fmt)
    model = lm.model
    demo_t, demo_y, queries = texts[:args.demos], labels[:args.demos], texts[args.demos:]
    prefix = refiner.join([refiner.start, *refiner.demos(demo_t, demo_y)])
    conts = refiner.queries(queries)
    words, tail = fmt.words, fmt.tail
    lm.label_logodds(prefix[:8], conts[:2], words, context=tail)  # warm-up
    t0 = time.perf_counter()
    whole = np.concatenate([single.label_logodds([], [prefix + c], words, context=tail) for c in conts])
    t_whole = time.perf_counter() - t0
    t0 = time.perf_counter()
    cached = lm.label_logodds(prefix, conts, words, context=tail)
    t_cached = time.perf_counter() - t0
    n = len(conts)
    f_whole = flops(model, [(0, len(prefix) + len(c)) for c in conts], n)
    f_cached = flops(model, [(0, len(prefix))] + [(len(prefix), len(c)) for c in conts], n)
    p = probe(args.device)
    peak = p.bf16_gflops if lm.precision == "bf16" else p.fp32_gflops
    g_whole, g_cached = f_whole / t_whole / 1e9, f_cached / t_cached / 1e9
    print(f"{name} ({model.config.model_type}, {lm.precision}; prefix {len(prefix)} tokens, "
          f"queries {min(map(len, conts))}-{max(map(len, conts))} tokens, batch {args.batch}):")
    print(f"  whole prompts, unbatched: {n / t_whole:7.2f} prompts/s  {g_whole:6.1f} GFLOP/s "
          f"({100 * g_whole / peak:.0f}% of the {peak:.0f} GFLOP/s {lm.precision} peak)")
    print(f"  shared prefix, batched:   {n / t_cached:7.2f} prompts/s  {g_cached:6.1f} GFLOP/s "
          f"({100 * g_cached / peak:.0f}% of peak); {t_whole / t_cached:.1f}x the prompts/s; "
          f"max |cached - whole| log-odds = {np.abs(cached - whole).max():.2g}")
    if not args.k:
        return
    batches = loo_batches(labels, args.k, False, np.random.default_rng(0))
    t0 = time.perf_counter()
    refiner.loo(texts, labels, batches, None)
    t_loo = time.perf_counter() - t0
    print(f"  leave-one-out k={args.k}, batched: {len(texts) / t_loo:7.2f} prompts/s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="rt_sentiment")
    p.add_argument("--lm", nargs="+", default=["smollm2-135m", "qwen2.5-coder-0.5b-instruct"])
    p.add_argument("--queries", type=int, default=32)
    p.add_argument("--demos", type=int, default=8)
    p.add_argument("--k", type=int, default=4, help="demonstrations per prompt in the LOO part (0: skip it)")
    p.add_argument("--batch", type=int, default=16, help="prompts per forward pass")
    p.add_argument("--precision", default="auto")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    print(header(args.device))
    spec = TASKS.get(args.task)
    examples = spec.load()
    rng = np.random.default_rng(0)
    pick = rng.choice(len(examples), size=args.queries + args.demos, replace=False)
    texts = [prompt_text(examples[i]) for i in pick]
    labels = np.array([examples[i].label for i in pick])
    instruction, words = spec.prompt
    fmt = PromptFormat(instruction, tuple(words))
    load = os.getloadavg()
    print(f"task {args.task}: {args.queries} queries after {args.demos} shared demonstrations; "
          f"{torch.get_num_threads()} torch threads on {os.cpu_count()} CPUs; load average "
          f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min)")
    for name in args.lm:
        bench(name, args, texts, labels, fmt)
        print(f"  load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
