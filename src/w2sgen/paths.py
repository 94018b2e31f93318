"""Where w2sgen keeps data that outlives one experiment (extracted packages, datasets), and how
a file the user names is opened: one line for each way it can fail to be a readable file, and
YAML read without silently dropping a key given twice."""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from .errors import W2SError, shown


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


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that gives a key twice (PyYAML keeps the last
    one silently: `seed: 1` then `seed: 2`, or a second `train:` section replacing the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if isinstance(key, (str, int, float, bool)) and key in seen:
                line = key_node.start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {shown(key)} is given twice (line {line}); keep one",
                    key_node.start_mark)
            if isinstance(key, (str, int, float, bool)):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader


def read_yaml_mapping(path: str | Path, what: str) -> dict[str, Any]:
    p = regular_file(path, what)  # one line for a folder, FIFO, missing file or looping link
    try:
        text = p.read_text(encoding="utf-8-sig")  # a byte-order mark is allowed, not needed
    except UnicodeDecodeError as e:
        raise W2SError(f"{what} {str(p)!r} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at "
                       f"offset {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise W2SError(f"cannot read {what} {str(p)!r}: {e.strerror or e}") from None
    try:
        raw = yaml_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise W2SError(f"{what} {str(p)!r} is not valid YAML{where}: "
                       f"{getattr(e, 'problem', e)}") from None
    except RecursionError:
        raise W2SError(f"{what} {str(p)!r} is nested too deeply to read") from None
    if not isinstance(raw, dict):
        raise W2SError(f"{what} {str(p)!r} must be a mapping of keys to values")
    return raw
