"""Long histories on an object store, and the requests reading them costs.

Shared by ``tests/test_cloud_summaries.py`` (request counts, no delay) and
``benchmarks/bench_latency.py`` (a fixed delay per request, as a cloud bucket
adds):

* :func:`synthesize` writes a history of any length in the real storage
  format, fast: records go through the real journal (so checkpoints and
  summaries are exactly what writers make) on ``memory://``;
* :func:`upload` copies such a registry to a bucket, many objects at once;
* :class:`LatencyProxy` sits between a client and the server, waits a fixed
  time before forwarding each request, and counts requests by operation
  (``GET``, ``HEAD``, ``PUT``, ``LIST``, ...) and by kind of object
  (``marker``, ``summary``, ``checkpoint``, ``segment``, ``log``, ``blob``, ``policy``,
  ``other``).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from fsspec.implementations.memory import MemoryFileSystem

from kirin.history import History, make_record
from kirin.journal import Journal
from kirin.store import Store

from servers import FaultProxy, Request

#: A catalog marker (``catalog/<name>``) or their listing; not a dataset named ``catalog``.
MARKER = re.compile(r"(?<!/datasets)/catalog(/[^/]+)?$")
KINDS = (("/summaries", "summary"), ("/checkpoints", "checkpoint"), ("/segments", "segment"),
         ("/log", "log"), ("/policy", "policy"), ("/data/", "blob"))


def kind_of(path: str) -> str:
    """What a stored path is: ``marker``, ``summary``, ``checkpoint``, ``segment``, ``log``,
    ``policy``, ``blob`` or ``other``."""
    if MARKER.search(path):
        return "marker"
    for folder, name in KINDS:
        if folder in path:
            return name
    return "other"


def operation(request: Request) -> tuple[str, str]:
    """``(operation, kind of object)`` of one S3 request (a listing names its prefix)."""
    parsed = urllib.parse.urlsplit(request.target)
    query = urllib.parse.parse_qs(parsed.query)
    if request.method == "GET" and "list-type" in query:
        return "LIST", kind_of("/" + query.get("prefix", [""])[0].rstrip("/"))
    return request.method, kind_of(urllib.parse.unquote(parsed.path))


class LatencyProxy(FaultProxy):
    """A loopback proxy adding ``delay`` seconds before each request; counts them.

    The delay is spent on the connection's own thread, so concurrent requests
    wait concurrently, as they would on a far-away server.
    """

    def __init__(self, upstream_port: int, delay: float = 0.0) -> None:
        self.delay = delay
        self.counted: Counter[tuple[str, str]] = Counter()
        self._count_lock = threading.Lock()
        super().__init__(upstream_port)

    def _match(self, request: Request) -> Any:
        with self._count_lock:
            self.counted[operation(request)] += 1
        if self.delay:
            time.sleep(self.delay)
        return None

    def take(self) -> Counter[tuple[str, str]]:
        """The counts since the last call, and start counting again."""
        with self._count_lock:
            counted, self.counted = self.counted, Counter()
        return counted


class _ObjectsStore(Store):
    """A store whose write-once objects go to a dict: the journal writes the real format,
    without a filesystem's per-object costs (``memory://`` looks for a folder on every
    create of an absent path, which made long histories quadratic)."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.objects: dict[str, bytes] = {}

    def create(self, path: str, data: bytes) -> bool:
        if path in self.objects:
            return False
        self.objects[path] = data
        return True

    def exists(self, path: str) -> bool:
        return path in self.objects

    def read(self, path: str) -> bytes | None:
        return self.objects.get(path)


def synthesize_objects(commits: int, name: str = "ds", files: int = 1,
                       tags_of: Callable[[int], list[str]] | None = None
                       ) -> tuple[dict[str, bytes], list[str]]:
    """The objects of a registry of ``commits`` commits (path under the root -> bytes),
    written by the real journal, and the commits' hashes.

    Commit ``i`` sets file ``f{i % files}`` to one small blob and carries
    metadata ``{"i": i}`` and tags ``tags_of(i)`` (default: ``even`` on even
    commits).
    """
    root = f"memory://kirin-synth/{uuid.uuid4().hex}"
    store = _ObjectsStore(root)
    journal = Journal(store, name, History(name, store))
    blob = b"model"
    digest = hashlib.sha256(blob).hexdigest()
    store.objects[store.blob_path(digest)] = blob
    snapshot: dict[str, tuple[str, int]] = {}
    hashes: list[str] = []
    when = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for seq in range(commits):
        added = {f"f{seq % files}": (digest, len(blob))}
        snapshot.update(added)
        tags = tags_of(seq) if tags_of is not None else (["even"] if seq % 2 == 0 else [])
        record = make_record(seq=seq, parent=hashes[-1] if hashes else None, snapshot=snapshot,
                             added=added, removed=(), message=f"commit {seq}",
                             metadata={"i": seq}, tags=tags,
                             timestamp=when + timedelta(seconds=seq), author="synthesized",
                             policy=None)
        assert journal.publish(record)
        journal.write_due_checkpoints()
        hashes.append(record["hash"])
    prefix = store.root + "/"
    return {path[len(prefix):]: data for path, data in store.objects.items()}, hashes


def synthesize(url: str, commits: int, name: str = "ds", files: int = 1,
               tags_of: Callable[[int], list[str]] | None = None) -> list[str]:
    """``commits`` commits of dataset ``name`` under ``url`` (see :func:`synthesize_objects`).

    Returns the hashes.
    """
    objects, hashes = synthesize_objects(commits, name, files, tags_of)
    store = Store(url)
    store.fs.pipe({store.path(path): data for path, data in objects.items()})
    return hashes


def write_local(objects: dict[str, bytes], folder: str) -> None:
    """Write synthesized objects under the local ``folder`` (a registry root)."""
    made: set[str] = set()
    for path, data in objects.items():
        target = os.path.join(folder, path)
        parent = os.path.dirname(target)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        with open(target, "wb") as handle:
            handle.write(data)


def upload(source_url: str, fs: Any, target: str, batch: int = 500) -> int:
    """Copy every object under the ``memory://`` registry ``source_url`` to ``target``
    (a path on ``fs``), ``batch`` at once; returns how many."""
    memory = MemoryFileSystem()
    root = source_url.removeprefix("memory:/").rstrip("/")
    paths = memory.find(root)
    for at in range(0, len(paths), batch):
        fs.pipe({f"{target}/{p[len(root) + 1:]}": memory.cat_file(p)
                 for p in paths[at:at + batch]})
    return len(paths)
