"""``kirin import kirin-0.0`` and ``kirin export`` end to end (in process, ``invoke``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kirin import Catalog

from cli_helpers import assert_error_document, assert_shape, invoke
from kirin0_helpers import blob_path, copy_registry

Original = tuple[Path, dict[str, Any]]


@pytest.fixture
def source(original_registry: Original, tmp_path: Path) -> Original:
    built, history = original_registry
    return copy_registry(built, tmp_path / "original"), history


def test_import_kirin0_imports_and_reports(source: Original, tmp_path: Path) -> None:
    original, history = source
    root = tmp_path / "new"
    dry = invoke("import", "kirin-0.0", original, "--root", root, "--dry-run",
                 "--format", "json")
    assert dry.code == 0, dry.stderr
    assert_shape("import kirin-0.0", dry.json())
    assert not root.exists() or Catalog(root).datasets() == []
    done = invoke("import", "kirin-0.0", original, "--root", root, "--dataset", "models",
                  "--author", "migrator@example", "--format", "json")
    assert done.code == 0, done.stderr
    document = done.json()
    assert_shape("import kirin-0.0", document)
    assert [(d["name"], d["imported"]) for d in document["datasets"]] == [("models", 3)]
    commits = list(reversed(Catalog(root).get_dataset("models").history()))
    assert [c.message for c in commits] == [c["message"] for c in history["models"]]
    assert {c.author for c in commits} == {"migrator@example"}
    table = invoke("import", "kirin-0.0", original, "--root", root)
    assert table.code == 0, table.stderr
    assert "Imported 1 commits" in table.stdout and "3 already there" in table.stdout


def test_import_kirin0_of_a_corrupt_registry_fails_cleanly(source: Original,
                                                          tmp_path: Path) -> None:
    original, history = source
    blob_path(original, history["models"][0]["files"]["train.csv"]).write_bytes(b"bad")
    failed = invoke("import", "kirin-0.0", original, "--root", tmp_path / "new",
                    "--format", "json")
    assert failed.code == 4
    assert_error_document(failed.json(), 4)
    assert history["models"][0]["hash"] in failed.stderr and "train.csv" in failed.stderr
    assert not (tmp_path / "new").exists() or Catalog(tmp_path / "new").datasets() == []
    missing = invoke("import", "kirin-0.0", tmp_path / "nothing", "--root", tmp_path / "new")
    assert missing.code == 2 and "not an original Kirin registry" in missing.stderr


def test_export_writes_jsonl_and_parquet(source: Original, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    original, history = source
    root = tmp_path / "new"
    assert invoke("import", "kirin-0.0", original, "--root", root).code == 0
    done = invoke("export", "--root", root, "-o", tmp_path / "c.jsonl", "--format", "json")
    assert done.code == 0, done.stderr
    assert_shape("export", done.json())
    rows = [json.loads(x) for x in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert [r["metadata.kirin0.hash"] for r in rows] == [
        c["hash"] for name in ("models", "notes") for c in history[name]]
    assert rows[1]["metadata.metrics.accuracy"] == 0.9
    table = invoke("export", "--root", root, "-o", tmp_path / "c.data", "--to", "parquet",
                   "--dataset", "models")
    assert table.code == 0, table.stderr
    assert "Wrote 3 commits of 1 datasets" in table.stdout
    assert pq.read_table(tmp_path / "c.data").column("metadata.kirin0.timestamp").to_pylist() \
        == [c["timestamp"] for c in history["models"]]
    bad = invoke("export", "--root", root, "-o", tmp_path / "c.x", "--to", "csv")
    assert bad.code == 2 and "Unknown export format" in bad.stderr
