"""``kirin://`` URLs: a read-only fsspec filesystem over a registry (issue 15, part 2).

Files of a commit are read by URL with pandas (CSV) and pyarrow (Parquet) on
every backend; refs are hash prefixes, tags or nothing (the newest commit);
every read is verified; a damaged blob raises ``CorruptObjectError`` through
the URL; writes are refused. The ``fsspec.specs`` entry point registers the
protocol with no import of Kirin (checked in a separate interpreter).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tomllib

from kirin import Dataset
from kirin.errors import (
    CommitNotFoundError,
    CorruptObjectError,
    DatasetNotFoundError,
    FileNotInCommitError,
    InvalidInputError,
    KirinError,
    ReadOnlyError,
)
from kirin.urlfs import KirinFileSystem

from conftest import write
from roots import RegistryRoot

REPO = Path(__file__).resolve().parents[1]
CSV_V1 = b"customer,churned\n1,0\n2,1\n"
CSV_V2 = b"customer,churned\n1,0\n2,1\n3,1\n"


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    """The protocol as the entry point registers it (the shared venv may predate it)."""
    fsspec.register_implementation("kirin", "kirin.urlfs.KirinFileSystem", clobber=True)
    yield
    fsspec.AbstractFileSystem.clear_instance_cache()  # roots come and go between tests


def parquet_bytes() -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({"x": [1, 2, 3], "y": ["a", "b", "c"]}), sink)
    return sink.getvalue()


def options(root: RegistryRoot) -> dict[str, Any]:
    """What a user passes as fsspec ``storage_options`` for this registry."""
    return {"root": root.url, "root_storage_options": dict(root.storage_options)}


def populate(ds: Dataset, workdir: Path) -> tuple[str, str]:
    first = ds.commit("v1", add_files={
        "train.csv": write(workdir, "v1.csv", CSV_V1),
        "data/part-0.parquet": write(workdir, "p.parquet", parquet_bytes()),
        "data/nested/notes.txt": write(workdir, "n.txt", "notes")}, tags=["production"])
    second = ds.commit("v2", add_files={"train.csv": write(workdir, "v2.csv", CSV_V2)})
    return first, second


def test_pandas_and_pyarrow_read_by_url(registry_root: RegistryRoot, workdir: Path) -> None:
    """A CSV with pandas and a Parquet file with pyarrow (and pandas), by URL, on every
    backend; ``@tag``, ``@prefix`` and no ref name the right commits."""
    first, second = populate(registry_root.dataset("churn_data"), workdir)
    so = options(registry_root)
    assert len(pd.read_csv("kirin://churn_data@production/train.csv", storage_options=so)) == 2
    assert len(pd.read_csv(f"kirin://churn_data@{second[:10]}/train.csv",
                           storage_options=so)) == 3
    assert len(pd.read_csv("kirin://churn_data/train.csv", storage_options=so)) == 3
    assert len(pd.read_csv(f"kirin://churn_data@{first}/train.csv", storage_options=so)) == 2
    frame = pd.read_parquet("kirin://churn_data@production/data/part-0.parquet",
                            storage_options=so, engine="pyarrow")
    assert list(frame["y"]) == ["a", "b", "c"]
    fs = fsspec.filesystem("kirin", **so)
    table = pq.read_table("churn_data@production/data/part-0.parquet", filesystem=fs)
    assert table.column("x").to_pylist() == [1, 2, 3]


def test_ls_info_glob_cat(registry_root: RegistryRoot, workdir: Path) -> None:
    first, _ = populate(registry_root.dataset("churn_data"), workdir)
    registry_root.dataset("other").commit("o", add_files=[write(workdir, "o.txt", "o")])
    fs = fsspec.filesystem("kirin", **options(registry_root))
    assert fs.ls("", detail=False) == ["churn_data", "other"]
    top = fs.ls("kirin://churn_data@production")
    assert [(e["name"], e["type"]) for e in top] == [
        ("churn_data@production/data", "directory"),
        ("churn_data@production/train.csv", "file")]
    import hashlib

    csv = top[1]
    assert (csv["size"], csv["hash"], csv["commit"]) == (
        len(CSV_V1), hashlib.sha256(CSV_V1).hexdigest(), first)
    assert fs.ls("churn_data@production/data", detail=False) == [
        "churn_data@production/data/nested", "churn_data@production/data/part-0.parquet"]
    assert fs.info("churn_data@production/data")["type"] == "directory"
    assert fs.info("churn_data@production")["commit"] == first
    assert fs.glob("kirin://churn_data@production/**/*.txt") == [
        "churn_data@production/data/nested/notes.txt"]
    assert fs.glob("churn_data@production/*.csv") == ["churn_data@production/train.csv"]
    assert fs.find("churn_data@production") == [
        "churn_data@production/data/nested/notes.txt",
        "churn_data@production/data/part-0.parquet", "churn_data@production/train.csv"]
    assert fs.cat("kirin://churn_data@production/train.csv") == CSV_V1
    assert fs.cat_file("churn_data/train.csv", start=9, end=16) == CSV_V2[9:16]
    assert fs.exists("churn_data/train.csv") and fs.isfile("churn_data/train.csv")
    assert fs.isdir("churn_data/data") and not fs.exists("churn_data/nope.csv")
    with fs.open("churn_data@production/data/nested/notes.txt", "r") as text:
        assert text.read() == "notes"
    with fsspec.open("kirin://churn_data/train.csv", "rb", **options(registry_root)) as f:
        assert f.read() == CSV_V2


def test_a_damaged_blob_raises_through_the_url(registry_root: RegistryRoot,
                                               workdir: Path) -> None:
    """No tampered byte reaches the reader: open, cat and pandas all raise."""
    populate(registry_root.dataset("churn_data"), workdir)
    import hashlib

    registry_root.pipe(registry_root.blob_path(hashlib.sha256(CSV_V1).hexdigest()),
                       CSV_V1.replace(b"1,0", b"1,1"))
    so = options(registry_root)
    fs = fsspec.filesystem("kirin", **so)
    with pytest.raises(CorruptObjectError):
        fs.open("churn_data@production/train.csv")
    with pytest.raises(CorruptObjectError):
        fs.cat_file("churn_data@production/train.csv")
    with pytest.raises(CorruptObjectError):
        pd.read_csv("kirin://churn_data@production/train.csv", storage_options=so)
    assert fs.cat_file("churn_data/train.csv") == CSV_V2  # the undamaged newest is fine


class TestMissing:
    @pytest.fixture
    def fs(self, root: Path, workdir: Path) -> KirinFileSystem:
        populate(Dataset(root, "churn_data"), workdir)
        Dataset(root, "empty")._create()
        return fsspec.filesystem("kirin", root=str(root))  # type: ignore[no-any-return]

    def test_dataset(self, fs: KirinFileSystem) -> None:
        with pytest.raises(DatasetNotFoundError, match=r"'nope' not found"):
            fs.info("nope/train.csv")
        with pytest.raises(DatasetNotFoundError):
            fs.open("nope@production/train.csv")
        assert not fs.exists("nope/train.csv")

    def test_ref(self, fs: KirinFileSystem) -> None:
        with pytest.raises(CommitNotFoundError, match=r"^Commit not found.*'staging'"):
            fs.cat_file("churn_data@staging/train.csv")
        with pytest.raises(CommitNotFoundError, match=r"^No commits found"):
            fs.ls("empty")
        with pytest.raises(InvalidInputError, match="ref after '@' is empty"):
            fs.ls("churn_data@/train.csv")

    def test_path(self, fs: KirinFileSystem) -> None:
        for call in (fs.info, fs.ls, fs.cat_file, fs.open):
            with pytest.raises(FileNotFoundError, match=r"nope\.csv") as info:
                call("churn_data@production/nope.csv")
            assert isinstance(info.value, FileNotInCommitError)
        with pytest.raises(FileNotFoundError):
            fs.open("churn_data@production/data")  # a folder is not a file

    def test_bad_names_and_root(self, fs: KirinFileSystem, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
        with pytest.raises(InvalidInputError):
            fs.ls("../etc")
        monkeypatch.delenv("KIRIN_ROOT", raising=False)
        with pytest.raises(InvalidInputError, match="registry root"):
            KirinFileSystem()
        monkeypatch.setenv("KIRIN_ROOT", str(fs._catalog.root_dir))
        assert KirinFileSystem(skip_instance_cache=True).ls("", detail=False) == [
            "churn_data", "empty"]


def test_writes_are_refused(root: Path, workdir: Path) -> None:
    populate(Dataset(root, "churn_data"), workdir)
    fs = fsspec.filesystem("kirin", root=str(root))
    before = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    for call in (lambda: fs.open("churn_data/new.csv", "wb"),
                 lambda: fs.open("churn_data/train.csv", "ab"),
                 lambda: fs.pipe("churn_data/new.csv", b"x"),
                 lambda: fs.put(str(workdir / "v1.csv"), "churn_data/x.csv"),
                 lambda: fs.rm("churn_data/train.csv"),
                 lambda: fs.mkdir("churn_data/folder"),
                 lambda: fs.mv("churn_data/train.csv", "churn_data/t.csv"),
                 lambda: fs.copy("churn_data/train.csv", "churn_data/t.csv"),
                 lambda: fs.touch("churn_data/t.csv")):
        with pytest.raises(ReadOnlyError, match="read-only") as info:
            call()
        assert isinstance(info.value, KirinError) and isinstance(info.value, PermissionError)
    with pytest.raises(ReadOnlyError):
        pd.DataFrame({"a": [1]}).to_csv("kirin://churn_data/out.csv",
                                        storage_options={"root": str(root)})
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == before


def test_root_storage_options_reach_the_root_and_stay_hidden(
        request: pytest.FixtureRequest, workdir: Path) -> None:
    """The root's credentials go in ``root_storage_options``; repr never shows them."""
    from roots import open_backend

    with open_backend("azure", request, workdir) as root:
        populate(root.dataset("churn_data"), workdir)
        secret = root.storage_options["connection_string"]
        fs = fsspec.filesystem("kirin", **options(root))
        assert fs.cat_file("churn_data/train.csv") == CSV_V2
        assert secret not in repr(fs) and "AccountKey" not in repr(fs)


def test_the_entry_point_registers_the_protocol(tmp_path: Path, root: Path,
                                                workdir: Path) -> None:
    """pyproject's ``fsspec.specs`` entry point names this class, and fsspec loads it in a
    fresh interpreter that never imports kirin itself (pandas reads by URL)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    specs = project["project"]["entry-points"]["fsspec.specs"]
    assert specs == {"kirin": "kirin.urlfs:KirinFileSystem"}
    populate(Dataset(root, "churn_data"), workdir)
    # the metadata an install writes (what `pip install -e .` adds to the venv)
    dist = tmp_path / "site" / "kirin_urlfs_probe-0.0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: kirin-urlfs-probe\n"
                                   "Version: 0.0.0\n")
    (dist / "entry_points.txt").write_text(
        "[fsspec.specs]\n" + "".join(f"{k} = {v}\n" for k, v in specs.items()))
    script = textwrap.dedent(f"""
        import fsspec, pandas as pd
        from fsspec.registry import known_implementations
        assert "kirin" in known_implementations, "not registered"
        frame = pd.read_csv("kirin://churn_data@production/train.csv",
                            storage_options={{"root": {str(root)!r}}})
        print(len(frame), type(fsspec.filesystem("kirin", root={str(root)!r})).__module__)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tmp_path / "site"), str(REPO / "src")])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "kirin.urlfs"]


def test_import_kirin_does_not_load_the_url_filesystem() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, json, kirin; "
         "print(json.dumps(sorted(m for m in sys.modules if m.startswith('kirin.urlfs'))))"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
