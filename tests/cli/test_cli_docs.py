"""Every command has help; docs/cli.md is generated from it and never drifts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kirin.cli.shapes import COMMANDS, OBJECT_NOTES, OBJECTS

from cli_helpers import REPO, command_paths, command_tree


def test_docs_cli_md_is_generated_from_the_help_texts() -> None:
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_cli_docs.py"),
                             "--check"], capture_output=True, text=True, cwd=REPO, check=False)
    assert result.returncode == 0, (
        "docs/cli.md is out of date: run .venv/bin/python scripts/gen_cli_docs.py\n"
        + result.stdout)


@pytest.mark.parametrize(("path", "command", "ctx"), list(command_tree()),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_and_option_has_help(path: str, command: object, ctx: object) -> None:
    assert (command.help or "").strip(), f"kirin {path} has no help text"  # type: ignore[attr-defined]
    for param in command.params:  # type: ignore[attr-defined]
        assert (getattr(param, "help", None) or "").strip(), (
            f"kirin {path}: {param.name} has no help")


def test_every_command_documents_its_json_and_is_in_the_docs() -> None:
    text = (REPO / "docs" / "cli.md").read_text()
    for path in command_paths():
        assert f"### kirin {path}\n" in text
        assert path in COMMANDS
    for name in OBJECTS:
        assert name in OBJECT_NOTES and f"### `<{name}>`" in text


def test_the_readme_documents_the_exit_codes() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Command line"):]
    for line in ("`0`", "`1`", "`2`", "`3`", "`4`", "kirin --help", "docs/cli.md"):
        assert line in section
