#!/usr/bin/env bash
# Install spatialclaw_ros (ROS-free core, sandbox layers, synthetic scenes, test tools) into a venv.
# Idempotent; a fresh Debian 12 / Ubuntu machine with Python 3.10+ and PyPI access is enough.
# --with-models adds PyTorch 2.13, Depth Anything 3 (the `da3` reconstruction backend, and onnx + onnxruntime for
# its `da3-onnx` export) and SAM 3 (the `sam3` segmentation backend, and its `sam3-onnx` export). Where pip would
# fetch a CUDA build of torch and you want CPU only, point pip at PyTorch's CPU wheel index first.
# Containers (docker/Dockerfile.rtx, docker/Dockerfile.jetson) set: SPATIALCLAW_PYTHON (install into that interpreter,
# no venv), SPATIALCLAW_ONNXRUNTIME (onnxruntime-gpu for CUDA and TensorRT; never both), SPATIALCLAW_TORCH
# (the torch and torchvision requirements, or "preinstalled" to keep the image's own, e.g. JetPack's).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${SPATIALCLAW_VENV:-$root/.venv}
python=${SPATIALCLAW_PYTHON:-$venv/bin/python}
onnxruntime=${SPATIALCLAW_ONNXRUNTIME:-onnxruntime}
torch=${SPATIALCLAW_TORCH:-torch==2.13.0 torchvision==0.28.0}

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

if [ -z "${SPATIALCLAW_PYTHON:-}" ]; then  # a system Python keeps its distribution's pip
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$python" -m pip install -q --upgrade pip
fi
"$python" -m pip install -q -e "$root/ros2_ws/src/spatialclaw_ros[scenes,eval,test]"
if [ "${1:-}" = --with-models ]; then
  # torch first and pinned, so nothing below can pull a newer (CUDA) build; depth-anything-3 and sam3 without
  # their declared pins (numpy<2 and friends: both run on numpy 2), then what they really import
  # (scikit-image: SAM 3's mask post-processing fills small holes with it).
  pin=$(mktemp)
  if [ "$torch" = preinstalled ]; then
    "$python" -m pip freeze | grep -E '^(torch|torchvision)==' >"$pin"
  else
    read -ra torch_requirements <<<"$torch"
    printf '%s\n' "${torch_requirements[@]}" >"$pin"
    "$python" -m pip install -q -c "$pin" "${torch_requirements[0]}"
  fi
  # open_clip_torch only for the CLIP vocabulary file SAM 3's tokenizer reads (sam3 does not ship it).
  "$python" -m pip install -q --no-deps "depth-anything-3==0.1.1" "sam3==0.1.4" "open_clip_torch==3.3.0"
  "$python" -m pip install -q -c "$pin" huggingface_hub safetensors omegaconf addict einops \
    "moviepy==1.0.3" plyfile trimesh imageio pycolmap evo torchvision \
    timm ftfy regex iopath pycocotools psutil scikit-image onnx "$onnxruntime" onnxscript
  rm -f "$pin"
fi
echo "install.sh: spatialclaw_ros installed for $python"
