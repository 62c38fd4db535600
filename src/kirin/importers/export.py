"""``export_catalog``: every commit of every dataset under a root, one row each, for analysis.

A row holds ``dataset``, ``hash``, ``seq``, ``parent_hash``, ``timestamp``
(ISO 8601, UTC), ``author``, ``message``, ``tags``, ``policy_hash``, its
lineage (``inputs``: a list of ``ROLE=[ROOT#]DATASET@HASH``; ``code``,
``run``: text or null) and the
commit's metadata flattened to dotted paths under ``metadata.``
(``{"metrics": {"accuracy": 0.9}}`` becomes ``metadata.metrics.accuracy``;
a list, or an empty object, is a leaf). Rows come dataset by dataset
(sorted by name), oldest commit first.

Formats:

* ``jsonl``: one JSON object per line, each written as it is produced;
  a row has only the metadata paths its commit has.
* ``parquet`` (needs ``pyarrow``): one column per metadata path found in any
  commit. That takes two passes over the histories: the first collects the
  paths and the type of each (memory O(paths)), the second writes rows in
  batches of :data:`BATCH` with ``pyarrow.parquet.ParquetWriter``. A path
  whose values are all booleans, all integers, all numbers or all strings
  gets that type; any other path (lists, objects, mixed types) is a string
  column holding the JSON text of each value. Absent paths are null.

Either way the file is written beside ``path`` under a temporary name and
renamed when complete: a failed export leaves no partial file. Commits added
while an export runs are not exported (each dataset is cut at the length
it had when first read).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .._json import thaw
from ..catalog import Catalog
from ..errors import InvalidInputError, MissingExtraError
from ..inputs import PathLike
from ..values import Commit

FORMATS = ("jsonl", "parquet")
FIXED = ("dataset", "hash", "seq", "parent_hash", "timestamp", "author", "message", "tags",
         "policy_hash", "inputs", "code", "run")
BATCH = 1024


@dataclass(frozen=True)
class ExportReport:
    path: str
    format: str
    datasets: int
    rows: int
    columns: tuple[str, ...]  # fixed columns, then the metadata paths seen, sorted


def export_catalog(catalog: Catalog | PathLike, path: PathLike, fmt: str | None = None, *,
                   datasets: Iterable[str] | None = None) -> ExportReport:
    """Write the commit metadata of ``datasets`` (default: all) under ``catalog`` to ``path``.

    ``fmt`` is ``"jsonl"`` or ``"parquet"``; by default ``.parquet`` / ``.pq``
    files are Parquet and anything else JSON Lines.
    """
    catalog = catalog if isinstance(catalog, Catalog) else Catalog(catalog)
    target = Path(os.fspath(path))
    if fmt is None:
        fmt = "parquet" if target.suffix.lower() in (".parquet", ".pq") else "jsonl"
    if fmt not in FORMATS:
        raise InvalidInputError(f"Unknown export format {fmt!r}: use jsonl or parquet")
    if fmt == "parquet":
        try:
            import pyarrow  # type: ignore[import-untyped]  # noqa: F401
        except ImportError:
            raise MissingExtraError("Exporting to Parquet needs pyarrow: pip install pyarrow",
                                    protocol="parquet", extra=None) from None
    available = catalog.datasets()
    names = sorted(available) if datasets is None else list(dict.fromkeys(datasets))
    unknown = [n for n in names if n not in available]
    if unknown:
        raise InvalidInputError(f"No dataset {unknown[0]!r} under {catalog.root_dir}")
    lengths = {name: len(catalog.get_dataset(name).history()) for name in names}
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial",
                                         dir=target.parent)
    os.close(handle)
    try:
        if fmt == "jsonl":
            rows, paths = _write_jsonl(catalog, lengths, temporary)
        else:
            rows, paths = _write_parquet(catalog, lengths, temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return ExportReport(str(target), fmt, len(names), rows, (*FIXED, *sorted(paths)))


def rows(catalog: Catalog, lengths: Mapping[str, int]) -> Iterator[dict[str, Any]]:
    """Each exported row, produced one at a time (metadata flattened)."""
    for name, length in lengths.items():
        dataset = catalog.get_dataset(name)
        for commit in reversed(dataset.history()[-length:] if length else []):
            row: dict[str, Any] = {
                "dataset": name, "hash": commit.hash, "seq": commit.seq,
                "parent_hash": commit.parent_hash, "timestamp": commit.timestamp.isoformat(),
                "author": commit.author, "message": commit.message,
                "tags": list(commit.tags), "policy_hash": commit.policy_hash,
                **_lineage(commit)}
            row.update(flatten(commit.metadata))
            yield row


def _lineage(commit: Commit) -> dict[str, Any]:
    """A commit's links as ``ROLE=[ROOT#]DATASET@HASH`` texts, with its code and run."""
    lineage = commit.lineage
    if lineage is None:
        return {"inputs": [], "code": None, "run": None}
    return {"inputs": [f"{link.role}={link.ref}" for link in lineage.inputs],
            "code": lineage.code, "run": lineage.run}


def flatten(metadata: Mapping[str, Any], prefix: str = "metadata") -> Iterator[tuple[str, Any]]:
    """``(dotted path, leaf value)`` for each leaf of ``metadata``."""
    for key, value in metadata.items():
        here = f"{prefix}.{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, here)
        else:
            yield here, thaw(value)


def _write_jsonl(catalog: Catalog, lengths: Mapping[str, int],
                 temporary: str) -> tuple[int, set[str]]:
    count, paths = 0, set[str]()
    with open(temporary, "w", encoding="utf-8") as out:
        for row in rows(catalog, lengths):
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            paths.update(k for k in row if k.startswith("metadata."))
            count += 1
    return count, paths


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "json"


def _write_parquet(catalog: Catalog, lengths: Mapping[str, int],
                   temporary: str) -> tuple[int, set[str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    kinds: dict[str, set[str]] = {}
    for row in rows(catalog, lengths):  # pass 1: the columns
        for key, value in row.items():
            if key.startswith("metadata.") and value is not None:
                kinds.setdefault(key, set()).add(_kind(value))
            elif key.startswith("metadata."):
                kinds.setdefault(key, set())
    types = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "str": pa.string()}
    columns: dict[str, str] = {}
    for key, seen in sorted(kinds.items()):
        if seen == {"int", "float"}:
            columns[key] = "float"
        elif len(seen) == 1 and next(iter(seen)) in types:
            columns[key] = next(iter(seen))
        else:
            columns[key] = "json"
    schema = pa.schema([
        ("dataset", pa.string()), ("hash", pa.string()), ("seq", pa.int64()),
        ("parent_hash", pa.string()), ("timestamp", pa.timestamp("us", tz="UTC")),
        ("author", pa.string()), ("message", pa.string()), ("tags", pa.list_(pa.string())),
        ("policy_hash", pa.string()), ("inputs", pa.list_(pa.string())),
        ("code", pa.string()), ("run", pa.string()),
        *[(key, types.get(kind, pa.string())) for key, kind in columns.items()]])

    def cell(kind: str, value: Any) -> Any:
        if value is None:
            return None
        if kind == "json":
            return json.dumps(value, ensure_ascii=False)
        return float(value) if kind == "float" else value

    count = 0
    with pq.ParquetWriter(temporary, schema) as writer:  # pass 2: the rows, in batches
        batch: list[dict[str, Any]] = []
        for row in rows(catalog, lengths):
            out = {k: row[k] for k in FIXED}
            out["timestamp"] = datetime.fromisoformat(row["timestamp"])
            for key, kind in columns.items():
                out[key] = cell(kind, row.get(key))
            batch.append(out)
            count += 1
            if len(batch) >= BATCH:
                writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=schema))
                batch = []
        if batch or not count:
            writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=schema))
    return count, set(columns)
