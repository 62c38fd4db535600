"""Policy tooling and audits a team runs in CI: policy check/show/diff, audit modes, log columns.

Each feature is tried once through the real console script (pipes, not a
terminal) and otherwise in-process.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_helpers import (
    Registry,
    assert_shape,
    build_registry,
    error_lines,
    invoke,
    run,
    write,
)

TYPO_POLICY = """\
version: 1
metadata:
  schema:
    type: object
    properties:
      metrics:
        type: object
        properties:
          auc: {type: number}
promotion:
  production:
    when: "metrics.acu >= 0.9"
"""

LOOSE_RULE_POLICY = TYPO_POLICY.replace("metrics.acu", "metrics.precision")


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return build_registry(tmp_path)


# -- policy check ----------------------------------------------------------------------
def test_policy_check_refuses_a_rule_reading_a_field_the_schema_lacks(tmp_path: Path) -> None:
    write(tmp_path, "typo.yaml", TYPO_POLICY)
    checked = run("policy", "check", "typo.yaml", "--format", "github", cwd=tmp_path)
    assert checked.returncode == 2, checked.stderr
    (annotation,) = error_lines(checked.stdout)
    assert "file=typo.yaml,line=12" in annotation
    assert "Did you mean 'metrics.auc'?" in annotation


def test_policy_check_warns_and_strict_fails_on_warnings(tmp_path: Path) -> None:
    loose = write(tmp_path, "loose.yaml", LOOSE_RULE_POLICY)
    lenient = invoke("policy", "check", loose)
    assert lenient.code == 0 and "warning" in lenient.stdout
    assert "metrics.precision" in lenient.stdout
    document = invoke("policy", "check", loose, "-f", "json").json()
    assert_shape("policy check", document)
    assert document["ok"] is True
    (warning,) = document["files"][0]["warnings"]
    assert warning["key_path"] == "promotion.production.when" and warning["line"] == 12
    strict = invoke("policy", "check", loose, "--strict", "-f", "json")
    assert strict.code == 2 and strict.json()["files"][0]["ok"] is False
    github = invoke("policy", "check", loose, "-f", "github")
    assert [line.split(" ", 1)[0] for line in github.stdout.splitlines()
            if line.startswith("::")] == ["::warning"]


def test_policy_apply_refuses_a_typo_and_stores_nothing(reg: Registry, tmp_path: Path) -> None:
    typo = write(tmp_path, "typo.yaml", TYPO_POLICY)
    applied = invoke("policy", "apply", typo, *reg.args())
    assert applied.code == 2 and "metrics.auc" in applied.stderr
    assert len(reg.open().policy_history()) == 1
