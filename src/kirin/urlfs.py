"""``kirin://`` URLs: a read-only fsspec filesystem over the commits of a registry.

Registered with fsspec under the ``kirin`` protocol by an entry point
(``[project.entry-points."fsspec.specs"]``), so any fsspec-aware reader
works without importing Kirin::

    pd.read_csv("kirin://churn_data@production/train.csv",
                storage_options={"root": "s3://bucket/registry"})

URL grammar: ``kirin://<dataset>[@<ref>][/<path>]``.

* ``<dataset>``: a dataset name (letters, digits, ``.``, ``_``, ``-``).
* ``<ref>``: anything :meth:`kirin.Dataset.resolve` takes (a full hash, a
  unique hash prefix, a tag, ``tag:NAME``), percent-decoded (write a ``/`` in
  a tag as ``%2F``). Without ``@<ref>``, the newest commit at the time of
  each call.
* ``<path>``: a file of that commit, or a folder (a prefix of file names
  ending at a ``/``). ``kirin://`` alone lists the datasets.

Storage options: ``root`` (the registry root: a folder or an fsspec URL;
default: the ``KIRIN_ROOT`` environment variable) and ``root_storage_options``
(a dict passed to the root's own filesystem, e.g. ``{"profile": "ml"}`` for
S3; credentials in it are never shown).

Every read is verified as :meth:`kirin.Dataset.open_file` does: ``open``
returns a reader only once the whole file has matched its hash, and
``cat_file`` returns bytes only once they have. ``info`` and ``ls`` give each
file's ``size``, its content ``hash`` (SHA-256) and the ``commit`` it was
read from. Writes raise :class:`~kirin.errors.ReadOnlyError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import IO, Any
from urllib.parse import unquote

from fsspec import AbstractFileSystem

from .backends import redact_url
from .catalog import Catalog
from .dataset import Dataset
from .errors import (
    CommitNotFoundError,
    DatasetNotFoundError,
    FileNotInCommitError,
    InvalidInputError,
    ReadOnlyError,
)
from .naming import validate_dataset_name
from .values import Commit, File

__all__ = ["KirinFileSystem"]


class KirinFileSystem(AbstractFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """Read-only view of a registry's commits as files (see the module docstring)."""

    protocol = ("kirin",)
    root_marker = ""

    def __init__(self, root: str | os.PathLike[str] | None = None,
                 root_storage_options: Mapping[str, Any] | None = None,
                 **storage_options: Any) -> None:
        super().__init__(root=root, root_storage_options=root_storage_options,
                         **storage_options)
        if root is None:
            root = os.environ.get("KIRIN_ROOT") or None
        if root is None:
            raise InvalidInputError(
                "kirin:// URLs need the registry root: pass storage_options="
                "{'root': 's3://bucket/registry'} (or a local folder), or set KIRIN_ROOT")
        if root_storage_options is not None and not isinstance(root_storage_options, Mapping):
            raise InvalidInputError("root_storage_options must be a dict of the root's "
                                    f"storage options, not {type(root_storage_options).__name__}")
        self._catalog = Catalog(root, **dict(root_storage_options or {}))
        self._datasets: dict[str, Dataset] = {}

    def __repr__(self) -> str:
        return f"KirinFileSystem(root={redact_url(str(self._catalog.root_dir))!r})"

    # -- names -------------------------------------------------------------
    @staticmethod
    def _split(path: str) -> tuple[str, str | None, str]:
        """(dataset, ref or ``None``, path inside the commit) of a stripped path."""
        head, _, inner = path.strip("/").partition("/")
        name, at, ref = head.partition("@")
        validate_dataset_name(name)
        if at and not ref:
            raise InvalidInputError(f"kirin://{head}: the ref after '@' is empty (write "
                                    "dataset@<hash, prefix or tag>, or leave out '@')")
        return name, (unquote(ref) if at else None), inner.strip("/")

    def _dataset(self, name: str) -> Dataset:
        if name not in self._datasets:
            self._datasets[name] = self._catalog.get_dataset(name)
        return self._datasets[name]

    def _commit(self, name: str, ref: str | None) -> Commit:
        """The commit ``name@ref`` stands for (the newest one without a ref)."""
        dataset = self._dataset(name)
        if dataset.is_empty() and name not in self._catalog:
            raise DatasetNotFoundError(
                f"Dataset {name!r} not found in {self._catalog._store.url}", name=name)
        if ref is not None:
            return dataset.resolve(ref)
        newest = dataset.history(limit=1)
        if not newest:
            raise CommitNotFoundError("latest", name, f"No commits found in dataset {name!r}: "
                                      "it has no commits yet")
        return newest[0]

    def _resolve(self, path: str) -> tuple[str, Commit, str]:
        """(the ``dataset[@ref]`` part as written, its commit, the path inside it)."""
        stripped = self._strip_protocol(path)
        name, ref, inner = self._split(stripped)
        return stripped.strip("/").partition("/")[0], self._commit(name, ref), inner

    # -- entries -----------------------------------------------------------
    @staticmethod
    def _file_entry(head: str, file: File, commit: Commit) -> dict[str, Any]:
        return {"name": f"{head}/{file.name}", "size": file.size, "type": "file",
                "hash": file.hash, "commit": commit.hash}

    @staticmethod
    def _dir_entry(name: str, commit: Commit | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": name, "size": 0, "type": "directory"}
        if commit is not None:
            entry["commit"] = commit.hash
        return entry

    def _entries(self, head: str, commit: Commit, inner: str, *, depth: int | None
                 ) -> dict[str, dict[str, Any]]:
        """Files and folders below folder ``inner``, at most ``depth`` levels down."""
        prefix = f"{inner}/" if inner else ""
        found: dict[str, dict[str, Any]] = {}
        for fname, file in commit.files.items():
            if not fname.startswith(prefix):
                continue
            parts = fname[len(prefix):].split("/")
            for level in range(1, len(parts)):  # the folders on the way
                if depth is not None and level > depth:
                    break
                folder = f"{head}/{prefix}{'/'.join(parts[:level])}"
                found.setdefault(folder, self._dir_entry(folder, commit))
            if depth is None or len(parts) <= depth:
                entry = self._file_entry(head, file, commit)
                found[entry["name"]] = entry
        return found

    # -- reading -----------------------------------------------------------
    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        stripped = self._strip_protocol(path).strip("/")
        if not stripped:
            entries = [self._dir_entry(n) for n in self._catalog.datasets()]
        else:
            head, commit, inner = self._resolve(stripped)
            file = commit.files.get(inner) if inner else None
            if file is not None:
                entries = [self._file_entry(head, file, commit)]
            else:
                found = self._entries(head, commit, inner, depth=1)
                if not found and inner:
                    raise FileNotInCommitError(inner, commit.hash)
                entries = [found[k] for k in sorted(found)]
        return entries if detail else [e["name"] for e in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        stripped = self._strip_protocol(path).strip("/")
        if not stripped:
            return self._dir_entry("")
        head, commit, inner = self._resolve(stripped)
        if not inner:
            return self._dir_entry(head, commit)
        file = commit.files.get(inner)
        if file is not None:
            return self._file_entry(head, file, commit)
        prefix = inner + "/"
        if any(name.startswith(prefix) for name in commit.files):
            return self._dir_entry(f"{head}/{inner}", commit)
        raise FileNotInCommitError(inner, commit.hash)

    def find(self, path: str, maxdepth: int | None = None, withdirs: bool = False,
             detail: bool = False, **kwargs: Any) -> Any:
        """Every file below ``path`` (and folder, ``withdirs``), from one resolution of the ref."""
        stripped = self._strip_protocol(path).strip("/")
        if not stripped:  # every dataset's newest commit
            found: dict[str, dict[str, Any]] = {}
            for name in self._catalog.datasets():
                if withdirs:
                    found[name] = self._dir_entry(name)
                if maxdepth is None or maxdepth > 1:
                    found.update(self.find(name, None if maxdepth is None else maxdepth - 1,
                                           withdirs, detail=True))
        else:
            head, commit, inner = self._resolve(stripped)
            file = commit.files.get(inner) if inner else None
            if file is not None:
                found = {f"{head}/{inner}": self._file_entry(head, file, commit)}
            else:
                found = self._entries(head, commit, inner, depth=maxdepth)
                if not withdirs:
                    found = {k: v for k, v in found.items() if v["type"] == "file"}
                elif inner and found:
                    found[f"{head}/{inner}"] = self._dir_entry(f"{head}/{inner}", commit)
                elif not inner:
                    found[head] = self._dir_entry(head, commit)
        ordered = {k: found[k] for k in sorted(found)}
        return ordered if detail else list(ordered)

    def _file(self, path: str) -> File:
        _, commit, inner = self._resolve(path)
        file: File | None = commit.files.get(inner) if inner else None
        if file is None:
            raise FileNotInCommitError(inner or path, commit.hash)
        return file

    def cat_file(self, path: str, start: int | None = None, end: int | None = None,
                 **kwargs: Any) -> bytes:
        """The file's bytes (``start``/``end`` slice them), only once all have been verified."""
        data = self._file(path).read_bytes()
        return data if start is None and end is None else data[start:end]

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None,
              autocommit: bool = True, cache_options: dict[str, Any] | None = None,
              **kwargs: Any) -> IO[bytes]:
        """A verified, seekable reader (the whole file matched its hash before it returns)."""
        if mode != "rb":
            raise ReadOnlyError(f"kirin:// is read-only: cannot open {path!r} with mode "
                                f"{mode!r}; commit files with Dataset.commit()")
        reader: IO[bytes] = self._file(path).open("rb")
        return reader

    def size(self, path: str) -> int:
        return int(self.info(path)["size"])

    def ukey(self, path: str) -> str:
        """The content hash: equal keys mean equal bytes, whichever commit or name."""
        info = self.info(path)
        return str(info.get("hash") or info.get("commit", ""))

    # -- writing: refused ---------------------------------------------------
    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise ReadOnlyError("kirin:// is read-only: a commit is immutable. Add or remove "
                            "files with Dataset.commit(), which records a new commit.")

    mkdir = makedirs = rmdir = _rm = rm = rm_file = _read_only
    pipe_file = put_file = touch = cp_file = mv = _read_only
