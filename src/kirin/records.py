"""The commit record: its format, its hash, and the checks a stored one must pass.

A commit record is a JSON object. Its ``hash`` is the SHA-256 of the
canonical JSON of every other field, so any change to a stored record (or a
checkpoint's copy of it) is detected on load. Records store the *change* a
commit made (files added or replaced, names removed) plus ``tree``, the hash
of the full snapshot: storage grows with what changed, not with the size of
the snapshot times the number of commits, and the snapshot a commit claims is
still verified whenever it is rebuilt (:mod:`kirin.history`). Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from ._json import canonical_json
from .digests import is_digest
from .errors import CorruptObjectError, InvalidNameError
from .links import check_lineage_record
from .naming import validate_file_name

FORMAT_VERSION = 1
#: Records that carry any of :data:`GOVERNANCE_KEYS` are written as version 2, so a
#: Kirin that predates them refuses the record instead of misreading a withdrawal
#: or an override as a plain commit.
GOVERNANCE_VERSION = 2
READ_VERSIONS = (FORMAT_VERSION, GOVERNANCE_VERSION)
#: What a promotion, rollback or withdrawal did; the rules a commit was let past;
#: the root policy that also judged it; who signed it; what it was derived from.
GOVERNANCE_KEYS = frozenset({"action", "override", "root_policy", "signature", "lineage"})
#: Keys a record's hash does not cover: the hash itself, and the signatures over it (a
#: commit's ``signature``, a policy version's ``signatures``).
UNHASHED_KEYS = frozenset({"hash", "signature", "signatures"})
ACTION_KINDS = ("promotion", "rollback", "withdrawal")
#: (content hash, size) of each file of a snapshot, by name.
Snapshot = Mapping[str, tuple[str, int]]

#: ``json``'s own string encoder, the one ``canonical_json`` uses (``ensure_ascii=False``).
_encode_str: Callable[[str], str] = json.encoder.encode_basestring

_RECORD_KEYS = frozenset({"kirin", "seq", "hash", "parent", "tree", "changes", "message",
                          "metadata", "tags", "timestamp", "author", "policy"})


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def tree_hash(snapshot: Snapshot) -> str:
    """Hash of a full snapshot: canonical JSON of its sorted ``[name, hash, size]`` triples.

    The JSON text is assembled from per-file strings, byte for byte what
    ``canonical_json`` writes, because a snapshot of N files is hashed on
    every commit: strings are invisible to the garbage collector, while a
    list per file made every large commit set off collections of the whole
    heap (whose cost grew with the number of commits held in memory).
    """
    encode = _encode_str
    parts = []
    for name in sorted(snapshot):
        digest, size = snapshot[name]
        if type(name) is not str or type(digest) is not str or type(size) is not int:
            return sha256_text(canonical_json([[n, h, s] for n, (h, s)
                                               in sorted(snapshot.items())]))
        parts.append(f"[{encode(name)},{encode(digest)},{size}]")
    return sha256_text("[" + ",".join(parts) + "]")


def record_hash(record: Mapping[str, Any]) -> str:
    return sha256_text(canonical_json({k: v for k, v in record.items()
                                       if k not in UNHASHED_KEYS}))


def signed_message(dataset: str, digest: str) -> bytes:
    """What a record's signature signs: its hash, bound to the dataset's name.

    The hash covers the parent, so a signed record cannot be moved within a
    history; the name stops a first commit (no parent) being replayed, signature
    and all, as the first commit of another dataset.
    """
    return f"kirin record\n{dataset}\n{digest}\n".encode()


def make_record(*, seq: int, parent: str | None, snapshot: Snapshot | None = None,
                added: Mapping[str, tuple[str, int]], removed: Iterable[str], message: str,
                metadata: Any, tags: Sequence[str], timestamp: datetime, author: str,
                policy: str | None, tree: str | None = None,
                governance: Mapping[str, Any] | None = None,
                sign: Callable[[str], dict[str, str]] | None = None) -> dict[str, Any]:
    """A complete commit record, hash included.

    ``tree`` is the snapshot's :func:`tree_hash` when the caller has it (see
    :class:`Draft`); otherwise it is computed from ``snapshot``.
    ``governance`` holds the :data:`GOVERNANCE_KEYS` the commit needs (none
    for a plain commit, which stays a version 1 record); ``sign`` maps the
    record's hash to its ``signature``.
    """
    extra = {k: v for k, v in (governance or {}).items() if v is not None}
    unknown = extra.keys() - GOVERNANCE_KEYS
    if unknown:
        raise TypeError(f"make_record: unknown governance keys {sorted(unknown)}")
    if tree is None:
        if snapshot is None:
            raise TypeError("make_record needs the snapshot or its tree hash")
        tree = tree_hash(snapshot)
    record: dict[str, Any] = {
        "kirin": GOVERNANCE_VERSION if extra or sign is not None else FORMAT_VERSION,
        "seq": seq,
        "parent": parent,
        "tree": tree,
        "changes": {
            "add": {n: {"hash": h, "size": s} for n, (h, s) in sorted(added.items())},
            "remove": sorted(removed),
        },
        "message": message,
        "metadata": metadata,
        "tags": list(tags),
        "timestamp": timestamp.isoformat(),
        "author": author,
        "policy": policy,
        **extra,
    }
    record["hash"] = record_hash(record)
    if sign is not None:
        record["signature"] = sign(record["hash"])
    return record


def encode_record(record: Mapping[str, Any]) -> bytes:
    return (canonical_json(record) + "\n").encode("utf-8")


def decode_record(data: bytes, *, where: str, seq: int | None = None) -> dict[str, Any]:
    """Parse and verify one stored record; any defect is a CorruptObjectError."""
    try:
        record = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError: JSONDecodeError, or an integer past Python's digit limit;
        # RecursionError: nesting deeper than the decoder's stack allows.
        raise CorruptObjectError(f"Commit record {where} is not valid JSON ({exc}); "
                                 "it may be truncated", path=where) from exc
    try:
        text: str | None = data.decode("utf-8").removesuffix("\n")
    except UnicodeDecodeError:  # pragma: no cover - json.loads took it as UTF-16/32
        text = None
    return check_record(record, where=where, seq=seq, text=text)


def hashes_as_stored(record: Mapping[str, Any], text: str) -> bool:
    """Whether ``text``, the stored JSON of ``record``, proves its hash without re-encoding.

    ``text`` minus its ``"hash"`` member (and its ``"signature"`` member, which
    the hash does not cover either) is hashed as it is. A match means that
    text is exactly what the writer hashed, i.e. the canonical JSON of the
    record's other fields (forging it would need a SHA-256 preimage), so this
    is the same check as :func:`record_hash` at a fraction of the cost.
    ``False`` (text not canonical, or altered) only means the caller must
    re-encode and compare.

    The members are found where canonical JSON puts them: ``hash`` first
    after ``changes`` (the first occurrence; nothing before it can hold one),
    ``signature`` just before ``tags`` (the last occurrence: only strings
    follow it). Inside a JSON string every ``"`` is escaped, so neither
    pattern can be cut from a string.
    """
    digest = record.get("hash")
    if not is_digest(digest):
        return False
    member = f',"hash":"{digest}"'
    at = text.find(member + ',"kirin":')
    if at < 0:
        return False
    stripped = text[:at] + text[at + len(member):]
    signature = record.get("signature")
    if signature is not None:
        if not (isinstance(signature, dict) and set(signature) == {"key", "sig"}
                and all(isinstance(v, str) for v in signature.values())):
            return False
        signed = f',"signature":{{"key":{_encode_str(signature["key"])},' \
                 f'"sig":{_encode_str(signature["sig"])}}}'
        at = stripped.rfind(signed + ',"tags":')
        if at < 0:
            return False
        stripped = stripped[:at] + stripped[at + len(signed):]
    try:
        return hashlib.sha256(stripped.encode("utf-8")).hexdigest() == digest
    except UnicodeEncodeError:
        return False


def check_record(record: Any, *, where: str, seq: int | None = None,
                 text: str | None = None) -> dict[str, Any]:
    """``record`` if it is a well-formed, unaltered commit record; else CorruptObjectError.

    ``text``, the record's JSON as stored, lets the hash be checked without
    re-encoding the record (see :func:`hashes_as_stored`).
    """
    _check_record(record, where, seq, text)
    checked: dict[str, Any] = record
    return checked


def check_stored_record(record: Any, text: str, *, where: str, seq: int | None = None
                        ) -> str | None:
    """:func:`check_record` of ``record`` parsed from ``text``; ``text`` if it proved the hash.

    A proven text is the record's canonical JSON, which :meth:`History.append`
    can cut the metadata's JSON from instead of re-encoding it.
    """
    return text if _check_record(record, where, seq, text) else None


def _check_record(record: Any, where: str, seq: int | None, text: str | None) -> bool:
    """Raise CorruptObjectError unless ``record`` is sound; ``True`` if ``text`` proved it."""
    def bad(reason: str) -> CorruptObjectError:
        return CorruptObjectError(f"Commit record {where} is malformed: {reason}",
                                  path=where)

    if not isinstance(record, dict):
        raise bad("not a JSON object")
    version = record.get("kirin")
    if type(version) is not int or version not in READ_VERSIONS:
        raise bad(f"unknown format version {version!r} (this Kirin reads versions "
                  f"{', '.join(map(str, READ_VERSIONS))}; a newer Kirin wrote it)")
    missing = _RECORD_KEYS - record.keys()
    if missing:
        raise bad(f"missing {', '.join(sorted(missing))}")
    _check_governance(record, version, bad)
    if seq is not None and record["seq"] != seq:
        raise bad(f"it says it is commit #{record['seq']}, expected #{seq}")
    changes = record["changes"]
    if not (isinstance(changes, dict) and isinstance(changes.get("add"), dict)
            and isinstance(changes.get("remove"), list)):
        raise bad("'changes' must hold 'add' (object) and 'remove' (list)")
    for name, entry in changes["add"].items():
        if not (isinstance(entry, dict) and isinstance(entry.get("hash"), str)
                and isinstance(entry.get("size"), int)):
            raise bad(f"file entry {name!r} needs a string 'hash' and an integer 'size'")
        if not is_digest(entry["hash"]) or entry["size"] < 0:
            raise bad(f"file entry {name!r} has an invalid hash or size")
    for name in [*changes["add"], *changes["remove"]]:
        _check_stored_name(name, bad)
    for key in ("message", "author", "timestamp"):
        if not isinstance(record[key], str):
            raise bad(f"{key!r} must be a string")
    for key in ("parent", "policy"):
        if record[key] is not None and not is_digest(record[key]):
            raise bad(f"{key!r} must be a hash or null")
    if not isinstance(record["tags"], list) or not all(isinstance(t, str) for t in record["tags"]):
        raise bad("'tags' must be a list of strings")
    if not isinstance(record["metadata"], dict):
        raise bad("'metadata' must be an object")
    if text is not None and hashes_as_stored(record, text):
        return True
    try:
        actual = record_hash(record)
    except (ValueError, RecursionError) as exc:  # NaN, lone surrogates: Kirin writes neither
        raise bad(f"it holds a value canonical JSON cannot encode ({exc})") from exc
    if actual != record["hash"]:
        raise CorruptObjectError(
            f"Commit record {where} does not match its hash: it claims "
            f"{str(record['hash'])[:12]} but its content hashes to {actual[:12]}; "
            "it was altered after it was written", path=where, commit=str(record["hash"]))
    return False


def _check_governance(record: dict[str, Any], version: int,
                      bad: Callable[[str], CorruptObjectError]) -> None:
    """Version 2 keys: present only in version 2 records, and each well-formed.

    A version 1 record carrying one would be read as a plain commit by the
    Kirin that wrote version 1 only: refused, as is a key no version defines.
    """
    present = GOVERNANCE_KEYS & record.keys()
    if version == FORMAT_VERSION:
        if present:
            raise bad(f"a version 1 record cannot carry {', '.join(sorted(present))}")
        return
    if not present:
        raise bad("a version 2 record must carry action, override, root_policy, signature "
                  "or lineage")
    unknown = record.keys() - _RECORD_KEYS - GOVERNANCE_KEYS - {"hash"}
    if unknown:
        raise bad(f"unknown keys {', '.join(sorted(unknown))} (written by a newer Kirin?)")
    if "root_policy" in record and not is_digest(record["root_policy"]):
        raise bad("'root_policy' must be a hash")
    if "action" in record:
        _check_action(record["action"], bad)
    if "override" in record:
        _check_override(record["override"], bad)
    if "lineage" in record:
        check_lineage_record(record["lineage"], bad)
    if "signature" in record:
        signature = record["signature"]
        if not (isinstance(signature, dict) and set(signature) == {"key", "sig"}
                and all(isinstance(v, str) and v for v in signature.values())):
            raise bad("'signature' must hold the signer's public 'key' and the SSHSIG "
                      "'sig' (both text)")


def _check_action(action: Any, bad: Callable[[str], CorruptObjectError]) -> None:
    if not isinstance(action, dict) or action.get("kind") not in ACTION_KINDS:
        raise bad(f"'action' must be an object whose kind is one of {', '.join(ACTION_KINDS)}")
    kind = action["kind"]
    needs = {"promotion": {"source"}, "rollback": {"source", "held", "policy", "root_policy"},
             "withdrawal": {"stage", "holder"}}[kind]
    if set(action) != needs | {"kind"}:
        raise bad(f"a {kind} action holds exactly: kind, {', '.join(sorted(needs))}")
    for key in needs & {"source", "held", "holder"}:
        if not is_digest(action[key]):
            raise bad(f"'action.{key}' must be a commit hash")
    if kind == "rollback":
        judged = [action["policy"], action["root_policy"]]
        if not all(p is None or is_digest(p) for p in judged) or judged == [None, None]:
            raise bad("a rollback names the policy hashes it was judged by "
                      "('policy', 'root_policy': a hash or null, not both null)")
    if kind == "withdrawal" and not (isinstance(action["stage"], str) and action["stage"]):
        raise bad("'action.stage' must be a stage name")


def _check_override(override: Any, bad: Callable[[str], CorruptObjectError]) -> None:
    if not (isinstance(override, dict) and set(override) == {"reason", "violations"}
            and isinstance(override["reason"], str)
            and isinstance(override["violations"], list) and override["violations"]):
        raise bad("'override' must hold a 'reason' and the non-empty list of 'violations' "
                  "it let past")
    for item in override["violations"]:
        if not (isinstance(item, dict) and set(item) == {"rule", "path", "source", "message"}
                and all(isinstance(v, str) for v in item.values())):
            raise bad("each overridden violation holds the strings rule, path, source and "
                      "message")


@contextmanager
def unusable_unless_sound(what: str, path: str) -> Iterator[Callable[[str], CorruptObjectError]]:
    """Read a stored object inside this block: any defect is one CorruptObjectError naming it.

    Yields ``bad(reason)``, the error to raise for a defect found by hand; a
    record inside that fails its own check, or a parse that fails (a missing
    key, a wrong type, nesting too deep), becomes ``what path is unusable (...)``.
    Shared by the readers of checkpoints and summaries, which repeat records.
    """
    def bad(reason: str) -> CorruptObjectError:
        return CorruptObjectError(f"{what} {path} is unusable ({reason})", path=path)

    try:
        yield bad
    except CorruptObjectError as exc:
        if exc.path == path:
            raise
        raise bad(str(exc)) from exc
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise bad(f"{type(exc).__name__}: {exc}") from exc


def check_folder_clash(snapshot: Mapping[str, Any]) -> None:
    """A name cannot be both a file and a folder of other files."""
    folders: dict[str, str] = {}
    for name in snapshot:
        parts = name.split("/")
        for i in range(1, len(parts)):
            folders.setdefault("/".join(parts[:i]), name)
    for name in snapshot:
        if name in folders:
            raise InvalidNameError(name, f"it is a file and also the folder of "
                                   f"{folders[name]!r}", kind="file name")


#: Names already found valid: a long history names the same files again and again.
_VALID_NAMES: set[str] = set()


def _check_stored_name(name: Any, bad: Callable[[str], CorruptObjectError]) -> None:
    """A name read from storage must be one Kirin itself would have written."""
    if type(name) is str and name in _VALID_NAMES:
        return
    try:
        if validate_file_name(name) != name:
            raise bad(f"file name {name!r} is not in normal form (NFC)")
    except InvalidNameError as exc:
        raise bad(f"unsafe file name: {exc}") from exc
    if len(_VALID_NAMES) >= 65536:  # bounded: forget, and validate again
        _VALID_NAMES.clear()
    _VALID_NAMES.add(name)
