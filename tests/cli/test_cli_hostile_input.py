"""Bad input is a usage error, never a bug; user text never drives the terminal.

Exit code 5 means "a bug in Kirin": no argument a user can type may produce
it. And every string a user stored (message, author, tags, metadata keys and
values, descriptions, file names) is printed with the characters a terminal
acts on (ESC, BEL, CR, backspace, DEL, C1, bidi controls) escaped; JSON
output keeps the exact text.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kirin import Dataset

from cli_helpers import Registry, build_registry, invoke, kirin_env, run, write

#: What a terminal acts on; none of it may reach human output unescaped.
RAW_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e"
                          "\u2066-\u2069]")
HOSTILE = ("\x1b]0;pwned\x07 title, \x1b[2J clear, \x1b[8m hidden, \r over, \b back, "
           "\x7f del, \x9b csi, \u202eevil\u202c, \u2066iso\u2069, \u200f rlm, "
           "[bold red]not markup[/bold red]")


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return build_registry(tmp_path)


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, Dataset]:
    """A dataset whose one commit holds terminal escapes in every user string."""
    root = tmp_path / "hostile"
    from kirin import Catalog

    dataset = Catalog(root).create_dataset("evil", HOSTILE)
    weights = write(tmp_path, "w.bin", b"w")
    dataset.commit(HOSTILE, add_files={"odd\u202ename.bin": weights},
                   metadata={HOSTILE: HOSTILE, "nested": {"k\x1b[2J": ["\x1b[8m"]}},
                   tags=["t\u202eag", "[bold]x[/bold]"], author=HOSTILE)
    return root, dataset


def _assert_terminal_safe(text: str) -> None:
    found = RAW_CONTROLS.findall(text)
    assert not found, f"raw control characters in human output: {found!r}"


@pytest.mark.parametrize("args", [
    ["log"], ["show"], ["files"], ["policy", "history"], ["catalog", "list"],
    ["audit"], ["audit", "--against", "admitting"], ["log", "--columns", "nested,missing"],
])
def test_human_output_escapes_terminal_controls(hostile: tuple[Path, Dataset],
                                                args: list[str]) -> None:
    root, _dataset = hostile
    where = ["--root", str(root)] + (["--dataset", "evil"] if args[0] != "catalog" else [])
    result = invoke(*args, *where)
    assert result.code == 0, result.stderr
    _assert_terminal_safe(result.stdout)
    _assert_terminal_safe(result.stderr)


def test_show_prints_escapes_visibly_and_markup_literally(hostile: tuple[Path, Dataset]
                                                          ) -> None:
    root, _ = hostile
    out = invoke("show", "--root", root, "--dataset", "evil").stdout
    assert "\\x1b]0;pwned\\x07" in out
    assert "\\x1b[2J" in out and "\\x1b[8m" in out and "\\x9b" in out
    assert "\\u202eevil\\u202c" in out and "odd\\u202ename.bin" in out
    assert "[bold red]not markup[/bold red]" in out
    assert "t\\u202eag" in out


def test_diff_escapes_metadata_keys_values_and_tags(hostile: tuple[Path, Dataset],
                                                    tmp_path: Path) -> None:
    root, dataset = hostile
    first = dataset.history()[0].hash
    second = dataset.commit("plain", add_files=[write(tmp_path, "v.bin", b"v")],
                            metadata={"\u202ekey\x1b[2J": 1}, tags=["\u2066t"])
    result = invoke("diff", first, second, "--root", root, "--dataset", "evil")
    assert result.code == 0, result.stderr
    _assert_terminal_safe(result.stdout)
    assert "\\u202ekey\\x1b[2J" in result.stdout


def test_error_messages_quoting_user_input_are_escaped(hostile: tuple[Path, Dataset]) -> None:
    root, _ = hostile
    for args in (["show", "\x1b[2J\u202e"], ["log", "--where", "\x1b[2J == 1"],
                 ["log", "--tag", "\u202e\x1b[8m"]):
        result = invoke(*args, "--root", root, "--dataset", "evil")
        assert result.code in (0, 2, 3), (args, result)
        _assert_terminal_safe(result.stderr)
        _assert_terminal_safe(result.stdout)


@pytest.mark.parametrize("args", [["log"], ["show"], ["catalog", "list"]])
def test_json_output_keeps_the_exact_text(hostile: tuple[Path, Dataset],
                                          args: list[str]) -> None:
    """JSON writes the same characters as \\u escapes: exact when parsed, inert when shown."""
    root, dataset = hostile
    where = ["--root", str(root)] + (["--dataset", "evil"] if args[0] != "catalog" else [])
    result = invoke(*args, *where, "-f", "json")
    assert result.code == 0, result.stderr
    _assert_terminal_safe(result.stdout.replace("\n", ""))
    document = json.loads(result.stdout)
    if args[0] == "catalog":
        assert document["datasets"][0]["description"] == HOSTILE
        return
    commit = document["commits"][0] if args == ["log"] else document["commit"]
    assert commit["message"] == HOSTILE and commit["author"] == HOSTILE
    assert commit["metadata"][HOSTILE] == HOSTILE
    assert commit["tags"] == ["t\u202eag", "[bold]x[/bold]"]
    assert commit["metadata"] == dict(dataset.history()[0].metadata)


# -- bad input: exit 2, a message, never "internal error" ------------------------------
def _assert_usage_error(result: Any, *needles: str) -> None:
    code = getattr(result, "returncode", getattr(result, "code", None))
    assert code == 2, (code, result.stdout, result.stderr)
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_a_huge_integer_in_metadata_is_a_usage_error(reg: Registry) -> None:
    metadata = '{"n": ' + "9" * 5000 + "}"
    result = run("commit", reg.work / "config.json", "-m", "big", "--metadata", metadata,
                 *reg.args(), cwd=reg.work)
    _assert_usage_error(result, "--metadata", "integer", "4,000 digits")


def test_deep_nesting_in_metadata_is_a_usage_error(reg: Registry) -> None:
    metadata = '{"n": ' + "[" * 2000 + "]" * 2000 + "}"
    result = run("validate", reg.work / "config.json", "-m", "deep", "--metadata", metadata,
                 *reg.args(), cwd=reg.work)
    _assert_usage_error(result, "--metadata", "nested")
    result = run("validate", reg.work / "config.json", "-m", "deep", "--metadata",
                 '{"n": ' + "[" * 100 + "]" * 100 + "}", *reg.args(), cwd=reg.work)
    _assert_usage_error(result, "nested deeper than 64")


def test_an_overlong_grace_is_a_usage_error(reg: Registry) -> None:
    result = run("gc", "--grace", "99999999999999999999d", "--root", reg.root, cwd=reg.work)
    _assert_usage_error(result, "99999999999999999999d", "days")


def test_an_unknown_protocol_is_a_usage_error(reg: Registry) -> None:
    result = run("log", "--root", "nope://x", "--dataset", "d", cwd=reg.work)
    _assert_usage_error(result, "nope://x", "unknown protocol 'nope'")
    result = run("commit", "nope://bucket/file.bin", "-m", "m", *reg.args(), cwd=reg.work)
    _assert_usage_error(result, "unknown protocol 'nope'")


@pytest.mark.parametrize(("url", "module", "extra"), [
    ("s3://bucket/registry", "s3fs", "s3"),
    ("gs://bucket/registry", "gcsfs", "gcs"),
    ("az://container/registry", "adlfs", "azure"),
    ("abfs://container/registry", "adlfs", "azure"),
])
def test_a_missing_cloud_package_names_the_extra(tmp_path: Path, url: str, module: str,
                                                 extra: str) -> None:
    """Run the CLI in a Python where importing ``module`` fails, as when it is not installed."""
    script = (f"import sys; sys.modules[{module!r}] = None\n"
              "from kirin.cli import main\n"
              f"sys.argv = ['kirin', 'log', '--root', {url!r}, '--dataset', 'd']\n"
              "main()\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=tmp_path, env=kirin_env(), timeout=120, check=False)
    _assert_usage_error(result, f"pip install 'kirin[{extra}]'", url.split("://")[0] + "://")


# -- the sweep: random arguments everywhere ------------------------------------------------
ANY_TEXT = st.text(max_size=30) | st.sampled_from([
    "", "-", "--", "0", "-1", "9" * 30, "nope://x", "s3:", "::", "a=b", "@", "@/nonexistent",
    "tag:", "tag:dev", "\x00", "\x1b[2J", "\udcff", "..", "/", "{}", "[]", "null",
    '{"a": ' + "9" * 5000 + "}", '{"a": ' + "[" * 3000 + "}", '{"a": NaN}',
    '{"a": 1e999}', '{"\\ud800": 1}', "1e999", "inf", "99999999999999999999d"])
NUMBERS = st.integers().map(str) | ANY_TEXT


@st.composite
def command_lines(draw: Any, root: str, work: str) -> list[str]:
    # a random root or dataset one time in four: the rest reach the registry's commands
    where = ["--root", draw(ANY_TEXT) if draw(st.integers(0, 3)) == 0 else root,
             "--dataset", draw(ANY_TEXT) if draw(st.integers(0, 3)) == 0 else "models"]
    text = ANY_TEXT
    choice = draw(st.sampled_from(["commit", "validate", "log", "show", "diff", "files",
                                   "get", "gc", "promote", "catalog", "policy", "audit"]))
    if choice in ("commit", "validate"):
        args = [choice, draw(st.sampled_from([f"{work}/config.json", f"a={work}/config.json"])
                             | text), "-m", draw(text), "--metadata", draw(text), "--tag",
                draw(text), "--author", draw(text), "--remove", draw(text)]
        if choice == "commit":
            args.append("--dry-run")  # the sweep judges, it need not write
        return args + where
    if choice == "log":
        return ["log", "--limit", draw(NUMBERS), "--tag", draw(text), "--where", draw(text),
                "--columns", draw(text), *where]
    if choice in ("show", "files"):
        return [choice, draw(text), *where]
    if choice == "diff":
        return ["diff", draw(text), draw(text), *where]
    if choice == "get":
        return ["get", draw(text), draw(text), "-o", f"{work}/out", *where]
    if choice == "gc":
        return ["gc", "--dry-run", "--grace", draw(NUMBERS), *where[:2]]
    if choice == "promote":
        return ["promote", draw(text), "-t", draw(text), "--metadata", draw(text),
                "--dry-run", "-m", draw(text), *where]
    if choice == "catalog":
        return ["catalog", "list", *where[:2]]
    if choice == "policy":
        sub = draw(st.sampled_from(["show", "history", "check", "diff"]))
        versions = {"show": [draw(text)], "diff": [draw(text), draw(text)]}.get(sub, [])
        return ["policy", sub, *versions, *where] if draw(st.booleans()) else [
            "policy", "check", draw(text)]
    return ["audit", "--since", draw(text), "--against",
            draw(st.sampled_from(["current", "admitting"]) | text), *where]


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_command_line_is_an_internal_error(reg: Registry, data: st.DataObject,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(reg.work)
    args = data.draw(command_lines(str(reg.root), str(reg.work)))
    result = invoke(*args)
    assert 0 <= result.code <= 4, (args, result.code, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr, (args, result.stderr)
    assert "internal error" not in result.stderr, (args, result.stderr)


def test_the_sweep_would_see_an_internal_error(reg: Registry,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep's assertions fail on a bug: an unexpected exception exits 5."""
    monkeypatch.setattr(Dataset, "find_commits", lambda *a, **k: 1 / 0)
    result = invoke("log", *reg.args())
    assert result.code == 5 and "internal error" in result.stderr
