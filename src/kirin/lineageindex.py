"""The lineage index: which commits of a dataset carry links, one object per block.

``kirin used-by`` must read the links of every commit of every dataset of a
root. Reading every record (verified, as opening a history does) costs
seconds at 50 datasets of 1,000 commits; the links themselves are a few
bytes. So the commit that completes a block of 100 (the one that writes its
checkpoint) also writes ``lineage/<last seq>.json``: the commits of that block
that carry links, with what a report shows of them. Written create-if-absent
from records the writer verified; the block before is written too if it is
missing (its writer may have died), as for checkpoints.

An index is a derived object, never trusted over the log: each one names the
hashes of the first record before its block (``parent``) and of its last
record (``head``), and a reader takes the indexes only if they chain from
the oldest commit it holds down to the first commit. Any index missing,
unreadable or not chaining, and the dataset's records are read instead (slower,
same answer). ``kirin verify`` rebuilds every index from the records and
reports one that differs (kind ``lineage-index``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import layout
from ._json import canonical_json
from .digests import is_digest
from .errors import CorruptObjectError
from .journal import CHECKPOINT_EVERY
from .links import Lineage, Linking, check_lineage_record, linking_of

if TYPE_CHECKING:
    from .history import History
    from .store import Store

log = logging.getLogger("kirin")
INDEX_VERSION = 1


def encode_index(first: int, last: int, parent: str | None, head: str,
                 linkings: Sequence[Linking]) -> bytes:
    body = {"kirin": INDEX_VERSION, "first": first, "last": last, "parent": parent,
            "head": head, "links": [entry.to_entry() for entry in linkings]}
    return (canonical_json(body) + "\n").encode("utf-8")


def decode_index(data: bytes, *, where: str, first: int, last: int
                 ) -> tuple[str | None, str, list[Linking]]:
    """(parent, head, linkings) of a stored index; CorruptObjectError if it is not sound."""
    def bad(reason: str) -> CorruptObjectError:
        return CorruptObjectError(f"Lineage index {where} is unusable ({reason})", path=where)

    try:
        body = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise bad(f"not JSON: {exc}") from exc
    if not (isinstance(body, dict) and set(body) == {"kirin", "first", "last", "parent",
                                                      "head", "links"}
            and body["kirin"] == INDEX_VERSION and body["first"] == first
            and body["last"] == last and isinstance(body["links"], list)):
        raise bad(f"not an index of commits #{first}-#{last}")
    parent, head = body["parent"], body["head"]
    if not (is_digest(head) and (parent is None if first == 0 else is_digest(parent))):
        raise bad("'parent' and 'head' must be commit hashes")
    found = []
    for entry in body["links"]:
        if not (isinstance(entry, list) and len(entry) == 7):
            raise bad("each entry is [seq, hash, message, tags, timestamp, author, lineage]")
        seq, digest, message, tags, timestamp, author, lineage = entry
        if not (type(seq) is int and first <= seq <= last and is_digest(digest)
                and isinstance(message, str) and isinstance(timestamp, str)
                and isinstance(author, str) and isinstance(tags, list)
                and all(isinstance(t, str) for t in tags)):
            raise bad(f"entry {seq!r} is malformed")
        check_lineage_record(lineage, bad)
        found.append(Linking(seq, digest, message, tuple(tags), timestamp, author,
                             Lineage.from_record(lineage)))
    if [e.seq for e in found] != sorted({e.seq for e in found}):
        raise bad("entries are not in order")
    return parent, head, found


def block_linkings(history: History, first: int, last: int) -> list[Linking]:
    """The commits ``first``..``last`` of ``history`` that carry links (from verified rows)."""
    found = []
    for seq in range(first, last + 1):
        if history.lineage_at(seq) is not None:
            entry = linking_of(history.record(seq))
            if entry is not None:
                found.append(entry)
    return found


def build_index(history: History, last: int) -> bytes:
    """The index of the block ending at ``last``, from the verified history."""
    first = last - CHECKPOINT_EVERY + 1
    parent = history.commit(first).parent_hash
    return encode_index(first, last, parent, history.commit(last).hash,
                        block_linkings(history, first, last))


def write_due(store: Store, dataset: str, history: History) -> None:
    """After the commit that completes a block: its index (and the previous one's, if missing).

    Best effort, like checkpoints: the index only speeds up ``used-by``.
    """
    count = len(history)
    if count == 0 or count % CHECKPOINT_EVERY:
        return
    for last in (count - 1, count - 1 - CHECKPOINT_EVERY):
        if last < 0:
            continue
        path = store.path(layout.lineage_index(dataset, last))
        try:
            if not store.exists(path):
                store.create(path, build_index(history, last))
        except (OSError, CorruptObjectError) as exc:
            log.warning("Could not write lineage index %s: %s", path, exc)


def linkings(store: Store, dataset: str, history: History) -> list[Linking]:
    """Every commit of ``history`` (opened, refreshed) that carries links, oldest first.

    The commits held in memory are read from their rows; the blocks below
    them from their indexes when every one is present and they chain, else
    from the records.
    """
    base = history.loaded_from
    tail = block_linkings(history, base, len(history) - 1) if len(history) else []
    if base == 0:
        return tail
    indexed = _from_indexes(store, dataset, history, base)
    if indexed is None:
        return block_linkings(history, 0, len(history) - 1)
    return [*indexed, *tail]


def _from_indexes(store: Store, dataset: str, history: History, base: int
                  ) -> list[Linking] | None:
    if base % CHECKPOINT_EVERY:
        return None
    ends = list(range(base - 1, -1, -CHECKPOINT_EVERY))
    present = set(store.listdir(store.path(layout.lineage_indexes(dataset))))
    if any(layout.entry_name(end) not in present for end in ends):
        return None
    paths = {end: store.path(layout.lineage_index(dataset, end)) for end in ends}
    data = store.read_many(list(paths.values()))
    expected: str | None = history.commit(base).parent_hash
    blocks: list[list[Linking]] = []
    try:
        for end in ends:
            raw = data.get(paths[end])
            if raw is None:
                return None
            parent, head, found = decode_index(raw, where=paths[end],
                                               first=end - CHECKPOINT_EVERY + 1, last=end)
            if head != expected:
                raise CorruptObjectError(f"Lineage index {paths[end]} does not chain to the "
                                         "history", path=paths[end])
            expected = parent
            blocks.append(found)
    except CorruptObjectError as exc:
        log.warning("%s; reading the records of %r instead", exc, dataset)
        return None
    return [entry for block in reversed(blocks) for entry in block]


def index_problems(store: Store, dataset: str, history: History) -> list[tuple[str, str]]:
    """(path, what is wrong) for each stored index that differs from the records (verify)."""
    problems = []
    folder = store.path(layout.lineage_indexes(dataset))
    for name in store.listdir(folder):
        last = layout.entry_seq(name)
        path = f"{folder}/{name}"
        if last is None or (last + 1) % CHECKPOINT_EVERY or last >= len(history):
            problems.append((path, "not the index of a complete block of this history"))
            continue
        try:
            if store.read(path) != build_index(history, last):
                problems.append((path, "differs from the records it indexes"))
        except CorruptObjectError as exc:
            problems.append((path, str(exc)))
    return problems


