"""The in-memory history of one dataset: verified records, snapshots, drafts. Pure, no I/O.

Records (their format and checks live in :mod:`kirin.records`) are kept as
compact rows and turned into :class:`~kirin.values.Commit` values only when
asked for. A snapshot is rebuilt by replaying changes and checked against the
record's ``tree``; a :class:`Draft` is the snapshot a commit would make, built
by editing the tip's tree text in O(changes).
"""

from __future__ import annotations

import bisect
import json
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from ._json import FrozenDict, canonical_json
from .digests import is_digest, is_hex_prefix
from .errors import (
    AmbiguousRefError,
    CommitNotFoundError,
    CorruptObjectError,
    InvalidNameError,
)
from .links import Lineage
from .records import (
    _RECORD_KEYS,
    FORMAT_VERSION,
    GOVERNANCE_KEYS,
    GOVERNANCE_VERSION,
    _encode_str,
    check_folder_clash,
    decode_record,
    encode_record,
    make_record,
    record_hash,
    sha256_text,
    tree_hash,
)
from .values import BlobReader, Commit, File, SnapshotSource

#: Written before a name to mean the tag, where a hash prefix could be meant.
TAG_PREFIX = "tag:"

#: Field positions in a stored row (see :func:`_row`).
(_HASH, _PARENT, _TREE, _ADD, _REMOVE, _TAGS, _MESSAGE, _METADATA, _TIMESTAMP, _AUTHOR,
 _POLICY, _RAW, _GOVERNANCE) = range(13)
#: A verified record as :class:`History` keeps it: a tuple of strings, numbers and tuples
#: of them, which CPython's garbage collector stops tracking after one collection.
Row = tuple[Any, ...]
#: Reads older records: ``(end, hash of commit end, oldest wanted)`` -> pieces going back,
#: each records ``first`` to ``end`` with their canonical JSON (or ``None``), the next
#: piece ending just before; each is checked to chain to the commit above it.
Older = Callable[[int, str, int], Iterator[list[tuple[dict[str, Any], "str | None"]]]]


def _row(record: Mapping[str, Any], text: str | None = None) -> Row:
    """The stored form of a verified record; :func:`_record_of` turns it back.

    Keeping the parsed dicts and lists instead made every full garbage
    collection scan about nine containers per commit ever loaded, so commits
    slowed down as the history grew. Metadata is kept as its canonical JSON
    and frozen only when a commit's metadata is read; ``text``, the record's
    canonical JSON when the caller has it, saves re-encoding it. A record
    holding keys Kirin does not write keeps its whole canonical text, so a
    checkpoint repeats it exactly. A version 2 record's governance keys are
    kept apart as canonical JSON, for its Commit and to rebuild the record
    (a signed history opens nearly as fast as an unsigned one).
    """
    changes = record["changes"]
    add = changes["add"]
    governance = {k: record[k] for k in GOVERNANCE_KEYS if k in record}
    plain = (len(record) == len(_RECORD_KEYS) + len(governance)
             and (not governance or record["kirin"] == GOVERNANCE_VERSION)
             and len(changes) == 2
             and type(record["kirin"]) is int and type(record["seq"]) is int
             and type(record["tree"]) is str and all(len(entry) == 2 for entry in add.values()))
    metadata = (_metadata_slice(text, "override" if "override" in governance else "parent")
                if plain and text is not None else None)
    return (record["hash"], record["parent"], record["tree"],
            tuple([(name, entry["hash"], entry["size"]) for name, entry in add.items()]),
            tuple(changes["remove"]), tuple(record["tags"]), record["message"],
            canonical_json(record["metadata"]) if metadata is None else metadata,
            record["timestamp"], record["author"], record["policy"],
            None if plain else canonical_json(record),
            _governance_json(governance, text if plain else None))


def _governance_json(governance: Mapping[str, Any], text: str | None) -> str | None:
    """The canonical JSON of a record's governance keys (``None``: none).

    A signed commit's is its ``signature`` member, cut from ``text`` (the
    record's proven canonical JSON) where canonical JSON puts it: the last
    ``,"signature":`` up to the last ``,"tags":`` (only strings follow them,
    and a ``"`` inside a string is always escaped).
    """
    if not governance:
        return None
    if text is not None and governance.keys() == {"signature"}:
        start = text.rfind(',"signature":')
        end = text.rfind(',"tags":')
        if 0 <= start < end:
            return '{"signature":' + text[start + len(',"signature":'):end] + "}"
    return canonical_json(governance)


def _record_of(seq: int, row: Row) -> dict[str, Any]:
    """The record ``row`` was made from, as a fresh dict."""
    if row[_RAW] is not None:
        return json.loads(row[_RAW])  # type: ignore[no-any-return]
    record = {
        "kirin": FORMAT_VERSION, "seq": seq, "hash": row[_HASH], "parent": row[_PARENT],
        "tree": row[_TREE],
        "changes": {"add": {n: {"hash": h, "size": s} for n, h, s in row[_ADD]},
                    "remove": list(row[_REMOVE])},
        "message": row[_MESSAGE], "metadata": json.loads(row[_METADATA]),
        "tags": list(row[_TAGS]), "timestamp": row[_TIMESTAMP], "author": row[_AUTHOR],
        "policy": row[_POLICY],
    }
    if row[_GOVERNANCE] is not None:  # a version 2 record of the keys Kirin writes
        record["kirin"] = GOVERNANCE_VERSION
        record.update(json.loads(row[_GOVERNANCE]))
    return record


def _metadata_slice(text: str, following: str) -> str | None:
    """The metadata's canonical JSON, cut from a record's canonical JSON ``text``.

    Only for a record of the shape Kirin writes (see :func:`_row`): its keys
    are sorted, and a ``"`` inside a string is always escaped, so the first
    ``,"metadata":`` is the member itself (only strings come before it) and
    the last ``,"<following>":`` the member after it (``override``, else
    ``parent``: only strings, numbers, lists of strings and objects of
    strings follow).
    """
    start = text.find(',"metadata":')
    end = text.rfind(f',"{following}":')
    if start < 0 or end < start:
        return None
    return text[start + len(',"metadata":'):end]


def _fragment(name: Any, digest: Any, size: Any) -> str | None:
    """One file's ``[name, hash, size]`` in a tree's canonical JSON, plus a comma.

    ``None`` unless the hash is 64 hex digits and the size a plain int: only
    then can :meth:`Draft.tree` find the fragment by its name alone (a
    ``[`` then a JSON string then ``,`` starts no other fragment).
    """
    if (type(name) is not str or type(digest) is not str or type(size) is not int
            or not is_digest(digest)):
        return None
    return f"[{_encode_str(name)},\"{digest}\",{size}],"


class _Tip:
    """The snapshot the next commit builds on, with its tree's JSON, kept up to date.

    A commit changes a few files of a snapshot that may hold many. Copying,
    sorting and re-encoding every entry on each commit cost O(files) object
    visits scattered over a heap that grows with the history, so commits
    slowed down as it grew; the tip is instead edited in place in O(changes)
    plus one contiguous hash of the tree's text.
    """

    __slots__ = ("body", "clash_free", "files", "names", "seq")

    def __init__(self, seq: int, files: dict[str, tuple[str, int]], body: str,
                 clash_free: bool) -> None:
        self.seq = seq
        self.files = files  # owned: edited in place when the next commit is published
        self.names = sorted(files)
        self.body = body  # the tree's canonical JSON without brackets, ``,`` after each entry
        self.clash_free = clash_free


class Draft:
    """The snapshot a commit would make: commit ``seq``'s files plus ``added``, minus ``removed``.

    Its tree hash and folder-clash check cost O(changes) when the history
    has a tip at ``seq`` (see :class:`_Tip`); the full snapshot is only
    built when asked for (by a policy, which judges every file).
    """

    #: Above this many changes, re-hashing the whole snapshot is as cheap as editing.
    SPLICE_MAX = 32

    def __init__(self, history: History, seq: int, added: Mapping[str, tuple[str, int]],
                 removed: Sequence[str], files: dict[str, tuple[str, int]] | None = None
                 ) -> None:
        self.history = history
        self.seq = seq
        self.added = dict(added)
        self.removed = tuple(removed)
        self._files = files
        self._tree: str | None = None
        self._body: str | None = None
        self._tip: _Tip | None = None
        self.clash_checked = False

    def files(self) -> dict[str, tuple[str, int]]:
        """The full snapshot (built on first use; do not modify it)."""
        if self._files is None:
            base = self.history.snapshot(self.seq)
            gone = set(self.removed)
            files = {n: v for n, v in base.items() if n not in gone}
            files.update(self.added)
            self._files = files
        return self._files

    def check_folder_clash(self) -> None:
        """Raise InvalidNameError if a name of the snapshot is a file and a folder.

        With a clash-free tip only the new names can clash, and they are
        checked against the sorted names; any doubt re-checks the whole
        snapshot, which also gives the error its usual wording.
        """
        tip = self._tip_or_none()
        if tip is None or not tip.clash_free or not self._no_new_clash(tip):
            check_folder_clash(self.files())
        self.clash_checked = True

    def _no_new_clash(self, tip: _Tip) -> bool:
        gone = set(self.removed) - self.added.keys()
        new = [n for n in self.added if n not in tip.files]

        def exists(name: str) -> bool:
            return name in self.added or (name in tip.files and name not in gone)

        for name in new:
            parts = name.split("/")
            if any(exists("/".join(parts[:i])) for i in range(1, len(parts))):
                return False
            folder = name + "/"
            i = bisect.bisect_left(tip.names, folder)
            while i < len(tip.names) and tip.names[i].startswith(folder):
                if tip.names[i] not in gone:
                    return False
                i += 1
            if any(other.startswith(folder) for other in new):
                return False
        return True

    def tree(self) -> str:
        """The snapshot's :func:`tree_hash`."""
        if self._tree is None:
            tip = self._tip_or_none()
            body = self._splice(tip) if tip is not None else None
            if body is None:
                self._tree = tree_hash(self.files())
            else:
                self._body, self._tip = body, tip
                self._tree = sha256_text("[" + body[:-1] + "]")
        return self._tree

    def _tip_or_none(self) -> _Tip | None:
        """The tip to edit, unless there are so many changes that editing does not pay."""
        if len(self.added) + len(self.removed) > self.SPLICE_MAX:
            return None
        return self.history._tip_at(self.seq)

    def _splice(self, tip: _Tip) -> str | None:
        """The tip's tree body with this draft's changes, or ``None`` if it cannot be edited."""
        body, names = tip.body, tip.names
        edits: list[tuple[int, int, str, str]] = []

        def span(name: str) -> tuple[int, int] | None:
            old = _fragment(name, *tip.files[name])
            start = body.find(f"[{_encode_str(name)},")
            if old is None or start < 0 or not body.startswith(old, start):
                return None
            return start, start + len(old)

        for name in set(self.removed) - self.added.keys():
            if name not in tip.files or (where := span(name)) is None:
                return None
            edits.append((*where, name, ""))
        for name, (digest, size) in self.added.items():
            new = _fragment(name, digest, size)
            if new is None:
                return None
            if name in tip.files:
                if (where := span(name)) is None:
                    return None
                edits.append((*where, name, new))
                continue
            i = bisect.bisect_left(names, name)
            if i == len(names):
                at = len(body)
            elif (after := span(names[i])) is None:
                return None
            else:
                at = after[0]
            edits.append((at, at, name, new))
        edits.sort()
        pieces: list[str] = []
        at = 0
        for start, end, _, text in edits:
            pieces += (body[at:start], text)
            at = end
        pieces.append(body[at:])
        return "".join(pieces)


class History(SnapshotSource):
    """The records of one dataset, oldest first, with snapshots rebuilt on demand.

    Appending is the only change. Snapshots are rebuilt by replaying changes
    from the nearest cached snapshot, so walking the history in order costs
    one change per step. Records are kept as rows (:func:`_row`) and turned
    into :class:`Commit` values only when asked for.

    A history may start at a summary (:meth:`start_at`): commit ``L`` and its
    verified snapshot, the rows below ``L`` not yet loaded. They are read
    backwards through the ``older`` callback when first needed, each block
    checked to end in the parent hash of the row above it, so the loaded rows
    are always one verified chain ending at the head.
    """

    _CACHE = 16
    #: Past this many on-demand reads of one block, older commits are read in bulk:
    #: ``_BULK_FIRST`` commits, then twice as many at each further step. A look for a
    #: tag or a prefix a few hundred commits back reads about twice what it needs,
    #: never the whole history (a full ``history()`` asks for all of it at once).
    _STEPS_BEFORE_BULK = 2
    _BULK_FIRST = 400

    def __init__(self, dataset: str, reader: BlobReader | None) -> None:
        self.dataset = dataset
        self._reader = reader
        self._rows: list[Row | None] = []  # None: below ``_base``, not loaded yet
        self._base = 0
        self._anchor: tuple[int, dict[str, tuple[str, int]]] | None = None
        self._older: Older | None = None
        self._steps = 0
        self._commits: list[Commit | None] = []
        self._index: dict[str, int] = {}
        self._sorted: list[str] | None = None
        self._snapshots: OrderedDict[int, dict[str, tuple[str, int]]] = OrderedDict()
        self._tip: _Tip | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def reset(self) -> None:
        """Forget every record (used when checkpoints turn out not to match the log)."""
        self._rows.clear()
        self._base = 0
        self._anchor = None
        self._older = None
        self._steps = 0
        self._commits.clear()
        self._index.clear()
        self._sorted = None
        self._snapshots.clear()
        self._tip = None

    @property
    def head_hash(self) -> str | None:
        return self._row(len(self._rows) - 1)[_HASH] if self._rows else None

    @property
    def loaded_from(self) -> int:
        """The oldest commit held in memory (``len(self)`` when empty): older ones are read
        when asked for."""
        return self._base

    def start_at(self, record: dict[str, Any], files: dict[str, tuple[str, int]],
                 older: Older, *, where: str,
                 before: list[tuple[dict[str, Any], str | None]] | None = None) -> None:
        """Start an empty history at a summary: ``record`` (commit ``L``) and its snapshot.

        The caller has checked ``files`` against the record's tree and the
        record against the log; commits ``0`` to ``L-1`` are read through
        ``older`` when first needed. ``before``: records just before ``L``
        the caller has already (taken if they chain to it).
        """
        if self._rows:
            raise ValueError("start_at needs an empty history")
        seq = record["seq"]
        self._rows = [None] * seq
        self._commits = [None] * seq
        self._base = seq
        self._older = older
        self._anchor = (seq, files)
        self._rows.append(_row(record))
        self._commits.append(None)
        self._index[record["hash"]] = seq
        if record["parent"] is None and seq:
            raise CorruptObjectError(f"Commit record {where} is #{seq} but names no parent",
                                     path=where)
        if before and chain_to(before, before[0][0]["seq"], seq - 1, record["parent"]):
            self._place(before)

    def _row(self, seq: int) -> Row:
        """Row ``seq``, reading older records first if it is not loaded yet."""
        if seq < self._base:
            self._load(seq)
        row = self._rows[seq]
        assert row is not None
        return row

    def _load(self, seq: int) -> None:
        """Read records backwards until row ``seq`` is loaded (see :data:`Older`).

        A reader walking back (``history()``, ``find_commits``) gets one block
        per call at first, then everything at once in large, concurrent reads.
        """
        while seq < self._base:
            assert self._older is not None
            self._steps += 1
            bulk = self._steps - self._STEPS_BEFORE_BULK
            down_to = seq if bulk <= 0 else max(
                0, min(seq, self._base - self._BULK_FIRST * 2 ** (bulk - 1)))
            for loaded in self._older(self._base - 1, self._row(self._base)[_PARENT], down_to):
                parent = self._row(self._base)[_PARENT]
                first = loaded[0][0]["seq"] if loaded else -1
                if not chain_to(loaded, first, self._base - 1, parent):
                    raise CorruptObjectError(f"Commits before #{self._base} do not chain to "
                                             "it: the history is broken", path=f"#{self._base}")
                self._place(loaded)

    def _place(self, loaded: list[tuple[dict[str, Any], str | None]]) -> None:
        """Take records ``first`` to ``_base - 1``, already checked to chain to ``_base``."""
        previous: str | None = None
        for record, text in loaded:
            at = record["seq"]
            if record["hash"] in self._index:
                raise CorruptObjectError(f"Commit #{at} repeats commit "
                                         f"{record['hash'][:12]}", path=f"#{at}")
            self._rows[at] = _row(_shared(record, previous), text)
            self._index[record["hash"]] = at
            previous = record["hash"]
        self._base = loaded[0][0]["seq"]
        self._sorted = None

    def _load_all(self) -> None:
        if self._base:
            self._steps = self._STEPS_BEFORE_BULK
            self._load(0)

    def append(self, record: dict[str, Any], *, where: str,
               snapshot: dict[str, tuple[str, int]] | None = None,
               text: str | None = None, draft: Draft | None = None) -> None:
        """Add the next (verified) record, checking it continues the chain.

        ``snapshot`` or ``draft`` is the record's snapshot when the caller
        built it (the writer that made the record hashed it into ``tree``),
        saving the next commit a rebuild and a re-hash of every entry.
        ``text`` is the record's canonical JSON, when the caller has it.
        """
        expected_seq = len(self._rows)
        if record["seq"] != expected_seq:
            raise CorruptObjectError(f"Commit record {where} is #{record['seq']}, "
                                     f"expected #{expected_seq}", path=where)
        if record["parent"] != self.head_hash:
            raise CorruptObjectError(
                f"Commit record {where} names parent {str(record['parent'])[:12]}, but the "
                f"previous commit is {str(self.head_hash)[:12]}: the history is broken",
                path=where, commit=record["hash"])
        if record["hash"] in self._index:
            raise CorruptObjectError(f"Commit record {where} repeats commit "
                                     f"{record['hash'][:12]}", path=where)
        self._rows.append(_row(_shared(record, self.head_hash), text))
        self._commits.append(None)
        self._index[record["hash"]] = expected_seq
        self._sorted = None
        if draft is not None and not self._advance(draft, record):
            snapshot = draft.files()
        if snapshot is not None:
            self._remember(expected_seq, snapshot)

    def draft(self, seq: int, added: Mapping[str, tuple[str, int]], removed: Sequence[str],
              files: dict[str, tuple[str, int]] | None = None) -> Draft:
        """The snapshot commit ``seq`` (-1: none) would have with these changes."""
        return Draft(self, seq, added, removed, files)

    def _tip_at(self, seq: int) -> _Tip | None:
        """The tip at commit ``seq``, made from its (verified) snapshot if need be."""
        tip = self._tip
        if tip is not None and tip.seq == seq:
            return tip
        files = dict(self.snapshot(seq))
        fragments = [_fragment(n, *files[n]) for n in sorted(files)]
        if any(f is None for f in fragments):
            return None
        try:
            check_folder_clash(files)
            clash_free = True
        except InvalidNameError:
            clash_free = False
        self._tip = tip = _Tip(seq, files, "".join(fragments), clash_free)  # type: ignore[arg-type]
        return tip

    def _advance(self, draft: Draft, record: Mapping[str, Any]) -> bool:
        """Move the tip onto the record ``draft`` became, editing it in place."""
        tip = draft._tip
        if (tip is None or tip is not self._tip or draft._body is None
                or tip.seq != record["seq"] - 1 or record["tree"] != draft._tree):
            return False
        for name in set(draft.removed) - draft.added.keys():
            del tip.files[name]
            del tip.names[bisect.bisect_left(tip.names, name)]
        for name, entry in draft.added.items():
            if name not in tip.files:
                bisect.insort(tip.names, name)
            tip.files[name] = entry
        tip.body = draft._body
        tip.seq = record["seq"]
        tip.clash_free = draft.clash_checked
        return True

    def record(self, seq: int) -> dict[str, Any]:
        """Record ``seq`` as a fresh dict (as stored, hash included)."""
        return _record_of(seq, self._row(seq))

    def record_text(self, seq: int) -> str:
        """The canonical JSON of record ``seq``, as in its log entry."""
        raw: str | None = self._row(seq)[_RAW]
        return raw if raw is not None else canonical_json(self.record(seq))

    def records(self) -> list[dict[str, Any]]:
        self._load_all()
        return [self.record(i) for i in range(len(self._rows))]

    def tree_of(self, seq: int) -> str:
        """The tree hash commit ``seq`` records (its snapshot's :func:`tree_hash`)."""
        return self._row(seq)[_TREE]  # type: ignore[no-any-return]

    def withdrawn_at(self, seq: int) -> str | None:
        """The stage commit ``seq`` withdrew, if it is a withdrawal (version 2 records only)."""
        if self._row(seq)[_GOVERNANCE] is None:
            return None
        withdrawal = self.commit(seq).withdrawal
        return str(withdrawal["stage"]) if withdrawal is not None else None

    def lineage_at(self, seq: int) -> Lineage | None:
        """What commit ``seq`` links to, without building the commit (version 2 only)."""
        governance = self._row(seq)[_GOVERNANCE]
        if governance is None or '"lineage"' not in governance:
            return None
        return self.commit(seq).lineage

    def tags_of(self, seq: int) -> tuple[str, ...]:
        """The tags of commit ``seq``, without building the commit."""
        return self._row(seq)[_TAGS]  # type: ignore[no-any-return]

    def metadata_text(self, seq: int) -> str:
        """The canonical JSON of commit ``seq``'s metadata, without building the commit."""
        return self._row(seq)[_METADATA]  # type: ignore[no-any-return]

    def commit(self, seq: int) -> Commit:
        cached = self._commits[seq]
        if cached is None:
            cached = self._build(seq)
            self._commits[seq] = cached
        return cached

    def load_all(self) -> None:
        """Read every older commit now (at once, concurrently), for a caller that wants
        all of them."""
        self._load_all()

    def commits(self) -> list[Commit]:
        """Every commit, oldest first."""
        self._load_all()
        return [self.commit(i) for i in range(len(self._rows))]

    @property
    def head(self) -> Commit | None:
        return self.commit(len(self._rows) - 1) if self._rows else None

    def _build(self, seq: int) -> Commit:
        row = self._row(seq)
        try:
            timestamp = datetime.fromisoformat(row[_TIMESTAMP])
        except (TypeError, ValueError) as exc:
            raise CorruptObjectError(f"Commit {row[_HASH][:12]} has an unreadable "
                                     f"timestamp {row[_TIMESTAMP]!r}",
                                     path=f"#{seq}", commit=row[_HASH]) from exc
        # metadata and tags go in stored form: Commit freezes them on first use
        return Commit(row[_HASH], row[_PARENT], row[_MESSAGE], row[_METADATA], row[_TAGS],
                      timestamp, row[_AUTHOR], seq, row[_POLICY], self,
                      governance=row[_GOVERNANCE])

    def files_of(self, seq: int, commit_hash: str) -> dict[str, File]:
        return {name: File(name, h, s, commit_hash, self._reader)
                for name, (h, s) in self.snapshot(seq).items()}

    def snapshot(self, seq: int) -> dict[str, tuple[str, int]]:
        """The full file snapshot of commit ``seq`` (verified against its tree hash)."""
        if seq < 0:
            return {}
        tip = self._tip
        if tip is not None and tip.seq == seq:
            return tip.files
        if seq in self._snapshots:
            self._snapshots.move_to_end(seq)
            return self._snapshots[seq]
        anchor = self._anchor
        if anchor is not None and anchor[0] == seq:
            return anchor[1]
        start = max((s for s in self._snapshots if s < seq), default=-1)
        if tip is not None and start < tip.seq < seq:
            start, current = tip.seq, dict(tip.files)
        elif anchor is not None and start < anchor[0] < seq:
            start, current = anchor[0], dict(anchor[1])
        else:
            current = dict(self._snapshots[start]) if start >= 0 else {}
        if start + 1 < self._base:
            self._load_all()  # no snapshot below: replayed from the first commit
        for i in range(start + 1, seq + 1):
            row = self._row(i)
            for name in row[_REMOVE]:
                current.pop(name, None)
            for name, digest, size in row[_ADD]:
                current[name] = (digest, size)
        row = self._row(seq)
        if tree_hash(current) != row[_TREE]:
            raise CorruptObjectError(
                f"Commit {row[_HASH][:12]} (#{seq}) lists files that do not match its "
                "recorded tree hash: the history was altered", path=f"#{seq}",
                commit=row[_HASH])
        self._remember(seq, current)
        return current

    def _remember(self, seq: int, snapshot: dict[str, tuple[str, int]]) -> None:
        self._snapshots[seq] = snapshot
        self._snapshots.move_to_end(seq)
        if len(self._snapshots) > self._CACHE:
            oldest = next(s for s in self._snapshots if s != len(self._rows) - 1)
            del self._snapshots[oldest]

    def resolve(self, ref: str) -> Commit:
        """The commit ``ref`` names: a full hash, a unique hash prefix, a tag or a stage.

        A stage is a tag whose holder can be withdrawn: a bare tag names the
        newest commit carrying it unless a withdrawal of it was recorded
        since (then nothing). The one resolver of commit names
        (``Dataset.checkout``, ``get_commit``, ``compare_commits``, ``promote``
        and every CLI ``REF`` use it); ``tag:NAME`` always means the tag.
        A word that is both a tag and a hash prefix must name the same commit,
        or :class:`~kirin.errors.AmbiguousRefError` asks which; so does a prefix
        matching several commits. Hashes are compared case-insensitively.
        """
        text = ref.strip() if isinstance(ref, str) else ""
        if not text:
            raise CommitNotFoundError(str(ref), self.dataset, "Commit not found: a commit "
                                      "reference must be a hash, a hash prefix or a tag")
        if text.startswith(TAG_PREFIX):
            tagged = self.newest_tagged(text[len(TAG_PREFIX):])
            if tagged is None:
                raise CommitNotFoundError(text, self.dataset, "Commit not found: No commit is "
                                          f"tagged {text[len(TAG_PREFIX):]!r} in dataset "
                                          f"{self.dataset!r}")
            return tagged
        digest = text.lower()
        if digest in self._index:
            return self.commit(self._index[digest])
        if is_hex_prefix(digest):
            self._load_all()  # a prefix is unique only among every hash
        matches = self._prefixed(digest) if is_hex_prefix(digest) else []
        tagged, withdrawn = self.holder(text)
        if withdrawn is not None and not matches:
            raise CommitNotFoundError(
                text, self.dataset, f"Commit not found: stage {text!r} of dataset "
                f"{self.dataset!r} was withdrawn by {withdrawn.short_hash} "
                f"({withdrawn.message!r}) and has no holder; write {TAG_PREFIX}{text} for "
                "the last commit that carried the tag")
        if tagged is not None:
            if not matches or matches == [tagged.hash]:
                return tagged
            raise AmbiguousRefError(
                text, self.dataset, [tagged.hash, *matches],
                f"{text!r} is both a tag (on {tagged.short_hash}) and a hash prefix in "
                f"dataset {self.dataset!r}: write {TAG_PREFIX}{text} for the tag, or more "
                "hash characters for the commit")
        if len(matches) > 1:
            raise AmbiguousRefError(text, self.dataset, matches)
        if matches:
            return self.commit(self._index[matches[0]])
        if not self._rows:
            raise CommitNotFoundError(text, self.dataset, f"Commit not found: {text!r} "
                                      f"(dataset {self.dataset!r} has no commits yet)")
        raise CommitNotFoundError(text, self.dataset, "Commit not found: No commit hash or tag "
                                  f"matches {text!r} in dataset {self.dataset!r}")

    def _prefixed(self, prefix: str) -> list[str]:
        """Every commit hash starting with ``prefix``, in order."""
        if self._sorted is None:
            self._sorted = sorted(self._index)
        start = bisect.bisect_left(self._sorted, prefix)
        matches = []
        for digest in self._sorted[start:]:
            if not digest.startswith(prefix):
                break
            matches.append(digest)
        return matches

    def newest_tagged(self, tag: str) -> Commit | None:
        """The newest commit carrying ``tag``, if any."""
        for seq in range(len(self._rows) - 1, -1, -1):
            if tag in self._row(seq)[_TAGS]:
                return self.commit(seq)
        return None

    def holder(self, tag: str) -> tuple[Commit | None, Commit | None]:
        """(the newest commit carrying ``tag``, or ``None`` if a withdrawal of it came after;
        that withdrawal)."""
        for seq in range(len(self._rows) - 1, -1, -1):
            if tag in self._row(seq)[_TAGS]:
                return self.commit(seq), None
            if self.withdrawn_at(seq) == tag:
                return None, self.commit(seq)
        return None, None

    def seq_of(self, digest: str) -> int | None:
        if digest not in self._index:
            self._load_all()
        return self._index.get(digest)


def _shared(record: dict[str, Any], previous: str | None) -> dict[str, Any]:
    """``record`` holding the previous commit's hash object as its parent, and its author
    interned: equal strings, one object each, which saves two strings per commit held."""
    if previous is not None and record["parent"] == previous:
        record["parent"] = previous
    if type(record["author"]) is str:
        record["author"] = sys.intern(record["author"])
    return record


def chain_to(records: Sequence[tuple[dict[str, Any], str | None]], first: int, end: int,
              expected: str) -> bool:
    """Whether ``records`` are commits ``first`` to ``end``, each the parent of the next, the
    last being ``expected``, and commit 0 (if there) naming no parent."""
    if first < 0 or len(records) != end - first + 1 or records[-1][0]["hash"] != expected:
        return False
    parent = records[0][0]["parent"]
    if first == 0 and parent is not None:
        return False
    for i, (record, _) in enumerate(records):
        if record["seq"] != first + i or (i and record["parent"] != parent):
            return False
        parent = record["hash"]
    return True


def diff_commits(old: Commit, new: Commit) -> dict[str, Any]:
    """What changed from ``old`` to ``new``: metadata, tags and files.

    ``metadata_diff`` compares top-level keys, as the original Kirin did (a
    changed nested object appears whole under its key);
    ``metadata_diff_paths`` gives the same by dotted path to each leaf.
    """
    m1, m2 = old.metadata, new.metadata
    f1, f2 = old.files, new.files
    p1, p2 = dict(_leaves(m1)), dict(_leaves(m2))
    return {
        "commit1": {"hash": old.short_hash, "message": old.message},
        "commit2": {"hash": new.short_hash, "message": new.message},
        "metadata_diff": {
            "added": {k: v for k, v in m2.items() if k not in m1},
            "removed": {k: v for k, v in m1.items() if k not in m2},
            "changed": {k: {"old": m1[k], "new": m2[k]} for k in m1
                        if k in m2 and not _same(m1[k], m2[k])},
        },
        "metadata_diff_paths": {
            "added": {k: v for k, v in p2.items() if k not in p1},
            "removed": {k: v for k, v in p1.items() if k not in p2},
            "changed": {k: {"old": p1[k], "new": p2[k]} for k in p1
                        if k in p2 and not _same(p1[k], p2[k])},
        },
        "tags_diff": {
            "added": [t for t in new.tags if t not in old.tags],
            "removed": [t for t in old.tags if t not in new.tags],
        },
        "files_diff": {
            "added": sorted(n for n in f2 if n not in f1),
            "removed": sorted(n for n in f1 if n not in f2),
            "modified": sorted(n for n in f1 if n in f2 and f1[n].hash != f2[n].hash),
        },
    }


def _same(a: Any, b: Any) -> bool:
    """JSON equality that keeps ``true`` distinct from ``1``."""
    return canonical_json(a) == canonical_json(b)


def _leaves(value: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(value, dict) and (value or not prefix):
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}.{key}" if prefix else key)
    else:
        yield prefix, value


#: The record functions are re-exported for callers that read records with a history.
__all__ = ["FrozenDict", "History", "check_folder_clash", "decode_record", "diff_commits",
           "encode_record", "make_record", "record_hash", "tree_hash"]
