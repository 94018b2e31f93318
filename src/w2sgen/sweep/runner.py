"""A whole sweep: the cells the store has finished are skipped, the others run on an executor,
and each outcome is said as it comes."""
from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..methods import trained_models
from ..progress import bar as progress_bar
from .cells import Cell, Outcome
from .executors import EXECUTORS, Options
from .suite import Suite


@dataclass
class SweepResult:
    suite: Suite
    outcomes: dict[int, Outcome]
    stale: list[int]
    seconds: float

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes.values())

    @property
    def ok(self) -> bool:
        return all(o.status in ("done", "skipped") for o in self.outcomes.values())


def cell_states(suite: Suite) -> dict[int, tuple[str, int | None]]:
    """Read-only: each cell's state in the store (finished run / in progress elsewhere / to run)."""
    from ..store import Store

    if not (Path(suite.store) / "runs.sqlite").is_file():
        return {c.index: ("todo", None) for c in suite.cells}
    store = Store(suite.store)
    out = {}
    for c in suite.cells:
        done = store.finished_run(c.hash)
        busy = None if done else store.running_elsewhere(c.hash)
        out[c.index] = ("done", done["id"]) if done else ("busy", busy[0]["id"]) if busy else ("todo", None)
    return out


SHARED_STEPS = 2  # the weak supervisor and the ceiling, which the cells of one group share
FEATURE_STEPS = 3  # features of weak_train, transfer and test, per model, shared wider still


class Work:
    """A sweep's progress in the pipeline's cached steps, not in cells, so that its time left
    counts work already cached as done: every cell trains its student (1 step); the first cell
    of a group (`Cell.group`: the same weak supervisor and ceiling) also trains those two, and
    the first of a features group (`Cell.features_group`: the seeds of one task and model pair)
    also extracts each model's features of the three splits; the other cells, and cells whose
    groups have a finished run in the store, find those cached."""

    def __init__(self, cells: list[Cell], todo: set[int]):
        self.seen: set[str] = set()  # the shared steps done (or found done in the store)
        every: set[str] = set()
        self.total = sum(1 + self.shared(c, every) for c in cells)
        self.done = sum(1 + self.shared(c) for c in cells if c.index not in todo)
        self.cells_done = len(cells) - len(todo)

    def shared(self, cell: Cell, seen: set[str] | None = None) -> int:
        """The shared steps `cell` computes that no cell before it in `seen` did; marks them."""
        seen = self.seen if seen is None else seen
        steps = 0
        for key, n in ((f"g:{cell.group}", SHARED_STEPS),
                       (f"f:{cell.features_group}", FEATURE_STEPS * len(models_of(cell)))):
            if key not in seen:
                seen.add(key)
                steps += n
        return steps

    def finish(self, cell: Cell) -> int:
        """Count `cell` as finished; the steps that made it (to advance the bar by)."""
        steps = 1 + self.shared(cell)
        self.done += steps
        self.cells_done += 1
        return steps


def models_of(cell: Cell) -> set[str]:
    """The models whose features a cell's runs read: weak, strong, and the models the method
    declares it trains (methods.trained_models: a bootstrap ladder's rungs, weak_ensemble's
    supervisors)."""
    trained = trained_models(cell.cfg.method)
    return {cell.cfg.weak_model, cell.cfg.strong_model, *trained.supervisors, *trained.students}


def run_sweep(suite: Suite, executor: str = "inprocess", opts: Options | None = None,
              echo: Callable[[str], None] = print, progress: bool = True) -> SweepResult:
    from ..store import Store

    run = EXECUTORS.get(executor)
    opts = opts or Options()
    run([], suite.store, opts)  # the executor's checks (is Ray installed, options), before any work
    t0 = time.perf_counter()
    store = Store(suite.store)
    store.check_writable()  # a read-only store: one line, not a failure per cell
    stale = store.stale  # marked as the store opened
    if stale:
        echo(f"marked {len(stale)} run(s) left 'running' by a process that no longer exists as "
             f"killed: {', '.join(map(str, stale))}")
    orphans = store.orphans + store.remove_orphans()  # most went as the store opened
    if orphans:
        echo(f"removed {orphans} temporary file(s) left by killed processes")
    outcomes: dict[int, Outcome] = {}
    todo = []
    for c in suite.cells:
        done = store.finished_run(c.hash)
        if done:
            outcomes[c.index] = Outcome(c.index, "skipped", done["id"])
        else:
            todo.append(c)
    outcomes_iter = run(todo, suite.store, opts)  # checks its options before anything is said
    n = len(suite.cells)
    echo(f"w2s sweep {suite.name}: {n} cells, {n - len(todo)} already finished, {len(todo)} to "
         f"run ({executor}); store {suite.store}")
    for line in suite.notes:
        echo(line)
    work = Work(suite.cells, {c.index for c in todo})
    bar = progress_bar(work.total, suite.name, "pipeline step", quiet=not progress, initial=work.done,
                       dynamic_ncols=True)
    by_index = {c.index: c for c in suite.cells}
    try:
        for out in outcomes_iter:
            outcomes[out.index] = out
            c = by_index[out.index]
            steps = work.finish(c)
            bar.set_postfix_str(f"{work.cells_done}/{n} cells")
            if out.status == "done":
                fresh = f"computed {', '.join(out.computed)}" if out.computed else "all steps cached"
                on = f" on node {out.node}" if out.node else ""
                line = f"done     {c.label}  ({out.seconds:.1f} s{on}, run {out.run_id}; {fresh})"
            elif out.status == "skipped":
                line = f"skipped  {c.label}  (finished: run {out.run_id})"
            elif out.status == "busy":
                line = f"busy     {c.label}  ({out.error})"
            else:
                line = f"FAILED   {c.label}: {out.error}"
            # within 100 columns; a path in it stays whole
            bar.write("\n".join(textwrap.wrap(line, 100, subsequent_indent=" " * 9,
                                               break_on_hyphens=False, break_long_words=False)),
                      file=sys.stdout)
            bar.update(steps)
    finally:
        bar.close()
    return SweepResult(suite, outcomes, stale, time.perf_counter() - t0)
