#!/usr/bin/env bash
# Set-up, build, and run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
./build/segda devices
