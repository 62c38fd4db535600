"""Whole-registry consistency checks shared by the concurrency and crash tests."""

from __future__ import annotations

import hashlib

from kirin import Commit, Dataset, compaction, layout, summaries


def assert_consistent(ds: Dataset, verified: set[str] | None = None) -> list[Commit]:
    """The history is one linear chain and every file of every commit reads back intact.

    ``verified`` (updated in place) holds blob hashes already re-read by an
    earlier call, so repeated checks of a growing registry re-read only new
    blobs. Returns the commits oldest first.
    """
    commits = list(reversed(ds.history()))
    parent = None
    for seq, commit in enumerate(commits):
        assert commit.seq == seq
        assert commit.parent_hash == parent, f"commit #{seq} does not extend #{seq - 1}"
        if parent is not None:
            assert commit.timestamp > commits[seq - 1].timestamp
        parent = commit.hash
    seen = verified if verified is not None else set()
    for commit in commits:
        for file in commit.files.values():
            if file.hash in seen:
                continue
            data = file.read_bytes()
            assert hashlib.sha256(data).hexdigest() == file.hash
            assert len(data) == file.size
            seen.add(file.hash)
    assert_summaries_agree(ds, commits)
    assert_segments_agree(ds, commits)
    return commits


def assert_summaries_agree(ds: Dataset, commits: list[Commit]) -> int:
    """Every summary stored is whole and is the history's: its commit and that commit's
    files. Returns how many there are (a writer killed mid-way leaves none or a whole one)."""
    store = ds._store
    lasts = summaries.every(store, ds.name)
    for last in lasts:
        path = store.path(layout.summary(ds.name, last))
        summary = summaries.read_summary(store.read(path) or b"", path, last)
        assert last < len(commits), f"summary {path} is past the history's end"
        assert summary.record["hash"] == commits[last].hash, f"summary {path} is not the log's"
        assert summary.files == {n: (f.hash, f.size) for n, f in commits[last].files.items()}
    return len(lasts)


def assert_segments_agree(ds: Dataset, commits: list[Commit]) -> int:
    """Every segment stored is whole and is the history's: each of its records sound, in
    order, and the commit the history holds there. Returns how many there are (a writer
    killed mid-way leaves none or a whole one)."""
    store = ds._store
    folder = store.path(layout.segments(ds.name))
    lasts = sorted(n for n in map(layout.segment_last, store.listdir(folder)) if n is not None)
    for last in lasts:
        path = store.path(layout.segment(ds.name, last))
        segment = compaction.read_segment(store.read(path) or b"", path, last)
        assert last < len(commits), f"segment {path} is past the history's end"
        repeated = [record["hash"] for record, _ in segment.records(segment.first, last)]
        assert repeated == [c.hash for c in commits[segment.first:last + 1]], \
            f"segment {path} is not the log's"
    return len(lasts)
