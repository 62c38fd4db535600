"""Checkpoints of a long history: written, used, and ignored when damaged or forged.

Part of the Dataset API tests (split by concern: ``test_dataset_*.py``). Every test
that touches storage takes ``registry_root`` (through ``ds``) and so runs once per
backend in ``roots.BACKENDS``; ``storage_free`` ones run on memory only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from kirin._json import canonical_json
from kirin.history import record_hash
from kirin.store import Store

from dataset_helpers import Source
from roots import RegistryRoot

#: The stored objects of a 250-commit dataset, built once per backend and copied.
_LONG: dict[str, tuple[list[str], dict[str, bytes]]] = {}
LONG = 250


@pytest.fixture
def long_history(registry_root: RegistryRoot, src: Source) -> list[str]:
    """Dataset ``ds`` with 250 commits on this root; returns their hashes, oldest first."""
    if registry_root.backend not in _LONG:
        ds = registry_root.dataset()
        hashes = [ds.commit(f"c{i}", add_files={"f": src("f", str(i))}, metadata={"i": i},
                            tags=["even"] if i % 2 == 0 else [])
                  for i in range(LONG)]
        objects = {rel: registry_root.cat(registry_root.join(rel))
                   for rel in registry_root.objects()}
        _LONG[registry_root.backend] = (hashes, objects)
        return hashes
    hashes, objects = _LONG[registry_root.backend]
    for rel, data in objects.items():
        registry_root.pipe(registry_root.join(rel), data)
    return hashes


def fresh_hashes(root: RegistryRoot) -> list[str]:
    return [c.hash for c in root.dataset().history()][::-1]


def rechain(records: list[dict[str, Any]], at: int) -> list[dict[str, Any]]:
    """The records with record ``at`` altered and every later one re-hashed to chain on."""
    out = [dict(r) for r in records]
    out[at]["message"] = "forged"
    for i in range(at, len(out)):
        if i > 0 and i != at:
            out[i]["parent"] = out[i - 1]["hash"]
        out[i]["hash"] = record_hash(out[i])
    return out


class TestCheckpoints:
    """Checkpoints speed up opening and never hide or alter commits."""

    def test_checkpoints_written_and_used(self, registry_root: RegistryRoot,
                                          long_history: list[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
        """With 250 commits, checkpoints end at 99 and 199; reopening reads the same history
        without reading every log entry."""
        folder = registry_root.join("datasets", "ds", "checkpoints")
        names = sorted(p.rsplit("/", 1)[-1] for p in registry_root.fs.ls(folder, detail=False))
        assert names == [f"{99:020d}.json", f"{199:020d}.json"]

        read: list[str] = []
        store_cls = Store
        real_read, real_many = store_cls.read, store_cls.read_many

        def spy_read(self: Any, path: str) -> bytes | None:
            read.append(path)
            return real_read(self, path)

        def spy_many(self: Any, paths: Any) -> Any:
            read.extend(paths)
            return real_many(self, paths)

        monkeypatch.setattr(store_cls, "read", spy_read)
        monkeypatch.setattr(store_cls, "read_many", spy_many)
        assert fresh_hashes(registry_root) == long_history
        log_reads = {p for p in read if "/log/" in p}
        assert len(log_reads) < 100

    def test_checkpoint_is_the_canonical_json_of_its_log_records(
            self, registry_root: RegistryRoot, long_history: list[str]) -> None:
        """A checkpoint (assembled from the records' stored text) is byte for byte the
        canonical JSON of {first, kirin, last, records}, its records equal to the log's."""
        data = registry_root.cat(registry_root.checkpoint_path("ds", 199))
        body = json.loads(data)
        assert data == (canonical_json(body) + "\n").encode()
        assert (body["first"], body["last"], body["kirin"]) == (100, 199, 1)
        log = [json.loads(registry_root.cat(registry_root.join(
            "datasets", "ds", "log", f"{seq:020d}.json"))) for seq in range(100, 200)]
        assert body["records"] == log
        assert [r["hash"] for r in log] == long_history[100:200]

    def test_reopened_history_matches(self, registry_root: RegistryRoot,
                                      long_history: list[str]) -> None:
        """A reopened dataset has the same commits, files and queries as the writer."""
        ds = registry_root.dataset()
        assert fresh_hashes(registry_root) == long_history
        assert ds.read_file("f") == str(LONG - 1)
        assert len(ds.find_commits(tags=["even"])) == LONG // 2
        assert ds.checkout(long_history[150]).metadata == {"i": 150}
        assert ds.read_file("f") == "150"

    def test_commits_continue_after_reopening(self, registry_root: RegistryRoot,
                                              long_history: list[str], src: Source) -> None:
        """A reopened dataset commits on the true head."""
        new = registry_root.dataset().commit("next", add_files={"g": src("g")})
        assert fresh_hashes(registry_root) == [*long_history, new]

    @pytest.mark.parametrize("which", [[99], [199], [99, 199]])
    def test_deleted_checkpoint(self, registry_root: RegistryRoot, long_history: list[str],
                                which: list[int]) -> None:
        """Deleting checkpoints leaves the history identical (the log is read instead)."""
        for last in which:
            registry_root.rm(registry_root.checkpoint_path("ds", last))
        assert fresh_hashes(registry_root) == long_history

    @pytest.mark.parametrize(
        "damage",
        [
            pytest.param(lambda b: b"\x00garbage", id="garbage"),
            pytest.param(lambda b: b[: len(b) // 2], marks=pytest.mark.every_backend,
                         id="truncated"),
            pytest.param(lambda b: b"", id="emptied"),
            pytest.param(lambda b: b"{}", id="empty-object"),
            pytest.param(lambda b: b.replace(b'"message":"c1', b'"message":"X1', 1),
                         id="edited-record"),
            pytest.param(lambda b: b.replace(b'"first":', b'"first":1', 1), id="wrong-first"),
        ],
    )
    @pytest.mark.parametrize("last", [99, 199])
    @pytest.mark.storage_free
    def test_corrupt_checkpoint(self, registry_root: RegistryRoot, long_history: list[str],
                                damage: Callable[[bytes], bytes], last: int) -> None:
        """A damaged checkpoint is ignored: the history is identical."""
        path = registry_root.checkpoint_path("ds", last)
        original = registry_root.cat(path)
        registry_root.pipe(path, damage(original))
        assert registry_root.cat(path) != original
        assert fresh_hashes(registry_root) == long_history

    @pytest.mark.parametrize(("last", "forged_at"), [
        (99, 0), (99, 50), (99, 99), pytest.param(199, 100, marks=pytest.mark.every_backend),
        (199, 150)])
    @pytest.mark.storage_free
    def test_checkpoint_disagreeing_with_log(self, registry_root: RegistryRoot,
                                             long_history: list[str], last: int,
                                             forged_at: int) -> None:
        """A self-consistent checkpoint that tells another story than the log is ignored."""
        path = registry_root.checkpoint_path("ds", last)
        body = json.loads(registry_root.cat(path))
        first = body["first"]
        body["records"] = rechain(body["records"], forged_at - first)
        registry_root.pipe(path, json.dumps(body).encode())
        history = registry_root.dataset().history()
        assert [c.hash for c in history][::-1] == long_history
        assert all(c.message != "forged" for c in history)
