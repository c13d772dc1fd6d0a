#!/usr/bin/env python3
"""The summary of `segda demo`: each method's target mIoU as a bar, from demo.json
(source-only, the adaptation methods, the target-trained oracle), with its seed spread as an
error bar and the seeds as dots where demo.json has them (`miou_seeds`, `miou_std`).
Writes PREFIX.png and PREFIX.svg.

usage: tools/plot_demo.py DEMO.json [--out PREFIX]   (default PREFIX: summary beside DEMO.json)
Needs matplotlib (Debian: apt-get install python3-matplotlib); exits 3 without it.
"""
import argparse
import json
import math
import os
import statistics
import sys


def entries(demo):
    """(name, mean mIoU, std or None, seeds) in table order: source-only, methods, oracle."""
    out = []
    methods = dict(demo.get("methods", {}))
    order = (["source_only"] if "source_only" in methods else []) + [m for m in methods if m != "source_only"]
    items = [(m, methods[m]) for m in order]
    if "oracle" in demo:
        items.append(("oracle", demo["oracle"]))
    for name, r in items:
        seeds = [s for s in r.get("miou_seeds", []) if s is not None]
        mean = statistics.fmean(seeds) if seeds else r.get("miou")
        std = r.get("miou_std")
        if std is None and len(seeds) > 1:
            std = statistics.stdev(seeds)
        if mean is None or not math.isfinite(mean) or mean < 0:  # a run that failed has -1
            continue
        out.append((name, mean, std, seeds))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json", metavar="DEMO.json")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_demo: matplotlib not found (Debian: apt-get install python3-matplotlib)", file=sys.stderr)
        return 3
    demo = json.load(open(a.json))
    rows = entries(demo)
    if not rows:
        print(f"plot_demo: {a.json}: no results", file=sys.stderr)
        return 1
    prefix = a.out or os.path.join(os.path.dirname(a.json) or ".", "summary")
    names = [r[0] for r in rows]
    means = [100 * r[1] for r in rows]
    stds = [100 * r[2] if r[2] is not None else 0 for r in rows]
    colors = []
    for n in names:
        colors.append("#7f7f7f" if n == "source_only" else "#2ca02c" if n == "oracle" else "#1f77b4")
    fig, ax = plt.subplots(figsize=(max(6.0, 1.25 * len(rows) + 2), 4.6), constrained_layout=True)
    xs = list(range(len(rows)))
    has_spread = any(r[2] is not None for r in rows)
    ax.bar(xs, means, color=colors, width=0.65, yerr=stds if has_spread else None,
           error_kw={"capsize": 5, "elinewidth": 1.2, "ecolor": "black"})
    for x, r in zip(xs, rows):
        if len(r[3]) > 1:
            k = len(r[3])
            ax.scatter([x + 0.18 * (i - (k - 1) / 2) / max(1, k - 1) * 2 for i in range(k)],
                       [100 * s for s in r[3]], s=14, color="black", zorder=3)
    top = max(m + s for m, s in zip(means, stds))
    for x, m, s, r in zip(xs, means, stds, rows):
        txt = f"{m:.1f}" + (f" ± {s:.1f}" if r[2] is not None else "")
        ax.text(x, m + s + top * 0.02, txt, ha="center", va="bottom", fontsize=10)
    if names and names[0] == "source_only":
        ax.axhline(means[0], color="#7f7f7f", linestyle="--", linewidth=1, zorder=0)
    ax.set_xticks(xs)
    ax.set_xticklabels([n.replace("_", "-") for n in names], fontsize=10)
    ax.set_ylabel("target mIoU (%)")
    ax.set_ylim(0, top * 1.18 + 1)
    ax.grid(axis="y", alpha=0.3)
    nseeds = max((len(r[3]) for r in rows), default=0)
    sub = []
    if demo.get("iterations"):
        sub.append(f"{demo['iterations']} iterations")
    if demo.get("device"):
        sub.append(f"device {demo['device']}" + (f" ({demo['device_name']})" if demo.get("device_name") else ""))
    sub.append(f"mean ± std over {nseeds} seeds" if has_spread and nseeds > 1 else
               "mean ± std" if has_spread else "one seed each")
    ax.set_title("segda demo: synthetic GTA5 → Cityscapes, target mIoU\n" + ", ".join(sub), fontsize=11)
    d = os.path.dirname(prefix)
    if d:
        os.makedirs(d, exist_ok=True)
    for ext in ("png", "svg"):
        fig.savefig(f"{prefix}.{ext}", dpi=100)
    print(f"plot_demo: {prefix}.png, {prefix}.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
