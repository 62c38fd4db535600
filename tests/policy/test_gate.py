"""The gate rule by rule: what each rule reports, report values, audit, jsonschema parity."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from kirin._json import freeze
from kirin.errors import PolicyViolationError
from kirin.policy import (
    Policy,
    Report,
    Violation,
    audit,
    evaluate_policy,
    load_policy_text,
    proposal_from_commit,
)
from kirin.policy._formats import FORMAT_CHECKER

from policy_helpers import Step, content_hash, make_history, make_proposal


def policy_of(text: str) -> Policy:
    return load_policy_text(textwrap.dedent(text), source="test.yaml")


def pairs(report: Report) -> list[tuple[str, str]]:
    return sorted((v.rule, v.path) for v in report.violations)


def judge(policy: Policy, *, message: str = "A descriptive message", files: Any = None,
          metadata: Any = None, tags: Any = (), history: Any = ()) -> Report:
    files = {"m.pt": "w"} if files is None else files
    return evaluate_policy(policy, make_proposal(message, files, metadata or {}, tags),
                           history)


EMPTY = policy_of("version: 1\n")
VOCAB = policy_of("""\
    version: 1
    tags:
      allowed: [dev, staging, production, baseline, improved]
      patterns: ['v\\d+(\\.\\d+)*']
      unique: [baseline]
      unique_patterns: ['v\\d+(\\.\\d+)*']
      exclusive_groups: [[dev, staging, production], [baseline, improved]]
    """)


# -- no rules, open vocabulary --------------------------------------------------------

def test_empty_policy_accepts_anything() -> None:
    """A policy with no rules accepts any tags, metadata, files and message."""
    report = judge(EMPTY, message="", metadata={"accuracy": 7}, tags=["x", "y"], files={})
    assert report.ok and report.violations == () and report.policy_hash == EMPTY.hash


def test_open_vocabulary_still_enforces_uniqueness() -> None:
    """Without allowed names or patterns any tag is admitted, but unique rules hold."""
    policy = policy_of("version: 1\ntags:\n  unique_patterns: ['v\\d+']\n")
    history = make_history([Step("first commit here", {"a": "1"}, tags=["v1", "free"])])
    assert judge(policy, tags=["whatever", "free"], history=history).ok
    assert pairs(judge(policy, tags=["v1"], history=history)) == [("tags.unique", "v1")]


# -- tags ----------------------------------------------------------------------------

@pytest.mark.parametrize(("tags", "expected"), [
    (["dev"], []),
    (["v1"], []),
    (["v1.2.3"], []),
    (["v"], [("tags.allowed", "v")]),
    (["xv1"], [("tags.allowed", "xv1")]),          # whole-tag match, not search
    (["v1junk"], [("tags.allowed", "v1junk")]),
    (["Dev"], [("tags.allowed", "Dev")]),           # case-sensitive
    (["prod", "qa"], [("tags.allowed", "prod"), ("tags.allowed", "qa")]),
])
def test_vocabulary(tags: list[str], expected: list[tuple[str, str]]) -> None:
    """Tags are admitted by exact name or by a whole-tag pattern match, case-sensitively."""
    assert pairs(judge(VOCAB, tags=tags)) == sorted(expected)


def test_unknown_tag_message_quotes_tag_vocabulary_and_suggestion() -> None:
    """The message quotes the bad tag, suggests a near name and lists the vocabulary."""
    (violation,) = judge(VOCAB, tags=["prod"]).violations
    assert violation.message == (
        "Unknown tag 'prod'. Did you mean 'production'? Allowed tags are: dev, staging, "
        "production, baseline, improved; patterns: v\\d+(\\.\\d+)*")
    assert violation.value == "prod" and violation.expected.startswith("Allowed tags are")


@pytest.mark.parametrize(("earlier", "tags", "expected"), [
    ([["v1"]], ["v1"], [("tags.unique", "v1")]),
    ([["v1"]], ["v1.0"], []),                       # each version tag is its own value
    ([["baseline"]], ["baseline"], [("tags.unique", "baseline")]),
    ([["dev"]], ["dev"], []),                       # stages move freely
    ([["v1"], ["v2"]], ["v2", "v1"], [("tags.unique", "v1"), ("tags.unique", "v2")]),
    ([], ["v1", "v1"], []),                         # a repeat in one proposal is one tag
])
def test_unique_tags(earlier: list[list[str]], tags: list[str],
                     expected: list[tuple[str, str]]) -> None:
    """A unique tag (by name or pattern) already on an earlier commit is reported."""
    history = make_history(Step(f"commit number {i}", {"a": str(i)}, tags=t)
                           for i, t in enumerate(earlier))
    assert pairs(judge(VOCAB, tags=tags, history=history)) == sorted(expected)


def test_unique_message_names_the_earlier_commit() -> None:
    """The uniqueness message names the commit that already carries the tag."""
    history = make_history([Step("Release one", {"a": "1"}, tags=["v1"])])
    (violation,) = judge(VOCAB, tags=["v1"], history=history).violations
    assert history[0].short_hash in violation.message and "'Release one'" in violation.message


@pytest.mark.parametrize(("tags", "expected"), [
    (["dev", "baseline"], []),
    (["dev", "production"], [("tags.exclusive", "dev,production")]),
    (["production", "staging", "dev"], [("tags.exclusive", "dev,staging,production")]),
    (["dev", "staging", "baseline", "improved"],
     [("tags.exclusive", "dev,staging"), ("tags.exclusive", "baseline,improved")]),
])
def test_exclusive_groups(tags: list[str], expected: list[tuple[str, str]]) -> None:
    """Each group with more than one carried tag gives one violation naming them."""
    assert pairs(judge(VOCAB, tags=tags)) == sorted(expected)


# -- promotion --------------------------------------------------------------------------

PROMO = policy_of("""\
    version: 1
    promotion:
      production:
        when: "accuracy >= 0.9 and validated == true"
        required_files: ["*.pt", config.json]
        requires_stage: staging
      staging:
        requires_stage: dev
        compare_files: ["*.pt"]
    """)


def test_when_failures_carry_path_value_and_expectation() -> None:
    """Each failing part of a condition is one violation with its path and value."""
    report = judge(PROMO, tags=["production"], metadata={"accuracy": 0.5},
                   files={"m.pt": "w", "config.json": "c"})
    when = [v for v in report.violations if v.rule == "promotion.production.when"]
    assert [(v.path, v.value) for v in when] == [("accuracy", 0.5), ("validated", None)]
    assert when[0].expected == "accuracy >= 0.9"
    assert when[0].message.startswith(
        "Tag 'production' requires accuracy >= 0.9 and validated == true: ")
    assert "missing" in when[1].message


def test_when_with_or_gives_one_violation() -> None:
    """An unmet 'or' is a single violation (either branch would satisfy it)."""
    policy = policy_of('version: 1\npromotion:\n  p:\n    when: "a > 1 or b > 1"\n')
    report = judge(policy, tags=["p"], metadata={"a": 0, "b": 0})
    assert [v.rule for v in report.violations] == ["promotion.p.when"]
    assert judge(policy, tags=["p"], metadata={"a": 0, "b": 2}).ok


def test_promotion_applies_only_to_the_tag() -> None:
    """A commit without the promoted tag is not held to its rule."""
    assert judge(PROMO, tags=["other"], metadata={"accuracy": 0.1}, files={}).ok


@pytest.mark.parametrize(("files", "missing"), [
    ({"model.pt": "w", "config.json": "c"}, []),
    ({"sub/dir/model.pt": "w", "config.json": "c"}, []),   # '*' also matches '/'
    ({"model.PT": "w", "config.json": "c"}, ["*.pt"]),     # case-sensitive
    ({"model.pt": "w"}, ["config.json"]),
    ({}, ["*.pt", "config.json"]),
])
def test_required_files(files: dict[str, str], missing: list[str]) -> None:
    """Every required name or glob must match a file of the snapshot after the commit."""
    report = judge(PROMO, tags=["production"], files=files,
                   metadata={"accuracy": 1, "validated": True},
                   history=make_history([Step("staged files", files, tags=["staging"])]))
    got = [v.path for v in report.violations
           if v.rule == "promotion.production.required_files"]
    assert got == missing
    for violation in report.violations:
        if violation.rule.endswith("required_files"):
            assert violation.value == sorted(files)


STAGED = {"model.pt": "w1", "config.json": "c1"}


@pytest.mark.parametrize(("steps", "files", "ok"), [
    ([Step("staging it", STAGED, tags=["staging"])], STAGED, True),
    ([Step("staging it", STAGED, tags=["staging"]), Step("later", {"x": "1"})], STAGED, True),
    ([Step("staging it", STAGED, tags=["staging"])], {**STAGED, "README": "r"}, False),
    ([Step("staging it", STAGED, tags=["staging"])], {"model.pt": "w1"}, False),
    ([Step("staging it", STAGED, tags=["staging"])], {**STAGED, "model.pt": "w2"}, False),
    ([Step("staging it", {**STAGED, "x": "1"}, tags=["staging"])], STAGED, False),
    ([Step("dev only", STAGED, tags=["dev"])], STAGED, False),
    ([Step("renamed", {"model2.pt": "w1", "config.json": "c1"}, tags=["staging"])],
     STAGED, False),
    ([], STAGED, False),
])
def test_requires_stage_compares_whole_snapshot_by_default(
        steps: list[Step], files: dict[str, str], ok: bool) -> None:
    """Without compare_files, 'same content' means the same names and hashes, all of them."""
    report = judge(PROMO, tags=["production"], files=files,
                   metadata={"accuracy": 1, "validated": True}, history=make_history(steps))
    stage = [v for v in report.violations
             if v.rule == "promotion.production.requires_stage"]
    assert (not stage) is ok
    if stage:
        assert stage[0].path == "staging"


@pytest.mark.parametrize(("staged", "files", "ok"), [
    ({"m.pt": "w", "notes": "1"}, {"m.pt": "w", "notes": "2"}, True),
    ({"m.pt": "w"}, {"m.pt": "w", "extra.txt": "e"}, True),
    ({"m.pt": "w"}, {"m.pt": "w2"}, False),
    ({"m.pt": "w"}, {"m.pt": "w", "n.pt": "w"}, False),
    ({"notes": "1"}, {"notes": "1"}, False),      # nothing selected never counts
])
def test_requires_stage_with_compare_files(staged: dict[str, str], files: dict[str, str],
                                           ok: bool) -> None:
    """With compare_files only the matching files must be the same (and there must be some)."""
    report = judge(PROMO, tags=["staging"], files=files,
                   history=make_history([Step("dev build", staged, tags=["dev"])]))
    assert report.ok is ok, str(report)


def test_requires_stage_message_explains_the_nearest_miss() -> None:
    """The message counts the stage commits and names the latest and the differing file."""
    history = make_history([Step("stage one", STAGED, tags=["staging"]),
                            Step("stage two", {**STAGED, "model.pt": "w2"},
                                 tags=["staging"])])
    report = judge(PROMO, tags=["production"], files={**STAGED, "model.pt": "w3"},
                   metadata={"accuracy": 1, "validated": True}, history=history)
    (violation,) = report.violations
    assert "2 earlier commits are tagged 'staging'" in violation.message
    assert history[1].short_hash in violation.message
    assert "differs in model.pt" in violation.message
    assert violation.value == {"model.pt": content_hash("w3"),
                               "config.json": content_hash("c1")}


def test_requires_stage_counts_only_earlier_commits() -> None:
    """A proposal tagged with both stages does not satisfy its own requirement."""
    report = judge(PROMO, tags=["staging", "production"], files=STAGED,
                   metadata={"accuracy": 1, "validated": True})
    assert ("promotion.production.requires_stage", "staging") in pairs(report)


# -- metadata schema ---------------------------------------------------------------------

CARD = policy_of("""\
    version: 1
    metadata:
      schema:
        type: object
        required: [framework, "odd key"]
        properties:
          framework: {enum: [pytorch, sklearn]}
          accuracy: {type: number, minimum: 0, maximum: 1}
          hyperparameters:
            type: object
            required: [epochs]
            properties:
              epochs: {type: integer, minimum: 1}
          use_cases: {type: array, items: {type: string}}
          owner: {type: string, format: email}
          released: {type: string, format: date}
          "f1.score": {type: number}
    """)
CARD_OK = {"framework": "pytorch", "odd key": 1}


@pytest.mark.parametrize(("metadata", "expected"), [
    (CARD_OK, []),
    ({"odd key": 1}, ["framework"]),
    ({}, ["framework", '["odd key"]']),
    ({**CARD_OK, "accuracy": 1.5}, ["accuracy"]),
    ({**CARD_OK, "framework": "jax"}, ["framework"]),
    ({**CARD_OK, "hyperparameters": {"epochs": 0}}, ["hyperparameters.epochs"]),
    ({**CARD_OK, "hyperparameters": {}}, ["hyperparameters.epochs"]),
    ({**CARD_OK, "use_cases": ["a", 1, None]}, ["use_cases[1]", "use_cases[2]"]),
    ({**CARD_OK, "owner": "not-an-email"}, ["owner"]),
    ({**CARD_OK, "released": "2024-13-45"}, ["released"]),
    ({**CARD_OK, "released": "2024-02-29"}, []),
    ({**CARD_OK, "f1.score": "high"}, ['["f1.score"]']),
])
def test_schema_violation_paths(metadata: dict[str, Any], expected: list[str]) -> None:
    """One violation per jsonschema error, at the dotted path (missing keys named)."""
    report = judge(CARD, metadata=metadata)
    assert all(v.rule == "metadata.schema" for v in report.violations)
    assert sorted(v.path for v in report.violations) == sorted(expected)


def test_schema_violation_message_quotes_value_and_bound() -> None:
    """The schema message says where, and quotes jsonschema's account of the problem."""
    (violation,) = judge(CARD, metadata={**CARD_OK, "accuracy": 1.7}).violations
    assert violation.message == "Metadata accuracy: 1.7 is greater than the maximum of 1"
    assert violation.value == 1.7 and violation.expected == "maximum 1"


def test_missing_required_key_has_no_value() -> None:
    """A missing required key is reported at its own path with value None."""
    (violation,) = judge(CARD, metadata={"odd key": 1}).violations
    assert (violation.path, violation.value) == ("framework", None)
    assert "required" in violation.message


json_scalars = (st.none() | st.booleans() | st.integers(-10, 10)
                | st.floats(-2, 2, allow_nan=False) | st.sampled_from(
                    ["pytorch", "sklearn", "a@b.co", "nope", "2024-01-31", "", "x" * 9]))
KEYS = ["framework", "odd key", "accuracy", "hyperparameters", "epochs", "use_cases",
        "owner", "released", "f1.score", "other"]
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), children, max_size=5),
    max_leaves=20)
metadata_objects = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4),
                                   json_values, max_size=8)
#: Mostly-valid model cards, so that both verdicts are common.
near_cards = st.fixed_dictionaries(
    {"framework": st.sampled_from(["pytorch", "sklearn", "jax"]), "odd key": json_values},
    optional={
        "accuracy": st.floats(-0.5, 1.5, allow_nan=False) | json_scalars,
        "hyperparameters": st.fixed_dictionaries(
            {}, optional={"epochs": st.integers(-1, 3) | json_scalars, "lr": json_values}),
        "use_cases": st.lists(st.text(max_size=3) | json_scalars, max_size=3),
        "owner": st.sampled_from(["a@b.co", "nope", "x@y"]),
        "released": st.sampled_from(["2024-01-31", "2024-02-30", "31/01/2024"]),
        "f1.score": json_scalars,
    })


@settings(max_examples=300, deadline=None)
@given(near_cards | metadata_objects)
def test_schema_verdict_equals_jsonschema(metadata: dict[str, Any]) -> None:
    """For any metadata, the gate's schema verdict and error count equal jsonschema's."""
    schema = CARD.metadata.json_schema
    assert schema is not None
    validator = Draft202012Validator(schema, format_checker=FORMAT_CHECKER)
    report = judge(CARD, metadata=metadata)
    schema_violations = [v for v in report.violations if v.rule == "metadata.schema"]
    assert (not schema_violations) is validator.is_valid(metadata)
    assert len(schema_violations) == len(list(validator.iter_errors(metadata)))


# -- message ------------------------------------------------------------------------------

MESSAGES = policy_of("""\
    version: 1
    message:
      min_length: 10
      max_length: 40
      forbidden: ["Updated model", "Changes"]
    """)


@pytest.mark.parametrize(("message", "expected"), [
    ("Retrain on sentiment_v3", []),
    ("   padded but long enough   ", []),
    ("  short  ", ["message.min_length"]),
    ("x" * 41, ["message.max_length"]),
    ("Updated model", ["message.forbidden"]),
    ("UPDATED   model!", ["message.forbidden"]),
    ("updated model.", ["message.forbidden"]),
    ("Updated model weights", []),
    ("Changes", ["message.forbidden", "message.min_length"]),
    ("", ["message.min_length"]),
])
def test_message_rules(message: str, expected: list[str]) -> None:
    """Length counts the stripped message; forbidden ignores case, spacing and '.!'."""
    assert sorted(v.rule for v in judge(MESSAGES, message=message).violations) == expected


# -- report values ------------------------------------------------------------------------

def test_violations_are_immutable_hashable_and_json_ready() -> None:
    """Violations are frozen, values are read-only, and reports serialise to JSON."""
    report = judge(PROMO, tags=["production"], files={"a": "1"})
    violation = report.violations[0]
    with pytest.raises(AttributeError):
        violation.rule = "x"  # type: ignore[misc]
    hash(report)
    assert {hash(v) for v in report.violations}
    listed = next(v for v in report.violations if v.rule.endswith("required_files"))
    with pytest.raises(TypeError):
        listed.value.append("b")
    decoded = json.loads(json.dumps(report.to_dict()))
    assert decoded["ok"] is False and decoded["policy_hash"] == PROMO.hash
    assert set(decoded["violations"][0]) == {"rule", "path", "value", "expected", "message",
                                                 "source"}


def test_raise_for_violations() -> None:
    """A failing report raises PolicyViolationError carrying every violation."""
    report = judge(MESSAGES, message="Changes")
    with pytest.raises(PolicyViolationError) as info:
        report.raise_for_violations(dataset="models")
    assert info.value.violations == report.violations and info.value.dataset == "models"
    assert "2 violations" in str(info.value)
    judge(MESSAGES, message="A fine message here").raise_for_violations()


def test_report_text() -> None:
    """str(report) is a one-line OK or a list of rule-tagged messages."""
    assert str(judge(EMPTY)) == "OK: the commit satisfies the policy"
    text = str(judge(MESSAGES, message="Changes"))
    assert text.startswith("2 violations:\n  - [message.min_length] ")


def test_violation_order_follows_the_policy_sections() -> None:
    """Violations come in policy order: metadata, tags, promotion, message."""
    policy = policy_of("""\
        version: 1
        metadata: {schema: {required: [a]}}
        tags: {allowed: [p]}
        promotion: {p: {required_files: [x]}}
        message: {min_length: 50}
        """)
    report = judge(policy, tags=["q", "p"])
    assert [v.rule for v in report.violations] == [
        "metadata.schema", "tags.allowed", "promotion.p.required_files",
        "message.min_length"]


def test_gate_is_pure() -> None:
    """Judging twice gives equal reports and changes neither proposal nor history."""
    history = make_history([Step("staging it", STAGED, tags=["staging"])])
    proposal = make_proposal("Release", STAGED, {"accuracy": 0.1}, ["production"])
    before = (proposal, [c.to_dict() for c in history])
    first = evaluate_policy(PROMO, proposal, history)
    assert evaluate_policy(PROMO, proposal, iter(history)) == first
    assert (proposal, [c.to_dict() for c in history]) == before


# -- audit ----------------------------------------------------------------------------------

def test_audit_rejudges_each_commit_against_its_own_past() -> None:
    """audit() flags exactly the commits that break today's policy, history-aware."""
    policy = policy_of("""\
        version: 1
        tags:
          unique_patterns: ['v\\d+']
        promotion:
          production: {requires_stage: staging}
        message: {min_length: 5}
        """)
    history = make_history([
        Step("first release", {"m": "1"}, tags=["v1", "staging"]),
        Step("ship it", {"m": "1"}, tags=["production"]),
        Step("oops", {"m": "2"}, tags=["v1", "production"]),
        Step("again", {"m": "2"}, tags=["v2"]),
    ])
    results = audit(policy, history)
    assert [c for c, _ in results] == history
    assert [pairs(r) for _, r in results] == [
        [], [],
        [("message.min_length", "message"),
         ("promotion.production.requires_stage", "staging"), ("tags.unique", "v1")],
        [],
    ]


def test_audit_agrees_with_evaluate_policy() -> None:
    """Each audit report equals judging that commit's proposal on its prefix."""
    history = make_history([
        Step("initial staging", STAGED, {"accuracy": 0.95, "validated": True},
             ["staging"]),
        Step("release attempt", {**STAGED, "model.pt": "w2"}, {"accuracy": 0.5},
             ["production"]),
        Step("release", STAGED, {"accuracy": 0.95, "validated": True}, ["production"]),
    ])
    for i, (commit, report) in enumerate(audit(PROMO, history)):
        parent = history[i - 1] if i else None
        direct = evaluate_policy(PROMO, proposal_from_commit(commit, parent), history[:i])
        assert report == direct


def test_proposal_from_commit_derives_added_and_removed() -> None:
    """The proposal of a commit lists changed and new files as added, gone ones as removed."""
    parent, child = make_history([
        Step("one", {"a": "1", "b": "1", "c": "1"}),
        Step("two", {"a": "1", "b": "2", "d": "1"}, {"k": [1]}, ["t"]),
    ])
    proposal = proposal_from_commit(child, parent)
    assert proposal.added == ("b", "d") and proposal.removed == ("c",)
    assert proposal.files == {"a": content_hash("1"), "b": content_hash("2"),
                              "d": content_hash("1")}
    assert proposal.metadata == {"k": [1]} and list(proposal.tags) == ["t"]
    first = proposal_from_commit(parent, None)
    assert first.added == ("a", "b", "c") and first.removed == ()


def test_violation_freezes_its_value() -> None:
    """A Violation built with a mutable value holds a read-only copy."""
    value = {"a": [1]}
    violation = Violation("r", "p", value, "e", "m")
    value["a"].append(2)
    assert violation.value == freeze({"a": [1]})
