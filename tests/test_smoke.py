"""The shortest path through the public API, end to end on local disk."""

from __future__ import annotations

from pathlib import Path

from kirin import Catalog, Dataset

from conftest import write


def test_commit_then_read_back(root: Path, workdir: Path) -> None:
    """A committed file reads back byte for byte, and the catalog lists its dataset."""
    model = write(workdir, "model.pt", b"\x00weights\xff")
    ds = Dataset(root_dir=root, name="sentiment_classifier")
    digest = ds.commit(message="Initial baseline", add_files=[model],
                       metadata={"accuracy": 0.87}, tags=["baseline"])
    assert len(digest) == 64
    file = ds.get_file("model.pt")
    assert file is not None and file.read_bytes() == b"\x00weights\xff"
    assert Catalog(root).datasets() == ["sentiment_classifier"]
