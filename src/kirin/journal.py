"""The commit log of one dataset: reading it fast, extending it safely.

Commit ``N`` is the write-once object ``log/<N, 20 digits>.json``, created
only if absent (Delta Lake's transaction-log shape). Two writers racing for
the same ``N``: exactly one creation succeeds; the other re-reads and tries
``N+1``. So the history is linear and nothing is overwritten.

Every ``CHECKPOINT_EVERY`` commits, a checkpoint ``checkpoints/<last N>.json``
repeats that block of records in one object, and a summary (see
:mod:`kirin.summaries`) may record the snapshot there. Opening takes the
newest usable summary and reads only what follows it: a constant number of
requests whatever the length of the history; older commits are read when
asked for (:mod:`kirin.segments`). A registry without summaries is opened
from all its checkpoints, as before. Checkpoints and summaries are derived
data: each record in them is verified (hash and chain) like a log entry, the
newest one they hold must be the log's, and one that is missing, unreadable
or disagrees is ignored in favour of the log it summarises.
"""

from __future__ import annotations

import logging
from typing import Any

from . import compaction, layout, summaries
from .checkpoints import (
    Loaded,
    checkpoint_records,
    encode_checkpoint,
    split_checkpoint,
    verify_parts,
)
from .errors import CorruptObjectError
from .history import Draft, History
from .logs import Entry, EntryLog
from .records import decode_record, encode_record
from .segments import Segments
from .store import Store

log = logging.getLogger("kirin")

CHECKPOINT_EVERY = 100
#: Records of the newest checkpoint checked when a dataset is opened (see
#: :meth:`Journal._newest_before`): what ``history(limit=10)`` and a little more need.
OPEN_CHECKED = 15


class Journal:
    """Reads and extends one dataset's log, keeping a :class:`History` in step."""

    def __init__(self, store: Store, dataset: str, history: History) -> None:
        self.store = store
        self.dataset = dataset
        self.history = history
        self.log = EntryLog(store, layout.commit_log(dataset), "Commit record")
        self._loaded = False
        self._summary_last = -1  # the newest summary read or written (-1: none known)

    def log_path(self, seq: int) -> str:
        return self.log.path(seq)

    def checkpoint_path(self, last: int) -> str:
        return self.store.path(layout.checkpoint(self.dataset, last))

    # -- reading -----------------------------------------------------------
    def refresh(self) -> int:
        """Read whatever was committed since the last look; return how many.

        The first look starts from the newest summary (or the checkpoints),
        then lists the log for any entry past its end (see
        :class:`~kirin.logs.EntryLog`): a hole of any width, or log entries
        missing below what a summary or checkpoint repeats, is a
        CorruptObjectError rather than a shorter history.
        """
        before = len(self.history)
        first_load = not self._loaded
        known_end = -1
        if first_load:
            known_end = self._open()
            self._loaded = True
            if not self.store.lists_after_cheaply:  # there, read_from lists anyway
                for entry in self.log.read_listed(len(self.history)):
                    self._take(entry)
        # after that listing, probing the next entries is enough (see EntryLog.read_from)
        for entry in self.log.read_from(len(self.history), thorough=False,
                                        known_end=known_end):
            self._take(entry)
        return len(self.history) - before

    def _take(self, entry: Entry) -> None:
        record = decode_record(entry.data, where=entry.path, seq=entry.seq)
        self.history.append(record, where=entry.path)

    def _open(self) -> int:
        """The first look: from the newest usable summary, else from every checkpoint.

        Returns the last commit known to be in the log (-1 if none). A summary
        whose commit the log does not hold as it does is set aside (its end
        still counts as written, as a sound checkpoint's does).
        """
        floor = -1
        for last in summaries.newest(self.store, self.dataset):
            path = self.store.path(layout.summary(self.dataset, last))
            # at once: the summary, the log entry it must match, and its block of records
            # (for the newest commits before it: ``history(limit=10)`` needs no more)
            block = self.checkpoint_path(last)
            read = self.store.read_many([path, self.log_path(last), block])
            try:
                summary = summaries.read_summary(read.get(path) or b"", path, last)
            except CorruptObjectError as exc:
                log.warning("Ignoring %s; an older summary or the log is read instead", exc)
                continue
            segments = self._segments()
            before = self._newest_before(read.get(block), block, last, segments)
            try:
                self.history.start_at(summary.record, summary.files, segments.older,
                                      where=path, before=before)
            except CorruptObjectError as exc:  # e.g. a commit after the first naming no parent
                log.warning("Ignoring %s; an older summary or the log is read instead", exc)
                self.history.reset()
                continue
            self._summary_last = last
            known_end = self._load_checkpoints(after=last)
            if self._log_agrees(known_end, read.get(self.log_path(last))
                                if known_end == last else None):
                return known_end
            log.warning("Ignoring summary %s: the log disagrees with it (or with the "
                        "checkpoints after it); reading the checkpoints and the log instead",
                        path)
            self.history.reset()
            floor = last
            break
        return max(self._load_checkpoints(), floor)

    def _segments(self) -> Segments:
        return Segments(self.store, self.dataset, self.log, CHECKPOINT_EVERY)

    @staticmethod
    def _newest_before(data: bytes | None, path: str, last: int, segments: Segments
                       ) -> Loaded | None:
        """The checked records of checkpoint ``last`` just before commit ``last``, at most
        :data:`OPEN_CHECKED`; the block's older records go to ``segments`` unchecked.

        Checking a record (its hash, its fields) is most of the cost of opening,
        and ``history(limit=10)`` needs ten: the rest of the block is checked
        only if an older commit is asked for, with no second request.
        ``None`` if the checkpoint is missing or unusable (older commits are
        then read from the log when asked for).
        """
        if data is None:
            return None
        split = split_checkpoint(data, last)
        if split is None:  # not laid out as Kirin writes it: checked whole, the slow way
            records = checkpoint_records(data, path, last)
            return records[:-1] if records else None
        first, parts = split
        cut = max(first, last - OPEN_CHECKED)
        try:
            before = verify_parts((cut, parts[cut - first:last - first]), path)
        except CorruptObjectError:
            return None
        if cut > first:
            segments.seed(path, (first, parts[:cut - first]))
        return before

    def _load_checkpoints(self, after: int = -1) -> int:
        """Take every usable checkpoint that continues the chain from where we are.

        ``after``: only those past that commit (one listing request on S3).
        Returns the last commit the accepted checkpoints repeat (``after`` or
        -1 if none): the log holds at least that many entries, whatever else
        is missing. Without ``after``, all of them are ignored if the log
        disagrees with the last (the caller checks otherwise).
        """
        folder = self.store.path(layout.checkpoints(self.dataset))
        if after >= 0:
            names = self.store.names_after(folder, layout.entry_name(after))
        else:
            names = self.store.listdir(folder)
        lasts = sorted(n for n in map(layout.entry_seq, names) if n is not None and n > after)
        blobs = self.store.read_many([self.checkpoint_path(n) for n in lasts])
        for last in lasts:
            path = self.checkpoint_path(last)
            records = checkpoint_records(blobs.get(path), path, last)
            if records is None:
                log.warning("Ignoring unreadable checkpoint %s; the log is read instead", path)
                continue
            if records[0][0]["seq"] != len(self.history):
                continue  # overlaps what we have, or leaves a gap the log must fill
            if not self._chains(records):
                log.warning("Ignoring checkpoint %s: it does not continue the chain", path)
                continue
            for record, text in records:
                self.history.append(record, where=path, text=text)
        known_end = len(self.history) - 1
        if after >= 0:
            return known_end
        if known_end >= 0 and not self._log_agrees(known_end):
            log.warning("Ignoring checkpoints of dataset %r: the log disagrees with them; "
                        "reading the log instead", self.dataset)
            self.history.reset()
        return known_end

    def _log_agrees(self, seq: int, data: bytes | None = None) -> bool:
        """Whether log entry ``seq`` (its bytes if read already) is the record the
        checkpoints or the summary ended with."""
        if data is None:
            data = self.store.read(self.log_path(seq))
        if data is None:
            return False
        try:
            record = decode_record(data, where=self.log_path(seq), seq=seq)
        except CorruptObjectError:
            return False
        return bool(record["hash"] == self.history.head_hash)

    def _chains(self, records: list[tuple[dict[str, Any], str | None]]) -> bool:
        parent = self.history.head_hash
        for i, (record, _) in enumerate(records):
            if record["seq"] != len(self.history) + i or record["parent"] != parent:
                return False
            parent = record["hash"]
        return True

    # -- writing -----------------------------------------------------------
    def publish(self, record: dict[str, Any],
                snapshot: dict[str, tuple[str, int]] | Draft | None = None) -> bool:
        """Create the log entry for ``record``; ``False`` if another writer took its slot.

        ``snapshot`` (the record's file snapshot, or the :class:`Draft` it was
        made from, already hashed into its ``tree``) is kept so the next
        commit need not rebuild it.
        """
        seq = record["seq"]
        if not self.store.create(self.log_path(seq), encode_record(record)):
            return False
        if isinstance(snapshot, Draft):
            self.history.append(record, where=self.log_path(seq), draft=snapshot)
        else:
            self.history.append(record, where=self.log_path(seq), snapshot=snapshot)
        return True

    def write_due_checkpoints(self) -> None:
        """After the commit that completes a block: its checkpoint, then its summary if due,
        then any segment due (see :func:`kirin.compaction.write_due`).

        Other commits write nothing more (no request). The block before is
        written too if missing (its writer may have died), so a crash costs
        at most one block's checkpoint. Best effort: a checkpoint or summary
        only speeds up opening, so a failure here must not fail the commit
        that already succeeded.
        """
        count = len(self.history)
        if count == 0 or count % CHECKPOINT_EVERY:
            return
        last = count - 1
        for end in (last, last - CHECKPOINT_EVERY):
            if end < 0:
                continue
            path = self.checkpoint_path(end)
            try:
                if self.store.exists(path):
                    continue
                start = end - CHECKPOINT_EVERY + 1
                texts = [self.history.record_text(i) for i in range(start, end + 1)]
                self.store.create(path, encode_checkpoint(start, end, texts))
            except (OSError, CorruptObjectError) as exc:
                log.warning("Could not write checkpoint %s: %s", path, exc)
        self._write_summary(last)
        compaction.write_due(self.store, self.dataset, self.history, self._segments().older,
                             CHECKPOINT_EVERY)

    def _write_summary(self, last: int) -> None:
        """The summary at ``last``, if it is worth its size (see :func:`summaries.is_due`)."""
        path = self.store.path(layout.summary(self.dataset, last))
        try:
            files = self.history.snapshot(last)
            if not summaries.is_due(len(files), last, self._summary_last):
                return
            body = summaries.encode_summary(last, self.history.record_text(last), files)
            self.store.create(path, body)  # False: a racing writer wrote the same bytes
            self._summary_last = last
        except (OSError, CorruptObjectError) as exc:
            log.warning("Could not write summary %s: %s", path, exc)
