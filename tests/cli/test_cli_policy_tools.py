"""Policy tooling and audits a team runs in CI: policy check/show/diff, audit modes, log columns.

Each feature is tried once through the real console script (pipes, not a
terminal) and otherwise in-process.
"""

from __future__ import annotations

import json
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


# -- policy show VERSION / policy diff ---------------------------------------------------
def stricter(reg: Registry, tmp_path: Path, old: str, new: str, name: str) -> Path:
    """A copy of the team policy (with its schema folder) with ``old`` replaced."""
    from cli_helpers import TEAM_POLICY

    text = TEAM_POLICY.read_text()
    assert old in text
    policy = write(tmp_path, f"{name}/policy.yaml", text.replace(old, new))
    schema = (TEAM_POLICY.parent / "schemas" / "model-card.schema.json").read_text()
    write(policy.parent, "schemas/model-card.schema.json", schema)
    return policy


def test_policy_show_and_diff_name_versions_by_number_or_hash(reg: Registry,
                                                             tmp_path: Path) -> None:
    first = reg.open().policy_history()[0]
    strict = stricter(reg, tmp_path, "accuracy >= 0.85", "accuracy >= 0.95", "strict")
    assert invoke("policy", "apply", strict, "-m", "Raise the staging bar", *reg.args()).code == 0
    second = reg.open().policy_history()[0]
    assert second.seq == first.seq + 1 and second.policy_hash != first.policy_hash
    assert first.policy_hash is not None and second.policy_hash is not None

    shown = invoke("policy", "show", str(first.seq), "-f", "json", *reg.args()).json()
    assert_shape("policy show", shown)
    assert shown["policy_hash"] == first.policy_hash
    assert shown["version"]["seq"] == first.seq
    assert shown["policy"]["promotion"]["staging"]["when"] == "accuracy >= 0.85"
    by_prefix = invoke("policy", "show", first.policy_hash[:8], "-f", "json", *reg.args())
    assert by_prefix.json()["version"]["seq"] == first.seq
    in_force = invoke("policy", "show", "-f", "json", *reg.args()).json()
    assert in_force["policy_hash"] == second.policy_hash

    diffed = run("policy", "diff", str(first.seq), second.policy_hash[:10], *reg.args(),
                 cwd=reg.work)
    assert diffed.returncode == 0, diffed.stderr
    assert "-    when: accuracy >= 0.85" in diffed.stdout.splitlines()
    assert "+    when: accuracy >= 0.95" in diffed.stdout.splitlines()
    document = invoke("policy", "diff", str(first.seq), "-f", "json", *reg.args()).json()
    assert_shape("policy diff", document)
    assert document["changed"] is True and document["to"]["policy_hash"] == second.policy_hash
    assert document["from"]["policy_hash"] == first.policy_hash
    assert [d for d in document["diff"] if d.startswith(("+ ", "- ", "+", "-"))
            and not d.startswith(("+++", "---"))] == ["-    when: accuracy >= 0.85",
                                                      "+    when: accuracy >= 0.95"]
    same = invoke("policy", "diff", str(second.seq), second.policy_hash, "-f", "json",
                  *reg.args()).json()
    assert same["changed"] is False and same["diff"] == []


@pytest.mark.parametrize(("version", "code"), [("7", 3), ("zzzz", 3), ("ab", 3), ("", 3)])
def test_policy_show_of_an_unknown_version_is_not_found(reg: Registry, version: str,
                                                        code: int) -> None:
    shown = invoke("policy", "show", version, *reg.args())
    assert shown.code == code
    assert "policy version" in shown.stderr.lower()


# -- audit --since / --against ------------------------------------------------------------
def test_audit_as_a_ci_step_after_tightening(reg: Registry, tmp_path: Path) -> None:
    """After the staging bar rises, --against current fails for good; --against admitting
    and --since the tightening pass, each with its own exit code and JSON."""
    strict = stricter(reg, tmp_path, "accuracy >= 0.85", "accuracy >= 0.95", "strict")
    assert invoke("policy", "apply", strict, *reg.args()).code == 0
    today = run("audit", "-f", "json", *reg.args(), cwd=reg.work)
    assert today.returncode == 1, today.stderr
    document = json.loads(today.stdout)
    assert_shape("audit", document)
    assert document["against"] == "current" and document["since"] is None
    assert [f["commit"]["hash"] for f in document["failures"]] == [reg.staging]
    assert document["failures"][0]["policy_hash"] == document["policy_hash"]

    held = run("audit", "--against", "admitting", *reg.args(), cwd=reg.work)
    assert held.returncode == 0, held.stdout + held.stderr
    assert "The gate held" in held.stdout
    admitting = invoke("audit", "--against", "admitting", "-f", "json", *reg.args()).json()
    assert_shape("audit", admitting)
    assert admitting["ok"] is True and admitting["commits_checked"] == 3
    assert admitting["commits_not_judged"] == 0

    since = invoke("audit", "--since", reg.staging, "-f", "json", *reg.args()).json()
    assert since["ok"] is True and since["commits_checked"] == 0
    assert since["since"] == reg.staging
    since_dev = invoke("audit", "--since", reg.dev[:10], *reg.args())
    assert since_dev.code == 1 and reg.staging[:8] in since_dev.stdout
    assert f"after {reg.dev[:10]}" in since_dev.stdout


@pytest.mark.parametrize(("args", "code", "said"), [
    (["--since", "no-such-commit"], 2, "neither a commit"),
    (["--since", "2026-02-30"], 2, "ISO 8601"),
    (["--against", "yesterday"], 2, "yesterday"),
])
def test_audit_refuses_bad_options_with_exit_2(reg: Registry, args: list[str], code: int,
                                               said: str) -> None:
    result = invoke("audit", *args, *reg.args())
    assert result.code == code
    assert said in result.stderr


# -- log: author, --columns, no wrapping when piped -----------------------------------
def test_log_shows_author_and_chosen_metadata_columns(reg: Registry) -> None:
    shown = invoke("log", "--columns", "accuracy,hyperparameters.epochs", "-c", "f1_score",
                   "-c", "missing.field", *reg.args())
    assert shown.code == 0, shown.stderr
    header, _rule, *rows = shown.stdout.splitlines()
    assert header.split() == ["commit", "┃", "date", "┃", "author", "┃", "tags", "┃",
                              "accuracy", "┃", "hyperparameters.epochs", "┃", "f1_score", "┃",
                              "missing.field", "┃", "message"]
    baseline = next(r for r in rows if r.startswith(reg.baseline[:8]))
    cells = [cell.strip() for cell in baseline.split("│")]
    assert cells[2] == "tester@example"
    assert cells[4:8] == ["0.87", "10", "0.85", ""]  # missing: blank
    document = invoke("log", "-c", "accuracy,hyperparameters.epochs,missing", "-f", "json",
                      *reg.args()).json()
    assert_shape("log", document)
    assert document["columns"] == ["accuracy", "hyperparameters.epochs", "missing"]
    assert len(document["values"]) == len(document["commits"])
    by_hash = dict(zip([c["hash"] for c in document["commits"]], document["values"],
                       strict=True))
    assert by_hash[reg.baseline] == {"accuracy": 0.87, "hyperparameters.epochs": 10}
    plain = invoke("log", "-f", "json", *reg.args()).json()
    assert set(plain) == {"dataset", "commits"}  # nothing new unless asked


def test_log_columns_take_backticked_keys_and_refuse_what_is_no_path(reg: Registry,
                                                                     tmp_path: Path) -> None:
    model = write(reg.work, "odd.pt", b"odd")
    assert invoke("commit", model, "-m", "Odd keys in the metadata", "--metadata",
                  '{"framework": "pytorch", "metrics": {"f1-score, macro": 0.5}}',
                  *reg.args()).code == 0
    document = invoke("log", "-n", "1", "-c", "metrics.`f1-score, macro`,framework", "-f",
                      "json", *reg.args()).json()
    assert document["values"] == [{"metrics.`f1-score, macro`": 0.5,
                                   "framework": "pytorch"}]
    for bad in ("a) or exists(b", "accuracy,,f1", "1 > 0", "`unclosed"):
        refused = invoke("log", "-c", bad, *reg.args())
        assert refused.code == 2, (bad, refused.stdout)
        assert "--columns" in refused.stderr


def test_piped_log_never_wraps_or_cuts(reg: Registry) -> None:
    """stdout is a pipe here: a long message and a long value stay whole, on one line,
    even with COLUMNS=40."""
    from cli_helpers import kirin_env

    message = "Retrained on the full corpus " + "with a much longer explanation " * 8 + "END"
    model = write(reg.work, "long.pt", b"long")
    assert invoke("commit", model, "-m", message, "--metadata",
                  json.dumps({"framework": "pytorch", "notes": "n" * 150 + "|"}),
                  *reg.args()).code == 0
    piped = run("log", "-n", "1", "-c", "notes", *reg.args(), cwd=reg.work,
                env=kirin_env(COLUMNS="40"))
    assert piped.returncode == 0, piped.stderr
    header, _rule, row = piped.stdout.splitlines()
    assert "notes" in header
    assert message in row and "n" * 150 + "|" in row and "tester@example" in row
    assert row.startswith(reg.open().history(limit=1)[0].short_hash)


def test_log_flags_overrides_and_withdrawals(tmp_path: Path) -> None:
    from kirin import Catalog

    policy = ("version: 1\ntags: {allowed: [staging, production]}\nstages: [staging, production]\n"
              "promotion:\n  production:\n    when: 'accuracy >= 0.9'\n"
              "overrides:\n  rules: ['promotion.production.when']\n")
    ds = Catalog(tmp_path / "registry").create_dataset("models", policy=policy)
    model = write(tmp_path, "m.pt", b"m")
    weak = ds.commit("Weak model", add_files=[model], metadata={"accuracy": 0.5})
    ds.promote(weak, ["production"], override=True, reason="incident 7")
    ds.withdraw("production", "Withdrawn after the incident")
    args = ["--root", str(tmp_path / "registry"), "-d", "models"]
    rows = invoke("log", *args).stdout.splitlines()[2:]
    assert "[withdrew production] Withdrawn after the incident" in rows[0]
    assert "[override] Promote" in rows[1]
    assert "[" not in rows[2].split("│")[-1]  # a plain commit: no mark
