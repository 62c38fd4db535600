"""Opening a Dataset and committing: adding and removing files, and the commits refused
before anything is written.

Part of the Dataset API tests (split by concern: ``test_dataset_*.py``). Every test
that touches storage takes ``registry_root`` (through ``ds``) and so runs once per
backend in ``roots.BACKENDS``; ``storage_free`` ones run on memory only.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem

from kirin import Dataset
from kirin.errors import (
    EmptyCommitError,
    FileNotInCommitError,
    InvalidInputError,
    InvalidNameError,
    KirinError,
    SourceNotFoundError,
)

from dataset_helpers import Source, sha
from roots import RegistryRoot


class TestOpen:
    """Dataset(root_dir, name, description, fs=..., **storage_options)."""

    def test_url_and_fs_object_open_the_same_registry(self, registry_root: RegistryRoot,
                                                      src: Source) -> None:
        """A dataset opened by URL and one opened by (path, fs object) share one history."""
        by_url = Dataset(registry_root.url, "ds")
        digest = by_url.commit("first", add_files=[src("a.txt")])
        by_fs = Dataset(registry_root.path, "ds", fs=registry_root.fs)
        assert by_fs.fs is registry_root.fs
        assert [c.hash for c in by_fs.history()] == [digest]
        assert by_fs.read_file("a.txt") == "content of a.txt"

    def test_local_root_as_str_path_and_file_url(self, tmp_path: Path, src: Source) -> None:
        """A local root given as str, pathlib.Path or file:// URL is the same registry."""
        root = tmp_path / "reg"
        digest = Dataset(str(root), "ds").commit("first", add_files=[src("a.txt")])
        for form in (root, str(root), f"file://{root}", LocalFileSystem()):
            opened = (Dataset(str(root), "ds", fs=form) if isinstance(form, LocalFileSystem)
                      else Dataset(form, "ds"))
            assert opened.current_commit is not None
            assert opened.current_commit.hash == digest
        assert Dataset(root, "ds").root_dir == str(root)

    def test_memory_url_root(self, src: Source) -> None:
        """A memory:// URL root works without an explicit filesystem."""
        url = "memory://kirin-tests-open/registry"
        try:
            ds = Dataset(url, "ds")
            ds.commit("first", add_files=[src("a.txt")])
            assert Dataset(url, "ds").list_files() == ["a.txt"]
        finally:
            fsspec.filesystem("memory").rm("/kirin-tests-open", recursive=True)

    def test_storage_options_reach_the_filesystem(self, tmp_path: Path) -> None:
        """Extra keyword arguments are passed to the fsspec filesystem."""
        ds = Dataset(f"file://{tmp_path}/reg", "ds", auto_mkdir=True)
        assert ds.fs.auto_mkdir is True
        mem = Dataset("memory://kirin-tests-opts/reg", "ds", kirin_test_option=1)
        assert mem.fs.storage_options["kirin_test_option"] == 1

    def test_description_is_kept_with_the_dataset(self, registry_root: RegistryRoot,
                                                  src: Source) -> None:
        """The description given at first commit is read back by a fresh instance."""
        ds = registry_root.dataset(description="Sentiment models")
        assert ds.description == "Sentiment models"
        assert registry_root.dataset().description == ""
        ds.commit("first", add_files=[src("a.txt")])
        assert registry_root.dataset().description == "Sentiment models"

    @pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b"\xff"])
    def test_unreadable_dataset_file_gives_empty_description(
            self, registry_root: RegistryRoot, src: Source, content: bytes) -> None:
        """A damaged dataset.json costs only the description; the history still opens."""
        registry_root.dataset(description="d").commit("m", add_files=[src("a")])
        registry_root.pipe(registry_root.join("datasets", "ds", "dataset.json"), content)
        fresh = registry_root.dataset()
        assert fresh.description == ""
        assert fresh.list_files() == ["a"]

    def test_opening_writes_nothing(self, registry_root: RegistryRoot) -> None:
        """Opening and reading an empty dataset creates no object in storage."""
        ds = registry_root.dataset()
        assert ds.is_empty()
        assert ds.history() == []
        assert ds.list_files() == []
        assert registry_root.objects(withdirs=True) == {}

    @pytest.mark.parametrize("name", ["", "../x", "a/b", ".", "..", "x\x00y", "x" * 500])
    @pytest.mark.storage_free
    def test_bad_dataset_name(self, registry_root: RegistryRoot, name: str) -> None:
        """An invalid dataset name raises InvalidNameError (a ValueError) on construction."""
        with pytest.raises(InvalidNameError):
            Dataset(registry_root.url, name)


# ---------------------------------------------------------------------------
class TestCommitAddFiles:
    """commit(add_files=...): the accepted forms of sources and names."""

    @pytest.mark.parametrize(
        "form",
        [
            pytest.param(lambda a, b: [str(a), str(b)], id="list-of-str"),
            pytest.param(lambda a, b: [a, b], id="list-of-Path"),
            pytest.param(lambda a, b: (a, str(b)), id="tuple-mixed"),
            pytest.param(lambda a, b: (p for p in (a, b)), id="generator"),
            pytest.param(lambda a, b: {"a.txt": a, "b.txt": str(b)}, id="mapping"),
        ],
    )
    def test_several_sources(self, ds: Dataset, src: Source,
                             form: Callable[[Path, Path], Any]) -> None:
        """Lists, tuples, generators of paths and {name: source} mappings all commit."""
        ds.commit("two files", add_files=form(src("a.txt"), src("b.txt")))
        assert ds.list_files() == ["a.txt", "b.txt"]
        assert ds.read_file("b.txt") == "content of b.txt"

    @pytest.mark.parametrize("as_path", [True, False], ids=["Path", "str"])
    def test_single_source(self, ds: Dataset, src: Source, as_path: bool) -> None:
        """A single path (str or Path) is one file stored under its base name."""
        path = src("deep/folder/model.pt", b"\x00w")
        ds.commit("one file", add_files=path if as_path else str(path))
        assert ds.list_files() == ["model.pt"]
        assert ds.get_file("model.pt").read_bytes() == b"\x00w"  # type: ignore[union-attr]

    def test_mapping_names_may_hold_folders(self, ds: Dataset, src: Source) -> None:
        """Mapping names like "sub/dir/x.bin" keep their folders."""
        ds.commit("nested", add_files={"sub/dir/x.bin": src("x.bin", b"x"),
                                       "sub/y.bin": src("y.bin", b"y"), "top": src("t")})
        assert ds.list_files() == ["sub/dir/x.bin", "sub/y.bin", "top"]
        assert ds.read_file("sub/dir/x.bin", "rb") == b"x"

    def test_fsspec_url_sources(self, ds: Dataset,
                                memory_source: Callable[[str, bytes], str]) -> None:
        """Sources given as fsspec URLs are read from their filesystem."""
        url = memory_source("remote/model.pt", b"remote weights")
        ds.commit("from URL", add_files=[url])
        ds.commit("from URL, named", add_files={"sub/cfg.json": memory_source("c", b"{}")})
        assert ds.list_files() == ["model.pt", "sub/cfg.json"]
        assert ds.read_file("model.pt", "rb") == b"remote weights"
        assert ds.read_file("sub/cfg.json") == "{}"

    def test_same_base_name_from_two_sources_is_an_error(
            self, ds: Dataset, src: Source, registry_root: RegistryRoot) -> None:
        """Two sources that would share a name raise an error naming both; nothing is written."""
        a, b = src("run1/model.pt", b"1"), src("run2/model.pt", b"2")
        with pytest.raises(InvalidInputError, match=r"model\.pt") as info:
            ds.commit("clash", add_files=[a, b])
        assert str(a) in str(info.value)
        assert str(b) in str(info.value)
        assert registry_root.objects() == {}

    def test_same_source_twice_is_one_file(self, ds: Dataset, src: Source) -> None:
        """The same source listed twice is stored once."""
        a = src("a.txt")
        ds.commit("twice", add_files=[a, str(a)])
        assert ds.list_files() == ["a.txt"]

    def test_one_source_under_two_names_is_one_blob(self, ds: Dataset, src: Source,
                                                    registry_root: RegistryRoot) -> None:
        """One source under two names gives two files sharing a single stored blob."""
        a = src("a.bin", b"shared")
        ds.commit("aliases", add_files={"x.bin": a, "y.bin": a})
        assert ds.get_file("x.bin").hash == ds.get_file("y.bin").hash  # type: ignore[union-attr]
        blobs = [k for k in registry_root.objects() if k.startswith("data/")]
        assert blobs == [f"data/{sha(b'shared')[:2]}/{sha(b'shared')[2:]}"]

    def test_readding_identical_content_is_a_new_commit(self, ds: Dataset,
                                                        src: Source) -> None:
        """Re-adding the same content (a promotion) makes a commit with new tags, same files."""
        model = src("model.pt", b"weights")
        first = ds.commit("dev", add_files=[model], tags=["dev"])
        second = ds.commit("promote", add_files=[model], tags=["production"])
        assert first != second
        diff = ds.compare_commits(first, second)
        assert diff["files_diff"] == {"added": [], "removed": [], "modified": []}
        assert diff["tags_diff"] == {"added": ["production"], "removed": ["dev"]}
        assert {n: f.hash for n, f in ds.get_commit(second).files.items()} == {  # type: ignore[union-attr]
            n: f.hash for n, f in ds.get_commit(first).files.items()}  # type: ignore[union-attr]

    def test_new_content_under_same_name_replaces_the_file(self, ds: Dataset,
                                                           src: Source) -> None:
        """Committing new content under an existing name replaces it in the snapshot."""
        first = ds.commit("v1", add_files={"m.pt": src("m1", b"one")})
        second = ds.commit("v2", add_files={"m.pt": src("m2", b"two")})
        assert ds.read_file("m.pt", "rb") == b"two"
        assert ds.compare_commits(first, second)["files_diff"]["modified"] == ["m.pt"]

    def test_files_accumulate_across_commits(self, ds: Dataset, src: Source) -> None:
        """Each commit is a full snapshot: files of earlier commits stay unless removed."""
        ds.commit("a", add_files=[src("a.txt")])
        ds.commit("b", add_files=[src("b.txt")])
        assert ds.list_files() == ["a.txt", "b.txt"]

    def test_empty_and_large_files(self, ds: Dataset, src: Source) -> None:
        """An empty file and one larger than the 1 MiB read chunk both round-trip."""
        big = bytes(range(256)) * (5 * 4096 + 7)  # about 5 MiB, not chunk-aligned
        ds.commit("sizes", add_files=[src("empty.bin", b""), src("big.bin", big)])
        assert ds.get_file("empty.bin").size == 0  # type: ignore[union-attr]
        assert ds.read_file("empty.bin", "rb") == b""
        assert ds.get_file("big.bin").size == len(big)  # type: ignore[union-attr]
        assert ds.read_file("big.bin", "rb") == big

    def test_unicode_name_is_stored_nfc_and_found_by_either_form(self, ds: Dataset,
                                                                 src: Source) -> None:
        """A name given in NFD is stored in NFC and can be looked up in either form."""
        nfd = unicodedata.normalize("NFD", "café.txt")
        nfc = unicodedata.normalize("NFC", "café.txt")
        ds.commit("accents", add_files={nfd: src("c.txt", b"cafe")})
        assert ds.list_files() == [nfc]
        commit = ds.current_commit
        assert commit is not None
        for name in (nfc, nfd):
            assert ds.has_file(name)
            assert ds.get_file(name) is not None
            assert ds.read_file(name, "rb") == b"cafe"
            assert commit.has_file(name)
            assert commit.get_file(name) is not None
            with ds.local_files() as files:
                assert name in files
                assert Path(files[name]).read_bytes() == b"cafe"
        ds.commit("remove by NFD", remove_files=[nfd])
        assert ds.list_files() == []

    @pytest.mark.parametrize("entry", [5, None, b"bytes.txt", 1.5])
    @pytest.mark.storage_free
    def test_non_path_entries_are_refused(self, ds: Dataset, entry: object) -> None:
        """An add_files entry that is not a path or URL raises InvalidInputError."""
        with pytest.raises(InvalidInputError, match="paths or URLs"):
            ds.commit("bad", add_files=[entry])  # type: ignore[list-item]


# ---------------------------------------------------------------------------
class TestCommitRemoveFiles:
    """commit(remove_files=...)."""

    @pytest.mark.parametrize("form", [["a.txt"], "a.txt", ("a.txt", "a.txt")],
                             ids=["list", "str", "repeated"])
    def test_remove(self, ds: Dataset, src: Source, form: Any) -> None:
        """remove_files (a list, a single name, or repeats) drops the names, keeps the rest."""
        ds.commit("two", add_files=[src("a.txt"), src("b.txt")])
        ds.commit("drop a", remove_files=form)
        assert ds.list_files() == ["b.txt"]

    def test_remove_and_add_in_one_commit(self, ds: Dataset, src: Source) -> None:
        """One commit may remove some names and add others."""
        ds.commit("two", add_files=[src("a.txt"), src("b.txt")])
        ds.commit("swap", add_files=[src("c.txt")], remove_files=["a.txt"])
        assert ds.list_files() == ["b.txt", "c.txt"]

    def test_remove_every_file(self, ds: Dataset, src: Source) -> None:
        """Removing the last file gives a commit with no files."""
        ds.commit("one", add_files=[src("a.txt")])
        ds.commit("none", remove_files=["a.txt"])
        assert ds.list_files() == []
        assert ds.current_commit is not None
        assert ds.current_commit.message == "none"

    def test_add_and_remove_same_name(self, ds: Dataset, src: Source,
                                      registry_root: RegistryRoot) -> None:
        """Adding and removing the same name in one commit raises, naming it."""
        ds.commit("one", add_files=[src("a.txt")])
        before = registry_root.objects()
        with pytest.raises(InvalidInputError, match=r"'a\.txt'.*both added and removed"):
            ds.commit("both", add_files=[src("a.txt")], remove_files=["a.txt"])
        assert registry_root.objects() == before

    @pytest.mark.parametrize("populated", [True, False], ids=["with-commit", "empty"])
    def test_remove_unknown_name(self, ds: Dataset, src: Source, populated: bool,
                                 registry_root: RegistryRoot) -> None:
        """Removing a name the commit does not have raises FileNotInCommitError naming it."""
        if populated:
            ds.commit("one", add_files=[src("a.txt")])
        before = registry_root.objects()
        with pytest.raises(FileNotInCommitError, match=r"'ghost\.txt'") as info:
            ds.commit("remove", add_files=[src("b.txt")], remove_files=["ghost.txt"])
        assert isinstance(info.value, FileNotFoundError)
        assert info.value.name == "ghost.txt"
        assert registry_root.objects() == before

    def test_remove_folder_then_add_file_of_that_name(self, ds: Dataset, src: Source) -> None:
        """Removing "a/b" and adding a file "a" in one commit is allowed."""
        ds.commit("folder", add_files={"a/b": src("b")})
        ds.commit("file", add_files={"a": src("a")}, remove_files=["a/b"])
        assert ds.list_files() == ["a"]


# ---------------------------------------------------------------------------
class TestCommitRefused:
    """commit() arguments that are refused before anything is written."""

    @pytest.mark.parametrize(
        ("add", "remove"),
        [(None, None), ([], None), ({}, None), (None, []), ([], [])],
    )
    @pytest.mark.storage_free
    def test_empty_commit(self, ds: Dataset, add: Any, remove: Any,
                          registry_root: RegistryRoot) -> None:
        """A commit with nothing to add or remove raises EmptyCommitError (a ValueError)."""
        with pytest.raises(EmptyCommitError) as info:
            ds.commit("nothing", add_files=add, remove_files=remove)
        assert isinstance(info.value, ValueError)
        assert registry_root.objects(withdirs=True) == {}

    @pytest.mark.parametrize("where", ["local", "url"])
    def test_missing_source_writes_nothing(self, ds: Dataset, src: Source, where: str,
                                           registry_root: RegistryRoot,
                                           workdir: Path) -> None:
        """A missing source raises SourceNotFoundError naming it, and nothing at all is written."""
        ds.commit("base", add_files=[src("a.txt")], metadata={"k": 1}, tags=["t"])
        before = registry_root.objects()
        missing = str(workdir / "nope.bin") if where == "local" else "memory://nope/x.bin"
        with pytest.raises(SourceNotFoundError) as info:
            ds.commit("more", add_files=[src("new.txt", b"fresh bytes"), missing])
        assert isinstance(info.value, FileNotFoundError)
        assert isinstance(info.value, KirinError)
        assert missing in str(info.value)
        assert registry_root.objects() == before
        assert len(registry_root.dataset().history()) == 1

    def test_missing_source_on_first_commit_writes_nothing(
            self, ds: Dataset, workdir: Path, registry_root: RegistryRoot) -> None:
        """A first commit with a missing source leaves the root without any object."""
        with pytest.raises(SourceNotFoundError):
            ds.commit("first", add_files=[workdir / "nope.bin"])
        assert registry_root.objects(withdirs=True) == {}
        assert ds.is_empty()

    def test_folder_as_source(self, ds: Dataset, workdir: Path,
                              registry_root: RegistryRoot) -> None:
        """A folder given as a source raises an error that says it is a folder."""
        (workdir / "models").mkdir()
        with pytest.raises(SourceNotFoundError, match="is a folder"):
            ds.commit("folder", add_files=[workdir / "models"])
        assert registry_root.objects() == {}

    @pytest.mark.parametrize("name", ["../x", "/abs", "a//b", "a/", "x\x00", "a\\b", ""])
    @pytest.mark.storage_free
    def test_bad_file_name(self, ds: Dataset, src: Source, name: str,
                           registry_root: RegistryRoot) -> None:
        """A mapping name that is not a safe relative name raises InvalidNameError."""
        with pytest.raises(InvalidNameError):
            ds.commit("bad", add_files={name: src("a.txt")})
        assert registry_root.objects() == {}

    @pytest.mark.parametrize("message", ["", "   ", "\n", None, 5])
    @pytest.mark.storage_free
    def test_message_required(self, ds: Dataset, src: Source, message: Any) -> None:
        """A missing, blank or non-string message raises InvalidInputError."""
        with pytest.raises(InvalidInputError, match="message"):
            ds.commit(message, add_files=[src("a.txt")])
        assert ds.is_empty()

    @pytest.mark.storage_free
    def test_file_and_folder_of_same_name_in_one_commit(self, ds: Dataset, src: Source,
                                                        registry_root: RegistryRoot) -> None:
        """"a" as a file and as the folder of "a/b" in one commit raises InvalidNameError."""
        with pytest.raises(InvalidNameError, match="'a'"):
            ds.commit("clash", add_files={"a": src("a"), "a/b": src("b")})
        assert registry_root.objects() == {}

    @pytest.mark.parametrize(("first", "second"), [("a", "a/b"), ("a/b", "a"),
                                                   ("x/y", "x/y/z")])
    def test_file_and_folder_clash_across_commits(self, ds: Dataset, src: Source,
                                                  registry_root: RegistryRoot,
                                                  first: str, second: str) -> None:
        """Adding a file whose name is a folder of an existing file (or vice versa) raises."""
        ds.commit("first", add_files={first: src("one")})
        before = registry_root.objects()
        with pytest.raises(InvalidNameError):
            ds.commit("second", add_files={second: src("two")})
        assert registry_root.objects() == before
