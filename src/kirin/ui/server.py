"""Serving the web app with uvicorn: ``kirin ui`` and the tests start it from here.

:class:`UiServer` binds its socket before it starts serving, so ``port=0``
gives a free port that is known (``url``) before the first request: tests
run it in a thread, the command line runs it in the foreground.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn

from ..catalog import Catalog
from .app import create_app, is_loopback

STARTUP_TIMEOUT = 30.0


class UiServer:
    """The app on one socket, served by uvicorn (in this thread, or in a background one)."""

    def __init__(self, root: str | Catalog, *, host: str = "127.0.0.1", port: int = 8000,
                 storage_options: dict[str, Any] | None = None,
                 log_level: str = "warning") -> None:
        self.app = create_app(root, host=host, storage_options=storage_options)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
        except OSError as exc:
            self.socket.close()
            raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}"
                          " (another server there? pick one with --port)") from None
        self.host = host
        self.port = int(self.socket.getsockname()[1])
        config = uvicorn.Config(self.app, log_level=log_level, access_log=False,
                                lifespan="off", server_header=False, date_header=True)
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # every address: show loopback
        shown = wildcard.get(self.host, self.host)
        shown = f"[{shown}]" if ":" in shown else shown
        return f"http://{shown}:{self.port}/"

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def serve(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until interrupted (Ctrl-C) or :meth:`stop`; ``on_ready`` once listening."""
        if on_ready is not None:
            threading.Thread(target=self._when_started, args=(on_ready,), daemon=True).start()
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self.socket.close()

    def _when_started(self, callback: Callable[[], None]) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.server.started and time.monotonic() < deadline:
            if self.server.should_exit:
                return
            time.sleep(0.02)
        if self.server.started:
            callback()

    def start(self) -> UiServer:
        """Serve in a daemon thread; return once requests are answered."""
        self._thread = threading.Thread(target=self.serve, name="kirin-ui", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"kirin ui did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> UiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
