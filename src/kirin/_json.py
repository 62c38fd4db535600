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
from typing import Any, NoReturn

from .errors import InvalidMetadataError

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
    clear = pop = popitem = setdefault = update = _readonly  # type: ignore[assignment]
    __ior__ = _readonly  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(canonical_json(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


class FrozenList(list):  # type: ignore[type-arg]
    """A list that refuses changes; equal to, and JSON-encoded as, a plain list."""

    __slots__ = ()
    __setitem__ = __delitem__ = _readonly
    append = extend = insert = pop = remove = clear = sort = reverse = _readonly  # type: ignore[assignment]
    __iadd__ = __imul__ = _readonly  # type: ignore[assignment]

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


def check_json(value: Any, path: str = "", depth: int = 0) -> Any:
    """Return a plain-JSON copy of ``value`` or raise naming the offending key path.

    Accepted: dict with str keys, list/tuple, str, int, finite float, bool, None.
    Tuples become lists (that is what JSON can hold). Text must be valid
    Unicode (a lone surrogate such as ``"\\ud800"`` cannot be stored as UTF-8)
    and integers at most :data:`MAX_INT_DIGITS` digits long.
    """
    if depth > MAX_DEPTH:
        _fail(path, f"nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if not is_text(value):
            _fail(path, f"text {value!r:.60} holds a lone surrogate: it is not valid "
                  "Unicode and cannot be stored as UTF-8")
        return value
    if isinstance(value, int):
        if not -_INT_BOUND < value < _INT_BOUND:
            _fail(path, f"an integer of {value.bit_length()} bits has more than "
                  f"{MAX_INT_DIGITS} digits; store it as a string")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            _fail(path, f"{value!r} is not a finite number (JSON has no NaN or infinity)")
        return float(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                _fail(path, f"key {key!r} is a {type(key).__name__}; keys must be strings")
            if not is_text(key):
                _fail(path, f"key {key!r:.60} holds a lone surrogate: it is not valid "
                      "Unicode and cannot be stored as UTF-8")
            out[key] = check_json(item, f"{path}.{key}" if path else key, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [check_json(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    _fail(path, f"value of type {type(value).__name__} ({value!r:.60}) is not JSON")


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

