"""`segda pseudo-label --mode dass` against a NumPy reimplementation of DASS's static
pseudo labels (BiDA's released code: trainer/damnet_trainer.py gene_thres/save_pred,
utils/func.py), computed from `segda infer`'s raw logits of the same model on the same
images (upsampled, softmaxed and thresholded here, not by segda).
Rule: per image and class, the sorted confidences of the pixels predicted as that class,
every 5th kept; class threshold = the floor(P n)-th largest of all kept values (P = --portion);
a pixel keeps its argmax if any class's probability reaches that class's threshold, or if
its confidence is strictly above the image's value at rank floor(Q HW) - 1 (Q =
--image-portion); else 255. --unit-thresholds classes get threshold 1, unseen ones 2.
usage: test_pseudo_dass.py SEGDA WORKDIR BACKEND"""
import glob
import os
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from png_read import read  # noqa: E402

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
P, Q, UNIT = 0.2, 0.1, 2  # class portion, image portion, a class forced to threshold 1
TOL = 1e-4                # float32 device values vs float64 here: decisions this close are not compared


def run(*args):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode:
        sys.exit(f"FAIL: {' '.join(args)} -> {r.returncode}\n{r.stderr}")
    return r


def upsample(x, oh, ow):
    """Bilinear, corners aligned: [C, h, w] -> [C, oh, ow] in float64."""
    c, h, w = x.shape
    ys = np.linspace(0, h - 1, oh) if oh > 1 else np.zeros(1)
    xs = np.linspace(0, w - 1, ow) if ow > 1 else np.zeros(1)
    y0 = np.floor(ys).astype(int).clip(0, h - 1)
    x0 = np.floor(xs).astype(int).clip(0, w - 1)
    y1, x1 = (y0 + 1).clip(0, h - 1), (x0 + 1).clip(0, w - 1)
    fy, fx = (ys - y0)[None, :, None], (xs - x0)[None, None, :]
    top = x[:, y0][:, :, x0] * (1 - fx) + x[:, y0][:, :, x1] * fx
    bot = x[:, y1][:, :, x0] * (1 - fx) + x[:, y1][:, :, x1] * fx
    return top * (1 - fy) + bot * fy


def softmax(x):
    e = np.exp(x - x.max(0, keepdims=True))
    return e / e.sum(0, keepdims=True)


def main():
    segda, work, backend = sys.argv[1], sys.argv[2], sys.argv[3]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    syn = os.path.join(work, "synth")
    run(segda, "synth", "--out", syn, "--count", "6", "--val-count", "1", "--size", "64x32", "--seed", "7")
    cfg = os.path.join(SRC, "configs", "synth_source_only.ini")
    sets = ["--set", f"data.source_root={syn}/source", "--set", f"data.target_root={syn}/target",
            "--set", "data.source_size=64x32", "--set", "data.target_size=64x32", "--set", "data.eval_size=64x32"]
    run(segda, "train", "--config", cfg, *sets, "--set", "solver.iterations=60", "--set", "train.eval_every=0",
        "--set", "data.batch=2", "--device", "cpu", "--out", f"{work}/run", "--quiet")
    w = f"{work}/run/final.safetensors"
    run(segda, "pseudo-label", "--mode", "dass", "--weights", w, "--config", cfg, *sets, "--portion", str(P),
        "--image-portion", str(Q), "--unit-thresholds", str(UNIT), "--device", backend, "--out", f"{work}/dass")
    run(segda, "pseudo-label", "--weights", w, "--config", cfg, *sets, "--portion", str(P), "--cap", "0",
        "--device", backend, "--out", f"{work}/cbst")

    images = sorted(glob.glob(f"{syn}/target/leftImg8bit/train/*/*_leftImg8bit.png"))
    probs, names = [], []
    for i, img in enumerate(images):
        out = f"{work}/logits{i}.npy"
        run(segda, "infer", "--weights", w, "--input", img, "--save-logits", out, "--device", backend)
        lg = np.load(out)[0].astype(np.float64)
        probs.append(softmax(upsample(lg, 32, 64)))  # input size = label size here
        city = os.path.basename(os.path.dirname(img))
        names.append(f"{city}_{os.path.basename(img).replace('_leftImg8bit.png', '')}")
    k = probs[0].shape[0]

    # pass 1: class thresholds over the whole set
    kept = {c: [] for c in range(k)}
    for p in probs:
        conf, pred = p.max(0), p.argmax(0)
        for c in range(k):
            kept[c].extend(np.sort(conf[pred == c])[::5])
    thr = np.full(k, 2.0)
    for c in range(k):
        v = np.sort(np.array(kept[c]))
        if len(v):
            i = int(len(v) * P)
            thr[c] = v[-i] if i else v[0]
    thr[UNIT] = 1.0
    got_thr = np.array([float(l.split()[-2]) for l in open(f"{work}/dass/thresholds.txt")])
    if np.abs(got_thr - thr).max() > TOL:
        sys.exit(f"FAIL: thresholds\n segda {got_thr}\n ref   {thr}")
    if (thr < 1).sum() < 3:
        sys.exit(f"FAIL: the tiny model predicts too few classes for the test to mean much: {thr}")

    # pass 2: labels
    only_global = only_image = compared = skipped = 0
    for p, name in zip(probs, names):
        conf, pred = p.max(0), p.argmax(0)
        g = (p >= thr[:, None, None]).any(0)
        order = np.sort(conf.ravel())[::-1]
        r = int(Q * conf.size) - 1
        cut = order[r]
        loc = conf > cut
        ref = np.where(g | loc, pred, 255)
        srt = np.sort(p, 0)
        unsure = (np.abs(p - thr[:, None, None]).min(0) < TOL) | (np.abs(conf - cut) < TOL) | \
                 (srt[-1] - srt[-2] < TOL)
        lw, lh, _, raw = read(f"{work}/dass/{name}.png")
        got = np.frombuffer(raw, np.uint8).reshape(lh, lw)
        bad = (got != ref) & ~unsure
        if bad.any():
            ys, xs = np.nonzero(bad)
            sys.exit(f"FAIL: {name}: {bad.sum()} labels differ, e.g. at ({ys[0]}, {xs[0]}): "
                     f"segda {got[ys[0], xs[0]]} ref {ref[ys[0], xs[0]]}")
        only_global += (g & ~loc).sum()
        only_image += (loc & ~g).sum()
        compared += (~unsure).sum()
        skipped += unsure.sum()
    if skipped > 0.02 * (compared + skipped):
        sys.exit(f"FAIL: {skipped} of {compared + skipped} pixels too close to a decision to compare")
    if not only_global or not only_image:
        sys.exit(f"FAIL: the union is not exercised (global only {only_global}, image only {only_image})")
    cb = np.concatenate([np.frombuffer(read(f"{work}/cbst/{n}.png")[3], np.uint8) for n in names])
    da = np.concatenate([np.frombuffer(read(f"{work}/dass/{n}.png")[3], np.uint8) for n in names])
    if (cb == da).all():
        sys.exit("FAIL: --mode dass writes the same labels as the default mode")
    print(f"ok: {compared} pixels compared ({skipped} near a decision skipped), {only_global} kept by the class "
          f"thresholds only, {only_image} by the image's top {Q:g} only; density {(da != 255).mean():.3f}")


if __name__ == "__main__":
    main()
