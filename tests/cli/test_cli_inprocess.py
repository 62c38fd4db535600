"""The same commands run in-process (typer's runner): failure paths and details, quickly."""

from __future__ import annotations

from pathlib import Path

import pytest

from kirin import Catalog

from cli_helpers import Registry, build_registry, invoke, write


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return build_registry(tmp_path)


@pytest.mark.parametrize(("args", "code", "message"), [
    (["missing.pt", "-m", "A good message"], 3, "File not found: missing.pt"),
    (["-m", "A good message"], 2, "Nothing to commit"),
    (["--metadata", "{oops", "x.pt", "-m", "A good message"], 2, "not valid JSON"),
    (["--metadata", "@nowhere.json", "x.pt", "-m", "A good message"], 2, "file not found"),
    (["--metadata", "[1, 2]", "x.pt", "-m", "A good message"], 2, "JSON object"),
    (["--remove", "nothing-here.txt", "-m", "A good message"], 3, "nothing-here.txt"),
    (["x.pt", "--remove", "x.pt", "-m", "A good message"], 2, "both added and removed"),
    (["../x.pt=x.pt", "-m", "A good message"], 2, "Invalid file name"),
    (["x.pt", "-m", "A good message", "-t", " spaced "], 2, "surrounding spaces"),
    (["folder", "-m", "A good message"], 3, "it is a folder"),
])
def test_commit_failures_map_to_exit_codes(reg: Registry, monkeypatch: pytest.MonkeyPatch,
                                           args: list[str], code: int, message: str) -> None:
    monkeypatch.chdir(reg.work)
    write(reg.work, "x.pt", b"x")
    (reg.work / "folder").mkdir()
    result = invoke("commit", *args, *reg.args())
    assert result.code == code, result.stderr
    assert message in result.stderr
    assert result.stderr.startswith("kirin: error: ")
    assert len(reg.open().history()) == 3


def test_commit_dry_run_writes_nothing_and_reports_like_validate(reg: Registry) -> None:
    model = write(reg.work, "m.pt", b"m")
    result = invoke("commit", model, "-m", "Candidate", "--dry-run", "--metadata",
                    '{"framework": "pytorch"}', "-t", "staging", *reg.args())
    assert result.code == 1  # staging needs accuracy >= 0.85
    assert "promotion.staging.when" in result.stdout
    ok = invoke("commit", model, "-m", "Candidate model", "--dry-run", "--metadata",
                '{"framework": "pytorch"}', *reg.args())
    assert ok.code == 0 and "would be admitted" in ok.stdout
    assert len(reg.open().history()) == 3


def test_name_equals_path_chooses_the_stored_name(reg: Registry,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(reg.work)
    write(reg.work, "a=b.pt", b"literal")  # an existing file is always a path
    write(reg.work, "weights.bin", b"w")
    result = invoke("commit", "a=b.pt", "nested/w.pt=weights.bin", "-m", "Odd names on purpose",
                    "--metadata", '{"framework": "pytorch"}', *reg.args())
    assert result.code == 0, result.stderr
    head = reg.open().current_commit
    assert head is not None and head.has_file("a=b.pt") and head.has_file("nested/w.pt")


def test_promote_requires_a_tag_and_keeps_files_without_uploading(reg: Registry) -> None:
    assert invoke("promote", "staging", *reg.args()).code == 2  # --tag is required
    result = invoke("promote", "v1.0", "-t", "validated", *reg.args())
    assert result.code == 0, result.stderr
    dataset = reg.open()
    head, baseline = dataset.current_commit, dataset.get_commit(reg.baseline)
    assert head is not None and baseline is not None
    # the baseline's files, not the head's
    assert {n: f.hash for n, f in head.files.items()} == {
        n: f.hash for n, f in baseline.files.items()}
    assert head.metadata == baseline.metadata and list(head.tags) == ["validated"]


def test_promote_dry_run_reports_without_writing(reg: Registry) -> None:
    result = invoke("promote", "staging", "-t", "production", "--dry-run", "-f", "github",
                    *reg.args())
    assert result.code == 1
    assert result.stdout.count("::error ") == 1 and "validated" in result.stdout
    assert len(reg.open().history()) == 3


def test_a_tag_that_is_also_a_hash_prefix_must_be_disambiguated(reg: Registry) -> None:
    prefix = reg.baseline[:4]
    dataset = reg.open()
    dataset.set_policy(None)
    dataset.promote(reg.dev, [prefix])  # a tag spelt like the baseline's hash prefix
    ambiguous = invoke("show", prefix, *reg.args())
    assert ambiguous.code == 3 and f"tag:{prefix}" in ambiguous.stderr
    assert invoke("show", f"tag:{prefix}", *reg.args()).code == 0
    assert reg.baseline in invoke("show", reg.baseline[:12], *reg.args()).stdout


def test_get_a_folder_and_all_files(reg: Registry, tmp_path: Path) -> None:
    dataset = reg.open()
    dataset.set_policy(None)
    write(reg.work, "a.txt", "a")
    dataset.commit("Nested files", add_files={"data/a.txt": reg.work / "a.txt",
                                              "data/sub/b.txt": reg.work / "a.txt"})
    out = tmp_path / "out"
    assert invoke("get", "dev", "-o", out, *reg.args()).code == 0  # no names: all files
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.pt",
                                                      "model_weights.pt"]
    folder = tmp_path / "folder"
    assert invoke("get", dataset.history()[0].hash, "data", "-o", folder, *reg.args()).code == 0
    assert (folder / "data" / "sub" / "b.txt").read_text() == "a"


def test_gc_and_catalog_need_only_a_root(reg: Registry) -> None:
    Catalog(reg.root).create_dataset("empty", "Nothing yet")
    listed = invoke("catalog", "list", "--root", reg.root, "-f", "json").json()
    assert [d["name"] for d in listed["datasets"]] == ["empty", "models"]


def test_log_limit_and_empty_results(reg: Registry) -> None:
    assert len(invoke("log", "-n", "1", "-f", "json", *reg.args()).json()["commits"]) == 1
    none = invoke("log", "--where", "accuracy > 0.99", *reg.args())
    assert none.code == 0 and "No commits match" in none.stdout


def test_user_text_is_never_rich_markup(reg: Registry) -> None:
    dataset = reg.open()
    dataset.set_policy(None)
    write(reg.work, "x.txt", "x")
    dataset.commit("[bold red]not markup[/] and [link=x]", add_files=[reg.work / "x.txt"])
    result = invoke("log", *reg.args())
    assert "[bold red]not markup[/]" in result.stdout


def test_an_unexpected_error_is_an_internal_error_with_exit_code_5(
        reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr("kirin.dataset.Dataset.find_commits", boom)
    result = invoke("log", *reg.args())
    assert result.code == 5
    assert "internal error: ZeroDivisionError: boom" in result.stderr
    assert "--traceback" in result.stderr


def test_storage_errors_exit_4(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(*args: object, **kwargs: object) -> None:
        raise PermissionError("Access Denied")

    monkeypatch.setattr("kirin.dataset.Dataset.find_commits", unreachable)
    result = invoke("log", *reg.args())
    assert result.code == 4 and "Access Denied" in result.stderr
