"""Policy patterns are ASCII, and a unique tag cannot be carried twice by a look-alike.

``v1.0`` spelt with a mathematical bold one, fullwidth digits or Arabic-Indic
digits reads as ``v1.0`` but is another string: a search for ``v1.0`` never
finds it. Such tags must neither match ``v\\d+`` patterns nor get around
uniqueness.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from kirin.errors import PolicyError
from kirin.policy import evaluate_policy, load_policy_text
from kirin.policy._patterns import compile_pattern, tag_matches
from kirin.policy.gate import lookalike_key

from policy_helpers import Step, make_history, make_proposal

LOOKALIKES = ["v\U0001d7cf.0", "v\uff11.\uff10", "v\u0661.\u0660"]
VERSION = "v\\d+(\\.\\d+){0,2}"


def judge(policy_text: str, tags: list[str], earlier: list[list[str]] = (),  # type: ignore[assignment]
          metadata: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    policy = load_policy_text(policy_text)
    history = make_history(Step(f"commit {i}", {"m.pt": f"w{i}"}, tags=t)
                           for i, t in enumerate(earlier))
    report = evaluate_policy(policy, make_proposal("The next commit", {"m.pt": "w"},
                                                   metadata or {}, tags), history)
    return [(v.rule, v.path) for v in report.violations]


@pytest.mark.parametrize("tag", LOOKALIKES)
def test_look_alike_digits_do_not_match_digit_classes(tag: str) -> None:
    assert lookalike_key(tag) == "v1.0"
    assert not tag_matches(VERSION, tag)
    assert tag_matches(VERSION, "v1.0")
    assert compile_pattern("\\w+").fullmatch("caf\u00e9") is None
    assert compile_pattern("a\\sb").fullmatch("a\u00a0b") is None


@pytest.mark.parametrize("tag", LOOKALIKES)
def test_a_closed_vocabulary_refuses_look_alike_version_tags(tag: str) -> None:
    policy = f"version: 1\ntags:\n  allowed: [dev]\n  patterns: ['{VERSION}']\n"
    assert judge(policy, [tag]) == [("tags.allowed", tag)]
    assert judge(policy, ["v1.0"]) == []


OPEN_UNIQUE = f"version: 1\ntags:\n  unique_patterns: ['{VERSION}']\n  unique: [baseline]\n"


@pytest.mark.parametrize("tag", LOOKALIKES)
def test_a_look_alike_cannot_repeat_a_unique_tag(tag: str) -> None:
    assert judge(OPEN_UNIQUE, [tag], [["v1.0"]]) == [("tags.unique", tag)]
    policy = load_policy_text(OPEN_UNIQUE)
    history = make_history([Step("release", {"m.pt": "a"}, tags=["v1.0"])])
    report = evaluate_policy(policy, make_proposal("again", {"m.pt": "b"}, {}, [tag]),
                             history)
    (violation,) = report.violations
    assert "looks like tag 'v1.0'" in violation.message
    assert history[0].short_hash in violation.message


@pytest.mark.parametrize("tag", LOOKALIKES)
def test_the_real_tag_cannot_follow_a_look_alike(tag: str) -> None:
    assert judge(OPEN_UNIQUE, ["v1.0"], [[tag]]) == [("tags.unique", "v1.0")]
    other = LOOKALIKES[(LOOKALIKES.index(tag) + 1) % len(LOOKALIKES)]
    assert judge(OPEN_UNIQUE, [other], [[tag]]) == [("tags.unique", other)]


def test_a_unique_name_cannot_be_repeated_in_fullwidth_letters() -> None:
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in "baseline")
    assert judge(OPEN_UNIQUE, [fullwidth], [["baseline"]]) == [("tags.unique", fullwidth)]
    assert judge(OPEN_UNIQUE, ["baseline"], [[fullwidth]]) == [("tags.unique", "baseline")]


def test_look_alikes_of_tags_that_are_not_unique_are_left_alone() -> None:
    policy = "version: 1\ntags:\n  unique: [baseline]\n"
    assert judge(policy, LOOKALIKES, [["v1.0"], LOOKALIKES]) == []
    assert judge(policy, ["v1.0"], [["v1.0"]]) == []
    assert judge(OPEN_UNIQUE, ["v1.1"], [["v1.0"]]) == []  # different versions stay apart


SCHEMA_POLICY = {
    "version": 1,
    "metadata": {"schema": {
        "type": "object",
        "properties": {"build": {"type": "string", "pattern": "^\\d+$"}},
        "patternProperties": {"^v\\d+$": {"type": "integer"}},
        "additionalProperties": {"type": "string"},
    }},
}


@pytest.mark.parametrize(("metadata", "paths"), [
    ({"build": "12"}, []),
    ({"build": "\u0661\u0662"}, ["build"]),
    ({"build": "\uff11"}, ["build"]),
    ({"v1": 3}, []),
    ({"v1": "x"}, ["v1"]),
    ({"v\u0661": 3}, ['["v\u0661"]']),  # not a "v\d+" key: additionalProperties applies
    ({"v\u0661": "x"}, []),
])
def test_schema_regexes_are_ascii_too(metadata: dict[str, Any], paths: list[str]) -> None:
    policy = load_policy_text(json.dumps(SCHEMA_POLICY))
    report = evaluate_policy(policy, make_proposal("A message", {"m.pt": "w"}, metadata), [])
    assert sorted(v.path for v in report.violations) == paths


def test_a_pattern_violation_shows_the_pattern_as_written() -> None:
    policy = load_policy_text(json.dumps(SCHEMA_POLICY))
    report = evaluate_policy(policy, make_proposal("A message", {"m.pt": "w"},
                                                   {"build": "x1"}), [])
    (violation,) = report.violations
    assert violation.expected == 'pattern "^\\\\d+$"'
    assert "(?a)" not in violation.message and "'^\\\\d+$'" in violation.message
    assert "(?a)" not in policy.stored_text()


@pytest.mark.parametrize("pattern", ["(?u)\\d+", "(?u)v"])
def test_a_pattern_asking_for_unicode_classes_is_refused(pattern: str) -> None:
    with pytest.raises(PolicyError, match="invalid regular expression"):
        load_policy_text(json.dumps({"version": 1, "tags": {"patterns": [pattern]}}))
    schema = {"properties": {"x": {"pattern": pattern}}}
    with pytest.raises(PolicyError, match="invalid regular expression"):
        load_policy_text(json.dumps({"version": 1, "metadata": {"schema": schema}}))


def test_a_ref_into_pattern_properties_is_refused() -> None:
    schema = {"patternProperties": {"^a": {"type": "string"}},
              "properties": {"b": {"$ref": "#/patternProperties/^a"}}}
    with pytest.raises(PolicyError, match="patternProperties") as info:
        load_policy_text(json.dumps({"version": 1, "metadata": {"schema": schema}}))
    assert "metadata.schema.properties.b.$ref" in str(info.value)


@pytest.mark.parametrize("name", ["default", "enum", "const", "examples", "pattern"])
def test_a_property_named_like_a_keyword_is_still_checked(name: str) -> None:
    """Property names are data: the subschema under them is walked for patterns and
    formats like any other (an exponential pattern there would hang every commit)."""
    schema = {"properties": {name: {"type": "string", "pattern": "^(a+)+$"}}}
    with pytest.raises(PolicyError, match="exponential"):
        load_policy_text(json.dumps({"version": 1, "metadata": {"schema": schema}}))
    schema = {"properties": {name: {"type": "string", "format": "iri"}}}
    with pytest.raises(PolicyError, match="not supported"):
        load_policy_text(json.dumps({"version": 1, "metadata": {"schema": schema}}))
