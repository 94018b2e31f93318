"""A whole sweep: the cells the store has finished are skipped, the others run on an executor,
and each outcome is said as it comes."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..progress import bar as progress_bar
from .cells import Outcome
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
    bar = progress_bar(n, suite.name, "cell", quiet=not progress, initial=n - len(todo),
                       dynamic_ncols=True)
    by_index = {c.index: c for c in suite.cells}
    try:
        for out in outcomes_iter:
            outcomes[out.index] = out
            c = by_index[out.index]
            if out.status == "done":
                fresh = f"computed {', '.join(out.computed)}" if out.computed else "all steps cached"
                line = f"done     {c.label}  ({out.seconds:.1f} s, run {out.run_id}; {fresh})"
            elif out.status == "skipped":
                line = f"skipped  {c.label}  (finished: run {out.run_id})"
            elif out.status == "busy":
                line = f"busy     {c.label}  ({out.error})"
            else:
                line = f"FAILED   {c.label}: {out.error}"
            bar.write(line, file=sys.stdout)
            bar.update(1)
    finally:
        bar.close()
    return SweepResult(suite, outcomes, stale, time.perf_counter() - t0)
