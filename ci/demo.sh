#!/usr/bin/env bash
# Set-up, build, and run the demo: the synthetic domain-shift benchmark end to end on the
# best device found (source-only, AdaptSegNet from it, and a target-trained oracle).
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
./build/segda devices
exec ./build/segda demo --dir demo --json demo/demo.json "$@"
