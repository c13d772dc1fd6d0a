"""References for the loss terms shared by the methods (src/model/losses.c), written from
their definitions: AdvEnt's entropy, KL, BCE with logits, the Lovasz-softmax of Berman et
al. 2018 (Algorithm 1 and the Lovasz extension of the Jaccard loss), and torch.gather for
segda's differentiable gather (src/model/autograd.c)."""
import torch
import torch.nn.functional as F

from common import labels, rand


def entropy(gen):
    x = rand(gen, 2, 5, 3, 4, lo=-3, hi=3).requires_grad_()
    p = F.softmax(x, 1)
    loss = -(p * torch.log(p)).sum(1).mean()
    return {"logits": x}, {"loss": loss}, {}


def kl_div(gen):
    lq = F.log_softmax(rand(gen, 2, 4, 3, 3, lo=-2, hi=2), 1).detach().requires_grad_()
    p = F.softmax(rand(gen, 2, 4, 3, 3, lo=-2, hi=2), 1).detach().requires_grad_()
    loss = (p * (torch.log(p) - lq)).mean()
    return {"log_q": lq, "p": p}, {"loss": loss}, {}


def bce_with_logits(gen):
    x = rand(gen, 2, 1, 4, 5, lo=-4, hi=4).requires_grad_()
    y = (rand(gen, 2, 1, 4, 5, lo=0, hi=1) > 0.5).double()
    loss = (torch.clamp(x, min=0) - x * y + torch.log1p(torch.exp(-x.abs()))).mean()
    return {"x": x, "target": y}, {"loss": loss}, {}


def lovasz_softmax(gen):
    c = 4
    x = rand(gen, 2, c, 5, 6, lo=-3, hi=3).requires_grad_()
    y = labels(gen, 2, 5, 6, classes=c)
    p = F.softmax(x, 1).permute(0, 2, 3, 1).reshape(-1, c)
    lab = y.reshape(-1).long()
    keep = lab != 255
    p, lab = p[keep], lab[keep]
    terms = []
    for k in range(c):
        fg = (lab == k).double()
        if fg.sum() == 0:  # classes present in the labels only
            continue
        err = (fg - p[:, k]).abs()
        err_sorted, order = torch.sort(err, descending=True)
        fg_sorted = fg[order]
        gts = fg_sorted.sum()
        inter = gts - fg_sorted.cumsum(0)
        union = gts + (1 - fg_sorted).cumsum(0)
        jac = 1 - inter / union
        grad = torch.cat([jac[:1], jac[1:] - jac[:-1]])
        terms.append(torch.dot(err_sorted, grad))
    loss = torch.stack(terms).mean()
    return {"logits": x, "labels": y}, {"loss": loss}, {"ignore_index": 255}


def lovasz_ref(p, lab):
    """Lovasz-softmax of probabilities p [P, C] and labels [P] (classes present, 255 ignored)."""
    keep = lab != 255
    p, lab = p[keep], lab[keep]
    terms = []
    for k in range(p.shape[1]):
        fg = (lab == k).double()
        if fg.sum() == 0:
            continue
        err = (fg - p[:, k]).abs()
        err_sorted, order = torch.sort(err, descending=True)
        fg_sorted = fg[order]
        gts = fg_sorted.sum()
        jac = 1 - (gts - fg_sorted.cumsum(0)) / (gts + (1 - fg_sorted).cumsum(0))
        terms.append(torch.dot(err_sorted, torch.cat([jac[:1], jac[1:] - jac[:-1]])))
    return torch.stack(terms).mean()


def supervised(gen, source_lovasz=0.0):
    """CE on the main and auxiliary logits upsampled to the labels (bilinear, align_corners),
    plus the Lovasz-softmax of the upsampled main prediction (SDCA's released warm-up)."""
    c, aux_w = 5, 0.1
    main = rand(gen, 2, c, 3, 4, lo=-3, hi=3).requires_grad_()
    aux = rand(gen, 2, c, 3, 4, lo=-3, hi=3).requires_grad_()
    y = labels(gen, 2, 7, 9, classes=c)
    lab = y.long()
    up = F.interpolate(main, size=(7, 9), mode="bilinear", align_corners=True)
    upa = F.interpolate(aux, size=(7, 9), mode="bilinear", align_corners=True)
    ce = F.cross_entropy(up, lab, ignore_index=255)
    loss = ce + aux_w * F.cross_entropy(upa, lab, ignore_index=255)
    out = {"ce": ce}
    if source_lovasz:
        lov = lovasz_ref(F.softmax(up, 1).permute(0, 2, 3, 1).reshape(-1, c), lab.reshape(-1))
        loss = loss + source_lovasz * lov
        out["lovasz"] = lov
    out["loss"] = loss
    return {"main": main, "aux": aux, "labels": y}, out, {"aux_weight": aux_w, "source_lovasz": source_lovasz}


def gather(gen):
    x = rand(gen, 2, 5, 4).requires_grad_()
    idx = torch.randint(0, 5, (2, 6, 4), generator=gen)  # 6 draws of 5: indices repeat
    r = rand(gen, 2, 6, 4)
    y = torch.gather(x, 1, idx)
    return {"x": x, "idx": idx.int(), "r": r}, {"loss": (y * r).sum(), "y": y}, {}


CASES = {
    "base_entropy": entropy,
    "base_kl_div": kl_div,
    "base_bce_with_logits": bce_with_logits,
    "base_lovasz_softmax": lovasz_softmax,
    "base_supervised": supervised,
    "base_supervised_lovasz": lambda gen: supervised(gen, 0.75),
    "base_gather": gather,
}
