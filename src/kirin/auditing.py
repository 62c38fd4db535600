"""Re-judging a history for CI: which commits, against which policy.

Why its own module: ``Dataset.audit`` answers two different questions, and
CI needs both to be stable gates rather than alarms that ring forever once a
policy tightens:

* ``against="current"`` — *what would be rejected today?* Every commit is
  judged by the policy in force now. After tightening, old commits fail by
  design: run it ``since`` the tightening, or use the other mode.
* ``against="admitting"`` — *did the gate hold?* Every commit is judged by the
  policy versions that admitted it (the dataset's and the root's hashes its
  record carries; for a rollback, those that admitted the holder it
  restored), loaded from the policy histories, and the violations its record
  says an override let past are excused. A commit admitted with no policy
  in force is not judged; one whose policy is missing from the history
  fails (the ``policy-history`` violation), since nothing can show it was
  admitted.

``since`` limits what is *reported*, never what is *known*: each commit is
still judged as if proposed on top of every commit before it, so
history-dependent rules (unique tags, earlier stages) mean what they meant.

Both modes judge by the dataset's policy and the registry root's, as the
gate does. Exceptions a record carries (a break-glass override of some
violations) are applied in :func:`admitted_verdict` only, the one place a
commit's verdict under its admitting policies is decided; the current mode
reports what today's rules say, overrides included.

A policy's ``signing:`` section is judged as the gate judges it: each
record's signature must verify, its signer be allowed what it did, and a
promotion's approvals (as stored now) reach the count; a forged signature is
reported whenever a policy judges the commit. A policy version the admins
never authorised (:mod:`kirin.policytrust`) does not stop the audit: every
commit it admitted gets the ``policy-trust`` finding, and the current mode
judges by the newest authorised version instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal

from .digests import is_digest
from .errors import AmbiguousRefError, CommitNotFoundError, InvalidInputError
from .policylog import PolicyLog, with_unknown_policy
from .values import Commit

if TYPE_CHECKING:
    from .policy import Policy, Report, Violation
    from .policy.gate import LinkedOf
    from .signchecks import RecordSigning

Against = Literal["current", "admitting"]
AGAINST: tuple[Against, ...] = ("current", "admitting")


@dataclass(frozen=True)
class Since:
    """Which commits an audit reports: those after a commit, or from a moment on."""

    after_seq: int = -1  # report commits whose seq is greater
    moment: datetime | None = None  # report commits at or after this time

    def reports(self, commit: Commit) -> bool:
        if commit.seq <= self.after_seq:
            return False
        return self.moment is None or commit.timestamp >= self.moment


def against_argument(value: object) -> Against:
    """``against`` checked: one of :data:`AGAINST`, else :class:`InvalidInputError`."""
    for choice in AGAINST:
        if value == choice and isinstance(value, str):
            return choice
    raise InvalidInputError(f"against must be one of {', '.join(map(repr, AGAINST))}, "
                            f"not {value!r}")


def parse_moment(text: str) -> datetime | None:
    """An ISO 8601 date or date-time (``2026-12-01``, ``2026-12-01T09:30Z``), else ``None``.

    Without an offset it is local time, as ``kirin log`` shows dates.
    """
    candidate = text.strip()
    if len(candidate) < 10 or candidate[4:5] != "-":
        return None  # no date: a hash prefix of digits is never taken for one
    try:
        moment = datetime.fromisoformat(candidate.replace("z", "Z"))
    except ValueError:
        return None
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment.astimezone()


def since_argument(since: str | datetime | None, resolve: Callable[[str], Commit],
                   dataset: str) -> Since:
    """What ``since`` names: a commit (REF: report what came after it) or a moment.

    A string is tried as a REF first (hash, unique prefix, tag), then as an
    ISO 8601 date or date-time. A REF several commits match is an error, not
    a date; so is a full hash the history lacks (:class:`CommitNotFoundError`:
    a head a CI job saw before and that is gone is a finding, not a typo).
    Anything else is :class:`InvalidInputError`.
    """
    if since is None:
        return Since()
    if isinstance(since, datetime):
        return Since(moment=since if since.tzinfo else since.astimezone())
    if not isinstance(since, str) or not since.strip():
        raise InvalidInputError(f"since must be a commit (REF) or an ISO 8601 date, not "
                                f"{since!r}")
    try:
        return Since(after_seq=resolve(since).seq)
    except AmbiguousRefError:
        raise
    except CommitNotFoundError as exc:
        if is_digest(since.strip()):
            raise CommitNotFoundError(
                since, dataset, f"Commit {since.strip()} is not in the history of dataset "
                f"{dataset!r}. If a CI job saw it there before, the newest records were "
                "deleted since (see docs/security.md).") from exc
        moment = parse_moment(since)
        if moment is None:
            raise InvalidInputError(
                f"since {since[:80]!r} is neither a commit of dataset {dataset!r} (a hash, "
                "unique prefix or tag) nor an ISO 8601 date or date-time such as 2026-12-01 "
                "or 2026-12-01T09:30:00+00:00") from None
        return Since(moment=moment)


def admitting_hashes(commit: Commit) -> tuple[str | None, str | None]:
    """(dataset policy, root policy) that admitted ``commit``: the hashes it was judged by.

    A rollback was judged by the policies that admitted the earlier holder
    it restored (its record names them), not by those in force then.
    """
    rollback = commit.rollback
    if rollback is not None:
        own, root = rollback["policy"], rollback["root_policy"]
        return (str(own) if own is not None else None, str(root) if root is not None else None)
    return commit.policy_hash, commit.root_policy_hash


def is_judged(report: Report) -> bool:
    """Whether a policy judged the commit (one admitted with no policy at all is not)."""
    return report.policy_hash is not None or report.root_policy_hash is not None


def admitted_verdict(commit: Commit, verdict: Report) -> Report:
    """How ``commit`` fares under the policies that admitted it, its exceptions applied.

    ``verdict`` is those policies' judgement of the commit. The violations its
    record says a break-glass override let past are excused (kept in
    ``overridden``): the gate held if nothing else is left. This is the one
    place a recorded exception changes an audit's verdict.
    """
    from .policy import Report

    override = commit.override
    if override is None or not verdict.violations:
        return verdict
    excused = {(str(v["rule"]), str(v["path"]), str(v["source"]))
               for v in override["violations"]}
    kept = tuple(v for v in verdict.violations if (v.rule, v.path, v.source) not in excused)
    let_past = tuple(v for v in verdict.violations if (v.rule, v.path, v.source) in excused)
    return Report(kept, verdict.policy_hash, verdict.root_policy_hash,
                  (*verdict.overridden, *let_past))


def _missing(commit: Commit, digest: str, source: str) -> Violation:
    """The finding that ``commit`` names a policy version its policy history lacks."""
    from .policy import Report

    found = with_unknown_policy(commit, Report()).violations[-1]
    if source == "dataset" and digest == commit.policy_hash:
        return found
    where = "the root's" if source == "root" else "the dataset's"
    return replace(found, value=digest, source=source,
                   message=f"Commit {commit.short_hash} was judged by {where} policy "
                           f"{digest[:12]}, which {where} policy history does not hold "
                           "(a policy version was deleted or altered)")


class _Judge:
    """Each (source, policy hash) judges the history once, incrementally, up to where needed.

    With ``signing``, a policy's ``signing:`` section judges each record's
    signature, signer and approvals too, as the gate did (:mod:`kirin.signchecks`).
    """

    def __init__(self, history: Sequence[Commit], logs: Mapping[str, PolicyLog],
                 linked: LinkedOf | None = None, signing: RecordSigning | None = None
                 ) -> None:
        self.history = history
        self.logs = logs
        self.linked = linked
        self.signing = signing
        self.verdicts: dict[tuple[str, str], dict[int, Report]] = {}
        self.policies: dict[tuple[str, str], Policy] = {}

    def run(self, source: str, digest: str, seqs: set[int], policy: Policy | None = None
            ) -> None:
        """Judge the commits ``seqs`` by the ``source`` policy ``digest`` (given, or loaded)."""
        from .policy import audit

        if policy is None:
            log = self.logs[source]
            if digest not in log.hashes():
                return  # missing: :meth:`verdict` reports it
            policy = log.policy_of(digest)
            if policy is None:
                return
        self.policies[(source, digest)] = policy
        self.verdicts[(source, digest)] = {
            c.seq: r for c, r in audit(policy, self.history[:max(seqs) + 1],
                                       self.linked if policy.lineage else None)
            if c.seq in seqs}

    def verdict(self, commit: Commit, own: str | None, root: str | None) -> Report:
        """The report of the dataset's policy ``own`` and the root's ``root``, both."""
        from .policy import Report

        parts: list[Report] = []
        for source, digest in (("dataset", own), ("root", root)):
            if digest is None:
                parts.append(Report())
                continue
            found = self.verdicts.get((source, digest), {}).get(commit.seq)
            if found is None:
                parts.append(Report((_missing(commit, digest, source),), digest))
            else:
                parts.append(Report((*(v.from_source(source) for v in found.violations),
                                     *self._signing(commit, source, digest)), digest))
        dataset, rooted = parts
        forged = (self.signing.forged(commit, "dataset" if own else "root")
                  if self.signing is not None and (own or root) else None)
        return Report((*rooted.violations, *dataset.violations, *([forged] if forged else [])),
                      own, root)

    def _signing(self, commit: Commit, source: str, digest: str) -> list[Violation]:
        policy = self.policies.get((source, digest))
        if self.signing is None or policy is None:
            return []
        return self.signing.violations(commit, policy, source)


def policies_in_force(logs: Mapping[str, PolicyLog]) -> tuple[Policy | None, Policy | None]:
    """(dataset, root) policies an audit judges by today: each log's current version, or,
    where the chain of trust is broken, the newest version the admins authorised."""
    found: list[Policy | None] = []
    for source in ("dataset", "root"):
        distrust = logs[source].distrust()
        found.append(distrust.trusted if distrust is not None
                     else logs[source].current_policy())
    return found[0], found[1]


def untrusted_findings(commit: Commit, logs: Mapping[str, PolicyLog],
                       hashes: tuple[str | None, str | None]) -> list[Violation]:
    """``commit`` was admitted (``hashes``: dataset's, root's) by a policy version the admins
    never authorised: the ``policy-trust`` finding, whatever that policy says of it."""
    from .policy import Violation

    found = []
    for source, digest in zip(("dataset", "root"), hashes, strict=True):
        distrust = logs[source].distrust()
        if digest is None or distrust is None or digest not in distrust.hashes:
            continue
        where = "the root's" if source == "root" else "the dataset's"
        found.append(Violation(
            "policy-trust", "policy", digest, "a policy version its predecessor authorised",
            f"Commit {commit.short_hash} was admitted by {where} policy {digest[:12]}, "
            f"from version #{distrust.seq} on, which is not authorised: {distrust.reason}",
            source))
    return found


def audit_current(policies: tuple[Policy | None, Policy | None], history: Sequence[Commit],
                  logs: Mapping[str, PolicyLog], since: Since,
                  linked: LinkedOf | None = None, signing: RecordSigning | None = None
                  ) -> list[tuple[Commit, Report]]:
    """Every reported commit judged by the policies in force now (the dataset's, the root's).

    A commit naming a policy version its history lacks also fails: nothing
    shows it was ever admitted.
    """
    own, root = policies
    judge = _Judge(history, logs, linked, signing)
    reported = [c for c in history if since.reports(c)]
    seqs = {c.seq for c in reported}
    if not seqs:
        return []
    for source, policy in (("dataset", own), ("root", root)):
        if policy is not None:
            judge.run(source, policy.hash, seqs, policy)
    results = []
    for commit in reported:
        report = judge.verdict(commit, own.hash if own else None, root.hash if root else None)
        lost = [_missing(commit, digest, source)
                for source, digest in (("dataset", commit.policy_hash),
                                       ("root", commit.root_policy_hash))
                if digest is not None and digest not in logs[source].hashes()]
        lost += untrusted_findings(commit, logs, (commit.policy_hash, commit.root_policy_hash))
        results.append((commit, replace(report, violations=(*report.violations, *lost))))
    return results


def audit_admitting(history: Sequence[Commit], logs: Mapping[str, PolicyLog], since: Since,
                    linked: LinkedOf | None = None, signing: RecordSigning | None = None
                    ) -> list[tuple[Commit, Report]]:
    """Every reported commit judged by the policies that admitted it (:func:`admitting_hashes`).

    Each admitting policy re-judges the history up to the last commit it
    admitted, incrementally (one pass per policy version in use, not one per
    commit); recorded exceptions are applied by :func:`admitted_verdict`.
    """
    reported = [c for c in history if since.reports(c)]
    wanted: dict[tuple[str, str], set[int]] = {}
    for commit in reported:
        for source, digest in zip(("dataset", "root"), admitting_hashes(commit), strict=True):
            if digest is not None:
                wanted.setdefault((source, digest), set()).add(commit.seq)
    judge = _Judge(history, logs, linked, signing)
    for (source, digest), seqs in wanted.items():
        judge.run(source, digest, seqs)
    results = []
    for commit in reported:
        verdict = admitted_verdict(commit, judge.verdict(commit, *admitting_hashes(commit)))
        distrusted = untrusted_findings(commit, logs, admitting_hashes(commit))
        results.append((commit, replace(verdict, violations=(*verdict.violations,
                                                             *distrusted))))
    return results


def newest_first(results: Sequence[tuple[Commit, Report]], include_passing: bool
                 ) -> list[tuple[Commit, Report]]:
    return [(c, r) for c, r in reversed(results) if include_passing or not r.ok]
