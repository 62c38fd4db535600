"""The one wrapper every command goes through (the ``gto_command`` habit).

``@command(app, "log", scope=Scope.DATASET)`` registers a function
``log(session, ...) -> Outcome`` as a typer command and adds the options every
command shares (``--root``, ``--dataset``, ``--format``, ``--traceback``). The
wrapper finds the registry, runs the function (one call into the library),
prints the outcome in the chosen format, and turns any exception into a
message and an exit code — in this one place.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import Annotated, Any, TypeVar

import typer

from ..catalog import Catalog
from ..dataset import Dataset
from ..errors import DatasetNotFoundError
from . import config, shapes
from .coercion import Command
from .exits import ExitCode
from .output import Format, GateFormat, Outcome, emit, report_error, stderr_console, stdout_console


class Scope(Enum):
    """What a command needs to know of the registry's location."""

    NONE = "none"  # nothing (kirin policy check)
    ROOT = "root"  # the root (gc, catalog list)
    DATASET = "dataset"  # an existing dataset
    NEW_DATASET = "new"  # a dataset to create (init)
    ANY_DATASET = "any"  # the root, and maybe a dataset in it (ui)


@dataclass
class Session:
    """What a command function gets: where the registry is, and progress bars."""

    root_option: str | None
    dataset_option: str | None
    scope: Scope

    @cached_property
    def location(self) -> config.Location:
        return config.resolve(self.root_option, self.dataset_option,
                              need_dataset=self.scope in (Scope.DATASET, Scope.NEW_DATASET))

    @property
    def dataset_name(self) -> str:
        name = self.location.dataset
        assert name is not None
        return name

    def catalog(self) -> Catalog:
        return Catalog(self.location.root, trust_root_policy=self.location.trust_root)

    def dataset(self) -> Dataset:
        """The dataset named by the location; it must exist (a typo never creates one)."""
        catalog = self.catalog()
        name = self.dataset_name
        dataset = catalog.get_dataset(name, require_policy=self.location.require_policy,
                                      trust_policy=self.location.trust)
        # a dataset with commits exists; only an empty one needs the catalog's word
        if dataset.is_empty() and name not in catalog:
            known = catalog.datasets()
            hint = (f"; datasets there: {', '.join(known)}" if known
                    else "; there are none yet: create one with kirin init")
            raise DatasetNotFoundError(
                f"Dataset {name!r} not found in {self.location.root}{hint}")
        return dataset

    @contextmanager
    def transfers(self) -> Iterator[None]:
        """Progress bars (on a terminal) for the transfers made inside the block."""
        from .progress import progress_bars  # only for commands that transfer

        with progress_bars(stderr_console()):
            yield


RootOption = Annotated[str | None, typer.Option(
    "--root", envvar="KIRIN_ROOT", show_envvar=True, metavar="PATH|URL",
    help="Registry root: a folder or an fsspec URL (s3://, gs://, az://, memory://).")]
DatasetOption = Annotated[str | None, typer.Option(
    "--dataset", "-d", envvar="KIRIN_DATASET", show_envvar=True, metavar="NAME",
    help="Dataset (registry) name.")]
FormatOption = Annotated[Format, typer.Option(
    "--format", "-f", help="Output: human tables, or a JSON document (see docs/cli.md).")]
GateFormatOption = Annotated[GateFormat, typer.Option(
    "--format", "-f", help="Output: human tables, a JSON document (see docs/cli.md), or "
    "GitHub Actions ::error annotations, one per violation or problem.")]
TracebackOption = Annotated[bool, typer.Option(
    "--traceback", envvar="KIRIN_TRACEBACK", help="On error, show the full traceback.")]

F = TypeVar("F", bound=Callable[..., Outcome])


def command(app: typer.Typer, name: str, *, scope: Scope, gate: bool = False,
            shape: str | None = None) -> Callable[[F], F]:
    """Register ``func(session, **options) -> Outcome`` as the typer command ``name``.

    ``gate`` commands accept ``--format github``; ``shape`` names the entry of
    :data:`kirin.cli.shapes.COMMANDS` documented in the help (default: ``name``).
    """

    def register(func: F) -> F:
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
               for p in list(inspect.signature(func, eval_str=True).parameters.values())[1:]]
        common = []
        if scope is not Scope.NONE:
            common.append(_param("root", RootOption, None))
        if scope in (Scope.DATASET, Scope.NEW_DATASET, Scope.ANY_DATASET):
            common.append(_param("dataset", DatasetOption, None))
        common.append(_param("output_format", GateFormatOption if gate else FormatOption,
                             GateFormat.table if gate else Format.table))
        common.append(_param("traceback", TracebackOption, False))

        def run(**kwargs: Any) -> None:
            fmt = kwargs.pop("output_format").value
            show_traceback = bool(kwargs.pop("traceback"))
            session = Session(kwargs.pop("root", None), kwargs.pop("dataset", None), scope)
            try:
                if scope is not Scope.NONE:
                    session.location  # noqa: B018 - fail early on an incomplete location
                outcome = func(session, **kwargs)
                emit(outcome, fmt, stdout_console())
                code = outcome.exit_code
            except typer.Exit:
                raise
            except BrokenPipeError:  # the reader went away (kirin log | head): not an error
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                code = ExitCode.BROKEN_PIPE
            except (Exception, KeyboardInterrupt) as exc:
                code = report_error(exc, fmt, show_traceback=show_traceback)
            raise typer.Exit(int(code))

        run.__name__ = func.__name__
        run.__doc__ = func.__doc__
        run.__signature__ = inspect.Signature([*own, *common])  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in [*own, *common]}
        app.command(name, cls=Command, epilog=shapes.epilog(shape or name))(run)
        return func

    return register


def _param(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=annotation)
