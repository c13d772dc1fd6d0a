"""BiDA trained on offline static labels (bida.static_source = target_labels,
data.target_labels = a folder of class-id PNGs, as `segda pseudo-label --mode dass` writes).
The target set is the source set itself (one image, no crop), so the target pass sees the
source image. The reference is the source CE of the same step, computed by the ordinary
supervised path: with the source's own labels (labelIds mapped to train ids here, the right
40% of the image 255) as the folder of both domains, the target CE seg_t must equal the
source CE and dens_static the labelled fraction; with a folder of all-255 labels seg_t must
be 0; a training without the folder is refused. With data.mirror on and a zero learning rate
(the model fixed), each step's seg_t must be one of the source CEs of the flipped and
unflipped image with its equally flipped labels (labels left unflipped under a flipped
image give another value), both flips seen. A run stopped and resumed ends with the same
losses and the same checkpoint as an uninterrupted one.
usage: test_bida_static_dir.py SEGDA WORKDIR BACKEND"""
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from png_read import read  # noqa: E402

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Cityscapes labelIds -> the 19 train ids
TRAIN_ID = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13,
            27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


def write_grey_png(path, w, h, data):
    raw = b"".join(b"\0" + data[y * w:(y + 1) * w] for y in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def train(segda, backend, work, name, extra):
    out = f"{work}/{name}"
    syn = f"{work}/synth"
    cmd = [segda, "train", "--config", os.path.join(SRC, "configs", "synth_source_only.ini"),
           "--set", "method.name=bida", "--set", f"data.source_root={syn}/source",
           "--set", "data.target=gta5", "--set", f"data.target_root={syn}/source",
           "--set", "data.source_size=64x32", "--set", "data.target_size=64x32", "--set", "data.eval_size=64x32",
           "--set", "data.mirror=false", "--set", "data.batch=1", "--set", "bida.dynamic=false",
           "--set", "bida.static_source=target_labels", "--set", "solver.iterations=1",
           "--set", "train.eval_every=0", "--set", "train.log_every=1", "--device", backend, "--out", out, "--quiet"]
    r = subprocess.run(cmd + extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode:
        return None, r
    rows = losses(out)
    if not rows:
        sys.exit(f"FAIL: {name}: no seg_t in {out}/metrics.jsonl")
    return rows[0], r


def losses(out):
    return [json.loads(l)["loss"] for l in open(f"{out}/metrics.jsonl") if '"seg_t"' in l]


def close(a, b):
    return abs(a - b) <= 1e-4 * max(1.0, abs(b))


def main():
    segda, work, backend = sys.argv[1], sys.argv[2], sys.argv[3]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    r = subprocess.run([segda, "synth", "--out", f"{work}/synth", "--count", "1", "--val-count", "1",
                        "--size", "64x32", "--seed", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode:
        sys.exit("FAIL: synth")
    w, h, _, ids = read(f"{work}/synth/source/labels/00000.png")
    # the train ids, with the right 40% of the image unlabelled (255 must be ignored)
    gt = bytes(TRAIN_ID.get(v, 255) if i % w < 0.6 * w else 255 for i, v in enumerate(ids))
    for d, data in (("gt", gt), ("empty", bytes([255]) * (w * h))):
        os.makedirs(f"{work}/{d}")
        write_grey_png(f"{work}/{d}/00000.png", w, h, data)

    row, r = train(segda, backend, work, "no_dir", [])
    if row is not None or "data.target_labels" not in r.stderr:
        sys.exit(f"FAIL: bida.static_source = target_labels without data.target_labels: {r.stderr}")
    row, r = train(segda, backend, work, "empty", ["--set", f"data.target_labels={work}/empty"])
    if row is None:
        sys.exit(f"FAIL: training on the empty folder: {r.stderr}")
    if row["seg_t"] != 0 or row.get("dens_static", 0) != 0:
        sys.exit(f"FAIL: all-255 labels give seg_t {row['seg_t']}, dens_static {row.get('dens_static')}")
    row, r = train(segda, backend, work, "gt", ["--set", f"data.target_labels={work}/gt",
                                                "--set", f"data.source_labels={work}/gt"])
    if row is None:
        sys.exit(f"FAIL: training on the labelled folder: {r.stderr}")
    dens = sum(v != 255 for v in gt) / len(gt)
    if not row["seg_t"] > 0 or not close(row["seg_t"], row["seg"]) or \
            abs(row["dens_static"] - dens) > 1e-6:
        sys.exit(f"FAIL: seg_t {row['seg_t']} vs the source CE {row['seg']} of the same image and labels; "
                 f"dens_static {row['dens_static']} vs {dens}")

    # flips: the model fixed (lr 0), each domain's loader flips on its own draws
    labelled = ["--set", f"data.target_labels={work}/gt", "--set", f"data.source_labels={work}/gt",
                "--set", "data.mirror=true"]
    same = row
    row, r = train(segda, backend, work, "flip", labelled + ["--set", "solver.iterations=12", "--set", "solver.lr=0"])
    if row is None:
        sys.exit(f"FAIL: training with flips: {r.stderr}")
    rows = losses(f"{work}/flip")
    seg = []  # the source CEs seen: the unflipped and the flipped image
    for x in rows:
        if not any(close(x["seg"], v) for v in seg):
            seg.append(x["seg"])
    hit = set()
    for i, x in enumerate(rows):
        j = [k for k, v in enumerate(seg) if close(x["seg_t"], v)]
        if not j:
            sys.exit(f"FAIL: step {i + 1} with flips: seg_t {x['seg_t']} is none of the source CEs {seg} "
                     "(labels not flipped with their image?)")
        hit.add(j[0])
    if len(rows) != 12 or len(seg) != 2 or len(hit) != 2:
        sys.exit(f"FAIL: with flips, {len(rows)} steps, source CEs {seg}, seg_t matched {sorted(hit)}: "
                 "both flips must be seen in both domains")

    # resume: stopped after 3 of 6 iterations, then resumed
    resume = labelled + ["--set", "solver.iterations=6", "--set", "train.save_every=1"]
    full, r = train(segda, backend, work, "full", resume)
    if full is None:
        sys.exit(f"FAIL: the uninterrupted run: {r.stderr}")
    part, r = train(segda, backend, work, "part", resume + ["--set", "solver.stop=3"])
    if part is None:
        sys.exit(f"FAIL: the first half: {r.stderr}")
    part, r = train(segda, backend, work, "part", resume + ["--resume", "auto"])
    if part is None:
        sys.exit(f"FAIL: the resumed half: {r.stderr}")
    a, b = losses(f"{work}/full"), losses(f"{work}/part")
    if a != b or len(a) != 6:
        sys.exit(f"FAIL: losses differ after resume:\n{a}\n{b}")
    with open(f"{work}/full/last.safetensors", "rb") as f, open(f"{work}/part/last.safetensors", "rb") as g:
        if f.read() != g.read():
            sys.exit("FAIL: checkpoints differ after resume")
    print(f"ok: seg_t {same['seg_t']:.6f} = source CE {same['seg']:.6f}, density {dens:.3f}; empty folder: seg_t 0; "
          f"flips: seg_t in {seg} over 12 steps; resume: identical losses and checkpoint")


if __name__ == "__main__":
    main()
