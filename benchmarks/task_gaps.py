"""Does a task have a weak-strong gap? Measured without its test split.

For each task and split seed, the project's splits (`make_splits`) are cut as a suite would cut
them; each model's frozen features (the project's `features.extract`, the model's own pooling,
max_length 128) of weak_train and transfer are computed; a logistic-regression probe per model
is fit on weak_train's ground truth (L-BFGS, L2 1e-3, on standardised features) and scored on
transfer. Printed per (task, split seed): each model's transfer accuracy and the strong - weak
difference with a 95% percentile-bootstrap interval over the transfer examples (paired: one
resample for both models). The test split is never read.

    OMP_NUM_THREADS=2 python benchmarks/task_gaps.py --tasks disaster_tweets surnames \\
        --weak minilm-l3 --strong mpnet-base --sizes 600 600 --split-seeds 0
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def probe_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_eval: np.ndarray, y_eval: np.ndarray,
                   l2: float = 1e-3) -> np.ndarray:
    """Per-example correctness (0/1) on the eval set of a logistic probe fit on train."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    xt = torch.tensor((x_train - mu) / sd, dtype=torch.float64)
    xe = torch.tensor((x_eval - mu) / sd, dtype=torch.float64)
    yt = torch.tensor(y_train, dtype=torch.float64)
    w = torch.zeros(xt.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt) + l2 * (w @ w)
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        pred = ((xe @ w + b) > 0).numpy()
    return (pred == y_eval.astype(bool)).astype(float)


def main() -> int:
    from w2sgen.config import Component, SplitsConfig
    from w2sgen.features import extract
    from w2sgen.models import load, resolve
    from w2sgen.splits import make_splits
    from w2sgen.tasks import load_task

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", required=True)
    p.add_argument("--weak", default="minilm-l3")
    p.add_argument("--strong", default="mpnet-base")
    p.add_argument("--sizes", type=int, nargs=2, default=[600, 600], metavar=("WEAK_TRAIN", "TRANSFER"))
    p.add_argument("--test", type=int, default=0, help="the test size the suite cuts after them "
                   "(0: the rest); only fixes which examples the first two splits take")
    p.add_argument("--split-seeds", type=int, nargs="+", default=[0])
    p.add_argument("--rounds", type=int, default=2000)
    a = p.parse_args()
    models = {name: load(resolve(name)) for name in (a.weak, a.strong)}
    refs = {name: resolve(name) for name in models}
    print("| task | split seed | weak_train / transfer | weak (transfer acc.) | strong | strong - weak [95% CI] |")
    print("|---|---|---|---|---|---|")
    for task in a.tasks:
        examples = load_task(Component(task, {}))
        for seed in a.split_seeds:
            test = a.test or len(examples) - sum(a.sizes)
            splits = make_splits(examples, SplitsConfig(weak_train=a.sizes[0], transfer=a.sizes[1],
                                                        test=test, seed=seed), task)
            y_w = np.array([e.label for e in splits.weak_train])
            y_t = np.array([e.label for e in splits.transfer])
            correct = {}
            t0 = time.perf_counter()
            for name, (model, tok) in models.items():
                feats = [extract(model, tok, part, pooling=refs[name].pooling, max_length=128,
                                 batch_size=64, precision="auto", join_pairs=False)
                         for part in (splits.weak_train, splits.transfer)]
                correct[name] = probe_accuracy(feats[0], y_w, feats[1], y_t)
            diff = correct[a.strong] - correct[a.weak]
            idx = np.random.default_rng(0).integers(0, len(diff), (a.rounds, len(diff)))
            lo, hi = np.quantile(diff[idx].mean(1), [0.025, 0.975])
            print(f"| {task} | {seed} | {a.sizes[0]} / {a.sizes[1]} | {correct[a.weak].mean():.3f} | "
                  f"{correct[a.strong].mean():.3f} | {diff.mean():+.3f} [{lo:+.3f}, {hi:+.3f}] |", flush=True)
            print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
