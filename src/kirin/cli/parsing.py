"""Reading command-line values: metadata JSON, ``name=path`` files, durations.

Every failure is a :class:`CliInputError` (exit code 2) that quotes the bad value.
"""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from .._json import MAX_DEPTH, MAX_INT_DIGITS
from ..errors import InvalidInputError
from ..naming import source_basename


class CliInputError(InvalidInputError):
    """An option or argument value the command line cannot use."""


def parse_metadata(value: str | None) -> dict[str, Any] | None:
    """``--metadata``: a JSON object, or ``@file.json`` (``@-`` is not supported)."""
    if value is None:
        return None
    source = "--metadata"
    text = value
    if value.startswith("@"):
        path = Path(value[1:])
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CliInputError(f"--metadata: file not found: {path}") from None
        except (OSError, UnicodeError) as exc:
            raise CliInputError(f"--metadata: cannot read {path} ({exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliInputError(f"{source}: not valid JSON: {exc.msg} at line {exc.lineno} "
                            f"column {exc.colno}") from exc
    except ValueError:  # an integer longer than sys.get_int_max_str_digits()
        raise CliInputError(f"{source}: an integer in it is too long; metadata integers have "
                            f"at most {MAX_INT_DIGITS:,} digits (store longer ones as strings)"
                            ) from None
    except RecursionError:
        raise CliInputError(f"{source}: nested too deeply; metadata is at most {MAX_DEPTH} "
                            "levels deep") from None
    if not isinstance(data, dict):
        raise CliInputError(f"{source}: metadata must be a JSON object ({{...}}), "
                            f"not {type(data).__name__}")
    return data


def _is_url(text: str) -> bool:
    return "://" in text or "::" in text


def parse_files(values: list[str] | None) -> dict[str, str]:
    """FILES arguments: ``path`` (stored under its base name) or ``name=path``.

    An argument that exists as a local file is always a path, even with ``=``
    in it; so is one whose part before ``=`` is a URL.
    """
    named: dict[str, str] = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        if sep and name and path and not _is_url(name) and not os.path.isfile(value):
            pair = (name, path)
        else:
            pair = (source_basename(value), value)
        if pair[0] in named and named[pair[0]] != pair[1]:
            raise CliInputError(f"Two files would be stored as {pair[0]!r}: {named[pair[0]]!r} "
                                f"and {pair[1]!r}; give one another name with NAME=PATH")
        named[pair[0]] = pair[1]
    return named


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str) -> timedelta:
    """``90s``, ``10m``, ``1h``, ``1h30m``, ``2d``, ``1w``, or plain seconds (``3600``)."""
    text = value.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return _seconds(value, float(text))
    pos = 0
    seconds = 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise CliInputError(f"Invalid duration {value!r}: use e.g. 90s, 10m, 1h, 1h30m, 2d "
                            "or a number of seconds")
    return _seconds(value, seconds)


def _seconds(value: str, seconds: float) -> timedelta:
    """``seconds`` as a duration, refusing one longer than Python can hold."""
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise CliInputError(f"Invalid duration {value[:40]!r}: longer than "
                            f"{timedelta.max.days:,} days") from None
