"""``kirin log --columns``: metadata paths shown as columns, read as the query language reads them.

Why the expression language's paths: ``--where metrics.f1 > 0.8`` and
``--columns metrics.f1`` should name a field the same way, odd keys in
backticks included (``metrics.`f1-score```), and look it up the same way
(objects only; anything else is missing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ExpressionSyntaxError
from .parsing import CliInputError

#: More columns than this is not a table anyone reads.
MAX_COLUMNS = 32


@dataclass(frozen=True)
class Column:
    """One metadata path shown as a column: its canonical text and its keys."""

    name: str
    segments: tuple[str, ...]

    def value(self, metadata: Mapping[str, Any]) -> tuple[bool, Any]:
        """``(True, value)`` at this path of ``metadata``, or ``(False, None)`` if missing."""
        from ..policy._expr_eval import MISSING, lookup

        found = lookup(metadata, self.segments)
        return (False, None) if found is MISSING else (True, found)


def split_columns(text: str) -> list[str]:
    """``a,b.c`` -> ``["a", "b.c"]``; a comma inside backticks belongs to the key."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == "`":
            quoted = not quoted
        elif char == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def parse_columns(values: Iterable[str] | None) -> list[Column]:
    """``--columns`` values (repeatable, comma-separated) as columns; bad ones exit 2."""
    if not values:
        return []
    from ..policy.expr import Exists, parse, to_text  # only when columns are asked for

    columns: dict[str, Column] = {}
    for value in values or ():
        for text in split_columns(value):
            if not text:
                raise CliInputError(f"--columns {value!r}: an empty column name; separate "
                                    "metadata paths with single commas, e.g. accuracy,metrics.f1")
            try:
                expr = parse(f"exists({text})")
            except ExpressionSyntaxError:
                expr = None
            if not isinstance(expr, Exists):
                raise CliInputError(
                    f"--columns: {text[:80]!r} is not a metadata path: write dotted keys such "
                    "as metrics.f1, with odd keys in backticks (metrics.`f1-score`)")
            name = to_text(expr.path)
            columns.setdefault(name, Column(name, expr.path.segments))
    if len(columns) > MAX_COLUMNS:
        raise CliInputError(f"--columns: {len(columns)} columns; at most {MAX_COLUMNS}")
    return list(columns.values())
