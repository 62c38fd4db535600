"""Helpers for the CLI tests: run the real ``kirin`` script, build registries, check shapes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from kirin import Catalog, Dataset
from kirin.cli import app
from kirin.cli.shapes import COMMANDS, OBJECTS

REPO = Path(__file__).resolve().parents[2]
TEAM_POLICY = REPO / "examples" / "policy" / "team-policy.yaml"
#: The console script ``pip install -e .`` put next to this Python.
KIRIN = Path(sys.executable).parent / ("kirin.exe" if os.name == "nt" else "kirin")


def kirin_env(**extra: str) -> dict[str, str]:
    """The test's environment (already isolated by conftest) for a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIRIN_")
           and k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS")}
    env.update({"KIRIN_AUTHOR": "tester@example", "COLUMNS": "200", "NO_COLOR": "1"})
    env.update(extra)
    return env


def run(*args: str | os.PathLike[str], cwd: Path, env: Mapping[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real ``kirin`` console script in a subprocess (pipes, not a terminal)."""
    assert KIRIN.exists(), f"{KIRIN} is missing: run pip install -e . (scripts/test.sh does)"
    return subprocess.run([str(KIRIN), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, env=dict(env) if env is not None else kirin_env(),
                          timeout=timeout, check=False)


def run_json(*args: str | os.PathLike[str], cwd: Path, code: int = 0,
             env: Mapping[str, str] | None = None) -> Any:
    """Run with ``--format json``; check the exit code and return the parsed document."""
    result = run(*args, "--format", "json", cwd=cwd, env=env)
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    return json.loads(result.stdout)


_runner = CliRunner()


@dataclass(frozen=True)
class Invoked:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def invoke(*args: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Invoked:
    """Run the typer app in this process (fast; exceptions are mapped like the real script)."""
    result = _runner.invoke(app, [str(a) for a in args], env=dict(env or {}),
                            catch_exceptions=False)
    return Invoked(result.exit_code, result.stdout, result.stderr)


# -- registries ----------------------------------------------------------------------
@dataclass(frozen=True)
class Registry:
    """A registry under the team policy: baseline, dev model, staging promotion."""

    root: Path
    name: str
    work: Path
    baseline: str
    dev: str
    staging: str

    def args(self) -> list[str]:
        return ["--root", str(self.root), "--dataset", self.name]

    def open(self) -> Dataset:
        return Dataset(self.root, self.name)


def write(folder: Path, name: str, content: bytes | str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def build_registry(tmp_path: Path, name: str = "models") -> Registry:
    """A registry made through the library (quick), for the commands that read it."""
    root = tmp_path / "registry"
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    dataset = Catalog(root).create_dataset(name, "Test models", policy=TEAM_POLICY)
    weights = write(work, "model_weights.pt", b"baseline weights" * 64)
    config = write(work, "config.json", '{"hidden": 128}')
    baseline = dataset.commit(
        "Initial baseline model", add_files=[weights, config],
        metadata={"framework": "pytorch", "accuracy": 0.87, "f1_score": 0.85,
                  "hyperparameters": {"epochs": 10}},
        tags=["baseline", "v1.0"])
    model = write(work, "model.pt", b"new architecture" * 64)
    dev = dataset.commit("Experimental model with new architecture", add_files=[model],
                         metadata={"framework": "pytorch", "accuracy": 0.93,
                                   "f1_score": 0.91, "hyperparameters": {"epochs": 15}},
                         tags=["dev", "experimental"])
    staging = dataset.promote(dev, ["staging", "v2.1-beta"])
    return Registry(root, name, work, baseline, dev, staging)


# -- JSON shapes ---------------------------------------------------------------------
_SCALARS: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "any": lambda v: True,
    "object": lambda v: isinstance(v, dict),
}


def conforms(shape: Any, value: Any, where: str = "$") -> list[str]:
    """Every way ``value`` departs from ``shape`` (notation of :mod:`kirin.cli.shapes`)."""
    if isinstance(shape, str):
        problems: list[str] = []
        for option in (s.strip() for s in shape.split("|")):
            if option.startswith("<"):
                found = conforms(OBJECTS[option[1:-1]], value, where)
            else:
                found = [] if _SCALARS[option](value) else [
                    f"{where}: {value!r} is not {option}"]
            if not found:
                return []
            problems += found
        return problems
    if isinstance(shape, list):
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {type(value).__name__}"]
        return [p for i, item in enumerate(value) for p in conforms(shape[0], item,
                                                                      f"{where}[{i}]")]
    if not isinstance(value, dict):
        return [f"{where}: expected an object, got {type(value).__name__}"]
    if "*" in shape:
        return [p for k, v in value.items() for p in conforms(shape["*"], v, f"{where}.{k}")]
    required = {k for k in shape if not k.endswith("?")}
    allowed = {k.rstrip("?"): v for k, v in shape.items()}
    problems = [f"{where}: missing key {k!r}" for k in sorted(required - value.keys())]
    problems += [f"{where}: undocumented key {k!r}" for k in sorted(value.keys() - allowed.keys())]
    for key, item in value.items():
        if key in allowed:
            problems += conforms(allowed[key], item, f"{where}.{key}")
    return problems


def assert_shape(command: str, document: Any) -> None:
    problems = conforms(COMMANDS[command], document)
    assert not problems, f"kirin {command} --format json: " + "; ".join(problems)


def assert_error_document(document: Any, code: int) -> None:
    assert not conforms(OBJECTS["error"], document), conforms(OBJECTS["error"], document)
    assert document["error"]["exit_code"] == code


def error_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("::error ")]


# -- the command tree -----------------------------------------------------------------
def command_tree() -> Iterator[tuple[str, Any, Any]]:
    """(path such as "policy show", command, context) for every command and group."""
    root = typer.main.get_command(app)
    ctx = root.make_context("kirin", [], resilient_parsing=True)

    def walk(group: Any, parent: Any, prefix: str) -> Iterator[tuple[str, Any, Any]]:
        for name in group.list_commands(parent):
            command = group.get_command(parent, name)
            sub = command.make_context(name, [], parent=parent, resilient_parsing=True)
            path = f"{prefix}{name}"
            yield path, command, sub
            if hasattr(command, "list_commands"):
                yield from walk(command, sub, path + " ")

    yield "", root, ctx
    yield from walk(root, ctx, "")


def command_paths() -> list[str]:
    """Every leaf command ("log", "policy show", ...)."""
    return [p for p, c, _ in command_tree() if p and not hasattr(c, "list_commands")]
