"""Files to commit: opened, hashed while staged, and sent on without a wrong byte stored.

A source is a local path or an fsspec URL. Staging hashes it (on local disk
copying it next to the blob store at the same time, in the kernel where it
can); publishing to an object store reads it again, and every upload path
re-hashes what it sends and refuses to complete on a mismatch (the S3
paths are in :mod:`kirin.s3`, the generic streamed write is here).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Union

from . import backends, progress
from .errors import SourceNotFoundError, StorageError
from .verified import CHUNK

if TYPE_CHECKING:
    import fsspec

KERNEL_COPY_BLOCK = 8 << 20  # local staging: copied in the kernel while the last block is hashed
#: Parts of multipart uploads and read-ahead blocks on object stores: memory per
#: transfer stays near this, whatever the file size (S3 parts must be >= 5 MiB).
PART_SIZE = 8 << 20
MAX_PARTS = 9000  # below S3's 10,000-part limit; larger files get larger parts


def part_size(size: int) -> int:
    """Part size for uploading ``size`` bytes: 8 MiB, or more to stay under the part limit."""
    needed = -(-size // MAX_PARTS)
    return max(PART_SIZE, -(-needed // (1 << 20)) * (1 << 20))


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


class LocalDisk:
    """The local disk as the filesystem of a source given as a path, without fsspec.

    Why: a local source is read with ``os`` everywhere (:func:`open_source`,
    :func:`_size_or_none`); only :func:`check_source` asks its filesystem whether the
    path is a file or a folder, and importing fsspec for that cost ``kirin commit``
    and ``kirin validate`` of a local file about 25 ms of start-up (issue 16). The
    answers are fsspec ``LocalFileSystem``'s: ``os.stat``, following links.
    :func:`is_local` is true of it; it is not an async filesystem.
    """

    async_impl = False

    def isfile(self, path: str) -> bool:
        return os.path.isfile(path)

    def isdir(self, path: str) -> bool:
        return os.path.isdir(path)


#: The filesystem of a source: fsspec's for a URL, :class:`LocalDisk` for a local path.
SourceFs = Union["fsspec.AbstractFileSystem", LocalDisk]


def is_local(fs: Any) -> bool:
    """Whether ``fs`` is the local disk (:class:`LocalDisk`, or fsspec's: loaded by then,
    as ``fs`` came from it)."""
    if isinstance(fs, LocalDisk):
        return True
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def source_fs(source: str) -> tuple[SourceFs, str]:
    """The filesystem of a source and its path there (with the source's own options):
    an fsspec filesystem for a URL, :class:`LocalDisk` for a local path."""
    if "://" in source or "::" in source:
        import fsspec.core

        fs, path = fsspec.core.url_to_fs(source)
        return fs, str(path)
    return LocalDisk(), os.path.abspath(os.path.expanduser(source))


def source_label(source: str) -> str:
    """A short name for a source in progress reports."""
    return source.rstrip("/").rsplit("/", 1)[-1] or source


def folder_source(shown: str) -> SourceNotFoundError:
    return SourceNotFoundError(f"{shown} (it is a folder; add its files by name)")


def changed_source(staged: StagedBlob) -> StorageError:
    return StorageError(f"{staged.source} changed while it was being committed (its content "
                        "no longer matches the hash taken moments before); nothing was "
                        "committed — try again once it is stable")


@contextlib.contextmanager
def open_source(fs: SourceFs, path: str, source: str) -> Iterator[Any]:
    shown = backends.redact(source) if "://" in source else source
    # the library's error repeats the path: it is not chained when that holds a secret
    chain = shown == source
    try:
        if is_local(fs) or isinstance(fs, LocalDisk):  # (the second for the type checker)
            if os.path.isdir(path):
                raise IsADirectoryError(path)
            handle: Any = open(path, "rb", buffering=0)  # noqa: SIM115
        else:
            if fs.isdir(path):
                raise IsADirectoryError(path)
            handle = fs.open(path, "rb")
    except FileNotFoundError as exc:
        raise SourceNotFoundError(shown) from (exc if chain else None)
    except IsADirectoryError as exc:
        raise folder_source(shown) from (exc if chain else None)
    with handle:
        yield handle


def check_source(source: str, fs: SourceFs, path: str,
                 secrets: list[str]) -> None:
    """Raise unless ``source`` exists and is a file; a URL is shown without credentials."""
    def look() -> str:
        if fs.isfile(path):
            return "file"
        return "folder" if fs.isdir(path) else "missing"

    if is_local(fs):
        shown, found = source, look()
    else:
        shown = backends.redact(source, secrets)
        found = backends.with_retries(look, what="look up a file to commit", url=shown,
                                      secrets=secrets)
    if found == "folder":
        raise folder_source(shown)
    if found == "missing":
        raise SourceNotFoundError(shown)


def stage_source(source: str, fs: SourceFs, path: str, temp: str | None
          ) -> StagedBlob:
    """Hash ``source`` while streaming it, copying it to ``temp`` (a local path) if given."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    label = f"{'Storing' if temp else 'Hashing'} {source_label(source)}"
    try:
        with open_source(fs, path, source) as reader, \
                progress.transfer(label, _size_or_none(fs, path)) as advance:
            if temp:
                os.makedirs(os.path.dirname(temp), exist_ok=True)
                with open(temp, "xb") as out:
                    copied = kernel_copy_hashing(reader, out, digest, advance)
                    if copied is not None:
                        size = copied
                    while copied is None and (n := _readinto(reader, buffer)):
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
        if temp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        raise
    return StagedBlob(digest.hexdigest(), size, source, temp)


def upload_streamed(fs: Any, staged: StagedBlob, final: str, src_fs: SourceFs,
                    src_path: str, *, visible_at_once: bool) -> None:
    """Write the source to ``final`` through an fsspec write handle, re-hashing it.

    The handle is closed (the upload completed) only if the bytes hashed to
    the staged digest; otherwise it is abandoned, and where a write is
    visible at once (``visible_at_once``, e.g. memory) the object removed.
    """
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open_source(src_fs, src_path, staged.source) as reader, \
            progress.transfer(f"Uploading {source_label(staged.source)}",
                              staged.size) as advance:
        out = fs.open(final, "wb", block_size=part_size(staged.size))
        try:
            while n := _readinto(reader, buffer):
                digest.update(view[:n])
                out.write(bytes(view[:n]))
                size += n
                advance(n)
            if digest.hexdigest() != staged.digest or size != staged.size:
                raise changed_source(staged)
            out.close()
        except BaseException:
            _abandon(out)
            if visible_at_once:
                with contextlib.suppress(Exception):
                    fs.rm_file(final)
            raise


def read_part(reader: Any, size: int) -> bytes:
    """Up to ``size`` bytes from ``reader`` (fewer only at its end), without extra copies."""
    data = reader.read(size)
    if len(data) == size or not data:
        return bytes(data)
    pieces = [data]
    got = len(data)
    while got < size and (more := reader.read(size - got)):
        pieces.append(more)
        got += len(more)
    return b"".join(pieces)


def _readinto(reader: Any, buffer: bytearray) -> int:
    if hasattr(reader, "readinto"):
        return int(reader.readinto(buffer) or 0)
    chunk = reader.read(len(buffer))
    buffer[: len(chunk)] = chunk
    return len(chunk)


def _size_or_none(fs: SourceFs, path: str) -> int | None:
    try:
        if is_local(fs) or isinstance(fs, LocalDisk):  # (the second for the type checker)
            return os.path.getsize(path)
        return int(fs.size(path))
    except (OSError, TypeError, ValueError):
        return None


def _abandon(handle: Any) -> None:
    """Throw away a half-written fsspec file: abort its upload, never complete it.

    fsspec's write handles complete the upload on ``close()``, which both
    ``__exit__`` and ``__del__`` call, even after an error. ``discard()``
    aborts a multipart (s3fs) or resumable (gcsfs) upload; marking the handle
    closed keeps its finaliser from uploading what was buffered.
    """
    with contextlib.suppress(Exception):
        handle.discard()
    with contextlib.suppress(Exception):
        handle.buffer = io.BytesIO()
    with contextlib.suppress(Exception):
        handle.closed = True


def kernel_copy_hashing(reader: Any, out: IO[bytes], digest: Any,
                         advance: Callable[[int], None]) -> int | None:
    """Copy a local file in the kernel while hashing the copy; ``None`` if it cannot.

    ``os.copy_file_range`` copies block ``k + 1`` in a helper thread while
    this one hashes block ``k`` *of the copy* (so the hash is of exactly the
    bytes that will be published, even if the source changes meanwhile).
    Both release the GIL, so a commit costs about the hash alone, where a
    read-hash-write loop costs the hash plus two copies through Python.
    ``None`` (nothing copied) for files under one block, and where the
    kernel call is missing or refuses these files (another OS, some
    filesystems): the caller copies by hand.
    """
    if not hasattr(os, "copy_file_range"):
        return None
    try:
        src, dst = reader.fileno(), out.fileno()
        status = os.fstat(src)
        if not stat.S_ISREG(status.st_mode):
            return None  # /proc files, pipes: the kernel may copy nothing from them
        if status.st_size < KERNEL_COPY_BLOCK:
            return None  # one block: starting a thread would cost more than it saves

        def copy(offset: int) -> int:
            return os.copy_file_range(src, dst, KERNEL_COPY_BLOCK, offset, offset)

        first = copy(0)
    except OSError:  # io.UnsupportedOperation included (no file descriptor)
        return None
    if not first:
        return None  # empty, or a file the kernel will not copy: the loop tells which
    from concurrent.futures import ThreadPoolExecutor  # only for a local copy: not to read

    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(out.name, "rb", buffering=0) as copy_of_it, \
            ThreadPoolExecutor(1, thread_name_prefix="kirin-copy") as copier:
        done, offset = first, 0
        while done:
            pending = copier.submit(copy, offset + done)
            end = offset + done
            while offset < end:
                n = copy_of_it.readinto(view[:min(CHUNK, end - offset)])
                if not n:
                    raise OSError(errno.EIO, "a staged copy came out shorter than copied")
                digest.update(view[:n])
                offset += n
                advance(n)
            done = pending.result()
    return offset
