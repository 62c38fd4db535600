#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run it all.
# Usage: bash scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test,s3]'

lint_paths=()
for d in src tests benchmarks examples scripts; do [ -d "$d" ] && lint_paths+=("$d"); done
.venv/bin/ruff check "${lint_paths[@]}"
.venv/bin/python -m pytest "$@"
