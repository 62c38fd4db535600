"""The catalog's markers: ``catalog/<name>``, one write-once object per dataset.

Why: a folder under ``datasets/`` is not proof of a dataset (a stray
folder, or a creation killed after storing the policy and before
``dataset.json``), so listing the datasets of a root used to cost one read
per dataset on top of the listing: 201 requests for 200 datasets, 1.6 s on
S3 at 20 ms per request. A marker is created only *after* the object that
makes its dataset exist (``dataset.json``), and removed *before* anything
else when the dataset is deleted; so a name with both a folder and a marker
is a dataset, and the two listings (made at once: one round trip) answer
for every marked dataset, whatever their number.

Nothing is ever lost or invented, only slower: a folder without a marker (a
registry written before markers, a writer killed between ``dataset.json``
and its marker, a deletion interrupted) is checked as before (its
``dataset.json``, else its first log entry); a marker without a folder (a
deletion by an older Kirin, which does not know markers) is ignored; a
marker name that is not a valid dataset name is ignored. Listing writes
nothing (read-only credentials list too); :func:`tidy` adds the missing
markers and removes those without a folder, and garbage collection calls it.
Removing a marker is always safe (its dataset is then only listed more
slowly); adding one is safe once its dataset's ``dataset.json`` is stored.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from . import layout
from ._json import canonical_json
from .errors import InvalidNameError
from .naming import validate_dataset_name
from .store import Store

log = logging.getLogger("kirin")


@dataclass(frozen=True)
class Listing:
    """The datasets of a root: ``names`` that exist (sorted); those of them without a
    marker (``unmarked``: found by reading their objects, worth marking); markers
    without a folder (``stale``: ignored, worth removing)."""

    names: tuple[str, ...]
    unmarked: tuple[str, ...]
    stale: tuple[str, ...]


def marker_body(name: str) -> bytes:
    """The bytes of ``name``'s marker: canonical JSON, so two writers create the same object.

    Readers never read it (its name is what counts): it says what it is to
    whoever looks at the bucket.
    """
    return (canonical_json({"kirin": 1, "name": name}) + "\n").encode()


def mark(store: Store, name: str) -> bool:
    """Create ``name``'s marker unless it exists; ``False`` if it could not be written.

    Call only once the dataset's ``dataset.json`` is stored. Best effort: a
    missing marker only makes listings read that dataset's objects, so a
    failure (e.g. credentials that may write only under ``datasets/``) is
    logged, not raised.
    """
    path = store.path(layout.catalog_marker(name))
    try:
        store.create(path, marker_body(name))  # False: it was there (another writer's)
    except OSError as exc:  # StorageError and CorruptObjectError included
        log.warning("Could not write the catalog marker %s of dataset %r: %s", path, name, exc)
        return False
    return True


def unmark(store: Store, name: str) -> None:
    """Remove ``name``'s marker, if any: the first step of deleting a dataset.

    Not best effort: a marker left beside a half-deleted folder would list a
    dataset that no longer exists, so a failure raises before anything else
    is removed.
    """
    with contextlib.suppress(FileNotFoundError):
        store.remove(store.path(layout.catalog_marker(name)))


def list_datasets(store: Store) -> Listing:
    """The datasets under ``store``: marked folders, and unmarked folders that hold a
    ``dataset.json`` or a first commit.

    ``datasets/`` and ``catalog/`` are listed at the same time on an object
    store (one round trip); only unmarked folders cost reads, all at once.
    """
    folders, marked = _list_both(store)
    unsure = [n for n in folders if n not in marked]
    found = set(_existing(store, {n: layout.dataset_info(n) for n in unsure}))
    found.update(_existing(store, {n: layout.log_entry(n, 0) for n in unsure
                                   if n not in found}))
    return Listing(tuple(n for n in folders if n in marked or n in found),
                   tuple(n for n in unsure if n in found), tuple(sorted(marked - set(folders))))


def tidy(store: Store) -> tuple[int, int]:
    """Mark every dataset without a marker, remove every marker without a folder; return
    how many of each.

    So a registry written before markers (or a writer killed before writing
    one) is listed at full speed from then on, and a marker an older Kirin
    left behind when deleting its dataset cannot vouch for a later stray
    folder of the same name. A marker created meanwhile (its dataset created
    after the listing) may be removed: only slower, never wrong. Best effort.
    """
    try:
        listing = list_datasets(store)
    except OSError as exc:  # StorageError and CorruptObjectError included
        log.warning("Could not list the datasets of %s to tidy their markers: %s",
                    store.url, exc)
        return 0, 0
    added = sum(mark(store, name) for name in listing.unmarked)
    removed = 0
    for name in listing.stale:
        try:
            unmark(store, name)
            removed += 1
        except OSError as exc:
            log.warning("Could not remove the catalog marker of deleted dataset %r: %s",
                        name, exc)
    return added, removed


def _list_both(store: Store) -> tuple[list[str], set[str]]:
    """(valid names of the folders under ``datasets/``, sorted; valid marker names)."""
    folders = store.path(layout.DATASETS)
    markers = store.path(layout.CATALOG)
    if store.is_local or store.kind == "memory":  # a listing is a system call: no thread
        return _valid(store.listdir(folders)), set(_valid(store.listdir(markers)))
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        marked = pool.submit(store.listdir, markers)
        names = store.listdir(folders)
        return _valid(names), set(_valid(marked.result()))


def _valid(names: list[str]) -> list[str]:
    """The names that are dataset names: anything else there was not written by Kirin."""
    valid = []
    for name in names:
        try:
            valid.append(validate_dataset_name(name))
        except InvalidNameError:
            continue
    return sorted(valid)


def _existing(store: Store, objects: Mapping[str, str]) -> list[str]:
    """The keys of ``objects`` (name -> path under the root) whose object exists."""
    paths = {name: store.path(path) for name, path in objects.items()}
    read = store.read_many(list(paths.values()))
    return [name for name, path in paths.items() if read.get(path) is not None]
