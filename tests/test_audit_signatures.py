"""Issue 13: ``audit`` checks every signature as the gate did, and reports what an
unauthorised policy version admitted instead of refusing to run.

Each case is an attack made with raw bucket access after the fact (a record's
signature swapped or stripped, an approval deleted, a policy version appended
without the admins); ``audit`` must fail the commits it touched in both modes,
agree with ``verify``, and say which rule and which commit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kirin import layout
from kirin.errors import PolicyViolationError
from kirin.records import encode_record
from kirin.sshsig import PublicKey

from dataset_helpers import Source, reopen
from roots import RegistryRoot
from ssh_keys import Keys, make_keys, signature_attacks
from test_policy_trust import forge_version


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return make_keys(tmp_path, ("alice", "bob", "carol", "mallory"))


def team_policy(keys: Keys, revoked: str = "", min_length: int = 3) -> str:
    return f"""\
version: 1
message: {{min_length: {min_length}}}
tags: {{allowed: [staging, production]}}
stages: [staging, production]
signing:
  principals:
    alice: ["{keys['alice'][1]}"]
    bob: ["{keys['bob'][1]}"]
    carol: ["{keys['carol'][1]}"]
  groups:
    ml-team: [alice, bob, carol]
    release-managers: [alice]
    ml-leads: [bob, carol]
    admins: [alice, bob]
  revoked: [{revoked}]
  require:
    commit: [ml-team]
    promote: {{production: [release-managers]}}
    approvals: {{production: {{by: [ml-leads], count: 2}}}}
    policy: {{by: [admins], count: 2}}
"""


def _released(registry_root: RegistryRoot, src: Source, keys: Keys) -> tuple[str, str, str]:
    """A model by alice, approved by two ml-leads (bob, carol), released by alice; then a
    model by bob. Returns their hashes: (model, release, later)."""
    ds = registry_root.catalog().create_dataset("models", policy=team_policy(keys))
    alice = keys["alice"][0]
    model = ds.commit("a model", add_files=[src("model.pt")], signer=alice)
    for name in ("bob", "carol"):
        ds.approve(model, "production", "looks good", signer=keys[name][0])
    released = ds.promote(model, ["production"], signer=alice)
    later = ds.commit("next model", add_files=[src("next.pt")], signer=keys["bob"][0])
    return model, released, later


def _rewrite(root: RegistryRoot, seq: int, change: Any) -> None:
    path = root.log_path("models", seq)
    record = json.loads(root.cat(path))
    change(record)
    root.pipe(path, encode_record(record))


def _failing(ds: Any, against: str) -> dict[str, list[str]]:
    return {c.hash: sorted(v.rule for v in r.violations) for c, r in ds.audit(against=against)}


def test_a_sound_signed_history_passes_both_audits(registry_root: RegistryRoot, src: Source,
                                                    keys: Keys) -> None:
    _released(registry_root, src, keys)
    ds = registry_root.dataset("models")
    for against in ("current", "admitting"):
        assert ds.audit(against=against) == [], against
    assert len(ds.audit(include_passing=True)) == 3


def test_audit_fails_forged_replayed_and_stripped_signatures(
        registry_root: RegistryRoot, src: Source, keys: Keys) -> None:
    model, released, _ = _released(registry_root, src, keys)
    replay, forge, strip = signature_attacks(  # alice's genuine signature of the model...
        reopen(registry_root.dataset("models")).resolve(model).signature, keys["alice"][1],
        keys["mallory"][0])

    unsigned = ["signing.require.commit", "signing.require.promote.production"]
    for change, rules in ((replay, ["signature"]), (forge, ["signature"]), (strip, unsigned)):
        clone = registry_root.clone()
        _rewrite(clone, 1, change)  # the release
        ds = clone.dataset("models")
        for against in ("current", "admitting"):
            assert _failing(ds, against) == {released: rules}, (change.__name__, against)
        [(_, report)] = ds.audit()
        assert all(released[:8] in v.message for v in report.violations
                   if v.rule == "signature")
        verified = {p.commits for p in ds.verify().problems if p.kind == "signature"}
        assert verified == {(released,)}, verified  # verify and audit agree


def test_audit_recounts_approvals_as_stored_now(registry_root: RegistryRoot, src: Source,
                                                keys: Keys) -> None:
    model, released, _ = _released(registry_root, src, keys)
    folder = registry_root.join(layout.approvals("models", model, "production"))
    registry_root.rm(f"{folder}/{sorted(registry_root.objects(folder))[0]}")
    ds = registry_root.dataset("models")
    for against in ("current", "admitting"):
        [(commit, report)] = ds.audit(against=against)
        assert commit.hash == released
        [violation] = report.violations
        assert violation.rule == "signing.require.approvals.production"
        assert "it has 1" in violation.message and model[:8] in violation.message


@pytest.mark.storage_free
def test_a_key_revoked_later_fails_today_but_not_the_gate_that_held(
        registry_root: RegistryRoot, src: Source, keys: Keys) -> None:
    """Revoking bob's key: his commit would be refused today, and so would the release he
    approved (one approval short); both were rightly admitted then."""
    _, released, later = _released(registry_root, src, keys)
    ds = registry_root.dataset("models")
    bob_fingerprint = PublicKey.parse(keys["bob"][1]).fingerprint
    ds.set_policy(team_policy(keys, revoked=bob_fingerprint),
                  signers=[keys["alice"][0], keys["bob"][0]])
    assert _failing(ds, "current") == {later: ["signing.revoked"],
                                       released: ["signing.require.approvals.production"]}
    assert _failing(ds, "admitting") == {}


@pytest.mark.storage_free
def test_audit_reports_what_an_unauthorised_policy_admitted(
        registry_root: RegistryRoot, src: Source, keys: Keys) -> None:
    """A writer appends a looser version, commits under it, and puts the old one back:
    audit does not refuse to run; it names every commit the forged version admitted."""
    model, _, later = _released(registry_root, src, keys)
    forge_version(registry_root, "models", "version: 1\n")  # "loosen it for a minute"
    from kirin.policy import load_policy_text
    from kirin.records import make_record

    loose = load_policy_text("version: 1\n")
    fresh = reopen(registry_root.dataset("models"))
    head = fresh.current_commit
    assert head is not None
    snapshot = {name: (f.hash, f.size) for name, f in head.files.items()}
    record = make_record(seq=3, parent=head.hash, snapshot=snapshot, added={}, removed=(),
                         message="x", metadata={}, tags=(), timestamp=head.timestamp,
                         author="mallory", policy=loose.hash)
    registry_root.pipe(registry_root.log_path("models", 3), encode_record(record))
    forge_version(registry_root, "models", team_policy(keys))  # and "put it back"
    ds = reopen(registry_root.dataset("models"))
    for against in ("current", "admitting"):
        failing = _failing(ds, against)
        assert record["hash"] in failing and "policy-trust" in failing[record["hash"]]
        assert model not in failing and later not in failing, (against, failing)
    # judged today by the newest authorised version: an unsigned one-letter message fails
    assert set(_failing(ds, "current")[record["hash"]]) >= {
        "policy-trust", "message.min_length", "signing.require.commit"}


@pytest.mark.storage_free
def test_an_approval_by_a_signer_removed_since_does_not_count(
        registry_root: RegistryRoot, src: Source, keys: Keys) -> None:
    _released(registry_root, src, keys)
    ds = registry_root.dataset("models")
    alice = keys["alice"][0]
    candidate = ds.commit("model three", add_files=[src("three.pt")], signer=alice)
    for name in ("bob", "carol"):
        ds.approve(candidate, "production", "fine", signer=keys[name][0])
    without_bob = team_policy(keys).replace("ml-leads: [bob, carol]",
                                            "ml-leads: [carol, alice]")
    ds.set_policy(without_bob, signers=[alice, keys["bob"][0]])
    with pytest.raises(PolicyViolationError, match=r"it has 1 .*carol") as caught:
        ds.promote(candidate, ["production"], signer=alice)
    assert [v.rule for v in caught.value.violations] == ["signing.require.approvals.production"]
    assert {a.principal for a in ds.approvals(candidate, "production")} == {"bob", "carol"}
