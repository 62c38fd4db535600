"""The shell example runs end to end; the CI examples call the commands they claim to."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from kirin import Catalog

from cli_helpers import KIRIN, REPO, TEAM_POLICY, build_registry, kirin_env, run, write


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


def test_the_lineage_example_answers_the_auditor(tmp_path: Path) -> None:
    """examples/lineage.sh: the rule refuses a model without its data, the audit fails once
    the data is withdrawn, and used-by names the production model."""
    bash = shutil.which("bash")
    assert bash is not None
    env = kirin_env(TMPDIR=str(tmp_path), PATH=f"{KIRIN.parent}{os.pathsep}"
                    + os.environ.get("PATH", ""))
    result = subprocess.run([bash, str(REPO / "examples" / "lineage.sh")],
                            capture_output=True, text=True, env=env, cwd=tmp_path,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    steps = ["Rejected as expected (exit code 1)", "training: churn_data@",
             "Audit failed as expected (exit code 1)", "(holds production)",
             "Example finished OK"]
    positions = [out.index(step) for step in steps]
    assert positions == sorted(positions)
    assert "[lineage.production.requires[0]]" in result.stderr
    assert "withdrawn from 'approved'" in out.replace("\n", " ")


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


def _run_job(workflow: dict[str, Any], job: str, context: dict[str, str], cwd: Path,
             env: dict[str, str], root: Path) -> dict[str, str]:
    """Run the ``run:`` steps of ``job`` as GitHub Actions would; return the job's outputs.

    ``${{ ... }}`` expressions are looked up in ``context`` (an unknown one
    fails the test, so the workflow cannot use a value this replay ignores);
    ``uses:`` steps (checkout, credentials, Python) and installing Kirin have
    nothing to do here; the workflow's bucket is replaced by the local ``root``.
    """
    spec = workflow["jobs"][job]
    steps_out: dict[str, str] = {}

    def expand(text: str) -> str:
        def value(match: re.Match[str]) -> str:
            key = match.group(1).strip()
            found = {**context, **steps_out}.get(key)
            assert found is not None, f"{job}: the replay does not know ${{{{ {key} }}}}"
            return found
        return re.sub(r"\$\{\{(.*?)\}\}", value, text)

    base = {**env, **{k: expand(str(v)) for k, v in workflow.get("env", {}).items()},
            "KIRIN_ROOT": str(root)}
    for step in spec["steps"]:
        if "run" not in step or step["run"].lstrip().startswith("pip install"):
            continue  # the Kirin under test is installed already
        output = cwd / "github_output"
        output.write_text("")
        step_env = {**base, **{k: expand(str(v)) for k, v in step.get("env", {}).items()},
                    "GITHUB_OUTPUT": str(output)}
        result = subprocess.run(["bash", "-eo", "pipefail", "-c", expand(step["run"])],
                                cwd=cwd, env=step_env, capture_output=True, text=True,
                                timeout=120, check=False)
        assert result.returncode == 0, (job, step["name"], result.stdout, result.stderr)
        for line in output.read_text().splitlines():
            name, _, value = line.partition("=")
            steps_out[f"steps.{step.get('id')}.outputs.{name}"] = value
    return {name: expand(str(value)) for name, value in spec.get("outputs", {}).items()}


def test_the_workflow_releases_the_gated_commit_even_if_staging_moves(tmp_path: Path) -> None:
    """Replay of the race: another commit is staged between the gate and the promote job.

    The workflow resolves REF once in the gate; the promote job releases that
    hash, which the production commit records as where it came from.
    """
    workflow = yaml.safe_load((REPO / "examples" / "ci" / "promote-model.yml").read_text())
    registry = build_registry(tmp_path, workflow["env"]["KIRIN_DATASET"])
    env = kirin_env(PATH=f"{KIRIN.parent}{os.pathsep}" + os.environ.get("PATH", ""))
    env.pop("KIRIN_AUTHOR")  # the workflow sets it
    context = {"inputs.ref": "staging", "github.actor": "octocat", "github.run_id": "42"}
    gated = _run_job(workflow, "gate", {**context}, tmp_path, env, registry.root)
    assert gated == {"commit": registry.staging}

    # while the reviewer decides, someone stages another model
    dataset = Catalog(registry.root).get_dataset(registry.name)
    other = dataset.commit("A retrained model, not reviewed",
                           add_files=[write(registry.work, "model.pt", b"retrained" * 64)],
                           metadata={"framework": "pytorch", "accuracy": 0.95,
                                     "f1_score": 0.93, "hyperparameters": {"epochs": 20}},
                           tags=["dev"])
    moved = dataset.promote(other, ["staging"])
    assert dataset.resolve("staging").hash == moved != registry.staging

    _run_job(workflow, "promote", {**context, "needs.gate.outputs.commit": gated["commit"]},
             tmp_path, env, registry.root)
    released = dataset.resolve("production")
    assert released.promoted_from == registry.staging
    assert released.files["model.pt"].hash == dataset.resolve(registry.staging).files[
        "model.pt"].hash
    assert released.author.startswith("octocat")
    assert json.loads((tmp_path / "promotion.json").read_text())["commit"]["promoted_from"] \
        == registry.staging
