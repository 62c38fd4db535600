"""``import_kirin0``: a registry built by the original Kirin 0.0.15, imported.

The registry comes from the session fixture ``original_registry``
(tests/kirin0_helpers.py), which runs the original package itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kirin import Catalog
from kirin.errors import CorruptObjectError, InvalidInputError
from kirin.importers.kirin0 import import_kirin0

from kirin0_helpers import blob_path, copy_registry

Original = tuple[Path, dict[str, Any]]


@pytest.fixture
def source(original_registry: Original, tmp_path: Path) -> Original:
    built, history = original_registry
    return copy_registry(built, tmp_path / "original"), history


def test_every_commit_is_imported_in_order_with_its_fields(source: Original,
                                                           tmp_path: Path) -> None:
    original, history = source
    report = import_kirin0(original, tmp_path / "new")
    assert [(d.name, d.commits, d.imported, d.skipped) for d in report.datasets] == [
        ("models", 3, 3, 0), ("notes", 1, 1, 0)]
    assert report.datasets[0].files_checked == 4  # distinct blobs, each re-hashed
    catalog = Catalog(tmp_path / "new")
    assert sorted(catalog.datasets()) == ["models", "notes"]
    for name, commits in history.items():
        dataset = catalog.get_dataset(name)
        imported = list(reversed(dataset.history()))
        assert [c.hash for c in imported] == list(report.datasets[
            [d.name for d in report.datasets].index(name)].hashes)
        assert len(imported) == len(commits)
        for old, new in zip(commits, imported, strict=True):
            assert new.message == old["message"]
            assert new.tags == old["tags"]
            kept = dict(new.metadata)
            origin = kept.pop("kirin0")
            assert kept == old["metadata"]
            assert origin["hash"] == old["hash"]
            assert origin["timestamp"] == old["timestamp"]
            assert {n: f.hash for n, f in new.files.items()} == old["files"]
            dataset.checkout(new.hash)
            for file_name, digest in old["files"].items():
                assert dataset.read_file(file_name, "rb") == blob_path(original,
                                                                     digest).read_bytes()
        assert dataset.verify().ok


def test_the_chain_order_wins_over_the_file_order(source: Original, tmp_path: Path) -> None:
    original, history = source
    commits_file = original / "datasets" / "models" / "commits.json"
    data = json.loads(commits_file.read_text())
    data["commits"].reverse()
    commits_file.write_text(json.dumps(data))
    import_kirin0(original, tmp_path / "new", dataset_names=["models"])
    imported = reversed(Catalog(tmp_path / "new").get_dataset("models").history())
    assert [c.message for c in imported] == [c["message"] for c in history["models"]]


def test_a_tampered_blob_names_commit_and_file_and_writes_nothing(source: Original,
                                                                  tmp_path: Path) -> None:
    original, history = source
    model = history["models"][1]["files"]["model.bin"]
    blob_path(original, model).write_bytes(b"tampered")
    with pytest.raises(CorruptObjectError) as caught:
        import_kirin0(original, tmp_path / "new")
    assert caught.value.commit == history["models"][1]["hash"]
    assert caught.value.file == "model.bin"
    assert history["models"][1]["hash"] in str(caught.value)
    assert "model.bin" in str(caught.value)
    assert not (tmp_path / "new").exists() or Catalog(tmp_path / "new").datasets() == []


def test_a_missing_blob_and_a_broken_commits_file_are_refused(source: Original,
                                                              tmp_path: Path) -> None:
    original, history = source
    notes = history["notes"][0]
    blob_path(original, notes["files"]["labels.csv"]).unlink()
    with pytest.raises(CorruptObjectError, match="missing") as caught:
        import_kirin0(original, tmp_path / "new", dataset_names=["notes"])
    assert caught.value.commit == notes["hash"]
    (original / "datasets" / "models" / "commits.json").write_text("{not json")
    with pytest.raises(CorruptObjectError, match="not valid JSON"):
        import_kirin0(original, tmp_path / "new", dataset_names=["models"])
    commits_file = original / "datasets" / "notes" / "commits.json"
    data = json.loads(commits_file.read_text())
    data["commits"][0]["parent_hash"] = "f" * 64
    commits_file.write_text(json.dumps(data))
    with pytest.raises(CorruptObjectError, match="parent"):
        import_kirin0(original, tmp_path / "new", dataset_names=["notes"])
    assert not (tmp_path / "new").exists() or Catalog(tmp_path / "new").datasets() == []


def test_bad_input_is_refused_before_anything_is_written(source: Original,
                                                         tmp_path: Path) -> None:
    original, _ = source
    with pytest.raises(InvalidInputError, match="No dataset 'nope'"):
        import_kirin0(original, tmp_path / "new", dataset_names=["nope"])
    with pytest.raises(InvalidInputError, match="not an original Kirin registry"):
        import_kirin0(tmp_path / "empty", tmp_path / "new")
    commits_file = original / "datasets" / "notes" / "commits.json"
    data = json.loads(commits_file.read_text())
    data["commits"][0]["metadata"] = {"kirin0": 1}
    commits_file.write_text(json.dumps(data))
    with pytest.raises(InvalidInputError, match="'kirin0' key"):
        import_kirin0(original, tmp_path / "new")  # models is fine, but nothing is written
    assert not (tmp_path / "new").exists() or Catalog(tmp_path / "new").datasets() == []


def test_a_rerun_skips_what_is_imported_and_resumes(source: Original, tmp_path: Path) -> None:
    original, history = source
    first = import_kirin0(original, tmp_path / "new")
    again = import_kirin0(original, tmp_path / "new")
    assert [(d.imported, d.skipped) for d in again.datasets] == [(0, 3), (0, 1)]
    assert len(Catalog(tmp_path / "new").get_dataset("models").history()) == 3
    # an import stopped after two commits is completed by the next run
    commits_file = original / "datasets" / "models" / "commits.json"
    full = commits_file.read_text()
    data = json.loads(full)
    first_two = {c["hash"] for c in history["models"][:2]}
    data["commits"] = [c for c in data["commits"] if c["hash"] in first_two]
    commits_file.write_text(json.dumps(data))
    import_kirin0(original, tmp_path / "partial", dataset_names=["models"])
    commits_file.write_text(full)
    resumed = import_kirin0(original, tmp_path / "partial", dataset_names=["models"])
    assert (resumed.datasets[0].imported, resumed.datasets[0].skipped) == (1, 2)
    imported = reversed(Catalog(tmp_path / "partial").get_dataset("models").history())
    assert [c.metadata["kirin0"]["hash"] for c in imported] == [c["hash"] for c in
                                                               history["models"]]
    assert len(first.datasets[0].hashes) == 3
    # a dataset with other history is refused
    other = Catalog(tmp_path / "mixed").get_dataset("models")
    other.commit("mine", add_files={"a.txt": str(blob_path(original, history["notes"][0][
        "files"]["labels.csv"]))})
    with pytest.raises(InvalidInputError, match="not this original's history"):
        import_kirin0(original, tmp_path / "mixed", dataset_names=["models"])


def test_a_dry_run_checks_everything_and_writes_nothing(source: Original,
                                                        tmp_path: Path) -> None:
    original, history = source
    report = import_kirin0(original, tmp_path / "new", dry_run=True)
    assert report.dry_run
    assert [(d.name, d.imported) for d in report.datasets] == [("models", 3), ("notes", 1)]
    assert not (tmp_path / "new").exists() or Catalog(tmp_path / "new").datasets() == []
    blob_path(original, history["notes"][0]["files"]["labels.csv"]).write_bytes(b"x")
    with pytest.raises(CorruptObjectError):
        import_kirin0(original, tmp_path / "new", dry_run=True)
