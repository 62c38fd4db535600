"""``kirin verify`` finds blobs truncated or altered on disk and names what they affect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_helpers import Registry, assert_shape, build_registry, error_lines, run


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return build_registry(tmp_path)


def blob_of(reg: Registry, name: str) -> tuple[Path, str]:
    baseline = reg.open().get_commit(reg.baseline)
    assert baseline is not None
    digest = baseline.files[name].hash
    return reg.root / "data" / digest[:2] / digest[2:], digest


def test_a_truncated_blob_is_reported_with_every_commit_and_file_it_affects(
        reg: Registry) -> None:
    path, digest = blob_of(reg, "model_weights.pt")
    path.write_bytes(path.read_bytes()[:100])
    result = run("verify", *reg.args(), cwd=reg.work)
    assert result.returncode == 1
    assert "truncated or altered" in result.stdout and "model_weights.pt" in result.stdout
    report = json.loads(run("verify", "-f", "json", *reg.args(), cwd=reg.work).stdout)
    assert_shape("verify", report)
    assert report["ok"] is False
    [problem] = report["problems"]
    assert problem["kind"] == "blob" and digest[2:] in problem["path"]
    assert problem["files"] == ["model_weights.pt"]
    # the baseline added it; the dev commit and the staging promotion still hold it
    assert problem["commits"] == [reg.baseline, reg.dev, reg.staging]
    github = run("verify", "-f", "github", *reg.args(), cwd=reg.work)
    assert github.returncode == 1
    [line] = error_lines(github.stdout)
    assert line.startswith("::error title=Kirin verify::Blob ")
    assert reg.baseline[:12] in line and "model_weights.pt" in line


def test_an_altered_blob_of_the_same_size_is_reported(reg: Registry) -> None:
    path, _ = blob_of(reg, "config.json")
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))
    missing, _ = blob_of(reg, "model_weights.pt")
    missing.unlink()
    report = json.loads(run("verify", "-f", "json", *reg.args(), cwd=reg.work).stdout)
    by_file = {p["files"][0]: p["message"] for p in report["problems"]}
    assert sorted(by_file) == ["config.json", "model_weights.pt"]
    assert "does not match its hash (altered)" in by_file["config.json"]
    assert "is missing" in by_file["model_weights.pt"]


def test_reading_a_corrupt_file_fails_with_exit_code_4_naming_it(reg: Registry) -> None:
    path, _ = blob_of(reg, "model_weights.pt")
    path.write_bytes(b"tampered")
    result = run("get", "v1.0", "-o", reg.work / "out", *reg.args(), cwd=reg.work)
    assert result.returncode == 4
    assert "model_weights.pt" in result.stderr and reg.baseline[:12] in result.stderr
    assert not (reg.work / "out" / "model_weights.pt").exists()
