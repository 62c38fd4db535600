"""Shared fixtures: an isolated environment and small real files on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

# The Dataset API tests' (test_dataset_*.py) dataset and source files.
from dataset_helpers import ds, src  # noqa: F401

# The original Kirin's registry, built once per session by the original package.
from kirin0_helpers import original_registry  # noqa: F401

# Fixtures shared by the storage-touching tests: one run per storage backend.
from roots import (  # noqa: F401
    memory_source,
    memory_url,
    pytest_collection_modifyitems,
    registry_root,
)

# Session fixtures starting the object-storage servers (once, on first use).
from servers import azurite_server, gcs_server, moto_server  # noqa: F401


@pytest.fixture(autouse=True)
def isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test gets a fixed author, its own cache and no inherited Kirin settings."""
    for var in ("KIRIN_ROOT", "KIRIN_DATASET"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KIRIN_AUTHOR", "tester@example")
    monkeypatch.setenv("KIRIN_CACHE_DIR", str(tmp_path / "kirin-cache"))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder for source files, separate from the registry root."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A fresh registry root on local disk."""
    return tmp_path / "registry"


def write(folder: Path, name: str, content: bytes | str) -> Path:
    """Create ``folder/name`` with ``content`` and return its path."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path
