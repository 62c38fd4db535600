"""Immutable values handed to users: :class:`File` and :class:`Commit`.

They carry no storage logic of their own. A ``File`` holds a reference to the
blob reader of the registry it came from, so ``read_bytes()`` and friends
work on it directly, and every read is verified against the file's hash.
"""

from __future__ import annotations

import functools
import io
import json
import mimetypes
from collections.abc import Callable, Iterator, Mapping
from dataclasses import FrozenInstanceError, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

from ._json import FrozenDict, FrozenList, freeze, thaw
from .arguments import encoding_argument, path_argument
from .errors import InvalidInputError
from .links import Lineage, LinkedState
from .naming import lookup_name

SHORT_HASH_LENGTH = 8


@functools.cache
def _mime_types() -> mimetypes.MimeTypes:
    """Python's built-in MIME table only: the machine's /etc/mime.types would make
    content types differ between hosts (and call ``model.pt`` a SNES page table).

    Made on first use: the first ``MimeTypes()`` of a process also reads the machine's
    tables for the module's own functions (about 7 ms), which a command that shows no
    content type (``kirin log``) need not pay.
    """
    return mimetypes.MimeTypes()


class BlobReader(Protocol):
    """What a :class:`File` needs from the storage layer to read its bytes."""

    def open_blob(self, digest: str, size: int, *, name: str, commit: str | None,
                  stream: bool = False) -> IO[bytes]: ...

    def download_blob(self, digest: str, size: int, target: Path, *, name: str,
                      commit: str | None) -> None: ...


@dataclass(frozen=True)
class File:
    """One named file of a commit: its content hash, size, and a way to read it.

    Reads are verified: no byte that fails the file's hash is returned, and
    a mismatch raises :class:`~kirin.errors.CorruptObjectError` naming file
    and commit (see :meth:`open` for the one opt-in exception).
    """

    name: str
    hash: str
    size: int
    commit_hash: str | None = None
    _reader: BlobReader | None = field(default=None, repr=False, compare=False)

    @property
    def short_hash(self) -> str:
        return self.hash[:SHORT_HASH_LENGTH]

    @property
    def content_type(self) -> str:
        """MIME type guessed from the name; ``application/octet-stream`` if unknown."""
        guessed, _ = _mime_types().guess_type(self.name, strict=False)
        return guessed or "application/octet-stream"

    def _require_reader(self) -> BlobReader:
        if self._reader is None:
            raise RuntimeError(f"File {self.name!r} is not attached to a registry")
        return self._reader

    def open(self, mode: str = "rb", encoding: str = "utf-8", *,
             stream: bool = False) -> IO[Any]:
        """A reader of the content, binary (``"rb"``) or text (``"r"``).

        By default the whole content is fetched and checked against the hash
        before this returns, so a damaged file raises here and every byte
        read is verified: a parser (``pickle.load``, ``torch.load``) never
        sees a tampered byte. The reader is seekable. It serves a private
        copy (in memory up to 16 MiB, in a temporary file in ``TMPDIR``
        above), except for large files on local disk, served from the file
        descriptor they were hashed through, guarded against rewrites in
        place (see ``docs/storage-format.md``).

        ``stream=True`` hands bytes out as they arrive, without the copy:
        earlier chunks are unverified, and the read that completes the file
        (the one returning its last byte, or any read past it) raises
        :class:`~kirin.errors.CorruptObjectError` on a mismatch. Use it only
        where nothing acts on the bytes before the end is reached.
        """
        if mode not in _READ_MODES:
            raise _bad_mode("File.open", mode)
        raw = self._require_reader().open_blob(self.hash, self.size, name=self.name,
                                               commit=self.commit_hash, stream=stream)
        if mode == "rb":
            return raw
        return io.TextIOWrapper(raw, encoding=encoding)

    def read_bytes(self) -> bytes:
        """The whole content, returned only once it has matched the hash."""
        with self.open("rb", stream=True) as reader:  # nothing is returned before the end
            content: bytes = reader.read()
            return content

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding_argument(encoding))

    def read(self, mode: str = "r", encoding: str = "utf-8") -> str | bytes:
        """Whole content, as text (``"r"``) or bytes (``"rb"``), as in the original."""
        if mode == "rb":
            return self.read_bytes()
        if mode in ("r", "rt"):
            return self.read_text(encoding)
        raise _bad_mode("File.read", mode)

    def download_to(self, path: str | Path) -> str:
        """Write the verified content to ``path`` (a file path) and return it.

        The target appears only once complete and verified.
        """
        target = Path(path_argument(path, "path"))
        self._require_reader().download_blob(self.hash, self.size, target,
                                             name=self.name, commit=self.commit_hash)
        return str(target)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "hash": self.hash, "size": self.size,
                "content_type": self.content_type}


_READ_MODES = ("r", "rt", "rb")


def _bad_mode(what: str, mode: str) -> InvalidInputError:
    return InvalidInputError(f"{what} supports the read modes 'r', 'rt' and 'rb', not {mode!r}"
                             " (committed files are read-only)")


class SnapshotSource:
    """What a stored :class:`Commit` asks for its files: the history it came from.

    A commit built from storage keeps a reference to this source instead of a
    closure of its own, so a long history costs one GC-tracked object per
    commit rather than four.
    """

    def files_of(self, seq: int, commit_hash: str) -> Mapping[str, File]:
        raise NotImplementedError


_MISSING: Any = object()


class Commit:
    """One immutable commit: a snapshot of files plus message, metadata and tags.

    ``files`` is computed on first use (a long history shares its snapshots
    through the deltas stored in each commit); everything else is fixed at
    construction. Two commits are equal when their hashes are.

    A plain ``__slots__`` class rather than a dataclass: opening a long
    history builds one per commit, and ``metadata`` and ``tags`` may be given
    in their stored form (canonical JSON text, a tuple) and are frozen only
    when first read, so commits nobody inspects stay cheap to build, to scan
    for the garbage collector and to free.
    """

    __slots__ = (
        "_files",
        "_files_cache",
        "_governance",
        "_metadata",
        "_tags",
        "author",
        "hash",
        "message",
        "parent_hash",
        "policy_hash",
        "seq",
        "timestamp",
    )

    hash: str
    parent_hash: str | None
    message: str
    timestamp: datetime
    author: str
    seq: int
    policy_hash: str | None
    _metadata: FrozenDict | str
    _tags: FrozenList | tuple[str, ...]
    _files: Callable[[], Mapping[str, File]] | SnapshotSource | None
    _files_cache: Any
    _governance: FrozenDict | str | None

    def __init__(self, hash: str, parent_hash: str | None, message: str,
                 metadata: FrozenDict | str, tags: FrozenList | tuple[str, ...],
                 timestamp: datetime, author: str, seq: int, policy_hash: str | None = None,
                 _files: Callable[[], Mapping[str, File]] | SnapshotSource | None = None,
                 *, governance: Mapping[str, Any] | str | None = None) -> None:
        init = object.__setattr__
        init(self, "hash", hash)
        init(self, "parent_hash", parent_hash)
        init(self, "message", message)
        init(self, "_metadata", metadata)
        init(self, "_tags", tags)
        init(self, "timestamp", timestamp)
        init(self, "author", author)
        init(self, "seq", seq)
        init(self, "policy_hash", policy_hash)
        init(self, "_files", _files)
        init(self, "_files_cache", _MISSING)
        init(self, "_governance", governance if governance is None or isinstance(
            governance, str) else freeze(dict(governance)))

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    @property
    def metadata(self) -> FrozenDict:
        """The commit's metadata, read-only (decoded from its stored JSON on first use)."""
        value = self._metadata
        if isinstance(value, str):
            value = freeze(json.loads(value))
            object.__setattr__(self, "_metadata", value)
        return value

    @property
    def tags(self) -> FrozenList:
        value = self._tags
        if not isinstance(value, FrozenList):
            value = FrozenList(value)
            object.__setattr__(self, "_tags", value)
        return value

    @property
    def short_hash(self) -> str:
        return self.hash[:SHORT_HASH_LENGTH]

    # -- governance (version 2 records; see docs/storage-format.md) ---------
    def _governed(self, key: str) -> Any:
        value = self._governance
        if value is None:
            return None
        if isinstance(value, str):
            value = freeze(json.loads(value))
            object.__setattr__(self, "_governance", value)
        return value.get(key)

    @property
    def kind(self) -> str:
        """``commit``, or the action the record took: promotion, rollback, withdrawal.

        Records written before version 2 are all ``commit``.
        """
        action = self._governed("action")
        return str(action["kind"]) if action is not None else "commit"

    @property
    def promoted_from(self) -> str | None:
        """The full hash of the commit a promotion or rollback promoted (its provenance)."""
        action = self._governed("action")
        source = action.get("source") if action is not None else None
        return str(source) if source is not None else None

    @property
    def withdrawal(self) -> FrozenDict | None:
        """For a withdrawal: ``{"stage": ..., "holder": <hash of the commit retired>}``."""
        action = self._governed("action")
        if action is None or action["kind"] != "withdrawal":
            return None
        return FrozenDict(stage=action["stage"], holder=action["holder"])

    @property
    def rollback(self) -> FrozenDict | None:
        """For a rollback: the earlier holder (``held``) and the policies it was judged by.

        ``policy`` and ``root_policy`` are the hashes of the dataset's and the
        root's policies that admitted ``held`` then (``None``: there was none).
        """
        action = self._governed("action")
        if action is None or action["kind"] != "rollback":
            return None
        return FrozenDict(held=action["held"], policy=action["policy"],
                          root_policy=action["root_policy"])

    @property
    def override(self) -> FrozenDict | None:
        """Break-glass: ``{"reason": ..., "violations": [...]}`` the gate was told to let past."""
        value: FrozenDict | None = self._governed("override")
        return value

    @property
    def signature(self) -> FrozenDict | None:
        """``{"key": <OpenSSH public key>, "sig": <SSHSIG, armored>}`` if the record is signed.

        What it claims until checked: ``Dataset.verify`` and the gate check the
        signature, over :func:`kirin.records.signed_message`, and who the key
        belongs to under the policy.
        """
        value: FrozenDict | None = self._governed("signature")
        return value

    @property
    def root_policy_hash(self) -> str | None:
        """The hash of the registry's root policy that judged this commit, if there was one."""
        value = self._governed("root_policy")
        return str(value) if value is not None else None

    @property
    def lineage(self) -> Lineage | None:
        """What the commit says it was derived from: linked commits, code revision, run id.

        ``None`` for a commit that declares nothing (see :mod:`kirin.links`).
        """
        value = self._governed("lineage")
        return Lineage.from_record(value) if value is not None else None

    @property
    def is_initial(self) -> bool:
        """``True`` for the dataset's first commit (it has no parent), as in the original."""
        return self.parent_hash is None

    @property
    def files(self) -> FrozenDict:
        """Every file of this commit by name (the full snapshot, not the change)."""
        cached = self._files_cache
        if cached is _MISSING:
            loader = self._files
            if loader is None:
                cached = FrozenDict()
            else:
                files = (loader.files_of(self.seq, self.hash)
                         if isinstance(loader, SnapshotSource) else loader())
                cached = FrozenDict(sorted(files.items()))
            object.__setattr__(self, "_files_cache", cached)
        return cached  # type: ignore[no-any-return]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Commit) and other.hash == self.hash

    def __copy__(self) -> Commit:
        return self  # immutable: a copy would be indistinguishable

    def __deepcopy__(self, memo: dict[int, Any]) -> Commit:
        return self

    def __hash__(self) -> int:
        return hash(self.hash)

    def __repr__(self) -> str:
        return (f"Commit(hash={self.hash!r}, parent_hash={self.parent_hash!r}, "
                f"message={self.message!r}, metadata={self.metadata!r}, tags={self.tags!r}, "
                f"timestamp={self.timestamp!r}, author={self.author!r}, seq={self.seq!r}, "
                f"policy_hash={self.policy_hash!r})")

    def get_file(self, name: str) -> File | None:
        return self.files.get(lookup_name(name))

    def has_file(self, name: str) -> bool:
        return lookup_name(name) in self.files

    def list_files(self) -> list[str]:
        return list(self.files)

    def get_total_size(self) -> int:
        return sum(f.size for f in self.files.values())

    def to_dict(self) -> dict[str, Any]:
        lineage = self.lineage
        return {
            "hash": self.hash,
            "short_hash": self.short_hash,
            "parent_hash": self.parent_hash,
            "seq": self.seq,
            "message": self.message,
            "metadata": thaw(self.metadata),
            "tags": list(self.tags),
            "timestamp": self.timestamp.isoformat(),
            "author": self.author,
            "policy_hash": self.policy_hash,
            "root_policy_hash": self.root_policy_hash,
            "kind": self.kind,
            "promoted_from": self.promoted_from,
            "withdrawal": thaw(self.withdrawal),
            "rollback": thaw(self.rollback),
            "override": thaw(self.override),
            "signature": thaw(self.signature),
            "lineage": lineage.to_dict() if lineage is not None else None,
            "files": {name: f.to_dict() for name, f in self.files.items()},
        }

    def __str__(self) -> str:
        tags = f" [{', '.join(self.tags)}]" if self.tags else ""
        return f"{self.short_hash} {self.message}{tags}"

    def _repr_html_(self) -> str:
        """The commit as a table in Jupyter (see :mod:`kirin.ui.notebook`)."""
        from .ui.notebook import commit_html

        return commit_html(self)


@dataclass(frozen=True)
class Proposal:
    """A commit as proposed, before it is written: what the policy judges.

    ``files`` is the full snapshot the commit would have (name -> content
    hash), ``added`` the names given to ``add_files`` (new, changed or
    re-added with the same content) and ``removed`` the names removed.
    """

    message: str
    files: FrozenDict
    added: tuple[str, ...]
    removed: tuple[str, ...]
    metadata: FrozenDict
    tags: FrozenList
    author: str = ""
    #: ``commit``, ``promotion``, ``rollback`` or ``withdrawal``: a withdrawal admits
    #: no content, so only the rules about every record (the message) judge it.
    kind: str = "commit"
    #: What the commit says it was derived from, and what each linked commit is now in
    #: its own dataset (the lineage rules of a policy judge both).
    lineage: Lineage | None = None
    linked: tuple[LinkedState, ...] = ()


class RemovedBlobs(int):
    """What ``Dataset.cleanup_orphaned_files()`` removed: the number, as in the original.

    An ``int`` (the original returned the count, so ``== 0`` and ``> 0`` keep
    working) that also says what it removed: ``removed`` holds the blob
    hashes (iterating yields them), ``bytes_freed`` their size and
    ``kept_recent`` the unreferenced blobs spared by the grace period.
    """

    removed: tuple[str, ...]
    bytes_freed: int
    kept_recent: int

    def __new__(cls, removed: tuple[str, ...], bytes_freed: int = 0,
                kept_recent: int = 0) -> RemovedBlobs:
        value = super().__new__(cls, len(removed))
        value.removed = tuple(removed)
        value.bytes_freed = bytes_freed
        value.kept_recent = kept_recent
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.removed)

    def __repr__(self) -> str:
        return (f"RemovedBlobs({int(self)} removed, {self.bytes_freed} bytes freed, "
                f"{self.kept_recent} kept as recent)")

