#!/usr/bin/env python3
"""segda eval --pred-dir (standard library only).
  setup:        a synthetic benchmark and a tiny model trained on it (cpu), shared by the backends;
  model DEVICE: segda predict's PNGs in each format (and auto) score exactly as segda eval of the
                same checkpoint on DEVICE: per-class IoU, the means, pixel count and the table;
  files:        a hand-computed case (two 4x2 images, Cityscapes names, in each format, by --gt-dir
                and by a configuration, 19 and 16 classes) and the errors naming the file.
usage: test_pred_eval.py SEGDA WORKDIR setup | model DEVICE | files"""
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib

here = os.path.dirname(os.path.abspath(__file__))
config = os.path.join(here, "..", "configs", "synth_source_only.ini")


def write_png(path, rows, rgb=False):
    """rows: lists of ints (grey) or of (r, g, b)."""
    h, w = len(rows), len(rows[0])
    flat = (lambda r: bytes(v for px in r for v in px)) if rgb else bytes
    raw = b"".join(b"\x00" + flat(r) for r in rows)

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2 if rgb else 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def run(segda, *args):
    r = subprocess.run([segda, *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def synth_args(work):
    return ["--set", f"data.source_root={work}/synth/source", "--set", f"data.target_root={work}/synth/target",
            "--set", "data.source_size=64x32", "--set", "data.target_size=64x32", "--set", "data.eval_size=64x32"]


def setup(segda, work):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    rc, _, err = run(segda, "synth", "--out", f"{work}/synth", "--count", "8", "--val-count", "4", "--seed", "5")
    if rc:
        fail(f"synth: {err}")
    rc, _, err = run(segda, "train", "--config", config, *synth_args(work), "--device", "cpu", "--set",
                     "solver.iterations=30", "--set", "train.eval_every=0", "--out", f"{work}/run", "--quiet")
    if rc:
        fail(f"train: {err}")
    print("setup: synthetic benchmark and a 30-iteration tiny model")
    return 0


def table(stdout):
    """The printed table without its first (title) line."""
    return stdout.split("\n", 1)[1]


def model(segda, work, device):
    out = f"{work}/{device.replace(':', '_')}"
    shutil.rmtree(out, ignore_errors=True)
    w = f"{work}/run/final.safetensors"
    rc, ref_out, err = run(segda, "eval", "--weights", w, "--config", config, *synth_args(work), "--device", device,
                           "--out", f"{out}/ref")
    if rc == 3 and device.split(":")[0] not in os.environ.get("SEGDA_REQUIRE", ""):
        print(f"SKIP: no {device} device")
        return 77
    if rc:
        fail(f"segda eval on {device}: {err}")
    ref = json.load(open(f"{out}/ref/eval.json"))
    scored = [v for v in ref["iou"].values() if v is not None and v > 0]
    if len(scored) < 2:  # a model predicting one class would not tell formats apart
        fail(f"the reference scores too few classes above 0: {ref['iou']}")
    val = f"{work}/synth/target/leftImg8bit/val/synthville"
    for fmt in ("color", "trainid", "labelid"):
        rc, _, err = run(segda, "predict", "--weights", w, "--input", val, "--size", "64x32", "--format", fmt,
                         "--device", device, "--out", f"{out}/pred_{fmt}")
        if rc:
            fail(f"predict --format {fmt}: {err}")
        for given in (fmt, "auto"):
            rc, got_out, err = run(segda, "eval", "--pred-dir", f"{out}/pred_{fmt}", "--pred-format", given,
                                   "--config", config, *synth_args(work), "--out", f"{out}/eval_{fmt}_{given}")
            if rc:
                fail(f"eval --pred-dir ({fmt} files, --pred-format {given}): {err}")
            got = json.load(open(f"{out}/eval_{fmt}_{given}/eval.json"))
            if got != ref:
                fail(f"{fmt} files read as {given}: {got} != segda eval's {ref}")
            if table(got_out) != table(ref_out):
                fail(f"{fmt} files read as {given}: the table differs:\n{got_out}\nvs\n{ref_out}")
            if f"4 images, {fmt} predictions" not in got_out.split("\n")[0]:
                fail(f"{fmt} files read as {given}: title '{got_out.splitlines()[0]}'")
    print(f"pred-eval on {device}: color, trainid, labelid files (given and auto) = segda eval: "
          f"mIoU {ref['mIoU']}, {len(scored)} classes above 0, {ref['pixels']} pixels")
    return 0


# The hand-computed case. Cityscapes labelIds: 0 unlabeled (ignored), 7 road, 8 sidewalk,
# 11 building, 21 vegetation, 23 sky, 26 car; trainIds: road 0, sidewalk 1, building 2,
# vegetation 8, sky 10, car 13.
GT_A = [[7, 7, 8, 8], [7, 11, 0, 26]]
PRED_A = [[0, 1, 1, 1], [0, 2, 13, 0]]      # trainIds; the unlabeled pixel's 13 is not counted
GT_B = [[23, 23, 23, 23], [21, 21, 7, 7]]
PRED_B = [[10, 10, 10, 8], [8, 10, 0, 0]]
# Counted by hand over both images (label -> prediction), IoU = TP / (TP + FP + FN):
#   road:       TP 2 + 2; FN 1 (a road pixel -> sidewalk); FP 1 (the car pixel)  -> 4 / 6
#   sidewalk:   TP 2; FP 1 (that road pixel)                                     -> 2 / 3
#   building:   TP 1                                                             -> 1 / 1
#   vegetation: TP 1; FN 1 (-> sky); FP 1 (a sky pixel)                          -> 1 / 3
#   sky:        TP 3; FN 1 (-> vegetation); FP 1 (a vegetation pixel)            -> 3 / 5
#   car:        FN 1 (-> road)                                                   -> 0 / 1
# mIoU over the 6 present classes (all in the 16 and 13 sets too); pixel acc 11 of 15.
HAND = {"road": 4 / 6, "sidewalk": 2 / 3, "building": 1.0, "vegetation": 1 / 3, "sky": 3 / 5, "car": 0.0}
HAND_MIOU = sum(HAND.values()) / 6
HAND_ACC = 11 / 15
TRAIN_TO_LABEL = {0: 7, 1: 8, 2: 11, 8: 21, 10: 23, 13: 26}
PALETTE = {0: (128, 64, 128), 1: (244, 35, 232), 2: (70, 70, 70), 8: (107, 142, 35), 10: (70, 130, 180),
           13: (0, 0, 142)}


def check_hand(path, k, what):
    got = json.load(open(path))
    pct = lambda v: round(100 * v, 4)  # noqa: E731  (eval.json: percent, 4 decimals)
    for name, v in got["iou"].items():
        want = pct(HAND[name]) if name in HAND else None
        if v != want:
            fail(f"{what}: IoU of {name} is {v}, by hand {want}")
    views = {19: ["mIoU", "mIoU16", "mIoU13"], 16: ["mIoU16", "mIoU13"]}[k]
    for view in views:
        if got[view] != pct(HAND_MIOU):
            fail(f"{what}: {view} is {got[view]}, by hand {pct(HAND_MIOU)}")
    if got["pixels"] != 15 or got["pixel_acc"] != pct(HAND_ACC) or got["num_classes"] != k:
        fail(f"{what}: pixels {got['pixels']}, acc {got['pixel_acc']}, {got['num_classes']} classes")


def write_preds(d, fmt, a=PRED_A, b=PRED_B):
    """a under a city folder with the Cityscapes image name, b flat with the bare stem."""
    enc = {"trainid": lambda v: v, "labelid": lambda v: TRAIN_TO_LABEL[v], "color": lambda v: PALETTE[v]}[fmt]
    for rows, path in ((a, f"{d}/city/a_leftImg8bit.png"), (b, f"{d}/b.png")):
        if rows is not None:
            write_png(path, [[enc(v) if v in TRAIN_TO_LABEL else v for v in r] for r in rows], rgb=fmt == "color")


def expect_error(segda, what, args, *needles, code=4):
    rc, _, err = run(segda, "eval", *args)
    if rc != code or not all(n in err for n in needles):
        fail(f"{what}: exit {rc} (want {code}), stderr must name {needles}: {err.strip()}")


def files(segda, work):
    shutil.rmtree(work, ignore_errors=True)
    gt = f"{work}/gt/val/city"
    write_png(f"{gt}/a_gtFine_labelIds.png", GT_A)
    write_png(f"{gt}/b_gtFine_labelIds.png", GT_B)
    write_png(f"{gt}/a_gtFine_color.png", [[(1, 2, 3)] * 4] * 2, rgb=True)  # gtFine's others: skipped
    write_png(f"{gt}/a_gtFine_instanceIds.png", [[200] * 4] * 2)
    gt_args = ["--gt-dir", f"{work}/gt"]
    for fmt in ("trainid", "labelid", "color"):
        d = f"{work}/pred_{fmt}"
        write_preds(d, fmt)
        write_png(f"{d}/unrelated.png", [[0]])  # matches no ground truth: ignored
        for given in (fmt, "auto"):
            rc, out, err = run(segda, "eval", "--pred-dir", d, "--pred-format", given, *gt_args,
                               "--out", f"{work}/e_{fmt}_{given}")
            if rc:
                fail(f"{fmt} read as {given}: {err}")
            check_hand(f"{work}/e_{fmt}_{given}/eval.json", 19, f"{fmt} read as {given}")
            if f"2 images, {fmt} predictions" not in out or "1 PNG in" not in err:
                fail(f"{fmt} read as {given}: title or unmatched note: {out.splitlines()[0]} / {err}")
        if fmt != "trainid":  # the 16-class space: same classes, other indices (trainIds would differ)
            rc, _, err = run(segda, "eval", "--pred-dir", d, *gt_args, "--set", "model.num_classes=16",
                             "--out", f"{work}/e16_{fmt}")
            if rc:
                fail(f"16 classes, {fmt}: {err}")
            check_hand(f"{work}/e16_{fmt}/eval.json", 16, f"16 classes, {fmt}")
    # The same ground truth as a configuration's validation set (Cityscapes layout, val.txt-free scan).
    root = f"{work}/cs"
    for n, rows in (("a", GT_A), ("b", GT_B)):
        write_png(f"{root}/gtFine/val/city/{n}_gtFine_labelIds.png", rows)
        write_png(f"{root}/leftImg8bit/val/city/{n}_leftImg8bit.png", [[(9, 9, 9)] * 4] * 2, rgb=True)
    cfg_args = ["--config", config, "--set", f"data.target_root={root}"]
    rc, _, err = run(segda, "eval", "--pred-dir", f"{work}/pred_labelid", *cfg_args, "--out", f"{work}/e_cfg")
    if rc:
        fail(f"by configuration: {err}")
    check_hand(f"{work}/e_cfg/eval.json", 19, "by configuration")
    # Pseudo-label's flat names (city_a.png: the path below the ground-truth folder) match too.
    write_png(f"{work}/pred_flat/city_a.png", PRED_A)
    write_png(f"{work}/pred_flat/city_b.png", PRED_B)
    rc, _, err = run(segda, "eval", "--pred-dir", f"{work}/pred_flat", "--gt-dir", f"{work}/gt/val",
                     "--out", f"{work}/e_flat")
    if rc:
        fail(f"flat names: {err}")
    check_hand(f"{work}/e_flat/eval.json", 19, "flat names")

    # Errors: exit 4 naming the file (and the value and pixel).
    bad = f"{work}/bad"
    write_preds(f"{bad}/size", "trainid", a=[r[:3] for r in PRED_A])
    expect_error(segda, "wrong size", ["--pred-dir", f"{bad}/size", *gt_args], "a_leftImg8bit.png",
                 "prediction is 3x2", "a_gtFine_labelIds.png is 4x2")
    write_preds(f"{bad}/id", "trainid", b=[[10, 19, 10, 8], [8, 10, 0, 0]])
    expect_error(segda, "unknown trainId", ["--pred-dir", f"{bad}/id", "--pred-format", "trainid", *gt_args],
                 "b.png", "value 19 at pixel (1, 0)")
    write_preds(f"{bad}/id_auto", "trainid", b=[[10, 10, 10, 8], [8, 10, 0, 40]])
    expect_error(segda, "unknown id (auto)", ["--pred-dir", f"{bad}/id_auto", *gt_args], "b.png",
                 "value 40 at pixel (3, 1)")
    write_preds(f"{bad}/labelid", "labelid", a=[[0, 3, 1, 1], [0, 2, 13, 0]])  # 3 stays 3: a void labelId
    expect_error(segda, "unknown labelId", ["--pred-dir", f"{bad}/labelid", "--pred-format", "labelid", *gt_args],
                 "a_leftImg8bit.png", "value 3 at pixel (1, 0)")
    write_preds(f"{bad}/color", "color")
    write_png(f"{bad}/color/b.png", [[PALETTE[10]] * 4, [PALETTE[8], PALETTE[10], (1, 2, 3), PALETTE[0]]], rgb=True)
    expect_error(segda, "unknown colour", ["--pred-dir", f"{bad}/color", *gt_args], "b.png",
                 "colour (1, 2, 3) at pixel (2, 1)")
    expect_error(segda, "RGB as trainid", ["--pred-dir", f"{bad}/color", "--pred-format", "trainid", *gt_args],
                 "a_leftImg8bit.png", "an RGB PNG")
    write_preds(f"{bad}/missing", "trainid", b=None)
    expect_error(segda, "missing prediction", ["--pred-dir", f"{bad}/missing", *gt_args], "b_gtFine_labelIds.png",
                 "no prediction", "b.png")
    write_preds(f"{bad}/twice", "trainid")
    write_png(f"{bad}/twice/b_pred.png", PRED_B)
    expect_error(segda, "two predictions", ["--pred-dir", f"{bad}/twice", *gt_args], "b.png", "b_pred.png")
    expect_error(segda, "no such folder", ["--pred-dir", f"{bad}/none", *gt_args], f"{bad}/none")
    expect_error(segda, "bad --pred-format", ["--pred-dir", d, "--pred-format", "rgb", *gt_args], "rgb", code=2)
    expect_error(segda, "no ground truth", ["--pred-dir", d], "--gt-dir", code=2)
    rc, _, err = run(segda, "predict", "--weights", "w", "--input", "x", "--out", "y", "--format", "auto")
    if rc != 2 or "--format" not in err:
        fail(f"predict --format auto must be a usage error: {rc} {err}")
    print("pred-files: hand-computed IoUs in 3 formats (given and auto), 19 and 16 classes, --gt-dir and "
          "--config, flat names; 9 errors name the file")
    return 0


def main():
    segda, work, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "setup":
        return setup(segda, work)
    if mode == "model":
        return model(segda, work, sys.argv[4])
    return files(segda, work)


if __name__ == "__main__":
    sys.exit(main())
