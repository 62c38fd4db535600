"""No unverified byte reaches a parser: reads of a blob damaged in storage, on every backend.

The damage that matters most keeps the blob's length (a flipped byte, a swapped
payload): a reader that stops at the recorded size never reads past the end, so
the check must come no later than the read that delivers the last byte, and in
the default mode before the first byte is handed out at all.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kirin import Dataset
from kirin.errors import CorruptObjectError, InvalidInputError
from kirin.store import SPOOL_MAX

from conftest import write
from roots import RegistryRoot

NAME = "model.bin"
CONTENT = b"honest bytes, as committed\n" * 150  # ASCII, so text mode decodes it


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def commit(registry_root: RegistryRoot, workdir: Path, content: bytes,
           name: str = NAME) -> tuple[Dataset, str]:
    """A dataset holding ``name`` with ``content``; returns it and the commit hash."""
    ds = registry_root.dataset()
    digest = ds.commit("add", add_files={name: str(write(workdir, "src.bin", content))})
    return ds, digest


def flip(data: bytes, at: int) -> bytes:
    """``data`` with the low bit of byte ``at`` flipped: same length, different hash."""
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]


# -- every reader, every kind of damage, every backend -------------------------------------

def _default_read_size(ds: Dataset, size: int) -> object:
    with ds.open_file(NAME) as f:
        return f.read(size)


def _default_read_one(ds: Dataset, size: int) -> object:
    with ds.open_file(NAME) as f:
        return f.read(1)


def _default_text(ds: Dataset, size: int) -> object:
    with ds.open_file(NAME, "r") as f:
        return f.read()


def _stream_read_size(ds: Dataset, size: int) -> object:
    with ds.open_file(NAME, stream=True) as f:
        return f.read(size)


def _stream_read_chunks(ds: Dataset, size: int) -> object:
    with ds.open_file(NAME, stream=True) as f:
        return [f.read(1000) for _ in range(size // 1000 + 1)]


def _stream_text(ds: Dataset, size: int) -> object:
    with ds.open_file(NAME, "r", stream=True) as f:
        return f.read()


def _read_file_bytes(ds: Dataset, size: int) -> object:
    return ds.read_file(NAME, mode="rb")


def _read_file_text(ds: Dataset, size: int) -> object:
    return ds.read_file(NAME)


def _file_read_bytes(ds: Dataset, size: int) -> object:
    file = ds.get_file(NAME)
    assert file is not None
    return file.read_bytes()


READERS: list[Callable[[Dataset, int], object]] = [
    _default_read_size, _default_read_one, _default_text, _stream_read_size,
    _stream_read_chunks, _stream_text, _read_file_bytes, _read_file_text, _file_read_bytes]

DAMAGE = [
    pytest.param(lambda b: flip(b, len(b) // 2), id="flipped-middle"),
    pytest.param(lambda b: flip(b, len(b) - 1), id="flipped-last"),
    pytest.param(lambda b: b[:-1], id="truncated"),
    pytest.param(lambda b: b + b"!", id="extended"),
]


@pytest.mark.parametrize("damage", DAMAGE)
def test_every_reader_refuses_a_damaged_blob(registry_root: RegistryRoot, workdir: Path,
                                             damage: Callable[[bytes], bytes]) -> None:
    """Whatever the reader stops at (exactly the size, one byte, chunks, text), a damaged
    blob raises CorruptObjectError naming file, commit and path, and returns nothing."""
    ds, digest = commit(registry_root, workdir, CONTENT)
    for reader in READERS:  # the untampered blob reads back exactly, every way
        got = reader(ds, len(CONTENT))
        assert got in (CONTENT, CONTENT[:1], CONTENT.decode(),
                       [CONTENT[i:i + 1000] for i in range(0, len(CONTENT) + 1, 1000)]), \
            reader.__name__
    path = registry_root.blob_path(sha(CONTENT))
    registry_root.pipe(path, damage(CONTENT))
    for reader in READERS:
        with pytest.raises(CorruptObjectError) as info:
            reader(ds, len(CONTENT))
        err = info.value
        assert (err.file, err.commit) == (NAME, digest), reader.__name__
        assert err.path.endswith(path.rsplit("/", 2)[-2] + "/" + path.rsplit("/", 1)[-1])
        assert digest[:12] in str(err) and repr(NAME) in str(err)


def test_default_mode_raises_before_the_first_byte(registry_root: RegistryRoot,
                                                   workdir: Path) -> None:
    """The default reader checks the whole blob at open: a damaged one raises there,
    before any byte can be read, and a good one is seekable."""
    ds, _ = commit(registry_root, workdir, CONTENT)
    with ds.open_file(NAME) as f:
        assert f.seekable()
        f.seek(len(CONTENT) - 5)
        assert f.read() == CONTENT[-5:]
        f.seek(0)
        assert f.read(3) == CONTENT[:3]
    registry_root.pipe(registry_root.blob_path(sha(CONTENT)), flip(CONTENT, 3))
    handed_out: list[bytes] = []
    with pytest.raises(CorruptObjectError):
        f = ds.open_file(NAME)
        handed_out.append(f.read(1))
    assert handed_out == []


# -- pickles ---------------------------------------------------------------------------------

def harmless(path: str) -> str:
    return path


def makemark(path: str) -> str:  # same length as ``harmless``: a same-size tampered pickle
    Path(path).touch()
    return path


class Model:
    """Pickles as a call of ``harmless(marker)``; tampered, as ``makemark(marker)``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return harmless, (self.marker,)


def test_a_tampered_pickle_is_never_unpickled(registry_root: RegistryRoot, workdir: Path,
                                              tmp_path: Path) -> None:
    """pickle.load on the default reader of a same-length tampered pickle raises
    CorruptObjectError and runs none of it (the call it smuggles in never happens)."""
    marker = tmp_path / "code-ran"
    honest = pickle.dumps(Model(str(marker)))
    tampered = honest.replace(b"harmless", b"makemark")
    assert len(tampered) == len(honest) and tampered != honest
    pickle.loads(tampered)  # the tampered pickle does run code when unpickled
    assert marker.exists()
    marker.unlink()

    ds, _ = commit(registry_root, workdir, honest, name="model.pkl")
    with ds.open_file("model.pkl") as f:
        assert pickle.load(f) == str(marker)
    registry_root.pipe(registry_root.blob_path(sha(honest)), tampered)
    with pytest.raises(CorruptObjectError), ds.open_file("model.pkl") as f:
        pickle.load(f)
    assert not marker.exists()


# -- sizes at the edges ----------------------------------------------------------------------

def test_an_empty_file(registry_root: RegistryRoot, workdir: Path) -> None:
    """An empty file reads back empty in both modes; a byte added to its blob is caught."""
    ds, _ = commit(registry_root, workdir, b"")
    with ds.open_file(NAME) as f:
        assert f.read() == b""
    with ds.open_file(NAME, stream=True) as f:
        assert f.read(0) == b""
        assert f.read() == b""
    assert ds.read_file(NAME) == ""
    registry_root.pipe(registry_root.blob_path(sha(b"")), b"x")
    with pytest.raises(CorruptObjectError), ds.open_file(NAME) as f:
        f.read()
    with pytest.raises(CorruptObjectError), ds.open_file(NAME, stream=True) as f:
        f.read()


def test_a_file_just_over_the_spool_threshold(registry_root: RegistryRoot,
                                              workdir: Path) -> None:
    """A blob one byte larger than what is copied to memory (copied to a temporary file;
    on local disk served from the descriptor it was hashed through) reads back exactly in
    both modes, and a one-byte flip in it is refused in both."""
    content = os.urandom(SPOOL_MAX + 1)
    ds, _ = commit(registry_root, workdir, content)
    with ds.open_file(NAME) as f:
        assert f.read(SPOOL_MAX + 1) == content
        assert f.read() == b""
    with ds.open_file(NAME, stream=True) as f:
        assert f.read() == content
    registry_root.pipe(registry_root.blob_path(sha(content)), flip(content, SPOOL_MAX // 3))
    with pytest.raises(CorruptObjectError), ds.open_file(NAME) as f:
        f.read(1)
    with pytest.raises(CorruptObjectError), ds.open_file(NAME, stream=True) as f:
        f.read(SPOOL_MAX + 1)


# -- local disk: the blob changing after the check -------------------------------------------

@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``TMPDIR`` for this test only, to see what reading leaves there."""
    folder = tmp_path / "tmpdir"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder


def local_blob(tmp_path: Path, workdir: Path, size: int) -> tuple[Dataset, bytes, Path]:
    content = (CONTENT * (size // len(CONTENT) + 1))[:size]
    ds = Dataset(tmp_path / "registry", "ds")
    ds.commit("add", add_files={NAME: str(write(workdir, "src.bin", content))})
    blob = tmp_path / "registry" / "data" / sha(content)[:2] / sha(content)[2:]
    os.chmod(blob, 0o644)  # whatever Kirin made it: someone who may write it
    return ds, content, blob


def test_a_small_blob_changed_after_the_check_does_not_reach_the_reader(
        tmp_path: Path, workdir: Path, private_tmp: Path) -> None:
    """A blob up to the spool threshold is served from a verified copy in memory: rewriting
    it in place after open_file returned changes nothing the reader returns."""
    ds, content, blob = local_blob(tmp_path, workdir, len(CONTENT))
    with ds.open_file(NAME) as f:
        head = f.read(10)
        with open(blob, "r+b") as inplace:
            inplace.write(flip(content, 20)[:100])
        assert head + f.read() == content
    assert list(private_tmp.iterdir()) == []


def test_a_large_blob_changed_while_read(tmp_path: Path, workdir: Path,
                                         private_tmp: Path) -> None:
    """A large local blob is served from the descriptor it was hashed through. Replacing
    the blob file or touching its time changes nothing the reader returns; rewriting it in
    place makes the next read raise instead of returning the new bytes."""
    size = SPOOL_MAX + 1
    ds, content, blob = local_blob(tmp_path, workdir, size)
    with ds.open_file(NAME) as f:
        head = f.read(10)
        assert list(private_tmp.iterdir()) == []  # nothing copied
        blob.unlink()
        blob.write_bytes(b"x" * size)
        assert head + f.read() == content
    blob.unlink()
    blob.write_bytes(content)
    with ds.open_file(NAME) as f:
        head = f.read(10)
        time.sleep(0.05)  # past the filesystem's timestamp granularity (a few ms at most)
        os.utime(blob)  # what a commit of the same content does to it
        assert head + f.read() == content
    with ds.open_file(NAME) as f:
        assert f.read(10) == content[:10]
        time.sleep(0.05)
        with open(blob, "r+b") as inplace:
            inplace.seek(size // 2)
            inplace.write(b"tampered")
        with pytest.raises(CorruptObjectError, match="content hash") as info:
            f.read()
    assert (info.value.file, info.value.path) == (NAME, str(blob))


# -- modes -------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["w", "wb", "a", "r+b"])
def test_write_modes_are_invalid_input(tmp_path: Path, workdir: Path, mode: str) -> None:
    """open_file and read_file in a write mode raise InvalidInputError (a ValueError) naming
    the read modes, before touching storage."""
    ds = Dataset(tmp_path / "registry", "ds")
    ds.commit("add", add_files={NAME: str(write(workdir, "src.bin", CONTENT))})
    for call in (lambda: ds.open_file(NAME, mode), lambda: ds.read_file(NAME, mode=mode)):
        with pytest.raises(InvalidInputError, match="'r', 'rt' and 'rb'") as info:
            call()
        assert isinstance(info.value, ValueError)
