"""``kirin ui`` as a user runs it: a real process, stopped with Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kirin import Catalog
from kirin.cli import app
from kirin.cli.shapes import COMMANDS

from ui_helpers import REPO, build_registry, request

ANNOUNCE = "Kirin UI (read-only) on "


def kirin_process(*args: str, cwd: Path) -> subprocess.Popen[str]:
    """``kirin ARGS`` from this checkout's source, in a process of its own."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.Popen([sys.executable, "-c", "from kirin.cli import main; main()", *args],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)


def test_kirin_ui_serves_until_ctrl_c_then_prints_its_document(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    build_registry(Catalog(root), tmp_path / "work")
    (tmp_path / "kirin.yaml").write_text(f"root: {root}\ndataset: models\n")
    process = kirin_process("ui", "--port", "0", "--format", "json", cwd=tmp_path)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line.startswith(ANNOUNCE), line + process.stderr.read()
        url = line[len(ANNOUNCE):].split()[0]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/d/models")  # kirin.yaml
        page = request(url)
        assert page.status == 200 and "Train run 5" in page.text
        assert request(url, method="POST", data=b"").status == 405
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    document = json.loads(out)
    assert sorted(document) == sorted(COMMANDS["ui"])
    assert document == {"url": url, "root": str(root), "dataset": "models"}


def test_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    Catalog(root).create_dataset("models")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["ui", "--root", str(root), "--port", str(port)])
    assert result.exit_code == 4
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--port" in result.stderr


def test_an_unknown_dataset_is_not_found(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    Catalog(root).create_dataset("models")
    result = CliRunner().invoke(app, ["ui", "--root", str(root), "-d", "modles"])
    assert result.exit_code == 3 and "'modles' not found" in result.stderr


def test_without_the_ui_extra_the_error_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "kirin.ui.server" or m.startswith("uvicorn")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # what an absent package looks like
    root = tmp_path / "registry"
    Catalog(root).create_dataset("models")
    started = time.monotonic()
    result = CliRunner().invoke(app, ["ui", "--root", str(root)])
    assert result.exit_code == 2
    assert "pip install 'kirin[ui]'" in result.stderr
    assert time.monotonic() - started < 10  # refused at once, no server started
