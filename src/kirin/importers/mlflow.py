"""Import an MLflow registered model: each model version becomes one Kirin commit.

Versions are imported in ascending version number. Each commit holds exactly
that version's artifacts (files of the previous version that the new one lacks
are removed from the snapshot), and carries in its metadata::

    {"mlflow": {"model": NAME, "version": 3, "run_id": "...", "created": ISO 8601,
                "source": "runs:/.../model", "stage": "Production" | None,
                "aliases": [...], "description": "...", "version_tags": {...}},
     "params": {...},        # the run's parameters (strings, as MLflow keeps them)
     "metrics": {...},       # the run's metrics (latest value of each)
     "tags": {...},          # the run's tags
     "accuracy": 0.93, ...}  # each finite metric again at the top level

so the policy's usual rules (``accuracy >= 0.9``) apply to imported versions.
A metric whose name is one of the reserved keys above stays under ``metrics``
only; a non-finite metric (NaN, inf) is kept as its string there (Kirin
metadata is plain JSON). Kirin tags: the version's aliases as they are, and
its (deprecated) stage lowercased (``production``, ``staging``, ``archived``).

Every commit is judged by the dataset's policy. The import stops at the first
version the policy rejects (history is never written out of order) and reports
it; a dry run judges every pending version and writes nothing. A version
already in the dataset (same model, version and run id) is skipped, so a
re-run resumes where the last one stopped. A version whose artifacts cannot be
read raises :class:`MlflowSourceError` before anything of it is written.

MLflow is an optional dependency, imported only inside :func:`import_mlflow`.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import progress
from ..errors import (
    ConflictError,
    MissingExtraError,
    MlflowModelNotFoundError,
    MlflowSourceError,
    PolicyViolationError,
)

if TYPE_CHECKING:
    from ..dataset import Dataset
    from ..policy import Report

#: Top-level metadata keys of an imported commit; metrics of these names are not copied up.
RESERVED = frozenset({"mlflow", "params", "metrics", "tags"})


@dataclass(frozen=True)
class ImportedVersion:
    """A version committed (``commit`` is its full hash)."""

    version: int
    commit: str


@dataclass(frozen=True)
class RejectedVersion:
    """A version the policy rejects, with the policy's report."""

    version: int
    report: Report


@dataclass(frozen=True)
class ImportReport:
    """What an import did, or (``dry_run``) would do.

    ``imported``: committed versions (for a dry run: those the policy would
    admit, with an empty commit hash); ``skipped``: versions already in the
    dataset; ``rejected``: versions the policy rejects (a real run stops at
    the first; a dry run lists them all); ``pending``: versions left
    unimported because the run stopped before them.
    """

    model: str
    dry_run: bool
    imported: tuple[ImportedVersion, ...] = ()
    skipped: tuple[int, ...] = ()
    rejected: tuple[RejectedVersion, ...] = ()
    pending: tuple[int, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.rejected


def import_mlflow(dataset: Dataset, *, tracking_uri: str, model: str, dry_run: bool = False,
                  registry_uri: str | None = None, author: str | None = None) -> ImportReport:
    """Import every version of MLflow registered model ``model`` into ``dataset``.

    ``author`` defaults to the version's MLflow user, else Kirin's default.
    See the module documentation for the layout of each commit.
    """
    client, mlflow_artifacts = _client(tracking_uri, registry_uri, model)
    versions = _versions(client, model)
    done = _already_imported(dataset, model)
    skipped: list[int] = []
    todo: list[int] = []
    for number, version in versions:
        run_id = version.run_id or None
        if number in done:
            if done[number] != run_id:
                raise ConflictError(
                    f"Dataset {dataset.name!r} already holds MLflow model {model!r} version "
                    f"{number} from run {done[number]!r}, but this registry's version "
                    f"{number} comes from run {run_id!r}: is it another MLflow registry?")
            skipped.append(number)
        else:
            todo.append(number)
    imported: list[ImportedVersion] = []
    rejected: list[RejectedVersion] = []
    for index, number in enumerate(todo):
        def failed(what: str, exc: BaseException, number: int = number) -> MlflowSourceError:
            return _failure(model, number, imported, what, exc)

        try:
            details = client.get_model_version(model, str(number))  # search omits aliases
            run = client.get_run(details.run_id) if details.run_id else None
        except Exception as exc:  # the MLflow store failed
            raise failed("reading it from the MLflow store", exc) from exc
        with tempfile.TemporaryDirectory(prefix="kirin-mlflow-") as tmp:
            try:
                local = mlflow_artifacts.download_artifacts(
                    artifact_uri=details.source, dst_path=tmp, tracking_uri=tracking_uri,
                    registry_uri=registry_uri)
            except Exception as exc:
                raise failed(f"downloading its artifacts from {details.source!r}", exc) from exc
            files = _artifact_files(Path(local))
            if not files:
                raise failed(f"reading its artifacts from {details.source!r}",
                             FileNotFoundError("the version has no artifact files"))
            args = _commit_args(dataset, model, number, details, run, files, author)
            if dry_run:
                report = dataset.validate(**args)
                if report.ok:
                    imported.append(ImportedVersion(number, ""))
                else:
                    rejected.append(RejectedVersion(number, report))
                continue
            total = sum(p.stat().st_size for p in files.values())
            with progress.transfer(f"MLflow {model} v{number} ({index + 1}/{len(todo)})",
                                   total) as advance:
                try:
                    digest = dataset.commit(**args)
                except PolicyViolationError as exc:
                    policy = dataset.policy
                    from ..policy import Report

                    rejected.append(RejectedVersion(
                        number, Report(exc.violations, policy.hash if policy else None)))
                    pending = tuple(todo[index + 1:])
                    return ImportReport(model, dry_run, tuple(imported), tuple(skipped),
                                        tuple(rejected), pending)
                advance(total)
            imported.append(ImportedVersion(number, digest))
    return ImportReport(model, dry_run, tuple(imported), tuple(skipped), tuple(rejected))


def _failure(model: str, number: int, imported: list[ImportedVersion], what: str,
             exc: BaseException) -> MlflowSourceError:
    done = tuple(v.version for v in imported)
    before = (f"imported version{'s' if len(done) > 1 else ''} "
              f"{', '.join(map(str, done))}; " if done else "nothing imported; ")
    return MlflowSourceError(
        f"MLflow model {model!r} version {number} failed while {what}: "
        f"{type(exc).__name__}: {exc} ({before}nothing of version {number} was written; "
        f"a re-run resumes at version {number})",
        model=model, version=number, imported=done)


def _client(tracking_uri: str, registry_uri: str | None, model: str) -> tuple[Any, Any]:
    """An MlflowClient on the store, and the ``mlflow.artifacts`` module."""
    try:
        import mlflow.artifacts
        from mlflow import MlflowClient
    except ImportError as exc:
        raise MissingExtraError(
            "Importing from MLflow needs the mlflow package: pip install mlflow",
            protocol="mlflow", extra=None) from exc
    for uri in (tracking_uri, registry_uri):
        # sqlite:///path creates an empty database when the path is wrong: refuse instead
        if uri and uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file():
            raise MlflowSourceError(f"No MLflow database at {uri[len('sqlite:///'):]} "
                                    f"(from {uri})", model=model)
    try:
        return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri), mlflow.artifacts
    except Exception as exc:
        raise MlflowSourceError(f"Cannot open the MLflow store {tracking_uri}: "
                                f"{type(exc).__name__}: {exc}", model=model) from exc


def _versions(client: Any, model: str) -> list[tuple[int, Any]]:
    """Every version of ``model``, ascending."""
    try:
        client.get_registered_model(model)
    except Exception as exc:
        if getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST":
            raise MlflowModelNotFoundError(
                f"MLflow has no registered model {model!r}") from exc
        raise MlflowSourceError(f"Cannot read MLflow model {model!r}: "
                                f"{type(exc).__name__}: {exc}", model=model) from exc
    found: list[Any] = []
    token = None
    escaped = model.replace("\\", "\\\\").replace("'", "\\'")
    try:
        while True:
            page = client.search_model_versions(f"name='{escaped}'", page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                break
    except Exception as exc:
        raise MlflowSourceError(f"Cannot list the versions of MLflow model {model!r}: "
                                f"{type(exc).__name__}: {exc}", model=model) from exc
    return sorted(((int(v.version), v) for v in found), key=lambda item: item[0])


def _already_imported(dataset: Dataset, model: str) -> dict[int, str | None]:
    """Versions of ``model`` the dataset holds, with their run ids."""
    done: dict[int, str | None] = {}
    for commit in dataset.history():
        info = commit.metadata.get("mlflow")
        if isinstance(info, Mapping) and info.get("model") == model:
            version = info.get("version")
            if isinstance(version, int):
                done[version] = info.get("run_id")
    return done


def _artifact_files(local: Path) -> dict[str, Path]:
    """The downloaded artifacts by name relative to the version's artifact folder."""
    if local.is_file():
        return {local.name: local}
    return {p.relative_to(local).as_posix(): p for p in sorted(local.rglob("*")) if p.is_file()}


def _commit_args(dataset: Dataset, model: str, number: int, version: Any, run: Any,
                 files: dict[str, Path], author: str | None) -> dict[str, Any]:
    head = dataset.current_commit
    stale = sorted(set(head.files) - set(files)) if head is not None else []
    params = dict(run.data.params) if run is not None else {}
    metrics = {k: _metric(v) for k, v in (run.data.metrics if run is not None else {}).items()}
    run_tags = dict(run.data.tags) if run is not None else {}
    stage = version.current_stage if version.current_stage not in (None, "", "None") else None
    created = (datetime.fromtimestamp(version.creation_timestamp / 1000, timezone.utc)
               .isoformat() if version.creation_timestamp is not None else None)
    metadata: dict[str, Any] = {
        k: v for k, v in metrics.items() if k not in RESERVED and not isinstance(v, str)}
    metadata.update({
        "mlflow": {"model": model, "version": number, "run_id": version.run_id or None,
                   "created": created, "source": version.source, "stage": stage,
                   "aliases": sorted(version.aliases or []),
                   "description": version.description or "",
                   "version_tags": dict(version.tags or {})},
        "params": params, "metrics": metrics, "tags": run_tags})
    tags = sorted(version.aliases or [])
    if stage is not None:
        tags.append(stage.lower())
    message = f"MLflow model {model} version {number}"
    if version.description:
        message += f": {version.description}"
    who = author or version.user_id or (run.info.user_id if run is not None else None) or None
    return {"message": message, "add_files": files, "remove_files": stale,
            "metadata": metadata, "tags": tags, "author": who}


def _metric(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)
