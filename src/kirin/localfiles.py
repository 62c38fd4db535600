"""Lazy local copies of a commit's files, for code that needs real paths."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from .errors import LocalFileNotFoundError
from .naming import lookup_name, safe_local_path
from .values import File


class LocalFiles(Mapping[str, str]):
    """Maps file name -> local path; a file is downloaded (and verified) on first access.

    A name the commit lacks raises :class:`~kirin.errors.LocalFileNotFoundError`
    (a ``KeyError``, "File not found: <name> ..."). Listing names, ``in`` and
    ``len`` never download. Names are checked so a
    crafted name cannot write outside the temporary folder.
    """

    def __init__(self, files: Mapping[str, File], folder: Path,
                 commit: str | None = None) -> None:
        self._files = dict(files)
        self._folder = folder
        self._commit = commit
        self._paths: dict[str, str] = {}

    def __getitem__(self, name: str) -> str:
        name = lookup_name(name)
        if name in self._paths:
            return self._paths[name]
        if name not in self._files:
            raise LocalFileNotFoundError(name, self._commit)
        target = safe_local_path(self._folder, name)
        self._paths[name] = self._files[name].download_to(target)
        return self._paths[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and lookup_name(name) in self._files

    @property
    def folder(self) -> Path:
        return self._folder

    def downloaded(self) -> dict[str, str]:
        """The files fetched so far (name -> path)."""
        return dict(self._paths)


@contextmanager
def local_files(files: Mapping[str, File], prefix: str,
                commit: str | None = None) -> Iterator[LocalFiles]:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield LocalFiles(files, folder, commit)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
