#!/usr/bin/env python3
"""Times one DeepLab-v2 training step in PyTorch and in segda on the same model and input,
in the same run, and prints the ratio.

  compare_torch.py [--segda build/segda] [--arch deeplabv2_resnet101] [--size 321]
                   [--device cpu] [--torch-device cpu|cuda] (--size S or HxW) [--runs 5] [--json OUT.json]

The step is the one `segda bench step` runs: forward with batch statistics (BN affine
frozen), main and 0.1 x auxiliary cross-entropy on logits upsampled to the input
(align_corners=True), backward, SGD (momentum 0.9, wd 5e-4, 10x LR on the heads).
PyTorch's peak memory is read from its allocator on CUDA, and as the growth of the
process's peak resident set on the CPU."""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from deeplab_torch import DeepLabV2  # noqa: E402


def torch_step_ms(arch, size, device, runs):
    h, w = size
    torch.manual_seed(0)
    model = DeepLabV2(arch, 19).to(device)
    model.train()
    for n, p in model.named_parameters():
        p.requires_grad_(not ("bn" in n or "downsample.1" in n))
    heads = [p for n, p in model.named_parameters() if n.startswith(("layer5", "layer6"))]
    back = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith(("layer5", "layer6"))]
    opt = torch.optim.SGD([{"params": back}, {"params": heads, "lr": 2.5e-3}], lr=2.5e-4,
                          momentum=0.9, weight_decay=5e-4)
    x = torch.rand(1, 3, h, w, device=device)
    y = torch.full((1, h, w), 3, dtype=torch.long, device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        main, aux = model(x)
        up = F.interpolate(main, size=(h, w), mode="bilinear", align_corners=True)
        upa = F.interpolate(aux, size=(h, w), mode="bilinear", align_corners=True)
        loss = F.cross_entropy(up, y, ignore_index=255) + 0.1 * F.cross_entropy(upa, y, ignore_index=255)
        loss.backward()
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()  # warm-up
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        step()
        times.append((time.perf_counter() - t) * 1e3)
    if device.startswith("cuda"):
        mem = torch.cuda.max_memory_allocated() / 2**20
    else:
        mem = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    return statistics.median(times), min(times), max(times), mem


def segda_step_ms(segda, arch, size, device, runs):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "b.json")
        subprocess.run([segda, "bench", "step", "--device", device, "--step-arch", arch, "--step-size",
                        f"{size[0]}x{size[1]}", "--runs", str(runs), "--budget", "1000", "--filter", "source_only", "--json", out], check=True,
                       stdout=subprocess.DEVNULL)
        with open(out) as f:
            r = json.load(f)["records"][0]
    return r["ms_median"], r["ms_min"], r["ms_max"], r["mem_mb"], r["device"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--segda", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "segda"))
    ap.add_argument("--arch", default="deeplabv2_resnet101")
    ap.add_argument("--size", default="321", help="S or HxW")
    ap.add_argument("--device", default="cpu", help="segda device")
    ap.add_argument("--torch-device", default="cpu")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", help="write both measurements here")
    a = ap.parse_args()
    a.size = tuple(int(v) for v in a.size.lower().split("x")) if "x" in a.size else (int(a.size), int(a.size))
    s = segda_step_ms(a.segda, a.arch, a.size, a.device, a.runs)
    t = torch_step_ms(a.arch, a.size, a.torch_device, a.runs)
    print(f"{a.arch} 1x3x{a.size[0]}x{a.size[1]} training step")
    print(f"  segda {a.device} ({s[4]}): median {s[0]:.1f} ms [{s[1]:.1f}, {s[2]:.1f}], peak {s[3]:.0f} MiB")
    print(f"  PyTorch {torch.__version__} {a.torch_device}: median {t[0]:.1f} ms [{t[1]:.1f}, {t[2]:.1f}], "
          f"peak {t[3]:.0f} MiB ({'allocator' if a.torch_device.startswith('cuda') else 'RSS growth'})")
    print(f"  ratio segda / PyTorch: {s[0] / t[0]:.2f}x time, {s[3] / max(t[3], 1e-9):.2f}x memory")
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump({"segda": {"device": a.device, "ms_median": s[0], "mem_mb": s[3]},
                       "torch": {"device": a.torch_device, "ms_median": t[0], "mem_mb": t[3]},
                       "ratio": s[0] / t[0]}, f, indent=1)
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
