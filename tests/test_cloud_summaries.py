"""On S3 (moto's server), real HTTP requests counted by a proxy: opening a dataset and
reading its newest commits costs the same requests at 500 and 1,500 commits (1,000 and 3,000
on ``memory://`` in ``test_summaries.py``: uploading to moto is the slow part here).

The histories are written in the real storage format (``latency.synthesize``)
and uploaded; the dataset is then read through :class:`latency.LatencyProxy`
(no delay here: only the counts matter; ``benchmarks/bench_latency.py`` adds
one and times it).
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fsspec.implementations.memory import MemoryFileSystem

import kirin.compaction
from kirin import Dataset

from latency import LatencyProxy, synthesize, upload
from servers import Cloud, cloud_for


@pytest.fixture
def proxied(request: pytest.FixtureRequest) -> Iterator[tuple[Cloud, Cloud, LatencyProxy]]:
    """(the S3 server, the same reached through a counting proxy, the proxy)."""
    cloud = cloud_for(request, "s3")
    proxy = LatencyProxy(int(cloud.endpoint.rsplit(":", 1)[1]))
    try:
        yield cloud, cloud.at(proxy.endpoint), proxy
    finally:
        proxy.close()


@pytest.fixture
def memory_url() -> Iterator[str]:
    path = f"/kirin-cloud-summaries/{uuid.uuid4().hex}"
    yield f"memory:/{path}/reg"
    with contextlib.suppress(FileNotFoundError):
        MemoryFileSystem().rm(path, recursive=True)


def requests_of(via: Cloud, proxy: LatencyProxy, url: str,
                action: Callable[[Dataset], object]) -> Counter[tuple[str, str]]:
    """The HTTP requests ``action`` makes on a freshly opened dataset (opening included)."""
    ds = Dataset(url, "ds", **via.storage_options())
    proxy.take()
    action(ds)
    return proxy.take()


def test_opening_on_s3_costs_the_same_requests_at_500_and_1500_commits(
        proxied: tuple[Cloud, Cloud, LatencyProxy], memory_url: str, tmp_path: Path) -> None:
    cloud, via, proxy = proxied
    with cloud.bucket() as bucket:
        hashes = {}
        for commits in (500, 1500):
            source = f"{memory_url}{commits}"
            hashes[commits] = synthesize(source, commits)
            upload(source, cloud.filesystem(), f"{bucket}/reg{commits}")
        for action in (lambda ds: ds.current_commit, lambda ds: ds.history(limit=10)):
            counts = {n: requests_of(via, proxy, via.url(bucket, f"reg{n}"), action)
                      for n in hashes}
            assert counts[500] == counts[1500]
            made = counts[1500]
            assert made[("GET", "summary")] == 1
            assert made[("GET", "checkpoint")] == 1
            assert made[("GET", "log")] == 1  # the summary's commit
            # and three listings (summaries, checkpoints and log entries after it): nothing
            # else; S3's listings are strongly consistent, so no probe past the last entry
            assert made[("LIST", "log")] == 1
            assert sum(made.values()) == 6, made
        last = Dataset(via.url(bucket, "reg1500"), "ds", **via.storage_options())
        assert [c.hash for c in last.history(limit=10)] == hashes[1500][::-1][:10]
        proxy.take()
        assert [c.hash for c in last.history()] == hashes[1500][::-1]
        older = proxy.take()  # 15 blocks, one held: read concurrently, never entry by entry
        assert older[("GET", "checkpoint")] == 14
        assert older[("LIST", "log")] == 1  # only the look for newer commits
        assert older[("GET", "log")] == 0
        (tmp_path / "n.txt").write_text("note")
        last.commit("a small commit", add_files={"n.txt": str(tmp_path / "n.txt")})
        small = proxy.take()
        assert not {k for _, k in small} & {"summary", "checkpoint"}


def test_a_full_history_on_s3_reads_a_segment_per_span(
        proxied: tuple[Cloud, Cloud, LatencyProxy], memory_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Segments of 200 commits (2 blocks of 100): a full history of 600 commits, opened from
    the summary at #599, is one listing of the segments and three reads, and nothing else
    but the look for newer commits; without segments, the 5 checkpoints below #500."""
    monkeypatch.setattr(kirin.compaction, "BLOCKS", 2)
    cloud, via, proxy = proxied
    with cloud.bucket() as bucket:
        hashes = synthesize(memory_url, 600)
        upload(memory_url, cloud.filesystem(), f"{bucket}/reg")
        url = via.url(bucket, "reg")
        made = requests_of(via, proxy, url, lambda ds: ds.history())
        assert made[("GET", "segment")] == 3 and made[("LIST", "segment")] == 1
        assert made[("GET", "checkpoint")] == 1  # opening's: #500-#598 before the summary
        assert sum(made.values()) == 6 + 4, made  # opening, then 4 (and the log's listing)
        ds = Dataset(url, "ds", **via.storage_options())
        assert [c.hash for c in ds.history()] == hashes[::-1]
        for last in (199, 399, 599):
            cloud.filesystem().rm_file(f"{bucket}/reg/datasets/ds/segments/{last:020d}.jsonl")
        made = requests_of(via, proxy, url, lambda ds: ds.history())
        assert made[("GET", "segment")] == 0
        assert made[("GET", "checkpoint")] == 1 + 5
