"""The policy values (:mod:`kirin.policy.rules`) and the model that checks a file, in step.

A checked policy is built from its canonical data, whether it was just
checked or is known by its hash (:mod:`kirin.policy.stored`), so the values
must carry every field the model does and dump back to exactly the data they
were built from: otherwise a cached policy would judge differently, or hash
differently, from a freshly checked one.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from kirin.errors import PolicyError
from kirin.policy import Policy, load_policy, load_policy_text, rules
from kirin.policy import model as input_model

from policy_helpers import TEAM_POLICY


def _key() -> str:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    return public.public_bytes(serialization.Encoding.OpenSSH,
                               serialization.PublicFormat.OpenSSH).decode()


KEYS = [_key() for _ in range(3)]

#: Every section and every field of the format, at least once.
EVERYTHING: dict[str, Any] = {
    "version": 1,
    "description": "Every field — and a look-alike: ｐｒｏｄ",
    "metadata": {"schema": {"type": "object", "properties": {
        "accuracy": {"type": "number", "minimum": 0, "maximum": 1},
        "framework": {"enum": ["pytorch", "jax"]}, "validated": {"type": "boolean"}},
        "required": ["accuracy"]}},
    "tags": {"allowed": ["dev", "staging", "production", "approved", "recalled", "latest"],
             "patterns": ["v\\d+(\\.\\d+)*"], "unique": ["latest"],
             "unique_patterns": ["v\\d+(\\.\\d+)*"],
             "exclusive_groups": [["dev", "staging", "production"]]},
    "promotion": {
        "production": {"when": "accuracy >= 0.9 and validated == true",
                       "required_files": ["model.pt", "*.json"], "requires_stage": "staging",
                       "compare_files": ["model.pt"]},
        "staging": {"when": "accuracy >= 0.8"}},
    "message": {"min_length": 3, "max_length": 200, "forbidden": ["wip", "Changes"]},
    "stages": ["dev", "staging", "production"],
    "overrides": {"rules": ["promotion.*.when", "message.*"], "authors": ["alice"],
                  "reason_required": True},
    "signing": {
        "principals": {"alice": [KEYS[0]], "bob": [KEYS[1], KEYS[2]]},
        "groups": {"admins": ["alice", "bob"]},
        "revoked": ["SHA256:" + "A" * 43],
        "require": {"commit": ["admins"], "promote": {"production": ["alice"]},
                    "withdraw": ["admins"], "override": ["alice"],
                    "approvals": {"production": {"count": 1, "by": ["bob"],
                                                 "author_may_approve": False}},
                    "policy": {"by": ["admins"], "count": 2}}},
    "rollback": "allowed",
    "lineage": {"production": {"requires": [
        {"role": "training", "dataset": "sentiment-data", "tags": ["approved"],
         "stage": "production", "where": "rows > 1000", "not_tags": ["recalled"],
         "allow_withdrawn": True}], "code": True, "run": True}},
}

VALUE_CLASSES = [getattr(rules, name) for name in dir(rules)
                 if dataclasses.is_dataclass(getattr(rules, name))]


def _model_fields(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> data key, as the stored form has them (``schema_file`` is never stored)."""
    return {name: info.alias or name for name, info in model.model_fields.items()
            if not info.exclude}


def test_every_model_has_a_value_class_with_its_fields() -> None:
    models = {name: cls for name, cls in vars(input_model).items()
              if isinstance(cls, type) and issubclass(cls, BaseModel)
              and cls.__module__ == input_model.__name__ and not name.startswith("_")}
    assert sorted(models) == sorted(cls.__name__ for cls in VALUE_CLASSES)
    for value in VALUE_CLASSES:
        fields = {f.name: rules._KEYS.get(f.name, f.name) for f in dataclasses.fields(value)}
        assert fields == _model_fields(models[value.__name__]), value.__name__


def test_the_fullest_policy_round_trips_to_the_same_bytes_and_hash() -> None:
    text = json.dumps(EVERYTHING)
    policy = load_policy_text(text)
    data = json.loads(policy.stored_text())
    # every field is set, so a field the values forgot would be missing here
    assert data == json.loads(input_model.Policy.model_validate(EVERYTHING).model_dump_json(
        by_alias=True, exclude_none=True))
    again = Policy.from_data(data)
    assert again == policy and again.hash == policy.hash and type(again) is Policy
    assert again.stored_text() == policy.stored_text()
    assert load_policy_text(policy.stored_text()) == policy


def test_the_team_policy_round_trips() -> None:
    policy = load_policy(TEAM_POLICY)
    assert Policy.from_data(json.loads(policy.stored_text())) == policy
    assert load_policy_text(policy.to_text()) == policy


def _without(data: dict[str, Any], paths: list[tuple[str, ...]]) -> dict[str, Any]:
    """``data`` with the keys at ``paths`` left out (a policy using fewer features)."""
    copy = json.loads(json.dumps(data))
    for path in paths:
        node = copy
        for key in path[:-1]:
            node = node.get(key, {})
        node.pop(path[-1], None)
    return copy


OPTIONAL = [("description",), ("metadata",), ("metadata", "schema"), ("tags",),
            ("tags", "patterns"), ("tags", "unique"), ("tags", "exclusive_groups"),
            ("promotion",), ("promotion", "staging"), ("promotion", "production", "when"),
            ("message",), ("message", "forbidden"), ("stages",), ("overrides",),
            ("overrides", "authors"), ("signing",), ("signing", "groups"),
            ("signing", "require"), ("signing", "require", "approvals"), ("rollback",),
            ("lineage",), ("lineage", "production", "requires")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(OPTIONAL), max_size=8))
def test_policies_using_fewer_features_round_trip_exactly(dropped: list[tuple[str, ...]]
                                                           ) -> None:
    """Whatever subset of the format a policy uses, the values built from its canonical
    data dump back to that data, equal and with the same hash."""
    try:
        policy = load_policy_text(json.dumps(_without(EVERYTHING, dropped)))
    except PolicyError:
        return  # e.g. a signing group left naming nothing: refused, nothing to build
    text = policy.stored_text()
    again = Policy.from_data(json.loads(text))
    assert again == policy and again.hash == policy.hash
    assert again.stored_text() == text
    assert rules.to_data(again) == json.loads(text)


def test_values_are_frozen_and_hashable() -> None:
    policy = load_policy_text(json.dumps(EVERYTHING))
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.tags = rules.TagRules()  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy.promotion["dev"] = rules.PromotionRule()  # type: ignore[index]
    assert {policy: 1}[Policy.from_data(json.loads(policy.stored_text()))] == 1
    for value in (policy.tags, policy.message, policy.overrides, policy.metadata,
                  policy.promotion, policy.signing, policy.lineage):
        hash(value)


def test_value_field_types_are_immutable_containers() -> None:
    """No list or plain dict in a value: a rule read by the gate cannot be changed."""
    policy = load_policy_text(json.dumps(EVERYTHING))

    def walk(value: Any) -> None:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                walk(getattr(value, f.name))
        elif isinstance(value, dict):
            assert type(value).__name__ == "FrozenDict"
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            assert type(value).__name__ == "FrozenList"
            for item in value:
                walk(item)
        elif isinstance(value, tuple):
            for item in value:
                walk(item)

    walk(policy)
    assert typing.get_type_hints(rules.Policy)["promotion"].__name__ == "FrozenDict"
