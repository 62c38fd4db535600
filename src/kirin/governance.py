"""Stages, break-glass overrides and rollbacks: the governance around the gate. Pure, no I/O.

A stage (``production``) is a tag the policy declares in ``stages:``. Its
holder is the newest commit carrying the tag, unless a withdrawal of that
stage was recorded after it: promotions and withdrawals are commits of the
linear history, so "who held production, since when, promoted by whom, from
which commit" is answered from the history alone, and cannot be rewritten
without breaking the hash chain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .links import Lineage
    from .policy import Policy, Report, Violation
    from .sshsig import Signer
    from .values import Commit


@dataclass(frozen=True)
class Request:
    """What a record does beyond its content, and how it asks to be judged.

    ``action`` is the record's ``action`` (promotion, rollback, withdrawal);
    ``override`` with ``reason`` asks the gate for break-glass; ``replace``
    makes the commit hold exactly the files given; ``under`` (a rollback)
    names the dataset's and root's policies to judge by instead of those in
    force; ``signer`` signs the record (else, under a policy with ``signing:``,
    the key of the environment: ``KIRIN_SIGNING_KEY`` or the ssh-agent);
    ``lineage`` is what the record links to.
    """

    kind: str = "commit"
    action: Mapping[str, Any] | None = None
    override: bool = False
    reason: str | None = None
    replace: bool = False
    under: tuple[Policy | None, Policy | None] | None = None
    signer: Signer | None = None
    #: What the record links to (resolved, full hashes).
    lineage: Lineage | None = None


@dataclass(frozen=True)
class Tenure:
    """One commit's time holding a stage: from its promotion until replaced or withdrawn.

    ``ended_by`` is the commit that ended it (the next holder, or the
    withdrawal), ``how`` says which (``replaced``, ``withdrawn``; ``None``
    while it still holds the stage).
    """

    stage: str
    commit: Commit
    ended_by: Commit | None
    how: str | None

    @property
    def since(self) -> datetime:
        return self.commit.timestamp

    @property
    def until(self) -> datetime | None:
        return self.ended_by.timestamp if self.ended_by is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "commit": self.commit.hash,
                "since": self.since.isoformat(), "by": self.commit.author,
                "kind": self.commit.kind, "promoted_from": self.commit.promoted_from,
                "message": self.commit.message,
                "until": self.until.isoformat() if self.until else None,
                "ended_by": self.ended_by.hash if self.ended_by else None,
                "how": self.how}


@dataclass(frozen=True)
class StageStatus:
    """Who holds a stage now (``commit`` ``None``: nobody, never or since a withdrawal)."""

    stage: str
    commit: Commit | None
    version_tags: tuple[str, ...]
    withdrawn_by: Commit | None = None

    @property
    def since(self) -> datetime | None:
        return self.commit.timestamp if self.commit is not None else None

    @property
    def by(self) -> str | None:
        return self.commit.author if self.commit is not None else None

    @property
    def promoted_from(self) -> str | None:
        return self.commit.promoted_from if self.commit is not None else None

    def to_dict(self) -> dict[str, Any]:
        commit = self.commit
        withdrawn = self.withdrawn_by
        return {
            "stage": self.stage,
            "commit": commit.hash if commit else None,
            "since": commit.timestamp.isoformat() if commit else None,
            "by": commit.author if commit else None,
            "kind": commit.kind if commit else None,
            "promoted_from": commit.promoted_from if commit else None,
            "version_tags": list(self.version_tags),
            "overridden": bool(commit.override) if commit else False,
            "withdrawn": None if withdrawn is None else {
                "commit": withdrawn.hash, "at": withdrawn.timestamp.isoformat(),
                "by": withdrawn.author, "reason": withdrawn.message},
        }


def withdrawn_stage(commit: Commit) -> str | None:
    withdrawal = commit.withdrawal
    return str(withdrawal["stage"]) if withdrawal is not None else None


def tenures(commits: Sequence[Commit], stage: str) -> list[Tenure]:
    """Every commit that held ``stage``, oldest first, with how each tenure ended."""
    found: list[Tenure] = []
    current: Commit | None = None
    for commit in commits:
        if stage in commit.tags:
            if current is not None:
                found.append(Tenure(stage, current, commit, "replaced"))
            current = commit
        elif current is not None and withdrawn_stage(commit) == stage:
            found.append(Tenure(stage, current, commit, "withdrawn"))
            current = None
    if current is not None:
        found.append(Tenure(stage, current, None, None))
    return found


def version_tags(commit: Commit, by_hash: Mapping[str, Commit],
                 is_version: Callable[[str], bool]) -> tuple[str, ...]:
    """The version tags a stage's holder goes by: its own and those of the commits it was
    promoted from.

    A unique version tag (``v1.2``) stays on the commit that first carried
    it; following ``promoted_from`` lets it name the model wherever it is
    promoted. ``is_version`` says which tags are version tags.
    """
    seen: dict[str, None] = {}
    current: Commit | None = commit
    visited: set[str] = set()
    while current is not None and current.hash not in visited:
        visited.add(current.hash)
        seen.update((t, None) for t in current.tags if is_version(t))
        source = current.promoted_from
        current = by_hash.get(source) if source is not None else None
    return tuple(seen)


def earlier_holder(commits: Sequence[Commit], stage: str, tree: str,
                   tree_of: Mapping[str, str]) -> Commit | None:
    """The newest commit that held ``stage`` with the snapshot ``tree`` (for a rollback)."""
    for commit in reversed(commits):
        if stage in commit.tags and tree_of.get(commit.hash) == tree:
            return commit
    return None


def apply_override(report: Report, policies: Mapping[str, Policy | None], *, author: str,
                   reason: str | None) -> Report:
    """``report`` with break-glass applied: admitted if every violation may be overridden.

    Each violation is judged by the ``overrides:`` of the policy it came from
    (``policies`` by source). All must be covered, the author must be one the
    policy names (if it names any) and a reason given where required; else
    the report keeps every violation, plus one saying why the override was
    refused. Nothing is overridden when there is nothing to override.
    """
    from .policy import Report, Violation

    if report.ok:
        return report
    refusals: list[Violation] = []
    outside = [v for v in report.violations
               if (rules := _rules(policies, v.source)) is None or not rules.covers(v.rule)]
    for source in dict.fromkeys(v.source for v in outside):
        rules = _rules(policies, source)
        names = sorted({v.rule for v in outside if v.source == source})
        allowed = ("; it allows overriding only " + ", ".join(rules.rules)) if rules else (
            "; it declares no overrides")
        refusals.append(Violation(
            "overrides.rules", ",".join(names), names,
            "only violations the policy lets be overridden",
            f"The {source} policy does not let an override admit {', '.join(names)}"
            f"{allowed}.", source))
    for source in dict.fromkeys(v.source for v in report.violations):
        rules = _rules(policies, source)
        if rules is None:
            continue
        who = author.strip()
        if rules.authors is not None and who not in {a.strip() for a in rules.authors}:
            refusals.append(Violation(
                "overrides.authors", who, who, "one of: " + ", ".join(rules.authors),
                f"Author {who!r} may not override the {source} policy; only "
                f"{', '.join(rules.authors)} may.", source))
        if rules.needs_reason and not (reason or "").strip():
            refusals.append(Violation(
                "overrides.reason_required", "reason", reason, "a reason for the override",
                f"An override of the {source} policy needs a reason (--reason).", source))
    if refusals:
        return Report((*report.violations, *refusals), report.policy_hash,
                      report.root_policy_hash)
    return Report((), report.policy_hash, report.root_policy_hash, report.violations)


def _rules(policies: Mapping[str, Policy | None], source: str) -> Any:
    policy = policies.get(source)
    return policy.overrides if policy is not None else None


def override_record(report: Report, reason: str | None) -> dict[str, Any] | None:
    """The ``override`` a commit record keeps, or ``None`` when nothing was overridden."""
    if not report.overridden:
        return None
    return {"reason": (reason or "").strip(),
            "violations": [_kept(v) for v in report.overridden]}


def _kept(violation: Violation) -> dict[str, str]:
    return {"rule": violation.rule, "path": violation.path, "source": violation.source,
            "message": violation.message}


def signing_violations(policy: Policy, source: str, *, kind: str, tags: Sequence[str],
                       override: bool, key: str | None, fingerprint: str | None
                       ) -> list[Violation]:
    """Whether the record's signer may take its action under ``policy``'s ``signing:``.

    ``key`` is the signer's OpenSSH public key line (``None``: unsigned). Each
    requirement that applies (every record; each tag it carries; a withdrawal;
    an override) names who may sign; a revoked key may sign nothing. The
    violations name the rule and the principal. Signing rules cannot be
    overridden (they are not in ``overrides.rules``' families).
    """
    from .policy import Violation

    rules = policy.signing
    if rules is None:
        return []
    require = rules.require
    needs: list[tuple[str, tuple[str, ...]]] = []
    if require.commit is not None:
        needs.append(("signing.require.commit", require.commit))
    for tag in tags:
        if tag in require.promote:
            needs.append((f"signing.require.promote.{tag}", require.promote[tag]))
    if kind == "withdrawal" and require.withdraw is not None:
        needs.append(("signing.require.withdraw", require.withdraw))
    if override and require.override is not None:
        needs.append(("signing.require.override", require.override))
    found: list[Violation] = []
    if key is not None and fingerprint in rules.revoked:
        found.append(Violation("signing.revoked", str(fingerprint), fingerprint,
                               "a key that is not revoked",
                               f"Key {fingerprint} is revoked by the {source} policy; it may "
                               "sign nothing.", source))
        return found
    principal = rules.principal_of(key) if key is not None else None
    for rule, names in needs:
        allowed = ", ".join(names)
        if key is None:
            found.append(Violation(rule, "signature", None, f"a signature by one of {allowed}",
                                   f"The record must be signed by one of {allowed} ({rule} of "
                                   f"the {source} policy); it is unsigned. Sign with --key, "
                                   "KIRIN_SIGNING_KEY or the ssh-agent.", source))
        elif principal is None:
            found.append(Violation(rule, str(fingerprint), fingerprint,
                                   f"a key of one of {allowed}",
                                   f"Key {fingerprint} belongs to no principal of the {source} "
                                   f"policy; {rule} needs one of {allowed}.", source))
        elif principal not in rules.members(names):
            found.append(Violation(rule, principal, principal, f"one of {allowed}",
                                   f"Principal {principal!r} may not sign this ({rule} of the "
                                   f"{source} policy needs one of {allowed}).", source))
    return found
