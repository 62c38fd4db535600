"""``kirin import ...`` and ``kirin export``: history in from other registries, metadata out.

Each command is one call into :mod:`kirin.importers` (or the catalog export).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from . import views
from .app import app, import_app
from .commands import AuthorOption
from .output import Outcome
from .runner import Scope, Session, command


# -- kirin import kirin-0.0 ------------------------------------------------------------
@command(import_app, "kirin-0.0", scope=Scope.ROOT, shape="import kirin-0.0")
def import_kirin0(session: Session, *,
                  source: Annotated[str, typer.Argument(
                      metavar="SOURCE", show_default=False,
                      help="Root of the original-Kirin (0.0.x) registry: a folder or an "
                      "fsspec URL.")],
                  names: Annotated[list[str] | None, typer.Option(
                      "--dataset", metavar="NAME",
                      help="Import only this original dataset (repeatable; default: "
                      "all).")] = None,
                  dry_run: Annotated[bool, typer.Option(
                      "--dry-run", help="Check everything (every blob is re-hashed); "
                      "write nothing.")] = False,
                  author: AuthorOption = None) -> Outcome:
    """Import an original-Kirin (0.0.x) registry under the root.

    Each original dataset becomes the dataset of the same name; each of its
    commits one commit, in order, with its message, metadata and tags. The
    original hash and timestamp are kept in the commit's metadata under
    kirin0. Everything is checked first, every blob re-hashed: on a problem
    nothing is written. Re-running skips the commits already imported.
    """
    from ..importers.kirin0 import import_kirin0 as run_import

    with session.transfers():
        report = run_import(source, session.catalog(), dataset_names=names,
                            dry_run=dry_run, author=author)
    table = Table(show_edge=False, pad_edge=False)
    for column in ("dataset", "commits", "imported", "skipped", "files checked"):
        table.add_column(column, justify="left" if column == "dataset" else "right")
    for done in report.datasets:
        table.add_row(done.name, str(done.commits), str(done.imported), str(done.skipped),
                      f"{done.files_checked} ({views.size(done.bytes_checked)})")
    verb = "Would import" if report.dry_run else "Imported"
    summary = views.line(f"{verb} {report.imported} commits into {session.location.root} "
                         f"({report.skipped} already there).", "green")
    return Outcome({"source": report.source, "root": session.location.root,
                    "dry_run": report.dry_run,
                    "datasets": [d.to_dict() for d in report.datasets]}, [table, summary])


# -- kirin export ----------------------------------------------------------------------
@command(app, "export", scope=Scope.ROOT, shape="export")
def export(session: Session, *,
           output: Annotated[Path, typer.Option(
               "--output", "-o", metavar="FILE", show_default=False,
               help="File to write (replaced only once complete).")],
           file_format: Annotated[str | None, typer.Option(
               "--to", metavar="jsonl|parquet",
               help="File format (default: parquet for a .parquet or .pq FILE, else "
               "jsonl). Parquet needs pyarrow.")] = None,
           names: Annotated[list[str] | None, typer.Option(
               "--dataset", metavar="NAME",
               help="Export only this dataset (repeatable; default: all).")] = None
           ) -> Outcome:
    """Write every commit's metadata under the root to FILE, for analysis.

    One row per commit: dataset, hash, seq, parent_hash, timestamp, author,
    message, tags, policy_hash, and the metadata flattened to dotted paths
    (metadata.metrics.accuracy). JSON Lines rows are written one at a time;
    Parquet gets one typed column per metadata path (two passes over the
    histories; lists, objects and mixed types as JSON text).
    """
    from ..importers.export import export_catalog

    report = export_catalog(session.catalog(), output, file_format, datasets=names)
    summary = views.line(f"Wrote {report.rows} commits of {report.datasets} datasets to "
                         f"{report.path} ({report.format}, {len(report.columns)} columns).",
                         "green")
    return Outcome({"root": session.location.root, "output": report.path,
                    "format": report.format, "datasets": report.datasets, "rows": report.rows,
                    "columns": list(report.columns)}, [summary])
