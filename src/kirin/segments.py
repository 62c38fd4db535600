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

One checkpoint (one request) is read when a few older commits are wanted; a
bulk read takes segments (:mod:`kirin.compaction`: 100 blocks in one object)
where at least half of one is wanted, fetched on threads a few at a time, and
checkpoints elsewhere, listed once and fetched ``BATCH`` at a time,
concurrently. Whatever the source, the same rule decides what is taken.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from . import compaction, layout
from .checkpoints import Loaded, Split, checkpoint_records, verify_parts
from .compaction import Segment
from .errors import CorruptObjectError
from .history import chain_to
from .logs import EntryLog
from .records import decode_record
from .store import Store

#: Objects read at once in a bulk read (each a request on an object store).
BATCH = 64
#: Segments in flight in a bulk read, on threads: the one being checked and the next (each
#: 5-6 MB at 10,000 commits; see :mod:`kirin.compaction`). More measured no faster on S3
#: (checking a segment's records takes longer than fetching the next) and cost memory.
AHEAD = 2

log = logging.getLogger("kirin")


class Segments:
    """The older commits of one dataset, read backwards from a trusted hash."""

    def __init__(self, store: Store, dataset: str, log: EntryLog, block: int) -> None:
        self.store = store
        self.dataset = dataset
        self.log = log
        self.block = block  # commits per checkpoint, for a log read where none is usable
        self._seed: tuple[str, Split] | None = None
        self._segment_ends: list[int] | None = None  # the segments stored, newest first

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
        ends just before it. The records opening read but did not check come
        first (see :meth:`seed`). ``down_to`` is the oldest commit wanted: more
        than a block away, everything down to it is read in bulk, from segments,
        checkpoints or the log (see :meth:`_bulk`); otherwise one piece is read.
        Pieces are made as they are consumed, so memory holds a bounded amount.
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

    def segment_path(self, last: int) -> str:
        return self.store.path(layout.segment(self.dataset, last))

    def _bulk(self, end: int, expected: str, down_to: int) -> Iterator[Loaded]:
        """Every commit from ``end`` down to ``down_to``, newest first, a block per piece:
        from segments where at least half of one is wanted (one request for
        :data:`~kirin.compaction.BLOCKS` blocks), else from checkpoints, ``BATCH`` at a time,
        else from the log.

        On an object store segments are fetched on threads, the next while the current
        one is checked, its records a block at a time as they are handed out (memory holds
        two segments' bytes and one block of parsed records). A segment that fails
        (unreadable, a record not sound, a block that does not chain to the commit
        above it) is dropped where it failed: the rest of its commits come from the
        checkpoints and the log, and what it gave before was verified.
        """
        plan = self._plan(end, down_to)
        fetch = _Fetcher(self.store, [self.segment_path(last) for _, last in plan])
        checkpoints = _Checkpoints(self, down_to, end)
        segment: Segment | None = None
        try:
            while end >= down_to:
                if plan and end < plan[0][0]:  # done with it (or it failed)
                    plan.pop(0)
                    segment = None  # its bytes go before the next segment's are fetched
                    fetch.drop()
                    continue
                if plan and end <= plan[0][1]:
                    if segment is None:
                        segment = self._split(fetch.take(), plan[0][1])
                    records = self._from_segment(segment, end, expected)
                    if records is None:  # the rest of its commits come from checkpoints
                        plan[0] = (end + 1, plan[0][1])
                        continue
                else:
                    stop = plan[0][1] + 1 if plan else down_to
                    records = checkpoints.piece(end, expected, stop, plan)
                yield records
                first = records[0][0]
                if first["seq"] == 0:
                    return
                end, expected = first["seq"] - 1, first["parent"]
        finally:
            fetch.close()

    def _plan(self, end: int, down_to: int) -> list[tuple[int, int]]:
        """The segments worth reading for commits ``end`` down to ``down_to``, newest first,
        each as (first, last): stored (one listing, once per reader: only a segment written
        since is missed, and its commits are read from the checkpoints) and at least half
        wanted, so a cold lookup reads at most about twice what it needs."""
        if self._segment_ends is None:
            folder = self.store.path(layout.segments(self.dataset))
            self._segment_ends = sorted(
                (n for n in map(layout.segment_last, self.store.listdir(folder))
                 if n is not None), reverse=True)
        size = compaction.span(self.block)
        plan: list[tuple[int, int]] = []
        top = end
        for last in self._segment_ends:
            first = last - size + 1
            if top < down_to:
                break
            if first > top or first < 0:
                continue  # wholly above what is still wanted (or not a segment Kirin writes)
            if 2 * (min(top, last) - max(first, down_to) + 1) >= size:
                plan.append((first, last))
                top = first - 1
        return plan

    def _split(self, data: bytes | None, last: int) -> Segment | None:
        """The fetched segment ending at ``last``, cut into lines; ``None`` if missing or
        not a whole segment."""
        if data is None:
            return None
        try:
            return compaction.split_segment(data, self.segment_path(last), last)
        except CorruptObjectError as exc:
            log.warning("Ignoring %s; the checkpoints and the log are read instead", exc)
            return None

    def _from_segment(self, segment: Segment | None, end: int, expected: str
                      ) -> Loaded | None:
        """The block of ``segment`` ending at ``end``, checked and chaining to ``expected``;
        ``None`` if the segment cannot give it."""
        if segment is None or not segment.first <= end <= segment.last:
            return None
        start = max(segment.first, end - self.block + 1)
        try:
            records = segment.records(start, end)
        except CorruptObjectError as exc:
            log.warning("Ignoring %s; the checkpoints and the log are read instead", exc)
            return None
        if not chain_to(records, start, end, expected):
            log.warning("Ignoring segment %s from commit #%d down: it does not chain to the "
                        "commit after it; the checkpoints and the log are read instead",
                        segment.path, end)
            return None
        return records

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


class _Checkpoints:
    """The checkpoints of one bulk read: listed when first needed (not at all when
    segments give everything), fetched ``BATCH`` at a time, newest first, skipping those a
    planned segment holds (read only if it fails)."""

    def __init__(self, segments: Segments, down_to: int, end: int) -> None:
        self.segments = segments
        self.down_to = down_to
        self.end = end
        self.lasts: list[int] | None = None  # stored and not fetched yet, newest first
        self.found: dict[int, bytes | None] = {}

    def piece(self, end: int, expected: str, stop: int, plan: list[tuple[int, int]]
              ) -> Loaded:
        """The records ending at ``end`` (checked to chain to ``expected``): its checkpoint,
        else the log entries down to the next checkpoint stored (not below ``stop``)."""
        owner = self.segments
        if self.lasts is None:
            folder = owner.store.path(layout.checkpoints(owner.dataset))
            self.lasts = sorted((n for n in map(layout.entry_seq, owner.store.listdir(folder))
                                 if n is not None and self.down_to <= n <= self.end),
                                reverse=True)
        if end not in self.found and end in self.lasts:  # stored, not fetched yet
            chunk = [n for n in self.lasts if n <= end
                     and not any(first <= n <= last for first, last in plan)][:BATCH]
            taken = set(chunk)
            self.lasts = [n for n in self.lasts if n not in taken]
            read = owner.store.read_many([owner.checkpoint_path(n) for n in chunk])
            self.found.update((n, read.get(owner.checkpoint_path(n))) for n in chunk)
        path = owner.checkpoint_path(end)
        records = checkpoint_records(self.found.pop(end, None), path, end)
        if records is not None and chain_to(records, records[0][0]["seq"], end, expected):
            return records
        lower = max((n for n in [*self.found, *self.lasts] if n < end), default=-1)
        return owner._from_log(max(lower + 1, end - 16 * owner.block, stop), end, expected)


class _Fetcher:
    """Segments read in order: on an object store on threads, up to ``AHEAD`` at once; on
    local disk one at a time, when taken (a read there has no round trip to hide, and a
    segment read ahead is memory the peak of a full read pays for)."""

    def __init__(self, store: Store, paths: list[str]) -> None:
        self.store = store
        self.paths = paths
        self.ahead = 1 if store.is_local else AHEAD
        self.pool: ThreadPoolExecutor | None = None
        self.pending: deque[Future[bytes | None] | None] = deque()  # None: taken
        self.submitted = 0
        self._top_up()

    def _top_up(self) -> None:
        if self.store.is_local:
            return
        while len(self.pending) < self.ahead and self.submitted < len(self.paths):
            if self.pool is None:
                self.pool = ThreadPoolExecutor(self.ahead, thread_name_prefix="kirin-segments")
            self.pending.append(self.pool.submit(self.store.read, self.paths[self.submitted]))
            self.submitted += 1

    def take(self) -> bytes | None:
        """The bytes of the current segment (``None``: missing or not an object), once."""
        try:
            if self.store.is_local:
                return self.store.read(self.paths[self.submitted])
            future, self.pending[0] = self.pending[0], None
            return future.result() if future is not None else None
        except CorruptObjectError as exc:  # a folder in its place
            log.warning("Ignoring %s; the checkpoints and the log are read instead", exc)
            return None

    def drop(self) -> None:
        """Done with the current segment: on to the next."""
        if self.store.is_local:
            self.submitted += 1
            return
        self.pending.popleft()
        self._top_up()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
