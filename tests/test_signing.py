"""Issue 13, first part: SSH-key identities in the policy, signed records, the gate's
checks of who signed, and verify's check of every signature.

Keys are made with the system's ``ssh-keygen``; a signed record is also checked
with ``ssh-keygen -Y verify``, so an auditor needs nothing but OpenSSH.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kirin.errors import PolicyError, PolicyViolationError, SignatureError
from kirin.records import encode_record, signed_message
from kirin.sshsig import PublicKey, verify

from dataset_helpers import Source, reopen
from roots import RegistryRoot
from ssh_keys import Keys, make_keys, signature_attacks


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return make_keys(tmp_path, ("alice", "bob", "mallory"))


def signed_policy(keys: Keys, revoked: str = "") -> str:
    return f"""\
version: 1
tags: {{allowed: [staging, production]}}
stages: [staging, production]
signing:
  principals:
    alice: ["{keys['alice'][1]}"]
    bob: ["{keys['bob'][1]}"]
  groups:
    ml-team: [alice, bob]
    release-managers: [alice]
  revoked: [{revoked}]
  require:
    commit: [ml-team]
    promote: {{production: [release-managers]}}
    withdraw: [release-managers]
"""


def test_the_gate_checks_who_signed(registry_root: RegistryRoot, src: Source,
                                   keys: Keys) -> None:
    ds = registry_root.catalog().create_dataset("models", policy=signed_policy(keys))
    alice, bob, mallory = (keys[n][0] for n in ("alice", "bob", "mallory"))
    before = registry_root.objects()
    with pytest.raises(PolicyViolationError, match="it is unsigned") as caught:
        ds.commit("a model", add_files=[src("model.pt")])
    assert [v.rule for v in caught.value.violations] == ["signing.require.commit"]
    with pytest.raises(PolicyViolationError, match="belongs to no principal"):
        ds.commit("a model", add_files=[src("model.pt")], signer=mallory)
    assert registry_root.objects() == before  # refused before anything was written

    model = ds.commit("a model", add_files=[src("model.pt")], signer=bob)
    staged = ds.promote(model, ["staging"], signer=bob)
    with pytest.raises(PolicyViolationError) as caught:
        ds.promote(staged, ["production"], signer=bob)
    [violation] = caught.value.violations
    assert (violation.rule, violation.path) == ("signing.require.promote.production", "bob")
    assert "'bob' may not sign" in violation.message
    released = ds.promote(staged, ["production"], signer=alice)
    with pytest.raises(PolicyViolationError, match=r"signing\.require\.withdraw"):
        ds.withdraw("production", "withdrawn by bob", signer=bob)

    fresh = reopen(ds)
    for digest, key in ((model, keys["bob"][1]), (released, keys["alice"][1])):
        signature = fresh.resolve(digest).signature
        assert signature is not None and signature["key"] == PublicKey.parse(key).openssh
        assert verify(signature["sig"], signed_message("models", digest)) == PublicKey.parse(key)
    assert fresh.verify().ok


@pytest.mark.storage_free
def test_a_record_signature_checks_with_ssh_keygen(registry_root: RegistryRoot, src: Source,
                                                  keys: Keys,
                                                  tmp_path: Path) -> None:
    ds = registry_root.catalog().create_dataset("models", policy=signed_policy(keys))
    digest = ds.commit("a model", add_files=[src("model.pt")], signer=keys["alice"][0])
    signature = ds.resolve(digest).signature
    assert signature is not None
    (tmp_path / "allowed").write_text(f"alice {keys['alice'][1]}\n")
    (tmp_path / "record.sig").write_text(str(signature["sig"]))
    checked = subprocess.run(
        ["ssh-keygen", "-Y", "verify", "-n", "kirin", "-f", str(tmp_path / "allowed"),
         "-I", "alice", "-s", str(tmp_path / "record.sig")],
        input=signed_message("models", digest), capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr
    other = subprocess.run(
        ["ssh-keygen", "-Y", "verify", "-n", "kirin", "-f", str(tmp_path / "allowed"),
         "-I", "alice", "-s", str(tmp_path / "record.sig")],
        input=signed_message("other", digest), capture_output=True, check=False)
    assert other.returncode != 0  # bound to the dataset's name


@pytest.mark.storage_free
def test_the_environment_key_signs_and_a_revoked_key_signs_nothing(
        registry_root: RegistryRoot, src: Source, keys: Keys,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = registry_root.catalog().create_dataset("models", policy=signed_policy(keys))
    monkeypatch.setenv("KIRIN_SIGNING_KEY", str(tmp_path / "keys" / "bob"))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    digest = registry_root.dataset("models").commit("a model", add_files=[src("model.pt")])
    assert ds.resolve(digest).signature is not None
    assert ds.validate("another", add_files=[src("b.pt")]).ok
    bob = PublicKey.parse(keys["bob"][1]).fingerprint
    ds.set_policy(signed_policy(keys, revoked=f'"{bob}"'))
    with pytest.raises(PolicyViolationError, match="is revoked"):
        registry_root.dataset("models").commit("another", add_files=[src("b.pt")])
    problems = reopen(ds).verify().problems  # the old record was admitted before revocation
    assert not [p for p in problems if p.kind == "signature"]


def _rewrite(root: RegistryRoot, seq: int, change: Any) -> None:
    path = root.log_path("models", seq)
    record = json.loads(root.cat(path))
    change(record)
    root.pipe(path, encode_record(record))


def test_verify_finds_forged_stripped_and_replayed_signatures(
        registry_root: RegistryRoot, src: Source,
        keys: Keys) -> None:
    ds = registry_root.catalog().create_dataset("models", policy=signed_policy(keys))
    alice, mallory = keys["alice"][0], keys["mallory"][0]
    first = ds.commit("a model", add_files=[src("model.pt")], signer=alice)
    staged = ds.promote(first, ["staging"], signer=alice)
    released = ds.promote(staged, ["production"], signer=alice)
    assert reopen(ds).verify().ok
    replay, forge, strip = signature_attacks(reopen(ds).resolve(first).signature,
                                             keys["alice"][1], mallory)

    for seq, change, expected in ((1, replay, "bad signature"), (1, forge, "bad signature"),
                                  (2, strip, "it is unsigned")):
        clone = registry_root.clone()
        _rewrite(clone, seq, change)
        problems = [p for p in clone.dataset("models").verify().problems
                    if p.kind == "signature"]
        assert problems and all(expected in p.message for p in problems), problems
        assert {p.commits for p in problems} == {((staged if seq == 1 else released),)}


@pytest.mark.storage_free
@pytest.mark.parametrize(("text", "message"), [
    ('principals: {alice: ["ssh-ed25519 AAAA"]}', "public key"),
    ('principals: {alice: []}', "has no key"),
    ('principals: {alice: [KEY]}\n  groups: {rm: [alise]}', "Did you mean 'alice'"),
    ('principals: {alice: [KEY]}\n  require: {commit: [bob]}', "neither a principal"),
    ('principals: {alice: [KEY]}\n  require: {commit: []}', "let nobody act"),
    ('principals: {alice: [KEY]}\n  require: {aprovals: 2}', "unknown key 'aprovals'"),
    ('principals: {alice: [KEY]}\n  require: {approvals: {x: {count: 2, by: [alice]}}}',
     "more than the 1 principal"),
    ('principals: {alice: [KEY], bob: [KEY]}', "listed for 'alice' and 'bob'"),
    ('principals: {alice: [KEY]}\n  groups: {alice: [alice]}', "both a principal and a group"),
    ('principals: {alice: [KEY]}\n  revoked: ["SHA256:short"]', "revoked"),
    # the identity point: a key for which one signature matches every message
    ('principals: {alice: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAEAAAAAAAAAAAAAAAAAAAAAAAAAA'
     'AAAAAAAAAAAAAAA"]}', "alice.*not a point of the Ed25519 group"),
])
def test_the_signing_section_is_checked(keys: Keys,
                                        text: str, message: str) -> None:
    from kirin.policy import load_policy_text

    with pytest.raises(PolicyError, match=message):
        load_policy_text("version: 1\nsigning:\n  " + text.replace(
            "KEY", f'"{keys["alice"][1]}"'))


@pytest.mark.storage_free
def test_a_signer_must_be_a_signer(registry_root: RegistryRoot, src: Source) -> None:
    from kirin.errors import InvalidArgumentTypeError

    with pytest.raises(InvalidArgumentTypeError, match="signer"):
        registry_root.dataset().commit("m", add_files=[src("a")],
                                       signer="~/.ssh/id_ed25519")  # type: ignore[arg-type]


@pytest.mark.storage_free
def test_an_unsigned_registry_stays_unsigned(registry_root: RegistryRoot, src: Source,
                                            keys: Keys,
                                            monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    """Signing is switched on by the policy: a configured key alone signs nothing."""
    monkeypatch.setenv("KIRIN_SIGNING_KEY", str(tmp_path / "keys" / "bob"))
    ds = registry_root.dataset()
    digest = ds.commit("m", add_files=[src("a")])
    assert ds.resolve(digest).signature is None
    assert ds.resolve(ds.commit("n", add_files=[src("b")], signer=keys["bob"][0])).signature
    with pytest.raises(SignatureError):
        verify("not a signature", b"data")
