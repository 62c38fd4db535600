"""Printing a command's outcome: rich tables, a JSON document, or GitHub annotations.

Results go to stdout, errors and progress to stderr. Human output escapes
every user-provided string (a commit message is never rich markup).
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import IO, Any

from rich.console import Console, RenderableType
from rich.text import Text

from ..errors import PolicyViolationError
from .exits import ExitCode, exit_code_for, is_expected


class Format(str, Enum):
    """Output format of commands that report no violations or problems."""

    table = "table"
    json = "json"


class GateFormat(str, Enum):
    """Output format of commands that can report violations or problems."""

    table = "table"
    json = "json"
    github = "github"


class _Stdout(Console):
    def on_broken_pipe(self) -> None:
        """Let the command's wrapper decide the exit code (rich would exit with 1)."""
        self.quiet = True
        raise BrokenPipeError


def stdout_console() -> Console:
    return _Stdout(highlight=False, soft_wrap=False)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


@dataclass(frozen=True)
class Annotation:
    """One GitHub Actions workflow command, e.g. ``::error title=Kirin policy::...``."""

    message: str
    title: str = "Kirin"
    level: str = "error"
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        props = []
        if self.file:
            props.append(f"file={_escape_property(self.file)}")
        if self.line is not None:
            props.append(f"line={self.line}")
        props.append(f"title={_escape_property(self.title)}")
        return f"::{self.level} {','.join(props)}::{_escape_data(self.message)}"


@dataclass(frozen=True)
class Outcome:
    """What a command produced: its JSON document, its human rendering, its verdict."""

    data: dict[str, Any]
    human: Sequence[RenderableType] = ()
    annotations: tuple[Annotation, ...] = ()
    exit_code: ExitCode = ExitCode.OK


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=_json_default)


def _write(stream: IO[str], text: str) -> None:
    stream.write(text if text.endswith("\n") else text + "\n")
    stream.flush()


def emit(outcome: Outcome, fmt: str, console: Console) -> None:
    """Print ``outcome`` in format ``fmt`` to stdout."""
    if fmt == "json":
        _write(sys.stdout, dumps(outcome.data))
        return
    if fmt == "github":
        for annotation in outcome.annotations:
            _write(sys.stdout, str(annotation))
    for renderable in outcome.human:
        # plain text (a policy's YAML, a summary) is never re-wrapped: it may be piped
        console.print(renderable, soft_wrap=isinstance(renderable, Text))
    sys.stdout.flush()  # a reader that went away is noticed here, not at exit


def report_error(exc: BaseException, fmt: str, *, show_traceback: bool) -> ExitCode:
    """Tell the user why the command failed, in one place; return the exit code."""
    code = exit_code_for(exc)
    err = stderr_console()
    if show_traceback:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    message = error_message(exc)
    if not is_expected(exc):
        message = (f"internal error: {type(exc).__name__}: {exc} "
                   "(a bug in kirin: rerun with --traceback and report it)")
    details = ""
    if isinstance(exc, PolicyViolationError):
        details = "".join(f"\n  - [{v.rule}] {v.message}" for v in exc.violations)
    prefix = Text("kirin: error: ", style="bold red")
    err.print(prefix + Text(message + details), soft_wrap=True)
    if fmt == "json":
        body: dict[str, Any] = {"type": type(exc).__name__, "message": message,
                                "exit_code": int(code)}
        if isinstance(exc, PolicyViolationError):
            body["violations"] = [v.to_dict() for v in exc.violations]
        _write(sys.stdout, dumps({"error": body}))
    elif fmt == "github":
        if isinstance(exc, PolicyViolationError):
            for violation in exc.violations:
                _write(sys.stdout, str(violation_annotation(violation)))
        else:
            _write(sys.stdout, str(Annotation(message.splitlines()[0] if message else "",
                                              title="Kirin error")))
    return code


def error_message(exc: BaseException) -> str:
    if isinstance(exc, PolicyViolationError):  # the violations are listed apart
        n = len(exc.violations)
        where = f" in dataset {exc.dataset!r}" if exc.dataset else ""
        return f"rejected by the policy{where}: {n} violation{'s' if n != 1 else ''}"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return str(exc) or type(exc).__name__


def violation_annotation(violation: Any) -> Annotation:
    return Annotation(f"{violation.rule}: {violation.message}", title="Kirin policy")
