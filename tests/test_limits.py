"""Big and odd inputs: each works, or is refused with a clear error naming a documented limit.

Sizes here are CI-friendly (a few seconds each). The measurements at full
scale (100,000 commits, larger snapshots) are made by ``scripts/limits_probe.py``
and recorded in ``docs/reliability.md``.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from kirin import Dataset
from kirin._json import MAX_METADATA_BYTES, canonical_json
from kirin.errors import InvalidInputError, InvalidMetadataError, InvalidNameError, InvalidTagError
from kirin.history import History, make_record
from kirin.inputs import MAX_AUTHOR_LENGTH, MAX_MESSAGE_LENGTH, MAX_TAG_LENGTH, MAX_TAGS
from kirin.journal import CHECKPOINT_EVERY, Journal
from kirin.naming import MAX_COMPONENT_BYTES, MAX_NAME_LENGTH
from kirin.store import Store

from conftest import write


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (empty if the folder does not exist)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def memory_root() -> Iterator[str]:
    """A fresh ``memory://`` registry root, removed afterwards."""
    prefix = f"/kirin-limits/{uuid.uuid4().hex}"
    yield f"memory:/{prefix}/registry"
    with contextlib.suppress(FileNotFoundError):
        MemoryFileSystem().rm(prefix, recursive=True)


# -- empty things ------------------------------------------------------------------------


def test_empty_file_and_empty_metadata_values_round_trip(root: Path, workdir: Path,
                                                         tmp_path: Path) -> None:
    """A 0-byte file and metadata of empty strings, objects, lists and keys are stored, read
    back exactly, queried, compared and verified."""
    empty = write(workdir, "empty.bin", b"")
    meta: dict[str, Any] = {"": "", "s": "", "o": {}, "l": [], "n": None, "deep": {"e": {}}}
    ds = Dataset(root, "ds")
    first = ds.commit("empty things", add_files=[empty], metadata=meta)
    second = ds.commit("nothing at all", add_files={"other.bin": empty}, metadata={})
    fresh = Dataset(root, "ds")
    got = fresh.get_commit(first)
    assert got is not None and canonical_json(got.metadata) == canonical_json(meta)
    assert fresh.current_commit is not None and fresh.current_commit.metadata == {}
    assert fresh.read_file("empty.bin", "rb") == b""
    assert [c.hash for c in fresh.find_commits(where="s == '' and exists(o)")] == [first]
    diff = fresh.compare_commits(first, second)
    assert diff["metadata_diff"]["removed"] == meta and diff["files_diff"]["added"] == [
        "other.bin"]
    with fresh.local_files() as files:
        assert Path(files["empty.bin"]).read_bytes() == b""
    out = tmp_path / "out"
    out.mkdir()
    assert Path(fresh.download_file("other.bin", out)).stat().st_size == 0
    report = fresh.verify()
    assert report.ok and report.blobs_checked == 1 and report.bytes_checked == 0


# -- metadata size -----------------------------------------------------------------------


def metadata_of_size(size: int, char: str = "a") -> dict[str, str]:
    """``{"x": "aaa…"}`` whose canonical JSON is exactly ``size`` bytes (``char`` of 1 or 2)."""
    width = len(char.encode("utf-8"))
    count, rest = divmod(size - len('{"x":""}'), width)
    return {"x": char * count + "b" * rest}


@pytest.mark.parametrize("char", ["a", "é"])
def test_metadata_limit_is_exact_and_counts_utf8_bytes(root: Path, workdir: Path,
                                                       char: str) -> None:
    """Metadata of exactly MAX_METADATA_BYTES (UTF-8, canonical JSON) is stored; one byte
    more is refused with the size and the limit, writing nothing."""
    src = write(workdir, "m.pt", b"m")
    at_limit = metadata_of_size(MAX_METADATA_BYTES, char)
    assert len(canonical_json(at_limit).encode("utf-8")) == MAX_METADATA_BYTES
    ds = Dataset(root, "ds")
    digest = ds.commit("at the limit", add_files=[src], metadata=at_limit)
    assert Dataset(root, "ds").get_commit(digest).metadata == at_limit  # type: ignore[union-attr]
    before = tree(root)
    over = metadata_of_size(MAX_METADATA_BYTES + 1, char)
    with pytest.raises(InvalidMetadataError) as info:
        ds.commit("over the limit", add_files=[src], metadata=over)
    assert f"{MAX_METADATA_BYTES + 1:,} bytes" in str(info.value)
    assert f"{MAX_METADATA_BYTES:,} bytes (1 MiB)" in str(info.value)
    assert tree(root) == before


def test_ten_megabytes_of_metadata_is_refused_quickly(root: Path, workdir: Path) -> None:
    """10 MB of metadata is refused in well under a second, naming size and limit; nothing
    at all is written."""
    src = write(workdir, "m.pt", b"m")
    huge = {"blob": "x" * 10_000_000, "list": list(range(1000))}
    started = time.perf_counter()
    with pytest.raises(InvalidMetadataError, match=r"too large: it is 10,00\d,\d{3} bytes"
                                                   r".* limit is 1,048,576 bytes"):
        Dataset(root, "ds").commit("huge", add_files=[src], metadata=huge)
    assert time.perf_counter() - started < 3
    assert not root.exists()


def test_promotion_cannot_grow_metadata_past_the_limit(root: Path, workdir: Path) -> None:
    """Metadata merged by promote() counts against the same limit, and a refused promotion
    writes nothing."""
    ds = Dataset(root, "ds")
    base = ds.commit("base", add_files=[write(workdir, "m.pt", b"m")],
                     metadata=metadata_of_size(MAX_METADATA_BYTES - 100))
    before = tree(root)
    with pytest.raises(InvalidMetadataError, match="too large"):
        ds.promote(base, ["production"], metadata={"notes": "y" * 200})
    assert tree(root) == before


# -- text fields -------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "limit"), [("message", MAX_MESSAGE_LENGTH),
                                              ("author", MAX_AUTHOR_LENGTH)])
def test_message_and_author_limits(root: Path, workdir: Path, field: str, limit: int) -> None:
    """A message or author of the maximum length is stored; one character more is refused
    with the limit named, writing nothing."""
    src = write(workdir, "m.pt", b"m")
    ds = Dataset(root, "ds")
    args: dict[str, Any] = {"message": "a message", "author": "someone"}
    args[field] = "w" * limit
    digest = ds.commit(add_files=[src], **args)
    stored = Dataset(root, "ds").get_commit(digest)
    assert stored is not None and getattr(stored, field) == "w" * limit
    before = tree(root)
    args[field] = "w" * (limit + 1)
    with pytest.raises(InvalidInputError, match=f"limit is {limit:,}"):
        ds.commit(add_files=[src], **args)
    assert tree(root) == before


def test_tag_limits(root: Path, workdir: Path) -> None:
    """A commit carries up to MAX_TAGS distinct tags of up to MAX_TAG_LENGTH characters
    (duplicates count once); more, or longer, is refused writing nothing."""
    src = write(workdir, "m.pt", b"m")
    ds = Dataset(root, "ds")
    many = [f"t{i}" for i in range(MAX_TAGS - 1)] + ["x" * MAX_TAG_LENGTH]
    digest = ds.commit("many tags", add_files=[src], tags=many + many)
    fresh = Dataset(root, "ds")
    assert fresh.get_commit(digest).tags == many  # type: ignore[union-attr]
    assert [c.hash for c in fresh.find_commits(tags=["t998", "x" * MAX_TAG_LENGTH])] == [digest]
    before = tree(root)
    with pytest.raises(InvalidTagError, match=f"at most {MAX_TAGS} tags"):
        ds.commit("too many tags", add_files=[src], tags=[*many, "one-more"])
    with pytest.raises(InvalidTagError, match=f"{MAX_TAG_LENGTH} characters"):
        ds.commit("too long a tag", add_files=[src], tags=["y" * (MAX_TAG_LENGTH + 1)])
    assert tree(root) == before


# -- names -------------------------------------------------------------------------------

LONGEST = "/".join(["a" * 255, "b" * 255, "c" * 255, "d" * 254, "z"])
WIDEST = "é" * 127 + "a"  # 255 bytes in UTF-8, 128 characters


def test_longest_names_are_stored_and_materialised(root: Path, workdir: Path,
                                                   tmp_path: Path) -> None:
    """A 1024-character name of 255-byte parts is committed, read, downloaded and
    materialised on local disk inside the target folder; a 255-byte part is stored and read."""
    assert len(LONGEST) == MAX_NAME_LENGTH
    assert len(WIDEST.encode("utf-8")) == MAX_COMPONENT_BYTES
    ds = Dataset(root, "ds")
    ds.commit("long names", add_files={LONGEST: write(workdir, "l", b"long"),
                                        WIDEST: write(workdir, "w", b"wide")})
    fresh = Dataset(root, "ds")
    assert sorted(fresh.list_files()) == sorted([LONGEST, WIDEST])
    assert fresh.read_file(WIDEST, "rb") == b"wide"
    out = tmp_path / "out"
    out.mkdir()
    saved = Path(fresh.download_file(LONGEST, out))
    assert saved == (out / LONGEST).resolve() and saved.read_bytes() == b"long"
    with fresh.local_files() as files:
        local = Path(files[LONGEST])
        assert local.read_bytes() == b"long" and files.folder.resolve() in local.parents


def test_a_file_with_a_255_byte_name_can_be_downloaded(root: Path, workdir: Path,
                                                        tmp_path: Path) -> None:
    """A file whose name is one 255-byte part is downloaded and materialised like any other."""
    ds = Dataset(root, "ds")
    ds.commit("wide name", add_files={WIDEST: write(workdir, "w", b"wide")})
    out = tmp_path / "out"
    out.mkdir()
    assert Path(ds.download_file(WIDEST, out)).read_bytes() == b"wide"
    with ds.local_files() as files:
        assert Path(files[WIDEST]).read_bytes() == b"wide"


@pytest.mark.parametrize(("name", "says"), [
    pytest.param(LONGEST + "z", f"longer than {MAX_NAME_LENGTH} characters", id="1025-chars"),
    pytest.param("é" * 128, f"longer than {MAX_COMPONENT_BYTES} bytes", id="256-byte-part"),
    pytest.param("ok/" + "x" * 256, f"longer than {MAX_COMPONENT_BYTES} bytes",
                 id="256-char-part"),
])
def test_names_past_the_limits_are_refused(root: Path, workdir: Path, name: str,
                                           says: str) -> None:
    """A name over 1024 characters or with a part over 255 UTF-8 bytes is refused with the
    limit named, writing nothing."""
    with pytest.raises(InvalidNameError, match=says):
        Dataset(root, "ds").commit("too long", add_files={name: write(workdir, "f", b"f")})
    assert not root.exists()


# -- many files --------------------------------------------------------------------------

FILES = 10_000


def test_ten_thousand_files_in_one_commit(root: Path, workdir: Path) -> None:
    """A commit of 10,000 files in 100 folders works: reopen, list, read one, verify, and a
    following commit stays fast."""
    files = {}
    for i in range(FILES):
        path = workdir / f"f{i:05d}"
        path.write_bytes(f"file {i}\n".encode())
        files[f"d{i % 100:02d}/f{i:05d}.txt"] = path
    ds = Dataset(root, "ds")
    digest = ds.commit("ten thousand files", add_files=files)
    fresh = Dataset(root, "ds")
    assert fresh.current_commit is not None and fresh.current_commit.hash == digest
    names = fresh.list_files()
    assert len(names) == FILES and sorted(names) == sorted(files)
    assert fresh.read_file("d42/f04242.txt") == "file 4242\n"
    assert fresh.get_info()["total_size"] == sum(len(f"file {i}\n") for i in range(FILES))
    started = time.perf_counter()
    fresh.commit("one more", add_files={"d00/extra.txt": write(workdir, "x", b"x")},
                 remove_files=["d01/f00001.txt"])
    assert time.perf_counter() - started < 5
    assert len(Dataset(root, "ds").list_files()) == FILES
    report = fresh.verify()
    assert report.ok and report.blobs_checked == FILES + 1 and report.commits_checked == 2


# -- many commits ------------------------------------------------------------------------

COMMITS = 2_000


def build_history(root: str, commits: int, name: str = "ds") -> list[str]:
    """``commits`` real records through the real journal (with checkpoints), fast.

    Even commits hold one blob and odd ones another, so every file verifies.
    """
    store = Store(root)
    history = History(name, store)
    journal = Journal(store, name, history)
    journal.refresh()
    blobs = []
    for content in (b"even model", b"odd model"):
        staged = store.stage(write_source(root, content))
        store.publish(staged)
        blobs.append((staged.digest, staged.size))
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    hashes: list[str] = []
    for seq in range(commits):
        entry = {"model.pt": blobs[seq % 2]}
        record = make_record(
            seq=seq, parent=hashes[-1] if hashes else None, snapshot=entry, added=entry,
            removed=(), message=f"commit {seq}",
            metadata={"i": seq, "accuracy": seq / commits, "run": {"seed": seq % 7}},
            tags=["even"] if seq % 2 == 0 else [], timestamp=start + timedelta(seconds=seq),
            author="limits", policy=None)
        assert journal.publish(record)
        journal.write_due_checkpoints()
        hashes.append(record["hash"])
    return hashes


def write_source(root: str, content: bytes) -> str:
    """A source file on ``memory://`` next to the registry ``root`` (not inside it)."""
    fs = MemoryFileSystem()
    path = f"{root.removeprefix('memory:/').rsplit('/', 1)[0]}/src/{uuid.uuid4().hex}"
    fs.pipe_file(path, content)
    return f"memory:/{path}"


def test_two_thousand_commits_open_query_commit_and_verify(memory_root: str,
                                                           workdir: Path) -> None:
    """A 2,000-commit history opens from its checkpoints, answers queries, takes a normal
    commit on its head and verifies clean, each within seconds."""
    hashes = build_history(memory_root, COMMITS)
    started = time.perf_counter()
    ds = Dataset(memory_root, "ds")
    history = ds.history()
    assert time.perf_counter() - started < 10
    assert [c.hash for c in history] == hashes[::-1]
    checkpoints = MemoryFileSystem().ls(
        f"{memory_root.removeprefix('memory:/')}/datasets/ds/checkpoints", detail=False)
    assert len(checkpoints) == COMMITS // CHECKPOINT_EVERY
    assert len(ds.find_commits(tags=["even"])) == COMMITS // 2
    assert [c.metadata["i"] for c in ds.find_commits(where="accuracy >= 0.999")] == [
        1999, 1998]
    assert len(ds.find_commits(where="run.seed == 3", limit=5)) == 5
    old = ds.checkout(hashes[123][:12])
    assert old.metadata["i"] == 123 and ds.read_file("model.pt") == "odd model"
    ds.checkout()
    new = ds.commit("a normal commit on top", add_files={"notes.txt": write(workdir, "n", b"n")})
    fresh = Dataset(memory_root, "ds")
    assert fresh.current_commit is not None and fresh.current_commit.hash == new
    assert fresh.current_commit.parent_hash == hashes[-1]
    assert fresh.current_commit.seq == COMMITS
    report = fresh.verify()
    assert report.ok and report.commits_checked == COMMITS + 1


# -- odd sources -------------------------------------------------------------------------


def test_symlinked_sources_are_followed_and_odd_ones_refused(root: Path, workdir: Path) -> None:
    """A symlink to a file is followed (its content is stored, never the link); a dangling
    link, a link to a folder and a FIFO are refused before anything is written."""
    import os

    target = write(workdir, "real.bin", b"real content")
    os.symlink(target, workdir / "link.bin")
    os.symlink(workdir / "gone.bin", workdir / "dangling.bin")
    os.symlink(workdir, workdir / "folder-link")
    os.mkfifo(workdir / "pipe")
    for odd in ("dangling.bin", "folder-link", "pipe"):
        with pytest.raises(FileNotFoundError, match="File not found"):
            Dataset(root, "ds").commit("odd", add_files=[workdir / odd])
        assert not root.exists()
    ds = Dataset(root, "ds")
    ds.commit("followed", add_files=[workdir / "link.bin"])
    assert ds.read_file("link.bin", "rb") == b"real content"
    stored = [p for p in root.rglob("*") if p.is_symlink()]
    assert stored == []
