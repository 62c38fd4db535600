"""Commands that look after a registry: policy, audit, verify, gc, catalog."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .. import progress
from ..errors import PolicyError
from ..gc import DEFAULT_GRACE
from . import views
from .app import app, catalog_app, policy_app
from .commands import (  # (and so the history commands come first in --help)
    AuthorOption,
    KeyOption,
    SignatureOption,
    signature_files,
    signer_from,
    signing_key,
)
from .output import Outcome
from .parsing import parse_duration
from .runner import Scope, Session, command

VersionArgument = Annotated[str | None, typer.Argument(
    metavar="VERSION", show_default=False,
    help="A policy version: its number as kirin policy history lists it, or a policy hash "
         "or unique prefix of one (at least 4 hex digits).")]


@command(policy_app, "show", scope=Scope.DATASET, shape="policy show")
def policy_show(session: Session, *, version: VersionArgument = None) -> Outcome:
    """Print a version of the policy (default: the one in force) and its hash.

    The YAML is self-contained: a schema file the policy named is embedded.
    """
    dataset = session.dataset()
    if version is None:
        policy = dataset.policy  # fails closed on a damaged policy history
        history = dataset.policy_history()
        return views.policy_show(dataset.name, policy, history[0] if history else None)
    chosen = dataset.policy_version(version)
    return views.policy_show(dataset.name, chosen.load(), chosen)


@command(policy_app, "diff", scope=Scope.DATASET, shape="policy diff")
def policy_diff(session: Session, *,
                old: Annotated[str, typer.Argument(
                    metavar="A", show_default=False,
                    help="The older policy VERSION (number, hash or prefix).")],
                new: Annotated[str | None, typer.Argument(
                    metavar="B", show_default=False,
                    help="The newer policy VERSION (default: the one in force).")] = None
                ) -> Outcome:
    """Show what changed between two versions of the policy, as a unified diff.

    Compares the readable YAML of each version (kirin policy show), so a
    changed rule shows as the lines that changed. Exits with 0 whether or not
    they differ (the JSON document says "changed").
    """
    from ..policyrefs import diff_versions

    dataset = session.dataset()
    a, b = dataset.policy_version(old), dataset.policy_version(new)
    return views.policy_diffed(dataset.name, a, b, diff_versions(a, b))


@command(policy_app, "apply", scope=Scope.DATASET, shape="policy apply")
def policy_apply(session: Session, *,
                 file: Annotated[Path, typer.Argument(
                     metavar="FILE", help="Policy file (YAML).", show_default=False)],
                 message: Annotated[str, typer.Option(
                     "--message", "-m", metavar="TEXT",
                     help="Why the policy changes (kept in the policy history; default: "
                     "'Apply FILE').")] = "",
                 author: AuthorOption = None, key: KeyOption = None,
                 signature: SignatureOption = None) -> Outcome:
    """Make FILE the dataset's policy from now on.

    The file is checked first; an invalid one changes nothing and exits with
    code 2. Applying the policy already in force records nothing. Existing
    commits are not re-judged: see kirin audit. Where the policy in force says
    who must sign its replacement (signing.require.policy), give enough admins'
    signatures (--key signs here, --signature adds others'); too few exit with 1.
    """
    dataset = session.dataset()
    before = dataset.policy
    signer = signer_from(key)
    after = dataset.set_policy(file, message=message or f"Apply {file.name}", author=author,
                               signers=[signer] if signer is not None else [],
                               signatures=signature_files(signature))
    return views.policy_applied(dataset.name, before.hash if before else None, after)


@command(policy_app, "sign", scope=Scope.DATASET, shape="policy sign")
def policy_sign(session: Session, *,
                file: Annotated[Path, typer.Argument(
                    metavar="FILE", help="Policy file (YAML) to authorise.",
                    show_default=False)],
                key: KeyOption = None) -> Outcome:
    """Sign FILE as the dataset's next policy version, for another admin's policy apply.

    Prints the signature (--format json: a document policy apply --signature
    takes). It authorises exactly this policy as the next version: it is no
    longer valid once another version is set.
    """
    dataset = session.dataset()
    signer = signing_key(key)
    signed = dataset.sign_policy(file, signer)
    version = int(signed.pop("version"))
    return Outcome({"dataset": dataset.name, "version": version, "signature": signed},
                   [views.line(f"Signed {file} as version #{version} of the policy of "
                               f"{dataset.name} with {signer.public_key.fingerprint}.",
                               "green"), views.line(json.dumps(signed))])


@command(policy_app, "check", scope=Scope.NONE, gate=True, shape="policy check")
def policy_check(session: Session, *,
                 files: Annotated[list[Path], typer.Argument(
                     metavar="FILES", help="Policy files (YAML) to check.",
                     show_default=False)],
                 strict: Annotated[bool, typer.Option(
                     "--strict", help="Fail on warnings too (a field a rule reads that the "
                     "schema does not declare).")] = False) -> Outcome:
    """Check policy files; no registry needed.

    Besides the file itself, every field a promotion rule reads is checked
    against the metadata schema: a field the schema cannot produce (an
    object closed by additionalProperties: false, a value that is not an
    object, a near miss of a declared name such as metrics.acu for
    metrics.auc) or a comparison that can never hold is an error, with "did
    you mean"; a field an open object merely does not declare is a warning.
    Reports every invalid file with its line and key; exits with code 2 if
    any is invalid, or with --strict has warnings (--format github: one
    ::error annotation per invalid file, one ::warning per warning).
    """
    from ..policy.loader import check_policy_file  # pydantic and jsonschema: only when needed

    results: list[views.CheckedPolicy] = []
    for file in files:
        try:
            policy, warnings = check_policy_file(file)
            results.append(views.CheckedPolicy(str(file), policy, None, warnings))
        except PolicyError as exc:
            results.append(views.CheckedPolicy(str(file), None, exc, ()))
    return views.policy_checked(results, strict=strict)


@command(policy_app, "history", scope=Scope.DATASET, shape="policy history")
def policy_history(session: Session) -> Outcome:
    """List every version of the policy, newest first."""
    dataset = session.dataset()
    return views.policy_history(dataset.name, dataset.policy_history())


class Against(str, Enum):
    """Which policy judges each commit in kirin audit."""

    current = "current"
    admitting = "admitting"


@command(app, "audit", scope=Scope.DATASET, gate=True)
def audit(session: Session, *,
          since: Annotated[str | None, typer.Option(
              "--since", metavar="REF|DATE",
              help="Report only the commits after REF (as git's REF..HEAD), or at or after "
              "an ISO 8601 date or date-time (local time unless it has an offset, e.g. "
              "2026-12-01 or 2026-12-01T09:30Z). Earlier commits still count for rules on "
              "the history.", show_default=False)] = None,
          against: Annotated[Against, typer.Option(
              "--against", help="current: judge by the policy in force now (what would be "
              "rejected today); admitting: judge each commit by the policy version that "
              "admitted it (did the gate hold?).")] = Against.current) -> Outcome:
    """Re-judge commits of the history under a policy.

    Each commit is judged as if proposed on top of the commits before it.
    Lists the commits that fail, with their violations.

    \b
    Exit codes:
      0  every reported commit passes (none judged: also 0)
      1  --against current: some would be rejected today;
         --against admitting: some break the policy that admitted them, or
         name a policy version missing from the policy history (the gate
         did not hold); either way, a commit whose signature, signer or
         approvals fail the policy's signing: rules, or that a policy
         version the admins never authorised admitted (policy-trust)
      2  a bad --since or --against
      3  no such dataset, or --since names several commits, or a full hash
         the history does not hold (a head CI saw before: newest records
         deleted)
      4  the policy history is damaged (a hole): run kirin verify

    After tightening the policy, old commits fail --against current for
    good: run --against admitting as the CI step, or --since the commit or
    date of the tightening. A commit admitted with no policy in force is not
    judged --against admitting.
    """
    dataset = session.dataset()
    results = dataset.audit(include_passing=True, since=since, against=against.value)
    # the newest version, not dataset.policy: a commit naming a lost policy version is a
    # finding of the audit (exit 1), not a reason to refuse to audit
    history = dataset.policy_history()
    root_history = session.catalog().policy_history()
    return views.audited(dataset.name, history[0].policy_hash if history else None, results,
                         against=against.value, since=since,
                         root_policy_hash=root_history[0].policy_hash if root_history else None)


@command(app, "verify", scope=Scope.DATASET, gate=True)
def verify(session: Session) -> Outcome:
    """Re-hash everything the history references.

    Every commit record, snapshot, checkpoint and blob is checked. Reports
    each one missing, truncated or altered, naming the commits and files it
    affects; exits with code 1 if anything is wrong.
    """
    dataset = session.dataset()
    with session.transfers(), progress.transfer("Verifying", None) as advance:
        result = dataset.verify(progress=advance)
    return views.verified(result)


@command(app, "gc", scope=Scope.ROOT)
def gc(session: Session, *,
       dry_run: Annotated[bool, typer.Option(
           "--dry-run", help="Report what would be removed; remove nothing.")] = False,
       grace: Annotated[str, typer.Option(
           "--grace", metavar="DURATION", help="Keep unreferenced blobs younger than this "
           "(e.g. 90s, 10m, 1h, 2d); it must exceed the longest commit.")
       ] = f"{int(DEFAULT_GRACE.total_seconds() // 3600)}h") -> Outcome:
    """Remove blobs no commit references.

    Looks at every dataset under the root (blobs are shared). Blobs written
    in the last --grace are kept, so commits in progress are safe.
    """
    catalog = session.catalog()
    return views.collected(session.location.root,
                           catalog.gc(dry_run=dry_run, grace=parse_duration(grace)))


@command(catalog_app, "list", scope=Scope.ROOT, shape="catalog list")
def catalog_list(session: Session) -> Outcome:
    """List the datasets under the root."""
    catalog = session.catalog()
    return views.catalog(session.location.root,
                         [(n, catalog.get_dataset(n).description) for n in catalog.datasets()])
