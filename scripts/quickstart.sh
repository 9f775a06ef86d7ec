#!/usr/bin/env bash
# Install spatialclaw_ros into .venv and run the demo question end to end (no robot, GPU or model needed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install.sh"
exec "${SPATIALCLAW_VENV:-$root/.venv}/bin/spatialclaw" demo "$@"
