"""Naming a commit the way people do: a full hash, a unique prefix, or a tag.

``resolve_ref(dataset, "production")`` is the newest commit carrying the tag
``production``; ``resolve_ref(dataset, "3f2a")`` is the commit whose hash
starts with ``3f2a``. A word that is both (a tag ``cafe`` and a hash prefix
``cafe``) must name the same commit, or the caller is asked to say which:
``tag:cafe`` always means the tag, more hash characters mean the commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .digests import is_digest, is_hex_prefix
from .errors import AmbiguousRefError, CommitNotFoundError

if TYPE_CHECKING:
    from .dataset import Dataset
    from .values import Commit

TAG_PREFIX = "tag:"


def resolve_ref(dataset: Dataset, ref: str) -> Commit:
    """The commit ``ref`` names in ``dataset``: hash, unique hash prefix, or tag.

    Raises :class:`~kirin.errors.CommitNotFoundError` when nothing matches and
    when a hash prefix and a tag name different commits;
    :class:`~kirin.errors.AmbiguousRefError` when a prefix matches several
    commits and no tag has that name.
    """
    text = ref.strip() if isinstance(ref, str) else ""
    if not text:
        raise CommitNotFoundError(str(ref), dataset.name,
                                  "A commit reference must be a hash, a prefix or a tag")
    if text.startswith(TAG_PREFIX):
        tag = text[len(TAG_PREFIX):]
        tagged = _newest_tagged(dataset, tag)
        if tagged is None:
            raise CommitNotFoundError(text, dataset.name,
                                      f"No commit is tagged {tag!r} in dataset {dataset.name!r}")
        return tagged
    if is_digest(text.lower()):
        exact = dataset.get_commit(text)
        if exact is not None:
            return exact
    tagged = _newest_tagged(dataset, text)
    by_hash: Commit | None = None
    ambiguous: AmbiguousRefError | None = None
    if is_hex_prefix(text.lower()):
        try:
            by_hash = dataset.get_commit(text)
        except AmbiguousRefError as exc:
            ambiguous = exc
    if tagged is not None and (by_hash is not None or ambiguous is not None):
        if by_hash is not None and by_hash.hash == tagged.hash:
            return tagged
        raise CommitNotFoundError(
            text, dataset.name,
            f"{text!r} is both a tag (on {tagged.short_hash}) and a hash prefix "
            f"in dataset {dataset.name!r}: write {TAG_PREFIX}{text} for the tag, or more "
            "hash characters for the commit")
    if ambiguous is not None:
        raise ambiguous
    found = tagged or by_hash
    if found is None:
        if dataset.is_empty():
            raise CommitNotFoundError(text, dataset.name,
                                      f"Dataset {dataset.name!r} has no commits yet")
        raise CommitNotFoundError(
            text, dataset.name,
            f"No commit hash or tag matches {text!r} in dataset {dataset.name!r}")
    return found


def _newest_tagged(dataset: Dataset, tag: str) -> Commit | None:
    found = dataset.find_commits(tags=[tag], limit=1)
    return found[0] if found else None
