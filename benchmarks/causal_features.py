"""Causal-LM features on a CPU: the project's path beside a plain transformers forward, in one run.

For each model, on the same N rt_sentiment sentences (the first N after a seeded shuffle),
max_length 128, the same batch size everywhere, timed end to end (texts in, pooled vectors out,
tokenising included):

  w2s-fp32    features.extract, fp32: batches planned by length (texts sorted by token count, so
              a batch pads little), last-real-token pooling, inference mode
  w2s-bf16    the same under bf16 autocast; only where the CPU has bf16 units (hardware.probe)
  hf-fp32     a plain transformers forward: the texts in their given order, padded per batch
              by the tokenizer, last-real-token pooling (from the attention mask)
  hf-bf16     that forward under bf16 autocast (where the CPU has bf16 units)

Every variant runs once on a warm-up subset, then --repeats rounds in which each runs once on
all N texts (the order of variants rotates per round); a variant's time is its best round.
Reported: examples/s, achieved GFLOP/s (2 FLOPs per weight per real token, token embeddings
excepted; attention's own products left out) and its share of the matrix-product peak
hardware.probe() measures for the variant's precision, and the minimum cosine of its vectors to
w2s-fp32's. The header names the CPU's capability, the measured peaks and the load average.

--probe: does bf16 change what the features are for? A logistic probe (sklearn, C=1) on the
first half of the N examples' w2s-fp32 features (the weak_train-like split) and, separately, on
their w2s-bf16 features; both scored on the held-out second half against ground truth: each
accuracy with its 95% Wilson interval, and the paired difference (bf16 - fp32) with a 95%
bootstrap interval over the held-out examples (2000 resamples). --probe-only: that question
alone, for a larger N at the same cost: only the two w2s variants, one round (their rates are
then one round's, not a best of several).

    .venv/bin/python benchmarks/causal_features.py [--models smollm2-135m] [--n 200]
        [--batch-size 32] [--repeats 2] [--probe | --probe-only] [--threads T]
"""
from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import contextlib
import math
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np

MAX_LENGTH = 128


def sentences(n: int, seed: int) -> list[Any]:
    from w2sgen.spec import Component
    from w2sgen.tasks import load_task

    examples = load_task(Component("rt_sentiment"))
    random.Random(seed).shuffle(examples)
    return examples[:n]


def plain_forward(model: Any, tok: Any, texts: list[str], batch_size: int, bf16: bool) -> np.ndarray:
    """A transformers forward as a user would write it: given order, tokenizer padding."""
    import torch

    out = []
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with torch.inference_mode(), ctx:
        for start in range(0, len(texts), batch_size):
            batch = tok(texts[start:start + batch_size], padding=True, truncation=True,
                        max_length=MAX_LENGTH, return_tensors="pt")
            hidden = model(**batch).last_hidden_state.float()
            mask = batch["attention_mask"]
            last = mask.shape[1] - 1 - mask.flip(1).argmax(1)  # either padding side
            out.append(hidden[torch.arange(len(last)), last].numpy())
    return np.concatenate(out)


def variants(model: Any, tok: Any, batch_size: int, bf16: bool, plain_too: bool = True
             ) -> dict[str, Callable[[list[Any]], np.ndarray]]:
    from w2sgen import features as feats

    def project(precision: str) -> Callable[[list[Any]], np.ndarray]:
        return lambda exs: feats.extract(model, tok, exs, pooling="last", max_length=MAX_LENGTH,
                                         batch_size=batch_size, precision=precision,
                                         join_pairs=True)

    def plain(half: bool) -> Callable[[list[Any]], np.ndarray]:
        return lambda exs: plain_forward(model, tok, [e.text for e in exs], batch_size, half)

    runs = {"w2s-fp32": project("fp32"), "hf-fp32": plain(False)}
    if bf16:
        runs |= {"w2s-bf16": project("bf16"), "hf-bf16": plain(True)}
    return runs if plain_too else {k: v for k, v in runs.items() if k.startswith("w2s")}


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def probe_table(vectors: dict[str, np.ndarray], labels: np.ndarray, seed: int) -> list[str]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    half = len(labels) // 2
    correct = {}
    lines = [f"probe: logistic (C=1, standardised features) on {half} examples, scored on the "
             f"held-out {len(labels) - half}",
             "| features | held-out accuracy | 95% Wilson interval |", "|---|---|---|"]
    for name in ("w2s-fp32", "w2s-bf16"):
        if name not in vectors:
            continue
        x = vectors[name]
        scale = StandardScaler().fit(x[:half])
        clf = LogisticRegression(C=1.0, max_iter=2000).fit(scale.transform(x[:half]), labels[:half])
        correct[name] = clf.predict(scale.transform(x[half:])) == labels[half:]
        k, n = int(correct[name].sum()), len(correct[name])
        lo, hi = wilson(k, n)
        lines.append(f"| {name} | {k / n:.3f} ({k}/{n}) | [{lo:.3f}, {hi:.3f}] |")
    if len(correct) == 2:
        diff = correct["w2s-bf16"].astype(float) - correct["w2s-fp32"].astype(float)
        rng = np.random.default_rng(seed)
        boots = diff[rng.integers(0, len(diff), (2000, len(diff)))].mean(1)
        lo, hi = np.quantile(boots, [0.025, 0.975])
        agree = float((correct["w2s-bf16"] == correct["w2s-fp32"]).mean())
        lines.append(f"bf16 - fp32: {diff.mean():+.3f}, 95% bootstrap interval [{lo:+.3f}, {hi:+.3f}]; "
                     f"the two probes are right on the same examples {agree:.1%} of the time")
    return lines


def bench(name: str, examples: list[Any], args: argparse.Namespace, machine: Any) -> list[str]:
    from w2sgen.models import load, resolve

    t0 = time.perf_counter()
    ref = resolve(name)
    model, tok = load(ref)
    model.eval()
    loaded = time.perf_counter() - t0
    table = model.get_input_embeddings().weight
    compute = sum(p.numel() for p in model.parameters()) - table.numel()
    lengths = [len(ids) for ids in tok([e.text for e in examples], truncation=True,
                                       max_length=MAX_LENGTH)["input_ids"]]
    flops = 2 * compute * sum(lengths)
    runs = variants(model, tok, args.batch_size, machine.bf16_native, plain_too=not args.probe_only)
    for run in runs.values():  # warm-up: kernels, thread pool, allocation
        run(examples[:args.batch_size])
    best = {k: math.inf for k in runs}
    vectors: dict[str, np.ndarray] = {}
    order = list(runs)
    for r in range(args.repeats):
        for k in order[r % len(order):] + order[:r % len(order)]:
            t = time.perf_counter()
            vectors[k] = runs[k](examples)
            best[k] = min(best[k], time.perf_counter() - t)
    ref_vec = vectors["w2s-fp32"]

    def min_cos(v: np.ndarray) -> float:
        num = (v * ref_vec).sum(1)
        den = np.linalg.norm(v, axis=1) * np.linalg.norm(ref_vec, axis=1)
        return float((num / den).min())

    lines = [f"{name}: {compute / 1e6:.0f}M weights that compute, {len(examples)} sentences, "
             f"{sum(lengths)} real tokens (mean {np.mean(lengths):.1f}), batch {args.batch_size}; "
             f"model load {loaded:.0f} s",
             "| variant | examples/s | GFLOP/s | share of peak | min cosine to w2s-fp32 |",
             "|---|---|---|---|---|"]
    for k in runs:
        peak = machine.bf16_gflops if k.endswith("bf16") else machine.fp32_gflops
        g = flops / best[k] / 1e9
        lines.append(f"| {k} | {len(examples) / best[k]:.1f} | {g:.0f} | {g / peak:.0%} | "
                     f"{min_cos(vectors[k]):.5f} |")
    if args.probe or args.probe_only:
        labels = np.array([e.label for e in examples])
        lines += [""] + probe_table(vectors, labels, args.seed)
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="smollm2-135m", help="comma-separated causal zoo models")
    p.add_argument("--n", type=int, default=200, help="rt_sentiment sentences")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--probe", action="store_true", help="probe accuracy with fp32 vs bf16 features")
    p.add_argument("--probe-only", action="store_true", help="only the probe question: the w2s "
                   "variants, one round")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = p.parse_args()
    if args.probe_only:
        args.repeats = 1
    import torch

    from w2sgen import hardware

    if args.threads:
        torch.set_num_threads(args.threads)
    machine = hardware.probe("cpu")
    print(hardware.header("cpu"))
    print(f"CPU capability {machine.capability}, bf16 units: {'yes' if machine.bf16_native else 'no'}; "
          f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    examples = sentences(args.n, args.seed)
    for name in args.models.split(","):
        print()
        print("\n".join(bench(name.strip(), examples, args, machine)), flush=True)


if __name__ == "__main__":
    main()
