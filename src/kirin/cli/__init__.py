"""The ``kirin`` command line: a thin layer of typer and rich over the library.

``main`` is the console script. Commands live in :mod:`kirin.cli.commands`
(a dataset's history) and :mod:`kirin.cli.admin` (policy, audit, verify, gc,
catalog); :mod:`kirin.cli.runner` is the one place where registries are
found, outcomes printed and errors turned into exit codes.
"""

from __future__ import annotations

import sys

from . import (  # noqa: F401 - registers the commands on the apps
    admin,
    importing,
    lineage,
    rootpolicy,
    stages,
    ui,
)
from .app import app, for_arguments
from .exits import ExitCode


def main() -> None:
    """Entry point of the ``kirin`` console script (only the command run is built)."""
    for_arguments(sys.argv[1:2])(prog_name="kirin")


__all__ = ["ExitCode", "app", "main"]
