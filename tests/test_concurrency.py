"""Several real processes committing to one dataset at once lose nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from kirin import Dataset

from registry_checks import assert_consistent

WORKER = str(Path(__file__).with_name("workers.py"))


def run_writers(root: str, writers: int, commits: int, tmp: Path, files: int = 1) -> None:
    """Start ``writers`` processes at the same instant and wait for all of them."""
    start_at = time.time() + 1.5  # enough for every interpreter to import kirin
    procs = [
        subprocess.Popen(
            [sys.executable, WORKER, root, "shared", f"w{i}", "--count", str(commits),
             "--start-at", str(start_at), "--files", str(files)],
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
