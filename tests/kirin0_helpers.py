"""An original-Kirin (0.0.15) registry, built by the original package itself.

The original is on PyPI under the same name as this package (``kirin``), so
it is never installed into the environment: :func:`build_original_registry`
installs it (``pip install --no-deps --target``, plus ``loguru``, the one
runtime dependency its import needs that the test extra lacks) into a folder
of its own once per session, and runs the builder in a child process whose
``sys.path`` starts with that folder; the builder checks that the ``kirin``
it imported is the original. Cost: one ``pip install`` from PyPI (about 2-3
s here, network needed) and one child process (about 1 s), once per session;
each test copies the built registry (a few KB).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ORIGINAL = "kirin==0.0.15"
#: Runtime dependencies the original imports that the test environment lacks.
ORIGINAL_DEPS = ["loguru"]

BUILDER = r'''
import json, os, sys
target, root, work = sys.argv[1:4]
import kirin
assert os.path.realpath(kirin.__file__).startswith(os.path.realpath(target)), kirin.__file__
from kirin import Catalog

def write(rel, data):
    path = os.path.join(work, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path

catalog = Catalog(root_dir=root)
models = catalog.create_dataset("models", "model checkpoints")
models.commit(message="Raw data", add_files=[
    write("raw/train.csv", b"x,y\n1,2\n"), write("raw/labels.csv", b"label\ncat\n")],
    metadata={"source": "s3", "rows": 1}, tags=["raw"])
models.commit(message="First model", add_files=[
    write("models/v1/model.bin", bytes(range(256)) * 40),
    write("raw2/train.csv", b"x,y\n1,2\n3,4\n")],
    metadata={"metrics": {"accuracy": 0.9, "loss": 0.31}, "params": {"lr": 0.1},
              "framework": "sklearn"},
    tags=["dev"])
models.commit(message="Drop labels", remove_files=["labels.csv"],
              metadata={"metrics": {"accuracy": 0.95}, "note": "unicode \u00e9\u6f22"},
              tags=["prod", "v1"])
notes = catalog.get_dataset("notes")
notes.commit(message="Notes", add_files=[write("docs/labels.csv", b"label\ncat\n")])

out = {}
for name in ("models", "notes"):
    ds = catalog.get_dataset(name)
    out[name] = [{"hash": c.hash, "message": c.message, "timestamp": c.timestamp.isoformat(),
                  "metadata": c.metadata, "tags": c.tags,
                  "files": {n: f.hash for n, f in c.files.items()}}
                 for c in reversed(ds.history())]
print(json.dumps(out))
'''


def install_original(folder: Path) -> Path:
    """The original package and its missing dependencies, in ``folder`` (not on sys.path)."""
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--disable-pip-version-check", "--target", str(folder), ORIGINAL,
                    *ORIGINAL_DEPS], check=True, capture_output=True, text=True, timeout=300)
    return folder


def build_original_registry(target: Path, root: Path, work: Path) -> dict[str, Any]:
    """Build the registry at ``root`` with the original; return its own view of the history."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "KIRIN_"))}
    env["PYTHONPATH"] = str(target)  # first on sys.path, before our editable install
    done = subprocess.run([sys.executable, "-s", "-c", BUILDER, str(target), str(root),
                           str(work)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    history: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return history


def copy_registry(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination)
    return destination


def blob_path(root: Path, digest: str) -> Path:
    """Where the original stored the blob ``digest`` (its one file in the hash folder)."""
    (path,) = (root / "data" / digest[:2] / digest[2:]).iterdir()
    return path


@pytest.fixture(scope="session")
def original_registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A registry built by the original Kirin, once per session: (root, its own history view).

    Tests copy it (:func:`copy_registry`) before changing anything.
    """
    base = tmp_path_factory.mktemp("kirin0")
    target = install_original(base / "original")
    root = base / "registry"
    return root, build_original_registry(target, root, base / "work")
