"""Cross-checking a policy's rules against its own metadata schema: typos, before they bite.

Why: a promotion rule reading ``metrics.acu`` when the schema declares
``metrics.auc`` is a valid policy on its own, and every promotion then fails
with a message that blames the metadata. The two halves of the file can be
compared statically, so ``kirin policy check`` and every *new* policy version
(``set_policy``, ``kirin policy apply``, ``create_dataset``) are checked here.
Old stored versions are never re-checked: they must keep loading, whatever
this module learns to find later (so this is not a validator of
:class:`~kirin.policy.Policy`).

What "the schema cannot produce" means, reading JSON Schema 2020-12 the way
the gate's validator does, one path segment at a time:

* a name declared by ``properties`` or matched by ``patternProperties`` (in
  the schema itself, an ``allOf`` branch, a local ``$ref``, an ``anyOf`` /
  ``oneOf`` branch, or the ``then`` / ``else`` / ``dependentSchemas`` that may
  apply) is *declared*;
* a name under an object whose ``additionalProperties`` (or
  ``unevaluatedProperties``) is ``false`` and that nothing declares, or a
  step into a value whose ``type`` cannot be an object (paths only look up
  object keys), **cannot be produced: an error**, with "did you mean";
* a name an open object does not declare, but that is a near miss of a
  declared sibling (one edit or transposition, or difflib ratio >= 0.8,
  or the same ignoring case), is **a typo: an error** too, since open
  schemas are the norm;
* any other undeclared name under an open object is a **warning** (the
  metadata may still carry it); under ``additionalProperties: {schema}``
  (a map whose keys are data) it is not even that.

A rule comparing a declared field whose schema fixes its ``type`` with a
literal that can never satisfy it (``>= 0.9`` on a string, ``== 'yes'`` on a
boolean) is an error as well. Anything this walk cannot decide (a ``$ref``
it cannot resolve, an ``anyOf`` without types) is left alone: findings are
meant to be right, not complete.

Pure: no I/O. Findings are values; :func:`refuse_errors` turns them into a
:class:`~kirin.errors.PolicyError` naming the key path and line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..errors import PolicyError
from ._expr_nodes import And, Compare, Exists, Expr, In, Not, Or, Path, to_text
from ._expr_nodes import Literal as LiteralNode
from ._patterns import check_schema_pattern
from ._schema_safety import Loc
from .rules import Policy, format_loc

if TYPE_CHECKING:
    from .loader import LineMap

Severity = Literal["error", "warning"]

#: Nesting of ``$ref``/``allOf``/... followed before giving up (undecided: no finding).
MAX_SCHEMA_DEPTH = 32
#: difflib ratio from which an undeclared name is taken for a typo of a declared one.
TYPO_RATIO = 0.8
#: Looser ratio for the "did you mean" of a name that cannot be produced at all.
SUGGEST_RATIO = 0.6

Schema = Any  # a JSON Schema: a mapping or a bool


@dataclass(frozen=True)
class Finding:
    """One disagreement between a rule and the metadata schema.

    ``key_path`` is where in the policy file (``promotion.production.when``),
    ``field`` the metadata path the rule reads there (``metrics.acu``),
    ``line`` the 1-based line of that key when the policy's text is known.
    """

    severity: Severity
    key_path: str
    field: str
    message: str
    suggestion: str | None = None
    line: int | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_error(self, source: str | None = None) -> PolicyError:
        """This finding as the located error the loader would raise."""
        return PolicyError(self.message, file=source, key_path=self.key_path, line=self.line)


# -- the schema walk -------------------------------------------------------------
@dataclass
class _Step:
    """What a schema says about one key of the object it describes.

    ``value`` lists the schemas that all apply to the key's value (a
    conjunction; empty: anything); ``declared``: some ``properties`` or
    ``patternProperties`` names the key; ``catch_all``: an
    ``additionalProperties`` schema admits it (the keys there are data).
    """

    allowed: bool = True
    declared: bool = False
    value: list[Schema] = field(default_factory=list)
    names: set[str] = field(default_factory=set)  # declared siblings, for "did you mean"
    catch_all: bool = False
    decided: bool = True  # False: something here could not be read (no finding then)
    why: str = ""  # why not allowed, in words


_UNDECIDED = _Step(decided=False)


def _all(steps: Sequence[_Step]) -> _Step:
    """Every one of ``steps`` applies (the schema's own keywords, allOf, $ref)."""
    out = _Step(names={n for s in steps for n in s.names},
                decided=all(s.decided for s in steps))
    closed = [s for s in steps if not s.allowed]
    if closed:
        out.allowed, out.why = False, closed[0].why
        return out
    out.declared = any(s.declared for s in steps)
    out.value = [v for s in steps for v in s.value]
    out.catch_all = any(s.catch_all for s in steps)
    return out


def _any(steps: Sequence[_Step]) -> _Step:
    """At least one of ``steps`` applies (anyOf, oneOf)."""
    allowing = [s for s in steps if s.allowed]
    out = _Step(allowed=bool(allowing), names={n for s in steps for n in s.names},
                decided=all(s.decided for s in steps))
    if not allowing:
        out.why = steps[0].why if steps else ""
        return out
    out.declared = any(s.declared for s in allowing)
    out.value = [{"anyOf": [{"allOf": s.value} if s.value else True for s in allowing]}]
    out.catch_all = any(s.catch_all for s in allowing)
    return out


def _sometimes(step: _Step, optional: Sequence[_Step]) -> _Step:
    """``step`` plus branches that may apply (then, else, dependentSchemas).

    They can declare a key, never close one: the value is checked against
    them only where they say something (``anyOf`` with ``true``).
    """
    for branch in optional:
        step.names |= branch.names
        step.decided = step.decided and branch.decided
        if branch.allowed and branch.declared and step.allowed:
            step.declared = True
            step.value = [*step.value, {"anyOf": [True, {"allOf": branch.value}]}]
    return step


class _Walker:
    """Reads one metadata schema; local ``$ref`` pointers resolve against its root.

    Answers are remembered per subschema (and key): a schema whose ``$defs``
    refer to each other twice over, level after level, would otherwise cost
    2**depth steps. The cache holds the subschema itself, so its ``id`` is
    never reused by another object while the walker lives.
    """

    def __init__(self, root: Schema) -> None:
        self.root = root
        self.steps: dict[tuple[int, str], tuple[Schema, _Step]] = {}
        self.types: dict[int, tuple[Schema, frozenset[str] | None]] = {}

    def resolve(self, ref: Any) -> Schema | None:
        if not isinstance(ref, str) or not ref.startswith("#"):
            return None
        if ref == "#":
            return self.root
        if not ref.startswith("#/"):
            return None  # an anchor: not followed (undecided)
        node: Any = self.root
        for raw in ref[2:].split("/"):
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif (isinstance(node, Sequence) and not isinstance(node, str)
                  and part.isdigit() and int(part) < len(node)):
                node = node[int(part)]
            else:
                return None
        return node

    def step(self, schema: Schema, key: str, depth: int = 0) -> _Step:
        """What ``schema`` says about the key ``key`` of the object it describes."""
        cached = self.steps.get((id(schema), key))
        if cached is not None and cached[0] is schema:
            return cached[1]
        found = self._step(schema, key, depth)
        self.steps[(id(schema), key)] = (schema, found)
        return found

    def _step(self, schema: Schema, key: str, depth: int) -> _Step:
        if depth > MAX_SCHEMA_DEPTH:
            return _UNDECIDED
        if schema is True:
            return _Step()
        if schema is False:
            return _Step(allowed=False, why="the schema admits no value at all {inside} "
                                            "(false)")
        if not isinstance(schema, Mapping):
            return _UNDECIDED
        conjuncts = [self.own_keywords(schema, key)]
        if "$ref" in schema:
            target = self.resolve(schema["$ref"])
            conjuncts.append(_UNDECIDED if target is None
                             else self.step(target, key, depth + 1))
        conjuncts += [self.step(sub, key, depth + 1) for sub in _schemas(schema.get("allOf"))]
        for word in ("anyOf", "oneOf"):
            branches = _schemas(schema.get(word))
            if branches:
                conjuncts.append(_any([self.step(b, key, depth + 1) for b in branches]))
        optional = [schema.get("then"), schema.get("else"),
                    *_mapping(schema.get("dependentSchemas")).values()]
        result = _sometimes(_all(conjuncts), [self.step(sub, key, depth + 1)
                                              for sub in optional if sub is not None])
        rest = schema.get("unevaluatedProperties")
        if result.allowed and not result.declared and not result.catch_all:
            if rest is False:
                return _Step(allowed=False, names=result.names, decided=result.decided,
                             why="the schema allows no other keys {inside} "
                                 "(unevaluatedProperties: false)")
            if isinstance(rest, Mapping) and rest:
                result.catch_all = True
                result.value = [*result.value, rest]
        return result

    def own_keywords(self, schema: Mapping[str, Any], key: str) -> _Step:
        """The object keywords of ``schema`` itself (not its applicators)."""
        properties = _mapping(schema.get("properties"))
        names = set(properties)
        types = _types(schema)
        if types is not None and "object" not in types:
            return _Step(allowed=False, names=names,
                         why=f"the schema says {{where}} is {_kinds(types)}, not an object "
                             "with keys")
        value: list[Schema] = []
        if key in properties:
            value.append(properties[key])
        for pattern, sub in _mapping(schema.get("patternProperties")).items():
            try:
                matches = check_schema_pattern(pattern).search(key) is not None
            except ValueError:
                return _Step(decided=False, names=names)
            if matches:
                value.append(sub)
        if value:
            return _Step(declared=True, value=value, names=names)
        extra = schema.get("additionalProperties", True)
        if extra is False:
            return _Step(allowed=False, names=names,
                         why="the schema allows no other keys {inside} "
                             "(additionalProperties: false)")
        if extra is True or (isinstance(extra, Mapping) and not extra):
            return _Step(names=names)
        return _Step(value=[extra], names=names, catch_all=True)

    def types_at(self, schema: Schema, depth: int = 0) -> frozenset[str] | None:
        """The JSON types a value under ``schema`` may have; ``None``: any / unknown."""
        cached = self.types.get(id(schema))
        if cached is not None and cached[0] is schema:
            return cached[1]
        found = self._types_at(schema, depth)
        self.types[id(schema)] = (schema, found)
        return found

    def _types_at(self, schema: Schema, depth: int) -> frozenset[str] | None:
        if depth > MAX_SCHEMA_DEPTH or not isinstance(schema, Mapping):
            return None
        found: list[frozenset[str]] = []
        own = _types(schema)
        if own is not None:
            found.append(own)
        subs: list[frozenset[str] | None] = []
        if "$ref" in schema:
            target = self.resolve(schema["$ref"])
            subs.append(self.types_at(target, depth + 1) if target is not None else None)
        subs += [self.types_at(b, depth + 1) for b in _schemas(schema.get("allOf"))]
        found += [s for s in subs if s is not None]
        for word in ("anyOf", "oneOf"):
            branches = [self.types_at(b, depth + 1) for b in _schemas(schema.get(word))]
            if branches and all(b is not None for b in branches):
                found.append(frozenset().union(*(b for b in branches if b is not None)))
        if not found:
            return None
        result = found[0]
        for other in found[1:]:
            result = _meet(result, other)
        return result


def _meet(a: frozenset[str], b: frozenset[str]) -> frozenset[str]:
    """Types both allow (an integer is a number)."""
    widen = {"number": {"number", "integer"}}
    out = {t for t in a if t in b or any(t in widen.get(u, ()) for u in b)}
    out |= {t for t in b if any(t in widen.get(u, ()) for u in a)}
    return frozenset(out)


def _types(schema: Mapping[str, Any]) -> frozenset[str] | None:
    declared = schema.get("type")
    if isinstance(declared, str):
        return frozenset({declared})
    if isinstance(declared, Sequence) and all(isinstance(t, str) for t in declared):
        return frozenset(declared)
    return None


def _kinds(types: frozenset[str]) -> str:
    names = {"integer": "an integer", "number": "a number", "string": "a string",
             "boolean": "a boolean", "array": "an array", "null": "null",
             "object": "an object"}
    listed = [names.get(t, t) for t in sorted(types)]
    return " or ".join(listed) if listed else "nothing"


def _schemas(value: Any) -> list[Schema]:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return []


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# -- near misses -----------------------------------------------------------------
def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions, swaps."""
    if abs(len(a) - len(b)) > 2:
        return 3
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, previous2[j - 2] + 1)
            current.append(cost)
        previous2, previous = previous, current
    return previous[-1]


def near_miss(name: str, declared: set[str]) -> str | None:
    """The declared name ``name`` is most likely a typo of, if any.

    One edit or one swap of neighbours (``acu`` for ``auc``) on a name of three
    characters or more, the same name in another case, or a difflib ratio of
    at least :data:`TYPO_RATIO`: short metric names differ by one letter far
    more often by mistake than on purpose.
    """
    candidates = sorted(n for n in declared if n != name)
    for candidate in candidates:
        if candidate.casefold() == name.casefold():
            return candidate
        if min(len(candidate), len(name)) >= 3 and _edits(name, candidate) <= 1:
            return candidate
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=TYPO_RATIO)
    return close[0] if close else None


def _suggest(name: str, declared: set[str]) -> str | None:
    return near_miss(name, declared) or next(iter(difflib.get_close_matches(
        name, sorted(declared), n=1, cutoff=SUGGEST_RATIO)), None)


# -- rules -> findings -----------------------------------------------------------
def _nodes(expr: Expr) -> Iterator[Expr | Path]:
    """Every condition and path of ``expr``, outermost first."""
    yield expr
    if isinstance(expr, Compare):
        for side in (expr.left, expr.right):
            if isinstance(side, Path):
                yield side
    elif isinstance(expr, In):
        for side in (expr.item, expr.container):
            if isinstance(side, Path):
                yield side
    elif isinstance(expr, Exists):
        yield expr.path
    elif isinstance(expr, Not):
        yield from _nodes(expr.operand)
    elif isinstance(expr, And | Or):
        for operand in expr.operands:
            yield from _nodes(operand)


def _shown(segments: Sequence[str]) -> str:
    return to_text(Path(tuple(segments))) if segments else "the metadata"


@dataclass
class _Resolved:
    finding: tuple[Severity, str, str | None] | None  # severity, message, suggestion
    schema: Schema | None  # what the whole path's value is declared as (None: not known)


def _resolve(walker: _Walker, segments: tuple[str, ...]) -> _Resolved:
    """Walk ``segments`` down the schema; the first finding on the way, if any."""
    schema: Schema = walker.root
    for index, key in enumerate(segments):
        step = walker.step(schema, key)
        where = _shown(segments[:index])
        shown = _shown(segments[:index + 1])
        if not step.decided and not (step.allowed and step.declared):
            return _Resolved(None, None)  # part of the schema could not be read
        if not step.allowed:
            hint = _suggest(key, step.names)
            meant = _shown((*segments[:index], hint)) if hint else None
            tail = f" Did you mean {meant!r}?" if meant else ""
            inside = f"under {where!r}" if index else "at the top level"
            why = step.why.format(where=repr(where), inside=inside)
            return _Resolved(("error", f"reads {shown!r}, which the metadata schema cannot "
                                       f"produce: {why}.{tail}", meant), None)
        if not step.declared:
            typo = near_miss(key, step.names)
            if typo is not None:
                meant = _shown((*segments[:index], typo))
                return _Resolved(("error", f"reads {shown!r}, which the metadata schema "
                                           f"does not declare. Did you mean {meant!r}? (If "
                                           f"{shown!r} is meant, declare it in the schema.)",
                                  meant), None)
            if not step.catch_all:
                return _Resolved(("warning", f"reads {shown!r}, which the metadata schema "
                                             "does not declare (the object allows other keys, "
                                             "so a commit may still carry it); declare it to "
                                             "have it checked", None), None)
        schema = {"allOf": step.value} if step.value else True
    return _Resolved(None, schema)


_ORDERING = frozenset({"<", "<=", ">", ">="})
_LITERAL_TYPES: dict[type, frozenset[str]] = {
    bool: frozenset({"boolean"}), int: frozenset({"integer", "number"}),
    float: frozenset({"number", "integer"}), str: frozenset({"string"}),
    type(None): frozenset({"null"}), tuple: frozenset({"array"}), list: frozenset({"array"}),
}


def _type_clash(walker: _Walker, compare: Compare, declared: dict[Path, Schema | None]
                ) -> tuple[Path, str] | None:
    """A comparison of a typed field with a literal it can never satisfy, in words."""
    sides = [(compare.left, compare.right), (compare.right, compare.left)]
    for path, other in sides:
        if not (isinstance(path, Path) and isinstance(other, LiteralNode)):
            continue
        if compare.op not in (*_ORDERING, "=="):
            continue
        types = walker.types_at(declared.get(path))
        if types is None:
            continue
        value = other.value
        wanted = _LITERAL_TYPES.get(type(value), frozenset())
        if compare.op in _ORDERING:
            wanted = wanted - {"boolean", "null", "array"}
        if wanted & types:
            continue
        verb = "is never equal to" if compare.op == "==" else "can never be ordered against"
        return path, (f"compares {to_text(path)!r} with {to_text(other)} "
                      f"({to_text(compare)!r}), but the metadata schema says "
                      f"{to_text(path)!r} is {_kinds(types)}, which {verb} it: the rule "
                      "can never hold")
    return None


def _rule_expressions(policy: Policy) -> Iterator[tuple[Loc, Expr]]:
    """Every expression a rule of ``policy`` evaluates on this dataset's metadata.

    Not the ``where`` of a lineage rule: it reads the *linked* commit's
    metadata, which another dataset's schema governs.
    """
    from .expr import parse

    for tag, rule in policy.promotion.items():
        if rule.when is not None:
            yield ("promotion", tag, "when"), parse(rule.when)


def cross_check(policy: Policy, *, lines: LineMap | None = None) -> tuple[Finding, ...]:
    """Every field a rule of ``policy`` reads that its metadata schema disagrees with.

    No schema: nothing to compare, no findings. ``lines`` (the policy text's
    line map, from :func:`kirin.policy.loader.policy_lines`) locates each
    finding. Errors first, then warnings; each in the policy's order.
    """
    schema = policy.metadata.json_schema
    if schema is None:
        return ()
    walker = _Walker(schema)
    found: list[Finding] = []
    for loc, expr in _rule_expressions(policy):
        key_path = format_loc(loc)
        line = lines.line_for(loc, value=True) if lines is not None else None
        declared: dict[Path, Schema | None] = {}
        seen: set[tuple[str, ...]] = set()
        for node in _nodes(expr):
            if isinstance(node, Path) and node.segments not in seen:
                seen.add(node.segments)
                resolved = _resolve(walker, node.segments)
                declared[node] = resolved.schema
                if resolved.finding is not None:
                    severity, message, hint = resolved.finding
                    found.append(Finding(severity, key_path, to_text(node),
                                         f"the rule {message}", hint, line))
        for node in _nodes(expr):
            if isinstance(node, Compare):
                clash = _type_clash(walker, node, declared)
                if clash is not None:
                    found.append(Finding("error", key_path, to_text(clash[0]),
                                         f"the rule {clash[1]}", None, line))
    return tuple(sorted(found, key=lambda f: not f.is_error))


def errors(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.is_error]


def warnings(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if not f.is_error]


def refuse_errors(findings: Sequence[Finding], *, source: str | None = None) -> None:
    """Raise the first error as a located :class:`PolicyError`, counting the others."""
    found = errors(findings)
    if not found:
        return
    first = found[0]
    more = len(found) - 1
    tail = f" ({more} more problem{'s' if more != 1 else ''} after this one)" if more else ""
    raise PolicyError(first.message + tail, file=source, key_path=first.key_path,
                      line=first.line)

