"""The example workflow, run as a user would run it, against each object-storage server.

``examples/model_versioning.py --root URL`` gets nothing but the URL on its
command line; the storage settings come from the environment, the way
``docs/cloud-storage.md`` tells users to pass them to programs and CI jobs
(fsspec's ``FSSPEC_<PROTOCOL>`` JSON here). Azure is run through both of its
URL schemes, ``az://`` and ``abfs://``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kirin import Catalog

from servers import cloud_for

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "model_versioning.py"


@pytest.mark.parametrize(("kind", "scheme"), [("s3", "s3"), ("azure", "az"),
                                              ("azure", "abfs"), ("gcs", "gs")])
def test_example_workflow_runs_against_the_server(request: pytest.FixtureRequest, kind: str,
                                                  scheme: str) -> None:
    """The whole model-versioning example succeeds on a cloud URL and leaves its registry
    readable by a separate Catalog."""
    cloud = cloud_for(request, kind, scheme)
    with cloud.bucket() as bucket:
        url = cloud.url(bucket, "models")
        env = {**os.environ, **cloud.env()}
        result = subprocess.run([sys.executable, str(EXAMPLE), "--root", url],
                                capture_output=True, text=True, timeout=300, env=env)
        assert result.returncode == 0, result.stderr
        assert f"Registry root: {url}" in result.stdout
        assert "History of 'sentiment_classifier' (newest first):" in result.stdout
        assert "[production, v2.1]  Release v2.1 to production" in result.stdout
        assert "loaded weights (4096 bytes, verified)" in result.stdout
        catalog = Catalog(url, **cloud.storage_options())
        assert "sentiment_classifier" in catalog.datasets()
        ds = catalog.get_dataset("sentiment_classifier")
        assert len(ds.history()) >= 4
        assert ds.verify().ok
