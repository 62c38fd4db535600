"""Damage in storage: a damaged blob, a damaged or deleted log record, and a forged record
with a valid hash; each is an error, never wrong data.

Part of the Dataset API tests (split by concern: ``test_dataset_*.py``). Every test
that touches storage takes ``registry_root`` (through ``ds``) and so runs once per
backend in ``roots.BACKENDS``; ``storage_free`` ones run on memory only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kirin import Dataset, layout
from kirin.errors import (
    CorruptObjectError,
    InvalidNameError,
)
from kirin.history import encode_record, record_hash, tree_hash

from dataset_helpers import Source, commit_n, sha
from roots import RegistryRoot

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



#: Over one kernel-copy block (sources.KERNEL_COPY_BLOCK): a local blob this large is
#: downloaded by copy_file_range while the copy is hashed, not by the reading loop.
LARGE = bytes(range(256)) * (36 * 1024) + b"tail"


class TestCorruptLargeLocalBlob:
    """The kernel-copy download of a large local blob judges the copy it hands out."""

    @pytest.mark.parametrize("damage", DAMAGE)
    @pytest.mark.parametrize("reader", [_download_file, _local_files],
                             ids=lambda f: f.__name__.strip("_"))
    def test_damaged_large_blob_is_detected_and_nothing_is_left(
            self, tmp_path: Path, reader: Callable[[Dataset, str, Path], object],
            damage: Callable[[bytes], bytes] | None) -> None:
        from kirin.sources import KERNEL_COPY_BLOCK

        assert len(LARGE) > KERNEL_COPY_BLOCK
        (tmp_path / "model.bin").write_bytes(LARGE)
        ds = Dataset(tmp_path / "reg", "ds")
        digest = ds.commit("m", add_files=[str(tmp_path / "model.bin")])
        blob = tmp_path / "reg" / layout.blob(sha(LARGE))
        assert blob.read_bytes() == LARGE
        if damage is None:
            blob.unlink()
        else:
            blob.write_bytes(damage(LARGE))
        out = tmp_path / "out"
        out.mkdir()
        with pytest.raises(CorruptObjectError) as info:
            reader(ds, "model.bin", out)
        assert info.value.file == "model.bin" and info.value.commit == digest
        assert list(out.rglob("*")) == []

    @pytest.mark.parametrize("reader", [_download_file, _local_files],
                             ids=lambda f: f.__name__.strip("_"))
    def test_an_intact_large_blob_arrives_whole(
            self, tmp_path: Path, reader: Callable[[Dataset, str, Path], object]) -> None:
        (tmp_path / "model.bin").write_bytes(LARGE)
        ds = Dataset(tmp_path / "reg", "ds")
        ds.commit("m", add_files=[str(tmp_path / "model.bin")])
        out = tmp_path / "out"
        out.mkdir()
        if reader is _local_files:
            with ds.local_files() as files:
                assert Path(files["model.bin"]).read_bytes() == LARGE
        else:
            assert Path(str(reader(ds, "model.bin", out))).read_bytes() == LARGE


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
            pytest.param(_set("kirin", 3), "format version", id="future-format"),
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
