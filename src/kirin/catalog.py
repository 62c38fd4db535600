"""``Catalog``: the datasets under one root."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from . import layout
from .arguments import text_argument
from .dataset import Dataset
from .errors import DatasetExistsError, InvalidNameError
from .gc import DEFAULT_GRACE, GcReport, collect_garbage
from .inputs import PathLike, root_argument
from .naming import validate_dataset_name
from .store import Store

if TYPE_CHECKING:
    import fsspec

    from .policy import Policy


class Catalog:
    """All datasets stored under ``root_dir`` (local folder or fsspec URL)."""

    def __init__(self, root_dir: PathLike, fs: fsspec.AbstractFileSystem | None = None,
                 **storage_options: Any) -> None:
        self.root_dir = root_argument(root_dir)
        self._store = Store(self.root_dir, fs, **storage_options)
        self.fs = self._store.fs

    def __repr__(self) -> str:
        return f"Catalog(root_dir={self._store.url!r})"  # redacted: may carry a password

    def datasets(self) -> list[str]:
        """Names of the datasets that exist (created, or with at least one commit)."""
        names = []
        for name in self._store.listdir(self._store.path(layout.DATASETS)):
            try:
                validate_dataset_name(name)
            except InvalidNameError:
                continue
            if self._store.exists(self._store.path(layout.dataset_info(name))) or \
                    self._store.exists(self._store.path(layout.log_entry(name, 0))):
                names.append(name)
        return names

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

    def get_dataset(self, name: str) -> Dataset:
        """The dataset ``name``; it is created on its first commit if new (as in the original)."""
        return Dataset._on_store(self._store, self.root_dir, name)

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

            loaded = policy_from(policy)
        dataset = Dataset._on_store(self._store, self.root_dir, name, description)
        if self._store.exists(self._store.path(layout.dataset_info(name))):
            if loaded is None or not dataset.is_empty() or dataset.policy_history():
                raise DatasetExistsError(f"Dataset {name!r} already exists in {self._store.url}")
            # created by a process killed before it stored the policy: finish the job
            dataset.set_policy(loaded, message="policy set at creation")
            return dataset
        if not dataset._create(loaded):
            raise DatasetExistsError(f"Dataset {name!r} already exists in {self._store.url}")
        return dataset
