"""Large files go to object stores in parts, with memory that does not grow with the file.

Each measurement runs in a fresh process (``python -c``) so that the peak
resident memory (``VmHWM``) belongs to one commit and one read of a 64 MiB
file and nothing else; it is compared with the same process's peak after a
warm-up commit of a small file (interpreter, client libraries and
connections already in place).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from backends import CLOUD_BACKENDS
from servers import cloud_for

SIZE = 64 << 20
#: Allowed peak growth: parts of 8 MiB, plus copies in flight in the client
#: library; a whole-file buffer (64 MiB) or s3fs's default 50 MiB parts fail it.
MAX_GROWTH_MIB = 40

CHILD = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from kirin import Dataset

    def hwm():
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

    url, small, big = sys.argv[1:4]
    options = json.loads(os.environ["KIRIN_TEST_OPTIONS"])
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


@pytest.mark.parametrize("kind", CLOUD_BACKENDS)
def test_large_file_is_streamed_in_parts(request: pytest.FixtureRequest, kind: str,
                                         tmp_path: Path) -> None:
    """A 64 MiB commit and read raise peak memory by well under the file's size."""
    cloud = cloud_for(request, kind)
    small, big = tmp_path / "small.bin", tmp_path / "big.bin"
    small.write_bytes(b"x" * 1000)
    make_file(big, SIZE)
    with cloud.bucket() as bucket:
        url = cloud.url(bucket, "reg")
        env = {**os.environ, "KIRIN_TEST_OPTIONS": json.dumps(cloud.storage_options())}
        done = subprocess.run([sys.executable, "-c", CHILD, url, str(small), str(big)],
                              capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report["size"] == SIZE
        assert report["commit"] - report["base"] < MAX_GROWTH_MIB, report
        assert report["read"] - report["base"] < MAX_GROWTH_MIB, report
        if kind == "s3":  # a multipart upload's ETag ends in -<number of parts>
            fs = cloud.filesystem()
            fs.invalidate_cache()
            blobs = [p for p in fs.find(f"{bucket}/reg/data")]
            etags = [fs.info(p)["ETag"].strip('"') for p in blobs]
            assert any(e.endswith("-8") for e in etags), etags


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
    from kirin.store import Store

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
