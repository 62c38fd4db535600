"""``kirin ui``: serve the read-only web view of a registry.

The web stack (Starlette, Jinja2, uvicorn) is imported only when the command
runs, so ``kirin --help`` and every other command work without the
``kirin[ui]`` extra, and its absence is one clear error here.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Annotated

import typer

from ..errors import DatasetNotFoundError, MissingExtraError
from .app import app
from .output import Outcome, stderr_console, text
from .runner import Scope, Session, command


@command(app, "ui", scope=Scope.ANY_DATASET)
def ui(session: Session, *,
       host: Annotated[str, typer.Option(
           "--host", metavar="ADDRESS",
           help="Address to listen on. The default serves this machine only; any other "
                "address lets anyone who can reach it read the registry (no login is "
                "asked).")] = "127.0.0.1",
       port: Annotated[int, typer.Option(
           "--port", "-p", min=0, max=65535, metavar="PORT",
           help="Port to listen on (0: any free port).")] = 8000) -> Outcome:
    """Browse the registry in a web browser: read-only, until Ctrl-C.

    Pages: the catalog of datasets; each dataset's history (filtered by tags
    and --where expressions), commits with their metadata, files (verified
    downloads) and diffs, stage holders, metric trends, policy versions and
    the audit. Nothing can be changed from the browser. The address is
    printed on stderr once the server listens (with --dataset, that
    dataset's page). Needs the ui extra: pip install 'kirin[ui]'. See
    docs/ui.md.
    """
    try:
        from ..ui.server import UiServer
    except ImportError as exc:
        raise MissingExtraError(
            f"kirin ui needs the web extra ({exc.name or exc}): pip install 'kirin[ui]'",
            protocol="http", extra="ui") from exc
    catalog = session.catalog()
    dataset = session.location.dataset
    if dataset is not None and dataset not in catalog:
        raise DatasetNotFoundError(
            f"Dataset {dataset!r} not found in {session.location.root}", name=dataset)
    server = UiServer(catalog, host=host, port=port)
    start = server.url + (f"d/{dataset}" if dataset else "")
    err = stderr_console()

    def announce() -> None:
        err.print(text(f"Kirin UI (read-only) on {start}  Press Ctrl-C to stop."),
                  soft_wrap=True)
        if not server.loopback:
            err.print(text(f"Warning: listening on {host}: anyone who can reach it can read "
                           "the registry.", "yellow"), soft_wrap=True)
        sys.stderr.flush()

    # uvicorn stops on Ctrl-C, then raises it again: here that is a clean stop
    with contextlib.suppress(KeyboardInterrupt):
        server.serve(on_ready=announce)
    return Outcome({"url": start, "root": session.location.root, "dataset": dataset},
                   [text("Kirin UI stopped.", "dim")])
