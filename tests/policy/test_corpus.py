"""The example team policy against a corpus of proposed commits, each with its exact verdict.

Every case names the proposal and the exact multiset of (rule, path) pairs the
gate must report — nothing missing, nothing extra. Most cases extend one
shared history (``HISTORY``), so rules that look back (unique version tags,
production only after staging of the same content) are exercised too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from kirin.policy import Policy, audit, evaluate_policy, load_policy

from policy_helpers import TEAM_POLICY, Step, make_history, make_proposal

PT = "pytorch"
GOOD = {"framework": PT, "accuracy": 0.92, "f1_score": 0.9, "validated": True}

#: Files of the first staging commit (model w2 + config 1), plus a README added later.
STAGED_A = {"model.pt": "weights-2", "config.json": "config-1", "README.md": "readme-1"}
#: Files of the second staging commit (model w3 + config 2).
STAGED_B = {"model.pt": "weights-3", "config.json": "config-2", "README.md": "readme-1"}

BASE_STEPS = [
    Step("Initial baseline - BERT fine-tuned on customer reviews",
         {"model.pt": "weights-1", "config.json": "config-1"},
         {"framework": PT, "accuracy": 0.87, "f1_score": 0.85,
          "hyperparameters": {"learning_rate": 0.001, "epochs": 10, "batch_size": 32},
          "training_data": "sentiment_v1", "model_size_mb": 0.5},
         ["baseline", "v1.0"]),
    Step("Experimental model with attention pooling",
         {"model.pt": "weights-2", "config.json": "config-1"},
         {"framework": PT, "accuracy": 0.92, "f1_score": 0.9}, ["dev", "experimental"]),
    Step("Promote attention model to staging",
         {"model.pt": "weights-2", "config.json": "config-1"},
         {**GOOD}, ["staging", "v2.0-rc1"]),
    Step("Add model card README for reviewers",
         {"model.pt": "weights-2", "config.json": "config-1", "README.md": "readme-1"},
         {"framework": PT}),
    Step("Stage larger-batch retrain for evaluation", STAGED_B,
         {"framework": PT, "accuracy": 0.91, "f1_score": 0.88, "validated": True},
         ["staging", "v2.1-beta"]),
]
HISTORY = make_history(BASE_STEPS)
DEV_ONLY_HISTORY = make_history([
    *BASE_STEPS,
    Step("Try pruned model in development", {"model.pt": "weights-7"},
         {"framework": PT, "accuracy": 0.95}, ["dev"]),
])


@dataclass(frozen=True)
class Case:
    """One proposed commit and the exact violations expected of it."""

    id: str
    message: str
    files: Mapping[str, str]
    metadata: Mapping[str, Any]
    tags: Sequence[str] = ()
    expected: Sequence[tuple[str, str]] = ()
    history: str = "base"


WHEN = "promotion.production.when"
STAGE = ("promotion.production.requires_stage", "staging")
SCHEMA = "metadata.schema"

ACCEPTED = [
    Case("production-of-staged-content", "Release attention model v2.0 to production",
         STAGED_A, GOOD, ["production", "v2.0"]),
    Case("production-of-latest-staged", "Release larger-batch model v2.1",
         STAGED_B, GOOD, ["production", "v2.1"]),
    Case("production-readme-changed-after-staging", "Release v2.1 with updated README",
         {**STAGED_B, "README.md": "readme-2"}, GOOD, ["production"]),
    Case("production-without-readme", "Release attention model without docs",
         {"model.pt": "weights-2", "config.json": "config-1"}, GOOD, ["production"]),
    Case("untagged-commit", "Retrain on sentiment_v3 with label smoothing",
         {"model.pt": "weights-4", "config.json": "config-1"}, {"framework": PT}),
    Case("dev-with-low-accuracy", "Try distilled student model for latency",
         {"model.pt": "weights-5"}, {"framework": PT, "accuracy": 0.5},
         ["dev", "experimental"]),
    Case("staging-new-content", "Stage distilled student for evaluation",
         {"model.pt": "weights-5"}, {"framework": PT, "accuracy": 0.86}, ["staging"]),
    Case("new-full-version-tag", "Tag the distilled model as v3.0.0",
         {"model.pt": "weights-5"}, {"framework": PT}, ["v3.0.0"]),
    Case("short-version-tag", "Major release line four of the model",
         {"model.pt": "weights-6"}, {"framework": PT}, ["v4"]),
    Case("prerelease-version-tag", "Release candidate two of v4.1.0",
         {"model.pt": "weights-6"}, {"framework": PT}, ["v4.1.0-rc2"]),
    Case("full-model-card", "Medical model with the complete model card",
         {"model.pt": "weights-8", "config.json": "config-3"},
         {"framework": PT, "version": "2.1.0", "accuracy": 0.92, "f1_score": 0.9,
          "precision": 0.91, "recall": 0.89,
          "hyperparameters": {"learning_rate": 0.001, "epochs": 10, "batch_size": 32,
                              "optimizer": "adam"},
          "training_data": "dataset_v2", "training_time_seconds": 1200,
          "model_size_mb": 0.5, "domain": "medical",
          "use_cases": ["patient_feedback", "clinical_notes"]},
         ["medical"]),
    Case("extra-metadata-keys", "Experiment sweep-42 with cosine schedule",
         {"model.pt": "weights-9"},
         {"framework": PT, "accuracy": 0.9, "experiment_id": "abc123",
          "run_name": "sweep-42"}, ["experimental"]),
    Case("domain-accuracy", "Medical sentiment classifier",
         {"medical_model.pt": "weights-m"},
         {"framework": PT, "accuracy": 0.85, "domain_accuracy": 0.94,
          "domain": "medical", "training_data": "medical_reviews"},
         ["medical", "domain-specific", "v1.1"]),
    Case("message-with-padding", "   Retrain with focal loss on sentiment_v3   ",
         {"model.pt": "weights-4"}, {"framework": PT}),
    Case("forbidden-phrase-inside-longer-message",
         "Updated model with focal loss and more data",
         {"model.pt": "weights-4"}, {"framework": PT}),
    Case("duplicate-tag-in-proposal", "Second experimental variant with dropout",
         {"model.pt": "weights-4"}, {"framework": PT}, ["experimental", "experimental"]),
    Case("ab-test-model", "Model A - Original architecture",
         {"model_a.pt": "weights-a"},
         {"framework": PT, "accuracy": 0.89, "architecture": "original"},
         ["ab-test", "model-a"]),
    Case("deprecate-baseline", "Deprecate the baseline after the v2 release",
         STAGED_B, {"framework": PT}, ["deprecated"]),
]

REJECTED = [
    # -- metadata schema (model card) --------------------------------------
    Case("accuracy-above-one", "Retrain with mislabelled validation split",
         {"model.pt": "weights-4"}, {"framework": PT, "accuracy": 1.7},
         expected=[(SCHEMA, "accuracy")]),
    Case("framework-missing", "Validated model v2.0",
         {"model.pt": "weights-4"}, {"accuracy": 0.93, "validated": True},
         ["validated", "v2.0"], expected=[(SCHEMA, "framework")]),
    Case("framework-capitalised", "Retrain in the PyTorch 2 runtime",
         {"model.pt": "weights-4"}, {"framework": "PyTorch"},
         expected=[(SCHEMA, "framework")]),
    Case("version-not-semver", "Retrain with the version in metadata",
         {"model.pt": "weights-4"}, {"framework": PT, "version": "2.1"},
         expected=[(SCHEMA, "version")]),
    Case("negative-learning-rate", "Retrain with a broken scheduler",
         {"model.pt": "weights-4"},
         {"framework": PT, "hyperparameters": {"learning_rate": -0.1, "epochs": 3}},
         expected=[(SCHEMA, "hyperparameters.learning_rate")]),
    Case("fractional-epochs", "Retrain for ten and a half epochs",
         {"model.pt": "weights-4"},
         {"framework": PT, "hyperparameters": {"epochs": 10.5}},
         expected=[(SCHEMA, "hyperparameters.epochs")]),
    Case("use-case-not-a-string", "Medical model with use cases listed",
         {"model.pt": "weights-4"},
         {"framework": PT, "use_cases": ["clinical_notes", 3]},
         expected=[(SCHEMA, "use_cases[1]")]),
    Case("negative-training-time", "Retrain with clock skew on the worker",
         {"model.pt": "weights-4"}, {"framework": PT, "training_time_seconds": -5},
         expected=[(SCHEMA, "training_time_seconds")]),
    Case("domain-accuracy-above-one", "Medical classifier with a bad metric",
         {"model.pt": "weights-4"}, {"framework": PT, "domain_accuracy": 2},
         expected=[(SCHEMA, "domain_accuracy")]),
    Case("several-schema-errors", "Retrain with a corrupted metrics export",
         {"model.pt": "weights-4"},
         {"framework": "", "accuracy": -0.1, "f1_score": 1.2, "model_size_mb": -1},
         expected=[(SCHEMA, "framework"), (SCHEMA, "accuracy"), (SCHEMA, "f1_score"),
                   (SCHEMA, "model_size_mb")]),
    # -- tag vocabulary and usage ------------------------------------------
    Case("unknown-tag", "Retrain for the prod rollout",
         {"model.pt": "weights-4"}, {"framework": PT}, ["prod"],
         expected=[("tags.allowed", "prod")]),
    Case("uppercase-version-tag", "Retrain tagged with an upper-case V",
         {"model.pt": "weights-4"}, {"framework": PT}, ["V2.0"],
         expected=[("tags.allowed", "V2.0")]),
    Case("tag-too-long", "Retrain tagged with a very long tag",
         {"model.pt": "weights-4"}, {"framework": PT}, ["x" * 129],
         expected=[("tags.allowed", "x" * 129)]),
    Case("version-tag-reused", "Retrain baseline with more epochs",
         {"model.pt": "weights-4"}, {"framework": PT}, ["v1.0"],
         expected=[("tags.unique", "v1.0")]),
    Case("prerelease-tag-reused", "Stage the pruned model for evaluation",
         {"model.pt": "weights-6"}, {"framework": PT, "accuracy": 0.9},
         ["staging", "v2.1-beta"], expected=[("tags.unique", "v2.1-beta")]),
    Case("dev-and-staging", "Stage the model and keep it in dev",
         {"model.pt": "weights-6"}, {"framework": PT, "accuracy": 0.9},
         ["dev", "staging"], expected=[("tags.exclusive", "dev,staging")]),
    Case("baseline-and-improved", "Improved baseline with cleaner data",
         {"model.pt": "weights-6"}, {"framework": PT}, ["baseline", "improved"],
         expected=[("tags.exclusive", "baseline,improved")]),
    # -- promotion: production needs an earlier staging of the same content --
    Case("production-never-staged", "Release the original baseline model",
         {"model.pt": "weights-1", "config.json": "config-1"}, GOOD, ["production"],
         expected=[STAGE]),
    Case("production-config-differs-from-staging", "Release attention model, new config",
         {"model.pt": "weights-2", "config.json": "config-2"}, GOOD, ["production"],
         expected=[STAGE]),
    Case("production-weights-differ-from-staging", "Release retrained attention model",
         {"model.pt": "weights-9", "config.json": "config-1"}, GOOD, ["production"],
         expected=[STAGE]),
    Case("production-of-dev-only-content", "Release the pruned model from dev",
         {"model.pt": "weights-7"}, GOOD, ["production"],
         expected=[STAGE], history="dev-only"),
    Case("production-on-empty-history", "Release attention model to production",
         {"model.pt": "weights-2", "config.json": "config-1"}, GOOD, ["production"],
         expected=[STAGE], history="empty"),
    Case("staging-and-production-together", "Stage and release the new model at once",
         {"model.pt": "weights-8"}, GOOD, ["staging", "production"],
         expected=[("tags.exclusive", "staging,production"), STAGE]),
    # -- promotion: conditions and files ---------------------------------------
    Case("user-guide-release-below-threshold", "Release v2.1 to production",
         STAGED_B, {"framework": PT, "accuracy": 0.88}, ["production", "v2.1"],
         expected=[(WHEN, "accuracy"), (WHEN, "f1_score"), (WHEN, "validated")]),
    Case("production-not-validated", "Release larger-batch model unvalidated",
         STAGED_B, {**GOOD, "validated": False}, ["production"],
         expected=[(WHEN, "validated")]),
    Case("production-validated-as-string", "Release larger-batch model v2.1",
         STAGED_B, {**GOOD, "validated": "yes"}, ["production"],
         expected=[(SCHEMA, "validated"), (WHEN, "validated")]),
    Case("production-accuracy-as-string", "Release larger-batch model v2.1",
         STAGED_B, {**GOOD, "accuracy": "0.95"}, ["production"],
         expected=[(SCHEMA, "accuracy"), (WHEN, "accuracy")]),
    Case("production-without-weights", "Release the ONNX export to production",
         {"model.onnx": "onnx-1", "config.json": "config-1"}, GOOD, ["production"],
         expected=[("promotion.production.required_files", "*.pt"), STAGE]),
    Case("user-guide-improved-commit", "Improved model with better regularization",
         {"model_weights.pt": "weights-1", "model_weights_v2.pt": "weights-v2",
          "config.json": "config-1"},
         {"framework": PT, "accuracy": 0.92, "f1_score": 0.9,
          "hyperparameters": {"learning_rate": 0.0005, "epochs": 15, "batch_size": 32,
                              "weight_decay": 0.01},
          "training_data": "sentiment_v2",
          "improvements": ["Better regularization", "More epochs"]},
         ["improved", "v2.0", "production"],
         expected=[(WHEN, "validated"), STAGE]),
    Case("staging-below-threshold", "Stage the quantised model for evaluation",
         {"model.pt": "weights-q"}, {"framework": PT, "accuracy": 0.8}, ["staging"],
         expected=[("promotion.staging.when", "accuracy")]),
    Case("staging-accuracy-missing", "Stage the quantised model for evaluation",
         {"model.pt": "weights-q"}, {"framework": PT}, ["staging"],
         expected=[("promotion.staging.when", "accuracy")]),
    Case("staging-without-weights", "Stage the ONNX export for evaluation",
         {"model.onnx": "onnx-1"}, {"framework": PT, "accuracy": 0.9}, ["staging"],
         expected=[("promotion.staging.required_files", "*.pt")]),
    # -- commit message ----------------------------------------------------------
    Case("message-changes", "Changes", {"model.pt": "weights-4"}, {"framework": PT},
         expected=[("message.min_length", "message"), ("message.forbidden", "message")]),
    Case("message-updated-model", "Updated model", {"model.pt": "weights-4"},
         {"framework": PT}, expected=[("message.forbidden", "message")]),
    Case("message-case-and-punctuation", "  updated   MODEL.  ",
         {"model.pt": "weights-4"}, {"framework": PT},
         expected=[("message.forbidden", "message")]),
    Case("message-new-version", "New version!", {"model.pt": "weights-4"},
         {"framework": PT}, expected=[("message.forbidden", "message")]),
    Case("message-too-short", "retrain", {"model.pt": "weights-4"}, {"framework": PT},
         expected=[("message.min_length", "message")]),
    Case("message-empty", "", {"model.pt": "weights-4"}, {"framework": PT},
         expected=[("message.min_length", "message")]),
    Case("message-too-long", "Retrain " + "x" * 500, {"model.pt": "weights-4"},
         {"framework": PT}, expected=[("message.max_length", "message")]),
    # -- all at once ---------------------------------------------------------------
    Case("everything-wrong", "WIP", {"notes.txt": "notes-1"}, {"accuracy": 3},
         ["prod", "dev", "production", "v1.0"],
         expected=[(SCHEMA, "framework"), (SCHEMA, "accuracy"),
                   ("tags.allowed", "prod"), ("tags.unique", "v1.0"),
                   ("tags.exclusive", "dev,production"),
                   (WHEN, "f1_score"), (WHEN, "validated"),
                   ("promotion.production.required_files", "*.pt"), STAGE,
                   ("message.min_length", "message"), ("message.forbidden", "message")]),
]

@pytest.fixture(scope="module")
def team_policy() -> Policy:
    """The realistic policy shipped in examples/policy/team-policy.yaml."""
    return load_policy(TEAM_POLICY)


HISTORIES = {"base": HISTORY, "dev-only": DEV_ONLY_HISTORY, "empty": []}
CORPUS = ACCEPTED + REJECTED


def test_corpus_is_large_and_mixed() -> None:
    """The corpus holds at least 40 proposals, accepted and rejected, with unique ids."""
    assert len(CORPUS) >= 40
    assert len(ACCEPTED) >= 15 and len(REJECTED) >= 25
    assert len({c.id for c in CORPUS}) == len(CORPUS)
    assert all(not c.expected for c in ACCEPTED) and all(c.expected for c in REJECTED)


def test_base_history_itself_passes(team_policy: Policy) -> None:
    """Every commit of the shared histories satisfies the policy when audited."""
    for history in (HISTORY, DEV_ONLY_HISTORY):
        reports = audit(team_policy, history)
        assert [c.hash for c, _ in reports] == [c.hash for c in history]
        assert all(report.ok for _, report in reports), [str(r) for _, r in reports]


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.id)
def test_corpus_case(team_policy: Policy, case: Case) -> None:
    """The gate reports exactly the expected (rule, path) violations for the proposal."""
    history = HISTORIES[case.history]
    proposal = make_proposal(case.message, case.files, case.metadata, case.tags,
                             parent=history[-1] if history else None)
    report = evaluate_policy(team_policy, proposal, history)
    got = sorted((v.rule, v.path) for v in report.violations)
    assert got == sorted(case.expected), "\n" + str(report)
    assert report.ok is (not case.expected)
    for violation in report.violations:
        assert violation.message and violation.expected
