"""Loading policies: valid files, the self-contained stored form, and every bad input.

Each bad input gets its own test asserting what the error says: the file, the
dotted key path, the line (and the column for expressions).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import textwrap
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ValidationError

from kirin.errors import ExpressionSyntaxError, PolicyError
from kirin.policy import Policy, load_policy, load_policy_text
from kirin.policy._patterns import MAX_TAG_LENGTH, UnsafePatternError, compile_pattern
from kirin.policy.loader import FOREIGN_ERRORS, MAX_NODES, translate_error

from policy_helpers import TEAM_POLICY

SCHEMA = {"type": "object", "required": ["framework"],
          "properties": {"accuracy": {"type": "number", "minimum": 0, "maximum": 1}}}

BASE = """\
version: 1
metadata:
  schema:
    type: object
    properties:
      accuracy: {type: number, minimum: 0, maximum: 1}
tags:
  allowed: [dev, staging, production]
  patterns: ['v\\d+\\.\\d+']
  unique_patterns: ['v\\d+\\.\\d+']
  exclusive_groups: [[dev, staging, production]]
promotion:
  production:
    when: "accuracy >= 0.9"
    required_files: ["*.pt"]
    requires_stage: staging
message:
  min_length: 10
  forbidden: [Changes]
"""


def load(text: str, **kwargs: Any) -> Policy:
    return load_policy_text(textwrap.dedent(text), source="team.yaml", **kwargs)


def error_of(text: str, **kwargs: Any) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        load(text, **kwargs)
    return info.value


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# -- valid policies ---------------------------------------------------------------

def test_base_policy_loads_into_models() -> None:
    """A complete policy loads into frozen models with every section filled in."""
    policy = load(BASE)
    assert policy.version == 1
    assert policy.tags.allowed == ("dev", "staging", "production")
    assert policy.tags.exclusive_groups == (("dev", "staging", "production"),)
    assert policy.promotion["production"].requires_stage == "staging"
    assert policy.metadata.json_schema is not None
    assert policy.metadata.json_schema["properties"]["accuracy"]["maximum"] == 1
    assert policy.message.forbidden == ("Changes",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.version = 2  # type: ignore[misc,assignment]  # assigning a frozen field, on purpose
    with pytest.raises(TypeError):
        policy.promotion["dev"] = policy.promotion["production"]  # type: ignore[index]
    with pytest.raises(TypeError):
        policy.metadata.json_schema["type"] = "array"  # type: ignore[index]


def test_minimal_policy_has_no_rules() -> None:
    """``version: 1`` alone is a valid policy with an open vocabulary and no rules."""
    policy = load("version: 1\n")
    assert not policy.tags.closed and policy.tags.admits("anything")
    assert policy.metadata.json_schema is None and dict(policy.promotion) == {}


def test_team_policy_example_loads_with_schema_embedded() -> None:
    """The example team policy loads and embeds the model-card schema it references."""
    policy = load_policy(TEAM_POLICY)
    card = json.loads((TEAM_POLICY.parent / "schemas" / "model-card.schema.json")
                      .read_text(encoding="utf-8"))
    assert policy.metadata.json_schema == card
    assert "schema_file" not in policy.stored_text()
    assert policy.promotion["production"].compare_files == ("*.pt", "*.json")


def test_stored_text_is_self_contained_and_hashed() -> None:
    """The stored text loads with no folder, and the hash is the SHA-256 of its bytes."""
    policy = load_policy(TEAM_POLICY)
    stored = policy.stored_text()
    again = load_policy_text(stored)  # no base_dir: nothing to resolve
    assert again == policy and again.hash == policy.hash
    assert hashlib.sha256(stored.encode()).hexdigest() == policy.hash
    assert stored == policy.canonical_json()
    assert json.loads(stored)["metadata"]["schema"]["required"] == ["framework"]


def test_equality_and_hash_do_not_depend_on_cached_hash() -> None:
    """Policies compare by content whether or not their hash was computed."""
    first, second = load(BASE), load(BASE)
    assert first.hash == second.hash
    assert first == load(BASE) and load(BASE) == first and hash(first) == hash(second)
    changed = dataclasses.replace(first, description="changed")
    assert changed.hash != first.hash and changed != first


def test_readable_text_round_trips() -> None:
    """``to_text()`` is YAML that loads back into an equal policy."""
    policy = load_policy(TEAM_POLICY)
    text = policy.to_text()
    assert text.startswith("version: 1\n")
    assert load_policy_text(text) == policy


def test_hash_ignores_formatting_and_schema_source(tmp_path: Path) -> None:
    """Comments, key order, flow style and inline-vs-file schema do not change the hash."""
    write(tmp_path, "schemas/card.json", json.dumps(SCHEMA))
    from_file = load_policy(write(tmp_path, "p.yaml", """\
        # a comment
        tags: {allowed: [a, b]}
        metadata:
          schema_file: schemas/card.json
        version: 1
        """))
    inline = load("""\
        version: 1
        metadata:
          schema:
            properties:
              accuracy:
                maximum: 1
                minimum: 0
                type: number
            required:
              - framework
            type: object
        tags:
          allowed:
            - a
            - b
        """)
    assert from_file == inline and from_file.hash == inline.hash
    assert load("version: 1\ntags: {allowed: [b, a]}\n").hash != load(
        "version: 1\ntags: {allowed: [a, b]}\n").hash


def test_json_policy_text_is_read_as_json() -> None:
    """Text starting with '{' is JSON, so 1e-05 stays a number (YAML 1.1 would say str)."""
    text = json.dumps({"version": 1, "metadata": {"schema": {
        "type": "object", "properties": {"lr": {"type": "number", "minimum": 1e-05}}}}})
    policy = load_policy_text(text)
    assert policy.metadata.json_schema is not None
    assert policy.metadata.json_schema["properties"]["lr"]["minimum"] == 1e-05


def test_yaml_flow_mapping_is_still_yaml() -> None:
    """Text starting with '{' that is not JSON is read as a YAML flow mapping."""
    assert load("{version: 1, tags: {allowed: [dev]}}").tags.allowed == ("dev",)
    err = error_of("{version: 1, tagz: {}}")
    assert err.key_path == "tagz" and err.line == 1


def test_yaml_dates_stay_strings() -> None:
    """An unquoted date in YAML is kept as the string it reads as, as JSON would."""
    policy = load("""\
        version: 1
        metadata:
          schema: {properties: {released: {const: 2024-01-31}}}
        """)
    assert policy.metadata.json_schema is not None
    assert policy.metadata.json_schema["properties"]["released"]["const"] == "2024-01-31"


def test_load_policy_accepts_str_and_pathlike(tmp_path: Path) -> None:
    """``load_policy`` takes a str or a Path and names the file in errors."""
    path = write(tmp_path, "p.yaml", "version: 1\n")
    assert load_policy(str(path)) == load_policy(path)


# -- round trips (hypothesis) ---------------------------------------------------------

NAMES = ["dev", "staging", "production", "baseline", "exp-1", "on", "null", "1.5"]
PATTERNS = [r"v\d+\.\d+", r"[a-z]+(-[a-z0-9]+)*", r"release-\d{4}", r"(?i)hotfix-\w+"]
EXPRESSIONS = ["accuracy >= 0.9", "validated == true and f1_score > 0.5",
               "exists(hyperparameters.lr) or not (framework in ['jax', 'tf'])",
               "metrics.`f1-score` >= 1e-3"]
json_scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8))
json_values = st.recursive(json_scalars, lambda children: st.lists(children, max_size=3)
                           | st.dictionaries(st.text(max_size=6), children, max_size=3),
                           max_leaves=12)


@st.composite
def policy_documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {"version": 1}
    allowed = draw(st.lists(st.sampled_from(NAMES), unique=True, min_size=2))
    if draw(st.booleans()):
        doc["description"] = draw(st.text(max_size=30))
    if draw(st.booleans()):
        doc["metadata"] = {"schema": {
            "type": "object",
            "properties": {"x": {"default": draw(json_values)},
                           "y": {"const": draw(json_values)},
                           "z": {"type": "number", "minimum": draw(
                               st.floats(-1e9, 1e9) | st.integers(-5, 5))}},
            "examples": [draw(json_values)],
        }}
    tags: dict[str, Any] = {"allowed": allowed}
    if draw(st.booleans()):
        tags["patterns"] = draw(st.lists(st.sampled_from(PATTERNS), max_size=2))
    tags["unique"] = draw(st.lists(st.sampled_from(allowed), unique=True))
    tags["exclusive_groups"] = draw(st.lists(
        st.lists(st.sampled_from(allowed), unique=True, min_size=2), max_size=2))
    doc["tags"] = tags
    promotion = {}
    for tag in draw(st.lists(st.sampled_from(allowed), unique=True, max_size=3)):
        rule: dict[str, Any] = {}
        if draw(st.booleans()):
            rule["when"] = draw(st.sampled_from(EXPRESSIONS))
        rule["required_files"] = draw(st.lists(st.sampled_from(["*.pt", "model.onnx"])))
        stages = [t for t in allowed if t != tag]
        if draw(st.booleans()):
            rule["requires_stage"] = draw(st.sampled_from(stages))
            if draw(st.booleans()):
                rule["compare_files"] = ["*.pt"]
        promotion[tag] = rule
    doc["promotion"] = promotion
    low = draw(st.integers(0, 50))
    doc["message"] = {"min_length": low, "max_length": low + draw(st.integers(1, 50)),
                      "forbidden": draw(st.lists(st.text(min_size=1, max_size=12)))}
    return doc


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_documents())
def test_yaml_model_stored_text_round_trip(doc: dict[str, Any]) -> None:
    """YAML -> model -> stored text -> model (and -> readable YAML -> model) is the identity."""
    policy = load_policy_text(yaml.safe_dump(doc))
    assert load_policy_text(json.dumps(doc)) == policy
    stored = load_policy_text(policy.stored_text())
    assert stored == policy and stored.hash == policy.hash
    assert load_policy_text(policy.to_text()) == policy
    assert stored.stored_text() == policy.stored_text()


# -- bad input: one test each, asserting the message ----------------------------------

def test_malformed_yaml_names_line_column_and_key() -> None:
    """Broken YAML is a PolicyError naming file, line, column and the key being read."""
    err = error_of("""\
        version: 1
        tags:
          allowed: [dev, staging
          patterns: []
        """)
    assert err.file == "team.yaml" and err.line == 4 and err.column is not None
    assert err.key_path is not None and err.key_path.startswith("tags.allowed")
    assert str(err).startswith("team.yaml:4, key tags.allowed")
    assert "malformed YAML" in str(err)


def test_yaml_bomb_fails_fast_with_bounded_memory() -> None:
    """A 'billion laughs' document is refused quickly without expanding the aliases."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    text = "version: 1\ndescription: x\nbomb:\n" + "\n".join("  " + ln for ln in lines)
    tracemalloc.start()
    started = time.process_time()  # CPU time: other test workers on the cores do not count
    try:
        with pytest.raises(PolicyError) as info:
            load_policy_text(text, source="bomb.yaml")
        elapsed = time.process_time() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 5 and peak < 50 * 1024 * 1024
    assert info.value.file == "bomb.yaml" and info.value.line is not None
    assert info.value.key_path is not None and info.value.key_path.startswith("bomb.a")
    assert f"more than {MAX_NODES} values" in str(info.value)
    assert "YAML bomb" in str(info.value)


def test_recursive_alias_is_refused() -> None:
    """An anchor that contains its own alias is an error, not an endless walk."""
    err = error_of("version: 1\ndescription: &d [*d]\n")
    assert "recursive" in str(err) and err.key_path == "description[0]" and err.line == 2


def test_unknown_top_level_key_suggests_the_right_one() -> None:
    """An unknown key is an error with a 'did you mean' and the allowed keys."""
    err = error_of("version: 1\ntagz:\n  allowed: [dev]\n")
    assert err.key_path == "tagz" and err.line == 2 and err.file == "team.yaml"
    assert "unknown key 'tagz'. Did you mean 'tags'?" in str(err)
    assert "Allowed keys here: version, description, metadata, tags, promotion, message" \
        in str(err)


def test_unknown_nested_key_suggests_the_right_one() -> None:
    """A typo inside a promotion rule names the full key path and the rule's keys."""
    err = error_of(BASE.replace("    required_files:", "    required_file:"))
    assert err.key_path == "promotion.production.required_file" and err.line == 15
    assert "Did you mean 'required_files'?" in str(err)
    assert "when, required_files, requires_stage, compare_files" in str(err)


def test_wrong_type_names_key_line_and_value() -> None:
    """A value of the wrong type names its key, line, and quotes what was given."""
    err = error_of(BASE.replace("min_length: 10", "min_length: ten"))
    assert err.key_path == "message.min_length" and err.line == 18
    assert "valid integer" in str(err) and "'ten'" in str(err)


def test_wrong_type_in_list_names_the_item() -> None:
    """A non-string tag in a list names the item index (YAML 'on' is a boolean)."""
    err = error_of("version: 1\ntags:\n  allowed:\n    - dev\n    - on\n")
    assert err.key_path == "tags.allowed[1]" and err.line == 5
    assert "valid string" in str(err) and "True" in str(err)


def test_bool_is_not_a_version() -> None:
    """``version: true`` is refused although True == 1 in Python."""
    err = error_of("version: true\n")
    assert err.key_path == "version" and err.line == 1


def test_invalid_regex_names_pattern_and_line() -> None:
    """A pattern that does not compile is an error at its list item, quoting re's reason."""
    err = error_of(BASE.replace("patterns: ['v\\d+\\.\\d+']", "patterns: ['v(\\d+']"))
    assert err.key_path == "tags.patterns[0]" and err.line == 9
    assert "invalid regular expression" in str(err) and "missing )" in str(err)


def test_catastrophic_regex_is_refused() -> None:
    """A nested-quantifier pattern such as (a+)+ is refused at load time."""
    err = error_of(BASE.replace("unique_patterns: ['v\\d+\\.\\d+']",
                                "unique_patterns: ['(a+)+b']"))
    assert err.key_path == "tags.unique_patterns[0]" and err.line == 10
    assert "exponential time" in str(err)


def test_invalid_inline_json_schema_points_into_the_schema() -> None:
    """An invalid inline JSON Schema names the exact schema key and its line."""
    err = error_of(BASE.replace("maximum: 1}", "maximum: '1'}"))
    assert err.key_path == "metadata.schema.properties.accuracy.maximum"
    assert err.line == 6
    assert "invalid JSON Schema" in str(err) and "'1' is not of type 'number'" in str(err)


def test_invalid_json_schema_in_file_names_file_and_position(tmp_path: Path) -> None:
    """An invalid schema file is reported at schema_file, naming the file and position."""
    write(tmp_path, "schemas/card.json", '{"type": "objekt"}')
    path = write(tmp_path, "policy.yaml",
                 "version: 1\nmetadata:\n  schema_file: schemas/card.json\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    err = info.value
    assert err.file == str(path) and err.key_path == "metadata.schema_file"
    assert err.line == 3
    assert "'schemas/card.json' holds an invalid schema at type" in str(err)


def test_schema_file_that_is_not_json(tmp_path: Path) -> None:
    """A schema file that does not parse as JSON is named with its JSON position."""
    write(tmp_path, "card.json", '{"type": }')
    path = write(tmp_path, "policy.yaml", "version: 1\nmetadata:\n  schema_file: card.json\n")
    with pytest.raises(PolicyError, match=r"is not valid JSON: Expecting value at line 1"):
        load_policy(path)


def test_schema_file_missing(tmp_path: Path) -> None:
    """A schema file that does not exist is an error at schema_file with its line."""
    path = write(tmp_path, "policy.yaml",
                 "version: 1\nmetadata:\n  schema_file: schemas/nope.json\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    err = info.value
    assert err.file == str(path) and err.key_path == "metadata.schema_file"
    assert err.line == 3 and "'schemas/nope.json' not found" in str(err)


def test_schema_file_outside_folder_by_dotdot(tmp_path: Path) -> None:
    """A schema file reached through '..' is refused even though it exists."""
    write(tmp_path, "outside.json", json.dumps(SCHEMA))
    path = write(tmp_path, "policy/policy.yaml",
                 "version: 1\nmetadata:\n  schema_file: ../outside.json\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    err = info.value
    assert err.key_path == "metadata.schema_file" and err.line == 3
    assert "'../outside.json' is outside the policy's folder" in str(err)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_schema_file_outside_folder_by_symlink(tmp_path: Path) -> None:
    """A symlink inside the folder that points outside it is refused."""
    target = write(tmp_path, "secret/schema.json", json.dumps(SCHEMA))
    folder = tmp_path / "policy"
    folder.mkdir()
    (folder / "schema.json").symlink_to(target)
    path = write(folder, "policy.yaml", "version: 1\nmetadata:\n  schema_file: schema.json\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.key_path == "metadata.schema_file" and info.value.line == 3
    assert "outside the policy's folder" in str(info.value)


def test_schema_file_symlink_inside_folder_is_fine(tmp_path: Path) -> None:
    """A symlink that stays inside the policy's folder is followed."""
    write(tmp_path, "schemas/real.json", json.dumps(SCHEMA))
    (tmp_path / "link.json").symlink_to(tmp_path / "schemas" / "real.json")
    path = write(tmp_path, "p.yaml", "version: 1\nmetadata:\n  schema_file: link.json\n")
    assert load_policy(path).metadata.json_schema == SCHEMA


def test_schema_file_absolute_path_is_refused(tmp_path: Path) -> None:
    """An absolute schema path is refused: schema files are relative to the policy."""
    schema = write(tmp_path, "card.json", json.dumps(SCHEMA))
    path = write(tmp_path, "p.yaml", f"version: 1\nmetadata:\n  schema_file: '{schema}'\n")
    with pytest.raises(PolicyError, match="must be a relative path"):
        load_policy(path)


def test_schema_file_needs_a_folder_when_loading_text() -> None:
    """Text loaded without base_dir cannot use schema_file, and says how to fix it."""
    err = error_of("version: 1\nmetadata:\n  schema_file: card.json\n")
    assert err.key_path == "metadata.schema_file" and "pass base_dir" in str(err)


def test_schema_file_resolves_against_base_dir(tmp_path: Path) -> None:
    """load_policy_text(base_dir=...) resolves schema_file in that folder."""
    write(tmp_path, "card.json", json.dumps(SCHEMA))
    policy = load("version: 1\nmetadata:\n  schema_file: card.json\n", base_dir=tmp_path)
    assert policy.metadata.json_schema == SCHEMA


def test_schema_and_schema_file_together() -> None:
    """Giving both an inline schema and a schema file is an error."""
    err = error_of("version: 1\nmetadata:\n  schema: {}\n  schema_file: x.json\n")
    assert err.key_path == "metadata.schema_file" and "not both" in str(err)


def test_expression_syntax_error_names_line_and_column() -> None:
    """A broken promotion condition names file, key, line and the column in the text."""
    with pytest.raises(ExpressionSyntaxError) as info:
        load(BASE.replace('"accuracy >= 0.9"', '"accuracy >= 0.9 andd validated"'))
    err = info.value
    assert err.file == "team.yaml" and err.key_path == "promotion.production.when"
    assert err.line == 14 and err.column == 17
    assert "column 17" in str(err) and "team.yaml:14" in str(err)
    assert "accuracy >= 0.9 andd validated" in str(err)


def test_expression_error_in_block_scalar_uses_the_text_line() -> None:
    """For a folded (>) expression the line is where the text starts, not the '>'."""
    with pytest.raises(ExpressionSyntaxError) as info:
        load("""\
            version: 1
            promotion:
              production:
                when: >
                  accuracy >=
            """)
    assert info.value.line == 5 and info.value.key_path == "promotion.production.when"


def test_promotion_for_tag_outside_vocabulary() -> None:
    """A promotion rule for a tag the vocabulary refuses is an error with the vocabulary."""
    err = error_of(BASE.replace("  production:\n    when", "  prod:\n    when"))
    assert err.key_path == "promotion.prod" and err.line == 13
    assert "names tag 'prod', which is outside the tag vocabulary" in str(err)
    assert "Did you mean 'production'?" in str(err)
    assert "Allowed tags are: dev, staging, production; patterns: v\\d+\\.\\d+" in str(err)


def test_requires_stage_outside_vocabulary() -> None:
    """requires_stage naming an unknown tag points at that key."""
    err = error_of(BASE.replace("requires_stage: staging", "requires_stage: stagin"))
    assert err.key_path == "promotion.production.requires_stage" and err.line == 16
    assert "'stagin'" in str(err) and "Did you mean 'staging'?" in str(err)


def test_exclusive_group_member_outside_vocabulary() -> None:
    """An exclusive group naming an unknown tag points at that list item."""
    err = error_of(BASE.replace("[[dev, staging, production]]", "[[dev, qa]]"))
    assert err.key_path == "tags.exclusive_groups[0][1]" and err.line == 11
    assert "'qa'" in str(err)


def test_unique_name_outside_vocabulary() -> None:
    """tags.unique naming an unknown tag is an error at that item."""
    err = error_of("version: 1\ntags:\n  allowed: [a]\n  unique:\n    - a\n    - b\n")
    assert err.key_path == "tags.unique[1]" and err.line == 6


def test_requires_stage_of_itself() -> None:
    """A tag cannot require an earlier commit carrying the same tag."""
    err = error_of("version: 1\npromotion:\n  staging:\n    requires_stage: staging\n")
    assert err.key_path == "promotion.staging.requires_stage" and err.line == 4


def test_compare_files_without_requires_stage() -> None:
    """compare_files has no meaning without requires_stage and is refused."""
    err = error_of("version: 1\npromotion:\n  prod:\n    compare_files: ['*.pt']\n")
    assert err.key_path == "promotion.prod.compare_files" and err.line == 4


def test_min_length_above_max_length() -> None:
    """message.min_length greater than max_length is refused."""
    err = error_of("version: 1\nmessage:\n  min_length: 20\n  max_length: 10\n")
    assert err.key_path == "message.min_length" and err.line == 3


def test_exclusive_group_too_small() -> None:
    """An exclusive group of one tag is refused (it could never be broken)."""
    err = error_of("version: 1\ntags:\n  exclusive_groups: [[dev]]\n")
    assert err.key_path == "tags.exclusive_groups[0]" and err.line == 3


def test_remote_ref_in_schema_is_refused() -> None:
    """A $ref to another document is refused: the stored policy must be self-contained."""
    err = error_of("""\
        version: 1
        metadata:
          schema:
            properties:
              card: {$ref: 'https://example.com/card.json'}
        """)
    assert err.key_path == "metadata.schema.properties.card.$ref" and err.line == 5
    assert "not local" in str(err)


def test_dangling_local_ref_is_refused() -> None:
    """A local $ref to a missing definition is found at load time, not on commit."""
    err = error_of("version: 1\nmetadata:\n  schema: {$ref: '#/$defs/nope'}\n")
    assert err.key_path == "metadata.schema.$ref" and "points at nothing" in str(err)


def test_local_ref_to_defs_is_fine() -> None:
    """A local $ref to $defs is accepted."""
    policy = load("version: 1\nmetadata:\n  schema:\n    $ref: '#/$defs/card'\n"
                  "    $defs: {card: {type: object}}\n")
    assert policy.metadata.json_schema is not None


def test_other_schema_dialect_is_refused() -> None:
    """A schema declaring draft-07 is refused rather than silently read as 2020-12."""
    err = error_of("version: 1\nmetadata:\n  schema:\n"
                   "    $schema: 'http://json-schema.org/draft-07/schema#'\n")
    assert err.key_path == "metadata.schema.$schema" and "2020-12" in str(err)


def test_missing_version() -> None:
    """A policy without version says the key is required."""
    err = error_of("tags: {allowed: [a]}\n")
    assert err.key_path == "version" and "required key 'version' is missing" in str(err)


def test_unsupported_version() -> None:
    """A future format version is refused with the value quoted."""
    err = error_of("version: 2\n")
    assert err.key_path == "version" and err.line == 1 and "got 2" in str(err)


def test_empty_document() -> None:
    """An empty file is an error saying the policy is empty."""
    err = error_of("# nothing here\n")
    assert "the policy is empty" in str(err) and err.line == 1


def test_document_that_is_not_a_mapping() -> None:
    """A YAML list at the top is an error naming the expected keys."""
    err = error_of("- version\n- 1\n")
    assert "a list, not a mapping" in str(err) and "version, description" in str(err)


def test_duplicate_keys_are_refused() -> None:
    """A key given twice is an error naming both lines (pyyaml would keep the last)."""
    err = error_of("version: 1\ntags:\n  allowed: [a]\n  allowed: [b]\n")
    assert err.key_path == "tags.allowed" and err.line == 4
    assert "duplicate key 'allowed' (first on line 3)" in str(err)


def test_duplicate_keys_in_json_are_refused() -> None:
    """JSON text with a repeated key is refused too."""
    with pytest.raises(PolicyError, match="duplicate key 'version'"):
        load_policy_text('{"version": 1, "version": 1}')


def test_non_string_keys_are_refused() -> None:
    """A key YAML reads as a number or boolean must be quoted."""
    err = error_of("version: 1\npromotion:\n  1.5:\n    required_files: [a]\n")
    assert err.key_path == "promotion" and err.line == 3 and "quote it" in str(err)


def test_merge_keys_are_refused() -> None:
    """YAML merge keys ('<<') are refused with a clear message."""
    err = error_of("version: 1\nx: &x {a: 1}\nmessage:\n  <<: *x\n")
    assert err.line == 4 and "merge keys" in str(err)


def test_yaml_tags_beyond_json_are_refused() -> None:
    """Binary, sets and custom tags are not JSON and are refused."""
    err = error_of("version: 1\ndescription: !!binary aGVsbG8=\n")
    assert err.key_path == "description" and "unsupported YAML type" in str(err)


def test_infinity_is_refused() -> None:
    """.inf is not a JSON number and is refused at its key."""
    err = error_of("version: 1\nmetadata:\n  schema: {maximum: .inf}\n")
    assert err.key_path == "metadata.schema.maximum" and "finite" in str(err)


def test_oversized_document_is_refused() -> None:
    """A policy over the size limit is refused before parsing."""
    with pytest.raises(PolicyError, match="larger than"):
        load_policy_text("version: 1\n" + "#" * (1024 * 1024 + 10))


def test_deep_nesting_is_refused() -> None:
    """Deeply nested YAML or JSON fails with a PolicyError, never RecursionError."""
    with pytest.raises(PolicyError):
        load_policy_text("version: 1\ndescription: " + "[" * 5000 + "]" * 5000)
    with pytest.raises(PolicyError, match="nested"):
        load_policy_text('{"version": 1, "x": ' + "[" * 100 + "]" * 100 + "}")


def test_policy_file_missing(tmp_path: Path) -> None:
    """A missing policy file is a PolicyError naming it."""
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "nope.yaml")
    assert info.value.file == str(tmp_path / "nope.yaml") and "not found" in str(info.value)


def test_policy_file_not_utf8(tmp_path: Path) -> None:
    """A policy that is not UTF-8 is a PolicyError naming the file."""
    path = tmp_path / "p.yaml"
    path.write_bytes(b"version: 1\ndescription: \xff\xfe\n")
    with pytest.raises(PolicyError, match="not UTF-8") as info:
        load_policy(path)
    assert info.value.file == str(path)


def test_multiple_problems_report_the_first_and_count_the_rest() -> None:
    """Several problems give one error about the first, saying how many follow."""
    err = error_of("version: 1\nmessage:\n  min_length: x\n  max_length: y\n")
    assert err.key_path == "message.min_length" and "1 more problem" in str(err)


# -- the one boundary for foreign errors -------------------------------------------------

class _Model(BaseModel):
    x: int


def _pydantic_error() -> ValidationError:
    try:
        _Model.model_validate({"x": "nope"})
    except ValidationError as exc:
        return exc
    raise AssertionError("unreachable")


def _yaml_error() -> yaml.YAMLError:
    try:
        yaml.safe_load("a: [b")
    except yaml.YAMLError as exc:
        return exc
    raise AssertionError("unreachable")


def _json_error() -> json.JSONDecodeError:
    try:
        json.loads("{")
    except json.JSONDecodeError as exc:
        return exc
    raise AssertionError("unreachable")


FOREIGN_SAMPLES: list[BaseException] = [
    _yaml_error(), yaml.YAMLError("plain"), _json_error(), _pydantic_error(),
    SchemaError("bad schema"), re.error("bad regex"),
    UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
    OSError(13, "Permission denied"), RecursionError("deep"), ValueError("odd"),
    UnsafePatternError("slow"),
]


@pytest.mark.parametrize("exc", FOREIGN_SAMPLES, ids=lambda e: type(e).__name__)
def test_translate_error_maps_every_foreign_error(exc: BaseException) -> None:
    """Every foreign error type becomes a PolicyError naming the source."""
    out = translate_error(exc, source="p.yaml")
    assert isinstance(out, PolicyError) and out.file == "p.yaml" and str(out)


def test_translate_error_mapping_is_complete() -> None:
    """Each declared foreign error type has a sample above, so none is left unmapped."""
    covered = {t for t in FOREIGN_ERRORS if any(isinstance(e, t) for e in FOREIGN_SAMPLES)}
    assert covered == set(FOREIGN_ERRORS)


def test_translate_error_keeps_policy_errors() -> None:
    """A PolicyError passes through the boundary unchanged."""
    err = PolicyError("x", file="a")
    assert translate_error(err, source="b") is err


# -- safe patterns ---------------------------------------------------------------------

SAFE_PATTERNS = [r"^v\d+\.\d+(\.\d+)?(-[a-z0-9]+)?$", r"v\d+(\.\d+){0,2}(-[a-z0-9]+)?",
                 r"[a-z]+(-[a-z0-9]+)*", r"v\d+(\.\d+)*", r"(foo|bar)", r"feature-.+",
                 r".*a.*b.*", r"(?i)release-\d+", r"(a|b)+", r"(ab|a)*c"]
UNSAFE_PATTERNS = [r"(a+)+", r"(a|aa)*", r"(a*)*", r"(\w+\s?)*", r"(x\w*)*",
                   r"(.*a){20}", r"(a)\1", r"a*a*a*a*b", r"(?i)(A[a-z]*)+", r"(?:a+){2,}",
                   r"(foo|bar)+", "x" * 300]


@pytest.mark.parametrize("pattern", SAFE_PATTERNS)
def test_safe_patterns_are_accepted_and_fast(pattern: str) -> None:
    """Bounded patterns compile and match adversarial maximum-length tags quickly."""
    compiled = compile_pattern(pattern)
    started = time.perf_counter()
    for ch in "a-.1x ":
        compiled.fullmatch(ch * MAX_TAG_LENGTH + "!")
        compiled.fullmatch(("a-" * MAX_TAG_LENGTH)[:MAX_TAG_LENGTH])
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize("pattern", UNSAFE_PATTERNS)
def test_unsafe_patterns_are_refused(pattern: str) -> None:
    """Patterns with unbounded backtracking (or too long) are refused."""
    with pytest.raises(UnsafePatternError):
        compile_pattern(pattern)
