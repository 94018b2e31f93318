"""Which process owns a run or a temporary file: its host, this boot, its pid and that process's
start time (so a reused pid is not mistaken for the original process), and whether it still runs.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

from .atomic import _proc_start


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return ""


def process_owner(pid: int | None = None) -> str:
    """Who runs a run: this host, this boot, a pid and that process's start time (so a reused
    pid is not mistaken for the original process)."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{_boot_id()}:{pid}:{_proc_start(pid) or ''}"


def owner_state(owner: str | None) -> str:
    """`alive`, `dead`, or `unknown` (another host: it cannot be checked from here)."""
    if not owner:
        return "dead"  # rows written before owners were recorded: no process can still own them
    try:
        host, boot, pid, start = owner.rsplit(":", 3)
        int(pid)
    except ValueError:
        return "unknown"
    if host != socket.gethostname():
        return "unknown"
    if boot != _boot_id():
        return "dead"
    now = _proc_start(int(pid))
    return "dead" if now is None or (start and now and now != start) else "alive"


def live_elsewhere(owner: str | None) -> bool:
    """Is a run's owner another process on this host that is still alive?"""
    return owner != process_owner() and owner_state(owner) == "alive"
