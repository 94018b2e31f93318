"""Files written whole or not at all, and what killed writers leave behind.

`atomic_write` writes through a temporary file named after the host and the process
(`temp_prefix`), fsynced, then renamed into place, with the permissions the user's umask gives a
new file. A write the disk or the folder refuses is one line (`write_failed`), and the file that
was there stays as it was. `remove_dead_temporaries` deletes the temporary files of processes on
this host that are gone (a kill -9 mid-write); every command runs it as it starts or opens a
store.
"""
from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import W2SError


def _proc_start(pid: int) -> str | None:
    """Start time of a live process (Linux: clock ticks since boot), "" where /proc is absent,
    None when the process is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces and parentheses
    return None if fields[0] in ("Z", "X", "x") else fields[19]



def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def temp_prefix() -> str:
    """Prefix of this process's temporary files in a store: `.tmp-<host>-<pid>-`, so that the
    ones a killed process left behind can be told from those of a live one."""
    return f".tmp-{_host_tag()}-{os.getpid()}-"


TEMP_NAME = re.compile(r"\.tmp-([0-9a-f]{8})-(\d+)-")

def _umask() -> int:
    """This process's umask, read without changing it (/proc), else by setting it back."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# What a store file may be written over: a full disk, a read-only or immutable folder, a folder
# in a file's place. Each is one line, and what was stored before stays as it was.
WRITE_ERRORS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
                errno.EPERM: "not permitted (an immutable file or folder?)",
                errno.EISDIR: "a folder is where the file belongs",
                errno.ENOTDIR: "a file is where a folder belongs",
                errno.EEXIST: "a file is where a folder belongs"}


def write_failed(path: Path, e: OSError) -> W2SError:
    why = WRITE_ERRORS.get(e.errno or 0, e.strerror or str(e))
    return W2SError(f"cannot write {path}: {why}; free space, fix the folder's permissions or "
                    "move the obstacle away, or pass another --store (every finished step stays "
                    "cached)")


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Write `path` through a temporary file renamed into place. The file gets the permissions
    the user's umask gives a new file (mkstemp's 0600 would lock other users of a shared store
    out of it: docs/reliability.md, "A store shared between users")."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(), suffix=path.suffix)
    except OSError as e:
        raise write_failed(path, e) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno in WRITE_ERRORS:
            raise write_failed(path, e) from None
        raise



def remove_dead_temporaries(folder: Path) -> int:
    """Delete the temporary files and folders under `folder` (named by `temp_prefix`) whose
    process, on this host, is gone; those of live processes and other hosts are kept. Files
    this user may not delete are left. Returns how many were removed."""
    removed = 0
    try:
        found = list(folder.rglob(".tmp-*"))
    except OSError:
        return 0
    for path in found:
        m = TEMP_NAME.match(path.name)
        if not m or m[1] != _host_tag() or _proc_start(int(m[2])) is not None:
            continue
        try:
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        except OSError:
            continue
        removed += 1
    return removed
