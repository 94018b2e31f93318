"""Run scaffolding shared by both pipelines (`w2s run` and `w2s generate`).

- `Steps`: the timing and caching of a run's steps; `steps.cached(label, kind, key, compute)`
  is the one cached-step idiom (the step is timed, and marked `(cached)` when re-used);
- `recorded(store, cfg, steps)`: the one run lifecycle: a row is started, and an exception ends
  it `failed`, Ctrl-C or SIGTERM `interrupted`, with the steps' times so far; the pipeline
  finishes it with `store.finish_run` when it has its metrics;
- `run_kind(row)`: which pipeline wrote a stored run, the key of the report registries.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .errors import Terminated, W2SError
from .store import RunConfig, Store

Arrays = dict[str, np.ndarray]
CLASSIFICATION = "classification"
# Config keys a run's weak supervisor and strong ceiling do not depend on: runs that differ only
# in these share those steps (the sweep orders cells by the rest, reports pair methods by it).
NOT_SHARED = ("method", "loss", "eval", "name", "store", "device", "labels")


def run_kind(row: dict[str, Any]) -> str:
    """The kind of a stored run (rows keep their config; classification runs predate kinds)."""
    return (row.get("config") or {}).get("kind") or CLASSIFICATION


class StepMark:
    """What a step reports about itself while it runs (whether it was a cache hit)."""

    cached = False


class Steps:
    """Times and caches the steps of one run, printing each as it ends."""

    def __init__(self, store: Store, quiet: bool = False):
        self.store, self.quiet = store, quiet
        self.timings: dict[str, Any] = {}
        self._inner: list[float] = []  # per open step: seconds spent in the steps inside it

    @contextmanager
    def step(self, name: str) -> Iterator[StepMark]:
        """Time a step. A step inside another (features extracted while a model trains) is
        timed on its own and left out of the outer one's time, so a run's step times add up
        to the run's time."""
        mark = StepMark()
        t0 = time.perf_counter()
        self._inner.append(0.0)
        try:
            yield mark
        finally:
            inner = self._inner.pop()
            total = time.perf_counter() - t0
            if self._inner:
                self._inner[-1] += total
        seconds = round(total - inner, 3)
        self.timings[name] = {"seconds": seconds, "cached": mark.cached}
        if not self.quiet:
            print(f"  {name:<30} {seconds:7.1f} s{' (cached)' if mark.cached else ''}", flush=True)

    def cached(self, label: str, kind: str, key: dict[str, Any],
               compute: Callable[[], Arrays]) -> Arrays:
        """The arrays of step `label`, stored under `kind`/`key`: computed once, then re-used."""
        with self.step(label) as mark:
            arrays, mark.cached = self.store.cached(kind, key, compute)
        return arrays


@contextmanager
def recorded(store: Store, cfg: RunConfig, steps: Steps, exclusive: bool = False) -> Iterator[int]:
    """A run row for `cfg` for the duration of the block; yields its id. The block calls
    `store.finish_run` when done; leaving it by an exception ends the row instead."""
    run_id = store.start_run(cfg, exclusive)
    try:
        yield run_id
    except KeyboardInterrupt as e:
        why = f"terminated ({e.signame})" if isinstance(e, Terminated) else "interrupted by the user"
        _end(store, run_id, "interrupted", why, steps)
        raise
    except BaseException as e:
        _end(store, run_id, "failed", f"{type(e).__name__}: {e}", steps)
        raise


def _end(store: Store, run_id: int, status: str, why: str, steps: Steps) -> None:
    """Record how a run ended; when even that cannot be written (the disk that stopped the run
    is full), the run's own error is the one reported, and the next command to open the store
    marks the row `killed`."""
    try:
        store.end_run(run_id, status, why, steps.timings)
    except W2SError:
        pass
