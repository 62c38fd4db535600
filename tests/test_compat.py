"""Code written for the original Kirin (0.0.x) runs unchanged (issue 15, part 1).

Each test mirrors calls of the original project's public-API tests (kirin
0.0.15: tests/test_catalog.py, test_dataset.py, test_dataset_entity.py,
test_linear_workflow.py, test_commit_entity.py) against this package: the
same names, arguments, exception types and the message text code matches on.
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import pytest

from kirin import Catalog, Dataset
from kirin.backends import credential_options
from kirin.errors import (
    CommitNotFoundError,
    DatasetNotFoundError,
    EmptyCommitError,
    GovernedDatasetError,
    InvalidArgumentTypeError,
    InvalidInputError,
    KirinError,
    LocalFileNotFoundError,
    StorageError,
)

from conftest import write
from dataset_helpers import ACCURACY_REQUIRED as POLICY
from roots import RegistryRoot
from servers import S3_KEY, S3_SECRET, azure_connection_string, cloud_for


def two_commits(root: Path | str, workdir: Path, **options: object) -> tuple[Dataset, str, str]:
    ds = Dataset(root, "ds", **options)  # type: ignore[arg-type]
    first = ds.commit("first", add_files=[write(workdir, "a.txt", "a")])
    second = ds.commit("second", add_files=[write(workdir, "b.txt", "b")])
    return ds, first, second


# -- messages code matches on ------------------------------------------------------------


class TestOriginalMessages:
    """The original's message text starts Kirin's message; the types still match."""

    def test_checkout_of_an_empty_dataset(self, root: Path) -> None:
        with pytest.raises(ValueError, match=r"^No commits found in dataset") as info:
            Dataset(root, "empty").checkout()
        assert isinstance(info.value, CommitNotFoundError)

    @pytest.mark.parametrize("kwargs", [{}, {"add_files": [], "remove_files": []}])
    def test_commit_with_nothing(self, root: Path, kwargs: dict[str, list[str]]) -> None:
        with pytest.raises(ValueError, match=r"^No changes specified") as info:
            Dataset(root, "ds").commit("Test commit", **kwargs)  # type: ignore[arg-type]
        assert isinstance(info.value, EmptyCommitError)
        assert "add_files" in str(info.value)  # Kirin's own hint follows

    def test_checkout_of_an_unknown_commit(self, root: Path, workdir: Path) -> None:
        ds, _, _ = two_commits(root, workdir)
        with pytest.raises(ValueError, match=r"^Commit not found") as info:
            ds.checkout("nonexistent_hash")
        assert isinstance(info.value, CommitNotFoundError)
        assert "'nonexistent_hash'" in str(info.value)

    def test_checkout_by_ref_of_an_empty_dataset(self, root: Path) -> None:
        with pytest.raises(ValueError, match=r"^Commit not found.*no commits yet"):
            Dataset(root, "empty").checkout("abc123")

    def test_compare_with_an_unknown_commit(self, root: Path, workdir: Path) -> None:
        ds, first, _ = two_commits(root, workdir)
        for pair in [(first, "feedbeef"), ("feedbeef", first)]:
            with pytest.raises(ValueError, match=r"^One or both commits not found") as info:
                ds.compare_commits(*pair)
            assert isinstance(info.value, CommitNotFoundError)
            assert "'feedbeef'" in str(info.value)

    def test_local_files_unknown_name(self, root: Path, workdir: Path) -> None:
        ds, _, second = two_commits(root, workdir)
        with ds.local_files() as local_files:
            with pytest.raises(KeyError, match=r"File not found: nonexistent\.txt") as info:
                local_files["nonexistent.txt"]
            assert local_files.get("nonexistent.txt") is None  # Mapping.get still works
        assert isinstance(info.value, LocalFileNotFoundError)
        assert isinstance(info.value, FileNotFoundError)
        assert second[:12] in str(info.value)

    def test_missing_file_reads(self, root: Path, workdir: Path) -> None:
        ds, _, _ = two_commits(root, workdir)
        for call in (lambda: ds.read_file("nonexistent.txt"),
                     lambda: ds.open_file("nonexistent.txt"),
                     lambda: ds.download_file("nonexistent.txt", workdir / "out.txt")):
            with pytest.raises(FileNotFoundError, match=r"^File not found"):
                call()


# -- commits, info, to_dict ----------------------------------------------------------------


def test_commit_is_initial(root: Path, workdir: Path) -> None:
    ds, first, second = two_commits(root, workdir)
    assert ds.get_commit(first).is_initial  # type: ignore[union-attr]
    assert not ds.get_commit(second).is_initial  # type: ignore[union-attr]
    assert [c.is_initial for c in ds.history()] == [False, True]


def test_get_info_has_the_original_keys(root: Path, workdir: Path) -> None:
    """The original's test_dataset_info_workflow, plus every key it returned."""
    ds = Dataset(root_dir=root, name="test_dataset", description="Test dataset")
    info = ds.get_info()
    assert (info["name"], info["description"]) == ("test_dataset", "Test dataset")
    assert info["commit_count"] == 0 and info["current_commit"] is None
    assert info["recent_commits"] == [] and info["latest_message"] is None
    hashes = [ds.commit(f"commit {i}", add_files={f"f{i}.txt": write(workdir, f"f{i}", str(i))})
              for i in range(12)]
    info = ds.get_info()
    assert info["commit_count"] == 12
    assert info["current_commit"] == info["latest_commit"] == hashes[-1]
    assert info["dataset_name"] == "test_dataset"
    assert info["latest_message"] == "commit 11"
    recent = info["recent_commits"]
    assert [c["hash"] for c in recent] == hashes[::-1][:10]  # the newest 10
    newest = ds.get_commit(hashes[-1])
    assert newest is not None
    assert recent[0] == {"hash": newest.hash, "short_hash": newest.short_hash,
                         "message": "commit 11", "timestamp": newest.timestamp.isoformat(),
                         "file_count": 12}
    assert info["latest_timestamp"] == newest.timestamp.isoformat()


def test_to_dict_has_the_original_keys(root: Path, workdir: Path) -> None:
    ds, _, second = two_commits(root, workdir)
    data = ds.to_dict()
    assert {"name", "description", "root_dir", "current_commit", "commit_count"} <= set(data)
    assert (data["current_commit"], data["commit_count"]) == (second, 2)
    assert data == ds.get_info()


# -- cleanup_orphaned_files ------------------------------------------------------------------


def orphan(registry_root: RegistryRoot, content: bytes = b"orphan") -> str:
    import hashlib

    digest = hashlib.sha256(content).hexdigest()
    registry_root.pipe(registry_root.blob_path(digest), content)
    return digest


def test_cleanup_orphaned_files_is_gc(registry_root: RegistryRoot, workdir: Path) -> None:
    """Only blobs no commit of any dataset references go, and only past the grace period;
    the result counts them (an int, as in the original) and lists their hashes."""
    ds = registry_root.dataset("one")
    ds.commit("one", add_files=[write(workdir, "a.txt", "shared")])
    other = registry_root.dataset("two")
    other.commit("two", add_files=[write(workdir, "b.txt", "only in two")])
    lost = orphan(registry_root)
    kept = ds.cleanup_orphaned_files()  # default grace: the fresh orphan is spared
    assert kept == 0 and kept.kept_recent == 1 and list(kept) == []
    dry = ds.cleanup_orphaned_files(dry_run=True, grace=timedelta(0))
    assert dry == 1 and dry.removed == (lost,)
    assert registry_root.exists(registry_root.blob_path(lost))
    removed = ds.cleanup_orphaned_files(grace=timedelta(0))
    assert isinstance(removed, int) and removed == 1 and removed > 0
    assert list(removed) == [lost] and removed.bytes_freed == len(b"orphan")
    assert not registry_root.exists(registry_root.blob_path(lost))
    # the other dataset's blob, referenced by no commit of *this* dataset, is still there
    assert registry_root.dataset("two").read_file("b.txt") == "only in two"
    assert registry_root.dataset("one").read_file("a.txt") == "shared"
    assert ds.cleanup_orphaned_files(grace=timedelta(0)) == 0


# -- delete_dataset -----------------------------------------------------------------------


class TestDeleteDataset:
    def test_the_original_test(self, registry_root: RegistryRoot, workdir: Path) -> None:
        """The original's test_delete_dataset, and what is (and is not) removed."""
        catalog = registry_root.catalog()
        dataset = catalog.create_dataset("test_dataset", "Test dataset.")
        dataset.commit(message="test commit", add_files=[write(workdir, "d.txt", "dummy")])
        keep = catalog.create_dataset("keep")
        keep.commit(message="kept", add_files=[write(workdir, "d.txt", "dummy")])
        assert "test_dataset" in catalog.datasets()
        catalog.delete_dataset("test_dataset")
        assert "test_dataset" not in catalog.datasets()
        assert catalog.datasets() == ["keep"] and len(catalog) == 1
        assert not [p for p in registry_root.objects(registry_root.join("datasets"))
                    if p.startswith("test_dataset/")]
        # shared blobs stay (gc's job); the other dataset still reads them
        assert Dataset(registry_root.url, "keep", **registry_root.storage_options).read_file(
            "d.txt") == "dummy"
        # the name is free again, starting from an empty history
        again = registry_root.dataset("test_dataset")
        assert again.is_empty()
        again.commit("new life", add_files=[write(workdir, "e.txt", "e")])
        assert [c.message for c in again.history()] == ["new life"]

    def test_not_found(self, registry_root: RegistryRoot) -> None:
        catalog = registry_root.catalog()
        with pytest.raises(ValueError, match="not found") as info:
            catalog.delete_dataset("nonexistent")
        assert isinstance(info.value, DatasetNotFoundError)
        assert isinstance(info.value, KirinError) and info.value.name == "nonexistent"

    def test_an_empty_created_dataset(self, root: Path) -> None:
        catalog = Catalog(root)
        catalog.create_dataset("empty", "nothing yet")
        catalog.delete_dataset("empty")
        assert catalog.datasets() == []
        assert not (root / "datasets" / "empty").exists()  # no empty folders left behind
        with pytest.raises(DatasetNotFoundError):
            catalog.delete_dataset("empty")

    def test_a_governed_dataset_needs_a_yes(self, root: Path, workdir: Path) -> None:
        catalog = Catalog(root)
        ds = catalog.create_dataset("gov", policy=POLICY)
        ds.commit("m", add_files=[write(workdir, "a.txt", "a")], metadata={"accuracy": 0.9})
        with pytest.raises(GovernedDatasetError, match="governed=True"):
            catalog.delete_dataset("gov")
        assert "gov" in catalog.datasets() and len(Dataset(root, "gov").history()) == 1
        # a policy removed since still left an audit trail
        ds.set_policy(None)
        with pytest.raises(GovernedDatasetError):
            catalog.delete_dataset("gov")
        catalog.delete_dataset("gov", governed=True)
        assert catalog.datasets() == []
        assert Dataset(root, "gov").policy is None

    def test_an_interrupted_deletion_fails_closed_and_finishes(self, root: Path,
                                                                workdir: Path) -> None:
        """Killed after the first log entry went: readers refuse (no shorter history is
        ever shown), the dataset is still listed (dataset.json goes last), and deleting
        again finishes the job."""
        two_commits(root, workdir)
        (root / "datasets" / "ds" / "log" / "00000000000000000000.json").unlink()
        catalog = Catalog(root)
        assert "ds" in catalog.datasets()
        with pytest.raises(StorageError):
            Dataset(root, "ds").history()
        catalog.delete_dataset("ds")
        assert not (root / "datasets" / "ds").exists()
        assert Dataset(root, "ds").is_empty()

    def test_invalid_name(self, root: Path) -> None:
        with pytest.raises(InvalidInputError):
            Catalog(root).delete_dataset("../x")


# -- credentials as constructor arguments ---------------------------------------------------


class TestCredentialMapping:
    """Each argument becomes its cloud's storage option; others are ignored."""

    ARGS: ClassVar[dict[str, str]] = {
        "aws_profile": "prof", "gcs_token": "tok", "gcs_project": "proj",
        "azure_account_name": "acct", "azure_account_key": "key",
        "azure_connection_string": "conn"}

    @pytest.mark.parametrize(("url", "expected"), [
        ("s3://b/r", {"profile": "prof"}),
        ("s3a://b/r", {"profile": "prof"}),
        ("gs://b/r", {"token": "tok", "project": "proj"}),
        ("gcs://b/r", {"token": "tok", "project": "proj"}),
        ("az://c/r", {"account_name": "acct", "account_key": "key",
                      "connection_string": "conn"}),
        ("abfs://c/r", {"account_name": "acct", "account_key": "key",
                        "connection_string": "conn"}),
        ("/local/folder", {}),
        ("memory://r", {}),
    ])
    def test_mapping(self, url: str, expected: dict[str, str]) -> None:
        assert credential_options(url, {}, self.ARGS) == expected

    def test_chained_url_gets_them_on_its_link(self) -> None:
        options = credential_options("simplecache::s3://b/r", {"s3": {"anon": False}},
                                     {"aws_profile": "prof"})
        assert options == {"s3": {"anon": False, "profile": "prof"}}

    def test_path_token_and_conflicts(self) -> None:
        assert credential_options("gs://b", {}, {"gcs_token": Path("/k.json")}) == {
            "token": os.fspath(Path("/k.json"))}
        assert credential_options("s3://b", {"profile": "p"}, {"aws_profile": "p"}) == {
            "profile": "p"}
        with pytest.raises(InvalidInputError, match="'profile'") as info:
            credential_options("s3://b", {"profile": "p"}, {"aws_profile": "q"})
        assert "q" not in str(info.value).replace("'profile'", "")
        with pytest.raises(InvalidArgumentTypeError, match="azure_account_key"):
            credential_options("az://c", {}, {"azure_account_key": 123})

    def test_local_root_ignores_them(self, root: Path, workdir: Path) -> None:
        """As in the original: a local root takes (and ignores) every credential argument."""
        ds = Dataset(root, "ds", **self.ARGS)
        ds.commit("m", add_files=[write(workdir, "a.txt", "a")])
        assert Catalog(root, **self.ARGS).datasets() == ["ds"]
        assert Catalog(root, None, "prof").datasets() == ["ds"]  # positional, as declared

    def test_azure_connection_string(self, request: pytest.FixtureRequest,
                                     workdir: Path) -> None:
        cloud = cloud_for(request, "azure")
        bucket = f"kirin-{uuid.uuid4().hex[:20]}"
        cloud.create_bucket(bucket)
        url = f"az://{bucket}/registry"
        conn = azure_connection_string(cloud.endpoint)
        ds = Dataset(url, "ds", azure_connection_string=conn)
        ds.commit("m", add_files=[write(workdir, "a.txt", "azure")])
        assert Catalog(url, azure_connection_string=conn).get_dataset("ds").read_file(
            "a.txt") == "azure"
        bad = azure_connection_string(cloud.endpoint, key="d3Jvbmcta2V5LWZvci10ZXN0cw==")
        with pytest.raises(StorageError) as info:
            Dataset(url, "ds", azure_connection_string=bad).read_file("a.txt")
        assert "d3Jvbmcta2V5LWZvci10ZXN0cw==" not in str(info.value) + repr(info.value)

    def test_gcs_token_and_project(self, request: pytest.FixtureRequest,
                                   workdir: Path) -> None:
        cloud = cloud_for(request, "gcs")
        bucket = f"kirin-{uuid.uuid4().hex[:20]}"
        cloud.create_bucket(bucket)
        url = f"gs://{bucket}/registry"
        ds = Dataset(url, "ds", gcs_token="anon", gcs_project="kirin-test",
                     endpoint_url=cloud.endpoint)
        ds.commit("m", add_files=[write(workdir, "a.txt", "gcs")])
        assert Dataset(url, "ds", gcs_token="anon", endpoint_url=cloud.endpoint).read_file(
            "a.txt") == "gcs"

    def test_aws_profile(self, request: pytest.FixtureRequest, workdir: Path,
                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """The profile reaches s3fs: a known one logs in, an unknown one is refused."""
        cloud = cloud_for(request, "s3")
        bucket = f"kirin-{uuid.uuid4().hex[:20]}"
        cloud.create_bucket(bucket)
        credentials = tmp_path / "aws-credentials"
        credentials.write_text(f"[kirin-compat]\naws_access_key_id = {S3_KEY}\n"
                               f"aws_secret_access_key = {S3_SECRET}\n")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE",
                    "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(var, raising=False)
        url = f"s3://{bucket}/registry"
        ds = Dataset(url, "ds", aws_profile="kirin-compat", endpoint_url=cloud.endpoint)
        ds.commit("m", add_files=[write(workdir, "a.txt", "s3")])
        assert ds.read_file("a.txt") == "s3"
        with pytest.raises(Exception, match="no-such-profile"):
            Dataset(url, "ds", aws_profile="no-such-profile",
                    endpoint_url=cloud.endpoint).read_file("a.txt")
