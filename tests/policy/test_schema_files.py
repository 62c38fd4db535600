"""The JSON Schemas in schemas/: generated ones do not drift, and each says what it should."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from kirin.errors import PolicyError
from kirin.policy import evaluate_policy, load_policy, load_policy_text, policy_json_schema

from policy_helpers import ROOT, TEAM_POLICY, make_proposal

POLICY_SCHEMA_FILE = ROOT / "schemas" / "registry-policy.schema.json"
MODEL_CARD_FILE = ROOT / "schemas" / "model-card.schema.json"
EXAMPLE_CARD_FILE = ROOT / "examples" / "policy" / "schemas" / "model-card.schema.json"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_policy_schema", ROOT / "scripts" / "gen_policy_schema.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _validator(schema: Any) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


# -- registry-policy.schema.json ----------------------------------------------------

def test_policy_schema_file_matches_the_models() -> None:
    """The committed policy schema is exactly what the models generate (no drift)."""
    generated = _generator().render_policy_schema()
    assert POLICY_SCHEMA_FILE.read_text(encoding="utf-8") == generated, (
        "schemas/registry-policy.schema.json is stale: run "
        "python scripts/gen_policy_schema.py")
    assert _load_json(POLICY_SCHEMA_FILE) == policy_json_schema()


def test_generator_check_mode_passes() -> None:
    """``gen_policy_schema.py --check`` finds nothing stale and writes nothing."""
    assert _generator().main(["--check"]) == 0


def test_policy_schema_is_valid_2020_12() -> None:
    """The policy schema is itself a valid draft 2020-12 schema."""
    schema = _load_json(POLICY_SCHEMA_FILE)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_example_policy_validates_against_policy_schema() -> None:
    """An editor checking the example team policy with the schema finds no error."""
    raw = yaml.safe_load(TEAM_POLICY.read_text(encoding="utf-8"))
    errors = [e.message for e in _validator(_load_json(POLICY_SCHEMA_FILE)).iter_errors(raw)]
    assert errors == []


@pytest.mark.parametrize("doc", [
    {"version": 1, "tagz": {}},
    {"version": 1, "tags": {"allowed": "dev"}},
    {"version": 1, "promotion": {"production": {"whenn": "a > 1"}}},
    {"version": 1, "message": {"min_length": -1}},
    {"version": 2},
    {"tags": {}},
    {"version": 1, "tags": {"exclusive_groups": [["dev"]]}},
])
def test_policy_schema_and_loader_both_refuse_structural_errors(doc: dict[str, Any]) -> None:
    """A structurally wrong policy is refused by the editor schema and by the loader."""
    assert not _validator(_load_json(POLICY_SCHEMA_FILE)).is_valid(doc)
    with pytest.raises(PolicyError):
        load_policy_text(json.dumps(doc))


def test_stored_form_validates_against_policy_schema() -> None:
    """The stored (canonical JSON) form of a policy is itself a valid policy document."""
    stored = json.loads(load_policy(TEAM_POLICY).stored_text())
    assert _validator(_load_json(POLICY_SCHEMA_FILE)).is_valid(stored)


# -- model-card.schema.json -----------------------------------------------------------

def test_model_card_schema_is_valid_and_copied_into_the_example() -> None:
    """The model-card schema is valid 2020-12 and the example's copy is identical."""
    schema = _load_json(MODEL_CARD_FILE)
    Draft202012Validator.check_schema(schema)
    assert EXAMPLE_CARD_FILE.read_bytes() == MODEL_CARD_FILE.read_bytes()


GUIDE_BASELINE = {
    "framework": "pytorch", "accuracy": 0.87, "f1_score": 0.85,
    "hyperparameters": {"learning_rate": 0.001, "epochs": 10, "batch_size": 32},
    "training_data": "sentiment_v1", "model_size_mb": 0.5,
}
GUIDE_CONVENTIONS = {
    "framework": "pytorch", "version": "2.1.0", "accuracy": 0.92, "f1_score": 0.90,
    "precision": 0.91, "recall": 0.89,
    "hyperparameters": {"learning_rate": 0.001, "epochs": 10, "batch_size": 32,
                        "optimizer": "adam"},
    "training_data": "dataset_v2", "training_time_seconds": 1200, "model_size_mb": 0.5,
    "domain": "medical", "use_cases": ["patient_feedback", "clinical_notes"],
}

CARDS: list[tuple[str, dict[str, Any], list[str]]] = [
    # the user guide's own examples
    ("guide-baseline", GUIDE_BASELINE, []),
    ("guide-improved", {**GUIDE_BASELINE, "accuracy": 0.92, "f1_score": 0.90,
                        "hyperparameters": {"learning_rate": 0.0005, "epochs": 15,
                                            "batch_size": 32, "weight_decay": 0.01},
                        "training_data": "sentiment_v2",
                        "improvements": ["Better regularization", "More epochs"]}, []),
    ("guide-conventions", GUIDE_CONVENTIONS, []),
    ("guide-staging-pipeline", {"accuracy": 0.88, "framework": "pytorch"}, []),
    ("guide-best-practice", {**GUIDE_BASELINE, "training_time_seconds": 3600,
                             "timestamp": "2024-05-01T12:00:00"}, []),
    ("guide-domain-accuracy", {"framework": "pytorch", "accuracy": 0.85,
                               "domain_accuracy": 0.94, "domain": "medical",
                               "training_data": "medical_reviews"}, []),
    # the guide's examples without a framework fail the one required key
    ("guide-ab-test", {"accuracy": 0.89, "architecture": "original"}, ["framework"]),
    ("guide-validated", {"accuracy": 0.93, "validated": True}, ["framework"]),
    # ranges, types, formats
    ("accuracy-above-one", {"framework": "pytorch", "accuracy": 1.7}, ["accuracy"]),
    ("recall-negative", {"framework": "pytorch", "recall": -0.1}, ["recall"]),
    ("precision-string", {"framework": "pytorch", "precision": "0.9"}, ["precision"]),
    ("val-accuracy-above-one", {"framework": "pytorch", "val_accuracy": 1.2},
     ["val_accuracy"]),
    ("framework-upper-case", {"framework": "PyTorch"}, ["framework"]),
    ("framework-empty", {"framework": ""}, ["framework"]),
    ("version-two-parts", {"framework": "jax", "version": "2.1"}, ["version"]),
    ("version-prerelease", {"framework": "jax", "version": "1.0.0-beta.1+build.5"}, []),
    ("version-leading-zero", {"framework": "jax", "version": "01.0.0"}, ["version"]),
    ("version-number", {"framework": "jax", "version": 2}, ["version"]),
    ("negative-size", {"framework": "jax", "model_size_mb": -1}, ["model_size_mb"]),
    ("negative-time", {"framework": "jax", "training_time_seconds": -1},
     ["training_time_seconds"]),
    ("hyperparameters-list", {"framework": "jax", "hyperparameters": [1]},
     ["hyperparameters"]),
    ("zero-epochs", {"framework": "jax", "hyperparameters": {"epochs": 0}},
     ["hyperparameters.epochs"]),
    ("zero-learning-rate", {"framework": "jax", "hyperparameters": {"learning_rate": 0}},
     ["hyperparameters.learning_rate"]),
    ("use-cases-duplicate", {"framework": "jax", "use_cases": ["a", "a"]}, ["use_cases"]),
    ("use-cases-not-strings", {"framework": "jax", "use_cases": [1]}, ["use_cases[0]"]),
    ("validated-string", {"framework": "jax", "validated": "yes"}, ["validated"]),
    ("training-data-number", {"framework": "jax", "training_data": 2}, ["training_data"]),
]


@pytest.mark.parametrize(("metadata", "paths"), [(m, p) for _, m, p in CARDS],
                         ids=[name for name, _, _ in CARDS])
def test_model_card_schema(metadata: dict[str, Any], paths: list[str]) -> None:
    """The model-card schema admits the guide's conventions and refuses what breaks them."""

    from kirin.policy import load_policy

    report = evaluate_policy(load_policy(TEAM_POLICY),
                             make_proposal("A descriptive message", {"m.pt": "w"}, metadata),
                             [])
    assert sorted(v.path for v in report.violations) == sorted(paths)
    assert all(v.rule == "metadata.schema" for v in report.violations)
