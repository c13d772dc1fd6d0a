#!/usr/bin/env python3
"""Converts PyTorch DeepLab-v2 weights to segda's safetensors, and back.

  convert_pth.py IN.pth OUT.safetensors --arch deeplabv2_resnet101 [--num-classes 19]
  convert_pth.py IN.safetensors OUT.pth

A .pth may hold a plain state_dict or wrap one under 'state_dict' or 'model'; prefixes such
as 'module.' and 'Scale.' are stripped. Names follow the AdaptSegNet/ADVENT state_dict
(main classifier layer6 on layer4, auxiliary layer5 on layer3). Tensors whose name or shape
the architecture does not have (for example the 21-class head of the ImageNet/COCO init)
are reported and left out; parameters the file lacks keep segda's initialization."""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402
from deeplab_torch import ARCHS, build  # noqa: E402

PREFIXES = ("module.", "Scale.", "model.")


def unwrap(obj):
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if key in obj and isinstance(obj[key], dict):
                return unwrap(obj[key])
    return obj


def strip(name):
    changed = True
    while changed:
        changed = False
        for p in PREFIXES:
            if name.startswith(p):
                name, changed = name[len(p):], True
    return name


def to_safetensors(args):
    sd = unwrap(torch.load(args.input, map_location="cpu"))
    if not isinstance(sd, dict):
        sys.exit(f"{args.input}: no state_dict found")
    ref = build(args.arch, args.num_classes, multi_level=not args.single_level, width=args.width).state_dict()
    want = {k: tuple(v.shape) for k, v in ref.items() if not k.endswith("num_batches_tracked")}
    out, skipped = {}, []
    for k, v in sd.items():
        if not torch.is_tensor(v):
            continue
        name = strip(k)
        if name.endswith("num_batches_tracked"):
            continue
        if name not in want:
            skipped.append(f"{k}: no such parameter in {args.arch}")
        elif tuple(v.shape) != want[name]:
            skipped.append(f"{k}: shape {tuple(v.shape)}, {args.arch} needs {want[name]}")
        else:
            out[name] = v.detach().float().cpu().numpy()
    missing = sorted(set(want) - set(out))
    meta = {"format": "segda-1", "arch": args.arch, "num_classes": args.num_classes,
            "multi_level": int(not args.single_level and args.arch != "deeplabv2_vgg16"),
            "classifier_bias": 1, "width": args.width,
            "source": os.path.basename(args.input)}
    st_io.save(args.output, out, meta)
    print(f"{args.output}: {len(out)} tensors written")
    for s in skipped:
        print(f"  not placed: {s}")
    if missing:
        print(f"  {len(missing)} parameters not in the input keep segda's initialization, e.g. "
              + ", ".join(missing[:6]))
    return 0


def to_pth(args):
    tensors, meta = st_io.load(args.input)
    sd = {k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}
    torch.save(sd, args.output)
    print(f"{args.output}: {len(sd)} tensors ({meta.get('arch', 'unknown arch')})")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--arch", default="deeplabv2_resnet101", choices=sorted(ARCHS))
    ap.add_argument("--num-classes", type=int, default=19)
    ap.add_argument("--single-level", action="store_true", help="no auxiliary classifier")
    ap.add_argument("--width", type=int, default=0, help="VGG-16 base width (0: 64)")
    args = ap.parse_args()
    if args.input.endswith(".safetensors"):
        return to_pth(args)
    return to_safetensors(args)


if __name__ == "__main__":
    sys.exit(main())
