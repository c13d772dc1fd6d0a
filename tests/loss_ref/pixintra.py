"""References for PixIntraDA (Yan et al., ACM MM 2021), written from the paper
(../shared/papers/pixintra.txt) in float64, independently of src/train/pixintra_loss.c:
the pixel split (Eq. 2, 3, 7), the median thresholds t_k (section 4.1) and the easy
proportion (Eq. 4), the partial segmentation loss (Eq. 5), the PLA losses (Eq. 6, as the
log of spatially summed probabilities, or per-pixel BCE), the CTS losses (Eq. 8) and
CRST's MR-KLD. Normalisations are the ones src/train/method_pixintra.c documents: sums
divided by their pixel counts."""
import torch
import torch.nn.functional as F

from common import rand

EPS = 1e-8


def split(y, thr):
    """Eq. 2, 3, 7: y [N, C, H, W] probabilities, thr [C] = alpha * t_k."""
    above = y > thr.view(1, -1, 1, 1)
    hard = (~above).all(dim=1, keepdim=True)               # M = 1: every y_k <= alpha t_k
    cand = torch.where(above, y, torch.full_like(y, -1.0))  # "none" is out of the argmax
    lab = cand.argmax(dim=1)
    lab[hard[:, 0]] = 255
    z = torch.where(hard, 1.0 - y.max(dim=1, keepdim=True).values, torch.zeros_like(y[:, :1]))
    return lab, hard.double(), z


def probs(gen, *shape, sharp=3.0):
    return F.softmax(rand(gen, *shape, lo=-sharp, hi=sharp), 1).float().double()


def split_seg(gen):
    c = 5
    y = probs(gen, 2, c, 5, 6)
    t = rand(gen, c, lo=0.25, hi=0.8)
    alpha = 0.85
    thr = (t * alpha).float().double()
    lab, hard, z = split(y, thr)
    x = rand(gen, 2, c, 5, 6, lo=-2, hi=2).requires_grad_()
    easy = lab != 255
    logp = F.log_softmax(x, 1)
    nll = -logp.gather(1, lab.clamp(max=c - 1).unsqueeze(1))[:, 0]
    loss = nll[easy].sum() / easy.sum()                    # Eq. 5 over E_i, divided by |E|
    return ({"probs": y, "t": t, "logits": x},
            {"loss": loss, "labels": lab.double(), "hard": hard, "z": z}, {"alpha": alpha})


def thresholds(gen):
    c, cap, alpha = 5, 0.9, 0.85
    logits = rand(gen, 2, c, 9, 11, lo=-3, hi=3)
    logits[:, 0] += 4.0                                    # class 0: confident, median > cap
    logits[:, 4] -= 20.0                                   # class 4: never predicted -> cap
    y = F.softmax(logits, 1).float().double()
    conf, arg = y.max(1)
    t = []
    for k in range(c):
        v = conf[arg == k]
        m = v.median() if v.numel() else torch.tensor(cap)  # torch: the lower median
        t.append(torch.clamp(m, max=cap))
    t = torch.stack(t)
    _, hard, _ = split(y, t * alpha)
    prop = 1.0 - hard.mean()                                # Eq. 4
    w = rand(gen, c, lo=0.5, hi=1.5).requires_grad_()
    loss = (w * t).sum()
    return {"probs": y, "w": w}, {"loss": loss, "thr": t, "prop": prop}, \
        {"cap": cap, "alpha": alpha, "bins": 65536, "tol": 1e-4}


def kld(gen):
    c = 6
    x = rand(gen, 2, c, 4, 5, lo=-3, hi=3).requires_grad_()
    easy = (rand(gen, 2, 1, 4, 5, lo=0, hi=1) > 0.4).double()
    reg = -F.log_softmax(x, 1).sum(1, keepdim=True) / c     # CRST: -(1/C) sum_c log p_c
    loss = (reg * easy).sum() / easy.sum()
    return {"logits": x, "easy": easy}, {"loss": loss}, {}


def disc_inputs(gen):
    d = rand(gen, 2, 1, 6, 8, lo=-3, hi=3).requires_grad_()
    hard = (rand(gen, 2, 1, 6, 8, lo=0, hi=1) > 0.6).double()
    return d, hard


def pla_sum_g(gen):
    d, m = disc_inputs(gen)
    D = torch.sigmoid(d)
    loss = -torch.log(((1 - D) * m).sum() / m.sum() + EPS)  # Eq. 6, L_G
    return {"d": d, "hard": m}, {"loss": loss}, {"form": "sum"}


def pla_sum_d(gen):
    d, m = disc_inputs(gen)
    D = torch.sigmoid(d)
    e = 1 - m
    loss = 0.5 * -torch.log((D * m).sum() / m.sum() + EPS) + 0.5 * -torch.log(((1 - D) * e).sum() / e.sum() + EPS)
    return {"d": d, "hard": m}, {"loss": loss}, {"form": "sum"}


def pla_bce_g(gen):
    d, m = disc_inputs(gen)
    bce0 = F.binary_cross_entropy_with_logits(d, torch.zeros_like(d), reduction="none")
    loss = (bce0 * m).sum() / m.sum()
    return {"d": d, "hard": m}, {"loss": loss}, {"form": "bce"}


def pla_bce_d(gen):
    d, m = disc_inputs(gen)
    bce1 = F.binary_cross_entropy_with_logits(d, torch.ones_like(d), reduction="none")
    bce0 = F.binary_cross_entropy_with_logits(d, torch.zeros_like(d), reduction="none")
    e = 1 - m
    loss = 0.5 * (bce1 * m).sum() / m.sum() + 0.5 * (bce0 * e).sum() / e.sum()
    return {"d": d, "hard": m}, {"loss": loss}, {"form": "bce"}


def cts_d(gen, sigmoid=True):
    d, m = disc_inputs(gen)
    z = m * rand(gen, 2, 1, 6, 8, lo=0.1, hi=0.8)
    D = torch.sigmoid(d) if sigmoid else d
    loss = ((D - z) ** 2).sum() / d.numel()                  # Eq. 8, ||D - Z||_F^2 / (N H W)
    return {"d": d, "z": z}, {"loss": loss}, {"sigmoid": int(sigmoid)}


def cts_g(gen):
    d, m = disc_inputs(gen)
    loss = ((torch.sigmoid(d) * m) ** 2).sum() / d.numel()  # Eq. 8, ||D o M||_F^2 / (N H W)
    return {"d": d, "hard": m}, {"loss": loss}, {"sigmoid": 1}


def tol(fn, value=1e-4):
    """The case's tolerance, stated in its metadata (float32 against float64)."""
    def case(gen):
        inputs, outputs, params = fn(gen)
        return inputs, outputs, {"tol": value, **params}
    return case


CASES = {name: tol(fn) for name, fn in {
    "pixintra_split_seg": split_seg,
    "pixintra_thresholds": thresholds,
    "pixintra_kld": kld,
    "pixintra_pla_sum_g": pla_sum_g,
    "pixintra_pla_sum_d": pla_sum_d,
    "pixintra_pla_bce_g": pla_bce_g,
    "pixintra_pla_bce_d": pla_bce_d,
    "pixintra_cts_d": cts_d,
    "pixintra_cts_d_raw": lambda gen: cts_d(gen, sigmoid=False),
    "pixintra_cts_g": cts_g,
}.items()}
