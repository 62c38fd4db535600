"""Judging a proposed commit against a policy: every violation, as values, no I/O.

Why pure: the same function serves ``commit()`` (reject before writing),
``validate()`` (a dry run), the retry after losing a commit race (re-judge
against the new head) and ``audit()`` (re-judge old commits under today's
rules). It needs only the policy, the proposal and the history it would
extend, so it is the same everywhere and trivially testable.

Every rule is checked and every violation reported, not just the first, so
one CI run tells a user everything to fix. Rule names are stable strings
(``metadata.schema``, ``tags.allowed``, ``tags.unique``, ``tags.exclusive``,
``promotion.<tag>.when``, ``promotion.<tag>.required_files``,
``promotion.<tag>.requires_stage``, ``lineage.<tag>.requires[<n>]``,
``lineage.<tag>.code``, ``lineage.<tag>.run``, ``message.min_length``,
``message.max_length``, ``message.forbidden``) that tools can match on.

Lineage rules judge the proposal's links by what each linked commit is
*now* (``Proposal.linked``, read by :mod:`kirin.lineage` before the gate
runs), so the gate stays pure and ``audit`` re-judges them against the
current state of the linked datasets.

"Same content" for ``requires_stage``: the earlier commit's snapshot and the
proposed snapshot hold the same files with the same content hashes — all
files by default, or only those matching the rule's ``compare_files``
globs. An empty selection never counts as the same content.
"""

from __future__ import annotations

import ast
import json
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaValidationError

from .._json import FrozenDict, FrozenList, freeze
from ..errors import PolicyViolationError
from ..links import LinkedState
from ..values import Commit, Proposal
from . import expr as _expr
from ._formats import FORMAT_CHECKER
from ._patterns import ASCII_PREFIX, MAX_TAG_LENGTH
from ._plain import plain_str, plain_value, stored_items
from ._schema_safety import ascii_schema
from .rules import LinkRequirement, Policy, PromotionRule, format_loc


@dataclass(frozen=True)
class Violation:
    """One broken rule: which, where, the offending value, what was expected, in words.

    ``path`` is a dotted metadata path (``hyperparameters.learning_rate``), a
    tag, a file name or glob, or ``message`` — whatever the rule is about.
    ``source`` says which policy the rule came from: ``dataset`` (the
    dataset's own) or ``root`` (the registry's root policy, which governs
    every dataset under it).
    """

    rule: str
    path: str
    value: Any
    expected: str
    message: str
    source: str = "dataset"

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", freeze(self.value))  # hashable, read-only

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "path": self.path, "value": self.value,
                "expected": self.expected, "message": self.message, "source": self.source}

    def from_source(self, source: str) -> Violation:
        return replace(self, source=source)


@dataclass(frozen=True)
class Report:
    """The verdict on one proposed commit: every violation found (none means OK).

    ``overridden`` lists the violations a break-glass override let past (the
    commit is admitted despite them, and its record keeps them).
    """

    violations: tuple[Violation, ...] = ()
    policy_hash: str | None = field(default=None, compare=False)
    root_policy_hash: str | None = field(default=None, compare=False)
    overridden: tuple[Violation, ...] = field(default=(), compare=False)

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "policy_hash": self.policy_hash,
                "root_policy_hash": self.root_policy_hash,
                "violations": [v.to_dict() for v in self.violations],
                "overridden": [v.to_dict() for v in self.overridden]}

    def combined(self, other: Report) -> Report:
        """This (dataset) report and ``other`` (the root policy's): both must pass."""
        return Report((*other.violations, *self.violations), self.policy_hash,
                      other.policy_hash, (*other.overridden, *self.overridden))

    def raise_for_violations(self, *, dataset: str = "") -> None:
        """Raise :class:`~kirin.errors.PolicyViolationError` unless the report is OK."""
        if self.violations:
            raise PolicyViolationError(self.violations, dataset=dataset)

    def _repr_html_(self) -> str:
        """The verdict as a table in Jupyter (see :mod:`kirin.ui.notebook`)."""
        from ..ui.notebook import report_html

        return report_html(self)

    def __str__(self) -> str:
        if self.ok:
            return "OK: the commit satisfies the policy"
        n = len(self.violations)
        lines = "\n".join(f"  - [{v.rule}] {v.message}" for v in self.violations)
        return f"{n} violation{'s' if n != 1 else ''}:\n{lines}"


def _plain_proposal(proposal: Proposal) -> Proposal:
    """``proposal`` rebuilt from exact builtins (see :func:`plain_value`)."""
    return Proposal(
        message=plain_str(proposal.message, "the commit message"),
        files=plain_value(proposal.files, "files"),
        added=tuple(plain_str(n, "a file name") for n in stored_items(proposal.added)),
        removed=tuple(plain_str(n, "a file name") for n in stored_items(proposal.removed)),
        metadata=plain_value(proposal.metadata, ""),
        tags=FrozenList(plain_str(t) for t in stored_items(proposal.tags)),
        author=plain_str(proposal.author, "the author"),
        kind=plain_str(proposal.kind, "the kind of record"),
        lineage=proposal.lineage,  # built by Kirin from checked values, never by a caller
        linked=proposal.linked,
    )


def lookalike_key(tag: str) -> str:
    """What a tag looks like: NFKC-normalised, every decimal digit made ASCII.

    ``v1.0`` spelt with fullwidth digits (U+FF11), a mathematical bold one
    (U+1D7CF) or Arabic-Indic digits (U+0661, U+0660) gives ``v1.0``. Two
    tags with the same key read the same to a person, so a unique tag cannot
    be carried twice by spelling it differently (see :func:`_tag_violations`).
    """
    text = unicodedata.normalize("NFKC", tag)
    return "".join(str(d) if (d := unicodedata.decimal(ch, None)) is not None else ch
                   for ch in text)


class _HistoryIndex:
    """The commits of a history by tag and by look-alike key, oldest first.

    Built once per judgement, extended commit by commit in audits.
    """

    def __init__(self, history: Iterable[Commit] = ()) -> None:
        self.by_tag: dict[str, list[Commit]] = {}
        self.by_key: dict[str, list[tuple[str, Commit]]] = {}
        for commit in history:
            self.add(commit)

    def add(self, commit: Commit) -> None:
        for tag in dict.fromkeys(plain_str(t) for t in stored_items(commit.tags)):
            self.by_tag.setdefault(tag, []).append(commit)
            self.by_key.setdefault(lookalike_key(tag), []).append((tag, commit))


@lru_cache(maxsize=64)
def _schema_validator(policy: Policy) -> Draft202012Validator | None:
    schema = policy.metadata.json_schema
    if schema is None:
        return None
    return Draft202012Validator(ascii_schema(schema), format_checker=FORMAT_CHECKER)


@lru_cache(maxsize=512)
def _expression(text: str) -> Any:
    return _expr.parse(text)


def _compact(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _missing_property(error: SchemaValidationError) -> str | None:
    """The key a ``required`` error is about (jsonschema names it only in the message)."""
    suffix = " is a required property"
    if not error.message.endswith(suffix):
        return None
    try:  # the message starts with repr(name); literal_eval only reads literals
        name = ast.literal_eval(error.message[:-len(suffix)])
    except (ValueError, SyntaxError):
        name = None
    required = error.validator_value if isinstance(error.validator_value, list) else []
    if isinstance(error.instance, dict) and name in required:
        return str(name)
    for candidate in required:  # fall back: the first one missing
        if isinstance(error.instance, dict) and candidate not in error.instance:
            return str(candidate)
    return None


def _schema_violations(policy: Policy, metadata: Mapping[str, Any]) -> list[Violation]:
    validator = _schema_validator(policy)
    if validator is None:
        return []
    found = []
    try:
        errors = list(validator.iter_errors(metadata))
    except RecursionError:  # a schema the load-time checks missed; never crash the commit
        return [Violation("metadata.schema", "", None, "a schema that terminates",
                          "The policy's metadata schema recurses without end on this "
                          "metadata; fix the schema (its $ref cycles)")]
    for error in errors:
        parts = tuple(error.absolute_path)
        value: Any = error.instance
        shown_value, message = error.validator_value, error.message
        if error.validator == "pattern" and isinstance(shown_value, str):
            written = shown_value.removeprefix(ASCII_PREFIX)  # the pattern as the policy has it
            message = message.replace(repr(shown_value), repr(written))
            shown_value = written
        expected = f"{error.validator} {_compact(shown_value)}"
        if error.validator == "required":
            missing = _missing_property(error)
            if missing is not None:
                parts, value, expected = (*parts, missing), None, "a value (required)"
        path = format_loc(parts)
        found.append(Violation("metadata.schema", path, value, expected,
                               f"Metadata {path or '(root)'}: {message}"))
    return sorted(found, key=lambda v: (v.path, v.expected))


def _tag_violations(policy: Policy, tags: Iterable[str], index: _HistoryIndex
                    ) -> list[Violation]:
    rules = policy.tags
    found = []
    for tag in tags:
        if not rules.admits(tag):
            expected = rules.describe()
            if len(tag) > MAX_TAG_LENGTH:
                message = (f"Tag {tag[:40]!r}... is longer than {MAX_TAG_LENGTH} "
                           f"characters. {expected}")
            else:
                message = f"Unknown tag {tag!r}.{rules.suggest(tag)} {expected}"
            found.append(Violation("tags.allowed", tag, tag, expected, message))
            continue
        key = lookalike_key(tag)
        earlier = index.by_key.get(key)
        if earlier and (rules.is_unique(tag) or rules.is_unique(key)
                        or any(rules.is_unique(t) for t, _ in earlier)):
            same = [(t, c) for t, c in earlier if t == tag]
            seen, first = (same or earlier)[0]
            if seen == tag:
                message = (f"Tag {tag!r} is already on commit {first.short_hash} "
                           f"({first.message!r}); it may be on only one commit.")
            else:
                message = (f"Tag {tag!r} looks like tag {seen!r} (the same after Unicode "
                           f"normalisation), which is already on commit "
                           f"{first.short_hash} ({first.message!r}); a unique tag may be "
                           "on only one commit, in any spelling.")
            found.append(Violation("tags.unique", tag, tag,
                                   "a tag not used by any earlier commit", message))
    for group in rules.exclusive_groups:
        carried = [t for t in group if t in tags]
        if len(carried) > 1:
            found.append(Violation(
                "tags.exclusive", ",".join(carried), carried,
                "at most one of: " + ", ".join(group),
                f"Tags {', '.join(repr(t) for t in carried)} cannot be on the same "
                f"commit: a commit carries at most one of {', '.join(group)}."))
    return found


def _content(files: Mapping[str, str], globs: Sequence[str] | None) -> dict[str, str]:
    if globs is None:
        return dict(files)
    return {n: h for n, h in files.items() if any(fnmatchcase(n, g) for g in globs)}


def _differences(a: Mapping[str, str], b: Mapping[str, str]) -> str:
    names = sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n))
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return shown or "nothing"


def _stage_violation(tag: str, rule: PromotionRule, proposal: Proposal,
                     index: _HistoryIndex) -> Violation | None:
    stage = rule.requires_stage
    assert stage is not None
    globs = rule.compare_files
    wanted = _content(proposal.files, globs)
    candidates = index.by_tag.get(stage, [])
    for commit in candidates:
        theirs = _content({n: f.hash for n, f in commit.files.items()}, globs)
        if wanted and theirs == wanted:
            return None
    what = ("files matching " + ", ".join(globs)) if globs else "files"
    expected = f"an earlier commit tagged {stage!r} with the same {what}"
    if not wanted:
        detail = f"the commit has no {what} to compare"
    elif not candidates:
        detail = f"no earlier commit is tagged {stage!r}"
    else:
        latest = candidates[-1]
        theirs = _content({n: f.hash for n, f in latest.files.items()}, globs)
        detail = (f"{len(candidates)} earlier commit{'s are' if len(candidates) > 1 else ' is'}"
                  f" tagged {stage!r}, none with the same content; the latest, "
                  f"{latest.short_hash} ({latest.message!r}), differs in "
                  f"{_differences(wanted, theirs)}")
    return Violation(f"promotion.{tag}.requires_stage", stage, FrozenDict(wanted),
                     expected, f"Tag {tag!r} requires {expected}: {detail}.")


def _promotion_violations(policy: Policy, proposal: Proposal, tags: Iterable[str],
                          index: _HistoryIndex) -> list[Violation]:
    found = []
    for tag in tags:
        rule = policy.promotion.get(tag)
        if rule is None:
            continue
        prefix = f"promotion.{tag}"
        if rule.when is not None:
            condition = _expression(rule.when)
            for failure in _expr.check(condition, proposal.metadata):
                found.append(Violation(
                    f"{prefix}.when", failure.path, failure.value, failure.expected,
                    f"Tag {tag!r} requires {condition}: {failure.message}"))
        for pattern in rule.required_files:
            if not any(fnmatchcase(name, pattern) for name in proposal.files):
                have = ", ".join(sorted(proposal.files)) or "no files"
                found.append(Violation(
                    f"{prefix}.required_files", pattern, sorted(proposal.files),
                    f"a file matching {pattern!r}",
                    f"Tag {tag!r} requires a file matching {pattern!r}; the commit "
                    f"has {have}."))
        if rule.requires_stage is not None:
            violation = _stage_violation(tag, rule, proposal, index)
            if violation is not None:
                found.append(violation)
    return found


def _link_failures(req: LinkRequirement, state: LinkedState) -> list[tuple[str, Any, str]]:
    """(what was expected, the offending value, why) for each condition ``state`` fails."""
    if state.problem is not None:
        return [("a linked commit that exists and is sound", state.link.commit,
                 state.problem)]
    found: list[tuple[str, Any, str]] = []
    for tag in req.tags:
        if tag not in state.tags:
            have = ", ".join(state.tags) or "no tags"
            found.append((f"a linked version tagged {tag!r}", list(state.tags),
                          f"it is not tagged {tag!r} (it has {have})"))
    if req.stage is not None and req.stage not in state.holds:
        found.append((f"a linked version holding {req.stage!r}", list(state.holds),
                      f"it does not hold stage {req.stage!r} of {state.link.dataset!r} now"))
    for tag in req.not_tags:
        if tag in state.tags:
            found.append((f"a linked version not tagged {tag!r}", list(state.tags),
                          f"it is tagged {tag!r}"))
    if not req.allow_withdrawn:
        for stage, by in state.withdrawn:
            found.append(("a linked version never withdrawn", by,
                          f"it was withdrawn from {stage!r} by {by[:8]}"))
    if req.where is not None:
        condition = _expression(req.where)
        for failure in _expr.check(condition, state.metadata):
            found.append((f"linked metadata where {condition}", failure.value,
                          failure.message))
    return found


def _lineage_violations(policy: Policy, proposal: Proposal, tags: Iterable[str]
                        ) -> list[Violation]:
    """Each tag's lineage rule: the links it requires, and what each linked commit is now."""
    if not policy.lineage:
        return []
    found = []
    lineage = proposal.lineage
    for tag in tags:
        rule = policy.lineage.get(tag)
        if rule is None:
            continue
        for key, value in (("code", lineage.code if lineage else None),
                           ("run", lineage.run if lineage else None)):
            if getattr(rule, key) and value is None:
                found.append(Violation(
                    f"lineage.{tag}.{key}", key, None, f"a {key} reference",
                    f"Tag {tag!r} requires the commit to name its {key} "
                    f"(lineage.{tag}.{key}): give --{key}."))
        for index, req in enumerate(rule.requires):
            name = f"lineage.{tag}.requires[{index}]"
            links = [s for s in proposal.linked if s.link.role == req.role
                     and (req.dataset is None or (s.link.dataset == req.dataset
                                                  and s.link.in_root))]
            if not links:
                what = f"a {req.role!r} link" + (f" to {req.dataset!r}" if req.dataset else "")
                found.append(Violation(
                    name, req.role, None, what,
                    f"Tag {tag!r} requires {what} ({name}); the commit has "
                    f"{_roles(proposal)}. Give --from {req.role}="
                    f"{req.dataset or 'DATASET'}@REF."))
                continue
            for state in links:
                shown = f"{state.link.role}={state.link.dataset}@{state.link.commit[:8]}"
                for expected, value, why in _link_failures(req, state):
                    found.append(Violation(
                        name, shown, value, expected,
                        f"Tag {tag!r} requires {expected} ({name}): link {shown} fails: "
                        f"{why}."))
    return found


def _roles(proposal: Proposal) -> str:
    roles = proposal.lineage.roles() if proposal.lineage else ()
    return "links of roles " + ", ".join(map(repr, roles)) if roles else "no links"


def normalise_message(message: str) -> str:
    """How messages are compared with ``message.forbidden``: case, spacing, '.!' ignored."""
    return " ".join(message.split()).casefold().rstrip(".!").rstrip()


def _message_violations(policy: Policy, message: str) -> list[Violation]:
    rules = policy.message
    text = message.strip()
    found = []
    if rules.min_length is not None and len(text) < rules.min_length:
        found.append(Violation(
            "message.min_length", "message", message,
            f"at least {rules.min_length} characters",
            f"Commit message {text!r} is {len(text)} characters long; the minimum "
            f"is {rules.min_length}."))
    if rules.max_length is not None and len(text) > rules.max_length:
        found.append(Violation(
            "message.max_length", "message", message,
            f"at most {rules.max_length} characters",
            f"Commit message is {len(text)} characters long; the maximum is "
            f"{rules.max_length}."))
    normalised = normalise_message(text)
    if any(normalise_message(f) == normalised for f in rules.forbidden):
        found.append(Violation(
            "message.forbidden", "message", message,
            "a message that says what changed",
            f"Commit message {text!r} is too vague; these are not allowed: "
            f"{', '.join(repr(f) for f in rules.forbidden)}. Say what changed and why."))
    return found


def _evaluate(policy: Policy, proposal: Proposal, index: _HistoryIndex) -> Report:
    proposal = _plain_proposal(proposal)
    if proposal.kind == "withdrawal":  # admits no content: only the rules about every record apply
        return Report(tuple(_message_violations(policy, proposal.message)), policy.hash)
    tags = list(dict.fromkeys(proposal.tags))
    violations = [
        *_schema_violations(policy, proposal.metadata),
        *_tag_violations(policy, tags, index),
        *_promotion_violations(policy, proposal, tags, index),
        *_lineage_violations(policy, proposal, tags),
        *_message_violations(policy, proposal.message),
    ]
    return Report(tuple(violations), policy.hash)


def evaluate_policy(policy: Policy, proposal: Proposal, history: Iterable[Commit]
                    ) -> Report:
    """Judge ``proposal`` as the next commit after ``history``.

    ``history`` should be oldest first; the verdict does not depend on its
    order (only which earlier commit a message names does), so a newest-first
    listing gives the same violations.
    """
    return _evaluate(policy, proposal, _HistoryIndex(history))


#: What the links of a stored commit are now (see :mod:`kirin.lineage`); ``None``: unknown.
LinkedOf = Callable[[Commit], tuple[LinkedState, ...]]


def proposal_from_commit(commit: Commit, parent: Commit | None,
                         linked: LinkedOf | None = None) -> Proposal:
    """The proposal that would have produced ``commit`` on top of ``parent``.

    ``linked`` gives what each of the commit's links is now, so a lineage rule
    is re-judged against the current state of the linked datasets.
    """
    files = {name: f.hash for name, f in commit.files.items()}
    before = {name: f.hash for name, f in parent.files.items()} if parent else {}
    return Proposal(
        message=commit.message,
        files=FrozenDict(files),
        added=tuple(sorted(n for n, h in files.items() if before.get(n) != h)),
        removed=tuple(sorted(n for n in before if n not in files)),
        metadata=commit.metadata,
        tags=commit.tags,
        author=commit.author,
        kind="withdrawal" if commit.kind == "withdrawal" else "commit",
        lineage=commit.lineage,
        linked=linked(commit) if linked is not None and commit.lineage else (),
    )


def audit(policy: Policy, history: Iterable[Commit], linked: LinkedOf | None = None
          ) -> list[tuple[Commit, Report]]:
    """Re-judge every commit of ``history`` (oldest first) under ``policy``.

    Each commit is judged as if proposed on top of the commits before it, so
    history-dependent rules (unique tags, earlier stages) mean what they did
    then. Returns every commit with its report, in history order.
    """
    index = _HistoryIndex()
    results: list[tuple[Commit, Report]] = []
    parent: Commit | None = None
    for commit in history:
        results.append((commit, _evaluate(
            policy, proposal_from_commit(commit, parent, linked), index)))
        index.add(commit)
        parent = commit
    return results
