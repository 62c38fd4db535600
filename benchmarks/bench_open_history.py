"""Opening a long history in a fresh process: ``Dataset()`` + ``history()`` + ``find_commits``.

At 10,000 commits (one file, metadata and tags on each; one commit in 100
carries ``production``), a fresh process runs::

    ds = Dataset(root, "many"); ds.history(); ds.find_commits(tags=["production"])

Target: <= 0.5 s, cold. Reported, each the median of ``--repeats`` fresh
processes:

* in-process time of those three calls (after ``import kirin``): the target;
* wall time of the whole ``python -c ...`` process, next to the bound
  measured in the same run: the wall time of a bare ``python -c "import kirin"``
  (interpreter start + import); their difference is the cost of opening.

"cold" drops the page cache before every process (root only); "warm" does not
(the registry and the interpreter's files are then in the cache).

    .venv/bin/python benchmarks/bench_open_history.py                     # builds 10,000
    .venv/bin/python benchmarks/bench_many_commits.py --variant same --repeats 1 \\
        --keep-root /tmp/kirin-10k
    .venv/bin/python benchmarks/bench_open_history.py --root /tmp/kirin-10k
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import _common as c

TARGET_S = 0.5

OPEN = """
import json, sys, time
t0 = time.perf_counter()
from kirin import Dataset
t1, cpu1 = time.perf_counter(), time.process_time()
ds = Dataset(sys.argv[1], sys.argv[2])
t2 = time.perf_counter()
commits = ds.history()
t3 = time.perf_counter()
found = ds.find_commits(tags=[sys.argv[3]])
t4, cpu4 = time.perf_counter(), time.process_time()
print(json.dumps({"import": t1 - t0, "cpu": cpu4 - cpu1, "open": t2 - t1, "history": t3 - t2,
                  "find": t4 - t3, "total": t4 - t1, "commits": len(commits),
                  "found": len(found)}))
"""

BARE = "import kirin"


def build(root: Path, commits: int, file_size: int) -> None:
    from kirin import Dataset

    print(f"building {commits} commits in {root} ...", flush=True)
    t0 = time.perf_counter()
    c.commit_same_name(Dataset(root, c.DATASET), commits, root.parent / "src", file_size)
    print(f"built in {time.perf_counter() - t0:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", help="existing registry (e.g. from bench_many_commits "
                        "--keep-root); default: build one")
    parser.add_argument("--name", default=c.DATASET, help="dataset name in --root")
    parser.add_argument("--tag", default=c.QUERY_TAG, help="tag given to find_commits")
    parser.add_argument("--commits", type=int, default=10_000, help="commits to build")
    parser.add_argument("--file-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cache", choices=["cold", "warm", "both"], default="both")
    parser.add_argument("--memory", choices=["recycle", "as-is"], default="recycle",
                        help="recycle memory before each process (see _common.Machine)")
    parser.add_argument("--workdir", help="parent folder for the temporary data (default /tmp)")
    args = parser.parse_args()

    print(f"machine: {c.machine_summary()}")
    modes = c.cache_modes(args.cache)
    with c.workdir(args.workdir) as work:
        if args.root:
            root = Path(args.root)
        else:
            c.require_space(args.workdir or "/tmp", 64 * c.MIB + 20 * args.commits * 4096)
            root = work / "registry"
            build(root, args.commits, args.file_size)
        open_argv = [c.PYTHON, "-c", OPEN, str(root), args.name, args.tag]
        bare_argv = [c.PYTHON, "-c", BARE]
        c.run_child(open_argv)  # fail early, and learn the history's size
        for mode in modes:
            reserve = 256 * c.MIB if args.memory == "recycle" else 0
            machine = c.Machine(mode, work, reserve)
            ours: list[c.ChildResult] = []
            bare: list[c.ChildResult] = []
            for rep in range(args.repeats):
                order = (open_argv, bare_argv) if rep % 2 == 0 else (bare_argv, open_argv)
                for argv in order:
                    machine.prepare()
                    result = c.run_child(argv)
                    (ours if argv is open_argv else bare).append(result)
                r = ours[-1].report
                print(f"  [{mode} #{rep + 1}] process {ours[-1].wall:.3f} s (import "
                      f"{r['import']:.3f}, open {r['open']:.3f}, history {r['history']:.3f}, "
                      f"find_commits {r['find']:.3f}; {r['commits']} commits, "
                      f"{r['found']} found; peak RSS {ours[-1].maxrss_mib:.1f} MiB), "
                      f"bare import {bare[-1].wall:.3f} s", flush=True)

            def part(key: str, results: list[c.ChildResult] = ours) -> float:
                return c.median([float(x.report[key]) for x in results])

            wall = c.median([x.wall for x in ours])
            base = c.median([x.wall for x in bare])
            n = ours[-1].report["commits"]
            c.print_table(
                f"open + history() + find_commits(tags=[{args.tag!r}]) at {n} commits, "
                f"fresh process, {mode} cache, median of {args.repeats}:",
                [
                    c.Row("in-process: open + history + find", part("total"), None, "s",
                          TARGET_S,
                          f"open {part('open'):.3f} s, history {part('history'):.3f} s, "
                          f"find_commits {part('find'):.3f} s; CPU {part('cpu'):.3f} s"),
                    c.Row("whole process vs bare `import kirin`", wall, base, "s", None,
                          f"difference {wall - base:.3f} s; import inside the process "
                          f"{part('import'):.3f} s; peak RSS "
                          f"{max(x.maxrss_mib for x in ours):.1f} MiB"),
                    c.Row("whole process minus bare import", wall - base, None, "s", TARGET_S),
                ])


if __name__ == "__main__":
    main()
