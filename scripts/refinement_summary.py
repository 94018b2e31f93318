"""docs/refinement.md part 3: icl_refine against naive in a store of suites/refinement-qwen.yaml.

Per task and refiner, per seed: refined minus weak label accuracy on transfer (matched-pairs 95%
interval and exact McNemar p from the recorded flips, metrics.flip_difference) and the student's
test accuracy minus the naive student's with the same seed (same supervisor, ceiling and test
set); then the mean over seeds of that difference, with a 95% bootstrap interval over test
examples (one resample for every seed: the per-example difference averaged over seeds is what is
resampled) and the seeds' paired PGR. Usage: python scripts/refinement_summary.py STORE
"""
from __future__ import annotations

import sys
from collections import defaultdict

import numpy as np

from w2sgen.metrics import flip_difference, mean_ci
from w2sgen.report.runs import latest_done, run_predictions, task_of
from w2sgen.store import Store


def main(path: str) -> None:
    store = Store(path)
    runs = latest_done(store)
    naive = {(task_of(r), r["config"]["seed"]): r for r in runs
             if r["config"].get("method", {}).get("name", "naive") == "naive"}
    refine: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in runs:
        if r["config"].get("method", {}).get("name") == "icl_refine":
            refine[(task_of(r), r["config"]["method"]["options"]["lm"])].append(r)
    for (task, lm), rs in sorted(refine.items()):
        print(f"\n## {task}, refiner {lm}")
        print("| seed | weak labels | refined labels | refined - weak [95% CI] | McNemar p | "
              "student naive | student icl_refine | difference | PGR naive -> icl_refine |")
        print("|---|---|---|---|---|---|---|---|---|")
        diffs = []
        for r in sorted(rs, key=lambda r: r["config"]["seed"]):
            seed = r["config"]["seed"]
            m, n = r["metrics"]["method"], r["metrics"]["split_sizes"]["transfer"]
            right = int(m["flips_correct"])
            f = flip_difference(right, int(m["flips"]) - right, int(n))
            base = naive.get((task, seed))
            if base is None:
                print(f"| {seed} | (no naive run with this seed) |")
                continue
            a, b = run_predictions(store, r["id"]), run_predictions(store, base["id"])
            assert a is not None and b is not None and np.array_equal(a["ids"], b["ids"])
            assert np.array_equal(a["weak"], b["weak"]), "naive and icl_refine must share the supervisor"
            y = a["labels"]
            ca, cb = (a["student"] > 0.5) == y, (b["student"] > 0.5) == y
            diffs.append(ca.astype(float) - cb.astype(float))
            pa, pb = r["metrics"]["pgr_accuracy"]["value"], base["metrics"]["pgr_accuracy"]["value"]
            print(f"| {seed} | {m['weak_label_accuracy']:.3f} | {m['refined_label_accuracy']:.3f} | "
                  f"{f['diff']:+.3f} [{f['low']:+.3f}, {f['high']:+.3f}] | {f['p']:.1e} | "
                  f"{cb.mean():.3f} | {ca.mean():.3f} | {ca.mean() - cb.mean():+.3f} | "
                  f"{pb:.2f} -> {pa:.2f} |")
        if diffs:
            d = np.mean(diffs, axis=0)
            est, lo, hi = mean_ci(d, seed=0, rounds=2000)
            print(f"\nstudent icl_refine - naive, mean over {len(diffs)} seeds: {est:+.4f} "
                  f"[{lo:+.4f}, {hi:+.4f}] (95% bootstrap over {len(d)} test examples, 2000 "
                  f"resamples); better in {sum(x.mean() > 0 for x in diffs)} of {len(diffs)} seeds")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs")
