"""Commit of one large file (default 1 GiB) versus hashing it plus copying it.

Bound, measured in the same run: in-process ``hashlib.sha256`` of the file
streamed in 1 MiB chunks, plus ``cp`` of it (a subprocess) to the same disk.
A commit must read, hash and store the bytes, so it cannot beat that by much;
the target is wall <= 1.1 x bound and peak RSS <= 150 MiB (interpreter
included).

Each repetition commits into a fresh registry (otherwise the blob is already
there and the commit is nearly free) in a fresh process, so peak RSS is that
of the whole process; the commit is timed inside the child from ``Dataset()``
to the returned hash. A second commit of the same content in the same
registry measures the dedup path, against the hash alone.

Before every timed step (for ours: once the child has started and imported
Kirin, just before it opens the dataset) the machine is put in the same state:
"cold" drops the page cache (needs root), "warm" reads the source into it;
then memory is recycled (``--memory recycle``, see ``_common.Machine``). The
order of bound and ours alternates between repetitions. CPU time (user +
system) is printed next to wall time: on a busy machine it tells a slow
program from a busy one.

    .venv/bin/python benchmarks/bench_commit_large.py            # 1 GiB, 3 repeats
    .venv/bin/python benchmarks/bench_commit_large.py --size-mib 256 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import _common as c

TARGET_RATIO = 1.1
TARGET_RSS_MIB = 150.0
#: A minimal policy, for the "commit under a policy" variant (its rules never refuse).
POLICY = "version: 1\nmessage:\n  min_length: 3\n"


def child(root: str, source: str, message: str, tags: list[str], policy: bool) -> None:
    """Runs in a fresh process: open the dataset and commit ``source``; print a JSON report."""
    t0 = time.perf_counter()
    from kirin import Dataset

    if policy:  # untimed: the registry gets a policy before the commit is measured
        Dataset(root, "big").set_policy(POLICY, message="benchmark policy")
    c.ready()  # the parent now puts caches and memory in their state for this step
    t1, cpu1 = time.perf_counter(), time.process_time()
    ds = Dataset(root, "big")
    digest = ds.commit(message, add_files={"big.bin": source},
                       metadata={"size": os.path.getsize(source)}, tags=tags)
    t2, cpu2 = time.perf_counter(), time.process_time()
    file = ds.get_file("big.bin")
    assert file is not None
    print(json.dumps({"import": t1 - t0, "commit": t2 - t1, "cpu": cpu2 - cpu1,
                      "hwm_mib": c.vm_hwm_mib(), "commit_hash": digest, "blob": file.hash}))


def run_commit(machine: c.Machine, root: Path, source: Path, message: str, tags: list[str],
               policy: bool = False) -> c.ChildResult:
    return c.run_child([c.PYTHON, __file__, "--child", str(root), str(source), message,
                        ",".join(tags), "policy" if policy else "-"],
                       on_ready=lambda: machine.prepare(source))


def measure_bound(machine: c.Machine, source: Path, copy: Path) -> tuple[c.Timing, c.Timing]:
    """The bound's two parts, each from the same cache state as the commit: (sha256, cp)."""
    machine.prepare(source)
    sha = c.timed_sha256(source)
    machine.prepare(source)
    cp = c.timed_cp(source, copy)
    copy.unlink()
    return sha, cp


def measure_ours(machine: c.Machine, root: Path, source: Path, expected: str, policy: bool
                 ) -> tuple[c.ChildResult, c.ChildResult, c.ChildResult | None]:
    """A first commit into a fresh registry, a re-commit of the same content, and
    (with ``policy``) a first commit into a fresh registry that has a policy."""
    first = run_commit(machine, root, source, "big model", ["baseline"])
    assert first.report["blob"] == expected, "the commit stored a wrong hash"
    again = run_commit(machine, root, source, "promote", ["production"])
    assert again.report["blob"] == expected
    governed = None
    if policy:
        governed = run_commit(machine, root.with_name(root.name + "-policy"), source,
                              "big model", ["baseline"], policy=True)
        assert governed.report["blob"] == expected
        shutil.rmtree(root.with_name(root.name + "-policy"))
    return first, again, governed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_large_file_arguments(parser)
    parser.add_argument("--no-policy", action="store_true",
                        help="skip the 'commit under a policy' variant")
    args = parser.parse_args()
    size = args.size_mib * c.MIB

    print(f"machine: {c.machine_summary()}")
    base = args.workdir or "/tmp"
    c.require_space(base, 6 * size + 64 * c.MIB)  # source, blob, copy, scratch
    modes = c.cache_modes(args.cache)

    with c.workdir(args.workdir, args.keep) as work:
        source = work / "big.bin"
        print(f"generating {args.size_mib} MiB of random data in {source} ...", flush=True)
        c.make_random_file(source, size)
        expected = c.sha256_file(source)

        for mode in modes:
            reserve = int(2.25 * size) if args.memory == "recycle" else 0
            machine = c.Machine(mode, work, reserve)
            sha_t: list[c.Timing] = []
            cp_t: list[c.Timing] = []
            first_r: list[c.ChildResult] = []
            again_r: list[c.ChildResult] = []
            policy_r: list[c.ChildResult] = []
            for rep in range(args.repeats):
                root = work / f"registry-{mode}-{rep}"
                bound_first = rep % 2 == 0
                if bound_first:
                    sha, cp = measure_bound(machine, source, work / "copy.bin")
                first, again, governed = measure_ours(machine, root, source, expected,
                                                      not args.no_policy)
                if not bound_first:
                    sha, cp = measure_bound(machine, source, work / "copy.bin")
                shutil.rmtree(root)
                c.sync()
                sha_t.append(sha)
                cp_t.append(cp)
                first_r.append(first)
                again_r.append(again)
                if governed is not None:
                    policy_r.append(governed)
                print(f"  [{mode} #{rep + 1}] bound {sha.wall + cp.wall:.3f} s "
                      f"(sha256 {sha.wall:.3f} + cp {cp.wall:.3f}; CPU "
                      f"{sha.cpu + cp.cpu:.3f} s), commit {first.report['commit']:.3f} s "
                      f"(CPU {first.report['cpu']:.3f} s, process {first.wall:.3f} s, "
                      f"peak RSS {first.maxrss_mib:.1f} MiB), re-commit "
                      f"{again.report['commit']:.3f} s (CPU {again.report['cpu']:.3f} s)"
                      + (f", under a policy {governed.report['commit']:.3f} s (CPU "
                         f"{governed.report['cpu']:.3f} s)" if governed else ""), flush=True)

            bound_walls = [a.wall + b.wall for a, b in zip(sha_t, cp_t, strict=True)]
            bound_cpus = [a.cpu + b.cpu for a, b in zip(sha_t, cp_t, strict=True)]
            ours_walls = [r.report["commit"] for r in first_r]
            ours_cpus = [r.report["cpu"] for r in first_r]
            bound_wall, bound_cpu = c.median(bound_walls), c.median(bound_cpus)
            ours_wall, ours_cpu = c.median(ours_walls), c.median(ours_cpus)
            rss = [r.maxrss_mib for r in first_r]
            c.print_table(
                f"commit of a {args.size_mib} MiB file, {mode} cache, "
                f"median of {args.repeats}:",
                [
                    c.Row("commit wall (sha256 + cp)", ours_wall, bound_wall, "s", TARGET_RATIO,
                          f"sha256 {c.median([t.wall for t in sha_t]):.3f} s + cp "
                          f"{c.median([t.wall for t in cp_t]):.3f} s; whole process incl. "
                          f"interpreter start {c.median([r.wall for r in first_r]):.3f} s; "
                          + c.per_rep_ratios(ours_walls, bound_walls)),
                    c.Row("commit CPU user+sys (same)", ours_cpu, bound_cpu, "s", None,
                          f"sha256 {c.median([t.cpu for t in sha_t]):.3f} s + cp "
                          f"{c.median([t.cpu for t in cp_t]):.3f} s; "
                          + c.per_rep_ratios(ours_cpus, bound_cpus)),
                    c.Row("commit peak RSS (max)", max(rss), None, "MiB", TARGET_RSS_MIB,
                          f"median {c.median(rss):.1f} MiB, whole process from wait4"),
                    c.Row("re-commit same content (sha256)",
                          c.median([r.report["commit"] for r in again_r]),
                          c.median([t.wall for t in sha_t]), "s", None,
                          f"dedup path, bound = hashing alone; CPU "
                          f"{c.median([r.report['cpu'] for r in again_r]):.3f} s vs "
                          f"{c.median([t.cpu for t in sha_t]):.3f} s; peak RSS "
                          f"{max(r.maxrss_mib for r in again_r):.1f} MiB"),
                    *([c.Row("commit under a policy (sha256 + cp)",
                             c.median([r.report["commit"] for r in policy_r]), bound_wall, "s",
                             None, "the registry has a (permissive) policy: the file is hashed "
                             "once to judge the commit, then hashed again while stored; CPU "
                             f"{c.median([r.report['cpu'] for r in policy_r]):.3f} s; peak RSS "
                             f"{max(r.maxrss_mib for r in policy_r):.1f} MiB")]
                      if policy_r else []),
                ])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, root_arg, source_arg, message_arg, tags_arg, policy_arg = sys.argv
        child(root_arg, source_arg, message_arg, [t for t in tags_arg.split(",") if t],
              policy_arg == "policy")
    else:
        main()
