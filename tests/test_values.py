"""Plain-JSON checks, read-only containers, and the File and Commit value objects."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kirin import Commit, File
from kirin._json import (
    MAX_DEPTH,
    FrozenDict,
    FrozenList,
    canonical_json,
    check_json,
    freeze,
    thaw,
)
from kirin.errors import InvalidInputError, InvalidMetadataError

DIGEST = "ab" * 32


def nested(depth: int) -> dict[str, Any]:
    """``{"k": {"k": ... {"k": 1}}}`` with ``depth`` levels of nesting."""
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value  # type: ignore[no-any-return]


class TestCheckJson:
    """check_json: accepts plain JSON, names the key path of anything else."""

    @pytest.mark.parametrize(
        "value",
        [
            {},
            {"a": 1, "b": 2.5, "c": "x", "d": True, "e": None},
            {"nested": {"list": [1, [2, [3]], {"x": False}]}},
            {"unicode": "模型 ✓", "": "empty key is a string too"},
            {"big": 10**30, "neg": -1e300, "zero": -0.0},
            [1, "a", None],
            "text",
            0,
        ],
    )
    def test_plain_json_round_trips(self, value: Any) -> None:
        """Plain JSON comes back equal to what was given."""
        assert check_json(value) == value

    def test_tuples_become_lists(self) -> None:
        """A tuple is accepted and returned as a list, which is what JSON holds."""
        assert check_json({"shape": (3, 224, 224)}) == {"shape": [3, 224, 224]}

    def test_mappings_become_dicts(self) -> None:
        """Any Mapping (here an OrderedDict or a FrozenDict) is accepted as an object."""
        assert check_json(OrderedDict(a=1)) == {"a": 1}
        assert type(check_json(FrozenDict(a={"b": 1}))) is dict

    def test_result_is_a_copy(self) -> None:
        """Changing the input afterwards does not change the checked value."""
        original = {"a": {"b": [1]}}
        checked = check_json(original)
        original["a"]["b"].append(2)
        assert checked == {"a": {"b": [1]}}

    @pytest.mark.parametrize(
        ("value", "path"),
        [
            pytest.param({"s": {1, 2}}, "s", id="set"),
            pytest.param({"o": object()}, "o", id="object"),
            pytest.param({"n": float("nan")}, "n", id="nan"),
            pytest.param({"i": float("inf")}, "i", id="inf"),
            pytest.param({"i": float("-inf")}, "i", id="minus-inf"),
            pytest.param({"b": b"bytes"}, "b", id="bytes"),
            pytest.param({1: "x"}, "", id="int-key-at-top"),
            pytest.param({"a": {("t",): 1}}, "a", id="tuple-key-nested"),
            pytest.param({"a": {"b": {"c": float("nan")}}}, "a.b.c", id="nested-nan"),
            pytest.param({"xs": [1, {2}]}, "xs[1]", id="set-in-list"),
            pytest.param({"xs": [{"ok": 1}, {"bad": object()}]}, "xs[1].bad", id="deep-list"),
            pytest.param({"d": datetime(2024, 1, 1)}, "d", id="datetime"),
            pytest.param({"f": print}, "f", id="function"),
        ],
    )
    def test_non_json_is_refused_naming_the_key_path(self, value: Any, path: str) -> None:
        """A value JSON cannot hold raises InvalidMetadataError whose .path locates it."""
        with pytest.raises(InvalidMetadataError) as info:
            check_json(value)
        assert info.value.path == path
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, InvalidInputError)
        if path:
            assert path in str(info.value)

    def test_depth_limit(self) -> None:
        """Nesting up to MAX_DEPTH is accepted; deeper nesting is refused."""
        assert check_json(nested(MAX_DEPTH)) == nested(MAX_DEPTH)
        with pytest.raises(InvalidMetadataError, match="nested deeper"):
            check_json(nested(MAX_DEPTH + 1))


class TestCanonicalJson:
    """canonical_json: the one encoding hashes are computed over."""

    def test_sorted_keys_no_spaces_utf8(self) -> None:
        """Keys are sorted, separators carry no spaces, non-ASCII is kept as is."""
        assert canonical_json({"b": 1, "a": ["é", 2]}) == '{"a":["é",2],"b":1}'

    def test_key_order_does_not_matter(self) -> None:
        """Two dicts with the same items in another order encode the same."""
        assert canonical_json({"x": 1, "y": {"q": 1, "p": 2}}) == canonical_json(
            {"y": {"p": 2, "q": 1}, "x": 1})

    def test_nan_is_refused(self) -> None:
        """NaN cannot be encoded (it is not JSON)."""
        with pytest.raises(ValueError):
            canonical_json({"x": float("nan")})


class TestFrozenContainers:
    """FrozenDict and FrozenList: read-only, yet equal to and encoded like dict/list."""

    @pytest.mark.parametrize(
        "mutate",
        [
            pytest.param(lambda d: d.__setitem__("x", 1), id="setitem"),
            pytest.param(lambda d: d.__delitem__("a"), id="delitem"),
            pytest.param(lambda d: d.clear(), id="clear"),
            pytest.param(lambda d: d.pop("a"), id="pop"),
            pytest.param(lambda d: d.popitem(), id="popitem"),
            pytest.param(lambda d: d.setdefault("x", 1), id="setdefault"),
            pytest.param(lambda d: d.update(x=1), id="update"),
            pytest.param(lambda d: d.__ior__({"x": 1}), id="ior"),
            pytest.param(lambda d: d["nested"].__setitem__("x", 1), id="nested-dict"),
            pytest.param(lambda d: d["nested"]["list"].append(4), id="nested-list"),
        ],
    )
    def test_frozen_dict_refuses_changes(self, mutate: Any) -> None:
        """Every mutating method of a frozen dict (also nested) raises TypeError."""
        frozen = freeze({"a": 1, "nested": {"list": [1, 2, 3]}})
        with pytest.raises(TypeError, match="read-only"):
            mutate(frozen)
        assert frozen == {"a": 1, "nested": {"list": [1, 2, 3]}}

    @pytest.mark.parametrize(
        "mutate",
        [
            pytest.param(lambda v: v.__setitem__(0, 1), id="setitem"),
            pytest.param(lambda v: v.__delitem__(0), id="delitem"),
            pytest.param(lambda v: v.append(1), id="append"),
            pytest.param(lambda v: v.extend([1]), id="extend"),
            pytest.param(lambda v: v.insert(0, 1), id="insert"),
            pytest.param(lambda v: v.pop(), id="pop"),
            pytest.param(lambda v: v.remove("a"), id="remove"),
            pytest.param(lambda v: v.clear(), id="clear"),
            pytest.param(lambda v: v.sort(), id="sort"),
            pytest.param(lambda v: v.reverse(), id="reverse"),
            pytest.param(lambda v: v.__iadd__([1]), id="iadd"),
            pytest.param(lambda v: v.__imul__(2), id="imul"),
        ],
    )
    def test_frozen_list_refuses_changes(self, mutate: Any) -> None:
        """Every mutating method of a frozen list raises TypeError."""
        frozen = FrozenList(["a", "b"])
        with pytest.raises(TypeError, match="read-only"):
            mutate(frozen)
        assert frozen == ["a", "b"]

    @given(st.recursive(
        st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from([0.0, 1.0, -1.0, 2.5])
        | st.text(max_size=2),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner,
                                                                     max_size=3),
        max_leaves=8), st.randoms())
    def test_equal_frozen_values_hash_equal(self, value: Any, rng: Any) -> None:
        """Hash follows equality, as Python asks: ``1 == 1.0 == True`` inside, and key
        order, never change the hash of an equal frozen value."""
        def twin(v: Any) -> Any:
            if isinstance(v, dict):
                items = list(v.items())
                rng.shuffle(items)
                return {k: twin(x) for k, x in items}
            if isinstance(v, list):
                return [twin(x) for x in v]
            if type(v) is int and v in (0, 1):
                return rng.choice([v, float(v), bool(v)])
            return v

        a, b = freeze(value), freeze(twin(value))
        assert a == b
        assert hash(a) == hash(b)

    def test_augmented_assignment_is_refused(self) -> None:
        """``d |= ...`` and ``xs += ...`` on frozen values raise TypeError."""
        d = FrozenDict(a=1)
        xs = FrozenList([1])
        with pytest.raises(TypeError):
            d |= {"b": 2}
        with pytest.raises(TypeError):
            xs += [2]

    def test_equal_to_and_serialised_like_plain_values(self) -> None:
        """Frozen values compare equal to plain ones and json.dumps them identically."""
        plain = {"a": [1, {"b": None}], "c": "x"}
        frozen = freeze(plain)
        assert frozen == plain
        assert json.dumps(frozen, sort_keys=True) == json.dumps(plain, sort_keys=True)
        assert canonical_json(frozen) == canonical_json(plain)

    def test_hashable_and_consistent_with_equality(self) -> None:
        """Equal frozen values hash the same, so they can be set members or dict keys."""
        assert hash(freeze({"a": [1]})) == hash(freeze({"a": [1]}))
        assert len({FrozenList([1, 2]), FrozenList([1, 2])}) == 1

    def test_pickle_and_copy_keep_type_and_value(self) -> None:
        """Pickling and deep-copying give back equal read-only values."""
        frozen = freeze({"a": [1, 2], "b": {"c": 3}})
        for clone in (pickle.loads(pickle.dumps(frozen)), copy.deepcopy(frozen)):
            assert clone == frozen
            assert isinstance(clone, FrozenDict)
            with pytest.raises(TypeError):
                clone["x"] = 1

    def test_thaw_gives_mutable_plain_copy(self) -> None:
        """thaw returns plain dicts and lists that can be changed freely."""
        thawed = thaw(freeze({"a": [1, {"b": 2}]}))
        assert type(thawed) is dict
        assert type(thawed["a"]) is list
        thawed["a"][1]["b"] = 3
        assert thawed == {"a": [1, {"b": 3}]}


class FakeReader:
    """A BlobReader over an in-memory dict, for File tests without storage."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs

    def open_blob(self, digest: str, size: int, *, name: str, commit: str | None,
                  stream: bool = False) -> Any:
        import io

        return io.BytesIO(self.blobs[digest])

    def download_blob(self, digest: str, size: int, target: Any, *, name: str,
                      commit: str | None) -> None:
        target.write_bytes(self.blobs[digest])


class TestFileValue:
    """File: an immutable value with a name, hash, size and verified reads."""

    @pytest.mark.parametrize(
        ("name", "content_type"),
        [
            ("config.json", "application/json"),
            ("notes.txt", "text/plain"),
            ("sub/dir/page.html", "text/html"),
            ("table.csv", "text/csv"),
            ("model.pt", "application/octet-stream"),
            ("no_extension", "application/octet-stream"),
        ],
    )
    def test_content_type_is_guessed_from_the_name(self, name: str, content_type: str
                                                    ) -> None:
        """content_type is the MIME type of the extension, octet-stream when unknown."""
        assert File(name, DIGEST, 1).content_type == content_type

    def test_short_hash_and_to_dict(self) -> None:
        """short_hash is the first 8 hex digits; to_dict holds name, hash, size, type."""
        file = File("a.json", DIGEST, 12)
        assert file.short_hash == DIGEST[:8]
        assert file.to_dict() == {"name": "a.json", "hash": DIGEST, "size": 12,
                                  "content_type": "application/json"}
        json.dumps(file.to_dict())

    def test_is_frozen(self) -> None:
        """Setting any attribute of a File raises FrozenInstanceError."""
        file = File("a", DIGEST, 1)
        with pytest.raises(dataclasses.FrozenInstanceError):
            file.name = "b"  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            file.size = 2  # type: ignore[misc]

    def test_equality_ignores_the_reader(self) -> None:
        """Two Files with the same name, hash, size and commit are equal."""
        reader = FakeReader({})
        assert File("a", DIGEST, 1, "c") == File("a", DIGEST, 1, "c", reader)

    def test_detached_file_cannot_be_read(self) -> None:
        """A File not attached to a registry raises RuntimeError on read."""
        with pytest.raises(RuntimeError, match="not attached"):
            File("a", DIGEST, 1).read_bytes()

    def test_reads_through_its_reader(self, tmp_path: Any) -> None:
        """read_bytes, read_text, read and open go through the registry's reader."""
        file = File("a.txt", DIGEST, 5, None, FakeReader({DIGEST: b"hello"}))
        assert file.read_bytes() == b"hello"
        assert file.read_text() == "hello"
        assert file.read() == "hello"
        assert file.read("rb") == b"hello"
        with file.open("r") as stream:
            assert stream.read() == "hello"
        target = tmp_path / "out.txt"
        assert file.download_to(target) == str(target)
        assert target.read_bytes() == b"hello"

    @pytest.mark.parametrize("mode", ["w", "wb", "a", "r+", "x"])
    def test_open_and_read_refuse_write_modes(self, mode: str) -> None:
        """open() and read() accept only read modes; others raise InvalidInputError (a
        ValueError) naming the modes allowed."""
        file = File("a.txt", DIGEST, 5, None, FakeReader({DIGEST: b"hello"}))
        allowed = "'r', 'rt' and 'rb'"
        with pytest.raises(InvalidInputError, match=allowed) as info:
            file.open(mode)
        assert isinstance(info.value, ValueError)
        with pytest.raises(InvalidInputError, match=allowed):
            file.read(mode)


def make_commit(**overrides: Any) -> Commit:
    fields: dict[str, Any] = {
        "hash": "cd" * 32, "parent_hash": None, "message": "m",
        "metadata": freeze({"acc": 0.9, "hp": {"lr": 0.1}}), "tags": FrozenList(["v1"]),
        "timestamp": datetime(2024, 5, 1, tzinfo=timezone.utc), "author": "a@b", "seq": 0,
    }
    fields.update(overrides)
    return Commit(**fields)


class TestCommitValue:
    """Commit: an immutable value; equality by hash."""

    def test_is_frozen(self) -> None:
        """Setting or deleting any attribute raises FrozenInstanceError."""
        commit = make_commit()
        for attr in ("hash", "message", "metadata", "tags", "parent_hash", "files"):
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(commit, attr, None)
        with pytest.raises(dataclasses.FrozenInstanceError):
            del commit.message

    def test_equality_and_hash_follow_the_commit_hash(self) -> None:
        """Commits with the same hash are equal and hash alike; others are not equal."""
        assert make_commit() == make_commit(message="other")
        assert hash(make_commit()) == hash(make_commit(message="other"))
        assert make_commit() != make_commit(hash="ef" * 32)
        assert make_commit() != "cd" * 32

    def test_copies_are_the_commit_itself(self) -> None:
        """copy and deepcopy of an immutable commit give it back (with its files)."""
        files = {"a.txt": File("a.txt", DIGEST, 4)}
        commit = make_commit(_files=lambda: files)
        for clone in (copy.copy(commit), copy.deepcopy(commit), copy.deepcopy([commit])[0]):
            assert clone is commit and clone.files == files

    def test_without_files_loader_has_no_files(self) -> None:
        """A commit built without a files loader has an empty, read-only snapshot."""
        commit = make_commit()
        assert commit.files == {}
        assert commit.list_files() == []
        assert commit.get_total_size() == 0
        with pytest.raises(TypeError):
            commit.files["x"] = File("x", DIGEST, 1)

    def test_files_helpers(self) -> None:
        """get_file, has_file, list_files and get_total_size read the snapshot."""
        files = {"b.txt": File("b.txt", DIGEST, 3), "a.txt": File("a.txt", DIGEST, 4)}
        commit = make_commit(_files=lambda: files)
        assert commit.list_files() == ["a.txt", "b.txt"]
        assert commit.has_file("a.txt")
        assert not commit.has_file("c.txt")
        assert commit.get_file("b.txt") == files["b.txt"]
        assert commit.get_file("c.txt") is None
        assert commit.get_total_size() == 7

    def test_to_dict_and_str(self) -> None:
        """to_dict is JSON-serialisable plain data; str shows short hash, message, tags."""
        commit = make_commit()
        data = commit.to_dict()
        assert json.loads(json.dumps(data)) == data
        assert type(data["metadata"]) is dict
        assert data["timestamp"] == "2024-05-01T00:00:00+00:00"
        assert data["short_hash"] == commit.short_hash == "cd" * 4
        assert str(commit) == f"{'cd' * 4} m [v1]"
        assert str(make_commit(tags=FrozenList())) == f"{'cd' * 4} m"
