"""Finding the registry: options, then environment, then the nearest kirin.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kirin.cli.config import (
    ConfigError,
    Location,
    find_config,
    plain_config,
    read_config,
    resolve,
    write_config,
)

from cli_helpers import invoke, write


def test_options_win_over_the_config_file(tmp_path: Path) -> None:
    write(tmp_path, "kirin.yaml", "root: from-file\ndataset: file-ds\n")
    location = resolve("s3://bucket/x", "opt-ds", need_dataset=True, start=tmp_path)
    assert location == Location("s3://bucket/x", "opt-ds", None)


def test_each_missing_setting_comes_from_the_nearest_config_file(tmp_path: Path) -> None:
    config = write(tmp_path, "kirin.yaml", "root: ./registry\ndataset: models\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    location = resolve(None, None, need_dataset=True, start=deep)
    assert location == Location(str(tmp_path / "registry"), "models", config)
    only_dataset = resolve("elsewhere", None, need_dataset=True, start=deep)
    assert (only_dataset.root, only_dataset.dataset) == ("elsewhere", "models")


def test_a_url_root_in_the_config_is_kept_as_is(tmp_path: Path) -> None:
    write(tmp_path, "kirin.yaml", "root: s3://bucket/models\n")
    assert resolve(None, None, need_dataset=False, start=tmp_path).root == "s3://bucket/models"


def test_options_say_where_and_the_config_still_says_require_policy(tmp_path: Path) -> None:
    """Issue 12: kirin.yaml's require_policy holds even when --root and --dataset are given.

    (Before it, a kirin.yaml was not read at all then; now a broken one is an
    error, since it may be the file that requires a policy.)
    """
    write(tmp_path, "kirin.yaml", "root: elsewhere\nrequire_policy: true\n")
    location = resolve("r", "d", need_dataset=True, start=tmp_path)
    assert (location.root, location.config_file, location.require_policy) == ("r", None, True)
    write(tmp_path, "kirin.yaml", ": not yaml [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        resolve("r", "d", need_dataset=True, start=tmp_path)


@pytest.mark.parametrize(("text", "message"), [
    ("root: [unclosed", "not valid YAML"),
    ("- a\n- b\n", "expected a mapping"),
    ("root: r\ndatset: typo\n", "key datset: unknown key"),
    ("root: 3\n", "key root"),
])
def test_a_bad_config_file_is_one_error_naming_it(tmp_path: Path, text: str,
                                                  message: str) -> None:
    path = write(tmp_path, "kirin.yaml", text)
    with pytest.raises(ConfigError, match=message) as caught:
        read_config(path)
    assert str(path) in str(caught.value)


def test_an_empty_config_file_sets_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "kirin.yaml", "")
    assert read_config(path).root is None
    with pytest.raises(ConfigError, match="No registry given"):
        resolve(None, None, need_dataset=False, start=tmp_path)


def test_no_dataset_is_a_usage_error_that_says_how_to_give_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--dataset, set KIRIN_DATASET"):
        resolve("root", None, need_dataset=True, start=tmp_path)


def test_find_config_walks_up_and_stops_at_the_nearest(tmp_path: Path) -> None:
    write(tmp_path, "kirin.yaml", "")
    inner = write(tmp_path / "x", "kirin.yaml", "")
    assert find_config(tmp_path / "x") == inner
    assert find_config(tmp_path) == tmp_path / "kirin.yaml"


def test_write_config_stores_a_relative_root_and_refuses_to_overwrite(tmp_path: Path) -> None:
    path = write_config(tmp_path, Location(str(tmp_path / "registry"), "models"))
    assert read_config(path).root == "registry"
    assert resolve(None, None, need_dataset=True, start=tmp_path).root == str(
        tmp_path / "registry")
    with pytest.raises(ConfigError, match="already exists"):
        write_config(tmp_path, Location("other", "x"))


def test_bad_config_exits_2_naming_the_file(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "kirin.yaml", "root: r\nextra: 1\n")
    monkeypatch.chdir(tmp_path)
    result = invoke("log")
    assert result.code == 2
    assert f"{tmp_path / 'kirin.yaml'}: key extra: unknown key" in result.stderr


def test_env_variables_are_read_by_the_options(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert invoke("init", env={"KIRIN_ROOT": "reg", "KIRIN_DATASET": "ds"}).code == 0
    assert (tmp_path / "reg" / "datasets" / "ds" / "dataset.json").exists()


def test_init_write_config_refuses_an_existing_config_before_creating(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "kirin.yaml", "root: elsewhere\n")
    result = invoke("init", "--root", "reg", "-d", "ds", "--write-config")
    assert result.code == 2 and "already exists" in result.stderr
    assert not (tmp_path / "reg").exists()


def test_the_config_can_pin_the_trusted_policy(tmp_path: Path) -> None:
    write(tmp_path, "kirin.yaml", "root: r\ndataset: d\ntrust: " + "ab" * 32 + "\n")
    assert resolve(None, None, need_dataset=True, start=tmp_path).trust == "ab" * 32


#: kirin.yaml texts read without PyYAML (plain_config), and texts it must leave to PyYAML.
PLAIN = ["root: reg\ndataset: models\n", "# Where `kirin` finds it.\nroot: ../x/reg\n"
         "dataset: m_1\n", "root: /srv/reg\nrequire_policy: true\n\n",
         "require_policy: false\ntrust: abc123def\n", "root: ./reg\ndataset: a-b.c"]
NOT_PLAIN = ["", "# only a comment\n", "root: 'reg'\n", "root: reg # a comment\n",
             "root: reg\r\ndataset: d\r\n", "root: 2024-01-01\n", "trust: 0123abcd\n",
             "trust: 1e5\n", "root: ~\n", "root: null\n", "require_policy: yes\n",
             "require_policy: True\n", "root: Off\n", "dataset: .inf\n", "root: s3://b/x\n",
             "root: a\nroot: b\n", "other: x\n", "root:  reg\tx\n", "\ufeffroot: reg\n",
             "---\nroot: reg\n", "root: &a reg\n", "root: ..\n", "  root: reg\n",
             "root: reg\n  dataset: d\n", "root: [unclosed", "- a\n"]


@pytest.mark.parametrize("text", PLAIN + NOT_PLAIN)
def test_a_plain_config_file_is_read_as_yaml_reads_it(text: str) -> None:
    """Issue 16: a plain kirin.yaml is read without importing PyYAML; anything else is
    left to PyYAML (None)."""
    import yaml

    found = plain_config(text)
    assert (found is not None) == (text in PLAIN)
    if found is not None:
        assert found == yaml.safe_load(text)
        assert [type(v) for v in found.values()] == [type(v) for v in
                                                     yaml.safe_load(text).values()]


_WORD = st.text(st.sampled_from("aAzZ09_./-:~#'\" tTrRuUeEfFnNoOlLyY"), max_size=12)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.sampled_from(["root", "dataset", "require_policy", "trust",
                                           "trust_root", "#", ""]), _WORD), max_size=4))
def test_plain_config_never_disagrees_with_yaml(lines: list[tuple[str, str]]) -> None:
    """Whatever it accepts, PyYAML reads the same (generated lines of keys and values)."""
    import yaml

    text = "".join(f"{key}: {value}\n" if key not in ("#", "") else f"{key}{value}\n"
                   for key, value in lines)
    found = plain_config(text)
    if found is not None:
        expected = yaml.safe_load(text)
        assert found == expected and all(type(found[k]) is type(expected[k]) for k in found)


def test_reading_a_plain_config_file_does_not_load_yaml(tmp_path: Path) -> None:
    """In a fresh process, as the command line reads it."""
    import subprocess
    import sys

    path = write(tmp_path, "kirin.yaml", "root: reg\ndataset: models\n")
    code = ("import sys; from pathlib import Path; from kirin.cli.config import read_config;"
            "c = read_config(Path(sys.argv[1])); print(c.root, c.dataset, 'yaml' in "
            "sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, check=True)
    assert done.stdout.split() == ["reg", "models", "False"]
