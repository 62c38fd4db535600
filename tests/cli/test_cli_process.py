"""The real ``kirin`` console script, in a subprocess: every command, its failures, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kirin import Dataset

from cli_helpers import KIRIN, TEAM_POLICY, Registry, build_registry, invoke, kirin_env, run, write


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return build_registry(tmp_path)


def test_help_and_version_come_from_the_installed_script(tmp_path: Path) -> None:
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "Exit codes:" in result.stdout and "3  not found" in result.stdout
    assert run("--version", cwd=tmp_path).stdout.startswith("kirin ")
    assert invoke().code in (0, 2)  # no command: the help


def test_init_creates_a_dataset_with_a_policy_and_a_config_file(tmp_path: Path) -> None:
    result = run("init", "--root", "registry", "--dataset", "models", "--policy", TEAM_POLICY,
                 "--description", "Sentiment models", "--write-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Created dataset models" in result.stdout
    assert (tmp_path / "kirin.yaml").read_text().count("dataset: models") == 1
    dataset = Dataset(tmp_path / "registry", "models")
    assert dataset.description == "Sentiment models" and dataset.policy is not None
    # later commands find the registry through kirin.yaml, from a subfolder too
    (tmp_path / "sub").mkdir()
    assert run("log", cwd=tmp_path / "sub").returncode == 0


def test_init_refuses_an_existing_dataset_and_an_invalid_policy(tmp_path: Path) -> None:
    assert run("init", "--root", "r", "-d", "m", cwd=tmp_path).returncode == 0
    again = run("init", "--root", "r", "-d", "m", cwd=tmp_path)
    assert again.returncode == 4 and "already exists" in again.stderr
    bad = write(tmp_path, "bad-policy.yaml", "version: 1\ntags:\n  allowed: 3\n")
    invalid = invoke("init", "--root", tmp_path / "r", "-d", "other", "--policy", bad)
    assert invalid.code == 2 and "bad-policy.yaml" in invalid.stderr
    assert "other" not in [p.name for p in (tmp_path / "r" / "datasets").iterdir()]


def test_commit_records_files_metadata_and_tags(reg: Registry) -> None:
    weights = write(reg.work, "w.bin", b"weights v3")
    result = run("commit", f"models/best.pt={weights}", "-m", "Nightly retrain of the model",
                 "--metadata", '{"framework": "pytorch", "accuracy": 0.95}', "--tag", "dev",
                 *reg.args(), cwd=reg.work)
    assert result.returncode == 0, result.stderr
    head = reg.open().current_commit
    assert head is not None and head.short_hash in result.stdout
    assert head.has_file("models/best.pt") and list(head.tags) == ["dev"]
    assert head.metadata["accuracy"] == 0.95


def test_commit_rejected_by_the_policy_lists_every_violation_and_writes_nothing(
        reg: Registry) -> None:
    model = write(reg.work, "candidate.pt", b"candidate")
    result = run("commit", model, "-m", "Fix", "--metadata", '{"accuracy": 2}',
                 "--tag", "production", "--tag", "nonsense", *reg.args(), cwd=reg.work)
    assert result.returncode == 1
    for rule in ("metadata.schema", "tags.allowed", "promotion.production.when",
                 "message.forbidden"):
        assert f"[{rule}]" in result.stderr
    assert len(reg.open().history()) == 3


def test_commit_failures_have_one_message_and_their_exit_code(reg: Registry) -> None:
    missing = run("commit", "missing.pt", "-m", "A good message", *reg.args(), cwd=reg.work)
    assert missing.returncode == 3
    assert missing.stderr == "kirin: error: File not found: missing.pt\n"
    bad_json = run("commit", "--metadata", "{oops", "x.pt", "-m", "A good message",
                   *reg.args(), cwd=reg.work)
    assert bad_json.returncode == 2 and "not valid JSON" in bad_json.stderr
    assert "Traceback" not in bad_json.stderr


def test_validate_is_the_ci_gate(reg: Registry) -> None:
    model = write(reg.work, "model.pt", b"new architecture" * 64)
    good = run("validate", model, "-m", "Release the staged model", "--metadata",
               '{"framework": "pytorch", "accuracy": 0.93, "f1_score": 0.91, '
               '"validated": true}', "-t", "production", *reg.args(), cwd=reg.work)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "would be admitted" in good.stdout
    bad = run("validate", model, "-m", "Release the staged model", "--metadata",
              '{"framework": "pytorch", "accuracy": 0.88, "f1_score": 0.91}',
              "-t", "production", "--format", "github", *reg.args(), cwd=reg.work)
    assert bad.returncode == 1
    errors = [line for line in bad.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 2  # accuracy too low, validated missing
    assert errors[0].startswith("::error title=Kirin policy::promotion.production.when: ")
    assert "accuracy is 0.88" in errors[0]
    assert len(reg.open().history()) == 3


def test_promote_passes_the_gate_or_exits_1(reg: Registry) -> None:
    rejected = run("promote", "staging", "-t", "production", *reg.args(), cwd=reg.work)
    assert rejected.returncode == 1
    assert "validated" in rejected.stderr
    accepted = run("promote", "staging", "-t", "production", "-t", "v2.1", "--metadata",
                   '{"validated": true}', "-m", "Release v2.1 to production", *reg.args(),
                   cwd=reg.work)
    assert accepted.returncode == 0, accepted.stderr
    head = reg.open().current_commit
    assert head is not None and list(head.tags) == ["production", "v2.1"]
    assert head.metadata["validated"] is True and head.message == "Release v2.1 to production"
    unknown = invoke("promote", "nope", "-t", "production", *reg.args())
    assert unknown.code == 3 and "nope" in unknown.stderr


def test_log_filters_by_tag_and_expression(reg: Registry) -> None:
    everything = run("log", *reg.args(), cwd=reg.work)
    assert everything.returncode == 0
    assert all(h[:8] in everything.stdout for h in (reg.baseline, reg.dev, reg.staging))
    good = json.loads(run("log", "--where", "accuracy > 0.9", "--tag", "staging", "-f", "json",
                          *reg.args(), cwd=reg.work).stdout)
    assert [c["hash"] for c in good["commits"]] == [reg.staging]
    bad = invoke("log", "--where", "accuracy >", *reg.args())
    assert bad.code == 2 and "column" in bad.stderr


def test_show_and_files_accept_a_tag_a_prefix_or_nothing(reg: Registry) -> None:
    shown = run("show", "v1.0", *reg.args(), cwd=reg.work)
    assert shown.returncode == 0 and reg.baseline in shown.stdout
    assert "model_weights.pt" in shown.stdout and "Initial baseline model" in shown.stdout
    newest = run("files", *reg.args(), cwd=reg.work)
    assert newest.returncode == 0 and "model.pt" in newest.stdout
    by_prefix = invoke("files", reg.baseline[:7], *reg.args())
    assert "model.pt" not in by_prefix.stdout.replace("model_weights.pt", "")
    missing = invoke("show", "v9.9", *reg.args())
    assert missing.code == 3 and "v9.9" in missing.stderr


def test_diff_compares_metadata_tags_and_files(reg: Registry) -> None:
    result = run("diff", "v1.0", "dev", *reg.args(), cwd=reg.work)
    assert result.returncode == 0, result.stderr
    for text in ("hyperparameters.epochs", "0.87", "0.93", "baseline", "experimental",
                 "model.pt"):
        assert text in result.stdout
    assert invoke("diff", "v1.0", "nowhere", *reg.args()).code == 3


def test_get_writes_verified_files_and_never_outside_the_folder(reg: Registry) -> None:
    out = reg.work / "out"
    result = run("get", "v1.0", "model_weights.pt", "-o", out, *reg.args(), cwd=reg.work)
    assert result.returncode == 0, result.stderr
    assert (out / "model_weights.pt").read_bytes() == b"baseline weights" * 64
    assert not (out / "config.json").exists()
    missing = invoke("get", "v1.0", "nothing.bin", "-o", out, *reg.args())
    assert missing.code == 3 and "nothing.bin" in missing.stderr
    escape = invoke("get", "v1.0", "../../etc/passwd", "-o", out, *reg.args())
    assert escape.code in (2, 3) and "Traceback" not in escape.stderr


def test_policy_commands(reg: Registry, tmp_path: Path) -> None:
    shown = run("policy", "show", *reg.args(), cwd=reg.work)
    assert shown.returncode == 0 and "promotion:" in shown.stdout
    loose = write(tmp_path, "loose-policy.yaml", "version: 1\n")
    applied = run("policy", "apply", loose, "-m", "Loosen the rules", *reg.args(),
                  cwd=reg.work)
    assert applied.returncode == 0, applied.stderr
    history = run("policy", "history", *reg.args(), cwd=reg.work)
    assert history.returncode == 0 and "Loosen the rules" in history.stdout
    broken = write(tmp_path, "broken-policy.yaml",
                   "version: 1\npromotion:\n  production:\n    when: 'accuracy >'\n")
    checked = run("policy", "check", TEAM_POLICY, broken, cwd=tmp_path)
    assert checked.returncode == 2
    assert "broken-policy.yaml:4" in checked.stdout
    invalid_apply = invoke("policy", "apply", broken, *reg.args())
    assert invalid_apply.code == 2
    assert len(reg.open().policy_history()) == 2


def test_audit_rejudges_history_under_todays_policy(reg: Registry, tmp_path: Path) -> None:
    assert invoke("audit", *reg.args()).code == 0
    stricter = TEAM_POLICY.read_text().replace("accuracy >= 0.85", "accuracy >= 0.95")
    policy_file = write(tmp_path, "policy/strict-policy.yaml", stricter)
    schema = (TEAM_POLICY.parent / "schemas" / "model-card.schema.json").read_text()
    write(policy_file.parent, "schemas/model-card.schema.json", schema)
    assert invoke("policy", "apply", policy_file, *reg.args()).code == 0
    audited = run("audit", "--format", "github", *reg.args(), cwd=reg.work)
    assert audited.returncode == 1
    assert reg.staging[:8] in audited.stdout
    assert "promotion.staging.when" in audited.stdout


def test_gc_removes_only_unreferenced_blobs_past_the_grace_period(reg: Registry) -> None:
    stray = reg.root / "data" / "ab" / ("c" * 62)
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"orphan")
    dry = json.loads(run("gc", "--root", reg.root, "--dry-run", "--grace", "0s", "-f", "json",
                         cwd=reg.work).stdout)
    assert dry["removed"] == ["ab" + "c" * 62] and stray.exists()
    kept = invoke("gc", "--root", reg.root)  # default grace: 1h
    assert kept.code == 0 and stray.exists()
    removed = invoke("gc", "--root", reg.root, "--grace", "0")
    assert removed.code == 0 and not stray.exists()
    assert invoke("verify", *reg.args()).code == 0
    assert invoke("gc", "--root", reg.root, "--grace", "soon").code == 2


def test_catalog_list_and_missing_datasets(reg: Registry, tmp_path: Path) -> None:
    listed = run("catalog", "list", "--root", reg.root, cwd=reg.work)
    assert listed.returncode == 0 and "models" in listed.stdout and "Test models" in listed.stdout
    typo = run("log", "--root", reg.root, "--dataset", "modles", cwd=reg.work)
    assert typo.returncode == 3
    assert "'modles' not found" in typo.stderr and "models" in typo.stderr
    assert not (reg.root / "datasets" / "modles").exists()
    nowhere = run("log", cwd=tmp_path)
    assert nowhere.returncode == 2 and "--root" in nowhere.stderr  # (no kirin.yaml above)


def test_environment_variables_locate_the_registry(reg: Registry) -> None:
    env = kirin_env(KIRIN_ROOT=str(reg.root), KIRIN_DATASET=reg.name)
    result = run("files", "v1.0", cwd=reg.work, env=env)
    assert result.returncode == 0 and "config.json" in result.stdout


def test_traceback_shows_the_rest(reg: Registry) -> None:
    plain = run("show", "zzz", *reg.args(), cwd=reg.work)
    assert plain.stderr.count("\n") == 1 and "Traceback" not in plain.stderr
    full = run("show", "zzz", "--traceback", *reg.args(), cwd=reg.work)
    assert full.returncode == 3 and "Traceback (most recent call last)" in full.stderr
    assert full.stderr.rstrip().endswith(plain.stderr.rstrip())


def test_usage_errors_from_typer_exit_2(reg: Registry) -> None:
    assert run("frobnicate", cwd=reg.work).returncode == 2
    assert invoke("log", "--limit", "0", *reg.args()).code == 2
    assert invoke("log", "--format", "github", *reg.args()).code == 2


def test_a_reader_that_goes_away_ends_the_command_quietly(reg: Registry) -> None:
    import subprocess

    process = subprocess.Popen([str(KIRIN), "policy", "show", *reg.args()], cwd=reg.work,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=kirin_env())
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # as `kirin policy show | head -0` would
    assert process.wait(timeout=60) == 141
    assert process.stderr.read() == b""
    process.stderr.close()
