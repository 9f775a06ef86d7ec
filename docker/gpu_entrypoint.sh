#!/usr/bin/env bash
# Entry point of the GPU images (docker/Dockerfile.rtx, docker/Dockerfile.jetson): source ROS 2 and the workspace,
# fill the TensorRT engine cache for the configured models (models/build_engines.py: a build on the first start with
# this GPU, TensorRT and export, a quick load after), then run the command (the node by default).
# SPATIALCLAW_SKIP_ENGINES=1 skips the pre-build (e.g. to run an export first).
set -eo pipefail
source "${ROS_SETUP:?}"
source /ws/install/setup.bash
if [ -f "${SPATIALCLAW_CONFIG:-}" ] && [ "${SPATIALCLAW_SKIP_ENGINES:-0}" != 1 ]; then
  python3 /src/models/build_engines.py --config "$SPATIALCLAW_CONFIG"
fi
exec "$@"
