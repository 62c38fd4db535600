"""``import_kirin0``: an original-Kirin (0.0.x) registry becomes this format.

The original stores, under its root::

    datasets/<name>/commits.json       {"dataset_name": ..., "commits": [commit, ...]}
    data/<h[:2]>/<h[2:]>/<filename>    each file's bytes, h = SHA-256 of the bytes
    data/<h[:2]>/<h[2:]>               (the same, from before filenames were kept)

where a commit is ``{"hash", "message", "timestamp" (naive ISO 8601, the
writer's local time), "parent_hash", "files": {name: {"hash", "name", "size",
"content_type", "metadata"?}}, "metadata", "tags"}`` holding the *whole*
snapshot (not a delta). The history is the chain of ``parent_hash`` links.

Each original commit becomes one commit here, in chain order, with the same
message, metadata and tags; the files added, replaced and removed are the
difference between consecutive snapshots. What the new format has no place
for goes into the commit's metadata under the key ``kirin0``: the original
commit hash, its timestamp (verbatim), its parent hash, and the per-file
content types and metadata when there were any. A commit's own timestamp is
the time of the import (the format requires timestamps to increase).

An import runs in two passes. The first reads every ``commits.json``, checks
its structure, orders the chain, checks every name, message, metadata and
tag against this format's rules, and re-hashes every blob against the hash
the original recorded: any problem raises (:class:`CorruptObjectError`
naming the original commit and file, or :class:`InvalidInputError`) before
anything is written, in any dataset. The second pass commits. A dataset that
already holds commits imported from the same original is resumed: the
commits already there (matched by ``kirin0.hash``) are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import progress
from ..catalog import Catalog
from ..errors import (
    CorruptObjectError,
    InvalidInputError,
    InvalidNameError,
    KirinError,
)
from ..inputs import PathLike, prepare
from ..naming import validate_dataset_name, validate_file_name
from ..store import Store
from ..verified import CHUNK, BlobCheck

#: The metadata key under which the original's own fields are kept.
KEY = "kirin0"


@dataclass(frozen=True)
class OriginalFile:
    name: str  # the name in the snapshot
    hash: str
    size: int
    stored_name: str  # the filename in the blob path
    extra: dict[str, Any]  # content_type / metadata, when the original had them


@dataclass(frozen=True)
class OriginalCommit:
    hash: str
    parent_hash: str | None
    message: str
    timestamp: str
    files: dict[str, OriginalFile]
    metadata: dict[str, Any]
    tags: list[str]

    def kept_metadata(self) -> dict[str, Any]:
        """The commit's metadata plus ``kirin0``: what this format has no field for."""
        kept: dict[str, Any] = {"hash": self.hash, "timestamp": self.timestamp,
                                "parent_hash": self.parent_hash}
        extra = {n: f.extra for n, f in sorted(self.files.items()) if f.extra}
        if extra:
            kept["files"] = extra
        return {**self.metadata, KEY: kept}


@dataclass(frozen=True)
class DatasetImport:
    """What the import did (or, in a dry run, would do) for one original dataset."""

    name: str
    commits: int  # in the original
    imported: int  # committed now (or to be, in a dry run)
    skipped: int  # already imported by an earlier run
    files_checked: int  # distinct blobs re-hashed
    bytes_checked: int
    hashes: tuple[str, ...] = ()  # the new commits' hashes, oldest first

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "commits": self.commits, "imported": self.imported,
                "skipped": self.skipped, "files_checked": self.files_checked,
                "bytes_checked": self.bytes_checked, "hashes": list(self.hashes)}


@dataclass(frozen=True)
class ImportReport:
    source: str
    dry_run: bool
    datasets: tuple[DatasetImport, ...] = field(default_factory=tuple)

    @property
    def imported(self) -> int:
        return sum(d.imported for d in self.datasets)

    @property
    def skipped(self) -> int:
        return sum(d.skipped for d in self.datasets)


@dataclass
class _Plan:
    name: str
    commits: list[OriginalCommit]
    blobs: dict[tuple[str, str], str]  # (hash, stored name) -> path
    skip: int = 0
    files_checked: int = 0
    bytes_checked: int = 0


class _Original:
    """Read access to an original registry (any fsspec URL or local folder)."""

    def __init__(self, root: str) -> None:
        store = Store(root)  # for its filesystem and root path; it writes nothing
        self.fs = store.fs
        self.root = store.root
        self.url = store.url
        self.is_local = store.is_local

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def source(self, path: str) -> str:
        """What ``Dataset.commit`` is given to read ``path`` (a URL unless local)."""
        return path if self.is_local else str(self.fs.unstrip_protocol(path))

    def dataset_names(self) -> list[str]:
        folder = self.path("datasets")
        if not self.fs.isdir(folder):
            raise InvalidInputError(
                f"{self.url} is not an original Kirin registry: it has no datasets/ folder")
        return sorted(entry.rstrip("/").rsplit("/", 1)[-1]
                      for entry in self.fs.ls(folder, detail=False) if self.fs.isdir(entry))

    def blob(self, digest: str, stored_name: str) -> str | None:
        for path in (self.path("data", digest[:2], digest[2:], stored_name),
                     self.path("data", digest[:2], digest[2:])):
            if self.fs.isfile(path):
                return path
        return None


def import_kirin0(source_root: PathLike, target: Catalog | PathLike, *,
                  dataset_names: Iterable[str] | None = None, dry_run: bool = False,
                  author: str | None = None) -> ImportReport:
    """Import the original-Kirin registry at ``source_root`` into ``target`` (a catalog or root).

    Every original dataset (or only ``dataset_names``) becomes the dataset of
    the same name under ``target``. ``dry_run`` does the whole first pass
    (every blob is re-hashed) and reports what would be imported, writing
    nothing. ``author`` is recorded on the new commits (default: the usual
    ``KIRIN_AUTHOR`` / user@host; the original recorded none).
    """
    original = _Original(str(source_root))
    catalog = target if isinstance(target, Catalog) else Catalog(target)
    available = original.dataset_names()
    if dataset_names is None:
        names = available
    else:
        names = list(dict.fromkeys(dataset_names))
        missing = [n for n in names if n not in available]
        if missing:
            raise InvalidInputError(
                f"No dataset {missing[0]!r} in the original registry {original.url}; it has: "
                f"{', '.join(available) or 'none'}")
    plans = [_plan(original, catalog, name) for name in names]  # pass 1: nothing written
    results = []
    for plan in plans:
        hashes: tuple[str, ...] = ()
        if not dry_run:
            hashes = _commit(original, catalog, plan, author)
        results.append(DatasetImport(plan.name, len(plan.commits),
                                     len(plan.commits) - plan.skip, plan.skip,
                                     plan.files_checked, plan.bytes_checked, hashes))
    return ImportReport(original.url, dry_run, tuple(results))


# -- pass 1: read, check, verify ---------------------------------------------------
def _plan(original: _Original, catalog: Catalog, name: str) -> _Plan:
    try:
        validate_dataset_name(name)
    except InvalidNameError as exc:
        raise InvalidInputError(f"Original dataset {name!r} cannot be imported: "
                                f"{exc.reason}") from None
    commits_file = original.path("datasets", name, "commits.json")
    commits = _read_chain(original, commits_file, name) if original.fs.isfile(commits_file) \
        else []
    for i, commit in enumerate(commits):
        _check_inputs(commit, name)
        if not commit.files and (i == 0 or not commits[i - 1].files):
            raise InvalidInputError(f"Original commit {commit.hash} of dataset {name!r} "
                                    "changes nothing and has no files: it cannot be imported")
    plan = _Plan(name, commits, {})
    plan.skip = _already_imported(catalog, name, commits)
    _verify_blobs(original, plan)
    return plan


def _read_chain(original: _Original, path: str, dataset: str) -> list[OriginalCommit]:
    def bad(reason: str, commit: str | None = None,
            file: str | None = None) -> CorruptObjectError:
        where = (f", commit {commit}" if commit else "") + (f", file {file!r}" if file else "")
        return CorruptObjectError(f"Corrupt original registry: {path}{where}: {reason}",
                                  path=path, commit=commit, file=file)

    try:
        with original.fs.open(path, "rb") as stream:
            data = json.loads(stream.read().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("commits"), list):
        raise bad('expected an object with a "commits" list')
    commits: dict[str, OriginalCommit] = {}
    for raw in data["commits"]:
        commit = _parse_commit(raw, bad)
        if commit.hash in commits:
            raise bad("the commit appears twice", commit.hash)
        commits[commit.hash] = commit
    children: dict[str | None, list[OriginalCommit]] = {}
    for commit in commits.values():
        if commit.parent_hash is not None and commit.parent_hash not in commits:
            raise bad(f"its parent {commit.parent_hash} is not in the file", commit.hash)
        children.setdefault(commit.parent_hash, []).append(commit)
    chain: list[OriginalCommit] = []
    parent: str | None = None
    while children.get(parent):
        following = children[parent]
        if len(following) > 1:
            raise bad("the history branches: commits "
                      f"{', '.join(c.hash for c in following)} share this parent", parent)
        chain.append(following[0])
        parent = following[0].hash
    if len(chain) != len(commits):
        raise bad("the parent links do not form one chain from a first commit "
                  f"({len(commits) - len(chain)} commits unreachable)")
    return chain


def _parse_commit(raw: Any, bad: Any) -> OriginalCommit:
    if not isinstance(raw, dict) or not isinstance(raw.get("hash"), str) or not raw["hash"]:
        raise bad("a commit without a hash")
    digest = raw["hash"]
    message, stamp, parent = raw.get("message"), raw.get("timestamp"), raw.get("parent_hash")
    metadata, tags, files = raw.get("metadata", {}), raw.get("tags", []), raw.get("files", {})
    if not isinstance(message, str):
        raise bad("message is not a string", digest)
    if not isinstance(stamp, str):
        raise bad("timestamp is not a string", digest)
    try:
        datetime.fromisoformat(stamp)
    except ValueError:
        raise bad(f"timestamp {stamp!r} is not ISO 8601", digest) from None
    if parent is not None and not isinstance(parent, str):
        raise bad("parent_hash is not a string or null", digest)
    if not isinstance(metadata, dict):
        raise bad("metadata is not an object", digest)
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise bad("tags is not a list of strings", digest)
    if not isinstance(files, dict):
        raise bad("files is not an object", digest)
    parsed: dict[str, OriginalFile] = {}
    for name, entry in files.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("hash"), str) or \
                type(entry.get("size")) is not int:
            raise bad("the entry needs a hash and an integer size", digest, name)
        stored = entry.get("name", name)
        extra = {k: entry[k] for k in ("content_type", "metadata") if entry.get(k)}
        parsed[name] = OriginalFile(name, entry["hash"].lower(), entry["size"],
                                    stored if isinstance(stored, str) else name, extra)
    return OriginalCommit(digest, parent or None, message, stamp, parsed, metadata, tags)


def _check_inputs(commit: OriginalCommit, dataset: str) -> None:
    """Everything ``Dataset.commit`` would refuse, refused now (before any write)."""
    where = f"original commit {commit.hash} of dataset {dataset!r}"
    for name in commit.files:
        try:
            validate_file_name(name)
        except InvalidNameError as exc:
            raise InvalidInputError(f"{where}: file {name!r} cannot be imported: "
                                    f"{exc.reason}") from None
    if KEY in commit.metadata:
        raise InvalidInputError(f"{where}: its metadata already has a {KEY!r} key, where the "
                                "import keeps the original hash and timestamp")
    try:
        prepare(commit.message, None, None, commit.kept_metadata(), commit.tags, None,
                allow_empty=True)
    except KirinError as exc:
        raise InvalidInputError(f"{where} cannot be imported: {exc}") from None


def _already_imported(catalog: Catalog, name: str, commits: Sequence[OriginalCommit]) -> int:
    """How many of ``commits`` an earlier import put in dataset ``name`` (refuse if mixed)."""
    dataset = catalog.get_dataset(name)
    existing = list(reversed(dataset.history()))
    for i, commit in enumerate(existing):
        kept = commit.metadata.get(KEY)
        origin = kept.get("hash") if isinstance(kept, Mapping) else None
        if i >= len(commits) or origin != commits[i].hash:
            raise InvalidInputError(
                f"Dataset {name!r} already exists under {catalog.root_dir} with commits that "
                f"are not this original's history (commit {commit.hash[:12]}, seq {i}); "
                "import into another root, or delete the dataset first")
    return len(existing)


def _verify_blobs(original: _Original, plan: _Plan) -> None:
    """Re-hash every blob the history references; the first failure names commit and file."""
    first_use: dict[tuple[str, str], tuple[OriginalCommit, OriginalFile]] = {}
    for commit in plan.commits:
        for entry in commit.files.values():
            first_use.setdefault((entry.hash, entry.stored_name), (commit, entry))
    total = sum(entry.size for _, entry in first_use.values())
    with progress.transfer(f"Verifying {plan.name}", total) as advance:
        for key, (commit, entry) in first_use.items():
            where = (f"original commit {commit.hash} of dataset {plan.name!r}, "
                     f"file {entry.name!r}")
            path = original.blob(entry.hash, entry.stored_name)
            if path is None:
                raise CorruptObjectError(
                    f"Corrupt original registry: {where}: its blob {entry.hash} is missing; "
                    "nothing was imported", path=original.path("data", entry.hash[:2]),
                    commit=commit.hash, file=entry.name)
            check = BlobCheck(entry.hash, entry.size)
            with original.fs.open(path, "rb") as stream:
                while chunk := stream.read(CHUNK):
                    check.count(chunk)
                    advance(len(chunk))
            problem = check.problem()
            if problem is not None:
                raise CorruptObjectError(
                    f"Corrupt original registry: {where}: blob {path} does not match the "
                    f"recorded hash {entry.hash} and size {entry.size} ({problem}); nothing "
                    "was imported", path=path, commit=commit.hash, file=entry.name)
            plan.blobs[key] = path
            plan.files_checked += 1
            plan.bytes_checked += check.seen


# -- pass 2: commit ------------------------------------------------------------------
def _commit(original: _Original, catalog: Catalog, plan: _Plan,
            author: str | None) -> tuple[str, ...]:
    if not plan.commits:
        if plan.name not in catalog:
            catalog.create_dataset(plan.name)
        return ()
    dataset = catalog.get_dataset(plan.name)
    previous: dict[str, OriginalFile] = plan.commits[plan.skip - 1].files if plan.skip else {}
    todo = plan.commits[plan.skip:]
    hashes: list[str] = []
    total, before = 0, previous
    for commit in todo:  # the bytes the commits below will copy, for the progress bar
        total += sum(f.size for n, f in commit.files.items()
                     if n not in before or before[n].hash != f.hash)
        before = commit.files
    with progress.transfer(f"Importing {plan.name}", total) as advance:
        for commit in todo:
            added = {n: f for n, f in commit.files.items()
                     if n not in previous or previous[n].hash != f.hash}
            removed = sorted(n for n in previous if n not in commit.files)
            if not added and not removed and commit.files:  # same snapshot: still a commit
                name = min(commit.files)
                added = {name: commit.files[name]}
            sources = {n: original.source(plan.blobs[(f.hash, f.stored_name)])
                       for n, f in added.items()}
            new_hash = dataset.commit(commit.message, add_files=sources or None,
                                      remove_files=removed or None,
                                      metadata=commit.kept_metadata(), tags=commit.tags,
                                      author=author)
            stored = dataset.get_commit(new_hash)
            assert stored is not None
            for n, f in added.items():  # the bytes committed are the bytes verified
                if stored.files[n].hash != f.hash:
                    raise CorruptObjectError(
                        f"Original commit {commit.hash}, file {n!r} changed during the "
                        f"import (now {stored.files[n].hash}, recorded {f.hash}); the "
                        f"import stopped after {len(hashes)} commits: re-run it to resume",
                        path=plan.blobs[(f.hash, f.stored_name)], commit=commit.hash, file=n)
                advance(f.size)
            hashes.append(new_hash)
            previous = commit.files
    return tuple(hashes)
