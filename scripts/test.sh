#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run it all.
# Usage: bash scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
fi
# The package is installed editable: only a change of pyproject.toml needs a reinstall.
stamp=.venv/.kirin-installed
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    .venv/bin/python -m pip install --quiet -e '.[test]'
    echo "$wanted" > "$stamp"
fi

# Azure Blob's emulator for the cloud tests (moto and fake-gcs-server come with '.[test]').
# Azurite 3.35 is the last release that runs on Node 20; installed once into .servers/.
AZURITE_VERSION=3.35.0
azurite_pkg=.servers/azurite/node_modules/azurite/package.json
if ! grep -q "\"version\": \"$AZURITE_VERSION\"" "$azurite_pkg" 2>/dev/null; then
    command -v npm >/dev/null || { echo "npm (Node.js >= 18) is needed for Azurite" >&2; exit 1; }
    npm install --prefix .servers/azurite --no-audit --no-fund --loglevel=error \
        "azurite@$AZURITE_VERSION"
fi

# Headless Chromium and its driver for the web view's browser tests (tests/ui), from the OS
# packages. If they cannot be installed, those tests fail in CI (CI=true) and skip elsewhere.
have_chromium() {
    command -v chromedriver >/dev/null &&
        { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; }
}
if ! have_chromium; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            chromium chromium-driver >/dev/null; } ||
            echo "warning: could not install chromium and chromium-driver" >&2
    else
        echo "warning: chromium and chromium-driver are missing (as root: apt-get install" \
            "chromium chromium-driver); the browser tests skip, or fail in CI" >&2
    fi
fi

lint_paths=()
for d in src tests benchmarks examples scripts; do [ -d "$d" ] && lint_paths+=("$d"); done
.venv/bin/ruff check "${lint_paths[@]}"
.venv/bin/mypy  # src, --strict with the pydantic plugin (pyproject.toml)
.venv/bin/mypy --config-file tests/mypy.ini tests  # the tests, at default strictness
# Three workers on two cores: the suite waits on servers and subprocesses much of the time
# (measured: 4 min 23 s with -n 3, 5 min 1 s with -n 2). Each worker starts its own servers
# (session fixtures); pass -n 0 to run in one process.
.venv/bin/python -m pytest -n 3 "$@"
