"""Summaries: the state of a dataset at one commit, so that opening reads a constant amount.

A summary ``summaries/<SUMMARY_TOP - L>.json`` (see :mod:`kirin.layout`) holds
commit ``L``'s record and its whole file snapshot. Its name makes the newest
summary sort first, so one listing request finds it however long the history
is; with it, opening a dataset needs the summary, the few log entries after
``L`` and nothing older. Older commits are read only when asked for (see
:mod:`kirin.segments`).

A summary is derived data, never trusted over the log: its record must hash
to its own ``hash`` and its files to the record's ``tree``, and the record
must be the one the log holds at ``L`` (the journal compares them; the hash
chain then vouches for every older commit). Anything else and the summary is
ignored, falling back to an older one or to the checkpoints and the log.

A snapshot costs its number of files, so a summary is written at the end of
a checkpoint block only once the commits since the previous summary outnumber
its files by :data:`FILES_PER_COMMIT`: the summaries of a history never take
more than a few times the space of its records.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import layout
from ._json import canonical_json
from .digests import is_digest
from .records import check_record, tree_hash, unusable_unless_sound
from .store import Store

#: A summary is due once ``files <= FILES_PER_COMMIT * commits since the previous one``.
FILES_PER_COMMIT = 4
#: How many of the newest summaries opening tries before falling back to the checkpoints.
CANDIDATES = 3
#: Names asked for when looking for the newest summaries (stray names may be among them).
LISTED = 32
FORMAT = 1

Files = dict[str, tuple[str, int]]


@dataclass(frozen=True)
class Summary:
    """A verified summary: commit ``last``'s record and its snapshot (``files``)."""

    last: int
    record: dict[str, Any]
    files: Files


def is_due(files: int, last: int, previous: int) -> bool:
    """Whether a summary at ``last`` is worth its ``files`` entries, the previous one at
    ``previous`` (-1: none known)."""
    return files <= FILES_PER_COMMIT * (last - previous)


def encode_summary(last: int, record_text: str, files: Mapping[str, tuple[str, int]]) -> bytes:
    """The stored form: canonical JSON of ``{"files", "kirin", "last", "record"}`` and a newline.

    ``record_text`` is the record's canonical JSON, as its log entry holds it.
    """
    listed = canonical_json([[name, *files[name]] for name in sorted(files)])
    return f'{{"files":{listed},"kirin":{FORMAT},"last":{last},"record":{record_text}}}\n'.encode()


def read_summary(data: bytes, path: str, last: int) -> Summary:
    """The verified summary of commits up to ``last``; CorruptObjectError saying why it
    cannot be trusted. The one reader of summaries: opening, ``verify`` and ``gc`` use it."""
    with unusable_unless_sound("Summary", path) as bad:
        body = json.loads(data)
        if not isinstance(body, dict) or body.get("kirin") != FORMAT or set(body) != {
                "files", "kirin", "last", "record"}:
            raise bad("not a summary of format 1")
        if body["last"] != last or type(body["last"]) is not int:
            raise bad(f"it does not end at commit #{last}, as its name says")
        record = check_record(body["record"], where=f"{path}[record]", seq=last)
        files = _files(body["files"], bad)
        if tree_hash(files) != record["tree"]:
            raise bad(f"its files do not match commit #{last}'s tree hash")
        return Summary(last, record, files)


def _files(listed: Any, bad: Any) -> Files:
    if not isinstance(listed, list):
        raise bad("its files are not a list")
    files: Files = {}
    for entry in listed:
        if (not isinstance(entry, list) or len(entry) != 3 or type(entry[0]) is not str
                or type(entry[1]) is not str or not is_digest(entry[1])
                or type(entry[2]) is not int or entry[2] < 0 or entry[0] in files):
            raise bad(f"a file entry is not [name, sha256, size]: {str(entry)[:80]}")
        files[entry[0]] = (entry[1], entry[2])
    return files


def newest(store: Store, dataset: str) -> list[int]:
    """The last commits of the newest summaries (newest first), from one listing request.

    On S3 that is the start of a listing (``StartAfter`` nothing): the newest
    ``LISTED`` names, whatever the number of summaries.
    """
    folder = store.path(layout.summaries(dataset))
    lasts = (layout.summary_last(name)
             for name in store.names_after(folder, "", first=LISTED))
    return [last for last in lasts if last is not None and last >= 0][:CANDIDATES]


def every(store: Store, dataset: str) -> list[int]:
    """The last commits of every summary stored, oldest first (a full listing)."""
    folder = store.path(layout.summaries(dataset))
    lasts = (layout.summary_last(name) for name in store.listdir(folder))
    return sorted(last for last in lasts if last is not None and last >= 0)
