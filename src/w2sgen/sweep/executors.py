"""How a sweep's cells are run: EXECUTORS (`inprocess`: one after another in this process;
`ray`: in parallel on a Ray cluster), their Options, and the order that lets cells share work.

Shared work (features, weak supervisor, ceiling) is cached by content, so it is computed once
when the cells that share it run one after another. Cells are ordered so that they do: grouped
by what they share. With parallel executors, a cell waits for the first cell of its group:
the first cell computing a (task, splits, models, features) combination runs alone, then one
cell per seed/training setting of it, then the remaining (method) cells of each group, which
find everything but their student in the cache.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import W2SError
from ..registry import Registry
from .cells import Cell, Outcome, run_cell


@dataclass
class Options:
    workers: int | None = None
    address: str | None = None
    num_cpus: int | None = None


Executor = Callable[[list[Cell], str, Options], Iterator[Outcome]]
EXECUTORS: Registry[Executor] = Registry("executor")


def ordered(cells: list[Cell]) -> list[Cell]:
    """Cells sharing features, then sharing supervisor and ceiling, next to each other."""
    first_f: dict[str, int] = {}
    first_g: dict[str, int] = {}
    for c in cells:
        first_f.setdefault(c.features_group, c.index)
        first_g.setdefault(c.group, c.index)
    return sorted(cells, key=lambda c: (first_f[c.features_group], first_g[c.group], c.index))


def dependencies(cells: list[Cell]) -> dict[int, int | None]:
    """For parallel executors: the cell each cell waits for (None: none). The first cell of a
    features group starts at once; the first cell of each group in it waits for that one; the
    other cells of a group wait for the group's first."""
    after: dict[int, int | None] = {}
    lead_f: dict[str, int] = {}
    lead_g: dict[str, int] = {}
    for c in ordered(cells):
        if c.features_group not in lead_f:
            lead_f[c.features_group] = lead_g[c.group] = c.index
            after[c.index] = None
        elif c.group not in lead_g:
            lead_g[c.group] = c.index
            after[c.index] = lead_f[c.features_group]
        else:
            after[c.index] = lead_g[c.group]
    return after


@EXECUTORS.register("inprocess")
def inprocess(cells: list[Cell], store_root: str, opts: Options) -> Iterator[Outcome]:
    """One cell after another in this process."""
    if opts.workers not in (None, 1) or opts.address or opts.num_cpus:
        raise W2SError("the inprocess executor runs one cell at a time in this process; "
                       "--workers, --address and --num-cpus need --executor ray")
    return (run_cell(c, store_root) for c in ordered(cells))


@dataclass(frozen=True)
class WorkerSetup:
    """What a Ray worker takes from the driver: the store, its torch threads, folder and env."""

    store_root: str
    threads: int
    cwd: str
    env: dict[str, str]


def _ray_cell(cell: Cell, setup: WorkerSetup, after: Outcome | None) -> Outcome:
    """A cell in a Ray worker, with the driver's environment and folder. `after`: the outcome of
    the cell whose shared work this one reuses (Ray passes it once that cell has finished; only
    the ordering matters here)."""
    os.environ.update(setup.env)
    os.chdir(setup.cwd)  # relative paths in configs (data files, models) mean what they meant there
    import torch

    torch.set_num_threads(setup.threads)
    return run_cell(cell, setup.store_root)


@EXECUTORS.register("ray")
def ray_executor(cells: list[Cell], store_root: str, opts: Options) -> Iterator[Outcome]:
    """Each cell a Ray task on a local cluster (started here) or one at --address. Checks Ray
    and the options at once; starts the cluster only when there is a cell to run."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise W2SError("--executor ray needs Ray, which is not installed: "
                       "pip install 'w2sgen[ray]'") from None
    if opts.address and opts.num_cpus:
        raise W2SError("--num-cpus sets up a local Ray cluster; leave it out with --address")
    for name in ("workers", "num_cpus"):
        if getattr(opts, name) is not None and getattr(opts, name) < 1:
            raise W2SError(f"--{name.replace('_', '-')} must be at least 1")
    if cells and opts.address:
        check_reachable(opts.address)
    return _ray_cells(cells, store_root, opts) if cells else iter(())


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """A host:port address that does not answer fails here, at once: Ray itself keeps retrying
    for minutes. (`auto` and `ray://` addresses are left to Ray.)"""
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise W2SError(f"no Ray cluster answers at {address!r} ({e.strerror or e}); start one with "
                       "`ray start --head`, or leave out --address for a local one") from None


def _ray_cells(cells: list[Cell], store_root: str, opts: Options) -> Iterator[Outcome]:
    import logging

    import ray

    from ..store import Store

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline-first: no usage report
    ours = not ray.is_initialized()
    if ours:
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": logging.WARNING}
        try:
            if opts.address:
                ray.init(address=opts.address, **kwargs)
            else:
                ray.init(num_cpus=opts.num_cpus or os.cpu_count() or 1, **kwargs)
        except Exception as e:  # noqa: BLE001 -- unreachable address, no room for a cluster, ...
            where = f"at {opts.address!r}" if opts.address else "locally"
            text = str(e).strip().splitlines()
            raise W2SError(f"could not start or join a Ray cluster {where}: "
                           f"{text[0] if text else type(e).__name__}") from None
    try:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        workers = opts.workers or cpus
        threads = max(1, cpus // workers)  # 2 cells on 2 cores: 1 torch thread each
        # Ray hides GPUs from tasks that do not ask for one: cells that may use a GPU share them
        gpus = ray.cluster_resources().get("GPU", 0)
        share = min(1.0, gpus / workers) if gpus and any(c.cfg.device != "cpu" for c in cells) else 0
        task = ray.remote(_ray_cell).options(num_cpus=threads, num_gpus=share, max_retries=0)
        env = {k: v for k, v in os.environ.items()
               if k.startswith(("W2S_", "HF_", "TRANSFORMERS_", "TOKENIZERS_"))}
        root = str(Path(store_root).resolve())
        setup = WorkerSetup(root, threads, os.getcwd(), env)
        # Ordering by object references: a cell that shares its group's features, supervisor and
        # ceiling takes the reference of the group's first cell as an argument, so Ray starts it
        # only once that cell has finished (and cached the shared work). Every cell is submitted
        # at once; the CPUs each asks for bound how many run together.
        after = dependencies(cells)
        refs: dict[int, Any] = {}
        for c in ordered(cells):
            lead = after[c.index]
            refs[c.index] = task.remote(c, setup, None if lead is None else refs[lead])
        index_of = {ref: i for i, ref in refs.items()}
        pending = list(refs.values())
        try:
            while pending:
                (ref,), pending = ray.wait(pending, num_returns=1)
                i = index_of[ref]
                try:
                    out = ray.get(ref)
                except Exception as e:  # noqa: BLE001 -- a worker died (out of memory, killed)
                    text = str(e).strip().splitlines()  # (its dependants fail with it: rerun resumes)
                    out = Outcome(i, "failed", error=f"Ray task failed: {text[0] if text else type(e).__name__}")
                    Store(root).mark_stale()  # its run row, if it had one, is no longer running
                yield out
        except BaseException:
            for ref in pending:  # Ctrl-C: interrupt the running cells, so they record it
                ray.cancel(ref)
            raise
    finally:
        if ours:
            ray.shutdown()
