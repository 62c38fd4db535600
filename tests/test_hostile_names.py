"""Names are data, not paths: nothing a name says can make Kirin write outside its folder."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from kirin import Dataset
from kirin.errors import CorruptObjectError, InvalidNameError
from kirin.history import encode_record, record_hash

from conftest import write

HOSTILE = ["../escape.txt", "../../escape.txt", "/etc/escape.txt", "a/../../escape.txt",
           "nul\x00byte", "C:/escape.txt", "a\\..\\escape.txt", "x" * 300, "a//b",
           "esc\x1b[31m", "./hidden"]


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_at_commit(tmp_path: Path, workdir: Path, name: str) -> None:
    """commit() refuses a hostile name before anything is written."""
    src = write(workdir, "f.bin", b"data")
    ds = Dataset(tmp_path / "reg", "ds")
    with pytest.raises(InvalidNameError):
        ds.commit("hostile", add_files={name: src})
    assert not (tmp_path / "reg").exists()
    assert sorted(tree(tmp_path)) == ["work", "work/f.bin"]


@pytest.mark.parametrize("name", ["../../escape.txt", "/tmp/escape.txt", "a/../../x",
                                  "nul\x00byte", unicodedata.normalize("NFD", "café.txt")])
def test_crafted_commit_object_with_a_hostile_name_is_refused_on_read(
        tmp_path: Path, workdir: Path, name: str) -> None:
    """A stored record naming a hostile file (hash recomputed) is reported, never materialised."""
    root = tmp_path / "reg"
    ds = Dataset(root, "ds")
    ds.commit("fine", add_files={"ok.txt": write(workdir, "ok.txt", b"fine")})
    path = root / "datasets" / "ds" / "log" / f"{0:020d}.json"
    record = json.loads(path.read_bytes())
    entry = record["changes"]["add"].pop("ok.txt")
    record["changes"]["add"][name] = entry
    record["hash"] = record_hash(record)
    path.write_bytes(encode_record(record))
    before = tree(tmp_path)
    fresh = Dataset(root, "ds")
    with pytest.raises(CorruptObjectError, match="file name"):
        fresh.history()
    with pytest.raises(CorruptObjectError):
        fresh.local_files()
    assert tree(tmp_path) == before


def test_unicode_variants_of_one_name_are_one_file(tmp_path: Path, workdir: Path) -> None:
    """NFC and NFD spellings of a name address the same file; both at once is a clash."""
    nfc, nfd = unicodedata.normalize("NFC", "café.txt"), unicodedata.normalize("NFD", "café.txt")
    a, b = write(workdir, "a", b"one"), write(workdir, "b", b"two")
    ds = Dataset(tmp_path / "reg", "ds")
    with pytest.raises(ValueError, match="Two files would be stored as"):
        ds.commit("clash", add_files={nfc: a, nfd: b})
    ds.commit("nfd name", add_files={nfd: a})
    assert ds.list_files() == [nfc]
    assert ds.read_file(nfd, mode="rb") == b"one"


def test_downloads_stay_inside_their_folder(tmp_path: Path, workdir: Path) -> None:
    """Folder names in a commit are recreated under the target, never above it."""
    ds = Dataset(tmp_path / "reg", "ds")
    ds.commit("nested", add_files={"deep/er/file.txt": write(workdir, "f", b"x")})
    target = tmp_path / "out"
    target.mkdir()
    saved = Path(ds.download_file("deep/er/file.txt", target))
    assert saved == (target / "deep" / "er" / "file.txt").resolve()
    with ds.local_files() as files:
        local = Path(files["deep/er/file.txt"])
        assert local.read_bytes() == b"x"
        assert files.folder in local.parents
