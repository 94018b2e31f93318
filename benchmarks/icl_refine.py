"""Prompt-scoring speed of ICL refinement on the packaged SmolLM2-135M (CPU by default), and what
the shared-prefix cache changes: the same prompts scored whole (one forward over every prompt)
and as one cached prefix plus continuations, in fp32 and bf16, with the largest difference in
log-odds between the two; then leave-one-out refinement (prompts share only the instruction).

  .venv/bin/python benchmarks/icl_refine.py                  # 64 MultiEmo queries, 8 demos
  .venv/bin/python benchmarks/icl_refine.py --queries 128 --demos 16 --device cuda
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from w2sgen.methods.icl_refine import LocalRefiner, loo_batches, prompt_text
from w2sgen.models import resolve
from w2sgen.prompting import PromptFormat
from w2sgen.tasks import TASKS


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="multiemo_pos_neg")
    p.add_argument("--lm", default="smollm2-135m")
    p.add_argument("--queries", type=int, default=64)
    p.add_argument("--demos", type=int, default=8)
    p.add_argument("--k", type=int, default=4, help="demonstrations per prompt in the LOO part")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    spec = TASKS.get(args.task)
    examples = spec.load()
    rng = np.random.default_rng(0)
    pick = rng.choice(len(examples), size=args.queries + args.demos, replace=False)
    texts = [prompt_text(examples[i]) for i in pick]
    labels = np.array([examples[i].label for i in pick])
    demo_t, demo_y, queries = texts[:args.demos], labels[:args.demos], texts[args.demos:]
    instruction, words = spec.prompt
    fmt = PromptFormat(instruction, words)
    print(f"{args.lm} on {args.device}, {os.cpu_count()} CPUs; task {args.task}: {args.queries} "
          f"queries after {args.demos} shared demonstrations")
    results = {}
    for precision in ("fp32", "bf16"):
        r = LocalRefiner(resolve(args.lm), fmt, args.device, precision, 16)
        r.shared(demo_t[:1], demo_y[:1], queries[:2], None)  # warm-up
        prefix = r.join([r.start, *r.demos(demo_t, demo_y)])
        conts = r.queries(queries)
        t0 = time.perf_counter()
        whole = r.scorer.logodds([], [prefix + c for c in conts])
        t_whole = time.perf_counter() - t0
        t0 = time.perf_counter()
        cached = r.scorer.logodds(prefix, conts)
        t_cached = time.perf_counter() - t0
        results[precision] = cached
        print(f"  {precision}: whole prompts {len(conts) / t_whole:6.1f} prompts/s, shared prefix "
              f"{len(conts) / t_cached:6.1f} prompts/s ({t_whole / t_cached:.1f}x); "
              f"prefix {len(prefix)} tokens, max |cached - whole| = {np.abs(cached - whole).max():.2g}")
        all_t, all_y = demo_t + queries, np.concatenate([demo_y, labels[args.demos:]])
        batches = loo_batches(all_y, args.k, False, np.random.default_rng(0))
        t0 = time.perf_counter()
        r.loo(all_t, all_y, batches, None)
        t_loo = time.perf_counter() - t0
        print(f"  {precision}: leave-one-out k={args.k}: {len(all_t) / t_loo:6.1f} prompts/s")
    print(f"  max |bf16 - fp32| log-odds (shared prefix): {np.abs(results['bf16'] - results['fp32']).max():.3g}")


if __name__ == "__main__":
    main()
