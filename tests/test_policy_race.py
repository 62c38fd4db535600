"""Writers racing on history-dependent rules: the loser is judged again on the new head."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from kirin import Dataset

from registry_checks import assert_consistent

WORKER = str(Path(__file__).with_name("workers.py"))
POLICY = """\
version: 1
tags:
  allowed: [staging, production]
  patterns: ['v\\d+']
  unique_patterns: ['v\\d+']
  exclusive_groups: [[staging, production]]
promotion:
  production:
    when: "accuracy >= 0.9"
    requires_stage: staging
"""


def race(root: str, tmp: Path, proposals: list[dict[str, object]]) -> list[str]:
    """Start one process per proposal at the same instant; return what each printed."""
    start_at = time.time() + 1.5
    procs = []
    for i, proposal in enumerate(proposals):
        args = [sys.executable, WORKER, "tagger", root, "models", f"w{i}",
                "--start-at", str(start_at), "--content", str(proposal["content"])]
        for tag in proposal["tags"]:  # type: ignore[attr-defined]
            args += ["--tag", tag]
        procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env={**os.environ, "KIRIN_WORKER_TMP": str(tmp)}))
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(out.strip())
    return outputs


def test_a_version_tag_raced_by_four_writers_lands_once(tmp_path: Path) -> None:
    """Of four simultaneous commits tagged v1, one is admitted, three are refused as reuse."""
    root = str(tmp_path / "registry")
    Dataset(root, "models").set_policy(POLICY)
    for round_ in range(3):
        tag = f"v{round_ + 1}"
        outputs = race(root, tmp_path, [{"content": f"m{round_}-{i}", "tags": [tag]}
                                        for i in range(4)])
        assert sorted(o.split()[0] for o in outputs) == ["admitted"] + ["rejected"] * 3
        assert all(o == "rejected tags.unique" for o in outputs if o.startswith("rejected"))
    commits = assert_consistent(Dataset(root, "models"))
    assert [list(c.tags) for c in commits] == [["v1"], ["v2"], ["v3"]]


def test_production_never_lands_before_its_staging(tmp_path: Path) -> None:
    """A production commit racing the staging of the same model is admitted only after it."""
    root = str(tmp_path / "registry")
    Dataset(root, "models").set_policy(POLICY)
    for round_ in range(3):
        outputs = race(root, tmp_path, [
            {"content": f"model-{round_}", "tags": ["staging"]},
            {"content": f"model-{round_}", "tags": ["production"]},
            {"content": f"model-{round_}", "tags": ["production"]},
        ])
        assert outputs[0].startswith("admitted")
        for out in outputs[1:]:
            assert out.startswith("admitted") or out == (
                "rejected promotion.production.requires_stage")
    commits = assert_consistent(Dataset(root, "models"))
    staged: set[str] = set()
    for commit in commits:
        content = commit.files["model.pt"].hash
        if "staging" in commit.tags:
            staged.add(content)
        if "production" in commit.tags:
            assert content in staged, f"{commit.short_hash} reached production before staging"
