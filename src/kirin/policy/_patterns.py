"""Regular expressions a policy may use on tags, with a bound on their cost.

Why this exists: tag patterns come from a policy file and are matched on
every commit, in every writer. Python's ``re`` backtracks, so a pattern such
as ``(a+)+b`` takes exponential time on ``aaaa…a`` and cannot be interrupted.
A policy must not be able to hang a CI job, so a pattern is admitted only if
its worst case is bounded. The rules (checked on the parsed pattern, at load
time, so the gate never meets an unsafe one):

1. At most :data:`MAX_PATTERN_LENGTH` characters; tags matched against it are
   at most :data:`MAX_TAG_LENGTH` characters (a longer tag is refused before
   any pattern runs), which bounds every polynomial case.
2. No backreferences (``\\1``, ``(?P=name)``): they make matching NP-hard.
3. No nested repetition — a quantifier that can repeat (``*``, ``+``,
   ``{n,m}`` with m > 1) around a body that itself holds a quantifier of
   variable count (``?`` included) or an alternation — *unless* the body
   starts with a literal character that nothing repeated inside it can
   match. That separator fixes where each repetition starts, so
   ``[a-z]+(-[a-z0-9]+)*`` and ``v\\d+(\\.\\d+)*`` are accepted while
   ``(a+)+``, ``(\\w+\\s?)*``, ``(x\\w*)*``, ``(a|aa)*`` and ``(.?.?)+`` are
   refused.
4. At most three repeating quantifiers in a row whose characters overlap with
   no mandatory separator between them (``.*a.*b.*`` is fine,
   ``a*a*a*a*b`` is refused: its cost grows as n⁴).

The character-overlap tests use a sample alphabet (ASCII plus a few
non-ASCII letters and digits); that is a heuristic, erring towards refusal.

Patterns match the *whole* tag (``re.fullmatch``): ``v\\d+`` does not admit
``xv1junk``. ``^`` and ``$`` are allowed and redundant.

Every policy pattern — tag patterns, unique patterns and the ``pattern`` /
``patternProperties`` regexes of the metadata schema — is matched in ASCII
mode (``re.ASCII``): ``\\d`` is ``[0-9]``, ``\\w`` is ``[A-Za-z0-9_]``,
``\\s`` and ``\\b`` are ASCII too, and ``(?i)`` folds ASCII letters only. A
version pattern ``v\\d+`` must not admit ``v\\u0661`` (Arabic-Indic one) or
``v\\U0001d7cf`` (mathematical bold one), which look like ``v1`` and are
not found by a search for it; ECMA-262, the regex dialect JSON Schema
names, reads these classes as ASCII too. A pattern asking for Unicode
classes (``(?u)``) is refused.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

if sys.version_info >= (3, 11):
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
else:  # pragma: no cover - Python 3.10
    import sre_constants as _c
    import sre_parse as _sre_parse

MAX_PATTERN_LENGTH = 256
#: Longest regular expression in a metadata JSON Schema (see :func:`check_schema_pattern`).
MAX_SCHEMA_PATTERN_LENGTH = 1024
MAX_TAG_LENGTH = 128
#: Put before a schema regex handed to jsonschema (which calls ``re.search``
#: itself), so it matches in ASCII mode like every other policy pattern.
ASCII_PREFIX = "(?a)"
#: Overlapping repeats allowed in a row (cost grows as n**k for k of them).
MAX_REPEAT_CHAIN = 3

_ALPHABET = [chr(i) for i in range(32, 127)] + ["\n", "\t", "é", "ß", "Ж", "٣", "\u00a0"]

CharTest = Callable[[str], bool]
#: A flattened pattern item: ("repeat" | "barrier" | "optional", tests), or
#: ("branch", one token list per alternative).
Token = tuple[str, Any]

_REPEATS = {_c.MAX_REPEAT, _c.MIN_REPEAT}
_POSSESSIVE = getattr(_c, "POSSESSIVE_REPEAT", None)
_ATOMIC = getattr(_c, "ATOMIC_GROUP", None)


class UnsafePatternError(ValueError):
    """A pattern is not a valid regular expression or its cost is unbounded."""


@lru_cache(maxsize=1024)
def compile_pattern(text: str) -> re.Pattern[str]:
    """Compile ``text`` after checking the rules of this module; raise otherwise."""
    return _checked(text, MAX_PATTERN_LENGTH, chains=True)


@lru_cache(maxsize=1024)
def check_schema_pattern(text: str) -> re.Pattern[str]:
    """Compile a regular expression of a metadata JSON Schema, refusing exponential ones.

    ``pattern`` and ``patternProperties`` run on metadata strings of any length
    (``re.search``), so rules 2 and 3 apply: backreferences and nested
    repetition without a separator are refused at load time, which removes
    the exponential cases (``^(a+)+$`` would take years on 40 characters).
    Rule 4 does not: a chain of overlapping repeats costs a polynomial in the
    length of the string, and refusing it would refuse common patterns such
    as the semver regex. At most :data:`MAX_SCHEMA_PATTERN_LENGTH` characters.
    """
    return _checked(text, MAX_SCHEMA_PATTERN_LENGTH, chains=False)


def _checked(text: str, limit: int, *, chains: bool) -> re.Pattern[str]:
    if len(text) > limit:
        raise UnsafePatternError(
            f"pattern is {len(text)} characters long; the limit is {limit}")
    try:
        compiled = re.compile(text, re.ASCII)
        parsed = _sre_parse.parse(text, re.ASCII)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        # ValueError: '(?u)' asks for Unicode classes, which ASCII mode refuses
        raise UnsafePatternError(f"invalid regular expression: {exc}") from None
    ignorecase = bool(parsed.state.flags & re.IGNORECASE)
    dotall = bool(parsed.state.flags & re.DOTALL)
    _Checker(text, ignorecase, dotall, chains=chains).walk(parsed)
    return compiled


def tag_matches(pattern: str, tag: str) -> bool:
    """Whether the whole ``tag`` matches ``pattern`` (over-long tags never match)."""
    return len(tag) <= MAX_TAG_LENGTH and compile_pattern(pattern).fullmatch(tag) is not None


class _Checker:
    """Walks a parsed pattern and raises :class:`UnsafePatternError` on rule 2-4."""

    def __init__(self, text: str, ignorecase: bool, dotall: bool, *, chains: bool = True
                 ) -> None:
        self.text = text
        self.ignorecase = ignorecase
        self.dotall = dotall
        self.chains = chains  # apply rule 4

    def fail(self, why: str) -> None:
        raise UnsafePatternError(
            f"pattern {self.text!r} {why}; matching it can take exponential time. "
            "Start each repeated group with a separator its contents cannot match, "
            "as in '[a-z]+(-[a-z0-9]+)*'")

    # -- rule 2 and 3 -------------------------------------------------------
    def walk(self, items: Any) -> None:
        items = list(items)
        if self.chains:
            self.check_chain(items)
        for op, av in items:
            if op in _REPEATS:
                _lo, hi, body = av
                if hi > 1:
                    self.check_repeat(body)
                self.walk(body)
            elif op is _POSSESSIVE:
                self.walk(av[2])
            elif op is _c.SUBPATTERN:
                self.walk(av[-1])
            elif op is _c.BRANCH:
                for branch in av[1]:
                    self.walk(branch)
            elif op in (_c.ASSERT, _c.ASSERT_NOT):
                self.walk(av[1])
            elif op is _ATOMIC:
                self.walk(av)
            elif op is _c.GROUPREF:
                self.fail("uses a backreference")
            elif op is _c.GROUPREF_EXISTS:
                self.walk(av[1])
                if av[2] is not None:
                    self.walk(av[2])

    def check_repeat(self, body: Any) -> None:
        risky = self.risky_atoms(body, inside=False)
        if not risky:
            return
        sep = self.leading_literal(body)
        if sep is None or any(test(sep) for test in risky):
            self.fail("repeats a group that itself repeats or alternates, with no "
                      "separator character to tell the repetitions apart")

    def risky_atoms(self, items: Iterable[Any], *, inside: bool) -> list[CharTest]:
        """Character tests of everything repeated or alternated within ``items``."""
        found: list[CharTest] = []
        for op, av in items:
            if op in _REPEATS:
                lo, hi, body = av
                # a variable count (`?` included) is a choice, like an alternation
                found += self.risky_atoms(body, inside=inside or hi > lo)
            elif op is _c.SUBPATTERN:
                found += self.risky_atoms(av[-1], inside=inside)
            elif op is _c.BRANCH:
                if self.ambiguous(av[1]):
                    # alternatives that can match the same text (``(x|x)``, ``(a*|a*)``)
                    # split it two ways at each repetition: no separator helps
                    found.append(lambda ch: True)
                for branch in av[1]:
                    found += self.risky_atoms(branch, inside=True)
            elif op is _c.GROUPREF_EXISTS:
                for part in (av[1], av[2]):
                    if part is not None:
                        found += self.risky_atoms(part, inside=True)
            elif inside:
                test = self.char_test(op, av)
                if test is not None:
                    found.append(test)
        return found

    def ambiguous(self, branches: list[Any]) -> bool:
        """Whether two alternatives can both match the empty text or start alike."""
        starts = [self.first_chars(branch) for branch in branches]
        if sum(nullable for _, nullable in starts) > 1:
            return True
        return any(_overlap(a, b) for i, (a, _) in enumerate(starts)
                   for b, _ in starts[i + 1:] if a and b)

    def first_chars(self, items: Any) -> tuple[list[CharTest], bool]:
        """Tests of the characters ``items`` can start with, and whether it can match ''."""
        tests: list[CharTest] = []
        for op, av in items:
            if op in _REPEATS or op is _POSSESSIVE:
                more, nullable = self.first_chars(av[2])
                tests += more
                if av[0] > 0 and not nullable:
                    return tests, False
            elif op is _c.SUBPATTERN:
                more, nullable = self.first_chars(av[-1])
                tests += more
                if not nullable:
                    return tests, False
            elif op is _c.BRANCH:
                parts = [self.first_chars(branch) for branch in av[1]]
                tests += [t for more, _ in parts for t in more]
                if not any(nullable for _, nullable in parts):
                    return tests, False
            elif op is _c.AT:
                continue
            else:
                test = self.char_test(op, av)
                tests.append(test if test is not None else (lambda ch: True))
                return tests, False
        return tests, True

    def leading_literal(self, items: Any) -> str | None:
        for op, av in items:
            if op is _c.LITERAL:
                return chr(av)
            if op is _c.SUBPATTERN:
                return self.leading_literal(av[-1])
            if op is _c.AT:
                continue
            return None
        return None

    # -- rule 4 -------------------------------------------------------------
    def check_chain(self, items: list[Any]) -> None:
        self.scan(list(self.flatten(items, optional=False)), 0, None)

    def scan(self, tokens: list[Token], chain: int, last: list[CharTest] | None
             ) -> tuple[int, list[CharTest] | None]:
        """Walk ``tokens`` from state (chain length, last repeat); return the state after.

        An alternation is scanned once per alternative from the same state,
        keeping the worst outcome (only one alternative is taken, but any may be).
        """
        for kind, payload in tokens:
            if kind == "branch":
                ends = [self.scan(alternative, chain, last) for alternative in payload]
                chain = max(end[0] for end in ends)
                lasts = [test for end in ends for test in end[1] or ()]
                last = lasts or None
                continue
            if kind == "repeat":
                chain = chain + 1 if last is not None and _overlap(last, payload) else 1
                last = payload
                if chain > MAX_REPEAT_CHAIN:
                    self.fail(f"has more than {MAX_REPEAT_CHAIN} overlapping repetitions "
                              "in a row")
            elif kind == "barrier" and last is not None and not _overlap(last, payload):
                chain, last = 0, None
        return chain, last

    def flatten(self, items: Iterable[Any], *, optional: bool) -> Iterable[Token]:
        for op, av in items:
            if op in _REPEATS or op is _POSSESSIVE:
                lo, hi, body = av
                if hi > 1 and op is not _POSSESSIVE:
                    yield "repeat", self.risky_atoms(body, inside=True)
                else:
                    yield from self.flatten(body, optional=optional or lo == 0)
            elif op is _c.SUBPATTERN:
                yield from self.flatten(av[-1], optional=optional)
            elif op is _c.BRANCH:
                yield "branch", [list(self.flatten(alternative, optional=optional))
                                 for alternative in av[1]]
            else:
                test = self.char_test(op, av)
                if test is not None:
                    yield ("optional" if optional else "barrier"), [test]

    # -- character classes --------------------------------------------------
    def char_test(self, op: Any, av: Any) -> CharTest | None:
        """A predicate for single-character items; None for anything else."""
        if op is _c.LITERAL:
            literal = chr(av)
            return self.fold(lambda ch: ch == literal)
        if op is _c.NOT_LITERAL:
            other = chr(av)
            return self.fold(lambda ch: ch != other)
        if op is _c.ANY:
            return (lambda ch: True) if self.dotall else (lambda ch: ch != "\n")
        if op is _c.IN:
            return self.fold(_class_test(av))
        return None

    def fold(self, test: CharTest) -> CharTest:
        if not self.ignorecase:
            return test
        return lambda ch: test(ch) or test(ch.lower()) or test(ch.upper())


def _category(cat: Any) -> CharTest:
    tests: dict[Any, CharTest] = {
        _c.CATEGORY_DIGIT: str.isdecimal,
        _c.CATEGORY_NOT_DIGIT: lambda ch: not ch.isdecimal(),
        _c.CATEGORY_SPACE: str.isspace,
        _c.CATEGORY_NOT_SPACE: lambda ch: not ch.isspace(),
        _c.CATEGORY_WORD: lambda ch: ch.isalnum() or ch == "_",
        _c.CATEGORY_NOT_WORD: lambda ch: not (ch.isalnum() or ch == "_"),
    }
    return tests.get(cat, lambda ch: True)


def _equals(literal: str) -> CharTest:
    return lambda ch: ch == literal


def _in_range(low: int, high: int) -> CharTest:
    return lambda ch: low <= ord(ch) <= high


def _class_test(members: list[Any]) -> CharTest:
    negate = False
    parts: list[CharTest] = []
    for op, av in members:
        if op is _c.NEGATE:
            negate = True
        elif op is _c.LITERAL:
            parts.append(_equals(chr(av)))
        elif op is _c.RANGE:
            parts.append(_in_range(av[0], av[1]))
        elif op is _c.CATEGORY:
            parts.append(_category(av))
        else:  # unknown member: assume it matches anything (refuse rather than risk)
            parts.append(lambda ch: True)
    def test(ch: str) -> bool:
        return any(part(ch) for part in parts) is not negate

    return test


def _overlap(first: list[CharTest], second: list[CharTest]) -> bool:
    return any(any(a(ch) for a in first) and any(b(ch) for b in second)
               for ch in _ALPHABET)
