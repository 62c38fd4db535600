"""Registry roots on every storage backend the tests run against.

Tests that touch storage take the ``registry_root`` fixture and are then run
once per backend. A :class:`RegistryRoot` bundles what a test needs: the URL a
user would pass as ``root_dir``, the fsspec filesystem and path behind it
(to inspect or damage stored objects the way a faulty disk or a careless
colleague with bucket access would), and helpers that build a ``Dataset`` or
``Catalog`` on it.

Each backend is one entry in :data:`BACKENDS`: a context manager that takes
the pytest request and a temporary folder, yields a :class:`RegistryRoot` on a
fresh, unique prefix, and removes it afterwards. The cloud backends (S3 via
moto's server, Azure Blob via Azurite, GCS via fake-gcs-server; see
``servers.py``) get their server from a session fixture through
``request.getfixturevalue(...)`` and a fresh bucket per test. Every test that
uses ``registry_root`` (and every ``StoreContract`` subclass) covers them all;
nothing is skipped for lack of a server (``scripts/test.sh`` installs them).
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from kirin import Catalog, Dataset

from servers import Cloud, cloud_for

DIRECTORY = "<dir>"


@dataclass
class RegistryRoot:
    """One registry root on one backend, with ways to look at its raw objects."""

    backend: str
    url: str
    fs: fsspec.AbstractFileSystem
    path: str
    storage_options: dict[str, Any] = field(default_factory=dict)
    #: Builds another empty root on the same backend (for clones).
    _sibling: Callable[[], RegistryRoot] | None = field(default=None, repr=False)

    # -- the public API on this root ---------------------------------------
    def dataset(self, name: str = "ds", **kwargs: Any) -> Dataset:
        """A fresh ``Dataset`` instance on this root, as a user would open it."""
        return Dataset(self.url, name, **self.storage_options, **kwargs)

    def catalog(self) -> Catalog:
        """A fresh ``Catalog`` on this root."""
        return Catalog(self.url, **self.storage_options)

    # -- raw paths ---------------------------------------------------------
    def join(self, *parts: str) -> str:
        return "/".join((self.path.rstrip("/"), *parts))

    def blob_path(self, digest: str) -> str:
        return self.join("data", digest[:2], digest[2:])

    def log_path(self, dataset: str, seq: int) -> str:
        return self.join("datasets", dataset, "log", f"{seq:020d}.json")

    def checkpoint_path(self, dataset: str, last: int) -> str:
        return self.join("datasets", dataset, "checkpoints", f"{last:020d}.json")

    @property
    def parent(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[0]

    # -- raw objects -------------------------------------------------------
    def cat(self, path: str) -> bytes:
        return bytes(self.fs.cat_file(path))

    def pipe(self, path: str, data: bytes) -> None:
        """Overwrite (or create) the object at ``path`` with ``data``."""
        if self.backend not in CLOUD_BACKENDS:  # object stores have no folders to make
            self.fs.makedirs(self.fs._parent(path), exist_ok=True)
        self.fs.pipe_file(path, data)

    def rm(self, path: str) -> None:
        self.fs.rm_file(path)

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    def objects(self, under: str | None = None, *, withdirs: bool = False
                ) -> dict[str, str]:
        """Every object (and, with ``withdirs``, folder) under ``under`` (default: the root).

        Maps the path relative to ``under`` to the SHA-256 of the object's
        bytes (or ``"<dir>"``), so two listings are equal only if nothing was
        added, removed or changed. Folders are left out by default: object
        stores have none, and an empty scratch folder is not registry content.
        """
        base = (under or self.path).rstrip("/")
        self.fs.invalidate_cache()  # object stores cache listings; others write meanwhile
        if not self.fs.exists(base):
            return {}
        found = self.fs.find(base, withdirs=True, detail=True)
        out: dict[str, str] = {}
        for path, info in found.items():
            rel = str(path).rstrip("/")[len(base):].lstrip("/")
            if not rel:
                continue
            if info["type"] == "directory":
                if withdirs:
                    out[rel] = DIRECTORY
            else:
                out[rel] = hashlib.sha256(self.cat(str(path))).hexdigest()
        return out

    def clone(self) -> RegistryRoot:
        """A new root on the same backend holding a copy of every object here."""
        assert self._sibling is not None, "this root cannot be cloned"
        other = self._sibling()
        for rel, digest in self.objects().items():
            if digest != DIRECTORY:
                other.pipe(other.join(rel), self.cat(self.join(rel)))
        return other


BackendFactory = Callable[[pytest.FixtureRequest, Path], contextlib.AbstractContextManager[
    RegistryRoot]]


@contextlib.contextmanager
def local_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RegistryRoot]:
    """A folder on local disk, given as a plain path string (the common case)."""
    counter = iter(range(1_000_000))

    def make() -> RegistryRoot:
        folder = tmp_path / f"store-{next(counter)}"
        folder.mkdir()
        path = str(folder / "registry")
        return RegistryRoot("local", path, LocalFileSystem(), path, _sibling=make)

    yield make()


@contextlib.contextmanager
def memory_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RegistryRoot]:
    """fsspec's in-memory filesystem, reached by a unique ``memory://`` URL.

    The memory filesystem is shared by the whole process, so each root lives
    under its own random prefix and is deleted afterwards.
    """
    fs = MemoryFileSystem()
    prefixes: list[str] = []

    def make() -> RegistryRoot:
        prefix = f"kirin-tests/{uuid.uuid4().hex}"
        prefixes.append(prefix)
        return RegistryRoot("memory", f"memory://{prefix}/registry", fs,
                            f"/{prefix}/registry", _sibling=make)

    try:
        yield make()
    finally:
        for prefix in prefixes:
            with contextlib.suppress(FileNotFoundError):
                fs.rm(f"/{prefix}", recursive=True)


def cloud_backend(kind: str, scheme: str | None = None) -> BackendFactory:
    """A backend on the session's server of ``kind``: a fresh bucket per test.

    Buckets are made, never deleted: the servers keep data in memory and go
    at the end of the session, deleting a bucket's objects costs more than
    making it (~0.1 s on moto and Azurite), and one shared bucket would make
    every listing slower as it fills (fake-gcs-server and moto scan a bucket
    to list a prefix). ``RegistryRoot.dataset()`` passes the storage options
    a user would pass; the same options are also fsspec's configuration for
    the protocol during the test (what ``FSSPEC_S3='{...}'`` and the like set
    from the environment), so a bare URL works too, as in tests written for
    local disk. The raw view (``RegistryRoot.fs``) is a separate filesystem
    instance, so the code under test never shares a client or cache with it.
    """

    @contextlib.contextmanager
    def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RegistryRoot]:
        cloud: Cloud = cloud_for(request, kind, scheme)
        monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
        monkeypatch.setitem(fsspec.config.conf, cloud.scheme, cloud.storage_options())
        fs = cloud.filesystem()
        bucket = f"kirin-{uuid.uuid4().hex[:20]}"
        cloud.create_bucket(bucket)
        counter = iter(range(1_000_000))

        def make() -> RegistryRoot:
            prefix = f"{bucket}/r{next(counter)}/registry"
            return RegistryRoot(kind, f"{cloud.scheme}://{prefix}", fs, prefix,
                                storage_options=cloud.storage_options(), _sibling=make)

        yield make()

    return backend


#: Every backend the storage-touching tests run on, by test id. Adding one here
#: (see the module docstring) is all it takes; nothing else needs to change.
BACKENDS: dict[str, BackendFactory] = {
    "local": local_backend,
    "memory": memory_backend,
    "s3": cloud_backend("s3"),
    "azure": cloud_backend("azure"),
    "gcs": cloud_backend("gcs"),
}
CLOUD_BACKENDS = ("s3", "azure", "gcs")

#: Test classes that run on only some of the cloud backends, and why. Every
#: other test taking ``registry_root`` runs on all five backends.
CLOUD_ONLY_ON: dict[str, tuple[tuple[str, ...], str]] = {
    "TestLineageIndexOnStorage": (("s3",), "builds a 103-commit history; S3 is the backend "
                                           "whose listing after a name is its own code path"),
    "TestCheckpoints": (("gcs",), "builds a 250-commit history and rewrites ~500 objects per "
                                  "test; the cloud-specific paths it uses (listing, batched "
                                  "reads) are covered by every other test"),
}


def backend_of(item: pytest.Item) -> str | None:
    """The backend a test item runs on: its ``registry_root`` parameter, or the
    ``backend`` of its class (the ``StoreContract`` subclasses); None if neither."""
    callspec = getattr(item, "callspec", None)
    backend = callspec.params.get("registry_root") if callspec else None
    if backend is None:
        backend = getattr(getattr(item, "cls", None), "backend", None)
    return backend if isinstance(backend, str) else None


#: The one backend a ``storage_free`` test runs on.
STORAGE_FREE_BACKEND = "memory"


def _runs_on(item: pytest.Item, backend: str) -> bool:
    """Whether ``item``, parametrized with ``backend``, is part of the run.

    * ``@pytest.mark.storage_free`` on a test (or class) whose assertion does not
      depend on the storage behind it (argument and value checks refused before
      anything is read or written, value objects): it runs on
      :data:`STORAGE_FREE_BACKEND` only. A case of such a test marked
      ``every_backend`` (``pytest.param(..., marks=pytest.mark.every_backend)``)
      still runs everywhere: one representative per matrix, typically the
      "a refused commit writes nothing" check.
    * :data:`CLOUD_ONLY_ON`: classes that run on only some cloud backends.
    """
    if (item.get_closest_marker("storage_free") is not None
            and item.get_closest_marker("every_backend") is None):
        return backend == STORAGE_FREE_BACKEND
    cls = getattr(item, "cls", None)
    rule = CLOUD_ONLY_ON.get(cls.__name__) if cls is not None else None
    return not (backend in CLOUD_BACKENDS and rule is not None and backend not in rule[0])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (never skip) the backend runs that :func:`_runs_on` leaves out."""
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        backend = backend_of(item)
        if backend is None or _runs_on(item, backend):
            keep.append(item)
        else:
            dropped.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@contextlib.contextmanager
def open_backend(name: str, request: pytest.FixtureRequest, tmp_path: Path
                 ) -> Iterator[RegistryRoot]:
    """A fresh root on backend ``name`` for the duration of the ``with`` block."""
    with BACKENDS[name](request, tmp_path) as root:
        yield root


@pytest.fixture(params=list(BACKENDS))
def registry_root(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RegistryRoot]:
    """A fresh, empty registry root, once per backend in :data:`BACKENDS`.

    Extension point: a new backend is a new entry in ``BACKENDS`` (a context
    manager yielding a ``RegistryRoot`` on a unique prefix and cleaning it up
    afterwards); this fixture picks it up as another param, with its key as
    the test id, so every test written against ``registry_root`` runs on it.
    """
    with open_backend(request.param, request, tmp_path) as root:
        yield root


@pytest.fixture
def memory_source() -> Iterator[Callable[[str, bytes], str]]:
    """Creates source files on ``memory://`` and returns their URLs.

    For committing files that are themselves on an fsspec filesystem.
    """
    fs = MemoryFileSystem()
    prefix = f"/kirin-sources/{uuid.uuid4().hex}"

    def make(name: str, content: bytes) -> str:
        fs.pipe_file(f"{prefix}/{name}", content)
        return f"memory:/{prefix}/{name}"

    yield make
    with contextlib.suppress(FileNotFoundError):
        fs.rm(prefix, recursive=True)


@pytest.fixture
def memory_url() -> Iterator[str]:
    """The URL of a fresh registry root on ``memory://``, removed afterwards (for tests that
    count or damage objects through the in-memory filesystem)."""
    path = f"/kirin-roots/{uuid.uuid4().hex}/reg"
    yield f"memory:/{path}"
    with contextlib.suppress(FileNotFoundError):
        MemoryFileSystem().rm(path.rsplit("/", 1)[0], recursive=True)
