"""``export_catalog``: every commit under a root as JSON Lines or Parquet rows."""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import pytest

from kirin import Catalog
from kirin.errors import InvalidInputError, MissingExtraError
from kirin.importers.export import FIXED, export_catalog

from conftest import write


@pytest.fixture
def catalog(root: Path, workdir: Path) -> Catalog:
    catalog = Catalog(root)
    models = catalog.get_dataset("models")
    models.commit("baseline", add_files=write(workdir, "m.pt", b"1"),
                  metadata={"metrics": {"accuracy": 0.8, "f1": 1}, "framework": "torch"},
                  tags=["dev"])
    models.commit("better", add_files=write(workdir, "m.pt", b"2"),
                  metadata={"metrics": {"accuracy": 0.9, "f1": 0.5}, "layers": [1, 2],
                            "empty": {}, "flag": True},
                  tags=["dev", "prod"])
    catalog.get_dataset("data").commit("raw", add_files=write(workdir, "d.csv", b"a\n"))
    return catalog


def test_jsonl_has_one_row_per_commit_with_flattened_metadata(catalog: Catalog,
                                                              tmp_path: Path) -> None:
    report = export_catalog(catalog, tmp_path / "out" / "commits.jsonl")
    assert (report.format, report.datasets, report.rows) == ("jsonl", 2, 3)
    rows = [json.loads(line) for line in
            (tmp_path / "out" / "commits.jsonl").read_text().splitlines()]
    assert [(r["dataset"], r["seq"]) for r in rows] == [("data", 0), ("models", 0),
                                                        ("models", 1)]
    history = list(reversed(catalog.get_dataset("models").history()))
    assert [r["hash"] for r in rows[1:]] == [c.hash for c in history]
    assert rows[2]["parent_hash"] == history[0].hash
    assert rows[2]["tags"] == ["dev", "prod"] and rows[2]["author"] == "tester@example"
    assert rows[2]["metadata.metrics.accuracy"] == 0.9
    assert rows[2]["metadata.layers"] == [1, 2] and rows[2]["metadata.empty"] == {}
    assert "metadata.framework" not in rows[2] and rows[1]["metadata.framework"] == "torch"
    assert set(FIXED) <= set(rows[0]) and not any(k.startswith("metadata.") for k in rows[0])
    assert "metadata.metrics.f1" in report.columns
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".partial")]


def test_parquet_reads_back_with_one_column_per_path(catalog: Catalog,
                                                     tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    report = export_catalog(catalog.root_dir, tmp_path / "commits.parquet",
                            datasets=["models"])
    assert (report.format, report.rows) == ("parquet", 2)
    table = pq.read_table(tmp_path / "commits.parquet")
    assert table.column_names == list(report.columns)
    rows: list[dict[str, Any]] = table.to_pylist()
    assert [r["seq"] for r in rows] == [0, 1]
    assert [r["metadata.metrics.accuracy"] for r in rows] == [0.8, 0.9]
    assert [r["metadata.metrics.f1"] for r in rows] == [1.0, 0.5]  # ints and floats: floats
    assert [r["metadata.flag"] for r in rows] == [None, True]
    assert rows[1]["metadata.layers"] == "[1, 2]"  # lists: JSON text
    assert rows[1]["tags"] == ["dev", "prod"]
    assert rows[0]["timestamp"] == catalog.get_dataset("models").history()[-1].timestamp
    assert str(table.schema.field("metadata.framework").type) == "string"


def test_bad_requests_are_refused_and_leave_no_file(catalog: Catalog, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidInputError, match="Unknown export format"):
        export_catalog(catalog, tmp_path / "x.out", "csv")
    with pytest.raises(InvalidInputError, match="No dataset 'nope'"):
        export_catalog(catalog, tmp_path / "x.jsonl", datasets=["nope"])
    real_import = builtins.__import__

    def no_pyarrow(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(MissingExtraError, match="pip install pyarrow"):
        export_catalog(catalog, tmp_path / "x.parquet")
    assert list(tmp_path.glob("x*")) == []


def test_an_empty_root_exports_an_empty_file(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    assert export_catalog(tmp_path / "none", tmp_path / "e.jsonl").rows == 0
    assert (tmp_path / "e.jsonl").read_text() == ""
    export_catalog(tmp_path / "none", tmp_path / "e.parquet")
    assert pq.read_table(tmp_path / "e.parquet").num_rows == 0


def test_each_row_carries_the_commit_lineage(catalog: Catalog, workdir: Path,
                                             tmp_path: Path) -> None:
    """An auditor's table: every commit with the commits, code and run it came from."""
    import pyarrow.parquet as pq

    data = catalog.get_dataset("data").history()[0].hash
    linked = catalog.get_dataset("models").commit(
        "trained", add_files=write(workdir, "m.pt", b"3"),
        lineage={"training": f"data@{data}"}, code="9d1e4c2", run="run-7")
    export_catalog(catalog, tmp_path / "commits.jsonl")
    rows = {r["hash"]: r for r in map(json.loads,
                                      (tmp_path / "commits.jsonl").read_text().splitlines())}
    assert (rows[linked]["inputs"], rows[linked]["code"], rows[linked]["run"]) == (
        [f"training=data@{data}"], "9d1e4c2", "run-7")
    assert (rows[data]["inputs"], rows[data]["code"]) == ([], None)
    export_catalog(catalog, tmp_path / "commits.parquet")
    table = pq.read_table(tmp_path / "commits.parquet").to_pylist()
    assert [r["inputs"] for r in table if r["hash"] == linked] == [[f"training=data@{data}"]]
