"""Commit and read throughput on S3 (moto's server on loopback) next to raw s3fs.

Bound, measured in the same run against the same server with the same bytes:
``s3fs.S3FileSystem.put_file`` of the file (what a script without Kirin
would do to upload it) and ``cat_file`` of the uploaded object. Ours:
``Dataset.commit`` of the file into a fresh registry (hash, upload while
hashing again: one streamed PUT below 100 MiB, parts above; write the log
entry) and a verified read of it back (``download_file`` to
local disk, hashing every byte). The target is throughput >= 0.8 x raw, i.e.
wall time <= 1.25 x raw, on medians. Steps alternate between raw and ours.

moto's server is single-process Python, so absolute figures say more about
moto than about S3; the ratio is what this measures.

    .venv/bin/python benchmarks/bench_s3.py                       # 64 and 256 MiB, 5 repeats
    .venv/bin/python benchmarks/bench_s3.py --size-mib 16 --repeats 9
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import _common as c

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from servers import make_cloud, start_moto

TARGET = 1.25  # wall-time ratio; throughput ratio >= 0.8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", default="64,256",
                        help="file sizes to measure, comma-separated (default: 64,256)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    print(c.machine_summary())
    server = start_moto()
    try:
        for size_mib in args.size_mib.split(","):
            run(server.endpoint, int(size_mib) * c.MIB, args.repeats, args.workdir)
    finally:
        server.stop()


def run(endpoint: str, size: int, repeats: int, base: str | None) -> None:
    from kirin import Dataset

    cloud = make_cloud("s3", endpoint)
    fs = cloud.filesystem()
    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    cloud.create_bucket(bucket)
    with c.workdir(base) as work:
        source = work / "model.bin"
        c.make_random_file(source, size)
        raw_put, raw_cat, commit, read = [], [], [], []
        for i in range(repeats):
            steps = ["raw", "ours"] if i % 2 == 0 else ["ours", "raw"]
            for step in steps:
                if step == "raw":
                    key = f"{bucket}/raw/{i}"
                    t0 = time.perf_counter()
                    fs.put_file(str(source), key)
                    t1 = time.perf_counter()
                    data = fs.cat_file(key)
                    t2 = time.perf_counter()
                    assert len(data) == size
                    del data
                    raw_put.append(t1 - t0)
                    raw_cat.append(t2 - t1)
                else:
                    url = cloud.url(bucket, f"reg{i}")
                    t0 = time.perf_counter()
                    ds = Dataset(url, "bench", **cloud.storage_options())
                    ds.commit("bench", add_files={"model.bin": str(source)})
                    t1 = time.perf_counter()
                    target = work / f"read-{i}.bin"
                    ds.download_file("model.bin", target)
                    t2 = time.perf_counter()
                    assert target.stat().st_size == size
                    target.unlink()
                    commit.append(t1 - t0)
                    read.append(t2 - t1)
            print(f"  repeat {i + 1}: put {raw_put[-1]:.3f} s, commit {commit[-1]:.3f} s, "
                  f"cat {raw_cat[-1]:.3f} s, verified read {read[-1]:.3f} s", flush=True)
    mib = size / c.MIB
    rows = [
        c.Row(f"commit {mib:.0f} MiB vs s3fs put_file", c.median(commit), c.median(raw_put),
              "s", TARGET,
              note=f"{mib / c.median(commit):.0f} MiB/s vs {mib / c.median(raw_put):.0f} MiB/s; "
                   f"throughput ratio {c.median(raw_put) / c.median(commit):.2f}"),
        c.Row(f"verified read {mib:.0f} MiB vs s3fs cat_file", c.median(read),
              c.median(raw_cat), "s", TARGET,
              note=f"{mib / c.median(read):.0f} MiB/s vs {mib / c.median(raw_cat):.0f} MiB/s; "
                   f"throughput ratio {c.median(raw_cat) / c.median(read):.2f}"),
    ]
    print(f"\n  samples: put {c.fmt_list(raw_put)}, commit {c.fmt_list(commit)}")
    print(f"  samples: cat {c.fmt_list(raw_cat)}, read {c.fmt_list(read)}")
    c.print_table(f"S3 (moto server on loopback), {mib:.0f} MiB file, {repeats} repeats",
                  rows)
    cloud.remove_bucket(bucket)


if __name__ == "__main__":
    main()
