"""Start-up of the command line (issue 16): only the command run is built."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from kirin.cli import app
from kirin.cli.app import for_arguments

from cli_helpers import command_paths, run

_runner = CliRunner()
TOP = sorted({path.split(" ")[0] for path in command_paths()})


def _help(target: typer.Typer, args: list[str]) -> str:
    result = _runner.invoke(target, args)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("path", command_paths())
def test_a_command_built_alone_is_the_command_of_the_whole_app(path: str) -> None:
    """Same parameters, help and usage as when every command is built."""
    args = [*path.split(" "), "--help"]
    alone = for_arguments(args)
    assert alone is not app
    assert _help(alone, args) == _help(app, args)


def test_only_the_command_named_is_kept_and_the_app_is_left_whole() -> None:
    before = (len(app.registered_commands), len(app.registered_groups))
    log = for_arguments(["log", "-n", "3"])
    assert [c.name for c in log.registered_commands] == ["log"]
    assert log.registered_groups == []
    policy = for_arguments(["policy", "show"])
    assert policy.registered_commands == []
    assert [g.name for g in policy.registered_groups] == ["policy"]
    assert (len(app.registered_commands), len(app.registered_groups)) == before
    assert len(TOP) == before[0] + before[1]


@pytest.mark.parametrize("args", [[], ["--help"], ["-h"], ["--version"], ["lgo"], ["LOG"],
                                  ["policy-show"]])
def test_anything_but_a_command_name_gets_the_whole_app(args: list[str]) -> None:
    assert for_arguments(args) is app


def test_a_misspelt_command_still_suggests_the_right_one(tmp_path: Path) -> None:
    """The real script: the suggestion needs every name, so the whole app is built."""
    result = run("lgo", cwd=tmp_path)
    assert result.returncode == 2
    assert "No such command 'lgo'. Did you mean 'log'?" in result.stderr
