"""Reading a large committed file through ``open_file`` versus hashing it by hand.

``ds.open_file(name)`` (the default mode) checks the whole blob before it
returns; a large local blob is hashed through one file descriptor, which is
then rewound and served. ``open_file(name, stream=True)`` hashes as it
streams. Each is timed from ``open_file`` to the last byte read (1 MiB
``readinto`` calls into one buffer). Bound, measured in the same run: a plain
Python loop reading the blob in 1 MiB chunks into ``hashlib.sha256`` (what
any verified read must at least do). Target: default mode <= 1.5 x bound;
streaming mode is reported against the same bound.

Timed in this process, alternating which of ours and the bound runs first;
``TMPDIR`` (where copies of blobs changed while read would go) is set to the
registry's disk. Cache and memory states as in ``bench_commit_large.py``:
"cold" drops the page cache before every timed step (root only), "warm"
reads the blob into it first.

    .venv/bin/python benchmarks/bench_open_file.py            # 1 GiB, 3 repeats
    .venv/bin/python benchmarks/bench_open_file.py --size-mib 256 --repeats 5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import TYPE_CHECKING

import _common as c

if TYPE_CHECKING:
    from kirin import Dataset

TARGET_RATIO = 1.5
NAME = "big.bin"


def timed_open_file(ds: Dataset, size: int, stream: bool) -> c.Timing:
    """``open_file`` then every byte read; checks the count."""
    buffer = bytearray(c.CHUNK)
    wall, cpu = time.perf_counter(), time.process_time()
    total = 0
    with ds.open_file(NAME, stream=stream) as f:
        while n := f.readinto(buffer):
            total += n
    timing = c.Timing(time.perf_counter() - wall, time.process_time() - cpu)
    assert total == size, (total, size)
    return timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_large_file_arguments(parser)
    args = parser.parse_args()
    size = args.size_mib * c.MIB

    print(f"machine: {c.machine_summary()}")
    c.require_space(args.workdir or "/tmp", 5 * size + 64 * c.MIB)
    modes = c.cache_modes(args.cache)

    with c.workdir(args.workdir, args.keep) as work:
        tempfile.tempdir = str(work)  # any private copy: on the registry's disk
        ds, blob = c.committed_large_file(work, size, NAME)

        for mode in modes:
            reserve = int(2.25 * size) if args.memory == "recycle" else 0
            machine = c.Machine(mode, work, reserve)
            bound: list[c.Timing] = []
            default: list[c.Timing] = []
            stream: list[c.Timing] = []
            for rep in range(args.repeats):
                steps = [("bound", lambda: c.timed_sha256(blob), bound),
                         ("default", lambda: timed_open_file(ds, size, False), default),
                         ("stream", lambda: timed_open_file(ds, size, True), stream)]
                if rep % 2:
                    steps.reverse()
                for _, step, into in steps:
                    machine.prepare(blob)
                    into.append(step())
                print(f"  [{mode} #{rep + 1}] bound (sha256 loop) {bound[-1].wall:.3f} s "
                      f"(CPU {bound[-1].cpu:.3f}), open_file {default[-1].wall:.3f} s "
                      f"(CPU {default[-1].cpu:.3f}), stream=True {stream[-1].wall:.3f} s "
                      f"(CPU {stream[-1].cpu:.3f})", flush=True)

            walls = [t.wall for t in bound]
            c.print_table(
                f"open_file + read of a {args.size_mib} MiB file on local disk, {mode} cache, "
                f"median of {args.repeats}:",
                [
                    c.Row("open_file (verified first) wall", c.median([t.wall for t in default]),
                          c.median(walls), "s", TARGET_RATIO,
                          f"samples {c.fmt_list([t.wall for t in default])}; "
                          + c.per_rep_ratios([t.wall for t in default], walls)),
                    c.Row("open_file(stream=True) wall", c.median([t.wall for t in stream]),
                          c.median(walls), "s", TARGET_RATIO,
                          f"samples {c.fmt_list([t.wall for t in stream])}; "
                          + c.per_rep_ratios([t.wall for t in stream], walls)),
                    c.Row("open_file (verified first) CPU", c.median([t.cpu for t in default]),
                          c.median([t.cpu for t in bound]), "s", None),
                    c.Row("open_file(stream=True) CPU", c.median([t.cpu for t in stream]),
                          c.median([t.cpu for t in bound]), "s", None),
                ])


if __name__ == "__main__":
    main()
