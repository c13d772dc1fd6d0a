"""References for BiDA's terms (Lee et al., ECCV 2022), written from the paper's equations:
masked-average-pooling prototypes (eq. 1), the forward and backward pixel-prototype
contrastive losses over cosine similarities with temperature (eq. 2, 3), EMA prototypes
(eq. 4, 5), calibration xi = mu_T - mu_S (eq. 6, 7), dynamic labels (eq. 8, 9), hybrid
labels (eq. 10), CBST's class-balanced static labels, and the distillation KL.
Shapes: features [N, D, P], labels [N, P] (255 = none), prototypes [C, D].
Conventions shared with segda (stated in src/train/method_bida.c): ||f|| = sqrt(sum f^2 +
1e-8); classes without a prototype leave the softmax and their pixels are skipped; the
contrastive CE is a mean over the pixels used."""
import torch
import torch.nn.functional as F

from common import labels, rand

EPS = 1e-8


def one_hot(y, c):
    """[N, P] with 255 -> [N, C, P] float."""
    out = torch.zeros(y.shape[0], c, y.shape[1])
    for k in range(c):
        out[:, k, :] = (y == k).double()
    return out


def prototypes(f, y, c):
    """eq. (1) over the whole batch: rho [C, D], present [C]."""
    oh = one_hot(y, c)
    sums = torch.einsum("ncp,ndp->cd", oh, f)
    cnt = oh.sum((0, 2))
    rho = sums / cnt.clamp(min=1).unsqueeze(1)
    return rho, (cnt > 0).double()


def normalize(x, dim):
    return x / torch.sqrt((x * x).sum(dim, keepdim=True) + EPS)


def cosine(f, rho):
    """s(f(p), rho(c)) -> [N, C, P]."""
    return torch.einsum("cd,ndp->ncp", normalize(rho, 1), normalize(f, 1))


def contrast(f, rho, present, y, tau):
    """eq. (2)/(3): -log softmax over the present classes of s/tau at the labelled class,
    averaged over the pixels whose class has a prototype."""
    logits = cosine(f, rho) / tau
    logits = logits.masked_fill(present.view(1, -1, 1) == 0, float("-inf"))
    logp = F.log_softmax(logits, 1)
    terms = []
    for n in range(y.shape[0]):
        for p in range(y.shape[1]):
            k = int(y[n, p])
            if k != 255 and present[k] > 0:
                terms.append(-logp[n, k, p])
    return torch.stack(terms).mean(), len(terms)


def label_maps(gen, n, p, c, absent):
    """Labels with ignored pixels and without class `absent`."""
    y = labels(gen, n, p, classes=c)
    y[y == absent] = (absent + 1) % c
    return y


def case_prototypes(gen):
    c = 4
    f = rand(gen, 2, 5, 12, lo=0, hi=2).requires_grad_()
    y = label_maps(gen, 2, 12, c, absent=2)
    wgt = rand(gen, c, 5)
    rho, present = prototypes(f, y, c)
    loss = (rho * wgt).sum()
    return {"feat": f, "labels": y, "w": wgt}, {"loss": loss, "rho": rho, "present": present}, {"tol": 1e-5}


def case_cosine(gen):
    f = rand(gen, 2, 6, 10).requires_grad_()
    rho = rand(gen, 3, 6).requires_grad_()
    wgt = rand(gen, 2, 3, 10)
    sim = cosine(f, rho)
    loss = (sim * wgt).sum()
    return {"feat": f, "rho": rho, "w": wgt}, {"loss": loss, "sim": sim}, {"tol": 1e-5}


def case_fcl(gen):
    """Target pixels vs source prototypes (the source batch lacks class 1, which the
    target labels contain: those pixels are skipped)."""
    c, tau = 5, 0.1
    fs = rand(gen, 2, 8, 16, lo=0, hi=2).requires_grad_()
    ft = rand(gen, 2, 8, 16, lo=0, hi=2).requires_grad_()
    ys = label_maps(gen, 2, 16, c, absent=1)
    yt = labels(gen, 2, 16, classes=c)
    rho_s, pres_s = prototypes(fs, ys, c)
    loss, npix = contrast(ft, rho_s, pres_s, yt, tau)
    return ({"feat_s": fs, "feat_t": ft, "labels_s": ys, "labels_t": yt},
            {"loss": loss, "npix": torch.tensor([float(npix)])}, {"tau": tau, "tol": 1e-4})


def case_bcl(gen):
    """Source pixels vs target prototypes from hybrid target labels."""
    c, tau = 5, 0.1
    fs = rand(gen, 2, 8, 16, lo=-1, hi=2).requires_grad_()
    ft = rand(gen, 2, 8, 16, lo=-1, hi=2).requires_grad_()
    ys = labels(gen, 2, 16, classes=c)
    yt = label_maps(gen, 2, 16, c, absent=3)
    rho_t, pres_t = prototypes(ft, yt, c)
    loss, npix = contrast(fs, rho_t, pres_t, ys, tau)
    return ({"feat_s": fs, "feat_t": ft, "labels_s": ys, "labels_t": yt},
            {"loss": loss, "npix": torch.tensor([float(npix)])}, {"tau": tau, "tol": 1e-4})


def case_dynamic(gen):
    """eq. (6)-(10): calibrated source prototypes, dynamic labels, hybrid labels."""
    c, d, thr = 4, 6, 0.5
    ft = rand(gen, 2, d, 20, lo=-0.5, hi=1)
    ys = label_maps(gen, 2, 20, c, absent=0)
    fs = rand(gen, 2, d, 20, lo=0, hi=1)
    rho_s, pres_s = prototypes(fs, ys, c)
    mu_s = rand(gen, c, d, lo=0, hi=1)
    mu_t = rand(gen, c, d, lo=0, hi=1)
    seen = torch.tensor([[1.0, 1.0, 0.0, 1.0], [1.0, 0.0, 1.0, 1.0]])
    both = (seen[0] * seen[1]).unsqueeze(1)
    rho_st = rho_s + both * (mu_t - mu_s)                                  # eq. (6), (7)
    sim = cosine(ft, rho_st).masked_fill(pres_s.view(1, -1, 1) == 0, float("-inf"))
    best, arg = sim.max(1)                                                   # eq. (9)
    yd = torch.where(best > thr, arg, torch.full_like(arg, 255))            # eq. (8)
    yf = labels(gen, 2, 20, classes=c, ignore=0.5)
    yh = torch.where(yd != 255, yd, yf.long())                              # eq. (10)
    wgt = rand(gen, c, d).requires_grad_()
    loss = (rho_st * wgt).sum()
    return ({"feat_t": ft, "feat_s": fs, "labels_s": ys, "mu_s": mu_s, "mu_t": mu_t, "seen": seen,
             "static": yf, "w": wgt},
            {"loss": loss, "rho_st": rho_st, "dynamic": yd.double(), "hybrid": yh.double()},
            {"thr": thr, "tol": 1e-5})


def case_ema(gen):
    """eq. (4)/(5) for the present classes; a class's first prototype initialises mu."""
    c, d, lam = 5, 4, 0.9
    mu = rand(gen, c, d)
    rho = rand(gen, c, d)
    seen = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
    present = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0])
    new = mu.clone()
    for k in range(c):
        if present[k] > 0:
            new[k] = lam * mu[k] + (1 - lam) * rho[k] if seen[k] > 0 else rho[k]
    new_seen = torch.maximum(seen, present)
    wgt = rand(gen, c, d).requires_grad_()
    return ({"mu": mu, "rho": rho, "seen": seen, "present": present, "w": wgt},
            {"loss": (new * wgt).sum(), "mu_new": new, "seen_new": new_seen}, {"lambda": lam, "tol": 1e-5})


def cbst(prob, portion):
    conf, pred = prob.max(1)
    thr = torch.full((prob.shape[1],), -1.0, dtype=prob.dtype)
    for k in range(prob.shape[1]):
        v = conf[pred == k]
        if v.numel():
            v, _ = torch.sort(v, descending=True)
            thr[k] = v[max(int(portion * v.numel()) - 1, 0)]
    return thr, torch.where(conf >= thr[pred], pred, torch.full_like(pred, 255))


def case_spatial_prior(gen):
    """CBST-SP [58]: per-position counts of the source labels on a grid; weights
    q = (count + 1) / (the class's peak count + 1), upsampled (bilinear, corners aligned) to
    the prediction and multiplied into its probabilities; then CBST's thresholds on the
    weighted confidences (the labels from them are case_static's: compared here they would
    hinge on float-vs-double near-ties at a threshold)."""
    c, gh, gw, h, w, portion = 4, 3, 5, 6, 8, 0.25
    counts0 = torch.randint(0, 6, (c, gh * gw), generator=gen).double()
    counts0[2] = 0                                   # a class the source has not shown yet
    ys = labels(gen, 3, gh * gw, classes=c, ignore=0.2)
    ys[ys == 2] = 1
    counts = counts0 + one_hot(ys.long(), c).sum(0)
    q = (counts + 1) / (counts.max(1, keepdim=True).values + 1)
    qup = F.interpolate(q.view(1, c, gh, gw), size=(h, w), mode="bilinear", align_corners=True)
    prob = F.softmax(rand(gen, 2, c, h * w, lo=-3, hi=3), 1).float().double()
    weighted = prob * qup.view(1, c, h * w)
    thr, _ = cbst(weighted, portion)
    wgt = rand(gen, 2, c, h * w).requires_grad_()
    return ({"counts": counts0, "labels": ys, "prob": prob, "w": wgt},
            {"loss": (weighted * wgt).sum(), "counts_new": counts, "weighted": weighted, "thr": thr},
            {"grid_h": gh, "grid_w": gw, "h": h, "w": w, "portion": portion, "tol": 1e-5})


def case_static(gen):
    """CBST [58]: class k's threshold is the confidence at position floor(p n_k) - 1 of its
    pixels sorted by confidence (descending); a pixel keeps its argmax if it reaches it."""
    c, portion = 4, 0.3
    prob = F.softmax(rand(gen, 2, c, 25, lo=-3, hi=3), 1).float().double()
    thr, lab = cbst(prob, portion)
    wgt = rand(gen, c).requires_grad_()
    return ({"prob": prob, "w": wgt}, {"loss": (thr * wgt).sum(), "thr": thr, "labels": lab.double()},
            {"portion": portion, "tol": 1e-6})


def case_distill_kl(gen):
    """Self-distillation (ProDA): KL(p_teacher || p_student) summed over classes, mean
    over pixels."""
    t_logits = rand(gen, 2, 5, 3, 4, lo=-3, hi=3)
    s_logits = rand(gen, 2, 5, 3, 4, lo=-3, hi=3).requires_grad_()
    p = F.softmax(t_logits, 1)
    loss = (p * (F.log_softmax(t_logits, 1) - F.log_softmax(s_logits, 1))).sum(1).mean()
    return {"teacher": t_logits, "student": s_logits}, {"loss": loss}, {"tol": 1e-5}


def case_entropy_double_softmax(gen):
    """The released code's entropy term (DASS trainer/damnet_trainer.py entropy_loss):
    q = softmax(p) with p = softmax(x), loss = mean over pixels of -sum_c p_c log q_c,
    written out with exp/log sums rather than F.log_softmax."""
    x = rand(gen, 2, 5, 3, 4, lo=-4, hi=4).requires_grad_()
    p = torch.exp(x) / torch.exp(x).sum(1, keepdim=True)
    log_q = p - torch.log(torch.exp(p).sum(1, keepdim=True))
    loss = -(p * log_q).sum(1).mean()
    return {"logits": x}, {"loss": loss}, {"tol": 1e-5}


CASES = {
    "bida_prototypes": case_prototypes,
    "bida_cosine": case_cosine,
    "bida_fcl": case_fcl,
    "bida_bcl": case_bcl,
    "bida_dynamic_hybrid": case_dynamic,
    "bida_ema": case_ema,
    "bida_static_cbst": case_static,
    "bida_spatial_prior": case_spatial_prior,
    "bida_distill_kl": case_distill_kl,
    "bida_entropy_double_softmax": case_entropy_double_softmax,
}
