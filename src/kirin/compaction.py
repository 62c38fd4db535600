"""Segments: the records of many checkpoint blocks in one write-once object, and their writer.

A full ``history()`` at 100,000 commits read 1,000 checkpoints: on an object
store, 1,000 requests, whose round trips (not the bytes) were most of its
time. A segment ``segments/<last>.jsonl`` repeats :data:`BLOCKS` checkpoint
blocks (10,000 commits) in one object, so reading far back costs one request
per 10,000 commits (:mod:`kirin.segments` reads them).

It is JSON Lines: a header line ``{"first":F,"kirin":1,"last":L}``, then
records ``F`` to ``L``, one per line, each byte for byte its log entry (the
record's canonical JSON; canonical JSON holds no raw newline). Lines, not one
JSON document, so that a reader finds each record without parsing the others
(it verifies them newest first, a block at a time, as it hands them out) and
``verify`` compares them with the log entries as bytes.

Derived data, like checkpoints: every record read from a segment is checked
like a log entry (its hash, its ``seq``) and the records must chain to the
commit above them; a segment that fails is ignored in favour of the
checkpoints and the log. Written best effort by the commit that completes a
segment (and, at any block end, the newest segment missing: a writer that
died, or a registry written before segments existed, is compacted later);
two writers can only create the same bytes, from records they verified.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from . import layout
from ._json import canonical_json
from .checkpoints import Loaded
from .errors import CorruptObjectError
from .history import History, Older, chain_to
from .records import check_stored_record, decode_record, unusable_unless_sound
from .store import Store

log = logging.getLogger("kirin")

#: Checkpoint blocks per segment: 100 blocks of 100 commits, a segment per 10,000 commits.
BLOCKS = 100
FORMAT = 1


def span(block: int) -> int:
    """Commits per segment, with checkpoint blocks of ``block`` commits."""
    return block * BLOCKS


def encode_segment(first: int, last: int, record_texts: Sequence[str]) -> bytes:
    """The stored form of records ``first`` to ``last``, given their canonical JSON (as
    their log entries hold it, without the newline)."""
    if len(record_texts) != last - first + 1:
        raise ValueError(f"a segment of commits #{first}-#{last} needs "
                         f"{last - first + 1} records, not {len(record_texts)}")
    head = f'{{"first":{first},"kirin":{FORMAT},"last":{last}}}\n'
    return (head + "".join(text + "\n" for text in record_texts)).encode("utf-8")


@dataclass(frozen=True)
class Segment:
    """A segment as stored, its records not yet checked (see :meth:`records`): record
    ``first + i`` is ``data[starts[i]:starts[i + 1] - 1]``.

    Offsets, not a list of lines: a reader holds one segment's bytes, not
    twice as many (it keeps up to a few segments in memory at once).
    """

    path: str
    first: int
    last: int
    data: bytes
    starts: list[int]

    def records(self, lo: int, hi: int) -> Loaded:
        """Records ``lo`` to ``hi``, each checked like a log entry (with its canonical JSON
        when that proved its hash); CorruptObjectError naming the segment and the record.

        The chain is the caller's to check (:func:`kirin.history.chain_to`).
        """
        out: Loaded = []
        data, starts = self.data, self.starts
        with unusable_unless_sound("Segment", self.path):
            for i in range(lo - self.first, hi - self.first + 1):
                text = data[starts[i]:starts[i + 1] - 1].decode("utf-8")
                record = json.loads(text)
                seq = self.first + i
                out.append((record, check_stored_record(record, text,
                                                        where=f"{self.path}[{seq}]", seq=seq)))
        return out

    def line_is(self, seq: int, entry: bytes) -> bool:
        """Whether record ``seq`` is stored byte for byte as log entry ``entry`` (a record's
        line ends with a newline, as a log entry does)."""
        i = seq - self.first
        return memoryview(self.data)[self.starts[i]:self.starts[i + 1]] == entry


def split_segment(data: bytes, path: str, last: int) -> Segment:
    """Segment ``last`` cut into records (not yet checked); CorruptObjectError if it is not
    a whole segment ending at ``last``."""
    with unusable_unless_sound("Segment", path) as bad:
        if not data.endswith(b"\n"):
            raise bad("it does not end with a newline: it may be truncated")
        at = data.index(b"\n") + 1
        head = json.loads(data[:at])
        if not isinstance(head, dict) or set(head) != {"first", "kirin", "last"} or (
                head["kirin"] != FORMAT):
            raise bad("not a segment of format 1")
        first = head["first"]
        if (type(first) is not int or type(head["last"]) is not int or head["last"] != last
                or not 0 <= first <= last):
            raise bad(f"it does not hold commits #{first}-#{last}, as its name says")
        held = data.count(b"\n") - 1
        if held != last - first + 1:
            raise bad(f"it holds {held} records, not the {last - first + 1} of commits "
                      f"#{first}-#{last}")
        starts = [at]
        find = data.find
        for _ in range(last - first + 1):
            at = find(b"\n", at) + 1
            starts.append(at)
        return Segment(path, first, last, data, starts)


def read_segment(data: bytes, path: str, last: int) -> Segment:
    """:func:`split_segment`, then every record checked and chained (``verify`` and tests).

    CorruptObjectError saying why it cannot be trusted.
    """
    segment = split_segment(data, path, last)
    records = segment.records(segment.first, last)
    if not chain_to(records, segment.first, last, records[-1][0]["hash"]):
        raise CorruptObjectError(f"Segment {path} is unusable (its records do not chain)",
                                 path=path)
    return segment


def stored(store: Store, dataset: str) -> list[int]:
    """The last commits of the segments stored, oldest first (one listing)."""
    folder = store.path(layout.segments(dataset))
    return sorted(n for n in map(layout.segment_last, store.listdir(folder)) if n is not None)


def proven_end(store: Store, dataset: str, ends: list[int], known_end: int) -> int:
    """``known_end``, or the last commit of the newest sound segment past it (``ends``: those
    stored, oldest first): like a sound checkpoint, it proves the log once held its
    commits, so entries missing below it are a hole (``verify`` and ``gc``). Normally a
    checkpoint ends where the newest segment does, and nothing is read."""
    for last in reversed(ends):
        if last <= known_end:
            break
        path = store.path(layout.segment(dataset, last))
        try:
            read_segment(store.read(path) or b"", path, last)
        except CorruptObjectError:
            continue  # verify reports it
        return last
    return known_end


def write_due(store: Store, dataset: str, history: History, older: Older, block: int) -> None:
    """After a commit that completes a block: the segment it completes, and the newest one
    missing before it.

    One listing finds the missing ones; at most one earlier segment per block
    end, so a writer that died (or a registry written before segments
    existed, compacted newest first) costs a later commit one segment's reads,
    never the whole history. Records this writer does not hold are read from
    the checkpoints (:class:`~kirin.segments.Segments`) rather than left to a
    later writer: a commit that completes a segment seldom holds the 10,000
    records (it opened from a summary), and reading them once, concurrently,
    costs about 100 requests every 10,000 commits. Best effort: a segment only
    speeds up reading, so a failure must not fail the commit that already
    succeeded.
    """
    count, size = len(history), span(block)
    if count < size or count % block:
        return
    try:
        present = set(stored(store, dataset))
    except (OSError, CorruptObjectError) as exc:
        log.warning("Could not list the segments of dataset %r: %s", dataset, exc)
        return
    missing = [last for last in range(size - 1, count, size) if last not in present]
    due = [last for last in missing if last == count - 1]  # this commit completes it
    due += [last for last in missing if last != count - 1][-1:]
    for last in due:
        path = store.path(layout.segment(dataset, last))
        try:
            texts = _texts(store, dataset, history, older, last - size + 1, last)
            store.create(path, encode_segment(last - size + 1, last, texts))
        except (OSError, CorruptObjectError) as exc:  # False above: a racing writer did it
            log.warning("Could not write segment %s: %s", path, exc)


def _texts(store: Store, dataset: str, history: History, older: Older, first: int,
           last: int) -> list[str]:
    """The canonical JSON of records ``first`` to ``last``, verified: those the history
    holds, the rest read back (not kept in the history: the writer's memory stays flat).

    What is read must chain to a hash already trusted: the held record above
    it, or, for a segment wholly below what is held, log entry ``last``
    itself (the log is what a segment repeats).
    """
    base = history.loaded_from
    held = [history.record_text(seq) for seq in range(max(first, base), last + 1)]
    if first >= base:
        return held
    if last >= base:
        end, expected = base - 1, str(history.record(base)["parent"])
    else:
        path = store.path(layout.log_entry(dataset, last))
        data = store.read(path)
        if data is None:
            raise CorruptObjectError(f"Log entry {path} is missing: segment of commits "
                                     f"#{first}-#{last} not written", path=path)
        end, expected = last, str(decode_record(data, where=path, seq=last)["hash"])
    pieces: list[list[str]] = []
    for piece in older(end, expected, first):
        top = piece[0][0]["seq"]
        if not chain_to(piece, top, end, expected):
            raise CorruptObjectError(f"Commits #{top}-#{end} read for a segment do not chain "
                                     "to the commit after them", path=f"#{end}")
        pieces.append([text if text is not None else canonical_json(record)
                       for record, text in piece if record["seq"] >= first])
        if top <= first:
            break
        end, expected = top - 1, piece[0][0]["parent"]
    return [text for piece in reversed(pieces) for text in piece] + held
