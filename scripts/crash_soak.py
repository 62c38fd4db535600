"""Long crash soak: SIGKILL a committing process hundreds of times, checking after each.

    .venv/bin/python scripts/crash_soak.py --kills 500
    .venv/bin/python scripts/crash_soak.py --backend s3 --kills 200

``--backend local`` (the default) writes to a fresh temporary folder (or
``--root``); ``--backend s3`` starts moto's S3 server on loopback itself (as
the test suite does, ``tests/servers.py``) and writes to a fresh bucket on it.
The checks are the same on both (see ``tests/crash_harness.py``).

Prints kills survived, commits and files checked, and any problem found.
The last result is recorded in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import fsspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import crash_harness

#: Upper bound of the random wait before a kill, by backend: about one commit or more,
#: so kills land in every phase of a commit (measured: a few ms local, ~0.15 s on moto).
MAX_DELAY = {"local": 0.25, "s3": 1.0}


@contextlib.contextmanager
def target_for(backend: str, root: str | None, tmp: Path) -> Iterator[crash_harness.Target]:
    """The registry root to soak; for S3, a moto server and bucket that live as long as it."""
    if backend == "local":
        yield crash_harness.Target(root or str(tmp / "registry"))
        return
    import servers  # imports pytest and switches off cloud metadata look-ups: only when needed

    with servers.running(servers.start_moto()) as server:
        cloud = servers.make_cloud("s3", server.endpoint)
        with cloud.bucket() as bucket:
            print(f"moto S3 server at {server.endpoint}, bucket {bucket}", flush=True)
            yield crash_harness.Target(cloud.url(bucket, "registry"), cloud.storage_options())


def residue(target: crash_harness.Target) -> tuple[int, int]:
    """Blobs that no commit references, and partial local uploads (``tmp/*.part``).

    What a kill between a blob's upload and the log write leaves behind (``gc``
    removes it): evidence that the kills landed inside commits, not only
    between them. Counted at the end, on the final history.
    """
    fs, root = fsspec.core.url_to_fs(target.url, **target.storage_options)
    fs.invalidate_cache()
    referenced = {file.hash for commit in target.dataset().history()
                  for file in commit.files.values()}
    blobs = fs.find(f"{root}/data") if fs.exists(f"{root}/data") else []
    orphans = sum("".join(str(path).split("/")[-2:]) not in referenced for path in blobs)
    parts = len(fs.find(f"{root}/tmp")) if fs.exists(f"{root}/tmp") else 0
    return orphans, parts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=sorted(MAX_DELAY), default="local")
    parser.add_argument("--kills", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--root", help="local registry root (default: a fresh temporary folder)")
    parser.add_argument("--max-delay", type=float,
                        help="longest wait before a kill, in seconds (default: by backend)")
    args = parser.parse_args()
    if args.root and args.backend != "local":
        parser.error("--root is for --backend local (S3 runs in a fresh bucket)")
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="kirin-soak-") as tmp, \
            target_for(args.backend, args.root, Path(tmp)) as target:
        report = crash_harness.run(target, args.kills, args.seed, Path(tmp), verbose=True,
                                   max_delay=args.max_delay or MAX_DELAY[args.backend])
        try:
            orphans, parts = residue(target)
        except Exception as exc:  # a registry that does not open is already a problem above
            orphans = parts = -1
            print(f"could not count the residue: {type(exc).__name__}: {exc}")
    print(f"backend:          {args.backend} (seed {args.seed})")
    print(f"kills survived:   {report.kills - bool(report.problems)} of {args.kills}")
    print(f"commits checked:  {report.commits_checked} (checked after every kill)")
    print(f"files checked:    {report.files_checked} in the final history, every blob re-hashed")
    print(f"left by kills:    {orphans} unreferenced blobs, {parts} partial uploads (gc's job)")
    print(f"problems found:   {len(report.problems)}")
    for problem in report.problems:
        print(f"  - {problem}")
    print(f"elapsed:          {time.time() - started:.0f} s")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
