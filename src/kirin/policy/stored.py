"""A policy stored in a registry, read back: checked in full once, then known by its hash.

Why: every command that judges a commit reads the policies in force, and
checking one in full means importing pydantic, jsonschema and PyYAML and
building the policy model, about a tenth of a second of a CI job's
``kirin validate`` before anything is judged. The text of a stored policy
is its canonical JSON, named by its SHA-256, so once this installation has
checked a text in full it has nothing left to learn from checking the same
bytes again.

What is kept: an empty file per checked hash, in a folder of the user's
cache named by a fingerprint of what does the checking (Kirin's own source
files, the libraries the checks use, the Python version), so an upgrade or
an edited checker starts afresh. A marked text is built by exactly the
function a fully checked one is (:meth:`~kirin.policy.rules.Policy.from_data`
over the same canonical data) and must still dump to the very bytes it was
read from; anything else goes the full way.

What it trusts: the user's own cache folder. One owned by someone else, or
that others may write to, is not used (POSIX). ``KIRIN_CACHE_DIR`` moves it;
set empty, nothing is kept. ``kirin verify`` always checks every version in
full.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

from .rules import Policy

CACHE_ENV = "KIRIN_CACHE_DIR"
#: The libraries whose behaviour a full check depends on.
CHECKERS = ("pydantic", "pydantic_core", "jsonschema", "jsonschema_specifications",
            "referencing", "yaml", "cryptography", "nacl")


def load_stored_policy(text: str, *, source: str) -> Policy:
    """The policy whose stored (canonical JSON) text is ``text``; PolicyError if invalid."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    folder = checked_folder()
    if folder is not None and _marked(folder, digest):
        known = _rebuilt(text)
        if known is not None:
            return known
    from .loader import load_policy_text  # the full check: pydantic, jsonschema, PyYAML

    policy = load_policy_text(text, source=source)
    if folder is not None and policy.stored_text() == text:
        _mark(folder, digest)
    return policy


def _rebuilt(text: str) -> Policy | None:
    """The policy built from a marked text, if it dumps back to exactly that text."""
    try:
        policy = Policy.from_data(json.loads(text))
        return policy if policy.stored_text() == text else None
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None


def _marked(folder: Path, digest: str) -> bool:
    try:
        return (folder / digest).is_file()
    except OSError:
        return False


def _mark(folder: Path, digest: str) -> None:
    """Remember ``digest`` as checked; best effort, a cache never fails a command."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        (folder / digest).touch(mode=0o600, exist_ok=True)
    except OSError:
        pass


def cache_root() -> Path | None:
    """The user's cache folder for Kirin (``None``: caching turned off)."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return Path(configured).expanduser() if configured.strip() else None
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "kirin" / "cache"
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if os.path.isabs(base) else Path.home() / ".cache") / "kirin"


def checked_folder() -> Path | None:
    """Where this installation's checked hashes are kept, if anywhere it may trust."""
    root = cache_root()
    if root is None or not _trusted(root):
        return None
    try:
        stamp = fingerprint(Path(__file__).resolve().parents[1], CHECKERS)
    except (OSError, ValueError, ImportError):  # a file gone mid-scan, a broken install
        return None
    return root / "checked-policies" / stamp


def _trusted(root: Path) -> bool:
    """Whether ``root`` is ours alone, or may be made so in the first folder above it.

    A folder others may write to could hold a mark for a text never checked,
    so it is not used; one still to be made may be made in a folder that is
    ours or root's and that others cannot write to, or only as ``/tmp`` is
    (sticky: nobody may rename or remove what another made).
    """
    if not hasattr(os, "getuid"):
        return True
    uid = os.getuid()
    path = root
    while True:
        try:
            info = os.stat(path)
        except FileNotFoundError:
            if path.parent == path:
                return False
            path = path.parent
            continue
        except OSError:
            return False
        shared = bool(info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))
        if path != root:  # an ancestor to create it in: others may not replace what we make
            return info.st_uid in (uid, 0) and (not shared or bool(info.st_mode & stat.S_ISVTX))
        return info.st_uid == uid and not shared


@lru_cache(maxsize=4)
def fingerprint(package: Path, checkers: tuple[str, ...]) -> str:
    """What does the checking: ``package``'s sources, the ``checkers``, the Python version.

    Sizes and modification times, not contents: an edit, a reinstall or an
    upgrade all change them, and reading them costs a millisecond.
    """
    digest = hashlib.sha256(sys.version.encode())
    for path in sorted(_sources(package)):
        info = os.stat(path)
        digest.update(f"{os.path.relpath(path, package)}\0{info.st_size}\0"
                      f"{info.st_mtime_ns}\n".encode())
    for name in checkers:
        spec = find_spec(name)  # located, not imported
        origin = spec.origin if spec is not None else None
        stamp = "absent"
        if origin is not None and os.path.exists(origin):
            info = os.stat(origin)
            stamp = f"{origin}\0{info.st_size}\0{info.st_mtime_ns}"
        digest.update(f"{name}\0{stamp}\n".encode())
    return digest.hexdigest()[:32]


def _sources(folder: Path) -> list[str]:
    found: list[str] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and entry.name != "__pycache__":
                found.extend(_sources(Path(entry.path)))
            elif entry.name.endswith(".py"):
                found.append(entry.path)
    return found
