"""Progress on long work (training steps, feature batches, refinement prompts, generated
answers, sweep cells, theory seeds): a tqdm bar when stderr is a terminal; when it is not (`nohup ... > log`, a sweep in
the background, CI) one plain line every `W2S_PROGRESS_SECONDS` seconds (default 60; 0 = at
every update), so a cell that trains for an hour says in its log how far it is and how long it
has left; nothing when quiet. tqdm's own non-terminal behaviour (`disable=None`) is silence, and
its bar redrawn into a file is one line of carriage returns."""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Optional, TextIO

DEFAULT_SECONDS = 60.0
clock = time.perf_counter  # module-level, so a test can replace it


def interval() -> float:
    """Seconds between log lines, from W2S_PROGRESS_SECONDS (a bad value: the default)."""
    try:
        return max(0.0, float(os.environ.get("W2S_PROGRESS_SECONDS", DEFAULT_SECONDS)))
    except ValueError:
        return DEFAULT_SECONDS


def duration(seconds: float) -> str:
    """3 s, 4 min 05 s, 1 h 02 min: what a person reads in a log."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class LogLines:
    """The part of tqdm's interface the bars here use (update, write, set_postfix_str, close,
    iteration, a context manager), printing a line per interval instead of drawing."""

    def __init__(self, total: Optional[int], desc: str, unit: str, every: float,
                 file: TextIO, iterable: Optional[Iterable[Any]] = None, initial: int = 0):
        self.total, self.desc, self.unit, self.every, self.file = total, desc, unit, every, file
        self.iterable, self.n, self.postfix = iterable, initial, ""
        self.initial = initial  # done before this bar started (a resumed sweep): not in the rate
        self.t0 = self.last = clock()

    def line(self, now: float) -> str:
        elapsed = now - self.t0
        done = f"{self.n}/{self.total}" if self.total else str(self.n)
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        fresh = self.n - self.initial
        left = (f", about {duration(elapsed * (self.total - self.n) / fresh)} left"
                if self.total and fresh > 0 and self.n < self.total else "")
        post = f" [{self.postfix}]" if self.postfix else ""
        return f"  {self.desc}: {done} {self.unit}s{pct} in {duration(elapsed)}{left}{post}"

    def update(self, n: int = 1) -> None:
        self.n += n
        now = clock()
        if now - self.last >= self.every:
            self.last = now
            print(self.line(now), file=self.file, flush=True)

    def write(self, s: str, file: Optional[TextIO] = None) -> None:
        print(s, file=file or self.file, flush=True)

    def set_postfix_str(self, s: str) -> None:
        self.postfix = s

    def close(self) -> None:
        pass

    def __iter__(self):
        for x in self.iterable or ():
            yield x
            self.update(1)

    def __enter__(self) -> LogLines:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def bar(total: Optional[int] = None, desc: str = "", unit: str = "it", *, quiet: bool = False,
        iterable: Optional[Iterable[Any]] = None, file: Optional[TextIO] = None,
        initial: int = 0, **tqdm_options: Any) -> Any:
    """A progress bar for `total` units of work (or over `iterable`): tqdm on a terminal, log
    lines elsewhere, silent when quiet."""
    from tqdm.auto import tqdm

    stream = file or sys.stderr
    if quiet:
        return tqdm(iterable, total=total, disable=True)
    if getattr(stream, "isatty", lambda: False)():
        return tqdm(iterable, total=total, desc=desc, unit=unit, file=stream, initial=initial,
                    **tqdm_options)
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    return LogLines(total, desc, unit, interval(), stream, iterable, initial)


# Who hears of each finished epoch of the training running in this context (the run's trackers):
# (epoch, 1-based; training loss; test accuracy, NaN without a test set).
EpochListener = Callable[[int, float, float], None]
_EPOCH_LISTENER: ContextVar[Optional[EpochListener]] = ContextVar("w2s_epoch_listener", default=None)


@contextmanager
def epochs_to(listener: EpochListener) -> Iterator[None]:
    """Within this block, `epoch_done` tells `listener` of every epoch training finishes."""
    token = _EPOCH_LISTENER.set(listener)
    try:
        yield
    finally:
        _EPOCH_LISTENER.reset(token)


def epoch_done(epoch: int, loss: float, accuracy: float) -> None:
    """The training loop's report of a finished epoch, to the listener of `epochs_to`, if any."""
    listener = _EPOCH_LISTENER.get()
    if listener is not None:
        listener(epoch, loss, accuracy)
