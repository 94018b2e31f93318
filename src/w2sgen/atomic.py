"""Files written whole or not at all, and what killed writers leave behind.

`atomic_write` writes through a temporary file named after the host and the process
(`temp_prefix`), fsynced, then renamed into place, with the permissions the user's umask gives a
new file. A write the disk or the folder refuses is one line (`write_failed`), and the file that
was there stays as it was. `remove_dead_temporaries` deletes the temporary files of processes on
this host that are gone (a kill -9 mid-write); every command runs it as it starts or opens a
store.

Assets and converted models are folders: `atomic_dir` fills one beside its target
(`.<name>.partial-<host>-<pid>-...`) and renames it into place when complete;
`remove_partials` deletes only those whose process is gone, so a second pull of the same asset
never removes the folder a live one is filling.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
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


def owner_tag() -> str:
    """`<host>-<pid>` of this process, in the names of its temporary files and folders."""
    return f"{_host_tag()}-{os.getpid()}"


def owner_gone(host: str, pid: int) -> bool:
    """Whether the process that named a temporary file `<host>-<pid>` is gone. Only a process of
    this host can be asked; one of another host sharing the folder counts as alive."""
    return host == _host_tag() and _proc_start(pid) is None


def temp_prefix() -> str:
    """Prefix of this process's temporary files in a store: `.tmp-<host>-<pid>-`, so that the
    ones a killed process left behind can be told from those of a live one."""
    return f".tmp-{owner_tag()}-"


TEMP_NAME = re.compile(r"\.tmp-([0-9a-f]{8})-(\d+)-")
OWNER = re.compile(r"([0-9a-f]{8})-(\d+)-")


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
        if not m or not owner_gone(m[1], int(m[2])):
            continue
        try:
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        except OSError:
            continue
        removed += 1
    return removed


def _publish_mode(path: Path) -> None:
    """mkdtemp makes owner-only folders; give the folder and what is in it the modes the umask
    gives new ones."""
    mask = _umask()
    for p in [path, *path.rglob("*")]:
        p.chmod((0o777 if p.is_dir() else 0o666) & ~mask)


def partial_prefix(target: Path) -> str:
    """Prefix of this process's temporary folders for `target`, beside it."""
    return f".{target.name}.partial-{owner_tag()}-"


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Fill a temporary folder beside `target` (`partial_prefix`), renamed into place on
    success and removed on failure (KeyboardInterrupt included). A process killed outright
    leaves it, named with its pid, for `remove_partials`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=partial_prefix(target), dir=target.parent))
    try:
        yield tmp
        _publish_mode(tmp)
        if target.exists():  # a leftover from an older layout: replace it
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_partials(folder: Path, name: str = "*") -> int:
    """Delete the temporary folders and files of `name` beside it (`partial_prefix`) whose
    process is gone: a pull or conversion killed outright. Those of a live process, or of
    another host sharing the folder, are kept; one named without its process (written by an
    older version) is removed. Returns how many were removed."""
    removed = 0
    if not folder.is_dir():
        return 0
    for p in folder.glob(f".{name}.partial-*"):
        m = OWNER.match(p.name.rsplit(".partial-", 1)[1])
        if m and not owner_gone(m[1], int(m[2])):
            continue
        try:
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        except OSError:
            continue
        removed += 1
    return removed
