"""A writer killed at any moment never leaves the registry unreadable or inconsistent."""

from __future__ import annotations

from pathlib import Path

import crash_harness


def test_sigkill_during_commits_leaves_a_valid_history(tmp_path: Path) -> None:
    """After each of many SIGKILLs the history is a valid chain and every file verifies."""
    report = crash_harness.run(str(tmp_path / "registry"), kills=20, seed=2, tmp=tmp_path)
    assert report.problems == []
    assert report.kills == 20
    assert report.commits_checked > 0
