#!/usr/bin/env bash
# .gpu/bin/segda (bench/gpu_segda.sh, copied by bench/gpu_pack.sh): runs the carried segda
# with the carried libraries, in the mode .gpu/enter.sh picked (SEGDA_GPU_MODE):
#   host     the host's glibc; carried libraries first, libstdc++ / libgcc_s the host's if any
#   bundled  the host's glibc; every carried library first
#   loader   the carried glibc and dynamic loader (hosts whose glibc is older than the build's)
# The host's library directories stay on the path, for the GPU drivers the ICD loaders open.
set -euo pipefail
if [ -z "${SEGDA_GPU_ROOT:-}" ]; then # enter.sh not sourced: do it here, quietly
  set +euo pipefail
  # shellcheck source=bench/gpu_enter.sh
  source "$(dirname "${BASH_SOURCE[0]}")/../enter.sh" > /dev/null || exit 127
  set -euo pipefail
fi
r=$SEGDA_GPU_ROOT
host=/usr/local/nvidia/lib64:/usr/local/nvidia/lib:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib64:/usr/lib64
extra=${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
case "${SEGDA_GPU_MODE:-host}" in
  host) LD_LIBRARY_PATH="$r/lib:$host:$r/late$extra" exec "$r/bin/segda.real" "$@" ;;
  bundled) LD_LIBRARY_PATH="$r/lib:$r/late:$host$extra" exec "$r/bin/segda.real" "$@" ;;
  loader)
    for ld in "$r"/glibc/ld-linux*.so.*; do break; done
    exec "$ld" --library-path "$r/lib:$r/glibc:$host:$r/late$extra" "$r/bin/segda.real" "$@"
    ;;
  *) echo "segda (carried): SEGDA_GPU_MODE is host, bundled or loader, not '$SEGDA_GPU_MODE'" >&2; exit 2 ;;
esac
