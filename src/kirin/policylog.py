"""The policy history of one dataset: write-once versions, like the commit log.

Version ``N`` is ``datasets/<name>/policy/<N, 20 digits>.json``, created only
if absent, holding the policy's self-contained stored text (schema files
embedded) and the hash every commit it admits records. ``policy: null``
means the registry has no policy from then on. Readers verify each entry's
hash and that the stored text hashes to the recorded policy hash, so an
auditor can tell exactly which rules a commit passed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from . import layout
from ._json import canonical_json
from .arguments import pin_sources
from .errors import ConflictError, CorruptObjectError
from .logs import EntryLog
from .records import record_hash, sha256_text
from .store import Store

if TYPE_CHECKING:  # the policy package (pydantic, jsonschema) loads only when needed
    from .policy import Policy, Report
    from .sshsig import Signer
    from .values import Commit

MAX_ATTEMPTS = 50


@dataclass(frozen=True)
class Distrust:
    """A policy history's first unauthorised version, and the policies it let in.

    ``hashes`` are the policies of that version and every later one that no
    authorised version holds: a commit recording one was admitted by rules
    the admins never signed. ``trusted`` is the newest authorised version's
    policy (``None``: none, or no policy), what an audit judges by instead.
    """

    seq: int
    reason: str
    hashes: frozenset[str]
    trusted: Policy | None = field(repr=False)


@dataclass(frozen=True)
class PolicyVersion:
    """One version of a dataset's policy (``policy_hash`` ``None``: no policy)."""

    seq: int
    policy_hash: str | None
    text: str | None = field(repr=False)
    timestamp: datetime
    author: str
    message: str

    def load(self) -> Policy | None:
        if self.text is None:
            return None
        from .policy.stored import load_stored_policy

        return load_stored_policy(self.text, source=f"stored policy #{self.seq}")

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "policy_hash": self.policy_hash,
                "timestamp": self.timestamp.isoformat(), "author": self.author,
                "message": self.message}


class PolicyLog:
    """Reads and extends one dataset's policy history, or the root's (``dataset`` ``None``).

    It fails closed: a hole in the history (a version deleted while later
    ones remain) is a CorruptObjectError on every read, so nothing is judged
    by an older, laxer policy that only looks current because a newer one
    is gone.
    """

    def __init__(self, store: Store, dataset: str | None, *, pin: str | None = None) -> None:
        self.store = store
        self.dataset = dataset
        self.folder = (layout.policy_log(dataset) if dataset is not None
                       else layout.root_policy_log())
        self.what = f"dataset {dataset!r}" if dataset is not None else "the registry root"
        self.log = EntryLog(store, self.folder, "Policy version")
        self._entries: list[dict[str, Any]] = []
        self._versions: list[PolicyVersion] = []
        self._loaded: dict[int, Policy | None] = {}
        self._looked = False
        self.scope = f"dataset:{dataset}" if dataset is not None else "root"
        self._trust: dict[int, str | None] = {}  # why version N is not authorised (None: it is)
        #: :meth:`distrust` for the versions held (their number): an audit asks per commit.
        self._distrust: tuple[int, Distrust | None] | None = None
        #: The policy hash the caller trusts (KIRIN_TRUST_POLICY...): the chain starts there.
        self.pin = pin
        self.pin_name = "trust_policy" if dataset is not None else "trust_root_policy"

    def path(self, seq: int) -> str:
        return self.log.path(seq)

    def refresh(self) -> None:
        first_look = not self._looked
        for entry in self.log.read_from(len(self._entries), thorough=first_look):
            self._append(decode_version(entry.data, entry.path, entry.seq,
                                        self._entries[-1]["hash"] if self._entries else None))
        self._looked = True

    def _append(self, entry: dict[str, Any]) -> None:
        self._entries.append(entry)
        self._versions.append(PolicyVersion(
            seq=entry["seq"], policy_hash=entry["policy_hash"], text=entry["policy"],
            timestamp=datetime.fromisoformat(entry["timestamp"]), author=entry["author"],
            message=entry["message"]))

    def versions(self) -> list[PolicyVersion]:
        """Every version, oldest first."""
        return list(self._versions)

    def hashes(self) -> set[str | None]:
        """Every policy hash the history holds, and ``None`` (no policy), which needs none."""
        return {None, *(v.policy_hash for v in self._versions)}

    def signatures(self, seq: int) -> list[dict[str, Any]]:
        """The admins' signatures stored with version ``seq`` (see :mod:`kirin.policytrust`)."""
        return list(self._entries[seq].get("signatures", ()))

    def message(self, seq: int, policy_hash: str | None) -> bytes:
        from .policytrust import policy_message

        parent = self._entries[seq - 1]["hash"] if seq else None
        return policy_message(self.scope, seq, parent, policy_hash)

    def untrusted(self) -> tuple[int, str] | None:
        """The first version its predecessor did not authorise, and why; ``None``: all are.

        Each version is checked once (entries are write-once); a version after
        an unauthorised one is never trusted either. With a pinned hash, the
        chain starts at the first version holding it (none: version 0 is
        refused); without one, version 0 is trusted on first use.
        """
        start = 0
        if self.pin is not None and self._versions:
            pinned = [v.seq for v in self._versions if v.policy_hash == self.pin]
            if not pinned:
                return 0, (f"no version of the policy history has the pinned hash "
                           f"{self.pin[:12]} ({pin_sources(self.pin_name)}); "
                           "the history is not the one you trust")
            start = pinned[0]
        for version in self._versions[start + 1:]:
            seq = version.seq
            if seq not in self._trust:
                from .policytrust import change_problem

                self._trust[seq] = change_problem(
                    self._policy_at(seq - 1), self.signatures(seq),
                    self.message(seq, version.policy_hash))
            reason = self._trust[seq]
            if reason is not None:
                return seq, reason
        return None

    def distrust(self) -> Distrust | None:
        """The first unauthorised version and what it admitted (``None``: all are trusted).

        For reports (``audit``): the gates refuse instead (:meth:`check_trusted`).
        Worked out once per set of versions held (entries are write-once).
        """
        if self._distrust is not None and self._distrust[0] == len(self._versions):
            return self._distrust[1]
        found = self.untrusted()
        distrust = None
        if found is not None:
            seq, reason = found
            trusted = {v.policy_hash for v in self._versions[:seq]}
            later = {v.policy_hash for v in self._versions[seq:]} - trusted
            distrust = Distrust(seq, reason, frozenset(h for h in later if h is not None),
                                self._policy_at(seq - 1) if seq else None)
        self._distrust = (len(self._versions), distrust)
        return distrust

    def _policy_at(self, seq: int) -> Policy | None:
        if seq not in self._loaded:
            self._loaded[seq] = self._versions[seq].load()
        return self._loaded[seq]

    def check_trusted(self) -> None:
        """Fail closed on a version the one before it did not authorise."""
        found = self.untrusted()
        if found is not None:
            seq, reason = found
            where = self.store.path(self.path(seq))
            raise CorruptObjectError(
                f"Policy version #{seq} of {self.what} is not authorised: {reason}. A writer "
                "may have replaced the policy without the admins; nothing is judged until "
                "it is resolved. Run `kirin verify` to see the commits it admitted.",
                path=where)

    def in_force(self, head: Commit | None, *, refresh: bool = True) -> Policy | None:
        """The policy in force, read afresh; fails closed when the history is damaged.

        A hole raises (:meth:`refresh`); so does a newest commit (``head``)
        admitted by a policy the history lacks: its newest versions were
        deleted, and the older one left would judge in their place.
        ``refresh=False``: the caller has just called :meth:`refresh`.
        """
        if refresh:
            self.refresh()
        recorded = self.recorded_by(head) if head is not None else None
        if head is not None and recorded not in self.hashes():
            folder = self.store.path(self.folder)
            raise CorruptObjectError(
                f"Commit {head.short_hash} was admitted by policy {str(recorded)[:12]} of "
                f"{self.what}, which is missing from the policy history ({folder}): a "
                "policy version was deleted, so the policy in force is unknown and nothing "
                "is judged until it is restored. Run `kirin verify` to see what is affected.",
                path=folder, commit=head.hash)
        return self.current_policy()

    def recorded_by(self, commit: Commit) -> str | None:
        """The hash of this log's policy that ``commit`` records having admitted it."""
        return commit.policy_hash if self.dataset is not None else commit.root_policy_hash

    def policy_of(self, digest: str | None) -> Policy | None:
        """The version with hash ``digest`` (``None``: no policy); CorruptObjectError if absent."""
        if digest is None:
            return None
        self.refresh()
        for version in reversed(self._versions):
            if version.policy_hash == digest:
                if version.seq not in self._loaded:
                    self._loaded[version.seq] = version.load()
                return self._loaded[version.seq]
        raise CorruptObjectError(
            f"Policy {digest[:12]} is not in the policy history of {self.what} "
            f"({self.store.path(self.folder)})", path=self.store.path(self.folder))

    def current(self) -> PolicyVersion | None:
        return self._versions[-1] if self._versions else None

    def current_policy(self) -> Policy | None:
        """The policy in force (parsed once per version); fails closed on a version the one
        before it did not authorise."""
        self.check_trusted()
        version = self.current()
        if version is None:
            return None
        if version.seq not in self._loaded:
            self._loaded[version.seq] = version.load()
        return self._loaded[version.seq]

    def append(self, policy: Policy | None, *, message: str, author: str,
               signers: Sequence[Signer] = (),
               signatures: Sequence[Mapping[str, Any]] = ()) -> PolicyVersion:
        """Make ``policy`` the one in force (no new version if it already is).

        Where the policy in force says who must sign its replacement
        (``signing.require.policy``), ``signers`` sign the new version here and
        ``signatures`` are ones made beforehand (:meth:`sign_next`); too few
        valid ones refuse the change with a PolicyViolationError, nothing
        written.
        """
        text = policy.stored_text() if policy is not None else None
        digest = policy.hash if policy is not None else None
        for _ in range(MAX_ATTEMPTS):
            self.refresh()
            current = self.current()
            if (current.policy_hash if current else None) == digest and (
                    current is not None or digest is None):
                return current  # type: ignore[return-value]
            seq = len(self._entries)
            signed = self._signed(seq, digest, signers, signatures)
            entry: dict[str, Any] = {
                "kirin": 2 if signed else 1, "seq": seq,
                "parent": self._entries[-1]["hash"] if self._entries else None,
                "policy_hash": digest, "policy": text,
                "timestamp": datetime.now(timezone.utc).isoformat(),
                "author": author, "message": message,
            }
            entry["hash"] = record_hash(entry)
            if signed:
                entry["signatures"] = signed
            if self.store.create(self.path(seq), (canonical_json(entry) + "\n").encode()):
                self._append(entry)
                if policy is not None:
                    self._loaded[seq] = policy
                return self._versions[-1]
        raise ConflictError(f"Could not record the policy of {self.what}: other writers kept "
                            "changing it at the same time")


    def _signed(self, seq: int, digest: str | None, signers: Sequence[Signer],
                signatures: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
        """The signatures version ``seq`` is stored with; refuses if they do not authorise it."""
        from .policytrust import change_problem, policy_message

        parent = self._entries[-1]["hash"] if self._entries else None
        message = policy_message(self.scope, seq, parent, digest)
        signed = [{"key": str(s["key"]), "sig": str(s["sig"])} for s in signatures]
        signed += [{"key": s.public_key.openssh, "sig": s.sign(message).armored()}
                   for s in signers]
        previous = self._policy_at(seq - 1) if seq else None
        problem = change_problem(previous, signed, message)
        if problem is not None:
            from .errors import PolicyViolationError
            from .policy import Violation

            raise PolicyViolationError([Violation(
                "signing.require.policy", "signatures", len(signed),
                "signatures of the admins the policy in force names",
                f"The new policy of {self.what} is refused: {problem}. Sign it with --key, "
                "or collect signatures with kirin policy sign.")], dataset=self.dataset or "")
        return signed

    def sign_next(self, policy: Policy | None, signer: Signer) -> dict[str, str]:
        """A signature authorising ``policy`` as the next version, for another admin's apply."""
        self.refresh()
        from .policytrust import policy_message

        seq = len(self._entries)
        parent = self._entries[-1]["hash"] if self._entries else None
        message = policy_message(self.scope, seq, parent, policy.hash if policy else None)
        return {"key": signer.public_key.openssh, "sig": signer.sign(message).armored(),
                "version": str(seq)}


def decode_version(data: bytes, path: str, seq: int, parent: str | None, *,
                   check_parent: bool = True) -> dict[str, Any]:
    """Parse and verify one stored policy version; any defect is a CorruptObjectError.

    ``check_parent=False`` when the version before it is unknown (``verify``
    reading past a damaged one).
    """
    def bad(reason: str) -> CorruptObjectError:
        return CorruptObjectError(f"Policy version {path} is unusable: {reason}", path=path)

    try:
        entry = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise bad(f"not valid JSON ({exc})") from exc
    keys = {"kirin", "seq", "parent", "policy_hash", "policy", "timestamp", "author", "message",
            "hash"}
    if not isinstance(entry, dict) or set(entry) - {"signatures"} != keys:
        raise bad("unexpected structure")
    signed = entry.get("signatures")
    if entry["kirin"] != (2 if "signatures" in entry else 1):
        raise bad(f"unknown format version {entry['kirin']!r} for its keys")
    if signed is not None and not (
            isinstance(signed, list) and signed and all(
                isinstance(s, dict) and set(s) == {"key", "sig"}
                and all(isinstance(v, str) for v in s.values()) for s in signed)):
        raise bad("'signatures' must be a non-empty list of {key, sig}")
    if entry["seq"] != seq or (check_parent and entry["parent"] != parent):
        raise bad(f"it does not follow policy version #{seq - 1}")
    if not all(isinstance(entry[k], str) for k in ("timestamp", "author", "message", "hash")):
        raise bad("'timestamp', 'author', 'message' and 'hash' must be strings")
    text = entry["policy"]
    if not (text is None or isinstance(text, str)):
        raise bad("'policy' must be the policy's text or null")
    try:
        datetime.fromisoformat(entry["timestamp"])
        actual = record_hash(entry)
    except (ValueError, RecursionError) as exc:
        raise bad(f"it holds a value Kirin never writes ({exc})") from exc
    if actual != entry["hash"]:
        raise bad("it does not match its hash (altered after it was written)")
    if (text is None) != (entry["policy_hash"] is None) or (
            text is not None and sha256_text(text) != entry["policy_hash"]):
        raise bad("the stored policy text does not match the recorded policy hash")
    return dict(entry)


def with_unknown_policy(commit: Commit, report: Report) -> Report:
    """``report`` plus the finding that the policy ``commit`` records is not in the history."""
    from .policy import Report, Violation

    missing = Violation(
        rule="policy-history", path="policy", value=commit.policy_hash,
        expected="a policy of the policy history",
        message=f"Commit {commit.short_hash} records admission by policy "
                f"{str(commit.policy_hash)[:12]}, which the policy history does not hold "
                "(a policy version was deleted or altered)")
    return Report((*report.violations, missing), report.policy_hash)
