"""A suite's estimated time on this machine before its models are pulled: `w2s sweep --dry-run`'s
estimate (w2sgen.sweep.time_estimates: the models' FLOPs at a share of the measured matrix-
product rate, shared steps once) without the checks that need the models and data here. Zoo
models not pulled are estimated from their published configs (estimates.ZOO_PUBLISHED).
Prints the time per pair and per method and the total; --fp32-gflops/--bf16-gflops replace the
machine's measured rates (say, an idle measurement of `w2s doctor` when the machine is busy);
--after EARLIER counts the steps another suite run first on the same store computes (features,
weak supervisors, ceilings) as done.

  .venv/bin/python benchmarks/suite_time.py suites/ladder-causal-probe.yaml
  .venv/bin/python benchmarks/suite_time.py suites/ladder-causal-probe.yaml --fp32-gflops 179 --bf16-gflops 404
  .venv/bin/python benchmarks/suite_time.py suites/ladder-causal-lastk.yaml --after suites/ladder-causal-probe.yaml
"""
from __future__ import annotations

import argparse
import dataclasses
from collections import defaultdict

from w2sgen import hardware
from w2sgen.sweep import ESTIMATE_NOTE, hours, load_suite, time_estimates


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("suite")
    ap.add_argument("--fp32-gflops", type=float, help="the machine's fp32 matrix-product rate")
    ap.add_argument("--bf16-gflops", type=float, help="the machine's bf16 matrix-product rate")
    ap.add_argument("--after", help="a suite run before this one on the same store")
    args = ap.parse_args()
    suite = load_suite(args.suite, "/nonexistent-store", check_assets=False)
    earlier = [] if not args.after else load_suite(args.after, "/nonexistent-store", check_assets=False).cells
    machine = hardware.probe("cpu")
    if args.fp32_gflops or args.bf16_gflops:
        machine = dataclasses.replace(machine, fp32_gflops=args.fp32_gflops or machine.fp32_gflops,
                                      bf16_gflops=args.bf16_gflops or machine.bf16_gflops)
    # the earlier suite's cells first, finished (their steps done, their time not counted)
    cells = [dataclasses.replace(c, index=-1 - i) for i, c in enumerate(earlier)] + suite.cells
    cost = time_estimates(cells, machine, skip=frozenset(-1 - i for i in range(len(earlier))))
    cost.cells = cost.cells[len(earlier):]
    by: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for cell, c in zip(suite.cells, cost.cells):
        parts = cell.label.split(" | ")
        by[parts[1] if len(parts) > 1 else cell.label][parts[2] if len(parts) > 2 else ""] += c.seconds
    methods = list(dict.fromkeys(m for row in by.values() for m in row))
    print(f"{suite.name}: {len(suite.cells)} cells; {machine.summary()}"
          + (" (rates given)" if args.fp32_gflops or args.bf16_gflops else "")
          + (f"; after {args.after} (its steps done)" if args.after else ""))
    print("| pair | " + " | ".join(methods) + " | all |")
    print("|---|" + "---|" * (len(methods) + 1))
    for pair, row in by.items():
        print(f"| {pair} | " + " | ".join(hours(row[m]) for m in methods) + f" | {hours(sum(row.values()))} |")
    print(f"total: {hours(cost.total)} ({ESTIMATE_NOTE})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
