"""The chain of trust of a policy history: who may replace a policy version.

The idea of TUF's root rotation: a version whose policy says
``signing.require.policy: {by: [admins], count: 2}`` can only be followed by a
version signed by 2 distinct principals of ``admins`` *as that version names
them*. So a writer with raw bucket access cannot loosen the rules by appending
a version of their own: every gate walks the chain and refuses to judge by a
version the one before it did not authorise. Version 0 is trusted as found
(or by a pinned hash, where the caller has one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .policy import Policy


def policy_message(scope: str, seq: int, parent: str | None, policy_hash: str | None
                   ) -> bytes:
    """What an admin signs to authorise policy version ``seq`` of ``scope``.

    It names the scope (``dataset:<name>`` or ``root``), the version's place
    (number and the hash of the entry before it) and the policy: a signature
    cannot be replayed onto another dataset, position or policy.
    """
    return (f"kirin policy\n{scope}\n{seq}\n{parent or '-'}\n{policy_hash or 'none'}\n"
            .encode())


def change_problem(previous: Policy | None, signatures: Sequence[Mapping[str, Any]],
                   message: bytes) -> str | None:
    """Why the version ``message`` describes is not authorised by ``previous``; ``None``: it is.

    ``previous`` is the policy of the version before (``None``: there was no
    policy, and anyone may set one). Each signature must verify over
    ``message``, by a key of a principal ``previous`` names under
    ``require.policy.by``, not revoked; distinct principals are counted.
    """
    rules = previous.signing if previous is not None else None
    need = rules.require.policy if rules is not None else None
    if rules is None or need is None:
        return None
    from .errors import KirinError
    from .sshsig import PublicKey, verify

    allowed = rules.members(need.by)
    signed_by: set[str] = set()
    for signature in signatures:
        try:
            key = PublicKey.parse(str(signature["key"]))
            if verify(str(signature["sig"]), message) != key:
                continue
        except (KirinError, KeyError, TypeError):
            continue
        principal = rules.principal_of(key.openssh)
        if principal in allowed and key.fingerprint not in rules.revoked:
            signed_by.add(principal)
    if len(signed_by) >= need.count:
        return None
    have = ", ".join(sorted(signed_by)) or "none"
    return (f"it needs valid signatures of {need.count} distinct principal(s) of "
            f"{', '.join(need.by)} (signing.require.policy of the version before it); "
            f"it has {len(signed_by)} ({have})")
