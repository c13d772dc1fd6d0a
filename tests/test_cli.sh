#!/usr/bin/env bash
# The commands a user runs after training, end to end on a tiny synthetic run: eval (table,
# JSON in percent, CSV; the same mIoU as the training's own final evaluation, a fraction), predict (PNGs), pseudo-label
# (labels, confidences, thresholds, report), self-training on them, PixIntraDA's easy/hard map,
# infer (.npy), bench JSON and compare, corrupt inputs; plus --help on every command.
# usage: test_cli.sh SEGDA WORKDIR
set -u
segda=$1 work=$2
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
for c in devices demo train eval predict pseudo-label synth infer bench; do
  "$segda" $c --help >/dev/null || fail "$c --help"
done
"$segda" synth --out "$work/synth" --count 8 --seed 5 >/dev/null 2>&1 || fail synth
set_args=(--set "data.source_root=$work/synth/source" --set "data.target_root=$work/synth/target"
          --set data.source_size=64x32 --set data.target_size=64x32 --set data.eval_size=64x32 --device cpu)
"$segda" train --config configs/synth_source_only.ini "${set_args[@]}" --set solver.iterations=8 \
    --set train.eval_every=8 --out "$work/run" --quiet || fail train
w="$work/run/final.safetensors"
"$segda" eval --weights "$w" --config configs/synth_source_only.ini "${set_args[@]}" --out "$work/eval" \
    > "$work/eval.txt" 2>/dev/null || fail eval
[ -s "$work/eval/eval.json" ] && [ -s "$work/eval/eval.csv" ] || fail "eval JSON/CSV"
trained=$(grep '"eval"' "$work/run/metrics.jsonl" | tail -1 | sed 's/.*"mIoU": \([0-9.]*\).*/\1/')
evaluated=$(sed 's/.*"mIoU": *\([0-9.]*\).*/\1/' <<<"$(tr -d '\n' < "$work/eval/eval.json")")
python3 -c "import sys; a,b=float(sys.argv[1])*100,float(sys.argv[2]); sys.exit(abs(a-b)>0.1)" "$trained" "$evaluated" \
    || fail "eval mIoU $evaluated differs from training's $trained"
"$segda" predict --weights "$w" --input "$work/synth/source/images" --out "$work/pred" --overlay --device cpu \
    2>/dev/null || fail predict
[ "$(ls "$work/pred" | grep -c _pred.png)" -eq 8 ] && [ "$(ls "$work/pred" | grep -c _overlay.png)" -eq 8 ] || fail "predict outputs"
"$segda" pseudo-label --weights "$w" --config configs/synth_source_only.ini "${set_args[@]}" --out "$work/pl" \
    --report > "$work/pl.txt" 2>/dev/null || fail pseudo-label
grep -q "density" "$work/pl.txt" && [ -s "$work/pl/thresholds.txt" ] && ls "$work/pl" | grep -q _conf.png || fail "pseudo-label outputs"
# BiDA's Table 4 report from a (2-iteration) BiDA checkpoint: four kinds of labels.
"$segda" train --config configs/synth_source_only.ini "${set_args[@]}" --set method.name=bida --set solver.iterations=2 \
    --set train.eval_every=0 --out "$work/bida" --quiet 2>/dev/null || fail "bida train"
"$segda" pseudo-label --weights "$work/bida/last.safetensors" --config "$work/bida/config.ini" --out "$work/bida_pl" \
    --report --device cpu > "$work/bida_report.txt" 2>/dev/null || fail "bida pseudo-label --report"
for kind in "static (CBST)" "dynamic " "dynamic + calibration" "hybrid"; do
  grep -q "^$kind" "$work/bida_report.txt" || fail "bida report lacks '$kind'"
done
# Self-training on those pseudo labels: data.source = the target set, data.source_labels = them.
st_args=(--set data.source=cityscapes --set "data.source_root=$work/synth/target" --set "data.source_labels=$work/pl"
         --set data.source_size=64x32 --set data.target_size=64x32 --set data.eval_size=64x32 --device cpu)
"$segda" train --config configs/synth_source_only.ini "${st_args[@]}" --set solver.iterations=2 \
    --set train.eval_every=0 --out "$work/selftrain" --quiet 2>/dev/null || fail "self-training on pseudo labels"
cp -r "$work/pl" "$work/pl_bad"
first=$(ls "$work"/pl_bad/*.png | grep -v _conf | head -1)
cp "$work/synth/README.txt" "$first"   # not a PNG: the error must name the pseudo-label file
"$segda" train --config configs/synth_source_only.ini "${st_args[@]}" --set "data.source_labels=$work/pl_bad" \
    --set solver.iterations=2 --set train.eval_every=0 --set data.workers=1 --out "$work/selftrain_bad" --quiet \
    2> "$work/st_bad.txt"
[ $? -eq 4 ] && grep -q "$(basename "$first")" "$work/st_bad.txt" || fail "a bad pseudo-label file must exit 4 naming it"
# PixIntraDA's easy/hard map: thresholds 0 make every pixel easy (black), 1 every pixel hard
# (white: no probability above 1); pseudo-label's class medians give a mix.
vdir=$(dirname "$(ls "$work"/synth/target/leftImg8bit/val/*/*.png | head -1)")
for t in 0 1; do for k in $(seq 0 18); do echo "$k class $t 1"; done > "$work/thr_$t.txt"; done
cp "$work/pl/thresholds.txt" "$work/thr_median.txt"
for t in 0 1 median; do
  "$segda" predict --weights "$w" --input "$vdir" --out "$work/eh_$t" --easy-hard "$work/thr_$t.txt" --alpha 1 \
      --device cpu 2>/dev/null || fail "predict --easy-hard"
done
eh() { python3 tests/png_read.py "$(ls "$work/eh_$1"/*_easyhard.png | head -1)"; }
[ "$(eh 0 | cut -d' ' -f5)" = "1.000000" ] && [ "$(eh 1 | cut -d' ' -f4)" = "1.000000" ] || fail "easy/hard extremes"
read -r _ _ _ white black <<<"$(eh median)"
python3 -c "import sys; w,b=map(float,sys.argv[1:]); sys.exit(not (0<w<1 and abs(w+b-1)<1e-9))" "$white" "$black" \
    || fail "easy/hard at the median thresholds must mix ($white white)"
img=$(ls "$work"/synth/source/images/*.png | head -1)
"$segda" infer --weights "$w" --input "$img" --save-logits "$work/l.npy" --device cpu >/dev/null || fail infer
[ -s "$work/l.npy" ] || fail "infer output"
"$segda" infer --weights "$work/synth/README.txt" --input "$img" --save-logits "$work/x.npy" 2>/dev/null
[ $? -eq 4 ] || fail "a non-safetensors weights file must exit 4"
# A corrupt target image: a clear error naming it (exit 4), or skipped and counted with data.skip_bad.
cp -r "$work/synth" "$work/bad" && bad=$(ls "$work"/bad/target/leftImg8bit/val/*/*.png | head -1)
head -c 100 "$bad" > "$bad.tmp" && mv "$bad.tmp" "$bad"
bad_args=(--set "data.target_root=$work/bad/target" --set data.eval_size=64x32 --device cpu)
"$segda" eval --weights "$w" --config configs/synth_source_only.ini "${bad_args[@]}" --out "$work/evalbad" \
    > /dev/null 2> "$work/bad.txt"
[ $? -eq 4 ] && grep -q "$(basename "$bad")" "$work/bad.txt" || fail "a corrupt image must exit 4 naming it"
"$segda" eval --weights "$w" --config configs/synth_source_only.ini "${bad_args[@]}" --set data.skip_bad=true \
    --out "$work/evalbad" > /dev/null 2> "$work/bad.txt" || fail "eval with data.skip_bad"
grep -q "skipped 1 bad sample" "$work/bad.txt" || fail "data.skip_bad must report the skipped sample"
# bench: JSON records, and compare puts two runs of one device side by side.
"$segda" bench step --device cpu --step-arch deeplabv2_tiny --step-size 65 --runs 1 --json "$work/b1.json" \
    > /dev/null 2>&1 || fail "bench step"
"$segda" bench memory --device cpu --runs 1 --budget 0.1 --filter softmax --json "$work/b2.json" > /dev/null 2>&1 \
    || fail "bench memory"
grep -q '"op": "source_only"' "$work/b1.json" && grep -q '"gbps"' "$work/b2.json" || fail "bench JSON records"
cp "$work/b1.json" "$work/b1-again.json"
"$segda" bench compare "$work/b1.json" "$work/b1-again.json" > "$work/cmp.md" || fail "bench compare"
grep -q "\[b1.json\] | cpu .*\[b1-again.json\] | ratio" "$work/cmp.md" && grep -q "| step | source_only |" "$work/cmp.md" \
    || fail "bench compare table"
"$segda" bench compare "$work/synth/README.txt" > /dev/null 2>&1 && fail "compare must refuse a non-bench file"
# An unknown key inside a config file, with valid keys after it: the error names that key and
# its line (the INI parser goes on after a failed entry; the first error must survive it).
{ cat configs/synth_source_only.ini; printf '\n[solver]\nbogus_key = 1\nlr = 0.01\n'; } > "$work/unknown.ini"
line=$(grep -n '^bogus_key' "$work/unknown.ini" | cut -d: -f1)
out=$("$segda" train --config "$work/unknown.ini" --check-config 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "unknown key 'solver.bogus_key'.*(line $line)" <<<"$out" || fail "unknown key in a file: rc $rc: $out"
echo "cli: eval $evaluated (= training's $trained), predict, pseudo-label, infer, --help all ok"
