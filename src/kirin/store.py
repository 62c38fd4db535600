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
* memory: fsspec's create is a check-then-insert, so creates take a lock (a
  ``memory://`` filesystem lives in one process, so that makes them atomic);
* S3 (s3fs): a failed ``If-None-Match`` may surface as ``OSError(EINVAL)``
  rather than ``FileExistsError``; both mean "someone else created it";
* S3, GCS, Azure: a conditional create that the client library retried after
  a lost response fails its own condition, so a lost race is confirmed by
  reading the object back (our bytes there mean we won); and the first create
  in a bucket probes that the server honours the condition at all (some
  S3-compatible servers silently ignore it: Kirin then refuses to write);
* every object store: listing caches are bypassed (other writers add objects),
  transient failures are retried with bounded, jittered backoff, and what
  still fails becomes a :class:`~kirin.errors.StorageError` naming the URL
  (never a credential); blobs are uploaded streamed (on S3 one PUT below
  ``SINGLE_PUT_MAX``, parts of bounded size above), and a failed or
  abandoned upload is aborted rather than completed.

Which backend guarantees what, and the errors of each client library, are in
:mod:`kirin.backends`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import hashlib
import io
import logging
import os
import stat
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import fsspec
import fsspec.asyn
from fsspec.implementations.local import LocalFileSystem

from . import backends, layout, progress
from .digests import is_digest
from .errors import (
    BucketNotFoundError,
    CorruptObjectError,
    InvalidArgumentTypeError,
    InvalidInputError,
    SourceNotFoundError,
    StorageError,
    UnsafeConcurrencyWarning,
    UnsafeStorageError,
)

log = logging.getLogger("kirin")
T = TypeVar("T")

#: A reused blob older than this is freshened by a commit (see ``Store.publish``);
#: garbage collection's grace period must be longer.
FRESHEN_AFTER = 10 * 60
CHUNK = 1 << 20  # 1 MiB: large enough to amortise Python overhead, small for memory
KERNEL_COPY_BLOCK = 8 << 20  # local staging: copied in the kernel while the last block is hashed
#: Parts of multipart uploads and read-ahead blocks on object stores: memory per
#: transfer stays near this, whatever the file size (S3 parts must be >= 5 MiB).
PART_SIZE = 8 << 20
READ_BLOCK = 4 << 20  # read-ahead of blob reads on object stores
SPOOL_MAX = 16 << 20  # verified copies of blobs being read: in memory up to this, then on disk
DOWNLOAD_WINDOW = 4  # ranged reads in flight when downloading a large blob
UPLOAD_WINDOW = 2  # parts in flight when uploading a large blob to S3
#: Smaller blobs go to S3 as one PUT streamed from the source, larger ones in
#: parts. s3fs's ``put_file`` draws the same line (twice its 50 MiB chunk); a
#: failed PUT is sent again whole, so the line also bounds what a retry resends.
SINGLE_PUT_MAX = 100 << 20
MAX_PARTS = 9000  # below S3's 10,000-part limit; larger files get larger parts
#: Set to "1" to write to a server that ignores create-if-absent (one writer only!).
ALLOW_UNSAFE_ENV = "KIRIN_ALLOW_UNSAFE_STORAGE"
_memory_lock = threading.Lock()
_probed: dict[tuple[str, str, str], bool] = {}
_probe_lock = threading.Lock()


def _lost_race(exc: BaseException) -> bool:
    """True when a create-if-absent write failed because the object exists."""
    if isinstance(exc, FileExistsError):
        return True
    return isinstance(exc, OSError) and exc.errno == errno.EINVAL


def _not_found(exc: BaseException) -> bool:
    return isinstance(exc, FileNotFoundError)


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


class Store:
    """Blobs and write-once objects under one root on one fsspec filesystem."""

    def __init__(self, root: str | os.PathLike[str], fs: fsspec.AbstractFileSystem | None = None,
                 **storage_options: Any) -> None:
        root_str = os.fspath(root)
        if fs is not None and not isinstance(fs, fsspec.AbstractFileSystem):
            raise InvalidArgumentTypeError(
                f"fs must be an fsspec filesystem or None, not {type(fs).__name__}")
        if fs is None:
            if "://" in root_str or "::" in root_str:
                fs, path = backends.open_url(root_str, storage_options)
            else:
                fs, path = LocalFileSystem(), os.path.abspath(os.path.expanduser(root_str))
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
        self.fs: fsspec.AbstractFileSystem = fs
        self.root: str = str(path).rstrip("/") or "/"
        self.is_local = isinstance(fs, LocalFileSystem)
        self.kind = backends.kind_of(fs)
        self._options = dict(storage_options)  # private: may hold credentials
        self._secrets = backends.secret_values(
            {**dict(getattr(fs, "storage_options", None) or {}), **storage_options})
        self._bucket_checked = False
        self._create_checked = False

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
            return self._create_local(path, data)
        if self.kind == "memory":
            with _memory_lock:
                return self._create_remote(path, data, confirm=False)
        self._check_create_support()
        return self._create_remote(path, data, confirm=True)

    def _create_remote(self, path: str, data: bytes, *, confirm: bool) -> bool:
        try:
            self._io("create an object",
                     lambda: self.fs.pipe_file(path, data, mode="create"), keep=_lost_race)
        except OSError as exc:
            if not _lost_race(exc) or isinstance(exc, StorageError):
                raise
            # The client may have retried a create whose first try succeeded but whose
            # answer was lost: the retry then fails its own condition. Our bytes there
            # mean this writer created the object.
            return confirm and self.read(path) == data
        return True

    def _cat(self, path: str) -> bytes:
        # s3fs asks for the size first (HEAD, then a LIST when absent) unless told
        # not to split the read: one GET is all a small object needs.
        if self.kind == "s3":
            return bytes(self.fs.cat_file(path, max_concurrency=1))
        return bytes(self.fs.cat_file(path))

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
        fs: Any = self.fs
        kwargs = {"max_concurrency": 1} if self.kind == "s3" else {}

        async def gather() -> list[Any]:
            return list(await asyncio.gather(*(fs._cat_file(p, **kwargs) for p in paths),
                                             return_exceptions=True))

        results = fsspec.asyn.sync(fs.loop, gather)
        return {p: (r if isinstance(r, BaseException) else bytes(r))
                for p, r in zip(paths, results, strict=True)}

    def _check_create_support(self) -> None:
        """Once per bucket and process: prove the server refuses a second create.

        A server that ignores ``If-None-Match: *`` (or ``ifGenerationMatch=0``)
        would let two writers both "create" the same log entry, the second
        silently replacing the first: Kirin refuses to write there.
        """
        if self._create_checked:
            return
        key = (f"{type(self.fs).__module__}.{type(self.fs).__qualname__}",
               str(getattr(self.fs, "_fs_token", id(self.fs))),
               backends.bucket_of(self.fs, self.root))
        with _probe_lock:
            if key not in _probed:
                _probed[key] = self._probe_create()
            honoured = _probed[key]
        self._create_checked = True
        backends.warn_if_unsafe(self.fs, self.url)
        if honoured:
            return
        message = (f"The storage at {self.url} does not honour create-if-absent: a second "
                   "conditional create of the same object succeeded. Concurrent commits "
                   "could overwrite each other there, so Kirin refuses to write. Use a "
                   "server that supports conditional writes (If-None-Match: *), or set "
                   f"{ALLOW_UNSAFE_ENV}=1 if only one writer ever commits.")
        if os.environ.get(ALLOW_UNSAFE_ENV) == "1":
            warnings.warn(message, UnsafeConcurrencyWarning, stacklevel=3)
            return
        raise UnsafeStorageError(message, url=self.url)

    def _probe_create(self) -> bool:
        probe = self.path(layout.probe(uuid.uuid4().hex))
        try:
            self._io("write a test object", lambda: self.fs.pipe_file(probe, b"1",
                                                                       mode="create"))
            try:
                self._io("write a test object",
                         lambda: self.fs.pipe_file(probe, b"2", mode="create"), keep=_lost_race)
            except OSError as exc:
                if _lost_race(exc) and not isinstance(exc, StorageError):
                    return True
                raise
            return False
        finally:
            try:
                self.fs.rm_file(probe)
            except Exception as exc:  # e.g. no delete permission: a 1-byte object is left behind
                log.debug("Could not remove %s: %s", probe, backends.summary(exc, self._secrets))

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
        self._fresh(path)
        if self.kind == "s3":  # s3fs lists the parent too when a folder is empty
            return self._s3_names(path, "", every_page=True)
        try:
            entries = self._io("list objects", lambda: self.fs.ls(path, detail=False),
                               keep=_not_found)
        except FileNotFoundError:
            self._missing()
            return []
        names = [str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries]
        return sorted(n for n in names if n)

    def names_after(self, folder: str, name: str) -> list[str]:
        """Base names of the objects and folders in ``folder`` that sort after ``name``.

        On S3, only the first 1,000 (one page): enough to tell whether any exist.
        That is one request whatever the folder's size (``StartAfter``);
        elsewhere the folder is listed (a directory scan on local disk).
        """
        if self.is_local:
            try:
                with os.scandir(folder) as entries:
                    return sorted(entry.name for entry in entries if entry.name > name)
            except FileNotFoundError:
                return []
        if self.kind == "s3":
            return self._s3_names(folder, name, every_page=False)
        return [n for n in self.listdir(folder) if n > name]

    def _s3_names(self, folder: str, after: str, *, every_page: bool) -> list[str]:
        """S3: base names in ``folder`` after ``after``, one ``ListObjectsV2`` per 1,000."""
        fs: Any = self.fs
        bucket, prefix, _ = fs.split_path(folder.rstrip("/") + "/")

        async def listing() -> list[str]:
            keys: list[str] = []
            token: dict[str, str] = {}
            while True:
                answer = await fs._call_s3("list_objects_v2", Bucket=bucket, Prefix=prefix,
                                           StartAfter=prefix + after, Delimiter="/", **token)
                keys += [str(item["Key"]) for item in answer.get("Contents", [])]
                keys += [str(item["Prefix"]) for item in answer.get("CommonPrefixes", [])]
                if not (every_page and answer.get("IsTruncated")):
                    break
                token = {"ContinuationToken": answer["NextContinuationToken"]}
            names = (key[len(prefix):].rstrip("/") for key in keys)
            return sorted(n for n in names if n > after)  # "sub/" comes after "sub"

        return list(self._io("list objects", lambda: fsspec.asyn.sync(fs.loop, listing)))

    def exists(self, path: str) -> bool:
        """Whether the object ``path`` exists (folders are not objects)."""
        if self.kind == "s3":
            try:
                self.info(path)
            except FileNotFoundError:
                return False
            return True
        self._fresh(path)
        return bool(self._io("look up an object", lambda: self.fs.exists(path)))

    def info(self, path: str) -> dict[str, Any]:
        """fsspec ``info()`` of an object, fresh from storage; FileNotFoundError if absent."""
        self._fresh(path)
        look = self._s3_head if self.kind == "s3" else self.fs.info
        return dict(self._io("look up an object", lambda: look(path), keep=_not_found))

    def _s3_head(self, path: str) -> dict[str, Any]:
        """S3: an object's ``info()`` from one HEAD (s3fs adds a LIST when it is absent)."""
        fs: Any = self.fs
        bucket, key, _ = fs.split_path(path)
        answer = fsspec.asyn.sync(fs.loop, fs._call_s3, "head_object",
                                  getattr(fs, "kwargs", {}), Bucket=bucket, Key=key)
        return {"name": f"{bucket}/{key}", "type": "file", "size": answer["ContentLength"],
                "LastModified": answer.get("LastModified"), "ETag": answer.get("ETag", "")}

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
            src_fs, src_path = self._source_fs(source)

            def look(fs: Any = src_fs, path: str = src_path) -> str:
                if fs.isfile(path):
                    return "file"
                return "folder" if fs.isdir(path) else "missing"

            if isinstance(src_fs, LocalFileSystem):
                shown, found = source, look()
            else:
                shown = backends.redact(source, self._secrets)
                found = backends.with_retries(look, what="look up a file to commit",
                                              url=shown, secrets=self._secrets)
            if found == "folder":
                raise _folder_source(shown)
            if found == "missing":
                raise SourceNotFoundError(shown)

    def stage(self, source: str, *, keep: bool = True) -> StagedBlob:
        """Hash ``source`` (a local path or fsspec URL) while streaming it.

        With ``keep`` on local disk the bytes are also copied next to the blob
        store, ready to publish; without it nothing at all is written. A URL
        is read again from the start after a transient failure, and what
        still fails names it (without credentials).
        """
        src_fs, src_path = self._source_fs(source)
        if isinstance(src_fs, LocalFileSystem):
            return self._stage(source, src_fs, src_path, keep)
        return backends.with_retries(
            lambda: self._stage(source, src_fs, src_path, keep), what="read a file to commit",
            url=backends.redact(source, self._secrets), secrets=self._secrets,
            keep=lambda exc: isinstance(exc, SourceNotFoundError))

    def _stage(self, source: str, src_fs: fsspec.AbstractFileSystem, src_path: str,
               keep: bool) -> StagedBlob:
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
                    tmp = self.path(layout.temp(f"{uuid.uuid4().hex}.part"))
                    os.makedirs(os.path.dirname(tmp), exist_ok=True)
                    with open(tmp, "xb") as out:
                        copied = _kernel_copy_hashing(reader, out, digest, advance)
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
        if self.kind == "s3" and staged.size < SINGLE_PUT_MAX and streamable:
            upload = self._upload_s3_single
        elif self.kind == "s3" and staged.size > PART_SIZE:
            upload = self._upload_s3_multipart
        else:
            upload = self._upload_once
        self._io("upload a file", lambda: upload(staged, final, src_fs, src_path))

    def _upload_s3_single(self, staged: StagedBlob, final: str,
                          src_fs: fsspec.AbstractFileSystem, src_path: str) -> None:
        """S3: one PUT whose body is read from the source as it is sent (memory stays flat).

        The body (:class:`_VerifyingBody`) withholds its last bytes unless
        everything read hashes to the staged digest, so a changed source cuts
        the request short and S3, for which a PUT is all or nothing, stores
        nothing. The digest also travels as the object's SHA-256 checksum,
        which S3 checks on its side (unless the client is configured with
        ``request_checksum_calculation="when_required"``). Each attempt opens
        the source afresh; retries are ours (``_io``), as the client library's
        own retry of a call would resend a body already read to its end.
        """
        from botocore.exceptions import ClientError  # s3fs's dependencies: S3 only
        from s3fs.errors import translate_boto_error

        fs: Any = self.fs
        bucket, key, _ = fs.split_path(final)
        checksum = base64.b64encode(bytes.fromhex(staged.digest)).decode()
        with _open_source(src_fs, src_path, staged.source) as reader, \
                progress.transfer(f"Uploading {source_label(staged.source)}",
                                  staged.size) as advance:
            body = _VerifyingBody(reader, staged, advance)

            async def put() -> None:
                await fs.set_session()
                client = await fs.get_s3(bucket)
                # the SHA-256 goes along as botocore's default CRC32 would: not when the
                # client is told to send checksums only when required (servers refusing them)
                wanted = getattr(client.meta.config, "request_checksum_calculation", None)
                extra = {} if wanted == "when_required" else {"ChecksumSHA256": checksum}
                kwargs = fs._get_s3_method_kwargs(
                    client.put_object, Bucket=bucket, Key=key, Body=body,
                    ContentLength=staged.size, **extra)
                try:
                    await client.put_object(**kwargs)
                except ClientError as exc:
                    raise translate_boto_error(exc) from exc

            try:
                fsspec.asyn.sync(fs.loop, put)
            except BaseException:
                if body.changed:
                    raise _changed_source(staged) from None
                raise
            finally:
                fs.invalidate_cache(final)

    def _upload_s3_multipart(self, staged: StagedBlob, final: str,
                             src_fs: fsspec.AbstractFileSystem, src_path: str) -> None:
        """S3: a multipart upload with up to ``UPLOAD_WINDOW`` parts in flight.

        Reading and hashing the next part overlaps with sending the previous
        ones (s3fs's write handles send parts one at a time, and only once
        the caller stops to wait). Memory stays near ``UPLOAD_WINDOW + 1``
        parts. The upload is completed only if the bytes hashed to the staged
        digest; on any failure it is aborted, so nothing appears at the blob's
        address.
        """
        fs: Any = self.fs
        bucket, key, _ = fs.split_path(final)
        size_of_part = part_size(staged.size)
        digest = hashlib.sha256()
        size = 0

        def call(method: str, **kwargs: Any) -> Any:
            return fsspec.asyn.sync(fs.loop, fs._call_s3, method, Bucket=bucket, Key=key,
                                    **kwargs)

        upload_id = call("create_multipart_upload")["UploadId"]
        in_flight: list[tuple[int, int, Any]] = []  # (part number, bytes, future)
        parts: list[dict[str, Any]] = []

        def collect(keep: int) -> None:
            """Wait for the oldest parts until at most ``keep`` are in flight."""
            while len(in_flight) > keep:
                done, sent, oldest = in_flight.pop(0)
                parts.append({"PartNumber": done, "ETag": oldest.result()["ETag"]})
                advance(sent)

        try:
            with _open_source(src_fs, src_path, staged.source) as reader, \
                    progress.transfer(f"Uploading {source_label(staged.source)}",
                                      staged.size) as advance:
                number = 0
                while chunk := _read_part(reader, size_of_part):
                    digest.update(chunk)
                    size += len(chunk)
                    number += 1
                    future = asyncio.run_coroutine_threadsafe(fs._call_s3(
                        "upload_part", Bucket=bucket, Key=key, UploadId=upload_id,
                        PartNumber=number, Body=chunk), fs.loop)
                    in_flight.append((number, len(chunk), future))
                    del chunk
                    collect(keep=UPLOAD_WINDOW - 1)
                collect(keep=0)
            if digest.hexdigest() != staged.digest or size != staged.size:
                raise _changed_source(staged)
            call("complete_multipart_upload", UploadId=upload_id,
                 MultipartUpload={"Parts": parts})
        except BaseException:
            for _, _, future in in_flight:
                future.cancel()
            with contextlib.suppress(Exception):
                call("abort_multipart_upload", UploadId=upload_id)
            raise
        finally:
            fs.invalidate_cache(final)

    def _upload_once(self, staged: StagedBlob, final: str,
                     src_fs: fsspec.AbstractFileSystem, src_path: str) -> None:
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        with _open_source(src_fs, src_path, staged.source) as reader, \
                progress.transfer(f"Uploading {source_label(staged.source)}",
                                  staged.size) as advance:
            out = self.fs.open(final, "wb", block_size=part_size(staged.size))
            try:
                while n := _readinto(reader, buffer):
                    digest.update(view[:n])
                    out.write(bytes(view[:n]))
                    size += n
                    advance(n)
                if digest.hexdigest() != staged.digest or size != staged.size:
                    raise _changed_source(staged)
                out.close()
            except BaseException:
                _abandon(out)
                if self.kind not in backends.OBJECT_STORE_KINDS:  # e.g. memory: visible at once
                    with contextlib.suppress(Exception):
                        self.fs.rm_file(final)
                raise

    def _source_fs(self, source: str) -> tuple[fsspec.AbstractFileSystem, str]:
        """The filesystem of a source; the registry's options reach sources of its protocol."""
        if ("://" in source or "::" in source) and not self.is_local and self._options:
            protocol = source.split("://", 1)[0].split("::")[-1]
            if protocol in backends.protocols(self.fs):
                fs, path = backends.open_url(source, self._options)
                return fs, path
        return _source_fs(source)

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
            raise CorruptObjectError(f"{_where(name, commit)} has an invalid content hash "
                                     f"{digest!r}", path=path, commit=commit, file=name)
        if stream:
            return io.BufferedReader(self._verifying_reader(digest, size, name=name,
                                                            commit=commit),
                                     buffer_size=CHUNK)
        copy: IO[bytes]
        # S3: one GET read ahead by a block, resumed where a transient failure cut it. The
        # ranged reads of the other stores keep several parts in memory (faster, for
        # downloads), so there a copy streams like a plain read.
        if self.kind == "s3" and size > READ_BLOCK:
            copy = _spool(size)
            try:
                self._download_parts(digest, size, copy, _ignore, name=name, commit=commit)
            except BaseException:
                copy.close()
                raise
        else:
            reader = self._verifying_reader(digest, size, name=name, commit=commit)
            if self.is_local and size > SPOOL_MAX:
                return io.BufferedReader(reader.verify_in_place(), buffer_size=CHUNK)
            copy = _spool(size)
            try:
                with reader:
                    reader.copy_into(copy)
            except BaseException:
                copy.close()
                raise
        copy.seek(0)
        return io.BufferedReader(_VerifiedCopy(copy), buffer_size=CHUNK)

    def _verifying_reader(self, digest: str, size: int, *, name: str,
                          commit: str | None) -> _VerifyingReader:
        path = self.blob_path(digest)
        try:
            raw = self._io("open a file", lambda: self._open_read(path), keep=_not_found)
        except FileNotFoundError as exc:
            raise CorruptObjectError(
                f"{_where(name, commit)}: its content ({digest[:12]}) is missing from storage "
                f"at {path}", path=path, commit=commit, file=name) from exc
        return _VerifyingReader(raw, digest, size, path, name, commit, self._read_error)

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
        hasher = hashlib.sha256()
        seen = 0

        def corrupt(detail: str) -> CorruptObjectError:
            return CorruptObjectError(f"{_where(name, commit)} is corrupt in storage ({path}): "
                                      f"{detail}", path=path, commit=commit, file=name)

        def attempt() -> None:
            nonlocal seen
            chunks: Generator[bytes, None, None] = (
                self._s3_stream(path, seen) if self.kind == "s3"
                else self._ranged_reads(path, seen, size))
            with contextlib.closing(chunks):
                for chunk in chunks:
                    hasher.update(chunk)
                    seen += len(chunk)
                    if seen > size:
                        raise corrupt(f"it holds more than the recorded {size} bytes")
                    out.write(chunk)
                    advance(len(chunk))

        try:
            self._io("read a file", attempt, keep=_not_found)
        except FileNotFoundError as exc:
            raise CorruptObjectError(
                f"{_where(name, commit)}: its content ({digest[:12]}) is missing from "
                f"storage at {path}", path=path, commit=commit, file=name) from exc
        except StorageError as exc:
            if isinstance(exc, CorruptObjectError):
                raise
            actual = self.info(path).get("size")
            if actual is not None and int(actual) != size:
                raise corrupt(f"it holds {actual} bytes, expected {size}") from exc
            raise
        if seen != size:
            raise corrupt(f"it holds {seen} bytes, expected {size}")
        actual_hash = hasher.hexdigest()
        if actual_hash != digest:
            raise corrupt(f"content hash is {actual_hash[:12]}, expected {digest[:12]}")

    def _s3_stream(self, path: str, start: int) -> Generator[bytes, None, None]:
        """S3: one GET from ``start`` to the end, read ahead by one ``READ_BLOCK``.

        One request instead of many ranges: S3-compatible servers that slice
        each range out of the whole object (moto does) stay fast, and a
        dropped connection is resumed from ``start`` by the caller's retry.
        """
        fs: Any = self.fs
        bucket, key, _ = fs.split_path(path)
        extra = {"Range": f"bytes={start}-"} if start else {}

        async def open_body() -> Any:
            try:
                response = await fs._call_s3("get_object", Bucket=bucket, Key=key, **extra)
            except Exception as exc:
                if start and backends.error_code(exc) == "InvalidRange":
                    return None  # resumed exactly at the end: nothing more to read
                raise
            return response["Body"]

        async def read_block(body: Any) -> bytes:
            pieces, got = [], 0
            while got < READ_BLOCK and (piece := await body.read(READ_BLOCK - got)):
                pieces.append(piece)
                got += len(piece)
            return b"".join(pieces)

        body = fsspec.asyn.sync(fs.loop, open_body)
        if body is None:
            return
        pending = asyncio.run_coroutine_threadsafe(read_block(body), fs.loop)
        try:
            while block := pending.result():
                pending = asyncio.run_coroutine_threadsafe(read_block(body), fs.loop)
                yield block
        finally:
            pending.cancel()
            fs.loop.call_soon_threadsafe(body.close)

    def _ranged_reads(self, path: str, start: int, size: int) -> Generator[bytes, None, None]:
        """Ranges of ``PART_SIZE`` from ``start``, ``DOWNLOAD_WINDOW`` in flight, in order.

        The last range asks for one byte past ``size``, so that an object
        longer than recorded shows up.
        """
        fs: Any = self.fs

        async def get(offset: int) -> bytes:
            end = offset + PART_SIZE if offset + PART_SIZE < size else size + 1
            return bytes(await fs._cat_file(path, start=offset, end=end))

        offsets = iter(range(start, size, PART_SIZE) if start < size else [size])
        in_flight: list[Any] = []
        try:
            while True:
                while len(in_flight) < DOWNLOAD_WINDOW and (offset := next(offsets, None)) \
                        is not None:
                    in_flight.append(asyncio.run_coroutine_threadsafe(get(offset), fs.loop))
                if not in_flight:
                    return
                yield bytes(in_flight.pop(0).result())
        finally:
            for future in in_flight:
                future.cancel()

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

    Too many bytes fail as soon as they appear. The read that brings the
    count to the recorded size first makes sure nothing follows and that
    the hash matches, so a reader that stops at the size (``read(size)``,
    a parser that knows where its data ends) still gets the error instead
    of the last bytes; too few bytes fail when the end is reached.
    """

    def __init__(self, raw: IO[bytes], digest: str, size: int, path: str, name: str,
                 commit: str | None,
                 on_error: Callable[[BaseException], BaseException] | None = None) -> None:
        self._raw = raw
        self._on_error = on_error
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
            self._hasher.update(memoryview(buffer)[:n])
            self._seen += n
            if self._seen > self._size:
                raise self._corrupt(f"it holds more than the recorded {self._size} bytes")
            if self._seen == self._size:
                if self._raw_read(lambda: self._raw.read(1)):
                    raise self._corrupt(f"it holds more than the recorded {self._size} bytes")
                self._finish()
            return int(n)
        self._finish()
        return 0

    def _finish(self) -> None:
        """The end of the blob: raise unless size and hash are those recorded."""
        self._done = True
        if self._seen != self._size:
            raise self._corrupt(f"it holds {self._seen} bytes, expected {self._size}")
        actual = self._hasher.hexdigest()
        if actual != self._expected:
            raise self._corrupt(f"content hash is {actual[:12]}, expected "
                                f"{self._expected[:12]}")

    def copy_into(self, out: IO[bytes]) -> None:
        """Copy the whole blob to ``out``, raising as the last read would."""
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        while n := self.readinto(buffer):
            out.write(view[:n])

    def verify_in_place(self) -> _UnchangedLocalFile:
        """Hash a whole local blob, then hand over its rewound descriptor to be served."""
        try:
            before = _status(self._raw)
            buffer = bytearray(CHUNK)
            while self.readinto(buffer):
                pass
            served = _UnchangedLocalFile(self._raw, before, self._copy_again)
        except BaseException:
            self.close()
            raise
        served.seek(0)
        return served

    def _copy_again(self) -> IO[bytes]:
        """A private copy of the whole blob through the same descriptor, hashed anew."""
        self._raw.seek(0)
        again = _VerifyingReader(self._raw, self._expected, self._size, self._path,
                                 self._name, self._commit, self._on_error)
        copy = _spool(self._size)
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


class _UnchangedLocalFile(io.RawIOBase):
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


class _VerifiedCopy(io.RawIOBase):
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


def _spool(size: int) -> IO[bytes]:
    """An empty private buffer for a copy of ``size`` bytes: in memory up to ``SPOOL_MAX``,
    above that an unnamed temporary file (in ``TMPDIR``, readable by this user only)."""
    if size <= SPOOL_MAX:
        return io.BytesIO()
    return tempfile.TemporaryFile(prefix=".kirin-read-")


def _ignore(_: int) -> None:
    """A progress callback for copies nobody reports on."""


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


def _kernel_copy_hashing(reader: Any, out: IO[bytes], digest: Any,
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


def _changed_source(staged: StagedBlob) -> StorageError:
    return StorageError(f"{staged.source} changed while it was being committed (its content "
                        "no longer matches the hash taken moments before); nothing was "
                        "committed — try again once it is stable")


class _VerifyingBody(io.RawIOBase):
    """A request body read from a staged source that cannot end with the wrong bytes.

    The HTTP client may read it more than once (to sign it, then to send it;
    again after a retry), each time from the start, so each pass is hashed
    anew. The read that would hand out the last bytes first checks that the
    pass hashed to the staged digest and that the source has nothing more;
    otherwise it raises, and the request is cut short before its body is
    complete. Only whole rewinds are supported: a pass that did not start at
    the beginning could not be checked.
    """

    def __init__(self, reader: Any, staged: StagedBlob, advance: Callable[[int], None]) -> None:
        super().__init__()
        self._reader = reader
        self._staged = staged
        self._advance = advance
        self._digest = hashlib.sha256()
        self._position = 0
        self._reported = 0
        self.changed = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if self.changed:  # no point in sending it again
            raise _changed_source(self._staged)
        target = offset if whence == os.SEEK_SET else (
            self._position + offset if whence == os.SEEK_CUR else None)
        if target == self._position:
            return self._position
        if target != 0:
            raise io.UnsupportedOperation("a verifying body only rewinds to its start")
        self._reader.seek(0)
        self._digest = hashlib.sha256()
        self._position = 0
        return 0

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        if self.changed:
            raise _changed_source(self._staged)
        left = self._staged.size - self._position
        want = left if size is None or size < 0 else min(size, left)
        data = bytes(self._reader.read(want)) if want else b""
        if want and not data:  # the source got shorter
            self._fail()
        self._digest.update(data)
        self._position += len(data)
        if self._position == self._staged.size and (
                self._digest.hexdigest() != self._staged.digest or self._reader.read(1)):
            self._fail()
        if self._position > self._reported:
            self._advance(self._position - self._reported)
            self._reported = self._position
        return data

    def _fail(self) -> None:
        self.changed = True
        raise _changed_source(self._staged)


def _read_part(reader: Any, size: int) -> bytes:
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


def _source_fs(source: str) -> tuple[fsspec.AbstractFileSystem, str]:
    if "://" in source or "::" in source:
        fs, path = fsspec.core.url_to_fs(source)
        return fs, str(path)
    return LocalFileSystem(), os.path.abspath(os.path.expanduser(source))


def _folder_source(shown: str) -> SourceNotFoundError:
    return SourceNotFoundError(f"{shown} (it is a folder; add its files by name)")


@contextlib.contextmanager
def _open_source(fs: fsspec.AbstractFileSystem, path: str, source: str) -> Iterator[Any]:
    shown = backends.redact(source) if "://" in source else source
    # the library's error repeats the path: it is not chained when that holds a secret
    chain = shown == source
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
        raise SourceNotFoundError(shown) from (exc if chain else None)
    except IsADirectoryError as exc:
        raise _folder_source(shown) from (exc if chain else None)
    with handle:
        yield handle
