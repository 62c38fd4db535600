"""Syntax tree of the expression language: immutable values and the canonical printer.

The tree is plain data (frozen dataclasses), so a parsed rule can be stored,
compared, hashed and printed, and nothing about it can run code. The printer
is the inverse of the parser: ``parse(to_text(e)) == e`` for every tree ``e``.
It adds parentheses exactly where the shape of the tree needs them (an
``and``/``or`` nested in an ``and``, an ``or`` in an ``or``, either under
``not``) and nowhere else, so the printed text is never nested deeper than the
text it was parsed from, and a tree that parsed within MAX_DEPTH prints to
text that parses again. Hence ``not x > 1`` rather than ``not (x > 1)``, as
in Python, where ``not`` binds looser than comparisons.

The constructors check the few things that are statically wrong whatever
the metadata (ordering ``true`` or a list, ``in`` with a number on the right),
so a tree built by hand obeys the same rules as a parsed one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, TypeAlias

from ..errors import PolicyError

#: Words with a meaning in the language (and the token kind each one reads as).
#: A metadata key spelled like one of them is written in backticks: `in` == 1.
KEYWORDS: dict[str, str] = {
    "and": "and", "or": "or", "not": "not", "in": "in", "exists": "exists",
    "true": "true", "True": "true", "false": "false", "False": "false",
    "null": "null", "None": "null",
}
COMPARE_OPS: tuple[str, ...] = ("==", "!=", "<", "<=", ">", ">=")
ORDERING_OPS = frozenset({"<", "<=", ">", ">="})
#: Integers above this many bits are refused: Python cannot print ints of more
#: than 4300 digits, and no metric needs them (the parser stops at 4000 digits).
MAX_INT_BITS = 14_000

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: A literal's value: a JSON scalar or a tuple (a list literal) of them.
LiteralValue: TypeAlias = "bool | int | float | str | tuple[LiteralValue, ...] | None"


class Node:
    """Base of every tree value; ``str(node)`` is its canonical text."""

    __slots__ = ()

    def __str__(self) -> str:
        return to_text(self)


class Operand(Node):
    """Something a condition compares: a metadata :class:`Path` or a :class:`Literal`."""

    __slots__ = ()


class Expr(Node):
    """A condition: true or false for a given metadata dict.

    ``evaluate()`` caches the compiled closure on the instance (outside the
    dataclass fields, so equality and hashing ignore it); pickling drops it.
    """

    __slots__ = ()

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_query"}


@dataclass(frozen=True)
class Path(Operand):
    """A dotted path into nested metadata, e.g. ``hyperparameters.learning_rate``."""

    segments: tuple[str, ...]

    def __post_init__(self) -> None:
        segments = self.segments
        if not isinstance(segments, tuple | list) or not segments:
            raise TypeError("Path needs a non-empty tuple of key names")
        if not all(isinstance(s, str) for s in segments):
            raise TypeError("Path segments must be strings")
        object.__setattr__(self, "segments", tuple(segments))


@dataclass(frozen=True, eq=False)
class Literal(Operand):
    """A constant: string, int, float, bool, null, or a list of literals (a tuple).

    Equality is by type as well as value, so ``Literal(True) != Literal(1)``
    and ``Literal(1) != Literal(1.0)``: the tree is syntax, and the two print
    differently. (Evaluation still compares ints and floats numerically.)
    """

    value: LiteralValue

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _checked_literal(self.value))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Literal):
            return NotImplemented
        return _typed_key(self.value) == _typed_key(other.value)

    def __hash__(self) -> int:
        return hash(_typed_key(self.value))


@dataclass(frozen=True)
class Compare(Expr):
    """``left op right`` with ``op`` one of ``== != < <= > >=``."""

    left: Operand
    op: str
    right: Operand

    def __post_init__(self) -> None:
        if self.op not in COMPARE_OPS:
            raise PolicyError(f"unknown comparison operator {self.op!r}")
        _require_operands(self.left, self.right)
        if self.op in ORDERING_OPS:
            kinds = set()
            for side in (self.left, self.right):
                if isinstance(side, Literal):
                    kind = literal_kind(side.value)
                    if kind not in ("a number", "a string"):
                        raise PolicyError(
                            f"'{self.op}' compares numbers or strings, not "
                            f"{to_text(side)} ({kind})")
                    kinds.add(kind)
            if len(kinds) == 2:
                raise PolicyError(f"'{self.op}' cannot order a number against a string")


@dataclass(frozen=True)
class In(Expr):
    """``item in container`` (or ``not in`` when ``negated``).

    The container is a list (element), a string (substring) or an object (key).
    """

    item: Operand
    container: Operand
    negated: bool = False

    def __post_init__(self) -> None:
        _require_operands(self.item, self.container)
        if not isinstance(self.negated, bool):
            raise TypeError("In.negated must be a bool")
        container = self.container
        if isinstance(container, Literal) and not isinstance(container.value, tuple | str):
            raise PolicyError(
                "'in' needs a list, a string or a field on its right, not "
                f"{to_text(container)} ({literal_kind(container.value)})")


@dataclass(frozen=True)
class Exists(Expr):
    """``exists(path)``: the path leads to a value (``null`` counts as a value)."""

    path: Path

    def __post_init__(self) -> None:
        if not isinstance(self.path, Path):
            raise TypeError("exists() takes a Path")


@dataclass(frozen=True)
class Not(Expr):
    """``not operand``: plain boolean negation of the operand's result."""

    operand: Expr

    def __post_init__(self) -> None:
        if not isinstance(self.operand, Expr):
            raise TypeError("Not needs a condition (an Expr)")


@dataclass(frozen=True)
class And(Expr):
    """All operands hold. ``a and b and c`` is one node with three operands."""

    operands: tuple[Expr, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "operands", _checked_operands(self.operands, "And"))


@dataclass(frozen=True)
class Or(Expr):
    """At least one operand holds."""

    operands: tuple[Expr, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "operands", _checked_operands(self.operands, "Or"))


def _require_operands(*sides: object) -> None:
    for side in sides:
        if not isinstance(side, Operand):
            raise TypeError(f"expected a Path or a Literal, got {type(side).__name__}")


def _checked_operands(operands: Any, name: str) -> tuple[Expr, ...]:
    if not isinstance(operands, tuple | list) or len(operands) < 2:
        raise TypeError(f"{name} needs a tuple of at least two conditions")
    if not all(isinstance(o, Expr) for o in operands):
        raise TypeError(f"{name} operands must be conditions (Expr)")
    return tuple(operands)


def _checked_literal(value: Any) -> LiteralValue:
    """The value as stored: lists become tuples; non-JSON values are refused."""
    if (isinstance(value, int) and not isinstance(value, bool)
            and value.bit_length() > MAX_INT_BITS):
        raise PolicyError("integer literal is too large")
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PolicyError(f"{value!r} is not a finite number")
        return value
    if isinstance(value, tuple | list):
        return tuple(_checked_literal(v) for v in value)
    raise TypeError(f"a literal must be JSON-like, not {type(value).__name__}")


def _typed_key(value: LiteralValue) -> tuple[Any, ...]:
    """A key that tells apart values Python considers equal (True, 1, 1.0)."""
    if isinstance(value, tuple):
        return ("list", tuple(_typed_key(v) for v in value))
    return (type(value).__name__, value)


def literal_kind(value: Any) -> str:
    """Human name of a JSON value's type, as used in messages ("a number")."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


# -- printer -------------------------------------------------------------------


def to_text(node: Node) -> str:
    """Canonical text of a tree: ``parse(to_text(e)) == e``.

    Single spaces around operators, single-quoted strings, ``true``/``false``/
    ``null``, backticks only for keys that are not plain identifiers.
    """
    if isinstance(node, Path):
        return ".".join(segment_text(s) for s in node.segments)
    if isinstance(node, Literal):
        return literal_text(node.value)
    if isinstance(node, Compare):
        return f"{to_text(node.left)} {node.op} {to_text(node.right)}"
    if isinstance(node, In):
        op = "not in" if node.negated else "in"
        return f"{to_text(node.item)} {op} {to_text(node.container)}"
    if isinstance(node, Exists):
        return f"exists({to_text(node.path)})"
    if isinstance(node, Not):
        return "not " + _grouped(node.operand, (And, Or))
    if isinstance(node, And):
        return " and ".join(_grouped(o, (And, Or)) for o in node.operands)
    if isinstance(node, Or):
        return " or ".join(_grouped(o, (Or,)) for o in node.operands)
    raise TypeError(f"not an expression node: {type(node).__name__}")


def _grouped(node: Expr, wrap: tuple[type, ...]) -> str:
    text = to_text(node)
    return f"({text})" if isinstance(node, wrap) else text


def segment_text(segment: str) -> str:
    """A path segment: bare if it is a plain identifier, else in backticks."""
    if _IDENTIFIER.fullmatch(segment) and segment not in KEYWORDS:
        return segment
    return quote(segment, "`")


def literal_text(value: LiteralValue) -> str:
    """Source text of a literal value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return quote(value, "'")
    return "[" + ", ".join(literal_text(v) for v in value) + "]"


_SIMPLE_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def quote(text: str, mark: str) -> str:
    """``text`` between ``mark`` quotes, escaped so the tokenizer reads it back."""
    out = [mark]
    for ch in text:
        if ch == mark:
            out.append("\\" + ch)
        elif ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif not ch.isprintable():
            code = ord(ch)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append(mark)
    return "".join(out)
