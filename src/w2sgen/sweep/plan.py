"""`w2s sweep --dry-run` and `--max-hours`: what a suite would run, and what it would cost here,
before anything runs (the estimate: estimates.time_estimates)."""
from __future__ import annotations

import textwrap
from typing import Any, Optional

from ..errors import W2SError, cut_message
from .estimates import ESTIMATE_NOTE, TimeEstimate, hours, memory_checks, time_estimates
from .runner import cell_states
from .suite import Suite


def check_budget(cost: TimeEstimate, name: str, max_hours: float) -> None:
    """Refuse (one line) a suite whose estimate exceeds `max_hours`, or has cells without one."""
    if cost.unknown:
        raise W2SError(f"--max-hours needs an estimate of every cell; {cut_message(cost.unknown[0])}")
    if cost.total > max_hours * 3600:
        raise W2SError(f"suite {name} is estimated at {hours(cost.total)} on this machine, over "
                       f"--max-hours {max_hours:g}; run fewer cells (grid values, seeds), smaller "
                       "models or splits, or raise --max-hours")


WIDTH = 100  # columns of the listing


def grouped(rows: list[tuple[str, list[str]]]) -> list[str]:
    """One line per cell: its columns, then its label (the grid values, ` | `-joined). Where
    whole labels would not fit in WIDTH, their leading values (task, pair, ...) become heading
    lines over the cells that share them, as few as make every line fit."""
    parts = max((len(label) for _, label in rows), default=1)
    for head in range(parts):
        if all(len(cols) + len(" | ".join(label[head:])) <= WIDTH for cols, label in rows):
            break
    head = min(head, parts - 1)
    lines, last = [], None
    for cols, label in rows:
        heading = " | ".join(label[:head])
        if head and heading != last:
            lines.append(heading)
            last = heading
        lines.append(cols + " | ".join(label[head:]))
    return lines


def plan(suite: Suite, dry_run: bool, max_hours: Optional[float]) -> Optional[str]:
    """With `max_hours`, check the suite's estimate against it; with `dry_run`, the listing:
    each cell, whether it is finished, its estimated time, and the total. Cells on a CUDA
    device are estimated with hardware.gpu_figures (the GPU's measurement recorded in
    hardware.json, else its data-sheet peak), and the listing adds the memory estimates of the
    models they train against the GPU's memory."""
    if not dry_run and max_hours is None:
        return None
    states: dict[int, Any] = cell_states(suite)
    finished = frozenset(i for i, (s, _) in states.items() if s == "done")
    gpu = None
    if any(c.cfg.torch_device().startswith("cuda") for c in suite.cells):
        from ..hardware import gpu_figures

        gpu = gpu_figures()
    cost = time_estimates(suite.cells, skip=finished, gpu=gpu)
    if max_hours is not None:
        check_budget(cost, suite.name, max_hours)
    if not dry_run:
        return None
    lines = [f"w2s sweep {suite.name}: {len(suite.cells)} cells, {len(finished)} already finished, "
             f"{len(suite.cells) - len(finished)} to run; store {suite.store}"
             + (f"; {suite.merged} grid combination(s) repeat another cell" if suite.merged else ""),
             *suite.notes]
    rows = []
    for c, c_cost in zip(suite.cells, cost.cells):
        state, run_id = states[c.index]
        note = {"done": f"finished: run {run_id}", "busy": f"running now: run {run_id}",
                "todo": "to run"}[state]
        est = "-" if state == "done" else "?" if c_cost.unknown else "~" + hours(c_cost.seconds)
        rows.append((f"  {c.index + 1:>4}  {c.hash}  {note:<18}  {est:>8}  ", c.label.split(" | ")))
    lines += grouped(rows)
    missing = sum(bool(c.unknown) for c in cost.cells)
    note = ESTIMATE_NOTE if gpu is None else ESTIMATE_NOTE.replace(
        "measured on this machine", "of this machine's GPU (whose figures the line below names)")
    lines += textwrap.wrap(f"estimated time to run: {hours(cost.total)}"
                           + (f" for the cells with an estimate ({missing} without: ?)" if missing else "")
                           + f" ({note}); {cost.machine}", WIDTH, subsequent_indent="  ")
    lines += [f"  ?: {cut_message(why)}" for why in cost.unknown]
    if gpu is not None:
        p, where = gpu
        lines.append(f"{where}: bf16 {p.bf16_gflops / 1e3:.0f} TFLOP/s, fp32 "
                     f"{p.fp32_gflops / 1e3:.0f} TFLOP/s, memory {(p.memory_bytes or 0) / 2**30:.0f} GiB")
        over, fits = memory_checks(suite.cells, p, finished)
        lines += ([f"memory: {len(over)} model setting(s) would not fit {p.name}:"] + over) if over else []
        lines += [fits] if fits and not over else []
    return "\n".join(lines)
