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
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ._json import canonical_json
from .errors import ConflictError, CorruptObjectError
from .history import record_hash, sha256_text
from .store import Store

if TYPE_CHECKING:  # the policy package (pydantic, jsonschema) loads only when needed
    from .policy import Policy

MAX_ATTEMPTS = 50


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
        from .policy import load_policy_text

        return load_policy_text(self.text, source=f"stored policy #{self.seq}")

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "policy_hash": self.policy_hash,
                "timestamp": self.timestamp.isoformat(), "author": self.author,
                "message": self.message}


class PolicyLog:
    """Reads and extends one dataset's policy history."""

    def __init__(self, store: Store, dataset: str) -> None:
        self.store = store
        self.dataset = dataset
        self._entries: list[dict[str, Any]] = []
        self._versions: list[PolicyVersion] = []
        self._loaded: dict[int, Policy | None] = {}

    def path(self, seq: int) -> str:
        return self.store.path("datasets", self.dataset, "policy", f"{seq:020d}.json")

    def refresh(self) -> None:
        while True:
            seq = len(self._entries)
            data = self.store.read(self.path(seq))
            if data is None:
                return
            self._append(_decode(data, self.path(seq), seq,
                                 self._entries[-1]["hash"] if self._entries else None))

    def _append(self, entry: dict[str, Any]) -> None:
        self._entries.append(entry)
        self._versions.append(PolicyVersion(
            seq=entry["seq"], policy_hash=entry["policy_hash"], text=entry["policy"],
            timestamp=datetime.fromisoformat(entry["timestamp"]), author=entry["author"],
            message=entry["message"]))

    def versions(self) -> list[PolicyVersion]:
        """Every version, oldest first."""
        return list(self._versions)

    def current(self) -> PolicyVersion | None:
        return self._versions[-1] if self._versions else None

    def current_policy(self) -> Policy | None:
        """The policy in force (parsed once per version)."""
        version = self.current()
        if version is None:
            return None
        if version.seq not in self._loaded:
            self._loaded[version.seq] = version.load()
        return self._loaded[version.seq]

    def append(self, policy: Policy | None, *, message: str, author: str) -> PolicyVersion:
        """Make ``policy`` the one in force (no new version if it already is)."""
        text = policy.stored_text() if policy is not None else None
        digest = policy.hash if policy is not None else None
        for _ in range(MAX_ATTEMPTS):
            self.refresh()
            current = self.current()
            if (current.policy_hash if current else None) == digest and (
                    current is not None or digest is None):
                return current  # type: ignore[return-value]
            seq = len(self._entries)
            entry: dict[str, Any] = {
                "kirin": 1, "seq": seq,
                "parent": self._entries[-1]["hash"] if self._entries else None,
                "policy_hash": digest, "policy": text,
                "timestamp": datetime.now(timezone.utc).isoformat(),
                "author": author, "message": message,
            }
            entry["hash"] = record_hash(entry)
            if self.store.create(self.path(seq), (canonical_json(entry) + "\n").encode()):
                self._append(entry)
                if policy is not None:
                    self._loaded[seq] = policy
                return self._versions[-1]
        raise ConflictError(f"Could not record the policy of dataset {self.dataset!r}: other "
                            "writers kept changing it at the same time")


def _decode(data: bytes, path: str, seq: int, parent: str | None) -> dict[str, Any]:
    def bad(reason: str) -> CorruptObjectError:
        return CorruptObjectError(f"Policy version {path} is unusable: {reason}", path=path)

    try:
        entry = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(f"not valid JSON ({exc})") from exc
    keys = {"kirin", "seq", "parent", "policy_hash", "policy", "timestamp", "author", "message",
            "hash"}
    if not isinstance(entry, dict) or set(entry) != keys:
        raise bad("unexpected structure")
    if entry["seq"] != seq or entry["parent"] != parent:
        raise bad(f"it does not follow policy version #{seq - 1}")
    if record_hash(entry) != entry["hash"]:
        raise bad("it does not match its hash (altered after it was written)")
    text = entry["policy"]
    if (text is None) != (entry["policy_hash"] is None) or (
            text is not None and sha256_text(text) != entry["policy_hash"]):
        raise bad("the stored policy text does not match the recorded policy hash")
    return dict(entry)
