"""Long histories on S3 with a fixed delay per request: time and requests per operation.

A loopback proxy (``tests/latency.py``) sits in front of moto's S3 server and
waits ``--delay-ms`` (default 20 ms, a cloud bucket's round trip) before
forwarding each request, counting requests by operation and kind of object.
Histories of 1,000 and 10,000 commits (and 100,000 with ``--with-100k``) are
written in the real storage format (through the real journal, on
``memory://``) and uploaded directly, not through the proxy. Then, each on a
freshly opened ``Dataset`` (a new Kirin object; the s3fs client and its
connections are reused, as in one process), ``--repeats`` times:

* open: ``Dataset(...).current_commit``;
* ``history(limit=10)`` (opening included);
* full ``history()`` (opening included): segments where stored (one per 10,000 commits),
  else checkpoints;
* a small commit (one new 5-byte file) on a dataset already open.

Then ``Catalog(...).datasets()`` on a root of ``--datasets`` datasets (200: issue
16's target is <= 0.5 s at 20 ms per request), and the same root with its catalog
markers removed (a registry written before them, until its first gc: every
dataset is read, as before markers). ``--catalog-only`` measures just that, in
a fresh bucket (moto's listings walk the whole bucket: the histories' objects
make them slower).

Reported: median time, requests (total and by kind) and, for open, the ratio
requests(largest) / requests(1,000): the goal of issue 16 is <= 2. The time
targets of issue 16 (open <= 1.0 s, ``history(limit=10)`` <= 1.1 s, full
``history()`` <= 5 s, at 100,000 commits and 20 ms per request) are shown for
the largest history measured.

    .venv/bin/python benchmarks/bench_latency.py                  # 1k, 10k; ~2 min
    .venv/bin/python benchmarks/bench_latency.py --with-100k      # + 100k; ~15 min
    .venv/bin/python benchmarks/bench_latency.py --catalog-only   # the catalog; ~1 min
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import _common as c

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from latency import LatencyProxy, synthesize, upload
from servers import Cloud, make_cloud, start_moto

TARGETS = {"open": 1.0, "history(limit=10)": 1.1, "history()": 5.0}
RATIO_TARGET = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--with-100k", action="store_true",
                        help="also measure a 100,000-commit history (slow to upload)")
    parser.add_argument("--datasets", type=int, default=200,
                        help="datasets in the catalog listed (0: skip)")
    parser.add_argument("--sizes", default="",
                        help="history lengths, comma-separated (default 1000,10000)")
    parser.add_argument("--catalog-only", action="store_true",
                        help="measure only the catalog listing, in a bucket of its own")
    args = parser.parse_args()
    sizes = ([int(n) for n in args.sizes.split(",")] if args.sizes else [1_000, 10_000]) + (
        [100_000] if args.with_100k else [])
    if args.catalog_only:
        sizes = []
    print(c.machine_summary())
    server = start_moto()
    proxy = LatencyProxy(server.port, args.delay_ms / 1000)
    try:
        direct = make_cloud("s3", server.endpoint)
        via = direct.at(proxy.endpoint)
        bucket = f"latency-{uuid.uuid4().hex[:12]}"
        direct.create_bucket(bucket)
        results: dict[int, dict[str, tuple[list[float], Counter[str]]]] = {}
        for n in sizes:
            started = time.perf_counter()
            source = f"memory://kirin-latency/{uuid.uuid4().hex}/reg"
            synthesize(source, n)
            objects = upload(source, direct.filesystem(), f"{bucket}/reg{n}")
            print(f"{n:,} commits: {objects:,} objects written and uploaded in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
            results[n] = measure(via, proxy, via.url(bucket, f"reg{n}"), args.repeats)
            print_lines(results, [n], f"{n:,} commits")  # at once: a long run may be stopped
        if results:
            report(results, args.delay_ms)
        if args.datasets:
            measure_catalog(direct, via, proxy, bucket, args.datasets, args.repeats)
    finally:
        proxy.close()
        server.stop()


def measure(via: Cloud, proxy: LatencyProxy, url: str, repeats: int
            ) -> dict[str, tuple[list[float], Counter[str]]]:
    """Times (one per repeat) and the requests of the last repeat, by operation."""
    from kirin import Dataset

    def fresh() -> Dataset:
        return Dataset(url, "ds", **via.storage_options())

    operations: dict[str, Callable[[], object]] = {
        "open": lambda: fresh().current_commit,
        "history(limit=10)": lambda: fresh().history(limit=10),
        "history()": lambda: fresh().history(),
    }
    out: dict[str, tuple[list[float], Counter[str]]] = {}
    for name, operation in operations.items():
        times, counts = [], Counter[str]()
        for _ in range(repeats):
            proxy.take()
            t0 = time.perf_counter()
            operation()
            times.append(time.perf_counter() - t0)
            counts = by_kind(proxy.take())
        out[name] = (times, counts)
    bounds: dict[str, Callable[[Cloud, str], None]] = {
        "open: the same requests, raw": raw_open, "history(): its reads, raw": raw_history}
    for name, bound in bounds.items():
        times = []
        for _ in range(repeats):
            proxy.take()
            t0 = time.perf_counter()
            bound(via, url)
            times.append(time.perf_counter() - t0)
        out[name] = (times, by_kind(proxy.take()))
    with tempfile.TemporaryDirectory() as work:
        ds = fresh()
        ds.current_commit  # noqa: B018 - open first: the commit alone is measured
        times, counts = [], Counter[str]()
        for i in range(repeats):
            source = Path(work) / "note.txt"
            source.write_text(f"n{i:03d}")
            proxy.take()
            t0 = time.perf_counter()
            ds.commit(f"small commit {i}", add_files={"note.txt": str(source)})
            times.append(time.perf_counter() - t0)
            counts = by_kind(proxy.take())
        out["small commit"] = (times, counts)
    return out


def raw_open(via: Cloud, url: str) -> None:
    """The bound of opening: its six requests, in the same order and concurrency, with
    nothing checked or parsed (the listing, three reads at once, two listings)."""
    from kirin import layout
    from kirin.store import Store

    store = Store(url, **via.storage_options())
    names = store.names_after(store.path(layout.summaries("ds")), "", first=32)
    last = max(n for n in map(layout.summary_last, names) if n is not None)
    store.read_many([store.path(layout.summary("ds", last)),
                     store.path(layout.log_entry("ds", last)),
                     store.path(layout.checkpoint("ds", last))])
    store.names_after(store.path(layout.checkpoints("ds")), layout.entry_name(last))
    store.names_after(store.path(layout.commit_log("ds")), layout.entry_name(last),
                      every_page=True)


def raw_history(via: Cloud, url: str) -> None:
    """The bound of a full history(): the listings and reads Kirin makes, as it makes them,
    with nothing checked or parsed. The histories here end where a segment does, so Kirin
    reads every segment (three in flight, on threads) and no checkpoint but opening's;
    without segments, every checkpoint, 64 at a time."""
    from concurrent.futures import ThreadPoolExecutor

    from kirin import layout
    from kirin.segments import AHEAD, BATCH
    from kirin.store import Store

    store = Store(url, **via.storage_options())
    folder = store.path(layout.segments("ds"))
    ends = sorted((n for n in map(layout.segment_last, store.listdir(folder)) if n is not None),
                  reverse=True)
    if ends:
        with ThreadPoolExecutor(AHEAD) as pool:
            for _ in pool.map(store.read, [store.path(layout.segment("ds", n)) for n in ends]):
                pass
        return
    folder = store.path(layout.checkpoints("ds"))
    paths = [f"{folder}/{n}" for n in store.listdir(folder)]
    for at in range(0, len(paths), BATCH):
        store.read_many(paths[at:at + BATCH])


def measure_catalog(direct: Cloud, via: Cloud, proxy: LatencyProxy, bucket: str,
                    datasets: int, repeats: int) -> None:
    """``Catalog().datasets()`` on a root of ``datasets`` datasets (created empty), with
    their catalog markers, then without."""
    from fsspec.implementations.memory import MemoryFileSystem

    from kirin import Catalog

    source = f"memory://kirin-latency/{uuid.uuid4().hex}/cat"
    catalog = Catalog(source)
    for i in range(datasets):
        catalog.create_dataset(f"model-{i:03d}")
    upload(source, direct.filesystem(), f"{bucket}/cat")
    MemoryFileSystem().rm(source.removeprefix("memory:/"), recursive=True)
    url = via.url(bucket, "cat")
    rows = []
    for label in ("with markers", "without markers (as before them)"):
        if label != "with markers":
            direct.filesystem().rm(f"{bucket}/cat/catalog", recursive=True)
        times, counts = [], Counter[str]()
        for _ in range(repeats):
            proxy.take()
            t0 = time.perf_counter()
            found = Catalog(url, **via.storage_options()).datasets()
            times.append(time.perf_counter() - t0)
            counts = by_kind(proxy.take())
            assert len(found) == datasets, len(found)
        detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        print(f"\nCatalog().datasets() of {datasets} datasets, {label}: {c.fmt_list(times)}; "
              f"{sum(counts.values())} requests ({detail})", flush=True)
        rows.append(c.Row(f"catalog of {datasets} datasets, {label}", c.median(times), None,
                          "s", 0.5 if label == "with markers" else None))
    c.print_table("Issue 16 target: the catalog", rows)


def by_kind(counted: Counter[tuple[str, str]]) -> Counter[str]:
    return Counter({f"{op} {kind}": n for (op, kind), n in counted.items()})


def print_lines(results: dict[int, dict[str, tuple[list[float], Counter[str]]]],
                sizes: list[int], title: str) -> None:
    print(f"\n{title}")
    header = ("operation", "commits", "time", "requests", "by kind")
    lines = [header]
    for name in results[sizes[0]]:
        for n in sizes:
            times, counts = results[n][name]
            detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            lines.append((name, f"{n:,}", f"{c.median(times):.3f} s", str(sum(counts.values())),
                          detail))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for i, line in enumerate(lines):
        print("  " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))
        if i == 0:
            print("  " + "-+-".join("-" * w for w in widths), flush=True)


def report(results: dict[int, dict[str, tuple[list[float], Counter[str]]]],
           delay_ms: float) -> None:
    sizes = sorted(results)
    print_lines(results, sizes,
                f"S3 (moto) behind a proxy adding {delay_ms:g} ms per request; medians")
    largest = sizes[-1]
    rows = [c.Row(f"{name} at {largest:,} commits", c.median(results[largest][name][0]), None,
                  "s", TARGETS[name] if largest == 100_000 else None,
                  note="" if largest == 100_000 else "target applies at 100,000 commits")
            for name in TARGETS]
    for name, bound in (("open", "open: the same requests, raw"),
                        ("history()", "history(): its reads, raw")):
        if bound in results[largest]:
            rows.append(c.Row(f"{name} at {largest:,} against its requests made raw",
                              c.median(results[largest][name][0]),
                              c.median(results[largest][bound][0]), "s", None))
    opened = [sum(results[n]["open"][1].values()) for n in (sizes[0], largest)]
    rows.append(c.Row(f"open requests {largest:,} / {sizes[0]:,}", opened[1], opened[0], "req",
                      RATIO_TARGET))
    c.print_table("Issue 16 targets", rows)


if __name__ == "__main__":
    main()
