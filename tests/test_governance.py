"""Issue 12: provenance of promotions, stages, withdrawals, root policies, require_policy,
break-glass overrides, rollbacks and explicit snapshots.

Tests taking ``registry_root`` run on every backend (local, memory, S3, Azure,
GCS) unless marked ``storage_free``: those check rules decided before storage
matters, and run on memory only.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from kirin import Dataset
from kirin.errors import (
    CommitNotFoundError,
    CorruptObjectError,
    InvalidInputError,
    PolicyError,
    PolicyRequiredError,
    PolicyViolationError,
    StaleRefError,
)
from kirin.records import make_record

from dataset_helpers import Source, reopen
from roots import RegistryRoot

POLICY = """\
version: 1
metadata:
  schema:
    type: object
    properties:
      accuracy: {type: number}
tags:
  allowed: [dev, staging, production]
  patterns: ['v\\d+']
  unique_patterns: ['v\\d+']
stages: [dev, staging, production]
promotion:
  production:
    when: "accuracy >= 0.9"
message:
  min_length: 5
"""
WITH_BREAK_GLASS = POLICY + """\
overrides:
  rules: ["promotion.production.when"]
  authors: [alice]
rollback: allowed
"""


def governed(root: RegistryRoot, policy: str = POLICY, name: str = "models") -> Dataset:
    return root.catalog().create_dataset(name, policy=policy)


def model(ds: Dataset, src: Source, content: str, accuracy: float, tag: str,
          author: str = "bob") -> str:
    return ds.commit(f"model {content}", add_files={"model.pt": src("model.pt", content)},
                     metadata={"accuracy": accuracy}, tags=[tag], author=author)


# -- provenance and stages ---------------------------------------------------------
def test_a_promotion_records_what_it_promoted_and_stages_follow_it(
        registry_root: RegistryRoot, src: Source) -> None:
    ds = governed(registry_root)
    v1 = model(ds, src, "one", 0.95, "v1")
    staged = ds.promote("v1", ["staging"], author="carol")
    released = ds.promote(staged, ["production"], author="dave")
    fresh = reopen(ds)  # read back from storage
    commit = fresh.resolve("production")
    assert (commit.hash, commit.kind, commit.promoted_from) == (released, "promotion", staged)
    assert fresh.resolve(staged).promoted_from == v1
    assert fresh.resolve(v1).kind == "commit" and fresh.resolve(v1).promoted_from is None
    status = {s.stage: s for s in fresh.stages()}
    assert list(status) == ["dev", "staging", "production"]
    assert status["dev"].commit is None and status["dev"].withdrawn_by is None
    assert status["production"].commit is not None
    assert (status["production"].commit.hash, status["production"].by,
            status["production"].promoted_from) == (released, "dave", staged)
    # the unique version tag stays on v1 and still names the model wherever it goes
    assert status["production"].version_tags == ("v1",)
    assert status["production"].since == commit.timestamp

    v2 = model(ds, src, "two", 0.97, "v2")
    newer = ds.promote(v2, ["production"])
    held = reopen(ds).stage_history("production")
    assert [(t.commit.hash, t.how, t.ended_by.hash if t.ended_by else None) for t in held] == [
        (released, "replaced", newer), (newer, None, None)]
    assert held[0].until == held[1].since


def test_withdraw_retires_the_holder_without_replacing_it(registry_root: RegistryRoot,
                                                         src: Source) -> None:
    ds = governed(registry_root)
    model(ds, src, "one", 0.95, "v1")
    released = ds.promote("v1", ["production"])
    withdrawal = ds.withdraw("production", "Rolled out a regression", author="alice")
    fresh = reopen(ds)
    record = fresh.resolve(withdrawal)
    assert record.kind == "withdrawal" and dict(record.withdrawal or {}) == {
        "stage": "production", "holder": released}
    def content(commit: Any) -> dict[str, str]:
        return {n: f.hash for n, f in commit.files.items()}

    assert content(record) == content(fresh.resolve(released)) and not record.tags
    assert dict(record.metadata) == {}
    with pytest.raises(CommitNotFoundError, match="withdrawn by"):
        fresh.resolve("production")
    assert fresh.resolve("tag:production").hash == released  # the tag itself is still there
    [production] = [s for s in fresh.stages() if s.stage == "production"]
    assert production.commit is None and production.withdrawn_by == record
    [tenure] = fresh.stage_history("production")
    assert (tenure.how, tenure.ended_by) == ("withdrawn", record)
    with pytest.raises(CommitNotFoundError, match="no holder"):
        fresh.withdraw("production", "Withdraw it twice")
    again = fresh.promote("v1", ["production"])
    assert reopen(ds).resolve("production").hash == again


@pytest.mark.storage_free
def test_a_withdrawal_is_judged_by_the_rules_about_every_record(registry_root: RegistryRoot,
                                                               src: Source) -> None:
    ds = governed(registry_root)
    model(ds, src, "one", 0.95, "v1")
    ds.promote("v1", ["production"])
    ds.set_policy(POLICY.replace("min_length: 5", "min_length: 30")
                  .replace("accuracy >= 0.9", "accuracy >= 0.99"))
    before = len(ds.history())
    with pytest.raises(PolicyViolationError) as caught:
        ds.withdraw("production", "Too short")
    # the message rule applies; the tightened promotion rule is about content, not this
    assert [v.rule for v in caught.value.violations] == ["message.min_length"]
    assert len(ds.history()) == before
    ds.withdraw("production", "Withdrawn: it failed the fairness review last night")
    with pytest.raises(InvalidInputError, match="not a stage"):
        ds.withdraw("v1", "Version tags are not stages")


@pytest.mark.storage_free
def test_expect_refuses_when_the_ref_moved(registry_root: RegistryRoot, src: Source) -> None:
    ds = governed(registry_root)
    v1 = model(ds, src, "one", 0.95, "v1")
    gated = ds.promote(v1, ["staging"])
    v2 = model(ds, src, "two", 0.96, "v2")
    ds.promote(v2, ["staging"])  # staging moved after the gate judged it
    with pytest.raises(StaleRefError) as caught:
        ds.promote("staging", ["production"], expect=gated)
    assert (caught.value.expected, caught.value.ref) == (gated, "staging")
    with pytest.raises(StaleRefError):
        ds.validate_promotion("staging", ["production"], expect=gated)
    assert ds.resolve("staging").hash != gated and len(ds.history()) == 4
    for bad in (gated[:12], "production", gated + "0"):
        with pytest.raises(InvalidInputError, match="full commit hash"):
            ds.promote("staging", ["production"], expect=bad)
    done = ds.promote(gated, ["production"], expect=gated.upper())
    assert ds.resolve(done).promoted_from == gated


@pytest.mark.storage_free
def test_expect_is_checked_again_after_losing_a_race(registry_root: RegistryRoot,
                                                    src: Source) -> None:
    """Another writer moves the stage while this promotion is being written: refused."""
    ds = governed(registry_root)
    gated = ds.promote(model(ds, src, "one", 0.95, "v1"), ["staging"])
    other = reopen(ds)
    v2 = model(other, src, "two", 0.96, "v2")
    publish = ds._journal.publish
    calls: list[str] = []

    def racing(record: dict[str, Any], draft: Any) -> bool:
        if not calls:
            other.promote(v2, ["staging"])  # lands first
        calls.append(record["hash"])
        return publish(record, draft)

    ds._journal.publish = racing  # type: ignore[method-assign,assignment]
    with pytest.raises(StaleRefError):
        ds.promote("staging", ["production"], expect=gated)
    assert len(calls) == 1 and "production" not in reopen(ds).resolve("staging").tags
    assert all("production" not in c.tags for c in reopen(ds).history())


# -- root policy and require_policy ---------------------------------------------
ROOT_POLICY = """\
version: 1
metadata:
  schema:
    type: object
    required: [owner]
    properties:
      owner: {type: string}
message:
  forbidden: [wip]
"""


def test_a_root_policy_governs_every_dataset_even_new_ones(registry_root: RegistryRoot,
                                                          src: Source) -> None:
    catalog = registry_root.catalog()
    digest = catalog.set_policy(ROOT_POLICY, message="every model names its owner")
    before = registry_root.objects()
    typo = registry_root.dataset("fraud_modle")  # a misspelt name is judged the same
    with pytest.raises(PolicyViolationError) as caught:
        typo.commit("wip", add_files={"m.pt": src("m.pt")})
    assert {(v.rule, v.source) for v in caught.value.violations} == {
        ("metadata.schema", "root"), ("message.forbidden", "root")}
    assert registry_root.objects() == before  # nothing written: no dataset appeared
    assert "fraud_modle" not in catalog.datasets()

    ds = governed(registry_root)  # its own policy adds rules on top
    with pytest.raises(PolicyViolationError) as caught:
        ds.commit("model one", add_files={"model.pt": src("model.pt")},
                  metadata={"accuracy": "high"}, tags=["v1"])
    assert {(v.rule, v.source) for v in caught.value.violations} == {
        ("metadata.schema", "root"), ("metadata.schema", "dataset")}
    report = ds.validate("model one", add_files={"model.pt": src("model.pt")},
                         metadata={"accuracy": 0.9, "owner": "ml-team"}, tags=["v1"])
    assert report.ok and report.root_policy_hash == digest
    head = ds.commit("model one", add_files={"model.pt": src("model.pt")},
                     metadata={"accuracy": 0.9, "owner": "ml-team"}, tags=["v1"])
    commit = reopen(ds).resolve(head)
    assert ds.policy is not None
    assert (commit.root_policy_hash, commit.policy_hash) == (digest, ds.policy.hash)
    assert reopen(ds).root_policy is not None
    assert [v.policy_hash for v in catalog.policy_history()] == [digest]


def test_require_policy_refuses_an_ungoverned_dataset(registry_root: RegistryRoot,
                                                     src: Source,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    before = registry_root.objects()
    typo = registry_root.dataset("fraud_modle", require_policy=True)
    with pytest.raises(PolicyRequiredError, match="misspelt"):
        typo.commit("first model", add_files={"m.pt": src("m.pt")})
    with pytest.raises(PolicyRequiredError):
        typo.validate("first model", add_files={"m.pt": src("m.pt")})
    monkeypatch.setenv("KIRIN_REQUIRE_POLICY", "1")
    with pytest.raises(PolicyRequiredError):
        registry_root.dataset("other").commit("first model", add_files={"m.pt": src("m.pt")})
    assert registry_root.objects() == before
    # require_policy=False wins over the environment; a root policy satisfies it
    registry_root.dataset("loose", require_policy=False).commit(
        "first model", add_files={"m.pt": src("m.pt")})
    registry_root.catalog().set_policy(ROOT_POLICY)
    registry_root.dataset("fraud_model").commit("first model", add_files={"m.pt": src("m.pt")},
                                                metadata={"owner": "risk"})


@pytest.mark.storage_free
def test_require_policy_takes_only_a_bool(registry_root: RegistryRoot) -> None:
    with pytest.raises(InvalidInputError, match="require_policy"):
        registry_root.dataset("x", require_policy="yes")  # type: ignore[arg-type]


# -- break-glass and rollback ----------------------------------------------------
@pytest.mark.storage_free
def test_an_override_admits_only_what_the_policy_lets_past(registry_root: RegistryRoot,
                                                          src: Source) -> None:
    ds = governed(registry_root, WITH_BREAK_GLASS)
    weak = model(ds, src, "weak", 0.8, "v1")

    def refused(**kwargs: Any) -> set[str]:
        with pytest.raises(PolicyViolationError) as caught:
            ds.promote(weak, **kwargs)
        return {v.rule for v in caught.value.violations}

    assert refused(tags=["production"]) == {"promotion.production.when"}
    assert refused(tags=["production"], author="bob", override=True, reason="hotfix") == {
        "promotion.production.when", "overrides.authors"}
    assert refused(tags=["production"], author="alice", override=True) == {
        "promotion.production.when", "overrides.reason_required"}
    assert refused(tags=["production", "stagin"], author="alice", override=True,
                   reason="hotfix") >= {"tags.allowed", "overrides.rules"}
    with pytest.raises(InvalidInputError, match="override=True"):
        ds.promote(weak, ["production"], reason="a reason alone overrides nothing")
    verdict = ds.validate_promotion(weak, ["production"], author="alice", override=True,
                                    reason="Incident 42: the old model leaks PII")
    assert verdict.ok and [v.rule for v in verdict.overridden] == ["promotion.production.when"]
    done = ds.promote(weak, ["production"], author="alice", override=True,
                      reason="Incident 42: the old model leaks PII")
    record = reopen(ds).resolve(done)
    assert record.override is not None
    assert record.override["reason"] == "Incident 42: the old model leaks PII"
    assert [(v["rule"], v["source"]) for v in record.override["violations"]] == [
        ("promotion.production.when", "dataset")]
    assert record.author == "alice"
    # nothing to override: a plain record
    plain = ds.promote(model(ds, src, "good", 0.95, "v2"), ["production"], author="alice",
                       override=True, reason="not needed")
    assert reopen(ds).resolve(plain).override is None


@pytest.mark.storage_free
def test_a_policy_without_overrides_admits_none(registry_root: RegistryRoot,
                                                src: Source) -> None:
    ds = governed(registry_root)
    weak = model(ds, src, "weak", 0.8, "v1")
    with pytest.raises(PolicyViolationError, match="declares no overrides"):
        ds.promote(weak, ["production"], override=True, reason="please")


@pytest.mark.storage_free
def test_rollback_judges_a_former_holder_by_the_policy_that_admitted_it(
        registry_root: RegistryRoot, src: Source) -> None:
    ds = governed(registry_root, WITH_BREAK_GLASS)
    old = model(ds, src, "one", 0.92, "v1")
    held = ds.promote(old, ["production"])
    assert ds.policy is not None
    admitted_by = ds.policy.hash
    ds.promote(model(ds, src, "two", 0.97, "v2"), ["production"])
    ds.set_policy(WITH_BREAK_GLASS.replace("accuracy >= 0.9", "accuracy >= 0.95"))
    with pytest.raises(PolicyViolationError, match=r"0\.95"):
        ds.promote("v1", ["production"])  # today's rules reject the old model
    with pytest.raises(PolicyViolationError, match="ever held"):
        ds.promote(model(ds, src, "three", 0.93, "v3"), ["production"], rollback=True)
    with pytest.raises(InvalidInputError, match="one stage"):
        ds.promote("v1", ["production", "staging"], rollback=True)
    back = ds.promote("v1", ["production"], rollback=True, author="alice")
    record = reopen(ds).resolve(back)
    assert (record.kind, record.promoted_from) == ("rollback", old)
    assert dict(record.rollback or {}) == {"held": held, "policy": admitted_by, "root_policy": None}
    assert record.policy_hash == ds.policy.hash  # recorded under the policy in force
    assert reopen(ds).resolve("production").hash == back

    ds.set_policy(POLICY.replace("accuracy >= 0.9", "accuracy >= 0.95"))  # rollback: forbidden
    with pytest.raises(PolicyViolationError, match="does not allow rollbacks"):
        ds.promote("v1", ["production"], rollback=True)


@pytest.mark.storage_free
def test_rollback_needs_a_holder_that_a_policy_admitted(registry_root: RegistryRoot,
                                                       src: Source) -> None:
    ds = registry_root.dataset("models")
    ds.commit("model one", add_files={"model.pt": src("model.pt", "one")},
              metadata={"accuracy": 0.5}, tags=["v1"])
    ds.promote("v1", ["production"])  # before any policy
    ds.set_policy(WITH_BREAK_GLASS)
    with pytest.raises(PolicyViolationError, match="before any policy"):
        ds.promote("v1", ["production"], rollback=True)


# -- explicit snapshots ---------------------------------------------------------
@pytest.mark.storage_free
def test_replace_makes_the_commit_hold_exactly_the_files_given(registry_root: RegistryRoot,
                                                              src: Source) -> None:
    ds = registry_root.dataset()
    ds.commit("first", add_files=[src("model.pt"), src("model_card.md")])
    head = ds.commit("second", add_files=[src("model.pt", "new weights")], replace=True)
    commit = ds.resolve(head)
    assert list(commit.files) == ["model.pt"]
    carried = ds.commit("third", add_files=[src("model.pt", "newer")])
    assert list(ds.resolve(carried).files) == ["model.pt"]
    with pytest.raises(InvalidInputError, match="replace=True"):
        ds.commit("fourth", add_files=[src("a.txt")], remove_files=["model.pt"], replace=True)
    with pytest.raises(InvalidInputError, match="replace"):
        ds.commit("fourth", add_files=[src("a.txt")], replace=1)  # type: ignore[arg-type]


# -- the stored form ------------------------------------------------------------------
def _rewrite(root: RegistryRoot, dataset: str, seq: int, change: Any) -> None:
    """Alter log entry ``seq`` and re-hash it, as a writer with bucket access could."""
    path = root.log_path(dataset, seq)
    record = json.loads(root.cat(path))
    change(record)
    record.pop("hash")
    from kirin.records import encode_record, record_hash

    record["hash"] = record_hash(record)
    root.pipe(path, encode_record(record))


def test_a_forged_provenance_breaks_the_chain(registry_root: RegistryRoot,
                                             src: Source) -> None:
    ds = governed(registry_root)
    model(ds, src, "one", 0.95, "v1")
    v2 = model(ds, src, "two", 0.95, "v2")
    ds.promote("v1", ["production"])
    ds.commit("a later model", add_files={"model.pt": src("model.pt", "three")},
              metadata={"accuracy": 0.5})

    def forge(record: dict[str, Any]) -> None:
        record["action"]["source"] = v2

    _rewrite(registry_root, "models", 2, forge)  # re-hashed, but the next commit names it
    with pytest.raises(CorruptObjectError):
        reopen(ds).history()
    assert any("parent" in p.message or "hash" in p.message
               for p in reopen(ds).verify().problems)


@pytest.mark.storage_free
@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r.update(kirin=1), "version 1 record cannot carry action"),
    (lambda r: r.update(kirin=3), "unknown format version 3"),
    (lambda r: r.pop("action"), "must carry action"),
    (lambda r: r.update(provenance=[]), "unknown keys provenance"),
    (lambda r: r.update(lineage=[]), "'lineage' must be an object"),
    (lambda r: r["action"].update(kind="demotion"), "kind is one of"),
    (lambda r: r["action"].update(source="HEAD"), "must be a commit hash"),
    (lambda r: r.update(override={"reason": "x", "violations": []}), "non-empty"),
])
def test_governance_keys_are_checked_on_read(registry_root: RegistryRoot, src: Source,
                                            change: Any, message: str) -> None:
    ds = governed(registry_root)
    model(ds, src, "one", 0.95, "v1")
    ds.promote("v1", ["production"])
    _rewrite(registry_root, "models", 1, change)
    with pytest.raises(CorruptObjectError, match=message):
        reopen(ds).history()


@pytest.mark.storage_free
def test_plain_commits_stay_version_1_records(registry_root: RegistryRoot,
                                              src: Source) -> None:
    ds = governed(registry_root)
    model(ds, src, "one", 0.95, "v1")
    ds.promote("v1", ["production"])
    first = json.loads(registry_root.cat(registry_root.log_path("models", 0)))
    second = json.loads(registry_root.cat(registry_root.log_path("models", 1)))
    assert first["kirin"] == 1 and "action" not in first
    assert second["kirin"] == 2 and second["action"]["kind"] == "promotion"
    with pytest.raises(TypeError, match="unknown governance keys"):
        make_record(seq=0, parent=None, snapshot={}, added={}, removed=(), message="m",
                    metadata={}, tags=(), timestamp=ds.history()[0].timestamp, author="a",
                    policy=None, governance={"provenance": []})


# -- the policy file --------------------------------------------------------------
@pytest.mark.storage_free
@pytest.mark.parametrize(("text", "message"), [
    ("stages: [prod]", "outside the tag vocabulary"),
    ("stages: [dev, dev]", "listed twice"),
    ("overrides: {rules: []}", "overrides.rules"),
    ("overrides: {rules: [accuracy]}", "names no rule"),
    ("rollback: maybe", "rollback"),
])
def test_governance_keys_of_the_policy_are_checked(text: str, message: str) -> None:
    from kirin.policy import load_policy_text

    with pytest.raises(PolicyError, match=message):
        load_policy_text("version: 1\ntags: {allowed: [dev, production]}\n" + text)


@pytest.mark.storage_free
def test_policies_without_the_new_keys_keep_their_hash() -> None:
    """Stored policies are judged by hash: new optional keys must not change old hashes."""
    from kirin.policy import load_policy_text

    policy = load_policy_text("version: 1\ntags: {allowed: [dev]}\n")
    assert policy.canonical_json() == '{"message":{"forbidden":[]},"metadata":{},"promotion":{},' \
        '"tags":{"allowed":["dev"],"exclusive_groups":[],"unique":[],"unique_patterns":[]},' \
        '"version":1}'


def test_a_deleted_root_policy_fails_closed_and_verify_says_so(registry_root: RegistryRoot,
                                                              src: Source) -> None:
    registry_root.catalog().set_policy(ROOT_POLICY)
    ds = registry_root.dataset("models")
    head = ds.commit("first model", add_files={"m.pt": src("m.pt")}, metadata={"owner": "a"})
    registry_root.rm(registry_root.join("policy", f"{0:020d}.json"))  # "loosen" it
    fresh = reopen(ds)
    with pytest.raises(CorruptObjectError, match="missing from the policy history"):
        fresh.commit("anything goes now?", add_files={"n.pt": src("n.pt")})
    assert [c.hash for c in fresh.history()] == [head]
    [problem] = [p for p in fresh.verify().problems if p.kind == "policy"]
    assert head in problem.commits and "root_policy" not in problem.message
