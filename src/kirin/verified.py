"""Whether a blob's bytes are the ones recorded, and readers that never serve others.

:class:`BlobCheck` is the one check of a blob's bytes: it counts and hashes
chunks as they pass and judges them against the recorded size and SHA-256.
Readers turn a mismatch into :class:`~kirin.errors.CorruptObjectError`
(:mod:`kirin.store`'s opens and downloads); ``kirin verify`` asks for the
problem as text, to report it with the others. The raw streams below wrap
a storage handle in that check and serve verified copies of blobs.

Nothing here calls fsspec: handles come from :class:`kirin.store.Store`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Callable
from typing import IO, Any, TypeVar

from .errors import CorruptObjectError

T = TypeVar("T")

CHUNK = 1 << 20  # 1 MiB: large enough to amortise Python overhead, small for memory
SPOOL_MAX = 16 << 20  # verified copies of blobs being read: in memory up to this, then on disk
READ_BLOCK = 4 << 20  # read-ahead of blob reads on object stores


def where(name: str, commit: str | None) -> str:
    """How a message names a file of a commit."""
    return f"file {name!r} of commit {commit[:12]}" if commit else f"file {name!r}"


class BlobCheck:
    """The bytes of one blob as they pass: counted, hashed, then judged against the record.

    ``path``, ``name`` and ``commit`` only go into the errors readers raise.
    """

    def __init__(self, digest: str, size: int, *, path: str = "", name: str = "",
                 commit: str | None = None) -> None:
        self.digest = digest
        self.size = size
        self.seen = 0
        self._hasher = hashlib.sha256()
        self._path = path
        self._name = name
        self._commit = commit

    def anew(self) -> BlobCheck:
        """A check of the same blob from its first byte."""
        return BlobCheck(self.digest, self.size, path=self._path, name=self._name,
                         commit=self._commit)

    def count(self, chunk: Any) -> None:
        """Hash ``chunk`` and count its bytes, without judging yet."""
        self._hasher.update(chunk)
        self.seen += len(chunk)

    def update(self, chunk: Any) -> None:
        """Count ``chunk``; raise as soon as the blob is longer than recorded."""
        self.count(chunk)
        if self.seen > self.size:
            raise self.too_long()

    def finish(self) -> None:
        """At the end of the blob: raise unless its size and hash are those recorded."""
        if self.seen != self.size:
            raise self.corrupt(f"it holds {self.seen} bytes, expected {self.size}")
        actual = self._hasher.hexdigest()
        if actual != self.digest:
            raise self.corrupt(f"content hash is {actual[:12]}, expected {self.digest[:12]}")

    def problem(self) -> str | None:
        """At the end of the blob: what is wrong with it, as a sentence; ``None`` if nothing."""
        if self.seen != self.size:
            return (f"Blob {self.digest[:12]} holds {self.seen} bytes, expected {self.size} "
                    "(truncated or altered)")
        if self._hasher.hexdigest() != self.digest:
            return f"Blob {self.digest[:12]} does not match its hash (altered)"
        return None

    def corrupt(self, detail: str) -> CorruptObjectError:
        return CorruptObjectError(
            f"{where(self._name, self._commit)} is corrupt in storage ({self._path}): "
            f"{detail}", path=self._path, commit=self._commit, file=self._name)

    def too_long(self) -> CorruptObjectError:
        return self.corrupt(f"it holds more than the recorded {self.size} bytes")

    def missing(self) -> CorruptObjectError:
        return CorruptObjectError(
            f"{where(self._name, self._commit)}: its content ({self.digest[:12]}) is missing "
            f"from storage at {self._path}", path=self._path, commit=self._commit,
            file=self._name)


class VerifyingReader(io.RawIOBase):
    """Raw stream that hashes what passes through and fails on a mismatch.

    Too many bytes fail as soon as they appear. The read that brings the
    count to the recorded size first makes sure nothing follows and that
    the hash matches, so a reader that stops at the size (``read(size)``,
    a parser that knows where its data ends) still gets the error instead
    of the last bytes; too few bytes fail when the end is reached.
    """

    def __init__(self, raw: IO[bytes], check: BlobCheck,
                 on_error: Callable[[BaseException], BaseException] | None = None) -> None:
        self._raw = raw
        self._on_error = on_error
        self._check = check
        self._done = False

    def readable(self) -> bool:
        return True

    def _raw_read(self, read: Callable[[], T]) -> T:
        try:
            return read()
        except Exception as exc:
            error = self._on_error(exc) if self._on_error else exc
            if error is exc:
                raise
            raise error from error.__cause__  # set by on_error, free of secrets

    def readinto(self, buffer: Any) -> int:
        if self._done:
            return 0
        n = self._raw_read(lambda: self._raw.readinto(buffer))  # type: ignore[attr-defined]
        if n:
            check = self._check
            check.update(memoryview(buffer)[:n])
            if check.seen == check.size:
                if self._raw_read(lambda: self._raw.read(1)):
                    raise check.too_long()
                self._finish()
            return int(n)
        self._finish()
        return 0

    def _finish(self) -> None:
        self._done = True
        self._check.finish()

    def copy_into(self, out: IO[bytes]) -> None:
        """Copy the whole blob to ``out``, raising as the last read would."""
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        while n := self.readinto(buffer):
            out.write(view[:n])

    def verify_in_place(self) -> UnchangedLocalFile:
        """Hash a whole local blob, then hand over its rewound descriptor to be served."""
        try:
            before = _status(self._raw)
            buffer = bytearray(CHUNK)
            while self.readinto(buffer):
                pass
            served = UnchangedLocalFile(self._raw, before, self._copy_again)
        except BaseException:
            self.close()
            raise
        served.seek(0)
        return served

    def _copy_again(self) -> IO[bytes]:
        """A private copy of the whole blob through the same descriptor, hashed anew."""
        self._raw.seek(0)
        again = VerifyingReader(self._raw, self._check.anew(), self._on_error)
        copy = spool(self._check.size)
        try:
            again.copy_into(copy)
        except BaseException:
            copy.close()
            raise
        return copy

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._raw.close()
        super().close()


def _status(handle: IO[bytes]) -> tuple[int, int, int, int]:
    """What changes when a file is written: size, both timestamps, inode number."""
    status = os.fstat(handle.fileno())
    return status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino


class UnchangedLocalFile(io.RawIOBase):
    """A local blob, already verified through this descriptor, served while unchanged.

    The blob being replaced or deleted does not affect an open descriptor,
    but a rewrite in place would. So each chunk is handed out only if the
    file's size, timestamps and inode are still those seen before it was
    hashed. If they are not (a rewrite, or harmless: a commit freshening the
    blob's time, a link removed), the whole blob is copied through the same
    descriptor and hashed again, and the rest is served from that private
    copy, or the read raises if the content no longer matches. Timestamps
    cannot reveal everything: a process able to write the blob file itself
    could change bytes within the filesystem's timestamp granularity, or
    through a shared writable mapping it already holds (the kernel updates
    the times on the first write to a mapped page only). Closing that gap
    means copying every large blob before reading it, at about twice the
    cost; whoever can write the registry's blob files is trusted here, as
    whoever can write its code is.
    """

    def __init__(self, handle: IO[bytes], status: tuple[int, int, int, int],
                 copy_again: Callable[[], IO[bytes]]) -> None:
        self._handle = handle
        self._before = status
        self._copy_again = copy_again
        self._copy: IO[bytes] | None = None
        if _status(handle) != status:  # changed while it was being hashed
            self._switch_to_copy()

    def _switch_to_copy(self) -> IO[bytes]:
        position = self._handle.tell()
        self._copy = self._copy_again()
        self._copy.seek(position)
        with contextlib.suppress(Exception):
            self._handle.close()
        return self._copy

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._copy is not None:
            return self._copy.readinto(buffer)  # type: ignore[attr-defined,no-any-return]
        position = self._handle.tell()
        n = self._handle.readinto(buffer)  # type: ignore[attr-defined]
        if _status(self._handle) == self._before:
            return int(n)
        self._handle.seek(position)
        return self._switch_to_copy().readinto(buffer)  # type: ignore[attr-defined,no-any-return]

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return (self._copy or self._handle).seek(offset, whence)

    def tell(self) -> int:
        return (self._copy or self._handle).tell()

    def close(self) -> None:
        for handle in (self._handle, self._copy):
            with contextlib.suppress(Exception):
                if handle is not None:
                    handle.close()
        super().close()


class VerifiedCopy(io.RawIOBase):
    """A read-only, seekable view of a blob's private copy that has passed its hash check."""

    def __init__(self, copy: IO[bytes]) -> None:
        self._copy = copy

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._copy.readinto(buffer)  # type: ignore[attr-defined,no-any-return]

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._copy.seek(offset, whence)

    def tell(self) -> int:
        return self._copy.tell()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._copy.close()
        super().close()


def spool(size: int) -> IO[bytes]:
    """An empty private buffer for a copy of ``size`` bytes: in memory up to ``SPOOL_MAX``,
    above that an unnamed temporary file (in ``TMPDIR``, readable by this user only)."""
    if size <= SPOOL_MAX:
        return io.BytesIO()
    import tempfile  # (with shutil, bz2, lzma) only for a large copy

    return tempfile.TemporaryFile(prefix=".kirin-read-")


def copied(size: int, fill: Callable[[IO[bytes]], None]) -> IO[bytes]:
    """A buffered, seekable reader of the private copy ``fill`` writes (and verifies)."""
    copy = spool(size)
    try:
        fill(copy)
    except BaseException:
        copy.close()
        raise
    copy.seek(0)
    return io.BufferedReader(VerifiedCopy(copy), buffer_size=CHUNK)
