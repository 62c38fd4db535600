"""Reading command-line values: metadata, NAME=PATH files, durations; and the exit codes."""

from __future__ import annotations

import inspect
from datetime import timedelta
from pathlib import Path

import pytest

from kirin import errors
from kirin.cli.exits import ExitCode, exit_code_for
from kirin.cli.parsing import CliInputError, parse_duration, parse_files, parse_metadata

from cli_helpers import write


@pytest.mark.parametrize(("text", "expected"), [
    ("90s", timedelta(seconds=90)), ("10m", timedelta(minutes=10)),
    ("1h", timedelta(hours=1)), ("1h30m", timedelta(minutes=90)), ("2d", timedelta(days=2)),
    ("1w", timedelta(weeks=1)), ("3600", timedelta(hours=1)), ("0", timedelta(0)),
    ("1.5h", timedelta(minutes=90)), (" 5M ", timedelta(minutes=5)),
])
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "h", "1x", "1h 30m", "-1h", "1hh", "soon"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(CliInputError, match="Invalid duration"):
        parse_duration(text)


def test_metadata_from_json_or_a_file(tmp_path: Path) -> None:
    assert parse_metadata(None) is None
    assert parse_metadata('{"a": {"b": [1]}}') == {"a": {"b": [1]}}
    path = write(tmp_path, "m.json", '{"accuracy": 0.9}')
    assert parse_metadata(f"@{path}") == {"accuracy": 0.9}


@pytest.mark.parametrize(("value", "message"), [
    ("{", "not valid JSON: Expecting property name enclosed in double quotes at line 1"),
    ("3", "must be a JSON object"),
    ("@/no/such/file.json", "file not found: /no/such/file.json"),
])
def test_bad_metadata(value: str, message: str) -> None:
    with pytest.raises(CliInputError, match=message):
        parse_metadata(value)


def test_files_by_path_or_name_equals_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "k=v.bin", "x")
    assert parse_files(["dir/model.pt", "cfg/c.json=config.json", "k=v.bin",
                        "s3://b/x?version=2"]) == {
        "model.pt": "dir/model.pt", "cfg/c.json": "config.json", "k=v.bin": "k=v.bin",
        "x?version=2": "s3://b/x?version=2"}
    with pytest.raises(CliInputError, match=r"Two files would be stored as 'model\.pt'"):
        parse_files(["a/model.pt", "b/model.pt"])


def _kirin_errors() -> list[type[BaseException]]:
    return [cls for _, cls in inspect.getmembers(errors, inspect.isclass)
            if issubclass(cls, errors.KirinError)]


@pytest.mark.parametrize("cls", _kirin_errors(), ids=lambda c: c.__name__)
def test_every_kirin_error_has_a_deliberate_exit_code(cls: type[BaseException]) -> None:
    code = exit_code_for(cls)
    if cls is errors.KirinError:
        assert code is ExitCode.INTERNAL  # only ever raised through a subclass
    else:
        assert code in (ExitCode.FAILED, ExitCode.USAGE, ExitCode.NOT_FOUND,
                        ExitCode.CONFLICT), cls


@pytest.mark.parametrize(("cls", "code"), [
    (errors.PolicyViolationError, 1), (errors.InvalidInputError, 2), (errors.PolicyError, 2),
    (errors.ExpressionSyntaxError, 2), (errors.InvalidNameError, 2), (CliInputError, 2),
    (errors.NotFoundError, 3), (errors.AmbiguousRefError, 3), (errors.SourceNotFoundError, 3),
    (errors.FileNotInCommitError, 3), (errors.DatasetNotFoundError, 3),
    (errors.ConflictError, 4), (errors.DatasetExistsError, 4), (errors.StorageError, 4),
    (errors.CorruptObjectError, 4), (PermissionError, 4), (ValueError, 5),
    (KeyboardInterrupt, 130),
])
def test_exit_codes_follow_the_documented_table(cls: type[BaseException], code: int) -> None:
    assert exit_code_for(cls) == code
