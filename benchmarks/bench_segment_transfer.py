"""Would compressing segments pay? One segment (10,000 synthesized commits) on S3 behind the
latency proxy: the time to GET it as stored and zlib-compressed, against the time to
decompress it and to check its records (what Kirin does with it next).

A segment is worth compressing only if the transfer saved is more than the
decompression added; on a far-away bucket the bytes may matter more than on
loopback, so the bytes are reported too.

    .venv/bin/python benchmarks/bench_segment_transfer.py --repeats 5
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
import zlib
from pathlib import Path

import _common as c

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from latency import LatencyProxy, synthesize_objects
from servers import make_cloud, start_moto


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from kirin import compaction

    print(c.machine_summary())
    objects, _ = synthesize_objects(10_000)
    [(name, segment)] = [(k, v) for k, v in objects.items() if "/segments/" in k]
    packed = zlib.compress(segment, 1)
    server = start_moto()
    proxy = LatencyProxy(server.port, args.delay_ms / 1000)
    try:
        direct = make_cloud("s3", server.endpoint)
        bucket = f"segment-{uuid.uuid4().hex[:12]}"
        direct.create_bucket(bucket)
        direct.filesystem().pipe({f"{bucket}/plain": segment, f"{bucket}/zlib": packed})
        fs = direct.at(proxy.endpoint).filesystem()
        rows = []
        for key, size in (("plain", len(segment)), ("zlib", len(packed))):
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                fs.cat_file(f"{bucket}/{key}")
                times.append(time.perf_counter() - t0)
            rows.append((f"GET {key} ({size / 1e6:.2f} MB)", times))
    finally:
        proxy.close()
        server.stop()
    last = int(name.rsplit("/", 1)[-1][:20])
    for label, work in (("zlib decompress", lambda: zlib.decompress(packed)),
                        ("check its 10,000 records", lambda: compaction.split_segment(
                            segment, name, last).records(last - 9_999, last))):
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            work()
            times.append(time.perf_counter() - t0)
        rows.append((label, times))
    print(f"\nOne segment of 10,000 commits, {args.delay_ms:g} ms per request; medians of "
          f"{args.repeats}")
    for label, times in rows:
        print(f"  {label:<32} {c.median(times) * 1000:8.1f} ms   ({c.fmt_list(times)})")


if __name__ == "__main__":
    main()
