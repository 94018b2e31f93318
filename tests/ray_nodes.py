"""Real Ray nodes on this machine for tests: each `ray start --block` in a session of its own
(Ray's worker processes take process groups of their own, but stay in the session), so that
stopping it (or killing it, to play a node that dies) ends exactly the processes it started -
never `ray stop`, which ends every Ray process of the user on the machine."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
STARTED = "Ray runtime started"


class Node:
    def __init__(self, args: list[str], log: Path, env: dict[str, str]):
        self.log = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen([RAY, "start", *args, "--disable-usage-stats", "--block"],
                                         stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)

    def wait_started(self, timeout: float = 120) -> str:
        """The log once the node is up (its `ray start` prints the join address)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            text = self.log.read_text(errors="replace")
            if STARTED in text:
                return text
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start exited {self.proc.returncode}:\n{text[-3000:]}")
            time.sleep(0.5)
        raise TimeoutError(f"no Ray node after {timeout} s:\n{self.log.read_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL, grace: float = 15) -> None:
        """Signal every process of the node's session; after `grace` s of SIGTERM, SIGKILL."""
        for signum in (sig, signal.SIGKILL):
            for pid in _session(self.proc.pid):
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    pass
            end = time.monotonic() + (grace if signum != signal.SIGKILL else 10)
            while time.monotonic() < end and _session(self.proc.pid):
                self.proc.poll()
                time.sleep(0.3)
            if not _session(self.proc.pid):
                break
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def running(self, task: str) -> bool:
        """Is a worker process of this node executing Ray task `task` now (its title is
        `ray::<task>` while it does)?"""
        for pid in _session(self.proc.pid):
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(f"ray::{task}".encode()):
                    return True
            except OSError:
                continue
        return False


def _session(sid: int) -> list[int]:
    """The live processes of a session (zombies left out)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            out.append(int(stat.parent.name))
    return out


@contextmanager
def cluster(env: dict[str, str], worker_cpus: int | None = 1, head_cpus: int = 1
            ) -> Iterator[tuple[str, Node, Node | None]]:
    """A head node (and, unless worker_cpus is None, a second node joined to it), each with its
    own CPUs; yields (address, head, worker). Both are stopped on the way out, whatever happens."""
    # without token authentication whatever ~/.ray holds: a local `ray.init()` anywhere on the
    # machine leaves a token there, which turns it on for a later `ray start --head`
    env = {**env, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    temp = Path(tempfile.mkdtemp(prefix="w2sray"))  # short: Ray's socket paths must fit 107 bytes
    nodes: list[Node] = []
    try:
        head = Node(["--head", "--port=0", f"--num-cpus={head_cpus}", "--include-dashboard=false",
                     f"--temp-dir={temp}"], temp / "head.log", env)
        nodes.append(head)
        m = re.search(r"ray start --address='([^']+)'", head.wait_started())
        assert m, head.log.read_text()[-2000:]
        address = m[1]
        worker = None
        if worker_cpus is not None:
            worker = Node([f"--address={address}", f"--num-cpus={worker_cpus}"], temp / "worker.log", env)
            nodes.append(worker)
            worker.wait_started()
        yield address, head, worker
    finally:
        for node in reversed(nodes):
            node.kill(signal.SIGTERM)
        shutil.rmtree(temp, ignore_errors=True)
