"""Re-judging a history for CI: which commits, against which policy.

Why its own module: ``Dataset.audit`` answers two different questions, and
CI needs both to be stable gates rather than alarms that ring forever once a
policy tightens:

* ``against="current"`` — *what would be rejected today?* Every commit is
  judged by the policy in force now. After tightening, old commits fail by
  design: run it ``since`` the tightening, or use the other mode.
* ``against="admitting"`` — *did the gate hold?* Every commit is judged by the
  policy version that admitted it (the ``policy_hash`` its record carries),
  loaded from the policy history. A commit admitted with no policy in force
  is not judged; one whose policy is missing from the history fails (the
  ``policy-history`` violation), since nothing can show it was admitted.

``since`` limits what is *reported*, never what is *known*: each commit is
still judged as if proposed on top of every commit before it, so
history-dependent rules (unique tags, earlier stages) mean what they meant.

Exceptions a record may come to carry (a deliberate override of some
violations) belong in :func:`admitted_verdict`, the one place a commit's
verdict under its admitting policy is decided.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal

from .errors import AmbiguousRefError, CommitNotFoundError, InvalidInputError
from .policylog import PolicyVersion, with_unknown_policy
from .values import Commit

if TYPE_CHECKING:
    from .policy import Policy, Report

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
    a date. Anything else is :class:`InvalidInputError`.
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
    except CommitNotFoundError:
        moment = parse_moment(since)
        if moment is None:
            raise InvalidInputError(
                f"since {since[:80]!r} is neither a commit of dataset {dataset!r} (a hash, "
                "unique prefix or tag) nor an ISO 8601 date or date-time such as 2026-12-01 "
                "or 2026-12-01T09:30:00+00:00") from None
        return Since(moment=moment)


def admitted_verdict(commit: Commit, verdict: Report | None) -> Report:
    """How ``commit`` fares under the policy that admitted it.

    ``verdict`` is that policy's judgement of the commit (``None``: the policy
    is missing from the policy history). A commit admitted with no policy in
    force is not judged: an empty report with no policy hash. This is where
    violations a record deliberately overrode are to be excused.
    """
    from .policy import Report

    if commit.policy_hash is None:
        return Report((), None)
    if verdict is None:
        return with_unknown_policy(commit, Report((), commit.policy_hash))
    return verdict


class _Policies:
    """Policy versions by hash, each parsed once and only if an audit needs it."""

    def __init__(self, versions: Sequence[PolicyVersion]) -> None:
        self.by_hash: dict[str, PolicyVersion] = {
            v.policy_hash: v for v in versions if v.policy_hash is not None}
        self.loaded: dict[str, Policy] = {}

    def get(self, digest: str) -> Policy | None:
        if digest not in self.loaded:
            version = self.by_hash.get(digest)
            policy = version.load() if version is not None else None
            if policy is None:
                return None
            self.loaded[digest] = policy
        return self.loaded[digest]


def audit_current(policy: Policy, history: Sequence[Commit], known: set[str | None],
                  since: Since) -> list[tuple[Commit, Report]]:
    """Every reported commit judged by ``policy``; a commit whose own policy is unknown fails."""
    from .policy import audit

    last = max((c.seq for c in history if since.reports(c)), default=-1)
    results = audit(policy, history[:last + 1])
    return [(c, r if c.policy_hash in known else with_unknown_policy(c, r))
            for c, r in results if since.reports(c)]


def audit_admitting(history: Sequence[Commit], versions: Sequence[PolicyVersion],
                    since: Since) -> list[tuple[Commit, Report]]:
    """Every reported commit judged by the policy that admitted it (see :func:`admitted_verdict`).

    Each admitting policy re-judges the history up to the last commit it
    admitted, incrementally (one pass per policy version in use, not one per
    commit).
    """
    from .policy import audit

    policies = _Policies(versions)
    reported = [c for c in history if since.reports(c)]
    verdicts: dict[int, Report] = {}
    for digest in dict.fromkeys(c.policy_hash for c in reported if c.policy_hash):
        policy = policies.get(digest)
        if policy is None:
            continue
        wanted = {c.seq for c in reported if c.policy_hash == digest}
        for commit, report in audit(policy, history[:max(wanted) + 1]):
            if commit.seq in wanted:
                verdicts[commit.seq] = report
    return [(c, admitted_verdict(c, verdicts.get(c.seq))) for c in reported]


def judged(results: Sequence[tuple[Commit, Report]]) -> list[tuple[Commit, Report]]:
    """The results that were judged (a commit admitted without a policy is not)."""
    return [(c, r) for c, r in results if r.policy_hash is not None]


def newest_first(results: Sequence[tuple[Commit, Report]], include_passing: bool
                 ) -> list[tuple[Commit, Report]]:
    return [(c, r) for c, r in reversed(results) if include_passing or not r.ok]

