"""Paired differences between training modes of one sweep (suites/label-modes.yaml): for every
mode against the probe, per seed and as the mean over seeds, the student's and the ceiling's test
accuracy difference and the PGR difference, each with a percentile-bootstrap interval over the
shared test set (one set of resamples for every run, report.tables.resample_index). Same seed =
same split; a seed whose two runs' weak supervisors predict differently is flagged, as its
difference is then not paired on the same weak labels.

  .venv/bin/python scripts/compare_modes.py ~/.cache/w2sgen/stores/label-modes-96
"""
from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from w2sgen.report.runs import shared_predictions
from w2sgen.report.tables import ratio, resample_index, resampled_accuracy
from w2sgen.store import Store


def interval(x: np.ndarray) -> str:
    lo, hi = np.nanpercentile(x[1:], [2.5, 97.5])
    return f"{x[0]:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("store")
    ap.add_argument("--baseline", default="probe")
    ap.add_argument("--rounds", type=int, default=1000)
    args = ap.parse_args()
    store = Store(args.store)
    runs = [r for r in store.runs() if r["status"] == "done"]
    by = defaultdict(dict)  # mode -> seed -> run
    for r in runs:
        cfg = r["config"]
        by[cfg["train"]["mode"]][cfg["seed"]] = r
    modes = sorted(m for m in by if m != args.baseline)
    for mode in modes:
        seeds = sorted(set(by[mode]) & set(by[args.baseline]))
        if not seeds:
            continue
        preds = shared_predictions(store, [by[m][s] for m in (mode, args.baseline) for s in seeds])
        assert preds is not None, "runs without stored predictions, or on different test sets"
        y = preds[0]["labels"].astype(bool)
        idx = resample_index(len(y), args.rounds)
        n = len(seeds)
        rows = defaultdict(list)
        print(f"{mode} minus {args.baseline} (test n = {len(y)}, {args.rounds} resamples):")
        for i, s in enumerate(seeds):
            a, b = preds[i], preds[n + i]
            acc = {(w, k): resampled_accuracy(p[k], y, idx) for w, p in (("m", a), ("b", b))
                   for k in ("weak", "ceiling", "student")}
            d_student = acc["m", "student"] - acc["b", "student"]
            d_ceiling = acc["m", "ceiling"] - acc["b", "ceiling"]
            pgr = {w: ratio(acc[w, "student"] - acc[w, "weak"], acc[w, "ceiling"] - acc[w, "weak"])
                   for w in ("m", "b")}
            d_pgr = pgr["m"] - pgr["b"]
            for name, v in (("student", d_student), ("ceiling", d_ceiling), ("PGR", d_pgr)):
                rows[name].append(v)
            same = "" if np.array_equal(a["weak"], b["weak"]) else \
                "  (weak supervisors differ: not paired on the same weak labels)"
            print(f"  seed {s}: student {interval(d_student)}  ceiling {interval(d_ceiling)}  "
                  f"PGR {interval(d_pgr)}{same}")
        print(f"  mean over {n} seeds: " + "  ".join(
            f"{name} {interval(np.mean(v, axis=0))}" for name, v in rows.items()))


if __name__ == "__main__":
    main()
