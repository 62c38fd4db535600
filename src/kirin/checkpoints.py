"""Checkpoints: blocks of commit records repeated in one object, and their one reader.

``checkpoints/<last>.json`` repeats log entries ``first`` to ``last`` (see
``docs/storage-format.md``). Derived data: every record is verified like a
log entry, and a checkpoint that cannot be trusted is read as ``None`` by
opening (the log is read instead) and reported by ``verify``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import CorruptObjectError
from .records import check_record, check_stored_record, unusable_unless_sound

#: A checkpoint as Kirin writes it, cut into records not yet checked: ``first`` and each
#: parsed record with its own JSON text (see :func:`split_checkpoint`).
Split = tuple[int, list[tuple[Any, str]]]
#: Checked records, each with its canonical JSON when that proved its hash (else ``None``).
Loaded = list[tuple[dict[str, Any], str | None]]


def encode_checkpoint(first: int, last: int, record_texts: list[str]) -> bytes:
    """canonical_json of {"first", "kirin", "last", "records"}, assembled from the records'
    own canonical text (no re-encoding)."""
    records = ",".join(record_texts)
    return f'{{"first":{first},"kirin":1,"last":{last},"records":[{records}]}}\n'.encode()


def checkpoint_records(data: bytes | None, path: str, last: int
                        ) -> list[tuple[dict[str, Any], str | None]] | None:
    """:func:`read_checkpoint`, or ``None`` if the checkpoint is missing or cannot be trusted."""
    if data is None:
        return None
    try:
        return read_checkpoint(data, path, last)
    except CorruptObjectError:
        return None


def read_checkpoint(data: bytes, path: str, last: int
                    ) -> list[tuple[dict[str, Any], str | None]]:
    """The verified records of checkpoint ``last``, each with its canonical JSON when that
    proved its hash (else ``None``); CorruptObjectError saying why it cannot be trusted.

    The one reader of checkpoints: opening takes what it returns, ``verify``
    reports what it raises.
    """
    with unusable_unless_sound("Checkpoint", path) as bad:
        split = split_checkpoint(data, last)
        if split is not None:
            return verify_parts(split, path)
        body = json.loads(data)  # not laid out as Kirin writes it: read it as any JSON
        first, records = body["first"], body["records"]
        if (body.get("last") != last or not isinstance(first, int) or not isinstance(records, list)
                or len(records) != last - first + 1 or not records):
            raise bad(f"it does not hold commits up to #{last}")
        return [(check_record(r, where=f"{path}[{first + i}]", seq=first + i), None)
                for i, r in enumerate(records)]


def verify_parts(split: Split, path: str, upto: int | None = None) -> Loaded:
    """The records of ``split`` (from :func:`split_checkpoint`) up to commit ``upto`` (default:
    all), each checked like a log entry; CorruptObjectError naming the first that is not sound.

    Checking is most of the cost of reading a checkpoint, so opening checks
    only the newest records it hands out and the rest when they are asked for.
    """
    first, parts = split
    count = len(parts) if upto is None else upto - first + 1
    return [(record, check_stored_record(record, text, where=f"{path}[{first + i}]",
                                         seq=first + i))
            for i, (record, text) in enumerate(parts[:count])]


_CHECKPOINT_HEAD = re.compile(r'\{"first":(0|[1-9][0-9]*),"kirin":1,"last":(0|[1-9][0-9]*),'
                              r'"records":\[')
_scan = json.JSONDecoder().raw_decode


def split_checkpoint(data: bytes, last: int) -> Split | None:
    """``first`` and each record (parsed, not yet checked) with its own JSON text, for a
    checkpoint as Kirin writes it.

    Parsing record by record yields each record's stored text, whose hash
    can then be checked as it is (no re-encoding: most of the cost of opening
    a long history). Anything laid out otherwise gives ``None``, and the
    caller parses the checkpoint as a whole and re-encodes every record.
    """
    try:
        text = data.decode("utf-8")
        head = _CHECKPOINT_HEAD.match(text)
        if head is None or int(head[2]) != last or int(head[1]) > last:
            return None
        first, at = int(head[1]), head.end()
        parts: list[tuple[Any, str]] = []
        for _ in range(last - first + 1):
            record, end = _scan(text, at)
            parts.append((record, text[at:end]))
            at = end + 1
            if text[end:at] != ",":
                break
        if len(parts) != last - first + 1 or text[at - 1:] not in ("]}", "]}\n"):
            return None
        return first, parts
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
