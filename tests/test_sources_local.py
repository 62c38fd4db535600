"""Local files to commit are looked at without fsspec (issue 16), as fsspec would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fsspec.implementations.local import LocalFileSystem

from kirin.errors import SourceNotFoundError
from kirin.sources import LocalDisk, check_source, is_local, source_fs


@pytest.fixture
def places(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "file.pt").write_bytes(b"w")
    (tmp_path / "folder").mkdir()
    os.symlink(tmp_path / "file.pt", tmp_path / "link-to-file")
    os.symlink(tmp_path / "folder", tmp_path / "link-to-folder")
    os.symlink(tmp_path / "gone", tmp_path / "broken-link")
    names = ["file.pt", "folder", "missing.pt", "link-to-file", "link-to-folder",
             "broken-link", "file.pt/inside", "folder/../file.pt"]
    return {name: source_fs(str(tmp_path / name))[1] for name in names}


def test_a_local_path_is_on_the_local_disk_without_fsspec(tmp_path: Path) -> None:
    fs, path = source_fs(str(tmp_path / "a" / ".." / "file.pt"))
    assert isinstance(fs, LocalDisk) and is_local(fs) and not fs.async_impl
    assert path == str(tmp_path / "file.pt")
    assert not isinstance(source_fs("memory://x/file.pt")[0], LocalDisk)


def test_it_says_file_or_folder_as_fsspec_does(places: dict[str, str]) -> None:
    disk, fsspec_disk = LocalDisk(), LocalFileSystem()
    for name, path in places.items():
        assert disk.isfile(path) == fsspec_disk.isfile(path), name
        assert disk.isdir(path) == fsspec_disk.isdir(path), name


def test_check_source_refuses_as_before(places: dict[str, str]) -> None:
    """The same verdict and message whichever filesystem object looks."""
    for name, path in places.items():
        verdicts = []
        for fs in (LocalDisk(), LocalFileSystem()):
            try:
                check_source(name, fs, path, [])
                verdicts.append("ok")
            except SourceNotFoundError as exc:
                verdicts.append(str(exc))
        assert verdicts[0] == verdicts[1], name
    assert places  # (the fixture made them)


#: Validates and commits a local file in a fresh process; prints the heavy modules loaded.
COMMIT_LOCALLY = """
import sys
from kirin import Dataset
ds = Dataset(sys.argv[1], "ds")
assert ds.validate("one", add_files={"a.txt": sys.argv[2]}).ok
ds.commit("one", add_files={"a.txt": sys.argv[2]})
print(",".join(m for m in ("fsspec", "asyncio") if m in sys.modules))
"""


def test_committing_a_local_file_to_a_local_registry_loads_no_fsspec(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    done = subprocess.run([sys.executable, "-c", COMMIT_LOCALLY, str(tmp_path / "reg"),
                           str(tmp_path / "a.txt")], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == ""
