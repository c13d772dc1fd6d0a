#!/usr/bin/env bash
# Resume continues exactly: a tiny AdaptSegNet run of 6 iterations, against the same run
# stopped after 3 (and one killed by SIGINT) and resumed: the logged losses of iterations
# 4..6 and the final checkpoints must be identical (likewise a BiDA run with a target stem
# and a spatial prior, and a run in solver.rounds stopped mid-round and on a round boundary). Also checks that a malformed config
# and a corrupt checkpoint fail with a clear message and the documented exit codes.
# usage: test_resume.sh SEGDA WORKDIR DEVICE
set -u
segda=$1 work=$2 dev=${3:-cpu}
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
"$segda" synth --out "$work/synth" --count 12 --seed 3 >/dev/null 2>&1 || fail "segda synth"
common=(--set method.name=adaptsegnet --set model.arch=deeplabv2_tiny --set data.source=gta5
        --set "data.source_root=$work/synth/source" --set data.target=cityscapes
        --set "data.target_root=$work/synth/target" --set data.source_size=64x32
        --set data.target_size=64x32 --set data.batch=2 --set solver.iterations=6
        --set train.eval_every=0 --set train.save_every=1 --set train.log_every=1
        --set adaptsegnet.d_width=8 --set train.device=$dev --quiet)
"$segda" train "${common[@]}" --out "$work/full" >/dev/null || fail "full run"
"$segda" train "${common[@]}" --out "$work/part" --set solver.stop=3 >/dev/null || fail "first half"
"$segda" train "${common[@]}" --out "$work/part" --resume auto >/dev/null || fail "resumed half"
strip() { grep '"loss"' "$1" | sed -e 's/"it_s": [^,]*,//' -e 's/"mem_mb": [^,]*,//'; }
diff <(strip "$work/full/metrics.jsonl") <(strip "$work/part/metrics.jsonl") || fail "losses differ after resume"
# ... and the final checkpoints (weights, BN statistics, optimizer state, RNG) are byte-identical
cmp -s "$work/full/last.safetensors" "$work/part/last.safetensors" || fail "checkpoints differ after resume"
# BiDA with the released code's target stem and CBST's spatial prior: its teacher, EMA
# prototypes, thresholds and prior counts travel in the checkpoint too.
bida=(--set method.name=bida --set model.target_stem=true --set bida.spatial_prior=true
      --set bida.prior_grid=16x8 --set bida.static_every=2)
"$segda" train "${common[@]}" "${bida[@]}" --out "$work/bida_full" >/dev/null || fail "bida full run"
"$segda" train "${common[@]}" "${bida[@]}" --out "$work/bida_part" --set solver.stop=3 >/dev/null || fail "bida first half"
"$segda" train "${common[@]}" "${bida[@]}" --out "$work/bida_part" --resume auto >/dev/null || fail "bida resumed half"
cmp -s "$work/bida_full/last.safetensors" "$work/bida_part/last.safetensors" || fail "bida checkpoints differ after resume"
# MIC: the mean teacher and the frozen ImageNet copy travel in the checkpoint, the host
# stream that draws the mixed classes, masks and augmentations with the RNG state; with a
# warm-up (solver.warmup_iters) and AdamW, whose moments resume too. Small rows and blocks,
# so that every part runs at 64x32, and a threshold low enough for confident pixels.
mic=(--set method.name=mic --set model.multi_level=false --set mic.ignore_top=2 --set mic.ignore_bottom=4
     --set mic.mask_block=8 --set mic.pseudo_threshold=0.1 --set solver.warmup_iters=3 --set solver.optimizer=adamw
     --set solver.lr=6e-5 --set solver.weight_decay=0.01)
mic+=(--set solver.iterations=4)
"$segda" train "${common[@]}" "${mic[@]}" --out "$work/mic_full" >/dev/null || fail "mic full run"
"$segda" train "${common[@]}" "${mic[@]}" --out "$work/mic_part" --set solver.stop=2 >/dev/null || fail "mic first half"
"$segda" train "${common[@]}" "${mic[@]}" --out "$work/mic_part" --resume auto >/dev/null || fail "mic resumed half"
diff <(strip "$work/mic_full/metrics.jsonl") <(strip "$work/mic_part/metrics.jsonl") || fail "mic: losses differ after resume"
cmp -s "$work/mic_full/last.safetensors" "$work/mic_part/last.safetensors" || fail "mic checkpoints differ after resume"
grep -q '"masked": [1-9]' "$work/mic_full/metrics.jsonl" || grep -q '"masked": 0\.[0-9]*[1-9]' "$work/mic_full/metrics.jsonl" ||
    fail "mic: the masked term never contributed (no confident pseudo labels?)"
# solver.rounds: 3 rounds of 2 iterations (boundaries at 2 and 4), each halving the rate and
# starting fresh optimizers. Stopped mid-round (3) the resumed run crosses the boundary at 4;
# stopped on the boundary (4) it resets right after the resume. Rates against hand-computed
# ones: 2.5e-4 * 0.5^round * (1 - k/2)^0.9 for step k of the round (0.5^0.9 = 0.535887).
rounds=(--set solver.rounds=3 --set solver.round_lr_factor=0.5)
"$segda" train "${common[@]}" "${rounds[@]}" --out "$work/rounds_full" >/dev/null || fail "rounds full run"
for stop in 3 4; do
    "$segda" train "${common[@]}" "${rounds[@]}" --out "$work/rounds_$stop" --set solver.stop=$stop >/dev/null ||
        fail "rounds first part (stop $stop)"
    "$segda" train "${common[@]}" "${rounds[@]}" --out "$work/rounds_$stop" --resume auto >/dev/null ||
        fail "rounds resumed (stop $stop)"
    diff <(strip "$work/rounds_full/metrics.jsonl") <(strip "$work/rounds_$stop/metrics.jsonl") ||
        fail "rounds: losses differ after a resume at iteration $stop"
    cmp -s "$work/rounds_full/last.safetensors" "$work/rounds_$stop/last.safetensors" ||
        fail "rounds: checkpoints differ after a resume at iteration $stop"
done
got=$(grep -o '"lr": [^,]*' "$work/rounds_full/metrics.jsonl" | awk '{printf "%s ", $2}')
want="0.00025 0.000133972 0.000125 6.69858e-05 6.25e-05 3.34929e-05 "
[ "$got" = "$want" ] || fail "rounds: rates '$got', want '$want'"
cmp -s "$work/full/last.safetensors" "$work/rounds_full/last.safetensors" && fail "solver.rounds=3 changed nothing"
# the trainer reset the optimizers at iteration 4: two steps since (the plain run: six)
step=$(head -c 65536 "$work/rounds_full/last.safetensors" | grep -a -o '"optim_step": *"[0-9]*"' | grep -o '[0-9]*"$')
[ "$step" = '2"' ] || fail "rounds: optimizer step count $step after the last boundary, want 2"
# A real interruption: SIGINT during training saves the state (exit 130) and resumes.
"$segda" train "${common[@]}" --out "$work/kill" --set solver.iterations=400 >/dev/null &
pid=$!
for _ in $(seq 1 100); do [ -f "$work/kill/last.safetensors" ] && break; sleep 0.1; done
kill -INT $pid
wait $pid
rc=$?
[ $rc -eq 130 ] || fail "SIGINT gave exit code $rc, not 130"
"$segda" train "${common[@]}" --out "$work/kill" --set solver.iterations=400 --set solver.stop=1 --resume auto \
    >/dev/null 2>&1 || fail "resume after SIGINT"
# Bad input: an unknown key, a corrupt checkpoint.
out=$("$segda" train "${common[@]}" --set solver.lrr=1 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "solver.lrr" <<<"$out" || fail "unknown key: rc $rc: $out"
head -c 100 "$work/full/last.safetensors" > "$work/bad.safetensors"
out=$("$segda" train "${common[@]}" --out "$work/bad" --resume "$work/bad.safetensors" 2>&1); rc=$?
[ $rc -eq 4 ] && grep -q "bad.safetensors" <<<"$out" || fail "corrupt checkpoint: rc $rc: $out"
echo "resume on $dev: identical losses and checkpoints after resume (adaptsegnet, bida, mic, solver.rounds mid-round and on a boundary); SIGINT saves and resumes; bad input refused"
