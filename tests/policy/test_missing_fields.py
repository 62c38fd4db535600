"""A missing field fails a rule closed, through every connective, unless ``exists()`` decides.

Rules are read in three-valued logic: a test on a missing field is unknown,
``not`` keeps it unknown, ``and``/``or`` are Kleene's, and a rule holds only
when it is true. Queries keep two values: a missing field simply does not match.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kirin.policy import evaluate_policy, load_policy_text
from kirin.policy.expr import check, compile_query, evaluate, parse

from policy_helpers import make_proposal

CASES: list[tuple[str, dict[str, Any], bool, list[str]]] = [
    # text, metadata, rule holds, missing fields the rule names
    ("not (risk_level == 'high')", {}, False, ["risk_level"]),
    ("not (risk_level == 'high')", {"risk_level": "low"}, True, []),
    ("risk_level != 'high'", {}, False, ["risk_level"]),
    ("not risk_level in ['high', 'critical']", {}, False, ["risk_level"]),
    ("risk_level not in ['high']", {}, False, ["risk_level"]),
    ("not not (x == 1)", {}, False, ["x"]),
    ("not (x > 1 and y > 1)", {"y": 0}, True, []),  # y decides: false whatever x is
    ("not (x > 1 and y > 1)", {"y": 5}, False, ["x"]),
    ("not (x > 1 or y > 1)", {"y": 5}, False, []),  # y decides: the or is true
    ("not (x > 1 or y > 1)", {"y": 0}, False, ["x"]),
    ("x > 1 or y > 1", {"y": 2}, True, []),
    ("x > 1 or y > 1", {"y": 0}, False, ["x"]),
    ("x > 1 or y > 1", {}, False, ["x", "y"]),
    ("x > 1 and y > 1", {"y": 2}, False, ["x"]),
    ("exists(x) and x > 1", {}, False, ["x"]),
    ("exists(x) and x > 1", {"x": 2}, True, []),
    ("not exists(x) or x > 1", {}, True, []),
    ("not exists(x) or x > 1", {"x": 0}, False, []),
    ("not exists(x) or not (x == 'high')", {}, True, []),
    ("exists(x) and not (x == 'high')", {}, False, ["x"]),
    ("not (exists(x) and x == 'high')", {}, True, []),
    ("not (a.b == 1)", {"a": 5}, False, ["a.b"]),  # a step that is not an object
    ("not (x == null)", {"x": None}, False, []),  # a stored null is a value
    ("not (x == null)", {}, False, ["x"]),
]


def missing_named(failures: Any) -> list[str]:
    """The missing fields the failures name, causes of an ``or`` included."""
    names: list[str] = []
    for failure in failures:
        names += missing_named(failure.causes)
        if failure.missing and not failure.causes and failure.path not in names:
            names.append(failure.path)
    return names


@pytest.mark.parametrize(("text", "metadata", "holds", "missing"), CASES,
                         ids=[f"{c[0]} | {c[1]}" for c in CASES])
def test_rules_fail_closed_on_missing_fields(text: str, metadata: dict[str, Any],
                                             holds: bool, missing: list[str]) -> None:
    failures = check(parse(text), metadata)
    assert (failures == ()) is holds
    assert sorted(missing_named(failures)) == sorted(missing)
    for failure in failures:
        assert failure.message and failure.expected


def test_the_violation_says_which_field_is_missing_and_which_rule_needs_it() -> None:
    (failure,) = check(parse("not (risk_level == 'high')"), {})
    assert failure.missing and failure.path == "risk_level"
    assert failure.message == ("metadata field 'risk_level' is missing (required by: "
                               "not risk_level == 'high')")


@pytest.mark.parametrize("text", ["not (risk_level == 'high')", "risk_level != 'high'",
                                  "not risk_level in ['high']", "risk_level not in ['high']"])
def test_queries_keep_a_missing_field_as_no_match(text: str) -> None:
    """find_commits(where=...) semantics are unchanged: tests on a missing field are false."""
    tree = parse(text)
    negated = text.startswith("not ")
    assert evaluate(tree, {}) is negated
    assert compile_query(tree)({}) is negated


def test_a_promotion_rule_with_not_rejects_metadata_without_the_field() -> None:
    policy = load_policy_text("""\
version: 1
tags: {allowed: [production]}
promotion:
  production: {when: "not (risk_level == 'high')"}
""")

    def judge(metadata: dict[str, Any]) -> list[tuple[str, str]]:
        report = evaluate_policy(policy, make_proposal("Promote the model", {"m.pt": "w"},
                                                       metadata, ["production"]), [])
        return [(v.rule, v.path) for v in report.violations]

    assert judge({}) == [("promotion.production.when", "risk_level")]
    assert judge({"risk_level": "high"}) == [("promotion.production.when", "risk_level")]
    assert judge({"risk_level": "low"}) == []


FIELDS = ["x", "y"]
# no exists(): it observes absence itself, so filling a field in may rightly change it
leaves = st.sampled_from(["x > 1", "y > 1", "x == 'a'", "y in [1, 2]", "x != 0",
                          "y not in [3]", "x == null"])
exprs = st.recursive(leaves, lambda inner: st.one_of(
    inner.map(lambda e: f"not ({e})"),
    st.tuples(inner, inner).map(lambda p: f"({p[0]}) and ({p[1]})"),
    st.tuples(inner, inner).map(lambda p: f"({p[0]}) or ({p[1]})"),
), max_leaves=6)
values = st.sampled_from([0, 1, 2, 3, "a", "b", None, True])


@given(exprs, st.dictionaries(st.sampled_from(FIELDS), values))
def test_a_rule_that_holds_holds_whatever_the_missing_fields_would_be(
        text: str, metadata: dict[str, Any]) -> None:
    """Fail closed, exactly: a rule holds with fields missing only if it would hold for
    every value they could take (checked over a sample of values)."""
    tree = parse(text)
    if check(tree, metadata) != ():
        return
    absent = [f for f in FIELDS if f not in metadata]
    for filled in st_product(absent):
        completed = {**metadata, **filled}
        assert check(tree, completed) == (), (text, completed)
        assert evaluate(tree, completed)


def st_product(fields: list[str]) -> list[dict[str, Any]]:
    """Every way to give ``fields`` a value from a small sample."""
    sample = [0, 1, 2, 3, "a", None]
    out: list[dict[str, Any]] = [{}]
    for name in fields:
        out = [{**d, name: v} for d in out for v in sample]
    return out
