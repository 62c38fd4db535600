"""Helpers shared by the benchmark scripts (run by hand, never in CI).

Every benchmark reports its figures as a *ratio* against a bound measured in
the same run on the same machine, quoting medians, so the numbers mean the
same thing on a laptop and on a CI runner.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kirin import Dataset

MIB = 1 << 20
CHUNK = MIB
PYTHON = sys.executable


# -- the machine -----------------------------------------------------------
def machine_summary() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()} "
            f"({sys.executable}), {platform.system()} {platform.release()}")


def free_bytes(folder: str | Path) -> int:
    return shutil.disk_usage(folder).free


def require_space(folder: str | Path, needed: int) -> None:
    free = free_bytes(folder)
    if free < needed:
        sys.exit(f"Not enough free space in {folder}: {free / MIB:.0f} MiB free, "
                 f"{needed / MIB:.0f} MiB needed (use --workdir elsewhere or a smaller size)")


@contextlib.contextmanager
def workdir(base: str | None, keep: bool = False, prefix: str = "kirin-bench-"
            ) -> Iterator[Path]:
    """A fresh temporary folder (under ``base`` if given), removed afterwards."""
    if base:
        os.makedirs(base, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    try:
        yield folder
    finally:
        if keep:
            print(f"(kept {folder})")
        else:
            shutil.rmtree(folder, ignore_errors=True)


# -- page cache ------------------------------------------------------------
def sync() -> None:
    os.sync()


def drop_caches() -> bool:
    """Write back dirty pages and drop the page cache; ``False`` if not allowed (not root)."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as handle:
            handle.write("3\n")
    except OSError:
        return False
    return True


def warm(path: str | Path) -> None:
    """Read a file once so it sits in the page cache."""
    with open(path, "rb", buffering=0) as handle:
        buffer = bytearray(8 * MIB)
        while handle.readinto(buffer):
            pass


@dataclass(frozen=True)
class Machine:
    """Puts the machine in the same state before every timed step.

    ``mode`` is the page-cache state: "cold" drops the page cache (root only),
    "warm" reads the given files into it. Both first write back dirty pages,
    so one step's writes are not paid for by the next step.

    ``reserve`` bytes of memory are then recycled: written to a scratch file
    in ``scratch`` and freed again just before the step. On a VM whose guest
    returns free memory to the host (virtio-balloon free page reporting, as
    on the machine these figures were taken on), the first touch of returned
    memory costs a host page fault: writing 1 GiB of new page cache then takes
    ~3 s instead of ~0.25 s. Whichever step happens to allocate such memory
    first would pay for it; recycling makes every step start from memory the
    guest already holds, so the figures measure Kirin, not the hypervisor.
    """

    mode: str
    scratch: Path | None = None
    reserve: int = 0

    def prepare(self, *warm_paths: str | Path) -> None:
        if self.mode == "cold":
            if not drop_caches():
                raise SystemExit("cold cache needs root (drop_caches); use --cache warm")
        else:
            sync()
            for path in warm_paths:
                warm(path)
        if self.scratch is not None and self.reserve > 0:
            recycle_memory(self.scratch, self.reserve)


def recycle_memory(folder: Path, size: int) -> None:
    """Make the guest hold ``size`` bytes of free, host-backed memory (see :class:`Machine`)."""
    scratch = folder / ".recycle"
    block = bytes(CHUNK)
    with open(scratch, "wb") as handle:
        for _ in range(size // CHUNK + 1):
            handle.write(block)
    scratch.unlink()  # never written back: freed at once, still backed by the host


def add_large_file_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the 1 GiB benchmarks (``bench_commit_large``, ``bench_local_files``)."""
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (MiB)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache", choices=["cold", "warm", "both"], default="both")
    parser.add_argument("--memory", choices=["recycle", "as-is"], default="recycle",
                        help="recycle memory before each timed step (see _common.Machine)")
    parser.add_argument("--workdir", help="parent folder for the temporary data (default /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data")


def cache_modes(choice: str) -> list[str]:
    """The cache modes to run for ``--cache`` (cold needs root; fall back to warm)."""
    modes = ["cold", "warm"] if choice == "both" else [choice]
    if "cold" in modes and not can_drop_caches():
        print("note: cannot drop the page cache (not root): measuring warm cache only")
        modes = ["warm"]
    return modes


def can_drop_caches() -> bool:
    return os.access("/proc/sys/vm/drop_caches", os.W_OK)


# -- data ------------------------------------------------------------------
def make_random_file(path: str | Path, size: int) -> None:
    """``size`` bytes of incompressible data, written in 1 MiB chunks (never all in memory)."""
    with open(path, "wb") as handle:
        left = size
        while left:
            n = min(CHUNK, left)
            handle.write(os.urandom(n))
            left -= n


def sha256_file(path: str | Path) -> str:
    """The bound's hash: in-process ``hashlib.sha256`` streamed in 1 MiB chunks."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while n := handle.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds and CPU seconds (user + system) of one step.

    On a shared machine the wall time includes waiting for a CPU; the CPU
    time does not, so the two together tell a slow program from a busy machine.
    """

    wall: float
    cpu: float


def timed_sha256(path: str | Path) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    sha256_file(path)
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def timed_cp(src: str | Path, dst: str | Path) -> Timing:
    result = run_child(["cp", str(src), str(dst)], json_report=False)
    return Timing(result.wall, result.cpu)


# -- child processes -------------------------------------------------------
@dataclass(frozen=True)
class ChildResult:
    wall: float  # seconds, spawn to exit, measured by the parent
    cpu: float  # user + system CPU seconds of the child, from wait4
    maxrss_mib: float  # peak RSS of the child (interpreter included), from wait4
    report: dict[str, Any]  # the JSON object the child printed last


def run_child(argv: Sequence[str], env: dict[str, str] | None = None,
              json_report: bool = True,
              on_ready: Callable[[], None] | None = None) -> ChildResult:
    """Run ``argv`` in a fresh process; its wall time, CPU time, peak RSS and JSON report.

    With ``on_ready``, the child is expected to call :func:`ready` once it
    has started up (interpreter and imports); ``on_ready()`` then runs in the
    parent (e.g. to drop caches) before the child is let go on.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, env=env,
                            stdin=subprocess.PIPE if on_ready else subprocess.DEVNULL)
    assert proc.stdout is not None
    if on_ready is not None:
        assert proc.stdin is not None
        line = proc.stdout.readline()
        if line.strip() != b"ready":
            proc.kill()
            proc.wait()
            raise RuntimeError(f"{argv!r} did not report ready (got {line!r})")
        on_ready()
        proc.stdin.write(b"go\n")
        proc.stdin.close()
    out = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv!r} failed with exit code {proc.returncode}")
    lines = out.decode().strip().splitlines()
    report: dict[str, Any] = json.loads(lines[-1]) if lines and json_report else {}
    return ChildResult(wall=wall, cpu=usage.ru_utime + usage.ru_stime,
                       maxrss_mib=usage.ru_maxrss / 1024, report=report)


def ready() -> None:
    """In a child started with ``on_ready``: say so, and wait until the parent lets go."""
    print("ready", flush=True)
    sys.stdin.readline()


def vm_hwm_mib() -> float:
    """Peak RSS of this process so far (``VmHWM``), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- reporting -------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass(frozen=True)
class Row:
    """One line of a result table. ``bound`` is ``None`` for absolute limits."""

    what: str
    ours: float
    bound: float | None
    unit: str
    limit: float | None  # max ratio (if bound) or max absolute value; None = informational
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return self.ours / self.bound if self.bound else None

    @property
    def verdict(self) -> str:
        if self.limit is None:
            return "info"
        value = self.ratio if self.bound is not None else self.ours
        assert value is not None
        return "PASS" if value <= self.limit else "FAIL"

    @property
    def target(self) -> str:
        if self.limit is None:
            return "-"
        if self.bound is not None:
            return f"<= {self.limit:g} x"
        return f"<= {self.limit:g} {self.unit}"


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        if value < 0.01:
            return f"{value * 1000:.3f} ms"
        return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.3f} s"
    if unit == "ms":
        return f"{value:.3f} ms"
    return f"{value:.1f} {unit}"


def print_table(title: str, rows: Sequence[Row]) -> None:
    header = ("measure", "ours (median)", "bound (median)", "ratio", "target", "result")
    lines = [header]
    for row in rows:
        ratio = f"{row.ratio:.2f} x" if row.ratio is not None else "-"
        lines.append((row.what, _fmt(row.ours, row.unit), _fmt(row.bound, row.unit), ratio,
                      row.target, row.verdict))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print(f"\n{title}")
    for n, line in enumerate(lines):
        print("  " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))
        if n == 0:
            print("  " + "-+-".join("-" * w for w in widths))
    for row in rows:
        if row.note:
            print(f"  * {row.what}: {row.note}")


def per_rep_ratios(ours: Sequence[float], bound: Sequence[float]) -> str:
    """Each repetition's ratio (its two figures were taken moments apart) and their median."""
    ratios = [a / b for a, b in zip(ours, bound, strict=True) if b]
    return (f"per-repetition ratios {', '.join(f'{r:.2f}' for r in ratios)} "
            f"(median {median(ratios):.2f})")


def fmt_list(values: Sequence[float], unit: str = "s") -> str:
    """All samples, for the log (so a reader can see the spread behind a median)."""
    return "[" + ", ".join(_fmt(v, unit) for v in values) + "]"


# -- the commit workload shared by bench_many_commits and bench_open_history --
DATASET = "many"  # dataset name of the many-commits registry
QUERY_TAG = "production"  # carried by one commit in PRODUCTION_EVERY
PRODUCTION_EVERY = 100


def commit_metadata(i: int) -> dict[str, Any]:
    """Metadata of commit ``i``: a few scalars and a nested object, as a training run has."""
    return {"accuracy": round(0.5 + (i % 1000) / 2000, 4), "epoch": i,
            "framework": "pytorch", "params": {"lr": 0.001, "layers": [128, 64]}}


def commit_tags(i: int) -> list[str]:
    tags = ["nightly", f"build-{i}"]
    if i % PRODUCTION_EVERY == PRODUCTION_EVERY - 1:
        tags.append(QUERY_TAG)
    return tags


def write_small_file(path: Path, i: int, size: int) -> None:
    """New content for commit ``i`` (different every time, so every commit stores a blob)."""
    body = f"model weights #{i}\n".encode()
    path.write_bytes(body + os.urandom(max(size - len(body), 0)))


def commit_same_name(ds: Dataset, count: int, src: Path, file_size: int,
                     start: int = 0) -> list[float]:
    """``count`` commits of ``model.bin`` with new content each time; seconds per commit."""
    src.mkdir(parents=True, exist_ok=True)
    path = src / "model.bin"
    times: list[float] = []
    for i in range(start, start + count):
        write_small_file(path, i, file_size)
        t0 = time.perf_counter()
        ds.commit(f"nightly build {i}", add_files=[str(path)], metadata=commit_metadata(i),
                  tags=commit_tags(i))
        times.append(time.perf_counter() - t0)
        if (i + 1) % 1000 == 0:
            print(f"    {i + 1} commits, last 100: {median(times[-100:]) * 1000:.2f} ms "
                  "per commit", flush=True)
    return times


def committed_large_file(work: Path, size: int, name: str) -> tuple[Dataset, Path]:
    """A local registry under ``work`` holding one commit of ``size`` random bytes as
    ``name``: the dataset and the path of the blob (the source is removed, so only the
    blob is read from then on, and everything is synced to disk)."""
    from kirin import Dataset

    source = work / "source.bin"
    print(f"generating {size // MIB} MiB of random data and committing it ...", flush=True)
    make_random_file(source, size)
    root = work / "registry"
    ds = Dataset(root, "big")
    ds.commit("big model", add_files={name: str(source)}, tags=["baseline"])
    file = ds.get_file(name)
    assert file is not None
    blob = root / "data" / file.hash[:2] / file.hash[2:]  # docs/storage-format.md
    assert blob.stat().st_size == size
    source.unlink()
    sync()
    return ds, blob
