"""Random sequences of commits, removals, checkouts and reopenings agree with a simple model."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from kirin import Dataset
from kirin.errors import NotLatestCommitError

NAMES = ["model.pt", "config.json", "data/train.csv", "data/test.csv", "README"]
TAGS = ["dev", "staging", "production", "v1", "v2"]
contents = st.binary(max_size=64)
metadata = st.dictionaries(st.sampled_from(["accuracy", "framework", "epochs"]),
                           st.one_of(st.integers(-5, 5), st.text(max_size=5),
                                     st.floats(0, 1)), max_size=3)


class RegistryModel(RuleBasedStateMachine):
    """The model: a list of (files, metadata, tags) snapshots plus which one is checked out."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="kirin-stateful-"))
        self.root = str(self.tmp / "registry")
        self.ds = Dataset(self.root, "model")
        self.commits: list[tuple[str, dict[str, bytes], dict, list[str]]] = []
        self.pinned: int | None = None  # index into self.commits, None = following latest
        self.counter = 0

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def current(self) -> dict[str, bytes]:
        if not self.commits:
            return {}
        index = self.pinned if self.pinned is not None else -1
        return self.commits[index][1]

    @rule(adds=st.dictionaries(st.sampled_from(NAMES), contents, max_size=3),
          removes=st.sets(st.sampled_from(NAMES), max_size=2), meta=metadata,
          tags=st.lists(st.sampled_from(TAGS), max_size=2, unique=True))
    def commit(self, adds: dict[str, bytes], removes: set[str], meta: dict,
               tags: list[str]) -> None:
        latest = self.commits[-1][1] if self.commits else {}
        removes = {n for n in removes if n in latest and n not in adds}
        if not adds and not removes:
            return
        self.counter += 1
        sources = {}
        for i, (name, data) in enumerate(adds.items()):
            path = self.tmp / f"src-{self.counter}-{i}"
            path.write_bytes(data)
            sources[name] = str(path)
        behind = self.pinned is not None and self.pinned != len(self.commits) - 1
        try:
            digest = self.ds.commit(f"commit {self.counter}", add_files=sources,
                                    remove_files=sorted(removes), metadata=meta, tags=tags)
        except NotLatestCommitError:
            assert behind
            return
        assert not behind
        files = {n: d for n, d in latest.items() if n not in removes}
        files.update(adds)
        self.commits.append((digest, files, meta, tags))
        self.pinned = None

    @precondition(lambda self: bool(self.commits))
    @rule(data=st.data())
    def checkout_old(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.commits) - 1))
        digest = self.commits[index][0]
        prefix = data.draw(st.integers(12, 64))
        self.ds.checkout(digest[:prefix])
        self.pinned = index

    @precondition(lambda self: bool(self.commits))
    @rule()
    def checkout_latest(self) -> None:
        self.ds.checkout()
        self.pinned = None

    @rule()
    def reopen(self) -> None:
        """A fresh Dataset on the same root follows the latest commit."""
        self.ds = Dataset(self.root, "model")
        self.pinned = None

    @invariant()
    def files_agree(self) -> None:
        expected = self.current()
        assert sorted(self.ds.list_files()) == sorted(expected)
        for name, data in expected.items():
            file = self.ds.get_file(name)
            assert file is not None and file.read_bytes() == data

    @invariant()
    def history_agrees(self) -> None:
        history = self.ds.history()
        assert [c.hash for c in history] == [c[0] for c in reversed(self.commits)]
        for commit, (_, _, meta, tags) in zip(history, reversed(self.commits), strict=True):
            assert commit.metadata == meta
            assert list(commit.tags) == tags
        for tag in TAGS:
            expected = [c[0] for c in reversed(self.commits) if tag in c[3]]
            assert [c.hash for c in self.ds.find_commits(tags=[tag])] == expected


TestRegistryModel = RegistryModel.TestCase
TestRegistryModel.settings = settings(max_examples=40, stateful_step_count=15, deadline=None,
                                      suppress_health_check=[HealthCheck.too_slow])
