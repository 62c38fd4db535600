"""The gate judges exact builtins: a subclass's own ``__eq__``/``__hash__`` never decide.

A ``str`` subclass that claims to equal every string could pass as an allowed
tag, an enum value or a required key while its real text is what gets stored.
The gate reads every value of a proposal through the builtin types' own
methods and judges that text; a value of any other type is refused.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kirin._json import FrozenDict, FrozenList
from kirin.errors import InvalidInputError
from kirin.policy import Report, audit, evaluate_policy, load_policy_text
from kirin.values import Proposal

from policy_helpers import Step, make_history, make_proposal

POLICY = load_policy_text("""\
version: 1
metadata:
  schema:
    type: object
    required: [framework]
    properties:
      framework: {enum: [pytorch, sklearn]}
      epochs: {type: integer, maximum: 100}
tags:
  allowed: [dev, production]
  unique: [production]
promotion:
  production: {when: "accuracy >= 0.9 and stage == 'approved'"}
""")


class LiarStr(str):
    """Equal to everything, hashing like whatever it is compared with."""

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return hash("production")

    def __str__(self) -> str:
        return "production"

    def __contains__(self, item: object) -> bool:
        return True

    def __lt__(self, other: object) -> bool:
        return True

    __le__ = __gt__ = __ge__ = __lt__


class LiarInt(int):
    def __eq__(self, other: object) -> bool:
        return True

    def __ge__(self, other: object) -> bool:
        return True

    __le__ = __gt__ = __lt__ = __ge__

    def __hash__(self) -> int:
        return 0


class LiarFloat(float):
    def __ge__(self, other: object) -> bool:
        return True

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = float.__hash__


class LiarDict(dict):  # type: ignore[type-arg]
    """Shows a harmless card through every method; holds the real one."""

    def get(self, key: Any, default: Any = None) -> Any:
        return {"framework": "pytorch", "accuracy": 0.99, "stage": "approved"}.get(key)

    def items(self) -> Any:
        return {"framework": "pytorch"}.items()

    def keys(self) -> Any:
        return {"framework": "pytorch"}.keys()

    def __iter__(self) -> Any:
        return iter(["framework"])

    def __getitem__(self, key: Any) -> Any:
        return "pytorch"

    def __contains__(self, key: object) -> bool:
        return True


class LiarList(list):  # type: ignore[type-arg]
    def __iter__(self) -> Any:
        return iter(["dev"])

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = None  # type: ignore[assignment]


def judge(metadata: Any, tags: Any = (), history: Any = ()) -> Report:
    proposal = Proposal(message="A clear message", files=FrozenDict({"m.pt": "0" * 64}),
                        added=("m.pt",), removed=(), metadata=metadata,
                        # a plain (hostile) list on purpose: the gate must read any list
                        tags=tags if isinstance(tags, list) else FrozenList(tags),  # type: ignore[arg-type]
                        author="ci")
    return evaluate_policy(POLICY, proposal, history)


def pairs(report: Report) -> list[tuple[str, str]]:
    return sorted((v.rule, v.path) for v in report.violations)


OK = FrozenDict({"framework": "pytorch", "accuracy": 0.95, "stage": "approved"})


def test_a_lying_tag_is_judged_by_its_real_text() -> None:
    report = judge(OK, [LiarStr("prod-hack")])
    assert pairs(report) == [("tags.allowed", "prod-hack")]
    assert type(report.violations[0].value) is str


def test_a_lying_tag_cannot_claim_a_unique_tag_is_free() -> None:
    history = make_history([Step("first release", {"m.pt": "a"}, tags=["production"])])
    assert pairs(judge(OK, [LiarStr("production")], history)) == [
        ("tags.unique", "production")]


def test_a_lying_tag_in_the_history_is_read_by_its_real_text() -> None:
    history = make_history([Step("first release", {"m.pt": "a"},
                                 tags=[LiarStr("production")])])
    assert pairs(judge(OK, ["production"], history)) == [("tags.unique", "production")]
    assert pairs(judge(OK, ["dev"], history)) == []


def test_a_lying_enum_value_is_judged_by_its_real_text() -> None:
    assert pairs(judge(FrozenDict({"framework": LiarStr("jax")}))) == [
        ("metadata.schema", "framework")]


def test_a_lying_key_does_not_stand_in_for_a_required_one() -> None:
    assert pairs(judge(FrozenDict({LiarStr("other"): "pytorch"}))) == [
        ("metadata.schema", "framework")]


@pytest.mark.parametrize(("field", "value", "path"), [
    ("accuracy", LiarFloat(0.1), "accuracy"),
    ("accuracy", LiarInt(0), "accuracy"),
    ("stage", LiarStr("rejected"), "stage"),
])
def test_lying_values_in_a_promotion_rule_are_judged_by_their_value(
        field: str, value: Any, path: str) -> None:
    metadata = FrozenDict({**OK, field: value})
    assert pairs(judge(metadata, ["production"])) == [("promotion.production.when", path)]


def test_a_lying_int_is_judged_by_its_value_in_the_schema() -> None:
    assert pairs(judge(FrozenDict({**OK, "epochs": LiarInt(1000)}))) == [
        ("metadata.schema", "epochs")]


def test_a_lying_dict_is_read_through_its_storage() -> None:
    hidden = LiarDict({"framework": "jax", "accuracy": 0.1})
    assert pairs(judge(hidden, ["production"])) == [
        ("metadata.schema", "framework"), ("promotion.production.when", "accuracy"),
        ("promotion.production.when", "stage")]


def test_a_lying_tag_list_is_read_through_its_storage() -> None:
    assert pairs(judge(OK, LiarList(["staging-hack"]))) == [("tags.allowed", "staging-hack")]


@pytest.mark.parametrize("value", [object(), b"bytes", {1, 2}, 1j])
def test_a_value_that_is_not_json_is_refused_by_the_gate(value: Any) -> None:
    with pytest.raises(InvalidInputError, match="cannot judge"):
        judge(FrozenDict({**OK, "extra": FrozenList([value])}))


def test_a_tag_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="a tag must be a string"):
        judge(OK, FrozenList([5]))


def test_audit_reads_lying_values_the_same_way() -> None:
    history = make_history([Step("first release", {"m.pt": "a"}, tags=["production"],
                                 metadata={"framework": "pytorch", "accuracy": 0.99,
                                           "stage": "approved"}),
                            Step("a hostile one", {"m.pt": "b"}, tags=[LiarStr("hack")],
                                 metadata=OK)])
    results = audit(POLICY, history)
    assert [pairs(r) for _, r in results] == [[], [("tags.allowed", "hack")]]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from([0.5, 0.95])
    | st.sampled_from(["pytorch", "jax", "approved", "x"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["framework", "accuracy", "stage", "epochs"]), inner,
                      max_size=3), max_leaves=8)
cards = st.dictionaries(st.sampled_from(["framework", "accuracy", "stage", "epochs"]),
                        json_values, max_size=4)


class SneakyKey(str):
    """A key that lies about its text (eq/hash stay honest, so a dict can hold several)."""

    def __str__(self) -> str:
        return "framework"

    def __repr__(self) -> str:
        return "'framework'"


def disguise(value: Any) -> Any:
    """The same value with every str, int (not bool), float, dict and list a liar."""
    if isinstance(value, str):
        return LiarStr(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return LiarInt(value)
    if isinstance(value, float):
        return LiarFloat(value)
    if isinstance(value, dict):
        return LiarDict({SneakyKey(k): disguise(v) for k, v in value.items()})
    return LiarList([disguise(v) for v in value])


@given(cards, st.lists(st.sampled_from(["dev", "production", "other"]), max_size=2))
def test_disguised_values_get_the_verdict_of_the_plain_ones(
        card: dict[str, Any], tags: list[str]) -> None:
    plain = evaluate_policy(POLICY, make_proposal("A clear message", {"m.pt": "x"}, card,
                                                  tags), [])
    disguised = judge(disguise(card), LiarList([LiarStr(t) for t in tags]))
    assert plain.violations == disguised.violations


@pytest.mark.parametrize(("text", "metadata"), [
    ("stage == 'approved'", {"stage": LiarStr("rejected")}),
    ("stage in ['approved']", {"stage": LiarStr("rejected")}),
    ("'approved' in stage", {"stage": LiarStr("rejected")}),
    ("accuracy >= 0.9", {"accuracy": LiarFloat(0.1)}),
    ("epochs == 10", {"epochs": LiarInt(3)}),
    ("exists(stage)", LiarDict({"other": 1})),
])
def test_the_rule_checker_judges_exact_builtins(text: str, metadata: Any) -> None:
    from kirin.policy.expr import check, parse

    assert check(parse(text), metadata) != ()
