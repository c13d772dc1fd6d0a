#!/usr/bin/env python3
"""eval.scales (multi-scale testing) against PyTorch, on one backend.

A random tiny DeepLab-v2 (tools/deeplab_torch.py, converted) is evaluated by `segda eval` on
a synthetic Cityscapes val set (segda synth) at the images' own size, and the per-class IoU
and pixel accuracy are compared with a reference written here in PyTorch (float64) from the
option's definition: for each scale s the normalised image resized to round(s * size)
(bilinear, half-pixel), the model's logits upsampled to the label size (bilinear,
align_corners), softmax; the mean over the scales, argmax, a confusion matrix over the
labelIds mapped to the 19 train ids. Checked:
  - no eval.scales and eval.scales = 1 give the same eval.json, byte for byte, and match the
    single-scale reference;
  - eval.scales = 0.75,1.25 (and 0.5,1,1.5 with --flip) match the multi-scale reference,
    which differs from the single-scale one by far more than the tolerance (else the test
    could not fail);
  - on cpu only (host-side keys): a short training with data.scale_range / data.scales and
    model.classifier_init = pytorch runs, and bad values or exclusive pairs are refused with
    exit 2 and a message naming the keys.
usage: test_eval_scales.py SEGDA WORKDIR DEVICE
"""
import glob
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tools"))
sys.path.insert(0, here)
from deeplab_torch import build, randomize  # noqa: E402
import png_read  # noqa: E402

segda, work, dev = sys.argv[1], sys.argv[2], sys.argv[3]
TOL = 0.5  # IoU / accuracy points: float32 vs float64 argmax ties on a few pixels
# Cityscapes labelId -> trainId (19 classes); everything else is ignored
ID2TRAIN = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
            26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def run(args, want=0):
    p = subprocess.run([segda] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != want:
        fail(f"segda {' '.join(args)}: exit {p.returncode} (want {want})\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return p


def png(path):
    w, h, c, px = png_read.read(path)
    return np.frombuffer(px, dtype=np.uint8).reshape(h, w, c)


def reference(model, samples, scales, flip):
    """mIoU inputs from the definition: per-class IoU (NaN if absent) and pixel accuracy."""
    conf = np.zeros((19, 19), dtype=np.int64)
    mean = torch.tensor([104.00698793, 116.66876762, 122.67891434], dtype=torch.float64).view(1, 3, 1, 1)
    for rgb, lab in samples:
        h, w = lab.shape
        x = torch.from_numpy(rgb.astype(np.float64)).permute(2, 0, 1)[[2, 1, 0]].unsqueeze(0) - mean
        prob = torch.zeros(1, 19, h, w, dtype=torch.float64)
        for s in scales:
            views = [x, torch.flip(x, [3])] if flip else [x]
            acc = torch.zeros_like(prob)
            for k, v in enumerate(views):
                sh, sw = int(math.floor(h * s + 0.5)), int(math.floor(w * s + 0.5))
                if (sh, sw) != (h, w):
                    v = F.interpolate(v, size=(sh, sw), mode="bilinear", align_corners=False)
                with torch.no_grad():
                    logits, _ = model(v)
                p = torch.softmax(F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=True), 1)
                acc += torch.flip(p, [3]) if k else p
            prob += acc / len(views)
        pred = (prob / len(scales)).argmax(1)[0].numpy()
        keep = lab != 255
        np.add.at(conf, (lab[keep].astype(np.int64), pred[keep]), 1)
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    return 100 * iou, 100 * tp.sum() / conf.sum()  # noqa: E501


def diff(a, b):
    """Largest difference in IoU / accuracy points (an absent class, NaN, counts as 0: a few
    tied pixels may add a class with IoU 0 to one side)."""
    (ia, pa), (ib, pb) = a, b
    return max(abs(pa - pb), float(np.max(np.abs(np.nan_to_num(ia) - np.nan_to_num(ib)))))


def segda_eval(cfg, name, extra):
    out = f"{work}/eval-{name}"
    run(["eval", "--weights", f"{work}/w.safetensors", "--config", cfg, "--device", dev, "--out", out] + extra)
    js = json.load(open(f"{out}/eval.json"))
    iou = np.array([np.nan if v is None else v for v in js["iou"].values()], dtype=np.float64)
    return (iou, js["pixel_acc"]), open(f"{out}/eval.json", "rb").read()


def main():
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    gen = torch.Generator().manual_seed(11)
    model = build("deeplabv2_tiny", 19).double()
    randomize(model, gen)
    model.eval()
    # logits of a few units, not hundreds: a saturated softmax would make the multi-scale mean
    # tie exactly (0.5 / 0.5) wherever two scales disagree, and argmax tie-breaking is no test
    x = torch.randn(1, 3, 48, 96, generator=gen, dtype=torch.float64) * 50
    with torch.no_grad():
        f = 3.0 / float(model(x)[0].std())
        for name, p in model.named_parameters():
            if name.startswith("layer6.") or name.startswith("layer5."):
                p.mul_(f)
    torch.save(model.state_dict(), f"{work}/w.pth")
    subprocess.run([sys.executable, os.path.join(here, "..", "tools", "convert_pth.py"), f"{work}/w.pth",
                    f"{work}/w.safetensors", "--arch", "deeplabv2_tiny"], check=True, stdout=subprocess.DEVNULL)
    run(["synth", "--out", f"{work}/synth", "--count", "4", "--val-count", "6", "--seed", "5", "--size", "96x48"])
    cfg = f"{work}/eval.ini"
    with open(cfg, "w") as f:
        f.write(f"[data]\ntarget = cityscapes\ntarget_root = {work}/synth/target\neval_size = 96x48\n"
                f"source = gta5\nsource_root = {work}/synth/source\n")
    samples = []
    for lp in sorted(glob.glob(f"{work}/synth/target/gtFine/val/*/*_gtFine_labelIds.png")):
        ip = lp.replace("gtFine/", "leftImg8bit/", 1).replace("_gtFine_labelIds.png", "_leftImg8bit.png")
        ids = png(lp)[:, :, 0]
        lab = np.full(ids.shape, 255, dtype=np.uint8)
        for k, v in ID2TRAIN.items():
            lab[ids == k] = v
        samples.append((png(ip)[:, :, :3], lab))
    if len(samples) != 6:
        fail(f"expected 6 val images, found {len(samples)}")

    single = reference(model, samples, [1.0], False)
    plain, plain_bytes = segda_eval(cfg, "default", [])
    one, one_bytes = segda_eval(cfg, "one", ["--set", "eval.scales=1"])
    if plain_bytes != one_bytes:
        fail("eval.scales = 1 changed eval.json")
    d = diff(plain, single)
    print(f"{dev}: single scale vs PyTorch: {d:.3f} points (mIoU inputs), pixel acc {plain[1]:.2f}")
    if d > TOL:
        fail(f"single-scale eval differs from the reference by {d:.3f} points")
    for name, scales, flip in (("two", [0.75, 1.25], False), ("three-flip", [0.5, 1.0, 1.5], True)):
        ref = reference(model, samples, scales, flip)
        sep = diff(ref, single)
        args = ["--set", "eval.scales=" + ",".join(str(s) for s in scales)] + (["--flip"] if flip else [])
        got, _ = segda_eval(cfg, name, args)
        d = diff(got, ref)
        print(f"{dev}: scales {scales}{' + flip' if flip else ''}: {d:.3f} points from PyTorch "
              f"(single-scale reference is {sep:.2f} away)")
        if sep < 10 * TOL:
            fail(f"scales {scales}: the reference is only {sep:.2f} points from single scale: the test cannot tell")
        if d > TOL:
            fail(f"scales {scales}: eval differs from the reference by {d:.3f} points")
    if dev == "cpu":
        run(["eval", "--weights", f"{work}/w.safetensors", "--config", cfg, "--device", dev, "--out", f"{work}/bad",
             "--set", "eval.scales=0.5,0"], want=2)
        host_keys(cfg)
    print("all passed")
    return 0


def host_keys(cfg):
    base = ["train", "--config", cfg, "--device", "cpu", "--quiet", "--set", "model.arch=deeplabv2_tiny",
            "--set", "solver.iterations=2", "--set", "train.eval_every=0", "--set", "train.save_every=0",
            "--set", "data.batch=2", "--set", "data.crop=64x32", "--set", "data.workers=1"]
    for name, sets in (("range", ["data.scale_range=0.5,1.5"]), ("list", ["data.scales=0.75,1,1.25"]),
                       ("init", ["model.classifier_init=pytorch", "data.scale_range=0.5,1.5"])):
        args = base + ["--out", f"{work}/train-{name}"]
        for s in sets:
            args += ["--set", s]
        run(args)
    bad = (("data.scale_range=0.5,1.5", "data.short_side=40-60", ["data.scale_range", "data.short_side"]),
           ("data.scale_range=0.5,1.5", "data.scales=1,1.25", ["data.scales", "data.scale_range"]),
           ("data.scale_range=1.5,0.5", "data.mirror=true", ["data.scale_range", "LO,HI"]),
           ("data.scales=0.75,,1", "data.mirror=true", ["data.scales"]),
           ("model.classifier_init=kaiming", "data.mirror=true", ["model.classifier_init", "kaiming"]))
    for a, b, words in bad:
        p = run(base + ["--out", f"{work}/train-bad", "--set", a, "--set", b], want=2)
        if not all(w in p.stderr for w in words):
            fail(f"{a} {b}: the error does not name {words}: {p.stderr}")
    print("cpu: data.scale_range, data.scales and model.classifier_init train; bad values are refused")


if __name__ == "__main__":
    sys.exit(main())
