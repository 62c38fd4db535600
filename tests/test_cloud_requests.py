"""On S3 (moto's server), the HTTP requests a small commit makes on a dataset already open,
counted by a proxy (issue 16: at most five without a policy).

A small commit looks once at each of the three write-once logs it depends on
(its commit log, its policy log, the root's policy log: one listing each),
sends its new blob created-if-absent (no ``HEAD`` first) and creates its log
entry. The create-if-absent probe runs once per bucket and process, not per
commit nor per ``Dataset``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from kirin import Dataset

from latency import LatencyProxy
from servers import Cloud, cloud_for

POLICY = """\
version: 1
metadata:
  schema:
    type: object
    properties:
      accuracy: {type: number, minimum: 0, maximum: 1}
    required: [accuracy]
"""

#: One listing of each log, the new blob, the new log entry.
SMALL_COMMIT = Counter({("LIST", "log"): 1, ("LIST", "policy"): 2, ("PUT", "blob"): 1,
                        ("PUT", "log"): 1})


@pytest.fixture
def proxied(request: pytest.FixtureRequest) -> Iterator[tuple[Cloud, LatencyProxy, str]]:
    """(the S3 server reached through a counting proxy, the proxy, a fresh bucket)."""
    cloud = cloud_for(request, "s3")
    proxy = LatencyProxy(int(cloud.endpoint.rsplit(":", 1)[1]))
    try:
        with cloud.bucket() as bucket:
            yield cloud.at(proxy.endpoint), proxy, bucket
    finally:
        proxy.close()


def commit_counted(ds: Dataset, proxy: LatencyProxy, source: Path, content: str
                   ) -> Counter[tuple[str, str]]:
    source.write_text(content)
    proxy.take()
    ds.commit(f"commit {content}", add_files={"note.txt": str(source)},
              metadata={"accuracy": 0.5})
    return proxy.take()


def test_a_small_commit_makes_five_requests_and_the_probe_runs_once(
        proxied: tuple[Cloud, LatencyProxy, str], tmp_path: Path) -> None:
    via, proxy, bucket = proxied
    ds = Dataset(via.url(bucket, "reg"), "ds", **via.storage_options())
    source = tmp_path / "note.txt"
    first = commit_counted(ds, proxy, source, "first")
    # the probe (two creates of one object, then its removal) and dataset.json
    assert first[("PUT", "other")] == 3 and first[("DELETE", "other")] == 1
    for i in range(3):
        assert commit_counted(ds, proxy, source, f"n{i}") == SMALL_COMMIT
    again = Dataset(via.url(bucket, "reg"), "ds", **via.storage_options())
    again.current_commit  # noqa: B018 - open first: the commit alone is counted
    made = commit_counted(again, proxy, source, "from another Dataset object")
    assert made == SMALL_COMMIT  # no probe again in this process and bucket


def test_under_a_policy_a_small_commit_makes_the_same_five_requests(
        proxied: tuple[Cloud, LatencyProxy, str], tmp_path: Path) -> None:
    via, proxy, bucket = proxied
    ds = Dataset(via.url(bucket, "reg"), "ds", **via.storage_options())
    policy = tmp_path / "kirin.yaml"
    policy.write_text(POLICY)
    ds.set_policy(str(policy))
    source = tmp_path / "note.txt"
    commit_counted(ds, proxy, source, "first")
    for i in range(3):
        assert commit_counted(ds, proxy, source, f"n{i}") == SMALL_COMMIT
    # content already stored: the refused create is followed by a look at its age (to
    # freshen it against gc) and, after publication, a check that gc did not remove it
    made = commit_counted(ds, proxy, source, "n0")
    assert made == SMALL_COMMIT + Counter({("HEAD", "blob"): 2})


def test_a_policy_set_by_another_writer_judges_the_next_commit(
        proxied: tuple[Cloud, LatencyProxy, str], tmp_path: Path) -> None:
    """The policy logs are read once per commit, not never: a policy set meanwhile applies."""
    via, proxy, bucket = proxied
    ds = Dataset(via.url(bucket, "reg"), "ds", **via.storage_options())
    source = tmp_path / "note.txt"
    commit_counted(ds, proxy, source, "first")
    other = Dataset(via.url(bucket, "reg"), "ds", **via.storage_options())
    policy = tmp_path / "kirin.yaml"
    policy.write_text(POLICY)
    other.set_policy(str(policy))
    source.write_text("second")
    from kirin.errors import PolicyViolationError

    with pytest.raises(PolicyViolationError):
        ds.commit("no metadata", add_files={"note.txt": str(source)})
