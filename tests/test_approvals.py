"""Issue 13: approvals. ``production`` needs 2 distinct ``ml-leads``, none of them the author.

Each approval is a signed, write-once object approving exactly one commit for one
stage; copied elsewhere it no longer counts. Keys are made with ``ssh-keygen``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kirin.errors import InvalidInputError, PolicyViolationError

from dataset_helpers import Source, reopen
from roots import RegistryRoot
from ssh_keys import Keys, make_keys

NAMES = ("alice", "bob", "carol", "dan")


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return make_keys(tmp_path, (*NAMES, "mallory"))


def policy(keys: Keys) -> str:
    principals = ", ".join(f'{n}: ["{keys[n][1].strip()}"]' for n in NAMES)
    return f"""\
version: 1
tags: {{allowed: [staging, production]}}
stages: [staging, production]
signing:
  principals: {{{principals}}}
  groups: {{ml-leads: [alice, bob, carol]}}
  require:
    approvals: {{production: {{count: 2, by: [ml-leads]}}}}
"""


def test_production_needs_two_approvers_none_the_author(registry_root: RegistryRoot,
                                                        src: Source, keys: Keys) -> None:
    ds = registry_root.catalog().create_dataset("models", policy=policy(keys))
    alice, bob, carol = (keys[n][0] for n in ("alice", "bob", "carol"))
    model = ds.commit("a model", add_files=[src("model.pt")], signer=alice)  # alice is author
    with pytest.raises(PolicyViolationError, match="it has 0"):
        ds.promote(model, ["production"])
    ds.approve(model, "production", "I reviewed the eval", signer=alice)  # the author: no
    ds.approve(model, "production", "Fairness checked", signer=bob)
    with pytest.raises(PolicyViolationError) as caught:
        ds.promote(model, ["production"])
    [violation] = caught.value.violations
    assert violation.rule == "signing.require.approvals.production"
    assert "it has 1 (bob)" in violation.message and "author (alice)" in violation.message
    with pytest.raises(InvalidInputError, match="already approved"):
        ds.approve(model, "production", "again", signer=bob)
    ds.approve(model, "production", "Latency checked", signer=carol)
    released = ds.promote(model, ["production"])
    fresh = reopen(ds)
    assert fresh.resolve("production").hash == released
    found = {a.principal: a for a in fresh.approvals(model)}
    assert set(found) == {"alice", "bob", "carol"} and all(a.problem is None
                                                            for a in found.values())
    assert fresh.verify().ok


@pytest.mark.storage_free
def test_an_approval_approves_one_commit_for_one_stage(registry_root: RegistryRoot,
                                                      src: Source, keys: Keys) -> None:
    ds = registry_root.catalog().create_dataset("models", policy=policy(keys))
    bob, carol, dan = (keys[n][0] for n in ("bob", "carol", "dan"))
    approved = ds.commit("approved model", add_files=[src("a.pt")])
    other = ds.commit("other model", add_files=[src("b.pt")])
    ds.approve(approved, "production", "ok", signer=bob)
    ds.approve(approved, "production", "ok", signer=carol)
    ds.approve(other, "staging", "ok", signer=bob)  # another stage: counts nothing here
    # replay: copy bob's and carol's approvals of `approved` onto `other`
    from kirin import layout

    source = registry_root.join(layout.approvals("models", approved, "production"))
    target = registry_root.join(layout.approvals("models", other, "production"))
    for name in registry_root.objects(source):
        registry_root.pipe(f"{target}/{name}", registry_root.cat(f"{source}/{name}"))
    with pytest.raises(PolicyViolationError, match="it has 0"):
        ds.promote(other, ["production"])
    assert all("another dataset, commit or stage" in (a.problem or "")
               for a in ds.approvals(other, "production"))
    with pytest.raises(InvalidInputError, match="may not approve"):
        ds.approve(other, "production", "not a lead", signer=dan)
    with pytest.raises(InvalidInputError, match="may not approve"):
        ds.approve(other, "production", "not a principal", signer=keys["mallory"][0])
    with pytest.raises(PolicyViolationError, match="promote an approved commit"):
        ds.commit("tag it directly", add_files=[src("c.pt")], tags=["production"])
    ds.promote(approved, ["production"])


def test_verify_reports_a_promotion_whose_approvals_were_deleted(
        registry_root: RegistryRoot, src: Source, keys: Keys) -> None:
    ds = registry_root.catalog().create_dataset("models", policy=policy(keys))
    model = ds.commit("a model", add_files=[src("a.pt")])
    for name in ("bob", "carol"):
        ds.approve(model, "production", "ok", signer=keys[name][0])
    released = ds.promote(model, ["production"])
    from kirin import layout

    folder = registry_root.join(layout.approvals("models", model, "production"))
    registry_root.rm(f"{folder}/{sorted(registry_root.objects(folder))[0]}")
    [problem] = [p for p in reopen(ds).verify().problems if p.kind == "signature"]
    assert problem.commits == (released,) and "lacks approvals" in problem.message
