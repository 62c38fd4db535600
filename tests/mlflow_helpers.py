"""A real MLflow registry for the import tests: SQLite store, artifacts in a local folder.

Built through ``MlflowClient`` alone (no global tracking URI, no active run), so
nothing leaks between tests. ``build_mlflow`` imports mlflow: call it from a
test or fixture only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL = "churn-model"

#: Each version's run: its params, metrics, tags and artifact files.
VERSIONS: dict[int, dict[str, Any]] = {
    1: {"params": {"lr": "0.1", "epochs": "10"}, "metrics": {"accuracy": 0.85, "loss": 0.4},
        "tags": {"team": "growth"},
        "files": {"model.bin": b"weights-1" * 100, "conf/config.json": b'{"depth": 3}'}},
    2: {"params": {"lr": "0.05", "epochs": "20"}, "metrics": {"accuracy": 0.93, "loss": 0.2},
        "tags": {"team": "growth"},
        "files": {"model.bin": b"weights-2" * 100}},
    3: {"params": {"lr": "0.01", "epochs": "30"}, "metrics": {"accuracy": 0.95, "loss": 0.1},
        "tags": {"team": "growth"},
        "files": {"model.bin": b"weights-3" * 100, "conf/config.json": b'{"depth": 5}'}},
}
#: Aliases and stages set on the versions (the stage through the deprecated API).
ALIASES = {2: ["champion"]}
STAGES = {3: "Production"}


@dataclass(frozen=True)
class MlflowRegistry:
    uri: str
    folder: Path
    runs: dict[int, str]

    def artifact_folder(self, version: int) -> Path:
        """Where version ``version``'s artifacts are stored."""
        return self.folder / "artifacts" / self.runs[version] / "artifacts" / "model"


def build_mlflow(folder: Path) -> MlflowRegistry:
    """Three runs, each registered as a version of :data:`MODEL`."""
    import warnings

    from mlflow import MlflowClient

    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("import-test",
                                          artifact_location=str(folder / "artifacts"))
    client.create_registered_model(MODEL)
    runs: dict[int, str] = {}
    for number, spec in VERSIONS.items():
        run = client.create_run(experiment)
        run_id = run.info.run_id
        for key, value in spec["params"].items():
            client.log_param(run_id, key, value)
        for key, value in spec["metrics"].items():
            client.log_metric(run_id, key, value)
        for key, value in spec["tags"].items():
            client.set_tag(run_id, key, value)
        staging = folder / "staging" / str(number) / "model"
        for name, content in spec["files"].items():
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        client.log_artifacts(run_id, str(staging), artifact_path="model")
        client.set_terminated(run_id)
        created = client.create_model_version(MODEL, f"runs:/{run_id}/model", run_id)
        assert int(created.version) == number
        runs[number] = run_id
    for number, aliases in ALIASES.items():
        for alias in aliases:
            client.set_registered_model_alias(MODEL, alias, str(number))
    for number, stage in STAGES.items():
        with warnings.catch_warnings():  # stages are deprecated in MLflow, still in use
            warnings.simplefilter("ignore", FutureWarning)
            client.transition_model_version_stage(MODEL, str(number), stage)
    return MlflowRegistry(uri, folder, runs)
