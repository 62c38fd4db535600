"""The web view on big registries: server time of its heaviest pages (issue 14).

Targets, on local disk, as the server's own time (its ``Server-Timing``
header: request in to response out, the page rendered in full) on a real
uvicorn server over loopback:

* the first page of a 10,000-commit dataset's history: <= 300 ms;
* the trend of one metric over those 10,000 commits: <= 500 ms;
* the catalog of 200 datasets (half governed, stages looked up): <= 1 s.

Each figure is the median of ``--repeats`` requests after one warm-up request
(the first request opens the dataset and reads its history; that cold figure
is printed too). Next to each is a bound measured in the same run: the library
call the page cannot avoid, in-process (``history(limit=50)``; reading every
commit's metadata; opening every dataset's head), so the ratio says what the
web layer adds.

    .venv/bin/python benchmarks/bench_ui.py                    # builds both registries (~1 min)
    .venv/bin/python benchmarks/bench_ui.py --commits 2000 --datasets 50   # a quick look
    .venv/bin/python benchmarks/bench_ui.py --root /tmp/kirin-10k          # an existing history
"""

from __future__ import annotations

import argparse
import statistics
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import _common as c

PAGE_TARGET_S = 0.3
TREND_TARGET_S = 0.5
CATALOG_TARGET_S = 1.0

POLICY = """\
version: 1
tags:
  exclusive_groups: [[dev, staging, production]]
promotion:
  production:
    when: "accuracy >= 0.5"
"""


def build_history(root: Path, commits: int) -> None:
    from kirin import Dataset

    print(f"building {commits} commits in {root} ...", flush=True)
    t0 = time.perf_counter()
    c.commit_same_name(Dataset(root, c.DATASET), commits, root.parent / "src-many", 64)
    print(f"built in {time.perf_counter() - t0:.1f} s", flush=True)


def build_catalog(root: Path, datasets: int, commits: int) -> None:
    """``datasets`` datasets of ``commits`` commits each; every other one under a policy."""
    from kirin import Catalog

    print(f"building {datasets} datasets of {commits} commits in {root} ...", flush=True)
    t0 = time.perf_counter()
    catalog = Catalog(root)
    source = root.parent / "src-catalog"
    source.mkdir(parents=True, exist_ok=True)
    for d in range(datasets):
        ds = catalog.create_dataset(f"model-{d:03d}", f"model number {d}",
                                    policy=POLICY if d % 2 == 0 else None)
        for i in range(commits):
            path = source / "weights.bin"
            c.write_small_file(path, d * commits + i, 64)
            ds.commit(f"train {i}", add_files=[str(path)], metadata={"accuracy": 0.5 + i / 100},
                      tags=["production" if i == commits - 1 else "dev"])
    print(f"built in {time.perf_counter() - t0:.1f} s", flush=True)


def server_seconds(url: str) -> tuple[float, float]:
    """(server time from Server-Timing, wall time of the whole request) of one GET."""
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
        timing = response.headers["server-timing"]
    wall = time.perf_counter() - t0
    return float(timing.split("dur=")[1]) / 1000, wall


def measure(url: str, repeats: int) -> tuple[float, list[float], list[float]]:
    """The first (cold) request's server time, then ``repeats`` warm ones (server, wall)."""
    cold, _ = server_seconds(url)
    server, wall = [], []
    for _ in range(repeats):
        s, w = server_seconds(url)
        server.append(s)
        wall.append(w)
    return cold, server, wall


def timed(call: Callable[[], object], repeats: int) -> list[float]:
    call()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", help="existing registry holding --name (default: build one)")
    parser.add_argument("--name", default=c.DATASET)
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--dataset-commits", type=int, default=5)
    parser.add_argument("--metric", default="accuracy")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--workdir", help="parent folder for the temporary data (default /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data")
    args = parser.parse_args()

    from kirin import Catalog
    from kirin.ui.server import UiServer

    print(c.machine_summary())
    with c.workdir(args.workdir, args.keep, prefix="kirin-bench-ui-") as work:
        history_root = Path(args.root) if args.root else work / "history"
        if not args.root:
            build_history(history_root, args.commits)
        catalog_root = work / "catalog"
        build_catalog(catalog_root, args.datasets, args.dataset_commits)
        c.sync()

        rows: list[c.Row] = []
        with UiServer(str(history_root), port=0) as server:
            page = server.url + f"d/{args.name}"
            cold, ours, wall = measure(page, args.repeats)
            ds = Catalog(history_root).get_dataset(args.name)
            count = len(ds.history())
            bound = timed(lambda: ds.history(limit=50), args.repeats)
            rows.append(c.Row(f"history page 1 ({count} commits)", c.median(ours),
                              None, "s", PAGE_TARGET_S,
                              f"cold first request {cold * 1000:.0f} ms (opens the history); "
                              f"wall incl. HTTP {c.median(wall) * 1000:.1f} ms; "
                              f"library history(limit=50) {c.median(bound) * 1000:.2f} ms"))
            trend = server.url + f"d/{args.name}/trend?metric={args.metric}"
            _, ours, wall = measure(trend, args.repeats)
            bound = timed(lambda: [x.metadata.get(args.metric) for x in ds.history()],
                          args.repeats)
            rows.append(c.Row(f"trend of {args.metric} ({count} points)", c.median(ours),
                              c.median(bound), "s", None,
                              f"wall incl. HTTP {c.median(wall) * 1000:.1f} ms; bound: the "
                              "library reading every commit's metadata"))
            rows.append(c.Row(f"trend of {args.metric}: absolute", c.median(ours), None, "s",
                              TREND_TARGET_S))
            where = server.url + f"d/{args.name}?where=accuracy%20%3E%200.99"
            _, ours, _ = measure(where, args.repeats)
            rows.append(c.Row("history filtered by where (first page)", c.median(ours), None,
                              "s", None))
        with UiServer(str(catalog_root), port=0) as server:
            cold, ours, wall = measure(server.url, args.repeats)
            catalog = Catalog(catalog_root)

            def heads() -> None:
                for name in catalog.datasets():
                    catalog.get_dataset(name).head  # noqa: B018 - opening is the cost

            bound = timed(heads, max(3, args.repeats // 3))
            rows.append(c.Row(f"catalog of {args.datasets} datasets", c.median(ours),
                              c.median(bound), "s", None,
                              f"cold first request {cold * 1000:.0f} ms; wall incl. HTTP "
                              f"{c.median(wall) * 1000:.1f} ms; bound: opening each "
                              "dataset's head with the library, fresh Catalog"))
            rows.append(c.Row(f"catalog of {args.datasets} datasets: absolute", c.median(ours),
                              None, "s", CATALOG_TARGET_S))
        c.print_table("kirin ui: server time (median of warm requests)", rows)
        spread = statistics.pstdev(ours) * 1000 if len(ours) > 1 else 0.0
        print(f"  (catalog samples {c.fmt_list(ours)}, spread {spread:.1f} ms)")


if __name__ == "__main__":
    main()
