"""Clear errors from object stores: missing buckets, refused credentials, no secrets shown."""

from __future__ import annotations

import io
import logging
import traceback
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from kirin import Catalog, Dataset
from kirin.backends import (
    is_access_denied,
    is_transient,
    redact,
    redact_url,
    secret_values,
    translate,
)
from kirin.errors import (
    BucketNotFoundError,
    InvalidInputError,
    StorageAccessDeniedError,
    StorageError,
)
from kirin.store import Store

from conftest import write
from roots import CLOUD_BACKENDS
from servers import (
    AZURITE_KEY,
    S3_ACCESS_DENIED,
    Fault,
    Request,
    azure_connection_string,
    cloud_for,
    fault_proxy,
    make_cloud,
    start_moto,
)

FAKE_KEY = "c2VjcmV0LWtleS1ub3QtcmVhbC0xMjM0NTY3ODkwYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo="


def full_text(exc: BaseException) -> str:
    """Everything a traceback of ``exc`` would print, chained exceptions included."""
    return "".join(traceback.format_exception(exc))


@pytest.mark.parametrize("kind", CLOUD_BACKENDS)
def test_missing_bucket_is_named_on_read_and_write(request: pytest.FixtureRequest, kind: str,
                                                   workdir: Path) -> None:
    """Reading, listing or committing under a bucket that does not exist raises
    BucketNotFoundError naming the URL, instead of looking like an empty registry."""
    cloud = cloud_for(request, kind)
    url = cloud.url("kirin-no-such-bucket", "models")
    ds = Dataset(url, "ds", **cloud.storage_options())
    with pytest.raises(BucketNotFoundError) as info:
        ds.history()
    assert url in str(info.value) and "bucket" in str(info.value).lower()
    assert info.value.url == url
    with pytest.raises(BucketNotFoundError):
        Dataset(url, "ds", **cloud.storage_options()).commit(
            "m", add_files=[write(workdir, "a.txt", "a")])
    with pytest.raises(BucketNotFoundError):
        Catalog(url, **cloud.storage_options()).datasets()


def test_refused_azure_key(request: pytest.FixtureRequest, workdir: Path) -> None:
    """Azurite refusing a wrong account key gives StorageAccessDeniedError (a PermissionError)
    that says what to check and never shows the key."""
    server = request.getfixturevalue("azurite_server")
    options = {"connection_string": azure_connection_string(server.endpoint, key=FAKE_KEY)}
    with make_cloud("azure", server.endpoint).bucket() as bucket:
        url = f"az://{bucket}/models"
        ds = Dataset(url, "ds", **options)
        with pytest.raises(StorageAccessDeniedError) as info:
            ds.commit("m", add_files=[write(workdir, "a.txt", "a")])
    assert isinstance(info.value, PermissionError)
    assert "credentials" in str(info.value) and url in str(info.value)
    assert FAKE_KEY not in full_text(info.value)
    assert FAKE_KEY[:20] not in full_text(info.value)
    assert FAKE_KEY not in repr(ds._store)


def test_refused_s3_key(workdir: Path) -> None:
    """moto checking signatures refuses an unknown access key: StorageAccessDeniedError,
    and neither key nor secret appears anywhere in the error."""
    server = start_moto(env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
    try:
        secret = "s3-secret-that-must-not-leak-42"
        ds = Dataset("s3://any-bucket/models", "ds", endpoint_url=server.endpoint,
                     key="AKIAUNKNOWNKEY000001", secret=secret)
        with pytest.raises(StorageAccessDeniedError) as info:
            ds.commit("m", add_files=[write(workdir, "a.txt", "a")])
        text = full_text(info.value)
        assert "s3://any-bucket/models" in str(info.value)
        assert secret not in text
        assert secret not in repr(ds._store)  # Dataset.__repr__ reads storage: see report
    finally:
        server.stop()


@pytest.mark.parametrize("kind", CLOUD_BACKENDS)
def test_forbidden_answer_is_access_denied(request: pytest.FixtureRequest, kind: str,
                                           workdir: Path) -> None:
    """A 403 from the service (here from a proxy) is reported as refused access, not retried."""
    with fault_proxy(request, kind) as (proxy, server):
        cloud = make_cloud(kind, server.endpoint)
        with cloud.bucket() as bucket:
            asked: Counter[str] = Counter()  # hits by request target

            def refused(r: Request) -> bool:
                asked[r.target] += 1
                return True

            proxy.add(Fault(refused, 403, body=S3_ACCESS_DENIED if kind == "s3" else b""))
            ds = Dataset(cloud.url(bucket, "m"), "ds", **cloud.at(proxy.endpoint).
                         storage_options())
            with pytest.raises(StorageAccessDeniedError):
                ds.commit("m", add_files=[write(workdir, "a.txt", "a")])
            # refused access is not retried (a commit's first look reads its three logs at
            # once, so several objects may be asked for, each once)
            assert asked and max(asked.values()) <= 2, asked


def test_secrets_are_scrubbed_from_messages_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Connection strings, SAS signatures and known option values never reach a message."""
    conn = azure_connection_string("http://127.0.0.1:1", key=AZURITE_KEY)
    secrets = secret_values({"connection_string": conn, "secret": "hunter2-hunter2",
                             "endpoint_url": "http://127.0.0.1:1"})
    assert AZURITE_KEY in secrets and "http://127.0.0.1:1" not in secrets
    text = (f"failed {conn} with secret hunter2-hunter2 at "
            "https://acct.blob.core.windows.net/c/b?se=2030&sig=abc%2Fdef&sp=r "
            "and https://bucket.s3.amazonaws.com/k?X-Amz-Signature=deadbeef&X-Amz-Credential=AK")
    clean = redact(text, secrets)
    for leaked in (AZURITE_KEY, "hunter2-hunter2", "abc%2Fdef", "deadbeef", "=AK"):
        assert leaked not in clean
    assert "https://acct.blob.core.windows.net/c/b" in clean
    with caplog.at_level(logging.DEBUG, logger="kirin"):
        error = translate(OSError(text), url="az://c/p", what="read", secrets=secrets)
    assert isinstance(error, StorageError)
    assert all(s not in str(error) for s in ("hunter2-hunter2", AZURITE_KEY))
    assert "hunter2" not in caplog.text


@pytest.mark.parametrize("reader", ["open_blob", "iter_object"])
def test_a_failure_mid_read_shows_no_secret_in_its_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: str) -> None:
    """A read that fails half-way with a library error quoting a secret becomes a
    StorageError whose message, cause and printed traceback never show the secret."""
    store = Store(f"memory://kirin-midread-{uuid.uuid4().hex}/r", secret="hunter2-hunter2")
    source = tmp_path / "m.bin"
    source.write_bytes(b"x" * (3 << 20))
    staged = store.stage(str(source))
    store.publish(staged)

    class Failing(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            raise OSError("connection dropped; request had secret=hunter2-hunter2")

        def read(self, size: int = -1) -> bytes:
            raise OSError("connection dropped; request had secret=hunter2-hunter2")

    monkeypatch.setattr(store, "_open_read", lambda path: Failing())
    with pytest.raises(StorageError) as info:
        if reader == "open_blob":
            with store.open_blob(staged.digest, staged.size, name="m.bin", commit=None) as f:
                f.read()
        else:
            list(store.iter_object(store.blob_path(staged.digest)))
    shown = "".join(traceback.format_exception(info.value))
    assert "hunter2" not in shown and "hunter2" not in repr(vars(info.value))


def test_store_repr_hides_storage_options() -> None:
    """repr of Store, Dataset and Catalog shows the URL only, never credentials or a URL's
    password."""
    store = Store("memory://kirin-repr/r", secret_option="hunter2-hunter2")
    assert "hunter2" not in repr(store)
    assert redact_url("memory://user:pa55word@host/r?token=x") == "memory://***@host/r"
    with pytest.raises(InvalidInputError) as info:  # the password would be part of every path
        Store("memory://user:pa55word@host/r", fs=store.fs)
    assert "memory://***@host/r" in str(info.value) and "pa55word" not in str(info.value)


@pytest.mark.parametrize(("error", "transient"), [
    (ConnectionResetError(104, "reset"), True),
    (ConnectionRefusedError(111, "refused"), True),
    (TimeoutError("timed out"), True),
    (OSError(5, "An error occurred (SlowDown): Please reduce your request rate."), True),
    (FileNotFoundError("x"), False),
    (FileExistsError("x"), False),
    (PermissionError("x"), False),
    (ValueError("bad"), False),
])
def test_transient_errors_are_told_apart(error: BaseException, transient: bool) -> None:
    """Connection failures and throttling are retried; answers about objects are not."""
    assert is_transient(error) is transient


def test_library_errors_are_classified() -> None:
    """The real exception types of botocore, azure-core and gcsfs land in the right class."""
    from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
    from botocore.exceptions import ClientError, EndpointConnectionError
    from gcsfs.retry import HttpError

    def client_error(code: str, status: int) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": code},
                            "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")

    assert is_transient(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    assert is_transient(client_error("SlowDown", 503))
    assert is_transient(client_error("InternalError", 500))
    assert not is_transient(client_error("AccessDenied", 403))
    assert is_access_denied(client_error("InvalidAccessKeyId", 403))
    assert is_transient(ServiceRequestError("cannot connect"))
    assert is_access_denied(ClientAuthenticationError("Server failed to authenticate"))
    assert is_transient(HttpError({"code": 503, "message": "backend error"}))
    assert is_transient(HttpError({"code": 429, "message": "rate"}))
    assert is_access_denied(HttpError({"code": 403, "message": "forbidden"}))
    assert not is_transient(HttpError({"code": 400, "message": "bad"}))
