"""The storage layer, written once as a contract and run on every backend.

As in fsspec's own test suite, :class:`StoreContract` holds the tests and
each backend is a one-line subclass naming its entry in ``roots.BACKENDS``.
"""

from __future__ import annotations

import errno
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

import kirin.backends
from kirin.errors import (
    CorruptObjectError,
    SourceNotFoundError,
    StorageError,
    StorageUnavailableError,
)
from kirin.store import Store

from conftest import write
from roots import RegistryRoot, open_backend


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class StoreContract:
    """What every backend's Store must do; subclasses set ``backend``."""

    backend: ClassVar[str]

    @pytest.fixture
    def root(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RegistryRoot]:
        with open_backend(self.backend, request, tmp_path) as root:
            yield root

    @pytest.fixture
    def store(self, root: RegistryRoot) -> Store:
        return Store(root.url, **root.storage_options)

    @pytest.fixture
    def blob(self, store: Store, workdir: Path) -> Callable[[bytes], str]:
        """Stores ``content`` as a blob and returns its digest."""
        def make(content: bytes) -> str:
            staged = store.stage(str(write(workdir, f"src-{sha(content)[:8]}", content)))
            store.publish(staged)
            return staged.digest
        return make

    # -- paths ---------------------------------------------------------------
    def test_root_and_paths(self, store: Store, root: RegistryRoot) -> None:
        """The store's root is the backend path; blobs live at data/<2 hex>/<62 hex>."""
        assert store.root == root.path
        digest = sha(b"x")
        assert store.blob_path(digest) == root.blob_path(digest)
        assert store.path("a", "b") == root.join("a", "b")

    @pytest.mark.storage_free
    def test_repr_shows_url_only(self, root: RegistryRoot) -> None:
        """repr shows the URL and never the storage options (they may hold secrets)."""
        store = Store(root.url, fs=root.fs)
        assert repr(store) == f"Store({root.url!r})"

    def test_explicit_filesystem(self, root: RegistryRoot) -> None:
        """Given an fs object, the store uses it and strips any protocol from the root."""
        store = Store(root.url, fs=root.fs)
        assert store.fs is root.fs
        assert store.root == root.path

    # -- write-once objects -------------------------------------------------
    def test_read_missing_is_none(self, store: Store) -> None:
        """Reading an object that does not exist returns None."""
        assert store.read(store.path("nope.json")) is None

    def test_create_then_read(self, store: Store) -> None:
        """create() writes a new object (making folders) and read() returns its bytes."""
        path = store.path("deep", "er", "obj.json")
        assert store.create(path, b"one") is True
        assert store.read(path) == b"one"
        assert store.exists(path)

    def test_create_never_overwrites(self, store: Store) -> None:
        """A second create() at the same path returns False and leaves the first bytes."""
        path = store.path("obj.json")
        assert store.create(path, b"first")
        assert store.create(path, b"second") is False
        assert store.read(path) == b"first"

    def test_create_leaves_no_temporary_files(self, store: Store, root: RegistryRoot) -> None:
        """After create(), won or lost, the folder holds only the object."""
        path = store.path("f", "obj.json")
        store.create(path, b"a")
        store.create(path, b"b")
        assert set(root.objects()) == {"f/obj.json"}

    def test_read_of_a_folder_is_never_data(self, store: Store) -> None:
        """Reading a folder raises CorruptObjectError, or is None where folders are implied."""
        store.create(store.path("dir", "inner.json"), b"x")
        if store.is_local:
            with pytest.raises(CorruptObjectError, match="folder"):
                store.read(store.path("dir"))
        else:  # object stores have no folders: there is no object at that key
            assert store.read(store.path("dir")) is None

    def test_read_many(self, store: Store) -> None:
        """read_many returns every requested path, None for the missing ones."""
        a, b, c = store.path("a"), store.path("b"), store.path("c")
        store.create(a, b"A")
        store.create(c, b"C")
        assert store.read_many([a, b, c]) == {a: b"A", b: None, c: b"C"}
        assert store.read_many([]) == {}

    def test_listdir(self, store: Store) -> None:
        """listdir gives sorted base names under a folder, [] when it does not exist."""
        assert store.listdir(store.path("log")) == []
        for name in ("b.json", "a.json", "c.json"):
            store.create(store.path("log", name), b"{}")
        store.create(store.path("log", "sub", "x"), b"")
        assert store.listdir(store.path("log")) == ["a.json", "b.json", "c.json", "sub"]

    def test_names_after(self, store: Store) -> None:
        """names_after gives the base names sorting after a name, [] for a missing folder."""
        log = store.path("log")
        assert store.names_after(log, "a") == []
        for name in ("b.json", "a.json", "c.json"):
            store.create(store.path("log", name), b"{}")
        store.create(store.path("log", "sub", "x"), b"")
        store.create(store.path("logs", "z.json"), b"")
        assert store.names_after(log, "a.json") == ["b.json", "c.json", "sub"]
        assert store.names_after(log, "") == ["a.json", "b.json", "c.json", "sub"]
        assert store.names_after(log, "c.json") == ["sub"]
        assert store.names_after(log, "sub") == []

    # -- blobs ---------------------------------------------------------------
    def test_stage_hashes_without_publishing(self, store: Store, workdir: Path,
                                             root: RegistryRoot) -> None:
        """stage() computes hash and size but makes no blob visible."""
        content = b"model weights" * 1000
        staged = store.stage(str(write(workdir, "m.bin", content)))
        try:
            assert (staged.digest, staged.size) == (sha(content), len(content))
            assert not store.has_blob(staged.digest)
            assert not any(k.startswith("data/") for k in root.objects())
        finally:
            store.discard(staged)

    def test_publish_stores_at_content_address(self, store: Store, workdir: Path,
                                               root: RegistryRoot) -> None:
        """publish() makes the blob readable at data/<sha[:2]>/<sha[2:]> with its bytes."""
        content = b"\x00\x01binary\xff" * 10
        staged = store.stage(str(write(workdir, "m.bin", content)))
        store.publish(staged)
        assert store.has_blob(staged.digest)
        assert root.cat(root.blob_path(sha(content))) == content
        assert list(store.iter_blobs()) == [sha(content)]

    def test_stage_and_discard_leave_nothing(self, store: Store, workdir: Path,
                                             root: RegistryRoot) -> None:
        """A staged blob that is discarded leaves no object behind."""
        staged = store.stage(str(write(workdir, "m.bin", b"abc")))
        store.discard(staged)
        assert root.objects() == {}

    def test_empty_file_is_a_blob(self, store: Store, blob: Callable[[bytes], str]) -> None:
        """An empty file is stored and read back as zero bytes."""
        digest = blob(b"")
        assert digest == sha(b"")
        with store.open_blob(digest, 0, name="empty", commit=None) as stream:
            assert stream.read() == b""

    def test_existing_blob_is_not_uploaded_again(self, store: Store, workdir: Path,
                                                 root: RegistryRoot) -> None:
        """publish() of content already present writes nothing (here: keeps a sentinel)."""
        content = b"same"
        path = root.blob_path(sha(content))
        root.pipe(path, b"sentinel: already here")
        store.publish(store.stage(str(write(workdir, "x", content))))
        assert root.cat(path) == b"sentinel: already here"

    def test_stage_from_fsspec_url(self, store: Store,
                                   memory_source: Callable[[str, bytes], str]) -> None:
        """A source given as an fsspec URL is staged and published like a local file."""
        url = memory_source("remote.bin", b"remote bytes")
        store.publish(store.stage(url))
        with store.open_blob(sha(b"remote bytes"), 12, name="remote.bin", commit=None) as s:
            assert s.read() == b"remote bytes"

    @pytest.mark.parametrize("kind", ["local", "url"])
    def test_stage_missing_source(self, store: Store, workdir: Path, kind: str) -> None:
        """A missing source raises SourceNotFoundError (a FileNotFoundError) naming it."""
        source = str(workdir / "missing.bin") if kind == "local" else "memory://no/such.bin"
        with pytest.raises(SourceNotFoundError, match=r"missing\.bin|such\.bin") as info:
            store.stage(source)
        assert isinstance(info.value, FileNotFoundError)
        assert info.value.source == source

    def test_stage_folder_source(self, store: Store, workdir: Path) -> None:
        """A folder given as a source raises an error saying it is a folder."""
        (workdir / "folder").mkdir()
        with pytest.raises(SourceNotFoundError, match="is a folder"):
            store.stage(str(workdir / "folder"))

    @pytest.mark.parametrize("later", [b"version two, longer", b"version 2!!", b"v2", b""],
                             ids=["longer", "same-size", "shorter", "emptied"])
    def test_source_changed_between_stage_and_publish(
            self, store: Store, root: RegistryRoot,
            memory_source: Callable[[str, bytes], str], later: bytes) -> None:
        """A source that changes after staging is never stored under the old hash."""
        url = memory_source("moving.bin", b"version one")
        staged = store.stage(url)
        memory_source("moving.bin", later)
        if store.is_local:
            store.publish(staged)  # the staged copy is what gets published
            assert root.cat(root.blob_path(staged.digest)) == b"version one"
        else:
            with pytest.raises(StorageError, match="changed"):
                store.publish(staged)
            assert not root.exists(root.blob_path(staged.digest))

    # -- verified reads ------------------------------------------------------
    def test_open_blob_reads_verified_bytes(self, store: Store,
                                            blob: Callable[[bytes], str]) -> None:
        """open_blob streams the exact bytes, in chunks or all at once."""
        content = bytes(range(256)) * 50
        digest = blob(content)
        with store.open_blob(digest, len(content), name="f", commit="c" * 64) as stream:
            first = stream.read(100)
            rest = stream.read()
        assert first + rest == content

    @pytest.mark.parametrize(
        "damage",
        [
            pytest.param(lambda b: bytes([b[0] ^ 1]) + b[1:], id="flipped-byte"),
            pytest.param(lambda b: b[:-1], id="truncated"),
            pytest.param(lambda b: b + b"!", id="appended"),
            pytest.param(lambda b: b"", id="emptied"),
        ],
    )
    def test_open_blob_detects_corruption(self, store: Store, root: RegistryRoot,
                                          blob: Callable[[bytes], str],
                                          damage: Callable[[bytes], bytes]) -> None:
        """Damaged blob bytes raise CorruptObjectError naming file, commit and path."""
        content = b"the real content" * 100
        digest = blob(content)
        root.pipe(root.blob_path(digest), damage(content))
        commit = "c" * 64
        with pytest.raises(CorruptObjectError) as info, \
                store.open_blob(digest, len(content), name="m.bin", commit=commit) as s:
            s.read()
        err = info.value
        assert (err.file, err.commit, err.path) == ("m.bin", commit, store.blob_path(digest))
        assert "'m.bin'" in str(err)
        assert commit[:12] in str(err)

    def test_open_missing_blob(self, store: Store) -> None:
        """A blob missing from storage raises CorruptObjectError naming the file."""
        digest = sha(b"never stored")
        with pytest.raises(CorruptObjectError, match="missing") as info:
            store.open_blob(digest, 1, name="gone.bin", commit=None)
        assert info.value.file == "gone.bin"

    @pytest.mark.parametrize("digest", ["", "abc", "g" * 64, "AB" * 32, "../" * 21 + "a"])
    @pytest.mark.storage_free
    def test_open_blob_refuses_invalid_digest(self, store: Store, digest: str) -> None:
        """A content hash that is not 64 lowercase hex digits is refused before any read."""
        with pytest.raises(CorruptObjectError, match="invalid content hash"):
            store.open_blob(digest, 1, name="x", commit=None)

    def test_download_blob(self, store: Store, blob: Callable[[bytes], str],
                           tmp_path: Path) -> None:
        """download_blob writes the verified bytes to the target (making its folders)."""
        digest = blob(b"payload")
        target = tmp_path / "out" / "deep" / "file.bin"
        store.download_blob(digest, 7, target, name="file.bin", commit=None)
        assert target.read_bytes() == b"payload"
        assert list(target.parent.iterdir()) == [target]

    def test_download_corrupt_blob_leaves_nothing(self, store: Store, root: RegistryRoot,
                                                  blob: Callable[[bytes], str],
                                                  tmp_path: Path) -> None:
        """A corrupt blob raises on download and leaves neither target nor partial file."""
        digest = blob(b"payload")
        root.pipe(root.blob_path(digest), b"paylaod")
        out = tmp_path / "out"
        out.mkdir()
        with pytest.raises(CorruptObjectError):
            store.download_blob(digest, 7, out / "file.bin", name="file.bin", commit=None)
        assert list(out.iterdir()) == []

    def test_iter_blobs_lists_every_blob(self, store: Store,
                                         blob: Callable[[bytes], str]) -> None:
        """iter_blobs yields the digest of every stored blob and nothing else."""
        digests = {blob(b"one"), blob(b"two"), blob(b"three")}
        store.create(store.path("data", "README"), b"not a blob")
        assert set(store.iter_blobs()) == digests


class TestLocalStore(StoreContract):
    backend = "local"


class TestMemoryStore(StoreContract):
    backend = "memory"


class TestLocalOnly:
    """Behaviour specific to local disk."""

    def test_plain_path_root_is_absolute(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
        """A relative local root is made absolute, so a later chdir does not move it."""
        monkeypatch.chdir(tmp_path)
        store = Store("reg")
        assert isinstance(store.fs, LocalFileSystem)
        assert store.root == str(tmp_path / "reg")
        assert store.is_local

    def test_stage_keeps_a_private_copy(self, tmp_path: Path, workdir: Path) -> None:
        """On local disk the staged bytes are copied, so the source may change meanwhile."""
        store = Store(tmp_path / "reg")
        source = write(workdir, "m.bin", b"original")
        staged = store.stage(str(source))
        source.write_bytes(b"changed!")
        store.publish(staged)
        assert Path(store.blob_path(staged.digest)).read_bytes() == b"original"

    @pytest.mark.parametrize("kernel_copy", ["available", "refused", "missing"])
    @pytest.mark.parametrize("size", [0, 1, (8 << 20) - 1, (8 << 20) + 1, 19 << 20])
    def test_staged_copy_is_exact_whichever_way_it_is_made(
            self, tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch,
            kernel_copy: str, size: int) -> None:
        """Staging copies a file in the kernel block by block, hashing the copy, or by hand
        where the kernel call is refused or missing: the same bytes and hash either way,
        across block boundaries, with no temporary file left."""
        import errno
        import os

        calls: list[int] = []
        if kernel_copy == "available":
            real = os.copy_file_range

            def counted(*args: int) -> int:
                calls.append(args[2])
                return real(*args)  # type: ignore[arg-type]
            monkeypatch.setattr(os, "copy_file_range", counted)
        elif kernel_copy == "refused":
            def refuse(*args: object) -> int:
                raise OSError(errno.EXDEV, "cross-device")
            monkeypatch.setattr(os, "copy_file_range", refuse)
        elif kernel_copy == "missing":
            monkeypatch.delattr(os, "copy_file_range")
        content = bytes(range(251)) * (size // 251) + b"z" * (size % 251)
        source = write(workdir, "m.bin", content)
        store = Store(tmp_path / "reg")
        staged = store.stage(str(source))
        assert (staged.digest, staged.size) == (sha(content), size)
        store.publish(staged)
        assert Path(store.blob_path(staged.digest)).read_bytes() == content
        assert list((tmp_path / "reg" / "tmp").iterdir()) == []
        if kernel_copy == "available":  # every block, then the end; small files by hand
            assert len(calls) == (-(-size // (8 << 20)) + 1 if size >= 8 << 20 else 0)

    @pytest.mark.parametrize("source", ["/proc/self/status", "/dev/null"])
    def test_special_files_are_read_not_kernel_copied(self, tmp_path: Path,
                                                      source: str) -> None:
        """Files the kernel copies as empty (procfs, devices) are read by hand instead."""
        if not Path(source).exists():
            pytest.skip(f"{source} does not exist on this system")
        store = Store(tmp_path / "reg")
        staged = store.stage(source)
        store.publish(staged)
        stored = Path(store.blob_path(staged.digest)).read_bytes()
        assert sha(stored) == staged.digest and len(stored) == staged.size
        if source.startswith("/proc"):
            assert b"Name:" in stored


#: (the memory filesystem keeps ``user:password@`` in the path: a URL with a secret in it)
SOURCE = "flakymem://user:hunter2@incoming/model.bin"


class FlakyMemoryFileSystem(MemoryFileSystem):
    """memory://, but the first ``failures`` opens for reading reset the connection."""

    protocol = "flakymem"
    failures = 0

    def _open(self, path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        if "r" in mode and FlakyMemoryFileSystem.failures > 0:
            FlakyMemoryFileSystem.failures -= 1
            raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
        return super()._open(path, mode, *args, **kwargs)


class TestSourcesByUrl:
    """A file to commit given by URL is read again after a transient failure."""

    @pytest.fixture(autouse=True)
    def flaky(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        fsspec.register_implementation("flakymem", FlakyMemoryFileSystem, clobber=True)
        monkeypatch.setattr(kirin.backends, "RETRY", kirin.backends.RetryPolicy(
            attempts=3, base=0.01, cap=0.01, budget=10))
        path = FlakyMemoryFileSystem._strip_protocol(SOURCE)
        FlakyMemoryFileSystem().pipe_file(path, b"weights" * 1000)
        yield
        FlakyMemoryFileSystem.store.pop(path, None)
        FlakyMemoryFileSystem.failures = 0

    def test_a_transient_failure_is_ridden_out(self, tmp_path: Path) -> None:
        store = Store(tmp_path / "reg")
        FlakyMemoryFileSystem.failures = 2
        staged = store.stage(SOURCE)
        assert staged.digest == sha(b"weights" * 1000)
        assert FlakyMemoryFileSystem.failures == 0

    def test_what_keeps_failing_names_the_source_without_its_password(
            self, tmp_path: Path) -> None:
        store = Store(tmp_path / "reg")
        FlakyMemoryFileSystem.failures = 10
        with pytest.raises(StorageUnavailableError) as info:
            store.stage(SOURCE)
        message = str(info.value)
        assert "incoming/model.bin" in message and "3 attempts" in message
        assert "hunter2" not in message
        assert list((tmp_path / "reg").rglob("*.part")) == []

    def test_a_missing_source_is_named_without_its_password(self, tmp_path: Path) -> None:
        store = Store(tmp_path / "reg")
        with pytest.raises(SourceNotFoundError) as info:
            store.stage(SOURCE.replace("model", "other"))
        assert "incoming/other.bin" in str(info.value) and "hunter2" not in str(info.value)
        with pytest.raises(SourceNotFoundError) as info:
            store.check_sources([SOURCE.replace("model", "other")])
        assert "incoming/other.bin" in str(info.value) and "hunter2" not in str(info.value)
