#!/usr/bin/env bash
# tests/test_gpu_check.sh BUILD_DIR OUTDIR: the GPU check's recipe end to end, here: packs
# BUILD_DIR with bench/gpu_pack.sh, then runs bench/gpu_check.sh --dry-run with the carried
# segda started through the carried glibc loader (SEGDA_GPU_MODE=loader, the mode for GPU
# hosts with an older glibc) on PoCL and lavapipe, PyTorch on the CPU. Fails if the script
# fails, the table is missing, or (SEGDA_REQUIRE=opencl,vulkan) a backend has no step row.
# Source-only alone: lavapipe's adaptsegnet step takes about a minute even at 33x33.
set -euo pipefail
build=$1 out=$2
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rm -rf "$out"
mkdir -p "$out/tmp"
export TMPDIR=$out/tmp # the pack unpacks here, not in /tmp
"$root/bench/gpu_pack.sh" "$build" "$out/pack"
fail() { echo "FAIL: $*" >&2; exit 1; }
rc=0
SEGDA_BIN=$out/pack/bin/segda SEGDA_GPU_MODE=loader SEGDA_GPU_CHECK_METHODS=source_only \
  "$root/bench/gpu_check.sh" "$out/check" --dry-run || rc=$?
[ "$rc" = 0 ] || fail "bench/gpu_check.sh exited with $rc"
table=$out/check/table.md
[ -s "$table" ] || fail "no table ($table)"
grep -q '^| device | suite | test |' "$table" || fail "the table has no header"
[ -s "$out/check/torch-step.json" ] || fail "no PyTorch step"
grep -Eq '\| step \| source_only \| [^|]* \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \|' "$table" ||
  fail "no step row with segda ms, PyTorch ms and their ratio"
IFS=, read -r -a req <<< "${SEGDA_REQUIRE:-}"
for b in "${req[@]}"; do
  case "$b" in opencl | vulkan) ;; *) continue ;; esac
  grep -q "^| $b:[^|]* | step | source_only |" "$table" || fail "$b is required but has no step row"
  grep -q "^| $b:[^|]* | conv | " "$table" || fail "$b is required but has no conv row"
done
rm -rf "$out/tmp" # the unpacked pack (about 50 MiB)
echo "test_gpu_check: ok ($(grep -c '^| [a-z]*:' "$table") rows)"
