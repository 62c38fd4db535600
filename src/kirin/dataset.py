"""The ``Dataset`` facade: one registry, its linear history and its files.

This module orchestrates; it owns no format. Records are built in
``history``, written through ``journal``/``store``, and judged by ``policy``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from . import layout, markers
from ._json import FrozenDict, canonical_json, thaw
from .arguments import (
    callable_argument,
    count_argument,
    optional_text_argument,
    path_argument,
    pin_argument,
    signatures_argument,
    signer_argument,
    signers_argument,
    text_argument,
    text_items,
)
from .backends import credential_options
from .digests import is_digest
from .errors import (
    AmbiguousRefError,
    CommitNotFoundError,
    ConflictError,
    CorruptObjectError,
    FileNotInCommitError,
    InvalidArgumentTypeError,
    InvalidInputError,
    NotLatestCommitError,
    PolicyRequiredError,
    StaleRefError,
    StorageError,
)
from .gc import DEFAULT_GRACE, collect_garbage
from .governance import (
    Request,
    StageStatus,
    Tenure,
    apply_override,
    earlier_holder,
    override_record,
    signing_violations,
    tenures,
    version_tags,
)
from .history import Draft, History, diff_commits
from .inputs import (
    AddFiles,
    CommitInputs,
    PathLike,
    default_author,
    prepare,
    root_argument,
)
from .journal import Journal
from .localfiles import LocalFiles, local_files
from .naming import lookup_name, safe_local_path, validate_dataset_name
from .policylog import PolicyLog, PolicyVersion
from .records import make_record, signed_message
from .results import AuditResults, Comparison
from .store import StagedBlob, Store
from .values import Commit, File, Proposal, RemovedBlobs

if TYPE_CHECKING:
    import fsspec

    from .approvals import Approval
    from .lineage import LineageNode, Linker, UsedBy
    from .policy import Policy, Report, Violation
    from .sshsig import Signer
    from .verify import VerifyReport

MAX_ATTEMPTS = 200  # commits retried after losing a race before giving up
#: Seconds for which the policies a commit read at its start still judge its publication.
POLICY_REREAD_AFTER = 2.0
_UNSET: Any = object()
#: Parses stored metadata (canonical JSON: no whitespace to skip) for a query, without
#: ``json.loads``' checks around it (a quarter of a query's time at 100,000 commits).
_decode = json.JSONDecoder().raw_decode
#: Set to 1 (or true/yes) to make commits to ungoverned datasets fail (see require_policy).
REQUIRE_POLICY_ENV = "KIRIN_REQUIRE_POLICY"
RECENT_COMMITS = 10  # commits listed in get_info()["recent_commits"], as in the original
Entries = dict[str, tuple[str, int]]  # name -> (content hash, size)


class Dataset:
    """A versioned, linear history of file snapshots with metadata and tags.

    ``Dataset(root_dir, name)`` opens (or, on first commit, creates) the
    dataset ``name`` under ``root_dir``: a local folder or any fsspec URL
    (``s3://``, ``gs://``, ``az://``, ``memory://``); extra keyword arguments
    are passed to the filesystem. Until ``checkout(ref)`` pins a commit, the
    dataset follows the newest commit, including those other writers add.

    The original Kirin's credential arguments are accepted too: ``aws_profile``
    (s3fs ``profile``), ``gcs_token`` and ``gcs_project`` (gcsfs ``token``,
    ``project``), ``azure_account_name``, ``azure_account_key`` and
    ``azure_connection_string`` (adlfs options of the same names). Each is
    used only for a root of its cloud (ignored otherwise, as in the
    original) and, like every storage option, never shown or stored.

    ``require_policy=True`` (default: the ``KIRIN_REQUIRE_POLICY``
    environment variable) refuses every commit, promotion and withdrawal
    when neither this dataset nor the registry root has a policy, so a
    misspelt root or dataset name cannot start an ungoverned dataset.

    ``trust_policy`` (default: ``KIRIN_TRUST_POLICY``) is the hash of the
    policy version you trust: the policy's chain of trust starts there, and a
    history without it is refused by every gate. Without it the first version
    is trusted on first use. ``trust_root_policy`` (default:
    ``KIRIN_TRUST_ROOT_POLICY``) pins the registry root's policy the same way.
    """

    def __init__(self, root_dir: PathLike, name: str, description: str = "",
                 fs: fsspec.AbstractFileSystem | None = None,
                 aws_profile: str | None = None, gcs_token: str | PathLike | None = None,
                 gcs_project: str | None = None, azure_account_name: str | None = None,
                 azure_account_key: str | None = None,
                 azure_connection_string: str | None = None,
                 **storage_options: Any) -> None:
        # a keyword of its own, not a typed parameter: code passing **dict[str, str] of
        # storage options (typed for the credential arguments) keeps type-checking
        require_policy = storage_options.pop("require_policy", None)
        trust_policy = storage_options.pop("trust_policy", None)
        trust_root_policy = storage_options.pop("trust_root_policy", None)
        name = validate_dataset_name(name)
        root = root_argument(root_dir)
        options = credential_options(root, storage_options, {
            "aws_profile": aws_profile, "gcs_token": gcs_token, "gcs_project": gcs_project,
            "azure_account_name": azure_account_name, "azure_account_key": azure_account_key,
            "azure_connection_string": azure_connection_string})
        self._open(root, Store(root, fs, **options), name,
                   text_argument(description, "description"), require_policy, trust_policy,
                   trust_root_policy)

    @classmethod
    def _on_store(cls, store: Store, root_dir: str, name: str, description: str = "",
                  *, require_policy: bool | None = None, trust_policy: str | None = None,
                  trust_root_policy: str | None = None) -> Dataset:
        """The dataset ``name`` on a store already open (a :class:`Catalog`'s)."""
        dataset = cls.__new__(cls)
        dataset._open(root_dir, store, validate_dataset_name(name), description,
                      require_policy, trust_policy, trust_root_policy)
        return dataset

    def _open(self, root_dir: str, store: Store, name: str, description: str,
              require_policy: bool | None = None, trust_policy: str | None = None,
              trust_root_policy: str | None = None) -> None:
        self.name = name
        self.root_dir = root_dir
        self._store = store
        self._description = description
        self._description_read = False
        self._history = History(self.name, self._store)
        self._journal = Journal(self._store, self.name, self._history)
        self._policies = PolicyLog(self._store, self.name,
                                   pin=pin_argument(trust_policy, "trust_policy"))
        self._root_policies = PolicyLog(self._store, None,
                                        pin=pin_argument(trust_root_policy, "trust_root_policy"))
        self._pinned: str | None = None
        self._siblings: dict[str, Dataset] = {}  # datasets of this root its links named
        self._environment_signer: Any = _UNSET
        if require_policy is None:
            require_policy = os.environ.get(REQUIRE_POLICY_ENV, "").strip().lower() in (
                "1", "true", "yes", "on")
        elif type(require_policy) is not bool:
            raise InvalidInputError(f"require_policy must be True or False, not "
                                    f"{require_policy!r}")
        self.require_policy = require_policy

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        """The fsspec filesystem of the registry (made on first use on local disk)."""
        return self._store.fs

    # -- identity ----------------------------------------------------------
    def __repr__(self) -> str:
        try:
            description = self.description
        except OSError:  # StorageError included: repr must not fail when storage is down
            description = self._description
        return (f"Dataset(name={self.name!r}, description={description!r}, "
                f"root_dir={self._store.url!r})")

    def __str__(self) -> str:
        head = self.current_commit
        return (f"Dataset(name='{self.name}', commits={len(self._history)}, "
                f"current={head.short_hash if head else None})")

    def _repr_html_(self) -> str:
        """The dataset in Jupyter: stage holders and the newest commits (kirin.ui.notebook)."""
        from .ui.notebook import dataset_html

        return dataset_html(self)

    @property
    def _info_path(self) -> str:
        return self._store.path(layout.dataset_info(self.name))

    @property
    def description(self) -> str:
        """The description given at creation (stored with the dataset)."""
        if not self._description and not self._description_read:
            data = self._store.read(self._info_path)
            self._description_read = data is not None  # not yet created: look again later
            if data:
                try:
                    self._description = str(json.loads(data).get("description", ""))
                except (ValueError, AttributeError, RecursionError):
                    self._description = ""
        return self._description

    def _ensure_info(self) -> None:
        """Create ``dataset.json`` unless it exists (create-if-absent, so never clobbered)."""
        if not self._store.exists(self._info_path):
            self._create()

    def _create(self, policy: Policy | None = None, *, author: str | None = None) -> bool:
        """Make the dataset exist, governed by ``policy`` from the start; ``False`` if it did.

        The policy is stored before ``dataset.json``: a dataset created with a
        policy is never visible without it, wherever the process is killed.
        The catalog marker comes last, and only from the writer that created
        ``dataset.json`` (a marker vouches for an existing dataset).
        """
        if policy is not None:
            self._policies.append(policy, message="policy set at creation",
                                  author=(author or default_author()).strip())
        info = {"kirin": 1, "name": self.name, "description": self._description,
                "created": datetime.now(timezone.utc).isoformat()}
        if not self._store.create(self._info_path, (canonical_json(info) + "\n").encode()):
            return False
        markers.mark(self._store, self.name)  # after dataset.json: see kirin.markers
        return True

    # -- where we are ------------------------------------------------------
    def _refresh(self) -> None:
        self._journal.refresh()

    @property
    def current_commit(self) -> Commit | None:
        """The checked-out commit: the newest one unless ``checkout(ref)`` pinned another."""
        if self._pinned is not None:
            seq = self._history.seq_of(self._pinned)
            assert seq is not None
            return self._history.commit(seq)
        self._refresh()
        return self._history.head

    @property
    def head(self) -> Commit | None:
        """Alias of :attr:`current_commit`, as in the original Kirin."""
        return self.current_commit

    def checkout(self, ref: str | None = None) -> Commit:
        """Pin commit ``ref`` (hash, unique prefix or tag); with no argument, follow the newest.

        ``ref`` is resolved as :meth:`resolve` does.
        """
        self._refresh()
        if ref is None:
            self._pinned = None
            head = self._history.head
            if head is None:
                raise CommitNotFoundError("latest", self.name, "No commits found in dataset "
                                          f"{self.name!r}: it has no commits yet")
            return head
        commit = self.resolve(ref)
        self._pinned = commit.hash
        return commit

    def resolve(self, ref: str) -> Commit:
        """The commit ``ref`` names: a full hash, a unique hash prefix, or a tag.

        A tag names the newest commit carrying it; ``tag:NAME`` always means
        the tag. A word that is both a tag and a hash prefix of another commit
        raises :class:`~kirin.errors.AmbiguousRefError`, as does a prefix of
        several commits; nothing matching raises
        :class:`~kirin.errors.CommitNotFoundError`.
        """
        ref = text_argument(ref, "ref")
        self._refresh()
        return self._history.resolve(ref)

    def is_empty(self) -> bool:
        self._refresh()
        return len(self._history) == 0

    # -- files of the current commit --------------------------------------
    @property
    def files(self) -> Mapping[str, File]:
        head = self.current_commit
        return head.files if head else FrozenDict()

    def list_files(self) -> list[str]:
        return list(self.files)

    def has_file(self, name: str) -> bool:
        return lookup_name(name) in self.files

    def get_file(self, name: str) -> File | None:
        """The file ``name`` of the current commit, or ``None`` (as in the original)."""
        return self.files.get(lookup_name(name))

    def _require_file(self, name: str) -> File:
        head = self.current_commit
        found: File | None = head.files.get(lookup_name(name)) if head else None
        if found is None:
            raise FileNotInCommitError(name, head.hash if head else None)
        return found

    def read_file(self, name: str, mode: str = "r") -> str | bytes:
        """Whole content of ``name``: text with ``mode="r"``, bytes with ``"rb"``.

        Returned only once it has matched its hash.
        """
        return self._require_file(name).read(mode)

    def open_file(self, name: str, mode: str = "rb", *, stream: bool = False) -> IO[Any]:
        """A reader of ``name``; every byte it returns is verified (see :meth:`File.open`).

        By default the whole file is checked before this returns (a damaged
        file raises here). ``stream=True`` skips the private copy: earlier
        chunks are unverified, and the read that completes the file raises.
        """
        return self._require_file(name).open(mode, stream=stream)

    def download_file(self, name: str, target_path: PathLike) -> str:
        """Save ``name`` to ``target_path`` (a file path, or an existing folder)."""
        file = self._require_file(name)
        target = Path(path_argument(target_path, "target_path"))
        if target.is_dir():
            target = safe_local_path(target, name)
        return file.download_to(target)

    def local_files(self) -> AbstractContextManager[LocalFiles]:
        """Context manager: name -> local path, downloaded on first access, removed on exit."""
        head = self.current_commit
        return local_files(head.files if head else FrozenDict(), prefix=f"kirin_{self.name}_",
                           commit=head.hash if head else None)

    # -- history -----------------------------------------------------------
    def history(self, limit: int | None = None) -> list[Commit]:
        """Commits newest first (``limit`` newest only)."""
        limit = count_argument(limit, "limit")
        self._refresh()
        if limit is None:  # all of it: read at once, not a growing piece at a time
            self._history.load_all()
        return list(self._iter_newest_first(limit))

    def get_commits(self) -> list[Commit]:
        return self.history()

    def _iter_newest_first(self, limit: int | None = None) -> Iterator[Commit]:
        count = len(self._history)
        stop = max(count - limit, 0) if limit is not None else 0
        for seq in range(count - 1, stop - 1, -1):
            yield self._history.commit(seq)

    def get_commit(self, ref: str) -> Commit | None:
        """The commit ``ref`` (hash, unique prefix or tag), or ``None`` if there is none.

        An ambiguous name still raises :class:`~kirin.errors.AmbiguousRefError`.
        """
        try:
            return self.resolve(ref)
        except CommitNotFoundError as exc:
            if getattr(exc, "candidates", None):
                raise
            return None

    def find_commits(self, tags: Iterable[str] | None = None,
                     metadata_filter: Callable[[Mapping[str, Any]], bool] | None = None,
                     limit: int | None = None, where: str | None = None) -> list[Commit]:
        """Commits carrying *all* ``tags`` and passing every filter given, newest first.

        ``where`` is an expression of the policy language, e.g.
        ``"accuracy > 0.9 and framework == 'pytorch'"``; it is parsed once (a
        syntax error points at the column) and a commit lacking a field it
        names simply does not match.
        """
        wanted = text_items(tags, "tags") if tags is not None else []
        limit = count_argument(limit, "limit")
        where = optional_text_argument(where, "where")
        callable_argument(metadata_filter, "metadata_filter")
        query: Callable[[Mapping[str, Any]], bool] | None = None
        if where is not None:
            from .policy.expr import compile_query, parse

            query = compile_query(parse(where))
        self._refresh()
        found: list[Commit] = []
        history = self._history
        for seq in range(len(history) - 1, -1, -1):
            if limit is not None and len(found) >= limit:
                break
            if wanted:  # on the stored tags: only the matches become Commit values
                stored = history.tags_of(seq)
                if not all(t in stored for t in wanted):
                    continue
            # a query reads the stored metadata: only the matches become Commit values
            if query is not None and not query(_decode(history.metadata_text(seq))[0]):
                continue
            commit = history.commit(seq)
            if metadata_filter is not None and not metadata_filter(commit.metadata):
                continue
            found.append(commit)
        return found

    def metric_history(self, path: str) -> list[dict[str, Any]]:
        """The numeric metadata value at dotted ``path`` of every commit, oldest first.

        Rows for ``pandas.DataFrame``: ``seq``, ``hash``, ``short_hash``,
        ``timestamp``, ``author``, ``message``, ``tags`` and ``path`` itself
        (the value). Commits without a number there are left out.
        """
        from .ui.data import metric_history

        return metric_history(self, text_argument(path, "path"))

    def plot_metric(self, path: str, ax: Any = None) -> Any:
        """Plot :meth:`metric_history` with matplotlib (if installed); returns the Axes."""
        from .ui.notebook import plot_metric

        return plot_metric(self, text_argument(path, "path"), ax)

    def compare_commits(self, hash1: str, hash2: str) -> Comparison:
        """Differences from commit ``hash1`` to ``hash2`` (prefixes and tags accepted).

        A name that matches no commit raises :class:`~kirin.errors.CommitNotFoundError`
        whose message starts with the original's "One or both commits not found".
        """
        commits = []
        for ref in (hash1, hash2):
            try:
                commits.append(self.resolve(ref))
            except CommitNotFoundError as exc:
                if isinstance(exc, AmbiguousRefError):
                    raise
                detail = str(exc).removeprefix("Commit not found: ")
                raise CommitNotFoundError(exc.ref, self.name,
                                          f"One or both commits not found: {detail}") from None
        return Comparison(diff_commits(commits[0], commits[1]))

    def get_info(self) -> dict[str, Any]:
        """Facts about the dataset, with every key the original Kirin's ``get_info`` had.

        ``recent_commits`` lists the newest 10 commits (``hash``, ``short_hash``,
        ``message``, ``timestamp`` as ISO text, ``file_count``).
        """
        head = self.current_commit
        self._refresh()
        latest = self._history.head
        recent = [{"hash": c.hash, "short_hash": c.short_hash, "message": c.message,
                   "timestamp": c.timestamp.isoformat(), "file_count": len(c.files)}
                  for c in self._iter_newest_first(RECENT_COMMITS)]
        return {
            "name": self.name,
            "dataset_name": self.name,
            "description": self.description,
            "root_dir": self._store.url,  # redacted: a URL may carry user:password@
            "commit_count": len(self._history),
            "current_commit": head.hash if head else None,
            "latest_commit": latest.hash if latest else None,
            "latest_message": latest.message if latest else None,
            "latest_timestamp": latest.timestamp.isoformat() if latest else None,
            "file_count": len(head.files) if head else 0,
            "total_size": head.get_total_size() if head else 0,
            "recent_commits": recent,
        }

    def to_dict(self) -> dict[str, Any]:
        """Same as :meth:`get_info`: it holds every key the original's ``to_dict`` had
        (``name``, ``description``, ``root_dir``, ``current_commit``, ``commit_count``)."""
        return self.get_info()

    def verify(self, progress: Callable[[int], None] | None = None) -> VerifyReport:
        """Re-read and re-hash every record, checkpoint and blob of this dataset.

        Unlike normal reads, which stop at the first problem, this reports all
        of them (with the commits and files each affects), and every lineage
        link that names a commit no longer there. ``progress`` is called with
        the number of bytes hashed as it goes. The policy's chain of trust
        starts at the pinned hash (``trust_policy``...), else at version 0 as
        found; the report's ``policy_trust`` says which.
        """
        from .lineage import verify_links
        from .verify import verify_dataset

        return verify_links(self, verify_dataset(
            self._store, self.name, callable_argument(progress, "progress"),
            pin=self._policies.pin, root_pin=self._root_policies.pin))

    def cleanup_orphaned_files(self, *, dry_run: bool = False,
                               grace: timedelta = DEFAULT_GRACE) -> RemovedBlobs:
        """Remove stored blobs that no commit references, as the original did.

        Blobs are shared by every dataset under the root, so this is the same
        collection as :meth:`Catalog.gc <kirin.Catalog.gc>`: a blob is removed
        only if no commit of *any* dataset there references it, and only once
        it is older than ``grace`` (a commit in progress freshens the blobs it
        uses). Returns the number removed (an ``int``, as in the original)
        that also lists their hashes (see :class:`~kirin.values.RemovedBlobs`);
        ``dry_run`` removes nothing and reports what would go.
        """
        report = collect_garbage(self._store, dry_run=dry_run, grace=grace)
        return RemovedBlobs(report.removed, report.bytes_freed, report.kept_recent)

    # -- committing --------------------------------------------------------
    def commit(self, message: str, add_files: AddFiles | None = None,
               remove_files: Iterable[str] | None = None,
               metadata: Mapping[str, Any] | None = None,
               tags: Iterable[str] | None = None, *, author: str | None = None,
               replace: bool = False, override: bool = False,
               reason: str | None = None, signer: Signer | None = None,
               lineage: Mapping[str, str | Sequence[str]] | None = None,
               code: str | None = None, run: str | None = None) -> str:
        """Record a new commit on top of the newest one and return its full hash.

        Everything, the policy included, is checked before anything is
        written; a rejected commit raises :class:`~kirin.errors.PolicyViolationError`
        listing every violation. If another writer commits first, this one is
        rebuilt on the new head, judged again, and retried.

        Files of the newest commit that ``add_files`` does not name are carried
        over; ``replace=True`` makes the commit hold exactly ``add_files``.
        ``override=True`` with a ``reason`` admits a commit whose violations
        the policy's ``overrides:`` let past; the record keeps the reason, the
        author and the violations overridden. ``signer`` (a
        :class:`kirin.sshsig.Signer`, e.g. ``KeyFileSigner("~/.ssh/id_ed25519")``)
        signs the record; under a policy with ``signing:`` the key of the
        environment (``KIRIN_SIGNING_KEY``, else the ssh-agent) is used if none
        is given.

        ``lineage`` links the commit to the commits it was derived from, by role:
        ``{"training": "churn_data@v3"}`` (a ``DATASET@REF`` or a list of them; REF
        as :meth:`resolve` takes it; ``ROOT#DATASET@REF`` for another root); the
        record keeps each as the full hash it resolved to, with ``code`` (a code
        revision) and ``run`` (a run id). A link naming no commit raises
        :class:`~kirin.errors.DanglingLinkError` and writes nothing. See
        ``docs/lineage.md``.
        """
        request = self._request(override, reason, replace=replace, removes=remove_files,
                                signer=signer)
        inputs = prepare(message, add_files, remove_files, metadata, tags, author)
        request = self._linked(request, lineage, code, run)
        self._refresh_all()  # the policy logs too, once for judging and publishing
        self._check_latest()
        self._store.check_sources(inputs.sources.values())
        judged: dict[str, StagedBlob] = {}
        in_force = _InForce(self._in_force(refreshed=True))
        if in_force.governed:
            # judge on hashes alone first, so a rejected commit writes nothing at all
            judged = {n: self._store.stage(src, keep=False) for n, src in inputs.sources.items()}
            self._admit(inputs, self._snapshot_after(inputs, judged, request=request), request,
                        in_force.policies)
        staged: dict[str, StagedBlob] = {}
        try:
            for name, source in inputs.sources.items():
                staged[name] = self._store.stage(source)
                if name in judged and judged[name].digest != staged[name].digest:
                    raise StorageError(f"{source} changed while it was being committed; "
                                       "nothing was committed — try again once it is stable")
            return self._publish(inputs, staged, request=request, in_force=in_force)
        finally:
            for blob in staged.values():
                self._store.discard(blob)

    def validate(self, message: str, add_files: AddFiles | None = None,
                 remove_files: Iterable[str] | None = None,
                 metadata: Mapping[str, Any] | None = None,
                 tags: Iterable[str] | None = None, *, author: str | None = None,
                 replace: bool = False, override: bool = False,
                 reason: str | None = None, signer: Signer | None = None,
                 lineage: Mapping[str, str | Sequence[str]] | None = None,
                 code: str | None = None, run: str | None = None) -> Report:
        """Dry run of :meth:`commit`: the policy's verdict, with nothing written.

        Same arguments, same checks, same code path; returns the report
        instead of raising on violations (a registry without a policy admits
        every well-formed commit). A commit with no file changes is judged
        too, so a promotion (new tags only) can be checked.
        """
        request = self._request(override, reason, replace=replace, removes=remove_files,
                                signer=signer)
        inputs = prepare(message, add_files, remove_files, metadata, tags, author,
                         allow_empty=True)
        request = self._linked(request, lineage, code, run)
        self._refresh()
        self._check_latest()
        self._store.check_sources(inputs.sources.values())
        hashed = {n: self._store.stage(src, keep=False) for n, src in inputs.sources.items()}
        draft = self._snapshot_after(inputs, hashed, request=request)
        return self._verdict(self._proposal(inputs, draft, request), request)

    def _request(self, override: bool, reason: str | None, *, replace: bool = False,
                 removes: Iterable[str] | None = None, kind: str = "commit",
                 action: Mapping[str, Any] | None = None, signer: Signer | None = None
                 ) -> Request:
        for value, what in ((override, "override"), (replace, "replace")):
            if type(value) is not bool:
                raise InvalidInputError(f"{what} must be True or False, not {value!r}")
        reason = optional_text_argument(reason, "reason")
        if reason is not None and not override:
            raise InvalidInputError("reason is the reason for an override: give override=True "
                                    "too (--override --reason TEXT)")
        if replace and removes is not None:
            raise InvalidInputError("replace=True already removes every file not given; "
                                    "leave remove_files out")
        return Request(kind, action, override, reason, replace,
                       signer=signer_argument(signer))

    def _linked(self, request: Request, lineage: Any, code: Any, run: Any) -> Request:
        """``request`` with the lineage resolved (nothing is written if a link dangles)."""
        if lineage is None and code is None and run is None:
            return request
        from .links import link_specs

        resolved = self._linker().resolve(link_specs(lineage), code, run)
        return dataclasses.replace(request, lineage=resolved)

    def _linker(self) -> Linker:
        from .lineage import root_linker

        return root_linker(self._store, self.root_dir, self)

    def _check_latest(self) -> None:
        head = self._history.head_hash
        if self._pinned is not None and head is not None and self._pinned != head:
            raise NotLatestCommitError(self._pinned, head)

    def _proposal(self, inputs: CommitInputs, draft: Draft, request: Request) -> Proposal:
        """What the policy judges: built only when there is a policy (it lists every file)."""
        return Proposal(
            message=inputs.message,
            files=FrozenDict((n, h) for n, (h, _) in draft.files().items()),
            added=tuple(draft.added), removed=draft.removed, metadata=inputs.metadata,
            tags=inputs.tags, author=inputs.author,
            kind="withdrawal" if request.kind == "withdrawal" else "commit",
            lineage=request.lineage)

    def _snapshot_after(self, inputs: CommitInputs, blobs: Mapping[str, StagedBlob],
                        exact: Entries | None = None, *, request: Request) -> Draft:
        """The snapshot ``inputs`` make on the current head, checked for folder clashes.

        ``exact`` (a promotion) is the whole snapshot wanted, whatever the head
        holds: the changes are computed against the head; so is the snapshot
        of a ``replace`` commit, exactly its blobs. A :class:`Draft` rather
        than a new dict, so that a commit touching a few files of a large
        snapshot costs O(changes).
        """
        head = self._history.head
        seq = head.seq if head else -1
        base = self._history.snapshot(seq)
        if exact is None and request.replace:
            exact = {n: (b.digest, b.size) for n, b in blobs.items()}
        if exact is not None:
            added = {n: v for n, v in exact.items() if base.get(n) != v}
            if request.replace:  # the files given are this commit's, even if unchanged
                added = {n: (b.digest, b.size) for n, b in blobs.items()}
            removed = tuple(sorted(n for n in base if n not in exact))
            draft = self._history.draft(seq, added, removed, dict(exact))
        else:
            missing = [n for n in inputs.removed if n not in base]
            if missing:
                raise FileNotInCommitError(missing[0], head.hash if head else None)
            added = {n: (b.digest, b.size) for n, b in blobs.items()}
            draft = self._history.draft(seq, added, inputs.removed)
        draft.check_folder_clash()
        return draft

    def _publish(self, inputs: CommitInputs, staged: Mapping[str, StagedBlob],
                 exact: Entries | None = None, *, request: Request,
                 expect: Callable[[], None] | None = None,
                 in_force: _InForce | None = None) -> str:
        """Publish the commit, judged again after every lost race.

        ``in_force``: the policies the caller just read, which judge the first
        attempt if they are still fresh (see :class:`_InForce`).
        """
        blobs_written = False
        reused: list[StagedBlob] = []
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                self._refresh()
                self._check_latest()
            if expect is not None:  # judged again after every lost race, as the gate is
                expect()
            head = self._history.head
            draft = self._snapshot_after(inputs, staged, exact, request=request)
            fresh = in_force.policies if in_force and not attempt and in_force.fresh() else None
            governance = self._admit(inputs, draft, request, fresh)
            if not blobs_written:
                if not head:
                    self._ensure_info()
                reused = [b for b in staged.values() if self._store.publish(b)]
                blobs_written = True
            now = datetime.now(timezone.utc)
            if head is not None and now <= head.timestamp:
                now = head.timestamp + timedelta(microseconds=1)
            policy = governance.pop("policy")
            sign = governance.pop("sign")
            record = make_record(
                seq=len(self._history), parent=head.hash if head else None,
                tree=draft.tree(), added=draft.added, removed=draft.removed,
                message=inputs.message, metadata=thaw(inputs.metadata), tags=list(inputs.tags),
                timestamp=now, author=inputs.author, policy=policy, governance=governance,
                sign=sign)
            if self._journal.publish(record, draft):
                for blob in reused:  # a concurrent gc may have judged them unreferenced
                    self._store.restore(blob)
                self._pinned = None
                self._journal.write_due_checkpoints()
                from . import lineageindex  # (with logging) once a commit is written

                lineageindex.write_due(self._store, self.name, self._history)
                return str(record["hash"])
            time.sleep(random.uniform(0, min(0.2, 0.002 * 2 ** min(attempt, 7))))
        raise ConflictError(
            f"Gave up committing to dataset {self.name!r} after {MAX_ATTEMPTS} attempts: "
            "other writers kept committing first. Nothing of this commit is in the history.")

    def _admit(self, inputs: CommitInputs, draft: Draft, request: Request,
               policies: tuple[Policy | None, Policy | None] | None = None) -> dict[str, Any]:
        """Judge the commit by the policies in force now; return what its record keeps.

        The policy logs are re-read first (unless ``policies`` were read just
        before), so a policy another writer just set applies. Returns the
        record's ``policy`` and governance keys.
        """
        own, root = policies if policies is not None else self._in_force()
        action = dict(request.action) if request.action is not None else None
        signer = self._signer(request, (own, root))
        sign = self._sign_with(signer) if signer is not None else None
        lineage = request.lineage.to_record() if request.lineage else None
        if own is None and root is None and request.under is None:
            self._check_governed()
            return {"policy": None, "action": action, "sign": sign, "lineage": lineage}
        report = self._verdict(self._proposal(inputs, draft, request), request, (own, root))
        report.raise_for_violations(dataset=self.name)
        return {"policy": own.hash if own else None,
                "root_policy": root.hash if root else None,
                "action": action, "override": override_record(report, request.reason),
                "sign": sign, "lineage": lineage}

    def _signer(self, request: Request, policies: tuple[Policy | None, Policy | None]
                ) -> Signer | None:
        """The record's signer: the one given, else (under ``signing:``) the environment's."""
        if request.signer is not None:
            return request.signer
        if not any(p is not None and p.signing is not None for p in policies):
            return None
        if self._environment_signer is _UNSET:
            from .sshsig import signer_from_environment

            self._environment_signer = signer_from_environment()
        found: Signer | None = self._environment_signer
        return found

    def _sign_with(self, signer: Signer) -> Callable[[str], dict[str, str]]:
        def sign(digest: str) -> dict[str, str]:
            signature = signer.sign(signed_message(self.name, digest))
            return {"key": signer.public_key.openssh, "sig": signature.armored()}
        return sign

    def _in_force(self, *, refreshed: bool = False) -> tuple[Policy | None, Policy | None]:
        """(the dataset's policy, the root's policy) in force now, read afresh (unless
        :meth:`_refresh_all` just did); fail closed."""
        head = self._history.head
        return (self._policies.in_force(head, refresh=not refreshed),
                self._root_policies.in_force(head, refresh=not refreshed))

    def _refresh_all(self) -> None:
        """The commit log and both policy logs read afresh: at the same time on an object
        store (one round trip for the three, not three in a row), one after the other
        on local disk, where each look is a system call."""
        if self._store.is_local or self._store.kind == "memory":
            self._refresh()
            self._policies.refresh()
            self._root_policies.refresh()
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            looks = [pool.submit(self._policies.refresh), pool.submit(self._root_policies.refresh)]
            self._refresh()
            for look in looks:
                look.result()

    def _check_governed(self) -> None:
        if self.require_policy:
            raise PolicyRequiredError(
                f"Dataset {self.name!r} under {self._store.url} has no policy, and neither "
                "has the registry root, but a policy is required (require_policy / "
                f"{REQUIRE_POLICY_ENV}). Is the root or the dataset name misspelt? Nothing "
                "was written.", dataset=self.name, root=self._store.url)

    def _verdict(self, proposal: Proposal, request: Request,
                 policies: tuple[Policy | None, Policy | None] | None = None) -> Report:
        """The report on ``proposal`` by the dataset's and the root's policies, both.

        A rollback is judged by the policies that admitted the earlier
        holder; an override lets past what the policies' ``overrides:`` allow.
        """
        from .policy import Report, evaluate_policy

        current = policies or self._in_force()
        own, root = request.under or current
        if own is None and root is None:
            self._check_governed()
            return Report((), None)
        if request.lineage and any(p is not None and p.lineage for p in (own, root)):
            # what each linked commit is now, read only for a policy with rules over links
            proposal = dataclasses.replace(
                proposal, linked=self._linker().states(request.lineage))
        history = self._history.commits()
        report = evaluate_policy(own, proposal, history) if own else Report((), None)
        if root is not None:
            judged = evaluate_policy(root, proposal, history)
            report = report.combined(Report(
                tuple(v.from_source("root") for v in judged.violations), root.hash))
        if request.override:
            report = apply_override(report, {"dataset": own, "root": root},
                                    author=proposal.author, reason=request.reason)
        return self._signing_checked(report, proposal, request, current)

    def _signing_checked(self, report: Report, proposal: Proposal, request: Request,
                         policies: tuple[Policy | None, Policy | None]) -> Report:
        """``report`` plus what the policies in force say of the record's signer."""
        from .policy import Report

        signer = self._signer(request, policies)
        key = signer.public_key if signer is not None else None
        found = [v for source, policy in (("dataset", policies[0]), ("root", policies[1]))
                 if policy is not None
                 for v in [*signing_violations(
                     policy, source, kind=request.kind, tags=list(proposal.tags),
                     override=request.override, key=key.openssh if key else None,
                     fingerprint=key.fingerprint if key else None),
                     *self._approval_violations(policy, source, proposal, request)]]
        if not found:
            return report
        return Report((*report.violations, *found), report.policy_hash,
                      report.root_policy_hash, report.overridden)

    def _approval_violations(self, policy: Policy, source: str, proposal: Proposal,
                             request: Request) -> list[Violation]:
        """Each tag the policy wants approved: enough valid approvals of the commit promoted."""
        from .signchecks import approval_violations

        rules = policy.signing.require.approvals if policy.signing is not None else {}
        if not any(tag in rules for tag in proposal.tags):
            return []
        promoted = (request.action or {}).get("source")
        return approval_violations(
            policy, source, list(proposal.tags),
            self._history.resolve(str(promoted)) if promoted is not None else None,
            self._read_approvals)

    def _read_approvals(self, commit: str, stage: str | None, policy: Policy | None
                        ) -> list[Approval]:
        from .approvals import load

        return load(self._store, self.name, commit, stage, policy)

    def approve(self, ref: str, stage: str, message: str, *, signer: Signer | None = None
                ) -> Approval:
        """Record a signed, write-once approval of commit ``ref`` for ``stage``.

        Where the policy says a stage needs approvals
        (``signing.require.approvals``), a promotion to it counts the distinct
        valid approvers of the commit promoted. ``signer`` defaults to the
        environment's key (``KIRIN_SIGNING_KEY``, else the ssh-agent); each key
        approves a commit for a stage once.
        """
        from . import approvals
        from .errors import InvalidInputError as Invalid

        stage = text_argument(stage, "stage").strip()
        message = text_argument(message, "message")
        if not stage or not message.strip():
            raise Invalid("An approval needs a stage and a message")
        commit = self.resolve(ref)
        signer = signer_argument(signer)
        if signer is None:
            from .sshsig import signer_from_environment

            signer = signer_from_environment()
        if signer is None:
            raise Invalid("An approval is signed: pass signer= (or --key), set "
                          "KIRIN_SIGNING_KEY, or add a key to the ssh-agent")
        own, root = self._in_force()
        for policy in (own, root):
            rules = policy.signing if policy is not None else None
            rule = rules.require.approvals.get(stage) if rules is not None else None
            if rules is not None and rule is not None:
                who = rules.principal_of(signer.public_key.openssh)
                if who not in rules.members(rule.by):
                    named = who or "no principal"
                    raise Invalid(f"Key {signer.public_key.fingerprint} ({named}) may not "
                                  f"approve {stage!r}: the policy takes approvals from "
                                  f"{', '.join(rule.by)}")
        body = approvals.make(self.name, commit.hash, stage, message,
                              datetime.now(timezone.utc), signer)
        path = self._store.path(layout.approval(self.name, commit.hash, stage, body["key"]))
        if not self._store.create(path, (canonical_json(body) + "\n").encode()):
            raise Invalid(f"Key {signer.public_key.fingerprint} has already approved "
                          f"{commit.short_hash} for {stage!r}")
        found = approvals.read(self._store.read(path), dataset=self.name, commit=commit.hash,
                               stage=stage, policy=own or root)
        assert found is not None
        return found

    def approvals(self, ref: str, stage: str | None = None) -> list[Approval]:
        """The approvals stored for commit ``ref`` (and ``stage``), each checked (``problem``)."""
        commit = self.resolve(ref)
        own, root = self._in_force()
        wanted = text_argument(stage, "stage").strip() if stage is not None else None
        return self._read_approvals(commit.hash, wanted, own or root)

    # -- promotion ---------------------------------------------------------
    def promote(self, ref: str, tags: Iterable[str], message: str | None = None,
                author: str | None = None, *, metadata: Mapping[str, Any] | None = None,
                expect: str | None = None, override: bool = False, reason: str | None = None,
                rollback: bool = False, signer: Signer | None = None) -> str:
        """Record a new commit with the files and metadata of ``ref``, carrying ``tags``.

        Nothing is uploaded: the new commit names the blobs ``ref`` stored,
        and records ``ref``'s full hash as where it was promoted from
        (:attr:`Commit.promoted_from <kirin.values.Commit.promoted_from>`).
        Tags are never inherited, so the new commit carries ``tags`` only;
        ``metadata`` adds or replaces top-level keys (a fact learnt since,
        such as ``{"validated": True}``). The promotion passes the policy
        gate like any commit (it raises
        :class:`~kirin.errors.PolicyViolationError` listing every violation)
        and returns the new commit's full hash.

        ``expect`` (a full hash) refuses with :class:`~kirin.errors.StaleRefError`
        if ``ref`` no longer names that commit, so what a CI gate judged is
        what is promoted. ``rollback=True`` promotes a commit whose content
        once held the stage again, judged by the policies that admitted it
        then, where the policy in force declares ``rollback: allowed``.
        ``override``/``reason``/``signer``: see :meth:`commit`.
        """
        inputs, snapshot, request, check = self._promotion(
            ref, tags, message, author, metadata, expect, override, reason, rollback, signer)
        return self._publish(inputs, {}, snapshot, request=request, expect=check)

    def validate_promotion(self, ref: str, tags: Iterable[str], message: str | None = None,
                           author: str | None = None, *,
                           metadata: Mapping[str, Any] | None = None,
                           expect: str | None = None, override: bool = False,
                           reason: str | None = None, rollback: bool = False,
                           signer: Signer | None = None) -> Report:
        """Dry run of :meth:`promote`: the policy's verdict, with nothing written."""
        inputs, snapshot, request, _ = self._promotion(
            ref, tags, message, author, metadata, expect, override, reason, rollback, signer)
        draft = self._snapshot_after(inputs, {}, snapshot, request=request)
        return self._verdict(self._proposal(inputs, draft, request), request)

    def _promotion(self, ref: str, tags: Iterable[str], message: str | None,
                   author: str | None, metadata: Mapping[str, Any] | None,
                   expect: str | None, override: bool, reason: str | None, rollback: bool,
                   signer: Signer | None
                   ) -> tuple[CommitInputs, Entries, Request, Callable[[], None]]:
        """The inputs, exact snapshot and request of promoting ``ref`` with ``tags``."""
        wanted = text_items(tags, "tags")
        if not wanted:
            raise InvalidInputError("A promotion needs at least one tag")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise InvalidInputError("metadata must be a mapping (a JSON object)")
        if type(rollback) is not bool:
            raise InvalidInputError(f"rollback must be True or False, not {rollback!r}")
        ref = text_argument(ref, "ref")
        expected = self._expected(expect)
        self._refresh()
        self._check_latest()
        source = self._history.resolve(ref)

        def check() -> None:
            if expected is not None:
                actual = self._history.resolve(ref)
                if actual.hash != expected:
                    raise StaleRefError(
                        f"{ref!r} now names commit {actual.short_hash}, not the expected "
                        f"{expected[:12]} (another commit took it since it was checked); "
                        "nothing was promoted", ref=ref, expected=expected, actual=actual.hash)

        check()
        if message is None:
            verb = "Roll back" if rollback else "Promote"
            message = f"{verb} {source.short_hash} to {', '.join(map(str, wanted))}"
        merged = {**thaw(source.metadata), **dict(metadata or {})}
        inputs = prepare(message, None, None, merged, wanted, author, allow_empty=True)
        missing = [f for f in source.files.values() if not self._store.has_blob(f.hash)]
        if missing:
            raise CorruptObjectError(
                f"Cannot promote {source.short_hash}: the content of {missing[0].name!r} "
                f"({missing[0].hash[:12]}) is missing from storage; run verify",
                path=self._store.blob_path(missing[0].hash), commit=source.hash,
                file=missing[0].name)
        request = self._request(override, reason, kind="promotion",
                                action={"kind": "promotion", "source": source.hash},
                                signer=signer)
        if rollback:
            request = self._rollback(source, list(inputs.tags), request)
        if source.lineage:  # the same model: it keeps the links of the commit promoted
            request = dataclasses.replace(request, lineage=source.lineage)
        return inputs, {n: (f.hash, f.size) for n, f in source.files.items()}, request, check

    @staticmethod
    def _expected(expect: str | None) -> str | None:
        if expect is None:
            return None
        expect = text_argument(expect, "expect").strip().lower()
        if not is_digest(expect):
            raise InvalidInputError(f"expect must be a full commit hash (64 hex digits), not "
                                    f"{expect!r}: the hash the gate judged")
        return expect

    def _rollback(self, source: Commit, tags: list[str], request: Request) -> Request:
        """The request of promoting ``source`` back to the stage it once held."""
        from .errors import PolicyViolationError
        from .policy import Violation

        own, root = self._in_force()
        if own is None and root is None:
            raise InvalidInputError("A rollback is judged by the policy that admitted the "
                                    "earlier holder; this dataset has no policy: promote "
                                    "without --rollback")
        if len(tags) != 1:
            raise InvalidInputError("A rollback restores one stage at a time: give one tag")
        stage = tags[0]
        refused = [Violation("rollback", "rollback", policy.rollback, "rollback: allowed",
                             f"The {where} policy does not allow rollbacks (it would need "
                             "'rollback: allowed').", where)
                   for where, policy in (("root", root), ("dataset", own))
                   if policy is not None and not policy.allows_rollback]
        commits = self._history.commits()
        trees = {c.hash: self._history.tree_of(c.seq) for c in commits}
        held = earlier_holder(commits, stage, trees[source.hash], trees)
        if held is None:
            refused.append(Violation(
                "rollback", stage, source.hash, f"an earlier holder of {stage!r} with these "
                "files", f"No commit with the files of {source.short_hash} ever held "
                f"{stage!r}: only a former holder can be rolled back to.", "dataset"))
        elif held.policy_hash is None and held.root_policy_hash is None:
            refused.append(Violation(
                "rollback", stage, held.hash, "an earlier holder admitted by a policy",
                f"Commit {held.short_hash} held {stage!r} before any policy governed it; "
                "there is no policy to judge the rollback by.", "dataset"))
        if refused or held is None:
            raise PolicyViolationError(refused, dataset=self.name)
        under = (self._policies.policy_of(held.policy_hash),
                 self._root_policies.policy_of(held.root_policy_hash))
        action = {"kind": "rollback", "source": source.hash, "held": held.hash,
                  "policy": held.policy_hash, "root_policy": held.root_policy_hash}
        return Request("rollback", action, request.override, request.reason, under=under,
                       signer=request.signer)

    # -- stages ------------------------------------------------------------
    def withdraw(self, stage: str, message: str, author: str | None = None, *,
                 expect: str | None = None, override: bool = False,
                 reason: str | None = None, signer: Signer | None = None) -> str:
        """Retire the commit holding ``stage`` without replacing it; return the record's hash.

        The withdrawal is a record of the history (same files as the newest
        commit, no metadata, no tags) naming the stage and the commit retired,
        judged by the policy like any commit: it admits no content, so the
        rules about every record (the message) apply. ``expect`` (a full
        hash) refuses if the stage is no longer held by that commit.
        """
        stage = text_argument(stage, "stage").strip()
        expected = self._expected(expect)
        self._refresh()
        self._check_latest()
        self._check_stage(stage)
        current = self._holder(stage)
        if expected is not None and current.hash != expected:
            raise StaleRefError(f"Stage {stage!r} is held by {current.short_hash}, not the "
                                f"expected {expected[:12]}; nothing was withdrawn",
                                ref=stage, expected=expected, actual=current.hash)
        inputs = prepare(message, None, None, None, None, author, allow_empty=True)
        request = self._request(override, reason, kind="withdrawal", action={
            "kind": "withdrawal", "stage": stage, "holder": current.hash}, signer=signer)

        def still_held() -> None:
            now = self._holder(stage)
            if now.hash != current.hash:
                raise StaleRefError(f"Stage {stage!r} changed hands while it was being "
                                    f"withdrawn (now {now.short_hash}); nothing was "
                                    "withdrawn", ref=stage, expected=current.hash,
                                    actual=now.hash)

        head = self._history.head
        assert head is not None  # the stage has a holder
        snapshot = dict(self._history.snapshot(head.seq))
        return self._publish(inputs, {}, snapshot, request=request, expect=still_held)

    def _check_stage(self, stage: str) -> None:
        names = self._stage_names()
        if names and stage not in names:
            raise InvalidInputError(f"{stage!r} is not a stage of dataset {self.name!r}; "
                                    f"its policy declares: {', '.join(names)}")

    def _holder(self, stage: str) -> Commit:
        current, withdrawn = self._history.holder(stage)
        if current is None:
            why = (f"it was withdrawn by {withdrawn.short_hash} ({withdrawn.message!r})"
                   if withdrawn is not None else "no commit has held it")
            raise CommitNotFoundError(stage, self.name, f"Commit not found: stage {stage!r} "
                                      f"of dataset {self.name!r} has no holder: {why}")
        return current

    def _stage_names(self) -> tuple[str, ...]:
        """The stages the policy in force declares (the dataset's, else the root's)."""
        own, root = self._in_force()
        for policy in (own, root):
            if policy is not None and policy.stage_names:
                return policy.stage_names
        return ()

    def stages(self) -> list[StageStatus]:
        """For each stage the policy declares, in order: who holds it now, since when.

        Each :class:`~kirin.governance.StageStatus` gives the holding commit
        (``None`` if nobody holds it, with the withdrawal that emptied it),
        ``since``, ``by``, ``promoted_from`` and the version tags it goes by
        (the tags the policy makes unique, on it and on the commits it was
        promoted from). Without declared stages: an exclusive group of tags
        that holds a tag with a promotion rule (``[dev, staging, production]``),
        else the tags of the promotion rules.
        """
        self._refresh()
        own, root = self._in_force()
        policies = [p for p in (own, root) if p is not None]
        names = self._stage_names() or _implied_stages(policies)
        # version tags: those the policy makes unique, else every tag that is no stage
        unique = [p.tags.is_unique for p in policies
                  if p.tags.unique or p.tags.unique_patterns]

        def is_version(tag: str) -> bool:
            return any(rule(tag) for rule in unique) if unique else tag not in names

        commits = self._history.commits()
        by_hash = {c.hash: c for c in commits}
        found = []
        for stage in names:
            current, withdrawn = self._history.holder(stage)
            tags = version_tags(current, by_hash, is_version) if current is not None else ()
            found.append(StageStatus(stage, current, tags, withdrawn))
        return found

    def stage_history(self, stage: str) -> list[Tenure]:
        """Every commit that held ``stage``, oldest first, with when and how it ended."""
        stage = text_argument(stage, "stage").strip()
        self._refresh()
        return tenures(self._history.commits(), stage)

    # -- policy ------------------------------------------------------------
    @property
    def policy(self) -> Policy | None:
        """The policy in force (``None``: every well-formed commit is admitted).

        Fails closed: a CorruptObjectError, not an older policy, when the policy
        history has a hole, or lacks the policy that admitted the newest
        commit (its newest versions were deleted).
        """
        return self._policies.in_force(self._history.head)

    @property
    def trusted_policy(self) -> str | None:
        """The pinned policy hash the chain of trust starts at (``None``: trusted on first use)."""
        return self._policies.pin

    @property
    def trusted_root_policy(self) -> str | None:
        """The pinned root policy hash its chain of trust starts at (``None``: first use)."""
        return self._root_policies.pin

    @property
    def root_policy(self) -> Policy | None:
        """The registry root's policy in force, which judges every commit here too.

        Set it with :meth:`Catalog.set_policy <kirin.Catalog.set_policy>`.
        Fails closed like :attr:`policy`.
        """
        return self._root_policies.in_force(self._history.head)

    def set_policy(self, policy: PathLike | Policy | None, *, message: str = "",
                   author: str | None = None, signers: Sequence[Signer] = (),
                   signatures: Sequence[Mapping[str, Any]] = ()) -> str | None:
        """Make ``policy`` the registry's policy from now on; return its hash.

        ``policy`` is a path to a YAML policy file, the YAML text itself, a
        loaded :class:`~kirin.policy.Policy`, or ``None`` to remove the policy.
        The stored version is self-contained (schema files embedded) and
        versioned: :meth:`policy_history` lists every version. Setting the
        policy already in force records nothing new.

        Where the policy in force says who must sign its replacement
        (``signing.require.policy``), the new version needs their signatures:
        ``signers`` sign it here, ``signatures`` are ones other admins made
        with :meth:`sign_policy`; too few refuse the change, nothing written.
        """
        message = text_argument(message, "message")
        author = optional_text_argument(author, "author")
        signers, signatures = signers_argument(signers), signatures_argument(signatures)
        loaded = _policy_from(policy)
        self._refuse_rule_typos(loaded, policy)
        version = self._policies.append(
            loaded, message=message, author=(author or default_author()).strip(),
            signers=signers, signatures=signatures)
        self._ensure_info()  # after the policy: the dataset is never visible without it
        return version.policy_hash

    def _refuse_rule_typos(self, policy: Policy | None, source: object) -> None:
        """Cross-check rules against the schema, for a version not yet in force only.

        Re-applying the policy in force records nothing, so it is not judged
        again: stored versions must keep working whatever the check learns.
        """
        if policy is None:
            return
        self._policies.refresh()
        current = self._policies.current()
        if current is None or current.policy_hash != policy.hash:
            from .policy.loader import refuse_rule_typos

            refuse_rule_typos(policy, source)

    def sign_policy(self, policy: PathLike | Policy | None, signer: Signer) -> dict[str, str]:
        """An admin's signature authorising ``policy`` as the next version, for
        :meth:`set_policy`'s ``signatures`` (valid until another version is set)."""
        signer = signer_argument(signer)
        if signer is None:
            raise InvalidArgumentTypeError("signer must be a kirin.sshsig.Signer, not None")
        return self._policies.sign_next(_policy_from(policy), signer)

    def policy_history(self) -> list[PolicyVersion]:
        """Every version of the policy, newest first."""
        self._policies.refresh()
        return list(reversed(self._policies.versions()))

    def policy_version(self, ref: str | int | None = None) -> PolicyVersion:
        """One version of the policy: its number (``policy_history()``'s ``seq``), or a hash.

        ``ref`` is the version number (an ``int``, or a string of digits), a
        policy hash or a unique prefix of one (at least 4 hex digits; the
        newest version holding it), or ``None`` for the version in force.
        Raises :class:`~kirin.errors.NotFoundError` when nothing or several
        hashes match, or the dataset has never had a policy.
        """
        from .policyrefs import find_version

        self._policies.refresh()
        return find_version(self._policies.versions(), ref, dataset=self.name)

    # -- lineage -----------------------------------------------------------
    def lineage(self, ref: str | None = None) -> LineageNode:
        """What commit ``ref`` (default: the current one) came from, transitively.

        A tree: the commit, the commits it links to (by role), theirs, and so
        on; a link that cannot be followed any more is a node with a
        ``problem``. See ``docs/lineage.md``.
        """
        return self._linker().upstream("", self.name, self._ref_or_current(ref))

    def used_by(self, ref: str | None = None, *, stage: str | None = None) -> UsedBy:
        """Every commit in this root linking to commit ``ref`` (default: the current one),
        or to a promotion of it, transitively; ``stage`` keeps those holding that stage
        of their dataset now ("which production models used this data?")."""
        from .lineage import used_by_in_root

        return used_by_in_root(self._store, self._linker(),
                               f"{self.name}@{self._ref_or_current(ref).hash}", stage=stage)

    def _ref_or_current(self, ref: str | None) -> Commit:
        commit = self.current_commit if ref is None else self.resolve(ref)
        if commit is None:
            raise CommitNotFoundError("latest", self.name, "No commits found in dataset "
                                      f"{self.name!r}: it has no commits yet")
        return commit

    def audit(self, *, include_passing: bool = False, since: str | datetime | None = None,
              against: str = "current") -> AuditResults:
        """Re-judge the existing history; return the commits that fail, newest first.

        ``against="current"`` (the default): what would be rejected today,
        every commit judged by the policies in force now, the dataset's and
        the registry root's (neither: nothing is judged, ``[]``).
        ``against="admitting"``: did the gate hold? Each commit is judged by
        the policy versions that admitted it (a rollback: those that admitted
        the holder it restored), the violations its record says were
        overridden excused; a commit admitted with no policy is not judged,
        and one whose policy version is missing from the policy history fails
        (``policy-history``).

        Each commit is judged as if proposed on top of the commits before it.
        ``since`` reports only the commits after a commit (a REF: hash, unique
        prefix or tag, like git's ``REF..HEAD``) or at/after a moment (an ISO
        8601 date or date-time string, local time without an offset, or a
        ``datetime``); the history before still counts for history-dependent
        rules. Each result is ``(commit, report)``; the report's
        ``policy_hash`` and ``root_policy_hash`` are the policies that judged
        it (both ``None``: not judged). ``include_passing`` returns every
        reported commit.

        Where a policy has a ``signing:`` section, each record's signature,
        signer and approvals are judged as the gate judged them; a commit
        admitted by a policy version the admins never authorised fails
        (``policy-trust``), and the current mode then judges by the newest
        authorised version.
        """
        from . import auditing
        from .signchecks import RecordSigning

        mode = auditing.against_argument(against)
        self._refresh()
        self._policies.refresh()  # a hole raises; a commit naming a lost policy is reported
        window = auditing.since_argument(since, self._history.resolve, self.name)
        self._root_policies.refresh()
        history = self._history.commits()
        logs = {"dataset": self._policies, "root": self._root_policies}
        signing = RecordSigning(self.name, history, self._read_approvals)
        linked = self._linker().linked_of  # lineage rules judge the linked data as it is now
        if mode == "admitting":
            results = auditing.audit_admitting(history, logs, window, linked, signing)
        else:
            policies = auditing.policies_in_force(logs)
            if all(p is None for p in policies) and not any(
                    log.distrust() for log in logs.values()):
                return AuditResults()
            results = auditing.audit_current(policies, history, logs, window, linked,
                                             signing)
        return AuditResults(auditing.newest_first(results, include_passing))


@dataclass(frozen=True)
class _InForce:
    """The policies in force as a commit read them at its start, and when.

    They judge its first attempt to publish too, if that comes within
    ``POLICY_REREAD_AFTER`` seconds (a small commit: the policy logs are read
    once, not twice); after a long upload, or a lost race, they are read
    again, so a policy another writer set meanwhile applies.
    """

    policies: tuple[Policy | None, Policy | None]
    at: float = field(default_factory=time.monotonic)

    @property
    def governed(self) -> bool:
        return any(p is not None for p in self.policies)

    def fresh(self) -> bool:
        return time.monotonic() - self.at <= POLICY_REREAD_AFTER


def _implied_stages(policies: list[Policy]) -> tuple[str, ...]:
    """The stages of policies that declare none: a ladder their tag rules imply."""
    promoted = [t for p in reversed(policies) for t in p.promotion]
    for policy in reversed(policies):
        for group in policy.tags.exclusive_groups:
            if any(tag in promoted for tag in group):
                return tuple(group)
    return tuple(dict.fromkeys(promoted))


def _policy_from(policy: PathLike | Policy | None) -> Policy | None:
    """A checked policy, or ``None`` (no policy); the policy package loads only here."""
    if policy is None:
        return None
    from .policy import policy_from

    return policy_from(policy)
