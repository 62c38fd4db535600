"""Issue 12 through the real ``kirin`` script: status, withdraw, --expect, overrides, --only,
require_policy in kirin.yaml, and the provenance ``show`` prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from kirin import Catalog

from cli_helpers import Registry, build_registry, invoke, run, run_json, write

BREAK_GLASS = """\
version: 1
tags:
  allowed: [dev, staging, production]
stages: [dev, staging, production]
promotion:
  production:
    when: "accuracy >= 0.9"
overrides:
  rules: ["promotion.production.when"]
  authors: [release-manager]
"""


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return build_registry(tmp_path)


def test_status_show_and_withdraw_tell_who_holds_production(reg: Registry) -> None:
    args = reg.args()
    released = run_json("promote", "staging", "-t", "production", "--metadata",
                        '{"validated": true}', "--author", "rm@example", *args,
                        cwd=reg.work)["commit"]
    shown = run("show", "production", *args, cwd=reg.work)
    assert shown.returncode == 0 and f"promoted from  {reg.staging}" in shown.stdout
    status = run_json("status", *args, cwd=reg.work)
    production = next(s for s in status["stages"] if s["stage"] == "production")
    assert (production["commit"], production["by"], production["promoted_from"]) == (
        released["hash"], "rm@example", reg.staging)
    assert production["version_tags"] == ["v2.1-beta"]  # the unique tag, from the source

    withdrawn = run("withdraw", "production", "-m", "Withdrawn: latency regression", *args,
                    cwd=reg.work)
    assert withdrawn.returncode == 0, withdrawn.stderr
    human = run("status", *args, cwd=reg.work).stdout
    assert "withdrawn" in human and "latency regression" in human
    timeline = run_json("status", "--history", "production", *args, cwd=reg.work)
    assert [(t["commit"], t["how"]) for t in timeline["tenures"]] == [
        (released["hash"], "withdrawn")]
    gone = run("show", "production", *args, cwd=reg.work)
    assert gone.returncode == 3 and "withdrawn" in gone.stderr
    again = run("withdraw", "production", "-m", "Withdrawn twice", *args, cwd=reg.work)
    assert again.returncode == 3


def test_promote_expect_refuses_a_moved_ref_with_exit_4(reg: Registry) -> None:
    args = reg.args()
    stale = run("promote", "staging", "-t", "production", "--expect", reg.dev, *args,
                cwd=reg.work)
    assert stale.returncode == 4 and "not the expected" in stale.stderr
    assert run("promote", "staging", "-t", "production", "--expect", reg.dev[:10], *args,
               cwd=reg.work).returncode == 2
    dry = run_json("promote", "staging", "-t", "production", "--expect", reg.staging,
                   "--metadata", '{"validated": true}', "--dry-run", *args, cwd=reg.work)
    assert dry["ok"] is True
    assert reg.open().resolve("staging").hash == reg.staging  # nothing was written


def test_an_override_is_recorded_and_shown(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    dataset = Catalog(root).create_dataset("models", policy=BREAK_GLASS)
    weak = dataset.commit("A weak model", add_files=[write(tmp_path, "m.pt", "w")],
                          metadata={"accuracy": 0.5})
    args = ["--root", str(root), "--dataset", "models"]
    refused = run("promote", weak, "-t", "production", *args, cwd=tmp_path)
    assert refused.returncode == 1 and "promotion.production.when" in refused.stderr
    no_reason = run("promote", weak, "-t", "production", "--reason", "why", *args,
                    cwd=tmp_path)
    assert no_reason.returncode == 2 and "override" in no_reason.stderr
    dry = run_json("promote", weak, "-t", "production", "--override", "--reason",
                   "Incident 7", "--author", "release-manager", "--dry-run", *args,
                   cwd=tmp_path)
    assert dry["ok"] is True and [v["rule"] for v in dry["overridden"]] == [
        "promotion.production.when"]
    done = run("promote", weak, "-t", "production", "--override", "--reason", "Incident 7",
               "--author", "release-manager", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    shown = run("show", "production", *args, cwd=tmp_path).stdout
    assert "override" in shown and "Incident 7" in shown
    status = run_json("status", *args, cwd=tmp_path)
    assert next(s for s in status["stages"] if s["stage"] == "production")["overridden"]


def test_commit_lists_carried_over_files_and_only_drops_them(reg: Registry) -> None:
    args = reg.args()
    card = write(reg.work, "model.pt", "retrained")
    carried = run("commit", card, "-m", "Retrained the dev model", "--metadata",
                  '{"framework": "pytorch", "accuracy": 0.9}', *args, cwd=reg.work)
    assert carried.returncode == 0, carried.stderr
    assert "Carried over from the previous commit (2): config.json, model_weights.pt" in \
        carried.stdout
    only = run_json("commit", card, "-m", "Only the model file now", "--only", "--metadata",
                    '{"framework": "pytorch", "accuracy": 0.9}', *args, cwd=reg.work)
    assert list(reg.open().resolve(only["commit"]["hash"]).files) == ["model.pt"]


def test_require_policy_in_kirin_yaml_fails_a_commit_to_an_ungoverned_dataset(
        tmp_path: Path) -> None:
    write(tmp_path, "kirin.yaml", "root: registry\ndataset: models\nrequire_policy: true\n")
    assert run("init", cwd=tmp_path).returncode == 0  # no policy given
    model = write(tmp_path, "m.pt", "weights")
    refused = run("commit", model, "-m", "First model", cwd=tmp_path)
    assert refused.returncode == 1 and "policy is required" in refused.stderr
    assert Catalog(tmp_path / "registry").get_dataset("models").is_empty()
    # the same registry through explicit options still reads the setting
    again = run("commit", model, "-m", "First model", "--root", "registry", "-d", "models",
                cwd=tmp_path)
    assert again.returncode == 1
    Catalog(tmp_path / "registry").set_policy("version: 1\n")
    assert run("commit", model, "-m", "First model", cwd=tmp_path).returncode == 0


def test_status_without_stages_says_so(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    Catalog(root).create_dataset("plain")
    result = invoke("status", "--root", root, "-d", "plain")
    assert result.code == 0 and "No stages" in result.stdout


def test_root_policy_commands_govern_every_dataset(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    policy = write(tmp_path, "org.yaml", "version: 1\nmetadata:\n  schema:\n    type: object\n"
                   "    required: [owner]\n")
    applied = run_json("root-policy", "apply", policy, "-m", "every model names an owner",
                       "--root", root, cwd=tmp_path)
    assert applied["changed"] is True
    assert run_json("root-policy", "apply", policy, "--root", root,
                    cwd=tmp_path)["changed"] is False
    assert run_json("root-policy", "show", "--root", root,
                    cwd=tmp_path)["policy_hash"] == applied["policy_hash"]
    [version] = run_json("root-policy", "history", "--root", root, cwd=tmp_path)["versions"]
    assert version["message"] == "every model names an owner"
    assert run("init", "--root", root, "-d", "fraud_model", cwd=tmp_path).returncode == 0
    model = write(tmp_path, "m.pt", "weights")
    refused = run("commit", model, "-m", "first model", "--root", root, "-d", "fraud_model",
                  cwd=tmp_path)
    assert refused.returncode == 1 and "(root)" in refused.stderr + refused.stdout
    admitted = run("commit", model, "-m", "first model", "--metadata", '{"owner": "risk"}',
                   "--root", root, "-d", "fraud_model", cwd=tmp_path)
    assert admitted.returncode == 0, admitted.stderr
