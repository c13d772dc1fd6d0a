#!/usr/bin/env bash
# `mpirun -np 2 segda train` end to end on the synthetic benchmark (cpu): the 2-rank run
# logs the 1-process run's losses (batch 2, trainable BN: synchronized BN), rank 0 alone
# writes the output folder, a 2-rank checkpoint resumes in 1 process and a 1-process
# checkpoint in 2 ranks, identically to the uninterrupted run, and a failing rank stops
# the job instead of leaving the other waiting.
# usage: test_dist_train.sh SEGDA WORKDIR MPIRUN
set -u
segda=$1 work=$2 mpirun=$3
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
mpi=("$mpirun" --oversubscribe -np 2)
"$segda" synth --out "$work/synth" --count 12 --seed 3 >/dev/null 2>&1 || fail "segda synth"
common=(--set method.name=adaptsegnet --set model.arch=deeplabv2_tiny --set model.bn=trainable
        --set data.source=gta5 --set "data.source_root=$work/synth/source" --set data.target=cityscapes
        --set "data.target_root=$work/synth/target" --set data.source_size=64x32
        --set data.target_size=64x32 --set data.eval_size=64x32 --set data.batch=2 --set solver.iterations=6
        --set train.eval_every=3 --set train.eval_max=4 --set train.save_every=3 --set train.log_every=1
        --set adaptsegnet.d_width=8 --set train.device=cpu --quiet)
"$segda" train "${common[@]}" --out "$work/one" >/dev/null 2>&1 || fail "1-process run"
"${mpi[@]}" "$segda" train "${common[@]}" --out "$work/two" >"$work/two.log" 2>&1 || { cat "$work/two.log"; fail "2-rank run"; }
# losses to 4 significant digits (summation order differs between 1 and 2 ranks)
losses() { grep '"loss"' "$1" | sed -e 's/"it_s": [^,]*,//' -e 's/"mem_mb": [^,]*,//' |
           python3 -c 'import sys,json
for l in sys.stdin:
    d=json.loads(l); print(d["iter"], " ".join("%s=%.4g" % kv for kv in sorted(d["loss"].items())))'; }
diff <(losses "$work/one/metrics.jsonl") <(losses "$work/two/metrics.jsonl") || fail "2 ranks do not log the 1-process losses"
evals() { grep -c '"eval"' "$1"; }
[ "$(evals "$work/two/metrics.jsonl")" = 2 ] || fail "2-rank run: expected 2 evaluations in metrics.jsonl"
[ "$(grep -c '"iter"' "$work/two/metrics.jsonl")" = 8 ] || fail "2-rank run: metrics.jsonl written by more than rank 0"
for f in last.safetensors final.safetensors best.safetensors config.ini; do
  [ -f "$work/two/$f" ] || fail "2-rank run: no $f"
done
# resume across rank counts: stop at 3 with 2 ranks, go on alone; and the other way round
"${mpi[@]}" "$segda" train "${common[@]}" --out "$work/a" --set solver.stop=3 >/dev/null 2>&1 || fail "2-rank first half"
"$segda" train "${common[@]}" --out "$work/a" --resume auto >/dev/null 2>&1 || fail "1-process second half"
"$segda" train "${common[@]}" --out "$work/b" --set solver.stop=3 >/dev/null 2>&1 || fail "1-process first half"
"${mpi[@]}" "$segda" train "${common[@]}" --out "$work/b" --resume auto >/dev/null 2>&1 || fail "2-rank second half"
for r in a b; do
  diff <(losses "$work/one/metrics.jsonl") <(losses "$work/$r/metrics.jsonl") || fail "resume ($r) differs from the uninterrupted run"
done
# pseudo labels over 2 ranks: the thresholds of the whole set (bit for bit) and the same PNGs
"$segda" pseudo-label --weights "$work/one/final.safetensors" --config "$work/one/config.ini" --device cpu \
    --out "$work/pl1" --report >"$work/pl1.txt" 2>/dev/null || fail "pseudo-label, 1 process"
"${mpi[@]}" "$segda" pseudo-label --weights "$work/one/final.safetensors" --config "$work/one/config.ini" --device cpu \
    --out "$work/pl2" --report >"$work/pl2.txt" 2>/dev/null || fail "pseudo-label, 2 ranks"
cmp -s "$work/pl1/thresholds.txt" "$work/pl2/thresholds.txt" || fail "pseudo-label thresholds differ over 2 ranks"
diff -r "$work/pl1" "$work/pl2" >/dev/null || fail "pseudo-label PNGs differ over 2 ranks"
diff "$work/pl1.txt" "$work/pl2.txt" || fail "pseudo-label report differs over 2 ranks"
[ "$(ls "$work/pl2"/*_conf.png | wc -l)" -eq 12 ] || fail "pseudo-label over 2 ranks: not every image labelled"
# the bench's scaling measurement runs (its figures are the bench's business, not a test's)
out=$("${mpi[@]}" "$segda" bench step --device cpu --step-arch deeplabv2_tiny --step-size 65 --runs 2 2>&1) ||
    fail "bench step under mpirun: $out"
grep -q "^# scaling: .* 1 rank .* 2 ranks .* speedup" <<<"$out" && grep -q "source_only 2 ranks" <<<"$out" ||
    fail "bench step under mpirun: no scaling line: $out"
# SIGTERM to mpirun (as Ctrl-C or a scheduler's stop): every rank stops, rank 0 saves a
# checkpoint that resumes
"${mpi[@]}" "$segda" train "${common[@]}" --out "$work/kill" --set solver.iterations=100000 --set train.eval_every=0 \
    >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 300); do [ -f "$work/kill/last.safetensors" ] && break; sleep 0.1; done
sleep 1
kill -TERM $pid
wait $pid
for _ in $(seq 1 50); do pgrep -f "$work/kill" >/dev/null || break; sleep 0.1; done
pgrep -f "$work/kill" >/dev/null && fail "ranks still running after SIGTERM to mpirun"
python3 - "$work/kill/last.safetensors" <<'PY' || fail "no readable checkpoint after SIGTERM"
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
meta = json.loads(b[8:8 + n])["__metadata__"]
assert int(meta["iteration"]) > 0, meta
PY
"$segda" train "${common[@]}" --out "$work/kill" --set solver.iterations=100000 --set train.eval_every=0 \
    --set solver.stop=1 --resume auto >/dev/null 2>&1 || fail "resume after SIGTERM"
# a batch that does not split over the ranks is refused by every rank, with the value named
out=$("${mpi[@]}" "$segda" train "${common[@]}" --out "$work/odd" --set data.batch=3 2>&1); rc=$?
[ $rc -ne 0 ] && grep -q "data.batch = 3" <<<"$out" || fail "odd batch: rc $rc: $out"
# one rank failing (its device does not exist) stops the job
out=$(timeout 120 "${mpi[@]}" "$segda" train "${common[@]}" --out "$work/bad" --set train.device=cpu,vulkan:99 2>&1); rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "stopping every rank" <<<"$out" || fail "failing rank: rc $rc: $out"
echo "mpirun -np 2 segda train: same losses as 1 process, rank 0 writes, resume across rank counts, failures stop the job; pseudo-label: same thresholds and labels"
