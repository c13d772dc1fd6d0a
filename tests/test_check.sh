#!/usr/bin/env bash
# `segda train --check` on a synthetic dataset: it passes; each missing path (model.init,
# source root, target root, list file, label folder), a bad first sample, a bad value, a
# missing device and a step too large for the device are one line naming the key and the
# path, with the documented exit code. A run starts with the same file checks, removes the
# temporaries a killed run left, and says which device "auto" chose.
# usage: test_check.sh SEGDA WORKDIR
set -u
segda=$1 work=$2
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
"$segda" synth --out "$work/synth" --count 4 --seed 3 >/dev/null 2>&1 || fail synth
cfg=configs/synth_adaptsegnet.ini
base=(--config $cfg --set "data.source_root=$work/synth/source" --set "data.target_root=$work/synth/target"
      --device cpu)

"$segda" train "${base[@]}" --check > "$work/ok.txt" 2>&1 || { cat "$work/ok.txt"; fail "--check on the synthetic set"; }
grep -q ": ok (" "$work/ok.txt" && grep -q "memory (rough estimate)" "$work/ok.txt" || fail "--check: no ok / estimate"

# expect CODE PATTERN ARGS...: --check exits CODE and one stderr line matches PATTERN
expect() {
  local code=$1 pattern=$2
  shift 2
  "$segda" train "${base[@]}" "$@" --check > "$work/out.txt" 2> "$work/err.txt"
  local rc=$?
  [ $rc -eq "$code" ] || { cat "$work/err.txt"; fail "--check $*: exit $rc, expected $code"; }
  grep -q -- "$pattern" "$work/err.txt" || { cat "$work/err.txt"; fail "--check $*: no line '$pattern'"; }
}
expect 4 "model.init = $work/none.safetensors: no such file" --set "model.init=$work/none.safetensors"
expect 4 "data.source_root = $work/nosrc: no such folder" --set "data.source_root=$work/nosrc"
expect 4 "data.target_root = $work/notgt: no such folder" --set "data.target_root=$work/notgt"
expect 4 "data.source_list = $work/none.txt: no such file" --set "data.source_list=$work/none.txt"
expect 4 "data.target_list = $work/none.txt: no such file" --set "data.target_list=$work/none.txt"
expect 4 "data.source_labels = $work/nolabels: no such folder" --set "data.source_labels=$work/nolabels"
expect 4 "data.source_root = $work/synth/README.txt: not a folder" --set "data.source_root=$work/synth/README.txt"
expect 2 "data.norm = 'foo'" --set data.norm=foo
expect 3 "train.device = vulkan:99" --device vulkan:99
expect 2 "memory: a step needs about" --set data.batch=1000000
# every missing path at once: one line each, the data exit code
expect 4 "data.target_root = $work/notgt" --set "model.init=$work/none.safetensors" --set "data.source_root=$work/nosrc" \
    --set "data.target_root=$work/notgt"
[ "$(grep -c ': no such ' "$work/err.txt")" -eq 3 ] || { cat "$work/err.txt"; fail "one line per missing path"; }
# a first sample whose label does not decode, and one of another size than its image
cp -r "$work/synth" "$work/bad"
first=$(sed -n 1p "$work/bad/source/train.txt")
cp "$work/bad/README.txt" "$work/bad/source/labels/$first"
expect 4 "source set): first sample: .*$first" --set "data.source_root=$work/bad/source"
python3 - "$work/bad/target/gtFine/val" <<'EOF' || fail "write a small label"
import os, struct, sys, zlib
root = sys.argv[1]
city = sorted(os.listdir(root))[0]
name = sorted(f for f in os.listdir(os.path.join(root, city)) if f.endswith("_labelIds.png"))[0]
raw = b"".join(b"\x00" + bytes(8) for _ in range(4))
chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
open(os.path.join(root, city, name), "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 4, 8, 0, 0, 0, 0))
                                                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
EOF
expect 4 "target validation set): first sample: .*label is 8x4" --set "data.target_root=$work/bad/target"
# --check-config: the values and the models only
"$segda" train --config configs/adaptsegnet_gta5_to_cityscapes.ini --check-config > /dev/null || fail "--check-config"
# bad values of the newer keys are usage errors naming the key and the value
for kv in mic.alpha=1.5 mic.fdist_classes=6,x solver.optimizer=adam2 solver.warmup_iters=-3 data.source_sampling=rare \
          data.rcs_temperature=0; do
    "$segda" train --config configs/mic_gta5_to_cityscapes.ini --set "$kv" --check-config > "$work/err.txt" 2>&1
    rc=$?
    [ $rc -eq 2 ] && grep -q "${kv%%=*} = '*${kv#*=}" "$work/err.txt" || { cat "$work/err.txt"; fail "--set $kv: exit $rc"; }
done

# A run checks the files before it starts (nothing written), exit 4.
"$segda" train "${base[@]}" --set "data.source_root=$work/nosrc" --out "$work/run_bad" --quiet 2> "$work/err.txt"
[ $? -eq 4 ] && grep -q "data.source_root = $work/nosrc: no such folder" "$work/err.txt" && [ ! -e "$work/run_bad" ] \
    || { cat "$work/err.txt"; fail "train must stop at start on a missing path"; }

# Stale temporaries of a run killed while saving (NAME.tmp.PID of a process gone) are removed, named.
mkdir -p "$work/run"
gone=$(sh -c 'echo $$')
touch "$work/run/last.safetensors.tmp.$gone" "$work/run/config.ini.tmp.$$"
"$segda" train "${base[@]}" --set solver.iterations=1 --set train.eval_every=0 --out "$work/run" --quiet \
    2> "$work/err.txt" || { cat "$work/err.txt"; fail "train 1 iteration"; }
grep -q "removed $work/run/last.safetensors.tmp.$gone" "$work/err.txt" && [ ! -e "$work/run/last.safetensors.tmp.$gone" ] \
    || { cat "$work/err.txt"; fail "a stale temporary must be removed and named"; }
[ -e "$work/run/config.ini.tmp.$$" ] || fail "a temporary of a running process must stay"

# --device auto says which device it chose and why (one line), on every command.
"$segda" infer --weights "$work/run/final.safetensors" --input "$(ls "$work"/synth/source/images/*.png | head -1)" \
    --save-logits "$work/l.npy" --device auto 2> "$work/err.txt" > /dev/null || { cat "$work/err.txt"; fail infer; }
[ "$(grep -c '^segda: device auto -> ' "$work/err.txt")" -eq 1 ] || { cat "$work/err.txt"; fail "infer: no device line"; }
"$segda" train "${base[@]}" --device auto --set solver.iterations=1 --set train.eval_every=0 \
    --out "$work/run_auto" --quiet 2> "$work/err.txt" || { cat "$work/err.txt"; fail "train auto"; }
[ "$(grep -c '^segda: device auto -> ' "$work/err.txt")" -eq 1 ] || { cat "$work/err.txt"; fail "train: no device line"; }
echo "test_check: ok"
