"""Where the registry is: options, environment, or a ``kirin.yaml`` found upwards.

Each setting is taken from the first place that gives it:

1. ``--root`` / ``--dataset``;
2. ``KIRIN_ROOT`` / ``KIRIN_DATASET`` (typer reads these into the options);
3. ``kirin.yaml`` in the current folder or the nearest folder above it::

       root: ./registry          # a folder (relative to this file) or an fsspec URL
       dataset: sentiment_classifier
       require_policy: true      # refuse commits to a dataset and root without a policy
       trust: 5c1e…              # the policy hash whose chain of trust you accept
       trust_root: 9a0b…         # the same for the registry root's policy

``require_policy`` is read from the file even when ``--root`` and
``--dataset`` are given (the file is the repository's setting), and is also
turned on by ``KIRIN_REQUIRE_POLICY=1``. Any problem with the file becomes
one :class:`ConfigError` naming it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError

if TYPE_CHECKING:
    from .config_file import ConfigFile

CONFIG_FILE = "kirin.yaml"


class ConfigError(InvalidInputError):
    """A ``kirin.yaml`` is unreadable or invalid, or the location is incomplete."""


@dataclass(frozen=True)
class Location:
    """A registry root, maybe a dataset in it, and the config file they came from."""

    root: str
    dataset: str | None
    config_file: Path | None = None
    require_policy: bool | None = None  # None: the environment decides (Dataset's default)
    trust: str | None = None  # the policy hash to trust (None: KIRIN_TRUST_POLICY, else TOFU)
    trust_root: str | None = None  # the root's (None: KIRIN_TRUST_ROOT_POLICY, else TOFU)


def is_url(root: str) -> bool:
    return "://" in root or "::" in root


def find_config(start: Path | None = None) -> Path | None:
    """The nearest ``kirin.yaml`` in ``start`` (default: the current folder) or above."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / CONFIG_FILE
        if path.is_file():
            return path
    return None


#: A line of a plain ``kirin.yaml``: a known key, spaces, and a value YAML reads as the
#: same string (a letter, ``_``, ``/``, ``./`` or ``../`` first, then letters, digits
#: and ``_./-``: never a number, date, null or anchor), or ``true``/``false``.
_PLAIN_LINE = re.compile(r"(root|dataset|require_policy|trust_root|trust): +"
                         r"((?:[A-Za-z_/]|\.\.?/)[A-Za-z0-9_./-]*)", re.ASCII)
#: Words YAML 1.1 reads as booleans or null, in any of the spellings PyYAML knows.
_YAML_WORDS = {"yes", "no", "true", "false", "on", "off", "null", "y", "n"}


def plain_config(text: str) -> dict[str, Any] | None:
    """``text`` as ``yaml.safe_load`` reads it, if it is a plain ``kirin.yaml``; else None.

    Why: importing PyYAML and its pure-Python parser costs about a tenth of a small
    command's start-up (issue 16), and a ``kirin.yaml`` is nearly always a few lines
    of ``key: value`` (as ``kirin init --write-config`` writes it). Those are read
    here: whole-line comments, blank lines, and one line per known key whose value
    is a plain word (:data:`_PLAIN_LINE`; ``true``/``false`` as booleans). Anything
    else (quotes, other keys, a value YAML might read as a number or date, a repeated
    key, a trailing comment, a CR) returns None, and the caller asks PyYAML, so what a
    file means and any error about it stay PyYAML's. ``tests/cli/test_cli_config.py``
    checks this against ``yaml.safe_load``.
    """
    found: dict[str, Any] = {}
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            continue
        match = _PLAIN_LINE.fullmatch(line)
        if match is None or match.group(1) in found:
            return None
        key, value = match.groups()
        if value.lower() in _YAML_WORDS:
            if value not in ("true", "false"):
                return None
            found[key] = value == "true"
        else:
            found[key] = value
    return found or None


def read_config(path: Path) -> ConfigFile:
    """Parse ``path``; any failure is a :class:`ConfigError` naming the file."""
    from .config_file import ConfigFile, ConfigFileError

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from exc
    data: Any = plain_config(text)
    if data is None:
        data = _yaml_config(path, text)
    if data is None:
        return ConfigFile()
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with keys root and dataset")
    try:
        return ConfigFile.from_mapping(data)
    except ConfigFileError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _yaml_config(path: Path, text: str) -> Any:
    """``text`` read by PyYAML (loaded only for a file :func:`plain_config` cannot read)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}{where}: not valid YAML ({problem})") from exc


def resolve(root: str | None, dataset: str | None, *, need_dataset: bool,
            start: Path | None = None) -> Location:
    """The registry location from options (already merged with the environment) and config."""
    found = find_config(start)
    config_path: Path | None = None  # the file, if it gave the root or the dataset
    require_policy: bool | None = None
    trust: str | None = None
    trust_root: str | None = None
    if found is not None:
        config = read_config(found)
        if root is None and config.root is not None:
            root = _relative_to(config.root, found.parent)
            config_path = found
        if dataset is None and config.dataset is not None:
            dataset = config.dataset
            config_path = found
        require_policy = True if config.require_policy else None
        trust, trust_root = config.trust, config.trust_root
    if not root:
        raise ConfigError("No registry given: pass --root, set KIRIN_ROOT, or create a "
                          f"{CONFIG_FILE} (kirin init --write-config)")
    if need_dataset and not dataset:
        raise ConfigError("No dataset given: pass --dataset, set KIRIN_DATASET, or add "
                          f"'dataset:' to {CONFIG_FILE}")
    return Location(root, dataset, config_path, require_policy, trust, trust_root)


def _relative_to(root: str, folder: Path) -> str:
    if is_url(root):
        return root
    path = Path(os.path.expanduser(root))
    return str(path if path.is_absolute() else (folder / path))


def write_config(folder: Path, location: Location) -> Path:
    """Create ``folder/kirin.yaml`` for ``location``; refuse to replace an existing one."""
    import yaml

    path = folder / CONFIG_FILE
    root = location.root
    if not is_url(root):
        absolute = Path(os.path.expanduser(root)).resolve()
        try:
            root = os.path.relpath(absolute, folder.resolve())
        except ValueError:  # another drive on Windows
            root = str(absolute)
    text = yaml.safe_dump({"root": root, "dataset": location.dataset}, sort_keys=False)
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write("# Where `kirin` finds its registry (see `kirin --help`).\n" + text)
    except FileExistsError:
        raise ConfigError(f"{path} already exists; edit it, or remove it first") from None
    return path
