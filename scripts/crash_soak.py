"""Long crash soak: SIGKILL a committing process hundreds of times, checking after each.

    .venv/bin/python scripts/crash_soak.py --kills 500

Prints kills survived, commits and files checked, and any problem found.
The last result is recorded in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import crash_harness


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--root", help="registry root (default: a fresh temporary folder)")
    args = parser.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="kirin-soak-") as tmp:
        root = args.root or str(Path(tmp) / "registry")
        report = crash_harness.run(root, args.kills, args.seed, Path(tmp), verbose=True)
    print(f"kills survived:   {report.kills - bool(report.problems)} of {args.kills}")
    print(f"commits checked:  {report.commits_checked} (all files re-hashed after every kill)")
    print(f"files checked:    {report.files_checked} in the final history")
    print(f"problems found:   {len(report.problems)}")
    for problem in report.problems:
        print(f"  - {problem}")
    print(f"elapsed:          {time.time() - started:.0f} s")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
