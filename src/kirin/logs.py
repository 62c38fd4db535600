"""Reading a write-once log: entries ``0, 1, 2, …``, and one rule for where it ends.

The commit log and the policy log of a dataset are both folders of entries
created only if absent, in order: a writer creates entry ``N`` before anyone
can create ``N + 1``. So a missing entry is the end of the log only if
nothing lies past it. An entry missing below a later entry (or below the
last commit a checkpoint repeats) was deleted: that is a *hole*, and treating
it as the end would hide every later entry, let the next writer fill the
hole, and let garbage collection delete what the hidden entries reference.

This module is the only reader of such logs. Opening a dataset, committing,
setting a policy, ``verify`` and ``gc`` all go through it, so a hole or an
unreadable entry is found, and named, the same way everywhere: readers that
must stop raise :class:`~kirin.errors.CorruptObjectError`; ``verify`` gets the
same findings as values (:class:`Damage`) and reports them all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from . import layout
from .errors import CorruptObjectError
from .store import Store

SCAN_BATCH = 256  # entries fetched at once when reading a whole log


@dataclass(frozen=True)
class Damage:
    """Something wrong with a log's entries: where, and what, in words."""

    path: str
    message: str
    first: int  # the first entry concerned
    last: int  # the last entry concerned (== first for one entry)

    def error(self) -> CorruptObjectError:
        return CorruptObjectError(self.message, path=self.path)


@dataclass(frozen=True)
class Entry:
    seq: int
    path: str
    data: bytes


class EntryLog:
    """One write-once log of one dataset, e.g. its commit log or its policy log.

    ``what`` names an entry in messages ("Commit record", "Policy version").
    """

    def __init__(self, store: Store, folder: str, what: str) -> None:
        self.store = store
        self.folder = folder  # relative to the root (see :mod:`kirin.layout`)
        self.what = what

    def path(self, seq: int) -> str:
        return self.store.path(self.folder, layout.entry_name(seq))

    # -- reading as it grows -------------------------------------------------
    def read_from(self, start: int, *, thorough: bool, known_end: int = -1
                  ) -> Iterator[Entry]:
        """Entries ``start``, ``start + 1``, … up to the end of the log.

        The end is confirmed not to be a hole (see :meth:`_confirm_end`);
        ``thorough`` lists the folder for that, catching a hole of any width
        (a reader's first look); otherwise the next entry is probed, which is
        enough for what appears while a reader keeps the log open.
        ``known_end`` is an entry known to exist (e.g. the last one a checkpoint
        repeats): the log cannot end below it.
        """
        if self.store.lists_after_cheaply:
            yield from self._read_by_listing(start, known_end)
            return
        seq = start
        # usually nothing or one entry is new: don't pay for a whole read-ahead at first
        batch_size = min(2, self.store.read_ahead)
        while True:
            paths = [self.path(seq + i) for i in range(batch_size)]
            batch = self.store.read_many(paths)
            batch_size = self.store.read_ahead
            for i, path in enumerate(paths):
                data = batch.get(path)
                if data is None:
                    data = self._confirm_end(seq, [batch.get(p) for p in paths[i + 1:]],
                                             thorough=thorough, known_end=known_end)
                    if data is None:
                        return
                yield Entry(seq, path, data)
                seq += 1

    def _read_by_listing(self, start: int, known_end: int) -> Iterator[Entry]:
        """:meth:`read_from` where a listing after a name is one request (S3).

        One listing says which entries exist past what is held: usually none,
        so looking for new entries costs one request rather than two probes,
        and a hole of any width among them is seen. S3's listings are strongly
        consistent, so an entry absent from it was created after it, as it
        could have been after a probe.
        """
        seq = start
        for entry in self.read_listed(start):
            seq = entry.seq + 1
            yield entry
        if seq <= known_end:  # a checkpoint or summary repeats it: it was written
            raise self.hole(seq, seq).error()

    def read_listed(self, start: int) -> Iterator[Entry]:
        """Entries ``start``, ``start + 1``, … that one listing shows, read concurrently.

        A reader's first look past what it has: the listing (one request on
        S3, for up to 1,000 entries) says exactly which entries to fetch, so
        they are read in one concurrent round with no probing past the end,
        and shows any hole among them. An entry created after the listing is
        left to :meth:`read_from`, which the caller runs next.
        """
        later = sorted(self.later_entries(start - 1))
        expected = start
        for at in range(0, len(later), SCAN_BATCH):
            chunk = later[at:at + SCAN_BATCH]
            read = self.store.read_many([self.path(seq) for seq in chunk])
            for seq in chunk:
                data = read.get(self.path(seq))
                if seq != expected or data is None:  # listed later entries exist: a deletion
                    raise self.hole(expected, expected).error()
                yield Entry(seq, self.path(seq), data)
                expected += 1

    def _confirm_end(self, seq: int, later: list[bytes | None], *, thorough: bool,
                     known_end: int) -> bytes | None:
        """Entry ``seq`` was not found: ``None`` if it is the end, its bytes if it appeared.

        If a later entry exists, ``seq`` was either created since we looked
        (read again) or deleted: a hole, raised as CorruptObjectError.
        """
        if seq <= known_end:
            later_exists = True
        elif thorough:
            later_exists = any(later) or bool(self.later_entries(seq))
        else:
            later_exists = any(later) or (
                not later and self.store.read(self.path(seq + 1)) is not None)
        if not later_exists:
            return None
        data = self.store.read(self.path(seq))
        if data is None:
            raise self.hole(seq, seq).error()
        return data

    def later_entries(self, seq: int) -> list[int]:
        """Numbers of the entries past ``seq`` the folder holds (one listing)."""
        folder = self.store.path(self.folder)
        names = self.store.names_after(folder, layout.entry_name(seq), every_page=True)
        return [n for n in map(layout.entry_seq, names) if n is not None and n > seq]

    def hole(self, first: int, last: int) -> Damage:
        which = f"#{first}" if first == last else f"#{first}-#{last}"
        verb = "is" if first == last else "are"
        return Damage(self.path(first),
                      f"{self.what} {which} {verb} missing ({self.path(first)}"
                      f"{'' if first == last else ' and after'}), though later entries (or a "
                      "checkpoint) show it was written: an object was deleted. Run "
                      "`kirin verify` to see what is affected.", first, last)

    # -- reading all of it ---------------------------------------------------
    def scan(self, *, known_end: int = -1) -> tuple[list[Entry], list[Damage]]:
        """Every entry the folder holds, in order, and every hole or unreadable entry.

        For readers that want all of a log whatever its state (``verify``
        reports each damage, ``gc`` refuses to go on). Every entry missing
        below the last one listed, or below ``known_end``, is part of a hole;
        an entry that is listed but cannot be read as an object (a folder in
        its place) is a damage too, not an error.
        """
        folder = self.store.path(self.folder)
        listed = {n for n in map(layout.entry_seq, self.store.listdir(folder)) if n is not None}
        end = max(max(listed, default=-1), known_end)
        found: dict[int, bytes] = {}
        damages: list[Damage] = []
        ordered = sorted(listed)
        for at in range(0, len(ordered), SCAN_BATCH):
            chunk = ordered[at:at + SCAN_BATCH]
            try:
                read = self.store.read_many([self.path(seq) for seq in chunk])
                pairs = [(seq, read.get(self.path(seq))) for seq in chunk]
            except CorruptObjectError:  # one of them is not an object: read one by one
                pairs = [(seq, self._read_or_damage(seq, damages)) for seq in chunk]
            for seq, data in pairs:
                if data is not None:
                    found[seq] = data
                elif not any(d.first == seq for d in damages):
                    damages.append(Damage(self.path(seq), f"{self.what} #{seq} is listed in "
                                          f"{folder} but cannot be read as an object",
                                          seq, seq))
        # every number up to the end is an entry or part of a hole
        tail = [end + 1] if end > max(listed, default=-1) else []
        expected = 0
        for seq in [*ordered, *tail]:
            if seq > expected:
                damages.append(self.hole(expected, seq - 1))
            expected = seq + 1
        damages.sort(key=lambda d: d.first)
        return [Entry(seq, self.path(seq), found[seq]) for seq in sorted(found)], damages

    def _read_or_damage(self, seq: int, damages: list[Damage]) -> bytes | None:
        try:
            return self.store.read(self.path(seq))
        except CorruptObjectError as exc:
            damages.append(Damage(self.path(seq), str(exc), seq, seq))
            return None
