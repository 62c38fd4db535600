"""A checked policy as plain immutable values: what the gate and everything after it reads.

Why not the pydantic models themselves: :mod:`.model` is the *input* side. It
validates a policy file, key by key, and pydantic (with jsonschema and
PyYAML) takes a tenth of a second to import and build before any of it runs.
A policy already stored in a registry was checked when it was loaded, and is
read back on every command (``kirin validate`` in CI above all). So the
values here are frozen dataclasses with no dependency, built in exactly one
way: :meth:`Policy.from_data` over the policy's canonical JSON data. A
freshly loaded file goes model -> canonical data -> :meth:`Policy.from_data`;
a stored policy whose hash this installation has already checked (see
:mod:`.stored`) goes canonical text -> the same :meth:`Policy.from_data`. The
gate cannot tell the two apart, because there is nothing to tell.

Field names are the model's (the ``schema`` key is ``json_schema`` here, as
there); ``tests/policy/test_rules.py`` holds the two in step.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .._json import FrozenDict, canonical_json, freeze
from ._patterns import tag_matches

#: The key path inside a policy, as validation errors give it.
Loc = tuple[str | int, ...]
Names = tuple[str, ...]

#: Data keys that differ from the field's name (the rest are the same).
_KEYS = {"json_schema": "schema"}


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value)


def _maybe_tuple(value: Any) -> tuple[Any, ...] | None:
    return None if value is None else tuple(value)


def _names_map(value: Mapping[str, Any]) -> FrozenDict:
    return FrozenDict((k, tuple(v)) for k, v in value.items())


@dataclass(frozen=True, kw_only=True)
class MetadataRules:
    """What every commit's metadata must satisfy."""

    json_schema: FrozenDict | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> MetadataRules:
        schema = data.get("schema")
        return cls(json_schema=None if schema is None else freeze(schema))


@dataclass(frozen=True, kw_only=True)
class TagRules:
    """The tag vocabulary and the rules on how tags are used."""

    allowed: Names | None = None
    patterns: Names | None = None
    unique: Names = ()
    unique_patterns: Names = ()
    exclusive_groups: tuple[Names, ...] = ()

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> TagRules:
        return cls(allowed=_maybe_tuple(data.get("allowed")),
                   patterns=_maybe_tuple(data.get("patterns")),
                   unique=_tuple(data.get("unique", ())),
                   unique_patterns=_tuple(data.get("unique_patterns", ())),
                   exclusive_groups=tuple(tuple(g) for g in data.get("exclusive_groups", ())))

    @property
    def closed(self) -> bool:
        """Whether a vocabulary is declared (if not, any tag is allowed)."""
        return self.allowed is not None or self.patterns is not None

    def admits(self, tag: str) -> bool:
        """Whether ``tag`` belongs to the vocabulary (always, if none is declared)."""
        if not self.closed:
            return True
        return tag in (self.allowed or ()) or any(
            tag_matches(p, tag) for p in self.patterns or ())

    def is_unique(self, tag: str) -> bool:
        """Whether ``tag`` may be on at most one commit."""
        return tag in self.unique or any(tag_matches(p, tag) for p in self.unique_patterns)

    def describe(self) -> str:
        """The vocabulary in words, for messages: 'Allowed tags are: ...'."""
        names = ", ".join(self.allowed or ()) or "(none)"
        text = f"Allowed tags are: {names}"
        if self.patterns:
            text += "; patterns: " + ", ".join(self.patterns)
        return text

    def suggest(self, tag: str) -> str:
        """' Did you mean 'x'?' for a near-miss of an allowed name, else ''."""
        names = list(self.allowed or ())
        close = [n for n in names if n.startswith(tag) or tag.startswith(n)][:1] or (
            difflib.get_close_matches(tag, names, n=1, cutoff=0.6))
        return f" Did you mean {close[0]!r}?" if close else ""


@dataclass(frozen=True, kw_only=True)
class PromotionRule:
    """What a commit must satisfy to carry one particular tag."""

    when: str | None = None
    required_files: Names = ()
    requires_stage: str | None = None
    compare_files: Names | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> PromotionRule:
        return cls(when=data.get("when"), required_files=_tuple(data.get("required_files", ())),
                   requires_stage=data.get("requires_stage"),
                   compare_files=_maybe_tuple(data.get("compare_files")))


@dataclass(frozen=True, kw_only=True)
class MessageRules:
    """Rules on the commit message (compared after stripping outer whitespace)."""

    min_length: int | None = None
    max_length: int | None = None
    forbidden: Names = ()

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> MessageRules:
        return cls(min_length=data.get("min_length"), max_length=data.get("max_length"),
                   forbidden=_tuple(data.get("forbidden", ())))


@dataclass(frozen=True, kw_only=True)
class LinkRequirement:
    """Links of one role a commit must have, and what every such linked commit must be."""

    role: str
    dataset: str | None = None
    tags: Names = ()
    stage: str | None = None
    where: str | None = None
    not_tags: Names = ()
    allow_withdrawn: bool = False

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> LinkRequirement:
        return cls(role=data["role"], dataset=data.get("dataset"),
                   tags=_tuple(data.get("tags", ())), stage=data.get("stage"),
                   where=data.get("where"), not_tags=_tuple(data.get("not_tags", ())),
                   allow_withdrawn=data.get("allow_withdrawn", False))


@dataclass(frozen=True, kw_only=True)
class LineageRule:
    """What a commit carrying one tag must link to (``lineage.<tag>``)."""

    requires: tuple[LinkRequirement, ...] = ()
    code: bool = False
    run: bool = False

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> LineageRule:
        return cls(requires=tuple(LinkRequirement.from_data(r)
                                  for r in data.get("requires", ())),
                   code=data.get("code", False), run=data.get("run", False))


@dataclass(frozen=True, kw_only=True)
class OverrideRules:
    """Break-glass: which violations a commit may be admitted despite, by whom, why."""

    rules: Names
    authors: Names | None = None
    reason_required: bool | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> OverrideRules:
        return cls(rules=_tuple(data["rules"]), authors=_maybe_tuple(data.get("authors")),
                   reason_required=data.get("reason_required"))

    def covers(self, rule: str) -> bool:
        """Whether a violation of ``rule`` may be overridden."""
        from fnmatch import fnmatchcase

        return any(fnmatchcase(rule, glob) for glob in self.rules)

    @property
    def needs_reason(self) -> bool:
        return self.reason_required is not False


@dataclass(frozen=True, kw_only=True)
class PolicyChangeRule:
    """Who must sign a new version of the policy (checked against the version before)."""

    by: Names
    count: int = 1

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> PolicyChangeRule:
        return cls(by=_tuple(data["by"]), count=data.get("count", 1))


@dataclass(frozen=True, kw_only=True)
class ApprovalRule:
    """How many distinct people must approve a commit before it may carry a tag."""

    count: int
    by: Names
    author_may_approve: bool | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ApprovalRule:
        return cls(count=data["count"], by=_tuple(data["by"]),
                   author_may_approve=data.get("author_may_approve"))


@dataclass(frozen=True, kw_only=True)
class SigningRequirements:
    """Which actions must be signed, and by whom (principal or group names)."""

    commit: Names | None = None
    promote: FrozenDict = field(default_factory=FrozenDict)
    withdraw: Names | None = None
    override: Names | None = None
    approvals: FrozenDict = field(default_factory=FrozenDict)
    policy: PolicyChangeRule | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> SigningRequirements:
        policy = data.get("policy")
        return cls(commit=_maybe_tuple(data.get("commit")),
                   promote=_names_map(data.get("promote", {})),
                   withdraw=_maybe_tuple(data.get("withdraw")),
                   override=_maybe_tuple(data.get("override")),
                   approvals=FrozenDict((tag, ApprovalRule.from_data(rule))
                                        for tag, rule in data.get("approvals", {}).items()),
                   policy=None if policy is None else PolicyChangeRule.from_data(policy))


@dataclass(frozen=True, kw_only=True)
class SigningRules:
    """Who may sign (principals and their SSH keys, groups) and what must be signed."""

    principals: FrozenDict
    groups: FrozenDict = field(default_factory=FrozenDict)
    revoked: Names = ()
    require: SigningRequirements = SigningRequirements()

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> SigningRules:
        return cls(principals=_names_map(data["principals"]),
                   groups=_names_map(data.get("groups", {})),
                   revoked=_tuple(data.get("revoked", ())),
                   require=SigningRequirements.from_data(data.get("require", {})))

    def members(self, names: Names) -> set[str]:
        """The principals ``names`` stand for (groups expanded)."""
        found: set[str] = set()
        for name in names:
            found.update(self.groups.get(name, (name,)))
        return found

    def principal_of(self, openssh: str) -> str | None:
        """The principal a public key (its ``openssh`` line) belongs to, if any."""
        for name, keys in self.principals.items():
            if openssh in keys:
                return str(name)
        return None


def _rules_map(data: Mapping[str, Any] | None, kind: Any) -> FrozenDict:
    return FrozenDict((tag, kind.from_data(rule)) for tag, rule in (data or {}).items())


@dataclass(frozen=True, kw_only=True)
class Policy:
    """A registry's policy: metadata schema, tag vocabulary, promotion and message rules.

    Build one with :func:`~kirin.policy.load_policy` or
    :func:`~kirin.policy.load_policy_text`; judge a commit with
    :func:`~kirin.policy.evaluate_policy`. Built any other way (its
    constructor), it is checked again in full before a registry stores it
    (:func:`~kirin.policy.loader.reload_policy`).
    """

    version: int = 1
    description: str | None = None
    metadata: MetadataRules = MetadataRules()
    tags: TagRules = TagRules()
    promotion: FrozenDict = field(default_factory=FrozenDict)
    message: MessageRules = MessageRules()
    stages: Names | None = None
    overrides: OverrideRules | None = None
    signing: SigningRules | None = None
    rollback: str | None = None
    lineage: FrozenDict | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Policy:
        """The policy whose canonical data ``data`` is (already checked: see the module)."""
        overrides, signing = data.get("overrides"), data.get("signing")
        lineage = data.get("lineage")
        return cls(version=data["version"], description=data.get("description"),
                   metadata=MetadataRules.from_data(data.get("metadata", {})),
                   tags=TagRules.from_data(data.get("tags", {})),
                   promotion=_rules_map(data.get("promotion"), PromotionRule),
                   message=MessageRules.from_data(data.get("message", {})),
                   stages=_maybe_tuple(data.get("stages")),
                   overrides=None if overrides is None else OverrideRules.from_data(overrides),
                   signing=None if signing is None else SigningRules.from_data(signing),
                   rollback=data.get("rollback"),
                   lineage=None if lineage is None else _rules_map(lineage, LineageRule))

    @property
    def stage_names(self) -> tuple[str, ...]:
        """The declared stages, in order (none declared: empty)."""
        return self.stages or ()

    @property
    def allows_rollback(self) -> bool:
        return self.rollback == "allowed"

    # -- the stored form ----------------------------------------------------
    def to_data(self) -> dict[str, Any]:
        """The policy as plain JSON data, schema embedded, unset keys left out."""
        data: dict[str, Any] = to_data(self)
        return data

    def canonical_json(self) -> str:
        """Sorted-key compact JSON: the stored form, and what :attr:`hash` covers."""
        return canonical_json(self.to_data())

    def stored_text(self) -> str:
        """The text to store in a registry; ``load_policy_text`` reads it back alone.

        It is :meth:`canonical_json`, so ``sha256(stored_text()) == hash``.
        """
        return self.canonical_json()

    def to_text(self) -> str:
        """Readable YAML of the self-contained policy (file order, defaults left out)."""
        from .model import policy_yaml  # PyYAML and the model load only to show a policy

        return policy_yaml(self.to_data())

    @cached_property
    def hash(self) -> str:
        """SHA-256 (hex) of :meth:`canonical_json`: what each commit records."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    def __hash__(self) -> int:
        return int(self.hash[:16], 16)


def to_data(value: Any) -> Any:
    """Plain JSON data of a policy value: ``None`` fields left out, as the model dumps them.

    Reads each field from the instance's own dictionary, so a subclass that
    overrides an attribute or a method cannot change what is dumped.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        stored = object.__getattribute__(value, "__dict__")
        return {_KEYS.get(f.name, f.name): to_data(stored[f.name])
                for f in dataclasses.fields(value) if stored[f.name] is not None}
    if isinstance(value, Mapping):
        return {key: to_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_data(item) for item in value]
    return value


def format_loc(loc: Loc) -> str:
    """``('tags', 'patterns', 0)`` -> ``tags.patterns[0]``; odd keys are quoted."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part and re.fullmatch(r"[A-Za-z0-9_$\-]+", part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out
