"""Per-commit time over a long history: it must not grow with the number of commits.

Variant "same": ``--commits`` (default 10,000) commits of one small file under
the same name, new content each time, with metadata and tags. Target: median
per-commit time of the last 100 commits <= 1.2 x that of the first 100.
Two bounds are reported, both measured in the same run:

* the first 100 commits of the same run (the literal target); sensitive to
  the machine's load changing over the minutes the run takes;
* the first 100 commits of a fresh dataset in the same registry, made by a
  fresh process in lockstep with the last 100 (one commit there, one here,
  alternately), so both windows see the same machine load. The long-history
  process keeps its whole history in memory, so its allocator and garbage
  collector costs are part of what is measured.

Variant "new": a new file name in every commit, so the snapshot grows by one
file per commit. Per-commit time may grow with the number of files in the
snapshot, but not with the number of commits. At 100, 1,000, 5,000 and 10,000
files the median of the 100 commits before the point is compared with a
control run in lockstep by a fresh process: a fresh dataset whose first commit
already holds the same number of files, then one new file per commit (same
snapshot sizes, about 100 commits of history). Target <= 1.2 x the control.

Commits are made on local disk. ``--keep-root DIR`` keeps the registry of the
last "same" repetition at DIR (dataset ``many``, 10,000 commits) for
``bench_open_history.py --root DIR``.

    .venv/bin/python benchmarks/bench_many_commits.py                 # both variants
    .venv/bin/python benchmarks/bench_many_commits.py --commits 2000 --repeats 1
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import _common as c

from kirin import Dataset

TARGET_RATIO = 1.2


# -- the lockstep control process ------------------------------------------
def worker(root: str, dataset: str, src: str, file_size: int) -> None:
    """Runs in a fresh process: one commit per command read from stdin, its time on stdout.

    ``same I``: new content for ``model.bin``; ``new I``: add ``file-<I>.bin``;
    ``snapshot N DIR``: one untimed commit of ``file-0..N-1`` from ``DIR``.
    """
    ds = Dataset(root, dataset)
    folder = Path(src)
    folder.mkdir(parents=True, exist_ok=True)
    for line in sys.stdin:
        cmd, *rest = line.split()
        if cmd == "snapshot":
            count, where = int(rest[0]), Path(rest[1])
            names = [file_name(i) for i in range(count)]
            ds.commit("initial snapshot", add_files={n: str(where / n) for n in names})
            elapsed = 0.0
        else:
            i = int(rest[0])
            name = "model.bin" if cmd == "same" else file_name(i)
            path = folder / f"control-{name}"
            c.write_small_file(path, i, file_size)
            t0 = time.perf_counter()
            ds.commit(f"{cmd} {i}", add_files={name: str(path)},
                      metadata=c.commit_metadata(i), tags=c.commit_tags(i))
            elapsed = time.perf_counter() - t0
        print(elapsed, flush=True)


class Control:
    """A fresh process committing to dataset ``name`` of ``root``, one commit per call."""

    def __init__(self, root: Path, name: str, src: Path, file_size: int) -> None:
        self.proc = subprocess.Popen(
            [c.PYTHON, __file__, "--worker", str(root), name, str(src), str(file_size)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.times: list[float] = []

    def call(self, command: str) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply:
            raise RuntimeError(f"control process died on {command!r}")
        return float(reply)

    def commit(self, command: str) -> None:
        self.times.append(self.call(command))

    def close(self) -> list[float]:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        if self.proc.wait() != 0:
            raise RuntimeError("control process failed")
        return self.times


def file_name(i: int) -> str:
    return f"file-{i:06d}.bin"


# -- variant "same" ----------------------------------------------------------
def run_same(root: Path, src: Path, commits: int, window: int, file_size: int
             ) -> tuple[list[float], list[float]]:
    """Per-commit times of the long run, and of the fresh control's ``window`` commits."""
    ds = Dataset(root, c.DATASET)
    times = c.commit_same_name(ds, commits - window, src, file_size)
    control = Control(root, "fresh", src / "control", file_size)
    path = src / "model.bin"
    for i in range(commits - window, commits):
        c.write_small_file(path, i, file_size)
        t0 = time.perf_counter()
        ds.commit(f"nightly build {i}", add_files=[str(path)], metadata=c.commit_metadata(i),
                  tags=c.commit_tags(i))
        times.append(time.perf_counter() - t0)
        control.commit(f"same {i - (commits - window)}")
    return times, control.close()


# -- variant "new" -----------------------------------------------------------
def run_new(root: Path, src: Path, commits: int, window: int, points: list[int],
            file_size: int) -> tuple[list[float], dict[int, list[float]]]:
    """Per-commit times of the growing run, and of a control at each point."""
    ds = Dataset(root, "growing")
    times: list[float] = []
    controls: dict[int, list[float]] = {}
    starts = {p - window: p for p in points}
    control: Control | None = None
    point = 0
    for i in range(commits):
        if i in starts:
            point = starts[i]
            control = Control(root, f"control-{point}", src / f"control-{point}", file_size)
            if i:
                control.call(f"snapshot {i} {src}")
        path = src / file_name(i)
        c.write_small_file(path, i, file_size)
        t0 = time.perf_counter()
        ds.commit(f"add file {i}", add_files=[str(path)], metadata=c.commit_metadata(i),
                  tags=c.commit_tags(i))
        times.append(time.perf_counter() - t0)
        if control is not None:
            control.commit(f"new {i}")
            if i + 1 == point:
                controls[point] = control.close()
                control = None
        if (i + 1) % 1000 == 0:
            print(f"    snapshot of {i + 1} files, last 100: "
                  f"{c.median(times[-100:]) * 1000:.2f} ms per commit", flush=True)
    return times, controls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=100,
                        help="commits per timing window (first/last N)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variant", choices=["same", "new", "both"], default="both")
    parser.add_argument("--points", default="100,1000,5000,10000",
                        help="snapshot sizes reported for the 'new' variant")
    parser.add_argument("--file-size", type=int, default=256, help="bytes per committed file")
    parser.add_argument("--workdir", help="parent folder for the temporary data (default /tmp)")
    parser.add_argument("--keep-root",
                        help="keep the last 'same' registry here (for bench_open_history)")
    args = parser.parse_args()
    window = min(args.window, args.commits // 2)
    points: list[int] = []
    for p in sorted({min(int(p), args.commits) for p in args.points.split(",") if p.strip()}):
        if p >= window and (not points or p - points[-1] >= window):
            points.append(p)  # windows must not overlap

    print(f"machine: {c.machine_summary()}")
    c.require_space(args.workdir or "/tmp", 64 * c.MIB + 40 * args.commits * 4096)

    with c.workdir(args.workdir) as work:
        if args.variant in ("same", "both"):
            same_variant(args, work, window)
        if args.variant in ("new", "both"):
            new_variant(args, work, window, points)


def same_variant(args: argparse.Namespace, work: Path, window: int) -> None:
    firsts: list[float] = []
    lasts: list[float] = []
    fresh: list[float] = []
    for rep in range(args.repeats):
        keep = bool(args.keep_root) and rep == args.repeats - 1
        root = Path(args.keep_root) if keep else work / f"same-{rep}"
        if keep and root.exists() and any(root.iterdir()):
            raise SystemExit(f"--keep-root {root} exists and is not empty")
        print(f"  [same #{rep + 1}] {args.commits} commits into {root}", flush=True)
        times, control = run_same(root, work / f"src-same-{rep}", args.commits, window,
                                  args.file_size)
        firsts.append(c.median(times[:window]))
        lasts.append(c.median(times[-window:]))
        fresh.append(c.median(control))
        print(f"  [same #{rep + 1}] first {window}: {firsts[-1] * 1000:.3f} ms, last "
              f"{window}: {lasts[-1] * 1000:.3f} ms (ratio {lasts[-1] / firsts[-1]:.2f}); "
              f"fresh dataset in lockstep: {fresh[-1] * 1000:.3f} ms (ratio "
              f"{lasts[-1] / fresh[-1]:.2f}); total {sum(times):.1f} s", flush=True)
    c.print_table(
        f"{args.commits} commits of one file (same name), per-commit time, median of "
        f"{args.repeats} runs:",
        [c.Row(f"last {window} vs first {window} of the run", c.median(lasts),
               c.median(firsts), "s", TARGET_RATIO,
               "per-run ratios " + ", ".join(f"{a / b:.2f}" for a, b in zip(lasts, firsts,
                                                                             strict=True))),
         c.Row(f"last {window} vs first {window} of a fresh dataset, lockstep",
               c.median(lasts), c.median(fresh), "s", TARGET_RATIO,
               "per-run ratios " + ", ".join(f"{a / b:.2f}" for a, b in zip(lasts, fresh,
                                                                             strict=True)))])


def new_variant(args: argparse.Namespace, work: Path, window: int, points: list[int]) -> None:
    at: dict[int, list[float]] = {p: [] for p in points}
    ctl: dict[int, list[float]] = {p: [] for p in points}
    for rep in range(args.repeats):
        src = work / f"src-new-{rep}"
        src.mkdir()
        print(f"  [new #{rep + 1}] {args.commits} commits, one new file each", flush=True)
        times, controls = run_new(work / f"new-{rep}", src, args.commits, window, points,
                                  args.file_size)
        for p in points:
            at[p].append(c.median(times[p - window:p]))
            ctl[p].append(c.median(controls[p]))
        print(f"  [new #{rep + 1}] " + ", ".join(
            f"{p} files: {at[p][-1] * 1000:.2f} ms (control {ctl[p][-1] * 1000:.2f})"
            for p in points) + f"; total {sum(times):.1f} s", flush=True)
    rows = [c.Row(f"{p} files, {p} commits vs {1 if p > window else 0}+{window} commits",
                  c.median(at[p]), c.median(ctl[p]), "s", TARGET_RATIO) for p in points]
    if len(points) >= 2:
        lo, hi = points[0], points[-1]
        slope = (c.median(at[hi]) - c.median(at[lo])) / (hi - lo)
        rows.append(c.Row(f"growth per file in snapshot ({lo}->{hi})", slope * 1e6, None,
                          "us", None, "allowed to grow with files; shown for information"))
    c.print_table(
        f"{args.commits} commits, a new file name each: per-commit time of the {window} "
        f"commits before each point, median of {args.repeats} runs (bound = same snapshot "
        "size in a fresh dataset, fresh process, lockstep):", rows)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        main()
