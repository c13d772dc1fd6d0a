#!/usr/bin/env python3
"""How far apart two training steps are: the relative difference of their updates,
||(b - base) - (a - base)|| / ||a - base||, over the tensors whose names start with PREFIX
(optimizer state and other prefixes excluded). Pure Python (safetensors header + F32).
usage: ckpt_update_diff.py A B BASE PREFIX"""
import json
import math
import struct
import sys
from array import array


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    out = {}
    for name, e in head.items():
        if name == "__metadata__" or e["dtype"] != "F32":
            continue
        a = array("f")
        a.frombytes(body[e["data_offsets"][0]:e["data_offsets"][1]])
        out[name] = a
    return out


def main():
    a, b, base, prefix = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3]), sys.argv[4]
    num = den = 0.0
    count = 0
    for name, x in base.items():
        other = [p for p in ("optim.", "aux", "state.") if not prefix.startswith(p) and name.startswith(p)]
        if not name.startswith(prefix) or other:
            continue
        if name not in a or name not in b:
            sys.exit(f"tensor {name} missing in {sys.argv[1]} or {sys.argv[2]}")
        for x0, xa, xb in zip(x, a[name], b[name]):
            da, db = xa - x0, xb - x0
            num += (db - da) ** 2
            den += da * da
        count += 1
    if count == 0 or den == 0.0:
        sys.exit(f"no tensor under '{prefix}' changed in {sys.argv[1]}")
    print(f"{math.sqrt(num / den):.3e}")


main()
