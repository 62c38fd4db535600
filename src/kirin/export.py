"""Materialising the files of a commit into a local folder.

Names are data, not paths: every name is checked with
:func:`~kirin.naming.safe_local_path`, so a crafted name in a stored commit
cannot write outside the folder. Every requested name is looked up before
anything is written, and each file appears only once complete and verified.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .errors import FileNotInCommitError
from .naming import lookup_name, safe_local_path
from .values import Commit, File


def select_files(commit: Commit, names: Iterable[str] | None = None) -> list[File]:
    """The files of ``commit`` named by ``names`` (all if ``None``), in commit order.

    A name is a file name or a folder (``data`` selects ``data/...``).
    Raises :class:`~kirin.errors.FileNotInCommitError` for a name that
    matches nothing.
    """
    files = commit.files
    if names is None:
        return list(files.values())
    chosen: dict[str, File] = {}
    for raw in names:
        name = lookup_name(raw).rstrip("/")
        if name in files:
            chosen[name] = files[name]
            continue
        inside = {n: f for n, f in files.items() if n.startswith(name + "/")}
        if not name or not inside:
            raise FileNotInCommitError(raw, commit.hash)
        chosen.update(inside)
    return [files[n] for n in files if n in chosen]


def export_files(commit: Commit, directory: str | os.PathLike[str],
                 names: Iterable[str] | None = None) -> dict[str, Path]:
    """Write the files of ``commit`` (all, or those ``names`` select) under ``directory``.

    Returns name -> path written. Existing files of the same name are
    replaced; the folder is created if needed.
    """
    selected = select_files(commit, names)
    targets = {f.name: safe_local_path(directory, f.name) for f in selected}
    Path(directory).mkdir(parents=True, exist_ok=True)
    for file in selected:
        file.download_to(targets[file.name])
    return targets
