"""Exception types that tell a user's mistake from an environment problem from a bug."""
from __future__ import annotations

#: the exit codes of every model-gates command: pass, gates failed, usage or config error, internal error
EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class GateError(Exception):
    """Base class of every error model-gates raises on purpose."""

    exit_code = EXIT_INTERNAL


class UserError(GateError):
    """A mistake the user can fix (bad config, missing file, bad argument): exit code 2.

    ``location`` is a ``file:line`` or ``file`` prefix shown before the message.
    """

    exit_code = EXIT_USAGE

    def __init__(self, message: str, location: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message

    def __reduce__(self) -> tuple[type, tuple[str, str | None]]:
        # raised on a dask worker, it reaches the client pickled: keep the location
        return (type(self), (self.message, self.location))


class EnvironmentProblem(GateError):
    """Something outside the user's config stops the run (missing extra, I/O, corrupt registry): exit 3."""

    exit_code = 3


def missing_extra(extra: str, purpose: str) -> EnvironmentProblem:
    """Return the error for an optional dependency group that is not installed."""
    return EnvironmentProblem(
        f"{purpose} needs the '{extra}' extra: pip install 'model-gates[{extra}]'"
    )


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """Return the first line of ``exc``'s message (at most ``limit`` characters), or its type's name
    when the message is empty."""
    text = str(exc).strip().splitlines()
    return text[0][:limit] if text else type(exc).__name__
