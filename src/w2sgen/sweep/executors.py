"""How a sweep's cells are run: EXECUTORS (`inprocess`: one after another in this process;
`ray`: in parallel on a Ray cluster), their Options, and the order that lets cells share work.

Shared work (features, weak supervisor, ceiling) is cached by content, so it is computed once
when the cells that share it run one after another. Cells are ordered so that they do: grouped
by what they share. With parallel executors, a cell waits for the first cell of its group:
the first cell computing a (task, splits, models, features) combination runs alone, then one
cell per seed/training setting of it, then the remaining (method) cells of each group, which
find everything but their student in the cache.

On Ray the driver (the `w2s sweep` process) is the only writer of the run database: workers
compute a cell (`pipeline.compute`) reading and writing only content-addressed cache entries
under the cache (--worker-cache, default the store: a folder every node mounts, or an fsspec
URL such as s3://bucket/prefix, cachefs.py), and hand the result back to the driver, which
records it. The database need not be visible to any worker (docs/cluster.md).
"""
from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..cachefs import entries, resolved
from ..errors import W2SError
from ..registry import Registry
from .cells import Cell, Outcome, run_cell, tracker_figures


@dataclass
class Options:
    workers: int | None = None
    address: str | None = None
    num_cpus: int | None = None
    worker_cache: str | None = None  # ray: where workers read and write cached steps


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
    if opts.workers not in (None, 1) or opts.address or opts.num_cpus or opts.worker_cache:
        raise W2SError("the inprocess executor runs one cell at a time in this process; "
                       "--workers, --address, --num-cpus and --worker-cache need --executor ray")
    return (run_cell(c, store_root) for c in ordered(cells))


@dataclass(frozen=True)
class WorkerSetup:
    """What a Ray worker takes from the driver: the cache (folder or URL) it reads and writes,
    the name of the driver's mark in it, its torch threads, folder and environment."""

    cache_root: str
    mark: str
    threads: int
    cwd: str
    env: dict[str, str]


@dataclass
class Handed:
    """What a worker hands back to the driver: the computed run, or the one-line error that
    stopped it; how long it took and on which Ray node (the first 8 digits of its id)."""

    computed: Any  # pipeline.Computed, or None
    error: str
    seconds: float
    node: str


def _ray_cell(cell: Cell, setup: WorkerSetup, after: Handed | None) -> Handed:
    """A cell computed in a Ray worker, with the driver's environment and folder: cached steps
    are read and written under setup.cache_root, the run database is never opened (the driver
    records what this returns). `after`: the result of the cell whose shared work this one
    reuses (Ray passes it once that cell has finished; only the ordering matters here)."""
    import ray
    import torch

    from .. import pipeline
    from ..store import Store

    t0 = time.perf_counter()
    # (outside a worker, asking for the runtime context would start a local Ray)
    node = ray.get_runtime_context().get_node_id()[:8] if ray.is_initialized() else ""
    os.environ.update(setup.env)
    if os.path.isdir(setup.cwd):  # relative paths in configs mean what they meant there
        os.chdir(setup.cwd)
    try:
        cache = Store(setup.cache_root, database=False)
        if not cache.entries.has_mark(setup.mark):
            return Handed(None, f"the cache {setup.cache_root} is not the driver's on this node "
                          f"(node {node} does not see the sweep's mark in it): put the store, or "
                          "--worker-cache, on a path or URL that every node shares", 0.0, node)
        torch.set_num_threads(setup.threads)
        done = pipeline.compute(cell.cfg, cache)
    except Exception as e:  # noqa: BLE001 -- handed back as the cell's failure; the sweep goes on
        return Handed(None, one_line(e), time.perf_counter() - t0, node)
    return Handed(done, "", time.perf_counter() - t0, node)


def one_line(e: BaseException) -> str:
    msg = str(e) if isinstance(e, W2SError) else f"{type(e).__name__}: {e}"
    return msg.strip().splitlines()[0] if msg.strip() else type(e).__name__


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
    if opts.worker_cache:
        entries(opts.worker_cache)  # an fsspec URL whose package is missing: one line, now
    if opts.address:
        check_reachable(opts.address)
    return _ray_cells(cells, store_root, opts) if cells else iter(())


# What an HTTP/2 client sends first (RFC 9113, 3.4): the preface, then an empty SETTINGS frame
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """A host:port address fails here, within `timeout` s each, when nothing answers there or
    what answers is not a gRPC server (a Ray head's GCS speaks gRPC, so it answers an HTTP/2
    preface with a SETTINGS frame): Ray itself keeps retrying for minutes in both cases.
    (`auto` and `ray://` addresses are left to Ray.)"""
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return
    try:
        conn = socket.create_connection((host, int(port)), timeout=timeout)
    except OSError as e:
        raise W2SError(f"no Ray cluster answers at {address!r} ({e.strerror or e}); start one with "
                       "`ray start --head`, or leave out --address for a local one") from None
    try:
        conn.sendall(H2_PREFACE)
        head = b""
        while len(head) < 9:  # a frame header: length (3 bytes), type (1), flags, stream id
            chunk = conn.recv(9 - len(head))
            if not chunk:
                break
            head += chunk
    except OSError:
        head = b""
    finally:
        conn.close()
    if len(head) < 9 or head[3] != 4:  # 4: SETTINGS
        raise W2SError(f"something listens at {address!r} but it is not a Ray cluster (no gRPC "
                       f"answer within {timeout:g} s); give the address `ray start --head` printed "
                       "(its GCS port, 6379 by default)")


def check_nodes(address: str | None, mark: str, timeout: float = 120.0) -> None:
    """Every live node of the cluster imports w2sgen and sees the driver's `mark` file in the
    cache (a folder every node shares, or a URL every node reaches), asked by a probe pinned to each node (a function
    Ray sends by value, so that the probe itself runs where w2sgen is missing)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    def probe(mark: str) -> str:
        import importlib
        import os

        try:
            importlib.import_module("w2sgen")
        except Exception as e:  # noqa: BLE001 -- reported by the driver
            return f"import: {type(e).__name__}: {e}"
        if "://" not in mark:
            return "ok" if os.path.isfile(mark) else "unshared"
        try:  # a cache at a URL, through fsspec (as cachefs.Remote reads it)
            import fsspec

            fs, path = fsspec.core.url_to_fs(mark)
            return "ok" if fs.exists(path) else "unshared"
        except Exception as e:  # noqa: BLE001 -- reported by the driver
            return f"url: {type(e).__name__}: {e}"

    cluster = f"the Ray cluster at {address!r}" if address else "the local Ray cluster"
    nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
    task = ray.remote(probe)
    refs = [task.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)
                         ).remote(mark) for n in nodes]
    try:
        answers = ray.get(refs, timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        raise W2SError(f"{cluster} did not answer a probe on its {len(nodes)} "
                       f"node(s) within {timeout:.0f} s; check `ray status` there") from None
    for node, answer in zip(nodes, answers):
        if answer.startswith("import: "):
            raise W2SError(f"{cluster} cannot import w2sgen on node "
                           f"{node[:8]} ({answer[8:].splitlines()[0]}): install w2sgen on every node "
                           "(pip install 'w2sgen[ray]') with the same Python as `ray start`")
        folder = mark.rsplit("/", 1)[0]
        if answer.startswith("url: "):
            raise W2SError(f"node {node[:8]} of {cluster} cannot open the cache "
                           f"{folder!r} ({answer[5:].splitlines()[0]}): install fsspec and the "
                           "package for its protocol (s3fs, gcsfs) on every node, with its credentials")
        if answer == "unshared":
            raise W2SError(f"node {node[:8]} of {cluster} does not see the cache "
                           f"folder {folder!r}: workers read and write cached steps there, so it "
                           "must be a path or object-store URL every node shares (put the store "
                           "there, or pass --worker-cache; docs/cluster.md)")


def _ray_cells(cells: list[Cell], store_root: str, opts: Options) -> Iterator[Outcome]:
    import logging

    import ray

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
    cache_root = resolved(opts.worker_cache or store_root)
    cache = entries(cache_root)
    mark = f".w2s-driver-{uuid.uuid4().hex[:12]}"  # the workers look for it
    try:
        try:
            where = cache.put_mark(mark, f"{os.getpid()}\n")
        except OSError as e:  # a folder's (a URL's failures are one line already)
            raise W2SError(f"cannot write to the cache {cache_root!r}: {e}") from None
        check_nodes(opts.address, where)
        yield from _driven(cells, store_root, WorkerSetup(cache_root, mark, 1, os.getcwd(), {}), opts)
    finally:
        cache.remove_mark(mark)
        if ours:
            ray.shutdown()


def _driven(cells: list[Cell], store_root: str, setup: WorkerSetup, opts: Options) -> Iterator[Outcome]:
    """The driver's loop: it alone writes the run database. Each cell is claimed (a `running`
    row owned by this process) before its task is submitted, and recorded when its worker hands
    back the computed run; workers only read and write cache entries under the cache folder.
    A worker or node that dies is Ray's to retry (the task writes nothing but content-addressed
    cache entries, by atomic renames, so running it twice is harmless); a cell that still fails
    ends `failed`, and rerunning the sweep runs it again."""
    import ray

    from .. import pipeline
    from ..loggers import log_finished
    from ..store import RunTaken, Store

    store = Store(store_root)
    draw = tracker_figures(store_root)  # None: no tracker is configured
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    workers = opts.workers or cpus
    threads = max(1, cpus // workers)  # 2 cells on 2 cores: 1 torch thread each
    # Ray hides GPUs from tasks that do not ask for one: cells that may use a GPU share them
    gpus = ray.cluster_resources().get("GPU", 0)
    share = min(1.0, gpus / workers) if gpus and any(c.cfg.device != "cpu" for c in cells) else 0
    task = ray.remote(_ray_cell).options(num_cpus=threads, num_gpus=share, max_retries=RETRIES)
    env = {k: v for k, v in os.environ.items()
           if k.startswith(("W2S_", "HF_", "TRANSFORMERS_", "TOKENIZERS_"))}
    setup = dataclasses.replace(setup, threads=threads, env=env)
    # Ordering by object references: a cell that shares its group's features, supervisor and
    # ceiling takes the reference of the group's first cell as an argument, so Ray starts it
    # only once that cell has finished (and cached the shared work). Every cell is claimed and
    # submitted at once; the CPUs each asks for bound how many run together.
    after = dependencies(cells)
    refs: dict[int, Any] = {}
    run_ids: dict[int, int] = {}
    resolved: dict[int, Any] = {}
    try:
        for c in ordered(cells):
            # resolved here, once: what is recorded (and hashed) is what the worker computes,
            # whatever machine it lands on (precision: auto follows the driver's machine)
            cell = Cell(c.index, c.label, c.cfg.resolved())
            resolved[c.index] = cell.cfg
            try:
                run_ids[c.index] = store.start_run(cell.cfg, exclusive=True)
            except RunTaken as taken:
                yield (Outcome(c.index, "skipped", taken.run_id) if taken.status == "done" else
                       Outcome(c.index, "busy", taken.run_id,
                               error=f"run {taken.run_id} is in progress in process {taken.owner}"))
                continue
            lead = after[c.index]
            refs[c.index] = task.remote(cell, setup, refs.get(lead) if lead is not None else None)
        index_of = {ref: i for i, ref in refs.items()}
        pending = list(refs.values())
        while pending:
            (ref,), pending = ray.wait(pending, num_returns=1)
            i = index_of[ref]
            try:
                handed: Handed = ray.get(ref)
            except Exception as e:  # noqa: BLE001 -- retries spent: a worker or node died
                handed = Handed(None, f"Ray task failed: {one_line(e)}", 0.0, "")
            run_id = run_ids.pop(i)
            if handed.computed is None:
                store.end_run(run_id, "failed", handed.error, {})
                yield Outcome(i, "failed", run_id, handed.seconds, error=handed.error, node=handed.node)
                continue
            done = handed.computed
            pipeline.record(store, run_id, done)
            if draw is not None:  # W&B / MLflow, when configured, with the figures cells send
                row = {"id": run_id, "config": resolved[i].to_dict(), "metrics": done.metrics}
                log_finished(run_id, resolved[i], done.metrics, store, files=draw(row))
            computed = [k for k, t in done.timings.items()
                        if not t["cached"] and k not in ("data", "evaluate")]
            yield Outcome(i, "done", run_id, handed.seconds, computed, node=handed.node)
    except BaseException:
        for i, ref in refs.items():  # Ctrl-C: stop the cells still running
            if i in run_ids:
                ray.cancel(ref, force=True)
        raise
    finally:
        for run_id in run_ids.values():  # claimed and never recorded: interrupted
            store.end_run(run_id, "interrupted", "the sweep's driver stopped before it finished", {})


# A task whose worker process or node dies is run again (up to this many times) on a live node.
RETRIES = 3
