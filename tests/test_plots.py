#!/usr/bin/env python3
"""The plots: tools/plot_run.py on one run and on two overlaid (and on a run whose
metrics.jsonl predates the per-class IoU: best_eval.json then), tools/plot_demo.py on a
demo.json with seed spreads and on one without, and `segda demo` writing DIR/summary.png.
Each PNG must decode to a picture of a sane size, each SVG must parse. The pictures are left
in WORKDIR to look at.
usage: test_plots.py SEGDA WORKDIR
"""
import json
import statistics
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402

segda, work = sys.argv[1], sys.argv[2]
tools = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools")


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        fail(f"{' '.join(cmd)}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    return p


def check(prefix, min_w, min_h):
    img = mpimg.imread(prefix + ".png")
    h, w = img.shape[:2]
    if w < min_w or h < min_h or img.std() < 0.01:  # not blank
        fail(f"{prefix}.png: {w}x{h}, std {img.std():.3f}")
    root = ET.parse(prefix + ".svg").getroot()
    if not root.tag.endswith("svg"):
        fail(f"{prefix}.svg is not SVG")
    return w, h


shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
run([segda, "synth", "--out", f"{work}/synth", "--count", "8", "--seed", "3"])
common = ["--set", "model.arch=deeplabv2_tiny", "--set", "data.source=gta5",
          "--set", f"data.source_root={work}/synth/source", "--set", "data.target=cityscapes",
          "--set", f"data.target_root={work}/synth/target", "--set", "data.source_size=64x32",
          "--set", "data.target_size=64x32", "--set", "data.eval_size=64x32", "--set", "data.batch=2",
          "--set", "adaptsegnet.d_width=8", "--set", "train.save_every=0", "--set", "train.log_every=1",
          "--set", "train.eval_max=2", "--set", "train.device=cpu", "--set", "solver.iterations=8",
          "--set", "train.eval_every=4", "--quiet"]
for m in ("source_only", "adaptsegnet"):
    run([segda, "train"] + common + ["--set", f"method.name={m}", "--out", f"{work}/{m}"])
py = sys.executable
run([py, f"{tools}/plot_run.py", f"{work}/adaptsegnet", "--out", f"{work}/one"])
check(f"{work}/one", 800, 600)
run([py, f"{tools}/plot_run.py", f"{work}/source_only", f"{work}/adaptsegnet", "--out", f"{work}/two"])
check(f"{work}/two", 800, 600)
# an older run: evaluation lines without "iou"
old = f"{work}/old"
shutil.copytree(f"{work}/source_only", old)
with open(f"{old}/metrics.jsonl") as f:
    recs = [json.loads(line) for line in f]
with open(f"{old}/metrics.jsonl", "w") as f:
    for r in recs:
        r.pop("iou", None)
        f.write(json.dumps(r) + "\n")
p = run([py, f"{tools}/plot_run.py", old, "--out", f"{work}/old"])
check(f"{work}/old", 800, 600)

demo = {"device": "cpu", "device_name": "host CPU", "iterations": 300,
        "methods": {"source_only": {"miou": 0.30, "seconds": 1}, "adaptsegnet": {"miou": 0.33, "seconds": 1}},
        "oracle": {"miou": 0.52, "seconds": 1}}
json.dump(demo, open(f"{work}/demo_one.json", "w"))
run([py, f"{tools}/plot_demo.py", f"{work}/demo_one.json", "--out", f"{work}/demo_one"])
check(f"{work}/demo_one", 500, 300)
demo["methods"]["source_only"]["miou_seeds"] = [0.30, 0.31, 0.29]
demo["methods"]["adaptsegnet"]["miou_std"] = 0.01
json.dump(demo, open(f"{work}/demo_seeds.json", "w"))
run([py, f"{tools}/plot_demo.py", f"{work}/demo_seeds.json", "--out", f"{work}/demo_seeds"])
check(f"{work}/demo_seeds", 500, 300)

run([segda, "demo", "--dir", f"{work}/demo", "--iters", "2", "--methods", "adaptsegnet", "--device", "cpu",
     "--size", "64x32", "--jobs", "1", "--seeds", "2"])
got = json.load(open(f"{work}/demo/demo.json"))
if sorted(got["methods"]) != ["adaptsegnet", "source_only"] or "oracle" not in got or got.get("seeds") != 2:
    fail(f"demo.json: {got}")
# each row: the mean and sample std of its seeds, each seed's mIoU the one its run reported
for name, r in list(got["methods"].items()) + [("oracle", got["oracle"])]:
    seeds = r["miou_seeds"]
    runs = [float(open(f"{work}/demo/{name}/seed{k}/demo_result.txt").read().split()[0]) for k in (1, 2)]
    if len(seeds) != 2 or any(abs(a - b) > 1e-4 for a, b in zip(seeds, runs)):
        fail(f"demo.json: {name}: miou_seeds {seeds}, the runs reported {runs}")
    if abs(r["miou"] - statistics.fmean(runs)) > 1e-4 or abs(r["miou_std"] - statistics.stdev(runs)) > 1e-4:
        fail(f"demo.json: {name}: miou {r['miou']} +- {r['miou_std']}, the runs give "
             f"{statistics.fmean(runs)} +- {statistics.stdev(runs)}")
check(f"{work}/demo/summary", 500, 300)
print(f"plots: plot_run (one run, two runs, an old run), plot_demo (one seed, seed spread), "
      f"segda demo's summary.png; in {work}")
