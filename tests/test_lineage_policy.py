"""Rules over links: a policy can require that a model links approved data (issue #18).

The gate judges the links of a proposed commit against what each linked
commit is *now* in its own dataset; ``audit`` re-judges them, so a data
version withdrawn later fails every model that links to it. Storage-free:
these are rules, checked on memory.
"""

from __future__ import annotations

from typing import Any

import pytest

from kirin import Dataset
from kirin.errors import PolicyError, PolicyViolationError
from kirin.policy import load_policy_text

from dataset_helpers import Source
from roots import RegistryRoot

pytestmark = pytest.mark.storage_free

POLICY = """\
version: 1
tags:
  allowed: [dev, staging, production]
stages: [dev, staging, production]
lineage:
  production:
    requires:
      - role: training
        dataset: churn_data
        tags: [approved]
        where: "rows >= 100"
        not_tags: [recalled]
    code: true
"""


@pytest.fixture
def root(registry_root: RegistryRoot) -> RegistryRoot:
    registry_root.catalog().create_dataset("model", policy=POLICY)
    return registry_root


def data(root: RegistryRoot, src: Source, rows: int, tags: list[str] | None = None) -> str:
    return root.dataset("churn_data").commit(
        f"{rows} rows", add_files={"train.csv": src("train.csv", f"rows {rows}")},
        metadata={"rows": rows}, tags=tags or [])


def model(root: RegistryRoot, src: Source, lineage: Any, tags: tuple[str, ...] = (
        "production",), name_: str = "model", **kwargs: Any) -> str:
    return root.dataset(name_).commit(
        "a model", add_files={"model.pt": src("model.pt", repr(lineage))}, lineage=lineage,
        tags=list(tags), **kwargs)


def rules(error: PolicyViolationError) -> list[tuple[str, str]]:
    return [(v.rule, v.path) for v in error.violations]


def test_production_needs_a_training_link_and_the_code(root: RegistryRoot,
                                                       src: Source) -> None:
    with pytest.raises(PolicyViolationError) as caught:
        model(root, src, None)
    assert rules(caught.value) == [("lineage.production.code", "code"),
                                   ("lineage.production.requires[0]", "training")]
    assert "--from training=churn_data@REF" in caught.value.violations[1].message
    assert root.dataset("model").is_empty()
    model(root, src, None, tags=("dev",))  # other tags need nothing


def test_approved_data_is_admitted_by_tag_or_by_its_promotion(root: RegistryRoot,
                                                              src: Source) -> None:
    d1 = data(root, src, 1000)
    root.dataset("churn_data").promote(d1, ["approved"])
    for ref in ("approved", d1):  # the promotion itself, or the commit it promoted
        model(root, src, {"training": f"churn_data@{ref}"}, code="3f9a2c1")


def test_every_violation_names_the_link_and_the_rule(root: RegistryRoot,
                                                     src: Source) -> None:
    small = data(root, src, 10, ["recalled"])
    with pytest.raises(PolicyViolationError) as caught:
        model(root, src, {"training": "churn_data@recalled"}, code="abc")
    found = caught.value.violations
    shown = f"training=churn_data@{small[:8]}"
    assert {v.rule for v in found} == {"lineage.production.requires[0]"}
    assert all(v.path == shown and shown in v.message for v in found)
    assert [v.expected for v in found] == ["a linked version tagged 'approved'",
                                           "a linked version not tagged 'recalled'",
                                           "linked metadata where rows >= 100"]


def test_a_link_to_another_dataset_does_not_count(root: RegistryRoot, src: Source) -> None:
    other = root.dataset("other_data").commit("x", add_files=[src("x.csv")],
                                              tags=["approved"], metadata={"rows": 500})
    with pytest.raises(PolicyViolationError) as caught:
        model(root, src, {"training": f"other_data@{other}"}, code="abc")
    assert "a 'training' link to 'churn_data'" in caught.value.violations[0].message


def test_every_link_of_the_role_must_satisfy_the_rule(root: RegistryRoot,
                                                      src: Source) -> None:
    good = data(root, src, 1000, ["approved"])
    bad = data(root, src, 1000)
    with pytest.raises(PolicyViolationError) as caught:
        model(root, src, {"training": [f"churn_data@{good}", f"churn_data@{bad}"]},
              code="abc")
    assert rules(caught.value) == [("lineage.production.requires[0]",
                                    f"training=churn_data@{bad[:8]}")]


def test_a_stage_rule_needs_the_linked_version_to_hold_it_now(registry_root: RegistryRoot,
                                                              src: Source) -> None:
    registry_root.catalog().create_dataset("model", policy=POLICY.replace(
        "tags: [approved]", "stage: approved").replace("    code: true\n", ""))
    d1 = data(registry_root, src, 1000, ["approved"])
    model(registry_root, src, {"training": f"churn_data@{d1}"})
    data(registry_root, src, 2000, ["approved"])  # a newer version takes the stage
    with pytest.raises(PolicyViolationError, match="does not hold stage 'approved'"):
        model(registry_root, src, {"training": f"churn_data@{d1}"})


def test_a_withdrawn_data_version_fails_audit_for_every_model_linking_it(
        root: RegistryRoot, src: Source) -> None:
    d1 = data(root, src, 1000)
    churn = root.dataset("churn_data")
    churn.promote(d1, ["approved"])
    m1 = model(root, src, {"training": "churn_data@approved"}, tags=("staging",),
               code="abc")
    models = root.dataset("model")
    production = models.promote(m1, ["production"])
    direct = model(root, src, {"training": f"churn_data@{d1}"}, code="def")
    assert not models.audit()
    churn.withdraw("approved", "Withdrawn: label leakage found in train.csv")
    for against in ("current", "admitting"):
        failed = Dataset(models.root_dir, "model", fs=models.fs).audit(against=against)
        assert [c.hash for c, _ in failed] == [direct, production], against
        for _, report in failed:
            assert any("withdrawn from 'approved'" in v.message for v in report.violations)
    used = churn.used_by(d1, stage="production")
    assert [u.commit.hash for u in used.uses] == [direct]  # the newest production holder


def test_allow_withdrawn_admits_a_withdrawn_version(registry_root: RegistryRoot,
                                                    src: Source) -> None:
    registry_root.catalog().create_dataset("model", policy=POLICY.replace(
        "not_tags: [recalled]", "allow_withdrawn: true"))
    d1 = data(registry_root, src, 1000, ["approved"])
    registry_root.dataset("churn_data").withdraw("approved", "Withdrawn for a while")
    model(registry_root, src, {"training": f"churn_data@{d1}"}, code="abc")


def test_a_linked_commit_that_is_gone_fails_the_rule_in_audit(root: RegistryRoot,
                                                              src: Source) -> None:
    data(root, src, 1000, ["approved"])
    m1 = model(root, src, {"training": "churn_data@approved"}, code="abc")
    root.catalog().delete_dataset("churn_data")
    [(commit, report)] = root.dataset("model").audit()
    assert commit.hash == m1
    assert "does not exist" in report.violations[0].message


def test_validate_judges_the_links_without_writing(root: RegistryRoot, src: Source) -> None:
    data(root, src, 10)
    report = root.dataset("model").validate(
        "a model", add_files=[src("model.pt")], tags=["production"],
        lineage={"training": "churn_data@" + root.dataset("churn_data").history()[0].hash},
        code="abc")
    assert not report.ok and root.dataset("model").is_empty()


def test_a_lineage_violation_can_be_overridden(registry_root: RegistryRoot,
                                               src: Source) -> None:
    registry_root.catalog().create_dataset("model", policy=POLICY + """\
overrides:
  rules: ["lineage.*"]
""")
    digest = model(registry_root, src, None, override=True, reason="hotfix, data follows")
    override = registry_root.dataset("model").resolve(digest).override
    assert override is not None
    assert {v["rule"] for v in override["violations"]} == {
        "lineage.production.code", "lineage.production.requires[0]"}


@pytest.mark.parametrize(("text", "message"), [
    ("lineage: {prod: {requires: [{role: training}]}}", "outside the tag vocabulary"),
    ("lineage: {production: {requires: [{role: Training}]}}", "role"),
    ("lineage: {production: {requires: [{role: training, dataset: '../x'}]}}", "dataset"),
    ("lineage: {production: {requires: [{role: training, where: 'rows >'}]}}", "where"),
    ("lineage: {production: {requires: [{role: training, stages: [x]}]}}", "stages"),
    ("lineage: {production: {code: yes-please}}", "code"),
])
def test_a_bad_lineage_rule_is_a_policy_error(text: str, message: str) -> None:
    base = "version: 1\ntags: {allowed: [production]}\n"
    with pytest.raises(PolicyError, match=message):
        load_policy_text(base + text)


def test_a_policy_without_lineage_keeps_its_hash() -> None:
    """New keys default to nothing: existing policies hash as before."""
    text = "version: 1\ntags: {allowed: [production]}\n"
    policy = load_policy_text(text)
    assert "lineage" not in policy.canonical_json()


def test_a_root_policy_rule_over_links_governs_every_dataset(registry_root: RegistryRoot,
                                                             src: Source) -> None:
    registry_root.catalog().set_policy(load_policy_text(POLICY), message="data rules")
    with pytest.raises(PolicyViolationError) as caught:
        model(registry_root, src, None, name_="fresh")
    assert {(v.rule, v.source) for v in caught.value.violations} == {
        ("lineage.production.code", "root"), ("lineage.production.requires[0]", "root")}


def test_policy_check_does_not_judge_a_link_rule_by_this_schema() -> None:
    """``where`` reads the linked commit's metadata: this dataset's closed schema, which has
    no ``rows``, is not the one to compare it with."""
    from kirin.policy.crosscheck import cross_check

    policy = load_policy_text(POLICY + """metadata:
  schema: {type: object, properties: {accuracy: {type: number}},
           additionalProperties: false}
""")
    assert cross_check(policy) == ()
