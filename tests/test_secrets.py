"""Credentials never appear in errors, logs, ``repr()`` or anything Kirin stores.

A registry is opened with fake credentials in its storage options (every
option name the cloud backends use), then driven through the paths that
produce text: reprs and info, errors for missing sources, unknown commits and
files, corrupt blobs, records and checkpoints, with DEBUG logging captured.
Every produced text and every stored byte is searched for the secrets. A root
URL whose ``user:password@`` the filesystem would keep in object paths is
refused without showing the password.
"""

from __future__ import annotations

import contextlib
import json
import logging
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from kirin import Catalog, Dataset
from kirin.errors import CorruptObjectError, InvalidInputError, KirinError

from conftest import write

STORAGE_SECRETS = {
    "key": "AKIAFAKEKEY7Q3XJ2",
    "secret": "fake-secret-9f8e7d6c5b",
    "token": "fake-token-a1b2c3d4e5",
    "account_key": "fake-account-key-Zm9vYmFy==",
    "connection_string": ("DefaultEndpointsProtocol=https;AccountName=acct;"
                          "AccountKey=fake-conn-key-cXV4Cg==;EndpointSuffix=core.windows.net"),
    "password": "fake-password-h4xx0r",
}
URL_PASSWORD = "url-pa55word-7788"
URL_TOKEN = "url-t0ken-5566"
OPTION_NEEDLES = [*STORAGE_SECRETS.values(), "fake-conn-key-cXV4Cg=="]
#: Every string that must never be shown: whole option values and the key inside the
#: connection string, and the password and token of URLs.
NEEDLES = [*OPTION_NEEDLES, URL_PASSWORD, URL_TOKEN]


def leaks(text: str, needles: list[str] = NEEDLES) -> list[str]:
    """The secrets (of ``needles``) that occur in ``text``."""
    return [needle for needle in needles if needle in text]


@dataclass
class Exposure:
    """Everything a registry showed while being driven: texts by where they came from."""

    texts: dict[str, str] = field(default_factory=dict)

    def add(self, where: str, value: Any) -> None:
        self.texts[where] = value if isinstance(value, str) else repr(value)

    def error(self, where: str, call: Callable[[], Any]) -> BaseException:
        """Run ``call``, which must raise a Kirin error; record its text, attributes and
        the whole printed traceback (chained causes included)."""
        with pytest.raises(KirinError) as info:
            call()
        exc = info.value
        self.add(f"{where}: str", str(exc))
        self.add(f"{where}: repr", repr(exc))
        self.add(f"{where}: attributes", {k: v for k, v in vars(exc).items()})
        self.add(f"{where}: traceback", "".join(traceback.format_exception(exc)))
        return exc

    def leaked(self) -> dict[str, list[str]]:
        return {where: found for where, text in self.texts.items() if (found := leaks(text))}


@dataclass
class Registry:
    """A registry root as a user would name it, and a way to read and damage its objects."""

    url: str
    options: dict[str, Any]
    fs: Any
    path: str  # the root as the filesystem names it

    def objects(self) -> dict[str, bytes]:
        if not self.fs.exists(self.path):
            return {}
        return {p: bytes(self.fs.cat_file(p)) for p in self.fs.find(self.path)}

    def find(self, part: str) -> str:
        return str(next(p for p in sorted(self.fs.find(self.path)) if part in p))


@pytest.fixture
def memory_prefix() -> Iterator[str]:
    prefix = f"kirin-secrets-{uuid.uuid4().hex}"
    yield prefix
    with contextlib.suppress(FileNotFoundError):
        MemoryFileSystem().rm(f"/{prefix}", recursive=True)
    with contextlib.suppress(FileNotFoundError):
        MemoryFileSystem().rm(f"/user:{URL_PASSWORD}@{prefix}", recursive=True)


def local_registry(tmp_path: Path) -> Registry:
    from fsspec.implementations.local import LocalFileSystem

    root = tmp_path / "reg"
    return Registry(str(root), dict(STORAGE_SECRETS), LocalFileSystem(), str(root))


def memory_registry(prefix: str, *, in_url: bool) -> Registry:
    """``memory://`` with the secrets as storage options, or as ``user:password@`` too."""
    userinfo = f"user:{URL_PASSWORD}@" if in_url else ""
    return Registry(f"memory://{userinfo}{prefix}/reg", dict(STORAGE_SECRETS),
                    MemoryFileSystem(), f"/{userinfo}{prefix}/reg")


def drive(reg: Registry, workdir: Path, tmp_path: Path) -> Exposure:
    """Use the registry every way that produces text, damaging it along the way."""
    seen = Exposure()
    ds = Dataset(reg.url, "ds", **reg.options)
    catalog = Catalog(reg.url, **reg.options)
    for i in range(3):
        ds.commit(f"commit {i}", add_files={"model.pt": write(workdir, f"m{i}", f"w{i}")},
                  metadata={"i": i}, tags=[f"v{i}"])
    seen.add("repr(Dataset)", repr(ds))
    seen.add("str(Dataset)", str(ds))
    seen.add("repr(Catalog)", repr(catalog))
    seen.add("Dataset.get_info()", ds.get_info())
    seen.add("repr(Commit)", repr(ds.current_commit))
    seen.add("Catalog.datasets()", catalog.datasets())
    seen.error("missing local source", lambda: ds.commit("x", add_files=[
        workdir / "does-not-exist.bin"]))
    seen.error("missing source URL with a password", lambda: ds.commit("x", add_files=[
        f"memory://bob:{URL_PASSWORD}@nowhere-{uuid.uuid4().hex}/missing.bin"]))
    seen.error("missing source URL with a token", lambda: ds.commit("x", add_files=[
        f"memory://nowhere-{uuid.uuid4().hex}/m.bin?token={URL_TOKEN}"]))
    seen.error("unknown commit", lambda: ds.checkout("abcdef12"))
    seen.error("unknown file", lambda: ds.read_file("nope.txt"))
    seen.error("folder as source", lambda: ds.commit("x", add_files=[tmp_path]))
    blob = reg.find("/data/")
    reg.fs.pipe_file(blob, b"tampered")
    seen.error("corrupt blob", lambda: Dataset(reg.url, "ds", **reg.options).read_file(
        "model.pt"))
    seen.add("verify report", Dataset(reg.url, "ds", **reg.options).verify().to_dict())
    log0 = reg.find("/log/00000000000000000000.json")
    original = bytes(reg.fs.cat_file(log0))
    reg.fs.pipe_file(log0, original[:20])
    seen.error("corrupt record", lambda: Dataset(reg.url, "ds", **reg.options).history())
    reg.fs.pipe_file(log0, original)
    return seen


BACKENDS = ["local", "memory"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_storage_option_secrets_never_leak(backend: str, tmp_path: Path, workdir: Path,
                                           memory_prefix: str,
                                           caplog: pytest.LogCaptureFixture) -> None:
    """Credentials given as storage options appear in no repr, info, error, traceback,
    log record (any logger, DEBUG) or stored object; credentials inside source URLs appear
    in no Kirin error or Kirin log record."""
    caplog.set_level(logging.DEBUG)
    reg = local_registry(tmp_path) if backend == "local" else memory_registry(
        memory_prefix, in_url=False)
    seen = drive(reg, workdir, tmp_path)
    assert seen.leaked() == {}
    messages = [(r.name, r.getMessage()) for r in caplog.records]
    assert [m for _, m in messages if leaks(m, OPTION_NEEDLES)] == []
    assert [m for name, m in messages if name.startswith("kirin") and leaks(m)] == []
    stored = {path: leaks(data.decode("utf-8", "replace"))
              for path, data in reg.objects().items()}
    assert {path: found for path, found in stored.items() if found} == {}
    assert len(seen.texts) > 20  # the drive really produced the texts it is checked on


def test_commit_records_hold_no_environment_secrets(tmp_path: Path, workdir: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials in the environment (AWS, Azure, GCS variables) never reach a stored record;
    the record's fields are exactly the documented ones."""
    for name, value in [("AWS_SECRET_ACCESS_KEY", STORAGE_SECRETS["secret"]),
                        ("AWS_SESSION_TOKEN", STORAGE_SECRETS["token"]),
                        ("AZURE_STORAGE_CONNECTION_STRING",
                         STORAGE_SECRETS["connection_string"]),
                        ("GOOGLE_APPLICATION_CREDENTIALS", STORAGE_SECRETS["password"])]:
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("KIRIN_AUTHOR")
    root = tmp_path / "reg"
    ds = Dataset(root, "ds", **STORAGE_SECRETS)
    ds.commit("c", add_files=[write(workdir, "m.pt", b"m")], metadata={"a": 1})
    record = json.loads((root / "datasets" / "ds" / "log" / f"{0:020d}.json").read_bytes())
    assert set(record) == {"kirin", "seq", "hash", "parent", "tree", "changes", "message",
                           "metadata", "tags", "timestamp", "author", "policy"}
    for path in root.rglob("*"):
        if path.is_file():
            assert leaks(path.read_bytes().decode("utf-8", "replace")) == [], path


@pytest.mark.parametrize("opener", ["Dataset", "Catalog", "create_dataset"])
def test_root_url_with_a_password_in_its_path_is_refused(memory_prefix: str,
                                                         opener: str) -> None:
    """memory:// (like s3fs and gcsfs) keeps ``user:password@`` of a root URL as part of the
    path, so the password would be written into every object key and printed in every
    message naming one: such a root is refused, with an error that names the URL without
    the password and says what to do, and nothing is written."""
    reg = memory_registry(memory_prefix, in_url=True)
    openers: dict[str, Callable[[], object]] = {
        "Dataset": lambda: Dataset(reg.url, "ds"),
        "Catalog": lambda: Catalog(reg.url),
        "create_dataset": lambda: Catalog(reg.url).create_dataset("ds"),
    }
    with pytest.raises(InvalidInputError) as info:
        openers[opener]()
    text = str(info.value)
    assert "memory://***@" in text and "storage options" in text
    assert leaks(text) == [] and leaks(repr(vars(info.value))) == []
    assert leaks("".join(traceback.format_exception(info.value))) == []
    assert not reg.fs.exists(reg.path)


def test_a_password_the_filesystem_does_not_keep_in_paths_is_allowed() -> None:
    """Only a password that would end up in object paths is refused: a root whose
    ``user:password@`` the filesystem takes as credentials (ftp, sftp) is accepted."""
    from kirin.backends import url_password

    assert url_password(f"ftp://user:{URL_PASSWORD}@host/reg") == URL_PASSWORD
    assert url_password(f"simplecache::s3://k:{URL_PASSWORD}@bucket/reg") == URL_PASSWORD
    assert url_password("s3://bucket/reg") is None
    assert url_password("memory://user@bucket/reg") is None
    assert url_password("/local/path:with@odd/chars") is None


def test_redacted_source_error_keeps_the_useful_part(workdir: Path) -> None:
    """The missing-source error still names the host and file, with the password masked."""
    ds = Dataset(f"memory://kirin-secrets-{uuid.uuid4().hex}/reg", "ds")
    url = f"memory://bob:{URL_PASSWORD}@host-{uuid.uuid4().hex}/data/missing.bin"
    with pytest.raises(KirinError) as info:
        ds.commit("x", add_files=[url])
    assert "://***@host-" in str(info.value) and "/data/missing.bin" in str(info.value)
    assert leaks(str(info.value)) == [] and leaks(repr(vars(info.value))) == []
    assert isinstance(info.value, FileNotFoundError)
    assert not isinstance(info.value, CorruptObjectError)


#: The original Kirin's credential arguments, each holding a secret (the profile and
#: project names and the account name are not secrets, and are shown as such).
CREDENTIAL_SECRETS = {
    "gcs_token": "fake-gcs-token-0a9b8c7d",
    "azure_account_key": "ZmFrZS1henVyZS1hY2NvdW50LWtleQ==",
    "azure_connection_string": ("DefaultEndpointsProtocol=https;AccountName=acct;"
                                "AccountKey=ZmFrZS1jb25uLWtleS1hcmc=;"
                                "EndpointSuffix=core.windows.net"),
}
CREDENTIAL_NEEDLES = [*CREDENTIAL_SECRETS.values(), "ZmFrZS1jb25uLWtleS1hcmc="]


def test_credential_arguments_never_leak_on_a_root_they_are_not_for(
        tmp_path: Path, workdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """On a local root the original's credential arguments are ignored: they appear in no
    repr, info, error, log record or stored object."""
    caplog.set_level(logging.DEBUG)
    root = tmp_path / "reg"
    ds = Dataset(root, "ds", aws_profile="prof", gcs_project="proj",
                 azure_account_name="acct", **CREDENTIAL_SECRETS)
    ds.commit("c", add_files=[write(workdir, "m.pt", b"m")])
    catalog = Catalog(root, **CREDENTIAL_SECRETS)
    seen = Exposure()
    seen.add("repr", repr(ds) + repr(catalog) + str(ds))
    seen.add("info", ds.get_info())
    seen.add("vars", {**vars(ds), **vars(catalog)})
    seen.error("unknown commit", lambda: ds.checkout("abcdef12"))
    seen.error("unknown file", lambda: ds.read_file("nope.txt"))
    seen.error("delete unknown", lambda: catalog.delete_dataset("nope"))
    assert {w: f for w, t in seen.texts.items() if (f := leaks(t, CREDENTIAL_NEEDLES))} == {}
    assert [r.getMessage() for r in caplog.records
            if leaks(r.getMessage(), CREDENTIAL_NEEDLES)] == []
    for path in root.rglob("*"):
        if path.is_file():
            assert leaks(path.read_bytes().decode("utf-8", "replace"), CREDENTIAL_NEEDLES) == []


def test_a_refused_azure_credential_argument_is_not_shown(
        request: pytest.FixtureRequest, workdir: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """A wrong key given as ``azure_connection_string`` (mapped to adlfs's option) is
    refused by the server; the key is in no error, traceback or log record."""
    from servers import azure_connection_string, cloud_for

    caplog.set_level(logging.DEBUG)
    cloud = cloud_for(request, "azure")
    bucket = f"kirin-{uuid.uuid4().hex[:20]}"
    cloud.create_bucket(bucket)
    key = "d3JvbmctYXp1cml0ZS1rZXktZm9yLWtpcmlu"
    url = f"az://{bucket}/reg"
    good = Dataset(url, "ds", azure_connection_string=azure_connection_string(cloud.endpoint))
    good.commit("c", add_files=[write(workdir, "m.pt", b"m")])
    bad = Dataset(url, "ds", azure_connection_string=azure_connection_string(
        cloud.endpoint, key=key))
    seen = Exposure()
    seen.add("repr", repr(bad) + str(vars(bad)))
    seen.error("refused read", lambda: bad.read_file("m.pt"))
    seen.error("refused commit", lambda: bad.commit("x", add_files=[
        write(workdir, "n.pt", b"n")]))
    assert {w: f for w, t in seen.texts.items() if (f := leaks(t, [key]))} == {}
    assert [r.getMessage() for r in caplog.records if key in r.getMessage()] == []
