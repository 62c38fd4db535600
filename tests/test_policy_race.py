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


def test_racing_withdrawals_and_promotions_each_name_the_holder_they_retired(
        tmp_path: Path) -> None:
    """Three processes withdraw production while three promote other models to it.

    Every withdrawal that lands names the commit holding production right
    before it: one that lost the race to a promotion is judged again against
    the new holder (refused if it expected the old one), and one that lost to
    another withdrawal is refused: never recorded against the wrong holder.
    """
    root = str(tmp_path / "registry")
    ds = Dataset(root, "models")
    ds.set_policy("version: 1\ntags: {allowed: [production, staging]}\n"
                  "stages: [staging, production]\n")
    work = tmp_path / "work"
    work.mkdir()
    candidates = []
    for i in range(4):
        (work / "model.pt").write_text(f"model {i}")
        candidates.append(ds.commit(f"model {i}", add_files=[work / "model.pt"]))
    first = ds.promote(candidates[0], ["production"])
    start_at = time.time() + 1.5
    procs = []
    for i in range(6):
        args = [sys.executable, WORKER, "stager", root, "models", f"w{i}",
                "withdraw" if i % 2 else "promote", "--start-at", str(start_at)]
        if i % 2:
            args += ["--expect", first] if i == 1 else []
        else:
            args += ["--ref", candidates[1 + i // 2]]
        procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(out.split())
    assert all(o[0] == "done" for o in outputs[0::2])  # promotions always land
    holder = None
    retired = []
    for commit in assert_consistent(Dataset(root, "models")):
        if commit.withdrawal is not None:
            assert holder is not None and commit.withdrawal["holder"] == holder
            retired.append((commit.message.split()[0], holder))
            holder = None
        elif "production" in commit.tags:
            holder = commit.hash
    assert all(holder == first for worker, holder in retired if worker == "w1")  # --expect
    landed = {o[1] for o in outputs[1::2] if o[0] == "done"}
    assert len(landed) == len(retired)
