"""Start-up of the command line: ``kirin --help``, ``kirin log``, ``kirin validate`` (issue 16).

Each command runs as a whole process (``python -c "from kirin.cli import main;
main()" ...``, what the ``kirin`` console script runs) in a small governed
registry found through its ``kirin.yaml``, ``--repeats`` times, alternating
with the bound measured in the same run: a bare ``python -c pass``.
Target: each median <= 0.25 s wall. Also shown: the median beyond the bound,
which heavy modules each command loads, and two floors imported alone: what
every command loads before Kirin's code (typer, rich), and what ``validate``
adds to judge a commit (the policy model's pydantic, jsonschema, PyYAML).

    .venv/bin/python benchmarks/bench_cli.py --repeats 11
"""

from __future__ import annotations

import argparse
import os
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
#: The same, and what validate adds to judge a commit: pydantic as the policy model uses
#: it (a first model built), jsonschema, PyYAML.
GATE = (FRAMEWORK + "\nfrom pydantic import BaseModel\nclass M(BaseModel):\n    x: int = 0\n"
        "import jsonschema, yaml")
#: The same, reporting which heavy modules were loaded (on stderr, at exit).
MAIN_REPORTING = ("import atexit, sys\n"
                  "atexit.register(lambda: print('loaded:', ' '.join(m for m in "
                  f"{HEAVY!r} if m in sys.modules), file=sys.stderr))\n" + MAIN)

COMMANDS = {
    "kirin --help": ["--help"],
    "kirin log": ["log"],
    "kirin validate": ["validate", "-m", "a model", "model.pt", "--metadata",
                       '{"accuracy": 0.9}', "-t", "dev"],
}


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
        build(work)
        bare = [sys.executable, "-c", "pass"]
        for name, extra in COMMANDS.items():  # once untimed: bytecode caches, page cache
            done = subprocess.run([sys.executable, "-c", MAIN_REPORTING, *extra], cwd=work,
                                  capture_output=True, text=True, check=True, env=ENV)
            print(f"{name}: {done.stderr.strip().splitlines()[-1]}")
        framework = [sys.executable, "-c", FRAMEWORK]
        gate = [sys.executable, "-c", GATE]
        bound: list[float] = []
        floor: list[float] = []
        gate_floor: list[float] = []
        ours: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for _ in range(args.repeats):
            bound.append(timed(bare, work))
            floor.append(timed(framework, work))
            gate_floor.append(timed(gate, work))
            for name, extra in COMMANDS.items():
                ours[name].append(timed([sys.executable, "-c", MAIN, *extra], work))
        rows = []
        for name, times in ours.items():
            print(f"{name}: {c.fmt_list(times)}")
            rows.append(c.Row(f"{name} (whole process)", c.median(times), None, "s", TARGET_S))
            rows.append(c.Row(f"{name} beyond python -c pass", c.median(times) - c.median(bound),
                              None, "s", None))
        print(f"python -c pass: {c.fmt_list(bound)}")
        rows.append(c.Row("python -c pass (bound)", c.median(bound), None, "s", None))
        rows.append(c.Row("importing typer and rich alone", c.median(floor), None, "s", None,
                          note="what every command loads before Kirin's code"))
        rows.append(c.Row("the same + pydantic, jsonschema, yaml", c.median(gate_floor),
                          None, "s", None, note="what validate loads before Kirin's code"))
        c.print_table("Issue 16: command-line start-up, medians", rows)


if __name__ == "__main__":
    main()
