#!/usr/bin/env python3
"""Converts PyTorch DeepLab-v2 weights to segda's safetensors, and back.

  convert_pth.py IN.pth OUT.safetensors [--arch A] [--num-classes K] [--single-level]
                 [--backbone-only] [--layout L] [--domain-bn D]
  convert_pth.py IN.safetensors OUT.pth

The layout of IN is detected (or named with --layout) and printed:
  multi        AdaptSegNet / ADVENT multi-level: layer5 (auxiliary, on layer3), layer6 (main)
  single       ADVENT single-level: layer6 on layer4
  layer5       the original DeepLab-v2 port (AdaptSegNet's deeplab.py and the DeepLab init it
               loads, 'Scale.' prefixed): the one classifier is layer5, on layer4 -> layer6
  dass         DASS: a target stem (target_conv1, target_bn1, target_layer1 -> segda's
               target.*), the classifier layer5 on layer4 -> layer6 (its layer6 is never run)
  plca         PLCA: backbone.* (a caffe-style ResNet: stride on the 1x1 conv, as segda's),
               classifier.0.convs.N.0 -> layer6 without bias; DomainBN layers (norm_layers.D)
               give domain D's statistics (--domain-bn, default 1: the target, as PLCA tests)
  sdca         SDCA: {'feature_extractor': backbone.*, 'classifier': conv2d_list.*};
               ResNet-101 -> deeplabv2_resnet101_tv (exact; batch norms without a
               num_batches_tracked are its FrozenBatchNorm2d, which has no epsilon:
               bn_eps_zero) or VGG-16 (exact)
  torchvision  torchvision's ImageNet ResNet (conv1 ... layer4, fc): a backbone init;
               ResNet-101 -> deeplabv2_resnet101_tv
  backbone     a backbone alone (no classifier, no fc)
Wrappers 'state_dict', 'model', 'model_state_dict', 'weights' and the prefixes 'module.',
'Scale.', 'model.' are removed.

Every backbone tensor must be placed, and the classifier too when the input has one: a
conversion that leaves either unset fails (exit 1) and names the tensors. An input without a
classifier (an ImageNet init) says so and succeeds: the heads start from segda's
initialization. A classifier of another class count than --num-classes fails unless
--backbone-only drops it (the DeepLab init's 21-class COCO/VOC head: what AdaptSegNet and
ADVENT do).

torchvision's ResNet strides the 3x3 conv of a block, segda's caffe-style DeepLab-v2 the 1x1
(and rounds its max pool up); with dilation its first blocks of layer3 / layer4 keep the
previous dilation. deeplabv2_resnet101_tv is that layout, and a torchvision or SDCA ResNet-101
converts to it. Names and shapes are the same in both layouts, so `--arch deeplabv2_resnet101`
(what PLCA's released code does with these weights) places every tensor too, but the network
computes another function from them: the converter says so. Fine as an init (training
adapts); a torchvision-trained checkpoint evaluates lower in the caffe layout."""
import argparse
import os
import re
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402
from deeplab_torch import ARCHS, TV_ARCHS, DeepLabV2, build  # noqa: E402

PREFIXES = ("module.", "Scale.", "model.")
WRAPPERS = ("state_dict", "model", "model_state_dict", "weights")
LAYOUTS = ("multi", "single", "layer5", "dass", "plca", "sdca", "torchvision", "backbone")
STEM = ("conv1.", "bn1.", "layer1.")
HEADS = ("layer5.", "layer6.")
# SDCA's VGG-16 Sequential drops pool4 (torchvision index 23), so it renumbers what follows;
# fc6 / fc7 follow the last conv.
SDCA_VGG = {**{str(i): str(i) for i in range(23)}, **{str(i): str(i + 1) for i in range(23, 29)}}

TORCHVISION_NOTE = (
    "ARCHITECTURE DIFFERS: {what} strides the 3x3 conv of a block (torchvision), segda's DeepLab-v2 the 1x1 "
    "(caffe), and rounds its max pool up; {extra}every tensor is placed by name and shape, but segda computes "
    "another function from them. Fine as an initialization (training adapts to it); a model trained this way "
    "evaluates lower in this layout than in deeplabv2_resnet101_tv, the torchvision one.")


def fail(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def unwrap(obj):
    if isinstance(obj, dict) and not any(torch.is_tensor(v) for v in obj.values()):
        if "feature_extractor" in obj and "classifier" in obj:  # SDCA
            return obj
        for key in WRAPPERS:
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


def tensors(d):
    return {strip(k): v for k, v in d.items() if torch.is_tensor(v) and not k.endswith("num_batches_tracked")}


def detect(obj, sd):
    if "feature_extractor" in obj and "classifier" in obj:
        return "sdca"
    if any(k.startswith("backbone.") for k in sd) and any(k.startswith("classifier.") for k in sd):
        return "plca"
    if "target_conv1.weight" in sd:
        return "dass"
    l5, l6 = "layer5.conv2d_list.0.weight" in sd, "layer6.conv2d_list.0.weight" in sd
    if l5 and l6 and sd["layer5.conv2d_list.0.weight"].shape[1] == sd["layer6.conv2d_list.0.weight"].shape[1]:
        return "layer5"  # both on layer4: DASS's source-only model runs layer5 alone
    if l5 and l6:
        return "multi"
    if l6:
        return "single"
    if l5:
        return "layer5"
    if "fc.weight" in sd:
        return "torchvision"
    return "backbone"


def domain_bn(sd, d):
    """PLCA's DomainBN: x.norm_layers.D.p -> x.p (domain d's)."""
    out, domains = {}, set()
    for k, v in sd.items():
        m = re.match(r"(.*)\.norm_layers\.(\d+)\.(.*)$", k)
        if m:
            domains.add(int(m.group(2)))
            if int(m.group(2)) == d:
                out[f"{m.group(1)}.{m.group(3)}"] = v
        else:
            out[k] = v
    if domains and d not in domains:
        fail(f"--domain-bn {d}: the input's DomainBN layers hold domains {sorted(domains)}")
    return out, sorted(domains)


def to_segda(layout, obj, sd, args, notes, extra):
    """Returns (segda name -> tensor, names the input has that were not placed with why,
    whether the input has a classifier, whether it has an auxiliary one, whether its classifier
    convs have a bias). extra receives 'tv' (what the input's torchvision-style ResNet is, for
    the note on a caffe-style target) and 'bn_eps_zero' (its batch norms have no epsilon)."""
    out, unplaced = {}, []
    if layout == "sdca":
        fe, cl = tensors(obj["feature_extractor"]), tensors(obj["classifier"])
        vgg = any(re.match(r"backbone\.\d+\.", k) for k in fe)
        for k, v in fe.items():
            m = re.match(r"backbone\.(\d+)\.(weight|bias)$", k)
            if vgg and m:
                i = m.group(1)
                name = f"features.{SDCA_VGG[i]}" if i in SDCA_VGG else {"29": "fc6", "31": "fc7"}.get(i)
                if name:
                    out[f"{name}.{m.group(2)}"] = v
                else:
                    unplaced.append((k, "no such layer in SDCA's VGG-16"))
            elif not vgg and k.startswith("backbone."):
                out[k[len("backbone."):]] = v
            else:
                unplaced.append((k, "not a backbone tensor"))
        for k, v in cl.items():
            out["layer6." + k] = v
        if not vgg:
            extra["tv"] = dict(
                what="SDCA's feature extractor (torchvision's resnet with replace_stride_with_dilation)",
                extra="its first blocks of layer3 and layer4 keep the previous dilation (1, 2; segda: 2, 4); ")
            # FrozenBatchNorm2d (model.FREEZE_BN) keeps four buffers and no num_batches_tracked;
            # nn.BatchNorm2d (the SSL stage) saves one, and has eps 1e-5
            bn = [k for k in obj["feature_extractor"] if re.search(r"(bn\d|downsample\.1)\.running_var$", k)]
            frozen = bn and not any(k.endswith("num_batches_tracked") for k in obj["feature_extractor"])
            extra["bn_eps_zero"] = bool(frozen)
            if frozen:
                notes.append("SDCA's FrozenBatchNorm2d (no num_batches_tracked): batch norm without epsilon "
                             "(bn_eps_zero; train with model.bn = frozen, model.bn_eps_zero = true)")
        return out, unplaced, bool(cl), False, any(k.endswith("bias") for k in cl), vgg
    if layout == "plca":
        sd, domains = domain_bn(sd, args.domain_bn)
        if domains:
            notes.append(f"PLCA's DomainBN: domain {args.domain_bn}'s batch norms of {domains} "
                         "(1 is the target, what PLCA evaluates with)")
        for k, v in sd.items():
            m = re.match(r"classifier\.0\.convs\.(\d+)\.0\.(weight|bias)$", k)
            if k.startswith("backbone."):
                out[k[len("backbone."):]] = v
            elif m:
                out[f"layer6.conv2d_list.{m.group(1)}.{m.group(2)}"] = v
            elif k.startswith("aux_classifier."):
                unplaced.append((k, "PLCA's auxiliary FCN head (segda's auxiliary head is an ASPP): left out"))
            else:
                unplaced.append((k, "not a PLCA DeepLabV2 tensor"))
        has = any(k.startswith("classifier.") for k in sd)
        return out, unplaced, has, False, any(re.match(r"classifier\..*\.bias$", k) for k in sd), False
    if layout == "dass":
        for k, v in sd.items():
            if k.startswith("target_"):
                out["target." + k[len("target_"):]] = v
            elif k.startswith("layer5."):
                out["layer6." + k[len("layer5."):]] = v
            elif k.startswith("layer6."):
                unplaced.append((k, "DASS's second classifier, never run by its forward: left out"))
            else:
                out[k] = v
        notes.append("DASS: its target stem (target_conv1, target_bn1, target_layer1) is segda's target.* "
                     "(model.target_stem = true; inference runs it); source images take the shared stem")
        return out, unplaced, True, False, "layer5.conv2d_list.0.bias" in sd, False
    if layout == "layer5":
        for k, v in sd.items():
            if k.startswith("layer6."):
                unplaced.append((k, "a second classifier on layer4 that the forward never runs (DASS): left out"))
            else:
                out[("layer6." + k[len("layer5."):]) if k.startswith("layer5.") else k] = v
        return out, unplaced, True, False, "layer5.conv2d_list.0.bias" in sd, False
    if layout == "torchvision":
        for k, v in sd.items():
            if k.startswith("fc."):
                unplaced.append((k, "the ImageNet classifier (fc): left out"))
            else:
                out[k] = v
        extra["tv"] = dict(what="torchvision's ResNet", extra="",
                           tail=" (PLCA's released code does the same: its ResNet strides the 1x1 conv and "
                           "loads these weights.)")
        return out, unplaced, False, False, True, False
    # multi, single, backbone: segda's own names
    vgg = any(k.startswith("features.") for k in sd)
    out = dict(sd)
    has = any(k.startswith(HEADS) for k in sd)
    return (out, unplaced, has, "layer5.conv2d_list.0.weight" in sd and layout == "multi",
            any(k.startswith(HEADS) and k.endswith("bias") for k in sd) or not has, vgg)


def infer_arch(out, vgg, tv):
    """The architecture from the shapes: layer3's depth picks it (a torchvision-style input's
    ResNet-101: deeplabv2_resnet101_tv), the stem's channels its width (0: its own)."""
    if vgg:
        return "deeplabv2_vgg16"
    blocks = len({k.split(".")[1] for k in out if k.startswith("layer3.") and k.split(".")[1].isdigit()})
    width = out["conv1.weight"].shape[0] if "conv1.weight" in out else 64
    for name, spec in ARCHS.items():
        if spec and spec[0][2] == blocks and spec[1] == width and (name in TV_ARCHS) == (tv and blocks == 23):
            return name
    if tv and blocks == 23:  # a reduced-width torchvision-style ResNet-101 (tests)
        return TV_ARCHS[0]
    fail(f"no segda architecture has {blocks} blocks in layer3 and a stem of {width} channels")


def to_safetensors(args):
    obj = unwrap(torch.load(args.input, map_location="cpu"))
    if not isinstance(obj, dict):
        fail(f"{args.input}: no state_dict found")
    sd = tensors(obj) if "feature_extractor" not in obj else {}
    layout = args.layout or detect(obj, sd)
    notes, extra = [], {}
    out, unplaced, has_cls, has_aux, bias, vgg = to_segda(layout, obj, sd, args, notes, extra)
    tv = extra.get("tv")
    arch = args.arch or infer_arch(out, vgg, bool(tv))
    if tv and arch not in TV_ARCHS:
        notes.insert(0, TORCHVISION_NOTE.format(what=tv["what"], extra=tv["extra"]) + tv.get("tail", ""))
    elif tv:
        notes.insert(0, f"{arch}: torchvision's layout (stride on the 3x3 conv, floor max pool, first blocks of "
                     "layer3/4 at dilation 1/2), the input's own function; normalise inputs as it was trained "
                     "(data.norm = imagenet for torchvision's and SDCA's weights)")
    eps0 = extra.get("bn_eps_zero", False)
    cls_key = "layer6.conv2d_list.0.weight"
    classes = out[cls_key].shape[0] if has_cls and cls_key in out else None
    num_classes = args.num_classes or classes or 19
    if args.backbone_only:
        dropped = sorted(k for k in out if k.startswith(HEADS))
        for k in dropped:
            del out[k]
        unplaced += [(k, "--backbone-only") for k in dropped]
        has_cls = has_aux = False
        bias = True
    elif classes is not None and classes != num_classes:
        fail(f"the input's classifier ({cls_key} after conversion) has {classes} classes, --num-classes is "
             f"{num_classes}: pass --num-classes {classes} to keep it, or --backbone-only to convert the backbone "
             f"alone (e.g. the DeepLab init's 21-class COCO/VOC head, which AdaptSegNet and ADVENT drop)")
    multi = has_aux if has_cls else not args.single_level
    if args.single_level and has_aux:
        dropped = sorted(k for k in out if k.startswith("layer5."))
        for k in dropped:
            del out[k]
        unplaced += [(k, "--single-level: the auxiliary classifier is left out") for k in dropped]
        multi = False
    if arch == "deeplabv2_vgg16":
        multi = False
    stem = any(k.startswith("target.") for k in out)
    width = args.width
    if arch == "deeplabv2_vgg16" and not width and "features.0.weight" in out:
        width = 0 if out["features.0.weight"].shape[0] == 64 else int(out["features.0.weight"].shape[0])
    elif ARCHS.get(arch) and not width and "conv1.weight" in out and out["conv1.weight"].shape[0] != ARCHS[arch][1]:
        width = int(out["conv1.weight"].shape[0])
    ref = (build(arch, num_classes, width=width) if arch == "deeplabv2_vgg16"
           else DeepLabV2(arch, num_classes, multi_level=multi, bias=bias, width=width))
    want = {k: tuple(v.shape) for k, v in ref.state_dict().items() if not k.endswith("num_batches_tracked")}
    if stem:
        want.update({"target." + k: s for k, s in list(want.items()) if k.startswith(STEM)})
    placed = {}
    for k, v in out.items():
        if k not in want:
            unplaced.append((k, f"no such parameter in {arch}"))
        elif tuple(v.shape) != want[k]:
            unplaced.append((k, f"shape {tuple(v.shape)}, {arch} needs {want[k]}"))
        else:
            placed[k] = v.detach().float().cpu().numpy()
    missing = sorted(set(want) - set(placed))
    heads = [k for k in missing if k.startswith(HEADS)]
    backbone = [k for k in missing if not k.startswith(HEADS)]
    print(f"{args.input}: layout {layout}, {arch}, {num_classes} classes, "
          f"{'multi' if multi else 'single'}-level{', target stem' if stem else ''}"
          f"{', classifier without bias' if not bias else ''}")
    for n in notes:
        print(f"  note: {n}")
    for k, why in unplaced:
        print(f"  not placed: {k}: {why}")
    if backbone or (heads and has_cls):
        bad = backbone + (heads if has_cls else [])
        fail(f"{len(bad)} parameters of {arch} are not in the input (nothing written): " + ", ".join(bad[:12])
             + (" ..." if len(bad) > 12 else ""))
    if heads:
        print(f"  no classifier in the input (an ImageNet / backbone init): {', '.join(sorted({h.split('.')[0] for h in heads}))} "
              "start from segda's initialization")
    meta = {"format": "segda-1", "arch": arch, "num_classes": num_classes, "multi_level": int(multi),
            "classifier_bias": int(bias), "width": width, "target_stem": int(stem), "bn_eps_zero": int(eps0),
            "source": os.path.basename(args.input), "source_layout": layout}
    st_io.save(args.output, placed, meta)
    print(f"{args.output}: {len(placed)} tensors written")
    return 0


def to_pth(args):
    tensors_, meta = st_io.load(args.input)
    sd = {k: torch.from_numpy(np.array(v)) for k, v in tensors_.items()}
    torch.save(sd, args.output)
    print(f"{args.output}: {len(sd)} tensors ({meta.get('arch', 'unknown arch')})")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--arch", choices=sorted(ARCHS), help="default: from the input's shapes")
    ap.add_argument("--num-classes", type=int, help="default: the input classifier's (19 without one)")
    ap.add_argument("--single-level", action="store_true", help="no auxiliary classifier (drops the input's)")
    ap.add_argument("--backbone-only", action="store_true", help="leave the input's classifiers out (an init)")
    ap.add_argument("--layout", choices=LAYOUTS, help="default: detected")
    ap.add_argument("--domain-bn", type=int, default=1, help="PLCA DomainBN: the domain whose BN to take [1]")
    ap.add_argument("--width", type=int, default=0, help="base width (0: from the input's shapes)")
    args = ap.parse_args()
    if args.input.endswith(".safetensors"):
        return to_pth(args)
    return to_safetensors(args)


if __name__ == "__main__":
    sys.exit(main())
