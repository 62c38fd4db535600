"""``Catalog``: the datasets under one root."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from . import layout, markers
from .arguments import (
    optional_text_argument,
    pin_argument,
    signatures_argument,
    signer_argument,
    signers_argument,
    text_argument,
)
from .backends import credential_options
from .dataset import Dataset
from .errors import (
    DatasetExistsError,
    DatasetNotFoundError,
    GovernedDatasetError,
    InvalidArgumentTypeError,
)
from .gc import DEFAULT_GRACE, GcReport, collect_garbage
from .inputs import PathLike, default_author, root_argument
from .naming import validate_dataset_name
from .policylog import PolicyLog, PolicyVersion
from .store import Store

if TYPE_CHECKING:
    import fsspec

    from .lineage import UsedBy
    from .policy import Policy
    from .sshsig import Signer


class Catalog:
    """All datasets stored under ``root_dir`` (local folder or fsspec URL).

    Takes the original Kirin's credential arguments as :class:`Dataset` does,
    and ``trust_root_policy`` (default: ``KIRIN_TRUST_ROOT_POLICY``): the hash
    of the root policy version whose chain of trust you accept, for the root
    policy and every dataset got from here.
    """

    def __init__(self, root_dir: PathLike, fs: fsspec.AbstractFileSystem | None = None,
                 aws_profile: str | None = None, gcs_token: str | PathLike | None = None,
                 gcs_project: str | None = None, azure_account_name: str | None = None,
                 azure_account_key: str | None = None,
                 azure_connection_string: str | None = None,
                 **storage_options: Any) -> None:
        # a keyword of its own, as Dataset's trust_policy (see there)
        self._root_pin = pin_argument(storage_options.pop("trust_root_policy", None),
                                      "trust_root_policy")
        self.root_dir = root_argument(root_dir)
        options = credential_options(self.root_dir, storage_options, {
            "aws_profile": aws_profile, "gcs_token": gcs_token, "gcs_project": gcs_project,
            "azure_account_name": azure_account_name, "azure_account_key": azure_account_key,
            "azure_connection_string": azure_connection_string})
        self._store = Store(self.root_dir, fs, **options)

    def __repr__(self) -> str:
        return f"Catalog(root_dir={self._store.url!r})"  # redacted: may carry a password

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        """The fsspec filesystem of the root (made on first use on local disk)."""
        return self._store.fs

    def datasets(self) -> list[str]:
        """Names of the datasets that exist (created, or with at least one commit)."""
        return dataset_names(self._store)

    def __len__(self) -> int:
        return len(self.datasets())

    def __iter__(self) -> Iterator[str]:
        return iter(self.datasets())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.datasets()

    def gc(self, *, dry_run: bool = False, grace: timedelta = DEFAULT_GRACE) -> GcReport:
        """Remove blobs that no commit of any dataset here references.

        Only blobs unreferenced *and* last modified more than ``grace`` ago
        are removed, so commits in progress (which freshen the blobs they
        reuse) are safe; ``grace`` must exceed the longest commit's duration.
        """
        return collect_garbage(self._store, dry_run=dry_run, grace=grace)

    # -- the root policy ----------------------------------------------------
    def _root_log(self) -> PolicyLog:
        return PolicyLog(self._store, None, pin=self._root_pin)

    @property
    def policy(self) -> Policy | None:
        """The root policy: it judges every commit of every dataset here, new ones included.

        A dataset's own policy adds rules on top (both must pass). Fails
        closed, like :attr:`Dataset.policy <kirin.Dataset.policy>`, on a hole
        in the root policy's history.
        """
        return self._root_log().in_force(None)

    def set_policy(self, policy: PathLike | Policy | None, *, message: str = "",
                   author: str | None = None, signers: Sequence[Signer] = (),
                   signatures: Sequence[Mapping[str, Any]] = ()) -> str | None:
        """Make ``policy`` the root policy from now on (``None`` removes it); return its hash.

        Versioned, write-once and signed like a dataset's policy
        (:meth:`Dataset.set_policy <kirin.Dataset.set_policy>`): where the root
        policy in force says who must sign its replacement, ``signers`` sign
        here and ``signatures`` are ones other admins made with
        :meth:`sign_policy`; too few refuse the change, nothing written.
        """
        message = text_argument(message, "message")
        author = optional_text_argument(author, "author")
        signers, signatures = signers_argument(signers), signatures_argument(signatures)
        loaded = None
        if policy is not None:
            from .policy import policy_from

            loaded = policy_from(policy)
        log = self._root_log()
        log.refresh()
        current = log.current()
        if loaded is not None and (current is None or current.policy_hash != loaded.hash):
            from .policy.loader import refuse_rule_typos

            refuse_rule_typos(loaded, policy)  # a new version only: stored ones must load
        version = log.append(loaded, message=message, author=(author or default_author()).strip(),
                             signers=signers, signatures=signatures)
        return version.policy_hash

    def sign_policy(self, policy: PathLike | Policy | None, signer: Signer) -> dict[str, str]:
        """An admin's signature authorising ``policy`` as the root policy's next version,
        for :meth:`set_policy`'s ``signatures`` (valid until another version is set)."""
        signer = signer_argument(signer)
        if signer is None:
            raise InvalidArgumentTypeError("signer must be a kirin.sshsig.Signer, not None")
        loaded = None
        if policy is not None:
            from .policy import policy_from

            loaded = policy_from(policy)
        log = self._root_log()
        log.refresh()
        return log.sign_next(loaded, signer)

    def policy_history(self) -> list[PolicyVersion]:
        """Every version of the root policy, newest first."""
        log = self._root_log()
        log.refresh()
        return list(reversed(log.versions()))

    def get_dataset(self, name: str, *, require_policy: bool | None = None,
                    trust_policy: str | None = None) -> Dataset:
        """The dataset ``name``; it is created on its first commit if new (as in the original).

        ``require_policy``, ``trust_policy``: as for :class:`Dataset`.
        """
        return Dataset._on_store(self._store, self.root_dir, name,
                                 require_policy=require_policy, trust_policy=trust_policy,
                                 trust_root_policy=self._root_pin)

    def used_by(self, target: str, *, stage: str | None = None) -> UsedBy:
        """Every commit here that links to ``target`` or a promotion of it, transitively.

        ``target`` is ``DATASET@REF`` (REF: hash, unique prefix, tag or stage) or
        ``ROOT#DATASET@REF`` for a dataset of another root; ``stage`` keeps the
        commits holding that stage of their dataset now. See ``docs/lineage.md``.
        """
        from .lineage import root_linker, used_by_in_root

        return used_by_in_root(self._store, root_linker(self._store, self.root_dir),
                               text_argument(target, "target"), stage=stage)

    def create_dataset(self, name: str, description: str = "",
                       policy: PathLike | Policy | None = None) -> Dataset:
        """Create dataset ``name`` now: it exists, with its description, before any commit.

        ``policy`` (a policy file path, YAML text or loaded policy) is checked
        before anything is created and becomes the dataset's first policy.
        """
        validate_dataset_name(name)
        description = text_argument(description, "description")
        loaded = None
        if policy is not None:
            from .policy import policy_from
            from .policy.loader import refuse_rule_typos

            loaded = policy_from(policy)
            refuse_rule_typos(loaded, policy)  # a dataset's first policy is a new version
        dataset = Dataset._on_store(self._store, self.root_dir, name, description,
                                    trust_root_policy=self._root_pin)
        if self._store.exists(self._store.path(layout.dataset_info(name))):
            if loaded is None or not dataset.is_empty() or dataset.policy_history():
                raise DatasetExistsError(f"Dataset {name!r} already exists in {self._store.url}")
            # created by a process killed before it stored the policy: finish the job
            dataset.set_policy(loaded, message="policy set at creation")
            markers.mark(self._store, name)  # that process may have died before this too
            return dataset
        if not dataset._create(loaded):
            raise DatasetExistsError(f"Dataset {name!r} already exists in {self._store.url}")
        return dataset

    def delete_dataset(self, name: str, *, governed: bool = False) -> None:
        """Remove dataset ``name``: its description, commit log, checkpoints and policies.

        Afterwards the name is free and the dataset is gone from
        :meth:`datasets`. Blobs are left for :meth:`gc` to collect: other
        datasets may share them. A dataset that has ever had a policy keeps
        its audit trail unless ``governed=True`` is given
        (:class:`~kirin.errors.GovernedDatasetError`). A name with nothing
        stored raises :class:`~kirin.errors.DatasetNotFoundError` (a
        ``ValueError``, as in the original). Stop the dataset's writers
        first: a commit racing the deletion leaves an entry behind, which
        fails every reader closed until ``delete_dataset`` is called again.

        Objects go in an order that never shows a shorter, valid-looking
        history: the catalog marker (so that a listing reads what is left
        rather than trust it), lineage indexes, segments and checkpoints, then
        the log from its first entry (a reader arriving midway finds a hole and
        refuses), then the policy versions, then ``dataset.json``. Interrupted,
        it is finished by calling it again.
        """
        name = validate_dataset_name(name)
        store = self._store
        folder = store.path(layout.dataset(name))
        objects = self._objects_under(folder)
        if not objects:
            raise DatasetNotFoundError(f"Dataset {name!r} not found in catalog "
                                       f"{store.url}", name=name)
        if not governed and Dataset._on_store(store, self.root_dir, name,
                                              trust_root_policy=self._root_pin).policy_history():
            raise GovernedDatasetError(
                f"Dataset {name!r} is governed by a policy: deleting it deletes its audit "
                "trail. Pass governed=True to delete it anyway.", name=name)
        markers.unmark(store, name)
        order = [store.path(layout.lineage_indexes(name)), store.path(layout.segments(name)),
                 store.path(layout.checkpoints(name)), store.path(layout.commit_log(name)),
                 store.path(layout.policy_log(name))]
        info = store.path(layout.dataset_info(name))

        def rank(path: str) -> tuple[int, str]:
            for i, prefix in enumerate(order):
                if path.startswith(prefix + "/"):
                    return i, path
            return (len(order) + 1 if path == info else len(order)), path

        for path in sorted(objects, key=rank):
            try:
                store.remove(path)
            except FileNotFoundError:
                continue
        if store.is_local:  # the emptied folders (object stores have none); never a file
            for current, _, _ in os.walk(folder, topdown=False):
                with contextlib.suppress(OSError):
                    os.rmdir(current)

    def _objects_under(self, folder: str) -> list[str]:
        """Every object (not folder) below ``folder``, by walking it with ``listdir``."""
        found: list[str] = []
        pending = [folder]
        while pending:
            current = pending.pop()
            for entry in self._store.listdir(current):
                path = f"{current}/{entry}"
                try:
                    kind = self._store.info(path).get("type", "file")
                except FileNotFoundError:  # S3: a "folder" is a key prefix, not an object
                    kind = "directory"
                (pending if kind == "directory" else found).append(path)
        return found


def dataset_names(store: Store) -> list[str]:
    """Names of the datasets that exist under ``store`` (created, or with a first commit).

    Two listings at once (``datasets/`` and the catalog's markers): a marked
    folder is a dataset; an unmarked one is read (its ``dataset.json``, else
    its first commit; all at once). See :mod:`kirin.markers`.
    """
    return list(markers.list_datasets(store).names)
