"""Damage that must never lose data or loosen the gate, on every backend.

Each test deletes, alters or half-writes what a careless colleague with bucket
access (or a crash) could, then checks the promise: garbage collection keeps
every blob a record may reference, a hole in a log is found wherever the log
is read, a deleted policy version fails closed, and a governed dataset is
never visible without its policy.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from kirin import Catalog, Dataset
from kirin.errors import CorruptObjectError, DatasetExistsError, PolicyViolationError

from roots import RegistryRoot, open_backend

LAX = "version: 1\nmetadata:\n  schema:\n    type: object\n"
STRICT = textwrap.dedent("""\
    version: 1
    metadata:
      schema:
        type: object
        required: [accuracy]
        properties:
          accuracy: {type: number, minimum: 0.9}
    """)


def policy_path(root: RegistryRoot, dataset: str, seq: int) -> str:
    return root.join("datasets", dataset, "policy", f"{seq:020d}.json")


def commit_files(root: RegistryRoot, ds: Dataset, tmp_path: Path, count: int) -> list[str]:
    """``count`` commits, each adding a file of its own content; returns their hashes."""
    hashes = []
    for i in range(count):
        source = tmp_path / f"f{i}.txt"
        source.write_text(f"content {i}\n")
        hashes.append(ds.commit(f"commit {i}", add_files={f"f{i}.txt": str(source)}))
    return hashes


def blobs(root: RegistryRoot) -> set[str]:
    return {rel for rel in root.objects(root.join("data"))}


# -- 1. garbage collection never removes what a record references ----------------------------


def test_gc_stops_at_a_hole_in_the_log_and_removes_nothing(
        registry_root: RegistryRoot, tmp_path: Path) -> None:
    """A log entry deleted in the middle stops gc with an error naming the dataset and the
    entry; every blob is still there, including those only later commits reference."""
    ds = registry_root.dataset("models")
    commit_files(registry_root, ds, tmp_path, 6)
    before = blobs(registry_root)
    registry_root.rm(registry_root.log_path("models", 2))
    with pytest.raises(CorruptObjectError) as caught:
        registry_root.catalog().gc(grace=timedelta(0))
    assert "'models'" in str(caught.value) and f"{2:020d}.json" in str(caught.value)
    assert "nothing was removed" in str(caught.value)
    assert blobs(registry_root) == before
    with pytest.raises(CorruptObjectError):  # and the dry run says the same
        registry_root.catalog().gc(grace=timedelta(0), dry_run=True)


def test_gc_stops_at_an_altered_record(registry_root: RegistryRoot, tmp_path: Path) -> None:
    """A record that no longer matches its hash stops gc: what it references is unknown."""
    ds = registry_root.dataset("models")
    commit_files(registry_root, ds, tmp_path, 3)
    before = blobs(registry_root)
    path = registry_root.log_path("models", 1)
    registry_root.pipe(path, registry_root.cat(path).replace(b"commit 1", b"commit X"))
    with pytest.raises(CorruptObjectError, match="'models'"):
        registry_root.catalog().gc(grace=timedelta(0))
    assert blobs(registry_root) == before


def test_gc_still_removes_unreferenced_blobs_of_a_sound_log(
        registry_root: RegistryRoot, tmp_path: Path) -> None:
    """The safety does not stop gc from doing its job on a registry without damage."""
    ds = registry_root.dataset("models")
    commit_files(registry_root, ds, tmp_path, 2)
    orphan = tmp_path / "orphan.txt"
    orphan.write_text("nobody commits me")
    staged = ds._store.stage(str(orphan))
    ds._store.publish(staged)
    report = registry_root.catalog().gc(grace=timedelta(0))
    assert report.removed == (staged.digest,)
    assert len(blobs(registry_root)) == 2


@pytest.mark.storage_free
def test_gc_grace_must_be_a_timedelta(registry_root: RegistryRoot) -> None:
    with pytest.raises(ValueError, match="timedelta") as caught:
        registry_root.catalog().gc(grace=5)  # type: ignore[arg-type]
    assert type(caught.value).__module__ == "kirin.errors"


# -- 13. verify reports damage, it does not stop at it ---------------------------------------


def test_verify_reports_a_hole_and_a_folder_in_place_of_a_record(
        registry_root: RegistryRoot, tmp_path: Path) -> None:
    ds = registry_root.dataset("models")
    commit_files(registry_root, ds, tmp_path, 5)
    registry_root.rm(registry_root.log_path("models", 1))
    folder_entry = registry_root.log_path("models", 3)
    registry_root.rm(folder_entry)
    registry_root.pipe(f"{folder_entry}/inside", b"x")  # a folder where a record was
    report = registry_root.dataset("models").verify()
    paths = sorted(p.path.rsplit("/", 1)[-1] for p in report.problems if p.kind == "record")
    assert paths == [f"{1:020d}.json", f"{3:020d}.json"]
    assert not report.ok
    with pytest.raises(CorruptObjectError):
        registry_root.dataset("models").history()


# -- 3. a deleted policy version fails closed ------------------------------------------------


def governed(root: RegistryRoot, tmp_path: Path) -> Dataset:
    """Policy #0 lax, #1 strict; one commit admitted by the strict one."""
    lax, strict = tmp_path / "lax.yaml", tmp_path / "strict.yaml"
    lax.write_text(LAX)
    strict.write_text(STRICT)
    ds = root.catalog().create_dataset("models", policy=str(lax))
    ds.set_policy(str(strict))
    source = tmp_path / "model.bin"
    source.write_bytes(b"good model")
    ds.commit("good", add_files=[str(source)], metadata={"accuracy": 0.95})
    return ds


def test_a_deleted_newest_policy_version_refuses_every_commit(
        registry_root: RegistryRoot, tmp_path: Path) -> None:
    """Without its newest version, the policy history would fall back to the lax one: the
    commit the strict policy admitted names a policy the history lacks, so nothing is
    judged (commit, validate, promote refuse) and nothing is written."""
    governed(registry_root, tmp_path)
    registry_root.rm(policy_path(registry_root, "models", 1))
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"bad model")
    ds = registry_root.dataset("models")
    before = registry_root.objects()
    with pytest.raises(CorruptObjectError, match="missing from the policy history"):
        ds.commit("bad", add_files=[str(bad)], metadata={"accuracy": 0.1})
    with pytest.raises(CorruptObjectError, match="missing from the policy history"):
        ds.validate("bad", add_files=[str(bad)], metadata={"accuracy": 0.1})
    head = ds.current_commit
    assert head is not None
    with pytest.raises(CorruptObjectError, match="missing from the policy history"):
        ds.promote(head.hash, ["release"])
    assert registry_root.objects() == before
    problems = [p for p in ds.verify().problems if p.kind == "policy"]
    assert len(problems) == 1 and problems[0].commits == (head.hash,)
    (commit, report), = ds.audit()
    assert commit.hash == head.hash
    assert [v.rule for v in report.violations] == ["policy-history"]


def test_a_hole_in_the_policy_history_refuses_every_commit(
        registry_root: RegistryRoot, tmp_path: Path) -> None:
    """A version deleted in the middle (later ones remain) is a hole: every read of the
    policy fails closed, verify and audit report it."""
    ds = governed(registry_root, tmp_path)
    ds.set_policy(str(tmp_path / "lax.yaml"))
    ds.set_policy(str(tmp_path / "strict.yaml"))
    registry_root.rm(policy_path(registry_root, "models", 3))  # the newest is strict: #3
    registry_root.rm(policy_path(registry_root, "models", 1))
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"bad model")
    ds = registry_root.dataset("models")
    with pytest.raises(CorruptObjectError, match=r"Policy version #1 is missing"):
        ds.commit("bad", add_files=[str(bad)], metadata={"accuracy": 0.1})
    with pytest.raises(CorruptObjectError, match=r"Policy version #1 is missing"):
        ds.audit()
    kinds = {(p.kind, p.path.rsplit("/", 1)[-1]) for p in ds.verify().problems}
    assert ("policy", f"{1:020d}.json") in kinds
    assert len(ds.history()) == 1


def test_a_commit_without_policy_is_still_admitted_when_the_history_is_sound(
        registry_root: RegistryRoot, tmp_path: Path) -> None:
    """Failing closed is for damage only: an ungoverned dataset commits as it always did,
    and a policy removed on purpose (a version recording no policy) is honoured."""
    ds = governed(registry_root, tmp_path)
    ds.set_policy(None)
    commit_files(registry_root, ds, tmp_path, 1)
    assert registry_root.dataset("models").verify().ok


# -- 6. a governed dataset is never visible without its policy ----------------------------

CREATOR = textwrap.dedent("""\
    import os, signal, sys
    import kirin.store
    from kirin import Catalog

    url, policy, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    writes = 0
    create = kirin.store.Store.create

    def counting_create(self, path, data):
        global writes
        if not path.rsplit("/", 1)[-1].startswith(".kirin-probe"):
            writes += 1
            if writes == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return create(self, path, data)

    kirin.store.Store.create = counting_create
    Catalog(url).create_dataset("models", policy=policy)
    """)


@pytest.mark.parametrize("backend", ["local", "s3", "azure", "gcs"])
def test_a_governed_dataset_is_never_visible_without_its_policy(
        backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """A process killed before each write of create_dataset(policy=...) leaves either no
    dataset or a governed one; running the same creation again completes it."""
    strict = tmp_path / "strict.yaml"
    strict.write_text(STRICT)
    for kill_at in (1, 2):
        (tmp_path / f"k{kill_at}").mkdir()
        with open_backend(backend, request, tmp_path / f"k{kill_at}") as root:
            env = {**os.environ}
            if root.storage_options:
                protocol = root.url.split("://", 1)[0].upper()
                env[f"FSSPEC_{protocol}"] = json.dumps(root.storage_options)
            done = subprocess.run([sys.executable, "-c", CREATOR, root.url, str(strict),
                                   str(kill_at)], env=env, capture_output=True, timeout=120)
            assert done.returncode == -signal.SIGKILL, done.stderr.decode()
            catalog = root.catalog()
            if "models" in catalog.datasets():
                assert root.dataset("models").policy is not None
            ds = catalog.create_dataset("models", policy=str(strict))
            assert "models" in root.catalog().datasets()
            assert root.dataset("models").policy is not None
            assert [v.seq for v in ds.policy_history()] == [0]
            with pytest.raises(DatasetExistsError):
                catalog.create_dataset("models", policy=str(strict))


def test_an_ungoverned_half_created_dataset_is_completed(
        registry_root: RegistryRoot, tmp_path: Path) -> None:
    """A dataset.json without policy and without commits (left by an older Kirin killed
    half-way) is governed by re-running the creation with the policy."""
    strict = tmp_path / "strict.yaml"
    strict.write_text(STRICT)
    catalog = registry_root.catalog()
    catalog.create_dataset("models")
    ds = catalog.create_dataset("models", policy=str(strict))
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"bad")
    with pytest.raises(PolicyViolationError):
        ds.commit("bad", add_files=[str(bad)], metadata={"accuracy": 0.1})
    commit_files(registry_root, Dataset(registry_root.url, "other",
                                        **registry_root.storage_options), tmp_path, 1)
    with pytest.raises(DatasetExistsError):  # a dataset with commits is not taken over
        catalog.create_dataset("other", policy=str(strict))


def test_create_dataset_refuses_before_touching_an_existing_dataset(
        registry_root: RegistryRoot, tmp_path: Path) -> None:
    """Creating a dataset that exists (governed) with another policy changes nothing."""
    strict, lax = tmp_path / "strict.yaml", tmp_path / "lax.yaml"
    strict.write_text(STRICT)
    lax.write_text(LAX)
    catalog = registry_root.catalog()
    catalog.create_dataset("models", policy=str(strict))
    before = registry_root.objects()
    with pytest.raises(DatasetExistsError):
        catalog.create_dataset("models", policy=str(lax))
    assert registry_root.objects() == before


def test_catalog_lists_only_datasets_that_exist(registry_root: RegistryRoot) -> None:
    """A policy log alone (creation killed before dataset.json) is not a dataset yet."""
    registry_root.pipe(policy_path(registry_root, "ghost", 0), b"{}")
    assert "ghost" not in Catalog(registry_root.url, **registry_root.storage_options)
