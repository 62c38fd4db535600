"""Segments: many checkpoint blocks in one object, so that reading far back costs one request
per segment instead of one per block; never trusted over the log (a damaged, forged or
missing segment costs its checkpoints, never a different or shorter history), checked by
``verify``, kept by ``gc``, and absent from older registries, which open as before.

Blocks of 10 commits and segments of 5 blocks (50 commits), set on the modules as the
writers of the crash and concurrency tests set them, so that a few hundred commits have
several segments. Requests are counted on ``memory://`` by ``test_summaries.CountingFS``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from fsspec.implementations.memory import MemoryFileSystem

import kirin.compaction
import kirin.journal
import kirin.lineageindex
from kirin import Catalog, Dataset, compaction, layout
from kirin.errors import CorruptObjectError
from kirin.history import record_hash
from kirin.store import Store

from latency import kind_of, synthesize_objects, write_local
from latency import synthesize as build
from test_summaries import CountingFS, counted

BLOCK, BLOCKS = 10, 5
SPAN = BLOCK * BLOCKS


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kirin.journal, "CHECKPOINT_EVERY", BLOCK)
    monkeypatch.setattr(kirin.compaction, "BLOCKS", BLOCKS)


def _raw() -> MemoryFileSystem:
    """The filesystem under a ``memory://`` root, to damage objects as a faulty disk would."""
    return MemoryFileSystem()


def _path(url: str, last: int) -> str:
    return Store(url).path(layout.segment("ds", last))


def _stored(url: str) -> list[int]:
    store = Store(url)
    names = store.listdir(store.path(layout.segments("ds")))
    return sorted(n for n in map(layout.segment_last, names) if n is not None)


def _hashes(url: str) -> list[str]:
    return [c.hash for c in Dataset(url, "ds").history()][::-1]


def _read(fs: CountingFS, kind: str) -> list[int]:
    """The numbers in the names of the objects of ``kind`` read, in order."""
    return [int(p.rsplit("/", 1)[-1][:20]) for op, p in fs.paths
            if op == "GET" and kind_of(p) == kind]


# -- the format and the writer --------------------------------------------------------------

def test_a_segment_per_span_repeats_the_log_entries_byte_for_byte(memory_url: str) -> None:
    """Commits #0-#49, #50-#99, ...: a header line, then each log entry as it is stored."""
    hashes = build(memory_url, 260)
    assert _stored(memory_url) == [49, 99, 149, 199, 249]
    store = Store(memory_url)
    for last in _stored(memory_url):
        entries = [store.read(store.path(layout.log_entry("ds", seq))) or b""
                   for seq in range(last - SPAN + 1, last + 1)]
        head = f'{{"first":{last - SPAN + 1},"kirin":1,"last":{last}}}\n'.encode()
        data = store.read(_path(memory_url, last)) or b""
        assert data == head + b"".join(entries)
        segment = compaction.read_segment(data, _path(memory_url, last), last)
        assert [r["hash"] for r, _ in segment.records(segment.first, last)] == \
            hashes[last - SPAN + 1:last + 1]


def test_the_writer_reads_what_it_does_not_hold_and_keeps_its_memory(
        memory_url: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that opened from a summary (holding the newest block) and completes a
    segment reads the records it lacks from the checkpoints, without loading them into its
    history."""
    # the synthesized registry has no lineage index: the commit would index (and read) the
    # whole history, which is not what is measured here
    monkeypatch.setattr(kirin.lineageindex, "write_due", lambda *args: None)
    build(memory_url, 290)
    fs = CountingFS(skip_instance_cache=True)
    ds = Dataset(memory_url, "ds", fs=fs)
    assert ds.current_commit is not None
    held = ds._history.loaded_from
    assert held == 280
    for i in range(10):
        (workdir / "n.txt").write_text(str(i))
        ds.commit(f"more {i}", add_files={"n.txt": str(workdir / "n.txt")})
    assert _stored(memory_url) == [49, 99, 149, 199, 249, 299]
    assert ds._history.loaded_from == held
    # #250-#279 from their checkpoints (one bulk read), #280-#299 held
    assert sorted(set(_read(fs, "checkpoint"))) == [259, 269, 279, 289]  # 289: open's
    segment = Store(memory_url).read(_path(memory_url, 299)) or b""
    assert segment.count(b"\n") == SPAN + 1
    assert Dataset(memory_url, "ds").verify().ok


def test_no_segment_is_written_between_spans_and_the_cost_is_one_listing(
        memory_url: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A block end that completes no segment, with none missing: one listing, no write."""
    monkeypatch.setattr(kirin.lineageindex, "write_due", lambda *args: None)  # as above
    build(memory_url, 259)
    fs = CountingFS(skip_instance_cache=True)
    ds = Dataset(memory_url, "ds", fs=fs)
    assert ds.current_commit is not None
    fs.calls.clear()
    (workdir / "n.txt").write_text("a note")
    ds.commit("completes block #250-#259", add_files={"n.txt": str(workdir / "n.txt")})
    assert fs.calls[("LIST", "segment")] == 1
    assert not [k for k in fs.calls if k[1] == "segment" and k != ("LIST", "segment")]
    assert _stored(memory_url) == [49, 99, 149, 199, 249]


def test_a_failing_segment_write_does_not_fail_the_commit(
        memory_url: str, workdir: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    build(memory_url, 49)
    real = Store.create

    def refuse(self: Store, path: str, data: bytes) -> bool:
        if "/segments/" in path:
            raise OSError("disk full")
        return real(self, path, data)

    monkeypatch.setattr(Store, "create", refuse)
    ds = Dataset(memory_url, "ds")
    (workdir / "n.txt").write_text("the 50th")
    with caplog.at_level(logging.WARNING, logger="kirin"):
        digest = ds.commit("completes a segment", add_files={"n.txt": str(workdir / "n.txt")})
    assert Dataset(memory_url, "ds").current_commit.hash == digest  # type: ignore[union-attr]
    assert "Could not write segment" in caplog.text and "disk full" in caplog.text
    assert _stored(memory_url) == []


def test_missing_segments_are_written_newest_first_one_per_block_end(
        memory_url: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry written before segments (or whose segment writer died) gets them at its
    next block ends: the newest missing one each time, never the whole history at once."""
    monkeypatch.setattr(kirin.compaction, "BLOCKS", 10 ** 6)  # an older Kirin: none
    hashes = build(memory_url, 260)
    assert _stored(memory_url) == []
    monkeypatch.setattr(kirin.compaction, "BLOCKS", BLOCKS)
    ds = Dataset(memory_url, "ds")
    stored = []
    for i in range(30):
        (workdir / "n.txt").write_text(str(i))
        hashes.append(ds.commit(f"more {i}", add_files={"n.txt": str(workdir / "n.txt")}))
        stored.append(_stored(memory_url))
    assert stored[9] == [249] and stored[19] == [199, 249] and stored[29] == [149, 199, 249]
    assert all(s == stored[9] for s in stored[9:19])  # only at block ends
    assert _hashes(memory_url) == hashes
    assert Dataset(memory_url, "ds").verify().ok


# -- reading --------------------------------------------------------------------------------

def test_a_full_history_reads_a_segment_per_50_commits(memory_url: str) -> None:
    """Opened from the summary at #259 (holding #250-#259), the rest is five segments: one
    listing and five reads, no checkpoint beyond the one opening reads."""
    hashes = build(memory_url, 260)
    calls, fs = counted(memory_url, "ds", lambda ds: ds.history())
    assert _read(fs, "segment") == [249, 199, 149, 99, 49]
    assert calls[("LIST", "segment")] == 1
    assert calls[("GET", "checkpoint")] == 1 and calls[("LIST", "checkpoint")] == 1  # open
    assert _hashes(memory_url) == hashes
    assert Dataset(memory_url, "ds").find_commits(where="i < 3") != []


def test_an_old_registry_without_segments_reads_as_before(memory_url: str) -> None:
    """Without segments, a full history reads every checkpoint, as before they existed."""
    hashes = build(memory_url, 260)
    for last in _stored(memory_url):
        _raw().rm_file(_path(memory_url, last))
    calls, _ = counted(memory_url, "ds", lambda ds: ds.history())
    assert calls[("GET", "checkpoint")] == 26  # the open's, then #0-#249 block by block
    assert calls[("GET", "segment")] == 0 and calls[("GET", "log")] <= 3
    assert _hashes(memory_url) == hashes
    assert Dataset(memory_url, "ds").verify().ok


def test_a_segment_half_wanted_or_less_is_not_read(memory_url: str) -> None:
    """A history opened from the summary at #279 (holding #270-#279): the segment
    #250-#299 does not exist yet, and #200-#249 is read only if at least 25 of its
    commits are wanted."""
    hashes = build(memory_url, 280, tags_of=lambda i: ["old"] if i == 226 else [])
    fs = CountingFS(skip_instance_cache=True)
    ds = Dataset(memory_url, "ds", fs=fs)
    assert ds.resolve("old").hash == hashes[226]
    # a block, a block, then 400 commits back in one bulk read: #250-#269 from checkpoints,
    # then the segment #200-#249 (all wanted), #150-#199, and so on
    assert _read(fs, "segment") == [249, 199, 149, 99, 49]
    segments = Dataset(memory_url, "ds")._journal._segments()  # the reader, on its own
    assert segments._plan(269, 240) == []  # 10 of the 50 commits of #200-#249 wanted
    assert segments._plan(269, 225) == [(200, 249)]  # 25 of 50
    assert segments._plan(249, 0) == [(200, 249), (150, 199), (100, 149), (50, 99), (0, 49)]
    assert segments._plan(230, 0)[0] == (200, 249)  # 31 of the 50 it holds below #230


def test_a_deep_cold_lookup_reads_segments_once_the_pieces_are_large(memory_url: str) -> None:
    """A tag 2,400 commits back in a history of 3,000 (segments of 50 commits): the growing
    pieces read checkpoints while they are small, then segments; far fewer objects than
    the checkpoints alone, and the same commit."""
    hashes = build(memory_url, 3000, tags_of=lambda i: ["production"] if i == 600 else [])
    fs = CountingFS(skip_instance_cache=True)
    assert Dataset(memory_url, "ds", fs=fs).resolve("production").hash == hashes[600]
    with_segments = fs.calls
    for last in _stored(memory_url):
        _raw().rm_file(_path(memory_url, last))
    fs = CountingFS(skip_instance_cache=True)
    assert Dataset(memory_url, "ds", fs=fs).resolve("production").hash == hashes[600]
    without = fs.calls
    assert without[("GET", "checkpoint")] >= 240  # every block from #2999 down to #600
    read = with_segments[("GET", "checkpoint")] + with_segments[("GET", "segment")]
    assert read <= without[("GET", "checkpoint")] // 3, (with_segments, without)
    assert with_segments[("GET", "log")] == without[("GET", "log")]


# -- damage ---------------------------------------------------------------------------------

def _edit_line(seq: int, edit: Callable[[dict[str, object]], None],
               first: int = 200) -> Callable[[bytes], bytes]:
    """A damage: record ``seq`` of the segment starting at ``first`` edited (and rehashed)."""
    def damage(data: bytes) -> bytes:
        lines = data.split(b"\n")
        record = json.loads(lines[1 + seq - first])
        edit(record)
        record["hash"] = record_hash(record)
        lines[1 + seq - first] = json.dumps(record, sort_keys=True,
                                            separators=(",", ":")).encode()
        return b"\n".join(lines)
    return damage


def _forge(record: dict[str, object]) -> None:
    record["message"] = "forged"


DAMAGES = [
    pytest.param(lambda b: b"\x00garbage", id="garbage"),
    pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
    pytest.param(lambda b: b[:-1], id="no-final-newline"),
    pytest.param(lambda b: b"", id="emptied"),
    pytest.param(lambda b: b.replace(b'"last":249', b'"last":248', 1), id="wrong-last"),
    pytest.param(lambda b: b.replace(b'"kirin":1,"last"', b'"kirin":7,"last"', 1),
                 id="unknown-format"),
    pytest.param(lambda b: b"\n".join(b.split(b"\n")[:20] + b.split(b"\n")[21:]),
                 id="a-line-missing"),
    pytest.param(lambda b: b.replace(b'"message":"commit 249"', b'"message":"commit 24!"'),
                 id="edited-record"),
    pytest.param(_edit_line(249, _forge), id="forged-newest"),
]


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_segment_costs_its_checkpoints_and_is_reported(
        memory_url: str, damage: Callable[[bytes], bytes]) -> None:
    """The segment #200-#249 damaged: its five checkpoints are read instead, the other
    segments still are, and the history is the log's; verify names the segment."""
    hashes = build(memory_url, 260)
    path = _path(memory_url, 249)
    _raw().pipe_file(path, damage(_raw().cat_file(path)))
    calls, fs = counted(memory_url, "ds", lambda ds: ds.history())
    assert _read(fs, "segment") == [249, 199, 149, 99, 49]
    assert sorted(set(_read(fs, "checkpoint"))) == [209, 219, 229, 239, 249, 259]
    assert calls[("GET", "log")] <= 3  # opening's: no block was read from the log
    ds = Dataset(memory_url, "ds")
    assert [c.hash for c in ds.history()][::-1] == hashes
    assert all(c.message != "forged" for c in ds.history())
    problems = Dataset(memory_url, "ds").verify().problems
    assert [(p.kind, p.path) for p in problems] == [("segment", path)]


def test_a_segment_damaged_partway_is_used_down_to_the_damage(memory_url: str) -> None:
    """Record #222 forged (and rehashed): the blocks above it come from the segment, the
    block holding it does not chain, so #220-#229 and below come from checkpoints."""
    hashes = build(memory_url, 260)
    path = _path(memory_url, 249)
    _raw().pipe_file(path, _edit_line(222, _forge)(_raw().cat_file(path)))
    _, fs = counted(memory_url, "ds", lambda ds: ds.history())
    assert sorted(set(_read(fs, "checkpoint"))) == [209, 219, 229, 259]
    assert _hashes(memory_url) == hashes
    problems = Dataset(memory_url, "ds").verify().problems
    assert [(p.kind, p.path) for p in problems] == [("segment", path)]
    assert "disagrees with log entry #222" in problems[0].message


def test_a_segment_missing_in_the_middle_costs_its_checkpoints(memory_url: str) -> None:
    hashes = build(memory_url, 260)
    _raw().rm_file(_path(memory_url, 149))
    _, fs = counted(memory_url, "ds", lambda ds: ds.history())
    assert _read(fs, "segment") == [249, 199, 99, 49]
    assert sorted(set(_read(fs, "checkpoint"))) == [109, 119, 129, 139, 149, 259]
    assert _hashes(memory_url) == hashes
    assert Dataset(memory_url, "ds").verify().ok  # a segment not written is no damage


def test_a_segment_of_another_history_is_ignored(memory_url: str) -> None:
    """A whole, sound segment of a deleted dataset of the same name (or forged from scratch)
    does not chain to this history: its checkpoints are read; verify reports it."""
    other = f"{memory_url}-other"
    build(other, 260, tags_of=lambda i: ["other"])
    hashes = build(memory_url, 260)
    path = _path(memory_url, 199)
    _raw().pipe_file(path, _raw().cat_file(_path(other, 199)))
    assert _hashes(memory_url) == hashes
    problems = Dataset(memory_url, "ds").verify().problems
    assert [(p.kind, p.path) for p in problems] == [("segment", path)]
    assert "disagrees with log entry #150" in problems[0].message


def test_a_hole_below_segments_is_an_error_not_a_shorter_history(memory_url: str) -> None:
    """Entries #245-#259 deleted with every checkpoint and summary: the segment ending at
    #249 still proves #245-#249 were written, so verify reports a hole and gc refuses."""
    build(memory_url, 260)
    store = Store(memory_url)
    for seq in range(245, 260):
        _raw().rm_file(store.path(layout.log_entry("ds", seq)))
    for name in store.listdir(store.path(layout.checkpoints("ds"))):
        _raw().rm_file(store.path(layout.checkpoints("ds"), name))
    for name in store.listdir(store.path(layout.summaries("ds"))):
        _raw().rm_file(store.path(layout.summaries("ds"), name))
    problems = Dataset(memory_url, "ds").verify().problems
    assert [(p.kind, p.path.rsplit("/", 1)[-1]) for p in problems] == [
        ("record", f"{245:020d}.json")]
    with pytest.raises(CorruptObjectError, match=r"#245"):
        Catalog(memory_url).gc(grace=timedelta(0))


def test_a_log_entry_missing_under_a_damaged_segment_is_a_hole(memory_url: str) -> None:
    build(memory_url, 260)
    store = Store(memory_url)
    _raw().pipe_file(_path(memory_url, 99), b"damaged")
    _raw().rm_file(store.path(layout.checkpoint("ds", 79)))
    _raw().rm_file(store.path(layout.log_entry("ds", 75)))
    ds = Dataset(memory_url, "ds")
    assert len(ds.history(limit=10)) == 10
    with pytest.raises(CorruptObjectError, match=r"#75"):
        ds.history()


# -- gc -------------------------------------------------------------------------------------

def test_gc_keeps_segments(memory_url: str) -> None:
    hashes = build(memory_url, 260)
    before = {last: Store(memory_url).read(_path(memory_url, last)) for last in
              _stored(memory_url)}
    Catalog(memory_url).gc(grace=timedelta(0))
    assert {last: Store(memory_url).read(_path(memory_url, last)) for last in
            _stored(memory_url)} == before
    calls, _ = counted(memory_url, "ds", lambda ds: ds.history())
    assert calls[("GET", "segment")] == 5
    assert _hashes(memory_url) == hashes


def test_on_local_disk_segments_are_read_one_at_a_time_and_damage_costs_checkpoints(
        tmp_path: Path) -> None:
    """Local disk reads a segment when it is reached (no thread, no read ahead): the same
    history, the same fallback past a damaged record."""
    objects, hashes = synthesize_objects(260)
    root = tmp_path / "registry"
    write_local(objects, str(root))
    path = root / "datasets" / "ds" / "segments" / layout.segment_name(199)
    path.write_bytes(_edit_line(172, _forge, first=150)(path.read_bytes()))
    ds = Dataset(str(root), "ds")
    assert [c.hash for c in ds.history()][::-1] == hashes
    assert ds._journal._segments()._plan(249, 0)[:2] == [(200, 249), (150, 199)]
    problems = Dataset(str(root), "ds").verify().problems
    assert [(p.kind, p.path) for p in problems] == [("segment", str(path))]
