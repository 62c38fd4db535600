"""Moving through and querying the history: checkout, history, find_commits,
compare_commits, info, and the Commit values returned.

Part of the Dataset API tests (split by concern: ``test_dataset_*.py``). Every test
that touches storage takes ``registry_root`` (through ``ds``) and so runs once per
backend in ``roots.BACKENDS``; ``storage_free`` ones run on memory only.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import kirin.dataset
from kirin import Commit, Dataset
from kirin.errors import (
    AmbiguousRefError,
    CommitNotFoundError,
    NotLatestCommitError,
    StorageUnavailableError,
)

from dataset_helpers import Source, commit_n
from roots import RegistryRoot


class TestCheckout:
    """checkout(ref): pin a commit by hash or unique prefix; no ref follows the newest."""

    def test_full_hash_and_unique_prefix(self, ds: Dataset, src: Source) -> None:
        """A full hash, a unique prefix, or an upper-case/padded hash all check out."""
        first, second = commit_n(ds, src, 2)
        for ref in (first, first[:12], first.upper(), f"  {first[:10]} "):
            assert ds.checkout(ref).hash == first
            assert ds.current_commit.hash == first  # type: ignore[union-attr]
            assert ds.read_file("f.txt") == "v0"
        assert ds.checkout(second[:7]).hash == second

    @pytest.mark.parametrize("ref", ["0" * 64, "deadbeef"])
    @pytest.mark.storage_free
    def test_unknown_ref(self, ds: Dataset, src: Source, ref: str) -> None:
        """An unknown hash raises CommitNotFoundError (a ValueError) naming the dataset."""
        digest = commit_n(ds, src, 1)[0]
        if digest.startswith(ref[:8]):
            pytest.skip("the random hash happens to start with the probe")
        with pytest.raises(CommitNotFoundError, match="'ds'") as info:
            ds.checkout(ref)
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, LookupError)
        assert info.value.dataset == "ds"
        assert ds.current_commit.hash == digest  # type: ignore[union-attr]

    @pytest.mark.parametrize("ref", ["", "xyz", "g123", "abc-def", "HEAD", "../x"])
    @pytest.mark.storage_free
    def test_non_hex_ref(self, ds: Dataset, src: Source, ref: str) -> None:
        """A ref that is neither a hash nor a tag raises CommitNotFoundError saying so."""
        commit_n(ds, src, 1)
        with pytest.raises(CommitNotFoundError, match=r"must be a hash|No commit hash or tag"):
            ds.checkout(ref)

    def test_ambiguous_prefix(self, ds: Dataset, src: Source) -> None:
        """A prefix shared by several commits raises AmbiguousRefError listing all of them."""
        hashes = commit_n(ds, src, 17)  # 17 hashes, 16 first digits: two must share one
        by_first: dict[str, list[str]] = {}
        for h in hashes:
            by_first.setdefault(h[0], []).append(h)
        prefix, shared = next((k, v) for k, v in sorted(by_first.items()) if len(v) > 1)
        with pytest.raises(AmbiguousRefError) as info:
            ds.checkout(prefix)
        err = info.value
        assert isinstance(err, CommitNotFoundError)
        assert isinstance(err, ValueError)
        assert sorted(err.candidates) == sorted(shared)
        for candidate in shared:
            assert candidate[:16] in str(err)
        assert "ambiguous" in str(err)

    def test_no_argument_returns_to_latest(self, ds: Dataset, src: Source) -> None:
        """checkout() with no argument returns the newest commit and follows it."""
        first, second = commit_n(ds, src, 2)
        ds.checkout(first)
        assert ds.checkout().hash == second
        assert ds.current_commit.hash == second  # type: ignore[union-attr]

    def test_follows_commits_of_another_instance(self, registry_root: RegistryRoot,
                                                 src: Source) -> None:
        """An unpinned dataset sees commits that another Dataset instance makes."""
        reader, writer = registry_root.dataset(), registry_root.dataset()
        commit_n(writer, src, 1)
        first = reader.checkout().hash
        newer = writer.commit("from elsewhere", add_files={"g.txt": src("g")})
        assert reader.current_commit.hash == newer  # type: ignore[union-attr]
        assert reader.list_files() == ["f.txt", "g.txt"]
        reader.checkout(first)
        writer.commit("another", add_files={"h.txt": src("h")})
        assert reader.current_commit.hash == first  # type: ignore[union-attr]

    def test_checkout_on_empty_dataset(self, ds: Dataset) -> None:
        """checkout() on a dataset without commits raises CommitNotFoundError."""
        with pytest.raises(CommitNotFoundError, match="no commits"):
            ds.checkout()
        with pytest.raises(CommitNotFoundError):
            ds.checkout("abc")

    def test_commit_after_old_checkout_is_refused(self, ds: Dataset, src: Source,
                                                  registry_root: RegistryRoot) -> None:
        """commit() on an old checkout raises a ValueError saying it is not the latest and
        that checkout() returns to it; nothing is written."""
        first, second = commit_n(ds, src, 2)
        ds.checkout(first)
        before = registry_root.objects()
        with pytest.raises(NotLatestCommitError) as info:
            ds.commit("on old", add_files={"x": src("x")})
        assert isinstance(info.value, ValueError)
        message = str(info.value)
        assert "not the latest" in message
        assert "checkout()" in message
        assert (info.value.checked_out, info.value.latest) == (first, second)
        assert registry_root.objects() == before

    def test_commit_after_another_writer_moved_on(self, registry_root: RegistryRoot,
                                                  src: Source) -> None:
        """A pinned checkout that another writer has overtaken cannot be committed on."""
        mine, theirs = registry_root.dataset(), registry_root.dataset()
        head = commit_n(mine, src, 1)[0]
        mine.checkout(head)
        theirs.commit("theirs", add_files={"t": src("t")})
        with pytest.raises(NotLatestCommitError):
            mine.commit("mine", add_files={"m": src("m")})

    def test_commit_on_explicit_latest_checkout_is_allowed(self, ds: Dataset,
                                                           src: Source) -> None:
        """Checking out the newest commit by hash still allows committing."""
        head = commit_n(ds, src, 2)[-1]
        ds.checkout(head)
        new = ds.commit("on top", add_files={"x": src("x")})
        assert ds.get_commit(new).parent_hash == head  # type: ignore[union-attr]

    def test_after_commit_the_dataset_follows_latest(self, registry_root: RegistryRoot,
                                                     src: Source) -> None:
        """After checkout() and a commit, the dataset follows newer commits again."""
        ds, other = registry_root.dataset(), registry_root.dataset()
        first, _ = commit_n(ds, src, 2)
        ds.checkout(first)
        ds.checkout()
        mine = ds.commit("mine", add_files={"x": src("x")})
        assert ds.current_commit.hash == mine  # type: ignore[union-attr]
        theirs = other.commit("theirs", add_files={"y": src("y")})
        assert ds.current_commit.hash == theirs  # type: ignore[union-attr]


# ---------------------------------------------------------------------------


class TestHistory:
    """history, get_commit, get_commits."""

    def test_history_newest_first(self, ds: Dataset, src: Source) -> None:
        """history() lists every commit newest first; limit keeps the newest ones."""
        hashes = commit_n(ds, src, 5)
        assert [c.hash for c in ds.history()] == hashes[::-1]
        assert [c.hash for c in ds.history(limit=2)] == hashes[:2:-1]
        assert [c.hash for c in ds.history(limit=99)] == hashes[::-1]
        assert ds.history(limit=0) == []
        assert [c.hash for c in ds.get_commits()] == hashes[::-1]

    def test_history_is_independent_of_checkout(self, ds: Dataset, src: Source) -> None:
        """history() lists every commit even when an old one is checked out."""
        hashes = commit_n(ds, src, 3)
        ds.checkout(hashes[0])
        assert len(ds.history()) == 3

    def test_history_of_another_instance(self, registry_root: RegistryRoot,
                                         src: Source) -> None:
        """A fresh instance reads the same history from storage, equal commit by commit."""
        ds = registry_root.dataset()
        commit_n(ds, src, 3, metadata={"a": 1}, tags=["t"])
        fresh = registry_root.dataset().history()
        assert [c.to_dict() for c in fresh] == [c.to_dict() for c in ds.history()]

    def test_get_commit(self, ds: Dataset, src: Source) -> None:
        """get_commit takes a full hash or unique prefix; unknown or non-hex refs give None."""
        first, _ = commit_n(ds, src, 2)
        assert ds.get_commit(first).hash == first  # type: ignore[union-attr]
        assert ds.get_commit(first[:10]).hash == first  # type: ignore[union-attr]
        missing = "f" * 64 if not first.startswith("f") else "e" * 64
        assert ds.get_commit(missing) is None
        assert ds.get_commit("not-hex") is None

    def test_get_commit_ambiguous(self, ds: Dataset, src: Source) -> None:
        """get_commit with an ambiguous prefix raises AmbiguousRefError, not None."""
        hashes = commit_n(ds, src, 17)
        firsts = [h[0] for h in hashes]
        prefix = next(c for c in firsts if firsts.count(c) > 1)
        with pytest.raises(AmbiguousRefError):
            ds.get_commit(prefix)


class TestFindCommits:
    """find_commits(tags=..., metadata_filter=..., limit=...)."""

    @pytest.fixture
    def hashes(self, ds: Dataset, src: Source) -> list[str]:
        specs = [
            ({"acc": 0.80, "fw": "pytorch"}, ["baseline", "v1.0"]),
            ({"acc": 0.92, "fw": "pytorch"}, ["v2.0", "production"]),
            ({"acc": 0.95, "fw": "jax"}, ["dev"]),
            ({"acc": 0.91, "fw": "pytorch"}, ["v2.1", "production"]),
            ({}, []),
        ]
        return [ds.commit(f"c{i}", add_files={"m": src("m", str(i))}, metadata=meta, tags=tags)
                for i, (meta, tags) in enumerate(specs)]

    def test_by_tag_newest_first(self, ds: Dataset, hashes: list[str]) -> None:
        """Commits carrying the tag are returned newest first."""
        assert [c.hash for c in ds.find_commits(tags=["production"])] == [hashes[3], hashes[1]]

    def test_all_tags_must_match(self, ds: Dataset, hashes: list[str]) -> None:
        """With several tags, only commits carrying every one of them match."""
        assert [c.hash for c in ds.find_commits(tags=["v2.0", "production"])] == [hashes[1]]
        assert ds.find_commits(tags=["v2.0", "dev"]) == []
        assert ds.find_commits(tags=["nope"]) == []

    def test_single_tag_string(self, ds: Dataset, hashes: list[str]) -> None:
        """A single tag given as a string is one tag, not a sequence of characters."""
        assert [c.hash for c in ds.find_commits(tags="production")] == [hashes[3], hashes[1]]

    def test_metadata_filter(self, ds: Dataset, hashes: list[str]) -> None:
        """metadata_filter receives each commit's metadata; matches come newest first."""
        found = ds.find_commits(metadata_filter=lambda m: m.get("acc", 0) > 0.9)
        assert [c.hash for c in found] == [hashes[3], hashes[2], hashes[1]]

    def test_tags_and_filter_and_limit(self, ds: Dataset, hashes: list[str]) -> None:
        """Tags and filter combine; limit caps the number returned (newest kept)."""
        both = ds.find_commits(tags=["production"],
                               metadata_filter=lambda m: m["fw"] == "pytorch", limit=1)
        assert [c.hash for c in both] == [hashes[3]]
        assert [c.hash for c in ds.find_commits(limit=2)] == [hashes[4], hashes[3]]
        assert ds.find_commits(limit=0) == []

    def test_no_criteria_returns_everything(self, ds: Dataset, hashes: list[str]) -> None:
        """Without criteria every commit is returned, newest first."""
        assert [c.hash for c in ds.find_commits()] == hashes[::-1]

    def test_filter_cannot_change_metadata(self, ds: Dataset, hashes: list[str]) -> None:
        """A filter that tries to modify the metadata gets a TypeError; nothing changes."""
        def meddle(m: Any) -> bool:
            m["acc"] = 1.0
            return True

        with pytest.raises(TypeError):
            ds.find_commits(metadata_filter=meddle)
        assert ds.get_commit(hashes[0]).metadata["acc"] == 0.80  # type: ignore[union-attr]


class TestCompareCommits:
    """compare_commits(a, b): metadata, tags and files differences."""

    def test_diff(self, ds: Dataset, src: Source) -> None:
        """Added, removed and changed keys, tags and files are reported from a to b."""
        a = ds.commit("a", add_files={"keep": src("k"), "gone": src("g"), "mod": src("m", "1")},
                      metadata={"acc": 0.8, "hp": {"lr": 0.1, "bs": 32}, "old": 1, "flag": 1},
                      tags=["baseline", "v1"])
        b = ds.commit("b", add_files={"mod": src("m", "2"), "new": src("n")},
                      remove_files=["gone"],
                      metadata={"acc": 0.9, "hp": {"lr": 0.01, "bs": 32}, "extra": [1],
                                "flag": True},
                      tags=["v1", "production"])
        diff = ds.compare_commits(a[:10], b[:10])
        assert diff["commit1"] == {"hash": a[:8], "message": "a"}
        assert diff["commit2"] == {"hash": b[:8], "message": "b"}
        assert diff["metadata_diff"] == {
            "added": {"extra": [1]},
            "removed": {"old": 1},
            "changed": {
                "acc": {"old": 0.8, "new": 0.9},
                "hp": {"old": {"lr": 0.1, "bs": 32}, "new": {"lr": 0.01, "bs": 32}},
                "flag": {"old": 1, "new": True},
            },
        }
        assert diff["metadata_diff_paths"] == {
            "added": {"extra": [1]},
            "removed": {"old": 1},
            "changed": {"acc": {"old": 0.8, "new": 0.9},
                        "hp.lr": {"old": 0.1, "new": 0.01},
                        "flag": {"old": 1, "new": True}},
        }
        assert diff["tags_diff"] == {"added": ["production"], "removed": ["baseline"]}
        assert diff["files_diff"] == {"added": ["new"], "removed": ["gone"],
                                      "modified": ["mod"]}
        json.dumps(diff)

    def test_same_commit_has_no_differences(self, ds: Dataset, src: Source) -> None:
        """Comparing a commit with itself reports nothing."""
        digest = ds.commit("a", add_files=[src("a")], metadata={"x": {"y": 1}}, tags=["t"])
        diff = ds.compare_commits(digest, digest)
        for key in ("metadata_diff", "metadata_diff_paths"):
            assert diff[key] == {"added": {}, "removed": {}, "changed": {}}
        assert diff["tags_diff"] == {"added": [], "removed": []}
        assert diff["files_diff"] == {"added": [], "removed": [], "modified": []}

    def test_unknown_ref(self, ds: Dataset, src: Source) -> None:
        """An unknown ref raises CommitNotFoundError."""
        digest = commit_n(ds, src, 1)[0]
        with pytest.raises(CommitNotFoundError):
            ds.compare_commits(digest, "not-a-hash")


class TestInfo:
    """is_empty, get_info, to_dict, str and repr."""

    def test_is_empty(self, ds: Dataset, src: Source) -> None:
        """is_empty is True until the first commit."""
        assert ds.is_empty()
        commit_n(ds, src, 1)
        assert not ds.is_empty()

    def test_get_info(self, registry_root: RegistryRoot, src: Source) -> None:
        """get_info summarises name, description, root, counts and current vs latest commit."""
        ds = registry_root.dataset(description="desc")
        assert ds.get_info() == {
            "name": "ds", "description": "desc", "root_dir": registry_root.url,
            "commit_count": 0, "current_commit": None, "latest_commit": None,
            "file_count": 0, "total_size": 0,
            # the original Kirin's keys (tests/test_compat.py checks their values)
            "dataset_name": "ds", "latest_message": None, "latest_timestamp": None,
            "recent_commits": []}
        first = ds.commit("a", add_files={"a": src("a", b"12345")})
        second = ds.commit("b", add_files={"b": src("b", b"123")})
        ds.checkout(first)
        info = ds.get_info()
        assert (info["commit_count"], info["current_commit"], info["latest_commit"]) == (
            2, first, second)
        assert (info["file_count"], info["total_size"]) == (1, 5)
        assert ds.to_dict() == info
        json.dumps(info)

    def test_str_and_repr(self, registry_root: RegistryRoot, src: Source) -> None:
        """str shows name, commit count and current short hash; repr shows the arguments."""
        ds = registry_root.dataset(description="d")
        assert str(ds) == "Dataset(name='ds', commits=0, current=None)"
        digest = commit_n(ds, src, 1)[0]
        assert str(ds) == f"Dataset(name='ds', commits=1, current={digest[:8]})"
        assert repr(ds) == (f"Dataset(name='ds', description='d', "
                            f"root_dir={registry_root.url!r})")

    def test_repr_reads_the_stored_description_and_never_fails(
            self, registry_root: RegistryRoot, monkeypatch: pytest.MonkeyPatch) -> None:
        """repr of a dataset opened without a description shows the stored one (read once);
        with the storage unreachable it still returns, showing what is known."""
        registry_root.catalog().create_dataset("ds", description="stored")
        ds = registry_root.dataset()
        assert "description='stored'" in repr(ds)
        fresh = registry_root.dataset()

        def unreachable(path: str) -> bytes:
            raise StorageUnavailableError("not reachable", url=registry_root.url)
        monkeypatch.setattr(fresh._store, "read", unreachable)
        assert repr(fresh) == f"Dataset(name='ds', description='', root_dir={registry_root.url!r})"


# ---------------------------------------------------------------------------
class TestCommitObjects:
    """Commit values returned by the registry."""

    @pytest.fixture
    def commit(self, ds: Dataset, src: Source) -> Commit:
        ds.commit("m", add_files={"a.txt": src("a")},
                  metadata={"acc": 0.9, "hp": {"lr": 0.1}, "xs": [1, 2]}, tags=["v1", "prod"])
        assert ds.current_commit is not None
        return ds.current_commit

    @pytest.mark.storage_free
    def test_frozen(self, commit: Commit) -> None:
        """Setting any attribute of a commit raises FrozenInstanceError."""
        for attr in ("message", "metadata", "tags", "hash", "parent_hash", "timestamp",
                     "author", "files"):
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(commit, attr, None)

    @pytest.mark.parametrize(
        "mutate",
        [
            pytest.param(lambda c: c.metadata.__setitem__("acc", 1.0), id="metadata-set"),
            pytest.param(lambda c: c.metadata.pop("acc"), id="metadata-pop"),
            pytest.param(lambda c: c.metadata.update(x=1), id="metadata-update"),
            pytest.param(lambda c: c.metadata["hp"].__setitem__("lr", 1), id="nested-dict"),
            pytest.param(lambda c: c.metadata["xs"].append(3), id="nested-list"),
            pytest.param(lambda c: c.tags.append("x"), id="tags-append"),
            pytest.param(lambda c: c.tags.__setitem__(0, "x"), id="tags-set"),
            pytest.param(lambda c: c.tags.remove("v1"), id="tags-remove"),
            pytest.param(lambda c: c.files.pop("a.txt"), id="files-pop"),
            pytest.param(lambda c: c.files.__setitem__("b", None), id="files-set"),
        ],
    )
    @pytest.mark.storage_free
    def test_contents_read_only(self, commit: Commit, mutate: Callable[[Commit], Any]) -> None:
        """metadata, tags and files (also nested values) refuse changes with TypeError."""
        with pytest.raises(TypeError):
            mutate(commit)
        assert commit.metadata == {"acc": 0.9, "hp": {"lr": 0.1}, "xs": [1, 2]}
        assert commit.tags == ["v1", "prod"]
        assert list(commit.files) == ["a.txt"]

    @pytest.mark.storage_free
    def test_behaves_like_plain_json(self, commit: Commit) -> None:
        """metadata and tags compare equal to and serialise like plain dicts and lists."""
        assert commit.metadata == {"acc": 0.9, "hp": {"lr": 0.1}, "xs": [1, 2]}
        assert json.loads(json.dumps(commit.metadata)) == commit.metadata
        assert json.dumps(commit.tags) == '["v1", "prod"]'
        assert commit.metadata.get("missing", 0) == 0

    @pytest.mark.storage_free
    def test_to_dict(self, commit: Commit) -> None:
        """to_dict is plain, JSON-serialisable and holds every field and the files."""
        data = commit.to_dict()
        assert json.loads(json.dumps(data)) == data
        assert data["hash"] == commit.hash
        assert data["short_hash"] == commit.short_hash == commit.hash[:8]
        assert data["files"]["a.txt"]["size"] == len("content of a")
        assert data["author"] == "tester@example"
        assert datetime.fromisoformat(data["timestamp"]) == commit.timestamp

    def test_chain_and_timestamps(self, ds: Dataset, src: Source) -> None:
        """parent_hash links each commit to the previous; timestamps are aware and increase."""
        start = datetime.now(timezone.utc)
        hashes = commit_n(ds, src, 6)
        commits = ds.history()[::-1]
        assert [c.hash for c in commits] == hashes
        assert commits[0].parent_hash is None
        for older, newer in itertools.pairwise(commits):
            assert newer.parent_hash == older.hash
            assert newer.timestamp > older.timestamp
        for commit in commits:
            assert commit.timestamp.tzinfo is not None
            assert commit.timestamp.utcoffset() == timedelta(0)
            assert start - timedelta(seconds=5) < commit.timestamp
            assert commit.timestamp < datetime.now(timezone.utc) + timedelta(seconds=5)

    def test_timestamps_increase_even_if_clock_goes_back(
            self, ds: Dataset, src: Source, monkeypatch: pytest.MonkeyPatch) -> None:
        """A clock that jumps backwards still gives strictly increasing timestamps."""
        first = commit_n(ds, src, 1)[0]

        class PastClock(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> Any:
                return datetime(2000, 1, 1, tzinfo=timezone.utc)

        monkeypatch.setattr(kirin.dataset, "datetime", PastClock)
        second = ds.commit("later", add_files={"g": src("g")})
        old, new = ds.get_commit(first), ds.get_commit(second)
        assert old is not None
        assert new is not None
        assert new.timestamp > old.timestamp

    def test_commits_from_two_instances_are_equal(self, registry_root: RegistryRoot,
                                                  src: Source) -> None:
        """The same commit read by two Dataset instances compares equal."""
        ds = registry_root.dataset()
        digest = commit_n(ds, src, 1)[0]
        assert registry_root.dataset().get_commit(digest) == ds.get_commit(digest)
