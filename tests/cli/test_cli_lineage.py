"""``kirin commit --from``, ``kirin lineage`` and ``kirin used-by``: the auditor's questions.

"Show me the data behind this model" and "which production models used this
data version" from the shell, with the exit codes scripts rely on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kirin import Catalog

from cli_helpers import invoke, write

POLICY = """\
version: 1
tags: {allowed: [staging, production]}
stages: [staging, production]
lineage:
  production:
    requires:
      - role: training
        dataset: churn_data
        tags: [approved]
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "registry"
    policy = write(tmp_path, "policy.yaml", POLICY)
    assert invoke("init", "--root", root, "-d", "churn", "--policy", policy).code == 0
    assert invoke("init", "--root", root, "-d", "churn_data").code == 0
    data = write(tmp_path, "train.csv", "a,b\n1,2\n")
    assert invoke("commit", data, "-m", "churn data", "-t", "approved", "--root", root,
                  "-d", "churn_data").code == 0
    return root


def test_commit_from_records_the_link_and_lineage_shows_it(root: Path,
                                                           tmp_path: Path) -> None:
    model = write(tmp_path, "model.pt", "weights")
    result = invoke("commit", model, "-m", "trained", "-t", "production", "--from",
                    "training=churn_data@approved", "--code", "3f9a2c1", "--run", "run-7",
                    "--root", root, "-d", "churn", "--format", "json")
    assert result.code == 0, result.stderr
    link = result.json()["commit"]["lineage"]["inputs"][0]
    data = Catalog(root).get_dataset("churn_data").resolve("approved").hash
    assert link == {"role": "training", "dataset": "churn_data", "commit": data, "root": None}
    show = invoke("show", "--root", root, "-d", "churn")
    assert f"training=churn_data@{data}" in show.stdout.replace("\n", "")
    shown = invoke("lineage", "--root", root, "-d", "churn")
    assert shown.code == 0
    assert "training: churn_data@" + data[:8] in shown.stdout
    assert "code=3f9a2c1" in shown.stdout and "run=run-7" in shown.stdout
    used = invoke("used-by", "churn_data@approved", "--stage", "production", "--root", root)
    assert used.code == 0 and "'trained' [production]" in used.stdout


def test_a_dangling_link_exits_3_and_writes_nothing(root: Path, tmp_path: Path) -> None:
    model = write(tmp_path, "model.pt", "weights")
    result = invoke("commit", model, "-m", "trained", "--from", "churn_data@v9",
                    "--root", root, "-d", "churn")
    assert result.code == 3
    assert "Lineage link data=churn_data@v9 names no commit" in result.stderr
    assert "Traceback" not in result.stderr
    assert Catalog(root).get_dataset("churn").is_empty()


@pytest.mark.parametrize("args", [
    ["--from", "churn_data"], ["--from", "Bad Role=churn_data@approved"],
    ["--code", "not a revision"], ["--run", "x\ty"],
])
def test_bad_lineage_options_exit_2(root: Path, tmp_path: Path, args: list[str]) -> None:
    model = write(tmp_path, "model.pt", "weights")
    result = invoke("commit", model, "-m", "trained", *args, "--root", root, "-d", "churn")
    assert result.code == 2, result.stderr
    assert "Traceback" not in result.stderr


def test_a_rule_over_links_fails_the_gate_and_audit_after_a_withdrawal(
        root: Path, tmp_path: Path) -> None:
    model = write(tmp_path, "model.pt", "weights")
    refused = invoke("commit", model, "-m", "trained", "-t", "production", "--root", root,
                     "-d", "churn")
    assert refused.code == 1 and "lineage.production.requires[0]" in refused.stderr
    assert invoke("commit", model, "-m", "trained", "-t", "production", "--from",
                  "training=churn_data@approved", "--root", root, "-d", "churn").code == 0
    assert invoke("audit", "--root", root, "-d", "churn").code == 0
    assert invoke("withdraw", "approved", "-m", "Withdrawn: leakage", "--root", root,
                  "-d", "churn_data").code == 0
    audit = invoke("audit", "--root", root, "-d", "churn", "--format", "json")
    assert audit.code == 1
    [failure] = audit.json()["failures"]
    assert "withdrawn from 'approved'" in failure["violations"][0]["message"]
