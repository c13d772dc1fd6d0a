#!/usr/bin/env python3
"""Plots of segda training runs: loss terms, learning rate and target mIoU against
iterations (several runs overlaid, one colour a run) and the per-class IoU of each run's best
evaluation, from RUN/metrics.jsonl (RUN/best_eval.json when its evaluation lines predate the
per-class IoU). Writes PREFIX.png and PREFIX.svg.

usage: tools/plot_run.py RUN [RUN...] [--out PREFIX] [--smooth N] [--title T] [--dpi D]
Needs matplotlib (Debian: apt-get install python3-matplotlib).
"""
import argparse
import json
import math
import os
import sys


def load_run(path):
    steps, evals = [], []
    metrics = os.path.join(path, "metrics.jsonl")
    if not os.path.exists(metrics):
        sys.exit(f"plot_run: {metrics}: no such file (is {path} a segda train --out folder?)")
    with open(metrics) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a run killed mid-line
                print(f"plot_run: {metrics}:{n}: skipping a malformed line", file=sys.stderr)
                continue
            if "loss" in rec:
                steps.append(rec)
            elif "eval" in rec:
                evals.append(rec)
    # a resumed run appends: the last record of an iteration wins
    steps = list({r["iter"]: r for r in steps}.values())
    evals = list({r["iter"]: r for r in evals}.values())
    steps.sort(key=lambda r: r["iter"])
    evals.sort(key=lambda r: r["iter"])
    label = os.path.basename(os.path.normpath(path))
    info = os.path.join(path, "run.json")
    method = None
    if os.path.exists(info):
        try:
            method = json.load(open(info)).get("method")
        except (json.JSONDecodeError, OSError):
            pass
    best = None
    if evals:
        b = max(evals, key=lambda r: r["eval"].get("mIoU", -1))
        if "iou" in b:
            best = (b["iter"], b["eval"].get("mIoU"), b["iou"])
    if best is None and os.path.exists(os.path.join(path, "best_eval.json")):
        be = json.load(open(os.path.join(path, "best_eval.json")))  # percent
        best = (None, (be.get("mIoU") or 0) / 100,
                {k: (v / 100 if v is not None else None) for k, v in be.get("iou", {}).items()})
    return {"path": path, "label": label, "method": method, "steps": steps, "evals": evals, "best": best}


def smooth(xs, n):
    """Trailing moving average over n points (n <= 1: unchanged)."""
    if n <= 1:
        return xs
    out, acc = [], 0.0
    for i, x in enumerate(xs):
        acc += x
        if i >= n:
            acc -= xs[i - n]
        out.append(acc / min(i + 1, n))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="RUN", help="segda train output folders")
    ap.add_argument("--out", default=None, help="output prefix (default: RUN/plot for one run, else runs)")
    ap.add_argument("--smooth", type=int, default=-1,
                    help="moving average over N logged points (default: about 1/25 of a run's points)")
    ap.add_argument("--title", default=None)
    ap.add_argument("--dpi", type=int, default=100, help="PNG resolution (default 100)")
    a = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_run: matplotlib not found (Debian: apt-get install python3-matplotlib)", file=sys.stderr)
        return 3
    runs = [load_run(p) for p in a.runs]
    labels = [r["label"] for r in runs]
    if len(set(labels)) < len(labels):  # same folder names: the paths tell them apart
        for r in runs:
            r["label"] = os.path.normpath(r["path"])
    prefix = a.out or (os.path.join(a.runs[0], "plot") if len(runs) == 1 else "runs")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, r in enumerate(runs):
        r["color"] = colors[i % len(colors)]
        # earlier runs drawn wider: runs that coincide (same seed, same first steps) stay visible
        r["lw"] = 1.5 + 1.6 * (len(runs) - 1 - i) / max(1, len(runs) - 1)

    terms = []
    for r in runs:
        for s in r["steps"]:
            for k in s["loss"]:
                if k not in terms:
                    terms.append(k)
    ncol = 4
    loss_rows = max(1, math.ceil(len(terms) / ncol))
    has_bars = any(r["best"] for r in runs)
    nrows = loss_rows + 1 + (1 if has_bars else 0)
    heights = [1.0] * loss_rows + [1.15] + ([1.35] if has_bars else [])
    fig = plt.figure(figsize=(4.2 * ncol, 2.9 * sum(heights) + 0.8), constrained_layout=True)
    gs = fig.add_gridspec(nrows, ncol, height_ratios=heights)

    # loss terms: one panel a term, every run in it
    for j, term in enumerate(terms):
        ax = fig.add_subplot(gs[j // ncol, j % ncol])
        for r in runs:
            pts = [(s["iter"], s["loss"][term]) for s in r["steps"] if term in s["loss"]]
            pts = [(x, y) for x, y in pts if y is not None and math.isfinite(y)]
            if not pts:
                continue
            xs, ys = zip(*pts)
            n = a.smooth if a.smooth >= 0 else max(1, len(ys) // 25)
            if n > 1:
                ax.plot(xs, ys, color=r["color"], alpha=0.25, linewidth=0.8)
            ax.plot(xs, smooth(list(ys), n), color=r["color"], linewidth=r["lw"], label=r["label"])
        ax.set_title(f"loss: {term}", fontsize=11)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        if j == 0 and len(runs) > 1:
            ax.legend(fontsize=8, loc="upper right")
    if not terms:
        ax = fig.add_subplot(gs[0, :])
        ax.axis("off")
        ax.text(0.5, 0.5, "no training steps logged yet", ha="center", va="center", transform=ax.transAxes)

    # learning rate(s), and target mIoU
    row = loss_rows
    ax = fig.add_subplot(gs[row, 0:2])
    for r in runs:
        xs = [s["iter"] for s in r["steps"]]
        if xs:
            ax.plot(xs, [s["lr"] for s in r["steps"]], color=r["color"], linewidth=r["lw"], label=f"{r['label']}: lr")
        aux = [(s["iter"], s["lr_aux"]) for s in r["steps"] if "lr_aux" in s]
        if aux:
            ax.plot(*zip(*aux), color=r["color"], linewidth=r["lw"], linestyle="--", label=f"{r['label']}: lr (discriminator)")
    ax.set_title("learning rate", fontsize=11)
    ax.set_xlabel("iteration")
    ax.set_yscale("log")  # the discriminators' rates are 100x smaller
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    ax = fig.add_subplot(gs[row, 2:4])
    any_eval = False
    for r in runs:
        pts = [(e["iter"], 100 * e["eval"]["mIoU"]) for e in r["evals"] if "mIoU" in e["eval"]]
        if pts:
            any_eval = True
            xs, ys = zip(*pts)
            ax.plot(xs, ys, color=r["color"], marker="o", markersize=2 + 1.5 * r["lw"], linewidth=r["lw"],
                    label=r["label"])
            k = max(range(len(ys)), key=lambda i: ys[i])
            ax.annotate(f"{ys[k]:.1f}", (xs[k], ys[k]), textcoords="offset points", xytext=(0, 6),
                        ha="center", fontsize=8, color=r["color"])
    ax.margins(y=0.15)  # room for the best value's label
    ax.set_title("target mIoU (%)", fontsize=11)
    ax.set_xlabel("iteration")
    ax.grid(alpha=0.3)
    if any_eval:
        ax.legend(fontsize=8, loc="lower right")
    else:
        ax.text(0.5, 0.5, "no evaluation yet (train.eval_every)", ha="center", va="center", transform=ax.transAxes)

    # per-class IoU of each run's best evaluation, grouped bars
    if has_bars:
        ax = fig.add_subplot(gs[row + 1, :])
        classes = []
        for r in runs:
            if r["best"]:
                for c in r["best"][2]:
                    if c not in classes:
                        classes.append(c)
        with_best = [r for r in runs if r["best"]]
        width = 0.8 / len(with_best)
        for i, r in enumerate(with_best):
            it, miou, iou = r["best"]
            xs = [c + (i - (len(with_best) - 1) / 2) * width for c in range(len(classes))]
            ys = [100 * iou[c] if iou.get(c) is not None else 0 for c in classes]
            where = f"iteration {it}" if it is not None else "best_eval.json"
            ax.bar(xs, ys, width=width * 0.95, color=r["color"],
                   label=f"{r['label']}: mIoU {100 * miou:.1f} ({where})")
            for x, c in zip(xs, classes):
                if iou.get(c) is None:  # absent from ground truth and prediction
                    ax.text(x, 0.5, "n/a", ha="center", va="bottom", fontsize=6, rotation=90, color="0.4")
        ax.set_xticks(range(len(classes)))
        ax.set_xticklabels(classes, rotation=35, ha="right", fontsize=9)
        ax.set_ylabel("IoU (%)")
        ax.set_ylim(0, 100)
        ax.set_title("per-class IoU of the best evaluation", fontsize=11)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")

    title = a.title or ("segda: " + ", ".join(
        r["label"] + (f" ({r['method']})" if r["method"] and r["method"] != r["label"] else "") for r in runs))
    fig.suptitle(title, fontsize=13)
    d = os.path.dirname(prefix)
    if d:
        os.makedirs(d, exist_ok=True)
    for ext in ("png", "svg"):
        fig.savefig(f"{prefix}.{ext}", dpi=a.dpi)
    print(f"plot_run: {prefix}.png, {prefix}.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
