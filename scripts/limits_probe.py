"""Measure Kirin at sizes too big for CI: a long history and a wide snapshot.

    .venv/bin/python scripts/limits_probe.py                      # 100,000 commits, 50,000 files
    .venv/bin/python scripts/limits_probe.py --commits 20000 --files 0 --root /tmp/reg

The history is written through the real journal (``make_record`` +
``Journal.publish`` + checkpoints, exactly the objects a commit writes), which
is much faster than committing through the API but stores the same thing; the
wide snapshot goes through ``Dataset.commit``. Then it times what a user does:
open, ``history``, ``find_commits``, ``checkout``, one more commit, ``verify``.
The last result is recorded in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

from kirin import Dataset
from kirin.history import History, make_record
from kirin.journal import Journal
from kirin.store import Store

T = TypeVar("T")
ROWS: list[tuple[str, float, str]] = []


def timed(label: str, call: Callable[[], T], note: Callable[[T], str] = lambda _: "") -> T:
    """Run ``call``, record how long it took, print the row."""
    started = time.perf_counter()
    result = call()
    elapsed = time.perf_counter() - started
    ROWS.append((label, elapsed, note(result)))
    print(f"  {label:<44} {elapsed:9.2f} s  {note(result)}", flush=True)
    return result


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_history(root: str, commits: int, work: Path) -> list[str]:
    """``commits`` records through the real journal; two alternating blobs."""
    store = Store(root)
    journal = Journal(store, "long", History("long", store))
    journal.refresh()
    blobs: list[tuple[str, int]] = []
    for content in (b"model, even\n", b"model, odd\n"):
        source = work / f"src-{len(blobs)}"
        source.write_bytes(content)
        staged = store.stage(str(source))
        store.publish(staged)
        blobs.append((staged.digest, staged.size))
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    hashes: list[str] = []
    for seq in range(commits):
        entry = {"model.pt": blobs[seq % 2]}
        record = make_record(
            seq=seq, parent=hashes[-1] if hashes else None, snapshot=entry, added=entry,
            removed=(), message=f"training run {seq}",
            metadata={"run": seq, "accuracy": (seq % 1000) / 1000, "framework": "pytorch",
                      "hyperparameters": {"lr": 0.001, "epochs": seq % 50}},
            tags=["production"] if seq % 10_000 == 0 else [f"v{seq}"] if seq % 1000 == 0
            else [], timestamp=start + timedelta(seconds=seq), author="probe", policy=None)
        if not journal.publish(record):
            raise SystemExit(f"log entry {seq} already exists: use an empty --root")
        journal.write_due_checkpoints()
        hashes.append(record["hash"])
        if seq and seq % 10_000 == 0:
            print(f"    ... {seq} commits written", flush=True)
    return hashes


def probe_history(root: str, commits: int, work: Path) -> None:
    print(f"History of {commits:,} commits at {root}")
    hashes = timed(f"write {commits:,} records (journal + checkpoints)",
                   lambda: write_history(root, commits, work))
    ds = timed("open: Dataset(...).current_commit",
               lambda: _opened(root, "long"), _head)
    timed("history(limit=10) on the open dataset", lambda: ds.history(limit=10),
          lambda h: f"{len(h)} commits")
    timed("open + history() (every commit)", lambda: Dataset(root, "long").history(),
          lambda h: f"{len(h):,} commits")
    timed("find_commits(tags=['production'])", lambda: ds.find_commits(tags=["production"]),
          lambda h: f"{len(h)} found")
    timed("find_commits(where='accuracy >= 0.999')",
          lambda: ds.find_commits(where="accuracy >= 0.999"), lambda h: f"{len(h)} found")
    timed("find_commits(metadata_filter=..., limit=5)",
          lambda: ds.find_commits(metadata_filter=lambda m: m["run"] % 7 == 3, limit=5),
          lambda h: f"{len(h)} found")
    timed("checkout(prefix of commit #1234) + read_file",
          lambda: (ds.checkout(hashes[1234][:10]), ds.read_file("model.pt")),
          lambda r: f"#{r[0].seq}")
    ds.checkout()
    source = work / "notes.txt"
    source.write_text("one more")
    timed("commit on top (public API)", lambda: ds.commit("one more", add_files=[source]),
          lambda h: h[:12])
    timed("verify (every record, checkpoint, blob)", lambda: Dataset(root, "long").verify(),
          lambda r: f"ok={r.ok}, {r.commits_checked:,} commits")
    log = Path(root) / "datasets" / "long"
    if log.exists():
        size = sum(p.stat().st_size for p in log.rglob("*") if p.is_file())
        print(f"  storage for the history: {size / 2**20:,.1f} MiB "
              f"({size / max(commits, 1):,.0f} bytes per commit, checkpoints included)")


def _opened(root: str, name: str) -> Dataset:
    ds = Dataset(root, name)
    ds.is_empty()  # reads the history
    return ds


def _head(ds: Dataset) -> str:
    head = ds.current_commit
    return f"head #{head.seq}" if head is not None else "empty"


def probe_files(root: str, files: int, work: Path) -> None:
    print(f"One commit of {files:,} files at {root}")
    folder = work / "many"
    folder.mkdir()
    sources = {}
    for i in range(files):
        path = folder / f"f{i:06d}"
        path.write_bytes(f"file {i}\n".encode())
        sources[f"part-{i % 500:03d}/f{i:06d}.bin"] = path
    ds = Dataset(root, "wide")
    timed(f"commit {files:,} files", lambda: ds.commit("wide", add_files=sources))
    fresh = timed("open + list_files()", lambda: Dataset(root, "wide").list_files(),
                  lambda names: f"{len(names):,} names")
    assert len(fresh) == files
    timed("read one file", lambda: Dataset(root, "wide").read_file("part-042/f000042.bin"))
    extra = work / "extra"
    extra.write_text("x")
    timed("next commit (one file added)",
          lambda: ds.commit("one more", add_files={"extra.txt": extra}))
    timed("verify", lambda: Dataset(root, "wide").verify(),
          lambda r: f"ok={r.ok}, {r.blobs_checked:,} blobs")


@contextmanager
def workspace(root: str | None) -> Iterator[tuple[str, Path]]:
    with tempfile.TemporaryDirectory(prefix="kirin-limits-") as tmp:
        yield root or str(Path(tmp) / "registry"), Path(tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--root", help="registry root (default: a fresh temporary folder)")
    args = parser.parse_args(argv)
    started = time.time()
    with workspace(args.root) as (root, work):
        if args.commits:
            probe_history(root, args.commits, work)
        if args.files:
            probe_files(root, args.files, work)
    print(f"peak memory (RSS): {peak_rss_mib():,.0f} MiB; total {time.time() - started:,.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

