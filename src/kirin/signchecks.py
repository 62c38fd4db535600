"""What a policy's ``signing:`` section says of a stored record: one judge for gate, audit, verify.

Why its own module: the gate (a record about to be written), ``audit`` (the
history re-judged, today's policy or the admitting one) and ``verify`` (every
record, the policies that admitted it) must agree on what a valid signature
and enough approvals are. A copy in each would drift; a record that one of
them passes and another fails is exactly what an auditor asks about.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from .governance import signing_violations

if TYPE_CHECKING:
    from .approvals import Approval
    from .policy import Policy, Violation
    from .sshsig import PublicKey
    from .values import Commit

#: The approvals stored for (commit hash, stage), each checked under the policy.
ApprovalsOf = Callable[[str, str, "Policy"], Sequence["Approval"]]


def _checked(dataset: str, commit: Commit) -> tuple[PublicKey | None, str | None]:
    """(the key that signed ``commit``, why its signature does not hold).

    It must verify over :func:`kirin.records.signed_message` (the record's
    hash bound to ``dataset``) by the key it names: a signature copied from
    another record, dataset or key fails. Unsigned: ``(None, None)``.
    """
    signature = commit.signature
    if signature is None:
        return None, None
    from .errors import KirinError
    from .records import signed_message
    from .sshsig import PublicKey, verify

    try:
        key = PublicKey.parse(str(signature["key"]))
        if verify(str(signature["sig"]), signed_message(dataset, commit.hash)) != key:
            return None, "the signature was made by another key than it names"
    except KirinError as exc:  # SignatureError, SigningKeyError
        return None, str(exc)
    return key, None


def approval_violations(policy: Policy, source: str, tags: Sequence[str],
                        promoted: Commit | None, approvals_of: ApprovalsOf
                        ) -> list[Violation]:
    """Each tag ``policy`` wants approved (``signing.require.approvals``): enough valid
    approvals of ``promoted``, the commit the record promotes (``None``: it promotes none)."""
    from .approvals import authors, shortfall
    from .policy import Violation

    rules = policy.signing.require.approvals if policy.signing is not None else {}
    found = []
    for tag in [t for t in dict.fromkeys(tags) if t in rules]:
        rule = f"signing.require.approvals.{tag}"
        if promoted is None:
            found.append(Violation(rule, tag, None, "a promotion of an approved commit",
                                   f"Tag {tag!r} needs approvals ({rule} of the {source} "
                                   "policy): promote an approved commit to it.", source))
            continue
        problem = shortfall(rules[tag], policy, approvals_of(promoted.hash, tag, policy),
                            authors(promoted.author, promoted.signature, policy))
        if problem is not None:
            found.append(Violation(rule, tag, promoted.hash, f"{rules[tag].count} approvals",
                                   f"The promotion of {promoted.short_hash} to {tag!r} lacks "
                                   f"approvals ({rule} of the {source} policy): {problem}. "
                                   f"Approve with kirin approve {promoted.short_hash} --for "
                                   f"{tag}.",
                                   source))
    return found


class RecordSigning:
    """Judges stored records of one dataset by a policy's ``signing:`` section.

    A record's own signature is checked once (cryptography is the cost); who
    signed it, for what, and the approvals of what it promoted are judged
    per policy, since each policy version names its own principals.
    """

    def __init__(self, dataset: str, history: Sequence[Commit], approvals_of: ApprovalsOf
                 ) -> None:
        self.dataset = dataset
        self.approvals_of = approvals_of
        self._history = history
        self._by_hash: Mapping[str, Commit] | None = None
        self._checked: dict[str, tuple[PublicKey | None, str | None]] = {}

    def _check(self, commit: Commit) -> tuple[PublicKey | None, str | None]:
        if commit.hash not in self._checked:
            self._checked[commit.hash] = _checked(self.dataset, commit)
        return self._checked[commit.hash]

    def problem(self, commit: Commit) -> str | None:
        """Why ``commit``'s signature is not valid (``None``: valid, or unsigned)."""
        return self._check(commit)[1]

    def forged(self, commit: Commit, source: str) -> Violation | None:
        """The finding that ``commit`` carries a signature that does not verify."""
        problem = self.problem(commit)
        if problem is None:
            return None
        from .policy import Violation

        return Violation("signature", "signature", commit.hash, "a valid signature",
                         f"Commit {commit.short_hash} has a bad signature: {problem}. The "
                         "record was altered or its signature copied from another.", source)

    def violations(self, commit: Commit, policy: Policy, source: str) -> list[Violation]:
        """What ``policy`` says of ``commit``'s signer and approvals (not of its content).

        A signature that does not verify is :meth:`forged`'s finding: who "signed"
        it is not judged, since nobody provably did.
        """
        if policy.signing is None:
            return []
        promoted = self._promoted(commit)
        approvals = approval_violations(policy, source, list(commit.tags), promoted,
                                        self.approvals_of)
        key, problem = self._check(commit)
        if problem is not None:
            return approvals
        found = signing_violations(policy, source, kind=commit.kind, tags=list(commit.tags),
                                   override=commit.override is not None,
                                   key=key.openssh if key else None,
                                   fingerprint=key.fingerprint if key else None)
        return [*found, *approvals]

    def _promoted(self, commit: Commit) -> Commit | None:
        source = commit.promoted_from
        if source is None:
            return None
        if self._by_hash is None:
            self._by_hash = {c.hash: c for c in self._history}
        return self._by_hash.get(source)
