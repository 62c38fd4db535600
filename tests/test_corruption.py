"""Corruption beyond what ``tests/test_dataset_corruption.py`` and
``test_dataset_checkpoints.py`` cover (reads of damaged blobs, records and checkpoints):
``verify`` finding every problem in one run, damage hidden behind checkpoints, holes in the
log, hostile JSON in stored objects, and gc on a damaged registry.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kirin import Catalog, Dataset
from kirin.errors import CorruptObjectError
from kirin.history import History, make_record
from kirin.journal import Journal
from kirin.store import Store

from conftest import write


class Root:
    """A registry root on local disk or ``memory://``, with raw access to its objects."""

    def __init__(self, url: str, fs: Any, path: str) -> None:
        self.url, self.fs, self.path = url, fs, path

    def log(self, seq: int) -> str:
        return f"{self.path}/datasets/ds/log/{seq:020d}.json"

    def checkpoint(self, last: int) -> str:
        return f"{self.path}/datasets/ds/checkpoints/{last:020d}.json"

    def blob(self, digest: str) -> str:
        return f"{self.path}/data/{digest[:2]}/{digest[2:]}"

    def cat(self, path: str) -> bytes:
        return bytes(self.fs.cat_file(path))

    def pipe(self, path: str, data: bytes) -> None:
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        self.fs.pipe_file(path, data)

    def objects(self) -> dict[str, bytes]:
        return {p: self.cat(p) for p in self.fs.find(self.path)}


@pytest.fixture(params=["local", "memory"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Root]:
    """An empty registry root, once on local disk and once on ``memory://``."""
    if request.param == "local":
        path = str(tmp_path / "reg")
        yield Root(path, LocalFileSystem(), path)
        return
    prefix = f"/kirin-corruption/{uuid.uuid4().hex}"
    yield Root(f"memory:/{prefix}/reg", MemoryFileSystem(), f"{prefix}/reg")
    with contextlib.suppress(FileNotFoundError):
        MemoryFileSystem().rm(prefix, recursive=True)


def build(root: Root, workdir: Path, commits: int) -> tuple[list[str], list[str]]:
    """``commits`` records through the real journal (checkpoints included); commit ``i``
    adds ``f{i % 5}`` with content ``i % 5``. Returns (commit hashes, blob digests)."""
    store = Store(root.url)
    journal = Journal(store, "ds", History("ds", store))
    journal.refresh()
    blobs = []
    for k in range(5):
        staged = store.stage(str(write(workdir, f"b{k}", f"content {k}\n" * (k + 1))))
        store.publish(staged)
        blobs.append((staged.digest, staged.size))
    snapshot: dict[str, tuple[str, int]] = {}
    hashes: list[str] = []
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for seq in range(commits):
        added = {f"f{seq % 5}": blobs[seq % 5]}
        snapshot.update(added)
        record = make_record(seq=seq, parent=hashes[-1] if hashes else None,
                             snapshot=snapshot, added=added, removed=(),
                             message=f"commit {seq}", metadata={"i": seq}, tags=[],
                             timestamp=start + timedelta(seconds=seq), author="corruption",
                             policy=None)
        assert journal.publish(record)
        journal.write_due_checkpoints()
        hashes.append(record["hash"])
    return hashes, [digest for digest, _ in blobs]


def history_of(root: Root) -> list[str]:
    return [c.hash for c in Dataset(root.url, "ds").history()][::-1]


# -- verify finds everything ---------------------------------------------------------------


def test_verify_reports_every_kind_of_damage_in_one_run(root: Root, workdir: Path) -> None:
    """Altered, truncated and deleted blobs, altered, truncated and deleted log records and a
    corrupt checkpoint are all reported by one verify run, each naming its object."""
    _, blobs = build(root, workdir, 230)
    altered = bytearray(root.cat(root.blob(blobs[0])))
    altered[0] ^= 0xFF
    root.pipe(root.blob(blobs[0]), bytes(altered))
    root.pipe(root.blob(blobs[1]), root.cat(root.blob(blobs[1]))[:3])
    root.fs.rm_file(root.blob(blobs[2]))
    root.pipe(root.log(5), root.cat(root.log(5)).replace(b"commit 5", b"commit 6"))
    root.pipe(root.log(150), root.cat(root.log(150))[:40])
    root.fs.rm_file(root.log(120))
    root.pipe(root.checkpoint(99), b"\x00not json")
    report = Dataset(root.url, "ds").verify()
    assert not report.ok
    found = {(p.kind, p.path.rsplit("/", 2)[-2] + "/" + p.path.rsplit("/", 1)[-1])
             for p in report.problems}
    expected = {
        ("blob", f"{blobs[0][:2]}/{blobs[0][2:]}"), ("blob", f"{blobs[1][:2]}/{blobs[1][2:]}"),
        ("blob", f"{blobs[2][:2]}/{blobs[2][2:]}"),
        ("record", f"log/{5:020d}.json"), ("record", f"log/{150:020d}.json"),
        ("record", f"log/{120:020d}.json"),  # the hole, reported at its first missing entry
        ("checkpoint", f"checkpoints/{99:020d}.json"),
    }
    assert expected <= found, sorted(found)
    messages = {p.kind + p.path: p.message for p in report.problems}
    assert any("does not match its hash" in m for m in messages.values())
    assert any("#120 are missing" in m or "#120 is missing" in m for m in messages.values())
    blob_problems = [p for p in report.problems if p.kind == "blob"]
    assert all(p.commits and p.files for p in blob_problems)
    assert {p.files[0] for p in blob_problems} == {"f0", "f1", "f2"}


# -- damage hidden behind a checkpoint ------------------------------------------------------

LOG_DAMAGE: list[Any] = [
    pytest.param(lambda b: b.replace(b"commit 50", b"commit 51"), id="altered"),
    pytest.param(lambda b: b[:30], id="truncated"),
    pytest.param(None, id="deleted"),
]


@pytest.mark.parametrize("damage", LOG_DAMAGE)
def test_damage_behind_a_valid_checkpoint_is_found_by_verify(
        root: Root, workdir: Path, damage: Callable[[bytes], bytes] | None) -> None:
    """A log entry covered by a valid checkpoint may be damaged without hiding anything:
    opening reads the verified checkpoint copy (same history, files read), and verify still
    reports the damaged entry."""
    hashes, _ = build(root, workdir, 150)
    if damage is None:
        root.fs.rm_file(root.log(50))
    else:
        root.pipe(root.log(50), damage(root.cat(root.log(50))))
    assert history_of(root) == hashes
    ds = Dataset(root.url, "ds")
    assert ds.checkout(hashes[50]).metadata == {"i": 50}
    assert ds.read_file("f0") == "content 0\n"
    report = Dataset(root.url, "ds").verify()
    assert [p.kind for p in report.problems] == ["record"]
    assert report.problems[0].path.endswith(f"{50:020d}.json")


def test_the_newest_entries_behind_a_checkpoint_are_a_hole_not_the_end(
        root: Root, workdir: Path) -> None:
    """Entries #95-#99 deleted with nothing after them: the sound checkpoint #99 proves they
    were written, so opening, committing and gc refuse and verify reports the hole, instead
    of a history silently five commits shorter."""
    build(root, workdir, 100)
    for seq in range(95, 100):
        root.fs.rm_file(root.log(seq))
    with pytest.raises(CorruptObjectError, match=r"#95"):
        Dataset(root.url, "ds").history()
    with pytest.raises(CorruptObjectError, match=r"#95"):
        Catalog(root.url).gc(grace=timedelta(0))
    problems = Dataset(root.url, "ds").verify().problems
    assert [(p.kind, p.path.rsplit("/", 1)[-1]) for p in problems] == [
        ("record", f"{95:020d}.json")]
    assert "#95-#99" in problems[0].message


# -- hostile JSON in stored objects ---------------------------------------------------------

HOSTILE_JSON = [
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-100000"),
    pytest.param(b'{"x": ' + b"9" * 5000 + b"}", id="int-5000-digits"),
    pytest.param(b'{"x": NaN}', id="nan"),
    pytest.param(b'{"x": 1e999}', id="float-overflow"),
    pytest.param(b'{"k": "\\ud800"}', id="lone-surrogate"),
    pytest.param(b"\xef\xbb\xbf{}", id="bom"),
]


def swap_in(record: bytes, value: bytes) -> bytes:
    """``record`` with its metadata replaced by ``value`` (hash left as it was)."""
    parsed = json.loads(record)
    marker = b'"__HOSTILE__"'
    parsed["metadata"] = "__HOSTILE__"
    return json.dumps(parsed).encode().replace(marker, value)


@pytest.mark.parametrize("value", HOSTILE_JSON)
def test_hostile_json_in_a_record_is_a_corrupt_object(root: Root, workdir: Path,
                                                      value: bytes) -> None:
    """Deeply nested, huge, NaN, overflowing or lone-surrogate JSON in a log record makes
    opening, verify and gc raise or report CorruptObjectError naming it, never crash."""
    build(root, workdir, 3)
    original = root.cat(root.log(1))
    for damaged in (value, swap_in(original, value)):  # the whole object, or its metadata
        root.pipe(root.log(1), damaged)
        with pytest.raises(CorruptObjectError) as info:
            Dataset(root.url, "ds").history()
        assert info.value.path == root.log(1)
        report = Dataset(root.url, "ds").verify()
        assert [p.path for p in report.problems] == [root.log(1)]
        with pytest.raises(CorruptObjectError):
            Catalog(root.url).gc(dry_run=True)


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few random byte-level edits (flip, delete, insert, truncate)."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, max(len(out) - 1, 0)))
        op = draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        if op == "flip" and out:
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "delete":
            del out[at:at + draw(st.integers(1, 8))]
        elif op == "insert":
            out[at:at] = draw(st.sampled_from([b" ", b"\\", b'"', b"{", b"]", b",", b"\x00",
                                               b"\xff", b"1e999", b"NaN", b"\\ud800"]))
        else:
            del out[at:]
    return bytes(out)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Root, list[str], bytes]:
    """A 3-commit memory registry built once, with the original bytes of its record #1."""
    prefix = f"/kirin-corruption/{uuid.uuid4().hex}"
    reg = Root(f"memory:/{prefix}/reg", MemoryFileSystem(), f"{prefix}/reg")
    hashes, _ = build(reg, tmp_path_factory.mktemp("src"), 3)
    return reg, hashes, reg.cat(reg.log(1))


@settings(max_examples=150, deadline=2000, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_random_damage_to_a_record_is_detected_or_harmless(
        pristine: tuple[Root, list[str], bytes], data: st.DataObject) -> None:
    """Random byte edits to a stored record either make opening raise CorruptObjectError
    naming it, or (whitespace-like edits) leave exactly the same history."""
    reg, hashes, original = pristine
    damaged = data.draw(mutations(original))
    reg.pipe(reg.log(1), damaged)
    try:
        try:
            assert history_of(reg) == hashes
        except CorruptObjectError as exc:
            assert exc.path == reg.log(1)
    finally:
        reg.pipe(reg.log(1), original)


# -- holes in the log and hostile checkpoints -----------------------------------------------


@pytest.mark.parametrize(("first", "width"), [(10, 2), (10, 17), (20, 19), (0, 39)])
def test_a_wide_hole_in_the_log_is_not_a_silent_truncation(root: Root, workdir: Path,
                                                           first: int, width: int) -> None:
    """Deleting several consecutive log entries (wider than any read-ahead, up to all but the
    last) makes opening fail naming the first missing record, never end early; a commit
    attempted on it fails the same way rather than filling the hole (forking the history)."""
    build(root, workdir, 40)
    for seq in range(first, first + width):
        root.fs.rm_file(root.log(seq))
    with pytest.raises(CorruptObjectError) as info:
        history_of(root)
    assert f"#{first} is missing" in str(info.value) and info.value.path == root.log(first)
    with pytest.raises(CorruptObjectError):
        Dataset(root.url, "ds").commit("fill the hole?", add_files=[
            write(workdir, "x.bin", b"x")])
    assert not root.fs.exists(root.log(first))


@pytest.mark.parametrize("operation", ["open", "verify"])
def test_a_deeply_nested_checkpoint_is_ignored(root: Root, workdir: Path,
                                               operation: str) -> None:
    """A checkpoint holding absurdly nested JSON is ignored by open and reported by verify."""
    hashes, _ = build(root, workdir, 3)
    root.pipe(root.checkpoint(99), b"[" * 100_000 + b"]" * 100_000)
    if operation == "open":
        assert history_of(root) == hashes
    else:
        assert [p.kind for p in Dataset(root.url, "ds").verify().problems] == ["checkpoint"]


# -- gc on a damaged registry ---------------------------------------------------------------


def test_gc_refuses_to_collect_when_a_history_is_unreadable(root: Root, workdir: Path) -> None:
    """gc stops with CorruptObjectError (deleting nothing, dry run or not) when any dataset's
    log cannot be read: an unreadable record might reference any blob."""
    build(root, workdir, 3)
    Dataset(root.url, "other").commit("x", add_files=[write(workdir, "x", b"x")])
    root.pipe(root.log(2), b"{truncated")
    before = root.objects()
    for dry_run in (True, False):
        with pytest.raises(CorruptObjectError):
            Catalog(root.url).gc(dry_run=dry_run, grace=timedelta(0))
    assert root.objects() == before
