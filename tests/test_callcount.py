#!/usr/bin/env python3
"""API calls per training step, counted by the LD_PRELOAD shim tests/callcount/callcount.c.

For each method and device, `segda train` runs twice on a tiny synthetic benchmark with the
same schedule, stopped after N1 and after N2 iterations; setup, the first N1 (warm-up)
iterations and teardown cancel out of the difference, so count(N2) - count(N1) over N2 - N1
is what one steady-state step costs. (Step 2 still allocates, e.g. optimizer state: N1 >= 2.)

The budget a step is held to (a GPU step should only wait once, for the logged loss):
  opencl: clFinish + clWaitForEvents + blocking reads / writes / maps <= 1, 0 clCreateBuffer;
  vulkan: vkWaitForFences + vkQueueWaitIdle + vkDeviceWaitIdle <= 1, 0 vkAllocateMemory,
          0 vkAllocateDescriptorSets.
Calls from libclblast count too (a GEMM library's sync or allocation stalls the step alike);
the table shows them separately.

usage: test_callcount.py SEGDA SHIM WORKDIR [--method M[,M..]|all] [--device D[,D..]]
                         [--n1 2] [--n2 4] [--set KEY=VALUE ...] [--report-only]
  --set: an extra configuration key for every run (e.g. solver.accumulate=2: sub-batches
  must not add waits).
  D: opencl, vulkan or vulkan-staging (Vulkan with SEGDA_VK_STAGING=1: the discrete-GPU path).
Exit: 0 within budget (--report-only: whatever the counts), 1 over budget, a failed run or
counts showing that the shim did not intercept, 77 no device for
every requested D (a device named in SEGDA_REQUIRE that is missing is a failure)."""
import argparse
import json
import os
import shutil
import subprocess
import sys

METHODS = ["source_only", "adaptsegnet", "sdca", "plca", "pixintra", "bida", "mic"]
DEVICES = ["opencl", "vulkan", "vulkan-staging"]
# What counts as waiting for the device, what allocates, per API.
SYNCS = {"opencl": ["clFinish", "clWaitForEvents", "clEnqueueReadBuffer_blocking",
                    "clEnqueueWriteBuffer_blocking", "clEnqueueMapBuffer_blocking"],
         "vulkan": ["vkWaitForFences", "vkQueueWaitIdle", "vkDeviceWaitIdle"]}
NONE_PER_STEP = {"opencl": ["clCreateBuffer"], "vulkan": ["vkAllocateMemory", "vkAllocateDescriptorSets"]}
BUCKETS = ["segda", "clblast"]
EPS = 1e-9


def api_of(device):
    return device.split("-")[0]


def required(api):
    return api in [r.split(":")[0] for r in os.environ.get("SEGDA_REQUIRE", "").split(",")]


def available(segda, api):
    """A device of this API in `segda devices` (its DEVICE column: opencl:P.D, vulkan:N)."""
    out = subprocess.run([segda, "devices"], capture_output=True, text=True).stdout
    return any(line.startswith(api + ":") for line in out.splitlines())


def train(segda, shim, work, method, device, stop, extra=()):
    """One run under the shim: the counts as {bucket: {name: n}}, or None if it failed."""
    out = os.path.join(work, f"run-{method}-{device}-{stop}")
    counts = out + ".json"
    shutil.rmtree(out, ignore_errors=True)
    if os.path.exists(counts):
        os.remove(counts)
    env = dict(os.environ, SEGDA_CALLCOUNT_OUT=counts,
               LD_PRELOAD=":".join(p for p in [shim, os.environ.get("LD_PRELOAD", "")] if p))
    if device == "vulkan-staging":
        env["SEGDA_VK_STAGING"] = "1"
    # The conv algorithm is pinned: measuring a new shape at its first use (SEGDA_CONV_ALGO=auto)
    # waits for the device, and once the N1 run has cached the choices the N2 run does not
    # measure, so that one-off would not cancel out of the difference. Both pinned paths are
    # the ones auto picks between; opencl runs the direct kernel, vulkan im2col + GEMM.
    env.setdefault("SEGDA_CONV_ALGO", "direct" if api_of(device) == "opencl" else "im2col")
    synth = os.path.join(work, "synth")
    sets = {"method.name": method, "model.arch": "deeplabv2_tiny", "data.source": "gta5",
            "data.source_root": os.path.join(synth, "source"), "data.target": "cityscapes",
            "data.target_root": os.path.join(synth, "target"), "data.source_size": "64x32",
            "data.target_size": "64x32", "data.batch": "2", "solver.iterations": "100",
            "solver.stop": str(stop), "train.eval_every": "0", "train.save_every": "0",
            "train.log_every": "1", "train.device": api_of(device),
            # small discriminators: the call structure does not depend on the width
            "adaptsegnet.d_width": "8", "pixintra.d_width": "8"}
    cmd = [segda, "train", "--quiet", "--out", out]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={v}"]
    for kv in extra:
        cmd += ["--set", kv]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = p.communicate()[1]
    if p.returncode != 0:
        print(f"FAIL: {method} on {device}, stop {stop}: exit {p.returncode}\n{err[-2000:]}")
        return None
    try:
        with open(counts) as f:
            got = json.load(f)
    except (OSError, ValueError) as e:
        print(f"FAIL: {method} on {device}, stop {stop}: no counts from the shim ({e}); is {shim} preloaded?")
        return None
    if got.get("pid") != p.pid:  # another process that inherited LD_PRELOAD wrote them
        print(f"FAIL: {method} on {device}, stop {stop}: counts of pid {got.get('pid')}, not segda's {p.pid}")
        return None
    return {b: got.get(b, {}) for b in BUCKETS}


def per_step(c1, c2, steps):
    return {b: {k: (c2[b].get(k, 0) - c1[b].get(k, 0)) / steps for k in c2[b]} for b in BUCKETS}


def total(ps, name):
    return sum(ps[b].get(name, 0) for b in BUCKETS)


def check(ps, api):
    """The budget violations of one configuration's per-step counts (list of strings)."""
    bad = []
    syncs = sum(total(ps, k) for k in SYNCS[api])
    if syncs > 1 + EPS:
        bad.append(f"{syncs:g} blocking syncs per step ({' + '.join(SYNCS[api])}), budget 1")
    for k in NONE_PER_STEP[api]:
        if total(ps, k) > EPS:
            bad.append(f"{total(ps, k):g} {k} per step, budget 0")
    if total(ps, "clEnqueueNDRangeKernel" if api == "opencl" else "vkCmdDispatch") <= 0:
        bad.append("no kernel launches counted: the shim does not intercept")
    return bad


def fmt(x):
    return f"{x:.0f}" if abs(x - round(x)) < EPS else f"{x:.2f}"


def table(device, results):
    """Rows: every counter of the API nonzero somewhere (clblast's prefixed); columns: methods."""
    api = api_of(device)
    prefix = "cl" if api == "opencl" else "vk"
    methods = list(results)
    rows = []
    for b in BUCKETS:
        names = next(iter(results.values()))[b].keys()
        for k in names:
            if k.startswith(prefix) and any(abs(results[m][b].get(k, 0)) > EPS for m in methods):
                rows.append((b, k))
    rows.append(("", "= blocking syncs"))
    label = lambda b, k: k if b in ("segda", "") else f"{b}:{k}"  # noqa: E731
    w = max([len(label(b, k)) for b, k in rows] + [len(device)])
    cw = max(len(m) for m in methods) + 1
    print(f"per step ({device}):")
    print(f"  {device:<{w}}" + "".join(f"{m:>{cw}}" for m in methods))
    for b, k in rows:
        vals = [sum(total(results[m], s) for s in SYNCS[api]) if not b else results[m][b].get(k, 0)
                for m in methods]
        print(f"  {label(b, k):<{w}}" + "".join(f"{fmt(v):>{cw}}" for v in vals))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("segda")
    ap.add_argument("shim")
    ap.add_argument("work")
    ap.add_argument("--method", default="source_only")
    ap.add_argument("--device", default="opencl")
    ap.add_argument("--n1", type=int, default=2)
    ap.add_argument("--n2", type=int, default=4)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra key for every run")
    ap.add_argument("--report-only", action="store_true", help="print the tables, never fail on the budget")
    a = ap.parse_args()
    methods = METHODS if a.method == "all" else a.method.split(",")
    devices = DEVICES if a.device == "all" else a.device.split(",")
    for m in methods:
        if m not in METHODS:
            ap.error(f"unknown method {m} ({', '.join(METHODS)})")
    for d in devices:
        if d not in DEVICES:
            ap.error(f"unknown device {d} ({', '.join(DEVICES)})")
    if not 0 < a.n1 < a.n2:
        ap.error("need 0 < n1 < n2")
    segda, shim = os.path.abspath(a.segda), os.path.abspath(a.shim)
    os.makedirs(a.work, exist_ok=True)
    work = os.path.abspath(a.work)

    failed, ran = False, 0
    for d in devices:
        api = api_of(d)
        if not available(segda, api):
            if required(api):
                print(f"FAIL: no {api} device, and SEGDA_REQUIRE={os.environ['SEGDA_REQUIRE']} requires one")
                failed = True
            else:
                print(f"SKIP: no {api} device")
            continue
        if not os.path.isdir(os.path.join(work, "synth", "target")):
            subprocess.run([segda, "synth", "--out", os.path.join(work, "synth"), "--count", "12", "--seed", "3",
                            "--size", "64x32"], check=True, stdout=subprocess.DEVNULL)
        results = {}
        for m in methods:
            c1 = train(segda, shim, work, m, d, a.n1, a.set)
            c2 = c1 and train(segda, shim, work, m, d, a.n2, a.set)
            if not c2:
                failed = True
                continue
            results[m] = ps = per_step(c1, c2, a.n2 - a.n1)
            ran += 1
            for why in check(ps, api):
                broken = why.startswith("no kernel")  # a broken measurement fails even when reporting
                print(f"{'over budget' if a.report_only and not broken else 'FAIL'}: {m} on {d}: {why}")
                failed |= broken or not a.report_only
        if results:
            table(d, results)
    if failed:
        return 1
    return 0 if ran else 77


if __name__ == "__main__":
    sys.exit(main())
