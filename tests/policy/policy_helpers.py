"""Builders for the policy tests: commits, histories and proposals as plain values.

The gate is pure, so its tests build ``Commit`` and ``Proposal`` values
directly; no storage is involved. File contents are named by a label
("weights-2") whose SHA-256 stands in for the content hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from kirin._json import FrozenDict, FrozenList, freeze
from kirin.values import Commit, File, Proposal

ROOT = Path(__file__).resolve().parents[2]
TEAM_POLICY = ROOT / "examples" / "policy" / "team-policy.yaml"
EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)


def content_hash(label: str) -> str:
    """The stand-in content hash of a file whose content is called ``label``."""
    return hashlib.sha256(label.encode()).hexdigest()


def snapshot(files: Mapping[str, str]) -> FrozenDict:
    """name -> content label, as the name -> hash snapshot a proposal carries."""
    return FrozenDict({name: content_hash(label) for name, label in files.items()})


@dataclass(frozen=True)
class Step:
    """One commit of a test history, described by labels rather than hashes."""

    message: str
    files: Mapping[str, str]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    tags: Sequence[str] = ()


def make_commit(seq: int, step: Step, parent: Commit | None) -> Commit:
    """A ``Commit`` value for ``step`` on top of ``parent`` (pure, no storage)."""
    digest = hashlib.sha256(f"{seq}:{step.message}".encode()).hexdigest()
    files = {name: File(name, content_hash(label), len(label))
             for name, label in step.files.items()}
    return Commit(
        hash=digest,
        parent_hash=parent.hash if parent else None,
        message=step.message,
        metadata=freeze(dict(step.metadata)),
        tags=FrozenList(step.tags),
        timestamp=EPOCH + timedelta(minutes=seq),
        author="ci@example",
        seq=seq,
        policy_hash=None,
        _files=lambda: files,
    )


def make_history(steps: Iterable[Step]) -> list[Commit]:
    """Commits for ``steps``, oldest first, each the parent of the next."""
    history: list[Commit] = []
    for seq, step in enumerate(steps, start=1):
        history.append(make_commit(seq, step, history[-1] if history else None))
    return history


def make_proposal(message: str, files: Mapping[str, str],
                  metadata: Mapping[str, Any] | None = None,
                  tags: Sequence[str] = (), *,
                  parent: Commit | None = None) -> Proposal:
    """A ``Proposal`` whose snapshot is ``files`` (labels), added vs ``parent``."""
    snap = snapshot(files)
    before = {n: f.hash for n, f in parent.files.items()} if parent else {}
    return Proposal(
        message=message,
        files=snap,
        added=tuple(sorted(n for n, h in snap.items() if before.get(n) != h)),
        removed=tuple(sorted(n for n in before if n not in snap)),
        metadata=freeze(dict(metadata or {})),
        tags=FrozenList(tags),
        author="ci@example",
    )
