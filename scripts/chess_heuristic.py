"""A no-model baseline for a chess task's candidate-move examples: "the candidate is the solution
when it captures or gives check" (read from the move's SAN, which every example shows), its
accuracy over all examples, and how often solutions and wrong candidates capture or check. A
probe on frozen sentence-encoder features can reach this much from the move's spelling alone.

  .venv/bin/python scripts/chess_heuristic.py                       # chess_generated, defaults
  .venv/bin/python scripts/chess_heuristic.py wrong=random          # task options as key=value
"""
from __future__ import annotations

import re
import sys

import yaml

from w2sgen.spec import Component
from w2sgen.tasks import load_task


def forcing(text_pair: str) -> bool:
    san = re.match(r"Move: (\S+)", text_pair)
    return bool(san and ("x" in san.group(1) or "+" in san.group(1) or "#" in san.group(1)))


def main() -> None:
    opts = {k: yaml.safe_load(v) for k, v in (a.split("=", 1) for a in sys.argv[1:])}
    examples = load_task(Component("chess_generated", opts))
    right = [forcing(e.text_pair or "") for e in examples if e.label == 1]
    wrong = [forcing(e.text_pair or "") for e in examples if e.label == 0]
    acc = sum(forcing(e.text_pair or "") == bool(e.label) for e in examples) / len(examples)
    print(f"chess_generated {opts or '(defaults)'}: {len(examples)} examples, {len(right)} puzzles")
    print(f"solutions that capture or check: {sum(right) / len(right):.3f}; "
          f"wrong candidates: {sum(wrong) / len(wrong):.3f}")
    print(f"heuristic 'capture or check = solution' accuracy: {acc:.3f}")


if __name__ == "__main__":
    main()
