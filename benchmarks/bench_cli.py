"""Start-up of the command line: ``kirin --help``, ``kirin log``, ``kirin validate`` (issue 16).

Each command runs as a whole process (``python -c "from kirin.cli import main;
main()" ...``, what the ``kirin`` console script runs) in a small governed
registry found through its ``kirin.yaml``, ``--repeats`` times, alternating
with the bound measured in the same run: a bare ``python -c pass``.
Target: each median <= 0.25 s wall. ``validate`` is timed as CI runs it again
and again: the stored policy already checked in full by this installation (its
hash in the cache, ``KIRIN_CACHE_DIR``, here a folder of the run); and, for
information, the first run on a machine, with the cache emptied before each
run, which checks the policy in full (pydantic, PyYAML). Also shown: the median
beyond the bound, which heavy modules each command loads, and three floors
imported alone: what every command loads before Kirin's code (typer, rich),
with jsonschema (what ``validate`` needs to judge metadata), and with the
policy model's pydantic and PyYAML (what a full check adds).

    .venv/bin/python benchmarks/bench_cli.py --repeats 11
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import _common as c

TARGET_S = 0.25
#: As an installed package runs: with its bytecode cached (see bench_import.py).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
HEAVY = ("pydantic", "jsonschema", "yaml", "fsspec", "rich", "typer")

POLICY = """\
version: 1
metadata:
  schema:
    type: object
    properties:
      accuracy: {type: number, minimum: 0, maximum: 1}
    required: [accuracy]
tags:
  allowed: [dev, staging, production]
"""

MAIN = "from kirin.cli import main; main()"
#: What every command loads before Kirin's code: typer (its argument conversion without
#: pydantic: kirin.cli.coercion) and rich's console and tables.
FRAMEWORK = "import typer.main, typer.core, typer._coercion, rich.console, rich.table"
#: The same, and what validate needs to judge metadata: jsonschema.
GATE = FRAMEWORK + ", jsonschema"
#: The same, and what a full check of a policy adds: pydantic as the policy model uses it
#: (a first model built), PyYAML.
CHECK = GATE + "\nfrom pydantic import BaseModel\nclass M(BaseModel):\n    x: int = 0\nimport yaml"
#: The same, reporting which heavy modules were loaded (on stderr, at exit).
MAIN_REPORTING = ("import atexit, sys\n"
                  "atexit.register(lambda: print('loaded:', ' '.join(m for m in "
                  f"{HEAVY!r} if m in sys.modules), file=sys.stderr))\n" + MAIN)

VALIDATE = ["validate", "-m", "a model", "model.pt", "--metadata", '{"accuracy": 0.9}',
            "-t", "dev"]
COMMANDS = {
    "kirin --help": ["--help"],
    "kirin log": ["log"],
    "kirin validate": VALIDATE,
}
#: Timed with the cache of checked policies emptied first (information, not a target).
FIRST = "kirin validate, first run on a machine"


def build(folder: Path) -> None:
    from kirin import Dataset

    (folder / "policy.yaml").write_text(POLICY)
    (folder / "model.pt").write_bytes(b"weights")
    ds = Dataset(folder / "reg", "models")
    ds.set_policy(folder / "policy.yaml")
    ds.commit("baseline", add_files=[str(folder / "model.pt")], metadata={"accuracy": 0.8},
              tags=["dev"])
    (folder / "kirin.yaml").write_text("root: reg\ndataset: models\n")


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=ENV)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--workdir")
    args = parser.parse_args()
    import kirin

    # the children run in the registry's folder: they must import this kirin, not one a
    # relative PYTHONPATH or the installed package would give them
    source = str(Path(kirin.__file__).resolve().parent.parent)
    ENV["PYTHONPATH"] = os.pathsep.join([source, *filter(None, [ENV.get("PYTHONPATH")])])
    print(c.machine_summary())
    print(f"kirin from {source}")
    with c.workdir(args.workdir) as work:
        cache = work / "cache"
        ENV["KIRIN_CACHE_DIR"] = str(cache)
        build(work)
        bare = [sys.executable, "-c", "pass"]
        for name, extra in COMMANDS.items():  # once untimed: bytecode caches, page cache
            done = subprocess.run([sys.executable, "-c", MAIN_REPORTING, *extra], cwd=work,
                                  capture_output=True, text=True, check=True, env=ENV)
            print(f"{name}: {done.stderr.strip().splitlines()[-1]}")
        floors = {"importing typer and rich alone": FRAMEWORK,
                  "the same + jsonschema": GATE,
                  "the same + pydantic, PyYAML": CHECK}
        notes = {"importing typer and rich alone": "what every command loads before Kirin's code",
                 "the same + jsonschema": "what validate loads to judge metadata",
                 "the same + pydantic, PyYAML": "what a full check of a policy adds"}
        bound: list[float] = []
        floor: dict[str, list[float]] = {name: [] for name in floors}
        ours: dict[str, list[float]] = {name: [] for name in [*COMMANDS, FIRST]}
        for _ in range(args.repeats):
            bound.append(timed(bare, work))
            for name, code in floors.items():
                floor[name].append(timed([sys.executable, "-c", code], work))
            for name, extra in COMMANDS.items():
                ours[name].append(timed([sys.executable, "-c", MAIN, *extra], work))
            shutil.rmtree(cache, ignore_errors=True)
            ours[FIRST].append(timed([sys.executable, "-c", MAIN, *VALIDATE], work))
        rows = []
        for name, times in ours.items():
            print(f"{name}: {c.fmt_list(times)}")
            rows.append(c.Row(f"{name} (whole process)", c.median(times), None, "s",
                              None if name == FIRST else TARGET_S))
            rows.append(c.Row(f"{name} beyond python -c pass", c.median(times) - c.median(bound),
                              None, "s", None))
        print(f"python -c pass: {c.fmt_list(bound)}")
        rows.append(c.Row("python -c pass (bound)", c.median(bound), None, "s", None))
        for name, times in floor.items():
            rows.append(c.Row(name, c.median(times), None, "s", None, note=notes[name]))
        c.print_table("Issue 16: command-line start-up, medians", rows)


if __name__ == "__main__":
    main()
