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
