"""The lineage index: which commits of a dataset link to which commits, one object per block.

``kirin used-by`` must read the links of every commit of every dataset of a
root. Reading every record (verified, as opening a history does) costs
seconds at 50 datasets of 1,000 commits; the links themselves are a few
bytes. So the commit that completes a block of 100 (the one that writes its
checkpoint) also writes ``lineage/<last seq>.json``::

    {"first": F, "head": H, "kirin": 1, "last": L, "parent": P,
     "links": "<seq>\\t<commit hash>\\t<role>\\t<dataset>\\t<linked hash>[\\t<root>]\\n..."}

one line per link of every commit of the block that carries links (one
string, not a list of objects: a reader parses a root's worth of them in
milliseconds). ``parent`` is the hash of the record before the block
(``null`` for the first), ``head`` that of its last record. Written
create-if-absent from records the writer verified; every earlier block's
index that is missing is written too (its writer died, or wrote before
lineage existed).

An index is derived, never trusted over the log: a reader takes the
indexes of a dataset only if every block's is present and they chain (each
``parent`` the ``head`` before it, then the log entries after the last one,
each verified, chaining to its ``head``). Otherwise the records are read
instead: slower, same answer. A commit an index names is read from its own
log entry and checked against the hash the index gives before it is
reported. ``kirin verify`` rebuilds every index from the records and reports
one that differs (kind ``lineage-index``): an index missing a line is the
one thing a reader cannot notice by itself.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, NamedTuple

from . import journal, layout
from ._json import canonical_json
from .digests import is_digest
from .errors import CorruptObjectError
from .links import Linking, linking_of
from .records import decode_record

if TYPE_CHECKING:
    from .history import History
    from .store import Store

log = logging.getLogger("kirin")
INDEX_VERSION = 1
#: An S3 listing after the last index stops at one page; past that, read the records.
_MAX_TAIL = 1000
#: Earlier indexes one commit writes at most (a long history from before lineage is
#: indexed over a few block ends, none of them a long commit).
_BACKFILL = 100


class Row(NamedTuple):
    """One link of one commit, as an index line holds it."""

    seq: int
    hash: str
    role: str
    dataset: str
    commit: str
    root: str

    def line(self) -> str:
        root = f"\t{self.root}" if self.root else ""
        return f"{self.seq}\t{self.hash}\t{self.role}\t{self.dataset}\t{self.commit}{root}"


def rows_of(entry: Linking) -> list[Row]:
    return [Row(entry.seq, entry.hash, link.role, link.dataset, link.commit, link.root)
            for link in entry.lineage.inputs]


def encode_index(first: int, last: int, parent: str | None, head: str,
                 rows: list[Row]) -> bytes:
    body = {"kirin": INDEX_VERSION, "first": first, "last": last, "parent": parent,
            "head": head, "links": "".join(row.line() + "\n" for row in rows)}
    return (canonical_json(body) + "\n").encode("utf-8")


def decode_index(data: bytes, *, where: str, first: int, last: int
                 ) -> tuple[str | None, str, list[str]]:
    """(parent, head, lines) of a stored index; CorruptObjectError if it is not sound.

    The lines are split, not parsed: a reader keys every line by what it
    links to (:func:`line_target`) and parses only those it reports
    (:func:`parse_line`), each then checked against its commit's record.
    """
    def bad(reason: str) -> CorruptObjectError:
        return CorruptObjectError(f"Lineage index {where} is unusable ({reason})", path=where)

    try:
        body = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise bad(f"not JSON: {exc}") from exc
    if not (isinstance(body, dict) and set(body) == {"kirin", "first", "last", "parent",
                                                      "head", "links"}
            and body["kirin"] == INDEX_VERSION and body["first"] == first
            and body["last"] == last and isinstance(body["links"], str)):
        raise bad(f"not an index of commits #{first}-#{last}")
    parent, head = body["parent"], body["head"]
    if not (is_digest(head) and (parent is None if first == 0 else is_digest(parent))):
        raise bad("'parent' and 'head' must be commit hashes")
    text: str = body["links"]
    if text and not text.endswith("\n"):
        raise bad("the links do not end with a newline")
    return parent, head, text.split("\n")[:-1]


def line_target(line: str) -> tuple[str, str, str] | None:
    """``(root or "", dataset, commit)`` an index line links to (``None``: not a line)."""
    parts = line.split("\t")
    if len(parts) == 5:
        return "", parts[3], parts[4]
    if len(parts) == 6:
        return parts[5], parts[3], parts[4]
    return None


def parse_line(line: str) -> Row:
    """The :class:`Row` of an index line; ``ValueError`` if it is not one Kirin writes."""
    parts = line.split("\t")
    if not (5 <= len(parts) <= 6 and parts[0].isdigit() and is_digest(parts[1])
            and is_digest(parts[4])):
        raise ValueError(f"{line[:100]!r} is not 'seq, hash, role, dataset, commit[, root]'")
    return Row(int(parts[0]), parts[1], parts[2], parts[3], parts[4],
               parts[5] if len(parts) == 6 else "")


def block_rows(history: History, first: int, last: int) -> list[Row]:
    """The links of commits ``first``..``last`` of ``history`` (from its verified rows)."""
    found = []
    for seq in range(first, last + 1):
        if history.lineage_at(seq) is not None:
            entry = linking_of(history.record(seq))
            if entry is not None:
                found += rows_of(entry)
    return found


def build_index(history: History, last: int) -> bytes:
    """The index of the block ending at ``last``, from the verified history."""
    first = last - journal.CHECKPOINT_EVERY + 1
    parent = history.commit(first).parent_hash
    return encode_index(first, last, parent, history.commit(last).hash,
                        block_rows(history, first, last))


def write_due(store: Store, dataset: str, history: History) -> None:
    """After the commit that completes a block: its index, and every earlier one missing.

    Earlier ones are missing when their writer died, or when the registry was
    written before lineage existed: its next block ends index the history
    (at most 100 blocks each; one listing finds them), so ``used-by`` reads
    indexes from then on. Best effort, like checkpoints: the index only speeds up ``used-by``.
    """
    count, block = len(history), journal.CHECKPOINT_EVERY
    if count == 0 or count % block:
        return
    folder = store.path(layout.lineage_indexes(dataset))
    try:
        present = set(store.listdir(folder))
    except OSError as exc:
        log.warning("Could not list lineage indexes %s: %s", folder, exc)
        return
    missing = [last for last in range(block - 1, count, block)
               if layout.entry_name(last) not in present]
    for last in [*missing[-1:], *missing[:-1][:_BACKFILL]]:  # this block's first
        path = store.path(layout.lineage_index(dataset, last))
        try:
            store.create(path, build_index(history, last))  # False: a racing writer did
        except (OSError, CorruptObjectError) as exc:
            log.warning("Could not write lineage index %s: %s", path, exc)
            return


def all_lines(history: History) -> list[str]:
    """Every link of ``history`` (opened, refreshed) as index lines, from its records: what
    :func:`scan_dataset` gives when the indexes cannot be used."""
    return [row.line() for row in block_rows(history, 0, len(history) - 1)]


def scan_dataset(store: Store, dataset: str) -> list[str] | None:
    """Every link of ``dataset`` as index lines, from its indexes and the log after them.

    Reads no checkpoint, summary or snapshot: the indexes of blocks
    ``0..L`` (every one present, each chaining to the one before), log entry
    ``L`` (it must be the last index's ``head``: indexes left from a deleted
    dataset of the same name are not its history) and the log entries after
    ``L`` (two probes, as opening a history makes; a listing if there are
    any), each verified and chaining to it.
    ``None`` when that is not possible (no index yet, one missing or
    unusable, a hole): the caller then opens the dataset and reads its records.
    """
    folder = store.path(layout.lineage_indexes(dataset))
    ends = sorted(seq for seq in map(layout.entry_seq, store.listdir(folder))
                  if seq is not None)
    block = journal.CHECKPOINT_EVERY  # the blocks of the checkpoints
    if not ends or ends != list(range(block - 1, ends[-1] + 1, block)):
        return None
    last = ends[-1]
    log_folder = store.path(layout.commit_log(dataset))
    after: list[str] = []
    if any(store.exists(store.path(layout.log_entry(dataset, last + n))) for n in (1, 2)):
        after = [n for n in store.names_after(log_folder, layout.entry_name(last))
                 if layout.entry_seq(n) is not None]
        if len(after) >= _MAX_TAIL:
            return None
    paths = {end: store.path(layout.lineage_index(dataset, end)) for end in ends}
    tail_paths = [f"{log_folder}/{name}" for name in after]
    anchor = store.path(layout.log_entry(dataset, last))
    data = store.read_many([*paths.values(), anchor, *tail_paths])
    found: list[str] = []
    expected: str | None = None
    try:
        for end in ends:
            raw = data.get(paths[end])
            if raw is None:
                return None
            parent, head, lines = decode_index(raw, where=paths[end],
                                               first=end - block + 1, last=end)
            if parent != expected:
                return None
            expected = head
            found += lines
        stored = data.get(anchor)  # the log itself ends the indexed blocks where they say
        if stored is None or decode_record(stored, where=anchor, seq=last)["hash"] != expected:
            return None
        for seq, path in enumerate(tail_paths, start=last + 1):
            raw = data.get(path)
            if raw is None or layout.entry_seq(path.rsplit("/", 1)[-1]) != seq:
                return None  # gone meanwhile, or a hole: the full reader names it
            record = decode_record(raw, where=path, seq=seq)
            if record["parent"] != expected:
                return None
            expected = record["hash"]
            entry = linking_of(record)
            if entry is not None:
                found += [row.line() for row in rows_of(entry)]
    except CorruptObjectError as exc:
        log.warning("%s; reading the records of %r instead", exc, dataset)
        return None
    return found


def read_linking(store: Store, dataset: str, row: Row) -> Linking | None:
    """The commit ``row`` names, read from its log entry and checked against the row's hash;
    ``None`` if that entry cannot be read (the caller then reads the history)."""
    path = store.path(layout.log_entry(dataset, row.seq))
    try:
        data = store.read(path)
        record = decode_record(data, where=path, seq=row.seq) if data is not None else None
    except CorruptObjectError:
        return None
    if record is None or record["hash"] != row.hash:
        return None
    return linking_of(record)


def index_problems(store: Store, dataset: str, history: History) -> list[tuple[str, str]]:
    """(path, what is wrong) for each stored index that differs from the records (verify)."""
    problems = []
    folder = store.path(layout.lineage_indexes(dataset))
    for name in store.listdir(folder):
        last = layout.entry_seq(name)
        path = f"{folder}/{name}"
        if last is None or (last + 1) % journal.CHECKPOINT_EVERY or last >= len(history):
            problems.append((path, "not the index of a complete block of this history"))
            continue
        try:
            if store.read(path) != build_index(history, last):
                problems.append((path, "differs from the records it indexes"))
        except CorruptObjectError as exc:
            problems.append((path, str(exc)))
    return problems
