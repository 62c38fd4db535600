"""Reading older commits backwards, on demand: from checkpoints where they agree, else the log.

A history opened from a summary (see :mod:`kirin.summaries`) holds only the
newest commits. When older ones are asked for (a full ``history()``,
``find_commits``, an old hash prefix, a policy judging the whole history),
:class:`Segments` reads them backwards from a commit whose hash is already
trusted: the records ending at commit ``end`` must end in the hash that
commit ``end + 1`` names as its parent, and chain among themselves. That one
rule makes a checkpoint safe to take whole (a damaged or forged one fails it
and the log entries of its block are read instead) and turns a log entry
missing below a known commit into a hole, never a shorter history.

One segment (one checkpoint, one request) is read when a few older commits
are wanted; a bulk read lists the checkpoints once and fetches them all,
``BATCH`` at a time, concurrently.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import layout
from .checkpoints import Split, checkpoint_records, verify_parts
from .errors import CorruptObjectError
from .history import chain_to
from .logs import EntryLog
from .records import decode_record
from .store import Store

#: A record and its canonical JSON when that proved its hash (else ``None``).
Loaded = list[tuple[dict[str, Any], str | None]]
#: Objects read at once in a bulk read (each a request on an object store).
BATCH = 64


class Segments:
    """The older commits of one dataset, read backwards from a trusted hash."""

    def __init__(self, store: Store, dataset: str, log: EntryLog, block: int) -> None:
        self.store = store
        self.dataset = dataset
        self.log = log
        self.block = block  # commits per checkpoint, for a log read where none is usable
        self._seed: tuple[str, Split] | None = None

    def seed(self, path: str, split: Split) -> None:
        """Records of checkpoint ``path`` already read but not checked (opening read the
        block and checked only its newest): the first piece :meth:`older` gives, checked
        then, if it asks for them."""
        self._seed = (path, split)

    def _seeded(self, end: int, expected: str) -> Loaded | None:
        """The seeded records up to ``end``, checked to chain to ``expected``; else the
        same commits from the log (the seed was damaged); ``None`` without a seed for
        ``end``."""
        if self._seed is None:
            return None
        (path, split), self._seed = self._seed, None
        first, parts = split
        if not first <= end < first + len(parts):
            return None
        try:
            records = verify_parts(split, path, upto=end)
        except CorruptObjectError:
            records = []
        if chain_to(records, first, end, expected):
            return records
        return self._from_log(first, end, expected)

    def checkpoint_path(self, last: int) -> str:
        return self.store.path(layout.checkpoint(self.dataset, last))

    def older(self, end: int, expected: str, down_to: int) -> Iterator[Loaded]:
        """Records ending at commit ``end`` (which is ``expected``), in pieces going back.

        Each piece is commits ``first`` to ``end`` in order; the next piece
        ends just before it. ``down_to`` is the oldest commit wanted: more
        than a block away, every checkpoint down to it is listed and read,
        ``BATCH`` at a time (see :meth:`_bulk`); otherwise one piece is read.
        Pieces are made as they are consumed, so memory holds one batch.
        """
        seeded = self._seeded(end, expected)
        if seeded is not None:
            yield seeded
            first = seeded[0][0]
            if first["seq"] <= down_to or first["seq"] == 0:
                return
            end, expected = first["seq"] - 1, first["parent"]
        if down_to < end - self.block:
            yield from self._bulk(end, expected, down_to)
            return
        path = self.checkpoint_path(end)
        records = checkpoint_records(self.store.read(path), path, end)
        if records is not None and chain_to(records, records[0][0]["seq"], end, expected):
            yield records
        else:
            yield self._from_log(max(0, end - self.block + 1), end, expected)

    def _bulk(self, end: int, expected: str, down_to: int) -> Iterator[Loaded]:
        folder = self.store.path(layout.checkpoints(self.dataset))
        lasts = sorted((n for n in map(layout.entry_seq, self.store.listdir(folder))
                        if n is not None and down_to <= n <= end), reverse=True)
        found: dict[int, bytes | None] = {}
        while end >= down_to:
            if lasts and not any(n <= end for n in found):
                # the next batch, newest first (what is left in ``found`` is above ``end``)
                chunk, lasts = lasts[:BATCH], lasts[BATCH:]
                read = self.store.read_many([self.checkpoint_path(n) for n in chunk])
                found = {n: read.get(self.checkpoint_path(n)) for n in chunk}
            records = checkpoint_records(found.pop(end, None), self.checkpoint_path(end), end)
            if records is None or not chain_to(records, records[0][0]["seq"], end, expected):
                lower = max([n for n in [*found, *lasts[:1]] if n < end], default=-1)
                records = self._from_log(max(lower + 1, end - 16 * self.block), end, expected)
            yield records
            first = records[0][0]
            if first["seq"] == 0:
                return
            end, expected = first["seq"] - 1, first["parent"]

    def _from_log(self, first: int, end: int, expected: str) -> Loaded:
        """Log entries ``first`` to ``end``, which must exist (a commit after them does)."""
        seqs = list(range(first, end + 1))
        out: Loaded = []
        for at in range(0, len(seqs), BATCH):
            chunk = seqs[at:at + BATCH]
            read = self.store.read_many([self.log.path(seq) for seq in chunk])
            for seq in chunk:
                path = self.log.path(seq)
                data = read.get(path)
                if data is None:
                    raise self.log.hole(seq, seq).error()
                out.append((decode_record(data, where=path, seq=seq), None))
        if not chain_to(out, first, end, expected):
            path = self.log.path(end)
            raise CorruptObjectError(
                f"Commit records #{first}-#{end} ({path} and before) do not chain to the "
                f"commit after them ({expected[:12]}): the history is broken", path=path)
        return out
