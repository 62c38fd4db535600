"""Progress bars for transfers that take more than a moment, on a terminal only.

The library reports transfers through :mod:`kirin.progress`; this listener
draws them with rich on stderr. A transfer gets a bar at once when it is
large, otherwise only once it has run for :data:`DELAY` seconds, so quick
commands print nothing extra. Bars are transient: they vanish when done.
Nothing is drawn when stderr is not a terminal (pipes, CI logs, files), and then
rich.progress is not even imported (a tenth of a small command's start-up).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import progress as library_progress
from .output import terminal_safe

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

DELAY = 0.5  # seconds before a small transfer gets a bar
LARGE = 64 * 1024 * 1024  # bytes from which a transfer gets a bar at once


@dataclass
class _Transfer:
    description: str
    total: int | None
    started: float
    done: int = 0
    bar: TaskID | None = None


class ProgressBars:
    """A :class:`kirin.progress.Listener` that draws rich progress bars."""

    def __init__(self, console: Console, *, delay: float = DELAY, large: int = LARGE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._clock = clock
        self._delay = delay
        self._large = large
        self._transfers: dict[int, _Transfer] = {}
        self._progress = Progress(
            TextColumn("{task.description}", markup=False), BarColumn(),
            DownloadColumn(binary_units=True), TransferSpeedColumn(), TimeRemainingColumn(),
            console=console, transient=True)
        self._started = False

    def start(self, task: int, description: str, total: int | None) -> None:
        transfer = _Transfer(terminal_safe(description), total, self._clock())
        self._transfers[task] = transfer
        if total is not None and total >= self._large:
            self._show(transfer)

    def advance(self, task: int, amount: int) -> None:
        transfer = self._transfers.get(task)
        if transfer is None:
            return
        transfer.done += amount
        if transfer.bar is None and self._clock() - transfer.started >= self._delay:
            self._show(transfer)
        elif transfer.bar is not None:
            self._progress.update(transfer.bar, completed=transfer.done)

    def finish(self, task: int) -> None:
        transfer = self._transfers.pop(task, None)
        if transfer is None or transfer.bar is None:
            return
        self._progress.update(transfer.bar, completed=transfer.total or transfer.done)
        self._progress.refresh()  # a fast transfer is drawn at least once
        self._progress.remove_task(transfer.bar)

    def _show(self, transfer: _Transfer) -> None:
        if not self._started:
            self._progress.start()
            self._started = True
        transfer.bar = self._progress.add_task(transfer.description, total=transfer.total,
                                               completed=transfer.done)
        self._progress.refresh()

    def close(self) -> None:
        if self._started:
            self._progress.stop()
            self._started = False


@contextmanager
def progress_bars(console: Console) -> Iterator[None]:
    """Draw the transfers made inside the block, if ``console`` is a terminal."""
    if not _interactive(console):
        yield
        return
    bars = ProgressBars(console)
    try:
        with library_progress.listening(bars):
            yield
    finally:
        bars.close()


def _interactive(console: Console) -> bool:
    """A real terminal (FORCE_COLOR in a CI log must not turn on live bars)."""
    try:
        tty = console.file.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        tty = False
    return tty and console.is_terminal and not console.is_dumb_terminal
