#!/usr/bin/env bash
# Set-up, configure, build and run every test. OpenCL (PoCL) and Vulkan (lavapipe) tests
# must run: SEGDA_REQUIRE turns a missing device into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
start=$(date +%s)
export SEGDA_REQUIRE=${SEGDA_REQUIRE:-opencl,vulkan}
# Kernel and pipeline caches on disk keep reruns fast.
export POCL_CACHE_DIR=${POCL_CACHE_DIR:-$PWD/build/.cache/pocl}
export SEGDA_CACHE_DIR=${SEGDA_CACHE_DIR:-$PWD/build/.cache/segda}
mkdir -p "$POCL_CACHE_DIR" "$SEGDA_CACHE_DIR"
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSEGDA_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
# The cpu tests also run under AddressSanitizer and UBSan.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSEGDA_WERROR=ON -DSEGDA_SANITIZE=ON \
      -DSEGDA_OPENCL=OFF -DSEGDA_VULKAN=OFF -DSEGDA_MPI=OFF >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ctest --output-on-failure -L cpu)
(cd build && ctest --output-on-failure)
echo "ci/test.sh: wall time $(( $(date +%s) - start )) s"
