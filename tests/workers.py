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
              files_per_commit: int, checkpoint_every: int | None) -> None:
    """Make ``count`` commits, each adding files whose content names the writer and step."""
    import kirin.journal
    from kirin import Dataset

    if checkpoint_every:
        kirin.journal.CHECKPOINT_EVERY = checkpoint_every
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
            sources[f"{worker}/f{k}.bin"] = str(path)
        ds.commit(f"{worker} step {step}", add_files=sources,
                  metadata={"worker": worker, "step": step}, tags=[f"w-{worker}"])
        print(f"committed {worker} {step}", flush=True)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("dataset")
    parser.add_argument("worker")
    parser.add_argument("--count", type=int, default=25)
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--files", type=int, default=1)
    parser.add_argument("--checkpoint-every", type=int, default=None)
    args = parser.parse_args(argv)
    committer(args.root, args.dataset, args.worker, args.count, args.start_at, args.files,
              args.checkpoint_every)


if __name__ == "__main__":
    main(sys.argv[1:])
