"""``import kirin`` in a fresh process: what every script, notebook and CLI call pays first.

Target: at most 0.15 s beyond a bare interpreter start, and none of the heavy
or optional libraries loaded (pydantic, jsonschema, yaml, typer, rich, the
cloud clients): the policy package and the command line load them when used.

Reported, each the median of ``--repeats`` fresh processes (warm page cache, bytecode
cached as for an installed package):

* the bound, measured in the same run: ``python -c "pass"`` (interpreter start);
* ``python -c "import kirin"`` wall time, and its difference from the bound;
* the same for ``import fsspec`` alone, the one dependency ``import kirin`` needs;
* which heavy modules the import loaded (must be none).

    .venv/bin/python benchmarks/bench_import.py --repeats 21
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import _common as c

TARGET_S = 0.15
HEAVY = ["pydantic", "jsonschema", "yaml", "referencing", "typer", "rich", "s3fs", "gcsfs",
         "adlfs", "botocore", "aiohttp"]


#: As an installed package runs: with its bytecode cached (PYTHONDONTWRITEBYTECODE would
#: make every process compile every module again, which no user's import pays).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall(code: str) -> float:
    """Wall time of one fresh ``python -c code`` process, in seconds."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    print(c.machine_summary())
    for code in ("import kirin", "import fsspec"):  # writes the bytecode caches once
        wall(code)
    bare, kirin, fsspec = [], [], []
    for _ in range(args.repeats):  # interleaved, so drift in the machine's load hits all three
        bare.append(wall("pass"))
        kirin.append(wall("import kirin"))
        fsspec.append(wall("import fsspec"))
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, kirin; print(' '.join(m for m in sys.argv[1:] "
         "if m in sys.modules))", *HEAVY], check=True, capture_output=True, text=True
    ).stdout.split()
    b, k, f = c.median(bare), c.median(kirin), c.median(fsspec)
    print(f"bare interpreter start (bound)   {b * 1000:7.1f} ms")
    print(f"import kirin                     {k * 1000:7.1f} ms  (+{(k - b) * 1000:.1f} ms, "
          f"{k / b:.2f}x the bound)")
    print(f"import fsspec alone              {f * 1000:7.1f} ms  (+{(f - b) * 1000:.1f} ms)")
    print(f"heavy modules loaded: {', '.join(loaded) or 'none'}")
    verdict = "PASS" if k - b <= TARGET_S and not loaded else "FAIL"
    print(f"{verdict}: import kirin costs {(k - b) * 1000:.0f} ms beyond a bare start "
          f"(target <= {TARGET_S * 1000:.0f} ms, no heavy module)")


if __name__ == "__main__":
    main()
