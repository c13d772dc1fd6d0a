"""References for the DAFormer / MIC self-training recipe (src/train/mic.h), in float64 and
written from the recipe's description (DAFormer, CVPR 2022; MIC, CVPR 2023; values from
their public configs), independently of src/train/mic_terms.c:
the mean teacher's EMA step and its momentum, the pseudo labels with their quality weight,
DACS class mixing (mask, image, label, weight), MIC's block mask, mmseg's pixel-weighted
cross-entropy (mean over all pixels) and the thing-class feature distance with its
label downscaling (one-hot average pooling, majority kept at >= min_ratio)."""
import torch
import torch.nn.functional as F

from common import labels, rand


def ema(gen):
    it, alpha_max = 5, 0.999
    alpha = min(1.0 - 1.0 / (it + 1), alpha_max)           # 0.8333: early steps follow the student
    t = rand(gen, 7, 11)
    s = rand(gen, 7, 11)
    new = alpha * t + (1 - alpha) * s
    return ({"teacher": t, "student": s}, {"loss": new.sum(), "teacher": new},
            {"iter": it, "alpha_max": alpha_max, "alpha": alpha})


def pseudo(gen):
    thr, top, bottom = 0.6, 2, 3
    x = rand(gen, 2, 5, 12, 10, lo=-3, hi=3)
    x[0, 1] += 3.0                                          # a confident image
    p = F.softmax(x, 1)
    conf, lab = p.max(1)
    share = (conf >= thr).double().mean()                  # one value for the batch
    w = torch.full((2, 1, 12, 10), float(share))
    w[:, :, :top] = 0
    w[:, :, 12 - bottom:] = 0
    return ({"logits": x}, {"loss": w.sum(), "labels": lab.double(), "weight": w, "quality": share},
            {"thr": thr, "top": top, "bottom": bottom})


def class_mix(gen):
    n, c, h, w = 2, 6, 9, 8
    ys = labels(gen, n, h, w, classes=c, ignore=0.2)
    table = torch.zeros(n, 256)
    vals = torch.unique(ys.long())                          # the batch's values, 255 included
    for i in range(n):                                      # half of them, drawn for each image
        k = (len(vals) + len(vals) % 2) // 2
        pick = vals[torch.randperm(len(vals), generator=gen)[:k]]
        table[i, pick] = 1
    mask = torch.stack([table[i][ys[i].long()] for i in range(n)]).unsqueeze(1)
    xs = rand(gen, n, 3, h, w)
    xt = rand(gen, n, 3, h, w)
    pl = torch.randint(0, c, (n, h, w), generator=gen).int()
    pw = torch.full((n, 1, h, w), 0.37)
    img = mask * xs + (1 - mask) * xt
    lab = torch.where(mask[:, 0] > 0, ys, pl)
    wt = mask * 1.0 + (1 - mask) * pw
    return ({"src_labels": ys, "table": table, "xs": xs, "xt": xt, "pl": pl, "pw": pw},
            {"loss": img.sum() + wt.sum(), "mask": mask, "image": img, "labels": lab.double(), "weight": wt}, {})


def block_mask(gen):
    ratio, h, w = 0.7, 21, 30
    u = rand(gen, 2, 1, 3, 4, lo=0, hi=1)                  # round(21/7), round(30/7) blocks of 7
    keep = (u > ratio).double()
    m = F.interpolate(keep, size=(h, w), mode="nearest")
    return ({"u": u}, {"loss": m.sum(), "mask": m}, {"ratio": ratio, "h": h, "w": w})


def weighted_ce(gen):
    n, c, h, w = 2, 5, 6, 7
    x = rand(gen, n, c, h, w, lo=-2, hi=2).requires_grad_()
    y = labels(gen, n, h, w, classes=c, ignore=0.15)
    wt = rand(gen, n, 1, h, w, lo=0, hi=1)
    nll = F.cross_entropy(x, y.long(), ignore_index=255, reduction="none")
    loss = (nll * wt[:, 0]).mean()                          # ignored pixels count in the mean
    return ({"logits": x, "labels": y, "weight": wt}, {"loss": loss}, {})


def downscale_ratio(y, scale, min_ratio, n_classes):
    """Majority class of each scale x scale cell, 255 (ignore) taking part as its own
    class; cells whose majority holds less than min_ratio become 255."""
    z = y.long().clone()
    z[z == 255] = n_classes
    one = F.one_hot(z, n_classes + 1).permute(0, 3, 1, 2).double()
    ratio, cls = F.avg_pool2d(one, scale).max(1)
    cls[cls == n_classes] = 255
    cls[ratio < min_ratio] = 255
    return cls


def feat_dist(gen):
    n, c, d, scale, h, w = 2, 6, 5, 4, 3, 4
    things = [2, 4, 5]
    # labels in blocks, so that most cells have a clear majority
    coarse = torch.randint(0, c, (n, h, w), generator=gen)
    y = coarse.repeat_interleave(scale, 1).repeat_interleave(scale, 2).int()
    noise = torch.rand(n, h * scale, w * scale, generator=gen)
    y[noise < 0.15] = 255
    y[(noise >= 0.15) & (noise < 0.3)] = 0
    cls = downscale_ratio(y, scale, 0.75, c)
    mask = torch.zeros(n, h, w, dtype=torch.bool)
    for k in things:
        mask |= cls == k
    f = rand(gen, n, d, h, w).requires_grad_()
    fi = rand(gen, n, d, h, w)
    dist = torch.norm(f - fi, dim=1)[mask].mean()
    return ({"features": f, "imnet": fi, "labels": y},
            {"loss": dist, "mask": mask.double().unsqueeze(1)},
            {"things": ",".join(map(str, things)), "classes": c, "min_ratio": 0.75})


LUMA = torch.tensor([0.299, 0.587, 0.114])


def jitter_blur(x01, b, c, s, h, sigma, taps, jitter, blur):
    """The strong augmentation as src/train/mic.h states it, on [N, 3, H, W] RGB in [0, 1]."""
    y = x01
    if jitter:
        y = (y * b.view(-1, 1, 1, 1)).clamp(0, 1)
        gray = (y * LUMA.view(1, 3, 1, 1)).sum(1, keepdim=True)
        m = gray.mean((1, 2, 3), keepdim=True)
        y = (c.view(-1, 1, 1, 1) * y + (1 - c.view(-1, 1, 1, 1)) * m).clamp(0, 1)
        gray = (y * LUMA.view(1, 3, 1, 1)).sum(1, keepdim=True)
        y = (s.view(-1, 1, 1, 1) * y + (1 - s.view(-1, 1, 1, 1)) * gray).clamp(0, 1)
        to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
        from_yiq = torch.linalg.inv(to_yiq)
        out = []
        for i in range(y.shape[0]):
            a = 2 * torch.pi * h[i]
            rot = torch.tensor([[1.0, 0, 0], [0, torch.cos(a), -torch.sin(a)], [0, torch.sin(a), torch.cos(a)]])
            mat = from_yiq @ rot @ to_yiq
            out.append(torch.einsum("rc,chw->rhw", mat, y[i]))
        y = torch.stack(out).clamp(0, 1)
    if blur:
        out = []
        for i in range(y.shape[0]):
            k = int(taps[i])
            d = torch.arange(k, dtype=torch.float64) - k // 2
            g = torch.exp(-d * d / (2 * float(sigma[i]) ** 2))
            g = g / g.sum()
            w2 = (g[:, None] * g[None, :])[None, None]
            yi = F.conv2d(y[i][:, None], w2, padding=k // 2)[:, 0]
            ones = F.conv2d(torch.ones(1, 1, *y.shape[2:]), w2, padding=k // 2)[0]
            out.append(yi / ones)
        y = torch.stack(out)
    return y


def strong_aug(norm):
    def case(gen):
        n, h, w = 2, 11, 13
        rgb = rand(gen, n, 3, h, w, lo=0.05, hi=0.95)
        if norm == "imagenet":
            mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
            sd = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
            x = ((rgb - mean) / sd).float().double()
            x01 = x * sd + mean
        else:                                               # deeplab: BGR 0..255 minus the caffe mean
            mean = torch.tensor([104.00698793, 116.66876762, 122.67891434]).view(1, 3, 1, 1)
            x = (rgb.flip(1) * 255 - mean).float().double()
            x01 = ((x + mean) / 255).flip(1)
        b = torch.tensor([0.85, 1.17]).float().double()
        c = torch.tensor([1.12, 0.83]).float().double()
        s = torch.tensor([0.9, 1.19]).float().double()
        hh = torch.tensor([0.13, -0.17]).float().double()
        sigma = torch.tensor([0.6, 1.1]).float().double()
        k0 = int(torch.ceil(torch.tensor(0.1 * h)))        # DACS: ceil(0.1 H), odd
        k0 = k0 if k0 % 2 else k0 - 1
        taps = [min(k0, 2 * int(torch.ceil(4 * sg)) + 1) for sg in sigma]
        y = jitter_blur(x01, b, c, s, hh, sigma, taps, True, True)
        if norm == "imagenet":
            out = (y - mean) / sd
        else:
            out = y.flip(1) * 255 - mean
        params = {"norm": norm, "taps0": taps[0], "taps1": taps[1]}
        for k, v in [("b", b), ("c", c), ("s", s), ("h", hh), ("sigma", sigma)]:
            params[k + "0"], params[k + "1"] = float(v[0]), float(v[1])
        return ({"x": x}, {"loss": out.sum(), "image": out}, dict(params, tol=2e-5))
    return case


CASES = {
    "mic_ema": ema,
    "mic_pseudo": pseudo,
    "mic_class_mix": class_mix,
    "mic_block_mask": block_mask,
    "mic_weighted_ce": weighted_ce,
    "mic_feat_dist": feat_dist,
    "mic_strong_aug_imagenet": strong_aug("imagenet"),
    "mic_strong_aug_deeplab": strong_aug("deeplab"),
}
