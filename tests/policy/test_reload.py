"""A ``Policy`` object is checked from its canonical text before it is stored or used.

``set_policy`` and ``Catalog.create_dataset(policy=...)`` take loaded policies
too; an object built by its constructor (which checks nothing) or by a lying
subclass must
meet exactly the checks a file meets, or a stored policy could hang or fail
every later commit in every process.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from kirin import Catalog
from kirin.errors import PolicyError
from kirin.policy import Policy, TagRules, load_policy_text
from kirin.policy.loader import reload_policy

GOOD = """\
version: 1
metadata:
  schema: {type: object, properties: {accuracy: {type: number}}}
tags:
  allowed: [dev, production]
  patterns: ['v\\d+']
  unique_patterns: ['v\\d+']
promotion:
  production: {when: "accuracy >= 0.9"}
"""


def constructed_with(pattern: str) -> Policy:
    """A Policy that skipped validation, holding ``pattern`` as a tag pattern."""
    return Policy(version=1, tags=TagRules(patterns=(pattern,)))


class LyingPolicy(Policy):
    """Reports a harmless policy through every method and attribute it can override."""

    def __getattribute__(self, name: str) -> Any:
        if name == "tags":
            return TagRules()
        return super().__getattribute__(name)

    def to_data(self) -> dict[str, Any]:
        return {"version": 1}

    def canonical_json(self) -> str:
        return '{"version":1}'

    def stored_text(self) -> str:
        return '{"version":1}'


def test_a_valid_policy_reloads_to_an_equal_policy_with_the_same_hash() -> None:
    policy = load_policy_text(GOOD)
    again = reload_policy(policy)
    assert again == policy and again.hash == policy.hash
    assert type(again) is Policy


def test_constructed_with_an_exponential_pattern_is_refused() -> None:
    with pytest.raises(PolicyError) as info:
        reload_policy(constructed_with("(a+)+$"))
    message = str(info.value)
    assert "tags.patterns[0]" in message and "exponential" in message
    assert "<Policy object>" in message


def test_constructed_with_a_wrong_type_is_refused_at_its_key() -> None:
    broken = Policy(version=1, tags={"allowed": 5})  # type: ignore[arg-type]
    with pytest.raises(PolicyError) as info:
        reload_policy(broken)
    assert "tags" in str(info.value) and "<Policy object>" in str(info.value)


@pytest.mark.parametrize("value", [object(), float("nan"), {1: "x", "a": "y"}])
def test_constructed_with_what_json_cannot_hold_is_refused(value: Any) -> None:
    with pytest.raises(PolicyError, match="cannot be read back as a policy"):
        reload_policy(Policy(version=1, description=value))


def test_constructed_with_a_wrong_version_is_refused() -> None:
    for version in (2, True, 1.0, "1"):
        with pytest.raises(PolicyError, match="version"):
            reload_policy(Policy(version=version))  # type: ignore[arg-type]


def test_a_lying_subclass_is_judged_by_its_fields_not_its_methods() -> None:
    liar = LyingPolicy(version=1, tags=TagRules(unique_patterns=("(a|aa)*$",)))
    assert liar.tags == TagRules() and liar.to_data() == {"version": 1}
    with pytest.raises(PolicyError, match="exponential"):
        reload_policy(liar)


def test_a_valid_subclass_instance_comes_back_as_a_plain_policy() -> None:
    good = load_policy_text(GOOD)
    liar = LyingPolicy(**{f.name: getattr(good, f.name) for f in dataclasses.fields(good)
                          if f.name != "tags"}, tags=good.tags)
    again = reload_policy(liar)
    assert type(again) is Policy
    assert again.tags.patterns == ("v\\d+",)  # its fields, not its to_data()


@pytest.mark.parametrize("make", [
    lambda: constructed_with("(a+)+$"),
    lambda: LyingPolicy(version=1, tags=TagRules(patterns=("(x\\w*)*",))),
])
def test_set_policy_and_create_dataset_store_nothing_unchecked(
        tmp_path: Path, make: Any) -> None:
    catalog = Catalog(tmp_path / "root")
    with pytest.raises(PolicyError):
        catalog.create_dataset("governed", policy=make())
    assert "governed" not in catalog.datasets()
    ds = catalog.create_dataset("open")
    with pytest.raises(PolicyError):
        ds.set_policy(make(), message="a policy that was never checked")
    assert ds.policy is None and ds.policy_history() == []


def test_set_policy_with_a_loaded_policy_stores_the_same_hash(tmp_path: Path) -> None:
    policy = load_policy_text(GOOD)
    ds = Catalog(tmp_path / "root").create_dataset("governed", policy=policy)
    assert ds.policy is not None and ds.policy.hash == policy.hash
