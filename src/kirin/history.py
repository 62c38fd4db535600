"""The commit format and the in-memory history: pure, no I/O.

A commit record is a JSON object. Its ``hash`` is the SHA-256 of the
canonical JSON of every other field, so any change to a stored record (or a
checkpoint's copy of it) is detected on load. Records store the *change* a
commit made (files added or replaced, names removed) plus ``tree``, the hash
of the full snapshot: storage grows with what changed, not with the size of
the snapshot times the number of commits, and the snapshot a commit claims is
still verified whenever it is rebuilt.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ._json import FrozenDict, FrozenList, canonical_json, freeze
from .errors import (
    AmbiguousRefError,
    CommitNotFoundError,
    CorruptObjectError,
    InvalidNameError,
)
from .naming import validate_file_name
from .values import BlobReader, Commit, File

FORMAT_VERSION = 1
#: (content hash, size) of each file of a snapshot, by name.
Snapshot = Mapping[str, tuple[str, int]]

_RECORD_KEYS = frozenset({"kirin", "seq", "hash", "parent", "tree", "changes", "message",
                          "metadata", "tags", "timestamp", "author", "policy"})


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def tree_hash(snapshot: Snapshot) -> str:
    """Hash of a full snapshot: sorted ``[name, hash, size]`` triples."""
    return sha256_text(canonical_json([[n, h, s] for n, (h, s) in sorted(snapshot.items())]))


def record_hash(record: Mapping[str, Any]) -> str:
    return sha256_text(canonical_json({k: v for k, v in record.items() if k != "hash"}))


def make_record(*, seq: int, parent: str | None, snapshot: Snapshot,
                added: Mapping[str, tuple[str, int]], removed: Iterable[str], message: str,
                metadata: Any, tags: Sequence[str], timestamp: datetime, author: str,
                policy: str | None) -> dict[str, Any]:
    """A complete commit record, hash included."""
    record: dict[str, Any] = {
        "kirin": FORMAT_VERSION,
        "seq": seq,
        "parent": parent,
        "tree": tree_hash(snapshot),
        "changes": {
            "add": {n: {"hash": h, "size": s} for n, (h, s) in sorted(added.items())},
            "remove": sorted(removed),
        },
        "message": message,
        "metadata": metadata,
        "tags": list(tags),
        "timestamp": timestamp.isoformat(),
        "author": author,
        "policy": policy,
    }
    record["hash"] = record_hash(record)
    return record


def encode_record(record: Mapping[str, Any]) -> bytes:
    return (canonical_json(record) + "\n").encode("utf-8")


def decode_record(data: bytes, *, where: str, seq: int | None = None) -> dict[str, Any]:
    """Parse and verify one stored record; any defect is a CorruptObjectError."""
    try:
        record = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError: JSONDecodeError, or an integer past Python's digit limit;
        # RecursionError: nesting deeper than the decoder's stack allows.
        raise CorruptObjectError(f"Commit record {where} is not valid JSON ({exc}); "
                                 "it may be truncated", path=where) from exc
    return check_record(record, where=where, seq=seq)


def check_record(record: Any, *, where: str, seq: int | None = None) -> dict[str, Any]:
    def bad(reason: str) -> CorruptObjectError:
        return CorruptObjectError(f"Commit record {where} is malformed: {reason}",
                                  path=where)

    if not isinstance(record, dict):
        raise bad("not a JSON object")
    if record.get("kirin") != FORMAT_VERSION:
        raise bad(f"unknown format version {record.get('kirin')!r} "
                  f"(this Kirin reads version {FORMAT_VERSION})")
    missing = _RECORD_KEYS - record.keys()
    if missing:
        raise bad(f"missing {', '.join(sorted(missing))}")
    if seq is not None and record["seq"] != seq:
        raise bad(f"it says it is commit #{record['seq']}, expected #{seq}")
    changes = record["changes"]
    if not (isinstance(changes, dict) and isinstance(changes.get("add"), dict)
            and isinstance(changes.get("remove"), list)):
        raise bad("'changes' must hold 'add' (object) and 'remove' (list)")
    for name, entry in changes["add"].items():
        if not (isinstance(entry, dict) and isinstance(entry.get("hash"), str)
                and isinstance(entry.get("size"), int)):
            raise bad(f"file entry {name!r} needs a string 'hash' and an integer 'size'")
        if not _HEX64.fullmatch(entry["hash"]) or entry["size"] < 0:
            raise bad(f"file entry {name!r} has an invalid hash or size")
    for name in [*changes["add"], *changes["remove"]]:
        _check_stored_name(name, bad)
    for key in ("message", "author", "timestamp"):
        if not isinstance(record[key], str):
            raise bad(f"{key!r} must be a string")
    for key in ("parent", "policy"):
        if record[key] is not None and not (isinstance(record[key], str)
                                            and _HEX64.fullmatch(record[key])):
            raise bad(f"{key!r} must be a hash or null")
    if not isinstance(record["tags"], list) or not all(isinstance(t, str) for t in record["tags"]):
        raise bad("'tags' must be a list of strings")
    if not isinstance(record["metadata"], dict):
        raise bad("'metadata' must be an object")
    try:
        actual = record_hash(record)
    except (ValueError, RecursionError) as exc:  # NaN, lone surrogates: Kirin writes neither
        raise bad(f"it holds a value canonical JSON cannot encode ({exc})") from exc
    if actual != record["hash"]:
        raise CorruptObjectError(
            f"Commit record {where} does not match its hash: it claims "
            f"{str(record['hash'])[:12]} but its content hashes to {actual[:12]}; "
            "it was altered after it was written", path=where, commit=str(record["hash"]))
    return record


_HEX64 = re.compile(r"[0-9a-f]{64}")


def _check_stored_name(name: Any, bad: Callable[[str], CorruptObjectError]) -> None:
    """A name read from storage must be one Kirin itself would have written."""
    try:
        if validate_file_name(name) != name:
            raise bad(f"file name {name!r} is not in normal form (NFC)")
    except InvalidNameError as exc:
        raise bad(f"unsafe file name: {exc}") from exc


class History:
    """The records of one dataset, oldest first, with snapshots rebuilt on demand.

    Appending is the only change. Snapshots are rebuilt by replaying changes
    from the nearest cached snapshot, so walking the history in order costs
    one change per step.
    """

    _CACHE = 16

    def __init__(self, dataset: str, reader: BlobReader | None) -> None:
        self.dataset = dataset
        self._reader = reader
        self._records: list[dict[str, Any]] = []
        self._commits: list[Commit | None] = []
        self._index: dict[str, int] = {}
        self._sorted: list[str] | None = None
        self._snapshots: OrderedDict[int, dict[str, tuple[str, int]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def reset(self) -> None:
        """Forget every record (used when checkpoints turn out not to match the log)."""
        self._records.clear()
        self._commits.clear()
        self._index.clear()
        self._sorted = None
        self._snapshots.clear()

    @property
    def head_hash(self) -> str | None:
        return self._records[-1]["hash"] if self._records else None

    def append(self, record: dict[str, Any], *, where: str,
               snapshot: dict[str, tuple[str, int]] | None = None) -> None:
        """Add the next record, checking it continues the chain.

        ``snapshot`` is the record's full snapshot when the caller built it
        (the writer that made the record hashed it into ``tree``), saving the
        next commit a copy and a re-hash of every entry.
        """
        expected_seq = len(self._records)
        if record["seq"] != expected_seq:
            raise CorruptObjectError(f"Commit record {where} is #{record['seq']}, "
                                     f"expected #{expected_seq}", path=where)
        if record["parent"] != self.head_hash:
            raise CorruptObjectError(
                f"Commit record {where} names parent {str(record['parent'])[:12]}, but the "
                f"previous commit is {str(self.head_hash)[:12]}: the history is broken",
                path=where, commit=record["hash"])
        if record["hash"] in self._index:
            raise CorruptObjectError(f"Commit record {where} repeats commit "
                                     f"{record['hash'][:12]}", path=where)
        self._records.append(record)
        self._commits.append(None)
        self._index[record["hash"]] = expected_seq
        self._sorted = None
        if snapshot is not None:
            self._remember(expected_seq, snapshot)

    def record(self, seq: int) -> dict[str, Any]:
        return self._records[seq]

    def records(self) -> Sequence[dict[str, Any]]:
        return self._records

    def commit(self, seq: int) -> Commit:
        cached = self._commits[seq]
        if cached is None:
            cached = self._build(seq)
            self._commits[seq] = cached
        return cached

    def commits(self) -> list[Commit]:
        """Every commit, oldest first."""
        return [self.commit(i) for i in range(len(self._records))]

    @property
    def head(self) -> Commit | None:
        return self.commit(len(self._records) - 1) if self._records else None

    def _build(self, seq: int) -> Commit:
        rec = self._records[seq]
        try:
            timestamp = datetime.fromisoformat(rec["timestamp"])
        except (TypeError, ValueError) as exc:
            raise CorruptObjectError(f"Commit {rec['hash'][:12]} has an unreadable "
                                     f"timestamp {rec['timestamp']!r}",
                                     path=f"#{seq}", commit=rec["hash"]) from exc
        digest = rec["hash"]
        return Commit(
            hash=digest,
            parent_hash=rec["parent"],
            message=rec["message"],
            metadata=freeze(rec["metadata"]),
            tags=FrozenList(rec["tags"]),
            timestamp=timestamp,
            author=rec["author"],
            seq=seq,
            policy_hash=rec["policy"],
            _files=self._files_loader(seq, digest),
        )

    def _files_loader(self, seq: int, digest: str) -> Callable[[], dict[str, File]]:
        def load() -> dict[str, File]:
            return {name: File(name, h, s, digest, self._reader)
                    for name, (h, s) in self.snapshot(seq).items()}
        return load

    def snapshot(self, seq: int) -> dict[str, tuple[str, int]]:
        """The full file snapshot of commit ``seq`` (verified against its tree hash)."""
        if seq < 0:
            return {}
        if seq in self._snapshots:
            self._snapshots.move_to_end(seq)
            return self._snapshots[seq]
        start = max((s for s in self._snapshots if s < seq), default=-1)
        current = dict(self._snapshots[start]) if start >= 0 else {}
        for i in range(start + 1, seq + 1):
            rec = self._records[i]
            for name in rec["changes"]["remove"]:
                current.pop(name, None)
            for name, entry in rec["changes"]["add"].items():
                current[name] = (entry["hash"], entry["size"])
        rec = self._records[seq]
        if tree_hash(current) != rec["tree"]:
            raise CorruptObjectError(
                f"Commit {rec['hash'][:12]} (#{seq}) lists files that do not match its "
                "recorded tree hash: the history was altered", path=f"#{seq}",
                commit=rec["hash"])
        self._remember(seq, current)
        return current

    def _remember(self, seq: int, snapshot: dict[str, tuple[str, int]]) -> None:
        self._snapshots[seq] = snapshot
        self._snapshots.move_to_end(seq)
        if len(self._snapshots) > self._CACHE:
            oldest = next(s for s in self._snapshots if s != len(self._records) - 1)
            del self._snapshots[oldest]

    def resolve(self, ref: str) -> Commit:
        """The commit whose hash is ``ref`` or starts with it."""
        text = ref.strip().lower() if isinstance(ref, str) else ""
        if not text or any(c not in "0123456789abcdef" for c in text):
            raise CommitNotFoundError(str(ref), self.dataset,
                                      f"{ref!r} is not a commit hash or hash prefix "
                                      f"(dataset {self.dataset!r})")
        if text in self._index:
            return self.commit(self._index[text])
        if self._sorted is None:
            self._sorted = sorted(self._index)
        start = bisect.bisect_left(self._sorted, text)
        matches = []
        for digest in self._sorted[start:]:
            if not digest.startswith(text):
                break
            matches.append(digest)
        if not matches:
            raise CommitNotFoundError(text, self.dataset)
        if len(matches) > 1:
            raise AmbiguousRefError(text, self.dataset, matches)
        return self.commit(self._index[matches[0]])

    def seq_of(self, digest: str) -> int | None:
        return self._index.get(digest)


def diff_commits(old: Commit, new: Commit) -> dict[str, Any]:
    """What changed from ``old`` to ``new``: metadata, tags and files.

    ``metadata_diff`` compares top-level keys, as the original Kirin did (a
    changed nested object appears whole under its key);
    ``metadata_diff_paths`` gives the same by dotted path to each leaf.
    """
    m1, m2 = old.metadata, new.metadata
    f1, f2 = old.files, new.files
    p1, p2 = dict(_leaves(m1)), dict(_leaves(m2))
    return {
        "commit1": {"hash": old.short_hash, "message": old.message},
        "commit2": {"hash": new.short_hash, "message": new.message},
        "metadata_diff": {
            "added": {k: v for k, v in m2.items() if k not in m1},
            "removed": {k: v for k, v in m1.items() if k not in m2},
            "changed": {k: {"old": m1[k], "new": m2[k]} for k in m1
                        if k in m2 and not _same(m1[k], m2[k])},
        },
        "metadata_diff_paths": {
            "added": {k: v for k, v in p2.items() if k not in p1},
            "removed": {k: v for k, v in p1.items() if k not in p2},
            "changed": {k: {"old": p1[k], "new": p2[k]} for k in p1
                        if k in p2 and not _same(p1[k], p2[k])},
        },
        "tags_diff": {
            "added": [t for t in new.tags if t not in old.tags],
            "removed": [t for t in old.tags if t not in new.tags],
        },
        "files_diff": {
            "added": sorted(n for n in f2 if n not in f1),
            "removed": sorted(n for n in f1 if n not in f2),
            "modified": sorted(n for n in f1 if n in f2 and f1[n].hash != f2[n].hash),
        },
    }


def _same(a: Any, b: Any) -> bool:
    """JSON equality that keeps ``true`` distinct from ``1``."""
    return canonical_json(a) == canonical_json(b)


def _leaves(value: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(value, dict) and (value or not prefix):
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}.{key}" if prefix else key)
    else:
        yield prefix, value


__all__ = ["FrozenDict", "History", "decode_record", "diff_commits", "encode_record",
           "make_record", "tree_hash"]
