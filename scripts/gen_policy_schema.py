"""Regenerate the JSON Schemas that ship with Kirin from their single sources.

* ``schemas/registry-policy.schema.json`` from the pydantic models of
  :mod:`kirin.policy.model` (so editors check policy files against exactly
  what the loader accepts);
* ``examples/policy/schemas/model-card.schema.json`` as a copy of
  ``schemas/model-card.schema.json`` (a policy may only reference schema files
  inside its own folder, so the example carries its own copy).

``--check`` writes nothing and exits 1 if a file is out of date (for CI);
``tests/policy/test_schema_files.py`` runs the same check.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kirin.policy import policy_json_schema

ROOT = Path(__file__).resolve().parent.parent
POLICY_SCHEMA = ROOT / "schemas" / "registry-policy.schema.json"
MODEL_CARD = ROOT / "schemas" / "model-card.schema.json"
EXAMPLE_MODEL_CARD = ROOT / "examples" / "policy" / "schemas" / "model-card.schema.json"


def render_policy_schema() -> str:
    """The exact text ``schemas/registry-policy.schema.json`` must hold."""
    return json.dumps(policy_json_schema(), indent=2, ensure_ascii=False) + "\n"


def expected_files() -> dict[Path, str]:
    """Every generated file and the text it must hold."""
    return {
        POLICY_SCHEMA: render_policy_schema(),
        EXAMPLE_MODEL_CARD: MODEL_CARD.read_text(encoding="utf-8"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a generated file is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in expected_files().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        verb = "is out of date" if args.check else "written"
        print(f"{path.relative_to(ROOT)}: {verb}", file=sys.stderr)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
