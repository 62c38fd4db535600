"""``kirin import ...`` and ``kirin export``: history in from other registries, metadata out.

Each command is one call into :mod:`kirin.importers` (or the catalog export).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import RenderableType
from rich.table import Table

from . import views
from .app import app, import_app
from .commands import AuthorOption
from .exits import ExitCode
from .output import Outcome
from .runner import Scope, Session, command

if TYPE_CHECKING:
    from ..dataset import Dataset
    from ..importers.mlflow import ImportReport


@command(import_app, "mlflow", scope=Scope.DATASET, gate=True, shape="import mlflow")
def import_mlflow(session: Session, *,
                  tracking_uri: Annotated[str, typer.Option(
                      "--tracking-uri", metavar="URI", envvar="MLFLOW_TRACKING_URI",
                      show_envvar=True, show_default=False,
                      help="MLflow tracking server or store, e.g. sqlite:///mlflow.db or "
                      "http://mlflow:5000.")],
                  model: Annotated[str, typer.Option(
                      "--model", metavar="NAME", show_default=False,
                      help="Registered model whose versions to import.")],
                  registry_uri: Annotated[str | None, typer.Option(
                      "--registry-uri", metavar="URI", envvar="MLFLOW_REGISTRY_URI",
                      show_envvar=True,
                      help="MLflow model registry, if not the tracking store.")] = None,
                  dry_run: Annotated[bool, typer.Option(
                      "--dry-run", help="Judge every version not yet imported against the "
                      "policy; write nothing.")] = False,
                  author: Annotated[str | None, typer.Option(
                      "--author", metavar="WHO", help="Author recorded on every commit "
                      "(default: the MLflow version's user, else its run's, else "
                      "KIRIN_AUTHOR, else user@host).")] = None) -> Outcome:
    """Import every version of an MLflow registered model, one commit each.

    Versions are imported oldest first. Each commit holds exactly the
    version's artifacts; its metadata holds the run's params, metrics (also
    at the top level, for policy rules) and tags, and under "mlflow" the
    model, version, run id, creation time, source, stage and aliases; its
    tags are the version's aliases and its stage, lowercased. Versions
    already imported are skipped, so a re-run resumes. The import stops at
    the first version the policy rejects and exits with code 1 (--dry-run
    lists every version it would reject). A version whose artifacts cannot
    be read stops the import with nothing of it written (exit code 4).
    Needs the mlflow package (pip install mlflow).
    """
    from ..importers.mlflow import import_mlflow as run_import

    dataset = session.dataset()
    with session.transfers():
        result = run_import(dataset, tracking_uri=tracking_uri, model=model, dry_run=dry_run,
                            registry_uri=registry_uri, author=author)
    return _mlflow_imported(dataset, result)


def _mlflow_imported(dataset: Dataset, result: ImportReport) -> Outcome:
    from .output import violation_annotation

    commits = {c.hash: c for c in dataset.history()} if result.imported else {}
    policy = dataset.policy
    data: dict[str, Any] = {
        "dataset": dataset.name, "model": result.model, "dry_run": result.dry_run,
        "ok": result.ok, "policy_hash": policy.hash if policy else None,
        "imported": [{"version": v.version,
                      "commit": views.commit_data(commits[v.commit]) if v.commit else None}
                     for v in result.imported],
        "skipped": list(result.skipped),
        "rejected": [{"version": r.version,
                      "violations": [v.to_dict() for v in r.report.violations]}
                     for r in result.rejected],
        "pending": list(result.pending)}
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("version", justify="right", no_wrap=True)
    table.add_column("outcome")
    rows = ([(v.version, f"imported as {v.commit[:12]}" if v.commit else "would be imported")
             for v in result.imported]
            + [(n, "skipped (already imported)") for n in result.skipped]
            + [(r.version, "rejected by the policy" + ("" if result.dry_run else
                                                       ": the import stopped here"))
               for r in result.rejected]
            + [(n, "not imported (after the rejected version)") for n in result.pending])
    for number, outcome in sorted(rows):
        table.add_row(str(number), views.line(outcome))
    human: list[RenderableType] = [table] if rows else [
        views.line(f"MLflow model {result.model} has no versions.", "dim")]
    for rejected in result.rejected:
        human += [views.line(f"version {rejected.version}:", "bold"),
                  views.violations_table(rejected.report.violations)]
    done = len(result.imported)
    verb = "would import" if result.dry_run else "imported"
    summary = (f"{result.model}: {verb} {done} version{'s' if done != 1 else ''}, "
               f"skipped {len(result.skipped)}")
    if result.rejected:
        n = len(result.rejected)
        summary += f", {n} rejected by the policy"
        if not result.dry_run:
            summary += "; fix the policy or the version, then re-run to resume"
    human.append(views.line(summary + ".", "green" if result.ok else "bold red"))
    annotations = tuple(violation_annotation(v) for r in result.rejected
                        for v in r.report.violations)
    return Outcome(data, human, annotations,
                   ExitCode.OK if result.ok else ExitCode.FAILED)


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
    message, tags, policy_hash, its lineage (inputs: ROLE=DATASET@HASH
    texts; code; run), and the metadata flattened to dotted paths
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
