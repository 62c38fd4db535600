"""The model-versioning workflow of the user guide, end to end.

    python examples/model_versioning.py                 # a fresh local registry
    python examples/model_versioning.py --root s3://bucket/models   # any fsspec URL

baseline -> improved model -> dev / staging / production promotion (under the
team policy in examples/policy/, which first rejects a promotion and says why)
-> find by tags and metrics -> compare -> checkout an old version and load it.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

from kirin import Catalog, Dataset
from kirin.errors import PolicyViolationError

POLICY = Path(__file__).resolve().parent / "policy" / "team-policy.yaml"


def train(path: Path, seed: int, size: int = 4096) -> None:
    """Stand-in for training: write a reproducible 'weights' file."""
    rng = random.Random(seed)
    path.write_bytes(bytes(rng.randrange(256) for _ in range(size)))


def show_history(registry: Dataset) -> None:
    print(f"\nHistory of {registry.name!r} (newest first):")
    for commit in registry.history():
        tags = ", ".join(commit.tags) or "-"
        accuracy = commit.metadata.get("accuracy", "-")
        print(f"  {commit.short_hash}  {commit.timestamp:%Y-%m-%d %H:%M:%S}  "
              f"acc={accuracy:<5}  [{tags}]  {commit.message}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="registry root: a folder or fsspec URL "
                        "(default: a new temporary folder)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kirin-example-"))
    root = args.root or str(work / "registry")
    print(f"Registry root: {root}")

    # 1. Initialize a model registry, governed by the team's policy
    Catalog(root_dir=root).create_dataset(
        "sentiment_classifier", description="Customer-review sentiment models",
        policy=POLICY)
    model_registry = Dataset(root_dir=root, name="sentiment_classifier")
    assert model_registry.policy is not None
    print(f"Policy {model_registry.policy.hash[:12]} from {POLICY.name}")

    # 2. Save the first model
    train(work / "model_weights.pt", seed=1)
    (work / "config.json").write_text(json.dumps({"hidden": 128, "layers": 2}))
    baseline = model_registry.commit(
        message="Initial baseline model - BERT fine-tuned on customer reviews",
        add_files=[work / "model_weights.pt", work / "config.json"],
        metadata={
            "framework": "pytorch", "accuracy": 0.87, "f1_score": 0.85,
            "hyperparameters": {"learning_rate": 0.001, "epochs": 10, "batch_size": 32},
            "training_data": "sentiment_v1", "model_size_mb": 0.5,
        },
        tags=["baseline", "v1.0"],
    )
    print(f"Committed baseline {baseline[:8]}")

    # 3. Save an improved model
    train(work / "model_weights_v2.pt", seed=2)
    improved = model_registry.commit(
        message="Improved model v2.0 - Added regularization and more training data",
        add_files=[work / "model_weights_v2.pt"],
        metadata={
            "framework": "pytorch", "accuracy": 0.92, "f1_score": 0.90,
            "hyperparameters": {"learning_rate": 0.0005, "epochs": 15, "batch_size": 32,
                                "weight_decay": 0.01},
            "training_data": "sentiment_v2",
            "improvements": ["Better regularization", "More epochs"],
        },
        tags=["improved", "v2.0"],
    )
    print(f"Committed improved model {improved[:8]}")

    # 4. Staging pipeline: the same model file promoted through dev -> staging -> production
    train(work / "model.pt", seed=3)
    stage_metadata = {"accuracy": 0.93, "f1_score": 0.91, "framework": "pytorch"}
    model_registry.commit(message="Experimental model with new architecture",
                          add_files=[work / "model.pt"], metadata=stage_metadata,
                          tags=["dev", "experimental"])
    model_registry.commit(message="Promote experimental model to staging",
                          add_files=[work / "model.pt"], metadata=stage_metadata,
                          tags=["staging", "v2.1-beta"])
    try:  # the policy wants production models validated: this promotion is refused
        model_registry.commit(message="Release v2.1 to production",
                              add_files=[work / "model.pt"], metadata=stage_metadata,
                              tags=["production", "v2.1"])
    except PolicyViolationError as rejected:
        print(f"\nPromotion refused, nothing written:\n{rejected}")
        for violation in rejected.violations:
            print(f"  rule={violation.rule} path={violation.path} value={violation.value!r}")
    report = model_registry.validate(message="Release v2.1 to production",
                                     add_files=[work / "model.pt"],
                                     metadata={**stage_metadata, "validated": True},
                                     tags=["production", "v2.1"])
    print(f"Dry run after validation: {report}")
    production = model_registry.commit(message="Release v2.1 to production",
                                       add_files=[work / "model.pt"],
                                       metadata={**stage_metadata, "validated": True},
                                       tags=["production", "v2.1"])
    print(f"Promoted {production[:8]} to production")
    show_history(model_registry)

    # 5. Find models by tags and by metrics
    print("\nProduction models:",
          [c.short_hash for c in model_registry.find_commits(tags=["production"])])
    high = model_registry.find_commits(metadata_filter=lambda m: m.get("accuracy", 0) > 0.9)
    print("Models with accuracy > 0.9:", [c.short_hash for c in high])
    best = model_registry.find_commits(
        tags=["production"],
        metadata_filter=lambda m: m.get("accuracy", 0) > 0.9 and m.get("f1_score", 0) > 0.85)
    print("Production models with accuracy > 0.9 and f1 > 0.85:",
          [c.short_hash for c in best])
    query = "accuracy > 0.9 and framework == 'pytorch' and exists(f1_score)"
    print(f"Query {query!r}:",
          [c.short_hash for c in model_registry.find_commits(where=query)])

    # 6. Compare two versions (hash prefixes are enough)
    comparison = model_registry.compare_commits(baseline[:8], improved[:8])
    print("\nBaseline -> improved")
    print("  metadata changes:", comparison["metadata_diff"]["changed"])
    print("  by path:         ", sorted(comparison["metadata_diff_paths"]["changed"]))
    print("  tag changes:     ", comparison["tags_diff"])
    print("  file changes:    ", comparison["files_diff"])

    # 7. Checkout the baseline and load it
    model_registry.checkout(baseline[:8])
    current = model_registry.current_commit
    assert current is not None
    print(f"\nChecked out {current.short_hash}: {current.message}")
    print(f"  accuracy: {current.metadata['accuracy']}, tags: {list(current.tags)}")
    for filename in model_registry.list_files():
        print(f"  {filename}: {model_registry.get_file(filename).size} bytes")
    with model_registry.local_files() as files:
        weights = Path(files["model_weights.pt"]).read_bytes()
        config = json.loads(Path(files["config.json"]).read_text())
    assert weights == (work / "model_weights.pt").read_bytes()
    print(f"  loaded weights ({len(weights)} bytes, verified) with config {config}")
    model_registry.checkout()  # back to following the newest commit

    print(f"\nDatasets in the catalog: {Catalog(root_dir=root).datasets()}")


if __name__ == "__main__":
    main()
