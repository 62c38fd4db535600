"""What the policy judges is what is stored, whatever objects the caller passes.

A ``str`` subclass whose ``__eq__`` says yes to everything would pass a
``tags.allowed`` list or an ``enum`` while its real characters are written;
a dict subclass whose ``items()`` differs from its storage would show the
policy one mapping and the log another. ``inputs.prepare`` copies every
argument into exact builtins first, so both see the same values: these tests
commit hostile objects through a dataset with a policy, capture what the
gate saw, and compare it with the JSON record written to the log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kirin.policy
from kirin import Dataset
from kirin._json import FrozenDict, FrozenList
from kirin.errors import KirinError, PolicyViolationError

POLICY = """\
version: 1
tags:
  allowed: [dev, staging]
metadata:
  schema:
    type: object
    properties:
      stage: {enum: [ok]}
      n: {type: integer, maximum: 10}
      x: {type: number, maximum: 1.0}
"""


# -- hostile builtins ---------------------------------------------------------------
class LyingStr(str):
    """Equal to anything, hashed like "dev", shown as "dev": only its characters are true."""

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return hash("dev")

    def __str__(self) -> str:
        return "dev"

    def __repr__(self) -> str:
        return "'dev'"

    def __iter__(self) -> Any:
        return iter("dev")

    def __len__(self) -> int:
        return 3

    def strip(self, chars: str | None = None) -> str:  # type: ignore[override]
        return "dev"


class LyingInt(int):
    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0

    def __lt__(self, other: object) -> bool:
        return True

    def __le__(self, other: object) -> bool:
        return True

    def __gt__(self, other: object) -> bool:
        return False

    def __ge__(self, other: object) -> bool:
        return False

    def __index__(self) -> int:
        return 1

    def __int__(self) -> int:
        return 1

    def __repr__(self) -> str:
        return "1"


class LyingFloat(float):
    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0

    def __le__(self, other: object) -> bool:
        return True

    def __gt__(self, other: object) -> bool:
        return False

    def __float__(self) -> float:
        return 0.5

    def __repr__(self) -> str:
        return "0.5"


class LyingDict(dict):  # type: ignore[type-arg]
    """Its storage holds one thing; every method that reads it shows another."""

    def items(self) -> Any:  # type: ignore[override]
        return [("stage", "ok")]

    def keys(self) -> Any:  # type: ignore[override]
        return ["stage"]

    def values(self) -> Any:  # type: ignore[override]
        return ["ok"]

    def __iter__(self) -> Any:
        return iter(["stage"])

    def __getitem__(self, key: Any) -> Any:
        return "ok"

    def get(self, key: Any, default: Any = None) -> Any:
        return "ok"

    def __len__(self) -> int:
        return 1

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = None  # type: ignore[assignment]


class LyingList(list):  # type: ignore[type-arg]
    def __iter__(self) -> Any:
        return iter(["dev"])

    def __getitem__(self, index: Any) -> Any:
        return "dev"

    def __len__(self) -> int:
        return 1

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = None  # type: ignore[assignment]


# -- the strategy: JSON values built partly from hostile subclasses ------------------
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
KEYS = st.sampled_from(["stage", "n", "x", "other"]) | TEXT


def _maybe(make: Any) -> Any:
    return lambda value: st.sampled_from([value, make(value)])


SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(-100, 100).flatmap(_maybe(LyingInt)),
    st.floats(-5, 5, allow_nan=False).flatmap(_maybe(LyingFloat)),
    st.sampled_from(["ok", "no", "dev", "prod"]).flatmap(_maybe(LyingStr)),
    TEXT.flatmap(_maybe(LyingStr)),
)


def _containers(children: Any) -> Any:
    lists = st.lists(children, max_size=3).flatmap(_maybe(LyingList))
    dicts = st.dictionaries(KEYS.flatmap(_maybe(LyingStr)), children, max_size=3).flatmap(
        _maybe(LyingDict))
    return lists | dicts


VALUES = st.recursive(SCALARS, _containers, max_leaves=8)
METADATA = st.dictionaries(KEYS.flatmap(_maybe(LyingStr)), VALUES, max_size=4).flatmap(
    _maybe(LyingDict))
TAGS = st.lists(st.sampled_from(["dev", "staging", "prod", "x y"]).flatmap(_maybe(LyingStr)),
                max_size=3).flatmap(_maybe(LyingList))


def _exact(value: Any) -> bool:
    """Whether ``value`` is built of exact builtins and Kirin's read-only containers only."""
    if type(value) in (dict, FrozenDict):
        return all(type(k) is str and _exact(v) for k, v in dict.items(value))
    if type(value) in (list, FrozenList):
        return all(_exact(v) for v in list.__iter__(value))
    return type(value) in (str, int, float, bool, type(None))


@pytest.fixture
def judged(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every proposal the policy gate is given, in order."""
    seen: list[Any] = []
    real = kirin.policy.evaluate_policy

    def spy(policy: Any, proposal: Any, history: Any) -> Any:
        seen.append(proposal)
        return real(policy, proposal, history)

    monkeypatch.setattr(kirin.policy, "evaluate_policy", spy)
    return seen


def _record(root: Path, seq: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (root / "datasets" / "ds" / "log" / f"{seq:020d}.json").read_text("utf-8"))
    return data


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(metadata=METADATA, tags=TAGS, message=TEXT.filter(str.strip).flatmap(_maybe(LyingStr)),
       author=st.sampled_from(["ann", "bob"]).flatmap(_maybe(LyingStr)))
def test_the_stored_record_holds_exactly_what_the_gate_judged(
        tmp_path_factory: pytest.TempPathFactory, judged: list[Any], metadata: Any,
        tags: Any, message: Any, author: Any) -> None:
    work = tmp_path_factory.mktemp("judged")
    (work / "a.txt").write_text("a")
    ds = Dataset(work / "reg", "ds")
    ds.set_policy(POLICY)
    judged.clear()
    try:
        ds.commit(message, add_files=[str(work / "a.txt")], metadata=metadata, tags=tags,
                  author=author)
    except PolicyViolationError:
        assert ds.history() == []
        return
    except KirinError:  # refused before the gate (e.g. a tag with a space): nothing stored
        assert ds.history() == []
        return
    record = _record(work / "reg", 0)
    proposal = judged[-1]  # the gate may judge more than once (e.g. after a lost race)
    # the gate saw exact builtins ...
    assert type(proposal.message) is str and type(proposal.author) is str
    assert _exact(proposal.metadata) and _exact(proposal.tags)
    # ... and exactly what was written (canonical JSON compares types: 1 != 1.0 != true)
    assert json.dumps(record["metadata"], sort_keys=True) == json.dumps(
        dict(proposal.metadata), sort_keys=True)
    assert record["tags"] == list(proposal.tags)
    assert record["message"] == proposal.message
    assert record["author"] == proposal.author
    # the tags the policy admitted are the allowed ones, by their real characters
    assert set(record["tags"]) <= {"dev", "staging"}
    stage = record["metadata"].get("stage", "ok")
    assert stage == "ok"


@pytest.fixture
def ds(tmp_path: Path) -> Dataset:
    (tmp_path / "a.txt").write_text("a")
    dataset = Dataset(tmp_path / "reg", "ds")
    dataset.set_policy(POLICY)
    return dataset


def test_a_str_subclass_equal_to_everything_is_not_an_allowed_tag(ds: Dataset,
                                                                   tmp_path: Path) -> None:
    with pytest.raises(PolicyViolationError, match="prod"):
        ds.commit("m", add_files=[str(tmp_path / "a.txt")], tags=[LyingStr("prod")])
    assert ds.history() == []


def test_a_str_subclass_equal_to_everything_is_not_an_enum_value(ds: Dataset,
                                                                 tmp_path: Path) -> None:
    with pytest.raises(PolicyViolationError):
        ds.commit("m", add_files=[str(tmp_path / "a.txt")],
                  metadata={"stage": LyingStr("evil")})
    assert ds.history() == []


def test_a_dict_subclass_is_read_from_its_storage_not_its_methods(ds: Dataset,
                                                                  tmp_path: Path) -> None:
    """``items()`` says stage=ok; the dict holds stage=evil: stage=evil is judged (and refused)."""
    with pytest.raises(PolicyViolationError):
        ds.commit("m", add_files=[str(tmp_path / "a.txt")],
                  metadata=LyingDict({"stage": "evil"}))
    digest = ds.commit("m", add_files=[str(tmp_path / "a.txt")],
                       metadata=LyingDict({"n": 3}))
    assert ds.get_commit(digest).metadata == {"n": 3}  # type: ignore[union-attr]


def test_an_int_subclass_is_judged_and_stored_by_its_value(ds: Dataset, tmp_path: Path,
                                                           judged: list[Any]) -> None:
    """``__index__`` says 1, ``__le__`` says yes: the value 99 is judged, and refused."""
    with pytest.raises(PolicyViolationError):
        ds.commit("m", add_files=[str(tmp_path / "a.txt")], metadata={"n": LyingInt(99)})
    assert type(judged[-1].metadata["n"]) is int and judged[-1].metadata["n"] == 99


def test_a_hostile_key_that_collides_after_copying_is_refused(ds: Dataset,
                                                              tmp_path: Path) -> None:
    """Two keys a mapping keeps apart only by a lying ``__eq__``/``__hash__`` are one key."""

    class Pairs(dict):  # type: ignore[type-arg]
        pass

    metadata = Pairs()
    dict.__setitem__(metadata, LyingStr("n"), 1)
    dict.__setitem__(metadata, "n", 2)
    with pytest.raises(KirinError, match="appears twice"):
        ds.commit("m", add_files=[str(tmp_path / "a.txt")], metadata=metadata)
