"""What a content hash looks like: 64 lowercase hex digits (SHA-256), one rule for all.

Commit hashes, blob hashes, tree and policy hashes all have this form, and
every check of "is this a hash" or "is this a hash prefix" asks here, so a
stored record, a blob path and a name typed by a user are held to the same
rule.
"""

from __future__ import annotations

import re

DIGEST_LENGTH = 64
HEX_DIGITS = "0123456789abcdef"
_DIGEST = re.compile(r"[0-9a-f]{64}")
_PREFIX = re.compile(r"[0-9a-f]{1,64}")


def is_digest(text: object) -> bool:
    """Whether ``text`` is a full hash: an exact ``str`` of 64 lowercase hex digits."""
    return type(text) is str and _DIGEST.fullmatch(text) is not None


def is_hex_prefix(text: str) -> bool:
    """Whether ``text`` could start a hash: 1 to 64 lowercase hex digits."""
    return _PREFIX.fullmatch(text) is not None
