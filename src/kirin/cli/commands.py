"""Commands on one dataset's history: init, commit, validate, promote, log, show, diff, files, get.

Each is one call into the library; the wrapper in :mod:`kirin.cli.runner`
prints the outcome and maps errors to exit codes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..dataset import Dataset
from ..errors import CommitNotFoundError
from ..values import Commit
from . import config, views
from .app import app
from .output import Outcome
from .parsing import parse_files, parse_metadata
from .runner import Scope, Session, command

FilesArgument = Annotated[list[str] | None, typer.Argument(
    metavar="FILES", show_default=False,
    help="Files to add or replace: PATH (stored under its base name) or NAME=PATH (stored "
         "as NAME, which may contain /). Local paths or fsspec URLs.")]
MessageOption = Annotated[str, typer.Option(
    "--message", "-m", metavar="TEXT", help="Commit message.", show_default=False)]
MetadataOption = Annotated[str | None, typer.Option(
    "--metadata", metavar="JSON|@FILE", help="Metadata: a JSON object, or @file.json.")]
TagOption = Annotated[list[str] | None, typer.Option(
    "--tag", "-t", metavar="TAG", help="Tag the commit (repeatable).", show_default=False)]
RemoveOption = Annotated[list[str] | None, typer.Option(
    "--remove", metavar="NAME", help="Remove this file from the snapshot (repeatable).",
    show_default=False)]
AuthorOption = Annotated[str | None, typer.Option(
    "--author", metavar="WHO", help="Author recorded (default: KIRIN_AUTHOR, else user@host).")]
RefArgument = Annotated[str, typer.Argument(
    metavar="REF", help="Commit: hash, unique hash prefix, or tag (tag:NAME).",
    show_default=False)]
OptionalRef = Annotated[str | None, typer.Argument(
    metavar="REF", help="Commit: hash, unique hash prefix, or tag (default: the newest).",
    show_default=False)]
OverrideOption = Annotated[bool, typer.Option(
    "--override", help="Break-glass: admit the commit despite violations the policy's "
    "overrides: let past (needs --reason where the policy says so). The record keeps "
    "the reason, the author and the violations overridden.")]
ReasonOption = Annotated[str | None, typer.Option(
    "--reason", metavar="TEXT", help="Why the override is needed (stored in the commit).",
    show_default=False)]
OnlyOption = Annotated[bool, typer.Option(
    "--only", help="The commit holds exactly FILES: files of the newest commit not given "
    "are removed, not carried over.")]
KeyOption = Annotated[Path | None, typer.Option(
    "--key", metavar="FILE", help="Sign the record with this SSH private key file (a .pub "
    "file: that key in the ssh-agent). Default, where the policy asks for signatures: "
    "KIRIN_SIGNING_KEY, else the ssh-agent.", show_default=False)]
FromOption = Annotated[list[str] | None, typer.Option(
    "--from", metavar="[ROLE=]DATASET@REF", help="Link the commit to what it was derived "
    "from: a commit of a dataset in this root (REF: hash, prefix, tag or stage; recorded "
    "as the full hash), or ROOT#DATASET@REF in another root. ROLE (default: data) says "
    "how it was used, e.g. training=churn_data@v3. Repeatable; a link to no commit is "
    "refused (exit 3), nothing written.", show_default=False)]
CodeOption = Annotated[str | None, typer.Option(
    "--code", metavar="REV", help="The code revision the commit was made with (e.g. a git "
    "commit hash), recorded with its links.", show_default=False)]
RunOption = Annotated[str | None, typer.Option(
    "--run", metavar="ID", help="The run that made the commit (e.g. an MLflow run id), "
    "recorded with its links.", show_default=False)]
ExpectOption = Annotated[str | None, typer.Option(
    "--expect", metavar="HASH", help="Refuse (exit 4, nothing written) unless REF still "
    "names the commit with this full hash: promote exactly what a gate judged.",
    show_default=False)]


def _commit_args(files: list[str] | None, message: str, metadata: str | None,
                 tag: list[str] | None, remove: list[str] | None,
                 author: str | None, only: bool = False, override: bool = False,
                 reason: str | None = None, key: Path | None = None,
                 sources: list[str] | None = None, code: str | None = None,
                 run: str | None = None) -> dict[str, Any]:
    return {"message": message, "add_files": parse_files(files), "remove_files": remove,
            "metadata": parse_metadata(metadata), "tags": tag, "author": author,
            "replace": only, "override": override, "reason": reason,
            "signer": signer_from(key), "lineage": parse_links(sources), "code": code,
            "run": run}


def parse_links(sources: list[str] | None) -> dict[str, list[str]] | None:
    """``--from [ROLE=]TARGET`` options as the ``lineage=`` mapping (role -> targets)."""
    if not sources:
        return None
    from ..links import parse_from_option

    found: dict[str, list[str]] = {}
    for source in sources:
        role, target = parse_from_option(source)
        found.setdefault(role, []).append(target)
    return found


def signer_from(key: Path | None) -> Any:
    """The signer ``--key`` names (``None``: the library picks one if the policy asks)."""
    if key is None:
        return None
    from ..sshsig import signer_from_environment  # cryptography loads only when signing

    return signer_from_environment(key)


def signing_key(key: Path | None) -> Any:
    """The signer for a command that only signs: ``--key``, else the environment's."""
    from ..errors import InvalidInputError
    from ..sshsig import signer_from_environment

    signer = signer_from(key) if key is not None else signer_from_environment()
    if signer is None:
        raise InvalidInputError("No key to sign with: pass --key, set KIRIN_SIGNING_KEY, or "
                                "add a key to the ssh-agent")
    return signer


SignatureOption = Annotated[list[Path] | None, typer.Option(
    "--signature", metavar="FILE", help="A signature another admin made with policy sign "
    "(repeatable).", show_default=False)]


def signature_files(paths: list[Path] | None) -> list[dict[str, str]]:
    """Signatures printed by ``policy sign --format json`` (the document or its
    ``signature``), for ``policy apply --signature``."""
    import json

    from ..errors import InvalidInputError

    found = []
    for path in paths or ():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            signature = data.get("signature", data)
            found.append({"key": str(signature["key"]), "sig": str(signature["sig"])})
        except (OSError, ValueError, AttributeError, KeyError, TypeError) as exc:
            raise InvalidInputError(f"{path}: not a signature made by policy sign "
                                    f"--format json ({exc})") from exc
    return found


def _commit_or_newest(dataset: Dataset, ref: str | None) -> Commit:
    if ref is not None:
        return dataset.resolve(ref)
    head = dataset.current_commit
    if head is None:
        raise CommitNotFoundError("latest", dataset.name,
                                  f"Dataset {dataset.name!r} has no commits yet")
    return head


def _written(dataset: Dataset, digest: str) -> Commit:
    """The commit just written, by its full hash."""
    found = dataset.get_commit(digest)
    if found is None:  # pragma: no cover - the history only grows
        raise CommitNotFoundError(digest, dataset.name)
    return found


@command(app, "init", scope=Scope.NEW_DATASET)
def init(session: Session, *,
         policy: Annotated[Path | None, typer.Option(
             "--policy", metavar="FILE", help="Policy file (YAML) every commit must satisfy.",
             show_default=False)] = None,
         description: Annotated[str, typer.Option(
             "--description", metavar="TEXT", help="What the dataset holds.")] = "",
         write_config: Annotated[bool, typer.Option(
             "--write-config", help="Also write kirin.yaml here, so later commands need no "
             "--root or --dataset.")] = False) -> Outcome:
    """Create a dataset, optionally with a policy.

    The policy file is checked before anything is created, and stored before
    the dataset becomes visible. Fails with exit code 4 if the dataset exists
    (change its policy with kirin policy apply); run again, it completes a
    creation that was interrupted before the policy was stored.
    """
    location = session.location
    folder = Path.cwd()
    if write_config and (folder / config.CONFIG_FILE).exists():
        raise config.ConfigError(f"{folder / config.CONFIG_FILE} already exists; edit it, "
                                 "or remove it first")
    dataset = session.catalog().create_dataset(session.dataset_name, description,
                                               policy=policy)
    written = config.write_config(folder, location) if write_config else None
    current = dataset.policy
    return views.initialised(dataset.name, location.root, description,
                             current.hash if current is not None else None, written)


@command(app, "commit", scope=Scope.DATASET, gate=True)
def commit(session: Session, *, files: FilesArgument = None, message: MessageOption,
           metadata: MetadataOption = None, tag: TagOption = None,
           remove: RemoveOption = None, author: AuthorOption = None,
           only: OnlyOption = False, override: OverrideOption = False,
           reason: ReasonOption = None, key: KeyOption = None,
           sources: FromOption = None, code: CodeOption = None, run: RunOption = None,
           dry_run: Annotated[bool, typer.Option(
               "--dry-run", help="Check against the policy and write nothing (as kirin "
               "validate).")] = False) -> Outcome:
    """Record a new commit of FILES, with metadata and tags.

    The commit extends the newest commit, whose other files it carries over
    (listed in the output) unless --only is given. Everything, the policy
    included, is checked before anything is written; a rejected commit lists
    every violation and exits with code 1.
    """
    dataset = session.dataset()
    args = _commit_args(files, message, metadata, tag, remove, author, only, override,
                        reason, key, sources, code, run)
    with session.transfers():
        if dry_run:
            return views.report(dataset.name, dataset.validate(**args))
        digest = dataset.commit(**args)
    return views.committed(dataset.name, _written(dataset, digest),
                           given=set(args["add_files"] or {}))


@command(app, "validate", scope=Scope.DATASET, gate=True)
def validate(session: Session, *, files: FilesArgument = None, message: MessageOption,
             metadata: MetadataOption = None, tag: TagOption = None,
             remove: RemoveOption = None, author: AuthorOption = None,
             only: OnlyOption = False, override: OverrideOption = False,
             reason: ReasonOption = None, key: KeyOption = None,
             sources: FromOption = None, code: CodeOption = None,
             run: RunOption = None) -> Outcome:
    """Check a commit against the policy, writing nothing.

    Takes the arguments of kirin commit and runs the same checks. Exits with
    0 if the commit would be admitted, 1 if not, listing every violation
    (--format github: one ::error annotation per violation).
    """
    dataset = session.dataset()
    with session.transfers():
        verdict = dataset.validate(**_commit_args(files, message, metadata, tag, remove,
                                                  author, only, override, reason, key,
                                                  sources, code, run))
    return views.report(dataset.name, verdict)


@command(app, "promote", scope=Scope.DATASET, gate=True)
def promote(session: Session, *, ref: RefArgument,
            tag: Annotated[list[str], typer.Option(
                "--tag", "-t", metavar="TAG", help="Tag of the new commit (repeatable; at "
                "least one).", show_default=False)],
            message: Annotated[str | None, typer.Option(
                "--message", "-m", metavar="TEXT",
                help="Commit message (default: 'Promote <commit> to <tags>').")] = None,
            metadata: Annotated[str | None, typer.Option(
                "--metadata", metavar="JSON|@FILE",
                help="Add or replace top-level metadata keys, e.g. '{\"validated\": true}'.")
            ] = None,
            author: AuthorOption = None, expect: ExpectOption = None,
            override: OverrideOption = False, reason: ReasonOption = None,
            key: KeyOption = None, rollback: Annotated[bool, typer.Option(
                "--rollback", help="Promote a former holder of the stage back to it, judged "
                "by the policy that admitted it then (the policy must say 'rollback: "
                "allowed'); recorded as a rollback.")] = False,
            dry_run: Annotated[bool, typer.Option(
                "--dry-run", help="Check the promotion against the policy; write nothing.")
            ] = False) -> Outcome:
    """Promote REF: the same files and metadata, new tags.

    Nothing is uploaded again. The new commit records the full hash of REF
    (promoted_from). Tags are not inherited: the new commit carries exactly
    the --tag values. The promotion passes the policy gate like any commit: a
    rejected one lists every violation and exits with code 1. In CI, resolve
    REF once (kirin show REF --format json) and promote that hash, or pass
    --expect HASH.
    """
    dataset = session.dataset()
    source = dataset.resolve(ref)
    extra = parse_metadata(metadata)
    options: dict[str, Any] = {"metadata": extra, "expect": expect, "override": override,
                               "reason": reason, "rollback": rollback,
                               "signer": signer_from(key)}
    target = ref if expect is not None else source.hash  # with --expect: checked on write
    if dry_run:
        return views.report(dataset.name, dataset.validate_promotion(
            target, tag, message, author, **options), subject="The promotion")
    digest = dataset.promote(target, tag, message, author, **options)
    return views.promoted(dataset.name, source, _written(dataset, digest))


@command(app, "log", scope=Scope.DATASET)
def log(session: Session, *,
        limit: Annotated[int | None, typer.Option(
            "--limit", "-n", min=1, metavar="N", help="Show at most N commits.")] = None,
        tag: Annotated[list[str] | None, typer.Option(
            "--tag", "-t", metavar="TAG", help="Only commits carrying this tag (repeatable: "
            "all of them).", show_default=False)] = None,
        where: Annotated[str | None, typer.Option(
            "--where", "-w", metavar="EXPR", help="Only commits whose metadata satisfies "
            "EXPR, e.g. \"accuracy > 0.9 and framework == 'pytorch'\".")] = None,
        columns: Annotated[list[str] | None, typer.Option(
            "--columns", "-c", metavar="PATHS", help="Also show these metadata fields, as "
            "columns: comma-separated dotted paths as in --where (repeatable), e.g. "
            "accuracy,metrics.f1; blank where a commit lacks one. In JSON: columns and "
            "values.", show_default=False)] = None) -> Outcome:
    """List commits, newest first, filtered by tags and metadata.

    Shows each commit's hash, date, author, tags and message (marked
    [override], [rollback] or [withdrew STAGE] where the record says so).
    When stdout is not a terminal (a pipe, a file, a CI log) the table is
    never wrapped or cut: each commit is one line, however long.
    """
    from .columns import parse_columns

    chosen = parse_columns(columns)
    dataset = session.dataset()
    return views.log(dataset.name, dataset.find_commits(tags=tag or None, limit=limit,
                                                        where=where), chosen)


@command(app, "show", scope=Scope.DATASET)
def show(session: Session, *, ref: OptionalRef = None) -> Outcome:
    """Show a commit: message, tags, metadata, files, and the approvals it has."""
    dataset = session.dataset()
    commit = _commit_or_newest(dataset, ref)
    return views.show(dataset.name, commit, dataset.approvals(commit.hash))


@command(app, "diff", scope=Scope.DATASET)
def diff(session: Session, *,
         old: Annotated[str, typer.Argument(metavar="A", help="The older commit (REF).",
                                            show_default=False)],
         new: Annotated[str, typer.Argument(metavar="B", help="The newer commit (REF).",
                                            show_default=False)]) -> Outcome:
    """Compare two commits: metadata (by dotted path), tags and files."""
    dataset = session.dataset()
    a, b = dataset.resolve(old), dataset.resolve(new)
    return views.diff(dataset.name, a, b, dataset.compare_commits(a.hash, b.hash))


@command(app, "files", scope=Scope.DATASET)
def files(session: Session, *, ref: OptionalRef = None) -> Outcome:
    """List the files of a commit, with sizes and hashes."""
    dataset = session.dataset()
    return views.files(dataset.name, _commit_or_newest(dataset, ref))


@command(app, "get", scope=Scope.DATASET)
def get(session: Session, *, ref: RefArgument,
        names: Annotated[list[str] | None, typer.Argument(
            metavar="NAME", help="Files or folders to get (default: all files).",
            show_default=False)] = None,
        output: Annotated[Path, typer.Option(
            "--output", "-o", metavar="DIR", help="Folder to write into (created if needed).",
            show_default=False)]) -> Outcome:
    """Write files of a commit into a folder, verified.

    Names never escape DIR. Existing files of the same name are replaced.
    """
    from ..export import export_files

    dataset = session.dataset()
    target = dataset.resolve(ref)
    with session.transfers():
        written = export_files(target, output, names or None)
    return views.got(dataset.name, target, output, written)
