"""Create-if-absent: how each backend makes a write-once object appear exactly once.

* local disk: fsspec's ``pipe_file(mode="create")`` is an exists-check then a
  write, so the object is written to a temporary file and published with
  ``os.link`` (atomic, fails with EEXIST, and readers never see a partial file);
* memory: fsspec's create is a check-then-insert, so creates take a lock (a
  ``memory://`` filesystem lives in one process, so that makes them atomic);
* S3, GCS, Azure: a conditional PUT. A failed ``If-None-Match`` may surface
  as ``OSError(EINVAL)`` rather than ``FileExistsError`` (s3fs); both mean
  "someone else created it". Some S3-compatible servers silently ignore the
  condition, so the first create in a bucket probes that the server honours
  it, and Kirin refuses to write where it does not.

:meth:`kirin.store.Store.create` decides which applies.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import uuid
import warnings
from collections.abc import Callable
from typing import Any

from . import backends
from .errors import UnsafeConcurrencyWarning, UnsafeStorageError

#: Set to "1" to write to a server that ignores create-if-absent (one writer only!).
ALLOW_UNSAFE_ENV = "KIRIN_ALLOW_UNSAFE_STORAGE"
memory_lock = threading.Lock()
_probed: dict[tuple[str, str, str], bool] = {}
_probe_lock = threading.Lock()


def lost_race(exc: BaseException) -> bool:
    """True when a create-if-absent write failed because the object exists."""
    if isinstance(exc, FileExistsError):
        return True
    return isinstance(exc, OSError) and exc.errno == errno.EINVAL


def create_local(path: str, data: bytes) -> bool:
    """Write ``data`` at the local ``path`` unless it exists; ``False`` if it did."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}")
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def honoured(fs: Any, root: str, probe: Callable[[], bool]) -> bool:
    """Whether the server of ``root``'s bucket refuses a second create: ``probe()`` once
    per bucket and process."""
    key = (f"{type(fs).__module__}.{type(fs).__qualname__}",
           str(getattr(fs, "_fs_token", id(fs))), backends.bucket_of(fs, root))
    with _probe_lock:
        if key not in _probed:
            _probed[key] = probe()
        return _probed[key]


def refuse_unless(is_honoured: bool, fs: Any, url: str) -> None:
    """Refuse to write where a second create succeeds, unless ``ALLOW_UNSAFE_ENV`` allows it.

    A server that ignores ``If-None-Match: *`` (or ``ifGenerationMatch=0``)
    would let two writers both "create" the same log entry, the second
    silently replacing the first.
    """
    backends.warn_if_unsafe(fs, url)
    if is_honoured:
        return
    message = (f"The storage at {url} does not honour create-if-absent: a second "
               "conditional create of the same object succeeded. Concurrent commits "
               "could overwrite each other there, so Kirin refuses to write. Use a "
               "server that supports conditional writes (If-None-Match: *), or set "
               f"{ALLOW_UNSAFE_ENV}=1 if only one writer ever commits.")
    if os.environ.get(ALLOW_UNSAFE_ENV) == "1":
        warnings.warn(message, UnsafeConcurrencyWarning, stacklevel=4)
        return
    raise UnsafeStorageError(message, url=url)
