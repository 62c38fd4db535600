"""Kill a committing process with SIGKILL at random moments and check what it left.

Used by ``tests/test_crash.py`` (a short run in CI) and by
``scripts/crash_soak.py`` (hundreds of kills, by hand or nightly).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from kirin import Dataset

from registry_checks import assert_consistent

WORKER = str(Path(__file__).with_name("workers.py"))


@dataclass
class CrashReport:
    kills: int = 0
    commits_checked: int = 0
    files_checked: int = 0
    problems: list[str] = field(default_factory=list)


def kill_once(root: str, worker: str, rng: random.Random, tmp: Path,
              max_delay: float = 0.25) -> int:
    """Start a writer, SIGKILL it at a random moment, return how many commits it reported."""
    proc = subprocess.Popen(
        [sys.executable, WORKER, root, "crashy", worker, "--count", "100000",
         "--files", "3", "--checkpoint-every", "3", "--folder", "model"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "KIRIN_WORKER_TMP": str(tmp)})
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the writer is past start-up and committing
    time.sleep(rng.uniform(0, max_delay))
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate()
    return (first + rest).count("committed")


def run(root: str, kills: int, seed: int, tmp: Path, verbose: bool = False) -> CrashReport:
    """Kill ``kills`` writers in turn; after each, the registry must open and be intact."""
    rng = random.Random(seed)
    report = CrashReport()
    reported = 0
    verified: set[str] = set()
    for i in range(kills):
        if verbose and i % 25 == 0:
            print(f"  kill {i}/{kills}: {report.commits_checked} commits so far", flush=True)
        reported += kill_once(root, f"k{i}", rng, tmp)
        report.kills += 1
        try:
            commits = assert_consistent(Dataset(root, "crashy"), verified)
        except Exception as exc:  # record and stop: later checks would only repeat it
            report.problems.append(f"after kill {i + 1}: {type(exc).__name__}: {exc}")
            break
        # every commit a writer reported is there; at most one unreported per kill
        # (published, then killed before it could say so)
        if not reported <= len(commits) <= reported + report.kills:
            report.problems.append(f"after kill {i + 1}: {len(commits)} commits in the "
                                   f"history, {reported} reported by the writers")
        for commit in commits[report.commits_checked:]:
            if len(commit.files) != 3:
                report.problems.append(f"commit {commit.short_hash} holds a partial file set")
        report.commits_checked = len(commits)
        report.files_checked = sum(len(c.files) for c in commits)
    return report
