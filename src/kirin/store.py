"""The storage layer: the only module that talks to fsspec.

Everything Kirin keeps is either a content-addressed blob or a write-once
object. Nothing is ever overwritten, which is what makes concurrent writers
safe on object stores that offer no locks but do offer create-if-absent:

* blobs: ``<root>/data/<sha256[:2]>/<sha256[2:]>``
* per dataset: ``<root>/datasets/<name>/...`` (see ``docs/storage-format.md``)

Backend quirks are handled here and nowhere else:

* local disk: ``pipe_file(mode="create")`` is an exists-check then a write, so
  write-once objects are written to a temporary file and published with
  ``os.link`` (atomic, fails with EEXIST, and readers never see a partial file);
* S3 (s3fs): a failed ``If-None-Match`` may surface as ``OSError(EINVAL)``
  rather than ``FileExistsError``; both mean "someone else created it".
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from . import progress
from .errors import CorruptObjectError, SourceNotFoundError, StorageError

#: A reused blob older than this is freshened by a commit (see ``Store.publish``);
#: garbage collection's grace period must be longer.
FRESHEN_AFTER = 10 * 60
CHUNK = 1 << 20  # 1 MiB: large enough to amortise Python overhead, small for memory
HEX = frozenset("0123456789abcdef")


def _is_hex_digest(digest: str) -> bool:
    return len(digest) == 64 and set(digest) <= HEX


def _lost_race(exc: BaseException) -> bool:
    """True when a create-if-absent write failed because the object exists."""
    if isinstance(exc, FileExistsError):
        return True
    return isinstance(exc, OSError) and exc.errno == errno.EINVAL


@dataclass(frozen=True)
class StagedBlob:
    """A file hashed and ready to publish; nothing visible has been written yet.

    On local disk the bytes already sit in a temporary file next to the blob
    store (so publishing is a rename). On other backends the source is read
    again at publish time and re-hashed, so a source that changed in between
    is caught rather than stored under the wrong name.
    """

    digest: str
    size: int
    source: str
    temp_path: str | None = None


class Store:
    """Blobs and write-once objects under one root on one fsspec filesystem."""

    def __init__(self, root: str | os.PathLike[str], fs: fsspec.AbstractFileSystem | None = None,
                 **storage_options: Any) -> None:
        root_str = os.fspath(root)
        if fs is None:
            if "://" in root_str or "::" in root_str:
                fs, path = fsspec.core.url_to_fs(root_str, **storage_options)
            else:
                fs, path = LocalFileSystem(), os.path.abspath(os.path.expanduser(root_str))
        else:
            path = fs._strip_protocol(root_str)
        self.fs: fsspec.AbstractFileSystem = fs
        self.root: str = str(path).rstrip("/") or "/"
        self.url = root_str
        self.is_local = isinstance(fs, LocalFileSystem)

    def __repr__(self) -> str:  # never show storage options: they may hold secrets
        return f"Store({self.url!r})"

    # -- paths -------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def blob_path(self, digest: str) -> str:
        return self.path("data", digest[:2], digest[2:])

    # -- write-once objects ------------------------------------------------
    def read(self, path: str) -> bytes | None:
        """The bytes of an object, or ``None`` if it does not exist."""
        try:
            return bytes(self.fs.cat_file(path))
        except FileNotFoundError:
            return None
        except IsADirectoryError as exc:
            raise CorruptObjectError(f"Expected an object, found a folder: {path}",
                                     path=path) from exc

    def read_many(self, paths: Sequence[str]) -> dict[str, bytes | None]:
        """Several objects at once (concurrently on async backends)."""
        if not paths:
            return {}
        if self.is_local:
            return {p: self.read(p) for p in paths}
        found = self.fs.cat(list(paths), on_error="return")
        out: dict[str, bytes | None] = {}
        for p in paths:
            value = found.get(p, found.get(self.fs._strip_protocol(p)))
            if isinstance(value, FileNotFoundError) or value is None:
                out[p] = None
            elif isinstance(value, BaseException):
                raise StorageError(f"Could not read {p}: {value}") from value
            else:
                out[p] = bytes(value)
        return out

    def create(self, path: str, data: bytes) -> bool:
        """Write ``data`` at ``path`` unless it exists; ``False`` if it did.

        Readers see either nothing or the whole object.
        """
        if self.is_local:
            return self._create_local(path, data)
        try:
            self.fs.pipe_file(path, data, mode="create")
        except Exception as exc:
            if _lost_race(exc):
                return False
            raise
        return True

    def _create_local(self, path: str, data: bytes) -> bool:
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}")
        try:
            with open(tmp, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def listdir(self, path: str) -> list[str]:
        """Base names directly under ``path``; empty if it does not exist."""
        try:
            entries = self.fs.ls(path, detail=False)
        except FileNotFoundError:
            return []
        names = [str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries]
        return sorted(n for n in names if n)

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    # -- blobs -------------------------------------------------------------
    def has_blob(self, digest: str) -> bool:
        return self.exists(self.blob_path(digest))

    def stage(self, source: str, *, keep: bool = True) -> StagedBlob:
        """Hash ``source`` (a local path or fsspec URL) while streaming it.

        With ``keep`` on local disk the bytes are also copied next to the blob
        store, ready to publish; without it nothing at all is written.
        """
        src_fs, src_path = _source_fs(source)
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        tmp: str | None = None
        label = f"{'Storing' if keep and self.is_local else 'Hashing'} {source_label(source)}"
        try:
            with _open_source(src_fs, src_path, source) as reader, \
                    progress.transfer(label, _size_or_none(src_fs, src_path)) as advance:
                if self.is_local and keep:
                    tmp_dir = self.path("tmp")
                    os.makedirs(tmp_dir, exist_ok=True)
                    tmp = os.path.join(tmp_dir, f"{uuid.uuid4().hex}.part")
                    with open(tmp, "xb") as out:
                        while n := _readinto(reader, buffer):
                            digest.update(view[:n])
                            out.write(view[:n])
                            size += n
                            advance(n)
                else:
                    while n := _readinto(reader, buffer):
                        digest.update(view[:n])
                        size += n
                        advance(n)
        except BaseException:
            if tmp:
                self._remove_temp(tmp)
            raise
        return StagedBlob(digest.hexdigest(), size, source, tmp)

    def publish(self, staged: StagedBlob) -> bool:
        """Make a staged blob visible at its content address; ``True`` if it was already there.

        A blob that is already there is *freshened* (its modification time
        renewed) so that garbage collection, which only removes unreferenced
        blobs older than its grace period, cannot remove it while the commit
        that is about to reference it is in flight.
        """
        final = self.blob_path(staged.digest)
        if staged.temp_path is not None:
            try:
                if os.path.exists(final):
                    with contextlib.suppress(FileNotFoundError):
                        os.utime(final)
                        return True
                os.makedirs(os.path.dirname(final), exist_ok=True)
                os.replace(staged.temp_path, final)
            finally:
                self._remove_temp(staged.temp_path)
            return False
        try:
            info = self.fs.info(final)
        except FileNotFoundError:
            self._upload_verified(staged, final)
            return False
        modified = modified_time(info)
        if modified is None or time.time() - modified > FRESHEN_AFTER:
            self._upload_verified(staged, final)  # same bytes: rewriting renews the time
        return True

    def restore(self, staged: StagedBlob) -> None:
        """Put a blob back from its source if it vanished (a gc raced the commit)."""
        if self.has_blob(staged.digest):
            return
        again = self.stage(staged.source)
        if again.digest != staged.digest:
            self.discard(again)
            raise StorageError(f"{staged.source} changed while it was being committed and "
                               f"its stored copy was removed meanwhile; commit it again")
        self.publish(again)

    def _upload_verified(self, staged: StagedBlob, final: str) -> None:
        src_fs, src_path = _source_fs(staged.source)
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        with _open_source(src_fs, src_path, staged.source) as reader, \
                self.fs.open(final, "wb") as out, \
                progress.transfer(f"Uploading {source_label(staged.source)}",
                                  staged.size) as advance:
            while n := _readinto(reader, buffer):
                digest.update(view[:n])
                out.write(bytes(view[:n]))
                size += n
                advance(n)
        if digest.hexdigest() != staged.digest or size != staged.size:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(final)
            raise StorageError(
                f"{staged.source} changed while it was being committed "
                "(its content no longer matches the hash taken moments before); "
                "nothing was committed — try again once it is stable"
            )

    def discard(self, staged: StagedBlob) -> None:
        if staged.temp_path is not None:
            self._remove_temp(staged.temp_path)

    def _remove_temp(self, tmp: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)

    def open_blob(self, digest: str, size: int, *, name: str,
                  commit: str | None) -> IO[bytes]:
        """A stream of the blob that checks size and hash as it is read."""
        path = self.blob_path(digest)
        where = _where(name, commit)
        if not _is_hex_digest(digest):
            raise CorruptObjectError(f"{where} has an invalid content hash {digest!r}",
                                     path=path, commit=commit, file=name)
        try:
            raw = self.fs.open(path, "rb")
        except FileNotFoundError as exc:
            raise CorruptObjectError(
                f"{where}: its content ({digest[:12]}) is missing from storage at {path}",
                path=path, commit=commit, file=name) from exc
        return io.BufferedReader(_VerifyingReader(raw, digest, size, path, name, commit),
                                 buffer_size=CHUNK)

    def download_blob(self, digest: str, size: int, target: Path, *, name: str,
                      commit: str | None) -> None:
        """Copy a blob to a local file; the file appears only once verified."""
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        try:
            with self.open_blob(digest, size, name=name, commit=commit) as reader, \
                    open(tmp, "xb") as out, \
                    progress.transfer(f"Downloading {name}", size) as advance:
                raw = reader.raw  # type: ignore[attr-defined]
                while n := raw.readinto(buffer):
                    out.write(view[:n])
                    advance(n)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def iter_blobs(self) -> Iterator[str]:
        """Every blob digest present in storage (for verify and gc)."""
        base = self.path("data")
        for path in self.fs.find(base):
            rel = str(path)[len(base):].strip("/")
            digest = rel.replace("/", "")
            if _is_hex_digest(digest):
                yield digest


def modified_time(info: dict[str, Any]) -> float | None:
    """Last-modified time (epoch seconds) from an fsspec ``info()`` of any backend."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "mtime_ns", "created"):
        value = info.get(key)
        if value is None:
            continue
        if key == "mtime_ns":
            return float(value) / 1e9
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return None


def source_label(source: str) -> str:
    """A short name for a source in progress reports."""
    return source.rstrip("/").rsplit("/", 1)[-1] or source


def _size_or_none(fs: fsspec.AbstractFileSystem, path: str) -> int | None:
    try:
        return int(os.path.getsize(path) if isinstance(fs, LocalFileSystem) else fs.size(path))
    except (OSError, TypeError, ValueError):
        return None


def _where(name: str, commit: str | None) -> str:
    return f"file {name!r} of commit {commit[:12]}" if commit else f"file {name!r}"


class _VerifyingReader(io.RawIOBase):
    """Raw stream that hashes what passes through and fails on a mismatch.

    Too many bytes fail as soon as they appear; too few or different bytes
    fail when the end is reached, before the caller sees EOF.
    """

    def __init__(self, raw: IO[bytes], digest: str, size: int, path: str, name: str,
                 commit: str | None) -> None:
        self._raw = raw
        self._hasher = hashlib.sha256()
        self._expected = digest
        self._size = size
        self._seen = 0
        self._path = path
        self._name = name
        self._commit = commit
        self._done = False

    def readable(self) -> bool:
        return True

    def _corrupt(self, detail: str) -> CorruptObjectError:
        return CorruptObjectError(
            f"{_where(self._name, self._commit)} is corrupt in storage ({self._path}): "
            f"{detail}", path=self._path, commit=self._commit, file=self._name)

    def readinto(self, buffer: Any) -> int:
        if self._done:
            return 0
        n = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        if n:
            view = memoryview(buffer)[:n]
            self._hasher.update(view)
            self._seen += n
            if self._seen > self._size:
                raise self._corrupt(f"it holds more than the recorded {self._size} bytes")
            return int(n)
        self._done = True
        if self._seen != self._size:
            raise self._corrupt(f"it holds {self._seen} bytes, expected {self._size}")
        actual = self._hasher.hexdigest()
        if actual != self._expected:
            raise self._corrupt(f"content hash is {actual[:12]}, expected "
                                f"{self._expected[:12]}")
        return 0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._raw.close()
        super().close()


def _readinto(reader: Any, buffer: bytearray) -> int:
    if hasattr(reader, "readinto"):
        return int(reader.readinto(buffer) or 0)
    chunk = reader.read(len(buffer))
    buffer[: len(chunk)] = chunk
    return len(chunk)


def _source_fs(source: str) -> tuple[fsspec.AbstractFileSystem, str]:
    if "://" in source or "::" in source:
        fs, path = fsspec.core.url_to_fs(source)
        return fs, str(path)
    return LocalFileSystem(), os.path.abspath(os.path.expanduser(source))


@contextlib.contextmanager
def _open_source(fs: fsspec.AbstractFileSystem, path: str, source: str) -> Iterator[Any]:
    try:
        if isinstance(fs, LocalFileSystem):
            if os.path.isdir(path):
                raise IsADirectoryError(path)
            handle: Any = open(path, "rb", buffering=0)  # noqa: SIM115
        else:
            if fs.isdir(path):
                raise IsADirectoryError(path)
            handle = fs.open(path, "rb")
    except FileNotFoundError as exc:
        raise SourceNotFoundError(source) from exc
    except IsADirectoryError as exc:
        raise SourceNotFoundError(f"{source} (it is a folder; add its files by name)"
                                  ) from exc
    with handle:
        yield handle
