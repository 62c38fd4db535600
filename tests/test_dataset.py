"""The Dataset API on real storage, every public method and its errors.

Every test that touches storage takes ``registry_root`` and so runs once per
backend in ``roots.BACKENDS`` (local disk and ``memory://`` today).
"""

from __future__ import annotations

import dataclasses
import getpass
import hashlib
import itertools
import json
import re
import socket
import unicodedata
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem

import kirin.dataset
from kirin import Commit, Dataset, File, LocalFiles
from kirin._json import canonical_json
from kirin.errors import (
    AmbiguousRefError,
    CommitNotFoundError,
    CorruptObjectError,
    EmptyCommitError,
    FileNotInCommitError,
    InvalidInputError,
    InvalidMetadataError,
    InvalidNameError,
    InvalidTagError,
    KirinError,
    NotLatestCommitError,
    SourceNotFoundError,
    StorageUnavailableError,
)
from kirin.history import encode_record, make_record, record_hash, tree_hash
from kirin.store import Store

from conftest import write
from roots import RegistryRoot

HEX64 = re.compile(r"[0-9a-f]{64}")
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


# ---------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------
BAD_METADATA = [
    pytest.param({"s": {1, 2}}, "s", id="set"),
    pytest.param({"o": object()}, "o", id="object"),
    pytest.param({"acc": float("nan")}, "acc", id="nan"),
    pytest.param({"acc": float("inf")}, "acc", id="inf"),
    pytest.param({1: "x"}, "", id="non-str-key"),
    pytest.param({"b": b"raw"}, "b", id="bytes"),
    pytest.param({"hp": {"opt": {"lr": float("-inf")}}}, "hp.opt.lr", id="nested-inf"),
    pytest.param({"runs": [{"ok": 1}, {"when": datetime(2024, 1, 1)}]}, "runs[1].when",
                 marks=pytest.mark.every_backend, id="nested-in-list"),
]


class TestMetadata:
    """commit(metadata=...): plain JSON only, stored as given, never inherited."""

    def test_metadata_round_trips(self, ds: Dataset, src: Source) -> None:
        """Nested JSON metadata reads back equal; tuples come back as lists."""
        meta = {"framework": "pytorch", "accuracy": 0.87, "epochs": 10, "ok": True,
                "none": None, "hp": {"lr": 1e-3, "layers": [64, 32]}, "shape": (1, 2)}
        ds.commit("meta", add_files=[src("a")], metadata=meta)
        assert ds.current_commit.metadata == {**meta, "shape": [1, 2]}  # type: ignore[union-attr]
        reopened = reopen(ds).current_commit
        assert reopened is not None
        assert reopened.metadata["hp"]["layers"] == [64, 32]

    def test_metadata_and_tags_of_a_commit_can_be_reused(self, ds: Dataset,
                                                         src: Source) -> None:
        """A commit's (read-only) metadata and tags can be passed to a new commit."""
        old = ds.get_commit(ds.commit("dev", add_files=[src("m")],
                                      metadata={"acc": 0.9, "hp": {"xs": [1]}}, tags=["dev"]))
        assert old is not None
        ds.commit("promote", add_files=[src("m")], metadata=old.metadata,
                  tags=[*old.tags, "staging"])
        new = ds.current_commit
        assert new is not None
        assert new.metadata == {"acc": 0.9, "hp": {"xs": [1]}}
        assert new.tags == ["dev", "staging"]

    def test_metadata_is_copied(self, ds: Dataset, src: Source) -> None:
        """Changing the caller's dict after commit does not change the commit."""
        meta: dict[str, Any] = {"hp": {"lr": 1}}
        ds.commit("meta", add_files=[src("a")], metadata=meta)
        meta["hp"]["lr"] = 2
        assert ds.current_commit.metadata == {"hp": {"lr": 1}}  # type: ignore[union-attr]

    def test_no_metadata_is_empty(self, ds: Dataset, src: Source) -> None:
        """A commit without metadata has an empty metadata dict."""
        ds.commit("plain", add_files=[src("a")])
        assert ds.current_commit.metadata == {}  # type: ignore[union-attr]

    @pytest.mark.parametrize(("metadata", "path"), BAD_METADATA)
    @pytest.mark.storage_free
    def test_non_json_metadata_leaves_registry_untouched(
            self, ds: Dataset, src: Source, registry_root: RegistryRoot,
            metadata: Any, path: str) -> None:
        """Non-JSON metadata raises InvalidMetadataError naming the key path; storage is
        unchanged byte for byte and still reads."""
        first = ds.commit("good", add_files=[src("a.txt")], metadata={"k": 1})
        before = registry_root.objects()
        with pytest.raises(InvalidMetadataError) as info:
            ds.commit("bad", add_files=[src("b.txt")], metadata=metadata, tags=["x"])
        assert isinstance(info.value, ValueError)
        assert info.value.path == path
        if path:
            assert path in str(info.value)
        assert registry_root.objects() == before
        fresh = registry_root.dataset()
        assert [c.hash for c in fresh.history()] == [first]
        assert fresh.read_file("a.txt") == "content of a.txt"
        assert ds.commit("still works", add_files=[src("b.txt")])

    @pytest.mark.parametrize("metadata", [["a", 1], "text", 3])
    @pytest.mark.storage_free
    def test_metadata_must_be_a_mapping(self, ds: Dataset, src: Source,
                                        metadata: Any) -> None:
        """Metadata that is not a JSON object raises InvalidInputError."""
        with pytest.raises(InvalidInputError, match="mapping"):
            ds.commit("bad", add_files=[src("a")], metadata=metadata)

    def test_metadata_and_tags_are_not_inherited(self, ds: Dataset, src: Source) -> None:
        """A later commit without metadata or tags has none, and is not found by old tags."""
        prod = ds.commit("release", add_files=[src("m", b"1")], metadata={"acc": 0.9},
                         tags=["production", "v1"])
        later = ds.commit("later", add_files=[src("m", b"2")])
        commit = ds.get_commit(later)
        assert commit is not None
        assert commit.metadata == {}
        assert commit.tags == []
        assert [c.hash for c in ds.find_commits(tags=["production"])] == [prod]
        assert [c.hash for c in ds.find_commits(
            metadata_filter=lambda m: "acc" in m)] == [prod]


# ---------------------------------------------------------------------------
class TestTags:
    """commit(tags=...): non-empty strings, deduplicated, order kept."""

    @pytest.mark.parametrize(
        "tag",
        ["", "   ", " prod", "prod ", "a\nb", "tab\t", "esc\x1b[0m", "del\x7f", "c1\x85",
         5, None, b"prod", "x" * 257],
    )
    @pytest.mark.storage_free
    def test_invalid_tag(self, ds: Dataset, src: Source, registry_root: RegistryRoot,
                         tag: Any) -> None:
        """An empty, blank, padded, control-character, over-long or non-string tag is refused."""
        with pytest.raises(InvalidTagError) as info:
            ds.commit("tagged", add_files=[src("a")], tags=["ok", tag])
        assert isinstance(info.value, ValueError)
        assert registry_root.objects() == {}

    @pytest.mark.parametrize(
        ("tags", "stored"),
        [
            (["b", "a", "b", "a"], ["b", "a"]),
            ("production", ["production"]),
            (("v1.0", "baseline"), ["v1.0", "baseline"]),
            ([], []),
            (None, []),
            (["x" * 256, "模型", "v1.2.3-rc.1+build"], ["x" * 256, "模型", "v1.2.3-rc.1+build"]),
        ],
    )
    @pytest.mark.storage_free
    def test_tags_stored(self, ds: Dataset, src: Source, tags: Any, stored: list[str]) -> None:
        """Tags are deduplicated keeping first-seen order; a single string is one tag."""
        ds.commit("tagged", add_files=[src("a")], tags=tags)
        assert ds.current_commit.tags == stored  # type: ignore[union-attr]


# ---------------------------------------------------------------------------
@pytest.mark.storage_free
class TestAuthor:
    """Each commit records an author: argument, else KIRIN_AUTHOR, else user@host."""

    def test_argument_wins(self, ds: Dataset, src: Source) -> None:
        """author= is recorded (stripped) even when KIRIN_AUTHOR is set."""
        ds.commit("m", add_files=[src("a")], author="  ci-bot@runner ")
        assert ds.current_commit.author == "ci-bot@runner"  # type: ignore[union-attr]

    def test_environment(self, ds: Dataset, src: Source,
                         monkeypatch: pytest.MonkeyPatch) -> None:
        """Without author=, KIRIN_AUTHOR is recorded."""
        monkeypatch.setenv("KIRIN_AUTHOR", "alice@lab")
        ds.commit("m", add_files=[src("a")])
        assert ds.current_commit.author == "alice@lab"  # type: ignore[union-attr]

    @pytest.mark.parametrize("env", [None, "", "   "])
    def test_default_user_at_host(self, ds: Dataset, src: Source,
                                  monkeypatch: pytest.MonkeyPatch, env: str | None) -> None:
        """Without author= and with KIRIN_AUTHOR unset or blank, user@host is recorded."""
        if env is None:
            monkeypatch.delenv("KIRIN_AUTHOR")
        else:
            monkeypatch.setenv("KIRIN_AUTHOR", env)
        monkeypatch.setattr(getpass, "getuser", lambda: "bob")
        monkeypatch.setattr(socket, "gethostname", lambda: "box")
        ds.commit("m", add_files=[src("a")])
        assert ds.current_commit.author == "bob@box"  # type: ignore[union-attr]

    def test_unknown_user(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """When the user name cannot be found, "unknown@host" is used rather than failing."""
        monkeypatch.delenv("KIRIN_AUTHOR")

        def no_user() -> str:
            raise KeyError("getpwuid(): uid not found")

        monkeypatch.setattr(getpass, "getuser", no_user)
        monkeypatch.setattr(socket, "gethostname", lambda: "box")
        assert kirin.dataset.default_author() == "unknown@box"


# ---------------------------------------------------------------------------
RECORD_BASE: dict[str, Any] = {
    "seq": 1,
    "parent": "0" * 64,
    "snapshot": {"m.pt": ("a" * 64, 10)},
    "added": {"m.pt": ("a" * 64, 10)},
    "removed": [],
    "message": "msg",
    "metadata": {"acc": 0.9},
    "tags": ["v1"],
    "timestamp": datetime(2024, 1, 1, tzinfo=timezone.utc),
    "author": "a@b",
    "policy": None,
}


class TestCommitHash:
    """The commit hash covers parent, files, message, metadata, tags, timestamp, author."""

    def test_commit_returns_full_hash(self, ds: Dataset, src: Source) -> None:
        """commit() returns 64 lowercase hex digits, the hash of the new current commit."""
        digest = ds.commit("m", add_files=[src("a")])
        assert HEX64.fullmatch(digest)
        assert ds.current_commit is not None
        assert ds.current_commit.hash == digest

    def test_stored_record_hashes_to_its_hash(self, ds: Dataset, src: Source,
                                              registry_root: RegistryRoot) -> None:
        """The stored log record's content hashes to the returned commit hash."""
        digest = ds.commit("m", add_files=[src("a")], metadata={"x": [1]}, tags=["t"])
        record = json.loads(registry_root.cat(registry_root.log_path("ds", 0)))
        assert record["hash"] == digest == record_hash(record)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("message", "msg!"),
            ("metadata", {"acc": 0.91}),
            ("metadata", {"acc": 0.9, "extra": None}),
            ("tags", ["v2"]),
            ("tags", ["v1", "prod"]),
            ("author", "c@d"),
            ("timestamp", datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=timezone.utc)),
            ("parent", "1" * 64),
            ("parent", None),
            ("snapshot", {"m.pt": ("b" * 64, 10)}),
            ("snapshot", {"m.pt": ("a" * 64, 11)}),
            ("snapshot", {"n.pt": ("a" * 64, 10)}),
            ("added", {}),
            ("removed", ["old.pt"]),
            ("seq", 2),
            ("policy", "p" * 64),
        ],
    )
    def test_every_field_changes_the_hash(self, field: str, value: Any) -> None:
        """Two records differing in one field only have different hashes."""
        base = make_record(**RECORD_BASE)
        changed = make_record(**{**RECORD_BASE, field: value})
        assert HEX64.fullmatch(base["hash"])
        assert base["hash"] != changed["hash"]

    def test_hash_is_deterministic(self) -> None:
        """The same record fields always give the same hash (metadata key order aside)."""
        reordered = {**RECORD_BASE, "metadata": dict(reversed(list(
            {"b": 1, "a": 2}.items())))}
        again = {**RECORD_BASE, "metadata": {"a": 2, "b": 1}}
        assert make_record(**reordered)["hash"] == make_record(**again)["hash"]
        assert make_record(**RECORD_BASE)["hash"] == make_record(**RECORD_BASE)["hash"]


# ---------------------------------------------------------------------------
class TestCheckout:
    """checkout(ref): pin a commit by hash or unique prefix; no ref follows the newest."""

    def test_full_hash_and_unique_prefix(self, ds: Dataset, src: Source) -> None:
        """A full hash, a unique prefix, or an upper-case/padded hash all check out."""
        first, second = commit_n(ds, src, 2)
        for ref in (first, first[:12], first.upper(), f"  {first[:10]} "):
            assert ds.checkout(ref).hash == first
            assert ds.current_commit.hash == first  # type: ignore[union-attr]
            assert ds.read_file("f.txt") == "v0"
        assert ds.checkout(second[:7]).hash == second

    @pytest.mark.parametrize("ref", ["0" * 64, "deadbeef"])
    @pytest.mark.storage_free
    def test_unknown_ref(self, ds: Dataset, src: Source, ref: str) -> None:
        """An unknown hash raises CommitNotFoundError (a ValueError) naming the dataset."""
        digest = commit_n(ds, src, 1)[0]
        if digest.startswith(ref[:8]):
            pytest.skip("the random hash happens to start with the probe")
        with pytest.raises(CommitNotFoundError, match="'ds'") as info:
            ds.checkout(ref)
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, LookupError)
        assert info.value.dataset == "ds"
        assert ds.current_commit.hash == digest  # type: ignore[union-attr]

    @pytest.mark.parametrize("ref", ["", "xyz", "g123", "abc-def", "HEAD", "../x"])
    @pytest.mark.storage_free
    def test_non_hex_ref(self, ds: Dataset, src: Source, ref: str) -> None:
        """A ref that is not hex raises CommitNotFoundError saying so."""
        commit_n(ds, src, 1)
        with pytest.raises(CommitNotFoundError, match="not a commit hash"):
            ds.checkout(ref)

    def test_ambiguous_prefix(self, ds: Dataset, src: Source) -> None:
        """A prefix shared by several commits raises AmbiguousRefError listing all of them."""
        hashes = commit_n(ds, src, 17)  # 17 hashes, 16 first digits: two must share one
        by_first: dict[str, list[str]] = {}
        for h in hashes:
            by_first.setdefault(h[0], []).append(h)
        prefix, shared = next((k, v) for k, v in sorted(by_first.items()) if len(v) > 1)
        with pytest.raises(AmbiguousRefError) as info:
            ds.checkout(prefix)
        err = info.value
        assert isinstance(err, CommitNotFoundError)
        assert isinstance(err, ValueError)
        assert sorted(err.candidates) == sorted(shared)
        for candidate in shared:
            assert candidate[:16] in str(err)
        assert "ambiguous" in str(err)

    def test_no_argument_returns_to_latest(self, ds: Dataset, src: Source) -> None:
        """checkout() with no argument returns the newest commit and follows it."""
        first, second = commit_n(ds, src, 2)
        ds.checkout(first)
        assert ds.checkout().hash == second
        assert ds.current_commit.hash == second  # type: ignore[union-attr]

    def test_follows_commits_of_another_instance(self, registry_root: RegistryRoot,
                                                 src: Source) -> None:
        """An unpinned dataset sees commits that another Dataset instance makes."""
        reader, writer = registry_root.dataset(), registry_root.dataset()
        commit_n(writer, src, 1)
        first = reader.checkout().hash
        newer = writer.commit("from elsewhere", add_files={"g.txt": src("g")})
        assert reader.current_commit.hash == newer  # type: ignore[union-attr]
        assert reader.list_files() == ["f.txt", "g.txt"]
        reader.checkout(first)
        writer.commit("another", add_files={"h.txt": src("h")})
        assert reader.current_commit.hash == first  # type: ignore[union-attr]

    def test_checkout_on_empty_dataset(self, ds: Dataset) -> None:
        """checkout() on a dataset without commits raises CommitNotFoundError."""
        with pytest.raises(CommitNotFoundError, match="no commits"):
            ds.checkout()
        with pytest.raises(CommitNotFoundError):
            ds.checkout("abc")

    def test_commit_after_old_checkout_is_refused(self, ds: Dataset, src: Source,
                                                  registry_root: RegistryRoot) -> None:
        """commit() on an old checkout raises a ValueError saying it is not the latest and
        that checkout() returns to it; nothing is written."""
        first, second = commit_n(ds, src, 2)
        ds.checkout(first)
        before = registry_root.objects()
        with pytest.raises(NotLatestCommitError) as info:
            ds.commit("on old", add_files={"x": src("x")})
        assert isinstance(info.value, ValueError)
        message = str(info.value)
        assert "not the latest" in message
        assert "checkout()" in message
        assert (info.value.checked_out, info.value.latest) == (first, second)
        assert registry_root.objects() == before

    def test_commit_after_another_writer_moved_on(self, registry_root: RegistryRoot,
                                                  src: Source) -> None:
        """A pinned checkout that another writer has overtaken cannot be committed on."""
        mine, theirs = registry_root.dataset(), registry_root.dataset()
        head = commit_n(mine, src, 1)[0]
        mine.checkout(head)
        theirs.commit("theirs", add_files={"t": src("t")})
        with pytest.raises(NotLatestCommitError):
            mine.commit("mine", add_files={"m": src("m")})

    def test_commit_on_explicit_latest_checkout_is_allowed(self, ds: Dataset,
                                                           src: Source) -> None:
        """Checking out the newest commit by hash still allows committing."""
        head = commit_n(ds, src, 2)[-1]
        ds.checkout(head)
        new = ds.commit("on top", add_files={"x": src("x")})
        assert ds.get_commit(new).parent_hash == head  # type: ignore[union-attr]

    def test_after_commit_the_dataset_follows_latest(self, registry_root: RegistryRoot,
                                                     src: Source) -> None:
        """After checkout() and a commit, the dataset follows newer commits again."""
        ds, other = registry_root.dataset(), registry_root.dataset()
        first, _ = commit_n(ds, src, 2)
        ds.checkout(first)
        ds.checkout()
        mine = ds.commit("mine", add_files={"x": src("x")})
        assert ds.current_commit.hash == mine  # type: ignore[union-attr]
        theirs = other.commit("theirs", add_files={"y": src("y")})
        assert ds.current_commit.hash == theirs  # type: ignore[union-attr]


# ---------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------
class TestHistory:
    """history, get_commit, get_commits."""

    def test_history_newest_first(self, ds: Dataset, src: Source) -> None:
        """history() lists every commit newest first; limit keeps the newest ones."""
        hashes = commit_n(ds, src, 5)
        assert [c.hash for c in ds.history()] == hashes[::-1]
        assert [c.hash for c in ds.history(limit=2)] == hashes[:2:-1]
        assert [c.hash for c in ds.history(limit=99)] == hashes[::-1]
        assert ds.history(limit=0) == []
        assert [c.hash for c in ds.get_commits()] == hashes[::-1]

    def test_history_is_independent_of_checkout(self, ds: Dataset, src: Source) -> None:
        """history() lists every commit even when an old one is checked out."""
        hashes = commit_n(ds, src, 3)
        ds.checkout(hashes[0])
        assert len(ds.history()) == 3

    def test_history_of_another_instance(self, registry_root: RegistryRoot,
                                         src: Source) -> None:
        """A fresh instance reads the same history from storage, equal commit by commit."""
        ds = registry_root.dataset()
        commit_n(ds, src, 3, metadata={"a": 1}, tags=["t"])
        fresh = registry_root.dataset().history()
        assert [c.to_dict() for c in fresh] == [c.to_dict() for c in ds.history()]

    def test_get_commit(self, ds: Dataset, src: Source) -> None:
        """get_commit takes a full hash or unique prefix; unknown or non-hex refs give None."""
        first, _ = commit_n(ds, src, 2)
        assert ds.get_commit(first).hash == first  # type: ignore[union-attr]
        assert ds.get_commit(first[:10]).hash == first  # type: ignore[union-attr]
        missing = "f" * 64 if not first.startswith("f") else "e" * 64
        assert ds.get_commit(missing) is None
        assert ds.get_commit("not-hex") is None

    def test_get_commit_ambiguous(self, ds: Dataset, src: Source) -> None:
        """get_commit with an ambiguous prefix raises AmbiguousRefError, not None."""
        hashes = commit_n(ds, src, 17)
        firsts = [h[0] for h in hashes]
        prefix = next(c for c in firsts if firsts.count(c) > 1)
        with pytest.raises(AmbiguousRefError):
            ds.get_commit(prefix)


class TestFindCommits:
    """find_commits(tags=..., metadata_filter=..., limit=...)."""

    @pytest.fixture
    def hashes(self, ds: Dataset, src: Source) -> list[str]:
        specs = [
            ({"acc": 0.80, "fw": "pytorch"}, ["baseline", "v1.0"]),
            ({"acc": 0.92, "fw": "pytorch"}, ["v2.0", "production"]),
            ({"acc": 0.95, "fw": "jax"}, ["dev"]),
            ({"acc": 0.91, "fw": "pytorch"}, ["v2.1", "production"]),
            ({}, []),
        ]
        return [ds.commit(f"c{i}", add_files={"m": src("m", str(i))}, metadata=meta, tags=tags)
                for i, (meta, tags) in enumerate(specs)]

    def test_by_tag_newest_first(self, ds: Dataset, hashes: list[str]) -> None:
        """Commits carrying the tag are returned newest first."""
        assert [c.hash for c in ds.find_commits(tags=["production"])] == [hashes[3], hashes[1]]

    def test_all_tags_must_match(self, ds: Dataset, hashes: list[str]) -> None:
        """With several tags, only commits carrying every one of them match."""
        assert [c.hash for c in ds.find_commits(tags=["v2.0", "production"])] == [hashes[1]]
        assert ds.find_commits(tags=["v2.0", "dev"]) == []
        assert ds.find_commits(tags=["nope"]) == []

    def test_single_tag_string(self, ds: Dataset, hashes: list[str]) -> None:
        """A single tag given as a string is one tag, not a sequence of characters."""
        assert [c.hash for c in ds.find_commits(tags="production")] == [hashes[3], hashes[1]]

    def test_metadata_filter(self, ds: Dataset, hashes: list[str]) -> None:
        """metadata_filter receives each commit's metadata; matches come newest first."""
        found = ds.find_commits(metadata_filter=lambda m: m.get("acc", 0) > 0.9)
        assert [c.hash for c in found] == [hashes[3], hashes[2], hashes[1]]

    def test_tags_and_filter_and_limit(self, ds: Dataset, hashes: list[str]) -> None:
        """Tags and filter combine; limit caps the number returned (newest kept)."""
        both = ds.find_commits(tags=["production"],
                               metadata_filter=lambda m: m["fw"] == "pytorch", limit=1)
        assert [c.hash for c in both] == [hashes[3]]
        assert [c.hash for c in ds.find_commits(limit=2)] == [hashes[4], hashes[3]]
        assert ds.find_commits(limit=0) == []

    def test_no_criteria_returns_everything(self, ds: Dataset, hashes: list[str]) -> None:
        """Without criteria every commit is returned, newest first."""
        assert [c.hash for c in ds.find_commits()] == hashes[::-1]

    def test_filter_cannot_change_metadata(self, ds: Dataset, hashes: list[str]) -> None:
        """A filter that tries to modify the metadata gets a TypeError; nothing changes."""
        def meddle(m: Any) -> bool:
            m["acc"] = 1.0
            return True

        with pytest.raises(TypeError):
            ds.find_commits(metadata_filter=meddle)
        assert ds.get_commit(hashes[0]).metadata["acc"] == 0.80  # type: ignore[union-attr]


class TestCompareCommits:
    """compare_commits(a, b): metadata, tags and files differences."""

    def test_diff(self, ds: Dataset, src: Source) -> None:
        """Added, removed and changed keys, tags and files are reported from a to b."""
        a = ds.commit("a", add_files={"keep": src("k"), "gone": src("g"), "mod": src("m", "1")},
                      metadata={"acc": 0.8, "hp": {"lr": 0.1, "bs": 32}, "old": 1, "flag": 1},
                      tags=["baseline", "v1"])
        b = ds.commit("b", add_files={"mod": src("m", "2"), "new": src("n")},
                      remove_files=["gone"],
                      metadata={"acc": 0.9, "hp": {"lr": 0.01, "bs": 32}, "extra": [1],
                                "flag": True},
                      tags=["v1", "production"])
        diff = ds.compare_commits(a[:10], b[:10])
        assert diff["commit1"] == {"hash": a[:8], "message": "a"}
        assert diff["commit2"] == {"hash": b[:8], "message": "b"}
        assert diff["metadata_diff"] == {
            "added": {"extra": [1]},
            "removed": {"old": 1},
            "changed": {
                "acc": {"old": 0.8, "new": 0.9},
                "hp": {"old": {"lr": 0.1, "bs": 32}, "new": {"lr": 0.01, "bs": 32}},
                "flag": {"old": 1, "new": True},
            },
        }
        assert diff["metadata_diff_paths"] == {
            "added": {"extra": [1]},
            "removed": {"old": 1},
            "changed": {"acc": {"old": 0.8, "new": 0.9},
                        "hp.lr": {"old": 0.1, "new": 0.01},
                        "flag": {"old": 1, "new": True}},
        }
        assert diff["tags_diff"] == {"added": ["production"], "removed": ["baseline"]}
        assert diff["files_diff"] == {"added": ["new"], "removed": ["gone"],
                                      "modified": ["mod"]}
        json.dumps(diff)

    def test_same_commit_has_no_differences(self, ds: Dataset, src: Source) -> None:
        """Comparing a commit with itself reports nothing."""
        digest = ds.commit("a", add_files=[src("a")], metadata={"x": {"y": 1}}, tags=["t"])
        diff = ds.compare_commits(digest, digest)
        for key in ("metadata_diff", "metadata_diff_paths"):
            assert diff[key] == {"added": {}, "removed": {}, "changed": {}}
        assert diff["tags_diff"] == {"added": [], "removed": []}
        assert diff["files_diff"] == {"added": [], "removed": [], "modified": []}

    def test_unknown_ref(self, ds: Dataset, src: Source) -> None:
        """An unknown ref raises CommitNotFoundError."""
        digest = commit_n(ds, src, 1)[0]
        with pytest.raises(CommitNotFoundError):
            ds.compare_commits(digest, "not-a-hash")


class TestInfo:
    """is_empty, get_info, to_dict, str and repr."""

    def test_is_empty(self, ds: Dataset, src: Source) -> None:
        """is_empty is True until the first commit."""
        assert ds.is_empty()
        commit_n(ds, src, 1)
        assert not ds.is_empty()

    def test_get_info(self, registry_root: RegistryRoot, src: Source) -> None:
        """get_info summarises name, description, root, counts and current vs latest commit."""
        ds = registry_root.dataset(description="desc")
        assert ds.get_info() == {
            "name": "ds", "description": "desc", "root_dir": registry_root.url,
            "commit_count": 0, "current_commit": None, "latest_commit": None,
            "file_count": 0, "total_size": 0}
        first = ds.commit("a", add_files={"a": src("a", b"12345")})
        second = ds.commit("b", add_files={"b": src("b", b"123")})
        ds.checkout(first)
        info = ds.get_info()
        assert (info["commit_count"], info["current_commit"], info["latest_commit"]) == (
            2, first, second)
        assert (info["file_count"], info["total_size"]) == (1, 5)
        assert ds.to_dict() == info
        json.dumps(info)

    def test_str_and_repr(self, registry_root: RegistryRoot, src: Source) -> None:
        """str shows name, commit count and current short hash; repr shows the arguments."""
        ds = registry_root.dataset(description="d")
        assert str(ds) == "Dataset(name='ds', commits=0, current=None)"
        digest = commit_n(ds, src, 1)[0]
        assert str(ds) == f"Dataset(name='ds', commits=1, current={digest[:8]})"
        assert repr(ds) == (f"Dataset(name='ds', description='d', "
                            f"root_dir={registry_root.url!r})")

    def test_repr_reads_the_stored_description_and_never_fails(
            self, registry_root: RegistryRoot, monkeypatch: pytest.MonkeyPatch) -> None:
        """repr of a dataset opened without a description shows the stored one (read once);
        with the storage unreachable it still returns, showing what is known."""
        registry_root.catalog().create_dataset("ds", description="stored")
        ds = registry_root.dataset()
        assert "description='stored'" in repr(ds)
        fresh = registry_root.dataset()

        def unreachable(path: str) -> bytes:
            raise StorageUnavailableError("not reachable", url=registry_root.url)
        monkeypatch.setattr(fresh._store, "read", unreachable)
        assert repr(fresh) == f"Dataset(name='ds', description='', root_dir={registry_root.url!r})"


# ---------------------------------------------------------------------------
class TestCommitObjects:
    """Commit values returned by the registry."""

    @pytest.fixture
    def commit(self, ds: Dataset, src: Source) -> Commit:
        ds.commit("m", add_files={"a.txt": src("a")},
                  metadata={"acc": 0.9, "hp": {"lr": 0.1}, "xs": [1, 2]}, tags=["v1", "prod"])
        assert ds.current_commit is not None
        return ds.current_commit

    @pytest.mark.storage_free
    def test_frozen(self, commit: Commit) -> None:
        """Setting any attribute of a commit raises FrozenInstanceError."""
        for attr in ("message", "metadata", "tags", "hash", "parent_hash", "timestamp",
                     "author", "files"):
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(commit, attr, None)

    @pytest.mark.parametrize(
        "mutate",
        [
            pytest.param(lambda c: c.metadata.__setitem__("acc", 1.0), id="metadata-set"),
            pytest.param(lambda c: c.metadata.pop("acc"), id="metadata-pop"),
            pytest.param(lambda c: c.metadata.update(x=1), id="metadata-update"),
            pytest.param(lambda c: c.metadata["hp"].__setitem__("lr", 1), id="nested-dict"),
            pytest.param(lambda c: c.metadata["xs"].append(3), id="nested-list"),
            pytest.param(lambda c: c.tags.append("x"), id="tags-append"),
            pytest.param(lambda c: c.tags.__setitem__(0, "x"), id="tags-set"),
            pytest.param(lambda c: c.tags.remove("v1"), id="tags-remove"),
            pytest.param(lambda c: c.files.pop("a.txt"), id="files-pop"),
            pytest.param(lambda c: c.files.__setitem__("b", None), id="files-set"),
        ],
    )
    @pytest.mark.storage_free
    def test_contents_read_only(self, commit: Commit, mutate: Callable[[Commit], Any]) -> None:
        """metadata, tags and files (also nested values) refuse changes with TypeError."""
        with pytest.raises(TypeError):
            mutate(commit)
        assert commit.metadata == {"acc": 0.9, "hp": {"lr": 0.1}, "xs": [1, 2]}
        assert commit.tags == ["v1", "prod"]
        assert list(commit.files) == ["a.txt"]

    @pytest.mark.storage_free
    def test_behaves_like_plain_json(self, commit: Commit) -> None:
        """metadata and tags compare equal to and serialise like plain dicts and lists."""
        assert commit.metadata == {"acc": 0.9, "hp": {"lr": 0.1}, "xs": [1, 2]}
        assert json.loads(json.dumps(commit.metadata)) == commit.metadata
        assert json.dumps(commit.tags) == '["v1", "prod"]'
        assert commit.metadata.get("missing", 0) == 0

    @pytest.mark.storage_free
    def test_to_dict(self, commit: Commit) -> None:
        """to_dict is plain, JSON-serialisable and holds every field and the files."""
        data = commit.to_dict()
        assert json.loads(json.dumps(data)) == data
        assert data["hash"] == commit.hash
        assert data["short_hash"] == commit.short_hash == commit.hash[:8]
        assert data["files"]["a.txt"]["size"] == len("content of a")
        assert data["author"] == "tester@example"
        assert datetime.fromisoformat(data["timestamp"]) == commit.timestamp

    def test_chain_and_timestamps(self, ds: Dataset, src: Source) -> None:
        """parent_hash links each commit to the previous; timestamps are aware and increase."""
        start = datetime.now(timezone.utc)
        hashes = commit_n(ds, src, 6)
        commits = ds.history()[::-1]
        assert [c.hash for c in commits] == hashes
        assert commits[0].parent_hash is None
        for older, newer in itertools.pairwise(commits):
            assert newer.parent_hash == older.hash
            assert newer.timestamp > older.timestamp
        for commit in commits:
            assert commit.timestamp.tzinfo is not None
            assert commit.timestamp.utcoffset() == timedelta(0)
            assert start - timedelta(seconds=5) < commit.timestamp
            assert commit.timestamp < datetime.now(timezone.utc) + timedelta(seconds=5)

    def test_timestamps_increase_even_if_clock_goes_back(
            self, ds: Dataset, src: Source, monkeypatch: pytest.MonkeyPatch) -> None:
        """A clock that jumps backwards still gives strictly increasing timestamps."""
        first = commit_n(ds, src, 1)[0]

        class PastClock(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> Any:
                return datetime(2000, 1, 1, tzinfo=timezone.utc)

        monkeypatch.setattr(kirin.dataset, "datetime", PastClock)
        second = ds.commit("later", add_files={"g": src("g")})
        old, new = ds.get_commit(first), ds.get_commit(second)
        assert old is not None
        assert new is not None
        assert new.timestamp > old.timestamp

    def test_commits_from_two_instances_are_equal(self, registry_root: RegistryRoot,
                                                  src: Source) -> None:
        """The same commit read by two Dataset instances compares equal."""
        ds = registry_root.dataset()
        digest = commit_n(ds, src, 1)[0]
        assert registry_root.dataset().get_commit(digest) == ds.get_commit(digest)


# ---------------------------------------------------------------------------
CONTENT = b"model weights, version one. " * 100

#: One damage per branch of the verifying reader (store._VerifyingReader, Store.open_blob):
#: different bytes of the right size fail on the hash, fewer bytes on the size at the
#: end (an emptied blob ends the same way, at the first read), more bytes as soon as
#: they pass the recorded size, and a deleted blob when it is opened.
DAMAGE: list[Any] = [
    pytest.param(lambda b: bytes(x ^ 0x20 for x in b), id="overwritten-same-size"),
    pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
    pytest.param(lambda b: b + b"\x00extra", id="appended"),
    pytest.param(None, id="deleted"),
]


def _read_bytes(ds: Dataset, name: str, out: Path) -> object:
    return ds.get_file(name).read_bytes()  # type: ignore[union-attr]


def _open_file_text(ds: Dataset, name: str, out: Path) -> object:
    with ds.open_file(name, "r") as stream:
        return stream.read()


def _download_file(ds: Dataset, name: str, out: Path) -> object:
    return ds.download_file(name, out / "model.bin")


def _local_files(ds: Dataset, name: str, out: Path) -> object:
    with ds.local_files() as files:
        try:
            return files[name]
        finally:
            assert [p for p in files.folder.rglob("*") if p.is_file()] == []


#: One reader per way the damage travels to the caller: the whole content through
#: File.open (read_file, read_file "rb", open_file "rb" and File.read_bytes are that
#: same stream), a text stream wrapped around it, download_blob writing a local file
#: (download_file into a folder and File.download_to end there too), and LocalFiles,
#: which must also leave no file behind.
READERS = [_read_bytes, _open_file_text, _download_file, _local_files]


class TestCorruptBlob:
    """A blob damaged in storage is an error naming file and commit, never wrong bytes."""

    @pytest.mark.parametrize("damage", DAMAGE)
    @pytest.mark.parametrize("reader", READERS, ids=lambda f: f.__name__.strip("_"))
    def test_damaged_blob_is_detected(self, ds: Dataset, src: Source, tmp_path: Path,
                                      registry_root: RegistryRoot,
                                      reader: Callable[[Dataset, str, Path], object],
                                      damage: Callable[[bytes], bytes] | None) -> None:
        """Every way of reading a damaged blob raises CorruptObjectError naming the file and
        the commit, and no download target is left behind."""
        digest = ds.commit("m", add_files={"model.bin": src("m", CONTENT)})
        blob = registry_root.blob_path(sha(CONTENT))
        assert registry_root.cat(blob) == CONTENT
        if damage is None:
            registry_root.rm(blob)
        else:
            registry_root.pipe(blob, damage(CONTENT))
        out = tmp_path / "out"
        out.mkdir()
        with pytest.raises(CorruptObjectError) as info:
            reader(ds, "model.bin", out)
        err = info.value
        assert isinstance(err, OSError)
        assert err.file == "model.bin"
        assert err.commit == digest
        assert "'model.bin'" in str(err)
        assert digest[:12] in str(err)
        assert list(out.rglob("*")) == []

    def test_other_files_still_read(self, ds: Dataset, src: Source,
                                    registry_root: RegistryRoot) -> None:
        """Damage to one blob does not affect reading the other files."""
        ds.commit("m", add_files={"bad": src("b", CONTENT), "good": src("g", b"fine")})
        registry_root.pipe(registry_root.blob_path(sha(CONTENT)), b"junk")
        assert ds.read_file("good") == "fine"
        with pytest.raises(CorruptObjectError):
            ds.read_file("bad")


# ---------------------------------------------------------------------------
RECORD_DAMAGE: list[Any] = [
    pytest.param(lambda b: b.replace(b'"message":"commit', b'"message":"cOmmit'),
                 id="edited-message"),
    pytest.param(lambda b: b.replace(b'"v1"', b'"v2"', 1), id="edited-tag"),
    pytest.param(lambda b: b[: len(b) // 2], marks=pytest.mark.every_backend, id="truncated"),
    pytest.param(lambda b: b[:-3], id="truncated-end"),
    pytest.param(lambda b: b"", marks=pytest.mark.every_backend, id="emptied"),
    pytest.param(lambda b: b"\xff" + b[1:], id="not-utf8"),
    pytest.param(lambda b: b"[]", id="not-an-object"),
    pytest.param(lambda b: b.replace(b'"kirin":1', b'"kirin":99'), id="unknown-version"),
]


class TestCorruptRecord:
    """A damaged commit record stops the history from opening, naming the object."""

    @pytest.mark.parametrize("damage", RECORD_DAMAGE)
    @pytest.mark.parametrize("seq", [0, 1, 2])
    @pytest.mark.storage_free
    def test_damaged_record(self, ds: Dataset, src: Source, registry_root: RegistryRoot,
                            damage: Callable[[bytes], bytes], seq: int) -> None:
        """Opening a history with a damaged record raises CorruptObjectError naming its path;
        committing on it is refused and writes nothing."""
        commit_n(ds, src, 3, tags=["v1"])
        path = registry_root.log_path("ds", seq)
        original = registry_root.cat(path)
        damaged = damage(original)
        assert damaged != original
        registry_root.pipe(path, damaged)
        fresh = registry_root.dataset()
        with pytest.raises(CorruptObjectError) as info:
            fresh.history()
        assert info.value.path == path
        assert path in str(info.value)
        before = registry_root.objects()
        with pytest.raises(CorruptObjectError):
            registry_root.dataset().commit("on broken", add_files={"x": src("x")})
        assert registry_root.objects() == before

    def test_deleted_record_is_not_a_silent_truncation(
            self, ds: Dataset, src: Source, registry_root: RegistryRoot) -> None:
        """A log entry missing before later ones is reported, not taken as the end."""
        commit_n(ds, src, 3)
        registry_root.rm(registry_root.log_path("ds", 1))
        with pytest.raises(CorruptObjectError):
            registry_root.dataset().history()


def forge(root: RegistryRoot, seq: int, mutate: Callable[[dict[str, Any]], object]) -> str:
    """Rewrite log record ``seq`` with ``mutate`` applied and its hash recomputed.

    This is what a buggy or malicious writer with bucket access could store:
    a record whose hash matches its (bad) content.
    """
    path = root.log_path("ds", seq)
    record = json.loads(root.cat(path))
    mutate(record)
    record["hash"] = record_hash(record)
    root.pipe(path, encode_record(record))
    return path


def _set(key: str, value: object) -> Callable[[dict[str, Any]], object]:
    return lambda r: r.__setitem__(key, value)


class TestForgedRecord:
    """A record with a valid hash but invalid content is still refused."""

    @pytest.mark.parametrize(
        ("mutate", "message"),
        [
            pytest.param(lambda r: r.pop("author"), "missing author", id="missing-key"),
            pytest.param(_set("kirin", 2), "format version", id="future-format"),
            pytest.param(_set("seq", 7), "#7", marks=pytest.mark.every_backend, id="wrong-seq"),
            pytest.param(_set("parent", "0" * 64), "history is broken", id="wrong-parent"),
            pytest.param(_set("changes", []), "changes", id="changes-not-object"),
            pytest.param(lambda r: r["changes"]["add"]["f.txt"].pop("size"), "size",
                         id="file-without-size"),
            pytest.param(_set("tags", "v1"), "tags", id="tags-not-list"),
            pytest.param(_set("tags", ["v1", 2]), "tags", id="tag-not-str"),
            pytest.param(_set("metadata", [1]), "metadata", id="metadata-not-object"),
            pytest.param(_set("timestamp", "yesterday"), "timestamp", id="bad-timestamp"),
        ],
    )
    @pytest.mark.storage_free
    def test_malformed_record(self, ds: Dataset, src: Source, registry_root: RegistryRoot,
                              mutate: Callable[[dict[str, Any]], object],
                              message: str) -> None:
        """Opening the history raises CorruptObjectError saying what is wrong."""
        commit_n(ds, src, 3)
        forge(registry_root, 2, mutate)
        with pytest.raises(CorruptObjectError, match=re.escape(message)):
            registry_root.dataset().history()

    def test_snapshot_not_matching_tree(self, ds: Dataset, src: Source,
                                        registry_root: RegistryRoot) -> None:
        """A record whose files disagree with its tree hash fails when its files are read."""
        commit_n(ds, src, 2)
        forge(registry_root, 1, lambda r: r["changes"]["add"]["f.txt"].update(size=999))
        fresh = registry_root.dataset()
        assert len(fresh.history()) == 2
        with pytest.raises(CorruptObjectError, match="tree hash"):
            fresh.list_files()

    @pytest.mark.parametrize("name", [
        pytest.param("../escape.txt", marks=pytest.mark.every_backend),
        "<absolute>", "a/../../up.txt", "nul\x00.txt"])
    @pytest.mark.storage_free
    def test_stored_name_never_escapes(self, ds: Dataset, src: Source, tmp_path: Path,
                                       registry_root: RegistryRoot, name: str) -> None:
        """A crafted file name in a stored record is never written outside the target folder."""
        if name == "<absolute>":
            name = str(tmp_path / "abs.txt")
        ds.commit("m", add_files={"a.txt": src("a", b"payload")})

        def rename(record: dict[str, Any]) -> None:
            entry = record["changes"]["add"].pop("a.txt")
            record["changes"]["add"][name] = entry
            record["tree"] = tree_hash({name: (entry["hash"], entry["size"])})

        forge(registry_root, 0, rename)
        out = tmp_path / "sandbox" / "out"
        out.mkdir(parents=True)
        before = sorted(p for p in tmp_path.rglob("*") if "store-" not in str(p))
        fresh = registry_root.dataset()
        with pytest.raises((InvalidNameError, CorruptObjectError)):
            fresh.download_file(name, out)
        with pytest.raises((InvalidNameError, CorruptObjectError)), \
                fresh.local_files() as files:
            files[name]
        after = sorted(p for p in tmp_path.rglob("*") if "store-" not in str(p))
        assert after == before


# ---------------------------------------------------------------------------
#: The stored objects of a 250-commit dataset, built once per backend and copied.
_LONG: dict[str, tuple[list[str], dict[str, bytes]]] = {}
LONG = 250


@pytest.fixture
def long_history(registry_root: RegistryRoot, src: Source) -> list[str]:
    """Dataset ``ds`` with 250 commits on this root; returns their hashes, oldest first."""
    if registry_root.backend not in _LONG:
        ds = registry_root.dataset()
        hashes = [ds.commit(f"c{i}", add_files={"f": src("f", str(i))}, metadata={"i": i},
                            tags=["even"] if i % 2 == 0 else [])
                  for i in range(LONG)]
        objects = {rel: registry_root.cat(registry_root.join(rel))
                   for rel in registry_root.objects()}
        _LONG[registry_root.backend] = (hashes, objects)
        return hashes
    hashes, objects = _LONG[registry_root.backend]
    for rel, data in objects.items():
        registry_root.pipe(registry_root.join(rel), data)
    return hashes


def fresh_hashes(root: RegistryRoot) -> list[str]:
    return [c.hash for c in root.dataset().history()][::-1]


def rechain(records: list[dict[str, Any]], at: int) -> list[dict[str, Any]]:
    """The records with record ``at`` altered and every later one re-hashed to chain on."""
    out = [dict(r) for r in records]
    out[at]["message"] = "forged"
    for i in range(at, len(out)):
        if i > 0 and i != at:
            out[i]["parent"] = out[i - 1]["hash"]
        out[i]["hash"] = record_hash(out[i])
    return out


class TestCheckpoints:
    """Checkpoints speed up opening and never hide or alter commits."""

    def test_checkpoints_written_and_used(self, registry_root: RegistryRoot,
                                          long_history: list[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
        """With 250 commits, checkpoints end at 99 and 199; reopening reads the same history
        without reading every log entry."""
        folder = registry_root.join("datasets", "ds", "checkpoints")
        names = sorted(p.rsplit("/", 1)[-1] for p in registry_root.fs.ls(folder, detail=False))
        assert names == [f"{99:020d}.json", f"{199:020d}.json"]

        read: list[str] = []
        store_cls = Store
        real_read, real_many = store_cls.read, store_cls.read_many

        def spy_read(self: Any, path: str) -> bytes | None:
            read.append(path)
            return real_read(self, path)

        def spy_many(self: Any, paths: Any) -> Any:
            read.extend(paths)
            return real_many(self, paths)

        monkeypatch.setattr(store_cls, "read", spy_read)
        monkeypatch.setattr(store_cls, "read_many", spy_many)
        assert fresh_hashes(registry_root) == long_history
        log_reads = {p for p in read if "/log/" in p}
        assert len(log_reads) < 100

    def test_checkpoint_is_the_canonical_json_of_its_log_records(
            self, registry_root: RegistryRoot, long_history: list[str]) -> None:
        """A checkpoint (assembled from the records' stored text) is byte for byte the
        canonical JSON of {first, kirin, last, records}, its records equal to the log's."""
        data = registry_root.cat(registry_root.checkpoint_path("ds", 199))
        body = json.loads(data)
        assert data == (canonical_json(body) + "\n").encode()
        assert (body["first"], body["last"], body["kirin"]) == (100, 199, 1)
        log = [json.loads(registry_root.cat(registry_root.join(
            "datasets", "ds", "log", f"{seq:020d}.json"))) for seq in range(100, 200)]
        assert body["records"] == log
        assert [r["hash"] for r in log] == long_history[100:200]

    def test_reopened_history_matches(self, registry_root: RegistryRoot,
                                      long_history: list[str]) -> None:
        """A reopened dataset has the same commits, files and queries as the writer."""
        ds = registry_root.dataset()
        assert fresh_hashes(registry_root) == long_history
        assert ds.read_file("f") == str(LONG - 1)
        assert len(ds.find_commits(tags=["even"])) == LONG // 2
        assert ds.checkout(long_history[150]).metadata == {"i": 150}
        assert ds.read_file("f") == "150"

    def test_commits_continue_after_reopening(self, registry_root: RegistryRoot,
                                              long_history: list[str], src: Source) -> None:
        """A reopened dataset commits on the true head."""
        new = registry_root.dataset().commit("next", add_files={"g": src("g")})
        assert fresh_hashes(registry_root) == [*long_history, new]

    @pytest.mark.parametrize("which", [[99], [199], [99, 199]])
    def test_deleted_checkpoint(self, registry_root: RegistryRoot, long_history: list[str],
                                which: list[int]) -> None:
        """Deleting checkpoints leaves the history identical (the log is read instead)."""
        for last in which:
            registry_root.rm(registry_root.checkpoint_path("ds", last))
        assert fresh_hashes(registry_root) == long_history

    @pytest.mark.parametrize(
        "damage",
        [
            pytest.param(lambda b: b"\x00garbage", id="garbage"),
            pytest.param(lambda b: b[: len(b) // 2], marks=pytest.mark.every_backend,
                         id="truncated"),
            pytest.param(lambda b: b"", id="emptied"),
            pytest.param(lambda b: b"{}", id="empty-object"),
            pytest.param(lambda b: b.replace(b'"message":"c1', b'"message":"X1', 1),
                         id="edited-record"),
            pytest.param(lambda b: b.replace(b'"first":', b'"first":1', 1), id="wrong-first"),
        ],
    )
    @pytest.mark.parametrize("last", [99, 199])
    @pytest.mark.storage_free
    def test_corrupt_checkpoint(self, registry_root: RegistryRoot, long_history: list[str],
                                damage: Callable[[bytes], bytes], last: int) -> None:
        """A damaged checkpoint is ignored: the history is identical."""
        path = registry_root.checkpoint_path("ds", last)
        original = registry_root.cat(path)
        registry_root.pipe(path, damage(original))
        assert registry_root.cat(path) != original
        assert fresh_hashes(registry_root) == long_history

    @pytest.mark.parametrize(("last", "forged_at"), [
        (99, 0), (99, 50), (99, 99), pytest.param(199, 100, marks=pytest.mark.every_backend),
        (199, 150)])
    @pytest.mark.storage_free
    def test_checkpoint_disagreeing_with_log(self, registry_root: RegistryRoot,
                                             long_history: list[str], last: int,
                                             forged_at: int) -> None:
        """A self-consistent checkpoint that tells another story than the log is ignored."""
        path = registry_root.checkpoint_path("ds", last)
        body = json.loads(registry_root.cat(path))
        first = body["first"]
        body["records"] = rechain(body["records"], forged_at - first)
        registry_root.pipe(path, json.dumps(body).encode())
        history = registry_root.dataset().history()
        assert [c.hash for c in history][::-1] == long_history
        assert all(c.message != "forged" for c in history)
