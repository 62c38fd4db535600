"""``--format json`` of every command follows its documented shape; ``github`` annotates."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from kirin.cli.shapes import COMMANDS, OBJECTS, render

from cli_helpers import (
    TEAM_POLICY,
    Registry,
    assert_error_document,
    assert_shape,
    build_registry,
    conforms,
    error_lines,
    invoke,
    write,
)


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return build_registry(tmp_path)


def json_of(*args: Any, code: int = 0) -> Any:
    result = invoke(*args, "--format", "json")
    assert result.code == code, (result.stdout, result.stderr)
    return result.json()


def test_every_command_has_a_documented_shape() -> None:
    from cli_helpers import command_paths

    assert sorted(COMMANDS) == sorted(command_paths())


def test_json_of_every_command_matches_its_shape(reg: Registry, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}
    args = reg.args()
    model = write(reg.work, "m.pt", b"candidate")
    seen["init"] = json_of("init", "--root", tmp_path / "other", "-d", "fresh",
                           "--policy", TEAM_POLICY)
    seen["commit"] = json_of("commit", model, "-m", "Candidate model", "--metadata",
                             '{"framework": "pytorch", "accuracy": 0.9}', "-t", "dev",
                             "--from", "base=models@v1.0", "--code", "3f9a2c1", "--run",
                             "run-7", *args)
    seen["lineage"] = json_of("lineage", *args)
    seen["used-by"] = json_of("used-by", "v1.0", *args)
    seen["validate"] = json_of("validate", model, "-m", "Candidate model", *args, code=1)
    seen["promote"] = json_of("promote", "staging", "-t", "production", "--metadata",
                              '{"validated": true}', *args)
    seen["status"] = json_of("status", *args)
    seen["withdraw"] = json_of("withdraw", "production", "-m", "Withdrawn: a regression",
                               *args)
    seen["log"] = json_of("log", *args)
    seen["show"] = json_of("show", "v1.0", *args)
    seen["diff"] = json_of("diff", "v1.0", "tag:production", *args)
    seen["files"] = json_of("files", *args)
    seen["get"] = json_of("get", "v1.0", "-o", tmp_path / "out", *args)
    seen["policy show"] = json_of("policy", "show", *args)
    seen["policy apply"] = json_of("policy", "apply", TEAM_POLICY, *args)
    seen["policy check"] = json_of("policy", "check", TEAM_POLICY)
    seen["policy history"] = json_of("policy", "history", *args)
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    seen["policy sign"] = json_of("policy", "sign", TEAM_POLICY, "--key", key, *args)
    seen["approve"] = json_of("approve", "staging", "--for", "production", "-m", "Checked",
                              "--key", key, *args)
    seen["policy diff"] = json_of("policy", "diff", "0", *args)
    seen["audit"] = json_of("audit", *args)
    seen["verify"] = json_of("verify", *args)
    seen["gc"] = json_of("gc", "--root", reg.root, "--dry-run")
    seen["catalog list"] = json_of("catalog", "list", "--root", reg.root)
    seen["root-policy apply"] = json_of("root-policy", "apply", TEAM_POLICY, "--root",
                                        tmp_path / "rooted")
    seen["root-policy sign"] = json_of("root-policy", "sign", TEAM_POLICY, "--key", key,
                                       "--root", tmp_path / "rooted")
    seen["root-policy show"] = json_of("root-policy", "show", "--root", tmp_path / "rooted")
    seen["root-policy history"] = json_of("root-policy", "history", "--root",
                                          tmp_path / "rooted")
    (tmp_path / "kirin0" / "datasets" / "empty").mkdir(parents=True)  # an original registry
    seen["import kirin-0.0"] = json_of("import", "kirin-0.0", tmp_path / "kirin0", "--root",
                                       tmp_path / "imported")
    seen["export"] = json_of("export", "--root", reg.root, "-o", tmp_path / "commits.jsonl")
    # kirin import mlflow's document is checked in tests/cli/test_cli_import_mlflow.py,
    # kirin ui's (a server, printed when it stops) in tests/ui/test_ui_cli.py
    assert sorted(seen) == sorted(c for c in COMMANDS if c not in ("import mlflow", "ui"))
    for command, document in seen.items():
        assert_shape(command, document)
    # and they say what happened
    assert seen["commit"]["commit"]["lineage"] == {
        "inputs": [{"role": "base", "dataset": "models", "commit": reg.baseline,
                    "root": None}], "code": "3f9a2c1", "run": "run-7"}
    assert seen["lineage"]["lineage"]["inputs"][0]["hash"] == reg.baseline
    assert [u["hash"] for u in seen["used-by"]["used_by"]] == [seen["commit"]["commit"]["hash"]]
    assert seen["validate"]["ok"] is False and seen["validate"]["violations"]
    assert seen["promote"]["source"]["hash"] == reg.staging
    assert seen["promote"]["commit"]["tags"] == ["production"]
    assert seen["promote"]["commit"]["promoted_from"] == reg.staging
    production = next(s for s in seen["status"]["stages"] if s["stage"] == "production")
    assert production["promoted_from"] == reg.staging
    assert seen["withdraw"]["commit"]["withdrawal"] == {
        "stage": "production", "holder": seen["promote"]["commit"]["hash"]}
    assert seen["diff"]["from"]["hash"] == reg.baseline
    assert seen["diff"]["metadata_diff_paths"]["changed"]["accuracy"] == {"old": 0.87,
                                                                          "new": 0.93}
    assert {f["name"] for f in seen["get"]["files"]} == {"config.json", "model_weights.pt"}
    assert seen["policy apply"]["changed"] is False
    assert seen["verify"]["ok"] is True and seen["verify"]["blobs_checked"] == 4


def test_dry_runs_print_the_document_of_validate(reg: Registry) -> None:
    model = write(reg.work, "m.pt", b"m")
    dry_commit = json_of("commit", model, "-m", "Candidate model", "--dry-run", "--metadata",
                         '{"framework": "pytorch"}', *reg.args())
    assert_shape("validate", dry_commit)
    assert dry_commit["ok"] is True and dry_commit["violations"] == []
    dry_promote = json_of("promote", "staging", "-t", "production", "--dry-run", *reg.args(),
                          code=1)
    assert_shape("validate", dry_promote)
    assert [v["path"] for v in dry_promote["violations"]] == ["validated"]


def test_json_of_documents_with_nulls_and_empty_lists(reg: Registry, tmp_path: Path) -> None:
    bare = json_of("init", "--root", reg.root, "-d", "bare")
    assert bare["policy_hash"] is None and bare["config_file"] is None
    assert_shape("init", bare)
    none = json_of("policy", "show", "--root", reg.root, "-d", "bare")
    assert none == {"dataset": "bare", "policy_hash": None, "policy": None, "version": None}
    audit = json_of("audit", "--root", reg.root, "-d", "bare")
    assert_shape("audit", audit)
    broken = write(tmp_path, "broken.yaml", "version: 2\n")
    checked = json_of("policy", "check", broken, code=2)
    assert_shape("policy check", checked)
    assert checked["files"][0]["error"]["line"] == 1


def test_errors_in_json_mode_are_an_error_document(reg: Registry) -> None:
    missing = invoke("show", "nope", "-f", "json", *reg.args())
    assert missing.code == 3
    assert_error_document(missing.json(), 3)
    assert missing.json()["error"]["type"] == "CommitNotFoundError"
    model = write(reg.work, "m.pt", b"m")
    rejected = invoke("commit", model, "-m", "Fix", "-f", "json", *reg.args())
    assert rejected.code == 1
    document = rejected.json()
    assert_error_document(document, 1)
    rules = [v["rule"] for v in document["error"]["violations"]]
    assert rules == ["metadata.schema", "message.min_length", "message.forbidden"]
    usage = invoke("log", "--where", "1 +", "-f", "json", *reg.args())
    assert_error_document(usage.json(), 2)


def test_github_format_emits_one_annotation_per_violation(reg: Registry) -> None:
    model = write(reg.work, "m.pt", b"m")
    result = invoke("validate", model, "-m", "Fix", "-t", "production", "-t", "unknown-tag",
                    "-f", "github", *reg.args())
    assert result.code == 1
    verdict = invoke("validate", model, "-m", "Fix", "-t", "production", "-t", "unknown-tag",
                     "-f", "json", *reg.args()).json()
    found = error_lines(result.stdout)
    assert len(found) == len(verdict["violations"]) == 8
    for line, violation in zip(found, verdict["violations"], strict=True):
        assert line.startswith("::error title=Kirin policy::" + violation["rule"] + ": ")
    # a rejected commit annotates the same way
    commit = invoke("commit", model, "-m", "Fix", "-t", "production", "-t", "unknown-tag",
                    "-f", "github", *reg.args())
    assert commit.code == 1 and len(error_lines(commit.stdout)) == 8
    # other errors become one annotation
    missing = invoke("promote", "nope", "-t", "production", "-f", "github", *reg.args())
    assert error_lines(missing.stdout) == [
        "::error title=Kirin error::Commit not found: No commit hash or tag matches 'nope' "
        "in dataset 'models'"]


def test_github_annotations_escape_newlines_and_percent_signs() -> None:
    from kirin.cli.output import Annotation

    text = str(Annotation("100% sure\nline two", title="a:b,c", file="x,y.yaml", line=3))
    assert text == "::error file=x%2Cy.yaml,line=3,title=a%3Ab%2Cc::100%25 sure%0Aline two"


def test_policy_check_annotates_the_file_and_line(tmp_path: Path) -> None:
    broken = write(tmp_path, "policy.yaml", "version: 1\ntags:\n  allowed: [dev]\n"
                   "promotion:\n  prod:\n    when: 'accuracy > 0.9'\n")
    result = invoke("policy", "check", broken, "-f", "github")
    assert result.code == 2
    [line] = error_lines(result.stdout)
    assert line.startswith(f"::error file={broken},line=5,title=Kirin policy file::")


def test_audit_annotates_each_violation_with_its_commit(reg: Registry, tmp_path: Path) -> None:
    strict = tmp_path / "policy" / "strict.yaml"
    write(strict.parent, "strict.yaml",
          TEAM_POLICY.read_text().replace("accuracy >= 0.85", "accuracy >= 0.95"))
    write(strict.parent, "schemas/model-card.schema.json",
          (TEAM_POLICY.parent / "schemas" / "model-card.schema.json").read_text())
    reg.open().set_policy(strict)
    result = invoke("audit", "-f", "github", *reg.args())
    assert result.code == 1
    [line] = error_lines(result.stdout)
    assert f"commit {reg.staging[:8]}: promotion.staging.when" in line


def test_the_shape_notation_renders_and_checks() -> None:
    assert render({"a": ["str"], "b": "<file> | null"}) == (
        '{\n  "a": [str],\n  "b": <file> | null\n}')
    assert conforms(OBJECTS["file"], {"name": "x", "hash": "h", "size": 1,
                                      "content_type": "t"}) == []
    assert conforms({"a": "int"}, {"a": True}) == ["$.a: True is not int"]
    assert conforms({"a": "str", "b?": "int"}, {"a": "x", "c": 1}) == [
        "$: undocumented key 'c'"]
