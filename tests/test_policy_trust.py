"""Issue 13: a chain of trust for policy changes.

A version whose policy says ``signing.require.policy: {by: [admins], count: 2}``
can only be followed by a version signed by two admins it names. A writer with
raw bucket access who appends a looser version of their own is refused by every
gate and reported by ``verify``, with the commits it admitted.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kirin import Catalog
from kirin.errors import CorruptObjectError, InvalidInputError, PolicyViolationError
from kirin.policy import load_policy_text
from kirin.records import record_hash

from dataset_helpers import Source, reopen
from roots import RegistryRoot
from ssh_keys import Keys, make_keys


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return make_keys(tmp_path, ("alice", "bob", "carol", "mallory"))


def policy(keys: Keys, min_length: int = 5) -> str:
    principals = ", ".join(f'{n}: ["{keys[n][1].strip()}"]' for n in ("alice", "bob", "carol"))
    return f"""\
version: 1
message: {{min_length: {min_length}}}
signing:
  principals: {{{principals}}}
  groups: {{admins: [alice, bob, carol]}}
  require:
    policy: {{by: [admins], count: 2}}
"""


def test_a_new_version_needs_two_admins(registry_root: RegistryRoot, src: Source,
                                        keys: Keys) -> None:
    ds = registry_root.catalog().create_dataset("models", policy=policy(keys))
    alice, bob, mallory = keys["alice"][0], keys["bob"][0], keys["mallory"][0]
    looser = policy(keys, min_length=1)
    before = registry_root.objects()
    for signers in ([], [alice], [alice, alice], [alice, mallory]):
        with pytest.raises(PolicyViolationError, match=r"signing\.require\.policy"):
            ds.set_policy(looser, signers=signers)
    with pytest.raises(PolicyViolationError):
        ds.set_policy(None, signers=[alice])  # removing the policy is a change too
    assert registry_root.objects() == before
    # bob signs beforehand (another machine); alice signs as she applies
    from_bob = ds.sign_policy(looser, bob)
    digest = ds.set_policy(looser, signers=[alice], signatures=[from_bob])
    fresh = reopen(ds)
    assert fresh.policy is not None and fresh.policy.hash == digest
    fresh.commit("ok", add_files=[src("a.txt")])  # judged by the new, trusted version
    assert fresh.verify().ok


@pytest.mark.storage_free
def test_a_signature_for_one_version_authorises_no_other(registry_root: RegistryRoot,
                                                         keys: Keys) -> None:
    ds = registry_root.catalog().create_dataset("models", policy=policy(keys))
    alice, bob = keys["alice"][0], keys["bob"][0]
    for_other_policy = ds.sign_policy(policy(keys, min_length=2), bob)
    with pytest.raises(PolicyViolationError, match="it has 1"):
        ds.set_policy(policy(keys, min_length=3), signers=[alice],
                      signatures=[for_other_policy])
    other = registry_root.catalog().create_dataset("other", policy=policy(keys))
    for_other_dataset = other.sign_policy(policy(keys, min_length=3), bob)
    with pytest.raises(PolicyViolationError, match="it has 1"):
        ds.set_policy(policy(keys, min_length=3), signers=[alice],
                      signatures=[for_other_dataset])
    stale = ds.sign_policy(policy(keys, min_length=3), bob)
    ds.set_policy(policy(keys, min_length=4), signers=[alice, bob])
    with pytest.raises(PolicyViolationError):  # signed for version #1, now #2 would be next
        ds.set_policy(policy(keys, min_length=3), signers=[alice], signatures=[stale])


def forge_version(root: RegistryRoot, dataset: str, text: str | None) -> None:
    """Append a policy version with raw bucket access, as an attacker would (no signatures)."""
    folder = root.join("datasets", dataset, "policy")
    seq = len([p for p in root.objects(folder)])
    last = json.loads(root.cat(f"{folder}/{seq - 1:020d}.json"))
    loaded = load_policy_text(text) if text is not None else None
    entry = {"kirin": 1, "seq": seq, "parent": last["hash"],
             "policy_hash": loaded.hash if loaded else None,
             "policy": loaded.stored_text() if loaded else None,
             "timestamp": datetime.now(timezone.utc).isoformat(), "author": "mallory",
             "message": "temporary"}
    entry["hash"] = record_hash(entry)
    root.pipe(f"{folder}/{seq:020d}.json",
              (json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n").encode())


def test_a_version_appended_without_the_admins_is_refused_by_every_gate(
        registry_root: RegistryRoot, src: Source, keys: Keys) -> None:
    ds = registry_root.catalog().create_dataset("models", policy=policy(keys))
    ds.commit("first model", add_files=[src("a.txt")])
    forge_version(registry_root, "models", "version: 1\n")  # "loosen it for a minute"
    fresh = reopen(ds)
    with pytest.raises(CorruptObjectError, match="not authorised"):
        fresh.commit("x", add_files=[src("b.txt")])
    with pytest.raises(CorruptObjectError, match="not authorised"):
        fresh.validate("anything", add_files=[src("b.txt")])
    with pytest.raises(CorruptObjectError, match="not authorised"):
        _ = fresh.policy
    [problem] = [p for p in fresh.verify().problems if p.kind == "policy"]
    assert "#1 is not authorised" in problem.message and "0 commit(s)" in problem.message


@pytest.mark.storage_free
def test_verify_names_the_commits_an_unauthorised_version_admitted(
        registry_root: RegistryRoot, src: Source, keys: Keys) -> None:
    ds = registry_root.catalog().create_dataset("models", policy=policy(keys))
    forge_version(registry_root, "models", "version: 1\n")
    forge_version(registry_root, "models", policy(keys, min_length=1))  # and "put it back"
    # a writer that bypasses the gate entirely, e.g. an old Kirin: simulate its record
    from kirin.records import encode_record, make_record

    forged = load_policy_text(policy(keys, min_length=1))
    record = make_record(seq=0, parent=None, snapshot={}, added={}, removed=(), message="x",
                         metadata={}, tags=(), timestamp=datetime.now(timezone.utc),
                         author="mallory", policy=forged.hash)
    registry_root.pipe(registry_root.log_path("models", 0), encode_record(record))
    [problem] = [p for p in reopen(ds).verify().problems if p.kind == "policy"]
    assert problem.commits == (record["hash"],)


def test_a_pinned_policy_starts_the_chain(registry_root: RegistryRoot, src: Source,
                                          keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer who deletes the history and writes a version #0 of their own is caught by a pin."""
    ds = registry_root.catalog().create_dataset("models", policy=policy(keys))
    assert ds.policy is not None
    pinned = ds.policy.hash
    assert registry_root.dataset("models", trust_policy=pinned).validate(
        "first model", add_files=[src("a.txt")]).ok
    # before any commit names it, replace the whole policy history by a version #0 of
    # the writer's own: only a pin tells it from the real one
    registry_root.rm(registry_root.join("datasets", "models", "policy", f"{0:020d}.json"))
    other = registry_root.dataset("fresh")
    other.set_policy("version: 1\n")
    registry_root.pipe(registry_root.join("datasets", "models", "policy", f"{0:020d}.json"),
                       registry_root.cat(registry_root.join("datasets", "fresh", "policy",
                                                            f"{0:020d}.json")))
    assert registry_root.dataset("models").policy is not None  # trusted on first use
    assert registry_root.dataset("models").verify().policy_trust == "first use"
    report = registry_root.dataset("models", trust_policy=pinned).verify()
    assert report.policy_trust == "pinned"
    assert [p.kind for p in report.problems] == ["policy"]
    assert "pinned hash" in report.problems[0].message
    with pytest.raises(CorruptObjectError, match="pinned hash"):
        registry_root.dataset("models", trust_policy=pinned).commit(
            "another", add_files=[src("b.txt")])
    monkeypatch.setenv("KIRIN_TRUST_POLICY", pinned)
    with pytest.raises(CorruptObjectError, match="pinned hash"):
        _ = registry_root.dataset("models").policy
    with pytest.raises(InvalidInputError, match="policy hash"):
        registry_root.dataset("models", trust_policy="latest")


def test_a_pinned_root_policy_starts_the_roots_chain(
        registry_root: RegistryRoot, src: Source, keys: Keys,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The root policy is pinned like a dataset's (``trust_root_policy``,
    ``KIRIN_TRUST_ROOT_POLICY``): a root history replaced by a writer's own version #0 is
    refused by every gate of a pinned client, reported by verify, and trusted on first
    use (and said so) without a pin."""
    from kirin import layout

    registry_root.catalog().set_policy(policy(keys))
    root = registry_root.catalog().policy
    assert root is not None
    pinned = root.hash
    assert registry_root.dataset("models", trust_root_policy=pinned).validate(
        "first model", add_files=[src("a.txt")]).ok
    # before any commit names it, the writer replaces the root's version #0 by their own
    # (an entry written by Kirin elsewhere: entries do not name their history)
    first = registry_root.join(*layout.root_policy_log().split("/"), f"{0:020d}.json")
    registry_root.rm(first)
    registry_root.dataset("elsewhere").set_policy("version: 1\n")
    registry_root.pipe(first, registry_root.cat(
        registry_root.join("datasets", "elsewhere", "policy", f"{0:020d}.json")))
    assert registry_root.catalog().policy is not None  # trusted on first use
    assert registry_root.dataset("models").verify().root_policy_trust == "first use"
    assert registry_root.dataset("models").verify().policy_trust is None  # none of its own

    report = registry_root.dataset("models", trust_root_policy=pinned).verify()
    assert report.root_policy_trust == "pinned"
    [problem] = report.problems
    assert problem.kind == "policy" and "pinned hash" in problem.message
    assert "KIRIN_TRUST_ROOT_POLICY" in problem.message
    with pytest.raises(CorruptObjectError, match="pinned hash"):
        registry_root.dataset("models", trust_root_policy=pinned).commit(
            "another", add_files=[src("b.txt")])
    catalog = Catalog(registry_root.url, **registry_root.storage_options,
                      trust_root_policy=pinned)
    with pytest.raises(CorruptObjectError, match="pinned hash"):
        _ = catalog.policy
    with pytest.raises(CorruptObjectError, match="pinned hash"):  # datasets got from it too
        catalog.get_dataset("models").validate("another", add_files=[src("b.txt")])
    # the dataset's own pin says nothing about the root's
    assert registry_root.dataset("models", trust_policy=pinned).validate(
        "another", add_files=[src("b.txt")]).ok
    monkeypatch.setenv("KIRIN_TRUST_ROOT_POLICY", pinned.upper())
    with pytest.raises(CorruptObjectError, match="pinned hash"):
        _ = registry_root.dataset("models").root_policy
    with pytest.raises(CorruptObjectError, match="pinned hash"):
        _ = registry_root.catalog().policy
    monkeypatch.setenv("KIRIN_TRUST_ROOT_POLICY", "latest")
    with pytest.raises(InvalidInputError, match="KIRIN_TRUST_ROOT_POLICY must be a policy hash"):
        registry_root.dataset("models")
    monkeypatch.delenv("KIRIN_TRUST_ROOT_POLICY")
    with pytest.raises(InvalidInputError, match="trust_root_policy must be a policy hash"):
        Catalog(registry_root.url, **registry_root.storage_options, trust_root_policy="x" * 64)
