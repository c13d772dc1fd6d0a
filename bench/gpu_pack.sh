#!/usr/bin/env bash
# bench/gpu_pack.sh [BUILD_DIR] [DEST]
#
# Packs a segda build for a bare GPU machine (one with a GPU driver and PyTorch, but no
# OpenCL ICD loader, CLBlast, Vulkan loader or OpenBLAS, and no package registry): into DEST
# (default .gpu/ in the project root, ignored by git) go
#   runtime.tar.gz  BUILD_DIR/segda and every shared library it loads, as this machine
#                   resolves them (ldd): lib/ (CLBlast, the OpenCL ICD loader, the Vulkan
#                   loader, OpenBLAS, inih, MPI, ...), late/ (libstdc++, libgcc_s: used only
#                   where the host has none) and glibc/ (libc, libm, ... and the dynamic
#                   loader: used only where the host's glibc is too old for the build)
#   enter.sh        sourced there (bench/gpu_enter.sh): unpacks into /tmp, points the OpenCL
#                   ICD loader and the Vulkan loader at the host's GPU drivers, and picks how
#                   segda starts (host glibc, or the carried one)
#   bin/segda       the carried segda (bench/gpu_segda.sh); it sources enter.sh itself when
#                   that was not done
# Nothing is downloaded: the libraries are this machine's installed ones. Carry DEST (the
# working tree travels anyway) and run, there:
#   source .gpu/enter.sh; bench/gpu_check.sh "$OUT"
# Self-test here (the carried loader and libraries with this machine's PoCL and lavapipe):
#   SEGDA_GPU_MODE=loader .gpu/bin/segda devices
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-$root/build}
dest=${2:-$root/.gpu}
bin=$build/segda
[ -x "$bin" ] || { echo "gpu_pack.sh: no $bin: build first (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build)" >&2; exit 1; }
command -v ldd > /dev/null || { echo "gpu_pack.sh: needs ldd" >&2; exit 1; }

stage=$(mktemp -d "${TMPDIR:-/tmp}/segda-gpu-pack.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib" "$stage/late" "$stage/glibc" "$stage/bin"
cp "$bin" "$stage/bin/segda.real"

is_glibc() {
  case "$1" in
    libc.so.* | libm.so.* | libmvec.so.* | libpthread.so.* | libdl.so.* | librt.so.* | libresolv.so.* | \
      libutil.so.* | libanl.so.* | ld-linux*.so.*) return 0 ;;
  esac
  return 1
}

# every library the binary loads, by soname, from where this machine resolves it
libc_dir=""
n=0
while read -r soname arrow path _; do
  if [ "$arrow" != "=>" ] || [ ! -e "$path" ]; then
    case "$soname" in
      /*ld-linux*) cp -L "$soname" "$stage/glibc/$(basename "$soname")" ;;
      linux-vdso* | "") ;;
      *)
        if [ "$arrow" = "=>" ]; then
          echo "gpu_pack.sh: $soname is not found here: $arrow $path" >&2
          exit 1
        fi
        ;;
    esac
    continue
  fi
  if is_glibc "$soname"; then
    cp -L "$path" "$stage/glibc/$soname"
    if [ "$soname" = libc.so.6 ]; then libc_dir=$(dirname "$(readlink -f "$path")"); fi
  else
    case "$soname" in
      libstdc++.so.* | libgcc_s.so.*) cp -L "$path" "$stage/late/$soname" ;;
      *) cp -L "$path" "$stage/lib/$soname" ;;
    esac
  fi
  n=$((n + 1))
done < <(ldd "$bin")
# the rest of glibc, for GPU drivers that link libpthread, libdl, librt... (carried-loader mode)
if [ -n "$libc_dir" ]; then
  for s in libm.so.6 libmvec.so.1 libpthread.so.0 libdl.so.2 librt.so.1 libresolv.so.2 libutil.so.1 libanl.so.1; do
    if [ -e "$libc_dir/$s" ] && [ ! -e "$stage/glibc/$s" ]; then cp -L "$libc_dir/$s" "$stage/glibc/$s"; fi
  done
fi
glibc_need=$( (objdump -T "$bin" "$stage"/lib/* "$stage"/late/* 2> /dev/null || true) |
  grep -o 'GLIBC_2\.[0-9]*' | sort -u -t. -k2,2n | tail -n 1)
{
  echo "built: $(date -u +%FT%TZ) on $(uname -srm), $(ldd --version 2> /dev/null | head -n 1)"
  echo "segda: $(git -C "$root" rev-parse --short HEAD 2> /dev/null || echo unknown) $(sha256sum "$bin" | cut -c1-16)"
  echo "needs: ${glibc_need:-GLIBC_2.?} (the host's, or the carried one)"
  (cd "$stage" && find lib late glibc -type f | sort)
} > "$stage/MANIFEST"

mkdir -p "$dest/bin"
rm -f "$dest/runtime.tar.gz" "$dest/enter.sh" "$dest/bin/segda" "$dest/MANIFEST"
tar -czf "$dest/runtime.tar.gz.tmp" -C "$stage" bin lib late glibc MANIFEST
mv "$dest/runtime.tar.gz.tmp" "$dest/runtime.tar.gz"
cp "$stage/MANIFEST" "$dest/MANIFEST"
cp "$here/gpu_enter.sh" "$dest/enter.sh"
cp "$here/gpu_segda.sh" "$dest/bin/segda"
chmod +x "$dest/bin/segda"
if [ "$dest" = "$root/.gpu" ] && ! grep -qx '/.gpu/' "$root/.gitignore" 2> /dev/null &&
  ! grep -qx '.gpu/' "$root/.gitignore" 2> /dev/null; then
  echo "gpu_pack.sh: note: .gpu/ is not in .gitignore" >&2
fi
echo "gpu_pack.sh: $n libraries + segda, needs ${glibc_need:-?}: $(du -sh "$dest" | cut -f1) in $dest"
echo "ready: carry [\"${dest#"$root"/}\"] and start the command with: source ${dest#"$root"/}/enter.sh;"
