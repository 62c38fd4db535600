"""The policy in a real registry: stored, versioned, applied to every commit, nothing leaked."""

from __future__ import annotations

from pathlib import Path

import pytest

from kirin import Catalog, Dataset
from kirin.errors import (
    ExpressionSyntaxError,
    NotLatestCommitError,
    PolicyError,
    PolicyViolationError,
)
from kirin.policy import Policy, load_policy, load_policy_text

from conftest import write
from roots import RegistryRoot

REPO = Path(__file__).resolve().parent.parent
TEAM_POLICY = REPO / "examples" / "policy" / "team-policy.yaml"

SMALL_POLICY = """\
version: 1
metadata:
  schema:
    type: object
    required: [accuracy]
    properties:
      accuracy: {type: number, minimum: 0, maximum: 1}
tags:
  allowed: [dev, staging, production]
  unique_patterns: ['v\\d+']
  patterns: ['v\\d+']
promotion:
  production:
    when: "accuracy >= 0.9"
message:
  min_length: 5
"""


def policy_hash(ds: Dataset) -> str:
    """The hash of the policy in force (the test has set one)."""
    policy = ds.policy
    assert policy is not None
    return policy.hash


@pytest.fixture
def model(workdir: Path) -> Path:
    return write(workdir, "model.pt", b"weights-1")


@pytest.fixture
def governed(registry_root: RegistryRoot) -> Dataset:
    ds = registry_root.dataset()
    ds.set_policy(SMALL_POLICY, message="first rules")
    return ds


class TestStoringThePolicy:
    """set_policy / policy / policy_history."""

    def test_a_new_registry_has_no_policy_and_admits_any_well_formed_commit(
            self, registry_root: RegistryRoot, model: Path) -> None:
        """Without a policy every well-formed commit is admitted and records no policy."""
        ds = registry_root.dataset()
        assert ds.policy is None
        ds.commit("x", add_files=[model], metadata={"anything": [1, 2]}, tags=["whatever"])
        head = ds.current_commit
        assert head is not None and head.policy_hash is None
        assert ds.validate("y", add_files=[model]).ok

    @pytest.mark.parametrize("form", ["path", "str-path", "text", "loaded"])
    def test_policy_can_be_given_as_path_text_or_value(self, registry_root: RegistryRoot,
                                                       form: str) -> None:
        """A path, a path string, YAML text or a loaded Policy all set the same policy."""
        given: object = {"path": TEAM_POLICY, "str-path": str(TEAM_POLICY),
                 "text": TEAM_POLICY.read_text().replace(
                     "schema_file: schemas/model-card.schema.json",
                     "schema: {type: object}"),
                 "loaded": load_policy(TEAM_POLICY)}[form]
        ds = registry_root.dataset()
        digest = ds.set_policy(given)  # type: ignore[arg-type]  # each form set_policy takes
        assert isinstance(ds.policy, Policy)
        assert ds.policy.hash == digest
        assert Dataset(registry_root.url, "ds", **registry_root.storage_options).policy == ds.policy

    def test_stored_policy_is_self_contained(self, registry_root: RegistryRoot,
                                             tmp_path: Path) -> None:
        """The schema file a policy names is embedded: the registry works once it is gone."""
        folder = tmp_path / "pol"
        (folder / "schemas").mkdir(parents=True)
        (folder / "schemas" / "card.json").write_text(
            '{"type": "object", "required": ["framework"]}')
        (folder / "policy.yaml").write_text(
            "version: 1\nmetadata:\n  schema_file: schemas/card.json\n")
        ds = registry_root.dataset()
        ds.set_policy(folder / "policy.yaml")
        for path in sorted(folder.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        fresh = registry_root.dataset()
        assert fresh.policy is not None
        report = fresh.validate("message", add_files=[], metadata={})
        assert [v.rule for v in report.violations] == ["metadata.schema"]

    def test_policy_history_is_versioned_and_unchanged_policy_adds_no_version(
            self, governed: Dataset) -> None:
        """Each change adds a version (newest first); setting the same policy again does not."""
        first = governed.policy
        assert first is not None
        governed.set_policy(SMALL_POLICY)
        assert len(governed.policy_history()) == 1
        governed.set_policy(SMALL_POLICY.replace("min_length: 5", "min_length: 6"),
                            message="stricter", author="lead@example")
        governed.set_policy(None, message="drop rules")
        versions = governed.policy_history()
        assert [v.message for v in versions] == ["drop rules", "stricter", "first rules"]
        assert versions[2].policy_hash == first.hash
        assert versions[1].author == "lead@example"
        assert versions[0].policy_hash is None and governed.policy is None
        assert versions[2].load() == first

    def test_every_commit_records_the_policy_that_admitted_it(
            self, governed: Dataset, model: Path) -> None:
        """The policy hash in each commit is the policy in force when it was made."""
        first = policy_hash(governed)
        governed.commit("first model", add_files=[model], metadata={"accuracy": 0.5})
        governed.set_policy(SMALL_POLICY.replace("min_length: 5", "min_length: 7"))
        governed.commit("second model", add_files=[model], metadata={"accuracy": 0.6})
        older, newer = reversed(governed.history())
        assert older.policy_hash == first
        assert newer.policy_hash == policy_hash(governed) != first

    def test_a_policy_set_by_another_writer_applies_at_once(
            self, registry_root: RegistryRoot, model: Path) -> None:
        """A Dataset opened before the policy was set still judges by it on its next commit."""
        early = registry_root.dataset()
        early.commit("before rules", add_files=[model])
        registry_root.dataset().set_policy(SMALL_POLICY)
        with pytest.raises(PolicyViolationError):
            early.commit("no metadata at all", add_files=[model])

    def test_invalid_policy_is_refused_and_nothing_is_written(
            self, registry_root: RegistryRoot) -> None:
        """A policy with errors raises PolicyError naming the key, and stores nothing."""
        ds = registry_root.dataset()
        with pytest.raises(PolicyError) as info:
            ds.set_policy("version: 1\ntags:\n  alowed: [dev]\n")
        assert "alowed" in str(info.value) and "allowed" in str(info.value)
        assert registry_root.objects() == {}
        with pytest.raises(PolicyError, match="not found"):
            ds.set_policy("no-such-policy.yaml")

    def test_a_new_policy_whose_rule_reads_a_typo_is_refused(
            self, registry_root: RegistryRoot) -> None:
        """set_policy cross-checks rules against the schema before storing anything; a
        version stored before this check existed still loads, judges and re-applies."""
        typo = SMALL_POLICY.replace('when: "accuracy >= 0.9"', 'when: "acuracy >= 0.9"')
        ds = registry_root.dataset()
        with pytest.raises(PolicyError) as info:
            ds.set_policy(typo)
        assert "Did you mean 'accuracy'?" in str(info.value)
        assert info.value.key_path == "promotion.production.when" and info.value.line == 14
        assert registry_root.objects() == {}
        with pytest.raises(PolicyError, match="acuracy"):
            registry_root.catalog().create_dataset("other", policy=typo)
        with pytest.raises(PolicyError, match="acuracy"):
            registry_root.catalog().set_policy(typo)  # the root policy too
        # as an older Kirin stored it, unchecked: it must keep working
        old = load_policy_text(typo)
        ds._policies.append(old, message="stored before the cross-check", author="old")
        ds._ensure_info()
        reopened = registry_root.dataset()
        assert reopened.policy == old
        assert reopened.set_policy(old) == old.hash  # the version in force: not re-judged
        assert len(reopened.policy_history()) == 1

    def test_create_dataset_with_a_policy(self, registry_root: RegistryRoot) -> None:
        """create_dataset(policy=...) sets the first version; a bad policy creates nothing."""
        catalog = registry_root.catalog()
        ds = catalog.create_dataset("models", "team models", policy=TEAM_POLICY)
        assert ds.policy == load_policy(TEAM_POLICY)
        assert [v.message for v in ds.policy_history()] == ["policy set at creation"]
        with pytest.raises(PolicyError):
            catalog.create_dataset("other", policy="version: 2\n")
        assert catalog.datasets() == ["models"]


class TestTheGate:
    """commit() judges the proposal before writing; validate() is the same as a dry run."""

    def test_rejected_commit_reports_every_violation(self, governed: Dataset,
                                                     model: Path) -> None:
        """All violations come back at once, as values, with the dataset named."""
        with pytest.raises(PolicyViolationError) as info:
            governed.commit("bad", add_files=[model], metadata={"accuracy": -0.5},
                            tags=["production", "prod"])
        rules = sorted((v.rule, v.path) for v in info.value.violations)
        assert rules == [("message.min_length", "message"),
                         ("metadata.schema", "accuracy"),
                         ("promotion.production.when", "accuracy"),
                         ("tags.allowed", "prod")]
        assert "'ds'" in str(info.value)
        assert "prod" in str(info.value) and "dev, staging, production" in str(info.value)

    def test_rejected_commit_leaves_storage_byte_for_byte_unchanged(
            self, governed: Dataset, registry_root: RegistryRoot, model: Path,
            workdir: Path) -> None:
        """Every object under the root is the same, by name and hash, after a rejection."""
        governed.commit("a good one", add_files=[model], metadata={"accuracy": 0.95},
                        tags=["production", "v1"])
        before = registry_root.objects()
        big = write(workdir, "new.bin", b"x" * 3_000_000)
        with pytest.raises(PolicyViolationError):
            governed.commit("reuses v1", add_files=[big], metadata={"accuracy": 0.99},
                            tags=["v1"])
        with pytest.raises(PolicyViolationError):
            governed.commit("low accuracy", add_files={"m/new.bin": big},
                            metadata={"accuracy": 0.1}, tags=["production"])
        assert registry_root.objects() == before
        assert len(governed.history()) == 1
        assert governed.verify().ok

    def test_validate_matches_commit_and_writes_nothing(
            self, governed: Dataset, registry_root: RegistryRoot, model: Path) -> None:
        """validate() returns the violations commit() would raise, and stores nothing."""
        before = registry_root.objects()
        report = governed.validate("bad", add_files=[model], metadata={"accuracy": 0.2},
                                   tags=["production"])
        assert not report.ok
        assert registry_root.objects() == before
        with pytest.raises(PolicyViolationError) as info:
            governed.commit("bad", add_files=[model], metadata={"accuracy": 0.2},
                            tags=["production"])
        assert info.value.violations == report.violations
        good = governed.validate("fine model", add_files=[model], metadata={"accuracy": 0.95},
                                 tags=["production"])
        assert good.ok and good.policy_hash == policy_hash(governed)

    def test_validate_judges_a_promotion_with_no_file_changes(
            self, governed: Dataset, model: Path) -> None:
        """A tags-only proposal can be validated (commit() itself needs a change)."""
        governed.commit("base model", add_files=[model], metadata={"accuracy": 0.8})
        report = governed.validate("promote it", metadata={"accuracy": 0.8},
                                   tags=["production"])
        assert [v.rule for v in report.violations] == ["promotion.production.when"]

    def test_validate_on_an_old_checkout_refuses_like_commit(
            self, governed: Dataset, model: Path) -> None:
        """A dry run from an old checkout fails the same way commit() would."""
        first = governed.commit("first model", add_files=[model], metadata={"accuracy": 0.5})
        governed.commit("second one", add_files=[model], metadata={"accuracy": 0.6})
        governed.checkout(first)
        with pytest.raises(NotLatestCommitError):
            governed.validate("third one", add_files=[model], metadata={"accuracy": 0.7})

    def test_history_dependent_rules_see_the_history(self, governed: Dataset,
                                                     model: Path) -> None:
        """A version tag can be used once; the second use is refused naming the first."""
        first = governed.commit("release one", add_files=[model], metadata={"accuracy": 0.5},
                                tags=["v1"])
        with pytest.raises(PolicyViolationError) as info:
            governed.commit("release again", add_files=[model], metadata={"accuracy": 0.5},
                            tags=["v1"])
        (violation,) = info.value.violations
        assert violation.rule == "tags.unique"
        assert first[:8] in violation.message


class TestAuditAndQueries:
    def test_audit_lists_commits_that_would_fail_today(self, registry_root: RegistryRoot,
                                                       model: Path) -> None:
        """After the rules tighten, audit() names the commits that no longer pass."""
        ds = registry_root.dataset()
        ok = ds.commit("fine model", add_files=[model], metadata={"accuracy": 0.95})
        bad = ds.commit("weak model", add_files=[model], metadata={"accuracy": 0.4})
        assert ds.audit() == []
        ds.set_policy(SMALL_POLICY.replace("required: [accuracy]", "required: [accuracy]\n"
                                           "    minProperties: 1").replace(
            "minimum: 0,", "minimum: 0.5,"))
        failing = ds.audit()
        assert [c.hash for c, _ in failing] == [bad]
        assert [v.rule for v in failing[0][1].violations] == ["metadata.schema"]
        assert [c.hash for c, r in ds.audit(include_passing=True)] == [bad, ok]

    def test_find_commits_where(self, registry_root: RegistryRoot, model: Path) -> None:
        """where= filters by the policy language and combines with tags and limit."""
        ds = registry_root.dataset()
        ds.commit("a", add_files=[model], metadata={"accuracy": 0.95, "framework": "pytorch",
                                                    "hp": {"lr": 0.001}}, tags=["prod"])
        ds.commit("b", add_files=[model], metadata={"accuracy": 0.85, "framework": "pytorch"})
        ds.commit("c", add_files=[model], metadata={"accuracy": 0.97, "framework": "jax"},
                  tags=["prod"])
        ds.commit("d", add_files=[model], metadata={})

        def messages(**kwargs: object) -> list[str]:
            return [c.message for c in ds.find_commits(**kwargs)]  # type: ignore[arg-type]

        assert messages(where="accuracy > 0.9") == ["c", "a"]
        assert messages(where="accuracy > 0.9 and framework == 'pytorch'") == ["a"]
        assert messages(where="hp.lr <= 0.001") == ["a"]
        assert messages(where="not exists(accuracy)") == ["d"]
        assert messages(where="accuracy > 0.5", tags=["prod"], limit=1) == ["c"]
        assert messages(where="accuracy > 0.5",
                        metadata_filter=lambda m: m["framework"] == "jax") == ["c"]
        with pytest.raises(ExpressionSyntaxError) as info:
            ds.find_commits(where="accuracy >> 0.9")
        assert info.value.column == 10


def test_catalog_datasets_with_policies_are_independent(tmp_path: Path, model: Path) -> None:
    """Each dataset has its own policy; blobs are still shared under the root."""
    catalog = Catalog(tmp_path / "root")
    strict = catalog.create_dataset("strict", policy=SMALL_POLICY)
    loose = catalog.create_dataset("loose")
    loose.commit("x", add_files=[model])
    with pytest.raises(PolicyViolationError):
        strict.commit("x", add_files=[model])
    assert loose.policy is None and strict.policy is not None


def test_policy_version_by_number_hash_or_prefix(registry_root: RegistryRoot) -> None:
    """policy_version() names a version as `kirin policy history` lists it, or by hash."""
    from kirin.errors import PolicyVersionNotFoundError

    ds = registry_root.dataset()
    with pytest.raises(PolicyVersionNotFoundError, match="never had a policy"):
        ds.policy_version()
    first = ds.set_policy(SMALL_POLICY, message="first")
    second = ds.set_policy(SMALL_POLICY.replace("min_length: 5", "min_length: 6"))
    ds.set_policy(None, message="drop the rules")
    assert first is not None and second is not None
    assert ds.policy_version(0).policy_hash == first
    assert ds.policy_version("1").policy_hash == second
    assert ds.policy_version("#1").policy_hash == second
    assert ds.policy_version(first[:6]).seq == 0
    assert ds.policy_version(second.upper()).seq == 1
    assert ds.policy_version().policy_hash is None and ds.policy_version().seq == 2
    again = ds.set_policy(SMALL_POLICY)  # the first policy again: the newest version holds it
    assert again == first and ds.policy_version(first).seq == 3
    for bad in ("9", "xyz!", "ab", first[:4] + "zz"):
        with pytest.raises(PolicyVersionNotFoundError):
            ds.policy_version(bad)
