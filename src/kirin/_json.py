"""Plain-JSON checks, canonical encoding and read-only containers.

Metadata and stored records must be plain JSON so that every reader, in any
language, sees the same values and the commit hash is reproducible. Values
handed back to users are wrapped read-only so a commit cannot be changed
after the fact, while still comparing equal to (and serialising like)
ordinary dicts and lists.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from types import UnionType
from typing import Any, NoReturn, TypeGuard, TypeVar, cast, overload

from .errors import InvalidArgumentTypeError, InvalidMetadataError

T = TypeVar("T")

#: Nesting deeper than this is refused: it is never needed for metadata and it
#: keeps recursive walks (here, in the policy and in json) far from the stack limit.
MAX_DEPTH = 64
#: Integers with more decimal digits than this are refused: Python's ``json``
#: cannot write or read back more than 4,300 (``sys.get_int_max_str_digits``).
MAX_INT_DIGITS = 4000
_INT_BOUND = 10 ** MAX_INT_DIGITS
#: A commit's metadata is refused if its canonical JSON is larger than this
#: (1 MiB): every record is read on open and copied into a checkpoint, so large
#: content belongs in a file of the commit, not in its metadata.
MAX_METADATA_BYTES = 1 << 20


def _readonly(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(f"{type(self).__name__} is read-only: commits are immutable")


class FrozenDict(dict):  # type: ignore[type-arg]
    """A dict that refuses changes; equal to, and JSON-encoded as, a plain dict."""

    __slots__ = ()
    __setitem__ = __delitem__ = _readonly
    clear = pop = popitem = setdefault = update = _readonly
    __ior__ = _readonly

    def __hash__(self) -> int:  # type: ignore[override]
        # by items, as equality compares them: {"a": 1} == {"a": 1.0}, so one hash
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


class FrozenList(list):  # type: ignore[type-arg]
    """A list that refuses changes; equal to, and JSON-encoded as, a plain list."""

    __slots__ = ()
    __setitem__ = __delitem__ = _readonly
    append = extend = insert = pop = remove = clear = sort = reverse = _readonly
    __iadd__ = __imul__ = _readonly

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))


def freeze(value: Any) -> Any:
    """Deep read-only copy of a plain-JSON value."""
    if isinstance(value, dict):
        return FrozenDict((k, freeze(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return FrozenList(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Deep mutable copy (plain dicts and lists) of a JSON value."""
    if isinstance(value, dict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value


def _fail(path: str, reason: str) -> NoReturn:
    raise InvalidMetadataError(path, reason)


def is_text(value: str) -> bool:
    """Whether ``value`` is valid Unicode that UTF-8 can hold (no lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@overload
def has_type(value: object, kind: type[T]) -> TypeGuard[T]: ...
@overload
def has_type(value: object, kind: UnionType) -> bool: ...
def has_type(value: object, kind: type[Any] | UnionType) -> bool:
    """``isinstance`` on the real type: an object can fake ``__class__``, not ``type()``."""
    return issubclass(type(value), kind)


def plain_str(value: str) -> str:
    """An exact ``str`` with the characters ``value`` holds.

    A ``str`` subclass can override ``__str__``, ``__eq__``, ``__hash__``; the
    slot of ``str`` itself copies the stored characters, so what is judged
    afterwards is what is written.
    """
    return str.__str__(value)


def plain_int(value: int) -> int:
    """An exact ``int`` (``bool`` stays ``bool``) with the value ``value`` holds."""
    if value is True or value is False:
        return value
    return int.__index__(value)


def plain_float(value: float) -> float:
    """An exact ``float`` with the value ``value`` holds."""
    return float.__float__(value)


def mapping_items(value: Mapping[Any, Any]) -> list[tuple[Any, Any]]:
    """The one view of a mapping that Kirin reads: a snapshot of its items.

    For a ``dict`` (subclasses included) that is the dict's own storage, read
    with ``dict.items`` so that overridden ``items``, ``keys``, ``__iter__``
    or ``__getitem__`` cannot show something else; any other mapping is
    asked for ``items()`` once.
    """
    if has_type(value, dict):
        return list(dict.items(value))
    pairs = []
    for pair in value.items():
        if not has_type(pair, tuple) or tuple.__len__(pair) != 2:
            raise InvalidArgumentTypeError(
                f"{type(value).__name__}.items() gave {_shown(pair)}, not (key, value) pairs")
        pairs.append((tuple.__getitem__(pair, 0), tuple.__getitem__(pair, 1)))
    return pairs


def sequence_items(value: list[Any] | tuple[Any, ...]) -> list[Any]:
    """The elements a list or tuple (subclasses included) really holds, in an exact list."""
    if has_type(value, list):
        return list.copy(value)
    return list(tuple.__getitem__(cast("tuple[Any, ...]", value), slice(None)))


def check_json(value: Any, path: str = "", depth: int = 0) -> Any:
    """Return a plain-JSON copy of ``value`` or raise naming the offending key path.

    Accepted: dict with str keys, list/tuple, str, int, finite float, bool, None.
    Tuples become lists (that is what JSON can hold). Text must be valid
    Unicode (a lone surrogate such as ``"\\ud800"`` cannot be stored as UTF-8)
    and integers at most :data:`MAX_INT_DIGITS` digits long. The copy is made
    of exact builtins (see :func:`plain_str`, :func:`mapping_items`): every
    check runs on the copy, and the copy is what gets stored.
    """
    if depth > MAX_DEPTH:
        _fail(path, f"nested deeper than {MAX_DEPTH} levels")
    if value is None or value is True or value is False:
        return value
    if has_type(value, str):
        text = plain_str(value)
        if not is_text(text):
            _fail(path, f"text {text!r:.60} holds a lone surrogate: it is not valid "
                  "Unicode and cannot be stored as UTF-8")
        return text
    if has_type(value, int):
        number = plain_int(value)
        if not -_INT_BOUND < number < _INT_BOUND:
            _fail(path, f"an integer of {number.bit_length()} bits has more than "
                  f"{MAX_INT_DIGITS} digits; store it as a string")
        return number
    if has_type(value, float):
        real = plain_float(value)
        if not math.isfinite(real):
            _fail(path, f"{real!r} is not a finite number (JSON has no NaN or infinity)")
        return real
    if has_type(value, Mapping):
        out: dict[str, Any] = {}
        for raw_key, item in mapping_items(value):
            if not has_type(raw_key, str):
                _fail(path, f"key {_shown(raw_key)} is a {type(raw_key).__name__}; keys must "
                      "be strings")
            key = plain_str(raw_key)
            if not is_text(key):
                _fail(path, f"key {key!r:.60} holds a lone surrogate: it is not valid "
                      "Unicode and cannot be stored as UTF-8")
            if key in out:
                _fail(path, f"key {key!r:.60} appears twice")
            out[key] = check_json(item, f"{path}.{key}" if path else key, depth + 1)
        return out
    if has_type(value, list | tuple):
        return [check_json(v, f"{path}[{i}]", depth + 1)
                for i, v in enumerate(sequence_items(value))]
    _fail(path, f"value of type {type(value).__name__} ({_shown(value)}) is not JSON")


def _shown(value: Any) -> str:
    """``repr(value)`` cut short, or a placeholder when its ``__repr__`` fails."""
    try:
        text = repr(value)
    except Exception:
        return f"a {type(value).__name__} that cannot be shown"
    return text[:60]


def check_metadata(value: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`check_json` of a commit's metadata, refusing more than :data:`MAX_METADATA_BYTES`."""
    checked: dict[str, Any] = check_json(value)
    size = len(canonical_json(checked).encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        error = InvalidMetadataError("", f"it is {size:,} bytes as canonical JSON; the limit "
                                     f"is {MAX_METADATA_BYTES:,} bytes (1 MiB)")
        error.args = (f"Metadata is too large: {error.reason}. Store large content as a "
                      "file of the commit and refer to it from the metadata",)
        raise error
    return checked


def canonical_json(value: Any) -> str:
    """The one encoding that hashes are computed over: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)

