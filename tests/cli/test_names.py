"""One resolver of commit names: Python and the CLI take the same hashes, prefixes and tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from kirin import Dataset
from kirin.errors import AmbiguousRefError, CommitNotFoundError

from cli_helpers import invoke


@pytest.fixture
def ds(tmp_path: Path) -> Dataset:
    """Three commits: 'baseline' on the first, 'production' on the first and third."""
    dataset = Dataset(tmp_path / "reg", "models")
    for i, tags in enumerate([["baseline", "production"], [], ["production"]]):
        source = tmp_path / f"m{i}.bin"
        source.write_bytes(f"model {i}".encode())
        dataset.commit(f"commit {i}", add_files={"model.bin": str(source)}, tags=tags)
    return dataset


def hashes(ds: Dataset) -> list[str]:
    return [c.hash for c in reversed(ds.history())]


def test_a_tag_names_its_newest_commit_everywhere(ds: Dataset) -> None:
    first, _, third = hashes(ds)
    assert ds.resolve("production").hash == third
    assert ds.get_commit("baseline").hash == first  # type: ignore[union-attr]
    assert ds.compare_commits("baseline", "production")["files_diff"]["modified"] == [
        "model.bin"]
    assert ds.checkout("tag:baseline").hash == first
    assert ds.current_commit.hash == first  # type: ignore[union-attr]


def test_hashes_and_prefixes_still_work_in_any_case(ds: Dataset) -> None:
    first = hashes(ds)[0]
    assert ds.resolve(first.upper()).hash == first
    assert ds.checkout(f"  {first[:10]}  ").hash == first


def test_a_word_both_tag_and_prefix_of_another_commit_is_ambiguous(tmp_path: Path) -> None:
    """A tag spelt like a hash prefix of a different commit is refused, naming both; the
    tag: form and a longer prefix each pick one."""
    dataset = Dataset(tmp_path / "reg", "models")
    source = tmp_path / "a.bin"
    source.write_bytes(b"a")
    first = dataset.commit("first", add_files=[str(source)])
    word = first[:8]
    source.write_bytes(b"b")
    second = dataset.commit("second", add_files=[str(source)], tags=[word])
    assert not second.startswith(word)  # two hashes sharing 8 hex digits: 1 in 4 billion
    with pytest.raises(AmbiguousRefError, match="both a tag") as caught:
        dataset.resolve(word)
    assert set(caught.value.candidates) == {first, second}
    with pytest.raises(AmbiguousRefError):
        dataset.get_commit(word)  # ambiguity is never a silent None
    assert dataset.resolve(f"tag:{word}").hash == second
    assert dataset.resolve(first[:12]).hash == first


def test_nothing_matching_is_not_found(ds: Dataset) -> None:
    assert ds.get_commit("staging") is None
    with pytest.raises(CommitNotFoundError, match="No commit hash or tag matches 'staging'"):
        ds.resolve("staging")
    with pytest.raises(CommitNotFoundError, match="No commit is tagged"):
        ds.resolve("tag:staging")


def test_the_cli_resolves_the_same_way(ds: Dataset, tmp_path: Path) -> None:
    third = hashes(ds)[2]
    done = invoke("show", "production", "--root", tmp_path / "reg", "--dataset", "models",
                  "--format", "json")
    assert done.code == 0, done.stderr
    assert third in done.stdout
