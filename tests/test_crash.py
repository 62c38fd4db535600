"""A writer killed at any moment never leaves the registry unreadable or inconsistent.

Short runs of ``crash_harness`` for CI, on local disk and on S3 (moto's
server on loopback); ``scripts/crash_soak.py`` runs the same checks for
hundreds of kills.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import kirin.compaction
import kirin.journal

import crash_harness
from servers import cloud_for


@pytest.fixture(autouse=True)
def writers_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checker reads with the writers' block and segment sizes: through the segments."""
    monkeypatch.setattr(kirin.journal, "CHECKPOINT_EVERY", crash_harness.CHECKPOINT_EVERY)
    monkeypatch.setattr(kirin.compaction, "BLOCKS", crash_harness.SEGMENT_BLOCKS)


def test_sigkill_during_commits_leaves_a_valid_history(tmp_path: Path) -> None:
    """After each of many SIGKILLs the history is a valid chain and every file verifies."""
    report = crash_harness.run(str(tmp_path / "registry"), kills=20, seed=2, tmp=tmp_path)
    assert report.problems == []
    assert report.kills == 20
    assert report.commits_checked > 0
    assert report.summaries_checked > 0  # writers were killed around summaries' writes too
    assert report.segments_checked > 0  # and segments'


def test_sigkill_during_commits_on_s3_leaves_a_valid_history(
        request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The same checks with the writer committing to S3 (moto), its settings from the environment.

    Fewer kills than on local disk: each costs a writer start-up (~1 s with
    s3fs) and a commit takes ~0.1 s, so the kills are spread over up to 0.5 s
    (several commits) to land in every phase of one; the soak does hundreds.
    """
    cloud = cloud_for(request, "s3")
    with cloud.bucket() as bucket:
        target = crash_harness.Target(cloud.url(bucket, "registry"), cloud.storage_options())
        report = crash_harness.run(target, kills=8, seed=3, tmp=tmp_path, max_delay=0.5)
    assert report.problems == []
    assert report.kills == 8
    assert report.commits_checked > 8  # at least the first commit of every writer, and more
    assert report.summaries_checked > 0
    assert report.segments_checked > 0


def test_sigkill_while_creating_and_deleting_datasets_keeps_the_catalog_exact(
        tmp_path: Path) -> None:
    """Killed anywhere in a creation, a first commit or a deletion (around the catalog
    markers), the catalog lists exactly the datasets the objects define."""
    report = crash_harness.run_catalog(str(tmp_path / "registry"), kills=8, seed=5,
                                       tmp=tmp_path, max_delay=0.3)
    assert report.problems == []  # a writer that never got to deleting is one too
    assert report.kills == 8
    assert report.commits_checked >= 8  # each writer's last creation, at least


def test_sigkill_while_creating_and_deleting_datasets_on_s3_keeps_the_catalog_exact(
        request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The same on S3 (moto), where a creation or deletion is several requests long."""
    cloud = cloud_for(request, "s3")
    with cloud.bucket() as bucket:
        target = crash_harness.Target(cloud.url(bucket, "registry"), cloud.storage_options())
        report = crash_harness.run_catalog(target, kills=4, seed=6, tmp=tmp_path,
                                           max_delay=0.6)
    assert report.problems == []
    assert report.kills == 4
    assert report.commits_checked >= 4


def test_the_checks_catch_a_partial_commit_and_a_lost_one(tmp_path: Path) -> None:
    """The harness's own checks are not vacuous: a torn or a missing commit is reported."""
    target = crash_harness.Target(str(tmp_path / "registry"))
    ds = target.dataset()
    for step in range(3):
        sources = {}
        for k in range(crash_harness.FILES_PER_COMMIT):
            stale = step == 2 and k == 1  # commit 2 keeps the previous content of f1
            path = tmp_path / f"s{step}-f{k}.bin"
            path.write_bytes(crash_harness.expected_content("k0", step - stale, k))
            sources[f"{crash_harness.FOLDER}/f{k}.bin"] = str(path)
        ds.commit(f"step {step}", add_files=sources, metadata={"worker": "k0", "step": step})
    commits = list(reversed(target.dataset().history()))
    assert crash_harness.check_commits(commits[:2], {"k0": 2}, "k0") == []
    assert crash_harness.check_commits(commits[:2], {"k0": 1}, "k0") == []  # one unreported
    [torn] = crash_harness.check_commits(commits, {"k0": 3}, "k0")
    assert "step 2) is not whole" in torn
    [lost] = crash_harness.check_commits(commits[:2], {"k0": 3}, "k0")
    assert "2 commits in the history, 3 reported" in lost
    [late] = crash_harness.check_commits(commits[:2], {"k0": 1, "k1": 0}, "k1")
    assert "(checked earlier)" in late
