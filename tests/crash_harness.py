"""Kill a committing process with SIGKILL at random moments and check what it left.

Used by ``tests/test_crash.py`` (a short run in CI, on local disk and on S3)
and by ``scripts/crash_soak.py`` (hundreds of kills, by hand or nightly).
:func:`run_catalog` kills a writer creating and deleting datasets instead, and
checks that the catalog lists exactly the datasets the objects left define.

The same checks run on every backend, after every kill: the registry opens,
the history is one chain, every file of every commit has the recorded hash
(each blob is re-read and re-hashed when a commit first references it, and all
of them once more at the end), every commit a writer reported is there, and
the commit that was interrupted is there whole (every file holds the content
of *that* commit) or not at all, and every summary and segment stored is whole
and the log's (writers checkpoint every 3 commits and write a segment every 6, so
kills land in checkpoint, summary and segment writes too; a checker that sets
the same sizes, as ``tests/test_crash.py`` does, reads the history through the
segments).

The writer is a separate program (``tests/workers.py``) that gets only the
root URL on its command line. For an object store it gets the storage options
(endpoint, key, secret) the way a user's job would, from fsspec's
``FSSPEC_<PROTOCOL>`` environment variable: environment variables are not
shown by ``ps`` to other users, command-line arguments are.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kirin import Commit, Dataset

from registry_checks import assert_consistent, assert_segments_agree, assert_summaries_agree

WORKER = str(Path(__file__).with_name("workers.py"))
DATASET = "crashy"
FILES_PER_COMMIT = 3
FOLDER = "model"
#: The writers' block and segment sizes: a checkpoint every 3 commits, a segment every 6.
CHECKPOINT_EVERY = 3
SEGMENT_BLOCKS = 2
#: A writer that has not committed once by then is stuck, not slow (start-up is ~1 s).
FIRST_COMMIT_TIMEOUT = 120.0


@dataclass
class CrashReport:
    kills: int = 0
    commits_checked: int = 0
    summaries_checked: int = 0  # whole and the log's, after the last kill
    segments_checked: int = 0  # the same
    files_checked: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    """A registry root as both sides see it: the checker (this process) and the writer.

    ``storage_options`` are what a user passes to ``Dataset``; the writer gets
    the same settings through :meth:`worker_env`, never on its command line.
    """

    url: str
    storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def protocol(self) -> str:
        return self.url.split("://", 1)[0].lower() if "://" in self.url else "file"

    def worker_env(self) -> dict[str, str]:
        """Extra environment for the writer: fsspec reads ``FSSPEC_<PROTOCOL>`` as JSON."""
        if not self.storage_options:
            return {}
        return {f"FSSPEC_{self.protocol.upper()}": json.dumps(dict(self.storage_options))}

    def dataset(self) -> Dataset:
        """A fresh ``Dataset`` on the root, opened as a user would after the crash."""
        return Dataset(self.url, DATASET, **self.storage_options)


def expected_content(worker: str, step: int, k: int) -> bytes:
    """What ``workers.committer`` writes to file ``k`` of its commit ``step``."""
    return f"{worker}:{step}:{k}\n".encode() * (1 + step % 7)


def expected_files(worker: str, step: int) -> dict[str, str]:
    """The tree of a commit by ``worker`` at ``step``: every name with its sha256.

    Each commit rewrites the same names, so a commit that kept an older
    version of any file would still list them all; comparing the hashes is
    what shows that the commit is whole (every file from that commit).
    """
    return {f"{FOLDER}/f{k}.bin": hashlib.sha256(expected_content(worker, step, k)).hexdigest()
            for k in range(FILES_PER_COMMIT)}


def kill_once(target: Target, worker: str, rng: random.Random, tmp: Path,
              max_delay: float) -> tuple[int, str | None]:
    """Start a writer, SIGKILL it at a random moment after its first commit.

    Returns how many commits it reported, and a problem if it never got to
    commit at all: then nothing was tested, and on a misconfigured object
    store every later "survived" would be vacuous.
    """
    arguments = [target.url, DATASET, worker, "--count", "100000", "--files",
                 str(FILES_PER_COMMIT), "--checkpoint-every", str(CHECKPOINT_EVERY),
                 "--segment-blocks", str(SEGMENT_BLOCKS), "--folder", FOLDER]
    lines, problem = kill_after_first_line(target, worker, arguments, "committed", rng, tmp,
                                           max_delay)
    return sum(line.startswith("committed") for line in lines), problem


def kill_after_first_line(target: Target, worker: str, arguments: list[str], ready: str,
                          rng: random.Random, tmp: Path, max_delay: float
                          ) -> tuple[list[str], str | None]:
    """Run ``workers.py`` with ``arguments``; once it printed a line starting with
    ``ready``, SIGKILL it after a random wait; return the lines it printed and a
    problem if it never printed such a line."""
    log = tmp / f"worker-{worker}.err"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, WORKER, *arguments],
            stdout=subprocess.PIPE, stderr=err, text=True,
            env={**os.environ, **target.worker_env(), "KIRIN_WORKER_TMP": str(tmp)})
    watchdog = threading.Timer(FIRST_COMMIT_TIMEOUT, proc.kill)
    watchdog.start()
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        while not (lines and lines[-1].startswith(ready)):
            line = proc.stdout.readline()  # "" once the writer exited
            if not line:
                break
            lines.append(line.rstrip("\n"))
    finally:
        watchdog.cancel()
    ready_seen = bool(lines) and lines[-1].startswith(ready)
    if ready_seen:
        time.sleep(rng.uniform(0, max_delay))
    proc.send_signal(signal.SIGKILL)  # a no-op if it has exited already
    rest, _ = proc.communicate()
    problem = None
    if not ready_seen:
        tail = log.read_text(errors="replace")[-1500:]
        problem = f"writer {worker} never got going (exit {proc.returncode}): {tail}"
    log.unlink(missing_ok=True)
    return lines + rest.splitlines(), problem


def check_commits(commits: list[Commit], reported: dict[str, int], last: str) -> list[str]:
    """Every writer's commits are its steps 0..n-1, each whole; n matches what it said.

    Writers before ``last`` are dead and were checked already: their count
    must not have changed (a write still in flight when the check ran would
    show up here). The ``last`` writer may have published one commit more
    than it reported (killed between publishing and printing), never fewer.
    """
    problems: list[str] = []
    steps: dict[str, list[int]] = {}
    for commit in commits:
        worker, step = commit.metadata.get("worker"), commit.metadata.get("step")
        if not isinstance(worker, str) or not isinstance(step, int):
            problems.append(f"commit {commit.short_hash} has unexpected metadata "
                            f"{commit.metadata!r}")
            continue
        steps.setdefault(worker, []).append(step)
        files = {name: file.hash for name, file in commit.files.items()}
        if files != expected_files(worker, step):
            problems.append(f"commit {commit.short_hash} ({worker} step {step}) is not whole: "
                            f"it holds {sorted(files)} with other content than it wrote")
    for worker, count in reported.items():
        found = steps.pop(worker, [])
        if found != list(range(len(found))):
            problems.append(f"writer {worker}'s commits are not steps 0..n-1 in order: {found}")
        allowed = (count, count + 1) if worker == last else (count,)
        if len(found) not in allowed:
            problems.append(f"writer {worker}: {len(found)} commits in the history, "
                            f"{count} reported" + ("" if worker == last else
                                                   " (checked earlier)"))
    if steps:
        problems.append(f"commits by unknown writers: {sorted(steps)}")
    return problems


def run(target: Target | str, kills: int, seed: int, tmp: Path, verbose: bool = False,
        max_delay: float = 0.25) -> CrashReport:
    """Kill ``kills`` writers in turn; after each, the registry must open and be intact.

    ``max_delay`` bounds the random wait between a writer's first commit and
    its kill: at least the time of one commit, so the kills land anywhere in
    a commit (measured: a few ms on local disk, ~0.15 s on moto's S3 server).
    """
    if isinstance(target, str):
        target = Target(target)
    rng = random.Random(seed)
    report = CrashReport()
    reported: dict[str, int] = {}
    verified: set[str] = set()
    for i in range(kills):
        if verbose and i % 25 == 0:
            print(f"  kill {i}/{kills}: {report.commits_checked} commits so far", flush=True)
        worker = f"k{i}"
        reported[worker], problem = kill_once(target, worker, rng, tmp, max_delay)
        report.kills += 1
        if problem is not None:
            report.problems.append(f"kill {i + 1}: {problem}")
            break
        try:
            commits = assert_consistent(target.dataset(), verified)
        except Exception as exc:  # record and stop: later checks would only repeat it
            report.problems.append(f"after kill {i + 1}: {type(exc).__name__}: {exc}")
            break
        report.problems += [f"after kill {i + 1}: {p}"
                            for p in check_commits(commits, reported, worker)]
        # the writer's count is now what the history holds: the next checks expect it exactly
        reported[worker] = sum(c.metadata.get("worker") == worker for c in commits)
        report.commits_checked = len(commits)
        report.files_checked = sum(len(c.files) for c in commits)
        report.summaries_checked = assert_summaries_agree(target.dataset(), commits)
        report.segments_checked = assert_segments_agree(target.dataset(), commits)
        if report.problems:
            break
    if not report.problems:
        # after each kill only blobs not seen before were re-read; a kill must not damage an
        # older one either (a rewrite of an existing blob path), so re-read them all once more
        try:
            assert_consistent(target.dataset())
        except Exception as exc:
            report.problems.append(f"final full re-read: {type(exc).__name__}: {exc}")
    return report


def stored_datasets(target: Target) -> list[str]:
    """The datasets as the storage format defines them (a ``dataset.json`` or a first
    commit), read from the raw objects, never through the catalog or its markers."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(target.url, **target.storage_options)
    fs.invalidate_cache()
    base = f"{root.rstrip('/')}/datasets/"
    found = set()
    for path in fs.find(base):
        name, _, rest = str(path)[len(base):].partition("/")
        if rest in ("dataset.json", f"log/{0:020d}.json"):
            found.add(name)
    return sorted(found)


def run_catalog(target: Target | str, kills: int, seed: int, tmp: Path,
                max_delay: float = 0.25) -> CrashReport:
    """Kill ``kills`` dataset creators (``workers.creator``) in turn; after each, the catalog
    lists exactly :func:`stored_datasets`, every creation reported and not deleted (but the
    one whose deletion was under way), and no deletion reported. ``commits_checked``
    counts the datasets listed."""
    if isinstance(target, str):
        target = Target(target)
    from kirin import Catalog

    rng = random.Random(seed)
    report = CrashReport()
    alive: set[str] = set()
    for i in range(kills):
        worker = f"k{i}"
        # killed once past its first deletion: the first step is slow (loading the policy
        # machinery), the later ones take ~0.1 s on local disk, so the kills land anywhere
        lines, problem = kill_after_first_line(target, worker, ["creator", target.url, worker],
                                               "deleted", rng, tmp, max_delay)
        report.kills += 1
        if problem is not None:
            report.problems.append(f"kill {i + 1}: {problem}")
            break
        deleted: set[str] = set()
        said = [line.split() for line in lines]
        odd = [line for line in lines if len(line.split()) != 2]
        if odd:  # each print is one write to the pipe: a kill cannot cut a line short
            report.problems.append(f"kill {i + 1}: worker {worker} printed {odd!r} among "
                                   f"{lines[-6:]!r}")
            break
        for what, name in said:
            (alive.add if what == "created" else deleted.add)(name)
        alive -= deleted
        listed = Catalog(target.url, **target.storage_options).datasets()
        stored = stored_datasets(target)
        # killed while deleting: that deletion may have finished without being reported
        what, name = said[-1]
        worker_, _, step = name.rpartition("-f")
        if what == "created" and step.isdigit() and int(step) > 0:
            doomed = f"{worker_}-c{int(step) - 1}"
            if doomed not in listed:
                alive.discard(doomed)
        if listed != stored:
            report.problems.append(f"after kill {i + 1}: the catalog lists {listed}, the "
                                   f"objects define {stored}")
        report.problems += [f"after kill {i + 1}: {name} was reported {state} but is "
                            f"{'not ' if state == 'created' else ''}listed"
                            for state, names in (("created", alive - set(listed)),
                                                 ("deleted", deleted & set(listed)))
                            for name in sorted(names)]
        report.commits_checked = len(listed)
        if report.problems:
            break
    return report
