#!/usr/bin/env python3
"""The PyTorch side of bench/gpu_check.sh, and its table. Needs only the standard library
and (for `step` and `ops`) torch, so that it runs on a bare GPU machine.

  gpu_check.py step  --out F.json [--arch A] [--size HxW] [--methods source_only,adaptsegnet]
                     [--device auto|cuda|cpu] [--runs N] [--warmup N] [--budget S] [--no-amp]
  gpu_check.py ops   --out F.json SEGDA.json ...    (the GEMMs and convs the segda files measured)
  gpu_check.py table OUTDIR [--md OUT.md] [--json OUT.json]

`step` times the training step `segda bench step` runs, method by method, in fp32 (TF32
off) and under autocast (fp16 with a gradient scaler on CUDA; bf16 on the CPU, which is
what CPU autocast supports): the DeepLab-v2 of tools/deeplab_torch.py with batch statistics
and the BN affine frozen (segda's model.bn=frozen_affine), main + 0.1 x auxiliary cross
entropy on logits upsampled to the input (align_corners=True), SGD (momentum 0.9, wd 5e-4,
10x LR on the heads); adaptsegnet adds segda's two discriminators (4x4/2 convs, width 64,
leaky ReLU 0.2) on the softmax of the upsampled target outputs, lambda_adv 0.001 (main) and
0.0002 (aux), and their BCE step on the detached outputs (each domain halved, Adam 1e-4,
betas 0.9/0.99), in segda's order. Like segda's trainer, each loss term is read back to
the host (.item()) every step. Each run ends with a device sync; the figure is the median.

`ops` times, for every GEMM and conv record in the segda files, the same shape in PyTorch
fp32 (TF32 off; cuDNN benchmark on): torch.mm, conv2d, and aten.convolution_backward for
bwd-data / bwd-weight.

`table` reads every segda-*.json and torch-*.json in OUTDIR and prints one markdown table:
one row per (device, test), segda ms, PyTorch ms, the ratio segda / PyTorch (> 1: segda
is slower), segda's % of the FP32 FMA peak it measured on the same device; the step rows
also show PyTorch's autocast time and, when segda's records have them, its host syncs,
dispatches and barriers per step."""
import argparse
import glob
import json
import math
import os
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def write_json(path, obj):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def pick_device(torch, want):
    if want == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if want.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("gpu_check.py: CUDA was asked for but torch.cuda.is_available() is false")
    return want


def timer(torch, device):
    """Runs fn once a run, each run closed by a device sync; returns (median, min, max, n)."""
    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def run(fn, warmup, runs, budget):
        for _ in range(warmup):
            fn()
        sync()
        times, start = [], time.perf_counter()
        while len(times) < runs:
            t = time.perf_counter()
            fn()
            sync()
            times.append((time.perf_counter() - t) * 1e3)
            if len(times) >= 3 and time.perf_counter() - start > budget:
                break
        return statistics.median(times), min(times), max(times), len(times)
    return run


# ---- step ------------------------------------------------------------------------------------

def make_step(torch, arch, size, device, method, amp):
    import torch.nn as nn
    import torch.nn.functional as F
    sys.path.insert(0, os.path.join(HERE, "..", "tools"))
    from deeplab_torch import DeepLabV2

    h, w = size
    torch.manual_seed(0)
    model = DeepLabV2(arch, 19).to(device)
    model.train()  # batch statistics; the BN affine is frozen below (segda: frozen_affine)
    for n, p in model.named_parameters():
        p.requires_grad_(not ("bn" in n or "downsample.1" in n))
    heads = [p for n, p in model.named_parameters() if n.startswith(("layer5", "layer6"))]
    back = [p for n, p in model.named_parameters()
            if p.requires_grad and not n.startswith(("layer5", "layer6"))]
    opt = torch.optim.SGD([{"params": back}, {"params": heads, "lr": 2.5e-3}], lr=2.5e-4,
                          momentum=0.9, weight_decay=5e-4)
    # segda's bench batch: images in [-60, 60], labels in blocks of 16x16 pixels
    xs = torch.rand(1, 3, h, w, device=device) * 120 - 60
    xt = torch.rand(1, 3, h, w, device=device) * 120 - 60
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    ys = ((xx // 16 + yy // 16 * 3) % 19).unsqueeze(0).to(device)

    cuda = device.startswith("cuda")
    dtype = torch.float16 if cuda else torch.bfloat16
    scaler_g = scaler_d = None
    if amp and cuda:
        mk = (lambda: torch.amp.GradScaler("cuda")) if hasattr(torch.amp, "GradScaler") \
            else (lambda: torch.cuda.amp.GradScaler())
        scaler_g, scaler_d = mk(), mk()

    def autocast():
        return torch.autocast("cuda" if cuda else "cpu", dtype=dtype, enabled=amp)

    def backward(loss, scaler):
        (scaler.scale(loss) if scaler else loss).backward()

    def opt_step(o, scaler):
        if scaler:
            scaler.step(o)
        else:
            o.step()

    def up(t):
        return F.interpolate(t, size=(h, w), mode="bilinear", align_corners=True)

    def seg_loss():
        main, aux = model(xs)
        l_main = F.cross_entropy(up(main), ys, ignore_index=255)
        l_aux = F.cross_entropy(up(aux), ys, ignore_index=255)
        return main, aux, l_main + 0.1 * l_aux, [l_main, l_aux]

    if method == "source_only":
        def step():
            opt.zero_grad(set_to_none=True)
            with autocast():
                _, _, loss, terms = seg_loss()
            for t in terms:
                t.item()
            backward(loss, scaler_g)
            opt_step(opt, scaler_g)
            if scaler_g:
                scaler_g.update()
        return step

    if method != "adaptsegnet":
        sys.exit(f"gpu_check.py: no PyTorch reference for method '{method}'")

    class Discriminator(nn.Module):  # segda's SEG_ARCH_DISCRIMINATOR (AdaptSegNet's FCDiscriminator)
        def __init__(self, classes, ndf=64):
            super().__init__()
            ch = [classes, ndf, ndf * 2, ndf * 4, ndf * 8, 1]
            self.convs = nn.ModuleList(nn.Conv2d(ch[i], ch[i + 1], 4, stride=2, padding=1) for i in range(5))

        def forward(self, x):
            for i, c in enumerate(self.convs):
                x = c(x)
                if i < 4:
                    x = F.leaky_relu(x, 0.2)
            return x

    disc = [Discriminator(19).to(device), Discriminator(19).to(device)]  # [aux, main]
    dopt = [torch.optim.Adam(d.parameters(), lr=1e-4, betas=(0.9, 0.99)) for d in disc]

    def bce(d, logits, domain):
        o = d(F.softmax(up(logits), dim=1))
        return F.binary_cross_entropy_with_logits(o, torch.full_like(o, domain))

    def step():
        opt.zero_grad(set_to_none=True)
        for o in dopt:
            o.zero_grad(set_to_none=True)
        with autocast():  # G on the source
            smain, saux, loss, terms = seg_loss()
        for t in terms:
            t.item()
        backward(loss, scaler_g)
        for d in disc:  # G on the target: fool both discriminators
            d.requires_grad_(False)
        with autocast():
            tmain, taux = model(xt)
            a_main, a_aux = bce(disc[1], tmain, 0.0), bce(disc[0], taux, 0.0)
            adv = 0.001 * a_main + 0.0002 * a_aux
        a_main.item()
        a_aux.item()
        backward(adv, scaler_g)
        for d in disc:
            d.requires_grad_(True)
        opt_step(opt, scaler_g)
        outs = [(saux.detach(), taux.detach()), (smain.detach(), tmain.detach())]
        for level in (1, 0):  # D: source outputs are 0, target outputs 1
            for dom in (0, 1):
                with autocast():
                    l_d = bce(disc[level], outs[level][dom], float(dom))
                l_d.item()
                backward(0.5 * l_d, scaler_d)
            opt_step(dopt[level], scaler_d)
        if scaler_g:
            scaler_g.update()
            scaler_d.update()
    return step


def cmd_step(a):
    import torch
    device = pick_device(torch, a.device)
    size = tuple(int(v) for v in a.size.lower().split("x")) if "x" in a.size else (int(a.size),) * 2
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    elif a.threads:
        torch.set_num_threads(a.threads)
    run = timer(torch, device)
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu"
    out = {"torch": torch.__version__, "cuda": getattr(torch.version, "cuda", None), "device": device,
           "device_name": name, "arch": a.arch, "size": list(size), "records": []}
    precs = ["fp32"] + ([] if a.no_amp else ["fp16" if device.startswith("cuda") else "bf16"])
    failed = 0
    for method in [m for m in a.methods.split(",") if m]:
        for prec in precs:
            try:
                step = make_step(torch, a.arch, size, device, method, prec != "fp32")
                if device.startswith("cuda"):
                    torch.cuda.reset_peak_memory_stats()
                med, lo, hi, n = run(step, a.warmup, a.runs, a.budget)
                mem = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else 0.0
            except Exception as e:  # one failure (e.g. out of memory) does not hide the others
                print(f"gpu_check.py: torch step {method} {prec}: {type(e).__name__}: {e}", file=sys.stderr)
                failed += 1
                continue
            finally:
                step = None
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
            rec = {"suite": "step", "op": method, "precision": prec,
                   "shape": f"{a.arch} 1x3x{size[0]}x{size[1]}", "ms_median": med, "ms_min": lo,
                   "ms_max": hi, "runs": n, "mem_mb": mem}
            out["records"].append(rec)
            print(f"torch {device} step {method:12s} {prec}: median {med:9.2f} ms [{lo:.2f}, {hi:.2f}] "
                  f"over {n} runs{f', peak {mem:.0f} MiB' if mem else ''}", flush=True)
            write_json(a.out, out)  # after each record: a timeout keeps what ran
    write_json(a.out, out)
    return 1 if failed and not out["records"] else 0


# ---- ops ---------------------------------------------------------------------------------------

GEMM_RE = re.compile(r"m=(\d+) n=(\d+) k=(\d+)")
CONV_RE = re.compile(r"x=\[1,(\d+),(\d+),(\d+)\] k=(\d+) s=(\d+) d=(\d+) co=(\d+)")


def cmd_ops(a):
    import torch
    import torch.nn.functional as F
    device = pick_device(torch, a.device)
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    elif a.threads:
        torch.set_num_threads(a.threads)
    run = timer(torch, device)
    want = []
    for path in a.segda:
        try:
            with open(path) as f:
                recs = json.load(f).get("records", [])
        except (OSError, ValueError) as e:
            print(f"gpu_check.py: skipping {path}: {e}", file=sys.stderr)
            continue
        for r in recs:
            key = (r.get("suite"), r.get("op"), r.get("shape"))
            if r.get("suite") in ("gemm", "conv") and key not in want:
                want.append(key)
    out = {"torch": torch.__version__, "device": device, "records": []}
    deadline = time.perf_counter() + a.total
    done = {}
    for suite, op, shape in want:
        if time.perf_counter() > deadline:
            print(f"gpu_check.py: ops: out of time ({a.total:.0f} s), {len(want) - len(out['records'])} left",
                  file=sys.stderr)
            break
        g = GEMM_RE.search(shape) if suite == "gemm" else None
        c = CONV_RE.search(shape) if suite == "conv" else None
        if not g and not c:
            continue
        tkey = ("gemm", g.groups()) if g else (op.replace("fwd-direct", "fwd"), c.groups())
        try:
            if tkey not in done:
                if g:
                    m, n, k = (int(v) for v in g.groups())
                    x, y = torch.rand(m, k, device=device), torch.rand(k, n, device=device)
                    z = torch.empty(m, n, device=device)

                    def fn():
                        torch.mm(x, y, out=z)
                else:
                    cin, h, w, k, s, d, cout = (int(v) for v in c.groups())
                    pad = k // 2 * d
                    x = torch.rand(1, cin, h, w, device=device)
                    wt = torch.rand(cout, cin, k, k, device=device)
                    dy = F.conv2d(x, wt, None, s, pad, d).uniform_()
                    mask = [op == "bwd-data", op == "bwd-weight", False]

                    def fn():
                        if op.startswith("fwd"):
                            F.conv2d(x, wt, None, s, pad, d)
                        else:
                            torch.ops.aten.convolution_backward(dy, x, wt, None, [s, s], [pad, pad], [d, d],
                                                                False, [0, 0], 1, mask)
                done[tkey] = run(fn, a.warmup, a.runs, a.budget)
                fn = x = y = z = wt = dy = None
            med, lo, hi, nr = done[tkey]
        except Exception as e:
            print(f"gpu_check.py: torch {suite} {op} {shape}: {type(e).__name__}: {e}", file=sys.stderr)
            continue
        out["records"].append({"suite": suite, "op": op, "shape": shape, "ms_median": med, "ms_min": lo,
                               "ms_max": hi, "runs": nr, "precision": "fp32"})
    write_json(a.out, out)
    print(f"torch {device}: {len(out['records'])} GEMM / conv shapes timed -> {a.out}")
    return 0


# ---- table ------------------------------------------------------------------------------------

def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"gpu_check.py: skipping {path}: {e}", file=sys.stderr)
        return None


def fmt(v, spec=".2f", none="-"):
    return none if v is None or (isinstance(v, float) and (math.isnan(v) or v <= 0)) else format(v, spec)


def cmd_table(a):
    torch_step, torch_ops, info = {}, {}, []
    for path in sorted(glob.glob(os.path.join(a.outdir, "torch-*.json"))):
        d = load(path)
        if not d:
            continue
        if d.get("device_name"):
            info.append(f"PyTorch {d.get('torch')} on {d['device']} ({d['device_name']})")
        for r in d.get("records", []):
            if r.get("suite") == "step":
                torch_step[(r["op"], r["shape"], r.get("precision", "fp32"))] = r
            else:
                torch_ops[(r["suite"], r["op"], r["shape"])] = r
    rows, devices, counters = [], [], ("syncs", "dispatches", "barriers")
    order = {"step": 0, "peak": 1, "gemm": 2, "conv": 3}
    for path in sorted(glob.glob(os.path.join(a.outdir, "segda-*.json"))):
        d = load(path)
        if not d:
            continue
        for r in d.get("records", []):
            # segda-<spec with ':' as '-'>_<what>.json (bench/gpu_check.sh names them)
            spec = os.path.basename(path)[len("segda-"):].split("_")[0].replace("-", ":", 1)
            dev = f"{spec} {r.get('device', '')}".strip()
            if dev not in devices:
                devices.append(dev)
            suite, op, shape = r.get("suite", ""), r.get("op", ""), r.get("shape", "")
            ms = r.get("ms_median", 0.0)
            row = {"device": dev, "file": os.path.basename(path), "suite": suite, "op": op, "shape": shape, "segda_ms": ms,
                   "gflops": r.get("gflops") or None, "gbps": r.get("gbps") or None,
                   "peak_pct": r.get("peak_pct") or None, "mem_mb": r.get("mem_mb") or None}
            for c in counters:
                if c in r:
                    row[c] = r[c]
            if suite == "step":
                t32 = torch_step.get((op, shape, "fp32"))
                tamp = torch_step.get((op, shape, "fp16")) or torch_step.get((op, shape, "bf16"))
                row["torch_ms"] = t32["ms_median"] if t32 else None
                row["torch_amp_ms"] = tamp["ms_median"] if tamp else None
                row["amp"] = tamp["precision"] if tamp else None
                row["torch_mem_mb"] = t32.get("mem_mb") if t32 else None
            else:  # segda bench gemm's matrix-hardware rows ("coopmat <op>") against the same op
                t = torch_ops.get((suite, op[len("coopmat "):] if op.startswith("coopmat ") else op, shape))
                row["torch_ms"] = t["ms_median"] if t else None
            row["ratio"] = ms / row["torch_ms"] if row.get("torch_ms") and ms > 0 else None
            row["ratio_amp"] = ms / row["torch_amp_ms"] if row.get("torch_amp_ms") and ms > 0 else None
            rows.append(row)
    # the FMA peak is measured by every kernel job; keep one (the peak suite's) a device
    best = {}
    for r in rows:
        if r["suite"] == "peak":
            k = (r["device"], r["op"], r["shape"])
            if k not in best or r["file"].endswith("_peak.json"):
                best[k] = r
    rows = [r for r in rows if r["suite"] != "peak" or best[(r["device"], r["op"], r["shape"])] is r]
    rows.sort(key=lambda r: (order.get(r["suite"], 9), devices.index(r["device"]), r["op"] != "source_only"))
    lines = []
    if info:
        lines.append("Reference: " + "; ".join(dict.fromkeys(info)) + ". Ratio = segda ms / PyTorch ms "
                     "(> 1: segda slower); PyTorch fp32 with TF32 off. % peak: of the FP32 FMA peak segda "
                     "measured on that device.")
        lines.append("")
    lines.append("| device | suite | test | shape | segda ms | PyTorch fp32 ms | ratio | PyTorch amp ms | "
                 "ratio vs amp | GFLOP/s | % FP32 peak | notes |")
    lines.append("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        notes = []
        if r["suite"] == "step":
            if r.get("mem_mb"):
                notes.append(f"segda {r['mem_mb']:.0f} MiB")
            if r.get("torch_mem_mb"):
                notes.append(f"torch {r['torch_mem_mb']:.0f} MiB")
            for c in counters:
                if c in r:
                    notes.append(f"{c} {r[c]:g}" if isinstance(r[c], (int, float)) else f"{c} {r[c]}")
            if r.get("amp"):
                notes.append(f"amp={r['amp']}")
        elif r.get("gbps") and not r.get("gflops"):
            notes.append(f"{r['gbps']:.1f} GB/s")
        if r["op"].startswith("coopmat "):
            notes.append("cooperative matrix, fp16 inputs")
        lines.append(f"| {r['device']} | {r['suite']} | {r['op']} | {r['shape']} | {fmt(r['segda_ms'], '.3f')} | "
                     f"{fmt(r.get('torch_ms'), '.3f')} | {fmt(r.get('ratio'))} | {fmt(r.get('torch_amp_ms'), '.3f')} | "
                     f"{fmt(r.get('ratio_amp'))} | {fmt(r.get('gflops'), '.1f')} | "
                     f"{fmt(r.get('peak_pct') if r.get('gflops') else None, '.1f')} | "
                     f"{', '.join(notes)} |")
    # geometric means of the ratios, per device and suite
    summary = []
    for dev in devices:
        for suite in ("gemm", "conv"):
            rs = [r["ratio"] for r in rows if r["device"] == dev and r["suite"] == suite and r.get("ratio")]
            if rs:
                g = math.exp(sum(math.log(v) for v in rs) / len(rs))
                summary.append(f"{dev} {suite}: geometric mean ratio {g:.2f} over {len(rs)} tests")
    if summary:
        lines.append("")
        lines.extend(summary)
    text = "\n".join(lines) + "\n"
    if a.md:
        tmp = f"{a.md}.tmp.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, a.md)
    if a.json:
        write_json(a.json, {"rows": rows, "summary": summary})
    sys.stdout.write(text)
    return 0 if rows else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("step")
    s.add_argument("--out", required=True)
    s.add_argument("--arch", default="deeplabv2_resnet101")
    s.add_argument("--size", default="512x1024", help="S or HxW")
    s.add_argument("--methods", default="source_only,adaptsegnet")
    s.add_argument("--device", default="auto")
    s.add_argument("--runs", type=int, default=10)
    s.add_argument("--warmup", type=int, default=3)
    s.add_argument("--budget", type=float, default=15.0, help="stop adding runs after S seconds (>= 3 runs)")
    s.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    s.add_argument("--no-amp", action="store_true")
    o = sub.add_parser("ops")
    o.add_argument("--out", required=True)
    o.add_argument("--device", default="auto")
    o.add_argument("--runs", type=int, default=10)
    o.add_argument("--warmup", type=int, default=2)
    o.add_argument("--budget", type=float, default=1.0)
    o.add_argument("--total", type=float, default=90.0, help="stop after S seconds in all")
    o.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    o.add_argument("segda", nargs="*")
    t = sub.add_parser("table")
    t.add_argument("outdir")
    t.add_argument("--md")
    t.add_argument("--json")
    a = ap.parse_args()
    return {"step": cmd_step, "ops": cmd_ops, "table": cmd_table}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
