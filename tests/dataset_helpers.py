"""What the Dataset API tests share: the ``ds`` and ``src`` fixtures and small helpers.

``conftest.py`` makes the fixtures available to the ``test_dataset_*.py`` files; ``ds`` takes
``registry_root``, so a test using it runs once per backend in ``roots.BACKENDS``
(or on memory only if marked ``storage_free``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kirin import Dataset

from roots import RegistryRoot

HEX64 = re.compile(r"[0-9a-f]{64}")
#: A policy whose only rule is that metadata carries ``accuracy``.
ACCURACY_REQUIRED = """\
version: 1
metadata:
  schema:
    type: object
    required: [accuracy]
"""
Source = Callable[..., Path]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def ds(registry_root: RegistryRoot) -> Dataset:
    """The dataset ``ds`` on a fresh root, once per backend."""
    return registry_root.dataset()


@pytest.fixture
def src(workdir: Path) -> Source:
    """Writes a source file ``workdir/name`` (default content: derived from the name)."""
    from conftest import write  # not at the top: conftest imports this module

    def make(name: str, content: bytes | str | None = None) -> Path:
        return write(workdir, name, f"content of {name}" if content is None else content)
    return make


def reopen(ds: Dataset) -> Dataset:
    """A new instance of ``ds`` reading from storage (nothing cached)."""
    return Dataset(ds.root_dir, ds.name, fs=ds.fs)


def commit_n(ds: Dataset, src: Source, n: int, **kwargs: Any) -> list[str]:
    """``n`` commits of one changing file; their hashes, oldest first."""
    return [ds.commit(f"commit {i}", add_files={"f.txt": src("f.txt", f"v{i}")}, **kwargs)
            for i in range(n)]
