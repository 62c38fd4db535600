"""kirin.importers.mlflow against a real MLflow (SQLite store, local artifacts)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from kirin import Catalog, Dataset
from kirin.errors import MissingExtraError, MlflowModelNotFoundError, MlflowSourceError
from kirin.importers.mlflow import import_mlflow

from mlflow_helpers import MODEL, VERSIONS, MlflowRegistry, build_mlflow

pytest.importorskip("mlflow")

pytestmark = pytest.mark.filterwarnings(
    # MLflow's SQLAlchemy store uses a loader strategy SQLAlchemy 2.1 deprecates (theirs)
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning")

POLICY = """\
version: 1
metadata:
  schema:
    type: object
    required: [accuracy]
    properties:
      accuracy: {type: number, minimum: 0.8}
tags:
  allowed: [production, staging, archived]
"""


@pytest.fixture
def registry(tmp_path: Path) -> MlflowRegistry:
    return build_mlflow(tmp_path / "mlflow")


@pytest.fixture
def dataset(tmp_path: Path) -> Dataset:
    return Catalog(tmp_path / "kirin").create_dataset("models")


def test_each_version_becomes_one_commit_in_order_and_a_rerun_skips_them(
        registry: MlflowRegistry, dataset: Dataset) -> None:
    """Files, metadata and tags per version, oldest first; a second run imports nothing."""
    report = import_mlflow(dataset, tracking_uri=registry.uri, model=MODEL)
    assert [v.version for v in report.imported] == [1, 2, 3]
    assert report.ok and not report.skipped and not report.rejected
    commits = list(reversed(dataset.history()))
    assert [c.hash for c in commits] == [v.commit for v in report.imported]
    for number, commit in zip((1, 2, 3), commits, strict=True):
        spec = VERSIONS[number]
        dataset.checkout(commit.hash)
        assert sorted(commit.files) == sorted(spec["files"])  # exactly this version's files
        for name, content in spec["files"].items():
            assert dataset.read_file(name, "rb") == content
        info = commit.metadata["mlflow"]
        assert (info["model"], info["version"], info["run_id"]) == (
            MODEL, number, registry.runs[number])
        assert info["created"].endswith("+00:00") and info["source"].startswith("runs:/")
        assert commit.metadata["params"] == spec["params"]
        assert commit.metadata["metrics"] == spec["metrics"]
        assert commit.metadata["accuracy"] == spec["metrics"]["accuracy"]  # for policies
        assert commit.metadata["tags"]["team"] == "growth"
        assert commit.message == f"MLflow model {MODEL} version {number}"
    assert [list(c.tags) for c in commits] == [[], ["champion"], ["production"]]
    assert commits[1].metadata["mlflow"]["aliases"] == ["champion"]
    assert commits[2].metadata["mlflow"]["stage"] == "Production"
    dataset.checkout()

    again = import_mlflow(dataset, tracking_uri=registry.uri, model=MODEL)
    assert again.skipped == (1, 2, 3) and not again.imported
    assert len(dataset.history()) == 3


def test_the_policy_judges_each_version_and_the_import_stops_at_a_rejection(
        registry: MlflowRegistry, dataset: Dataset) -> None:
    """A dry run lists every rejection and writes nothing; a real run stops there."""
    dataset.set_policy(POLICY, message="only known stages")
    dry = import_mlflow(dataset, tracking_uri=registry.uri, model=MODEL, dry_run=True)
    assert dry.dry_run and [r.version for r in dry.rejected] == [2]
    assert [v.version for v in dry.imported] == [1, 3]
    assert [v.rule for v in dry.rejected[0].report.violations] == ["tags.allowed"]
    assert dataset.is_empty()

    real = import_mlflow(dataset, tracking_uri=registry.uri, model=MODEL)
    assert [v.version for v in real.imported] == [1]
    assert [r.version for r in real.rejected] == [2] and real.pending == (3,)
    assert not real.ok and real.rejected[0].report.policy_hash is not None
    assert [c.metadata["mlflow"]["version"] for c in dataset.history()] == [1]


def test_a_missing_artifact_fails_that_version_and_keeps_the_ones_before(
        registry: MlflowRegistry, dataset: Dataset) -> None:
    """Versions before the broken one are imported; nothing of it is; a re-run resumes."""
    saved = registry.folder / "saved"
    shutil.move(registry.artifact_folder(2), saved)
    with pytest.raises(MlflowSourceError, match="version 2 failed") as caught:
        import_mlflow(dataset, tracking_uri=registry.uri, model=MODEL)
    assert caught.value.version == 2 and caught.value.imported == (1,)
    assert "re-run resumes at version 2" in str(caught.value)
    assert [c.metadata["mlflow"]["version"] for c in dataset.history()] == [1]

    shutil.move(saved, registry.artifact_folder(2))
    resumed = import_mlflow(dataset, tracking_uri=registry.uri, model=MODEL)
    assert resumed.skipped == (1,) and [v.version for v in resumed.imported] == [2, 3]


def test_bad_sources_are_clear_errors(registry: MlflowRegistry, dataset: Dataset,
                                      tmp_path: Path) -> None:
    """An unknown model, a database that is not there: named, nothing written."""
    with pytest.raises(MlflowModelNotFoundError, match="no registered model 'nope'"):
        import_mlflow(dataset, tracking_uri=registry.uri, model="nope")
    missing = tmp_path / "typo.db"
    with pytest.raises(MlflowSourceError, match="No MLflow database"):
        import_mlflow(dataset, tracking_uri=f"sqlite:///{missing}", model=MODEL)
    assert not missing.exists() and dataset.is_empty()


def test_without_mlflow_the_import_names_the_package(
        monkeypatch: pytest.MonkeyPatch, dataset: Dataset) -> None:
    """A missing mlflow is a MissingExtraError saying what to install."""
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(MissingExtraError, match="pip install mlflow"):
        import_mlflow(dataset, tracking_uri="sqlite:///x.db", model=MODEL)
