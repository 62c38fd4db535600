"""Evaluation of expressions: fast closures for queries, explanations for rules.

Both semantics share one definition of the truth of a condition on present fields:

* a comparison that involves a missing path is false (and so is ``in``) in a
  query; in a rule it is *unknown*, which no ``not`` turns into true, so a
  rule fails closed on a missing field (see :func:`check`);
* ``==``/``!=`` compare strictly: booleans are not numbers, ``1 == 1.0``,
  lists and objects compare element by element;
* ``< <= > >=`` order two numbers or two strings; anything else is a type
  mismatch, which is false (a query skips it, a rule explains it);
* ``in`` looks in a list (an element), a string (a substring, the item must be
  a string) or an object (a key, likewise); any other container is a mismatch.
  ``not in`` is false on a mismatch too, and true only when a well-typed ``in``
  is false;
* ``not``, ``and``, ``or`` are plain boolean logic over those results in a
  query, and three-valued (Kleene) logic in a rule.

:func:`compile_query` turns a tree into nested closures specialised at compile
time (path against constant being the common case), which keeps a query over
100,000 metadata dicts well under the time of one remote listing. The rule
checker :func:`check` is a small interpreter that says *why* a condition is
false; the tests hold it to the closures' verdict wherever every path it
reads exists, and to "a rule that holds is a query that matches" everywhere.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._json import freeze
from ._expr_nodes import (
    And,
    Compare,
    Exists,
    Expr,
    In,
    Literal,
    Node,
    Not,
    Operand,
    Or,
    Path,
    literal_kind,
    literal_text,
    quote,
    to_text,
)
from ._plain import plain_value

#: A compiled query: metadata dict in, verdict out.
Query = Callable[[Mapping[str, Any]], bool]


class _Missing:
    """The value of a path that leads nowhere (distinct from a stored null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()

_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_NUMBER_TYPES = frozenset({int, float})


# -- the semantics, value by value -------------------------------------------------


def lookup(metadata: Any, segments: tuple[str, ...]) -> Any:
    """The value at a path, or MISSING if a key is absent or a step is not an object."""
    value = metadata
    for segment in segments:
        if not isinstance(value, dict):
            return MISSING
        value = value.get(segment, MISSING)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def strict_equal(a: Any, b: Any) -> bool:
    """Equality where booleans are not numbers and lists/objects compare deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) or _is_number(b):
        return _is_number(a) and _is_number(b) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, list | tuple):
        return (isinstance(b, list | tuple) and len(a) == len(b)
                and all(strict_equal(x, y) for x, y in zip(a, b, strict=True)))
    if isinstance(a, dict):
        return (isinstance(b, dict) and a.keys() == b.keys()
                and all(strict_equal(a[k], b[k]) for k in a))
    return False


def compare(op: str, a: Any, b: Any) -> bool | None:
    """Result of ``a op b``; None when the types cannot be ordered."""
    if op == "==":
        return strict_equal(a, b)
    if op == "!=":
        return not strict_equal(a, b)
    if (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
        return bool(_ORDER[op](a, b))
    return None


def contains(item: Any, container: Any) -> bool | None:
    """Result of ``item in container``; None when the container cannot hold it."""
    if isinstance(container, list | tuple):
        return any(strict_equal(item, x) for x in container)
    if isinstance(container, str | dict):
        return item in container if isinstance(item, str) else None
    return None


# -- query semantics: compiled closures --------------------------------------------


def compile_query(expr: Expr) -> Query:
    """Compile ``expr`` into a function ``metadata -> bool`` (no eval, only closures).

    The function takes a dict (Kirin's metadata, frozen or not, is one) and
    never raises on odd content: missing paths and type mismatches make the
    comparison false. Use it when filtering many dicts with one query.
    """
    if not isinstance(expr, Expr):
        raise TypeError(f"compile_query() needs an Expr, not {type(expr).__name__}")
    return _compile(expr)


def evaluate(expr: Expr, metadata: Mapping[str, Any]) -> bool:
    """Query semantics: does ``metadata`` match ``expr``?

    The compiled closure is cached on the tree, so calling this in a loop costs
    one compilation; for the tightest loops use :func:`compile_query`.
    """
    query = expr.__dict__.get("_query")
    if query is None:
        query = compile_query(expr)
        object.__setattr__(expr, "_query", query)
    return query(_as_dict(metadata))


def _as_dict(metadata: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(metadata, dict):
        return metadata
    if isinstance(metadata, Mapping):
        return dict(metadata)
    raise TypeError(f"metadata must be a mapping, not {type(metadata).__name__}")


def _compile(expr: Expr) -> Query:
    if isinstance(expr, And | Or):
        parts = tuple(_compile(o) for o in expr.operands)
        return _all_of(parts) if isinstance(expr, And) else _any_of(parts)
    if isinstance(expr, Not):
        inner = _compile(expr.operand)
        return lambda m: not inner(m)
    if isinstance(expr, Exists):
        get = _getter(expr.path.segments)
        return lambda m: get(m) is not MISSING
    if isinstance(expr, Compare):
        return _compile_compare(expr)
    if isinstance(expr, In):
        return _compile_in(expr)
    raise TypeError(f"not a condition: {type(expr).__name__}")


def _all_of(parts: tuple[Query, ...]) -> Query:
    if len(parts) == 2:
        first, second = parts
        return lambda m: first(m) and second(m)

    def all_of(m: Mapping[str, Any]) -> bool:
        # A loop, not all(<generator>): no generator frame per metadata dict.
        for part in parts:  # noqa: SIM110
            if not part(m):
                return False
        return True
    return all_of


def _any_of(parts: tuple[Query, ...]) -> Query:
    if len(parts) == 2:
        first, second = parts
        return lambda m: first(m) or second(m)

    def any_of(m: Mapping[str, Any]) -> bool:
        for part in parts:  # noqa: SIM110 (see all_of)
            if part(m):
                return True
        return False
    return any_of


def _getter(segments: tuple[str, ...]) -> Callable[[Any], Any]:
    """A function returning the value at the path, or MISSING; unrolled for 1-2 keys."""
    if len(segments) == 1:
        (key,) = segments
        return lambda m: m.get(key, MISSING) if isinstance(m, dict) else MISSING
    if len(segments) == 2:
        first, second = segments

        def get2(m: Any) -> Any:
            value = m.get(first, MISSING) if isinstance(m, dict) else MISSING
            return value.get(second, MISSING) if isinstance(value, dict) else MISSING
        return get2
    return lambda m: lookup(m, segments)


def _operand_getter(operand: Operand) -> Callable[[Any], Any]:
    if isinstance(operand, Path):
        return _getter(operand.segments)
    value = operand.value  # type: ignore[attr-defined]
    return lambda m: value


def _compile_compare(expr: Compare) -> Query:
    left, op, right = expr.left, expr.op, expr.right
    if isinstance(left, Literal) and isinstance(right, Path):
        left, op, right = right, _FLIPPED[op], left
    if (isinstance(left, Path) and isinstance(right, Literal)
            and not isinstance(right.value, tuple)):
        return _path_against_constant(_getter(left.segments), op, right.value)
    get_a, get_b = _operand_getter(left), _operand_getter(right)

    def compare_any(m: Mapping[str, Any]) -> bool:
        a = get_a(m)
        if a is MISSING:
            return False
        b = get_b(m)
        return b is not MISSING and compare(op, a, b) is True
    return compare_any


def _path_against_constant(get: Callable[[Any], Any], op: str, const: Any) -> Query:
    """The common case, specialised so that one call does the whole comparison."""
    numbers = _NUMBER_TYPES
    if op == "==":
        if const is None or isinstance(const, bool):
            return lambda m: get(m) is const
        if isinstance(const, str):
            return lambda m: get(m) == const

        def number_equal(m: Mapping[str, Any]) -> bool:
            v = get(m)
            return v == const and (v.__class__ in numbers or _is_number(v))
        return number_equal
    if op == "!=":
        if const is None or isinstance(const, bool):
            return lambda m: (v := get(m)) is not const and v is not MISSING
        if isinstance(const, str):
            return lambda m: (v := get(m)) != const and v is not MISSING

        def number_differs(m: Mapping[str, Any]) -> bool:
            v = get(m)
            return v is not MISSING and not (
                v == const and (v.__class__ in numbers or _is_number(v)))
        return number_differs
    order = _ORDER[op]
    if isinstance(const, str):
        return lambda m: isinstance(v := get(m), str) and order(v, const)

    def number_order(m: Mapping[str, Any]) -> bool:
        v = get(m)
        return (v.__class__ in numbers or _is_number(v)) and order(v, const)
    return number_order


def _compile_in(expr: In) -> Query:
    item, container = expr.item, expr.container
    if (isinstance(item, Path) and isinstance(container, Literal)
            and isinstance(container.value, tuple)):
        # A path in a constant list: the common query shape ("framework in [...]").
        get, test = _getter(item.segments), _list_test(container.value)
        if expr.negated:
            return lambda m: (v := get(m)) is not MISSING and not test(v)
        return lambda m: test(get(m))
    if (isinstance(item, Literal) and isinstance(item.value, str)
            and isinstance(container, Path) and not expr.negated):
        # A string constant in a path: "'production' in tags", "'lr' in hparams".
        get, needle = _getter(container.segments), item.value
        return lambda m: isinstance(v := get(m), list | tuple | str | dict) and needle in v
    get_item, get_container = _operand_getter(item), _operand_getter(container)
    wanted = not expr.negated

    def membership(m: Mapping[str, Any]) -> bool:
        a, c = get_item(m), get_container(m)
        if a is MISSING or c is MISSING:
            return False
        result = contains(a, c)
        return result is not None and result is wanted
    return membership


def _list_test(options: tuple[Any, ...]) -> Callable[[Any], bool]:
    """Membership in a constant list: a set lookup when the list is homogeneous.

    MISSING is in no list, so the test also answers False for a missing path.
    """
    if all(isinstance(o, str) for o in options):
        strings = frozenset(options)
        return lambda v: isinstance(v, str) and v in strings
    if all(_is_number(o) for o in options):
        numbers, exact = frozenset(options), _NUMBER_TYPES
        return lambda v: (v.__class__ in exact or _is_number(v)) and v in numbers
    return lambda v: v is not MISSING and any(strict_equal(v, o) for o in options)


# -- rule semantics: failures that explain ------------------------------------------


@dataclass(frozen=True)
class Failure:
    """Why a rule does not hold for some metadata.

    ``path`` is the metadata path at fault in canonical text ("" when no single
    path is), ``value`` its actual value (None when missing or not one path),
    ``expected`` the text of the failing sub-expression, ``missing`` whether
    the failure is a missing field, ``causes`` the failures of the alternatives
    of an ``or``.
    """

    path: str
    value: Any = field(hash=False)
    expected: str
    missing: bool
    message: str
    causes: tuple[Failure, ...] = ()

    def __str__(self) -> str:
        return self.message


def check(expr: Expr, metadata: Mapping[str, Any]) -> tuple[Failure, ...]:
    """Rule semantics: every reason ``expr`` does not hold; empty when it holds.

    A rule reads metadata in three-valued logic, so that a missing field fails
    closed: a comparison or membership test on a missing path is *unknown*,
    and ``not`` of unknown is unknown (``not x == 'high'`` does not hold when
    ``x`` is missing). ``and`` is false if any operand is false, else unknown
    if any is unknown; ``or`` is true if any operand is true, else unknown if
    any is unknown; ``exists()`` is never unknown. The rule holds only when
    the whole expression is true, so a missing field is a violation whenever
    the verdict depends on it, and only then (``not exists(x) or x > 1`` and
    ``x > 1 or y > 1`` with ``y`` = 2 hold when ``x`` is missing).

    Whenever a rule holds, :func:`evaluate` (queries, where a missing field
    makes a comparison false and ``not`` is plain negation) matches too; the
    two verdicts are equal when every path the expression reads exists, or
    when it has no ``not``. The metadata is judged as exact builtins (see
    :mod:`._plain`): a subclass's ``__eq__`` never decides a rule; a value
    that is not JSON raises ``InvalidInputError``. For ``and`` every failing
    conjunct is reported;
    for ``or`` one failure carries the failures of all alternatives in
    ``causes``.
    """
    if not isinstance(expr, Expr):
        raise TypeError(f"check() needs an Expr, not {type(expr).__name__}")
    state, failures, _unknown = _check(expr, plain_value(_as_dict(metadata), ""))
    return () if state is _TRUE else tuple(failures)


#: The three truth values of a rule (see :func:`check`).
_TRUE, _FALSE, _UNKNOWN = "true", "false", "unknown"
#: (truth value, failures explaining it, the missing-field failures that make it unknown)
_Outcome = tuple[str, list[Failure], list[Failure]]


def _check(expr: Expr, m: dict[str, Any]) -> _Outcome:
    if isinstance(expr, And | Or):
        outcomes = [_check(operand, m) for operand in expr.operands]
        states = {state for state, _, _ in outcomes}
        unknown = [f for state, _, u in outcomes if state is _UNKNOWN for f in u]
        if isinstance(expr, And):
            state = (_FALSE if _FALSE in states else
                     _UNKNOWN if _UNKNOWN in states else _TRUE)
            return state, [f for s, fs, _ in outcomes if s is not _TRUE for f in fs], unknown
        if _TRUE in states:
            return _TRUE, [], []
        causes = [f for _, fs, _ in outcomes for f in fs]
        state = _UNKNOWN if _UNKNOWN in states else _FALSE
        return state, [_or_failure(expr, causes)], unknown
    if isinstance(expr, Not):
        state, _, unknown = _check(expr.operand, m)
        if state is _TRUE:
            return _FALSE, [_not_failure(expr, m)], []
        if state is _FALSE:
            return _TRUE, [], []
        rewrapped = _required_by(unknown, to_text(expr))
        return _UNKNOWN, rewrapped, rewrapped
    failures = _check_leaf(expr, m)
    if not failures:
        return _TRUE, [], []
    if failures[0].missing and not isinstance(expr, Exists):
        return _UNKNOWN, failures, failures
    return _FALSE, failures, []


def _required_by(failures: list[Failure], expected: str) -> list[Failure]:
    """Missing-field failures restated as required by ``expected`` (an enclosing ``not``)."""
    out: dict[str, Failure] = {}
    for failure in failures:
        what = failure.message.rsplit(" (required by: ", 1)[0]
        message = f"{what} (required by: {expected})"
        out.setdefault(message, Failure(failure.path, None, expected, True, message))
    return list(out.values())


def _check_leaf(expr: Expr, m: dict[str, Any]) -> list[Failure]:
    operands: tuple[Operand, ...]
    if isinstance(expr, Exists):
        operands = (expr.path,)
    elif isinstance(expr, Compare):
        operands = (expr.left, expr.right)
    elif isinstance(expr, In):
        operands = (expr.item, expr.container)
    else:
        raise TypeError(f"not a condition: {type(expr).__name__}")
    values = [lookup(m, o.segments) if isinstance(o, Path) else o.value  # type: ignore[attr-defined]
              for o in operands]
    expected = to_text(expr)
    missing = [to_text(o) for o, v in zip(operands, values, strict=True) if v is MISSING]
    if missing:
        names = " and ".join(quote(name, "'") for name in dict.fromkeys(missing))
        field_s, verb = ("fields", "are") if len(set(missing)) > 1 else ("field", "is")
        return [Failure(missing[0], None, expected, True,
                        f"metadata {field_s} {names} {verb} missing "
                        f"(required by: {expected})")]
    if isinstance(expr, Exists):
        return []
    if isinstance(expr, Compare):
        result = compare(expr.op, values[0], values[1])
    else:
        assert isinstance(expr, In)
        result = contains(values[0], values[1])
        if expr.negated and result is not None:
            result = not result
    if result:
        return []
    if result is None:
        return [_mismatch(expr, operands, values, expected)]
    return [_plain_failure(expr, operands, values, expected)]


def _plain_failure(expr: Expr, operands: tuple[Operand, ...], values: list[Any],
                   expected: str) -> Failure:
    typed = (isinstance(expr, Compare) and expr.op in ("==", "!=")
             and literal_kind(values[0]) != literal_kind(values[1]))
    shown = [(to_text(o), v) for o, v in zip(operands, values, strict=True)
             if isinstance(o, Path)]
    if not shown:
        return Failure("", None, expected, False, f"{expected} is false")
    described = ", ".join(
        f"{name} is {show(v)}" + (f" ({literal_kind(v)})" if typed else "")
        for name, v in dict(shown).items())
    name, value = shown[0]
    return Failure(name, freeze(value), expected, False,
                   f"{described}, expected {expected}")


def _mismatch(expr: Expr, operands: tuple[Operand, ...], values: list[Any],
              expected: str) -> Failure:
    """Name the side whose type is wrong and the type it should have."""
    a, b = values
    if isinstance(expr, Compare):
        ordered = ("a number", "a string")
        kind_a, kind_b = literal_kind(a), literal_kind(b)
        if kind_a not in ordered:
            side, needed = 0, kind_b if kind_b in ordered else "a number or a string"
        elif kind_b not in ordered:
            side, needed = 1, kind_a
        else:
            side = 0 if isinstance(operands[0], Path) and not isinstance(
                operands[1], Path) else 1
            needed = kind_b if side == 0 else kind_a
    elif not isinstance(b, list | tuple | str | dict):
        side, needed = 1, "a list, a string or an object"
    else:
        side, needed = (0, "a string") if isinstance(operands[0], Path) else (1, "a list")
    if not isinstance(operands[side], Path):
        return Failure("", None, expected, False,
                       f"{expected} compares {literal_kind(a)} with {literal_kind(b)}")
    name, value = to_text(operands[side]), values[side]
    return Failure(name, freeze(value), expected, False,
                   f"{name} is {show(value)} ({literal_kind(value)}), "
                   f"expected {needed} for {expected}")


def _or_failure(expr: Or, causes: list[Failure]) -> Failure:
    expected = to_text(expr)
    paths_at_fault = {c.path for c in causes}
    common = paths_at_fault.pop() if len(paths_at_fault) == 1 else ""
    return Failure(common, causes[0].value if common else None, expected,
                   all(c.missing for c in causes),
                   f"none of the alternatives of {expected} holds: "
                   + "; ".join(c.message for c in causes),
                   tuple(causes))


def _not_failure(expr: Not, m: dict[str, Any]) -> Failure:
    expected = to_text(expr)
    nodes = list(dict.fromkeys(_iter_paths(expr)))
    present = [(to_text(p), v) for p in nodes
               if (v := lookup(m, p.segments)) is not MISSING]
    if present:
        message = ", ".join(f"{name} is {show(v)}" for name, v in present)
        message += f", expected {expected}"
    else:
        message = f"{to_text(expr.operand)} holds, expected {expected}"
    if len(nodes) == 1:
        value = lookup(m, nodes[0].segments)
        return Failure(to_text(nodes[0]), None if value is MISSING else freeze(value),
                       expected, False, message)
    return Failure("", None, expected, False, message)


def show(value: Any, limit: int = 80) -> str:
    """A metadata value as it would be written in an expression, cut to ``limit``."""
    text = _show(value, 0)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _show(value: Any, depth: int) -> str:
    if depth > 8:
        return "..."
    if value is None or isinstance(value, bool | str):
        return literal_text(value)
    if isinstance(value, int) and value.bit_length() > 256:
        return f"<an integer of {value.bit_length()} bits>"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v, depth + 1) for v in value[:20]) + (
            ", ..." if len(value) > 20 else "") + "]"
    if isinstance(value, dict):
        items = list(value.items())[:20]
        return "{" + ", ".join(f"{_show(k, depth + 1)}: {_show(v, depth + 1)}"
                               for k, v in items) + (", ..." if len(value) > 20 else "") + "}"
    return f"<{type(value).__name__}>"


# -- paths -------------------------------------------------------------------------


def paths(expr: Node) -> frozenset[str]:
    """The metadata paths ``expr`` reads, in canonical text (``a.b``, ``a.`odd key```)."""
    return frozenset(to_text(p) for p in _iter_paths(expr))


def _iter_paths(node: Node) -> Iterator[Path]:
    if isinstance(node, Path):
        yield node
    elif isinstance(node, Compare):
        yield from _iter_paths(node.left)
        yield from _iter_paths(node.right)
    elif isinstance(node, In):
        yield from _iter_paths(node.item)
        yield from _iter_paths(node.container)
    elif isinstance(node, Exists):
        yield node.path
    elif isinstance(node, Not):
        yield from _iter_paths(node.operand)
    elif isinstance(node, And | Or):
        for operand in node.operands:
            yield from _iter_paths(operand)
