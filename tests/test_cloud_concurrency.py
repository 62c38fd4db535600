"""Several real processes committing to one dataset on each object-storage server.

The writers are separate programs (``tests/workers.py``) that get nothing but
the root URL and, as a user's CI job would, their storage settings from the
environment (fsspec's ``FSSPEC_<PROTOCOL>`` configuration). Every commit must
end up in one linear chain.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

import kirin.compaction
import kirin.journal
from kirin import Dataset

from registry_checks import assert_consistent, assert_segments_agree, assert_summaries_agree
from roots import CLOUD_BACKENDS
from servers import cloud_for
from test_concurrency import run_writers

WRITERS, COMMITS = 3, 8


@pytest.mark.parametrize("kind", CLOUD_BACKENDS)
def test_writers_on_one_server_make_one_linear_history(
        request: pytest.FixtureRequest, kind: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """3 processes x 8 commits racing on one dataset give 24 commits, one chain, none lost;
    with a checkpoint every 4 commits and a segment every 8, the checkpoints, summaries and
    segments racing writers create at block ends are whole and the log's (and read back)."""
    monkeypatch.setattr(kirin.journal, "CHECKPOINT_EVERY", 4)
    monkeypatch.setattr(kirin.compaction, "BLOCKS", 2)
    cloud = cloud_for(request, kind)
    for name, value in cloud.env().items():
        monkeypatch.setenv(name, value)  # inherited by the writers only
    with cloud.bucket() as bucket:
        url = cloud.url(bucket, "registry")
        run_writers(url, writers=WRITERS, commits=COMMITS, tmp=tmp_path, checkpoint_every=4,
                    segment_blocks=2)
        ds = Dataset(url, "shared", **cloud.storage_options())
        commits = assert_consistent(ds)
        assert len(commits) == WRITERS * COMMITS
        assert assert_summaries_agree(ds, commits) >= 3
        assert assert_segments_agree(ds, commits) >= 2  # of the 3 due (#7, #15, #23)
        by_writer: dict[str, list[int]] = {}
        for commit in commits:
            by_writer.setdefault(commit.metadata["worker"], []).append(commit.metadata["step"])
        assert by_writer == {f"w{i}": list(range(COMMITS)) for i in range(WRITERS)}
        order = [c.metadata["worker"] for c in commits]
        assert any(a != b for a, b in itertools.pairwise(order)), "no race happened"
