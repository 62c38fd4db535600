"""The shell example runs end to end; the CI examples call the commands they claim to."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from cli_helpers import KIRIN, REPO, TEAM_POLICY, kirin_env, run, write


def test_the_shell_example_runs_the_whole_scenario(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    assert bash is not None
    env = kirin_env(TMPDIR=str(tmp_path), PATH=f"{KIRIN.parent}{os.pathsep}"
                    + os.environ.get("PATH", ""))
    result = subprocess.run([bash, str(REPO / "examples" / "model_versioning.sh")],
                            capture_output=True, text=True, env=env, cwd=tmp_path,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    steps = ["1. Create the registry", "5. Promoting v2.0 straight to production",
             "Rejected as expected (exit code 1)", "would be admitted",
             "Models with accuracy > 0.9", "8. Compare baseline and improved",
             "byte-identical", "no problems", "Example finished OK"]
    positions = [out.index(step) for step in steps]
    assert positions == sorted(positions)
    # the rejection said why, on stderr
    assert "[promotion.production.requires_stage]" in result.stderr
    assert "[promotion.production.when]" in result.stderr
    # the registry it left behind holds the whole history
    [work] = tmp_path.glob("kirin-example-*")
    log = run("log", "-f", "json", cwd=work)
    tags = [c["tags"] for c in __import__("json").loads(log.stdout)["commits"]]
    assert tags == [["production", "v2.1"], ["staging", "v2.1-beta"], ["dev", "experimental"],
                    ["improved", "v2.0"], ["baseline", "v1.0"]]


def test_the_github_workflow_gates_the_promotion() -> None:
    workflow = yaml.safe_load((REPO / "examples" / "ci" / "promote-model.yml").read_text())
    gate = [step.get("run", "") for step in workflow["jobs"]["gate"]["steps"]]
    assert any("kirin promote" in r and "--dry-run" in r and "--format github" in r
               for r in gate)
    assert any("kirin verify" in r for r in gate)
    promote = workflow["jobs"]["promote"]
    assert promote["needs"] == "gate" and promote["environment"] == "production"
    assert any("kirin promote" in step.get("run", "") and "--dry-run" not in step.get("run", "")
               for step in promote["steps"])


def test_the_pre_commit_hook_runs_kirin_policy_check(tmp_path: Path) -> None:
    [hook] = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["entry"] == "kirin policy check" and hook["language"] == "python"
    import re

    assert re.search(hook["files"], "examples/policy/team-policy.yaml")
    assert not re.search(hook["files"], "kirin.yaml")
    # what pre-commit would run: the entry followed by the changed files
    command = hook["entry"].split()[1:]
    assert run(*command, TEAM_POLICY, cwd=tmp_path).returncode == 0
    broken = write(tmp_path, "team-policy.yaml", "version: 1\ntags:\n  allowed: dev\n")
    result = run(*command, TEAM_POLICY, broken, cwd=tmp_path)
    assert result.returncode == 2 and f"{broken}:3" in result.stdout
    config = yaml.safe_load((REPO / "examples" / "ci" / "pre-commit-config.yaml").read_text())
    assert config["repos"][0]["hooks"][0]["id"] == hook["id"]
