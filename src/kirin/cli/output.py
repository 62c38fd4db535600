"""Printing a command's outcome: rich tables, a JSON document, or GitHub annotations.

Results go to stdout, errors and progress to stderr. Every user-provided
string reaching human output goes through :func:`terminal_safe` (through
:func:`text` and :func:`assemble`), so a commit message, tag, metadata key or
file name cannot move the cursor, retitle the window, hide text or reorder it
with bidi controls; the consoles interpret no rich markup, so ``[bold]`` in a
message prints as it is written. JSON output keeps every string exact and
writes the same characters as ``\\uXXXX`` escapes.
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import IO, Any

from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.text import Text, TextType

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
    return _Stdout(highlight=False, soft_wrap=False, markup=False, emoji=False)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False, markup=False, emoji=False)


#: Characters a terminal acts on instead of showing: C0 controls but tab and
#: newline (ESC starts every escape sequence; BEL, CR and backspace rewrite
#: what is shown), DEL, C1 controls (0x9B is a one-byte CSI), the bidi marks,
#: embeddings, overrides and isolates that make text read in another order,
#: the line and paragraph separators, and lone surrogates (a byte of a path
#: that is not UTF-8 arrives as one, and no terminal encoding can write it).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e"
                     "\u2066-\u2069\ud800-\udfff]")
#: The same set without tab and newline, for JSON documents (whose writer
#: escapes C0 itself but writes DEL, C1 and the rest as they are).
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
                              "\ud800-\udfff]")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(value: str) -> str:
    """``value`` with every character in :data:`_UNSAFE` written as ``\\xNN`` or ``\\uNNNN``.

    Tab and newline are kept (messages span lines); everything else shows
    as itself. The escape is for the eye only: ``--format json`` gives the
    exact text.
    """
    return _UNSAFE.sub(_escape_char, value)


def text(value: str, style: str = "") -> Text:
    """A rich ``Text`` of a user-provided string: terminal-safe, never markup."""
    return Text(terminal_safe(value), style=style)


def assemble(*parts: TextType | tuple[str, str]) -> Text:
    """``Text.assemble`` with every string part made terminal-safe."""
    safe: list[Any] = []
    for part in parts:
        if isinstance(part, tuple):
            safe.append((terminal_safe(part[0]), part[1]))
        elif isinstance(part, str):
            safe.append(terminal_safe(part))
        else:
            safe.append(text(part.plain, str(part.style)) if _UNSAFE.search(part.plain)
                        else part)
    return Text.assemble(*safe)


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
        return terminal_safe(f"::{self.level} {','.join(props)}::"
                             f"{_escape_data(self.message)}")


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
    """The JSON document; characters a terminal acts on are ``\\uXXXX`` escapes."""
    encoded = json.dumps(data, indent=2, ensure_ascii=False, default=_json_default)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group(0)):04x}", encoded)


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
        if isinstance(renderable, Text):
            # plain text (a policy's YAML, a summary) is never re-wrapped: it may be piped
            console.print(renderable, soft_wrap=True)
        elif console.is_terminal:
            console.print(renderable)
        else:
            print_unwrapped(console, renderable)
    sys.stdout.flush()  # a reader that went away is noticed here, not at exit


#: Widest line a table piped to a program or file is printed at.
MAX_PIPED_WIDTH = 100_000


def print_unwrapped(console: Console, renderable: RenderableType) -> None:
    """Print ``renderable`` (a table) at its natural width, however wide.

    Why: stdout that is not a terminal goes to a program, a file or a CI log,
    where rich's assumed 80 columns (or $COLUMNS) would wrap a long message
    over several lines or cut a cell, and ``grep``/``cut`` would see pieces.
    So the console is widened to what the table needs, for this print only.
    """
    wide = console.options.update(max_width=MAX_PIPED_WIDTH)
    natural = Measurement.get(console, wide, renderable).maximum
    if natural <= console.width:
        console.print(renderable)
        return
    before = console.width
    console.width = min(natural, MAX_PIPED_WIDTH)
    try:
        console.print(renderable)
    finally:
        console.width = before


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
        details = "".join(f"\n  - [{rule_label(v)}] {v.message}" for v in exc.violations)
    prefix = Text("kirin: error: ", style="bold red")
    err.print(prefix + text(message + details), soft_wrap=True)
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


def rule_label(violation: Any) -> str:
    """The rule's name, and which policy it came from when that is the root policy."""
    source = getattr(violation, "source", "dataset")
    return violation.rule if source == "dataset" else f"{violation.rule} ({source})"


def violation_annotation(violation: Any) -> Annotation:
    return Annotation(f"{rule_label(violation)}: {violation.message}", title="Kirin policy")
