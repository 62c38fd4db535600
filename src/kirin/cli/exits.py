"""Exit codes, and the one mapping from an exception to an exit code.

Scripts and CI steps rely on these numbers; they are part of the interface.
"""

from __future__ import annotations

from enum import IntEnum

from ..errors import (
    ConflictError,
    InvalidInputError,
    KirinError,
    NotFoundError,
    PolicyError,
    PolicyRequiredError,
    PolicyViolationError,
    SourceNotFoundError,
    StorageError,
)


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # policy violations, verification failures: the check ran and said no
    USAGE = 2  # bad arguments, options, input files, an invalid policy file
    NOT_FOUND = 3  # dataset, commit, tag, file in a commit, file to commit
    CONFLICT = 4  # concurrent writers, an existing dataset, storage failed or holds bad data
    INTERNAL = 5  # a bug in Kirin: rerun with --traceback and report it
    INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
    BROKEN_PIPE = 141  # the reader of stdout went away, as shells report SIGPIPE


EXIT_CODES_HELP = """\
Exit codes:

\b
  0  success
  1  policy violations, or verification failures (the check ran and said no);
     a commit to an ungoverned dataset when a policy is required
  2  usage error: bad arguments or options, bad input, an invalid policy file
  3  not found: dataset, commit or tag, file in a commit, file to commit
  4  conflict or storage error: a concurrent writer, an existing dataset,
     storage that failed or holds corrupt data
  5  internal error (a bug: rerun with --traceback and report it)"""

#: Checked in order; the first class an exception is an instance of wins.
_MAPPING: tuple[tuple[type[BaseException], ExitCode], ...] = (
    (PolicyViolationError, ExitCode.FAILED),
    (PolicyRequiredError, ExitCode.FAILED),
    (InvalidInputError, ExitCode.USAGE),
    (PolicyError, ExitCode.USAGE),
    (NotFoundError, ExitCode.NOT_FOUND),
    (SourceNotFoundError, ExitCode.NOT_FOUND),
    (ConflictError, ExitCode.CONFLICT),
    (StorageError, ExitCode.CONFLICT),
    (OSError, ExitCode.CONFLICT),  # the filesystem or network under the storage failed
    (KeyboardInterrupt, ExitCode.INTERRUPTED),
)


def exit_code_for(exc: BaseException | type[BaseException]) -> ExitCode:
    """The exit code an exception (or exception class) ends the command with."""
    kind = exc if isinstance(exc, type) else type(exc)
    for cls, code in _MAPPING:
        if issubclass(kind, cls):
            return code
    return ExitCode.INTERNAL


def is_expected(exc: BaseException) -> bool:
    """Whether ``exc`` is a refusal Kirin means to report (not a bug)."""
    return isinstance(exc, KirinError | OSError | KeyboardInterrupt)
