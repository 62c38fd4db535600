"""Benchmark: one parsed query evaluated over 100,000 model-card metadata dicts.

The target (issue 3) is under 0.3 s per query, parse included. Each query is
also run as the equivalent hand-written Python lambda over the same dicts, in
the same process, so the ratio (ours / lambda) says how much the safe
language costs over plain Python, independent of the machine.

Run: ``python benchmarks/bench_query.py [--count N] [--repeat R]``
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from kirin.policy.expr import compile_query, parse

TARGET_SECONDS = 0.3

Metadata = dict[str, Any]

#: (expression, equivalent lambda). The lambdas are what a careful person
#: would write: they tolerate the fields the data generator leaves out.
QUERIES: list[tuple[str, Callable[[Metadata], bool]]] = [
    (
        "accuracy > 0.9 and framework == 'pytorch'",
        lambda m: m.get("accuracy", 0) > 0.9 and m.get("framework") == "pytorch",
    ),
    (
        "hyperparameters.learning_rate <= 0.001 and hyperparameters.batch_size in [32, 64]",
        lambda m: (m["hyperparameters"]["learning_rate"] <= 0.001
                   and m["hyperparameters"]["batch_size"] in (32, 64)),
    ),
    (
        "'production' in tags or (validated == true and not (model_size_mb > 500))",
        lambda m: "production" in m["tags"] or (
            m.get("validated") is True and not m["model_size_mb"] > 500),
    ),
    (
        "exists(f1_score) and f1_score >= 0.85 and domain not in ['vision', 'audio']",
        lambda m: ("f1_score" in m and m["f1_score"] >= 0.85
                   and m["domain"] not in ("vision", "audio")),
    ),
]


def make_metadata(count: int, seed: int = 1) -> list[Metadata]:
    """Realistic model cards: ~12 keys, nested hyperparameters, some keys absent."""
    rng = random.Random(seed)
    frameworks = ["pytorch", "tensorflow", "jax", "sklearn", "xgboost"]
    domains = ["vision", "nlp", "audio", "tabular", "recommendation"]
    stages = ["dev", "staging", "production", "experiment", "baseline"]
    cards = []
    for i in range(count):
        card: Metadata = {
            "framework": rng.choice(frameworks),
            "version": f"{rng.randint(1, 4)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
            "accuracy": round(rng.uniform(0.6, 0.99), 4),
            "precision": round(rng.uniform(0.5, 0.99), 4),
            "recall": round(rng.uniform(0.5, 0.99), 4),
            "hyperparameters": {
                "learning_rate": rng.choice([1e-2, 3e-3, 1e-3, 3e-4, 1e-4]),
                "batch_size": rng.choice([16, 32, 64, 128]),
                "epochs": rng.randint(5, 200),
                "optimizer": rng.choice(["adam", "sgd", "adamw"]),
            },
            "training_data": f"s3://datasets/run-{i % 977}/train.parquet",
            "training_time_seconds": rng.randint(60, 86_400),
            "model_size_mb": round(rng.uniform(1, 2000), 1),
            "domain": rng.choice(domains),
            "tags": rng.sample(stages, rng.randint(0, 2)),
        }
        if rng.random() < 0.8:
            card["f1_score"] = round(rng.uniform(0.5, 0.99), 4)
        if rng.random() < 0.7:
            card["validated"] = rng.random() < 0.6
        cards.append(card)
    return cards


def time_ours(text: str, cards: list[Metadata]) -> tuple[float, int]:
    start = time.perf_counter()
    query = compile_query(parse(text))
    matched = sum(1 for card in cards if query(card))
    return time.perf_counter() - start, matched


def time_lambda(fn: Callable[[Metadata], bool], cards: list[Metadata]) -> tuple[float, int]:
    start = time.perf_counter()
    matched = sum(1 for card in cards if fn(card))
    return time.perf_counter() - start, matched


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    cards = make_metadata(args.count)
    print(f"{args.count:,} metadata dicts, median of {args.repeat} runs, "
          f"target < {TARGET_SECONDS} s per query (parse + evaluate all)\n")
    print(f"{'ours (s)':>9} {'lambda (s)':>10} {'ratio':>6} {'matches':>8}  verdict  query")
    failed = False
    for text, fn in QUERIES:
        ours, theirs, matches = [], [], set()
        for _ in range(args.repeat):
            seconds, n_ours = time_ours(text, cards)
            ours.append(seconds)
            seconds, n_lambda = time_lambda(fn, cards)
            theirs.append(seconds)
            matches.update({n_ours, n_lambda})
        ours_median, lambda_median = statistics.median(ours), statistics.median(theirs)
        passed = ours_median < TARGET_SECONDS
        failed |= not passed
        agree = f"{matches.pop():>8}" if len(matches) == 1 else " MISMATCH"
        print(f"{ours_median:9.4f} {lambda_median:10.4f} {ours_median / lambda_median:6.2f} "
              f"{agree}  {'PASS' if passed else 'FAIL':7}  {text}")
    print(f"\noverall: {'FAIL' if failed else 'PASS'} (every query under "
          f"{TARGET_SECONDS} s for {args.count:,} dicts)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
