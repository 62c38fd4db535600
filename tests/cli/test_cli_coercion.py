"""The light conversion of command-line values (kirin.cli.coercion) against typer's own.

For every parameter of every command, each value of a battery (good ones, bad ones, odd
ones) must convert to the same value as typer's own pydantic-based conversion, or be
refused with the same error; the plain values must be converted without typer's (else
the speed-up is gone without a test failing).
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest
from typer._click.exceptions import BadParameter
from typer._coercion import build_runtime_param
from typer.core import _TyperParameter

from kirin.cli import coercion

from cli_helpers import command_tree, invoke, run


def _parameters() -> list[tuple[str, Any, Any]]:
    """(label, parameter, context) for every typer parameter of every command and group,
    help options included."""
    found = []
    for path, command, ctx in command_tree():
        for param in command.get_params(ctx):
            if isinstance(param, _TyperParameter):
                found.append((f"kirin {path} {param.name}".replace("  ", " "), param, ctx))
    return found


PARAMETERS = _parameters()


def _leaf_values(annotation: Any, info: Any, folder: Path) -> tuple[list[Any], list[Any]]:
    """(plain values the light path must convert itself, odd or bad ones) for a type."""
    if annotation is str:
        return ["", "x", "a model", "ünïcödé", " spaced ", "--x"], []
    if annotation is bool:
        return [True, False], ["1", "0", "true", "no", "", "maybe"]
    if annotation is int:
        numbers: list[Any] = ["0", "1", "-1", "01", "8000", "65535", "123456789012345678", 7]
        low = -(10**30) if info.min is None else info.min
        high = 10**30 if info.max is None else info.max
        inside = [v for v in numbers if low <= int(v) <= high]  # out of range: typer's
        return (inside, [v for v in numbers if v not in inside] + [
            "65536", "-5", " 1", "1 ", "+1", "1_000", "1.0", "1.5", "0x10", "1e3", "", "abc",
            "\u0663", "\uff11", "9" * 30, 2.0, True])
    if annotation is float:
        return ["0", "1.5", "-2.25", "10"], ["1e3", " 1", "nan", "inf", "", "x", "1_0"]
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        members = list(annotation)
        return ([str(m.value) for m in members] + members,
                [str(members[0].value).upper(), "xml", "", " table"])
    if get_origin(annotation) is Literal:
        values = get_args(annotation)
        return [str(v) for v in values], ["nope", ""]
    if isinstance(annotation, type) and issubclass(annotation, Path):
        (folder / "file.txt").write_text("x")
        return ([str(folder / "file.txt"), str(folder / "missing.yaml"), str(folder),
                 "relative/name.pt", "a//b/", folder / "file.txt"],
                ["", "\0", str(folder / "file.txt") + "/"])
    raise AssertionError(f"no values for {annotation!r}: add them to this test")


def _values(annotation: Any, info: Any, folder: Path) -> tuple[list[Any], list[Any]]:
    if get_origin(annotation) is list:
        plain, odd = _leaf_values(get_args(annotation)[0], info, folder)
        return ([[v] for v in plain] + [plain], [[v] for v in odd] + [plain + odd[:1]])
    return _leaf_values(annotation, info, folder)


def _outcome(runtime: Any, value: Any, param: Any, ctx: Any) -> tuple[Any, ...]:
    try:
        converted = runtime.coerce(value, param=param, ctx=ctx)
    except BadParameter as exc:
        return ("refused", exc.format_message())
    except Exception as exc:  # whatever typer does, the light path must do the same
        return ("raised", type(exc).__name__, str(exc))
    return ("converted", type(converted), converted)


def test_the_installed_typer_is_the_one_the_light_path_plugs_into() -> None:
    """If a new typer changes its private structure, the light path turns itself off
    (this test then fails, to say so): every command still works, only slower."""
    assert coercion.supported()


@pytest.mark.parametrize(("label", "param", "ctx"), PARAMETERS, ids=[p[0] for p in PARAMETERS])
def test_every_parameter_converts_as_typer_does(label: str, param: Any, ctx: Any,
                                                tmp_path: Path) -> None:
    light = coercion.light_param(param.type_descriptor)
    assert light is not None, f"{label}: a type the light path does not know (it would " \
                              "import pydantic): teach kirin.cli.coercion"
    own = build_runtime_param(param.type_descriptor)
    plain, odd = _values(param.type_descriptor.annotation, param.type_descriptor.parameter_info,
                         tmp_path)
    for value in [*plain, *odd, None]:
        assert _outcome(light, value, param, ctx) == _outcome(own, value, param, ctx), \
            (label, value)
    for value in plain:  # converted by the light path itself, not handed to typer's
        assert light.convert(value, ctx) is not coercion.UNSURE, (label, value)


def test_the_annotations_covered_are_all_of_kirins() -> None:
    """The test above saw every kind of parameter Kirin has (a sanity check of the walk)."""
    kinds = {str(p.type_descriptor.annotation) for _, p, _ in PARAMETERS}
    assert {"<class 'str'>", "<class 'bool'>", "<class 'int'>", "list[str]",
            "<class 'pathlib.Path'>", "list[pathlib.Path]"} <= kinds
    assert any(issubclass(p.type_descriptor.annotation, Enum) for _, p, _ in PARAMETERS
               if isinstance(p.type_descriptor.annotation, type))


@pytest.mark.parametrize(("args", "message"), [
    (["log", "--limit", "0"], "Invalid value for '--limit' / '-n': Input should be greater "
                              "than or equal to 1"),
    (["log", "-n", "ten"], "Invalid value for '--limit' / '-n': Input should be a valid "
                           "integer"),
    (["log", "--format", "xml"], "Invalid value for '--format' / '-f': Value error, 'xml' is "
                                 "not one of 'table', 'json'."),
    (["audit", "--against", "Current"], "Invalid value for '--against'"),
])
def test_a_bad_value_is_a_usage_error_naming_the_parameter(tmp_path: Path, args: list[str],
                                                           message: str) -> None:
    """The real script: exit code 2 and typer's message, before any registry is read."""
    result = run(*args, "--root", tmp_path / "reg", "--dataset", "d", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert result.stdout == ""


def test_without_the_light_path_typer_converts_as_before(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What a typer of another structure gets: no light conversion, same results."""
    monkeypatch.setattr(coercion, "_SUPPORTED", False)
    assert coercion.light_param(PARAMETERS[0][1].type_descriptor) is None
    refused = invoke("log", "--limit", "0", "--root", str(tmp_path), "--dataset", "d")
    assert refused.code == 2 and "greater than or equal to 1" in refused.stderr
    empty = invoke("catalog", "list", "--root", str(tmp_path), "--format", "json")
    assert empty.code == 0 and empty.json()["datasets"] == []


def test_a_readable_existing_path_and_an_unreadable_one(tmp_path: Path) -> None:
    """An unreadable file goes to typer (which refuses it) unless the process may read
    anything (root): the light path never answers where typer would refuse."""
    secret = tmp_path / "secret.yaml"
    secret.write_text("x")
    secret.chmod(0)
    try:
        params = [p for label, p, _ in PARAMETERS if label == "kirin policy apply file"]
        (param,) = params
        light = coercion.light_param(param.type_descriptor)
        assert light is not None
        converted = light.convert(str(secret), None)
        assert (converted is coercion.UNSURE) == (not os.access(secret, os.R_OK))
    finally:
        secret.chmod(0o600)
