"""Approvals: a principal's signed, write-once consent that a commit may take a stage.

``production`` may need approvals from 2 distinct ``ml-leads``, none of them the
commit's author (``signing.require.approvals`` of the policy). Each approval is
one object, ``approvals/<commit>/<stage>/<key>.json``, created only if absent,
signed with SSHSIG over everything it says (dataset, commit, stage, message,
time), so it approves exactly that content for exactly that stage: copied to
another commit, stage or dataset it no longer verifies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._json import canonical_json

if TYPE_CHECKING:
    from .policy import Policy
    from .policy.rules import ApprovalRule
    from .sshsig import Signer
    from .store import Store

_FIELDS = ("commit", "dataset", "key", "kirin", "message", "stage", "timestamp")


@dataclass(frozen=True)
class Approval:
    """One stored approval, and whether it holds (``problem`` ``None``)."""

    commit: str
    stage: str
    message: str
    timestamp: str
    key: str
    principal: str | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"commit": self.commit, "stage": self.stage, "message": self.message,
                "timestamp": self.timestamp, "key": self.key, "principal": self.principal,
                "valid": self.problem is None, "problem": self.problem}


def signed_text(body: Mapping[str, Any]) -> bytes:
    """What an approval's signature covers: every field but the signature."""
    return b"kirin approval\n" + canonical_json({k: body[k] for k in _FIELDS}).encode()


def make(dataset: str, commit: str, stage: str, message: str, timestamp: datetime,
         signer: Signer) -> dict[str, Any]:
    body: dict[str, Any] = {"kirin": 1, "dataset": dataset, "commit": commit, "stage": stage,
                            "message": message, "timestamp": timestamp.isoformat(),
                            "key": signer.public_key.openssh}
    body["sig"] = signer.sign(signed_text(body)).armored()
    return body


def read(data: bytes | None, *, dataset: str, commit: str, stage: str,
         policy: Policy | None) -> Approval | None:
    """The approval stored as ``data``, checked: its signature, and that it approves this
    commit for this stage of this dataset; who signed it, under ``policy``."""
    import json

    from .errors import KirinError
    from .sshsig import PublicKey, verify

    if data is None:
        return None
    try:
        body = json.loads(data)
        fields = {k: body[k] for k in (*_FIELDS, "sig")}
        if set(body) != set(fields) or not all(isinstance(v, str) for k, v in fields.items()
                                               if k != "kirin"):
            raise ValueError("unexpected structure")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        return Approval(commit, stage, "", "", "", None, f"unreadable approval ({exc})")
    found = Approval(commit, stage, fields["message"], fields["timestamp"], fields["key"])
    if (fields["dataset"], fields["commit"], fields["stage"]) != (dataset, commit, stage):
        return _with(found, "it approves another dataset, commit or stage (copied here)")
    try:
        key = PublicKey.parse(fields["key"])
        if verify(fields["sig"], signed_text(fields)) != key:
            return _with(found, "it was signed by another key than it names")
    except KirinError as exc:
        return _with(found, f"bad signature: {exc}")
    rules = policy.signing if policy is not None else None
    principal = rules.principal_of(key.openssh) if rules is not None else None
    if rules is not None and key.fingerprint in rules.revoked:
        return _with(found, f"key {key.fingerprint} is revoked", principal)
    return Approval(found.commit, stage, found.message, found.timestamp, found.key, principal)


def _with(approval: Approval, problem: str, principal: str | None = None) -> Approval:
    return Approval(approval.commit, approval.stage, approval.message, approval.timestamp,
                    approval.key, principal, problem)


def shortfall(rule: ApprovalRule, policy: Policy, approvals: Iterable[Approval],
              authors: set[str]) -> str | None:
    """Why ``approvals`` do not meet ``rule``; ``None`` if they do.

    Distinct principals of ``rule.by`` count, except the commit's ``authors``
    (the principal whose key signed it, or whose name it gives as author)
    unless the rule lets the author approve.
    """
    rules = policy.signing
    assert rules is not None
    allowed = rules.members(rule.by)
    counted = {a.principal for a in approvals if a.problem is None and a.principal in allowed
               and (rule.author_may_approve or a.principal not in authors)}
    if len(counted) >= rule.count:
        return None
    have = ", ".join(sorted(p for p in counted if p)) or "none"
    excluded = f"; the commit's author ({', '.join(sorted(authors))}) may not approve it" if (
        authors and not rule.author_may_approve) else ""
    return (f"it needs approvals of {rule.count} distinct principal(s) of "
            f"{', '.join(rule.by)}; it has {len(counted)} ({have}){excluded}")


def load(store: Store, dataset: str, commit: str, stage: str | None,
         policy: Policy | None) -> list[Approval]:
    """The approvals stored for ``commit`` (for ``stage``; ``None``: every stage), each
    checked by :func:`read`. The one reader of the approval folders (gate, verify, show)."""
    import json

    from . import layout

    if stage is None:
        top = store.path(layout.commit_approvals(dataset, commit))
        folders = [f"{top}/{n}" for n in store.listdir(top)]
    else:
        folders = [store.path(layout.approvals(dataset, commit, stage))]
    names = [f"{folder}/{n}" for folder in folders for n in store.listdir(folder)
             if n.endswith(".json")]
    found = []
    for data in store.read_many(names).values():
        claimed = stage
        if claimed is None and data is not None:
            try:
                claimed = str(json.loads(data).get("stage", ""))
            except (ValueError, AttributeError, RecursionError):
                claimed = ""
        found.append(read(data, dataset=dataset, commit=commit, stage=claimed or "",
                          policy=policy))
    return [a for a in found if a is not None]


def authors(author: str, signature: Mapping[str, Any] | None, policy: Policy) -> set[str]:
    """Who a commit is by, as principals of ``policy``: the principal whose key signed it
    (``signature``), and its ``author`` text if that names a principal."""
    rules = policy.signing
    found: set[str] = set()
    if rules is None:
        return found
    if author.strip() in rules.principals:
        found.add(author.strip())
    if signature is not None:
        principal = rules.principal_of(str(signature["key"]))
        if principal is not None:
            found.add(principal)
    return found
