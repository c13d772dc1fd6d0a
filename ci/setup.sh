#!/usr/bin/env bash
# Installs, only when missing, every Debian package segda's build, tests and demo need.
set -euo pipefail
PACKAGES=(
  cmake make gcc pkg-config git
  ocl-icd-opencl-dev opencl-headers pocl-opencl-icd libclblast-dev clinfo
  libvulkan-dev mesa-vulkan-drivers glslang-tools vulkan-tools
  libopenblas-dev libcmocka-dev libstb-dev libinih-dev
  libopenmpi-dev openmpi-bin
  python3 python3-torch python3-numpy python3-protobuf python3-matplotlib
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
