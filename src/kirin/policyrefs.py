"""Naming one version of a dataset's policy (a number, a hash or a prefix), and diffing two.

Why its own module: ``kirin policy show``, ``kirin policy diff`` and
:meth:`Dataset.policy_version <kirin.Dataset.policy_version>` name versions
the same way, so the rule lives once. Pure: it reads the versions it is given.

* ``None``: the version in force (the newest).
* ``3`` or ``"3"`` (digits): version number 3, as ``kirin policy history``
  lists it. Policy hashes are hex, so a 4-or-more-digit word that is no
  version number is also tried as a hash prefix.
* hex, at least :data:`MIN_PREFIX` characters: the policy hash it starts;
  the newest version holding that policy (a policy applied again keeps its
  hash). Two different policies matching is an error, never a guess.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from .errors import PolicyVersionNotFoundError
from .policylog import PolicyVersion

MIN_PREFIX = 4
_HEX = re.compile(r"[0-9a-f]+")


def find_version(versions: Sequence[PolicyVersion], ref: str | int | None, *,
                 dataset: str) -> PolicyVersion:
    """The version ``ref`` names among ``versions`` (oldest first); raise if none or several."""
    if not versions:
        raise PolicyVersionNotFoundError(f"Dataset {dataset!r} has never had a policy")
    if ref is None:
        return versions[-1]
    if isinstance(ref, bool) or not isinstance(ref, int | str):
        raise PolicyVersionNotFoundError(f"A policy version is a number or a policy hash, "
                                         f"not {type(ref).__name__}")
    text = str(ref).strip().lower().removeprefix("#")
    numbered = [v for v in versions if text.isdigit() and v.seq == int(text)]
    if numbered:
        return numbered[0]
    if text.isdigit() and len(text) < MIN_PREFIX:
        raise PolicyVersionNotFoundError(
            f"Dataset {dataset!r} has no policy version #{text}: its versions are "
            f"#{versions[0].seq} to #{versions[-1].seq} (see kirin policy history)")
    if not _HEX.fullmatch(text) or len(text) < MIN_PREFIX:
        raise PolicyVersionNotFoundError(
            f"{str(ref)[:80]!r} names no policy version of dataset {dataset!r}: give a version "
            f"number (#{versions[0].seq} to #{versions[-1].seq}) or at least {MIN_PREFIX} hex "
            "digits of a policy hash")
    matches = [v for v in versions if v.policy_hash and v.policy_hash.startswith(text)]
    hashes = list(dict.fromkeys(str(v.policy_hash) for v in matches))
    if not matches:
        raise PolicyVersionNotFoundError(
            f"No policy version of dataset {dataset!r} has a hash starting {text!r}")
    if len(hashes) > 1:
        raise PolicyVersionNotFoundError(
            f"Policy hash prefix {text!r} is ambiguous in dataset {dataset!r}: it matches "
            f"{', '.join(h[:16] for h in hashes)}. Give more characters.")
    return matches[-1]


def readable_text(version: PolicyVersion) -> str:
    """The version's policy as readable YAML (``Policy.to_text``); empty for "no policy"."""
    policy = version.load()
    return policy.to_text() if policy is not None else ""


def diff_versions(old: PolicyVersion, new: PolicyVersion) -> list[str]:
    """Unified diff of the readable YAML of two versions (no trailing newlines).

    Readable YAML rather than the stored canonical JSON: one key per line, in
    file order, so a reviewer sees which rule changed. An empty list means the
    two versions hold the same policy.
    """
    def label(version: PolicyVersion) -> str:
        held = version.policy_hash[:12] if version.policy_hash else "no policy"
        return f"policy #{version.seq} ({held})"

    if old.policy_hash == new.policy_hash:
        return []
    return list(difflib.unified_diff(readable_text(old).splitlines(),
                                     readable_text(new).splitlines(),
                                     fromfile=label(old), tofile=label(new), lineterm=""))
