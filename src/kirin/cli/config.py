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


def read_config(path: Path) -> ConfigFile:
    """Parse ``path``; any failure is a :class:`ConfigError` naming the file."""
    import yaml  # yaml loads only when there is a kirin.yaml to read

    from .config_file import ConfigFile, ConfigFileError

    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}{where}: not valid YAML ({problem})") from exc
    if data is None:
        return ConfigFile()
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with keys root and dataset")
    try:
        return ConfigFile.from_mapping(data)
    except ConfigFileError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


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
