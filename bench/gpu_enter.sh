# shellcheck shell=bash
# .gpu/enter.sh (bench/gpu_enter.sh, copied by bench/gpu_pack.sh). Sourced, not run, on the
# GPU machine:  source .gpu/enter.sh; bench/gpu_check.sh "$OUT"
# - unpacks .gpu/runtime.tar.gz into /tmp (once per pack; never into /);
# - OpenCL: an ICD directory with the host's /etc/OpenCL/vendors files plus an ICD for
#   every GPU OpenCL driver found (NVIDIA libnvidia-opencl, AMD ROCm libamdocl64), for the
#   carried ICD loader (OCL_ICD_VENDORS);
# - Vulkan: the host's manifests in the standard directories are found by the carried
#   loader itself; a manifest in /usr/local/nvidia (NVIDIA container layouts), or one
#   written for a libGLX_nvidia found without any manifest, is added (VK_ADD_DRIVER_FILES);
# - picks how the carried segda starts (SEGDA_GPU_MODE, unless set): "host" (the host's
#   glibc and libstdc++), "bundled" (the carried libstdc++ first) or "loader" (the carried
#   glibc and dynamic loader: hosts with an older glibc than the build's);
# - exports SEGDA_GPU_ROOT, SEGDA_BIN and puts .gpu/bin first in PATH. LD_LIBRARY_PATH is
#   left alone: only segda gets the carried libraries, so PyTorch keeps its own.
_segda_gpu_first() { # the first argument that exists
  local f
  for f in "$@"; do
    if [ -e "$f" ]; then
      printf '%s\n' "$f"
      return 0
    fi
  done
  return 0
}
_segda_gpu_enter() {
  local g r sum tmp f lib icd vend vk found
  g=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  if [ ! -f "$g/runtime.tar.gz" ]; then
    echo "enter.sh: no $g/runtime.tar.gz: run bench/gpu_pack.sh on the build machine" >&2
    return 1
  fi
  sum=$(cksum < "$g/runtime.tar.gz" | cut -d' ' -f1)
  r=${TMPDIR:-/tmp}/segda-gpu-$(id -u)-$sum
  if [ ! -x "$r/bin/segda.real" ]; then
    tmp=$r.tmp.$$
    rm -rf "$tmp"
    mkdir -p "$tmp"
    if ! tar -xzf "$g/runtime.tar.gz" -C "$tmp" 2> /dev/null; then
      python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
        "$g/runtime.tar.gz" "$tmp" || { echo "enter.sh: cannot unpack $g/runtime.tar.gz" >&2; return 1; }
    fi
    rm -rf "$r"
    mv "$tmp" "$r"
  fi
  export SEGDA_GPU_ROOT=$r SEGDA_BIN=$g/bin/segda
  case ":$PATH:" in *":$g/bin:"*) ;; *) export PATH="$g/bin:$PATH" ;; esac

  # OpenCL ICDs
  vend=$r/vendors
  rm -rf "$vend"
  mkdir -p "$vend"
  for f in /etc/OpenCL/vendors/*.icd; do
    [ -e "$f" ] && cp "$f" "$vend/"
  done
  found=""
  for lib in libnvidia-opencl.so.1 libamdocl64.so; do
    f=$( (ldconfig -p 2> /dev/null || true) | awk -v l="$lib" '$1 == l { print $NF; exit }')
    if [ -z "$f" ]; then
      f=$(_segda_gpu_first /usr/local/nvidia/lib64/"$lib" /usr/local/nvidia/lib/"$lib" /usr/lib/x86_64-linux-gnu/"$lib" \
        /usr/lib64/"$lib" /opt/rocm/lib/"$lib" /opt/rocm/opencl/lib/"$lib" /opt/rocm*/lib/"$lib")
    fi
    if [ -n "$f" ] && ! grep -qs "$lib" "$vend"/*.icd; then
      echo "$f" > "$vend/segda-${lib%%.so*}.icd"
    fi
  done
  for icd in "$vend"/*.icd; do
    [ -e "$icd" ] && found="$found $(head -n 1 "$icd")"
  done
  if [ -n "$found" ]; then
    export OCL_ICD_VENDORS=$vend
    echo "enter.sh: OpenCL drivers:$found"
  else
    echo "enter.sh: no OpenCL driver found (no /etc/OpenCL/vendors, libnvidia-opencl or libamdocl64): OpenCL has no device here"
  fi

  # Vulkan manifests
  vk=""
  for f in /usr/local/nvidia/share/vulkan/icd.d/*.json /usr/local/nvidia/etc/vulkan/icd.d/*.json; do
    [ -e "$f" ] && vk="${vk:+$vk:}$f"
  done
  found=""
  for f in /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json /usr/local/share/vulkan/icd.d/*.json; do
    [ -e "$f" ] && found="$found$f "
  done
  if [ -z "$vk" ] && ! printf '%s' "$found" | grep -q nvidia; then
    f=$( (ldconfig -p 2> /dev/null || true) | awk '$1 == "libGLX_nvidia.so.0" { print $NF; exit }')
    [ -n "$f" ] || f=$(_segda_gpu_first /usr/local/nvidia/lib64/libGLX_nvidia.so.0 \
      /usr/lib/x86_64-linux-gnu/libGLX_nvidia.so.0 /usr/lib64/libGLX_nvidia.so.0)
    if [ -n "$f" ]; then
      mkdir -p "$r/icd.d"
      printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "%s", "api_version": "1.3.0"}}\n' "$f" \
        > "$r/icd.d/segda_nvidia_icd.json"
      vk=$r/icd.d/segda_nvidia_icd.json
    fi
  fi
  if [ -n "$vk" ]; then
    export VK_ADD_DRIVER_FILES=$vk
  fi
  if [ -n "$vk$found" ]; then
    echo "enter.sh: Vulkan manifests: $found${vk//:/ }"
  else
    echo "enter.sh: no Vulkan driver manifest found: Vulkan has no device here"
  fi

  # how segda starts: the first mode in which it loads
  if [ -z "${SEGDA_GPU_MODE:-}" ]; then
    for f in host bundled loader; do
      if SEGDA_GPU_MODE=$f "$g/bin/segda" --help > /dev/null 2>&1; then
        export SEGDA_GPU_MODE=$f
        break
      fi
    done
  else
    export SEGDA_GPU_MODE
  fi
  if [ -z "${SEGDA_GPU_MODE:-}" ]; then
    echo "enter.sh: the carried segda does not start in any mode; with the host's glibc:" >&2
    SEGDA_GPU_MODE=host "$g/bin/segda" --help 2>&1 | head -n 3 >&2
    return 1
  fi
  echo "enter.sh: segda starts in mode $SEGDA_GPU_MODE ($(grep '^needs:' "$r/MANIFEST" 2> /dev/null | cut -d' ' -f2-); host $(ldd --version 2> /dev/null | head -n 1 | awk '{print $NF}'))"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2> /dev/null || true
  return 0
}
_segda_gpu_enter
unset -f _segda_gpu_enter _segda_gpu_first
