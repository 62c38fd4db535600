"""Progress bars for long transfers: drawn on a terminal, never into pipes."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest
from rich.console import Console

from kirin.cli import progress as cli_progress

from cli_helpers import KIRIN, Registry, build_registry, kirin_env, run

BIG = 200 * 1024 * 1024


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return build_registry(tmp_path)


def big_file(folder: Path) -> Path:
    path = folder / "big.bin"
    with open(path, "wb") as handle:
        handle.truncate(BIG)  # sparse: instant to create, reads as zeros
    return path


def run_in_pty(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run the real script with stdout and stderr on a pseudo-terminal; return its output."""
    master, slave = pty.openpty()
    env = kirin_env(TERM="xterm-256color", COLUMNS="120")
    env.pop("NO_COLOR")
    process = subprocess.Popen([str(KIRIN), *args], cwd=cwd, stdin=subprocess.DEVNULL,
                               stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
    finally:
        os.close(master)
    return process.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def test_200_mib_transfers_show_a_progress_bar_on_a_terminal_and_none_in_a_pipe(
        reg: Registry) -> None:
    big = big_file(reg.work)
    code, output = run_in_pty(["commit", f"big.bin={big}", "-m", "A large model file",
                               "--metadata", '{"framework": "pytorch"}', *reg.args()],
                              cwd=reg.work)
    assert code == 0, output
    assert "big.bin" in output and "MiB" in output  # the bar: description and sizes
    assert "━" in output  # rich's bar
    assert "\x1b[?25l" in output  # the cursor hidden while the bar is live
    assert "Committed" in output

    piped = run("commit", f"copy.bin={big}", "-m", "The same file, piped",
                "--metadata", '{"framework": "pytorch"}', *reg.args(), cwd=reg.work)
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == ""
    assert "━" not in piped.stdout and "\x1b" not in piped.stdout
    assert piped.stdout.startswith("Committed ")

    code, output = run_in_pty(["get", "tag:dev", "-o", str(reg.work / "before"),
                               *reg.args()], cwd=reg.work)  # small files: no bar
    assert code == 0 and "Downloading" not in output
    code, output = run_in_pty(["get", piped.stdout.split()[1], "copy.bin", "-o",
                               str(reg.work / "out"), *reg.args()], cwd=reg.work)
    assert code == 0, output
    assert "Downloading copy.bin" in output and "━" in output
    assert (reg.work / "out" / "copy.bin").stat().st_size == BIG


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_small_transfers_get_a_bar_only_once_they_take_a_moment() -> None:
    clock = Clock()
    out = io.StringIO()
    bars = cli_progress.ProgressBars(Console(file=out, force_terminal=True, width=100),
                                     clock=clock)
    bars.start(1, "Uploading quick.bin", 1000)
    bars.advance(1, 500)
    bars.finish(1)
    assert out.getvalue() == ""  # quick: nothing drawn
    bars.start(2, "Uploading slow.bin", 1000)
    clock.now = 1.0
    bars.advance(2, 100)
    bars.finish(2)
    bars.close()
    assert "Uploading slow.bin" in out.getvalue()


def test_no_listener_when_stderr_is_not_a_terminal() -> None:
    from kirin import progress as library_progress

    console = Console(file=io.StringIO())
    with cli_progress.progress_bars(console), \
            library_progress.transfer("x", 10) as advance:
        advance(10)
        assert library_progress._listener.get() is None
