"""Several requests at once on fsspec's asynchronous filesystems (S3, GCS, Azure).

Small objects are read concurrently, and a large blob in ranges with a few
in flight, through the filesystem's own event loop. The results are handed
back in order; nothing here retries or checks bytes (the caller does both).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

from .sources import PART_SIZE

DOWNLOAD_WINDOW = 4  # ranged reads in flight when downloading a large blob


def _sync(fs: Any, call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)`` run to its end in ``fs``'s event loop, from this thread."""
    from fsspec.asyn import sync  # loaded already: ``fs`` is an fsspec filesystem

    return sync(fs.loop, call, *args, **kwargs)


def cat_many(fs: Any, paths: Sequence[str], options: dict[str, Any]
             ) -> dict[str, bytes | BaseException]:
    """Objects by path, read concurrently; a failure is the value of its path.

    Not ``fs.cat(list)``, which first expands every path (a HEAD and a LIST
    each on s3fs) to support globs.
    """
    import asyncio  # with fsspec's async filesystems, not with ``import kirin``

    async def gather() -> list[Any]:
        return list(await asyncio.gather(*(fs._cat_file(p, **options) for p in paths),
                                         return_exceptions=True))

    results = _sync(fs, gather)
    return {p: (r if isinstance(r, BaseException) else bytes(r))
            for p, r in zip(paths, results, strict=True)}


def ranged_reads(fs: Any, path: str, start: int, size: int) -> Generator[bytes, None, None]:
    """Ranges of ``PART_SIZE`` from ``start``, ``DOWNLOAD_WINDOW`` in flight, in order.

    The last range asks for one byte past ``size``, so that an object
    longer than recorded shows up.
    """
    import asyncio

    async def get(offset: int) -> bytes:
        end = offset + PART_SIZE if offset + PART_SIZE < size else size + 1
        return bytes(await fs._cat_file(path, start=offset, end=end))

    offsets = iter(range(start, size, PART_SIZE) if start < size else [size])
    in_flight: list[Any] = []
    try:
        while True:
            while len(in_flight) < DOWNLOAD_WINDOW and (offset := next(offsets, None)) \
                    is not None:
                in_flight.append(asyncio.run_coroutine_threadsafe(get(offset), fs.loop))
            if not in_flight:
                return
            yield bytes(in_flight.pop(0).result())
    finally:
        for future in in_flight:
            future.cancel()
