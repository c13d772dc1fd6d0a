#!/usr/bin/env bash
# bench/released_memory.sh [SEGDA] [CONFIG ...]: the device memory one iteration of each released
# recipe needs, at the datasets' real resolutions and the accumulation its header names.
#
# Each configs/*_released.ini (or the CONFIGs given) trains one iteration (solver.stop = 1) on a
# synthetic benchmark of 2048x1024 images (segda synth; GTA5 layout for the source, Cityscapes for
# the target, so the resizes, crops and scales of the recipe run as on the real data), from random
# weights (no init files needed), with every pass the recipe has before its first step (SDCA's
# statistics, PixIntraDA's thresholds, BiDA's static labels) run over the benchmark's few images.
# Prints a table: config, data.batch, solver.accumulate, the pool's peak (metrics.jsonl mem_mb)
# and whether it is within the budget (SEGDA_MEM_BUDGET_GB, default 20). Slow on a CPU: a few
# minutes a recipe. Exit 1 when a recipe fails or exceeds the budget.
set -euo pipefail
segda=${1:-build/segda}
shift || true
configs=("$@")
if [ ${#configs[@]} -eq 0 ]; then
    configs=(configs/*_released.ini)
fi
budget=${SEGDA_MEM_BUDGET_GB:-20}
device=${SEGDA_DEVICE:-cpu}
work=${SEGDA_WORK:-$(mktemp -d /tmp/segda-relmem.XXXXXX)}
synth=$work/synth
if [ ! -f "$synth/target/dev.txt" ]; then
    "$segda" synth --out "$synth" --size 2048x1024 --count 3 --val-count 1 --dev-count 0 >/dev/null
fi
status=0
printf '| config | data.batch | solver.accumulate | peak device memory (GB) | within %s GB |\n|---|---|---|---|---|\n' "$budget"
for cfg in "${configs[@]}"; do
    name=$(basename "$cfg" .ini)
    out=$work/$name
    get() { sed -n "/^\[$1\]/,/^\[/{s/^$2 *= *//p}" "$cfg" | head -1; }
    sets=(--set model.init= --set data.source=gta5 --set "data.source_root=$synth/source"
          --set data.source_list= --set data.source_labels= --set "data.target_root=$synth/target"
          --set data.target=cityscapes --set solver.stop=1 --set train.eval_every=0
          --set train.save_every=1000000 --set train.log_every=1 --set train.tensorboard=false
          --set "train.out=$out")
    # a recipe that starts from another run's pseudo labels or teacher reads none here
    if grep -q '^source = cityscapes' "$cfg"; then
        sets+=(--set data.source=cityscapes --set "data.source_root=$synth/target")
    fi
    if [ "$(get method name)" = bida ] && [ -n "$(get bida distill_teacher)" ]; then
        sets+=(--set bida.distill_teacher=)
    fi
    # offline static labels (segda pseudo-label --mode dass) need a trained model: measured with
    # the online teacher instead, an upper bound (it adds a frozen copy and its forward pass)
    if [ "$(get bida static_source)" = target_labels ]; then
        sets+=(--set bida.static_source=teacher --set data.target_labels=)
    fi
    if ! "$segda" train --config "$cfg" "${sets[@]}" --device "$device" --quiet >"$work/$name.log" 2>&1; then
        printf '| %s | %s | %s | failed (%s) | no |\n' "$name" "$(get data batch)" "$(get solver accumulate)" \
            "$(tail -1 "$work/$name.log")"
        status=1
        continue
    fi
    mb=$(python3 -c 'import json,sys; print(max(json.loads(l)["mem_mb"] for l in open(sys.argv[1])))' "$out/metrics.jsonl")
    gb=$(python3 -c "print(f'{$mb / 1024:.1f}')")
    ok=$(python3 -c "print('yes' if $mb / 1024 <= $budget else 'no')")
    [ "$ok" = yes ] || status=1
    printf '| %s | %s | %s | %s | %s |\n' "$name" "$(get data batch)" "$(get solver accumulate)" "$gb" "$ok"
done
exit $status
