"""Exact builtins out of any JSON-like value: what the gate and the rule checker judge.

The gate must judge what will be stored. A ``str`` subclass whose ``__eq__``
says it equals every string could otherwise pass as an allowed tag, an enum
value or a required key while its real text is written. So every value is
read through the builtin types' own methods (``str.__str__``,
``dict.items``, ``list.__iter__``...), never through an override, and
rebuilt from exact ``str``/``int``/``float``/``bool``/``None`` inside
:class:`~kirin._json.FrozenDict`/:class:`~kirin._json.FrozenList`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._json import (
    FrozenDict,
    FrozenList,
    has_type,
    plain_float,
    plain_int,
    sequence_items,
)
from .._json import plain_str as exact_str
from ..errors import InvalidInputError


def plain_str(value: Any, what: str = "a tag") -> str:
    """``value`` as an exact ``str``, read from its storage, never from its methods."""
    if has_type(value, str):
        return exact_str(value)
    raise InvalidInputError(f"{what} must be a string, not {type(value).__name__}")


def stored_items(sequence: Any) -> Iterable[Any]:
    """The items a list or tuple holds, read from its storage (not its ``__iter__``)."""
    if has_type(sequence, list | tuple):
        return sequence_items(sequence)
    raise InvalidInputError(f"expected a list of strings, not {type(sequence).__name__}")


def plain_value(value: Any, where: str) -> Any:
    """A copy of a JSON value made of exact builtins, whatever subclasses it holds.

    Subclasses of ``str``, ``int``, ``float``, ``dict``, ``list`` and
    ``tuple`` are read through the builtin's own methods (their overrides are
    never called; see :mod:`kirin._json`, which copies commit inputs the same
    way); any other type is refused with ``InvalidInputError`` naming where it is.
    """
    if value is None or value is True or value is False:
        return value
    if has_type(value, str):
        return exact_str(value)
    if has_type(value, int):
        return plain_int(value)
    if has_type(value, float):
        return plain_float(value)
    if has_type(value, dict):
        return FrozenDict((plain_str(k, f"a key of {where or 'the metadata'}"),
                           plain_value(v, f"{where}.{plain_str(k)}" if where else
                                       plain_str(k)))
                          for k, v in dict.items(value))
    if has_type(value, list | tuple):
        return FrozenList(plain_value(v, f"{where}[{i}]")
                          for i, v in enumerate(sequence_items(value)))
    raise InvalidInputError(f"{where or 'the value'} is a {type(value).__name__}, which a "
                            "policy cannot judge: proposals hold plain JSON values only")
