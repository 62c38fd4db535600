"""Large files go to object stores streamed, with memory that does not grow with the file.

Each measurement runs in a fresh process (``python -c``) so that the peak
resident memory (``VmHWM``) belongs to one commit and one read of a 64 MiB
file and nothing else; it is compared with the same process's peak after a
warm-up commit of a small file (interpreter, client libraries and
connections already in place). On S3 a file of that size goes as one PUT
streamed from the file; larger ones (from ``SINGLE_PUT_MAX``, lowered in
the child to try them at 64 MiB) as a multipart upload.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kirin.store import Store

from roots import CLOUD_BACKENDS
from servers import FaultProxy, cloud_for, fault_proxy, make_cloud

SIZE = 64 << 20
#: Allowed peak growth: parts of 8 MiB, plus copies in flight in the client
#: library; a whole-file buffer (64 MiB) or s3fs's default 50 MiB parts fail it.
MAX_GROWTH_MIB = 40

CHILD = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    import kirin.store
    from kirin import Dataset

    def hwm():
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

    url, small, big, single_put_max = sys.argv[1:5]
    options = json.loads(os.environ["KIRIN_TEST_OPTIONS"])
    kirin.store.SINGLE_PUT_MAX = int(single_put_max)
    ds = Dataset(url, "big", **options)
    ds.commit("warm-up", add_files={"small.bin": small})
    with ds.open_file("small.bin") as f:
        f.read()
    base = hwm()
    ds.commit("large", add_files={"big.bin": big})
    after_commit = hwm()
    n = 0
    with ds.open_file("big.bin") as f:
        while chunk := f.read(1 << 20):
            n += len(chunk)
    print(json.dumps({"base": base, "commit": after_commit, "read": hwm(), "size": n}))
""")


def make_file(path: Path, size: int) -> None:
    with open(path, "wb") as out:
        for i in range(size >> 20):
            out.write(bytes([i % 251]) * (1 << 20) + b"")


@pytest.mark.parametrize(("kind", "upload"),
                         [(kind, "default") for kind in CLOUD_BACKENDS] + [("s3", "parts")])
def test_large_file_is_streamed(request: pytest.FixtureRequest, kind: str, upload: str,
                                tmp_path: Path) -> None:
    """A 64 MiB commit and read raise peak memory by well under the file's size."""
    from kirin.store import SINGLE_PUT_MAX

    single_put_max = SINGLE_PUT_MAX if upload == "default" else 16 << 20
    cloud = cloud_for(request, kind)
    small, big = tmp_path / "small.bin", tmp_path / "big.bin"
    small.write_bytes(b"x" * 1000)
    make_file(big, SIZE)
    with cloud.bucket() as bucket:
        url = cloud.url(bucket, "reg")
        env = {**os.environ, "KIRIN_TEST_OPTIONS": json.dumps(cloud.storage_options())}
        done = subprocess.run([sys.executable, "-c", CHILD, url, str(small), str(big),
                               str(single_put_max)],
                              capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report["size"] == SIZE
        assert report["commit"] - report["base"] < MAX_GROWTH_MIB, report
        assert report["read"] - report["base"] < MAX_GROWTH_MIB, report
        if kind == "s3":  # a multipart upload's ETag ends in -<number of parts>
            fs = cloud.filesystem()
            fs.invalidate_cache()
            sizes = {fs.info(p)["size"]: fs.info(p)["ETag"].strip('"')
                     for p in fs.find(f"{bucket}/reg/data")}
            assert sizes[SIZE].endswith("-8") == (upload == "parts"), sizes


@pytest.mark.parametrize("size", [0, 1, 8 << 20, 70 << 30, 5 << 40])
def test_part_size_stays_within_the_part_limit(size: int) -> None:
    """Parts are 8 MiB, whole MiB, >= 5 MiB (S3's minimum) and never more than 9,000."""
    from kirin.store import MAX_PARTS, PART_SIZE, part_size

    part = part_size(size)
    assert part % (1 << 20) == 0 and part >= 5 << 20
    assert -(-size // part) <= MAX_PARTS
    assert part == PART_SIZE or -(-size // (part - (1 << 20))) > MAX_PARTS


@pytest.mark.parametrize("kind", CLOUD_BACKENDS)
@pytest.mark.parametrize("damage", ["flipped", "truncated", "appended", "shortened"])
def test_damaged_large_blob_is_never_downloaded(request: pytest.FixtureRequest, kind: str,
                                                damage: str, tmp_path: Path) -> None:
    """A large blob downloaded as parallel ranges is still checked whole: a changed, short or
    long object raises CorruptObjectError and leaves no file behind."""
    from kirin.errors import CorruptObjectError

    cloud = cloud_for(request, kind)
    content = bytes(range(256)) * (40 * 4096 + 3)  # ~10 MiB: two ranged parts
    source = tmp_path / "src.bin"
    source.write_bytes(content)
    with cloud.bucket() as bucket:
        store = Store(cloud.url(bucket, "reg"), **cloud.storage_options())
        staged = store.stage(str(source))
        store.publish(staged)
        damaged = {"flipped": content[:-5] + b"XXXXX", "truncated": content[:-1],
                   "appended": content + b"!", "shortened": content[: 5 << 20]}[damage]
        cloud.filesystem().pipe_file(store.blob_path(staged.digest), damaged)
        out = tmp_path / "out"
        out.mkdir()
        with pytest.raises(CorruptObjectError) as info:
            store.download_blob(staged.digest, len(content), out / "f.bin", name="f.bin",
                                commit="c" * 64)
        assert info.value.file == "f.bin"
        assert list(out.iterdir()) == []


@contextlib.contextmanager
def s3_store_behind_a_proxy(request: pytest.FixtureRequest, config: dict[str, Any]
                            ) -> Iterator[tuple[Store, FaultProxy]]:
    """A Store on a fresh bucket of the S3 server, reached through a fault proxy (which
    records every request), with botocore ``config`` options as a user would pass them."""
    with fault_proxy(request, "s3") as (proxy, server), \
            make_cloud("s3", server.endpoint).bucket() as bucket:
        cloud = make_cloud("s3", proxy.endpoint)
        options = {**cloud.storage_options(), "config_kwargs": config}
        yield Store(cloud.url(bucket, "reg"), **options), proxy


@pytest.mark.parametrize(("signing", "sent"), [(True, 0), (False, 1)],
                         ids=["signed-payload", "unsigned-payload"])
def test_a_source_changed_since_staging_is_never_stored(
        request: pytest.FixtureRequest, tmp_path: Path, signing: bool, sent: int) -> None:
    """S3: a source rewritten (same size) after it was hashed. With a signed payload (plain
    HTTP) the client reads the body to sign it, and the change is caught before anything is
    sent. Unsigned (as on AWS over HTTPS) the body is read once, while it is sent: the change
    is caught at its last bytes, the PUT is broken off unfinished and not sent again. Either
    way the error says what happened and nothing is stored."""
    from kirin.errors import StorageError

    config = {"s3": {"payload_signing_enabled": signing}}
    with s3_store_behind_a_proxy(request, config) as (store, proxy):
        source = tmp_path / "model.bin"
        source.write_bytes(bytes(range(256)) * 4096 * 3)  # 3 MiB
        staged = store.stage(str(source))
        source.write_bytes(bytes(reversed(range(256))) * 4096 * 3)
        with pytest.raises(StorageError, match="changed while it was being committed"):
            store.publish(staged)
        puts = [r for r in proxy.seen if r.method == "PUT" and staged.digest[2:] in r.target]
        # aiohttp sends an idempotent request once more when a reused connection breaks;
        # that try fails at its first read. Neither botocore nor Kirin tries again.
        assert sent <= len(puts) <= 2 * sent, puts
        assert all(r.headers.get("amz-sdk-request") == "attempt=1" for r in puts), puts
        assert not store.has_blob(staged.digest)
        source.write_bytes(bytes(range(256)) * 4096 * 3)  # back as it was: now it goes
        assert store.publish(staged) is False and store.has_blob(staged.digest)


@pytest.mark.parametrize("checksums", ["when_supported", "when_required"])
def test_the_upload_carries_the_sha256_unless_checksums_are_off(
        request: pytest.FixtureRequest, tmp_path: Path, checksums: str) -> None:
    """S3 checks the ``x-amz-checksum-sha256`` of a blob's PUT against the bytes it gets;
    a client told to send checksums only when required (for servers that refuse them)
    sends none."""
    import base64
    import hashlib

    config = {"request_checksum_calculation": checksums}
    with s3_store_behind_a_proxy(request, config) as (store, proxy):
        content = bytes(range(256)) * 4096
        source = tmp_path / "model.bin"
        source.write_bytes(content)
        staged = store.stage(str(source))
        assert store.publish(staged) is False
        puts = [r for r in proxy.seen if r.method == "PUT" and staged.digest[2:] in r.target]
        assert len(puts) == 1
        sent = {h: v for h, v in puts[0].headers.items() if h.startswith("x-amz-checksum-")}
        digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
        assert sent == ({"x-amz-checksum-sha256": digest} if checksums == "when_supported"
                        else {})
