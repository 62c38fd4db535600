"""Issue 13 through the real ``kirin`` script: --key signs, verify reports bad signatures."""

from __future__ import annotations

import json
from pathlib import Path

from kirin import Dataset
from kirin.records import encode_record
from kirin.sshsig import PublicKey

from cli_helpers import kirin_env, run, run_json, write
from ssh_keys import make_keys

POLICY = """\
version: 1
signing:
  principals: {{alice: ["{alice}"], bob: ["{bob}"]}}
  require: {{commit: [alice]}}
"""


def test_cli_key_signs_and_verify_reports_a_bad_signature(tmp_path: Path) -> None:
    keys = {name: public for name, (_, public) in make_keys(tmp_path, ("alice", "bob")).items()}
    root = tmp_path / "registry"
    Dataset(root, "models").set_policy(POLICY.format(**keys))
    model = write(tmp_path, "model.pt", "weights")
    args = ["--root", str(root), "--dataset", "models"]
    unsigned = run("commit", model, "-m", "a model", *args, cwd=tmp_path,
                   env={**kirin_env(), "SSH_AUTH_SOCK": ""})
    assert unsigned.returncode == 1 and "signing.require.commit" in unsigned.stderr
    done = run_json("commit", model, "-m", "a model", "--key", tmp_path / "keys" / "alice",
                    *args, cwd=tmp_path)
    assert done["commit"]["signature"]["key"].startswith("ssh-ed25519 ")
    assert run("verify", *args, cwd=tmp_path).returncode == 0
    path = root / "datasets" / "models" / "log" / f"{0:020d}.json"
    record = json.loads(path.read_text())
    record["signature"]["key"] = PublicKey.parse(keys["bob"]).openssh
    path.write_bytes(encode_record(record))
    report = run_json("verify", *args, cwd=tmp_path, code=1)
    assert [p["kind"] for p in report["problems"]] == ["signature"]


TRUST = """\
version: 1
message: {{min_length: {min_length}}}
signing:
  principals: {{alice: ["{alice}"], bob: ["{bob}"]}}
  groups: {{admins: [alice, bob]}}
  require: {{policy: {{by: [admins], count: 2}}}}
"""


def test_cli_policy_sign_then_apply(tmp_path: Path) -> None:
    """Two admins: bob signs on his machine, alice applies with her key and his signature."""
    keys = {name: public for name, (_, public) in make_keys(tmp_path, ("alice", "bob")).items()}
    root = tmp_path / "registry"
    Dataset(root, "models").set_policy(TRUST.format(min_length=5, **keys))
    args = ["--root", str(root), "--dataset", "models"]
    looser = write(tmp_path, "looser.yaml", TRUST.format(min_length=1, **keys))
    refused = run("policy", "apply", looser, "--key", tmp_path / "keys" / "alice", *args,
                  cwd=tmp_path)
    assert refused.returncode == 1 and "signing.require.policy" in refused.stderr
    signed = run("policy", "sign", looser, "--key", tmp_path / "keys" / "bob", "--format",
                 "json", *args, cwd=tmp_path)
    assert signed.returncode == 0, signed.stderr
    (tmp_path / "bob.sig").write_text(signed.stdout)
    applied = run_json("policy", "apply", looser, "--key", tmp_path / "keys" / "alice",
                       "--signature", tmp_path / "bob.sig", *args, cwd=tmp_path)
    assert applied["changed"] is True
    assert run("verify", *args, cwd=tmp_path).returncode == 0


APPROVALS = """\
version: 1
tags: {{allowed: [production]}}
stages: [production]
signing:
  principals: {{alice: ["{alice}"], bob: ["{bob}"]}}
  require: {{approvals: {{production: {{count: 1, by: [bob]}}}}}}
"""


def test_approve_then_promote_and_status_lists_the_approval(tmp_path: Path) -> None:
    keys = {name: public for name, (_, public) in make_keys(tmp_path, ("alice", "bob")).items()}
    root = tmp_path / "registry"
    dataset = Dataset(root, "models")
    dataset.set_policy(APPROVALS.format(**keys))
    digest = dataset.commit("a model", add_files=[write(tmp_path, "m.pt", "weights")])
    args = ["--root", str(root), "--dataset", "models"]
    refused = run("promote", digest, "-t", "production", *args, cwd=tmp_path)
    assert refused.returncode == 1 and "kirin approve" in refused.stderr
    approved = run_json("approve", digest, "--for", "production", "-m", "Eval reviewed",
                        "--key", tmp_path / "keys" / "bob", *args, cwd=tmp_path)
    assert approved["approval"]["principal"] == "bob" and approved["approval"]["valid"]
    run_json("promote", digest, "-t", "production", *args, cwd=tmp_path)
    status = run_json("status", *args, cwd=tmp_path)
    [production] = status["stages"]
    assert [a["principal"] for a in production["approvals"]] == ["bob"]
    assert status["policy_trust"] == "first use"
    pinned = run_json("status", *args, cwd=tmp_path,
                      env={**kirin_env(), "KIRIN_TRUST_POLICY": str(dataset.policy_history()[0]
                                                                     .policy_hash)})
    assert pinned["policy_trust"] == "pinned"
    shown = run_json("show", digest, *args, cwd=tmp_path)
    assert [a["message"] for a in shown["approvals"]] == ["Eval reviewed"]


def test_audit_in_ci_names_what_an_unauthorised_policy_admitted(tmp_path: Path) -> None:
    """A writer with bucket access swaps in a looser policy and commits under it: the CI
    audit step fails (exit 1) and names the commit, in JSON and as a GitHub annotation."""
    keys = {name: public for name, (_, public) in make_keys(tmp_path, ("alice", "bob")).items()}
    root = tmp_path / "registry"
    Dataset(root, "models").set_policy(TRUST.format(min_length=5, **keys))
    args = ["--root", str(root), "--dataset", "models"]
    honest = run_json("commit", write(tmp_path, "m.pt", "weights"), "-m", "a fine model",
                      *args, cwd=tmp_path)["commit"]["hash"]
    assert run("audit", *args, cwd=tmp_path).returncode == 0
    folder = root / "datasets" / "models" / "policy"
    first = json.loads((folder / f"{0:020d}.json").read_text())
    from kirin.policy import load_policy_text
    from kirin.records import record_hash

    loose = load_policy_text(TRUST.format(min_length=1, **keys))
    entry = {**first, "seq": 1, "parent": first["hash"], "policy_hash": loose.hash,
             "policy": loose.stored_text(), "author": "mallory", "message": "temporary"}
    entry.pop("signatures", None)
    entry["hash"] = record_hash(entry)
    (folder / f"{1:020d}.json").write_text(json.dumps(entry, sort_keys=True) + "\n")
    refused = run("commit", write(tmp_path, "n.pt", "other"), "-m", "x", *args, cwd=tmp_path)
    assert refused.returncode == 4 and "not authorised" in refused.stderr  # gates refuse
    # what a writer bypassing the gate leaves behind: a record admitted by the forged version
    log = root / "datasets" / "models" / "log"
    head = json.loads((log / f"{0:020d}.json").read_text())
    forged = {**head, "seq": 1, "parent": honest, "message": "x", "author": "mallory",
              "policy": loose.hash, "changes": {"add": {}, "remove": []}}
    forged["hash"] = record_hash(forged)
    (log / f"{1:020d}.json").write_bytes(encode_record(forged))

    report = run_json("audit", *args, cwd=tmp_path, code=1)
    rules = {(r["commit"]["hash"], v["rule"]) for r in report["failures"]
             for v in r["violations"]}
    assert (forged["hash"], "policy-trust") in rules and honest not in {h for h, _ in rules}
    github = run("audit", "--against", "admitting", "--format", "github", *args, cwd=tmp_path)
    assert github.returncode == 1 and "policy-trust" in github.stdout
    assert forged["hash"][:8] in github.stdout
    verified = run_json("verify", *args, cwd=tmp_path, code=1)
    assert any(forged["hash"] in p["commits"] for p in verified["problems"])


def test_root_policy_changes_need_the_root_admins(tmp_path: Path) -> None:
    """The root policy follows the same chain of trust, through root-policy sign/apply."""
    keys = {name: public for name, (_, public) in make_keys(tmp_path, ("alice", "bob")).items()}
    root = tmp_path / "registry"
    args = ["--root", str(root)]
    strict = write(tmp_path, "strict.yaml", TRUST.format(min_length=5, **keys))
    assert run_json("root-policy", "apply", strict, *args, cwd=tmp_path)["changed"] is True
    looser = write(tmp_path, "looser.yaml", TRUST.format(min_length=1, **keys))
    alice, bob = tmp_path / "keys" / "alice", tmp_path / "keys" / "bob"
    no_key: list[str | Path] = []
    for given in (no_key, ["--key", alice]):
        refused = run("root-policy", "apply", looser, *given, *args, cwd=tmp_path)
        assert refused.returncode == 1 and "signing.require.policy" in refused.stderr
    bad = write(tmp_path, "bad.sig", "{not json")
    unreadable = run("root-policy", "apply", looser, "--signature", bad, *args, cwd=tmp_path)
    assert unreadable.returncode == 2 and "bad.sig" in unreadable.stderr
    signed = run("root-policy", "sign", looser, "--key", bob, "--format", "json", *args,
                 cwd=tmp_path)
    assert signed.returncode == 0, signed.stderr
    (tmp_path / "bob.sig").write_text(signed.stdout)
    # bob's signature authorises this root version only: not a dataset's policy
    Dataset(root, "models").set_policy(TRUST.format(min_length=5, **keys))
    replayed = run("policy", "apply", looser, "--key", alice, "--signature",
                   tmp_path / "bob.sig", *args, "--dataset", "models", cwd=tmp_path)
    assert replayed.returncode == 1
    applied = run_json("root-policy", "apply", looser, "--key", alice, "--signature",
                       tmp_path / "bob.sig", *args, cwd=tmp_path)
    assert applied["changed"] is True
    history = run_json("root-policy", "history", *args, cwd=tmp_path)
    assert len(history["versions"]) == 2


def test_a_head_hash_kept_by_ci_catches_deleted_newest_records(tmp_path: Path) -> None:
    """docs/security.md: deleting the newest records leaves a history that looks whole; a CI
    job that kept the head it last saw fails the next audit --since that head (exit 3)."""
    root = tmp_path / "registry"
    args = ["--root", str(root), "--dataset", "models"]
    assert run("init", *args, cwd=tmp_path).returncode == 0
    for n in range(3):
        run_json("commit", write(tmp_path, f"m{n}.pt", f"weights {n}"), "-m", f"model {n}",
                 *args, cwd=tmp_path)
    last_seen = run_json("show", *args, cwd=tmp_path)["commit"]["hash"]
    assert run("audit", "--against", "admitting", "--since", last_seen, *args,
               cwd=tmp_path).returncode == 0
    (root / "datasets" / "models" / "log" / f"{2:020d}.json").unlink()  # the newest record
    assert run("verify", *args, cwd=tmp_path).returncode == 0  # looks whole without the pin
    caught = run("audit", "--against", "admitting", "--since", last_seen, *args, cwd=tmp_path)
    assert caught.returncode == 3 and last_seen[:8] in caught.stderr


def test_kirin_yaml_pins_the_root_policy(tmp_path: Path) -> None:
    """``trust_root:`` in kirin.yaml (or KIRIN_TRUST_ROOT_POLICY) pins the root's policy:
    status and verify say whether it is pinned or trusted on first use, and a root history
    without the pinned hash fails verify (exit 1) naming where the pin came from."""
    from kirin import Catalog

    root = tmp_path / "registry"
    Catalog(root).set_policy("version: 1\nmessage: {min_length: 3}\n")
    Dataset(root, "models").commit("a model", add_files=[write(tmp_path, "m.pt", "weights")])
    pinned = Catalog(root).policy_history()[0].policy_hash
    assert pinned is not None
    write(tmp_path, "kirin.yaml", "root: registry\ndataset: models\n")
    assert run_json("status", cwd=tmp_path)["root_policy_trust"] == "first use"
    first = run("verify", cwd=tmp_path)
    assert first.returncode == 0 and "root policy version is trusted on first use" in first.stdout
    write(tmp_path, "kirin.yaml", f"root: registry\ndataset: models\ntrust_root: {pinned}\n")
    assert run_json("status", cwd=tmp_path)["root_policy_trust"] == "pinned"
    assert run_json("verify", cwd=tmp_path)["root_policy_trust"] == "pinned"
    other = "ab" * 32
    write(tmp_path, "kirin.yaml", f"root: registry\ndataset: models\ntrust_root: {other}\n")
    report = run_json("verify", cwd=tmp_path, code=1)
    assert "kirin.yaml trust_root:" in report["problems"][0]["message"]
    env = {**kirin_env(), "KIRIN_TRUST_ROOT_POLICY": other}
    write(tmp_path, "kirin.yaml", "root: registry\ndataset: models\n")
    refused = run("commit", write(tmp_path, "n.pt", "more"), "-m", "another", cwd=tmp_path,
                  env=env)
    assert refused.returncode != 0 and "pinned hash" in refused.stderr
