"""The storage contract of ``test_store.py`` on the real object-storage servers."""

from __future__ import annotations

from test_store import StoreContract


class TestS3Store(StoreContract):
    backend = "s3"


class TestAzureStore(StoreContract):
    backend = "azure"


class TestGcsStore(StoreContract):
    backend = "gcs"
