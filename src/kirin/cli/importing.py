"""``kirin import ...`` and ``kirin export``: history in from other registries, metadata out.

Each command is one call into :mod:`kirin.importers` (or the catalog export).
"""

from __future__ import annotations

from .app import app, import_app  # noqa: F401 - the commands below register on them
