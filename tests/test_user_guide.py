"""Every Python example of the user guide runs, as written, against this package.

The guide (``../shared/USER-GUIDE-model-versioning.md``) is the contract. Its
snippets run in order in one namespace, as a reader would paste them. Only
what the guide itself calls placeholders is substituted: ``torch`` and
``wandb`` are small fakes, the S3 root becomes a local folder, and the
placeholder hashes ``abc123def`` / ``xyz789ghi`` become real commit hashes.
"""

from __future__ import annotations

import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from kirin import Dataset

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO.parent / "shared" / "USER-GUIDE-model-versioning.md"


def sections() -> list[list[str]]:
    """The guide's Python snippets, grouped by ``##`` section."""
    parts = re.split(r"^## ", GUIDE.read_text(), flags=re.M)
    return [re.findall(r"```python\n(.*?)```", part, flags=re.S) for part in parts]


def snippets() -> list[str]:
    return [code for section in sections() for code in section]


def fake_modules(tmp: Path) -> dict[str, Any]:
    """Stand-ins for torch and wandb: just enough to save, load and log."""
    torch = types.ModuleType("torch")
    torch.save = lambda obj, path: Path(path).write_bytes(repr(obj).encode())  # type: ignore[attr-defined]
    torch.load = lambda path: Path(path).read_bytes()  # type: ignore[attr-defined]
    wandb = types.ModuleType("wandb")
    run = types.SimpleNamespace(name="brisk-fox-7", id="run123")
    wandb.init = lambda **kw: run  # type: ignore[attr-defined]
    wandb.log = lambda metrics: None  # type: ignore[attr-defined]
    wandb.run = run  # type: ignore[attr-defined]
    return {"torch": torch, "wandb": wandb}


class FakeModel:
    def __init__(self, seed: int) -> None:
        self.seed = seed

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed}


def run_snippet(code: str, namespace: dict[str, Any], tmp_path: Path) -> None:
    code = code.replace('"s3://my-bucket/models"', repr(str(tmp_path / "registry")))
    if '"abc123def"' in code or '"xyz789ghi"' in code:
        history = namespace["model_registry"].history()
        code = code.replace('"abc123def"', repr(history[-1].hash[:9]))
        code = code.replace('"xyz789ghi"', repr(history[-2].hash[:9]))
    exec(compile(code, str(GUIDE), "exec"), namespace)  # the guide's own code


def test_guide_has_examples() -> None:
    """The guide is where CI expects it and holds the examples this test runs."""
    assert len(snippets()) >= 15


def test_every_guide_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each snippet runs in order, sharing one namespace, and does what it says."""
    monkeypatch.chdir(tmp_path)
    for name, module in fake_modules(tmp_path).items():
        monkeypatch.setitem(sys.modules, name, module)
    Path("config.json").write_text('{"hidden": 64}')
    for name in ("model.pt", "model_a.pt", "model_b.pt", "general_model.pt",
                 "medical_model.pt"):
        Path(name).write_bytes(name.encode())
    namespace: dict[str, Any] = {
        "model": FakeModel(1), "improved_model": FakeModel(2),
        "test_data": [], "evaluate_model": lambda model, data: 0.93,
        "train_model": lambda: (FakeModel(3), {"accuracy": 0.91, "f1_score": 0.88}),
        "deploy_to_production": lambda model, config: None,
    }
    for section in sections():
        if "model_registry" in namespace:
            # each section is a separate program: it opens the registry afresh (step 1)
            namespace["model_registry"] = Dataset(tmp_path / "registry", "sentiment_classifier")
        for code in section:
            run_snippet(code, namespace, tmp_path)
    registry = namespace["model_registry"]
    assert [c.message for c in namespace["production_models"]] == [
        "Improved model with better regularization"]
    assert [c.message for c in registry.find_commits(tags=["production"])] == [
        "Release v2.1 to production", "Improved model with better regularization"]
    assert namespace["comparison"]["metadata_diff"]["changed"]["accuracy"] == {
        "old": 0.87, "new": 0.92}
    assert [c.short_hash for c in namespace["ab_models"]] == [
        c.short_hash for c in registry.find_commits(tags=["model-b"])
    ] + [c.short_hash for c in registry.find_commits(tags=["model-a"])]


def test_example_script_prints_a_readable_history(tmp_path: Path) -> None:
    """examples/model_versioning.py runs as the README says and prints the history."""
    result = subprocess.run([sys.executable, str(REPO / "examples" / "model_versioning.py"),
                             "--root", str(tmp_path / "registry")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "History of 'sentiment_classifier' (newest first):" in result.stdout
    assert "[production, v2.1]  Release v2.1 to production" in result.stdout
    assert "loaded weights (4096 bytes, verified)" in result.stdout
    assert "Promotion refused, nothing written" in result.stdout
    assert "rule=promotion.production.when path=validated value=None" in result.stdout
