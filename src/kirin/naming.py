"""Names are data, not paths: validation for dataset and file names.

A file name comes from a user or from a stored commit (which anyone with
write access to the bucket could craft). Before it is used to build a local
path it must be a plain relative POSIX path that cannot leave the folder it
is materialised into.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from ._json import has_type, plain_str
from .errors import InvalidArgumentTypeError, InvalidNameError

MAX_NAME_LENGTH = 1024
MAX_COMPONENT_BYTES = 255
_DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1 controls
_SURROGATE = re.compile("[\ud800-\udfff]")  # only lone ones can occur in a str


def validate_dataset_name(name: object) -> str:
    """A dataset name is one folder name: letters, digits, ``.``, ``_``, ``-``."""
    name = plain_str(name) if has_type(name, str) else name  # judged by its characters
    if not has_type(name, str) or not name:
        raise InvalidNameError(_shown(name), "a dataset name must be a non-empty string",
                               kind="dataset name")
    if name in (".", "..") or "/" in name or "\\" in name:
        raise InvalidNameError(name, "it must not contain '/' or '\\' or be '.' or '..'",
                               kind="dataset name")
    if not _DATASET_NAME.fullmatch(name):
        raise InvalidNameError(
            name, "use 1-128 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit", kind="dataset name")
    return name


def validate_file_name(name: object) -> str:
    """Return the NFC form of a file name, or raise saying what is wrong with it.

    Names may contain ``/`` for folders. Unicode names are normalised to NFC
    so that the same visible name cannot be stored twice in two encodings.
    """
    name = plain_str(name) if has_type(name, str) else name  # judged by its characters
    if not has_type(name, str) or not name:
        raise InvalidNameError(_shown(name), "a file name must be a non-empty string",
                               kind="file name")
    if _CONTROL.search(name):
        raise InvalidNameError(name, "it contains a NUL or control character",
                               kind="file name")
    if _SURROGATE.search(name):
        raise InvalidNameError(name, "it holds a lone surrogate: it is not valid Unicode "
                               "and cannot be stored as UTF-8", kind="file name")
    if "\\" in name:
        raise InvalidNameError(name, "use '/' to separate folders, not '\\'",
                               kind="file name")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise InvalidNameError(name, "it must be a relative name, not an absolute path",
                               kind="file name")
    normal = unicodedata.normalize("NFC", name)
    if len(normal) > MAX_NAME_LENGTH:
        raise InvalidNameError(normal[:40] + "...", f"it is longer than {MAX_NAME_LENGTH} "
                               "characters", kind="file name")
    for part in normal.split("/"):
        if part in ("", ".", ".."):
            raise InvalidNameError(name, "its folders must be non-empty and not '.' or "
                                   "'..'", kind="file name")
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            raise InvalidNameError(name, f"a part of it is longer than {MAX_COMPONENT_BYTES}"
                                   " bytes", kind="file name")
    return normal


def _shown(name: object) -> str:
    """What to call a rejected non-string name in a message (never fails)."""
    if has_type(name, str):
        return plain_str(name)
    return f"<{type(name).__name__}>"


def lookup_name(name: str) -> str:
    """The form a name is stored in (NFC), for looking names up; no other validation.

    A name that is not a string is a caller's mistake, not a missing file:
    it raises :class:`~kirin.errors.InvalidArgumentTypeError`.
    """
    if not has_type(name, str):
        raise InvalidArgumentTypeError(
            f"A file name must be a string, not {type(name).__name__}")
    return unicodedata.normalize("NFC", plain_str(name))


def safe_local_path(base: str | os.PathLike[str], name: str) -> Path:
    """``base/name``, refusing any name that would land outside ``base``."""
    clean = validate_file_name(name)
    root = Path(base).resolve()
    target = (root / clean).resolve()
    if target != root and root not in target.parents:
        raise InvalidNameError(name, f"it would be written outside {root}",
                               kind="file name")
    return target


def source_basename(source: str) -> str:
    """The name a path or URL is stored under when no name is given."""
    return source.rstrip("/").rsplit("/", 1)[-1] if "://" in source else Path(source).name
