#!/usr/bin/env bash
# Set up Kirin on a fresh machine and run the model-versioning example on a local registry.
# Usage: bash scripts/example.sh [--root URL]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/python examples/model_versioning.py "$@"
