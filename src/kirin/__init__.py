"""Kirin: a versioned, schema-enforced registry for ML models and datasets.

The public surface is small: :class:`Dataset` (one registry and its history),
:class:`Catalog` (the datasets under one root), the immutable values
:class:`Commit` and :class:`File`, and the errors in :mod:`kirin.errors`.
"""

from . import errors
from .catalog import Catalog
from .dataset import Dataset
from .errors import KirinError
from .localfiles import LocalFiles
from .values import Commit, File

__all__ = ["Catalog", "Commit", "Dataset", "File", "KirinError", "LocalFiles", "errors"]
__version__ = "0.1.0"
