"""Summaries: opening costs the same requests whatever the history's length, older commits
are read only when asked for, and a damaged, forged or missing summary never changes what a
reader sees (it falls back to an older summary or to the log; a hole stays a hole).

Requests are counted by a filesystem that wraps ``memory://`` and counts each call Kirin
makes to it, by kind of object (``tests/test_cloud_summaries.py`` counts real HTTP
requests to S3 through a proxy).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from kirin import Catalog, Dataset, layout, summaries
from kirin._json import canonical_json
from kirin.errors import CorruptObjectError
from kirin.history import record_hash
from kirin.store import Store

from latency import kind_of
from latency import synthesize as build


class CountingFS(MemoryFileSystem):
    """``memory://`` that counts every call that would be a request on an object store."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: Counter[tuple[str, str]] = Counter()
        self.paths: list[tuple[str, str]] = []

    def _count(self, op: str, path: str) -> None:
        self.calls[(op, kind_of(path))] += 1
        self.paths.append((op, path))

    def cat_file(self, path: Any, *args: Any, **kwargs: Any) -> Any:
        self._count("GET", str(path))
        return super().cat_file(path, *args, **kwargs)

    def ls(self, path: Any, *args: Any, **kwargs: Any) -> Any:
        self._count("LIST", str(path))
        return super().ls(path, *args, **kwargs)

    def info(self, path: Any, *args: Any, **kwargs: Any) -> Any:
        self._count("HEAD", str(path))
        return super().info(path, *args, **kwargs)

    def exists(self, path: Any, *args: Any, **kwargs: Any) -> bool:
        self._count("HEAD", str(path))
        return bool(super().exists(path, *args, **kwargs))

    def pipe_file(self, path: Any, *args: Any, **kwargs: Any) -> None:
        self._count("PUT", str(path))
        super().pipe_file(path, *args, **kwargs)


def counted(url: str, name: str, action: Callable[[Dataset], object]
            ) -> tuple[Counter[tuple[str, str]], CountingFS]:
    """The calls ``action`` makes on a freshly opened dataset."""
    fs = CountingFS(skip_instance_cache=True)
    action(Dataset(url, name, fs=fs))
    return fs.calls, fs


def fresh(url: str, name: str = "ds") -> list[str]:
    return [c.hash for c in Dataset(url, name).history()][::-1]


# -- constant requests ----------------------------------------------------------------------

def test_opening_costs_the_same_requests_at_1000_and_3000_commits(memory_url: str,
                                                                 workdir: Path) -> None:
    """Open (head), ``history(limit=10)``: the same calls, of the same kinds, at 1,000 and
    3,000 commits, and only a handful; with commits past the last summary, one more read
    per such commit, still the same at both lengths."""
    hashes = {"short": build(memory_url, 1000, "short"), "long": build(memory_url, 3000, "long")}
    for tail in (0, 37):
        if tail:
            for name in hashes:
                ds = Dataset(memory_url, name)
                for i in range(tail):
                    (workdir / "n.txt").write_text(str(i))
                    hashes[name].append(ds.commit(f"tail {i}",
                                                  add_files={"n.txt": str(workdir / "n.txt")}))
        for action in (lambda ds: ds.current_commit, lambda ds: ds.history(limit=10)):
            calls = {name: counted(memory_url, name, action)[0] for name in hashes}
            assert calls["short"] == calls["long"]
            made = calls["long"]
            assert made[("GET", "summary")] == 1
            assert made[("GET", "checkpoint")] == 1  # the summary's block: commits before it
            assert made[("GET", "log")] == tail + 3  # the summary's own, the tail, 2 probes
            assert sum(n for (op, _), n in made.items() if op != "GET") == 3  # LIST x 3
        _, fs = counted(memory_url, "long", lambda ds: ds.history(limit=10))
        read = [p for op, p in fs.paths if op == "GET" and kind_of(p) == "log"]
        assert all(int(p.rsplit("/", 1)[-1][:20]) >= 2999 for p in read)
        assert [c.hash for c in Dataset(memory_url, "long").history(limit=10)] == \
            hashes["long"][::-1][:10]
    assert fresh(memory_url, "short") == hashes["short"]


def test_a_small_commit_costs_the_same_requests_at_1000_and_3000_commits(
        memory_url: str, workdir: Path) -> None:
    """On an open dataset, a commit between checkpoints reads no older history: the same
    calls at 1,000 and 3,000 commits."""
    build(memory_url, 1010, "short")
    build(memory_url, 3010, "long")
    calls = []
    for name in ("short", "long"):
        (workdir / "n.txt").write_text(f"a note on {name}")  # a new blob for each
        fs = CountingFS(skip_instance_cache=True)
        ds = Dataset(memory_url, name, fs=fs)
        assert ds.current_commit is not None
        fs.calls.clear()
        ds.commit("a note", add_files={"n.txt": str(workdir / "n.txt")})
        calls.append(fs.calls)
    assert calls[0] == calls[1]
    assert not any(k in ("summary", "checkpoint") for _, k in calls[1])


def test_older_commits_are_read_when_asked_for(memory_url: str) -> None:
    """Full history, tags, an old hash prefix, an old checkout: the same answers as the log,
    read in bulk (each checkpoint once)."""
    hashes = build(memory_url, 1234)
    calls, _ = counted(memory_url, "ds", lambda ds: ds.history())
    assert calls[("GET", "checkpoint")] == 12  # blocks #0-#1199, each read once
    assert calls[("GET", "log")] <= 40
    ds = Dataset(memory_url, "ds")
    assert [c.hash for c in ds.history()][::-1] == hashes
    ds = Dataset(memory_url, "ds")
    assert len(ds.find_commits(tags=["even"])) == 617
    ds = Dataset(memory_url, "ds")
    old = ds.checkout(hashes[5][:10])
    assert old.seq == 5 and ds.files["f0"].hash == old.files["f0"].hash
    assert Dataset(memory_url, "ds").find_commits(where="i < 3") != []


def test_a_tag_a_few_blocks_back_is_found_without_reading_the_whole_history(
        memory_url: str) -> None:
    """Issue 16: a cold lookup of a stage or tag reads back in growing pieces (a block, a
    block, then 400 commits, 800, ...): about twice what it needs, not every checkpoint."""
    hashes = build(memory_url, 3000, tags_of=lambda i: ["production"] if i == 2650 else [])
    for action in (lambda ds: ds.resolve("production"),
                   lambda ds: ds.find_commits(tags=["production"], limit=1)[0]):
        fs = CountingFS(skip_instance_cache=True)
        assert action(Dataset(memory_url, "ds", fs=fs)).hash == hashes[2650]
        calls = fs.calls
        # the summary's block (#2900-#2999: read at open, its older records checked when
        # first asked for), #2800-#2899, then #2400-#2799
        assert calls[("GET", "checkpoint")] == 6, calls
    # a full history() still reads every block once, at once
    calls, _ = counted(memory_url, "ds", lambda ds: ds.history())
    assert calls[("GET", "checkpoint")] == 30


def test_summaries_are_written_at_block_ends_and_sorted_newest_first(memory_url: str) -> None:
    """A summary after each complete block (one file: always worth it), named so that the
    newest sorts first; its record and files are the log's."""
    hashes = build(memory_url, 350)
    store = Store(memory_url)
    assert summaries.every(store, "ds") == [99, 199, 299]
    assert summaries.newest(store, "ds") == [299, 199, 99]
    path = store.path(layout.summary("ds", 299))
    assert path.endswith(f"{10 ** 20 - 1 - 299:020d}.json")
    summary = summaries.read_summary(store.read(path) or b"", path, 299)
    assert summary.record["hash"] == hashes[299]
    assert set(summary.files) == {"f0"}
    assert store.read(path) == summaries.encode_summary(
        299, canonical_json(summary.record), summary.files)


def test_a_large_snapshot_is_summarised_less_often(memory_url: str) -> None:
    """A summary of N files is written only once 4 x N commits follow the previous one:
    summaries never cost much more than the records themselves."""
    hashes = build(memory_url, 800, files=500)
    lasts = summaries.every(Store(memory_url), "ds")
    # files at block end #99: 100, #199: 200, ... from #499 on: 500, i.e. due 125 commits on
    files = {last: min(last + 1, 500) for last in range(99, 800, 100)}
    due, previous = [], -1
    for last, count in files.items():
        if count <= summaries.FILES_PER_COMMIT * (last - previous):
            due.append(last)
            previous = last
    assert lasts == due == [99, 199, 299, 399, 599, 799]
    assert fresh(memory_url) == hashes


# -- damage ---------------------------------------------------------------------------------

def _summary_path(url: str, last: int) -> str:
    return Store(url).path(layout.summary("ds", last))


def _raw(url: str) -> MemoryFileSystem:
    """The filesystem under ``url``, to damage objects as a faulty disk or a colleague would."""
    assert url.startswith("memory:/")
    return MemoryFileSystem()


DAMAGES = [
    pytest.param(lambda b: b"\x00garbage", id="garbage"),
    pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
    pytest.param(lambda b: b"", id="emptied"),
    pytest.param(lambda b: b.replace(b'"f0"', b'"f9"', 1), id="renamed-file"),
    pytest.param(lambda b: b.replace(b'"message":"commit', b'"message":"forged', 1),
                 id="edited-record"),
    pytest.param(lambda b: b.replace(b'"last":299', b'"last":298', 1), id="wrong-last"),
    pytest.param(lambda b: b.replace(b'"kirin":1,"last"', b'"kirin":7,"last"', 1),
                 id="unknown-format"),
]


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_summary_is_ignored_and_reported(memory_url: str,
                                                   damage: Callable[[bytes], bytes]) -> None:
    """Opening falls back to the previous summary: the same history; verify names it."""
    hashes = build(memory_url, 350)
    path = _summary_path(memory_url, 299)
    original = _raw(memory_url).cat_file(path)
    _raw(memory_url).pipe_file(path, damage(original))
    calls, fs = counted(memory_url, "ds", lambda ds: ds.current_commit)
    assert calls[("GET", "summary")] == 2  # the damaged one, then #199's
    assert all(int(p.rsplit("/", 1)[-1][:20]) >= 199 for op, p in fs.paths
               if op == "GET" and kind_of(p) == "log")  # nothing older than #199 is read
    assert fresh(memory_url) == hashes
    assert Dataset(memory_url, "ds").current_commit.hash == hashes[-1]  # type: ignore[union-attr]
    problems = Dataset(memory_url, "ds").verify().problems
    assert [(p.kind, p.path) for p in problems] == [("summary", path)]


def test_a_forged_summary_is_ignored(memory_url: str) -> None:
    """A self-consistent summary of another commit #299 (hash, tree and files right) is not
    the log's: opening reads the checkpoints and log instead; verify reports it."""
    hashes = build(memory_url, 350)
    path = _summary_path(memory_url, 299)
    body = json.loads(_raw(memory_url).cat_file(path))
    body["record"]["message"] = "forged"
    body["record"]["hash"] = record_hash(body["record"])
    _raw(memory_url).pipe_file(path, summaries.encode_summary(
        299, json.dumps(body["record"], sort_keys=True, separators=(",", ":")),
        {n: (h, s) for n, h, s in body["files"]}))
    ds = Dataset(memory_url, "ds")
    assert [c.hash for c in ds.history()][::-1] == hashes
    assert all(c.message != "forged" for c in ds.history())
    problems = Dataset(memory_url, "ds").verify().problems
    assert [(p.kind, p.path) for p in problems] == [("summary", path)]
    assert "disagrees with log entry #299" in problems[0].message


@pytest.mark.parametrize("which", [[299], [299, 199], [99, 199, 299]])
def test_deleted_summaries_change_nothing(memory_url: str, which: list[int]) -> None:
    hashes = build(memory_url, 350)
    for last in which:
        _raw(memory_url).rm_file(_summary_path(memory_url, last))
    assert fresh(memory_url) == hashes
    assert Dataset(memory_url, "ds").verify().ok


def test_the_newest_entries_behind_a_summary_are_a_hole(memory_url: str) -> None:
    """Entries #295-#299 deleted and the checkpoints too: the summary at #299 still proves
    they were written, so opening, gc and verify refuse a history five commits shorter."""
    build(memory_url, 300)
    store = Store(memory_url)
    for seq in range(295, 300):
        _raw(memory_url).rm_file(store.path(layout.log_entry("ds", seq)))
    for last in (99, 199, 299):
        _raw(memory_url).rm_file(store.path(layout.checkpoint("ds", last)))
    with pytest.raises(CorruptObjectError, match=r"#295"):
        Dataset(memory_url, "ds").history()
    with pytest.raises(CorruptObjectError, match=r"#295"):
        Catalog(memory_url).gc(grace=timedelta(0))
    problems = Dataset(memory_url, "ds").verify().problems
    assert [(p.kind, p.path.rsplit("/", 1)[-1]) for p in problems] == [
        ("record", f"{295:020d}.json")]


def test_a_hole_below_the_summary_is_found_when_older_commits_are_read(
        memory_url: str) -> None:
    """The head opens from the summary; reading back to a deleted entry (its checkpoint
    gone too) raises, never a shorter history."""
    build(memory_url, 350)
    store = Store(memory_url)
    _raw(memory_url).rm_file(store.path(layout.log_entry("ds", 42)))
    _raw(memory_url).rm_file(store.path(layout.checkpoint("ds", 99)))
    ds = Dataset(memory_url, "ds")
    assert len(ds.history(limit=10)) == 10
    with pytest.raises(CorruptObjectError, match=r"#42"):
        ds.history()


def test_a_forged_checkpoint_below_the_summary_is_ignored(memory_url: str) -> None:
    """Older commits are read from the log where a checkpoint does not chain to the
    commit above it."""
    hashes = build(memory_url, 350)
    path = Store(memory_url).path(layout.checkpoint("ds", 99))
    body = json.loads(_raw(memory_url).cat_file(path))
    body["records"][50]["message"] = "forged"
    for i in range(50, 100):
        if i > 50:
            body["records"][i]["parent"] = body["records"][i - 1]["hash"]
        body["records"][i]["hash"] = record_hash(body["records"][i])
    _raw(memory_url).pipe_file(path, json.dumps(body).encode())
    ds = Dataset(memory_url, "ds")
    assert [c.hash for c in ds.history()][::-1] == hashes
    assert all(c.message != "forged" for c in ds.history())


def _forge_block(url: str, last: int, at: int, upto: int, *, rehash: bool) -> None:
    """Edit record ``at`` of checkpoint ``last``; ``rehash``: re-hash it and re-chain the
    records after it up to ``upto`` (a forger who knows the format)."""
    path = Store(url).path(layout.checkpoint("ds", last))
    body = json.loads(_raw(url).cat_file(path))
    first = body["first"]
    body["records"][at - first]["message"] = "forged"
    if rehash:
        for i in range(at - first, upto - first + 1):
            if i > at - first:
                body["records"][i]["parent"] = body["records"][i - 1]["hash"]
            body["records"][i]["hash"] = record_hash(body["records"][i])
    _raw(url).pipe_file(path, canonical_json(body).encode() + b"\n")


@pytest.mark.parametrize("rehash", [False, True], ids=["edited", "re-hashed"])
def test_older_records_of_the_summarys_block_are_checked_when_first_read(
        memory_url: str, rehash: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening checks only the newest records of the summary's block (what
    ``history(limit=10)`` needs); the older ones it read are checked when first asked for,
    and a damaged or forged one is replaced by the log's, never shown."""
    from kirin import checkpoints, journal

    hashes = build(memory_url, 350)  # summary at #299, its block #200-#299
    _forge_block(memory_url, 299, 230, 270, rehash=rehash)
    checked: list[int] = []
    real = checkpoints.check_stored_record

    def counting(record: Any, text: str, **kwargs: Any) -> Any:
        checked.append(kwargs["seq"])
        return real(record, text, **kwargs)

    monkeypatch.setattr(checkpoints, "check_stored_record", counting)
    ds = Dataset(memory_url, "ds")
    assert [c.hash for c in ds.history(limit=60)] == hashes[::-1][:60]  # #349-#290
    assert sorted(checked) == list(range(299 - journal.OPEN_CHECKED, 299))
    assert [c.hash for c in ds.history()] == hashes[::-1]
    assert all(c.message != "forged" for c in ds.history())
    assert 230 in checked  # the forged record was read, checked and set aside


def test_a_forged_newest_block_is_not_taken_at_open(memory_url: str) -> None:
    """Records re-hashed and re-chained up to the summary's parent do not chain to it: the
    block is set aside at open and older commits come from the log."""
    hashes = build(memory_url, 350)
    _forge_block(memory_url, 299, 290, 298, rehash=True)
    ds = Dataset(memory_url, "ds")
    assert [c.hash for c in ds.history()] == hashes[::-1]
    assert all(c.message != "forged" for c in ds.history())


def test_an_altered_log_entry_below_the_summary_is_an_error(memory_url: str) -> None:
    """A log entry replaced by another valid record (its checkpoint gone) breaks the chain
    when read back: an error, not a different history."""
    build(memory_url, 350)
    store = Store(memory_url)
    path = store.path(layout.log_entry("ds", 60))
    record = json.loads(_raw(memory_url).cat_file(path))
    record["message"] = "forged"
    record["hash"] = record_hash(record)
    _raw(memory_url).pipe_file(path, json.dumps(record).encode())
    _raw(memory_url).rm_file(store.path(layout.checkpoint("ds", 99)))
    with pytest.raises(CorruptObjectError, match=r"chain|broken"):
        Dataset(memory_url, "ds").history()


def test_an_old_registry_without_summaries_opens_and_gets_them(memory_url: str,
                                                             workdir: Path) -> None:
    """A registry written before summaries (checkpoints only) opens as before; the next
    commit that completes a block writes the first summary."""
    hashes = build(memory_url, 250)
    for last in summaries.every(Store(memory_url), "ds"):
        _raw(memory_url).rm_file(_summary_path(memory_url, last))
    assert fresh(memory_url) == hashes
    ds = Dataset(memory_url, "ds")
    for i in range(50):
        (workdir / "n.txt").write_text(str(i))
        ds.commit(f"more {i}", add_files={"n.txt": str(workdir / "n.txt")})
    assert summaries.every(Store(memory_url), "ds") == [299]
    assert Dataset(memory_url, "ds").verify().ok


def test_a_bulk_read_replaces_missing_and_forged_checkpoints_by_their_log_entries(
        memory_url: str) -> None:
    """Reading all older commits at once, a deleted and a forged checkpoint each cost their
    block's log entries, nothing else; the history is the log's."""
    hashes = build(memory_url, 1234)
    store = Store(memory_url)
    _raw(memory_url).rm_file(store.path(layout.checkpoint("ds", 499)))
    path = store.path(layout.checkpoint("ds", 799))
    body = json.loads(_raw(memory_url).cat_file(path))
    body["records"][-1]["message"] = "forged"
    body["records"][-1]["hash"] = record_hash(body["records"][-1])
    _raw(memory_url).pipe_file(path, json.dumps(body).encode())
    calls, fs = counted(memory_url, "ds", lambda ds: ds.history())
    logged = sorted(int(p.rsplit("/", 1)[-1][:20]) for op, p in fs.paths
                    if op == "GET" and kind_of(p) == "log")
    assert [s for s in logged if s < 1199] == [*range(400, 500), *range(700, 800)]
    assert calls[("GET", "checkpoint")] == 11  # each one stored once (#499 is gone)
    ds = Dataset(memory_url, "ds")
    assert [c.hash for c in ds.history()][::-1] == hashes
    assert all(c.message != "forged" for c in ds.history())


def test_a_summary_of_a_parentless_later_commit_is_ignored(memory_url: str) -> None:
    """A rehashed summary whose commit #299 names no parent cannot start a history: the
    summary before it is used."""
    hashes = build(memory_url, 350)
    path = _summary_path(memory_url, 299)
    body = json.loads(_raw(memory_url).cat_file(path))
    body["record"]["parent"] = None
    body["record"]["hash"] = record_hash(body["record"])
    _raw(memory_url).pipe_file(path, summaries.encode_summary(
        299, canonical_json(body["record"]), {n: (h, s) for n, h, s in body["files"]}))
    assert fresh(memory_url) == hashes
