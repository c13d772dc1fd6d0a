#!/usr/bin/env bash
# solver.accumulate: with frozen BN (model.bn = frozen: running statistics), two steps of
# data.batch = 2 in 2 sub-batches each (the second from prefetched batches) give the same
# weights as full-batch steps, for source_only (the network) and AdaptSegNet (the network and
# its main discriminator): ||update(acc 2) - update(acc 1)|| / ||update(acc 1)|| <= 1e-4 (F32
# rounding of the summed gradients), the update measured from a run with learning rate 0.
# Control: with model.bn = frozen_affine (the default: batch statistics in training, fixed
# gamma/beta) the sub-batches' BN statistics differ, so must the update (> 1e-3).
# plca.iter_size = 2 is byte-identical to solver.accumulate = 2; sdca, pixintra and bida train
# with accumulate 2 to finite losses; a batch not divisible is refused naming both values.
# usage: test_accumulate.sh SEGDA WORKDIR DEVICE PYTHON
set -u
segda=$1 work=$2 dev=${3:-cpu} py=${4:-python3}
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
"$segda" synth --out "$work/synth" --count 4 --seed 5 >/dev/null 2>&1 || fail "segda synth"
common=(--set model.arch=deeplabv2_tiny --set model.bn=frozen --set data.source=gta5
        --set "data.source_root=$work/synth/source" --set data.target=cityscapes
        --set "data.target_root=$work/synth/target" --set data.source_size=64x32
        --set data.target_size=64x32 --set data.batch=2 --set solver.iterations=2
        --set train.eval_every=0 --set train.save_every=0 --set train.log_every=1
        --set adaptsegnet.d_width=8 --set pixintra.d_width=8 --set train.device=$dev --quiet)
run() { # out-name, then keys
    local out=$1; shift
    "$segda" train "${common[@]}" "$@" --out "$work/$out" >"$work/$out.log" 2>&1 || { cat "$work/$out.log"; fail "run $out"; }
}
close() { # a b base prefix what
    local d
    d=$("$py" "$here/ckpt_update_diff.py" "$work/$1/last.safetensors" "$work/$2/last.safetensors" \
        "$work/$3/last.safetensors" "$4") || fail "$5: $d"
    "$py" -c "import sys; sys.exit(0 if float('$d') <= 1e-4 else 1)" || fail "$5: relative update difference $d > 1e-4"
    echo "$5: relative update difference $d"
}
for m in source_only adaptsegnet; do
    run $m-base --set method.name=$m --set solver.lr=0 --set adaptsegnet.lr_d=0
    run $m-acc1 --set method.name=$m
    run $m-acc2 --set method.name=$m --set solver.accumulate=2
    close $m-acc1 $m-acc2 $m-base "" "$m network"
done
close adaptsegnet-acc1 adaptsegnet-acc2 adaptsegnet-base aux1. "adaptsegnet discriminator"
# the control: per-sub-batch BN statistics change the step
run bn-base --set method.name=source_only --set model.bn=frozen_affine --set solver.lr=0
run bn-acc1 --set method.name=source_only --set model.bn=frozen_affine
run bn-acc2 --set method.name=source_only --set model.bn=frozen_affine --set solver.accumulate=2
d=$("$py" "$here/ckpt_update_diff.py" "$work/bn-acc1/last.safetensors" "$work/bn-acc2/last.safetensors" \
    "$work/bn-base/last.safetensors" "") || fail "frozen_affine BN: $d"
"$py" -c "import sys; sys.exit(0 if float('$d') > 1e-3 else 1)" || fail "frozen_affine BN: accumulation did not change the update ($d)"
echo "frozen_affine BN (control): relative update difference $d"
# plca.iter_size is the alias
run plca-acc --set method.name=plca --set solver.accumulate=2
run plca-iter --set method.name=plca --set plca.iter_size=2
cmp -s "$work/plca-acc/last.safetensors" "$work/plca-iter/last.safetensors" || fail "plca.iter_size=2 differs from solver.accumulate=2"
for m in sdca pixintra bida; do
    run $m-acc2 --set method.name=$m --set solver.accumulate=2
    grep -q '"loss"' "$work/$m-acc2/metrics.jsonl" || fail "$m: no logged losses"
    ! grep '"loss"' "$work/$m-acc2/metrics.jsonl" | grep -qiE 'nan|inf' || fail "$m: non-finite loss"
done
# bad input names both values
out=$("$segda" train "${common[@]}" --set method.name=source_only --set data.batch=3 --set solver.accumulate=2 \
      --out "$work/bad" 2>&1); rc=$?
[ $rc -ne 0 ] && grep -q "data.batch = 3" <<<"$out" && grep -q "solver.accumulate = 2" <<<"$out" || fail "batch 3 / accumulate 2: rc $rc: $out"
out=$("$segda" train "${common[@]}" --set method.name=plca --set plca.iter_size=2 --set solver.accumulate=4 \
      --set data.batch=4 --out "$work/bad2" 2>&1); rc=$?
[ $rc -ne 0 ] && grep -q "plca.iter_size = 2" <<<"$out" || fail "iter_size 2 / accumulate 4: rc $rc: $out"
echo "accumulate on $dev: frozen-BN sub-batch steps equal the full-batch step (source_only, adaptsegnet); plca alias; sdca, pixintra, bida run; bad input refused"
