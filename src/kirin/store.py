"""The storage layer: blobs and write-once objects under one root on one fsspec filesystem.

Everything Kirin keeps is either a content-addressed blob or a write-once
object. Nothing is ever overwritten, which is what makes concurrent writers
safe on object stores that offer no locks but do offer create-if-absent:

* blobs: ``<root>/data/<sha256[:2]>/<sha256[2:]>``
* per dataset: ``<root>/datasets/<name>/...`` (see ``docs/storage-format.md``)

:class:`Store` is what the layers above see. On every object store, listing
caches are bypassed (other writers add objects), transient failures are
retried with bounded, jittered backoff, and what still fails becomes a
:class:`~kirin.errors.StorageError` naming the URL (never a credential).
Blobs are uploaded streamed (on S3 one PUT below ``SINGLE_PUT_MAX``, parts
of bounded size above), and a failed or abandoned upload is aborted rather
than completed. The store decides which path a backend takes; the paths
themselves are in the storage layer's other modules:

* :mod:`kirin.creates`: create-if-absent on each backend;
* :mod:`kirin.s3`: the S3 requests made directly (lookups, listings, uploads, reads);
* :mod:`kirin.asyncfs`: concurrent and ranged reads on asynchronous filesystems;
* :mod:`kirin.sources`: files to commit, staged, hashed and uploaded;
* :mod:`kirin.verified`: the check of a blob's bytes, and readers that never serve others;
* :mod:`kirin.backends`: which backend guarantees what, and each client library's errors.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from . import asyncfs, backends, creates, layout, progress, s3
from .creates import ALLOW_UNSAFE_ENV, lost_race
from .digests import is_digest
from .errors import (
    BucketNotFoundError,
    CorruptObjectError,
    InvalidArgumentTypeError,
    InvalidInputError,
    SourceNotFoundError,
    StorageError,
)
from .sources import (
    KERNEL_COPY_BLOCK,
    MAX_PARTS,
    PART_SIZE,
    SourceFs,
    StagedBlob,
    check_source,
    is_local,
    kernel_copy_hashing,
    part_size,
    source_fs,
    source_label,
    stage_source,
    upload_streamed,
)
from .verified import CHUNK, READ_BLOCK, SPOOL_MAX, BlobCheck, VerifyingReader, copied, where

__all__ = ["ALLOW_UNSAFE_ENV", "CHUNK", "FRESHEN_AFTER", "MAX_PARTS", "PART_SIZE", "READ_BLOCK",
           "SINGLE_PUT_MAX", "SPOOL_MAX", "StagedBlob", "Store", "modified_time", "part_size",
           "source_label"]

if TYPE_CHECKING:
    import fsspec

log = logging.getLogger("kirin")
T = TypeVar("T")

#: A reused blob older than this is freshened by a commit (see ``Store.publish``);
#: garbage collection's grace period must be longer.
FRESHEN_AFTER = 10 * 60
#: Smaller blobs go to S3 as one PUT streamed from the source, larger ones in
#: parts. s3fs's ``put_file`` draws the same line (twice its 50 MiB chunk); a
#: failed PUT is sent again whole, so the line also bounds what a retry resends.
SINGLE_PUT_MAX = 100 << 20
#: On S3, blobs up to this size are sent without looking first (see Store._put_if_absent).
CONDITIONAL_PUT_MAX = 1 << 20


def _not_found(exc: BaseException) -> bool:
    return isinstance(exc, FileNotFoundError)


class Store:
    """Blobs and write-once objects under one root on one fsspec filesystem."""

    def __init__(self, root: str | os.PathLike[str], fs: fsspec.AbstractFileSystem | None = None,
                 **storage_options: Any) -> None:
        root_str = os.fspath(root)
        remote = "://" in root_str or "::" in root_str
        if fs is not None or remote:
            import fsspec  # imported by the first store that needs it: not for local disk

            if fs is not None and not isinstance(fs, fsspec.AbstractFileSystem):
                raise InvalidArgumentTypeError(
                    f"fs must be an fsspec filesystem or None, not {type(fs).__name__}")
        if fs is None:
            if remote:
                fs, path = backends.open_url(root_str, storage_options)
            else:
                path = os.path.abspath(os.path.expanduser(root_str))
        else:
            path = fs._strip_protocol(root_str)
        self.url = backends.redact_url(root_str)
        password = backends.url_password(root_str)
        if password and password in str(path):
            # e.g. s3fs and memory:// take "user:pw@bucket" for a bucket or folder name
            raise InvalidInputError(
                f"The root URL {self.url} has a password in it that {type(fs).__name__} would "
                "not use to log in but keep in every object's path (and print it in every "
                "message naming one). Remove it from the URL and pass credentials as storage "
                "options instead (see docs/cloud-storage.md).")
        self._fs = fs
        self.root: str = str(path).rstrip("/") or "/"
        self.kind = backends.kind_of(fs) if fs is not None else "local"
        self.is_local = self.kind == "local"
        self._options = dict(storage_options)  # private: may hold credentials
        self._secrets = backends.secret_values(
            {**dict(getattr(fs, "storage_options", None) or {}), **storage_options})
        self._bucket_checked = False
        self._create_checked = False
        self._cat_options = s3.ONE_GET if self.kind == "s3" else {}

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        """The fsspec filesystem. On local disk it is made on first use: opening and
        reading a local registry use ``os`` directly, and importing fsspec costs more
        than opening a long history does."""
        if self._fs is None:
            from fsspec.implementations.local import LocalFileSystem

            self._fs = LocalFileSystem()
        return self._fs

    @property
    def read_ahead(self) -> int:
        """How many small objects are worth asking for at once when probing for more.

        One on local disk (a read is a cheap system call), 16 on object stores
        (a request costs a round trip, and they are fetched concurrently).
        """
        return 1 if self.is_local else 16

    def __repr__(self) -> str:  # never show storage options: they may hold secrets
        return f"Store({self.url!r})"

    # -- paths -------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def blob_path(self, digest: str) -> str:
        return self.path(layout.blob(digest))

    # -- calling the filesystem ---------------------------------------------
    def _io(self, what: str, op: Callable[[], T],
            keep: Callable[[BaseException], bool] | None = None) -> T:
        """``op()`` with bounded retries; failures become errors naming the root URL."""
        if self.is_local:
            return op()
        return backends.with_retries(op, what=what, url=self.url, secrets=self._secrets,
                                     keep=keep)

    def _fresh(self, path: str) -> None:
        """Forget cached listings: other writers add objects at any time."""
        if not self.is_local:
            self.fs.invalidate_cache(path)

    def _missing(self) -> None:
        """After a not-found answer: make sure it is the object, not the bucket, that is missing.

        S3 and Azure say which in the error; gcsfs does not, so the bucket
        itself is looked up once per store.
        """
        if self.kind != "gcs" or self._bucket_checked:
            return
        self._bucket_checked = True
        bucket = backends.bucket_of(self.fs, self.root)
        try:
            self.fs.info(bucket)
        except FileNotFoundError as exc:
            raise BucketNotFoundError(
                f"The bucket of {self.url} does not exist ({bucket!r} was not found). Check "
                "its name, the project and the endpoint; Kirin never creates buckets.",
                url=self.url) from exc
        except Exception as exc:  # no permission to look at the bucket itself: assume it is there
            log.debug("Could not look up bucket %s: %s", bucket,
                      backends.summary(exc, self._secrets))

    # -- write-once objects ------------------------------------------------
    def read(self, path: str) -> bytes | None:
        """The bytes of an object, or ``None`` if it does not exist."""
        try:
            return bytes(self._io("read an object", lambda: self._cat(path),
                                  keep=lambda e: isinstance(e, FileNotFoundError
                                                            | IsADirectoryError)))
        except FileNotFoundError:
            self._missing()
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
        out: dict[str, bytes | None] = {}

        def fetch() -> None:
            found = self._cat_many(paths)
            for p in paths:
                value = found.get(p)
                if value is None or (isinstance(value, FileNotFoundError)
                                     and not backends.is_bucket_missing(value)):
                    out[p] = None
                elif isinstance(value, BaseException):
                    raise value  # retried if transient, translated otherwise
                else:
                    out[p] = bytes(value)

        self._io("read objects", fetch)
        if any(v is None for v in out.values()):
            self._missing()
        return out

    def create(self, path: str, data: bytes) -> bool:
        """Write ``data`` at ``path`` unless it exists; ``False`` if it did.

        Readers see either nothing or the whole object.
        """
        if self.is_local:
            return creates.create_local(path, data)
        if self.kind == "memory":
            with creates.memory_lock:
                return self._create_remote(path, data, confirm=False)
        self._check_create_support()
        return self._create_remote(path, data, confirm=True)

    def _create_remote(self, path: str, data: bytes, *, confirm: bool) -> bool:
        try:
            self._io("create an object",
                     lambda: self.fs.pipe_file(path, data, mode="create"), keep=lost_race)
        except OSError as exc:
            if not lost_race(exc) or isinstance(exc, StorageError):
                raise
            # The client may have retried a create whose first try succeeded but whose
            # answer was lost: the retry then fails its own condition. Our bytes there
            # mean this writer created the object.
            return confirm and self.read(path) == data
        return True

    def _cat(self, path: str) -> bytes:
        if self.is_local:
            with open(path, "rb") as handle:
                return handle.read()
        return bytes(self.fs.cat_file(path, **self._cat_options))

    def _cat_many(self, paths: Sequence[str]) -> dict[str, bytes | BaseException]:
        """Objects by path, read concurrently; a failure is the value of its path.

        Not ``fs.cat(list)``, which first expands every path (a HEAD and a LIST
        each on s3fs) to support globs.
        """
        if self.kind not in backends.OBJECT_STORE_KINDS or not getattr(self.fs, "async_impl",
                                                                        False):
            out: dict[str, bytes | BaseException] = {}
            for p in paths:
                try:
                    out[p] = self._cat(p)
                except Exception as exc:
                    out[p] = exc
            return out
        return asyncfs.cat_many(self.fs, paths, self._cat_options)

    def _check_create_support(self) -> None:
        """Once per bucket and process: prove the server refuses a second create."""
        if self._create_checked:
            return
        honoured = creates.honoured(self.fs, self.root, self._probe_create)
        self._create_checked = True
        creates.refuse_unless(honoured, self.fs, self.url)

    def _probe_create(self) -> bool:
        probe = self.path(layout.probe(uuid.uuid4().hex))
        try:
            self._io("write a test object", lambda: self.fs.pipe_file(probe, b"1",
                                                                       mode="create"))
            try:
                self._io("write a test object",
                         lambda: self.fs.pipe_file(probe, b"2", mode="create"), keep=lost_race)
            except OSError as exc:
                if lost_race(exc) and not isinstance(exc, StorageError):
                    return True
                raise
            return False
        finally:
            try:
                self.fs.rm_file(probe)
            except Exception as exc:  # e.g. no delete permission: a 1-byte object is left behind
                log.debug("Could not remove %s: %s", probe, backends.summary(exc, self._secrets))

    def listdir(self, path: str) -> list[str]:
        """Base names directly under ``path``; empty if it does not exist."""
        self._fresh(path)
        if self.kind == "s3":  # s3fs lists the parent too when a folder is empty
            return self._io("list objects",
                            lambda: s3.names_after(self.fs, path, "", every_page=True))
        if self.is_local and not os.path.isfile(path):
            return self.names_after(path, "")  # a folder, or nothing there
        try:
            entries = self._io("list objects", lambda: self.fs.ls(path, detail=False),
                               keep=_not_found)
        except FileNotFoundError:
            self._missing()
            return []
        names = [str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries]
        return sorted(n for n in names if n)

    @property
    def lists_after_cheaply(self) -> bool:
        """Whether :meth:`names_after` costs one request whatever the folder's size (S3's
        ``StartAfter``), so that looking for new log entries is best done by listing."""
        return self.kind == "s3"

    def names_after(self, folder: str, name: str, *, every_page: bool = False,
                    first: int | None = None) -> list[str]:
        """Base names of the objects and folders in ``folder`` that sort after ``name``.

        On S3, only the first 1,000 (one page) unless ``every_page``: enough to
        tell whether any exist. That is one request whatever the folder's size
        (``StartAfter``); elsewhere the folder is listed (a directory scan on
        local disk). ``first``: only the first names (on S3 a shorter answer).
        """
        found = self._names_after(folder, name, every_page=every_page, first=first)
        return found[:first] if first is not None else found

    def _names_after(self, folder: str, name: str, *, every_page: bool, first: int | None
                     ) -> list[str]:
        if self.is_local:
            try:
                with os.scandir(folder) as entries:
                    return sorted(entry.name for entry in entries if entry.name > name)
            except FileNotFoundError:
                return []
        if self.kind == "s3":
            return self._io("list objects",
                            lambda: s3.names_after(self.fs, folder, name,
                                                   every_page=every_page, first=first))
        return [n for n in self.listdir(folder) if n > name]

    def exists(self, path: str) -> bool:
        """Whether the object ``path`` exists (folders are not objects)."""
        if self.kind == "s3":
            try:
                self.info(path)
            except FileNotFoundError:
                return False
            return True
        if self.is_local:
            return os.path.exists(path)
        self._fresh(path)
        return bool(self._io("look up an object", lambda: self.fs.exists(path)))

    def info(self, path: str) -> dict[str, Any]:
        """fsspec ``info()`` of an object, fresh from storage; FileNotFoundError if absent."""
        self._fresh(path)
        look = (lambda p: s3.head(self.fs, p)) if self.kind == "s3" else self.fs.info
        return dict(self._io("look up an object", lambda: look(path), keep=_not_found))

    def remove(self, path: str) -> None:
        """Delete one object (garbage collection only); FileNotFoundError if absent."""
        self._io("delete an object", lambda: self.fs.rm_file(path), keep=_not_found)
        self._fresh(path)

    # -- blobs -------------------------------------------------------------
    def has_blob(self, digest: str) -> bool:
        return self.exists(self.blob_path(digest))

    def check_sources(self, sources: Iterable[str]) -> None:
        """Every source exists and is a file, before any of them is read.

        Looked at as :meth:`stage` will read them (a source of the registry's
        own protocol with the registry's storage options); a URL is shown
        without credentials.
        """
        for source in sources:
            check_source(source, *self._source_fs(source), self._secrets)

    def stage(self, source: str, *, keep: bool = True) -> StagedBlob:
        """Hash ``source`` (a local path or fsspec URL) while streaming it.

        With ``keep`` on local disk the bytes are also copied next to the blob
        store, ready to publish; without it nothing at all is written. A URL
        is read again from the start after a transient failure, and what
        still fails names it (without credentials).
        """
        src_fs, src_path = self._source_fs(source)
        if is_local(src_fs):
            return self._stage(source, src_fs, src_path, keep)
        return backends.with_retries(
            lambda: self._stage(source, src_fs, src_path, keep), what="read a file to commit",
            url=backends.redact(source, self._secrets), secrets=self._secrets,
            keep=lambda exc: isinstance(exc, SourceNotFoundError))

    def _stage(self, source: str, src_fs: SourceFs, src_path: str,
               keep: bool) -> StagedBlob:
        temp = self.path(layout.temp(f"{uuid.uuid4().hex}.part")) if self.is_local and keep \
            else None
        return stage_source(source, src_fs, src_path, temp)

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
        if self._put_if_absent(staged, final):
            return False
        try:
            info = self.info(final)
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

    def _put_if_absent(self, staged: StagedBlob, final: str) -> bool:
        """On S3, a small blob is sent at once, created only if absent: ``True`` if it was.

        One request instead of a ``HEAD`` and a ``PUT`` for a new blob (a small
        commit's usual case); an existing one costs the bytes sent again plus
        the ``HEAD`` that follows (to freshen it), which is why only small
        blobs go this way. Where the server ignored the condition, the same
        bytes were written again: harmless at a content address.
        """
        if self.kind != "s3" or staged.size > CONDITIONAL_PUT_MAX:
            return False
        src_fs, src_path = self._source_fs(staged.source)
        if getattr(src_fs, "async_impl", False):  # see _upload_verified
            return False
        return bool(self._io("upload a file", lambda: s3.put(
            self.fs, staged, final, src_fs, src_path, if_absent=True)))

    def _upload_verified(self, staged: StagedBlob, final: str) -> None:
        """Upload the source to ``final``, re-hashing it on the way.

        The upload is completed only if the bytes hash to the staged digest;
        otherwise (or on any error) it is aborted, so a partial or wrong
        object never appears at a content address.
        """
        # The one-request PUT reads its source inside the event loop that sends it
        # (botocore signs the body there): a source that needs that loop to be read
        # (s3fs, gcsfs, adlfs) is read from this thread instead.
        src_fs, src_path = self._source_fs(staged.source)
        streamable = not getattr(src_fs, "async_impl", False)
        upload: Callable[..., object]
        if self.kind == "s3" and staged.size < SINGLE_PUT_MAX and streamable:
            upload = s3.put
        elif self.kind == "s3" and staged.size > PART_SIZE:
            upload = s3.put_in_parts
        else:  # where a write is visible at once (memory), a failed one is removed
            upload = functools.partial(
                upload_streamed, visible_at_once=self.kind not in backends.OBJECT_STORE_KINDS)
        self._io("upload a file", lambda: upload(self.fs, staged, final, src_fs, src_path))

    def _source_fs(self, source: str) -> tuple[SourceFs, str]:
        """The filesystem of a source (see :func:`~kirin.sources.source_fs`); the registry's
        options reach sources of its protocol."""
        if ("://" in source or "::" in source) and not self.is_local and self._options:
            protocol = source.split("://", 1)[0].split("::")[-1]
            if protocol in backends.protocols(self.fs):
                fs, path = backends.open_url(source, self._options)
                return fs, path
        return source_fs(source)

    def discard(self, staged: StagedBlob) -> None:
        if staged.temp_path is not None:
            self._remove_temp(staged.temp_path)

    def _remove_temp(self, tmp: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)

    def open_blob(self, digest: str, size: int, *, name: str,
                  commit: str | None, stream: bool = False) -> IO[bytes]:
        """A reader of the blob that never hands out bytes that fail its hash.

        By default the whole blob is verified before this returns (so a
        damaged blob raises here), and the reader is seekable. It serves a
        private copy, which later changes to storage cannot reach: in memory
        up to ``SPOOL_MAX`` bytes, a temporary file (``TMPDIR``) above. A
        large blob on local disk is not copied (that would double the cost of
        the read): it is hashed through one open descriptor, which is then
        rewound and served, so replacing or deleting the blob file changes
        nothing; a rewrite in place is caught by the file's size and
        timestamps, checked before each chunk is handed out (see
        ``_UnchangedLocalFile``).

        With ``stream`` the bytes are handed out as they arrive: earlier
        chunks are unverified, and the read that delivers the last byte (or
        any read past it) raises :class:`CorruptObjectError` on a mismatch.
        """
        path = self.blob_path(digest)
        if not is_digest(digest):
            raise CorruptObjectError(f"{where(name, commit)} has an invalid content hash "
                                     f"{digest!r}", path=path, commit=commit, file=name)
        if stream:
            return io.BufferedReader(self._verifying_reader(digest, size, name=name,
                                                            commit=commit),
                                     buffer_size=CHUNK)
        # S3: one GET read ahead by a block, resumed where a transient failure cut it. The
        # ranged reads of the other stores keep several parts in memory (faster, for
        # downloads), so there a copy streams like a plain read.
        if self.kind == "s3" and size > READ_BLOCK:
            return copied(size, lambda copy: self._download_parts(
                digest, size, copy, _ignore, name=name, commit=commit))
        reader = self._verifying_reader(digest, size, name=name, commit=commit)
        if self.is_local and size > SPOOL_MAX:
            return io.BufferedReader(reader.verify_in_place(), buffer_size=CHUNK)

        def fill(copy: IO[bytes]) -> None:
            with reader:
                reader.copy_into(copy)

        return copied(size, fill)

    def _verifying_reader(self, digest: str, size: int, *, name: str,
                          commit: str | None) -> VerifyingReader:
        raw, check = self._open_checked(digest, size, name=name, commit=commit)
        return VerifyingReader(raw, check, self._read_error)

    def _open_checked(self, digest: str, size: int, *, name: str,
                      commit: str | None) -> tuple[IO[bytes], BlobCheck]:
        """The blob opened for reading, and the check its bytes must pass (a missing blob:
        :class:`CorruptObjectError` naming file and commit)."""
        path = self.blob_path(digest)
        check = BlobCheck(digest, size, path=path, name=name, commit=commit)
        try:
            raw = self._io("open a file", lambda: self._open_read(path), keep=_not_found)
        except FileNotFoundError as exc:
            raise check.missing() from exc
        return raw, check

    def iter_object(self, path: str) -> Iterator[bytes]:
        """The bytes of one object in chunks, unverified (``verify`` compares them itself).

        Opening is retried; a failure while reading becomes a ``StorageError``
        naming the root URL. FileNotFoundError if the object is absent.
        """
        handle = self._io("open a file", lambda: self._open_read(path), keep=_not_found)
        with handle:
            while True:
                try:
                    chunk = handle.read(CHUNK)
                except Exception as exc:
                    error = self._read_error(exc)
                    if error is exc:
                        raise
                    raise error from error.__cause__  # set by _read_error, free of secrets
                if not chunk:
                    return
                yield chunk

    def _open_read(self, path: str) -> IO[bytes]:
        if self.is_local:
            return self.fs.open(path, "rb")  # type: ignore[no-any-return]
        self._fresh(path)
        return self.fs.open(path, "rb", block_size=READ_BLOCK)  # type: ignore[no-any-return]

    def _read_error(self, exc: BaseException) -> BaseException:
        """A failure while streaming a blob, as a StorageError (no retry mid-stream).

        A new error carries the original as its cause only if that shows no
        secret (as ``backends.with_retries`` does), so callers just raise it.
        """
        if self.is_local or isinstance(exc, StorageError):
            return exc
        error = backends.translate(exc, url=self.url, what="read a file",
                                   secrets=self._secrets)
        if error is not exc:
            error.__cause__ = backends.safe_cause(exc, self._secrets)
            error.__suppress_context__ = True
        return error

    def download_blob(self, digest: str, size: int, target: Path, *, name: str,
                      commit: str | None) -> None:
        """Copy a blob to a local file; the file appears only once verified."""
        target.parent.mkdir(parents=True, exist_ok=True)
        # short, fixed-length name: the target's own name may already be 255 bytes long
        tmp = target.with_name(f".kirin-{uuid.uuid4().hex[:12]}.part")
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        try:
            if self.kind in backends.OBJECT_STORE_KINDS and size > READ_BLOCK \
                    and is_digest(digest):
                with open(tmp, "xb") as out, \
                        progress.transfer(f"Downloading {name}", size) as advance:
                    self._download_parts(digest, size, out, advance, name=name, commit=commit)
                os.replace(tmp, target)
                return
            if self.is_local and size >= KERNEL_COPY_BLOCK and is_digest(digest) and \
                    self._copy_local_blob(digest, size, tmp, name=name, commit=commit):
                os.replace(tmp, target)
                return
            with self.open_blob(digest, size, name=name, commit=commit, stream=True) as reader, \
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

    def _copy_local_blob(self, digest: str, size: int, tmp: Path, *, name: str,
                         commit: str | None) -> bool:
        """Copy a local blob to ``tmp`` in the kernel, hashing the copy; False: not done.

        As a commit stages a file (:func:`~kirin.sources.kernel_copy_hashing`):
        the bytes hashed are those of the copy the caller gets, so a blob
        changed while it is copied is caught, and a download costs about the
        hash alone rather than the hash and two copies through Python. False
        (``tmp`` not created) where the kernel will not copy (small blobs, other
        systems): the caller's loop does it.
        """
        raw, check = self._open_checked(digest, size, name=name, commit=commit)
        with raw:
            with open(tmp, "xb") as out, \
                    progress.transfer(f"Downloading {name}", size) as advance:
                copied = kernel_copy_hashing(raw, out, check, advance)
            if copied is None:
                os.unlink(tmp)
                return False
        check.finish()
        return True

    def _download_parts(self, digest: str, size: int, out: IO[bytes],
                        advance: Callable[[int], None], *, name: str,
                        commit: str | None) -> None:
        """Fetch a large blob from an object store, resuming where a transient failure cut it.

        Memory stays at a few parts whatever the size. The bytes are hashed in
        order, and reading goes past the recorded size (to the object's end on
        S3, one byte past it elsewhere), so a blob that is longer, shorter or
        different is reported as corrupt; a retry
        continues from the last byte written rather than starting over.
        """
        path = self.blob_path(digest)
        check = BlobCheck(digest, size, path=path, name=name, commit=commit)

        def attempt() -> None:
            chunks: Generator[bytes, None, None] = (
                s3.stream(self.fs, path, check.seen) if self.kind == "s3"
                else asyncfs.ranged_reads(self.fs, path, check.seen, size))
            with contextlib.closing(chunks):
                for chunk in chunks:
                    check.update(chunk)
                    out.write(chunk)
                    advance(len(chunk))

        try:
            self._io("read a file", attempt, keep=_not_found)
        except FileNotFoundError as exc:
            raise check.missing() from exc
        except StorageError as exc:
            if isinstance(exc, CorruptObjectError):
                raise
            actual = self.info(path).get("size")
            if actual is not None and int(actual) != size:
                raise check.corrupt(f"it holds {actual} bytes, expected {size}") from exc
            raise
        check.finish()

    def iter_blobs(self) -> Iterator[str]:
        """Every blob digest present in storage (for verify and gc)."""
        base = self.path(layout.DATA)
        self._fresh(base)
        for path in self._io("list objects", lambda: self.fs.find(base)):
            rel = str(path)[len(base):].strip("/")
            digest = layout.digest_of_blob(rel)
            if is_digest(digest):
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


def _ignore(_: int) -> None:
    """A progress callback for copies nobody reports on."""
