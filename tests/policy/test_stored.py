"""Stored policies known by hash (:mod:`kirin.policy.stored`): the same policy, never less checked.

Each test gets its own cache folder (``KIRIN_CACHE_DIR``, set by conftest).
What must hold: a text is marked only after a full check and only if it is
its own canonical form; a marked text builds the very policy the full check
builds; a cache others may write to, or a mark for bytes that do not dump back
to themselves, is not trusted; nothing about a cache ever fails a command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kirin import Dataset
from kirin.errors import PolicyError
from kirin.policy import load_policy_text
from kirin.policy import stored as stored_policies
from kirin.policy.stored import checked_folder, fingerprint, load_stored_policy

GOOD = """\
version: 1
metadata:
  schema: {type: object, properties: {accuracy: {type: number}}, required: [accuracy]}
tags:
  allowed: [dev, production]
  patterns: ['v\\d+']
promotion:
  production: {when: "accuracy >= 0.9"}
"""


def _text() -> str:
    return load_policy_text(GOOD).stored_text()


def _marks() -> list[str]:
    folder = checked_folder()
    assert folder is not None
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_text_is_marked_after_its_full_check_and_then_built_from_its_data(
        monkeypatch: pytest.MonkeyPatch) -> None:
    text = _text()
    first = load_stored_policy(text, source="stored policy #1")
    assert _marks() == [first.hash]

    from kirin.policy import loader

    def no_full_check(*args: object, **kwargs: object) -> None:
        raise AssertionError("a marked text went the full way")

    monkeypatch.setattr(loader, "load_policy_text", no_full_check)
    again = load_stored_policy(text, source="stored policy #1")
    assert again == first and again.hash == first.hash and again is not first


def test_an_invalid_stored_text_is_refused_and_never_marked() -> None:
    bad = json.dumps({"version": 1, "tags": {"patterns": ["(a+)+$"]}}, separators=(",", ":"),
                     sort_keys=True)
    for _ in range(2):
        with pytest.raises(PolicyError, match="stored policy #3"):
            load_stored_policy(bad, source="stored policy #3")
    assert _marks() == []


def test_a_text_that_is_not_its_own_canonical_form_is_checked_each_time() -> None:
    text = json.dumps(json.loads(_text()), indent=1)  # valid, but not the stored bytes
    assert load_stored_policy(text, source="s") == load_policy_text(GOOD)
    assert _marks() == []


def test_a_planted_mark_for_bytes_that_do_not_dump_back_goes_the_full_way() -> None:
    """A mark only says "these bytes were checked"; bytes the values would not dump back
    to exactly (an unknown key, a duplicate key, a wrong type) are checked in full."""
    folder = checked_folder()
    assert folder is not None
    folder.mkdir(parents=True)
    for text, error in [('{"version":1,"tags":{"allowed":["dev"]},"extra":1}', "extra"),
                        ('{"version":1,"version":1}', "duplicate"),
                        ('{"tags":{"allowed":"dev"},"version":1}', "allowed"),
                        ('{"version":2}', "version"),
                        ('{"description":NaN,"version":1}', "NaN"),
                        ('[1]', "mapping|object|dict")]:
        import hashlib

        (folder / hashlib.sha256(text.encode()).hexdigest()).touch()
        with pytest.raises(PolicyError, match=error):
            load_stored_policy(text, source="planted")


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX ownership and modes")
def test_a_cache_others_may_write_to_is_not_used(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared-cache"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("KIRIN_CACHE_DIR", str(shared))
    assert checked_folder() is None
    load_stored_policy(_text(), source="s")
    assert list(shared.iterdir()) == []
    inside = tmp_path / "open" / "cache"
    (tmp_path / "open").mkdir()
    (tmp_path / "open").chmod(0o777)  # others could replace what we make in it
    monkeypatch.setenv("KIRIN_CACHE_DIR", str(inside))
    assert checked_folder() is None
    (tmp_path / "open").chmod(0o1777)  # as /tmp: sticky
    assert checked_folder() is not None


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0,
                    reason="needs root to give a folder to another user")
def test_a_cache_owned_by_another_user_is_not_used(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    monkeypatch.setenv("KIRIN_CACHE_DIR", str(theirs))
    assert checked_folder() is None


def test_an_empty_setting_turns_the_cache_off(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIRIN_CACHE_DIR", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert checked_folder() is None
    load_stored_policy(_text(), source="s")
    assert list(tmp_path.iterdir()) == []


def test_without_a_setting_the_users_cache_folder_is_used(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KIRIN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    folder = checked_folder()
    assert folder is not None and folder.is_relative_to(tmp_path / "xdg" / "kirin")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the spec: absolute only
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert stored_policies.cache_root() == tmp_path / "home" / ".cache" / "kirin"


def test_an_unwritable_cache_fails_nothing(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("KIRIN_CACHE_DIR", str(blocker / "cache"))
    assert load_stored_policy(_text(), source="s") == load_policy_text(GOOD)


def test_the_fingerprint_follows_the_checking_code_and_libraries(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    (package / "sub" / "b.py").write_text("y = 1\n")
    (package / "notes.txt").write_text("not code")
    first = fingerprint(package, ("json",))
    assert fingerprint(package, ("json",)) == first
    fingerprint.cache_clear()
    (package / "notes.txt").write_text("still not code")
    assert fingerprint(package, ("json",)) == first
    fingerprint.cache_clear()
    (package / "sub" / "b.py").write_text("y = 22\n")
    edited = fingerprint(package, ("json",))
    assert edited != first
    assert fingerprint(package, ("json", "no_such_module_here")) != edited


#: Runs ``kirin validate`` as the script does; prints the report (JSON) and, on stderr,
#: whether the policy model's libraries were imported.
VALIDATE = """
import atexit, sys
atexit.register(lambda: print("model:" + ",".join(
    m for m in ("pydantic", "yaml", "kirin.policy.model", "kirin.policy.loader")
    if m in sys.modules), file=sys.stderr))
from kirin.cli import main
main()
"""


def test_validate_gives_the_same_report_from_a_cold_and_a_warm_cache(tmp_path: Path) -> None:
    """The second ``kirin validate`` skips the model and gives the very same report, for
    an admitted and a refused proposal."""
    (tmp_path / "policy.yaml").write_text(GOOD)
    (tmp_path / "model.pt").write_bytes(b"weights")
    ds = Dataset(tmp_path / "reg", "models")
    ds.set_policy(tmp_path / "policy.yaml")
    ds.commit("baseline", add_files=[str(tmp_path / "model.pt")], metadata={"accuracy": 0.5},
              tags=["dev"])
    (tmp_path / "kirin.yaml").write_text("root: reg\ndataset: models\n")
    env = {**os.environ, "KIRIN_CACHE_DIR": str(tmp_path / "cache")}
    for metadata, tags in [('{"accuracy": 0.95}', ["production"]),
                           ('{"accuracy": 0.5}', ["production", "v2", "nope"]),
                           ('{"accuracy": "high"}', ["dev"])]:
        runs = []
        for _ in range(2):
            done = subprocess.run(
                [sys.executable, "-c", VALIDATE, "validate", "-m", "a model", "model.pt",
                 "--metadata", metadata, *(a for t in tags for a in ("-t", t)),
                 "--format", "json"],
                cwd=tmp_path, capture_output=True, text=True, env=env, check=False)
            runs.append(done)
        assert runs[0].returncode == runs[1].returncode
        assert json.loads(runs[0].stdout) == json.loads(runs[1].stdout)
        assert runs[1].stderr.strip().splitlines()[-1] == "model:"
    assert runs[0].returncode != 0  # the refused ones were judged, not waved through
