"""Where w2sgen keeps data that outlives one experiment (extracted packages, datasets), and how
a file the user names is opened: one line for each way it can fail to be a readable file."""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .errors import W2SError


def home() -> Path:
    """The data home: $W2S_HOME, else ~/.cache/w2sgen."""
    if os.environ.get("W2S_HOME"):
        folder = Path(os.environ["W2S_HOME"])
        if folder.exists() and not folder.is_dir():
            raise W2SError(f"W2S_HOME {str(folder)!r} is a file, not a folder; point W2S_HOME at "
                           "a folder (or unset it to use ~/.cache/w2sgen)")
        return folder
    try:
        return Path.home() / ".cache" / "w2sgen"
    except (RuntimeError, KeyError):  # no HOME and no passwd entry for this uid
        raise W2SError(f"no home directory (HOME is unset and uid {os.getuid()} has no passwd "
                       "entry); set W2S_HOME to a folder for w2s's models and data") from None


def regular_file(path: str | Path, what: str, missing: str = "not found") -> Path:
    """`path` when it is a regular file (following symbolic links); else one line saying what
    it is instead: missing, a broken or looping link, a folder, a FIFO or device."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        if os.path.lexists(p):
            raise W2SError(f"{what} {str(p)!r} is a symbolic link to a file that does not "
                           "exist; fix the link or give the file itself") from None
        raise W2SError(f"{what} {str(p)!r} {missing}") from None
    except OSError as e:
        why = ("is a symbolic link that loops back on itself" if e.errno == errno.ELOOP
               else f"cannot be read: {e.strerror or e}")
        raise W2SError(f"{what} {str(p)!r} {why}; give the file itself") from None
    if stat.S_ISDIR(st.st_mode):
        raise W2SError(f"{what} {str(p)!r} is a folder, not a file; give the file itself")
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) \
            else "a device"
        raise W2SError(f"{what} {str(p)!r} is {kind}, not a regular file; give the file itself")
    return p
