"""Garbage collection removes only what no commit needs, even with commits in flight."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from kirin import Catalog, Dataset
from kirin.journal import Journal
from kirin.store import FRESHEN_AFTER

from conftest import write
from registry_checks import assert_consistent

HOUR = timedelta(hours=1)


def age(path: Path, seconds: float) -> None:
    """Make ``path`` look last modified ``seconds`` ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def blob(root: Path, digest: str) -> Path:
    return root / "data" / digest[:2] / digest[2:]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "reg"


def orphan(root: Path, workdir: Path, content: bytes) -> str:
    """Store a blob that no commit references (as a rejected or crashed commit leaves)."""
    ds = Dataset(root, "scratch")
    digest = ds.commit("tmp", add_files={"x": write(workdir, "orphan", content)})
    file = ds.get_file("x")
    assert file is not None
    file_hash = file.hash
    log = root / "datasets" / "scratch"
    for path in sorted(log.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    assert digest
    return file_hash


def test_gc_removes_old_unreferenced_blobs_only(root: Path, workdir: Path) -> None:
    """Old orphans go; referenced blobs and young orphans stay; verify stays clean."""
    ds = Dataset(root, "models")
    ds.commit("keep", add_files={"m.pt": write(workdir, "m", b"kept")})
    kept_file = ds.get_file("m.pt")
    assert kept_file is not None
    kept = kept_file.hash
    old, young = orphan(root, workdir, b"old orphan"), orphan(root, workdir, b"young orphan")
    age(blob(root, old), 2 * 3600)
    age(blob(root, kept), 2 * 3600)
    dry = Catalog(root).gc(dry_run=True, grace=HOUR)
    assert dry.removed == (old,) and dry.kept_recent == 1 and dry.blobs_referenced == 1
    assert blob(root, old).exists()
    report = Catalog(root).gc(grace=HOUR)
    assert report.removed == (old,) and report.bytes_freed == len(b"old orphan")
    assert not blob(root, old).exists()
    assert blob(root, young).exists() and blob(root, kept).exists()
    assert ds.verify().ok


def test_gc_removes_abandoned_partial_uploads(root: Path, workdir: Path) -> None:
    """A crashed commit's old tmp/*.part file is removed; a fresh one (in flight) is not."""
    Dataset(root, "models").commit("x", add_files={"a": write(workdir, "a", b"a")})
    stale, fresh = root / "tmp" / "dead.part", root / "tmp" / "live.part"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    age(stale, 2 * 3600)
    report = Catalog(root).gc(grace=HOUR)
    assert report.temp_removed == 1
    assert not stale.exists() and fresh.exists()


def test_a_commit_reusing_an_old_orphan_freshens_it(root: Path, workdir: Path) -> None:
    """Re-adding content whose blob is an old orphan renews it, so gc keeps it."""
    digest = orphan(root, workdir, b"reused content")
    age(blob(root, digest), FRESHEN_AFTER + 3600)
    Dataset(root, "models").commit("reuse", add_files={"r": write(workdir, "r", b"reused content")})
    assert time.time() - blob(root, digest).stat().st_mtime < 60
    assert Catalog(root).gc(grace=HOUR).removed == ()


def test_a_blob_removed_by_a_racing_gc_is_restored_by_the_commit(
        root: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If gc deletes a reused blob between upload and publication, the commit puts it back."""
    digest = orphan(root, workdir, b"contested")
    publish = Journal.publish

    def gc_strikes_first(self: Journal, record: dict, *args: object) -> bool:  # type: ignore[type-arg]
        blob(root, digest).unlink(missing_ok=True)
        return publish(self, record, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Journal, "publish", gc_strikes_first)
    ds = Dataset(root, "models")
    ds.commit("contested", add_files={"c": write(workdir, "c", b"contested")})
    assert blob(root, digest).exists()
    assert ds.read_file("c", mode="rb") == b"contested"


def test_gc_alongside_a_committing_process_loses_nothing(root: Path, tmp_path: Path) -> None:
    """A writer re-adding content whose blobs are old orphans races gc: nothing is lost."""
    contents = [f"w:{step}:{k}\n".encode() * (1 + step % 7) for step in range(40)
                for k in range(2)]
    digests = [orphan(root, tmp_path, content) for content in contents]
    for digest in digests:  # orphans old enough for any gc to collect
        age(blob(root, digest), 3 * 3600)
    worker = Path(__file__).with_name("workers.py")
    proc = subprocess.Popen(
        [sys.executable, str(worker), str(root), "busy", "w", "--count", "40", "--files", "2",
         "--folder", "m", "--pause", "0.03"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "KIRIN_WORKER_TMP": str(tmp_path)})
    # gc starts once the writer is committing, and the writer paces its commits, so the
    # collections overlap its work whatever this machine's speed (it once finished all 40
    # during the first gc, which then raced nothing)
    assert proc.stdout is not None and proc.stdout.readline().startswith("committed w 0")
    runs = removed = 0
    while proc.poll() is None:
        removed += len(Catalog(root).gc(grace=timedelta(seconds=30)).removed)
        runs += 1
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert runs > 1 and removed > 0  # gc did collect orphans the writer had not reached yet
    assert len(assert_consistent(Dataset(root, "busy"))) == 40
    assert Dataset(root, "busy").verify().ok


def test_negative_grace_is_refused(root: Path) -> None:
    """A negative grace period is an input error."""
    with pytest.raises(ValueError, match="grace"):
        Catalog(root).gc(grace=timedelta(seconds=-1))
