"""DeepLab-v2 in PyTorch (caffe-style bottleneck ResNet with ceil-mode pooling, or
torchvision's ResNet-101 as SDCA builds it; ASPP heads summing dilations 6/12/18/24) with the
parameter names of the AdaptSegNet/ADVENT state_dict. segda's converter uses it for the
expected names and shapes, and the parity test as the reference. Run as a script, it writes
parity data for tests/test_parity.c:

  deeplab_torch.py OUTDIR --arch deeplabv2_tiny|deeplabv2_resnet101|... --size HxW [--bn frozen|batch]
                   [--width W] [--bn-eps-zero]

which creates OUTDIR/weights.pth, inputs.safetensors and expected.safetensors. The
torchvision-style arch's weights.pth is an SDCA checkpoint ({'feature_extractor',
'classifier'}); --bn-eps-zero makes its batch norms SDCA's FrozenBatchNorm2d (no epsilon) and
draws small running variances, so that an epsilon would show."""
import argparse
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

ARCHS = {"deeplabv2_resnet101": ([3, 4, 23, 3], 64), "deeplabv2_resnet50": ([3, 4, 6, 3], 64),
         "deeplabv2_tiny": ([1, 1, 1, 1], 8), "deeplabv2_vgg16": None,
         "deeplabv2_resnet101_tv": ([3, 4, 23, 3], 64)}
TV_ARCHS = ("deeplabv2_resnet101_tv",)
LAYER_STRIDE = [1, 2, 1, 1]
LAYER_DILATION = [1, 1, 2, 4]


class Bottleneck(nn.Module):
    """tv: torchvision's block, strided on its 3x3 conv; else caffe's, on its first 1x1.
    eps: of every batch norm (0: SDCA's FrozenBatchNorm2d, in eval mode)."""

    def __init__(self, cin, planes, stride, dilation, project, tv=False, eps=1e-5):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, stride=1 if tv else stride, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, eps=eps)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride if tv else 1, padding=dilation,
                               dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=eps)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4, eps=eps)
        self.downsample = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, stride=stride, bias=False),
                                        nn.BatchNorm2d(planes * 4, eps=eps)) if project else None

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        r = self.downsample(x) if self.downsample is not None else x
        return F.relu(y + r)


ASPP_RATES = (6, 12, 18, 24)


class ASPP(nn.Module):
    """branches: how many of the four (all built) the forward sums; AdaptSegNet's released
    Classifier_Module returns after the first two (segda: model.aspp_rates = 6,12)."""

    def __init__(self, cin, classes, bias, branches=4):
        super().__init__()
        self.conv2d_list = nn.ModuleList(
            nn.Conv2d(cin, classes, 3, padding=r, dilation=r, bias=bias) for r in ASPP_RATES)
        self.branches = branches

    def forward(self, x):
        return sum(c(x) for c in self.conv2d_list[:self.branches])


class DeepLabV2(nn.Module):
    def __init__(self, arch, classes, multi_level=True, bias=True, width=0, eps=1e-5, branches=4):
        super().__init__()
        blocks, base = ARCHS[arch]
        base = width or base
        self.conv1 = nn.Conv2d(3, base, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base, eps=eps)
        if arch in TV_ARCHS:
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
            self._tv_layers(blocks, base, eps)
        else:
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
            self._caffe_layers(blocks, base, eps)
        self.multi_level = multi_level
        if multi_level:
            self.layer5 = ASPP(base * 16, classes, bias, branches)
        self.layer6 = ASPP(base * 32, classes, bias, branches)

    def _caffe_layers(self, blocks, base, eps):
        cin = base
        for li in range(4):
            planes = base << li
            layer = nn.Sequential(*[
                Bottleneck(cin if b == 0 else planes * 4, planes, LAYER_STRIDE[li] if b == 0 else 1,
                           LAYER_DILATION[li], b == 0, eps=eps) for b in range(blocks[li])])
            setattr(self, f"layer{li + 1}", layer)
            cin = planes * 4

    def _tv_layers(self, blocks, base, eps):
        """torchvision's ResNet construction with replace_stride_with_dilation = [False, True,
        True] (SDCA's feature extractor), followed step by step rather than from segda's
        tables: a layer asked to dilate turns its stride 2 into a doubled dilation, which its
        later blocks use while its first block keeps the dilation in force before it."""
        cin, dilation = base, 1
        for li, dilate in enumerate((False, False, True, True)):
            planes, stride = base << li, 1 if li == 0 else 2
            first_dilation = dilation
            if dilate:
                dilation, stride = dilation * stride, 1
            project = stride != 1 or cin != planes * 4
            layer = [Bottleneck(cin, planes, stride, first_dilation, project, tv=True, eps=eps)]
            layer += [Bottleneck(planes * 4, planes, 1, dilation, False, tv=True, eps=eps)
                      for _ in range(1, blocks[li])]
            setattr(self, f"layer{li + 1}", nn.Sequential(*layer))
            cin = planes * 4

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        x3 = self.layer3(x)
        x4 = self.layer4(x3)
        aux = self.layer5(x3) if self.multi_level else None
        return self.layer6(x4), aux


VGG_CONV = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
VGG_MULT = [1, 1, 2, 2, 4, 4, 4, 8, 8, 8, 8, 8, 8]


class DeepLabV2VGG(nn.Module):
    """SDCA's VGG-16 DeepLab-v2: torchvision vgg16.features without pool4/pool5, conv5
    dilated by 2, fc6/fc7 as 3x3 convs (dilation 4) to 16 x base channels, one ASPP head."""

    def __init__(self, classes, base=64, bias=True):
        super().__init__()
        feats, cin = {}, 3
        for idx, mult in zip(VGG_CONV, VGG_MULT):
            d = 2 if idx >= 24 else 1
            feats[str(idx)] = nn.Conv2d(cin, base * mult, 3, padding=d, dilation=d)
            cin = base * mult
        self.features = nn.ModuleDict(feats)
        self.fc6 = nn.Conv2d(cin, base * 16, 3, padding=4, dilation=4)
        self.fc7 = nn.Conv2d(base * 16, base * 16, 3, padding=4, dilation=4)
        self.layer6 = ASPP(base * 16, classes, bias)
        self.multi_level = False

    def forward(self, x):
        for idx in VGG_CONV:
            x = F.relu(self.features[str(idx)](x))
            if idx in (2, 7, 14):
                x = F.max_pool2d(x, 2, 2)
        x = F.relu(self.fc7(F.relu(self.fc6(x))))
        return self.layer6(x), None


def build(arch, classes, multi_level=True, width=0, eps=1e-5, branches=4):
    if arch == "deeplabv2_vgg16":
        return DeepLabV2VGG(classes, base=width or 64)
    return DeepLabV2(arch, classes, multi_level, width=width, eps=eps, branches=branches)


def randomize(model, gen, small_var=False):
    """small_var: running variances 1e-4 to 1e-2 (gammas scaled to match), where a batch
    norm's epsilon of 1e-5 changes its output by 0.05 % to 5 %."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".weight") and p.dim() == 4:
                p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / (p[0].numel())) ** 0.5)
            elif "bn" in name or "downsample.1" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen) if name.endswith("weight")
                        else 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.01 * torch.randn(p.shape, generator=gen))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=gen))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=gen))
        if small_var:
            for name, m in model.named_modules():
                if isinstance(m, nn.BatchNorm2d):
                    v = 10.0 ** (-4 + 2 * torch.rand(m.running_var.shape, generator=gen))
                    m.weight.mul_(torch.sqrt(v / m.running_var))
                    m.running_var.copy_(v)


def main():
    # numpy and st_io only for the parity data: the model alone needs torch (bench/gpu_check.py
    # imports it on GPU machines that may have nothing else)
    import numpy as np
    import st_io
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("outdir")
    ap.add_argument("--arch", default="deeplabv2_tiny", choices=sorted(ARCHS))
    ap.add_argument("--size", default="97x131", help="input HxW")
    ap.add_argument("--classes", type=int, default=19)
    ap.add_argument("--bn", default="frozen", choices=["frozen", "batch"],
                    help="frozen: running statistics (eval mode); batch: batch statistics")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=0, help="base width (0: the architecture's)")
    ap.add_argument("--bn-eps-zero", action="store_true",
                    help="batch norms without epsilon (SDCA's FrozenBatchNorm2d; needs --bn frozen)")
    ap.add_argument("--aspp-branches", type=int, default=4, choices=[1, 2, 3, 4],
                    help="ResNet: the classifiers sum the first N rates of 6,12,18,24 (all four are "
                         "saved, as in AdaptSegNet's released weights); the test sets model.aspp_rates")
    args = ap.parse_args()
    if args.bn_eps_zero and args.bn != "frozen":
        ap.error("--bn-eps-zero needs --bn frozen")
    h, w = (int(v) for v in args.size.lower().split("x"))
    tv = args.arch in TV_ARCHS
    eps = 0.0 if args.bn_eps_zero else 1e-5
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    # SDCA's model has one classifier, on layer4
    nb = args.aspp_branches
    model = build(args.arch, args.classes, multi_level=not tv, width=args.width, eps=eps, branches=nb).double()
    randomize(model, gen, small_var=args.bn_eps_zero)
    os.makedirs(args.outdir, exist_ok=True)
    state = {k: v.float().numpy() for k, v in model.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    # Saved the way training scripts do (wrapped, DataParallel prefix), so that the parity
    # test also exercises tools/convert_pth.py: SDCA's checkpoint layout for its backbone.
    sd = {k: torch.from_numpy(v) for k, v in state.items()}
    if tv:
        obj = {"iteration": 1,
               "feature_extractor": {"module.backbone." + k: v for k, v in sd.items() if not k.startswith("layer6.")},
               "classifier": {"module." + k[len("layer6."):]: v for k, v in sd.items() if k.startswith("layer6.")}}
    else:
        obj = {"state_dict": {"module." + k: v for k, v in sd.items()}}
    torch.save(obj, os.path.join(args.outdir, "weights.pth"))
    # The reference runs in float64 from the same float32 weights: an independent oracle.
    model = build(args.arch, args.classes, multi_level=not tv, width=args.width, eps=eps, branches=nb).double()
    model.load_state_dict({k: torch.from_numpy(v).double() for k, v in state.items()}, strict=False)
    x = torch.randn(args.batch, 3, h, w, generator=gen).float()
    labels = torch.randint(0, args.classes, (args.batch, h, w), generator=gen)
    labels[torch.rand(args.batch, h, w, generator=gen) < 0.1] = 255
    st_io.save(os.path.join(args.outdir, "inputs.safetensors"),
               {"x": x.numpy(), "labels": labels.int().numpy()},
               {"bn": args.bn, "aspp_rates": ",".join(str(r) for r in ASPP_RATES[:nb])})

    if args.bn == "frozen":
        model.eval()
    else:  # AdaptSegNet: batch statistics, gamma/beta fixed
        model.train()
    for name, p in model.named_parameters():
        p.requires_grad_(not ("bn" in name or "downsample.1" in name))
    main_out, aux = model(x.double())
    up = F.interpolate(main_out, size=(h, w), mode="bilinear", align_corners=True)
    loss = F.cross_entropy(up, labels, ignore_index=255)
    if aux is not None:
        up_aux = F.interpolate(aux, size=(h, w), mode="bilinear", align_corners=True)
        loss = loss + 0.1 * F.cross_entropy(up_aux, labels, ignore_index=255)
    loss.backward()
    expected = {"logits": main_out.detach().float().numpy(),
                "loss": np.array([loss.item()], dtype=np.float32)}
    if args.bn == "frozen":  # evaluation's upsampling (eval.align_corners), to the input size
        for corners in (True, False):
            up_eval = F.interpolate(main_out.detach(), size=(h, w), mode="bilinear", align_corners=corners)
            expected["eval_probs_ac%d" % corners] = F.softmax(up_eval, dim=1).float().numpy()
    if aux is not None:
        expected["aux"] = aux.detach().float().numpy()
    heads = [p for n, p in model.named_parameters() if n.startswith(("layer5", "layer6"))]
    backbone = [p for n, p in model.named_parameters()
                if p.requires_grad and not n.startswith(("layer5", "layer6"))]
    for n, p in model.named_parameters():
        if p.requires_grad and p.grad is not None:  # unused ASPP branches get none
            expected["grad." + n] = p.grad.float().numpy()
    opt = torch.optim.SGD([{"params": backbone, "lr": 2.5e-4}, {"params": heads, "lr": 2.5e-3}],
                          lr=2.5e-4, momentum=0.9, weight_decay=5e-4)
    opt.step()
    for n, p in model.named_parameters():
        if p.requires_grad:
            expected["sgd." + n] = p.detach().float().numpy()
    if args.bn == "batch":
        for n, b in model.named_buffers():
            if n.endswith(("running_mean", "running_var")):
                expected["running." + n] = b.float().numpy()
    st_io.save(os.path.join(args.outdir, "expected.safetensors"), expected)
    print(f"parity data: {args.arch} {h}x{w} bn={args.bn} loss={loss.item():.6f} -> {args.outdir}")


if __name__ == "__main__":
    main()
