"""Where everything lives under a registry root: the one module that spells a storage path.

Every other module asks here, so the layout documented in
``docs/storage-format.md`` has one home, and a reader of one log cannot
drift from its writer (the way a third, private reading of the commit log
once let garbage collection delete live data). Paths are relative to the
root, with ``/`` separators; :meth:`kirin.store.Store.path` makes them
absolute.

::

    data/<sha256[:2]>/<sha256[2:]>          blobs, shared by every dataset
    tmp/<uuid>.part                         local disk: blobs being written
    .kirin-probe-<uuid>                     object stores: a create-if-absent test, removed
    datasets/<name>/dataset.json            name, description, creation time
    datasets/<name>/log/<seq>.json          commit records (write-once)
    datasets/<name>/checkpoints/<last>.json blocks of commit records
    datasets/<name>/summaries/<top-last>.json the snapshot at commit <last>, newest name first
    datasets/<name>/segments/<last>.jsonl   many checkpoint blocks of records in one object
    datasets/<name>/policy/<seq>.json       policy versions (write-once)
    datasets/<name>/approvals/<commit>/<sha256 of stage>/<sha256 of key>.json  approvals
    policy/<seq>.json                       root policy versions: govern every dataset
    catalog/<name>                          a dataset's marker: it exists (for listings)
"""

from __future__ import annotations

import hashlib

DATA = "data"
TEMP = "tmp"
DATASETS = "datasets"
ROOT_POLICY = "policy"
CATALOG = "catalog"
#: Width of the zero-padded number of a log entry: names sort in numeric order.
SEQ_DIGITS = 20
_SUFFIX = ".json"


def blob(digest: str) -> str:
    return f"{DATA}/{digest[:2]}/{digest[2:]}"


def digest_of_blob(relative: str) -> str:
    """The content hash a path under :data:`DATA` stands for (not checked)."""
    return relative.replace("/", "")


def temp(name: str) -> str:
    return f"{TEMP}/{name}"


def probe(token: str) -> str:
    """An object written and removed once, to learn whether the server honours create-if-absent."""
    return f".kirin-probe-{token}"


def dataset(name: str) -> str:
    return f"{DATASETS}/{name}"


def dataset_info(name: str) -> str:
    return f"{DATASETS}/{name}/dataset.json"


def commit_log(name: str) -> str:
    return f"{DATASETS}/{name}/log"


def checkpoints(name: str) -> str:
    return f"{DATASETS}/{name}/checkpoints"


def summaries(name: str) -> str:
    return f"{DATASETS}/{name}/summaries"


def segments(name: str) -> str:
    """The folder of a dataset's segments: records of many checkpoint blocks per object."""
    return f"{DATASETS}/{name}/segments"


def policy_log(name: str) -> str:
    return f"{DATASETS}/{name}/policy"


def lineage_indexes(name: str) -> str:
    """The folder of a dataset's lineage index: one object per checkpoint block."""
    return f"{DATASETS}/{name}/lineage"


def lineage_index(name: str, last: int) -> str:
    return f"{lineage_indexes(name)}/{entry_name(last)}"


def commit_approvals(name: str, commit: str) -> str:
    """The folder of every approval of ``commit``, one sub-folder per stage."""
    return f"{DATASETS}/{name}/approvals/{commit}"


def approvals(name: str, commit: str, stage: str) -> str:
    """The folder of the approvals of ``commit`` for ``stage`` (one object per key).

    The stage is hashed: a tag may hold any character, a path segment may not.
    """
    digest = hashlib.sha256(stage.encode("utf-8")).hexdigest()
    return f"{commit_approvals(name, commit)}/{digest}"


def approval(name: str, commit: str, stage: str, key: str) -> str:
    """Where the approval by ``key`` (an OpenSSH public key line) is stored."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"{approvals(name, commit, stage)}/{digest}.json"


def catalog_marker(name: str) -> str:
    """The marker saying dataset ``name`` exists, so that listing the root needs no read of it."""
    return f"{CATALOG}/{name}"


def root_policy_log() -> str:
    return ROOT_POLICY


def entry_name(seq: int) -> str:
    """The base name of entry ``seq`` of a write-once log (or of a checkpoint ending there)."""
    return f"{seq:0{SEQ_DIGITS}d}{_SUFFIX}"


def entry_seq(name: str) -> int | None:
    """The number an entry's base name stands for, or ``None`` if Kirin wrote no such name."""
    return _number_of(name, _SUFFIX)


def _number_of(name: str, suffix: str) -> int | None:
    """The number of ``<SEQ_DIGITS ASCII digits><suffix>``; ``None`` for any other name."""
    digits = name[:-len(suffix)]
    if (len(name) == SEQ_DIGITS + len(suffix) and name.endswith(suffix)
            and digits.isascii() and digits.isdigit()):
        return int(digits)
    return None


def log_entry(name: str, seq: int) -> str:
    return f"{commit_log(name)}/{entry_name(seq)}"


def checkpoint(name: str, last: int) -> str:
    return f"{checkpoints(name)}/{entry_name(last)}"


#: A segment is JSON Lines (a header, then one record per line), not one JSON document.
_SEGMENT_SUFFIX = ".jsonl"


def segment_name(last: int) -> str:
    """The base name of the segment ending at commit ``last``."""
    return f"{last:0{SEQ_DIGITS}d}{_SEGMENT_SUFFIX}"


def segment_last(name: str) -> int | None:
    """The last commit a segment's base name stands for, or ``None`` if Kirin wrote no such
    name."""
    return _number_of(name, _SEGMENT_SUFFIX)


def segment(name: str, last: int) -> str:
    return f"{segments(name)}/{segment_name(last)}"


def policy_entry(name: str, seq: int) -> str:
    return f"{policy_log(name)}/{entry_name(seq)}"


#: Summaries are named ``SUMMARY_TOP - last``: the newest sorts first, so one listing
#: request (``StartAfter`` nothing, first page) finds it whatever the history's length.
SUMMARY_TOP = 10 ** SEQ_DIGITS - 1


def summary_name(last: int) -> str:
    """The base name of the summary of commits up to ``last``."""
    return entry_name(SUMMARY_TOP - last)


def summary_last(name: str) -> int | None:
    """The last commit a summary's base name stands for, or ``None`` if Kirin wrote no such name."""
    inverted = entry_seq(name)
    return None if inverted is None else SUMMARY_TOP - inverted


def summary(name: str, last: int) -> str:
    return f"{summaries(name)}/{summary_name(last)}"
