"""Optional progress reports for long transfers; silent unless a caller listens.

The library never prints. A front end (the CLI's progress bars) installs a
listener for the duration of a call with :func:`listening`; the storage
layer reports each transfer through :func:`transfer`. Listeners live in a
context variable, so concurrent calls in other threads or tasks are unaffected.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol


class Listener(Protocol):
    def start(self, task: int, description: str, total: int | None) -> None: ...

    def advance(self, task: int, amount: int) -> None: ...

    def finish(self, task: int) -> None: ...


_listener: ContextVar[Listener | None] = ContextVar("kirin_progress", default=None)
_ids = itertools.count()


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send progress of transfers made inside the block to ``listener``."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


def _ignore(amount: int) -> None:
    return None


@contextmanager
def transfer(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Report one transfer of ``total`` bytes; yields a function to call with each chunk size."""
    listener = _listener.get()
    if listener is None:
        yield _ignore
        return
    task = next(_ids)
    listener.start(task, description, total)
    try:
        yield lambda amount: listener.advance(task, amount)
    finally:
        listener.finish(task)
