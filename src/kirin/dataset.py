"""The ``Dataset`` facade: one registry, its linear history and its files.

This module orchestrates; it owns no format. Records are built in
``history``, written through ``journal``/``store``, and judged by ``policy``.
"""

from __future__ import annotations

import getpass
import json
import os
import random
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

import fsspec

from ._json import FrozenDict, FrozenList, canonical_json, check_json, freeze
from .errors import (
    CommitNotFoundError,
    ConflictError,
    EmptyCommitError,
    FileNotInCommitError,
    InvalidInputError,
    InvalidNameError,
    InvalidTagError,
    NotLatestCommitError,
    SourceNotFoundError,
)
from .history import History, diff_commits, make_record
from .journal import Journal
from .localfiles import LocalFiles, local_files
from .naming import (
    lookup_name,
    safe_local_path,
    source_basename,
    validate_dataset_name,
    validate_file_name,
)
from .store import StagedBlob, Store
from .values import Commit, File, Proposal
from .verify import VerifyReport, verify_dataset

PathLike = str | os.PathLike[str]
AddFiles = PathLike | Iterable[PathLike] | Mapping[str, PathLike]
MAX_ATTEMPTS = 200  # commits retried after losing a race before giving up
MAX_TAG_LENGTH = 256


def default_author() -> str:
    """``KIRIN_AUTHOR``, else ``user@host``: who made a commit, for the audit trail."""
    env = os.environ.get("KIRIN_AUTHOR", "").strip()
    if env:
        return env
    try:
        user = getpass.getuser()
    except Exception:  # no user database entry (containers); still record something
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class Dataset:
    """A versioned, linear history of file snapshots with metadata and tags.

    ``Dataset(root_dir, name)`` opens (or, on first commit, creates) the
    dataset ``name`` under ``root_dir``: a local folder or any fsspec URL
    (``s3://``, ``gs://``, ``az://``, ``memory://``); extra keyword arguments
    are passed to the filesystem. Until ``checkout(ref)`` pins a commit, the
    dataset follows the newest commit, including those other writers add.
    """

    def __init__(self, root_dir: PathLike, name: str, description: str = "",
                 fs: fsspec.AbstractFileSystem | None = None, **storage_options: Any) -> None:
        self.name = validate_dataset_name(name)
        self.root_dir = os.fspath(root_dir)
        self._store: Store = storage_options.pop("_store", None) or Store(
            root_dir, fs, **storage_options)
        self.fs = self._store.fs
        self._description = description
        self._history = History(self.name, self._store)
        self._journal = Journal(self._store, self.name, self._history)
        self._pinned: str | None = None

    # -- identity ----------------------------------------------------------
    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, description={self.description!r}, "
                f"root_dir={self.root_dir!r})")

    def __str__(self) -> str:
        head = self.current_commit
        return (f"Dataset(name='{self.name}', commits={len(self._history)}, "
                f"current={head.short_hash if head else None})")

    @property
    def _info_path(self) -> str:
        return self._store.path("datasets", self.name, "dataset.json")

    @property
    def description(self) -> str:
        """The description given at creation (stored with the dataset)."""
        if not self._description:
            data = self._store.read(self._info_path)
            if data:
                try:
                    self._description = str(json.loads(data).get("description", ""))
                except (ValueError, AttributeError):
                    self._description = ""
        return self._description

    def _ensure_info(self) -> None:
        """Create ``dataset.json`` unless it exists (create-if-absent, so never clobbered)."""
        if self._store.exists(self._info_path):
            return
        info = {"kirin": 1, "name": self.name, "description": self._description,
                "created": datetime.now(timezone.utc).isoformat()}
        self._store.create(self._info_path, (canonical_json(info) + "\n").encode())

    # -- where we are ------------------------------------------------------
    def _refresh(self) -> None:
        self._journal.refresh()

    @property
    def current_commit(self) -> Commit | None:
        """The checked-out commit: the newest one unless ``checkout(ref)`` pinned another."""
        if self._pinned is not None:
            seq = self._history.seq_of(self._pinned)
            assert seq is not None
            return self._history.commit(seq)
        self._refresh()
        return self._history.head

    @property
    def head(self) -> Commit | None:
        """Alias of :attr:`current_commit`, as in the original Kirin."""
        return self.current_commit

    def checkout(self, ref: str | None = None) -> Commit:
        """Pin commit ``ref`` (hash or unique prefix); with no argument, follow the newest."""
        self._refresh()
        if ref is None:
            self._pinned = None
            head = self._history.head
            if head is None:
                raise CommitNotFoundError("latest", self.name,
                                          f"Dataset {self.name!r} has no commits yet")
            return head
        commit = self._history.resolve(ref)
        self._pinned = commit.hash
        return commit

    def is_empty(self) -> bool:
        self._refresh()
        return len(self._history) == 0

    # -- files of the current commit --------------------------------------
    @property
    def files(self) -> Mapping[str, File]:
        head = self.current_commit
        return head.files if head else FrozenDict()

    def list_files(self) -> list[str]:
        return list(self.files)

    def has_file(self, name: str) -> bool:
        return lookup_name(name) in self.files

    def get_file(self, name: str) -> File | None:
        """The file ``name`` of the current commit, or ``None`` (as in the original)."""
        return self.files.get(lookup_name(name))

    def _require_file(self, name: str) -> File:
        head = self.current_commit
        found = head.files.get(lookup_name(name)) if head else None
        if found is None:
            raise FileNotInCommitError(name, head.hash if head else None)
        return found

    def read_file(self, name: str, mode: str = "r") -> str | bytes:
        """Whole content of ``name``: text with ``mode="r"``, bytes with ``"rb"``."""
        return self._require_file(name).read(mode)

    def open_file(self, name: str, mode: str = "rb") -> IO[Any]:
        return self._require_file(name).open(mode)

    def download_file(self, name: str, target_path: PathLike) -> str:
        """Save ``name`` to ``target_path`` (a file path, or an existing folder)."""
        file = self._require_file(name)
        target = Path(target_path)
        if target.is_dir():
            target = safe_local_path(target, name)
        return file.download_to(target)

    def local_files(self) -> AbstractContextManager[LocalFiles]:
        """Context manager: name -> local path, downloaded on first access, removed on exit."""
        return local_files(self.files, prefix=f"kirin_{self.name}_")

    # -- history -----------------------------------------------------------
    def history(self, limit: int | None = None) -> list[Commit]:
        """Commits newest first (``limit`` newest only)."""
        self._refresh()
        return list(self._iter_newest_first(limit))

    def get_commits(self) -> list[Commit]:
        return self.history()

    def _iter_newest_first(self, limit: int | None = None) -> Iterator[Commit]:
        count = len(self._history)
        stop = max(count - limit, 0) if limit is not None else 0
        for seq in range(count - 1, stop - 1, -1):
            yield self._history.commit(seq)

    def get_commit(self, ref: str) -> Commit | None:
        """The commit ``ref`` (hash or unique prefix), or ``None`` if there is none.

        An ambiguous prefix still raises :class:`~kirin.errors.AmbiguousRefError`.
        """
        self._refresh()
        try:
            return self._history.resolve(ref)
        except CommitNotFoundError as exc:
            if getattr(exc, "candidates", None):
                raise
            return None

    def find_commits(self, tags: Iterable[str] | None = None,
                     metadata_filter: Callable[[Mapping[str, Any]], bool] | None = None,
                     limit: int | None = None) -> list[Commit]:
        """Commits carrying *all* ``tags`` and passing ``metadata_filter``, newest first."""
        wanted = [tags] if isinstance(tags, str) else list(tags or [])
        self._refresh()
        found: list[Commit] = []
        for commit in self._iter_newest_first():
            if limit is not None and len(found) >= limit:
                break
            if wanted and not all(t in commit.tags for t in wanted):
                continue
            if metadata_filter is not None and not metadata_filter(commit.metadata):
                continue
            found.append(commit)
        return found

    def compare_commits(self, hash1: str, hash2: str) -> dict[str, Any]:
        """Differences from commit ``hash1`` to ``hash2`` (prefixes accepted)."""
        self._refresh()
        return diff_commits(self._history.resolve(hash1), self._history.resolve(hash2))

    def get_info(self) -> dict[str, Any]:
        head = self.current_commit
        self._refresh()
        latest = self._history.head
        return {
            "name": self.name,
            "description": self.description,
            "root_dir": self.root_dir,
            "commit_count": len(self._history),
            "current_commit": head.hash if head else None,
            "latest_commit": latest.hash if latest else None,
            "file_count": len(head.files) if head else 0,
            "total_size": head.get_total_size() if head else 0,
        }

    def to_dict(self) -> dict[str, Any]:
        return self.get_info()

    def verify(self, progress: Callable[[int], None] | None = None) -> VerifyReport:
        """Re-read and re-hash every record, checkpoint and blob of this dataset.

        Unlike normal reads, which stop at the first problem, this reports all
        of them (with the commits and files each affects). ``progress`` is
        called with the number of bytes hashed as it goes.
        """
        return verify_dataset(self._store, self.name, progress)

    # -- committing --------------------------------------------------------
    def commit(self, message: str, add_files: AddFiles | None = None,
               remove_files: Iterable[str] | None = None,
               metadata: Mapping[str, Any] | None = None,
               tags: Iterable[str] | None = None, *, author: str | None = None) -> str:
        """Record a new commit on top of the newest one and return its full hash.

        Everything is checked before anything is written. If another writer
        commits first, this one is rebuilt on the new head and retried.
        """
        if not isinstance(message, str) or not message.strip():
            raise InvalidInputError("A commit needs a non-empty message")
        sources = _named_sources(add_files)
        removed = _removed_names(remove_files)
        both = sorted(set(sources) & set(removed))
        if both:
            raise InvalidInputError(f"{', '.join(map(repr, both))} is both added and removed")
        if not sources and not removed:
            raise EmptyCommitError(
                "Nothing to commit: give add_files and/or remove_files")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise InvalidInputError("metadata must be a mapping (a JSON object)")
        meta = check_json(dict(metadata) if metadata is not None else {})
        tag_list = _clean_tags(tags)
        who = (author or default_author()).strip()
        self._refresh()
        self._check_latest()
        for source in sources.values():
            if not _source_exists(source):
                if _source_is_folder(source):
                    raise SourceNotFoundError(f"{source} (it is a folder; add its files by name)")
                raise SourceNotFoundError(source)
        staged: dict[str, StagedBlob] = {}
        try:
            for name, source in sources.items():
                staged[name] = self._store.stage(source)
            return self._publish(message, staged, removed, meta, tag_list, who)
        finally:
            for blob in staged.values():
                self._store.discard(blob)

    def _check_latest(self) -> None:
        head = self._history.head_hash
        if self._pinned is not None and head is not None and self._pinned != head:
            raise NotLatestCommitError(self._pinned, head)

    def _publish(self, message: str, staged: Mapping[str, StagedBlob], removed: list[str],
                 metadata: dict[str, Any], tags: list[str], author: str) -> str:
        blobs_written = False
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                self._refresh()
                self._check_latest()
            head = self._history.head
            base = self._history.snapshot(head.seq) if head else {}
            missing = [n for n in removed if n not in base]
            if missing:
                raise FileNotInCommitError(missing[0], head.hash if head else None)
            added = {n: (b.digest, b.size) for n, b in staged.items()}
            snapshot = {n: v for n, v in base.items() if n not in removed}
            snapshot.update(added)
            _check_folder_clash(snapshot)
            proposal = Proposal(
                message=message,
                files=FrozenDict((n, h) for n, (h, _) in snapshot.items()),
                added=tuple(added), removed=tuple(removed), metadata=freeze(metadata),
                tags=FrozenList(tags), author=author)
            policy_hash = self._admit(proposal)
            if not blobs_written:
                if not head:
                    self._ensure_info()
                for blob in staged.values():
                    self._store.publish(blob)
                blobs_written = True
            now = datetime.now(timezone.utc)
            if head is not None and now <= head.timestamp:
                now = head.timestamp + timedelta(microseconds=1)
            record = make_record(
                seq=len(self._history), parent=head.hash if head else None,
                snapshot=snapshot, added=added, removed=removed, message=message,
                metadata=metadata, tags=tags, timestamp=now, author=author,
                policy=policy_hash)
            if self._journal.publish(record):
                self._pinned = None
                self._journal.write_due_checkpoints()
                return str(record["hash"])
            time.sleep(random.uniform(0, min(0.2, 0.002 * 2 ** min(attempt, 7))))
        raise ConflictError(
            f"Gave up committing to dataset {self.name!r} after {MAX_ATTEMPTS} attempts: "
            "other writers kept committing first. Nothing of this commit is in the history.")

    def _admit(self, proposal: Proposal) -> str | None:
        """Judge ``proposal`` against the registry's policy; return the policy hash.

        Without a policy every well-formed commit is admitted.
        """
        return None


def _named_sources(add_files: AddFiles | None) -> dict[str, str]:
    """``{name in registry: source}`` from a path, a list of paths, or a mapping."""
    if add_files is None:
        return {}
    if isinstance(add_files, str | os.PathLike):
        add_files = [add_files]
    pairs: list[tuple[str, str]]
    if isinstance(add_files, Mapping):
        pairs = [(str(k), os.fspath(v)) for k, v in add_files.items()]
    else:
        pairs = []
        for item in add_files:
            if not isinstance(item, str | os.PathLike):
                raise InvalidInputError(
                    f"add_files entries must be paths or URLs, not {type(item).__name__}")
            source = os.fspath(item)
            pairs.append((source_basename(source), source))
    named: dict[str, str] = {}
    for raw_name, source in pairs:
        name = validate_file_name(raw_name)
        if name in named and named[name] != source:
            raise InvalidInputError(
                f"Two files would be stored as {name!r}: {named[name]!r} and {source!r}. "
                "Pass a mapping {name: source} to give them different names.")
        named[name] = source
    return named


def _removed_names(remove_files: Iterable[str] | None) -> list[str]:
    if remove_files is None:
        return []
    if isinstance(remove_files, str):
        remove_files = [remove_files]
    return list(dict.fromkeys(validate_file_name(n) for n in remove_files))


def _clean_tags(tags: Iterable[str] | None) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = [tags]
    out: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip():
            raise InvalidTagError(f"Tags must be non-empty strings, got {tag!r}")
        if tag != tag.strip() or _has_control(tag) or len(tag) > MAX_TAG_LENGTH:
            raise InvalidTagError(
                f"Tag {tag!r} has surrounding spaces, control characters or more than "
                f"{MAX_TAG_LENGTH} characters")
        if tag not in out:
            out.append(tag)
    return out


def _has_control(text: str) -> bool:
    """C0 controls, DEL and C1 controls (the same set file names refuse)."""
    return any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in text)


def _source_exists(source: str) -> bool:
    if "://" in source or "::" in source:
        fs, path = fsspec.core.url_to_fs(source)
        return bool(fs.isfile(path))
    return os.path.isfile(source)


def _source_is_folder(source: str) -> bool:
    if "://" in source or "::" in source:
        fs, path = fsspec.core.url_to_fs(source)
        return bool(fs.isdir(path))
    return os.path.isdir(source)


def _check_folder_clash(snapshot: Mapping[str, Any]) -> None:
    """A name cannot be both a file and a folder of other files."""
    folders: dict[str, str] = {}
    for name in snapshot:
        parts = name.split("/")
        for i in range(1, len(parts)):
            folders.setdefault("/".join(parts[:i]), name)
    for name in snapshot:
        if name in folders:
            raise InvalidNameError(name, f"it is a file and also the folder of "
                                   f"{folders[name]!r}", kind="file name")
