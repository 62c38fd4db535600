"""Old name of :mod:`roots`, kept only for test files not yet moved over.

``tests/backends.py`` shadowed the name of ``kirin.backends``; the registry
roots now live in ``roots.py``. Import from ``roots``: this alias goes once
``test_integrity.py`` (and any branch still importing ``backends``) does.
"""

from roots import *  # noqa: F403
from roots import RegistryRoot as RegistryRoot
from roots import open_backend as open_backend
