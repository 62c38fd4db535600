"""Every error Kirin raises, under one base class.

Callers can catch :class:`KirinError` for "anything Kirin refused or could not
do", or a narrower class. Where the original Kirin raised a builtin
(``ValueError`` for an unknown commit, ``FileNotFoundError`` for a missing
file), the class also derives from that builtin, so code written for it keeps
working. Context is carried as attributes, not only in the message.

Where the original's message is matched on by code (``"Commit not found"``,
``"No commits found in dataset"``, ``"One or both commits not found"``,
``"No changes specified"``, ``"File not found: <name>"``), Kirin's message
starts with that text and adds its own detail after it.

::

    KirinError
    ├── InvalidInputError (ValueError)      bad arguments from the caller
    │   ├── InvalidArgumentTypeError (TypeError)  an argument of the wrong type
    │   ├── MissingExtraError (ImportError)  a root or source needs an optional package
    │   ├── InvalidNameError                dataset or file name rejected
    │   ├── InvalidMetadataError            metadata is not plain JSON
    │   ├── InvalidTagError                 a tag is not a non-empty string
    │   ├── EmptyCommitError                nothing to add or remove
    │   ├── NotLatestCommitError            commit() after checking out an old commit
    │   ├── GovernedDatasetError            delete_dataset() of a dataset with a policy
    │   ├── SignatureError                  an SSH signature is malformed or does not verify
    │   ├── SigningKeyError                 a key file, public key or ssh-agent is unusable
    │   └── ReadOnlyError (PermissionError)  a write through the read-only kirin:// filesystem
    ├── NotFoundError (LookupError)
    │   ├── DatasetNotFoundError (ValueError)
    │   ├── CommitNotFoundError (ValueError)
    │   │   ├── AmbiguousRefError           a name matches several commits
    │   │   └── DanglingLinkError           a lineage link names no dataset or commit
    │   ├── FileNotInCommitError (FileNotFoundError)
    │   │   └── LocalFileNotFoundError (KeyError)  local_files()[name] for a name not there
    │   └── MlflowModelNotFoundError        kirin import mlflow: no such registered model
    ├── SourceNotFoundError (FileNotFoundError)   a file given to add_files is missing
    ├── ConflictError                       a concurrent writer won every retry
    │   ├── DatasetExistsError
    │   └── StaleRefError                   promote(expect=...): REF now names another commit
    ├── StorageError (OSError)              the storage failed or holds bad data
    │   ├── CorruptObjectError              bytes do not match their hash / format
    │   ├── BucketNotFoundError             the bucket / container of the root is missing
    │   ├── StorageAccessDeniedError (PermissionError)  credentials refused
    │   ├── StorageUnavailableError         unreachable or failing after bounded retries
    │   ├── UnsafeStorageError              the server ignores create-if-absent
    │   └── MlflowSourceError               kirin import mlflow: the store or artifacts failed
    ├── PolicyError (ValueError)            a policy file or expression is invalid
    │   └── ExpressionSyntaxError           an expression does not parse (has .column)
    ├── PolicyViolationError                a commit breaks the policy (.violations)
    └── PolicyRequiredError                 require_policy: the dataset and root have none

    UnsafeConcurrencyWarning (UserWarning)  a filesystem whose create-if-absent is unknown
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class KirinError(Exception):
    """Base class of every error Kirin raises on purpose."""


class InvalidInputError(KirinError, ValueError):
    """The caller passed something Kirin cannot accept."""


class InvalidArgumentTypeError(InvalidInputError, TypeError):
    """An argument has the wrong type (``tags=123``, ``add_files=None`` entries...).

    Derives from ``TypeError`` too, which Python itself would have raised.
    """


class MissingExtraError(InvalidInputError, ImportError):
    """A URL needs an optional package that is not installed.

    ``extra`` names the Kirin extra to install (``pip install 'kirin[s3]'``),
    ``protocol`` the URL protocol that needs it.
    """

    def __init__(self, message: str, *, protocol: str, extra: str | None) -> None:
        self.protocol = protocol
        self.extra = extra
        super().__init__(message)


class InvalidNameError(InvalidInputError):
    """A dataset or file name is empty, escapes its folder, or is otherwise unsafe."""

    def __init__(self, name: str, reason: str, *, kind: str = "name") -> None:
        self.name = name
        self.reason = reason
        self.kind = kind
        super().__init__(f"Invalid {kind} {name!r}: {reason}")


class InvalidMetadataError(InvalidInputError):
    """Metadata is not plain JSON (string keys, finite numbers, no custom objects)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        where = f" at {path}" if path else ""
        super().__init__(f"Metadata is not valid JSON{where}: {reason}")


class InvalidTagError(InvalidInputError):
    """A tag is not a non-empty string."""


class EmptyCommitError(InvalidInputError):
    """A commit was asked for with nothing to add and nothing to remove.

    The message starts with the original Kirin's ``"No changes specified"``.
    """

    ORIGINAL = "No changes specified"

    def __init__(self, message: str = "") -> None:
        if not message.startswith(self.ORIGINAL):
            message = f"{self.ORIGINAL}. {message}" if message else self.ORIGINAL
        super().__init__(message)


class NotLatestCommitError(InvalidInputError):
    """commit() was called while an older commit is checked out."""

    def __init__(self, checked_out: str, latest: str) -> None:
        self.checked_out = checked_out
        self.latest = latest
        super().__init__(
            f"Cannot commit: the checked-out commit {checked_out[:12]} is not the "
            f"latest commit ({latest[:12]}). Call checkout() with no argument to "
            "return to the latest commit, then commit again."
        )


class NotFoundError(KirinError, LookupError):
    """Something asked for by name or hash does not exist."""

    def __str__(self) -> str:  # LookupError subclasses like KeyError quote args
        return str(self.args[0]) if self.args else ""


class DatasetNotFoundError(NotFoundError, ValueError):
    """No dataset of that name exists in the catalog.

    Also a ``ValueError``, which the original Kirin's ``delete_dataset`` raised.
    """

    def __init__(self, message: str, *, name: str | None = None) -> None:
        self.name = name
        super().__init__(message)


class CommitNotFoundError(NotFoundError, ValueError):
    """No commit matches the given hash or prefix."""

    def __init__(self, ref: str, dataset: str, message: str | None = None) -> None:
        self.ref = ref
        self.dataset = dataset
        super().__init__(message or f"Commit not found: no commit matches {ref!r} in dataset "
                         f"{dataset!r}")


class AmbiguousRefError(CommitNotFoundError):
    """A name matches more than one commit (a hash prefix, or a tag and a prefix)."""

    def __init__(self, ref: str, dataset: str, candidates: Sequence[str],
                 message: str | None = None) -> None:
        self.candidates = tuple(candidates)
        shown = ", ".join(c[:16] for c in self.candidates[:10])
        more = f" and {len(self.candidates) - 10} more" if len(self.candidates) > 10 else ""
        super().__init__(
            ref,
            dataset,
            message or f"Commit prefix {ref!r} is ambiguous in dataset {dataset!r}: it "
            f"matches {shown}{more}. Give more characters.",
        )


class DanglingLinkError(CommitNotFoundError):
    """A lineage link (``lineage=``, ``--from``) names a dataset or commit that does not exist.

    ``link`` is the link as given (``role=dataset@ref``). Nothing was written.
    """

    def __init__(self, link: str, dataset: str, ref: str, message: str) -> None:
        self.link = link
        super().__init__(ref, dataset, message)


class PolicyVersionNotFoundError(NotFoundError):
    """No version of a dataset's policy matches a version number or policy hash."""


class FileNotInCommitError(NotFoundError, FileNotFoundError):
    """The commit has no file of that name."""

    def __init__(self, name: str, commit: str | None) -> None:
        self.name = name
        self.commit = commit
        where = f"commit {commit[:12]}" if commit else "the dataset (it has no commits)"
        super().__init__(f"File not found: {name!r} is not in {where}")


class LocalFileNotFoundError(FileNotInCommitError, KeyError):
    """``local_files()[name]`` for a name the commit does not have.

    A ``KeyError`` (a mapping lookup failed) whose message starts with the
    original Kirin's ``"File not found: <name>"``.
    """

    def __init__(self, name: str, commit: str | None) -> None:
        super().__init__(name, commit)
        shown = name if name.isprintable() else repr(name)
        where = f"commit {commit[:12]}" if commit else "the dataset (it has no commits)"
        self.args = (f"File not found: {shown} (not in {where})",)


class SourceNotFoundError(KirinError, FileNotFoundError):
    """A file given to commit(add_files=...) does not exist."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__(f"File not found: {source}")

    def __str__(self) -> str:
        return f"File not found: {self.source}"


class ConflictError(KirinError):
    """Another writer changed the registry in a way this operation cannot absorb."""


class DatasetExistsError(ConflictError):
    """create_dataset() was asked for a name that is taken."""


class StaleRefError(ConflictError):
    """``promote(ref, expect=HASH)``: ``ref`` no longer names the commit ``HASH``.

    Another commit took the stage or tag between the check and the promotion;
    nothing was written. ``ref``, ``expected`` and ``actual`` say which.
    """

    def __init__(self, message: str, *, ref: str, expected: str, actual: str) -> None:
        self.ref = ref
        self.expected = expected
        self.actual = actual
        super().__init__(message)


class GovernedDatasetError(InvalidInputError):
    """``delete_dataset()`` of a dataset that has (had) a policy, without ``governed=True``.

    Deleting it would delete its audit trail (the policy versions and the
    commits they admitted), so it takes an explicit yes.
    """

    def __init__(self, message: str, *, name: str) -> None:
        self.name = name
        super().__init__(message)


class SignatureError(InvalidInputError):
    """A signature is malformed, unsupported, or does not verify for this data and namespace."""


class SigningKeyError(InvalidInputError):
    """A key cannot be used: bad public key text, an unreadable or locked key file,
    no usable ssh-agent. The message never contains key material or a passphrase."""


class ReadOnlyError(InvalidInputError, PermissionError):
    """A write through ``kirin://`` URLs, which are read-only: commits are immutable."""


class StorageError(KirinError, OSError):
    """The storage failed, or holds something Kirin cannot read.

    ``url`` names the registry root (credentials removed) when the failure is
    about the storage as a whole: a missing bucket, refused credentials, a
    server that cannot be reached or ignores create-if-absent.
    """

    def __init__(self, message: str = "", *, url: str | None = None) -> None:
        self.url = url
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CorruptObjectError(StorageError):
    """Stored bytes do not match their hash, or an object is malformed."""

    def __init__(self, message: str, *, path: str, commit: str | None = None,
                 file: str | None = None) -> None:
        self.path = path
        self.commit = commit
        self.file = file
        super().__init__(message)


class PolicyError(KirinError, ValueError):
    """A policy (file, YAML key, JSON Schema, expression) is invalid.

    ``file``, ``key_path``, ``line`` and ``column`` say where, when known.
    """

    def __init__(self, message: str, *, file: str | None = None,
                 key_path: str | None = None, line: int | None = None,
                 column: int | None = None) -> None:
        self.file = file
        self.key_path = key_path
        self.line = line
        self.column = column
        self.detail = message
        where = []
        if file:
            where.append(file + (f":{line}" if line is not None else ""))
        elif line is not None:
            where.append(f"line {line}")
        if key_path:
            where.append(f"key {key_path}")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(prefix + message)


class ExpressionSyntaxError(PolicyError):
    """An expression does not parse; ``column`` (1-based) points at the fault."""

    def __init__(self, message: str, *, expression: str, column: int,
                 file: str | None = None, key_path: str | None = None,
                 line: int | None = None) -> None:
        self.expression = expression
        excerpt, offset = _excerpt(expression, column)
        pointer = " " * offset + "^"
        super().__init__(
            f"{message} at column {column}\n  {excerpt}\n  {pointer}",
            file=file, key_path=key_path, line=line, column=column,
        )


def _excerpt(text: str, column: int, width: int = 72) -> tuple[str, int]:
    """The part of a one-line ``text`` around ``column`` and the pointer offset in it."""
    flat = text.replace("\n", " ").replace("\t", " ")
    start = max(0, min(column - 1 - width // 2, len(flat) - width))
    excerpt = flat[start:start + width]
    offset = column - 1 - start
    if start > 0:
        excerpt, offset = "..." + excerpt, offset + 3
    if start + width < len(flat):
        excerpt += "..."
    return excerpt, offset


class PolicyViolationError(KirinError):
    """A proposed commit breaks the policy; nothing was written.

    ``violations`` holds every violation found (not just the first), each a
    value with ``rule``, ``path``, ``value``, ``expected`` and ``message``.
    """

    def __init__(self, violations: Sequence[Any], *, dataset: str = "") -> None:
        self.violations = tuple(violations)
        self.dataset = dataset
        lines = "\n".join(f"  - {v.message}" + (" (root policy)" if getattr(
            v, "source", "dataset") == "root" else "") for v in self.violations)
        where = f" in dataset {dataset!r}" if dataset else ""
        n = len(self.violations)
        super().__init__(
            f"Commit rejected by policy{where}: {n} violation{'s' if n != 1 else ''}\n{lines}"
        )


class PolicyRequiredError(KirinError):
    """``require_policy`` is on and neither the dataset nor its root has a policy.

    The setting a CI job uses so that a typo in a root URL or dataset name,
    which would otherwise start a new, ungoverned dataset, fails instead.
    """

    def __init__(self, message: str, *, dataset: str, root: str) -> None:
        self.dataset = dataset
        self.root = root
        super().__init__(message)


class BucketNotFoundError(StorageError):
    """The bucket or container of a cloud root does not exist (``url`` names the root)."""


class StorageAccessDeniedError(StorageError, PermissionError):
    """The storage refused the credentials, or they do not allow the operation."""


class StorageUnavailableError(StorageError):
    """The storage could not be reached, or kept failing, for every bounded retry."""


class UnsafeStorageError(StorageError):
    """The storage does not honour create-if-absent, so Kirin refuses to write to it."""


class MlflowSourceError(StorageError):
    """The MLflow store, or a version's artifacts, could not be read.

    ``version`` is the version that failed (``None``: before any version),
    ``imported`` the versions committed before the failure.
    """

    def __init__(self, message: str, *, model: str, version: int | None = None,
                 imported: tuple[int, ...] = ()) -> None:
        self.model = model
        self.version = version
        self.imported = imported
        super().__init__(message)


class MlflowModelNotFoundError(NotFoundError):
    """The MLflow registry has no registered model of that name."""


class UnsafeConcurrencyWarning(UserWarning):
    """Kirin cannot rely on this filesystem's create-if-absent: use one writer at a time."""
