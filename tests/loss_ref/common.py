"""Shared by the loss references: case files for tests/test_losses.c (see tests/losses.h).
The references compute in float64 with PyTorch's autograd; inputs are written as float32
and read back as float64, so both sides see the same numbers."""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import st_io  # noqa: E402

torch.set_default_dtype(torch.float64)


def rand(gen, *shape, lo=-1.0, hi=1.0):
    """float32-representable uniform values as a float64 tensor."""
    x = torch.rand(*shape, generator=gen, dtype=torch.float64) * (hi - lo) + lo
    return x.float().double()


def labels(gen, *shape, classes, ignore=0.1):
    y = torch.randint(0, classes, shape, generator=gen)
    y[torch.rand(*shape, generator=gen) < ignore] = 255
    return y.int()


def write_case(out_dir, name, inputs, outputs, grads, params=None):
    """inputs/outputs/grads: dict name -> tensor; params: dict of scalars (metadata)."""
    t = {}
    for k, v in inputs.items():
        a = v.detach().numpy()
        t["in." + k] = a.astype(np.int32) if a.dtype.kind in "iu" else a.astype(np.float32)
    for k, v in outputs.items():
        t["out." + k] = np.asarray(v.detach().numpy(), dtype=np.float32).reshape(-1)
    for k, v in grads.items():
        t["grad." + k] = v.detach().numpy().astype(np.float32)
    os.makedirs(out_dir, exist_ok=True)
    st_io.save(os.path.join(out_dir, name + ".safetensors"), t,
               {k: repr(v) if isinstance(v, float) else str(v) for k, v in (params or {}).items()})


def run_cases(cases, out_dir):
    """cases: dict name -> function(gen) returning (inputs, outputs, grads, params), where
    grads are taken of outputs["loss"] w.r.t. the inputs that require grad."""
    for i, (name, fn) in enumerate(cases.items()):
        gen = torch.Generator().manual_seed(1000 + i)
        inputs, outputs, params = fn(gen)
        leaves = {k: v for k, v in inputs.items() if v.requires_grad}
        g = torch.autograd.grad(outputs["loss"], list(leaves.values()), allow_unused=True) if leaves else []
        grads = {k: (gv if gv is not None else torch.zeros_like(leaves[k])) for k, gv in zip(leaves, g)}
        write_case(out_dir, name, inputs, outputs, grads, params)
        print(f"{name}: loss {float(outputs['loss']):.6g}")
