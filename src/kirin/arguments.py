"""Checks of a public method's plain arguments: one home, so every method refuses alike.

Each check returns the value as an exact builtin (a ``str`` subclass with its
own ``__eq__`` or ``__str__`` never gets past one), or raises a
:class:`~kirin.errors.KirinError` subclass that still derives from the builtin
error Python would have raised (``TypeError`` for a wrong type), naming the
argument.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Mapping
from typing import Any

from ._json import has_type, plain_int, plain_str, sequence_items
from .digests import is_digest
from .errors import InvalidArgumentTypeError, InvalidInputError


def text_argument(value: Any, what: str) -> str:
    """``value`` as an exact ``str``, or :class:`InvalidArgumentTypeError` naming ``what``."""
    if not has_type(value, str):
        raise InvalidArgumentTypeError(f"{what} must be a string, not {type(value).__name__}")
    return plain_str(value)


def optional_text_argument(value: Any, what: str) -> str | None:
    """:func:`text_argument`, letting ``None`` through."""
    return None if value is None else text_argument(value, what)


def count_argument(value: Any, what: str) -> int | None:
    """``None`` or a non-negative ``int`` (not a ``bool``), as an exact ``int``."""
    if value is None:
        return None
    if not has_type(value, int) or has_type(value, bool):
        raise InvalidArgumentTypeError(
            f"{what} must be an integer or None, not {type(value).__name__}")
    number = plain_int(value)
    if number < 0:
        raise InvalidInputError(f"{what} must not be negative, got {number}")
    return number


def path_argument(value: Any, what: str, expected: str = "a path (str or os.PathLike)"
                  ) -> str:
    """A local path given as ``str`` or ``os.PathLike``, as an exact ``str``."""
    if has_type(value, str):
        return plain_str(value)
    if has_type(value, os.PathLike):
        try:
            path = os.fspath(value)
        except TypeError as exc:
            raise InvalidArgumentTypeError(f"{what}: {exc}") from None
        if has_type(path, str):
            return plain_str(path)
    raise InvalidArgumentTypeError(f"{what} must be {expected}, not {type(value).__name__}")


def callable_argument(value: Any, what: str) -> Any:
    """``None`` or something callable."""
    if value is not None and not callable(value):
        raise InvalidArgumentTypeError(
            f"{what} must be a function or None, not {type(value).__name__}")
    return value


def encoding_argument(value: Any) -> str:
    """A text encoding Python knows (``"utf-8"``, ``"latin-1"``...), as an exact ``str``."""
    encoding = text_argument(value, "encoding")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InvalidInputError(f"Unknown text encoding {encoding!r}") from None
    return encoding


def text_items(value: Any, what: str) -> list[Any]:
    """The items of ``value`` (one string, or an iterable of them), unchecked, in a list.

    A lone string is one item (not its characters); a ``list`` or ``tuple``
    is read from its own storage, any other iterable is iterated once.
    """
    if has_type(value, str):
        return [value]
    if has_type(value, bytes | bytearray | Mapping):
        raise InvalidArgumentTypeError(
            f"{what} must be a string or an iterable of strings, not {type(value).__name__}")
    if has_type(value, list | tuple):
        return sequence_items(value)
    try:
        return list(iter(value))
    except TypeError:
        raise InvalidArgumentTypeError(
            f"{what} must be a string or an iterable of strings, not "
            f"{type(value).__name__}") from None


def signer_argument(value: Any, what: str = "signer") -> Any:
    """``None`` or a :class:`kirin.sshsig.Signer` (cryptography loads only for a signer)."""
    if value is None:
        return None
    from .sshsig import Signer

    if not isinstance(value, Signer):
        raise InvalidArgumentTypeError(
            f"{what} must be a kirin.sshsig.Signer (KeyFileSigner, AgentSigner), "
            f"not {type(value).__name__}")
    return value


def signers_argument(value: Any) -> list[Any]:
    """A sequence of signers (``signers=``), each checked by :func:`signer_argument`."""
    if has_type(value, str | bytes | bytearray | Mapping) or not has_type(value, list | tuple):
        raise InvalidArgumentTypeError(
            f"signers must be a list of kirin.sshsig.Signer, not {type(value).__name__}")
    return [signer_argument(s, "each of signers") for s in sequence_items(value)]


def signatures_argument(value: Any) -> list[dict[str, str]]:
    """Signatures other admins made (``signatures=``): ``{"key": ..., "sig": ...}`` each."""
    if has_type(value, str | bytes | bytearray | Mapping) or not has_type(value, list | tuple):
        raise InvalidArgumentTypeError(
            f"signatures must be a list of {{'key': ..., 'sig': ...}}, not "
            f"{type(value).__name__}")
    found = []
    for item in sequence_items(value):
        if not has_type(item, Mapping) or set(item) - {"key", "sig", "version"} or not (
                has_type(item.get("key"), str) and has_type(item.get("sig"), str)):
            raise InvalidArgumentTypeError(
                "each of signatures must be {'key': str, 'sig': str} as sign_policy returns "
                f"it, not {type(item).__name__}")
        found.append({"key": plain_str(item["key"]), "sig": plain_str(item["sig"])})
    return found


#: Where each policy pin comes from when not given (see :func:`pin_argument`).
PIN_SOURCES = {"trust_policy": ("KIRIN_TRUST_POLICY", "trust"),
               "trust_root_policy": ("KIRIN_TRUST_ROOT_POLICY", "trust_root")}


def pin_argument(value: Any, what: str) -> str | None:
    """The policy hash a caller pins as the start of a chain of trust (``what``:
    ``trust_policy`` or ``trust_root_policy``), else its environment variable's; ``None``
    if neither: the first version is then trusted on first use."""
    variable = PIN_SOURCES[what][0]
    if value is None:
        value = os.environ.get(variable, "").strip() or None
        if value is None:
            return None
        what = variable
    pin = text_argument(value, what).strip().lower()
    if not is_digest(pin):
        raise InvalidInputError(f"{what} must be a policy hash (64 hex digits, as kirin "
                                f"policy history shows), not {value!r}")
    return pin


def pin_sources(what: str) -> str:
    """Where a pin named ``what`` can be set, for messages: ``KIRIN_TRUST_POLICY, trust:
    or trust_policy=``."""
    variable, key = PIN_SOURCES[what]
    return f"{variable}, kirin.yaml {key}: or {what}="
