"""Check a whole dataset against its hashes: every record, snapshot, checkpoint, segment,
summary and blob.

Opening a dataset already verifies what it reads; this walks everything,
including objects a normal open skips (log entries past a gap, checkpoints
that were ignored, blobs nobody has read lately), and keeps going after the
first problem so one run reports them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import compaction, layout, summaries
from ._json import canonical_json
from .arguments import pin_sources
from .checkpoints import read_checkpoint
from .errors import CorruptObjectError
from .logs import EntryLog
from .policylog import decode_version
from .records import GOVERNANCE_KEYS, decode_record, tree_hash
from .store import Store
from .values import Commit
from .verified import BlobCheck


@dataclass(frozen=True)
class Problem:
    """One thing found wrong: what kind, where in storage, and what it affects."""

    kind: str  # "record" | "snapshot" | "checkpoint" | "segment" | "summary" | "policy"
    #            | "signature"
    #            | "blob" | "lineage" | "lineage-index" (see kirin.lineage.verify_links)
    path: str
    message: str
    commits: tuple[str, ...] = ()
    files: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "message": self.message,
                "commits": list(self.commits), "files": list(self.files)}


@dataclass(frozen=True)
class VerifyReport:
    dataset: str
    commits_checked: int
    blobs_checked: int
    bytes_checked: int
    problems: tuple[Problem, ...] = field(default_factory=tuple)
    #: Where the policy's chain of trust starts: "pinned" (a hash the caller trusts),
    #: "first use" (version 0 as found), ``None`` (the dataset never had a policy).
    policy_trust: str | None = None
    #: The same for the registry root's policy.
    root_policy_trust: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "ok": self.ok,
                "commits_checked": self.commits_checked,
                "blobs_checked": self.blobs_checked, "bytes_checked": self.bytes_checked,
                "policy_trust": self.policy_trust,
                "root_policy_trust": self.root_policy_trust,
                "problems": [p.to_dict() for p in self.problems]}


Progress = Callable[[int], None]


def verify_dataset(store: Store, dataset: str, progress: Progress | None = None,
                   pin: str | None = None, root_pin: str | None = None) -> VerifyReport:
    """Verify every object of ``dataset``; ``progress`` is called with bytes hashed.

    Damage never raises: every damaged object is a :class:`Problem`. Only a
    failure of the storage itself (unreachable, access denied) is an error.
    ``pin``: the hash of the policy version the caller trusts, where the
    dataset's chain of trust starts (``None``: version 0, trusted as found);
    ``root_pin`` the same for the root's policy.
    """
    problems: list[Problem] = []
    checkpoints = _read_checkpoints(store, dataset, problems)
    summarised = _read_summaries(store, dataset, problems)
    segment_ends = compaction.stored(store, dataset)
    known_end = max([*checkpoints, *summarised], default=-1)
    logged: dict[int, bytes] = {}
    records = _scan_log(store, dataset, problems,
                        compaction.proven_end(store, dataset, segment_ends, known_end),
                        _proven(checkpoints), logged)
    _check_snapshots(records, problems)
    _compare_checkpoints(checkpoints, records, problems)
    _check_segments(store, dataset, segment_ends, records, logged, problems)
    del logged  # the log's bytes: not needed for the policies, signatures and blobs
    _compare_summaries(summarised, records, problems)
    texts, had = _check_policies(store, dataset, records, problems, {"policy": pin,
                                                                     "root_policy": root_pin})
    _check_actions(records, problems)
    _check_signatures(store, dataset, records, texts, problems)
    blobs, size = _check_blobs(store, records, problems, progress)
    trust = {key: "pinned" if pinned is not None else "first use" if had[key] else None
             for key, pinned in (("policy", pin), ("root_policy", root_pin))}
    return VerifyReport(dataset, len(records), blobs, size, tuple(problems),
                        trust["policy"], trust["root_policy"])


def _proven(checkpoints: dict[int, tuple[str, list[dict[str, Any]], list[str | None]]]
            ) -> dict[int, tuple[bytes, dict[str, Any]]]:
    """Each record a sound checkpoint proved from its canonical text, by ``seq``: the bytes
    its log entry holds if it is the same record, and the verified record."""
    proven: dict[int, tuple[bytes, dict[str, Any]]] = {}
    for _, records, texts in checkpoints.values():
        for record, text in zip(records, texts, strict=True):
            if text is not None:
                proven[record["seq"]] = ((text + "\n").encode(), record)
    return proven


def _scan_log(store: Store, dataset: str, problems: list[Problem], known_end: int,
              proven: dict[int, tuple[bytes, dict[str, Any]]], logged: dict[int, bytes]
              ) -> dict[int, dict[str, Any]]:
    """Every log entry, decoded and chained. An entry byte for byte the text a sound
    checkpoint proved (``proven``) is that verified record: it is not parsed and hashed
    a second time (half of the work at 100,000 commits). The bytes of every sound entry
    go to ``logged``, for the segments to be compared with."""
    entries, damages = EntryLog(store, layout.commit_log(dataset), "Commit record").scan(
        known_end=known_end)
    problems += [Problem("record", d.path, d.message) for d in damages]
    records: dict[int, dict[str, Any]] = {}
    expected_parent: str | None = None
    previous = -1
    for entry in entries:
        seq, path = entry.seq, entry.path
        if seq != previous + 1:
            expected_parent = None  # past a hole (reported above) the chain cannot be followed
        previous = seq
        known = proven.get(seq)
        try:
            if known is not None and known[0] == entry.data:
                record = known[1]
            else:
                record = decode_record(entry.data, where=path, seq=seq)
        except CorruptObjectError as exc:
            problems.append(Problem("record", path, str(exc)))
            expected_parent = None
            continue
        if expected_parent is not None and record["parent"] != expected_parent:
            problems.append(Problem("record", path, f"Commit #{seq} names parent "
                                    f"{str(record['parent'])[:12]}, but commit #{seq - 1} "
                                    f"is {expected_parent[:12]}", commits=(record["hash"],)))
        if seq == 0 and record["parent"] is not None:
            problems.append(Problem("record", path, "The first commit names a parent",
                                    commits=(record["hash"],)))
        expected_parent = record["hash"]
        records[seq] = record
        logged[seq] = entry.data
    return records


def _check_policies(store: Store, dataset: str, records: dict[int, dict[str, Any]],
                    problems: list[Problem], pins: dict[str, str | None]
                    ) -> tuple[dict[str, dict[str, str]], dict[str, bool]]:
    """The dataset's and the root's policy histories are whole, and hold every policy a
    commit says admitted it (a rollback also names the policies it was judged by).

    A commit naming a policy the history lacks means a policy version was
    deleted (or the record forged): the gate may since have judged commits
    by an older, laxer version. Returns the policies' texts by hash, for the
    dataset's (``policy``) and the root's (``root_policy``) histories, and whether
    each has a policy history at all. ``pins``: the hash each chain of trust
    starts at, by the same keys.
    """
    texts: dict[str, dict[str, str]] = {}
    had: dict[str, bool] = {}
    for folder, key, scope in ((layout.policy_log(dataset), "policy", f"dataset:{dataset}"),
                               (layout.root_policy_log(), "root_policy", "root")):
        versions = _policy_versions(store, folder, problems)
        texts[key] = {v["policy_hash"]: v["policy"] for v in versions
                      if v["policy_hash"] is not None}
        had[key] = bool(versions)
        _check_policy_trust(store.path(folder), scope, key, versions, records, problems,
                            pins[key])
        known: set[str | None] = {None, *texts[key]}
        where = store.path(folder)
        for record in records.values():
            action = record.get("action") or {}
            named = [("was admitted by", record.get(key))]
            if action.get("kind") == "rollback":
                named.append(("was judged (a rollback) by", action.get(key)))
            for verb, digest in named:
                if digest not in known:
                    problems.append(Problem(
                        "policy", where, f"Commit {record['hash'][:12]} (#{record['seq']}) "
                        f"{verb} policy {str(digest)[:12]}, which is not in the policy "
                        "history: a policy version was deleted or altered",
                        commits=(record["hash"],)))
    return texts, had


def _policy_versions(store: Store, folder: str, problems: list[Problem]
                     ) -> list[dict[str, Any]]:
    """Every readable version of the policy history in ``folder``; damage goes to
    ``problems``."""
    entries, damages = EntryLog(store, folder, "Policy version").scan()
    problems += [Problem("policy", d.path, d.message) for d in damages]
    known: list[dict[str, Any]] = []
    parent: str | None = None
    previous = -1
    for entry in entries:
        if entry.seq != previous + 1:
            parent = None
        previous = entry.seq
        try:
            version = decode_version(entry.data, entry.path, entry.seq, parent,
                                     check_parent=entry.seq == 0 or parent is not None)
        except CorruptObjectError as exc:
            problems.append(Problem("policy", entry.path, str(exc)))
            parent = None
            continue
        known.append(version)
        parent = version["hash"]
    return known


#: The argument that pins each policy history (see :func:`kirin.arguments.pin_sources`).
PIN_OF = {"policy": "trust_policy", "root_policy": "trust_root_policy"}


def _check_policy_trust(folder: str, scope: str, key: str, versions: list[dict[str, Any]],
                        records: dict[int, dict[str, Any]], problems: list[Problem],
                        pin: str | None = None) -> None:
    """Each version is authorised by the one before it (``signing.require.policy``); an
    unauthorised one is reported with every commit it (or a version after it) admitted.

    With a ``pin``, the chain starts at the first version holding that hash; a
    history without it is not the one the caller trusts, and every commit a
    policy of it admitted is reported.
    """
    start = 0
    if pin is not None and versions:
        pinned = [i for i, v in enumerate(versions) if v["policy_hash"] == pin]
        if not pinned:
            admitted = tuple(r["hash"] for r in records.values() if r.get(key) is not None)
            problems.append(Problem(
                "policy", folder, f"No version of the policy history has the pinned hash "
                f"{pin[:12]} ({pin_sources(PIN_OF[key])}): the history is "
                f"not the one you trust; {len(admitted)} commit(s) were admitted by its "
                "policies", commits=admitted))
            return
        start = pinned[0]
    if not any('"signing"' in (v["policy"] or "") for v in versions[start:]):
        return  # no version says who may replace it: cryptography need not load
    from .policy import load_policy_text
    from .policytrust import change_problem, policy_message

    previous: Any = None
    for index, version in enumerate(versions):
        if index > start and versions[index - 1]["seq"] == version["seq"] - 1:
            message = policy_message(scope, version["seq"], version["parent"],
                                     version["policy_hash"])
            problem = change_problem(previous, version.get("signatures", ()), message)
            if problem is not None:
                later = {v["policy_hash"] for v in versions[index:]} - {None}
                admitted = tuple(r["hash"] for r in records.values() if r.get(key) in later)
                problems.append(Problem(
                    "policy", f"{folder}/#{version['seq']}",
                    f"Policy version #{version['seq']} is not authorised: {problem}; "
                    f"{len(admitted)} commit(s) were admitted by it or a version after it",
                    commits=admitted))
                return
        previous = (load_policy_text(version["policy"], source=f"policy #{version['seq']}")
                    if version["policy"] is not None else None)


def _check_signatures(store: Store, dataset: str, records: dict[int, dict[str, Any]],
                      texts: dict[str, dict[str, str]], problems: list[Problem]) -> None:
    """Every signature verifies, and each record was signed as the policies that admitted
    it required: unsigned, invalid, unknown or revoked keys, principals not allowed, and
    approvals (as stored now) short of the count. The gate and ``audit`` judge by the same
    :class:`kirin.signchecks.RecordSigning`."""
    policies = {(key, digest): text for key, found in texts.items()
                for digest, text in found.items() if '"signing"' in text}
    if not policies and not any("signature" in r for r in records.values()):
        return  # nothing to check: cryptography need not even load
    from .approvals import load
    from .policy import load_policy_text
    from .signchecks import RecordSigning

    loaded = {where: load_policy_text(text, source=f"stored policy {where[1][:12]}")
              for where, text in policies.items()}
    commits = [_commit_of(records[seq]) for seq in sorted(records)]
    judge = RecordSigning(dataset, commits,
                          lambda digest, stage, policy: load(store, dataset, digest, stage,
                                                             policy))
    for commit in commits:
        where, named = f"#{commit.seq}", (commit.hash,)
        problem = judge.problem(commit)
        if problem is not None:
            problems.append(Problem("signature", where, f"Commit {commit.short_hash} "
                                    f"(#{commit.seq}) has a bad signature: {problem}",
                                    commits=named))
            continue
        for source, field_name in (("dataset", "policy"), ("root", "root_policy")):
            digest = records[commit.seq].get(field_name)
            policy = loaded.get((field_name, digest)) if isinstance(digest, str) else None
            if policy is None:
                continue
            for violation in judge.violations(commit, policy, source):
                problems.append(Problem("signature", where, f"Commit {commit.short_hash} "
                                        f"(#{commit.seq}): {violation.message}",
                                        commits=named))


def _commit_of(record: dict[str, Any]) -> Commit:
    """A decoded record as a :class:`Commit` without files: what the signing rules read."""
    try:
        moment = datetime.fromisoformat(record["timestamp"])
    except (TypeError, ValueError):
        moment = datetime.min
    governance = {k: record[k] for k in GOVERNANCE_KEYS if k in record}
    return Commit(record["hash"], record["parent"], record["message"],
                  canonical_json(record["metadata"]), tuple(record["tags"]), moment,
                  record["author"], record["seq"], record["policy"],
                  governance=governance or None)


def _check_actions(records: dict[int, dict[str, Any]], problems: list[Problem]) -> None:
    """A promotion, rollback or withdrawal names commits that came before it."""
    earlier: set[str] = set()
    for seq in sorted(records):
        record = records[seq]
        action = record.get("action")
        if action is not None:
            for key in ("source", "held", "holder"):
                named = action.get(key)
                if named is not None and named not in earlier:
                    problems.append(Problem(
                        "record", f"#{seq}", f"Commit {record['hash'][:12]} (#{seq}), a "
                        f"{action['kind']}, names {key} {str(named)[:12]}, which is not an "
                        "earlier commit of the history", commits=(record["hash"],)))
        earlier.add(record["hash"])


def _check_snapshots(records: dict[int, dict[str, Any]], problems: list[Problem]) -> None:
    snapshot: dict[str, tuple[str, int]] = {}
    for seq in range(max(records, default=-1) + 1):
        record = records.get(seq)
        if record is None:
            return  # past a broken record the snapshots cannot be rebuilt
        for name in record["changes"]["remove"]:
            snapshot.pop(name, None)
        for name, entry in record["changes"]["add"].items():
            snapshot[name] = (entry["hash"], entry["size"])
        if tree_hash(snapshot) != record["tree"]:
            problems.append(Problem("snapshot", f"#{seq}", f"Commit {record['hash'][:12]} "
                                    "lists files that do not match its tree hash",
                                    commits=(record["hash"],)))


def _read_checkpoints(store: Store, dataset: str, problems: list[Problem]
                      ) -> dict[int, tuple[str, list[dict[str, Any]], list[str | None]]]:
    """Every sound checkpoint by the last commit it repeats: (path, its verified records,
    the canonical text that proved each, or ``None``).

    A checkpoint that cannot be read, or holds a record that is not sound, is
    reported and left out: only a sound one proves the log once held its
    records (so entries missing below it are a hole, not the end of the log).
    """
    folder = store.path(layout.checkpoints(dataset))
    found: dict[int, tuple[str, list[dict[str, Any]], list[str | None]]] = {}
    for name in store.listdir(folder):
        last = layout.entry_seq(name)
        if last is None:
            continue
        path = f"{folder}/{name}"
        try:
            records = read_checkpoint(store.read(path) or b"", path, last)
        except CorruptObjectError as exc:  # damaged, or not an object (a folder in its place)
            problems.append(Problem("checkpoint", path, f"{exc}; opening falls back to the "
                                    "log"))
            continue
        found[last] = (path, [record for record, _ in records], [text for _, text in records])
    return found


def _read_summaries(store: Store, dataset: str, problems: list[Problem]
                    ) -> dict[int, tuple[str, summaries.Summary]]:
    """Every sound summary by its last commit; the others are reported.

    Sound (its record hashes right, its files to the record's tree): it
    proves the log once held its commit, as a sound checkpoint does.
    """
    found: dict[int, tuple[str, summaries.Summary]] = {}
    for last in summaries.every(store, dataset):
        path = store.path(layout.summary(dataset, last))
        try:
            found[last] = (path, summaries.read_summary(store.read(path) or b"", path, last))
        except CorruptObjectError as exc:  # damaged, or not an object (a folder in its place)
            problems.append(Problem("summary", path, f"{exc}; opening uses an older summary "
                                    "or the log"))
    return found


def _check_segments(store: Store, dataset: str, ends: list[int],
                    records: dict[int, dict[str, Any]], logged: dict[int, bytes],
                    problems: list[Problem]) -> None:
    """Every segment is whole and repeats the log: each record line byte for byte a sound
    log entry (no parsing: a comparison of bytes), else checked itself and compared with
    the log's record. The first defect of a segment is reported (kind ``segment``)."""
    for last in ends:
        path = store.path(layout.segment(dataset, last))
        try:
            segment = compaction.split_segment(store.read(path) or b"", path, last)
            for seq in range(segment.first, last + 1):
                entry = logged.get(seq)
                if entry is not None and segment.line_is(seq, entry):
                    continue
                [(record, _)] = segment.records(seq, seq)
                logged_record = records.get(seq)
                if logged_record is not None and logged_record["hash"] != record["hash"]:
                    raise CorruptObjectError(f"Segment {path} is unusable (it disagrees with "
                                             f"log entry #{seq})", path=path)
        except CorruptObjectError as exc:  # damaged, or not an object (a folder in its place)
            problems.append(Problem("segment", path, f"{exc}; reading falls back to the "
                                    "checkpoints and the log"))


def _compare_summaries(summarised: dict[int, tuple[str, summaries.Summary]],
                       records: dict[int, dict[str, Any]], problems: list[Problem]) -> None:
    """Each summary's commit is the log's (its files then are that commit's snapshot)."""
    for last, (path, summary) in summarised.items():
        logged = records.get(last)
        if logged is not None and logged["hash"] != summary.record["hash"]:
            problems.append(Problem(
                "summary", path, f"Summary {path} is unusable (it disagrees with log entry "
                f"#{last}); opening uses an older summary or the log",
                commits=(logged["hash"],)))


def _compare_checkpoints(checkpoints: dict[int, tuple[str, list[dict[str, Any]],
                                                     list[str | None]]],
                         records: dict[int, dict[str, Any]], problems: list[Problem]) -> None:
    for path, repeated, _ in checkpoints.values():
        for record in repeated:
            logged = records.get(record["seq"])
            if logged is not None and logged["hash"] != record["hash"]:
                problems.append(Problem(
                    "checkpoint", path, f"Checkpoint {path} is unusable (it disagrees with "
                    f"log entry #{record['seq']}); opening falls back to the log"))
                break


def _check_blobs(store: Store, records: dict[int, dict[str, Any]], problems: list[Problem],
                 progress: Progress | None) -> tuple[int, int]:
    users: dict[tuple[str, int], list[tuple[str, str]]] = {}
    for record in records.values():
        for name, entry in record["changes"]["add"].items():
            users.setdefault((entry["hash"], entry["size"]), []).append((record["hash"], name))
    total = 0
    bad: dict[str, tuple[str, str]] = {}  # digest -> (path, what is wrong)
    for (digest, size), _ in users.items():
        path = store.path(layout.blob(digest))
        problem = _hash_blob(store, path, digest, size, progress)
        total += size
        if problem:
            bad[digest] = (path, problem)
    if bad:
        holders = _snapshots_holding(records, set(bad))
        for (digest, _), added_by in users.items():
            if digest not in bad:
                continue
            path, problem = bad[digest]
            where = list(dict.fromkeys([*added_by, *holders.get(digest, [])]))
            commits = tuple(dict.fromkeys(c for c, _ in where))
            files = tuple(dict.fromkeys(n for _, n in where))
            named = ", ".join(f"{n!r} in {c[:12]}" for c, n in where[:5])
            more = f" and {len(where) - 5} more" if len(where) > 5 else ""
            problems.append(Problem("blob", path, f"{problem}; used by {named}{more}",
                                    commits=commits, files=files))
    return len(users), total


def _snapshots_holding(records: dict[int, dict[str, Any]], digests: set[str]
                       ) -> dict[str, list[tuple[str, str]]]:
    """(commit, file name) of every commit whose snapshot holds one of ``digests``.

    A commit that carries a file unchanged from its parent (a promotion, a
    later commit adding other files) is affected by a bad blob too, though it
    did not add it. Snapshots are replayed in order, up to the first gap.
    """
    holding: dict[str, list[tuple[str, str]]] = {}
    snapshot: dict[str, str] = {}
    for seq in range(max(records, default=-1) + 1):
        record = records.get(seq)
        if record is None:
            break
        for name in record["changes"]["remove"]:
            snapshot.pop(name, None)
        for name, entry in record["changes"]["add"].items():
            snapshot[name] = entry["hash"]
        for name, digest in snapshot.items():
            if digest in digests:
                holding.setdefault(digest, []).append((record["hash"], name))
    return holding


def _hash_blob(store: Store, path: str, digest: str, size: int,
               progress: Progress | None) -> str | None:
    check = BlobCheck(digest, size)
    try:
        for chunk in store.iter_object(path):
            check.count(chunk)
            if progress:
                progress(len(chunk))
    except FileNotFoundError:
        return f"Blob {digest[:12]} is missing"
    except (IsADirectoryError, NotADirectoryError):
        return f"Blob {digest[:12]} is not an object (a folder is in its place)"
    return check.problem()
