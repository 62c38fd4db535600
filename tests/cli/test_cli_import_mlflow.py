"""``kirin import mlflow`` end to end, in process, against a real MLflow SQLite store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kirin import Catalog

from cli_helpers import assert_error_document, assert_shape, invoke
from mlflow_helpers import MODEL, MlflowRegistry, build_mlflow

pytest.importorskip("mlflow")

pytestmark = pytest.mark.filterwarnings(
    # MLflow's SQLAlchemy store uses a loader strategy SQLAlchemy 2.1 deprecates (theirs)
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning")

#: Rejects version 2 (its alias "champion" is not an allowed tag).
POLICY = "version: 1\ntags:\n  allowed: [production, staging, archived]\n"


@pytest.fixture
def registry(tmp_path: Path) -> MlflowRegistry:
    return build_mlflow(tmp_path / "mlflow")


@pytest.fixture
def args(tmp_path: Path, registry: MlflowRegistry) -> list[str]:
    Catalog(tmp_path / "kirin").create_dataset("models").set_policy(POLICY)
    return ["import", "mlflow", "--root", str(tmp_path / "kirin"), "-d", "models",
            "--tracking-uri", registry.uri, "--model", MODEL]


def test_dry_run_then_import_stops_at_the_rejection_and_a_rerun_resumes(
        args: list[str], tmp_path: Path) -> None:
    """Exit 1 and the rejected version listed; after the policy changes, the rest follows."""
    dry = invoke(*args, "--dry-run", "--format", "json")
    assert dry.code == 1, dry.stderr
    document = dry.json()
    assert_shape("import mlflow", document)
    assert [r["version"] for r in document["rejected"]] == [2]
    assert [(v["version"], v["commit"]) for v in document["imported"]] == [(1, None), (3, None)]

    real = invoke(*args, "--format", "json")
    assert real.code == 1
    document = real.json()
    assert_shape("import mlflow", document)
    assert [v["version"] for v in document["imported"]] == [1]
    assert document["imported"][0]["commit"]["metadata"]["mlflow"]["version"] == 1
    assert document["pending"] == [3] and document["ok"] is False

    Catalog(tmp_path / "kirin").get_dataset("models").set_policy(None, message="open up")
    table = invoke(*args)
    assert table.code == 0, table.stderr
    assert "skipped (already imported)" in table.stdout
    assert "imported 2 versions, skipped 1." in table.stdout
    log = invoke("log", "--root", tmp_path / "kirin", "-d", "models", "--format", "json")
    assert [c["metadata"]["mlflow"]["version"] for c in log.json()["commits"]] == [3, 2, 1]


def test_bad_input_is_a_clear_error(args: list[str], registry: MlflowRegistry) -> None:
    """A missing artifact names the version (exit 4); an unknown model is not found (exit 3)."""
    shutil.rmtree(registry.artifact_folder(2))
    broken = invoke(*args, "--format", "json")
    assert_error_document(broken.json(), 4)
    assert "version 2 failed" in broken.stderr and "resumes at version 2" in broken.stderr
    unknown = invoke(*args[:-1], "nope")
    assert unknown.code == 3 and "no registered model 'nope'" in unknown.stderr
