"""Training memory of every model a suite trains, by w2sgen's estimate (src/w2sgen/memory.py),
against one 80 GB GPU: no GPU and no network needed (the burns suite's hub models are
estimated from their published config values, memory.PUBLISHED).

  .venv/bin/python benchmarks/memory.py                      # suites/burns.yaml
  .venv/bin/python benchmarks/memory.py --suite suites/burns.yaml --gpu-gb 80 --precision fp32
"""
from __future__ import annotations

import argparse
import sys

from w2sgen.memory import HEADROOM
from w2sgen.sweep import memory_estimates


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="suites/burns.yaml")
    ap.add_argument("--gpu-gb", type=float, default=80.0, help="the GPU's memory (1e9 bytes)")
    ap.add_argument("--precision", default="bf16", help="what train.precision=auto resolves to")
    args = ap.parse_args()
    budget = HEADROOM * args.gpu_gb * 1e9
    print(f"{args.suite}: train.precision auto = {args.precision}; a run may use {HEADROOM:.0%} "
          f"of {args.gpu_gb:g} GB = {budget / 1e9:.1f} GB (the rest: CUDA context, workspaces, "
          "fragmentation)")
    head = (f"{'pair':<22} {'model':<30} {'settings':<62} {'params':>7} {'grads':>6} {'optim':>6} "
            f"{'activ':>6} {'total':>6}  fits")
    print(head)
    print("-" * len(head))
    ok = True
    for row in memory_estimates(args.suite, args.precision):
        e = row.estimate
        if e is None:  # a training mode that declares no estimate
            print(f"{row.pair:<22} {row.model:<30} no estimate (its train.mode declares none)")
            continue
        fits = e.total <= budget
        ok &= fits
        gb = [f"{x / 1e9:.1f}" for x in (e.parameters, e.gradients, e.optimizer, e.activations, e.total)]
        print(f"{row.pair:<22} {row.model:<30} {e.setting:<62} {gb[0]:>7} {gb[1]:>6} {gb[2]:>6} "
              f"{gb[3]:>6} {gb[4]:>6}  {'yes' if fits else 'NO'}")
    print("(GB = 1e9 bytes)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
