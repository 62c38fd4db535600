"""Processes that tests start and stop: real writers, run with ``python tests/workers.py``.

Kept in one small script so every concurrency and crash test drives the
registry exactly as a user's separate program would.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def committer(root: str, dataset: str, worker: str, count: int, start_at: float,
              files_per_commit: int, checkpoint_every: int | None, folder: str | None = None,
              segment_blocks: int | None = None, pause: float = 0.0) -> None:
    """Make ``count`` commits, each adding files whose content names the writer and step.

    ``pause``: seconds to wait after each commit, so that a process racing the writer
    (``gc``) is sure to run while it still has commits to make.

    ``checkpoint_every``, ``segment_blocks``: small blocks and segments, so that a few
    commits complete them (and writers race and die while writing them).
    """
    import kirin.compaction
    import kirin.journal
    from kirin import Dataset

    if checkpoint_every:
        kirin.journal.CHECKPOINT_EVERY = checkpoint_every
    if segment_blocks:
        kirin.compaction.BLOCKS = segment_blocks
    work = Path(os.environ.get("KIRIN_WORKER_TMP", "/tmp")) / f"kirin-worker-{worker}-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    ds = Dataset(root, dataset)
    while time.time() < start_at:  # line up with the other writers
        time.sleep(0.001)
    for step in range(count):
        sources = {}
        for k in range(files_per_commit):
            path = work / f"f{k}.bin"
            path.write_bytes(f"{worker}:{step}:{k}\n".encode() * (1 + step % 7))
            sources[f"{folder or worker}/f{k}.bin"] = str(path)
        ds.commit(f"{worker} step {step}", add_files=sources,
                  metadata={"worker": worker, "step": step}, tags=[f"w-{worker}"])
        print(f"committed {worker} {step}", flush=True)
        time.sleep(pause)


def tagger(root: str, dataset: str, worker: str, start_at: float, tags: list[str],
           content: str, accuracy: float) -> None:
    """Make one commit with ``tags`` at ``start_at`` and say whether the policy admitted it."""
    from kirin import Dataset
    from kirin.errors import PolicyViolationError

    work = Path(os.environ.get("KIRIN_WORKER_TMP", "/tmp")) / f"kirin-tagger-{worker}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "model.pt").write_text(content)
    ds = Dataset(root, dataset)
    while time.time() < start_at:
        time.sleep(0.0005)
    try:
        digest = ds.commit(f"{worker} proposes {' '.join(tags)}", add_files=[work / "model.pt"],
                           metadata={"accuracy": accuracy}, tags=tags)
    except PolicyViolationError as exc:
        print("rejected", " ".join(sorted({v.rule for v in exc.violations})), flush=True)
    else:
        print("admitted", digest, flush=True)


def stager(root: str, dataset: str, worker: str, start_at: float, action: str, ref: str,
           expect: str | None) -> None:
    """At ``start_at``, promote ``ref`` to production or withdraw production; say what happened."""
    from kirin import Dataset
    from kirin.errors import CommitNotFoundError, StaleRefError

    ds = Dataset(root, dataset)
    while time.time() < start_at:
        time.sleep(0.0005)
    try:
        if action == "withdraw":
            digest = ds.withdraw("production", f"{worker} withdraws production", expect=expect)
        else:
            digest = ds.promote(ref, ["production"], f"{worker} promotes {ref[:8]}")
    except (StaleRefError, CommitNotFoundError) as exc:
        print("refused", type(exc).__name__, flush=True)
    else:
        print("done", digest, flush=True)


CREATOR_POLICY = "version: 1\nmetadata:\n  schema: {type: object}\n"


def creator(root: str, worker: str) -> None:
    """Create and delete datasets in a loop, saying after each what it did: killed anywhere,
    it leaves creations (with and without a policy, by create_dataset and by a first commit)
    and deletions half done, around their catalog markers."""
    from kirin import Catalog

    work = Path(os.environ.get("KIRIN_WORKER_TMP", "/tmp")) / f"kirin-creator-{worker}"
    work.mkdir(parents=True, exist_ok=True)
    source = work / "f.bin"
    source.write_text(worker)
    catalog = Catalog(root)
    for step in range(100_000):
        name = f"{worker}-c{step}"
        catalog.create_dataset(name, policy=CREATOR_POLICY if step % 2 else None)
        print("created", name, flush=True)
        name = f"{worker}-f{step}"
        catalog.get_dataset(name).commit("first", add_files={"f.bin": str(source)})
        print("created", name, flush=True)
        if step:
            name = f"{worker}-c{step - 1}"
            catalog.delete_dataset(name, governed=True)
            print("deleted", name, flush=True)


def main(argv: list[str]) -> None:
    if argv and argv[0] == "creator":
        creator(argv[1], argv[2])
        return
    if argv and argv[0] == "stager":
        parser = argparse.ArgumentParser()
        parser.add_argument("mode")
        parser.add_argument("root")
        parser.add_argument("dataset")
        parser.add_argument("worker")
        parser.add_argument("action", choices=["promote", "withdraw"])
        parser.add_argument("--start-at", type=float, required=True)
        parser.add_argument("--ref", default="")
        parser.add_argument("--expect")
        s = parser.parse_args(argv)
        stager(s.root, s.dataset, s.worker, s.start_at, s.action, s.ref, s.expect)
        return
    if argv and argv[0] == "tagger":
        parser = argparse.ArgumentParser()
        parser.add_argument("mode")
        parser.add_argument("root")
        parser.add_argument("dataset")
        parser.add_argument("worker")
        parser.add_argument("--start-at", type=float, required=True)
        parser.add_argument("--tag", action="append", default=[])
        parser.add_argument("--content", default="weights")
        parser.add_argument("--accuracy", type=float, default=0.95)
        t = parser.parse_args(argv)
        tagger(t.root, t.dataset, t.worker, t.start_at, t.tag, t.content, t.accuracy)
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("dataset")
    parser.add_argument("worker")
    parser.add_argument("--count", type=int, default=25)
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--files", type=int, default=1)
    parser.add_argument("--checkpoint-every", type=int, default=None)
    parser.add_argument("--segment-blocks", type=int, default=None)
    parser.add_argument("--folder", help="store files under this folder (default: worker)")
    parser.add_argument("--pause", type=float, default=0.0)
    args = parser.parse_args(argv)
    committer(args.root, args.dataset, args.worker, args.count, args.start_at, args.files,
              args.checkpoint_every, args.folder, args.segment_blocks, args.pause)


if __name__ == "__main__":
    main(sys.argv[1:])
