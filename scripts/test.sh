#!/usr/bin/env bash
# Install what the tests need (idempotent) and run the whole test suite.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install.sh"
cd "$root"
exec "${SPATIALCLAW_VENV:-$root/.venv}/bin/python" -m pytest tests -q "$@"
