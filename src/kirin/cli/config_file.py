"""The content of ``kirin.yaml``: four optional keys, checked without pydantic.

A frozen dataclass and plain type checks rather than a pydantic model:
every command that finds a ``kirin.yaml`` reads it, and importing pydantic
costs more than the rest of a small command's start-up (issue 16).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

#: Each key and the type its value must have (``None``, i.e. ``~`` or empty, is allowed).
KEYS: dict[str, type] = {"root": str, "dataset": str, "require_policy": bool, "trust": str,
                         "trust_root": str}


class ConfigFileError(ValueError):
    """A key of ``kirin.yaml`` that is unknown or of the wrong type; ``key`` names it."""

    def __init__(self, key: str, detail: str) -> None:
        super().__init__(f"key {key}: {detail}")
        self.key = key
        self.detail = detail


@dataclass(frozen=True)
class ConfigFile:
    """``root`` (a folder relative to the file, or an fsspec URL), ``dataset``, and
    ``require_policy`` (commits need a dataset or root policy)."""

    root: str | None = None
    dataset: str | None = None
    require_policy: bool | None = None
    trust: str | None = None
    trust_root: str | None = None

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> ConfigFile:
        """The config that ``data`` (the parsed YAML mapping) holds; ConfigFileError if
        it holds an unknown key or a value of the wrong type (no conversion: ``3`` is
        not a string, ``"yes"`` not a boolean)."""
        for key, value in data.items():
            wanted = KEYS.get(key) if isinstance(key, str) else None
            if wanted is None:
                raise ConfigFileError(str(key), "unknown key; the keys are root, dataset, "
                                      "require_policy, trust and trust_root")
            if value is not None and type(value) is not wanted:
                kind = "a string" if wanted is str else "true or false"
                raise ConfigFileError(key, f"must be {kind}, not {value!r}")
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})
