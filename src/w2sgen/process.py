"""How a `w2s` command runs as a process: the signal policy, a stdout that outlives its reader,
a terminal that cannot show every character, and the temporary files killed commands left.

The signal policy: SIGTERM and SIGHUP (a closed terminal) end a command as Ctrl-C does - the
run's row `interrupted`, finished steps cached - with exit 128 + the signal's number. The first
signal (Ctrl-C included) starts that ending; any signal after it is ignored, so the ending
itself (recording the row, removing temporary files) is never cut short by a second one.
"""
from __future__ import annotations

import io
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import Terminated, W2SError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
_stopping = False


def _on_signal(signum: int, frame: object) -> None:
    global _stopping
    if _stopping:
        return
    _stopping = True
    raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


class _PipeSafe:
    """stdout that outlives its reader: once a pipe's reader has gone (`w2s run ... | head`), the
    rest of the output goes to /dev/null and the command carries on, so a run still finishes
    and is stored instead of failing on a print."""

    def __init__(self, stream: Any):
        self._stream, self.gone = stream, False

    def _lost(self) -> None:
        self.gone = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())  # no second error as Python flushes at exit
        os.close(devnull)

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return int(self._stream.write(text))
            except BrokenPipeError:
                self._lost()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._lost()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def sweep_temporary_files() -> None:
    """What killed processes left mid-write in the data home (an ONNX export): removed by every
    command as it starts. A store's are removed as it opens (Store.remove_orphans)."""
    from .atomic import remove_dead_temporaries
    from .paths import home

    try:
        onnx = home() / "onnx"
    except W2SError:  # no home directory: the command says so if it needs one
        return
    if onnx.is_dir():
        remove_dead_temporaries(onnx)


def _terminal_streams() -> None:
    """An ASCII (or other narrow) locale prints what it cannot encode as escapes, not a crash."""
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        if isinstance(stream, io.TextIOWrapper) and encoding not in ("utf8", "utf16", "utf32"):
            stream.reconfigure(errors="backslashreplace")



@contextmanager
def guarded(keep_going: bool) -> Iterator[None]:
    """Run a command under the signal policy, with a terminal that prints what it cannot encode
    as escapes, after sweeping the data home's dead temporaries; `keep_going`: the command
    carries on (output to /dev/null) when the reader of its stdout leaves."""
    global _stopping
    _terminal_streams()
    _stopping = False
    previous = {s: signal.signal(s, _on_signal) for s in STOP_SIGNALS}
    real_stdout = sys.stdout
    if keep_going and sys.stdout is sys.__stdout__ and sys.stdout is not None:
        sys.stdout = _PipeSafe(sys.stdout)  # type: ignore[assignment]
    try:
        sweep_temporary_files()
        yield
    finally:
        _stopping = True  # a signal from here on is ignored until the handlers are restored
        sys.stdout = real_stdout
        for s, handler in previous.items():
            signal.signal(s, handler)
