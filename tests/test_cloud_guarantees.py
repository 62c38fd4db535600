"""Which backend guarantees create-if-absent, and what Kirin does where none is given.

No lost commits rests on one primitive: creating ``log/<N>.json`` only if it
is absent, atomically. What each backend offers (``kirin.backends.CREATE_IF_ABSENT``):

========  =============================================================
local     temporary file, then ``os.link`` (fails with EEXIST)
memory    a lock held by Kirin; ``memory://`` lives in one process
s3        conditional PUT ``If-None-Match: *`` (probed once per bucket)
gcs       upload with ``ifGenerationMatch=0`` (probed once per bucket)
azure     conditional PUT ``If-None-Match: *`` (probed once per container)
========  =============================================================

**Cannot guarantee it:** any other fsspec filesystem (SFTP, FTP, WebDAV,
HDFS, ``dir::`` wrappers, custom ones): fsspec's fallback is an exists-check
followed by a write, so two writers can both "create" the same entry. Kirin
warns once (``UnsafeConcurrencyWarning``) and works for a single writer. And
an S3-compatible server that ignores ``If-None-Match`` would let a second
writer silently replace a commit: Kirin detects that with a probe and refuses
to write (``UnsafeStorageError``) unless ``KIRIN_ALLOW_UNSAFE_STORAGE=1``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.memory import MemoryFileSystem

import kirin.backends
from kirin import Dataset
from kirin.backends import CREATE_IF_ABSENT, create_guarantee
from kirin.errors import UnsafeConcurrencyWarning, UnsafeStorageError
from kirin.store import ALLOW_UNSAFE_ENV, Store

from conftest import write
from registry_checks import assert_consistent
from roots import BACKENDS, RegistryRoot
from servers import Cloud, Fault, fault_proxy, make_cloud


def test_every_backend_under_test_has_a_stated_guarantee(registry_root: RegistryRoot) -> None:
    """Each backend the suites run on names how it creates an object only if absent."""
    assert set(BACKENDS) <= set(CREATE_IF_ABSENT)
    assert create_guarantee(registry_root.dataset().fs) == CREATE_IF_ABSENT[
        registry_root.backend]


def test_racing_creates_have_one_winner(registry_root: RegistryRoot) -> None:
    """8 threads creating one object at once: exactly one wins, its bytes are stored."""
    stores = [Store(registry_root.url, **registry_root.storage_options) for _ in range(8)]
    path = stores[0].path("race", "obj.json")
    barrier = threading.Barrier(len(stores))
    results: list[tuple[int, bool]] = []

    def create(i: int) -> None:
        barrier.wait()
        results.append((i, stores[i].create(path, f"writer {i}".encode())))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [i for i, won in results if won]
    assert len(winners) == 1
    assert registry_root.cat(registry_root.join("race", "obj.json")) == \
        f"writer {winners[0]}".encode()


def test_threads_on_memory_lose_no_commit(src_dir: Path) -> None:
    """memory:// is safe for threads of one process: 4 threads x 10 commits all land."""
    url = f"memory://kirin-threads-{uuid.uuid4().hex}/reg"
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            ds = Dataset(url, "shared")
            for step in range(10):
                ds.commit(f"w{w} {step}", add_files={f"w{w}.txt": write(
                    src_dir, f"w{w}-{step}.txt", f"{w}:{step}")},
                    metadata={"worker": w, "step": step})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        commits = assert_consistent(Dataset(url, "shared"))
        assert len(commits) == 40
    finally:
        fsspec.filesystem("memory").rm(url[len("memory://"):].split("/")[0], recursive=True)


@pytest.fixture
def src_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    return folder


def test_unknown_filesystem_warns_once(tmp_path: Path, src_dir: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A filesystem without a known atomic create (a dir:: wrapper here) commits, with one
    UnsafeConcurrencyWarning saying concurrent writers may lose commits."""
    monkeypatch.setattr(kirin.backends, "_warned", set())
    inner = MemoryFileSystem()
    prefix = f"/kirin-dirfs-{uuid.uuid4().hex}"
    inner.mkdir(prefix)
    fs = DirFileSystem(path=prefix, fs=inner)
    assert create_guarantee(fs) is None
    try:
        with pytest.warns(UnsafeConcurrencyWarning, match="One writer at a time"):
            Dataset("reg", "ds", fs=fs).commit("m", add_files=[write(src_dir, "a", "a")])
        Dataset("reg", "ds", fs=fs).commit("again", add_files=[write(src_dir, "b", "b")])
        assert len(Dataset("reg", "ds", fs=fs).history()) == 2
    finally:
        inner.rm(prefix, recursive=True)


Ignoring = tuple[Cloud, Cloud, str]


@pytest.fixture
def ignoring_server(request: pytest.FixtureRequest) -> Iterator[Ignoring]:
    """An S3 server behind a proxy that drops If-None-Match: a server ignoring the condition."""
    with fault_proxy(request, "s3") as (proxy, server):
        proxy.add(Fault(lambda r: True, "strip", strip=("if-none-match",)))
        cloud = make_cloud("s3", server.endpoint)
        with cloud.bucket() as bucket:
            yield cloud, cloud.at(proxy.endpoint), bucket


def test_server_ignoring_the_condition_is_refused(ignoring_server: Ignoring,
                                                  src_dir: Path) -> None:
    """Where a second conditional create succeeds, Kirin refuses to commit and writes
    nothing but its removed probe."""
    direct, proxied, bucket = ignoring_server
    ds = Dataset(direct.url(bucket, "reg"), "ds", **proxied.storage_options())
    with pytest.raises(UnsafeStorageError, match="does not honour create-if-absent"):
        ds.commit("m", add_files=[write(src_dir, "a.txt", "a")])
    fs = direct.filesystem()
    fs.invalidate_cache()
    assert not [p for p in fs.find(bucket) if "/log/" in p]


def test_server_ignoring_the_condition_with_the_override(
        ignoring_server: Ignoring, src_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """KIRIN_ALLOW_UNSAFE_STORAGE=1 turns the refusal into a warning, for a lone writer."""
    direct, proxied, bucket = ignoring_server
    monkeypatch.setenv(ALLOW_UNSAFE_ENV, "1")
    ds = Dataset(direct.url(bucket, "reg2"), "ds", **proxied.storage_options())
    with pytest.warns(UnsafeConcurrencyWarning, match="does not honour"):
        ds.commit("m", add_files=[write(src_dir, "a.txt", "a")])
    assert len(ds.history()) == 1
