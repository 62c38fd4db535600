"""On S3 (moto's server), the HTTP requests a small commit makes on a dataset already open,
counted by a proxy (issue 16: at most five without a policy), and those of listing a
catalog (two, however many datasets).

A small commit looks once at each of the three write-once logs it depends on
(its commit log, its policy log, the root's policy log: one listing each),
sends its new blob created-if-absent (no ``HEAD`` first) and creates its log
entry. The create-if-absent probe runs once per bucket and process, not per
commit nor per ``Dataset``. The first commit of a dataset also creates its
``dataset.json`` and its catalog marker; a catalog lists ``datasets/`` and the
markers at once, and reads only the folders without a marker.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from kirin import Catalog, Dataset

from latency import LatencyProxy, upload
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
#: One listing of datasets/, one of the markers: for any number of datasets (up to 1,000).
LISTING = Counter({("LIST", "other"): 1, ("LIST", "marker"): 1})


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
    # the probe (two creates of one object, then its removal), dataset.json and its marker
    assert first[("PUT", "other")] == 3 and first[("DELETE", "other")] == 1
    assert first[("PUT", "marker")] == 1
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


def catalog_on(via: Cloud, bucket: str, names: list[str]) -> str:
    """A root in ``bucket`` holding datasets ``names`` (created by ``Catalog.create_dataset``
    on ``memory://``, then copied over); its URL."""
    source = f"memory://kirin-tests/{uuid.uuid4().hex}/cat"
    catalog = Catalog(source)
    for name in names:
        catalog.create_dataset(name)
    try:
        upload(source, via.filesystem(), f"{bucket}/cat")
    finally:
        MemoryFileSystem().rm(source.removeprefix("memory:/").rsplit("/", 1)[0], recursive=True)
    return via.url(bucket, "cat")


def test_listing_200_datasets_makes_two_requests(proxied: tuple[Cloud, LatencyProxy, str]
                                                 ) -> None:
    """Issue 16: not one read per dataset, two listings (made at once) whatever the number."""
    via, proxy, bucket = proxied
    names = [f"model-{i:03d}" for i in range(200)]
    url = catalog_on(via, bucket, names)
    proxy.take()
    assert Catalog(url, **via.storage_options()).datasets() == names
    assert proxy.take() == LISTING


def test_only_unmarked_folders_are_read_and_gc_marks_them(
        proxied: tuple[Cloud, LatencyProxy, str]) -> None:
    """A registry written before markers is listed right, reading only what has no marker;
    gc adds the missing markers and removes a deleted dataset's; then only the stray
    folder (never a dataset, so never marked) is read."""
    via, proxy, bucket = proxied
    names = [f"d{i}" for i in range(8)]
    url = catalog_on(via, bucket, names)
    fs = via.filesystem()
    for name in names[:3]:  # as an older Kirin wrote them
        fs.rm_file(f"{bucket}/cat/catalog/{name}")
    fs.pipe_file(f"{bucket}/cat/datasets/stray/notes.txt", b"not a dataset")
    fs.pipe_file(f"{bucket}/cat/catalog/gone", b"{}")  # its dataset deleted by an older Kirin
    proxy.take()
    catalog = Catalog(url, **via.storage_options())
    assert catalog.datasets() == names
    # dataset.json of the three and of the stray folder, the first commit of the stray only
    assert proxy.take() == LISTING + Counter({("GET", "other"): 4, ("GET", "log"): 1})
    catalog.gc()
    fs.invalidate_cache()
    assert sorted(p.rsplit("/", 1)[1] for p in fs.ls(f"{bucket}/cat/catalog")) == names
    proxy.take()
    assert catalog.datasets() == names
    assert proxy.take() == LISTING + Counter({("GET", "other"): 1, ("GET", "log"): 1})
