"""Hostile input never crashes Kirin: fuzzed policies, schemas, patterns and metadata.

Whatever a policy file, a JSON Schema inside it, a tag pattern or a commit's
metadata holds, Kirin either accepts it or raises one of its own errors
(``PolicyError``, ``InvalidMetadataError``) — never another exception, never
after writing part of a commit, and within bounded time and memory. The
expression language has its own, larger fuzz suite in
``tests/policy/test_expr.py``; only hostile *metadata* for queries is here.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fsspec.implementations.memory import MemoryFileSystem
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kirin import Dataset
from kirin._json import MAX_DEPTH, MAX_INT_DIGITS, MAX_METADATA_BYTES, canonical_json
from kirin.errors import InvalidMetadataError, PolicyError
from kirin.policy import Policy, evaluate_policy, load_policy, load_policy_text
from kirin.policy._patterns import MAX_TAG_LENGTH, UnsafePatternError, compile_pattern
from kirin.policy.expr import compile_query, parse
from kirin.values import Proposal

from conftest import write

FUZZ = settings(max_examples=120, deadline=2000, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
SEED_POLICY = """\
version: 1
description: Team policy
metadata:
  schema:
    type: object
    required: [framework]
    properties:
      accuracy: {type: number, minimum: 0, maximum: 1}
      framework: {enum: [pytorch, jax]}
      name: {type: string, pattern: '^[a-z][a-z0-9-]*$'}
tags:
  allowed: [dev, staging, production]
  patterns: ['v\\d+(\\.\\d+){0,2}']
  unique_patterns: ['v\\d+(\\.\\d+){0,2}']
  exclusive_groups: [[dev, staging, production]]
promotion:
  production:
    when: "accuracy >= 0.9 and exists(framework)"
    required_files: ["*.pt"]
    requires_stage: staging
message:
  min_length: 10
  forbidden: [Changes]
"""
#: Pieces of YAML syntax (and non-syntax) spliced into the seed policy.
YAML_JUNK = [": ", "- ", "&a ", "*a", "*nope", "<<: *a", "{", "}", "[", "]", "'", '"', "\t",
             "|", ">", "%YAML 1.1\n", "---\n", "...\n", "? ", "#", "\n", "  ", "\x00",
             "\ud800", "\ufeff", "\x85", "1e999", "-.inf", ".nan", "0x" + "f" * 40,
             "9" * 5000, "~", "yes", "2024-01-01", "!!binary aGk=", "!!set {a}",
             "!!python/object/apply:os.system ['true']", "!!str", "!custom", "(a+)+$",
             "`", "exists(", "\\", "\\ud800", "{a: [b, {c: ", ",", "@", "%"]


def outcome(text: str) -> Policy | PolicyError:
    """The loaded policy, or the PolicyError it raised; any other exception escapes."""
    try:
        return load_policy_text(text, source="fuzz.yaml")
    except PolicyError as exc:
        return exc


def assert_clean(result: Policy | PolicyError) -> None:
    """A PolicyError names the file and prints; a Policy round-trips through its stored form."""
    if isinstance(result, PolicyError):
        assert result.file == "fuzz.yaml"
        assert str(result).encode("utf-8")  # printable: no lone surrogate quoted raw
        return
    assert load_policy_text(result.stored_text()) == result


@st.composite
def mutated_policies(draw: st.DrawFn) -> str:
    """The seed policy with a few random splices, deletions and line shuffles."""
    text = SEED_POLICY
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "insert", "delete", "duplicate", "indent"]))
        if op == "insert":
            junk = draw(st.sampled_from(YAML_JUNK) | st.text(max_size=4))
            text = text[:at] + junk + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 30)):]
        else:
            lines = text.splitlines(keepends=True)
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i] if op == "duplicate" else "  " + lines[i])
            text = "".join(lines)
    return text


_KEYS = ["version", "description", "metadata", "schema", "schema_file", "tags", "allowed",
         "patterns", "unique", "unique_patterns", "exclusive_groups", "promotion",
         "production", "staging", "when", "required_files", "requires_stage",
         "compare_files", "message", "min_length", "max_length", "forbidden", "type",
         "properties", "$ref", "pattern"]
_scalars = (st.none() | st.booleans() | st.integers() | st.sampled_from([10**30, -(2**70)])
            | st.floats(allow_nan=False, allow_infinity=False)
            | st.sampled_from(["accuracy >= 0.9", "(a+)+$", "v\\d+", "*.pt", "dev", ""])
            | st.text(max_size=12))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=5), inner,
                                         max_size=4), max_leaves=16)


@st.composite
def structured_policies(draw: st.DrawFn) -> str:
    """A document shaped like a policy with values of random type at known keys."""
    doc = draw(st.dictionaries(st.sampled_from(_KEYS), _values, max_size=6))
    if draw(st.booleans()):
        doc["version"] = 1
    if draw(st.booleans()):
        return json.dumps(doc)
    return yaml.safe_dump(doc, allow_unicode=draw(st.booleans()))


class TestPolicyLoaderFuzz:
    """load_policy_text and load_policy return a Policy or raise PolicyError, nothing else."""

    @FUZZ
    @given(mutated_policies())
    def test_mutated_policy_text(self, text: str) -> None:
        """The seed policy with random YAML junk spliced in loads or raises PolicyError."""
        assert_clean(outcome(text))

    @FUZZ
    @given(structured_policies())
    def test_values_of_the_wrong_type_at_every_key(self, text: str) -> None:
        """Random values under the policy's own keys (YAML or JSON) load or raise PolicyError."""
        assert_clean(outcome(text))

    def test_a_large_but_sane_policy_loads_in_bounded_time(self) -> None:
        """A vocabulary of 30,000 tags is accepted and loads within seconds."""
        text = "version: 1\ntags:\n  allowed: [" + ", ".join(
            f"t{i}" for i in range(30_000)) + "]\n"
        started = time.perf_counter()
        result = outcome(text)
        assert isinstance(result, Policy) and len(result.tags.allowed or ()) == 30_000
        assert time.perf_counter() - started < 20

    @FUZZ
    @given(st.text(max_size=200))
    def test_random_text(self, text: str) -> None:
        """Arbitrary text loads or raises PolicyError."""
        assert_clean(outcome(text))

    @settings(FUZZ, max_examples=60)
    @given(st.binary(max_size=300))
    def test_binary_junk_files(self, tmp_path_factory: pytest.TempPathFactory,
                               data: bytes) -> None:
        """A policy file of random bytes (or bytes decoded with lone surrogates) is refused
        with PolicyError or loaded."""
        path = tmp_path_factory.mktemp("junk") / "policy.yaml"
        path.write_bytes(data)
        try:
            load_policy(path)
        except PolicyError as exc:
            assert exc.file == str(path)
        assert_clean(outcome(data.decode("utf-8", "surrogateescape")))

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("version: 1\ndescription: " + "{a: " * 10_000 + "1" + "}" * 10_000,
                         id="flow-nesting-10000"),
            pytest.param('{"version": 1, "x": ' + '{"a": ' * 10_000 + "1" + "}" * 10_000 + "}",
                         id="json-nesting-10000"),
            pytest.param("version: 1\ndescription:\n" + "".join(
                "  " * i + "- \n" for i in range(1, 1000)), id="block-nesting-1000"),
            pytest.param("version: 1\nmetadata:\n  schema: {minimum: " + "9" * 5000 + "}\n",
                         id="huge-int-yaml"),
            pytest.param('{"version": 1, "metadata": {"schema": {"maximum": 1e999}}}',
                         id="json-float-overflow"),
            pytest.param('{"version": 1, "description": "\\ud800"}', id="json-lone-surrogate"),
            pytest.param('version: 1\ndescription: "a\\udfff"\n', id="yaml-lone-surrogate"),
            pytest.param('version: 1\n"\\ud800": 1\n', id="yaml-surrogate-key"),
            pytest.param("version: 1\ndescription: " + "x" * (1024 * 1024 - 100) + "\n"
                         + "tags: {}\ntags: {}\n", id="long-string-under-size-limit"),
            pytest.param("version: 1\ndescription: " + "x" * (1024 * 1024) + "\n",
                         id="over-size-limit"),
            pytest.param("a: &a [" + ",".join(["x"] * 1000) + "]\nversion: 1\nb: ["
                         + ",".join(["*a"] * 1000) + "]\n", id="wide-alias-expansion"),
            pytest.param("version: 1\n---\nversion: 1\n", id="two-documents"),
        ],
    )
    def test_pathological_documents_are_refused_fast_and_small(self, text: str) -> None:
        """Deep nesting, huge numbers, overflowing floats, lone surrogates, long strings and
        alias fan-out raise PolicyError in bounded time and memory."""
        started = time.perf_counter()
        result = outcome(text)
        elapsed = time.perf_counter() - started
        assert isinstance(result, PolicyError), "accepted a pathological policy"
        assert_clean(result)
        assert elapsed < 5
        if len(text) > 200_000:
            return  # tracing a megabyte of YAML takes ~10 s; the small cases bound memory
        tracemalloc.start()  # a second run, measured: tracing slows everything down
        try:
            outcome(text)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 100 * 1024 * 1024

    def test_python_tags_never_execute(self, tmp_path: Path) -> None:
        """A YAML tag that would run a command under an unsafe loader is refused, not run."""
        marker = tmp_path / "pwned"
        for tag in ("!!python/object/apply:os.system", "!!python/object/new:os.system",
                    "!!python/name:os.system", "!!python/module:os"):
            result = outcome(f"version: 1\ndescription: {tag} ['touch {marker}']\n")
            assert isinstance(result, PolicyError) and "unsupported YAML type" in str(result)
        assert not marker.exists()


# -- JSON Schema inside policies ------------------------------------------------------------

_numbers = (st.integers(-(10**20), 10**20) | st.floats(allow_nan=False, allow_infinity=False)
            | st.sampled_from([0, -1, 1e-308, 5e-324, 1.7e308, 10**300, 0.1]))
_counts = st.integers(-2, 5) | st.sampled_from([10**12, 2**63])
SCHEMA_PATTERNS = ["^[a-z]+$", "v\\d+", "^(a+)+$", "(a|aa)+$", "(.*a){20}", "(", "\\1(a)",
                   "[", "x{99999999999}", "^$", ""]
FORMATS = ["email", "idn-email", "date-time", "date", "time", "duration", "regex", "uri",
           "uri-reference", "iri", "ipv4", "ipv6", "hostname", "idn-hostname", "uuid",
           "json-pointer", "relative-json-pointer", "uri-template", "nonsense"]
_schema_leaf: st.SearchStrategy[Any] = st.booleans() | st.lists(st.tuples(
    st.sampled_from(["type"]),
    st.sampled_from(["object", "array", "string", "number", "integer", "boolean", "null",
                     "nonsense"]) | st.lists(st.sampled_from(["string", "null", "x"]),
                                            max_size=3),
) | st.tuples(st.sampled_from(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                                "multipleOf"]), _numbers)
  | st.tuples(st.sampled_from(["minLength", "maxLength", "minItems", "maxItems",
                                "minProperties", "maxProperties", "minContains"]), _counts)
  | st.tuples(st.just("pattern"), st.sampled_from(SCHEMA_PATTERNS) | st.text(max_size=6))
  | st.tuples(st.just("format"), st.sampled_from(FORMATS))
  | st.tuples(st.sampled_from(["enum", "const", "default", "examples"]), _values)
  | st.tuples(st.just("required"), st.lists(st.text(max_size=3), max_size=3) | _scalars)
  | st.tuples(st.just("uniqueItems"), st.booleans())
  | st.tuples(st.just("$ref"), st.sampled_from(["#", "#/$defs/a", "#/nope",
                                                  "https://example.com/s.json", "other.json"]))
  | st.tuples(st.just("$schema"), st.sampled_from(
        ["https://json-schema.org/draft/2020-12/schema",
         "http://json-schema.org/draft-07/schema#", "nonsense"])),
    max_size=4).map(dict)


def _compound(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keyed = st.dictionaries(st.text(max_size=4), inner, max_size=3)
    return st.lists(
        st.tuples(st.sampled_from(["properties", "$defs", "dependentSchemas"]), keyed)
        | st.tuples(st.just("patternProperties"),
                    st.dictionaries(st.sampled_from(SCHEMA_PATTERNS), inner, max_size=2))
        | st.tuples(st.sampled_from(["items", "not", "additionalProperties", "contains",
                                     "propertyNames", "if", "then", "else",
                                     "unevaluatedProperties"]), inner)
        | st.tuples(st.sampled_from(["anyOf", "allOf", "oneOf", "prefixItems"]),
                    st.lists(inner, max_size=3))
        | st.tuples(st.sampled_from(["type", "minimum", "pattern"]), _schema_leaf),
        max_size=4).map(dict)


schemas = st.recursive(_schema_leaf, _compound, max_leaves=10)
_meta_scalars = (st.none() | st.booleans() | st.integers() | st.sampled_from(
    [10**300, -(10**300), 2**63, 0.1, 1e-308, 1.7e308, -0.0])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40) | st.sampled_from(["a@b.c", "2024-01-01T00:00:00Z", "::1",
                                              "a" * 40 + "!", "(", "[a-", "#/x"]))
metadata_values = st.recursive(
    _meta_scalars, lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=4), inner, max_size=4), max_leaves=12)
metadata_objects = st.dictionaries(st.sampled_from(["accuracy", "name", "a", ""])
                                   | st.text(max_size=4), metadata_values, max_size=5)


def proposal(metadata: dict[str, Any]) -> Proposal:
    """A commit proposal with ``metadata`` and nothing else of note."""
    from kirin._json import FrozenDict, FrozenList, freeze

    return Proposal(message="A proposal from the fuzzer", files=FrozenDict({"m.pt": "0" * 64}),
                    added=("m.pt",), removed=(), metadata=freeze(metadata), tags=FrozenList(),
                    author="fuzz")


class TestSchemaFuzz:
    """Random JSON Schemas: an invalid one is a PolicyError, a valid one never crashes the gate."""

    @settings(FUZZ, max_examples=100)
    @given(schemas, st.lists(metadata_objects, min_size=1, max_size=4))
    def test_random_schema_then_random_metadata(self, schema: Any,
                                                metadatas: list[dict[str, Any]]) -> None:
        """A random schema loads (and round-trips) or raises PolicyError; a loaded one judges
        random metadata with a report of printable violations."""
        result = outcome(json.dumps({"version": 1, "metadata": {"schema": schema}}))
        assert_clean(result)
        if isinstance(result, PolicyError):
            return
        for metadata in metadatas:
            report = evaluate_policy(result, proposal(metadata), [])
            for violation in report.violations:
                assert violation.rule == "metadata.schema"
                assert violation.message.encode("utf-8")

    @pytest.mark.parametrize("where", ["pattern", "patternProperties", "propertyNames",
                                       "nested"])
    @pytest.mark.parametrize("pattern", ["^(a+)+$", "(a|aa)+$", "(.*a){20}", "^(\\w+\\s?)*$",
                                         "(a*)*b", "^(x+x+)+y$", "(a)\\1"])
    def test_catastrophic_schema_patterns_are_refused_at_load(self, pattern: str,
                                                              where: str) -> None:
        """A schema regex with exponential backtracking is refused when the policy loads,
        naming its key path, wherever in the schema it sits."""
        at = {"type": "string", "pattern": pattern}
        schemas: dict[str, dict[str, Any]] = {
            "pattern": {"properties": {"name": at}},
            "patternProperties": {"patternProperties": {pattern: {"type": "number"}}},
            "propertyNames": {"propertyNames": at},
            "nested": {"$defs": {"n": {"anyOf": [{"items": at}]}}},
        }
        schema = schemas[where]
        result = outcome(json.dumps({"version": 1, "metadata": {"schema": schema}}))
        assert isinstance(result, PolicyError)
        assert result.key_path is not None and result.key_path.startswith("metadata.schema")
        assert "pattern" in str(result) or "backreference" in str(result)

    @pytest.mark.parametrize("subject", ["a" * 50_000 + "!", "1." * 25_000 + "x",
                                         "1.2.3-" + "a-" * 25_000 + "!"])
    def test_accepted_schema_patterns_stay_fast_on_hostile_metadata(self,
                                                                    subject: str) -> None:
        """The shipped model-card schema's patterns judge 50,000-character hostile strings in
        well under a second each."""
        root = Path(__file__).resolve().parent.parent
        card = json.loads((root / "schemas" / "model-card.schema.json").read_text())
        policy = load_policy_text(json.dumps({"version": 1, "metadata": {"schema": card}}))
        started = time.perf_counter()
        report = evaluate_policy(policy, proposal({
            "framework": subject, "version": subject, "timestamp": subject,
            subject[:1000] + "_recall": 5}), [])
        assert time.perf_counter() - started < 2
        assert {v.path for v in report.violations} >= {"framework", "version", "timestamp"}


# -- tag patterns --------------------------------------------------------------------------

_ATOMS = ["a", "b", "-", "\\.", "\\d", "\\w", "\\s", "[a-z]", "[^-]", ".", "x"]
_QUANTIFIERS = ["", "", "*", "+", "?", "{2,5}", "{0,}", "*?", "+?", "{3}"]


@st.composite
def regexes(draw: st.DrawFn, depth: int = 0) -> str:
    """A random regular expression built from atoms, groups, alternation and quantifiers."""
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        if depth < 3 and draw(st.integers(0, 3)) == 0:
            inner = draw(regexes(depth + 1))
            if draw(st.booleans()):
                inner += "|" + draw(regexes(depth + 1))
            atom = f"({inner})" if draw(st.booleans()) else f"(?:{inner})"
        else:
            atom = draw(st.sampled_from(_ATOMS))
        parts.append(atom + draw(st.sampled_from(_QUANTIFIERS)))
    return "".join(parts)


HOSTILE_TAGS = [ch * MAX_TAG_LENGTH for ch in "a-1x. "] + [
    (ch * MAX_TAG_LENGTH)[:-1] + "!" for ch in "a-1x. "] + [
    ("a-" * MAX_TAG_LENGTH)[:MAX_TAG_LENGTH - 1] + "!", ("ab" * 64)[:-1] + "!",
    ("1." * 64)[:-1] + "!"]


class _TooSlow(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float, message: str) -> Iterator[None]:
    """Fail with ``message`` if the block runs longer than ``seconds`` (``re`` checks signals,
    so even a catastrophic match is interrupted)."""
    def expire(signum: int, frame: Any) -> None:
        raise _TooSlow(message)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _TooSlow:
        pytest.fail(message)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class TestTagPatternFuzz:
    """A tag pattern is refused at load or matches any tag in bounded time."""

    @settings(FUZZ, max_examples=300, deadline=None)
    @given(regexes())
    def test_every_accepted_pattern_is_fast_on_hostile_tags(self, pattern: str) -> None:
        """Random regexes: whatever the checker admits matches the worst tags of maximum
        length in well under a second."""
        try:
            compiled = compile_pattern(pattern)
        except UnsafePatternError:
            return
        with time_limit(2.0, f"{pattern!r} was admitted but takes seconds to match"):
            for tag in HOSTILE_TAGS:
                compiled.fullmatch(tag)

    @pytest.mark.parametrize("pattern", [
        "(.?.?)+?", "\\w{2,5}(?:\\w?\\w)*", "(?:x|x)*", "-(-|-)*?\\w{3}x{2,5}",
        "(\\w\\w|\\w\\w)*?", "(-[a-z]{0,}|-[a-z]{0,}){0,}", "(a-*\\s{0,}|a-*\\s{0,}){0,}",
        "[^-]*?.([a-z]*[^-]*.+?\\d?|x-)?-{3}"])
    def test_slow_patterns_the_fuzzer_found_are_refused(self, pattern: str) -> None:
        """Patterns this fuzzer once found admitted yet slow (optional parts, duplicate
        alternatives, repeats chained through an alternation) stay refused."""
        with pytest.raises(UnsafePatternError):
            compile_pattern(pattern)

    @pytest.mark.parametrize("pattern", ["(ab|a)*c", "v\\d+(-alpha\\d*|-beta\\d*|-rc\\d*)?",
                                         "(dev|staging|prod)-\\d+", "v\\d+(\\.\\d+)?(\\.\\d+)?"])
    def test_unambiguous_alternations_stay_accepted(self, pattern: str) -> None:
        """Alternations that cannot match the same text two ways are still admitted."""
        compile_pattern(pattern)

    @pytest.mark.parametrize("key", ["patterns", "unique_patterns"])
    @pytest.mark.parametrize("pattern", ["(a+)+$", "(a|aa)+$", "(.*a){20}", "^(a+)+$",
                                         "(\\w+-?)*$"])
    def test_catastrophic_tag_patterns_in_a_policy_are_refused(self, key: str,
                                                               pattern: str) -> None:
        """Catastrophic tag patterns in a policy file are a PolicyError naming key and line."""
        text = f"version: 1\ntags:\n  {key}:\n    - '{pattern}'\n"
        result = outcome(text)
        assert isinstance(result, PolicyError)
        assert result.key_path == f"tags.{key}[0]" and result.line == 4


# -- hostile metadata ----------------------------------------------------------------------


def nested(levels: int, container: str = "dict") -> Any:
    """A value nested ``levels`` deep, built without recursion."""
    value: Any = "bottom"
    for _ in range(levels):
        value = {"a": value} if container == "dict" else [value]
    return value


def cycle() -> dict[str, Any]:
    looped: dict[str, Any] = {}
    looped["self"] = looped
    return looped


REFUSED_METADATA = [
    pytest.param({"x": nested(10_000)}, id="dict-10000-deep"),
    pytest.param({"x": nested(10_000, "list")}, id="list-10000-deep"),
    pytest.param({"x": nested(MAX_DEPTH + 1)}, id="one-level-too-deep"),
    pytest.param(cycle(), id="self-reference"),
    pytest.param({"x": 10**5000}, id="int-5000-digits"),
    pytest.param({"x": -(10**MAX_INT_DIGITS)}, id="int-4001-digits"),
    pytest.param({"x": float("nan")}, id="nan"),
    pytest.param({"x": [1, float("inf")]}, id="infinity-in-list"),
    pytest.param({"x": "ok\ud800"}, id="lone-surrogate-value"),
    pytest.param({"k\udfff": 1}, id="lone-surrogate-key"),
    pytest.param({"a": {"b": ["\ud83d"]}}, id="lone-surrogate-nested"),
    pytest.param({"x": "a" * MAX_METADATA_BYTES}, id="over-1-MiB"),
    pytest.param({1: "x"}, id="int-key"),
    pytest.param({("a",): "x"}, id="tuple-key"),
    pytest.param({"x": b"bytes"}, id="bytes"),
    pytest.param({"x": {1, 2}}, id="set"),
    pytest.param({"x": object()}, id="object"),
]
ACCEPTED_METADATA = [
    pytest.param({"x": nested(MAX_DEPTH - 1)}, id="deepest-allowed"),
    pytest.param({"x": 10**MAX_INT_DIGITS - 1, "y": -(10**MAX_INT_DIGITS) + 1},
                 id="int-4000-digits"),
    pytest.param({"x": "\U0001f600 \u00e9\u0301 \ufeff \x00 \u2028"}, id="odd-but-valid-text"),
    pytest.param({"": "", "k": {}, "l": []}, id="empty-key-and-values"),
    pytest.param({"x": "a" * (MAX_METADATA_BYTES - 20)}, id="just-under-1-MiB"),
    pytest.param({"f": 5e-324, "g": 1.7976931348623157e308, "h": -0.0}, id="float-extremes"),
    pytest.param({"t": (1, (2, "x"))}, id="tuples-become-lists"),
]


@pytest.fixture
def memory_root() -> Iterator[str]:
    """A fresh ``memory://`` registry root, removed afterwards."""
    prefix = f"/kirin-fuzz/{uuid.uuid4().hex}"
    yield f"memory:/{prefix}"
    with contextlib.suppress(FileNotFoundError):
        MemoryFileSystem().rm(prefix, recursive=True)


def listing(root: str) -> dict[str, bytes]:
    """Every object under a registry root (local folder or ``memory://``), with its bytes."""
    if root.startswith("memory:"):
        fs, base = MemoryFileSystem(), root.removeprefix("memory:/")
        return {p: fs.cat_file(p) for p in fs.find(base)} if fs.exists(base) else {}
    folder = Path(root)
    return {str(p): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def as_json(value: Any) -> str:
    return canonical_json(json.loads(json.dumps(value)))


class TestHostileMetadata:
    """Hostile metadata is refused with InvalidMetadataError writing nothing, or stored exactly."""

    @pytest.mark.parametrize("backend", ["local", "memory"])
    @pytest.mark.parametrize("metadata", REFUSED_METADATA)
    def test_refused_without_writing_anything(self, metadata: dict[Any, Any], backend: str,
                                              tmp_path: Path, workdir: Path,
                                              memory_root: str) -> None:
        """Unstorable metadata raises InvalidMetadataError with a printable message and leaves
        storage exactly as it was, on an empty registry and on one with commits."""
        root = str(tmp_path / "reg") if backend == "local" else memory_root
        src = write(workdir, "model.pt", b"weights")
        ds = Dataset(root, "ds")
        for populated in (False, True):
            before = listing(root)
            with pytest.raises(InvalidMetadataError) as info:
                ds.commit("hostile metadata", add_files={"m.pt": src}, metadata=metadata)
            assert str(info.value).encode("utf-8") and len(str(info.value)) < 2000
            assert listing(root) == before
            if not populated:
                ds.commit("fine", add_files={"first.pt": write(workdir, "first", b"1")})

    @pytest.mark.parametrize("metadata", ACCEPTED_METADATA)
    def test_extreme_but_valid_metadata_round_trips(self, metadata: dict[str, Any],
                                                    memory_root: str, workdir: Path) -> None:
        """Metadata at the limits is stored and a fresh reader gets exactly the same JSON."""
        ds = Dataset(memory_root, "ds")
        digest = ds.commit("edge", add_files={"m": write(workdir, "m", b"m")},
                           metadata=metadata)
        fresh = Dataset(memory_root, "ds").get_commit(digest)
        assert fresh is not None
        assert canonical_json(fresh.metadata) == as_json(metadata)

    @settings(FUZZ, max_examples=80)
    @given(st.dictionaries(st.text(st.characters(codec=None), max_size=4) | st.sampled_from(
        ["\ud800", "a\udc00"]), st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats()
            | st.sampled_from([10**MAX_INT_DIGITS, 10**MAX_INT_DIGITS - 1, -(10**4200)])
            | st.text(st.characters(codec=None), max_size=8)
            | st.sampled_from(["\ud800", "x\udfff", "\ud83d\ude00"]),
            lambda inner: st.lists(inner, max_size=3)
            | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=10),
        max_size=4))
    def test_random_metadata_is_stored_exactly_or_refused_cleanly(
            self, metadata: dict[str, Any]) -> None:
        """Random metadata (NaN, infinities, lone surrogates, huge ints included) is refused
        exactly when it is not storable JSON, and otherwise reads back identically."""
        prefix = f"/kirin-fuzz/{uuid.uuid4().hex}"
        fs = MemoryFileSystem()
        fs.pipe_file(f"{prefix}-src/m.pt", b"m")
        try:
            ds = Dataset(f"memory:/{prefix}", "ds")
            try:
                digest = ds.commit("random", add_files=[f"memory:/{prefix}-src/m.pt"],
                                   metadata=metadata)
            except InvalidMetadataError:
                assert not storable(metadata)
                assert not fs.exists(prefix)
                return
            assert storable(metadata)
            fresh = Dataset(f"memory:/{prefix}", "ds").get_commit(digest)
            assert fresh is not None and canonical_json(fresh.metadata) == as_json(metadata)
        finally:
            for path in (prefix, f"{prefix}-src"):
                with contextlib.suppress(FileNotFoundError):
                    fs.rm(path, recursive=True)


def storable(value: Any, depth: int = 0) -> bool:
    """The documented rule, written independently of the implementation."""
    def text_ok(text: str) -> bool:
        return not any(0xD800 <= ord(c) <= 0xDFFF for c in text)

    if depth > MAX_DEPTH:
        return False
    if isinstance(value, dict):
        return all(isinstance(k, str) and text_ok(k) and storable(v, depth + 1)
                   for k, v in value.items())
    if isinstance(value, list):
        return all(storable(v, depth + 1) for v in value)
    if isinstance(value, str):
        return text_ok(value)
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return bool(abs(value) < 10**MAX_INT_DIGITS)
    return value is None or isinstance(value, bool)


@pytest.mark.parametrize("query", ["x > 1e308", "x == 0.1", "x < -1", "x in [1, 2.5]",
                                   "x.a.a.a == 'bottom'", "y > 'a'", "'zz' in y",
                                   "exists(x.a) and not x != 1"])
@pytest.mark.parametrize("value", [10**MAX_INT_DIGITS - 1, -(10**3000), 5e-324,
                                   nested(MAX_DEPTH - 1), "z" * 100_000])
def test_queries_on_extreme_metadata_never_raise(query: str, value: Any) -> None:
    """Queries compare huge integers, tiny floats, deep objects and long strings without
    raising (the expression fuzz suite covers the parser itself)."""
    matches = compile_query(parse(query))
    assert matches({"x": value, "y": value}) in (True, False)
