#!/usr/bin/env python3
"""tools/convert_pth.py on every layout users start from, each a small synthetic state_dict
named as the official repositories name it (AdaptSegNet/ADVENT multi- and single-level, the
original layer5 naming, DASS, PLCA with DomainBN, SDCA ResNet-101 (FrozenBatchNorm2d and
BatchNorm2d) and VGG-16, torchvision's ImageNet ResNet-101): detected, converted, then `segda
infer` against the PyTorch forward of the same weights. The ResNet-101s are the torchvision
layout (deeplabv2_resnet101_tv) at width 8. Conversions that would leave a backbone or classifier tensor unset fail
(exit 1) naming it. usage: test_convert.py SEGDA WORKDIR DEVICE"""
import os
import subprocess
import sys

import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tools"))
sys.path.insert(0, here)
import st_io  # noqa: E402
from deeplab_torch import DeepLabV2, DeepLabV2VGG, VGG_CONV, randomize  # noqa: E402
from test_infer import write_png  # noqa: E402

CONVERT = os.path.join(here, "..", "tools", "convert_pth.py")
ARCH = "deeplabv2_tiny"
failures = []


def model(multi=False, bias=True, seed=0):
    m = DeepLabV2(ARCH, 19, multi_level=multi, bias=bias).double()
    randomize(m, torch.Generator().manual_seed(seed))
    return m.eval()


def tv_model(seed, eps=1e-5):
    """SDCA's ResNet-101 (torchvision layout, width 8, one classifier), running variances small
    enough that a batch-norm epsilon of 1e-5 shows."""
    m = DeepLabV2("deeplabv2_resnet101_tv", 19, multi_level=False, width=8, eps=eps).double()
    randomize(m, torch.Generator().manual_seed(seed), small_var=True)
    return m.eval()


def sdca_of(m, frozen):
    """SDCA's checkpoint: FrozenBatchNorm2d (FREEZE_BN) saves no num_batches_tracked."""
    sd = {k: (v.float() if v.is_floating_point() else v) for k, v in m.state_dict().items()
          if not (frozen and k.endswith("num_batches_tracked"))}
    fe = {"module.backbone." + k: v for k, v in sd.items() if not k.startswith("layer6.")}
    cl = {"module." + k[len("layer6."):]: v for k, v in sd.items() if k.startswith("layer6.")}
    return {"iteration": 5, "feature_extractor": fe, "classifier": cl}


def sd_of(m):
    return {k: v.float() for k, v in m.state_dict().items() if not k.endswith("num_batches_tracked")}


def convert(work, name, obj, *args):
    pth, out = os.path.join(work, f"{name}.pth"), os.path.join(work, f"{name}.safetensors")
    torch.save(obj, pth)
    r = subprocess.run([sys.executable, CONVERT, pth, out, *args], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr, out


def infer(segda, work, weights, device, x_png):
    out = weights.replace(".safetensors", ".npy")
    r = subprocess.run([segda, "infer", "--weights", weights, "--input", x_png, "--save-logits", out,
                        "--device", device], capture_output=True, text=True)
    if r.returncode:
        return None, r.stderr
    return np.load(out), ""


def check(name, cond, msg):
    print(f"{'ok  ' if cond else 'FAIL'} {name}: {msg}")
    if not cond:
        failures.append(name)


def forward(m, x):
    with torch.no_grad():
        return m(x.unsqueeze(0).double())[0].numpy()


def main():
    segda, work, device = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(work, exist_ok=True)
    rgb = np.random.default_rng(5).integers(0, 256, size=(45, 61, 3), dtype=np.uint8)
    png = os.path.join(work, "img.png")
    write_png(png, rgb)
    x = torch.from_numpy(rgb.astype(np.float64)).permute(2, 0, 1)[[2, 1, 0]]
    x = x - torch.tensor([104.00698793, 116.66876762, 122.67891434], dtype=torch.float64).view(3, 1, 1)

    def converted(name, obj, ref, layout, *args, note=None, absent=()):
        rc, log, out = convert(work, name, obj, *args)
        if rc != 0:
            check(name, False, f"conversion failed (exit {rc}):\n{log}")
            return
        check(name, f"layout {layout}," in log, f"detected as {layout}")
        for n in ([note] if isinstance(note, str) else note or []):
            check(name, n in log, f"says '{n}'")
        for n in absent:
            check(name, n not in log, f"does not say '{n}'")
        got, err = infer(segda, work, out, device, png)
        if got is None:
            check(name, False, f"segda infer failed: {err}")
            return
        want = forward(ref, x)
        e = np.abs(got - want).max() / np.abs(want).max()
        check(name, got.shape == want.shape and e <= 1e-4, f"segda infer vs PyTorch: max relative error {e:.1e}")

    # AdaptSegNet / ADVENT multi-level, as trainers save it (wrapped, DataParallel prefix)
    m = model(multi=True, seed=1)
    converted("multi", {"state_dict": {"module." + k: v for k, v in sd_of(m).items()}}, m, "multi")
    # ADVENT single-level: layer6 alone
    m = model(seed=2)
    converted("single", sd_of(m), m, "single")
    # The original layer5 naming ('Scale.' as the first port's init files have it), with and
    # without --single-level (the report: the classifier used to be dropped)
    m = model(seed=3)
    l5 = {"Scale." + k.replace("layer6.", "layer5."): v for k, v in sd_of(m).items()}
    converted("layer5", l5, m, "layer5")
    converted("layer5-single", l5, m, "layer5", "--single-level")
    rc, log, _ = convert(work, "layer5-classes", l5, "--num-classes", "16")
    check("layer5-classes", rc == 1 and "--backbone-only" in log, f"another class count fails (exit {rc}) with a hint")
    rc, log, out = convert(work, "layer5-init", l5, "--num-classes", "16", "--backbone-only")
    check("layer5-init", rc == 0 and "no classifier in the input" in log, f"--backbone-only: exit {rc}")
    # DASS: target stem (what inference runs) + layer5 on layer4; its layer6 never runs
    m, src = model(seed=4), model(seed=5)
    dass = {}
    for k, v in sd_of(m).items():
        if k.startswith(("conv1.", "bn1.", "layer1.")):
            dass["target_" + k] = v
            dass[k] = sd_of(src)[k]
        elif k.startswith("layer6."):
            dass[k.replace("layer6.", "layer5.")] = v
            dass[k] = sd_of(src)[k]
        else:
            dass[k] = v
    converted("dass", dass, m, "dass", note="target stem")
    # DASS's source-only model: layer5 and layer6 both on layer4, layer5 runs
    m = model(seed=6)
    so = {k.replace("layer6.", "layer5."): v for k, v in sd_of(m).items()}
    so.update({k: v for k, v in sd_of(model(seed=7)).items() if k.startswith("layer6.")})
    converted("dass-source-only", so, m, "layer5")
    # PLCA: backbone.* / classifier.0.convs.N.0 (no bias), DomainBN with two domains
    m = model(bias=False, seed=8)
    other = sd_of(model(bias=False, seed=9))
    plca = {}
    for k, v in sd_of(m).items():
        if k.startswith("layer6."):
            i = k.split(".")[2]
            plca[f"classifier.0.convs.{i}.0.weight"] = v
            continue
        parts = k.rsplit(".", 1)
        if ".bn" in "." + parts[0] or "downsample.1" in parts[0]:
            plca[f"backbone.{parts[0]}.norm_layers.0.{parts[1]}"] = other[k]
            plca[f"backbone.{parts[0]}.norm_layers.1.{parts[1]}"] = v
        else:
            plca["backbone." + k] = v
    converted("plca", {"weights": plca}, m, "plca", note="DomainBN")
    # SDCA ResNet-101: the torchvision layout, exact. Its FrozenBatchNorm2d has no epsilon (the
    # source-only and adaptation stages); the SSL stage's BatchNorm2d has 1e-5.
    m = tv_model(seed=10, eps=0.0)
    converted("sdca-resnet", sdca_of(m, frozen=True), m, "sdca",
              note=["deeplabv2_resnet101_tv", "FrozenBatchNorm2d"], absent=["ARCHITECTURE DIFFERS"])
    m = tv_model(seed=15)
    converted("sdca-resnet-bn", sdca_of(m, frozen=False), m, "sdca", note="deeplabv2_resnet101_tv",
              absent=["FrozenBatchNorm2d", "ARCHITECTURE DIFFERS"])
    # SDCA VGG-16 (width 8): its Sequential renumbered after pool4, fc6 / fc7 at 29 / 31
    v = DeepLabV2VGG(19, base=8).double()
    randomize(v, torch.Generator().manual_seed(11))
    v.eval()
    fe, cl = {}, {}
    for k, t in sd_of(v).items():
        if k.startswith("features."):
            i = int(k.split(".")[1])
            fe[f"backbone.{i if i < 23 else i - 1}.{k.split('.')[2]}"] = t
        elif k.startswith(("fc6.", "fc7.")):
            fe[f"backbone.{29 if k.startswith('fc6') else 31}.{k.split('.')[1]}"] = t
        else:
            cl[k[len("layer6."):]] = t
    assert len(fe) == 2 * (len(VGG_CONV) + 2)
    converted("sdca-vgg", {"feature_extractor": fe, "classifier": cl}, v, "sdca")
    # torchvision's ImageNet ResNet-101 (width 8 here): a backbone init (fc left out, no
    # classifier), every tensor placed as is, into the torchvision layout
    m = tv_model(seed=12)
    tv = {k: v for k, v in sd_of(m).items() if not k.startswith("layer6.")}
    tv["fc.weight"], tv["fc.bias"] = torch.randn(1000, 256), torch.randn(1000)
    rc, log, out = convert(work, "torchvision", tv)
    placed, meta = st_io.load(out) if rc == 0 else ({}, {})
    same = rc == 0 and all(np.array_equal(np.array(placed[k]), t.numpy()) for k, t in tv.items() if not k.startswith("fc."))
    check("torchvision", rc == 0 and "layout torchvision" in log and "no classifier in the input" in log
          and "ARCHITECTURE DIFFERS" not in log and same, f"exit {rc}, every backbone tensor placed as is, the notes")
    check("torchvision", meta.get("arch") == "deeplabv2_resnet101_tv" and str(meta.get("width")) == "8"
          and str(meta.get("bn_eps_zero")) == "0", f"metadata arch {meta.get('arch')}, width {meta.get('width')}, "
          f"bn_eps_zero {meta.get('bn_eps_zero')}")
    # an init has no classifier, so `segda infer` (every tensor) cannot run it: training loads it
    syn = os.path.join(work, "synth")
    subprocess.run([segda, "synth", "--out", syn, "--count", "2"], check=True, capture_output=True)
    r = subprocess.run([segda, "train", "--config", os.path.join(here, "..", "configs", "synth_source_only.ini"),
                        "--set", f"model.init={out}", "--set", f"data.source_root={syn}/source",
                        "--set", "model.arch=deeplabv2_resnet101_tv", "--set", "model.width=8",
                        "--set", "data.norm=imagenet", "--set", "model.bn=frozen", "--set", "model.bn_eps_zero=true",
                        "--set", f"data.target_root={syn}/target", "--device", "cpu", "--check"],
                       capture_output=True, text=True)
    check("torchvision-init", r.returncode == 0, "train --check loads it as model.init"
          + (f": {r.stdout}{r.stderr}" if r.returncode else ""))
    # no epsilon with batch statistics divides by zero on a constant channel: refused, naming the keys
    r = subprocess.run([segda, "train", "--config", os.path.join(here, "..", "configs", "synth_source_only.ini"),
                        "--set", "model.bn_eps_zero=true", "--set", "model.bn=frozen_affine", "--check-config"],
                       capture_output=True, text=True)
    check("bn-eps-zero-policy", r.returncode == 2 and "model.bn_eps_zero" in r.stderr and "model.bn" in r.stderr,
          f"exit {r.returncode}: {r.stderr.strip()[-200:]}")
    # the same weights in the caffe layout (what PLCA's released code does): placed, but noted
    rc, log, out = convert(work, "torchvision-caffe", tv, "--arch", "deeplabv2_resnet101")
    check("torchvision-caffe", rc == 0 and "ARCHITECTURE DIFFERS" in log and "PLCA" in log,
          f"exit {rc}, says the function differs")
    # A backbone tensor missing, a classifier tensor missing: exit 1 naming them
    sd = sd_of(model(multi=True, seed=13))
    del sd["layer2.0.conv2.weight"]
    rc, log, _ = convert(work, "missing-backbone", sd)
    check("missing-backbone", rc == 1 and "layer2.0.conv2.weight" in log, f"exit {rc}, names the tensor")
    sd = sd_of(model(multi=True, seed=14))
    del sd["layer6.conv2d_list.3.weight"]
    rc, log, _ = convert(work, "missing-classifier", sd)
    check("missing-classifier", rc == 1 and "layer6.conv2d_list.3.weight" in log, f"exit {rc}, names the tensor")
    if failures:
        print("FAIL: " + ", ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
