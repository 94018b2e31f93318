"""CPU seconds per refiner prompt for a suite's tasks, to size an icl_refine suite before it runs
(`w2s sweep --dry-run` does not count the refiner). For each task: one chunk of `--queries`
examples scored after k demonstrations shown once (batch: fixed, the shared prefix computed
once) and zero-shot, in the refiner's `auto` precision. Process CPU time, so a busy machine
moves the figures less than wall time (both are printed, with the load average); the first
chunk also pays the model's warm-up, so the k = 4 row of the first task is high.

  .venv/bin/python benchmarks/refine_cost.py                      # suites/refinement-controls.yaml's tasks
  .venv/bin/python benchmarks/refine_cost.py --tasks rt_sentiment --queries 128 --k 4 8
"""
from __future__ import annotations

import argparse
import os
import time

from w2sgen.hardware import header, resolve_precision
from w2sgen.lm import LocalLM
from w2sgen.methods.icl_refine import Refiner
from w2sgen.models import resolve
from w2sgen.prompting import PromptFormat, example_text
from w2sgen.tasks import TASKS


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lm", default="qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--tasks", nargs="+", default=["rt_sentiment", "nyt_sentiment", "word_valence"])
    ap.add_argument("--queries", type=int, default=64)
    ap.add_argument("--k", type=int, nargs="+", default=[4, 0])
    args = ap.parse_args()
    print(header("cpu") + f"; load average {os.getloadavg()[0]:.1f}")
    precision = resolve_precision("auto", "cpu", "precision")
    lm = LocalLM(resolve(args.lm), "cpu", precision, batch_size=16)
    print("| task | k | CPU s / prompt | wall s / prompt |\n|---|---|---|---|")
    for task in args.tasks:
        spec = TASKS.get(task)
        examples = spec.load()[:max(args.k) + args.queries]
        instruction, words = spec.prompt
        refiner = Refiner(lm, PromptFormat(instruction, words))
        texts = [example_text(e) for e in examples]
        queries = texts[max(args.k):]
        for k in args.k:
            cpu, wall = time.process_time(), time.perf_counter()
            refiner.shared(texts[:k], [e.label for e in examples[:k]], queries, None)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            print(f"| {task} | {k} | {cpu / len(queries):.3f} | {wall / len(queries):.3f} |", flush=True)
    print(f"{args.lm}, {precision}, {os.environ.get('OMP_NUM_THREADS', 'default')} thread(s); "
          f"load average now {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
