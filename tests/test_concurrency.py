"""Several real processes committing to one dataset at once lose nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from kirin import Dataset

from registry_checks import assert_consistent, assert_summaries_agree

WORKER = str(Path(__file__).with_name("workers.py"))


def run_writers(root: str, writers: int, commits: int, tmp: Path, files: int = 1,
                checkpoint_every: int | None = None) -> None:
    """Start ``writers`` processes at the same instant and wait for all of them."""
    every = ["--checkpoint-every", str(checkpoint_every)] if checkpoint_every else []
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


def test_writers_racing_at_block_ends_write_whole_summaries(tmp_path: Path) -> None:
    """With a checkpoint every 4 commits, 3 writers keep completing blocks at once: each
    checkpoint and summary is written by whoever completed its block, whole and the log's,
    and a fresh reader opening from the newest summary sees the same history."""
    root = str(tmp_path / "registry")
    run_writers(root, writers=3, commits=20, tmp=tmp_path, checkpoint_every=4)
    ds = Dataset(root, "shared")
    commits = assert_consistent(ds)
    assert len(commits) == 60
    assert assert_summaries_agree(ds, commits) >= 5  # files: 3; due at every block end
    newest = Dataset(root, "shared").history(limit=3)
    assert [c.hash for c in newest] == [c.hash for c in commits[::-1][:3]]
