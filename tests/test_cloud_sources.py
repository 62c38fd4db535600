"""Files already in object storage, committed by URL into a registry on the same store.

The registry's storage options (endpoint, credentials) reach sources of its
own protocol, both when they are looked at before the commit and when they
are read; no credentials come from the environment here.
"""

from __future__ import annotations

import pytest

from kirin import Dataset
from kirin.errors import SourceNotFoundError

from roots import CLOUD_BACKENDS
from servers import cloud_for

pytestmark = pytest.mark.parametrize("kind", CLOUD_BACKENDS)

CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL",
                        "AWS_PROFILE", "AZURE_STORAGE_CONNECTION_STRING",
                        "AZURE_STORAGE_ACCOUNT_NAME", "STORAGE_EMULATOR_HOST")


@pytest.mark.parametrize("size", [3000, (9 << 20) + 5], ids=["small", "over-a-part"])
def test_a_file_in_the_bucket_is_committed_by_its_url(
        request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
        kind: str, size: int) -> None:
    """Small, and larger than an upload part (S3: read in this thread, sent in parts)."""
    for variable in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    cloud = cloud_for(request, kind)
    content = bytes(i % 251 for i in range(size))
    with cloud.bucket() as bucket:
        cloud.filesystem().pipe_file(f"{bucket}/incoming/model.bin", content)
        ds = Dataset(cloud.url(bucket, "reg"), "models", **cloud.storage_options())
        digest = ds.commit("from the bucket",
                           add_files={"model.bin": cloud.url(bucket, "incoming/model.bin")})
        again = Dataset(cloud.url(bucket, "reg"), "models", **cloud.storage_options())
        assert again.current_commit is not None and again.current_commit.hash == digest
        assert again.read_file("model.bin", "rb") == content


def test_a_missing_or_folder_url_is_refused_before_anything_is_read(
        request: pytest.FixtureRequest, kind: str) -> None:
    cloud = cloud_for(request, kind)
    with cloud.bucket() as bucket:
        cloud.filesystem().pipe_file(f"{bucket}/incoming/sub/a.bin", b"a")
        ds = Dataset(cloud.url(bucket, "reg"), "models", **cloud.storage_options())
        missing = cloud.url(bucket, "incoming/nothing.bin")
        with pytest.raises(SourceNotFoundError, match=r"incoming/nothing\.bin") as info:
            ds.commit("missing", add_files={"n.bin": missing})
        assert info.value.source == missing
        with pytest.raises(SourceNotFoundError, match="is a folder"):
            ds.commit("folder", add_files={"n.bin": cloud.url(bucket, "incoming/sub")})
        assert ds.history() == []
