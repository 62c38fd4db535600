"""Helpers of the web view's tests: a registry worth looking at, a server, a browser.

:func:`build_registry` makes the registry every UI test looks at: a governed
``models`` dataset whose commits carry nested metrics, stage tags and a
promotion; an ungoverned ``data`` dataset; and ``hostile``, whose message,
tags, metadata keys and values and file names are markup and script URLs.
:func:`serve` runs ``kirin ui``'s app on a real uvicorn server on a free
loopback port, in a thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kirin import Catalog, Dataset
from kirin.ui.server import UiServer

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"

POLICY = """\
version: 1
description: Team policy for the sentiment models
tags:
  exclusive_groups: [[dev, staging, production]]
promotion:
  production:
    when: "metrics.accuracy >= 0.8"
    requires_stage: staging
"""
POLICY_V2 = POLICY.replace("0.8", "0.85")

#: What the hostile dataset is made of: each would run script if it reached the page as markup.
PWN = "window.__pwned=1"
HOSTILE_MESSAGE = f"<script>{PWN}</script> release \"><img src=x onerror={PWN}>"
HOSTILE_TAG = f"\"><img src=x onerror={PWN}>"
HOSTILE_KEY = f"<script>{PWN}</script>"
HOSTILE_VALUE = f"javascript:{PWN}"
HOSTILE_FILE = f"\"><svg onload={PWN}>.txt"
HOSTILE_FILE_2 = f"javascript:{PWN}"


@dataclass(frozen=True)
class Built:
    """What :func:`build_registry` made: hashes and contents the tests check against."""

    models: list[str]  # commit hashes of "models", oldest first
    contents: dict[str, bytes]  # file name -> content of the newest "models" commit (run 4's)
    hostile: str  # the hostile commit


def write(folder: Path, name: str, content: bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def build_registry(catalog: Catalog, work: Path) -> Built:
    """Fill ``catalog`` (any backend) with the three datasets the UI tests look at."""
    models = catalog.create_dataset("models", "Sentiment classifiers", policy=POLICY)
    hashes = []
    runs: list[dict[str, bytes]] = []
    for i in range(6):
        weights = f"weights of run {i}\n".encode() * (i + 1)
        config = f'{{"run": {i}}}\n'.encode()
        runs.append({"model.bin": weights, "config/train.json": config})
        files = {name: str(write(work, f"run{i}/{name}", data)) for name, data in runs[i].items()}
        tags = ["staging"] if i == 4 else ["dev"]
        hashes.append(models.commit(
            f"Train run {i}", add_files=files, tags=tags, author=f"alice{i % 2}@example",
            metadata={"metrics": {"accuracy": round(0.6 + 0.05 * i, 3), "f1": 0.5 + 0.04 * i},
                      "params": {"lr": 0.001, "layers": [128, 64]}, "framework": "pytorch",
                      "run": i}))
    hashes.append(models.promote(hashes[4], ["production"], author="lead@example"))
    # the bar rises after the promotion: the audit finds the production commit below it
    models.set_policy(POLICY_V2, message="Raise the production bar", author="lead@example")
    data = catalog.create_dataset("data")
    data.commit("Raw reviews", add_files={"reviews.csv": str(write(work, "r.csv", b"a,b\n"))},
                metadata={"rows": 1}, tags=["raw"])
    hostile = catalog.get_dataset("hostile")
    hostile_hash = hostile.commit(
        HOSTILE_MESSAGE, add_files={HOSTILE_FILE: str(write(work, "h1", b"one")),
                                    HOSTILE_FILE_2: str(write(work, "h2", b"two"))},
        tags=[HOSTILE_TAG, HOSTILE_VALUE],
        metadata={HOSTILE_KEY: HOSTILE_VALUE, "nested": {HOSTILE_TAG: HOSTILE_MESSAGE},
                  "score": 1.5})
    hostile.commit("Second <b>bold</b>", add_files={"x.txt": str(write(work, "h3", b"3"))},
                   metadata={"score": 2.5, HOSTILE_KEY: 1})
    return Built(hashes, runs[4], hostile_hash)


@contextlib.contextmanager
def serve(catalog: Catalog) -> Iterator[UiServer]:
    """The web app over ``catalog`` on a free loopback port, for the block's duration."""
    with UiServer(catalog, host="127.0.0.1", port=0) as server:
        yield server


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


def request(url: str, method: str = "GET", headers: Mapping[str, str] | None = None,
            data: bytes | None = None) -> Answer:
    """One HTTP request; an error status is an answer too, never an exception."""
    req = urllib.request.Request(url, method=method, headers=dict(headers or {}), data=data)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return Answer(response.status, {k.lower(): v for k, v in response.headers.items()},
                          response.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fail_or_skip(reason: str) -> Any:
    """No browser: a CI run fails (it must test in one); a developer's run skips, saying why."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"{reason} (bash scripts/test.sh installs it)")


def browser_binaries() -> tuple[str, str]:
    """The system's Chromium and its chromedriver (Debian: chromium, chromium-driver)."""
    browser = next((found for name in ("chromium", "chromium-browser", "google-chrome")
                    if (found := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        fail_or_skip("no Chromium or chromedriver on PATH (apt-get install chromium "
                     "chromium-driver)")
    assert browser is not None and driver is not None
    return browser, driver


def dataset_of(catalog: Catalog, name: str) -> Dataset:
    return catalog.get_dataset(name)
