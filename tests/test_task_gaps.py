"""benchmarks/task_gaps.py's probe: the gap measurement docs/datasets.md reports."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

_path = Path(__file__).resolve().parents[1] / "benchmarks" / "task_gaps.py"
_spec = importlib.util.spec_from_file_location("task_gaps", _path)
assert _spec is not None and _spec.loader is not None
tg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tg)


def test_probe_separates_what_is_separable_and_not_noise():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    signal = np.c_[y * 2.0 - 1 + rng.normal(0, 0.3, 400), rng.normal(0, 1, (400, 5))]
    right = tg.probe_accuracy(signal[:200], y[:200], signal[200:], y[200:])
    assert right.shape == (200,) and set(np.unique(right)) <= {0.0, 1.0}
    assert right.mean() > 0.97
    noise = rng.normal(0, 1, (400, 6))
    assert 0.35 < tg.probe_accuracy(noise[:200], y[:200], noise[200:], y[200:]).mean() < 0.65
