"""Garbage collection: remove blobs no commit of any dataset references.

Blobs are shared by every dataset under a root, so reachability is the union
over all datasets' full histories; a dataset whose history cannot be read
stops the collection (better to keep garbage than to delete data).

It also tidies the catalog's markers (:func:`kirin.markers.tidy`): those a
registry written before markers lacks are added, those of deleted datasets
removed. Markers are never garbage: they are not blobs.

Commits in flight are protected by time, not locks (object stores have none):
only unreferenced blobs last modified more than ``grace`` ago are removed,
and a commit that reuses an existing blob first freshens it (see
``Store.publish``), then checks after publishing that its blobs are still
there and restores any that a racing collection removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from . import compaction, layout, markers, summaries
from .errors import (
    CorruptObjectError,
    InvalidArgumentTypeError,
    InvalidInputError,
    InvalidNameError,
)
from .logs import EntryLog
from .naming import validate_dataset_name
from .records import decode_record
from .store import FRESHEN_AFTER, Store, modified_time

DEFAULT_GRACE = timedelta(hours=1)
log = logging.getLogger("kirin")


@dataclass(frozen=True)
class GcReport:
    dry_run: bool
    datasets: int
    blobs_seen: int
    blobs_referenced: int
    removed: tuple[str, ...]  # blob hashes removed (or that would be, in a dry run)
    bytes_freed: int
    kept_recent: int  # unreferenced, but younger than the grace period
    temp_removed: int  # abandoned partial uploads (local disk)

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "datasets": self.datasets,
                "blobs_seen": self.blobs_seen, "blobs_referenced": self.blobs_referenced,
                "removed": list(self.removed), "bytes_freed": self.bytes_freed,
                "kept_recent": self.kept_recent, "temp_removed": self.temp_removed}


def referenced_blobs(store: Store) -> tuple[int, set[str]]:
    """(number of datasets, every blob hash any of their commits may reference).

    Fails safe: every log entry and every checkpoint is read, and a dataset
    whose log cannot be read in full (a hole, an unreadable or altered
    record) stops the collection with a CorruptObjectError naming the
    dataset and the entry, before anything is removed.
    """
    names = []
    for name in store.listdir(store.path(layout.DATASETS)):
        try:
            names.append(validate_dataset_name(name))
        except InvalidNameError:
            continue
    referenced: set[str] = set()
    for name in names:
        known_end = _checkpointed(store, name, referenced)
        entries, damages = EntryLog(store, layout.commit_log(name), "Commit record").scan(
            known_end=known_end)
        if damages:
            raise _stopped(name, damages[0].message, damages[0].path)
        for entry in entries:
            try:
                record = decode_record(entry.data, where=entry.path, seq=entry.seq)
            except CorruptObjectError as exc:
                raise _stopped(name, str(exc), entry.path) from exc
            referenced.update(e["hash"] for e in record["changes"]["add"].values())
    return len(names), referenced


def _checkpointed(store: Store, dataset: str, referenced: set[str]) -> int:
    """Add the blobs the dataset's checkpoints name; return the last commit they, a segment
    or a summary repeat.

    Checkpoints are read loosely (any readable hash counts): keeping a blob
    a damaged checkpoint names costs some space, removing one may cost data.
    """
    folder = store.path(layout.checkpoints(dataset))
    known_end = -1
    lasts = [n for n in map(layout.entry_seq, store.listdir(folder)) if n is not None]
    for last in lasts:
        known_end = max(known_end, last)
        try:
            body = json.loads(store.read(store.path(layout.checkpoint(dataset, last))) or b"{}")
            for record in body.get("records", []):
                for entry in record["changes"]["add"].values():
                    if isinstance(entry.get("hash"), str):
                        referenced.add(entry["hash"])
        except (ValueError, RecursionError, TypeError, KeyError, AttributeError,
                CorruptObjectError):
            continue
    # a sound segment or summary proves its commits were written too: entries missing
    # below are a hole (segments are not read for blobs: they repeat the log, read in full)
    known_end = compaction.proven_end(store, dataset, compaction.stored(store, dataset),
                                      known_end)
    for last in reversed(summaries.every(store, dataset)):
        if last <= known_end:
            break
        path = store.path(layout.summary(dataset, last))
        with contextlib.suppress(CorruptObjectError):
            summaries.read_summary(store.read(path) or b"", path, last)
            return last
    return known_end


def _stopped(dataset: str, problem: str, path: str) -> CorruptObjectError:
    return CorruptObjectError(
        f"Garbage collection stopped, nothing was removed: the log of dataset {dataset!r} "
        f"cannot be read in full, so the blobs it references are unknown. {problem}",
        path=path)


def collect_garbage(store: Store, *, dry_run: bool = False,
                    grace: timedelta = DEFAULT_GRACE) -> GcReport:
    """Remove unreferenced blobs older than ``grace`` (report only, with ``dry_run``)."""
    if not isinstance(grace, timedelta):
        raise InvalidArgumentTypeError(f"grace must be a datetime.timedelta, not "
                                       f"{type(grace).__name__} {grace!r}: e.g. "
                                       "timedelta(hours=1)")
    if grace.total_seconds() < 0:
        raise InvalidInputError("The grace period cannot be negative")
    started = time.time()
    cutoff = started - grace.total_seconds()
    datasets, referenced = referenced_blobs(store)
    if not dry_run:  # every log read whole: the registry is sound enough to tidy
        added, dropped = markers.tidy(store)
        if added or dropped:
            log.info("Catalog markers: %d added, %d of deleted datasets removed", added, dropped)
    seen = 0
    in_use = 0
    removed: list[str] = []
    freed = 0
    kept = 0
    for digest in list(store.iter_blobs()):
        seen += 1
        if digest in referenced:
            in_use += 1
            continue
        path = store.path(layout.blob(digest))
        try:
            info = store.info(path)
        except FileNotFoundError:
            continue
        modified = modified_time(info)
        if modified is None or modified > cutoff:
            kept += 1
            continue
        removed.append(digest)
        freed += int(info.get("size") or 0)
        if not dry_run:
            # look again just before removing: a commit may have freshened it meanwhile
            try:
                again = modified_time(store.info(path))
            except FileNotFoundError:
                removed.pop()
                continue
            if again is not None and again > cutoff:
                removed.pop()
                kept += 1
                continue
            with contextlib.suppress(FileNotFoundError):  # another gc was quicker
                store.remove(path)
    temp = _remove_stale_temp(store, cutoff, dry_run)
    return GcReport(dry_run, datasets, seen, in_use, tuple(removed), freed, kept, temp)


def _remove_stale_temp(store: Store, cutoff: float, dry_run: bool) -> int:
    """Remove partial uploads of crashed commits (only local disk stages blobs there)."""
    count = 0
    folder = store.path(layout.TEMP)
    for name in store.listdir(folder):
        path = f"{folder}/{name}"
        try:
            modified = modified_time(store.info(path))
        except FileNotFoundError:
            continue
        if name.endswith(".part") and modified is not None and modified < min(
                cutoff, time.time() - FRESHEN_AFTER):
            count += 1
            if not dry_run:
                with contextlib.suppress(FileNotFoundError):
                    store.remove(path)
    return count
