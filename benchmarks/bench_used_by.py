"""``used-by`` over a large root: which commits of 50 datasets x 1,000 commits link to one.

The registry (built once, or given with ``--root``): 10 data datasets and 40
model datasets of 1,000 commits each (``--datasets``, ``--commits``); every
model commit links one data commit (``training=data-NN@<hash>``), so a data
commit is used by one commit of each model dataset. A fresh process runs::

    Catalog(root).used_by("data-03@<hash>")

Target (issue #18): <= 1 s on local disk. Reported, each the median of
``--repeats`` fresh processes, in-process times (after ``import kirin``):

* ``used_by``: the answer, read through the lineage index;
* the bound, measured in the same run: list the datasets and open each one
  (``Dataset()`` + its newest commit), what any root-wide answer must do at
  least; the ratio shows what the index costs on top of that;
* for comparison (info): the same answer from every record, as without the
  index (``history()`` of every dataset).

"cold" drops the page cache before every process (root only); "warm" does not.

    .venv/bin/python benchmarks/bench_used_by.py                 # builds the root (~2 min)
    .venv/bin/python benchmarks/bench_used_by.py --keep-root /tmp/kirin-used-by
    .venv/bin/python benchmarks/bench_used_by.py --root /tmp/kirin-used-by --cache warm
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import _common as c

TARGET_S = 1.0
RATIO = 2.0
DATA_SETS = 10

USED_BY = """
import json, sys, time
from kirin import Catalog
t0, cpu0 = time.perf_counter(), time.process_time()
found = Catalog(sys.argv[1]).used_by(sys.argv[2])
t1, cpu1 = time.perf_counter(), time.process_time()
print(json.dumps({"time": t1 - t0, "cpu": cpu1 - cpu0, "uses": len(found.uses),
                  "datasets": found.scanned}))
"""

OPEN_EVERY = """
import json, sys, time
from kirin import Catalog
t0 = time.perf_counter()
catalog = Catalog(sys.argv[1])
heads = [catalog.get_dataset(n).current_commit for n in catalog.datasets()]
t1 = time.perf_counter()
print(json.dumps({"time": t1 - t0, "datasets": len(heads)}))
"""

EVERY_RECORD = """
import json, sys, time
from kirin import Catalog
t0 = time.perf_counter()
catalog = Catalog(sys.argv[1])
target = sys.argv[2].split("@")[1]
uses = [c.hash for n in catalog.datasets() for c in catalog.get_dataset(n).history()
        if c.lineage and any(l.commit == target for l in c.lineage.inputs)]
t1 = time.perf_counter()
print(json.dumps({"time": t1 - t0, "uses": len(uses)}))
"""


def build(root: Path, datasets: int, commits: int) -> None:
    """Two template datasets committed through the library, then copied (a dataset's
    records do not name it, so a copied folder is a valid dataset of its own)."""
    from kirin import Dataset

    work = root.parent / "src"
    work.mkdir(parents=True, exist_ok=True)
    source = work / "part.csv"
    t0 = time.perf_counter()
    template = Dataset(root, "data-00")
    data_hashes = []
    for i in range(commits):
        source.write_text(f"rows {i}\n")
        data_hashes.append(template.commit(f"data {i}", add_files=[str(source)],
                                           metadata={"rows": i}))
    for k in range(1, DATA_SETS):
        shutil.copytree(root / "datasets" / "data-00", root / "datasets" / f"data-{k:02d}")
    print(f"  data: {DATA_SETS} x {commits} commits in {time.perf_counter() - t0:.1f} s",
          flush=True)
    t0 = time.perf_counter()
    model = Dataset(root, "model-00")
    for i in range(commits):
        source.write_text(f"weights {i}\n")
        link = f"data-{i % DATA_SETS:02d}@{data_hashes[(i * 7) % commits]}"
        model.commit(f"model {i}", add_files={"model.pt": str(source)},
                     metadata={"accuracy": 0.5 + i / (4 * commits)},
                     lineage={"training": link}, code=f"{i:07x}", run=f"run-{i}")
    for k in range(1, datasets - DATA_SETS):
        shutil.copytree(root / "datasets" / "model-00", root / "datasets" / f"model-{k:02d}")
    print(f"  models: {datasets - DATA_SETS} x {commits} commits in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", help="existing registry built by this script")
    parser.add_argument("--keep-root", help="build the registry here and keep it")
    parser.add_argument("--datasets", type=int, default=50)
    parser.add_argument("--commits", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cache", choices=["cold", "warm", "both"], default="both")
    parser.add_argument("--workdir", help="parent folder for the temporary data (default /tmp)")
    args = parser.parse_args()
    if args.datasets <= DATA_SETS:
        parser.error(f"--datasets must exceed the {DATA_SETS} data datasets")

    print(f"machine: {c.machine_summary()}")
    with c.workdir(args.workdir) as work:
        if args.root:
            root = Path(args.root)
        else:
            root = Path(args.keep_root) if args.keep_root else work / "registry"
            print(f"building {args.datasets} datasets x {args.commits} commits in {root} ...",
                  flush=True)
            build(root, args.datasets, args.commits)
        from kirin import Dataset

        history = Dataset(root, "data-03").history()  # newest first
        seq = (3 * 7) % len(history)  # the one data commit model commit #3 links
        target = f"data-03@{history[len(history) - 1 - seq].hash}"
        programs = {"used_by": USED_BY, "open": OPEN_EVERY, "records": EVERY_RECORD}
        first = c.run_child([c.PYTHON, "-c", USED_BY, str(root), target]).report
        print(f"target {target}: used by {first['uses']} commits of {first['datasets']} "
              "datasets", flush=True)
        for mode in c.cache_modes(args.cache):
            machine = c.Machine(mode, work, 0)
            times: dict[str, list[float]] = {name: [] for name in programs}
            for rep in range(args.repeats):
                order = list(programs) if rep % 2 == 0 else list(reversed(programs))
                for name in order:
                    machine.prepare()
                    result = c.run_child([c.PYTHON, "-c", programs[name], str(root), target])
                    times[name].append(float(result.report["time"]))
                print(f"  [{mode} #{rep + 1}] used_by {times['used_by'][-1]:.3f} s, open "
                      f"every dataset {times['open'][-1]:.3f} s, every record "
                      f"{times['records'][-1]:.3f} s", flush=True)
            ours, bound = c.median(times["used_by"]), c.median(times["open"])
            every = c.median(times["records"])
            c.print_table(
                f"used_by over {first['datasets']} datasets x {args.commits} commits, fresh "
                f"process, {mode} cache, median of {args.repeats}:", [
                    c.Row("used_by (lineage index)", ours, None, "s", TARGET_S,
                          f"samples {c.fmt_list(times['used_by'])}"),
                    c.Row("used_by vs opening every dataset", ours, bound, "s", RATIO,
                          c.per_rep_ratios(times["used_by"], times["open"])),
                    c.Row("every record instead of the index", every, ours, "s", None,
                          "what used_by would cost without the index (ratio: x used_by)"),
                ])


if __name__ == "__main__":
    main()
