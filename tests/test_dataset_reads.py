"""Reading a commit's files: the current commit, File objects, read/open/download, and
local_files.

Part of the Dataset API tests (split by concern: ``test_dataset_*.py``). Every test
that touches storage takes ``registry_root`` (through ``ds``) and so runs once per
backend in ``roots.BACKENDS``; ``storage_free`` ones run on memory only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from kirin import Dataset, File, LocalFiles
from kirin.errors import FileNotInCommitError

from conftest import write
from dataset_helpers import Source, commit_n, sha


class TestCurrentCommitAndFiles:
    """current_commit/head, files, list_files, has_file, get_file."""

    def test_empty_dataset(self, ds: Dataset) -> None:
        """Without commits: no current commit, no files, get_file is None."""
        assert ds.current_commit is None
        assert ds.head is None
        assert ds.files == {}
        assert ds.list_files() == []
        assert not ds.has_file("a")
        assert ds.get_file("a") is None

    def test_head_is_current_commit(self, ds: Dataset, src: Source) -> None:
        """head is an alias of current_commit, also after checking out an old commit."""
        first, _ = commit_n(ds, src, 2)
        assert ds.head == ds.current_commit
        ds.checkout(first)
        assert ds.head is not None
        assert ds.head.hash == first

    def test_files_mapping(self, ds: Dataset, src: Source) -> None:
        """files maps every name to its File; list_files and has_file agree with it."""
        ds.commit("m", add_files={"b.txt": src("b"), "a/c.json": src("c")})
        assert list(ds.files) == ["a/c.json", "b.txt"]
        assert all(isinstance(f, File) for f in ds.files.values())
        assert ds.list_files() == ["a/c.json", "b.txt"]
        assert ds.has_file("b.txt")
        assert not ds.has_file("a")
        assert ds.get_file("missing") is None
        with pytest.raises(TypeError):
            ds.files["x"] = ds.files["b.txt"]  # type: ignore[index]

    def test_files_of_old_checkout(self, ds: Dataset, src: Source) -> None:
        """After checkout(old), the file methods show the old snapshot."""
        first = ds.commit("one", add_files=[src("a.txt")])
        ds.commit("two", add_files=[src("b.txt")], remove_files=["a.txt"])
        ds.checkout(first)
        assert ds.list_files() == ["a.txt"]
        assert ds.read_file("a.txt") == "content of a.txt"
        assert ds.get_file("b.txt") is None


class TestFile:
    """File values from a registry: attributes and verified reads."""

    def test_attributes(self, ds: Dataset, src: Source) -> None:
        """name, hash (SHA-256), size, content_type, short_hash and to_dict describe the file."""
        content = b'{"lr": 0.1}'
        digest = ds.commit("m", add_files={"cfg/config.json": src("c", content)})
        file = ds.get_file("cfg/config.json")
        assert file is not None
        assert file.name == "cfg/config.json"
        assert file.hash == sha(content)
        assert file.size == len(content)
        assert file.content_type == "application/json"
        assert file.short_hash == sha(content)[:8]
        assert file.commit_hash == digest
        assert file.to_dict() == {"name": "cfg/config.json", "hash": sha(content),
                                  "size": len(content), "content_type": "application/json"}

    def test_reads(self, ds: Dataset, src: Source, tmp_path: Path) -> None:
        """read_bytes, read_text, read(mode), open("rb"/"r") and download_to give the content."""
        ds.commit("m", add_files={"notes.txt": src("n", "héllo\nworld")})
        file = ds.get_file("notes.txt")
        assert file is not None
        assert file.read_bytes() == "héllo\nworld".encode()
        assert file.read_text() == "héllo\nworld"
        assert file.read() == "héllo\nworld"
        assert file.read("rb") == "héllo\nworld".encode()
        with file.open("rb") as stream:
            assert stream.read() == "héllo\nworld".encode()
        with file.open("r") as stream:
            assert stream.readline() == "héllo\n"
        target = tmp_path / "out.txt"
        assert file.download_to(target) == str(target)
        assert target.read_text() == "héllo\nworld"

    def test_file_is_immutable(self, ds: Dataset, src: Source) -> None:
        """Setting an attribute of a File raises FrozenInstanceError."""
        ds.commit("m", add_files=[src("a")])
        with pytest.raises(dataclasses.FrozenInstanceError):
            ds.get_file("a").size = 0  # type: ignore[misc, union-attr]


class TestReadFile:
    """read_file, open_file and download_file on the current commit."""

    def test_read_file_modes(self, ds: Dataset, src: Source) -> None:
        """read_file returns text by default and bytes with mode="rb"."""
        ds.commit("m", add_files={"a.txt": src("a", "text ✓")})
        assert ds.read_file("a.txt") == "text ✓"
        assert ds.read_file("a.txt", mode="r") == "text ✓"
        assert ds.read_file("a.txt", mode="rb") == "text ✓".encode()
        with pytest.raises(ValueError, match="supports"):
            ds.read_file("a.txt", mode="w")

    def test_open_file(self, ds: Dataset, src: Source) -> None:
        """open_file gives a binary stream by default and a text stream with mode="r"."""
        ds.commit("m", add_files={"a.txt": src("a", "line1\nline2\n")})
        with ds.open_file("a.txt") as stream:
            assert stream.read() == b"line1\nline2\n"
        with ds.open_file("a.txt", "r") as stream:
            assert list(stream) == ["line1\n", "line2\n"]

    @pytest.mark.parametrize("op", ["read_file", "open_file", "download_file"])
    @pytest.mark.storage_free
    def test_missing_name(self, ds: Dataset, src: Source, tmp_path: Path, op: str) -> None:
        """Reading a name not in the commit raises FileNotInCommitError naming name and commit."""
        digest = ds.commit("m", add_files=[src("a")])
        args: tuple[Any, ...] = ("nope.txt", tmp_path / "x") if op == "download_file" else (
            "nope.txt",)
        with pytest.raises(FileNotInCommitError, match=r"'nope\.txt'") as info:
            getattr(ds, op)(*args)
        assert isinstance(info.value, FileNotFoundError)
        assert digest[:12] in str(info.value)
        assert not (tmp_path / "x").exists()

    def test_read_on_empty_dataset(self, ds: Dataset) -> None:
        """read_file on a dataset without commits raises FileNotInCommitError saying so."""
        with pytest.raises(FileNotInCommitError, match="no commits"):
            ds.read_file("a.txt")

    def test_download_to_file_path(self, ds: Dataset, src: Source, tmp_path: Path) -> None:
        """download_file to a file path writes the content there (making folders), returns it."""
        ds.commit("m", add_files={"m.bin": src("m", b"\x00\x01")})
        target = tmp_path / "new" / "folder" / "renamed.bin"
        assert ds.download_file("m.bin", target) == str(target)
        assert target.read_bytes() == b"\x00\x01"
        assert sorted(p.name for p in target.parent.iterdir()) == ["renamed.bin"]

    def test_download_replaces_existing_file(self, ds: Dataset, src: Source,
                                             tmp_path: Path) -> None:
        """download_file over an existing file replaces its content."""
        ds.commit("m", add_files={"m.bin": src("m", b"new")})
        target = write(tmp_path, "m.bin", b"old content")
        ds.download_file("m.bin", str(target))
        assert target.read_bytes() == b"new"

    def test_download_into_existing_folder(self, ds: Dataset, src: Source,
                                           tmp_path: Path) -> None:
        """download_file into an existing folder keeps the file's name and sub-folders."""
        ds.commit("m", add_files={"sub/dir/x.bin": src("x", b"x")})
        out = tmp_path / "out"
        out.mkdir()
        path = ds.download_file("sub/dir/x.bin", out)
        assert Path(path) == (out / "sub" / "dir" / "x.bin").resolve()
        assert Path(path).read_bytes() == b"x"


# ---------------------------------------------------------------------------
class TestLocalFiles:
    """local_files(): lazy name -> local path mapping, removed on exit."""

    @pytest.fixture
    def committed(self, ds: Dataset, src: Source) -> Dataset:
        ds.commit("m", add_files={"model.pt": src("m", b"weights"),
                                  "cfg/config.json": src("c", b"{}")})
        return ds

    def test_nothing_downloaded_until_accessed(self, committed: Dataset) -> None:
        """Entering, listing, len and `in` download nothing; access downloads one file."""
        with committed.local_files() as files:
            assert isinstance(files, LocalFiles)
            assert sorted(files) == ["cfg/config.json", "model.pt"]
            assert len(files) == 2
            assert "model.pt" in files
            assert "nope" not in files
            assert files.downloaded() == {}
            assert [p for p in files.folder.rglob("*") if p.is_file()] == []
            path = files["model.pt"]
            assert Path(path).read_bytes() == b"weights"
            assert Path(path).parent == files.folder.resolve()
            assert files.downloaded() == {"model.pt": path}
            assert [p.name for p in files.folder.rglob("*") if p.is_file()] == ["model.pt"]

    def test_access_is_cached_and_nested_names_work(self, committed: Dataset) -> None:
        """A second access returns the same path; nested names land in sub-folders."""
        with committed.local_files() as files:
            first = files["cfg/config.json"]
            assert files["cfg/config.json"] == first
            assert Path(first) == files.folder.resolve() / "cfg" / "config.json"
            assert Path(first).read_text() == "{}"

    def test_folder_removed_on_exit(self, committed: Dataset) -> None:
        """The temporary folder and every downloaded file are gone after the block."""
        with committed.local_files() as files:
            path = Path(files["model.pt"])
            folder = files.folder
        assert not path.exists()
        assert not folder.exists()

    def test_folder_removed_on_exception(self, committed: Dataset) -> None:
        """The folder is removed even when the block raises."""
        with pytest.raises(RuntimeError, match="boom"), committed.local_files() as files:
            folder = files.folder
            files["model.pt"]
            raise RuntimeError("boom")
        assert not folder.exists()

    def test_unknown_name(self, committed: Dataset) -> None:
        """An unknown name raises KeyError; get() returns None."""
        with committed.local_files() as files:
            with pytest.raises(KeyError):
                files["nope"]
            assert files.get("nope") is None

    def test_files_of_checked_out_commit(self, ds: Dataset, src: Source) -> None:
        """local_files gives the files of the checked-out commit."""
        first = ds.commit("v1", add_files={"m": src("m1", b"one")})
        ds.commit("v2", add_files={"m": src("m2", b"two")})
        ds.checkout(first)
        with ds.local_files() as files:
            assert Path(files["m"]).read_bytes() == b"one"

    def test_empty_dataset(self, ds: Dataset) -> None:
        """On a dataset without commits the mapping is empty."""
        with ds.local_files() as files:
            assert len(files) == 0
