"""Checking what a caller asks to commit, before anything is read or written.

Turns the friendly arguments of ``Dataset.commit`` (paths, lists, mappings,
single strings) into one immutable :class:`CommitInputs`, or raises an error
that names the offending argument.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._json import FrozenDict, FrozenList, check_metadata, freeze, is_text
from .errors import (
    EmptyCommitError,
    InvalidInputError,
    InvalidNameError,
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
    """Check and normalise the arguments of a commit."""
    if not isinstance(message, str) or not message.strip():
        raise InvalidInputError("A commit needs a non-empty message")
    _check_text(message, "message", MAX_MESSAGE_LENGTH)
    sources = _named_sources(add_files)
    removed = _removed_names(remove_files)
    both = sorted(set(sources) & set(removed))
    if both:
        raise InvalidInputError(f"{', '.join(map(repr, both))} is both added and removed")
    if not sources and not removed and not allow_empty:
        raise EmptyCommitError("Nothing to commit: give add_files and/or remove_files")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise InvalidInputError("metadata must be a mapping (a JSON object)")
    meta = check_metadata(dict(metadata) if metadata is not None else {})
    who = (author if author is not None else default_author()).strip()
    if not who:
        raise InvalidInputError("author must not be empty")
    _check_text(who, "author", MAX_AUTHOR_LENGTH)
    return CommitInputs(message, FrozenDict(sources), tuple(removed), freeze(meta),
                        FrozenList(_clean_tags(tags)), who)


def _check_text(text: str, what: str, limit: int) -> None:
    """``text`` is valid Unicode (storable as UTF-8) and at most ``limit`` characters."""
    if not is_text(text):
        raise InvalidInputError(f"The {what} {text[:40]!r} holds a lone surrogate: it is not "
                                "valid Unicode and cannot be stored as UTF-8")
    if len(text) > limit:
        raise InvalidInputError(f"The {what} is {len(text):,} characters long; the limit is "
                                f"{limit:,}")


def _named_sources(add_files: AddFiles | None) -> dict[str, str]:
    """``{name in registry: source}`` from a path, a list of paths, or a mapping."""
    if add_files is None:
        return {}
    if isinstance(add_files, str | os.PathLike):
        add_files = [add_files]
    pairs: list[tuple[str, str]]
    if isinstance(add_files, Mapping):
        pairs = [(str(k), os.fspath(v)) for k, v in add_files.items()]
    else:
        pairs = []
        for item in add_files:
            if not isinstance(item, str | os.PathLike):
                raise InvalidInputError(
                    f"add_files entries must be paths or URLs, not {type(item).__name__}")
            source = os.fspath(item)
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
    if isinstance(remove_files, str):
        remove_files = [remove_files]
    return list(dict.fromkeys(validate_file_name(n) for n in remove_files))


def _clean_tags(tags: Iterable[str] | None) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = [tags]
    out: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip():
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


def check_folder_clash(snapshot: Mapping[str, Any]) -> None:
    """A name cannot be both a file and a folder of other files."""
    folders: dict[str, str] = {}
    for name in snapshot:
        parts = name.split("/")
        for i in range(1, len(parts)):
            folders.setdefault("/".join(parts[:i]), name)
    for name in snapshot:
        if name in folders:
            raise InvalidNameError(name, f"it is a file and also the folder of "
                                   f"{folders[name]!r}", kind="file name")
