"""Converting command-line values without pydantic: a light path in front of typer's own.

Why: typer 0.29 converts every parameter's value with a pydantic ``TypeAdapter``
it builds when a command parses its arguments
(``typer.core._TyperParameter.get_runtime_param`` ->
``typer._coercion.build_runtime_param`` -> ``typer._adapters``, which imports
pydantic). Importing pydantic and building the adapters costs 60-75 ms on every
command with a parameter, more than the rest of ``kirin log`` (issue 16).

What: :class:`Command`, the class of every Kirin command, gives each of its
parameters a :class:`LightParam` before parsing. It converts the values of the
plain annotations Kirin uses (``str``, ``int``, ``float``, ``bool``, ``Path``,
an ``Enum`` or ``Literal`` choice, a ``list`` of one of them; ``Optional`` is
already removed by typer) itself, and only where typer's own conversion is
certain to give the same value: a string, a plain decimal number within the
parameter's range, a choice spelt exactly, a path that does not exist or is
readable. Every other value (a number with spaces or underscores, one out of
range, a choice in another case, an unreadable path, a flag read from the
environment...) goes to typer's own conversion, built at that moment, so a bad
value is refused exactly as before: a usage error (exit code 2) naming the
parameter, with typer's message. ``tests/cli/test_cli_coercion.py`` checks both
paths against typer's own conversion for every parameter of every command.

Feature-detected: if typer's private structure is not what this module expects
(a later typer), :func:`light_param` gives nothing and typer converts every
value as it always does, pydantic and all.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from typer.core import TyperCommand, TyperGroup

try:  # typer's private structure, as of typer 0.29; absent: typer converts on its own
    from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
    from typer.core import _TyperParameter
except ImportError:  # pragma: no cover - another typer
    _SUPPORTED = False
    RuntimeParam = object  # type: ignore[misc,assignment]
else:
    _SUPPORTED = all(hasattr(_TyperParameter, name) for name in
                     ("get_runtime_param", "process_value")) and all(
        hasattr(RuntimeParam, name) for name in ("coerce", "_coerce_value")) and {
        "annotation", "parameter_info", "file_annotation"} <= set(
        getattr(TypeDescriptor, "__dataclass_fields__", {}))

#: What a fast converter returns when it cannot be sure of typer's answer.
UNSURE: Any = object()
#: A plain decimal integer: what Python's ``int`` and pydantic read alike (no spaces,
#: underscores, signs other than ``-``, or non-ASCII digits, which pydantic refuses).
_INTEGER = re.compile(r"-?[0-9]{1,18}", re.ASCII)
#: A plain decimal number with an optional fraction, for ``float``.
_DECIMAL = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,15})?", re.ASCII)
#: Options of ``typer.Option``/``Argument`` that make typer check a path; with any of them
#: set (other than to its default) every path goes to typer.
_PATH_DEFAULTS = {"exists": False, "file_okay": True, "dir_okay": True, "writable": False,
                  "resolve_path": False, "allow_dash": False, "path_type": None}

Converter = Callable[[Any, Any], Any]  # (value, ctx) -> converted value, or UNSURE


def supported() -> bool:
    """Whether the installed typer has the structure this module plugs into."""
    return _SUPPORTED


@dataclass(frozen=True)
class LightParam(RuntimeParam):
    """A parameter's conversion: ``convert`` where it is sure, else typer's own.

    Typer's ``RuntimeParam.coerce`` still does the rest as before (a missing value,
    a single string where a list is needed); only the conversion of one present value
    (``_coerce_value``) is replaced.
    """

    descriptor: Any
    convert: Converter

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        converted = self.convert(value, ctx)
        if converted is UNSURE:  # typer's own conversion (pydantic): same value, same error
            return build_runtime_param(self.descriptor)._coerce_value(value, param=param,
                                                                      ctx=ctx)
        return converted


def light_param(descriptor: Any) -> LightParam | None:
    """A :class:`LightParam` for a parameter's typer ``TypeDescriptor``, or ``None``
    when its annotation is not one this module knows (typer keeps its own)."""
    if not _SUPPORTED or descriptor.file_annotation is not None:
        return None
    info = descriptor.parameter_info
    if getattr(info, "parser", None) is not None:
        return None
    annotation = descriptor.annotation
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        leaf = _leaf(item, info)
        if leaf is None:
            return None
        return LightParam(parameter_info=info, annotation=annotation, descriptor=descriptor,
                          convert=_each(leaf))
    leaf = _leaf(annotation, info)
    return None if leaf is None else LightParam(parameter_info=info, annotation=annotation,
                                                descriptor=descriptor, convert=leaf)


def _each(leaf: Converter) -> Converter:
    """A list's converter: every item by ``leaf`` (typer makes a list of one value)."""

    def convert(value: Any, ctx: Any) -> Any:
        items = value if isinstance(value, list | tuple) else [value]
        converted = [leaf(item, ctx) for item in items]
        return UNSURE if any(c is UNSURE for c in converted) else converted

    return convert


def _leaf(annotation: Any, info: Any) -> Converter | None:
    """The converter of one value of ``annotation``, or ``None`` if it is not one we know."""
    if annotation is str:
        return _string
    if annotation is bool:
        return _flag
    if annotation is int or annotation is float:
        return _number(annotation, info)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return _choice(tuple(annotation), info)
    if get_origin(annotation) is Literal:
        return _choice(get_args(annotation), info)
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return _path(annotation, info)
    return None


def _string(value: Any, ctx: Any) -> Any:
    return value if type(value) is str else UNSURE


def _flag(value: Any, ctx: Any) -> Any:
    return value if type(value) is bool else UNSURE  # "1" from KIRIN_TRACEBACK: typer's


def _number(kind: type, info: Any) -> Converter | None:
    low, high = getattr(info, "min", None), getattr(info, "max", None)
    pattern = _INTEGER if kind is int else _DECIMAL

    def convert(value: Any, ctx: Any) -> Any:
        if type(value) is kind:
            number = value
        elif type(value) is str and pattern.fullmatch(value):
            number = kind(value)
        else:
            return UNSURE
        if (low is not None and number < low) or (high is not None and number > high):
            return UNSURE  # typer refuses it, or clamps it: its message, its value
        return number

    return convert


def _choice(choices: Sequence[Any], info: Any) -> Converter:
    by_text = {(str(c.value) if isinstance(c, Enum) else str(c)): c for c in choices}

    def convert(value: Any, ctx: Any) -> Any:
        if any(value is choice for choice in choices):
            return value
        if (type(value) is not str or getattr(ctx, "token_normalize_func", None) is not None
                or not getattr(info, "case_sensitive", True)):
            return UNSURE
        return by_text.get(value, UNSURE)

    return convert


def _path(kind: type[Path], info: Any) -> Converter | None:
    if any(getattr(info, name, default) != default
           for name, default in _PATH_DEFAULTS.items()):
        return None
    readable = getattr(info, "readable", True)

    def convert(value: Any, ctx: Any) -> Any:
        if isinstance(value, kind):
            path = value
        elif type(value) is str:
            path = kind(value)  # what typer's pydantic TypeAdapter(Path) makes of a string
        else:
            return UNSURE
        try:
            os.stat(path)
        except OSError:  # missing: typer passes it through, unchecked
            return path
        except ValueError:  # a NUL in the name: whatever typer does with it
            return UNSURE
        if readable and not os.access(path, os.R_OK):
            return UNSURE  # typer: "... is not readable."
        return path

    return convert


def lighten(command: Any, ctx: Any) -> None:
    """Give each parameter of ``command`` (its help option included) that has no
    conversion yet a :class:`LightParam`; one whose annotation :func:`light_param` does
    not know keeps typer's."""
    if not _SUPPORTED:
        return
    for param in command.get_params(ctx):
        if isinstance(param, _TyperParameter) and getattr(param, "_runtime_param", 0) is None:
            param._runtime_param = light_param(param.type_descriptor)


class Command(TyperCommand):
    """A typer command whose parameters convert their values as :func:`lighten` says."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        lighten(self, ctx)
        result: list[str] = super().parse_args(ctx, args)
        return result


class Group(TyperGroup):
    """A typer group (``kirin``, ``kirin policy``...) whose own options (``--help``,
    ``--version``) convert their values as :func:`lighten` says."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        lighten(self, ctx)
        result: list[str] = super().parse_args(ctx, args)
        return result
