"""Rules cross-checked against the metadata schema: what cannot be produced, typos, types.

Each case is a schema and a rule; the assertion says which field is flagged,
how severely, and what the message suggests. The walk follows JSON Schema,
so the cases cover its applicators one by one.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from kirin.errors import PolicyError
from kirin.policy import load_policy, load_policy_text
from kirin.policy.crosscheck import (
    Finding,
    cross_check,
    errors,
    near_miss,
    refuse_errors,
    warnings,
)
from kirin.policy.loader import check_policy_file, parse_document, policy_lines

from policy_helpers import TEAM_POLICY

METRICS = {"type": "object", "properties": {
    "metrics": {"type": "object", "properties": {"auc": {"type": "number"},
                                                 "f1": {"type": "number"}}},
    "validated": {"type": "boolean"},
    "framework": {"type": "string"},
}}


def policy_text(schema: Any, *rules: str) -> str:
    lines = ["version: 1", "metadata:", f"  schema: {json.dumps(schema)}", "promotion:"]
    for index, rule in enumerate(rules):
        lines += [f"  stage{index}:", f"    when: {json.dumps(rule)}"]
    return "\n".join(lines) + "\n"


def check(schema: Any, *rules: str) -> tuple[Finding, ...]:
    text = policy_text(schema, *rules)
    return cross_check(load_policy_text(text), lines=parse_document(text)[1])


def flagged(schema: Any, *rules: str) -> dict[str, str]:
    """field -> severity of every finding."""
    return {f.field: f.severity for f in check(schema, *rules)}


# -- the issue's case, and the three outcomes -------------------------------------------
def test_a_typo_of_a_declared_name_is_an_error_even_under_an_open_object() -> None:
    (finding,) = check(METRICS, "metrics.acu >= 0.9")
    assert finding.severity == "error" and finding.field == "metrics.acu"
    assert finding.suggestion == "metrics.auc"
    assert "Did you mean 'metrics.auc'?" in finding.message
    assert finding.key_path == "promotion.stage0.when"
    assert finding.line == 6  # the line of the `when:` value


def test_declared_fields_raise_nothing() -> None:
    assert check(METRICS, "metrics.auc >= 0.9 and validated == true",
                 "framework in ['pytorch', 'jax'] and exists(metrics.f1)") == ()


def test_an_undeclared_field_under_an_open_object_is_a_warning() -> None:
    assert flagged(METRICS, "metrics.precision >= 0.8") == {"metrics.precision": "warning"}
    (finding,) = check(METRICS, "metrics.precision >= 0.8")
    assert "does not declare" in finding.message and finding.suggestion is None


def test_a_field_a_closed_object_does_not_declare_is_an_error() -> None:
    closed = {"type": "object", "additionalProperties": False,
              "properties": {"accuracy": {"type": "number"}}}
    (finding,) = check(closed, "precision >= 0.8")
    assert finding.severity == "error"
    assert "additionalProperties: false" in finding.message and "top level" in finding.message
    (typo,) = check(closed, "acuracy >= 0.8")
    assert typo.suggestion == "accuracy" and "cannot produce" in typo.message


def test_a_path_into_a_value_that_is_no_object_is_an_error() -> None:
    (finding,) = check(METRICS, "validated.by == 'qa'")
    assert finding.severity == "error" and finding.field == "validated.by"
    assert "'validated' is a boolean, not an object" in finding.message
    assert flagged({"type": "object", "properties": {"tags": {"type": "array"}}},
                   "tags.first == 'x'") == {"tags.first": "error"}


def test_no_schema_means_nothing_to_compare() -> None:
    policy = load_policy_text("version: 1\npromotion:\n  p:\n    when: 'anything > 1'\n")
    assert cross_check(policy) == ()


# -- JSON Schema applicators -------------------------------------------------------------
def test_refs_to_defs_are_followed() -> None:
    schema = {"type": "object", "properties": {"score": {"$ref": "#/$defs/metrics"}},
              "$defs": {"metrics": {"type": "object", "additionalProperties": False,
                                    "properties": {"auc": {"type": "number"}}}}}
    assert flagged(schema, "score.auc > 0.5") == {}
    assert flagged(schema, "score.roc > 0.5") == {"score.roc": "error"}


def test_pattern_properties_declare_matching_names() -> None:
    schema = {"type": "object", "additionalProperties": False,
              "patternProperties": {"_accuracy$": {"type": "number"}}}
    assert flagged(schema, "domain_accuracy > 0.5") == {}
    assert flagged(schema, "domain_recall > 0.5") == {"domain_recall": "error"}


def test_additional_properties_schema_makes_keys_data() -> None:
    """A map (additionalProperties: {schema}) has no names to declare: no warning, but
    its value type is still known, and a near miss of a declared sibling still fails."""
    schema = {"type": "object", "properties": {"scores": {
        "type": "object", "properties": {"overall": {"type": "number"}},
        "additionalProperties": {"type": "number"}}}}
    assert flagged(schema, "scores.german > 0.5") == {}
    assert flagged(schema, "scores.overal > 0.5") == {"scores.overal": "error"}
    assert flagged(schema, "scores.german == 'high'") == {"scores.german": "error"}


def test_all_of_branches_declare_and_any_closing_branch_closes() -> None:
    schema = {"type": "object", "allOf": [
        {"properties": {"a": {"type": "number"}}},
        {"properties": {"b": {"type": "number"}}}]}
    assert flagged(schema, "a > 1 and b > 1") == {}
    closing = {"type": "object", "properties": {"b": {}}, "allOf": [
        {"properties": {"a": {"type": "number"}}, "additionalProperties": False}]}
    # JSON Schema's classic trap: the branch's additionalProperties refuses 'b'
    assert flagged(closing, "b > 1") == {"b": "error"}


def test_any_of_admits_what_one_branch_admits() -> None:
    schema = {"anyOf": [
        {"type": "object", "properties": {"a": {"type": "number"}}, "additionalProperties": False},
        {"type": "object", "properties": {"b": {"type": "string"}}, "additionalProperties": False}]}
    assert flagged(schema, "a > 1 and b == 'x'") == {}
    assert flagged(schema, "c == 1") == {"c": "error"}


def test_unevaluated_properties_false_sees_through_applicators() -> None:
    schema = {"type": "object", "unevaluatedProperties": False,
              "allOf": [{"properties": {"a": {"type": "number"}}}],
              "then": {"properties": {"b": {"type": "number"}}}, "if": {"required": ["a"]}}
    assert flagged(schema, "a > 1 and b > 1") == {}
    assert flagged(schema, "c > 1") == {"c": "error"}


def test_what_the_walk_cannot_read_is_left_alone() -> None:
    """An anchor reference is not followed: no finding rather than a wrong one."""
    schema = {"type": "object", "additionalProperties": False,
              "properties": {"a": {"$ref": "#here"}},
              "$defs": {"x": {"$anchor": "here", "type": "object"}}}
    assert flagged(schema, "a.anything > 1") == {}


def test_a_recursive_schema_ends() -> None:
    schema = {"type": "object", "properties": {"child": {"$ref": "#"}, "v": {"type": "number"}},
              "additionalProperties": False}
    assert flagged(schema, "child.child.child.v > 1") == {}
    assert flagged(schema, "child.child.w > 1") == {"child.child.w": "error"}


# -- types -------------------------------------------------------------------------------
@pytest.mark.parametrize(("rule", "clash"), [
    ("framework >= 0.9", True),  # a string ordered against a number
    ("metrics.auc > 'high'", True),
    ("validated == 'yes'", True),  # a boolean is never equal to a string
    ("metrics.auc == 1", False),
    ("framework == 'pytorch'", False),
    ("framework != 1", False),  # != holds, whatever the types: not flagged
    ("validated == true", False),
])
def test_a_comparison_that_can_never_hold_is_an_error(rule: str, clash: bool) -> None:
    found = check(METRICS, rule)
    assert bool(found) is clash
    if clash:
        assert found[0].severity == "error" and "can never hold" in found[0].message


def test_integer_and_number_are_one_kind_for_comparisons() -> None:
    schema = {"type": "object", "properties": {"epochs": {"type": "integer"},
                                               "nullable": {"type": ["number", "null"]}}}
    assert check(schema, "epochs >= 2.5 and nullable == null and nullable > 1") == ()


# -- near misses -------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "meant"), [
    ("acu", "auc"), ("acuracy", "accuracy"), ("Accuracy", "accuracy"), ("f1_scor", "f1_score"),
    ("precison", "precision"), ("auc", None), ("loss", None), ("latency", None),
])
def test_near_miss(name: str, meant: str | None) -> None:
    assert near_miss(name, {"auc", "accuracy", "f1_score", "precision", "ab_"}) == meant


# -- reporting ---------------------------------------------------------------------------
def test_errors_come_before_warnings_and_refusal_names_the_first() -> None:
    found = check(METRICS, "metrics.precision > 0.5", "metrics.acu > 0.5 and framwork == 'x'")
    assert [f.severity for f in found] == ["error", "error", "warning"]
    assert len(errors(found)) == 2 and len(warnings(found)) == 1
    with pytest.raises(PolicyError) as caught:
        refuse_errors(found, source="team.yaml")
    assert caught.value.key_path == "promotion.stage1.when" and caught.value.line == 8
    assert "(1 more problem after this one)" in str(caught.value)
    assert str(caught.value).startswith("team.yaml:8, key promotion.stage1.when: ")
    refuse_errors(warnings(found))  # warnings alone: nothing raised


def test_the_team_policy_passes(tmp_path: Path) -> None:
    policy, warned = check_policy_file(TEAM_POLICY)
    assert warned == () and policy == load_policy(TEAM_POLICY)


def test_check_policy_file_locates_the_error(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent("""\
        version: 1
        metadata:
          schema:
            type: object
            properties:
              metrics: {type: object, properties: {auc: {type: number}}}
        promotion:
          production:
            when: >-
              metrics.acu >= 0.9
        """))
    with pytest.raises(PolicyError) as caught:
        check_policy_file(path)
    assert caught.value.file == str(path) and caught.value.line == 10
    assert policy_lines(path).line_for(("promotion", "production"), value=False) == 8
    assert policy_lines(tmp_path / "missing.yaml").keys == {}


def test_shared_definitions_are_walked_once() -> None:
    """$defs that each refer to the next twice: 2**15 paths, answered in linear time."""
    import time

    defs: dict[str, Any] = {
        f"d{i}": {"allOf": [{"$ref": f"#/$defs/d{i + 1}"}, {"$ref": f"#/$defs/d{i + 1}"}]}
        for i in range(15)}
    defs["d15"] = {"type": "object", "properties": {"a": {"type": "number"}},
                   "additionalProperties": False}
    started = time.perf_counter()
    assert flagged({"$ref": "#/$defs/d0", "$defs": defs}, "a > 1 and b > 2") == {"b": "error"}
    assert time.perf_counter() - started < 2
