#!/usr/bin/env bash
# bench/gpu_check.sh OUTDIR [--dry-run]
#
# The GPU check, one command: `segda devices`; `segda bench step` (source-only and
# adaptsegnet, DeepLab-v2 ResNet-101 at 1x3x512x1024) and `segda bench peak`, `gemm`, `conv`
# on every OpenCL and Vulkan device; the same step in PyTorch (fp32 with TF32 off, and under
# autocast fp16) and the same GEMMs and convs; every JSON and log under OUTDIR, then one
# markdown table of ratios (OUTDIR/table.md, also printed). Fits in about 7.5 minutes: each
# command gets a time limit out of one overall budget, and what does not fit is skipped.
#
# On the GPU machine: `source .gpu/enter.sh; bench/gpu_check.sh $OUT` (bench/gpu_pack.sh
# builds .gpu/ here). A missing device or backend is reported and the others go on; the
# exit status is non-zero only when no segda measurement ran at all, or when a backend
# named in SEGDA_REQUIRE (e.g. opencl,vulkan) has no step or kernel record.
#
# --dry-run (or SEGDA_GPU_CHECK_TINY=1): tiny shapes (deeplabv2_tiny at 33x33, one GEMM, one
# conv), one timed run each, PyTorch on the CPU when there is no CUDA: the whole script in
# about a minute on PoCL and lavapipe.
#
# Environment: SEGDA_BIN (default .gpu/bin/segda, else build/segda), SEGDA_PYTHON (a python
# with torch; default: the first of python3, /usr/bin/python3 that imports it),
# SEGDA_GPU_CHECK_SECONDS (overall budget; default 450, dry run 900),
# SEGDA_GPU_CHECK_DEVICES (e.g. "opencl:0.0 vulkan:0"; default: every OpenCL and Vulkan
# device `segda devices` lists), SEGDA_GPU_CHECK_METHODS (default "source_only adaptsegnet"),
# SEGDA_GPU_CHECK_SIZE (step input HxW), SEGDA_GPU_CHECK_FULL=1 (conv suite at 512x1024 too),
# SEGDA_REQUIRE.
set -euo pipefail

usage() { sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=""
tiny=${SEGDA_GPU_CHECK_TINY:-0}
for a in "$@"; do
  case "$a" in
    --dry-run | --tiny) tiny=1 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "gpu_check.sh: unknown option $a" >&2; usage >&2; exit 2 ;;
    *) [ -z "$out" ] || { echo "gpu_check.sh: one OUTDIR" >&2; exit 2; }; out=$a ;;
  esac
done
[ -n "$out" ] || { usage >&2; exit 2; }
mkdir -p "$out/logs"
out=$(cd "$out" && pwd)

start=$(date +%s)
if [ "$tiny" = 1 ]; then
  budget=${SEGDA_GPU_CHECK_SECONDS:-900}
  arch=deeplabv2_tiny size=${SEGDA_GPU_CHECK_SIZE:-33x33}
  step_opts=(--runs 1 --budget 0.01) micro_opts=(--runs 1 --budget 0.01)
  # one CPU thread: on a small shared CI machine, more threads spin against each other
  torch_step_opts=(--runs 2 --warmup 1 --budget 1 --threads 1)
  torch_ops_opts=(--runs 2 --warmup 1 --budget 0.2 --total 60 --threads 1)
  # name, suites, --filter: one small test each
  micro_jobs=("peak|peak|copy" "gemm|gemm|m=256 n=256 k=256" "conv|conv|layer1 x=[1,64,81,81] k=1 s=1 d=1 co=64")
  cap_torch_step=300 cap_step=240 cap_micro=180 cap_ops=90
else
  budget=${SEGDA_GPU_CHECK_SECONDS:-450}
  arch=deeplabv2_resnet101 size=${SEGDA_GPU_CHECK_SIZE:-512x1024}
  step_opts=(--runs 5 --budget 10) micro_opts=(--runs 5 --budget 1)
  torch_step_opts=(--runs 10 --warmup 3 --budget 10) torch_ops_opts=(--runs 10 --warmup 2 --budget 0.5 --total 60)
  micro_jobs=("peak|peak|" "gemm|gemm|" "conv|conv|")
  if [ "${SEGDA_GPU_CHECK_FULL:-0}" = 1 ]; then micro_opts+=(--full); fi
  cap_torch_step=120 cap_step=100 cap_micro=150 cap_ops=75
fi
deadline=$((start + budget))
read -r -a methods <<< "${SEGDA_GPU_CHECK_METHODS:-source_only adaptsegnet}"

say() { printf '[%4d s] %s\n' "$(($(date +%s) - start))" "$*"; }

# run_capped NAME CAP RESERVE CMD...: runs CMD with stdout and stderr in logs/NAME.log, for at
# most CAP seconds and never into the last RESERVE seconds of the budget. Returns its status
# (124: timed out, 125: skipped for lack of time).
run_capped() {
  local name=$1 cap=$2 reserve=$3 t rc=0
  shift 3
  t=$((deadline - reserve - $(date +%s)))
  [ "$t" -le "$cap" ] || t=$cap
  if [ "$t" -lt 10 ]; then
    say "$name: skipped, out of time (budget ${budget} s)"
    return 125
  fi
  timeout -k 10 "$t" "$@" > "$out/logs/$name.log" 2>&1 || rc=$?
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    say "$name: timed out after $t s (logs/$name.log)"
  elif [ "$rc" != 0 ]; then
    say "$name: failed (status $rc), last lines of logs/$name.log:"
    tail -n 5 "$out/logs/$name.log" | sed 's/^/    /'
  fi
  return "$rc"
}

# ---- what runs -------------------------------------------------------------------------------
segda=${SEGDA_BIN:-}
if [ -z "$segda" ]; then
  for c in "$root/.gpu/bin/segda" "$root/build/segda"; do
    if [ -x "$c" ]; then segda=$c; break; fi
  done
fi
py=""
for c in ${SEGDA_PYTHON:-python3 /usr/bin/python3 python}; do
  if command -v "$c" > /dev/null 2>&1 && "$c" -c 'import torch' > /dev/null 2>&1; then py=$c; break; fi
done
if [ -n "${SEGDA_PYTHON:-}" ] && [ -z "$py" ]; then
  echo "gpu_check.sh: SEGDA_PYTHON=$SEGDA_PYTHON cannot import torch" >&2
fi
stdpy=$py
[ -n "$stdpy" ] || stdpy=$(command -v python3 || command -v python || true)
[ -n "$stdpy" ] || { echo "gpu_check.sh: no python3 (needed for the table)" >&2; exit 1; }
helper=$root/bench/gpu_check.py

{
  echo "date: $(date -u +%FT%TZ)"
  echo "host: $(uname -srm)"
  echo "mode: $([ "$tiny" = 1 ] && echo dry-run || echo full), budget ${budget} s, step $arch 1x3x$size, methods ${methods[*]}"
  echo "segda: ${segda:-none}"
  echo "git: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [ -n "$py" ]; then
    echo "python: $py: $("$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tail -n 1)"
  else
    echo "python: none with torch"
  fi
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true
  rocm-smi --showproductname 2>/dev/null | grep -i 'card series' || true
} > "$out/env.txt"
sed 's/^/  /' "$out/env.txt"

# ---- devices -----------------------------------------------------------------------------------
devs=()
if [ -z "$segda" ]; then
  say "no segda binary (.gpu/bin/segda or build/segda; or set SEGDA_BIN): segda measurements skipped"
elif "$segda" devices > "$out/devices.txt" 2> "$out/logs/devices.log"; then
  cat "$out/devices.txt"
  sed 's/^/  note: /' "$out/logs/devices.log"
  if [ -n "${SEGDA_GPU_CHECK_DEVICES:-}" ]; then
    read -r -a devs <<< "$SEGDA_GPU_CHECK_DEVICES"
  else
    mapfile -t devs < <(awk 'NR > 1 && $1 ~ /^(opencl|vulkan)/ { print $1 }' "$out/devices.txt")
  fi
  for b in opencl vulkan; do
    grep -q "^$b" "$out/devices.txt" || say "no $b device listed: $b is skipped"
  done
else
  say "segda devices failed:"
  sed 's/^/    /' "$out/logs/devices.log"
fi
if [ "${#devs[@]}" -gt 0 ]; then say "devices to measure: ${devs[*]}"; fi

# ---- PyTorch step (first: cheap, and the reference for every device) ----------------------------
if [ -n "$py" ]; then
  say "PyTorch step: ${methods[*]} ($arch 1x3x$size, fp32 and autocast)"
  torch_methods=$(IFS=,; echo "${methods[*]}")
  if run_capped torch-step "$cap_torch_step" 60 "$py" "$helper" step --out "$out/torch-step.json" \
       --arch "$arch" --size "$size" --methods "$torch_methods" "${torch_step_opts[@]}"; then
    grep '^torch' "$out/logs/torch-step.log" | sed 's/^/    /' || true
  fi
else
  say "no python with torch: the PyTorch reference is skipped"
fi

# ---- segda: the step on every device, then the kernel suites ------------------------------------
file_of() { echo "${1/:/-}"; } # opencl:0.0 -> opencl-0.0 (file names without ':')
for m in "${methods[@]}"; do
  for d in "${devs[@]}"; do
    name="segda-$(file_of "$d")_step-$m"
    say "segda step $m on $d"
    if run_capped "$name" "$cap_step" 45 "$segda" bench step --device "$d" --step-arch "$arch" \
         --step-size "$size" --filter "$m" "${step_opts[@]}" --json "$out/$name.json"; then
      grep '^step' "$out/logs/$name.log" | sed 's/^/    /' || true
    fi
  done
done
for job in "${micro_jobs[@]}"; do
  IFS='|' read -r jname suites filter <<< "$job"
  for d in "${devs[@]}"; do
    name="segda-$(file_of "$d")_$jname"
    fopt=()
    [ -z "$filter" ] || fopt=(--filter "$filter")
    say "segda bench $suites on $d${filter:+ (--filter "$filter")}"
    # shellcheck disable=SC2086 # suites: one word a suite
    if run_capped "$name" "$cap_micro" 30 "$segda" bench $suites --device "$d" "${fopt[@]}" \
         "${micro_opts[@]}" --json "$out/$name.json"; then
      n=$(grep -c -E '^(peak|gemm|conv) ' "$out/logs/$name.log" || true)
      say "    $n records"
    fi
  done
done

# ---- PyTorch GEMMs and convs of the same shapes ---------------------------------------------------
shopt -s nullglob
micro_files=("$out"/segda-*_gemm.json "$out"/segda-*_conv.json)
shopt -u nullglob
if [ -n "$py" ] && [ "${#micro_files[@]}" -gt 0 ]; then
  say "PyTorch GEMMs and convs (the shapes segda measured)"
  run_capped torch-ops "$cap_ops" 5 "$py" "$helper" ops --out "$out/torch-ops.json" \
    "${torch_ops_opts[@]}" "${micro_files[@]}" || true
fi

# ---- the table ------------------------------------------------------------------------------------
say "table (also in table.md, table.json)"
echo
"$stdpy" "$helper" table "$out" --md "$out/table.md" --json "$out/table.json" || true
echo
rc=0
"$stdpy" - "$out" "${SEGDA_REQUIRE:-}" <<'EOF' || rc=$?
import glob, json, os, sys
out, req = sys.argv[1], [b for b in sys.argv[2].split(",") if b in ("opencl", "vulkan")]
seen = {}
for p in glob.glob(os.path.join(out, "segda-*.json")):
    try:
        recs = json.load(open(p)).get("records", [])
    except (OSError, ValueError):
        continue
    for r in recs:
        seen.setdefault(r.get("backend"), set()).add(r.get("suite"))
if not seen:
    print("gpu_check.sh: FAIL: no segda measurement ran")
    sys.exit(1)
bad = [b for b in req if not {"step"} <= seen.get(b, set()) or not seen.get(b, set()) - {"step"}]
for b in bad:
    print(f"gpu_check.sh: FAIL: {b} is required (SEGDA_REQUIRE) but has {sorted(seen.get(b, [])) or 'no'} records "
          "(needs step and kernel records)")
print("gpu_check.sh: segda records per backend: " +
      ", ".join(f"{b}: {' '.join(sorted(s))}" for b, s in sorted(seen.items())))
sys.exit(1 if bad else 0)
EOF
say "done: $out (status $rc)"
exit "$rc"
