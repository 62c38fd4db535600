"""The typer applications: ``kirin`` and its ``policy``, ``catalog`` and ``import`` groups.

Commands are registered on them by :mod:`kirin.cli.commands`,
:mod:`kirin.cli.admin` and :mod:`kirin.cli.importing`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from .. import __version__
from .coercion import Group
from .exits import EXIT_CODES_HELP

HELP = f"""\
Kirin: a versioned, schema-enforced registry for ML models and datasets.

Every command finds the registry from --root and --dataset, else from the
environment (KIRIN_ROOT, KIRIN_DATASET), else from a kirin.yaml in the current
folder or the nearest folder above it (keys root and dataset; a relative root
is relative to that file). Commands other than init need an existing dataset.

REF names a commit: a full hash, a unique hash prefix, or a tag, meaning the
newest commit carrying it; tag:NAME always means the tag.

Output goes to stdout: human tables by default, --format json for a stable
JSON document (its shape is in each command's help and in docs/cli.md), and
--format github for GitHub Actions annotations from the commands that report
violations or problems. Errors go to stderr. Progress bars for long transfers
appear only when stderr is a terminal.

{EXIT_CODES_HELP}
"""

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
#: What every group shares; Group converts option values without pydantic (coercion.py).
GROUP: dict[str, Any] = {"cls": Group, "rich_markup_mode": None, "no_args_is_help": True,
                         "context_settings": CONTEXT}

app = typer.Typer(name="kirin", help=HELP, pretty_exceptions_enable=False,
                  add_completion=False, **GROUP)
policy_app = typer.Typer(
    name="policy", help="The dataset's policy: the rules every commit must satisfy.", **GROUP)
catalog_app = typer.Typer(name="catalog", help="The datasets under a registry root.", **GROUP)
import_app = typer.Typer(
    name="import", help="Bring existing history in: from MLflow, from the original Kirin.",
    **GROUP)
root_policy_app = typer.Typer(
    name="root-policy", help="The root policy: rules every dataset under the root must also "
    "satisfy.", **GROUP)
app.add_typer(policy_app, name="policy")
app.add_typer(root_policy_app, name="root-policy")
app.add_typer(catalog_app, name="catalog")
app.add_typer(import_app, name="import")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kirin {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="Show the version and exit.")] = False) -> None:
    pass


def for_arguments(args: Sequence[str]) -> typer.Typer:
    """``app``, or a copy of it holding only the command or group ``args[0]`` names.

    Why: calling a typer app builds the parameters of every command it holds (a tenth
    of ``kirin log``'s start-up, issue 16), though one command runs. A first argument
    that names a command or group exactly is the one that runs, so only it is built;
    anything else (an option such as ``--help``, no argument, a misspelt name whose
    error suggests the names there are) gets the whole app. A group named keeps all
    its commands.
    """
    name = args[0] if args else ""
    commands = [c for c in app.registered_commands if c.name == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if not name or len(commands) + len(groups) != 1:
        return app
    only = copy.copy(app)
    only.registered_commands = commands
    only.registered_groups = groups
    return only
