"""Checking what a caller asks to commit, before anything is read or written.

Turns the friendly arguments of ``Dataset.commit`` (paths, lists, mappings,
single strings) into one immutable :class:`CommitInputs`, or raises an error
that names the offending argument.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._json import (
    FrozenDict,
    FrozenList,
    check_metadata,
    freeze,
    has_type,
    is_text,
    mapping_items,
    plain_str,
    sequence_items,
)
from .arguments import path_argument, text_argument, text_items
from .backends import check_protocols
from .errors import (
    EmptyCommitError,
    InvalidArgumentTypeError,
    InvalidInputError,
    InvalidTagError,
)
from .naming import source_basename, validate_file_name

PathLike = str | os.PathLike[str]
AddFiles = PathLike | Iterable[PathLike] | Mapping[str, PathLike]
MAX_TAG_LENGTH = 256
#: Tags on one commit, characters of a message, of an author: records are read
#: whole on open and copied into checkpoints, so each has a (generous) bound.
MAX_TAGS = 1000
MAX_MESSAGE_LENGTH = 65_536
MAX_AUTHOR_LENGTH = 1024


def default_author() -> str:
    """``KIRIN_AUTHOR``, else ``user@host``: who made a commit, for the audit trail."""
    env = os.environ.get("KIRIN_AUTHOR", "").strip()
    if env:
        return env
    import getpass  # (with socket) only when a commit needs its author: not for reading
    import socket

    try:
        user = getpass.getuser()
    except Exception:  # no user database entry (containers); still record something
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class CommitInputs:
    """A commit request that passed every check that needs no storage."""

    message: str
    sources: FrozenDict  # name in registry -> local path or URL
    removed: tuple[str, ...]
    metadata: FrozenDict
    tags: FrozenList
    author: str


def prepare(message: Any, add_files: AddFiles | None, remove_files: Iterable[str] | None,
            metadata: Mapping[str, Any] | None, tags: Iterable[str] | None,
            author: str | None, *, allow_empty: bool = False) -> CommitInputs:
    """Check and normalise the arguments of a commit.

    Every value is first copied into exact builtins (``str``, ``int``,
    ``float``, ``bool``, ``dict``, ``list``) and every check runs on that
    copy, which is also what is stored: a subclass overriding ``__eq__``,
    ``__hash__``, ``__str__`` or ``items`` cannot show the policy one value
    and have another written.
    """
    message = text_argument(message, "message")
    if not message.strip():
        raise InvalidInputError("A commit needs a non-empty message")
    _check_text(message, "message", MAX_MESSAGE_LENGTH)
    sources = _named_sources(add_files)
    removed = _removed_names(remove_files)
    both = sorted(set(sources) & set(removed))
    if both:
        raise InvalidInputError(f"{', '.join(map(repr, both))} is both added and removed")
    if not sources and not removed and not allow_empty:
        raise EmptyCommitError("Nothing to commit: give add_files and/or remove_files")
    if metadata is not None and not has_type(metadata, Mapping):
        raise InvalidArgumentTypeError(
            f"metadata must be a mapping (a JSON object), not {type(metadata).__name__}")
    meta = check_metadata(metadata if metadata is not None else {})
    who = (text_argument(author, "author") if author is not None else default_author()).strip()
    if not who:
        raise InvalidInputError("author must not be empty")
    _check_text(who, "author", MAX_AUTHOR_LENGTH)
    return CommitInputs(message, FrozenDict(sources), tuple(removed), freeze(meta),
                        FrozenList(_clean_tags(tags)), who)


def root_argument(value: Any) -> str:
    """A registry root (folder or fsspec URL) as an exact ``str``; no NUL, known protocol.

    Every later use (``os.path``, fsspec, the operating system) would raise a
    bare ``ValueError`` or ``ImportError`` for these.
    """
    return _location(value, "root_dir", "a folder or an fsspec URL (str or os.PathLike)",
                     "The root")


def _check_text(text: str, what: str, limit: int) -> None:
    """``text`` is valid Unicode (storable as UTF-8) and at most ``limit`` characters."""
    if not is_text(text):
        raise InvalidInputError(f"The {what} {text[:40]!r} holds a lone surrogate: it is not "
                                "valid Unicode and cannot be stored as UTF-8")
    if len(text) > limit:
        raise InvalidInputError(f"The {what} is {len(text):,} characters long; the limit is "
                                f"{limit:,}")


def _source(value: Any) -> str:
    """One source of ``add_files`` (a path or URL) as an exact ``str``; URLs checked."""
    return _location(value, "add_files entries", "paths or URLs", "The file to add")


def _location(value: Any, what: str, expected: str, shown: str) -> str:
    """A local path or an fsspec URL as an exact ``str``: no NUL, and a protocol that
    is known and installed (else a bare ``ValueError``/``ImportError`` would come later)."""
    location = path_argument(value, what, expected)
    if "\x00" in location:
        raise InvalidInputError(f"{shown} {location!r} contains a NUL character")
    if "://" in location or "::" in location:
        check_protocols(location)
    return location


def _named_sources(add_files: AddFiles | None) -> dict[str, str]:
    """``{name in registry: source}`` from a path, a list of paths, or a mapping."""
    if add_files is None:
        return {}
    pairs: list[tuple[str, str]]
    if has_type(add_files, str | os.PathLike):
        source = _source(add_files)
        pairs = [(source_basename(source), source)]
    elif has_type(add_files, Mapping):
        pairs = []
        for key, value in mapping_items(add_files):
            if not has_type(key, str):
                raise InvalidArgumentTypeError(
                    f"add_files names must be strings, not {type(key).__name__}")
            pairs.append((plain_str(key), _source(value)))
    else:
        if has_type(add_files, bytes | bytearray):
            raise InvalidArgumentTypeError("add_files must be a path, a list of paths or a "
                                           "mapping {name: path}, not bytes")
        given: Any = add_files  # whatever the caller passed: its real type decides
        try:
            items = (sequence_items(given) if has_type(given, list | tuple)
                     else list(iter(given)))
        except TypeError:
            raise InvalidArgumentTypeError(
                "add_files must be a path, a list of paths or a mapping {name: path}, not "
                f"{type(add_files).__name__}") from None
        pairs = []
        for item in items:
            source = _source(item)
            pairs.append((source_basename(source), source))
    named: dict[str, str] = {}
    for raw_name, source in pairs:
        name = validate_file_name(raw_name)
        if name in named and named[name] != source:
            raise InvalidInputError(
                f"Two files would be stored as {name!r}: {named[name]!r} and {source!r}. "
                "Pass a mapping {name: source} to give them different names.")
        named[name] = source
    return named


def _removed_names(remove_files: Iterable[str] | None) -> list[str]:
    if remove_files is None:
        return []
    names = []
    for name in text_items(remove_files, "remove_files"):
        if not has_type(name, str):
            raise InvalidArgumentTypeError(
                f"remove_files entries must be file names (strings), not {type(name).__name__}")
        names.append(validate_file_name(plain_str(name)))
    return list(dict.fromkeys(names))


def _clean_tags(tags: Iterable[str] | None) -> list[str]:
    if tags is None:
        return []
    out: list[str] = []
    for raw in text_items(tags, "tags"):
        if not has_type(raw, str):
            raise InvalidTagError(f"Tags must be non-empty strings, got a {type(raw).__name__}")
        tag = plain_str(raw)
        if not tag.strip():
            raise InvalidTagError(f"Tags must be non-empty strings, got {tag!r}")
        if tag != tag.strip() or _has_control(tag) or len(tag) > MAX_TAG_LENGTH:
            raise InvalidTagError(
                f"Tag {tag[:80]!r} has surrounding spaces, control characters or more than "
                f"{MAX_TAG_LENGTH} characters")
        if not is_text(tag):
            raise InvalidTagError(f"Tag {tag!r} holds a lone surrogate: it is not valid "
                                  "Unicode and cannot be stored as UTF-8")
        if tag not in out:
            out.append(tag)
            if len(out) > MAX_TAGS:
                raise InvalidTagError(f"A commit carries at most {MAX_TAGS} tags")
    return out


def _has_control(text: str) -> bool:
    """C0 controls, DEL and C1 controls (the same set file names refuse)."""
    return any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in text)
