"""How a run's zero-shot answers (eval.zero_shot) on a candidate-move task relate to the candidates'
lengths: of the test questions whose two candidates differ in token count, how often the LM picks
the shorter one, and how often the solution is the longer one. A summed log-probability favours
short continuations, so where solutions are longer (captures and checks spell more), the LM's
likeliest move is more often the wrong one.

  .venv/bin/python scripts/zero_shot_length.py STORE RUN_ID
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import yaml

from w2sgen.config import build_config
from w2sgen.models import load_tokenizer, resolve
from w2sgen.splits import make_splits
from w2sgen.tasks import load_task, task_component


def main() -> None:
    store, run = Path(sys.argv[1]), sys.argv[2]
    raw = yaml.safe_load((store / "artifacts" / run / "config.yaml").read_text())
    for key, value in raw.items():  # a stored component is {name, options}; a config names them flat
        if isinstance(value, dict) and set(value) == {"name", "options"}:
            raw[key] = {"name": value["name"], **value["options"]}
    cfg = build_config(raw)
    task = task_component(cfg.task)
    test = make_splits(load_task(task), cfg.splits, task.name).test
    z = np.load(store / "artifacts" / run / "predictions.npz")
    assert z["ids"].tolist() == [e.id for e in test], "the run's test split differs"
    tok = load_tokenizer(resolve(cfg.eval.zero_shot))
    n = np.array([len(tok(e.text_pair, add_special_tokens=False)["input_ids"]) for e in test])
    p, y = z["zero_shot"], z["labels"]
    groups: dict[str, list[int]] = {}
    for i, e in enumerate(test):
        groups.setdefault(e.group, []).append(i)
    pairs = [g for g in groups.values() if len(g) == 2 and n[g[0]] != n[g[1]]]
    shorter = sum(n[max(g, key=lambda i: p[i])] == n[g].min() for g in pairs)
    longer_solution = sum(n[[i for i in g if y[i]][0]] == n[g].max() for g in pairs)
    print(f"{len(groups)} test questions, {len(pairs)} whose candidates differ in token count: "
          f"the LM picks the shorter in {shorter}, the solution is the longer in {longer_solution}")


if __name__ == "__main__":
    main()
