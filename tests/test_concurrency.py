"""Several real processes committing to one dataset at once lose nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import kirin.compaction
import kirin.journal
from kirin import Dataset

from registry_checks import assert_consistent, assert_segments_agree, assert_summaries_agree

WORKER = str(Path(__file__).with_name("workers.py"))


def run_writers(root: str, writers: int, commits: int, tmp: Path, files: int = 1,
                checkpoint_every: int | None = None, segment_blocks: int | None = None
                ) -> None:
    """Start ``writers`` processes at the same instant and wait for all of them."""
    every = ["--checkpoint-every", str(checkpoint_every)] if checkpoint_every else []
    every += ["--segment-blocks", str(segment_blocks)] if segment_blocks else []
    start_at = time.time() + 1.5  # enough for every interpreter to import kirin
    procs = [
        subprocess.Popen(
            [sys.executable, WORKER, root, "shared", f"w{i}", "--count", str(commits),
             "--start-at", str(start_at), "--files", str(files), *every],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**__import__("os").environ, "KIRIN_WORKER_TMP": str(tmp)})
        for i in range(writers)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"writer failed:\n{err}"
        assert out.count("committed") == commits


def test_four_writers_make_one_linear_history(tmp_path: Path) -> None:
    """4 processes x 25 commits give exactly 100 commits, each extending the one before."""
    root = str(tmp_path / "registry")
    run_writers(root, writers=4, commits=25, tmp=tmp_path)
    commits = assert_consistent(Dataset(root, "shared"))
    assert len(commits) == 100
    by_writer: dict[str, list[int]] = {}
    for commit in commits:
        by_writer.setdefault(commit.metadata["worker"], []).append(commit.metadata["step"])
    assert by_writer == {f"w{i}": list(range(25)) for i in range(4)}


def test_a_writer_sees_the_commits_of_others(tmp_path: Path) -> None:
    """A dataset opened before other processes commit follows them to the newest commit."""
    root = str(tmp_path / "registry")
    ds = Dataset(root, "shared")
    assert ds.current_commit is None
    run_writers(root, writers=2, commits=3, tmp=tmp_path)
    assert ds.current_commit is not None
    assert len(ds.history()) == 6
    assert ds.current_commit == ds.history()[0]


def test_writers_racing_at_block_ends_write_whole_summaries_and_segments(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a checkpoint every 4 commits and a segment every 8, 3 writers keep completing
    blocks and segments at once: each checkpoint, summary and segment is written by whoever
    completed it (or a later block end, if that writer lost the race to another), whole and
    the log's, and a fresh reader (with the same sizes: through the segments) sees the same
    history."""
    monkeypatch.setattr(kirin.journal, "CHECKPOINT_EVERY", 4)
    monkeypatch.setattr(kirin.compaction, "BLOCKS", 2)
    root = str(tmp_path / "registry")
    run_writers(root, writers=3, commits=20, tmp=tmp_path, checkpoint_every=4,
                segment_blocks=2)
    ds = Dataset(root, "shared")
    commits = assert_consistent(ds)
    assert len(commits) == 60
    assert assert_summaries_agree(ds, commits) >= 5  # files: 3; due at every block end
    assert assert_segments_agree(ds, commits) >= 5  # of the 7 due (#7, #15, ..., #55)
    newest = Dataset(root, "shared").history(limit=3)
    assert [c.hash for c in newest] == [c.hash for c in commits[::-1][:3]]
    assert Dataset(root, "shared").verify().ok
