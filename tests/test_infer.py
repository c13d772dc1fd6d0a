#!/usr/bin/env python3
"""`segda infer` against PyTorch: a random tiny DeepLab-v2 (converted from a .pth), a random
PNG of odd size, DeepLab-v2 preprocessing; the saved logits must match PyTorch's eval-mode
forward. usage: test_infer.py SEGDA WORKDIR DEVICE"""
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tools"))
from deeplab_torch import build, randomize  # noqa: E402


def write_png(path, rgb):
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def main():
    segda, work, device = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(work, exist_ok=True)
    gen = torch.Generator().manual_seed(3)
    model = build("deeplabv2_tiny", 19).double()
    randomize(model, gen)
    torch.save(model.state_dict(), os.path.join(work, "w.pth"))
    subprocess.run([sys.executable, os.path.join(here, "..", "tools", "convert_pth.py"), os.path.join(work, "w.pth"),
                    os.path.join(work, "w.safetensors"), "--arch", "deeplabv2_tiny"], check=True, stdout=subprocess.DEVNULL)
    rgb = np.random.default_rng(5).integers(0, 256, size=(53, 71, 3), dtype=np.uint8)
    write_png(os.path.join(work, "img.png"), rgb)
    out = os.path.join(work, f"logits-{device.replace(':', '_')}.npy")
    subprocess.run([segda, "infer", "--weights", os.path.join(work, "w.safetensors"), "--input",
                    os.path.join(work, "img.png"), "--save-logits", out, "--device", device], check=True)
    got = np.load(out)
    x = torch.from_numpy(rgb.astype(np.float64)).permute(2, 0, 1)[[2, 1, 0]]  # RGB -> BGR
    x = x - torch.tensor([104.00698793, 116.66876762, 122.67891434], dtype=torch.float64).view(3, 1, 1)
    model.eval()
    with torch.no_grad():
        want, _ = model(x.unsqueeze(0))
    want = want.numpy()
    err = np.abs(got - want).max() / np.abs(want).max()
    print(f"segda infer on {device}: logits {got.shape}, max relative error {err:.2e}")
    if got.shape != want.shape or not err <= 1e-4:
        print("FAIL: logits differ from PyTorch")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
