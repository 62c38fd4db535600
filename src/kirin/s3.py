"""S3 requests made directly, where s3fs's generic calls would cost more or risk more.

Every call into s3fs's or botocore's internals is here: a lookup is one
``HeadObject`` (s3fs adds a LIST when the object is absent); a listing asks
for names after a given one (``StartAfter``); a blob below the single-PUT
size is one ``PutObject`` whose body re-hashes the source as it is sent and
withholds its last bytes on a mismatch; above it, a multipart upload with
parts in flight, aborted unless the bytes hashed right; and a blob is read
with one ``GetObject`` that the caller resumes from where it broke off.
Callers retry (:meth:`kirin.store.Store._io`); nothing here does.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Callable, Generator
from typing import Any

from . import backends, progress
from .sources import (
    SourceFs,
    StagedBlob,
    changed_source,
    open_source,
    part_size,
    read_part,
    source_label,
)
from .verified import READ_BLOCK

UPLOAD_WINDOW = 2  # parts in flight when uploading a large blob to S3
#: ``cat_file`` options for a small object: s3fs asks for the size first (HEAD,
#: then a LIST when absent) unless told not to split the read; one GET is enough.
ONE_GET: dict[str, Any] = {"max_concurrency": 1}


def _sync(fs: Any, call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)`` run to its end in ``fs``'s event loop, from this thread."""
    from fsspec.asyn import sync  # loaded already: ``fs`` is an fsspec filesystem

    return sync(fs.loop, call, *args, **kwargs)


def head(fs: Any, path: str) -> dict[str, Any]:
    """An object's ``info()`` from one HEAD; FileNotFoundError if absent."""
    bucket, key, _ = fs.split_path(path)
    answer = _sync(fs, fs._call_s3, "head_object",
                              getattr(fs, "kwargs", {}), Bucket=bucket, Key=key)
    return {"name": f"{bucket}/{key}", "type": "file", "size": answer["ContentLength"],
            "LastModified": answer.get("LastModified"), "ETag": answer.get("ETag", "")}


def names_after(fs: Any, folder: str, after: str, *, every_page: bool,
                first: int | None = None) -> list[str]:
    """Base names in ``folder`` after ``after``, one ``ListObjectsV2`` per 1,000.

    Only the first page unless ``every_page``; only ``first`` names if given
    (``MaxKeys``: a short answer, where a full page is some 250 kB). s3fs's
    own listing of an empty folder lists its parent too.
    """
    bucket, prefix, _ = fs.split_path(folder.rstrip("/") + "/")
    limit = {"MaxKeys": first} if first is not None else {}

    async def listing() -> list[str]:
        keys: list[str] = []
        token: dict[str, str] = {}
        while True:
            answer = await fs._call_s3("list_objects_v2", Bucket=bucket, Prefix=prefix,
                                       StartAfter=prefix + after, Delimiter="/", **limit,
                                       **token)
            keys += [str(item["Key"]) for item in answer.get("Contents", [])]
            keys += [str(item["Prefix"]) for item in answer.get("CommonPrefixes", [])]
            if not (every_page and answer.get("IsTruncated")):
                break
            token = {"ContinuationToken": answer["NextContinuationToken"]}
        names = (key[len(prefix):].rstrip("/") for key in keys)
        return sorted(n for n in names if n > after)  # "sub/" comes after "sub"

    return list(_sync(fs, listing))


def put(fs: Any, staged: StagedBlob, final: str, src_fs: SourceFs,
        src_path: str, *, if_absent: bool = False) -> bool:
    """One PUT whose body is read from the source as it is sent (memory stays flat).

    ``if_absent``: only if no object is at ``final`` (``If-None-Match: *``);
    returns ``False`` if one was. For a small blob that replaces a ``HEAD``
    and a ``PUT`` by one request.

    The body (:class:`_VerifyingBody`) withholds its last bytes unless
    everything read hashes to the staged digest, so a changed source cuts
    the request short and S3, for which a PUT is all or nothing, stores
    nothing. The digest also travels as the object's SHA-256 checksum,
    which S3 checks on its side (unless the client is configured with
    ``request_checksum_calculation="when_required"``). Each attempt opens
    the source afresh; retries are the caller's, as the client library's
    own retry of a call would resend a body already read to its end.
    """
    from botocore.exceptions import ClientError  # s3fs's dependencies: S3 only
    from s3fs.errors import translate_boto_error

    bucket, key, _ = fs.split_path(final)
    import base64  # S3 uploads only

    checksum = base64.b64encode(bytes.fromhex(staged.digest)).decode()
    with open_source(src_fs, src_path, staged.source) as reader, \
            progress.transfer(f"Uploading {source_label(staged.source)}",
                              staged.size) as advance:
        body = _VerifyingBody(reader, staged, advance)

        async def put() -> bool:
            await fs.set_session()
            client = await fs.get_s3(bucket)
            # the SHA-256 goes along as botocore's default CRC32 would: not when the
            # client is told to send checksums only when required (servers refusing them)
            wanted = getattr(client.meta.config, "request_checksum_calculation", None)
            extra = {} if wanted == "when_required" else {"ChecksumSHA256": checksum}
            if if_absent:
                extra["IfNoneMatch"] = "*"
            kwargs = fs._get_s3_method_kwargs(
                client.put_object, Bucket=bucket, Key=key, Body=body,
                ContentLength=staged.size, **extra)
            try:
                await client.put_object(**kwargs)
            except ClientError as exc:
                if if_absent and backends.error_code(exc) == "PreconditionFailed":
                    return False
                raise translate_boto_error(exc) from exc
            return True

        try:
            return bool(_sync(fs, put))
        except BaseException:
            if body.changed:
                raise changed_source(staged) from None
            raise
        finally:
            fs.invalidate_cache(final)


def put_in_parts(fs: Any, staged: StagedBlob, final: str, src_fs: SourceFs,
                 src_path: str) -> None:
    """A multipart upload with up to ``UPLOAD_WINDOW`` parts in flight.

    Reading and hashing the next part overlaps with sending the previous
    ones (s3fs's write handles send parts one at a time, and only once
    the caller stops to wait). Memory stays near ``UPLOAD_WINDOW + 1``
    parts. The upload is completed only if the bytes hashed to the staged
    digest; on any failure it is aborted, so nothing appears at the blob's
    address.
    """
    import asyncio  # with fsspec's async filesystems, not with ``import kirin``

    bucket, key, _ = fs.split_path(final)
    size_of_part = part_size(staged.size)
    digest = hashlib.sha256()
    size = 0

    def call(method: str, **kwargs: Any) -> Any:
        return _sync(fs, fs._call_s3, method, Bucket=bucket, Key=key,
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
        with open_source(src_fs, src_path, staged.source) as reader, \
                progress.transfer(f"Uploading {source_label(staged.source)}",
                                  staged.size) as advance:
            number = 0
            while chunk := read_part(reader, size_of_part):
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
            raise changed_source(staged)
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


def stream(fs: Any, path: str, start: int) -> Generator[bytes, None, None]:
    """One GET from ``start`` to the end, read ahead by one ``READ_BLOCK``.

    One request instead of many ranges: S3-compatible servers that slice
    each range out of the whole object (moto does) stay fast, and a
    dropped connection is resumed from ``start`` by the caller's retry.
    """
    import asyncio

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

    body = _sync(fs, open_body)
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
            raise changed_source(self._staged)
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
            raise changed_source(self._staged)
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
        raise changed_source(self._staged)
