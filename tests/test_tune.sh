#!/usr/bin/env bash
# segda tune --budget ends in time: a full tune of BACKEND's first device with a BUDGET-second
# budget must end within BUDGET + 10 s (plus its longest single candidate, which is not cut), say how long is left, and leave a tuning file only when
# it beat the defaults. 77 (skip) without such a device, unless SEGDA_REQUIRE names BACKEND.
# usage: test_tune.sh SEGDA WORKDIR BACKEND BUDGET
set -u
segda=$1 work=$2 backend=$3 budget=$4
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
dev=$("$segda" devices 2>/dev/null | awk -v b="$backend" '$1 ~ "^"b":" {print $1; exit}')
if [ -z "$dev" ]; then
  case ",${SEGDA_REQUIRE:-}," in
    *",$backend,"*) fail "backend $backend is required (SEGDA_REQUIRE) but has no device" ;;
  esac
  echo "SKIP: no $backend device"
  exit 77
fi
# one CPU thread for PoCL and lavapipe: the test costs about BUDGET seconds of CPU
export SEGDA_CACHE_DIR="$work/cache" POCL_MAX_PTHREAD_COUNT=1 POCL_CPU_MAX_CU_COUNT=1 LP_NUM_THREADS=1
start=$(date +%s.%N)
"$segda" tune --device "$dev" --budget "$budget" > "$work/tune.txt" 2>&1 || { cat "$work/tune.txt"; fail "tune"; }
wall=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)")
cat "$work/tune.txt"
echo "tune of $dev with a ${budget} s budget: ${wall} s"
# A candidate in progress is not interrupted (a CLBlast compile on a loaded PoCL can take
# half a minute; README), so the budget may be overrun by the longest single candidate.
longest=$(grep -o '([0-9.]* s)$' "$work/tune.txt" | tr -d '()s ' | sort -g | tail -1)
python3 -c "import sys; sys.exit(float(sys.argv[1]) > float(sys.argv[2]) + 10 + float(sys.argv[3]))" \
    "$wall" "$budget" "${longest:-0}" || fail "a ${budget} s budget took ${wall} s (longest candidate ${longest:-0} s)"
grep -q "about [0-9]* s left" "$work/tune.txt" || grep -q "budget:" "$work/tune.txt" || fail "no progress or budget line"
stored=$(find "$work/cache" -name 'tuned-*.txt' 2>/dev/null | wc -l)
if grep -q "stored in" "$work/tune.txt"; then [ "$stored" -eq 1 ] || fail "said stored, no file"; else [ "$stored" -eq 0 ] || fail "a file without a winner"; fi
echo "test_tune: ok"
