"""What a commit records besides files: metadata, tags, author, and the hash covering
them all.

Part of the Dataset API tests (split by concern: ``test_dataset_*.py``). Every test
that touches storage takes ``registry_root`` (through ``ds``) and so runs once per
backend in ``roots.BACKENDS``; ``storage_free`` ones run on memory only.
"""

from __future__ import annotations

import getpass
import json
import socket
from datetime import datetime, timezone
from typing import Any

import pytest

import kirin.dataset
from kirin import Dataset
from kirin.errors import (
    InvalidInputError,
    InvalidMetadataError,
    InvalidTagError,
)
from kirin.history import make_record, record_hash

from dataset_helpers import HEX64, Source, reopen
from roots import RegistryRoot

BAD_METADATA = [
    pytest.param({"s": {1, 2}}, "s", id="set"),
    pytest.param({"o": object()}, "o", id="object"),
    pytest.param({"acc": float("nan")}, "acc", id="nan"),
    pytest.param({"acc": float("inf")}, "acc", id="inf"),
    pytest.param({1: "x"}, "", id="non-str-key"),
    pytest.param({"b": b"raw"}, "b", id="bytes"),
    pytest.param({"hp": {"opt": {"lr": float("-inf")}}}, "hp.opt.lr", id="nested-inf"),
    pytest.param({"runs": [{"ok": 1}, {"when": datetime(2024, 1, 1)}]}, "runs[1].when",
                 marks=pytest.mark.every_backend, id="nested-in-list"),
]


class TestMetadata:
    """commit(metadata=...): plain JSON only, stored as given, never inherited."""

    def test_metadata_round_trips(self, ds: Dataset, src: Source) -> None:
        """Nested JSON metadata reads back equal; tuples come back as lists."""
        meta = {"framework": "pytorch", "accuracy": 0.87, "epochs": 10, "ok": True,
                "none": None, "hp": {"lr": 1e-3, "layers": [64, 32]}, "shape": (1, 2)}
        ds.commit("meta", add_files=[src("a")], metadata=meta)
        assert ds.current_commit.metadata == {**meta, "shape": [1, 2]}  # type: ignore[union-attr]
        reopened = reopen(ds).current_commit
        assert reopened is not None
        assert reopened.metadata["hp"]["layers"] == [64, 32]

    def test_metadata_and_tags_of_a_commit_can_be_reused(self, ds: Dataset,
                                                         src: Source) -> None:
        """A commit's (read-only) metadata and tags can be passed to a new commit."""
        old = ds.get_commit(ds.commit("dev", add_files=[src("m")],
                                      metadata={"acc": 0.9, "hp": {"xs": [1]}}, tags=["dev"]))
        assert old is not None
        ds.commit("promote", add_files=[src("m")], metadata=old.metadata,
                  tags=[*old.tags, "staging"])
        new = ds.current_commit
        assert new is not None
        assert new.metadata == {"acc": 0.9, "hp": {"xs": [1]}}
        assert new.tags == ["dev", "staging"]

    def test_metadata_is_copied(self, ds: Dataset, src: Source) -> None:
        """Changing the caller's dict after commit does not change the commit."""
        meta: dict[str, Any] = {"hp": {"lr": 1}}
        ds.commit("meta", add_files=[src("a")], metadata=meta)
        meta["hp"]["lr"] = 2
        assert ds.current_commit.metadata == {"hp": {"lr": 1}}  # type: ignore[union-attr]

    def test_no_metadata_is_empty(self, ds: Dataset, src: Source) -> None:
        """A commit without metadata has an empty metadata dict."""
        ds.commit("plain", add_files=[src("a")])
        assert ds.current_commit.metadata == {}  # type: ignore[union-attr]

    @pytest.mark.parametrize(("metadata", "path"), BAD_METADATA)
    @pytest.mark.storage_free
    def test_non_json_metadata_leaves_registry_untouched(
            self, ds: Dataset, src: Source, registry_root: RegistryRoot,
            metadata: Any, path: str) -> None:
        """Non-JSON metadata raises InvalidMetadataError naming the key path; storage is
        unchanged byte for byte and still reads."""
        first = ds.commit("good", add_files=[src("a.txt")], metadata={"k": 1})
        before = registry_root.objects()
        with pytest.raises(InvalidMetadataError) as info:
            ds.commit("bad", add_files=[src("b.txt")], metadata=metadata, tags=["x"])
        assert isinstance(info.value, ValueError)
        assert info.value.path == path
        if path:
            assert path in str(info.value)
        assert registry_root.objects() == before
        fresh = registry_root.dataset()
        assert [c.hash for c in fresh.history()] == [first]
        assert fresh.read_file("a.txt") == "content of a.txt"
        assert ds.commit("still works", add_files=[src("b.txt")])

    @pytest.mark.parametrize("metadata", [["a", 1], "text", 3])
    @pytest.mark.storage_free
    def test_metadata_must_be_a_mapping(self, ds: Dataset, src: Source,
                                        metadata: Any) -> None:
        """Metadata that is not a JSON object raises InvalidInputError."""
        with pytest.raises(InvalidInputError, match="mapping"):
            ds.commit("bad", add_files=[src("a")], metadata=metadata)

    def test_metadata_and_tags_are_not_inherited(self, ds: Dataset, src: Source) -> None:
        """A later commit without metadata or tags has none, and is not found by old tags."""
        prod = ds.commit("release", add_files=[src("m", b"1")], metadata={"acc": 0.9},
                         tags=["production", "v1"])
        later = ds.commit("later", add_files=[src("m", b"2")])
        commit = ds.get_commit(later)
        assert commit is not None
        assert commit.metadata == {}
        assert commit.tags == []
        assert [c.hash for c in ds.find_commits(tags=["production"])] == [prod]
        assert [c.hash for c in ds.find_commits(
            metadata_filter=lambda m: "acc" in m)] == [prod]


# ---------------------------------------------------------------------------
class TestTags:
    """commit(tags=...): non-empty strings, deduplicated, order kept."""

    @pytest.mark.parametrize(
        "tag",
        ["", "   ", " prod", "prod ", "a\nb", "tab\t", "esc\x1b[0m", "del\x7f", "c1\x85",
         5, None, b"prod", "x" * 257],
    )
    @pytest.mark.storage_free
    def test_invalid_tag(self, ds: Dataset, src: Source, registry_root: RegistryRoot,
                         tag: Any) -> None:
        """An empty, blank, padded, control-character, over-long or non-string tag is refused."""
        with pytest.raises(InvalidTagError) as info:
            ds.commit("tagged", add_files=[src("a")], tags=["ok", tag])
        assert isinstance(info.value, ValueError)
        assert registry_root.objects() == {}

    @pytest.mark.parametrize(
        ("tags", "stored"),
        [
            (["b", "a", "b", "a"], ["b", "a"]),
            ("production", ["production"]),
            (("v1.0", "baseline"), ["v1.0", "baseline"]),
            ([], []),
            (None, []),
            (["x" * 256, "模型", "v1.2.3-rc.1+build"], ["x" * 256, "模型", "v1.2.3-rc.1+build"]),
        ],
    )
    @pytest.mark.storage_free
    def test_tags_stored(self, ds: Dataset, src: Source, tags: Any, stored: list[str]) -> None:
        """Tags are deduplicated keeping first-seen order; a single string is one tag."""
        ds.commit("tagged", add_files=[src("a")], tags=tags)
        assert ds.current_commit.tags == stored  # type: ignore[union-attr]


# ---------------------------------------------------------------------------
@pytest.mark.storage_free
class TestAuthor:
    """Each commit records an author: argument, else KIRIN_AUTHOR, else user@host."""

    def test_argument_wins(self, ds: Dataset, src: Source) -> None:
        """author= is recorded (stripped) even when KIRIN_AUTHOR is set."""
        ds.commit("m", add_files=[src("a")], author="  ci-bot@runner ")
        assert ds.current_commit.author == "ci-bot@runner"  # type: ignore[union-attr]

    def test_environment(self, ds: Dataset, src: Source,
                         monkeypatch: pytest.MonkeyPatch) -> None:
        """Without author=, KIRIN_AUTHOR is recorded."""
        monkeypatch.setenv("KIRIN_AUTHOR", "alice@lab")
        ds.commit("m", add_files=[src("a")])
        assert ds.current_commit.author == "alice@lab"  # type: ignore[union-attr]

    @pytest.mark.parametrize("env", [None, "", "   "])
    def test_default_user_at_host(self, ds: Dataset, src: Source,
                                  monkeypatch: pytest.MonkeyPatch, env: str | None) -> None:
        """Without author= and with KIRIN_AUTHOR unset or blank, user@host is recorded."""
        if env is None:
            monkeypatch.delenv("KIRIN_AUTHOR")
        else:
            monkeypatch.setenv("KIRIN_AUTHOR", env)
        monkeypatch.setattr(getpass, "getuser", lambda: "bob")
        monkeypatch.setattr(socket, "gethostname", lambda: "box")
        ds.commit("m", add_files=[src("a")])
        assert ds.current_commit.author == "bob@box"  # type: ignore[union-attr]

    def test_unknown_user(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """When the user name cannot be found, "unknown@host" is used rather than failing."""
        monkeypatch.delenv("KIRIN_AUTHOR")

        def no_user() -> str:
            raise KeyError("getpwuid(): uid not found")

        monkeypatch.setattr(getpass, "getuser", no_user)
        monkeypatch.setattr(socket, "gethostname", lambda: "box")
        assert kirin.dataset.default_author() == "unknown@box"


# ---------------------------------------------------------------------------
RECORD_BASE: dict[str, Any] = {
    "seq": 1,
    "parent": "0" * 64,
    "snapshot": {"m.pt": ("a" * 64, 10)},
    "added": {"m.pt": ("a" * 64, 10)},
    "removed": [],
    "message": "msg",
    "metadata": {"acc": 0.9},
    "tags": ["v1"],
    "timestamp": datetime(2024, 1, 1, tzinfo=timezone.utc),
    "author": "a@b",
    "policy": None,
}


class TestCommitHash:
    """The commit hash covers parent, files, message, metadata, tags, timestamp, author."""

    def test_commit_returns_full_hash(self, ds: Dataset, src: Source) -> None:
        """commit() returns 64 lowercase hex digits, the hash of the new current commit."""
        digest = ds.commit("m", add_files=[src("a")])
        assert HEX64.fullmatch(digest)
        assert ds.current_commit is not None
        assert ds.current_commit.hash == digest

    def test_stored_record_hashes_to_its_hash(self, ds: Dataset, src: Source,
                                              registry_root: RegistryRoot) -> None:
        """The stored log record's content hashes to the returned commit hash."""
        digest = ds.commit("m", add_files=[src("a")], metadata={"x": [1]}, tags=["t"])
        record = json.loads(registry_root.cat(registry_root.log_path("ds", 0)))
        assert record["hash"] == digest == record_hash(record)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("message", "msg!"),
            ("metadata", {"acc": 0.91}),
            ("metadata", {"acc": 0.9, "extra": None}),
            ("tags", ["v2"]),
            ("tags", ["v1", "prod"]),
            ("author", "c@d"),
            ("timestamp", datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=timezone.utc)),
            ("parent", "1" * 64),
            ("parent", None),
            ("snapshot", {"m.pt": ("b" * 64, 10)}),
            ("snapshot", {"m.pt": ("a" * 64, 11)}),
            ("snapshot", {"n.pt": ("a" * 64, 10)}),
            ("added", {}),
            ("removed", ["old.pt"]),
            ("seq", 2),
            ("policy", "p" * 64),
        ],
    )
    def test_every_field_changes_the_hash(self, field: str, value: Any) -> None:
        """Two records differing in one field only have different hashes."""
        base = make_record(**RECORD_BASE)
        changed = make_record(**{**RECORD_BASE, field: value})
        assert HEX64.fullmatch(base["hash"])
        assert base["hash"] != changed["hash"]

    def test_hash_is_deterministic(self) -> None:
        """The same record fields always give the same hash (metadata key order aside)."""
        reordered = {**RECORD_BASE, "metadata": dict(reversed(list(
            {"b": 1, "a": 2}.items())))}
        again = {**RECORD_BASE, "metadata": {"a": 2, "b": 1}}
        assert make_record(**reordered)["hash"] == make_record(**again)["hash"]
        assert make_record(**RECORD_BASE)["hash"] == make_record(**RECORD_BASE)["hash"]
