#!/usr/bin/env bash
# Install spatialclaw_ros (ROS-free core, sandbox layers, synthetic scenes, test tools) into a venv.
# Idempotent; a fresh Debian 12 / Ubuntu machine with Python 3.10+ and PyPI access is enough.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${SPATIALCLAW_VENV:-$root/.venv}

# System libraries: libseccomp for the kernel's seccomp filter, libusb for open3d.
missing=()
for lib in libseccomp.so.2 libusb-1.0.so.0; do
  ldconfig -p | grep -q "$lib" || missing+=("$lib")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq libseccomp2 libusb-1.0-0 >/dev/null
  else
    echo "install.sh: missing ${missing[*]}; install libseccomp2 and libusb-1.0-0 with your package manager" >&2
  fi
fi

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e "$root/ros2_ws/src/spatialclaw_ros[sandbox,scenes,test]"
echo "install.sh: spatialclaw_ros installed in $venv"
