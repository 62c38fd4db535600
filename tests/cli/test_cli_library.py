"""Library additions made for the CLI: promote, references, export, fresh-instance gates."""

from __future__ import annotations

from pathlib import Path

import pytest

from kirin import Catalog, Dataset
from kirin.errors import (
    AmbiguousRefError,
    CommitNotFoundError,
    CorruptObjectError,
    FileNotInCommitError,
    InvalidInputError,
    InvalidNameError,
    PolicyViolationError,
)
from kirin.export import export_files, select_files

from cli_helpers import TEAM_POLICY, Registry, build_registry, write


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return build_registry(tmp_path)


def test_validate_on_a_fresh_dataset_object_applies_the_stored_policy(reg: Registry) -> None:
    model = write(reg.work, "x.pt", b"x")
    report = Dataset(reg.root, reg.name).validate("Fix", add_files=[model], tags=["production"])
    assert not report.ok
    assert "message.forbidden" in {v.rule for v in report.violations}


def test_a_rejected_commit_on_a_fresh_dataset_object_stages_nothing(reg: Registry) -> None:
    model = write(reg.work, "x.pt", b"never stored")
    with pytest.raises(PolicyViolationError):
        Dataset(reg.root, reg.name).commit("Fix", add_files=[model])
    assert not list((reg.root / "tmp").glob("*.part")) if (reg.root / "tmp").exists() else True


def test_promote_makes_a_commit_with_the_files_and_metadata_of_ref(reg: Registry) -> None:
    dataset = reg.open()
    digest = dataset.promote(reg.staging, ["production", "v2.1"],
                             metadata={"validated": True})
    head, source = dataset.get_commit(digest), dataset.get_commit(reg.staging)
    assert head is not None and source is not None
    assert head.parent_hash == reg.staging
    assert {n: f.hash for n, f in head.files.items()} == {
        n: f.hash for n, f in source.files.items()}
    assert head.metadata == {**source.metadata, "validated": True}
    assert list(head.tags) == ["production", "v2.1"]
    assert head.message == f"Promote {source.short_hash} to production, v2.1"
    assert head.policy_hash == dataset.policy.hash  # type: ignore[union-attr]


def test_promote_an_old_commit_restores_its_snapshot(reg: Registry) -> None:
    dataset = reg.open()
    digest = dataset.promote(reg.baseline[:10], ["validated"], "Re-release the baseline model")
    head = dataset.get_commit(digest)
    assert head is not None and sorted(head.files) == ["config.json", "model_weights.pt"]
    changes = dataset.compare_commits(reg.staging, digest)["files_diff"]
    assert changes == {"added": [], "removed": ["model.pt"], "modified": []}
    assert dataset.verify().ok


def test_promote_goes_through_the_gate_and_writes_nothing_when_rejected(reg: Registry) -> None:
    dataset = reg.open()
    report = dataset.validate_promotion(reg.staging, ["production"])
    assert [v.rule for v in report.violations] == ["promotion.production.when"]
    with pytest.raises(PolicyViolationError) as caught:
        dataset.promote(reg.staging, ["production"])
    assert caught.value.violations == report.violations
    assert len(dataset.history()) == 3


@pytest.mark.parametrize(("tags", "kwargs", "error"), [
    ([], {}, InvalidInputError),
    (["production"], {"metadata": ["not", "a", "mapping"]}, InvalidInputError),
    ([" spaced"], {}, InvalidInputError),
])
def test_promote_rejects_bad_input(reg: Registry, tags: list[str], kwargs: dict[str, object],
                                   error: type[Exception]) -> None:
    with pytest.raises(error):
        reg.open().promote(reg.staging, tags, **kwargs)  # type: ignore[arg-type]


def test_promote_refuses_a_commit_whose_content_is_gone(reg: Registry) -> None:
    dataset = reg.open()
    baseline = dataset.get_commit(reg.baseline)
    assert baseline is not None
    digest = baseline.files["config.json"].hash
    (reg.root / "data" / digest[:2] / digest[2:]).unlink()
    with pytest.raises(CorruptObjectError, match=r"config\.json"):
        dataset.promote(reg.baseline, ["validated"])


def test_resolve_ref_by_hash_prefix_tag_and_tag_prefix(reg: Registry) -> None:
    dataset = reg.open()
    assert dataset.resolve(reg.baseline).hash == reg.baseline
    assert dataset.resolve(reg.baseline[:8].upper()).hash == reg.baseline
    assert dataset.resolve("staging").hash == reg.staging
    assert dataset.resolve("tag:v1.0").hash == reg.baseline
    later = dataset.promote(reg.baseline, ["staging"], "Stage the baseline model again")
    assert dataset.resolve("staging").hash == later  # the newest carrying it
    for missing in ("nope", "tag:nope", "", "ffffffff"):
        with pytest.raises(CommitNotFoundError):
            dataset.resolve(missing)


def test_resolve_ref_reports_an_ambiguous_prefix(tmp_path: Path) -> None:
    dataset = Catalog(tmp_path / "r").create_dataset("d")
    source = write(tmp_path, "f.txt", "x")
    hashes = [dataset.commit(f"commit {i}", add_files={f"f{i}.txt": source})
              for i in range(40)]
    first = {h[0] for h in hashes}
    shared = next(c for c in first if sum(h.startswith(c) for h in hashes) > 1)
    with pytest.raises(AmbiguousRefError):
        dataset.resolve(shared)
    with pytest.raises(CommitNotFoundError, match="no commits yet"):
        Catalog(tmp_path / "r").create_dataset("empty").resolve("abc")


def test_export_files_selects_names_and_folders(reg: Registry, tmp_path: Path) -> None:
    dataset = reg.open()
    dataset.set_policy(None)
    src = write(reg.work, "a.txt", "a")
    digest = dataset.commit("Nested", add_files={"data/a.txt": src, "data/b/c.txt": src})
    commit = dataset.get_commit(digest)
    assert commit is not None
    assert [f.name for f in select_files(commit, ["data"])] == ["data/a.txt", "data/b/c.txt"]
    written = export_files(commit, tmp_path / "out", ["config.json", "data/b"])
    assert sorted(written) == ["config.json", "data/b/c.txt"]
    assert (tmp_path / "out" / "data" / "b" / "c.txt").read_text() == "a"
    with pytest.raises(FileNotInCommitError):
        export_files(commit, tmp_path / "none", ["config.json", "missing"])
    assert not (tmp_path / "none").exists()  # nothing written before every name is found
    with pytest.raises(FileNotInCommitError):
        select_files(commit, ["/"])


def test_export_files_never_writes_outside_the_folder(tmp_path: Path) -> None:
    from kirin._json import FrozenDict, FrozenList
    from kirin.values import Commit, File

    crafted = Commit(hash="0" * 64, parent_hash=None, message="m", metadata=FrozenDict(),
                     tags=FrozenList(), timestamp=__import__("datetime").datetime.now(),
                     author="a", seq=0,
                     _files=lambda: {"../evil": File("../evil", "0" * 64, 1)})
    with pytest.raises(InvalidNameError):
        export_files(crafted, tmp_path / "out")
    assert not (tmp_path / "evil").exists()


def test_the_team_policy_exists_for_these_tests() -> None:
    assert TEAM_POLICY.is_file()
