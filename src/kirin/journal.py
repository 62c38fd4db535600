"""The commit log of one dataset: reading it fast, extending it safely.

Commit ``N`` is the write-once object ``log/<N, 20 digits>.json``, created
only if absent (Delta Lake's transaction-log shape). Two writers racing for
the same ``N``: exactly one creation succeeds; the other re-reads and tries
``N+1``. So the history is linear and nothing is overwritten.

Every ``CHECKPOINT_EVERY`` commits, a checkpoint ``checkpoints/<last N>.json``
repeats that block of records in one object, so opening a long history reads
``N / CHECKPOINT_EVERY`` objects plus the few log entries after the last one.
Checkpoints are derived data: each record in them is verified (hash and chain)
like a log entry, and a checkpoint that is missing, unreadable or disagrees
with the chain is ignored in favour of the log it summarises.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from . import layout
from .errors import CorruptObjectError
from .history import Draft, History
from .logs import EntryLog
from .records import check_record, check_stored_record, decode_record, encode_record
from .store import Store

log = logging.getLogger("kirin")

CHECKPOINT_EVERY = 100


class Journal:
    """Reads and extends one dataset's log, keeping a :class:`History` in step."""

    def __init__(self, store: Store, dataset: str, history: History) -> None:
        self.store = store
        self.dataset = dataset
        self.history = history
        self.log = EntryLog(store, layout.commit_log(dataset), "Commit record")
        self._loaded = False

    def log_path(self, seq: int) -> str:
        return self.log.path(seq)

    def checkpoint_path(self, last: int) -> str:
        return self.store.path(layout.checkpoint(self.dataset, last))

    # -- reading -----------------------------------------------------------
    def refresh(self) -> int:
        """Read whatever was committed since the last look; return how many.

        The first look takes the checkpoints, then lists the log for any
        entry past its end (see :class:`~kirin.logs.EntryLog`): a hole of any
        width, or log entries missing below what a checkpoint repeats, is a
        CorruptObjectError rather than a shorter history.
        """
        before = len(self.history)
        first_load = not self._loaded
        known_end = -1
        if first_load:
            known_end = self._load_checkpoints()
            self._loaded = True
        for entry in self.log.read_from(len(self.history), thorough=first_load,
                                        known_end=known_end):
            record = decode_record(entry.data, where=entry.path, seq=entry.seq)
            self.history.append(record, where=entry.path)
        return len(self.history) - before

    def _load_checkpoints(self) -> int:
        """Take every usable checkpoint that continues the chain from where we are.

        Returns the last commit the accepted checkpoints repeat (-1 if none):
        the log holds at least that many entries, whatever else is missing.
        """
        folder = self.store.path(layout.checkpoints(self.dataset))
        lasts = sorted(n for n in map(layout.entry_seq, self.store.listdir(folder))
                       if n is not None)
        blobs = self.store.read_many([self.checkpoint_path(n) for n in lasts])
        for last in lasts:
            path = self.checkpoint_path(last)
            records = _checkpoint_records(blobs.get(path), path, last)
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
        if known_end >= 0 and not self._log_agrees(known_end):
            log.warning("Ignoring checkpoints of dataset %r: the log disagrees with them; "
                        "reading the log instead", self.dataset)
            self.history.reset()
        return known_end

    def _log_agrees(self, seq: int) -> bool:
        """Whether log entry ``seq`` is the record the checkpoints ended with."""
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
        """Write any checkpoint whose block is complete and not yet stored.

        Best effort: a checkpoint only speeds up opening, so a failure here
        must not fail the commit that already succeeded.
        """
        count = len(self.history)
        last = (count // CHECKPOINT_EVERY) * CHECKPOINT_EVERY - 1
        # Only the latest block and its predecessor are checked, keeping commits O(1).
        for end in (last, last - CHECKPOINT_EVERY):
            if end < 0:
                continue
            path = self.checkpoint_path(end)
            try:
                if self.store.exists(path):
                    continue
                start = end - CHECKPOINT_EVERY + 1
                # canonical_json of {"kirin", "first", "last", "records"}, assembled from
                # the records' own canonical text
                records = ",".join(self.history.record_text(i) for i in range(start, end + 1))
                body = f'{{"first":{start},"kirin":1,"last":{end},"records":[{records}]}}\n'
                self.store.create(path, body.encode())
            except OSError as exc:  # pragma: no cover - depends on the backend failing
                log.warning("Could not write checkpoint %s: %s", path, exc)


def _checkpoint_records(data: bytes | None, path: str, last: int
                        ) -> list[tuple[dict[str, Any], str | None]] | None:
    """:func:`read_checkpoint`, or ``None`` if the checkpoint is missing or cannot be trusted."""
    if data is None:
        return None
    try:
        return read_checkpoint(data, path, last)
    except CorruptObjectError:
        return None


def read_checkpoint(data: bytes, path: str, last: int
                    ) -> list[tuple[dict[str, Any], str | None]]:
    """The verified records of checkpoint ``last``, each with its canonical JSON when that
    proved its hash (else ``None``); CorruptObjectError saying why it cannot be trusted.

    The one reader of checkpoints: opening takes what it returns, ``verify``
    reports what it raises.
    """
    def bad(reason: str) -> CorruptObjectError:
        return CorruptObjectError(f"Checkpoint {path} is unusable ({reason})", path=path)

    try:
        split = _split_checkpoint(data, last)
        if split is not None:
            first, parts = split
            return [(record, check_stored_record(record, text, where=f"{path}[{first + i}]",
                                                 seq=first + i))
                    for i, (record, text) in enumerate(parts)]
        body = json.loads(data)  # not laid out as Kirin writes it: read it as any JSON
        first, records = body["first"], body["records"]
        if (body.get("last") != last or not isinstance(first, int) or not isinstance(records, list)
                or len(records) != last - first + 1 or not records):
            raise bad(f"it does not hold commits up to #{last}")
        return [(check_record(r, where=f"{path}[{first + i}]", seq=first + i), None)
                for i, r in enumerate(records)]
    except CorruptObjectError as exc:
        if exc.path == path:
            raise
        raise bad(str(exc)) from exc
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise bad(f"{type(exc).__name__}: {exc}") from exc


_CHECKPOINT_HEAD = re.compile(r'\{"first":(0|[1-9][0-9]*),"kirin":1,"last":(0|[1-9][0-9]*),'
                              r'"records":\[')
_scan = json.JSONDecoder().raw_decode


def _split_checkpoint(data: bytes, last: int) -> tuple[int, list[tuple[Any, str]]] | None:
    """``first`` and each record with its own JSON text, for a checkpoint as Kirin writes it.

    Parsing record by record yields each record's stored text, whose hash
    can then be checked as it is (no re-encoding: most of the cost of opening
    a long history). Anything laid out otherwise gives ``None``, and the
    caller parses the checkpoint as a whole and re-encodes every record.
    """
    try:
        text = data.decode("utf-8")
        head = _CHECKPOINT_HEAD.match(text)
        if head is None or int(head[2]) != last or int(head[1]) > last:
            return None
        first, at = int(head[1]), head.end()
        parts: list[tuple[Any, str]] = []
        for _ in range(last - first + 1):
            record, end = _scan(text, at)
            parts.append((record, text[at:end]))
            at = end + 1
            if text[end:at] != ",":
                break
        if len(parts) != last - first + 1 or text[at - 1:] not in ("]}", "]}\n"):
            return None
        return first, parts
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
