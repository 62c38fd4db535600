"""The catalog's markers (``catalog/<name>``, see ``kirin/markers.py``), on every backend.

A marker only ever makes a listing faster: whatever markers there are or are
not, and wherever a creation or a deletion is interrupted, ``datasets()``
lists exactly the folders holding a ``dataset.json`` or a first commit (what
:func:`truth` reads directly), and listing writes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from kirin import Catalog
from kirin.errors import CorruptObjectError, DatasetExistsError, StorageError
from kirin.markers import marker_body
from kirin.store import Store

from conftest import write
from dataset_helpers import ACCURACY_REQUIRED as POLICY
from roots import RegistryRoot

FIRST_ENTRY = f"log/{0:020d}.json"


class Killed(BaseException):
    """The process dying at a chosen write: nothing after it runs, nothing catches it."""


def truth(root: RegistryRoot) -> list[str]:
    """The datasets as the storage format defines them, read from the raw objects."""
    objects = root.objects(root.join("datasets"))
    return sorted({rel.split("/", 1)[0] for rel in objects
                   if rel.split("/", 1)[1] in ("dataset.json", FIRST_ENTRY)})


def marked(root: RegistryRoot) -> dict[str, bytes]:
    """Every marker object, by name, with its bytes."""
    return {rel: root.cat(root.join("catalog", rel))
            for rel in root.objects(root.join("catalog"))}


def kill_at(monkeypatch: pytest.MonkeyPatch, method: str, when: Callable[[str], bool],
            after: int = 0) -> None:
    """Make ``Store.<method>`` die (raise :class:`Killed`) on the call, past the first
    ``after`` ones, whose path satisfies ``when``, before it does anything."""
    real = getattr(Store, method)
    calls = iter(range(1_000_000))

    def dying(self: Store, path: str, *args: object) -> object:
        if when(path) and next(calls) >= after:
            raise Killed(path)
        return real(self, path, *args)

    monkeypatch.setattr(Store, method, dying)


def is_marker(path: str) -> bool:
    return "/catalog/" in path


def test_every_way_of_creating_a_dataset_marks_it(registry_root: RegistryRoot,
                                                 workdir: Path) -> None:
    """create_dataset (with or without a policy), a first commit and a first policy each
    leave the documented marker; a name only opened leaves none."""
    catalog = registry_root.catalog()
    catalog.create_dataset("made", description="d")
    catalog.create_dataset("governed", policy=POLICY)
    registry_root.dataset("committed").commit("first", add_files=[write(workdir, "a", "a")])
    registry_root.dataset("policed").set_policy(POLICY)
    assert registry_root.catalog().get_dataset("opened").is_empty()
    names = ["committed", "governed", "made", "policed"]
    assert marked(registry_root) == {n: b'{"kirin":1,"name":"%s"}\n' % n.encode()
                                     for n in names}
    assert marker_body("made") == b'{"kirin":1,"name":"made"}\n'
    assert catalog.datasets() == truth(registry_root) == names


def test_a_dataset_named_catalog_is_an_ordinary_dataset(registry_root: RegistryRoot) -> None:
    """The markers' folder is at the root, beside ``datasets/``: no name clashes with it."""
    registry_root.catalog().create_dataset("catalog")
    assert registry_root.catalog().datasets() == ["catalog"]
    assert list(marked(registry_root)) == ["catalog"]


def test_a_marker_vouches_only_beside_a_folder(registry_root: RegistryRoot) -> None:
    """A marker without a folder, and a marker name that is no dataset name, list nothing."""
    registry_root.catalog().create_dataset("real")
    for name in ("gone", ".hidden", "bad name", "x" * 200):
        registry_root.pipe(registry_root.join("catalog", name), b"{}")
    registry_root.pipe(registry_root.join("datasets", "bad name", "dataset.json"), b"{}")
    assert registry_root.catalog().datasets() == ["real"]


def test_unmarked_datasets_are_listed_and_gc_marks_them(registry_root: RegistryRoot,
                                                        workdir: Path) -> None:
    """A registry written before markers lists the same, and listing writes nothing; gc
    (not a dry run) adds the missing markers and removes one left by a deletion."""
    catalog = registry_root.catalog()
    catalog.create_dataset("created")
    registry_root.dataset("committed").commit("first", add_files=[write(workdir, "a", "a")])
    for name in ("created", "committed"):
        registry_root.rm(registry_root.join("catalog", name))
    registry_root.pipe(registry_root.join("datasets", "stray", "notes.txt"), b"x")
    registry_root.pipe(registry_root.join("catalog", "gone"), marker_body("gone"))
    before = registry_root.objects()
    assert catalog.datasets() == ["committed", "created"]
    assert registry_root.objects() == before
    catalog.gc(dry_run=True)
    assert registry_root.objects() == before
    catalog.gc()
    assert sorted(marked(registry_root)) == ["committed", "created"]
    assert catalog.datasets() == truth(registry_root) == ["committed", "created"]


def test_gc_stopped_by_a_damaged_log_tidies_no_marker(registry_root: RegistryRoot,
                                                      workdir: Path) -> None:
    """gc that stops before removing anything (a hole in a log) adds and removes no marker
    either."""
    ds = registry_root.dataset("holed")
    for i in range(3):
        ds.commit(f"c{i}", add_files=[write(workdir, "a", f"v{i}")])
    registry_root.catalog().create_dataset("unmarked")
    registry_root.rm(registry_root.join("catalog", "unmarked"))
    registry_root.pipe(registry_root.join("catalog", "gone"), marker_body("gone"))
    registry_root.rm(registry_root.log_path("holed", 1))
    before = marked(registry_root)
    with pytest.raises(CorruptObjectError, match="nothing was removed"):
        registry_root.catalog().gc()
    assert marked(registry_root) == before


def test_a_marker_that_cannot_be_written_fails_nothing(
        registry_root: RegistryRoot, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Storage refusing the marker (e.g. credentials limited to datasets/) is logged, naming
    the marker and the dataset; the dataset is created and listed (read, not marked)."""
    real = Store.create

    def refusing(self: Store, path: str, data: bytes) -> bool:
        if is_marker(path):
            raise StorageError(f"Access denied writing {path}", url=self.url)
        return real(self, path, data)

    monkeypatch.setattr(Store, "create", refusing)
    with caplog.at_level(logging.WARNING, logger="kirin"):
        registry_root.catalog().create_dataset("made")
    monkeypatch.undo()
    assert "Could not write the catalog marker" in caplog.text and "'made'" in caplog.text
    assert marked(registry_root) == {}
    assert registry_root.catalog().datasets() == ["made"]


def test_creation_killed_before_its_marker(registry_root: RegistryRoot, workdir: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed between dataset.json and its marker, a dataset is still listed (read, not
    marked); created again it exists already; gc marks it."""
    kill_at(monkeypatch, "create", is_marker)
    with pytest.raises(Killed):
        registry_root.catalog().create_dataset("made")
    with pytest.raises(Killed):
        registry_root.dataset("committed").commit("first", add_files=[write(workdir, "a", "a")])
    monkeypatch.undo()
    catalog = registry_root.catalog()
    assert marked(registry_root) == {}
    assert catalog.datasets() == truth(registry_root) == ["committed", "made"]
    with pytest.raises(DatasetExistsError):
        catalog.create_dataset("made")
    catalog.gc()
    assert sorted(marked(registry_root)) == ["committed", "made"]


def test_creation_killed_before_dataset_json_is_not_listed(
        registry_root: RegistryRoot, monkeypatch: pytest.MonkeyPatch) -> None:
    """A creation with a policy killed after the policy, before dataset.json: a folder, no
    dataset and no marker; running it again completes it, marker included."""
    kill_at(monkeypatch, "create", lambda path: path.endswith("/dataset.json"))
    with pytest.raises(Killed):
        registry_root.catalog().create_dataset("governed", policy=POLICY)
    monkeypatch.undo()
    catalog = registry_root.catalog()
    assert registry_root.objects(registry_root.join("datasets"))  # the policy is stored
    assert catalog.datasets() == truth(registry_root) == []
    assert marked(registry_root) == {}
    catalog.create_dataset("governed", policy=POLICY)
    assert catalog.datasets() == ["governed"]
    assert list(marked(registry_root)) == ["governed"]


@pytest.mark.parametrize("info", [True, False], ids=["dataset.json", "log-only"])
def test_deletion_killed_at_every_step_lists_what_is_left(
        registry_root: RegistryRoot, workdir: Path, monkeypatch: pytest.MonkeyPatch,
        info: bool) -> None:
    """delete_dataset removes the marker first: killed after any number of removals, the
    listing is what the objects left say, and deleting again finishes the job. Also for
    a dataset without ``dataset.json`` (it exists by its first commit; older writers),
    whose existence goes with that commit, before its policy versions."""
    catalog = registry_root.catalog()
    catalog.create_dataset("keep")
    for step in range(20):
        victim = catalog.create_dataset("victim", policy=POLICY)
        victim.commit("one", add_files=[write(workdir, "a", "a")], metadata={"accuracy": 1})
        victim.commit("two", add_files=[write(workdir, "b", "b")], metadata={"accuracy": 1})
        if not info:
            registry_root.rm(registry_root.join("datasets", "victim", "dataset.json"))
        kill_at(monkeypatch, "remove", lambda path: True, after=step)
        try:
            catalog.delete_dataset("victim", governed=True)
        except Killed:
            killed = True
        else:
            killed = False
        monkeypatch.undo()
        if step == 0:  # killed at the marker: nothing else removed
            assert "victim" in marked(registry_root) and killed
        else:
            assert "victim" not in marked(registry_root)
        assert catalog.datasets() == truth(registry_root)
        if not killed:
            break
        catalog.delete_dataset("victim", governed=True)
        assert catalog.datasets() == truth(registry_root) == ["keep"]
    else:
        pytest.fail("delete_dataset was killed at every one of 20 steps: it never finished")
    assert step >= 4 + info  # the marker, two log entries, a policy version, dataset.json
    assert catalog.datasets() == ["keep"]
    assert list(marked(registry_root)) == ["keep"]


def test_two_writers_creating_one_dataset_leave_one_marker(registry_root: RegistryRoot
                                                           ) -> None:
    """One create_dataset wins, the other is refused; one dataset, one marker."""
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def create() -> None:
        catalog = registry_root.catalog()
        barrier.wait()
        try:
            catalog.create_dataset("shared")
            outcomes.append("created")
        except DatasetExistsError:
            outcomes.append("exists")

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created", "exists"]
    assert marked(registry_root) == {"shared": marker_body("shared")}
    assert Catalog(registry_root.url, **registry_root.storage_options).datasets() == ["shared"]
