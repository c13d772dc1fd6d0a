"""References for PLCA (Kang et al., NeurIPS 2020), written from the paper's equations (and
the facts of methods.md section 1 where the paper is silent), in the paper's layout:
similarity matrices D[n, i, j] with the query pixel i as the row. Independent of segda's
code (which keeps the transposed layout and composes device ops).

  Eq. 1   cosine similarity of L2-normalized features
  Eq. 9   D_kl(p, q) = -sum_c p_c (log p_c - log q_c), logs of p + 1e-10
  Eq. 5-6 contrast normalization of each row, mean and unbiased std detached (+1e-10)
  Eq. 2-4 the cycle i -> j* -> i*, loss = mean over the valid source pixels of
          -log(softmax(D_st)[i, j*] * softmax(D_ts)[j*, i*]); valid: y_i != 255 and
          y_{i*} == y_i; 0 when none is valid
  Eq. 7-8 spatial aggregation x_hat_j = (1 - a) x_j + a sum_j' softmax_j'(D(x_j, x_j')) x_j'
  Eq. 13  LSR: gamma = u / lambda - 1 (detached), u = -mean_c log p_c, mean of gamma * u
  Eq. 14  CE + b1 Lov + b2 (L_fass + L_cass) + b3 (LSR_s + LSR_t)
"""
import torch
import torch.nn.functional as F

from common import rand

EPS_LOG = 1e-10
EPS_STD = 1e-10


def cos_sim(a, b):
    """a [N, C, Pa], b [N, C, Pb] -> [N, Pa, Pb]."""
    an = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
    bn = b / b.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return torch.einsum("nci,ncj->nij", an, bn)


def kl_sim(p, q):
    """-KL(p_i || q_j) for probability maps p [N, K, Pa], q [N, K, Pb] -> [N, Pa, Pb]."""
    lp = torch.log(p + EPS_LOG)
    lq = torch.log(q + EPS_LOG)
    # sum_c p_i(c) (log p_i(c) - log q_j(c)), explicitly per pair
    diff = lp.unsqueeze(3) - lq.unsqueeze(2)  # [N, K, Pa, Pb]
    return -(p.unsqueeze(3) * diff).sum(1)


def contrast_norm(d):
    mu = d.mean(-1, keepdim=True).detach()
    sd = d.std(-1, unbiased=True, keepdim=True).detach()
    return (d - mu) / (sd + EPS_STD)


def aggregate(x, alpha, sim, norm):
    d = sim(x, x)  # [N, P, P], row j over j'
    if norm:
        d = contrast_norm(d)
    w = F.softmax(d, -1)
    agg = torch.einsum("njk,nck->ncj", w, x)
    return (1 - alpha) * x + alpha * agg


def cycle_loss(d_st, d_ts, y, contrastive=True, norm=True):
    """d_st [N, Ps, Pt], d_ts [N, Pt, Ps], y [N, Ps] (long). Returns loss, number valid."""
    n, ps, _ = d_st.shape
    if contrastive:
        a = contrast_norm(d_st) if norm else d_st
        b = contrast_norm(d_ts) if norm else d_ts
        s_st = F.log_softmax(a, -1)
        s_ts = F.log_softmax(b, -1)
    else:  # Sim-PLCA: the raw similarities themselves
        s_st, s_ts = d_st, d_ts
    terms = []
    for k in range(n):
        for i in range(ps):
            j = int(torch.argmax(d_st[k, i]))
            i2 = int(torch.argmax(d_ts[k, j]))
            if int(y[k, i]) == 255 or int(y[k, i2]) != int(y[k, i]):
                continue
            terms.append(-(s_st[k, i, j] + s_ts[k, j, i2]))
    if not terms:
        return (d_st.sum() + d_ts.sum()) * 0.0, 0
    return torch.stack(terms).mean(), len(terms)


def lsr(logits, lam):
    u = -F.log_softmax(logits, 1).mean(1)
    gamma = (u / lam - 1).detach()
    return (gamma * u).mean()


def lovasz_softmax(probs, y):
    """Berman et al. 2018, classes present in the labels, ignore 255, whole batch."""
    c = probs.shape[1]
    p = probs.permute(0, 2, 3, 1).reshape(-1, c)
    lab = y.reshape(-1).long()
    keep = lab != 255
    p, lab = p[keep], lab[keep]
    out = []
    for k in range(c):
        fg = (lab == k).double()
        if fg.sum() == 0:
            continue
        err = (fg - p[:, k]).abs()
        es, order = torch.sort(err, descending=True)
        fs = fg[order]
        g = fs.sum()
        jac = 1 - (g - fs.cumsum(0)) / (g + (1 - fs).cumsum(0))
        jac = torch.cat([jac[:1], jac[1:] - jac[:-1]])
        out.append(torch.dot(es, jac))
    return torch.stack(out).mean()


def structured_labels(gen, n, p, classes):
    """Labels where most pixels share a few classes (so cycles are often valid), some 255."""
    y = torch.randint(0, classes, (n, p), generator=gen)
    y[torch.rand(n, p, generator=gen) < 0.1] = 255
    return y.int()


# ---- cases --------------------------------------------------------------------------------

def cosine_sim(gen):
    a = rand(gen, 2, 6, 10).requires_grad_()
    b = rand(gen, 2, 6, 12).requires_grad_()
    r = rand(gen, 2, 10, 12)
    d = cos_sim(a, b)
    return {"src": a, "tgt": b, "r": r}, {"loss": (d * r).sum(), "sim": d}, {"tol": 1e-4}


def kl_similarity(gen):
    ls = rand(gen, 2, 5, 9, lo=-3, hi=3).requires_grad_()
    lt = rand(gen, 2, 5, 11, lo=-3, hi=3).requires_grad_()
    r1 = rand(gen, 2, 9, 11)
    r2 = rand(gen, 2, 11, 9)
    ps, pt = F.softmax(ls, 1), F.softmax(lt, 1)
    d_st, d_ts = kl_sim(ps, pt), kl_sim(pt, ps)
    loss = (d_st * r1).sum() + (d_ts * r2).sum()
    return ({"logits_s": ls, "logits_t": lt, "r1": r1, "r2": r2},
            {"loss": loss, "sim_st": d_st, "sim_ts": d_ts}, {"tol": 1e-4})


def contrast_normalization(gen):
    x = rand(gen, 2, 7, 9, lo=-2, hi=2).requires_grad_()
    r = rand(gen, 2, 7, 9)
    z = contrast_norm(x)
    return {"x": x, "r": r}, {"loss": (z * r).sum(), "z": z}, {"tol": 1e-4}


def agg_features(gen):
    x = rand(gen, 2, 6, 12).requires_grad_()
    r = rand(gen, 2, 6, 12)
    y = aggregate(x, 0.5, cos_sim, True)
    return {"x": x, "r": r}, {"loss": (y * r).sum(), "agg": y}, {"alpha": 0.5, "tol": 1e-4}


def _agg_pred(gen, norm):
    lg = rand(gen, 2, 5, 12, lo=-3, hi=3).requires_grad_()
    r = rand(gen, 2, 5, 12)
    y = aggregate(F.softmax(lg, 1), 0.3, kl_sim, norm)
    return {"logits": lg, "r": r}, {"loss": (y * r).sum(), "agg": y}, {"alpha": 0.3, "norm": int(norm), "tol": 1e-4}


def agg_pred(gen):
    return _agg_pred(gen, False)


def agg_pred_norm(gen):
    return _agg_pred(gen, True)


def _fass(gen, agg, contrastive=True, norm=True, all_ignored=False):
    fs = rand(gen, 2, 8, 12).requires_grad_()
    ft = rand(gen, 2, 8, 14).requires_grad_()
    y = structured_labels(gen, 2, 12, 3)
    if all_ignored:
        y[:] = 255
    fta = aggregate(ft, 0.5, cos_sim, True) if agg else ft
    loss, nv = cycle_loss(cos_sim(fs, fta), cos_sim(fta, fs), y.long(), contrastive, norm)
    return ({"src": fs, "tgt": ft, "labels": y}, {"loss": loss, "nvalid": torch.tensor([float(nv)])},
            {"metric": "cosine", "aggregation": int(agg), "contrastive": int(contrastive),
             "contrast_norm": int(norm), "alpha": 0.5, "tol": 2e-4})


def fass(gen):
    return _fass(gen, True)


def fass_no_agg(gen):
    return _fass(gen, False)


def fass_sim_plca(gen):
    return _fass(gen, True, contrastive=False)


def fass_no_contrast_norm(gen):
    return _fass(gen, True, norm=False)


def fass_none_valid(gen):
    return _fass(gen, True, all_ignored=True)


def _cass(gen, agg, norm_agg=False):
    ls = rand(gen, 2, 4, 12, lo=-3, hi=3).requires_grad_()
    lt = rand(gen, 2, 4, 14, lo=-3, hi=3).requires_grad_()
    y = structured_labels(gen, 2, 12, 4)
    ps, pt = F.softmax(ls, 1), F.softmax(lt, 1)
    pta = aggregate(pt, 0.5, kl_sim, norm_agg) if agg else pt
    loss, nv = cycle_loss(kl_sim(ps, pta), kl_sim(pta, ps), y.long())
    return ({"logits_s": ls, "logits_t": lt, "labels": y},
            {"loss": loss, "nvalid": torch.tensor([float(nv)])},
            {"metric": "neg_kl", "aggregation": int(agg), "pred_agg_norm": int(norm_agg),
             "alpha": 0.5, "tol": 2e-4})


def cass(gen):
    return _cass(gen, True)


def cass_no_agg(gen):
    return _cass(gen, False)


def cass_agg_norm(gen):
    return _cass(gen, True, True)


def lsr_case(gen):
    x = rand(gen, 2, 5, 3, 4, lo=-6, hi=6).requires_grad_()
    return {"logits": x}, {"loss": lsr(x, 1.2)}, {"lambda": 1.2, "tol": 1e-4}


def objective(gen):
    """Eq. 14 on stride-8 maps 3x4 of a 24x32 crop (labels resized by nearest)."""
    n, k, c, h, w = 2, 4, 6, 3, 4
    sl = rand(gen, n, k, h, w, lo=-3, hi=3).requires_grad_()
    tl = rand(gen, n, k, h, w, lo=-3, hi=3).requires_grad_()
    sf = rand(gen, n, c, h, w, lo=0, hi=1).requires_grad_()
    tf = rand(gen, n, c, h, w, lo=0, hi=1).requires_grad_()
    # Blocky labels (8x8 cells of one class) so that the nearest resize is unambiguous.
    cells = torch.randint(0, k, (n, h, w), generator=gen)
    cells[torch.rand(n, h, w, generator=gen) < 0.1] = 255
    y = cells.repeat_interleave(8, 1).repeat_interleave(8, 2).int()
    y[:, 1, 1] = 255  # ignored pixels inside cells (CE and Lovasz only)
    yl = y.long()
    up = F.interpolate(sl, size=(h * 8, w * 8), mode="bilinear", align_corners=False)
    ce = F.cross_entropy(up, yl, ignore_index=255)
    lov = lovasz_softmax(F.softmax(up, 1), yl)
    y8 = yl[:, ::8, ::8].reshape(n, -1)  # nearest: floor(o * in / out) = 8 o
    fs, ft = sf.reshape(n, c, -1), tf.reshape(n, c, -1)
    fta = aggregate(ft, 0.5, cos_sim, True)
    fa, _ = cycle_loss(cos_sim(fs, fta), cos_sim(fta, fs), y8)
    ps, pt = F.softmax(sl, 1).reshape(n, k, -1), F.softmax(tl, 1).reshape(n, k, -1)
    pta = aggregate(pt, 0.5, kl_sim, False)
    ca, _ = cycle_loss(kl_sim(ps, pta), kl_sim(pta, ps), y8)
    ls_, lt_ = lsr(sl, 10.0), lsr(tl, 10.0)
    loss = ce + 0.75 * lov + 0.1 * (fa + ca) + 0.01 * (ls_ + lt_)
    return ({"src_logits": sl, "tgt_logits": tl, "src_feat": sf, "tgt_feat": tf, "labels": y},
            {"loss": loss, "seg": ce, "lovasz": lov, "fass": fa, "cass": ca, "lsr_s": ls_, "lsr_t": lt_},
            {"tol": 2e-4})


CASES = {
    "plca_cosine_sim": cosine_sim,
    "plca_kl_sim": kl_similarity,
    "plca_contrast_norm": contrast_normalization,
    "plca_agg_features": agg_features,
    "plca_agg_pred": agg_pred,
    "plca_agg_pred_norm": agg_pred_norm,
    "plca_fass": fass,
    "plca_fass_no_agg": fass_no_agg,
    "plca_fass_sim_plca": fass_sim_plca,
    "plca_fass_no_contrast_norm": fass_no_contrast_norm,
    "plca_fass_none_valid": fass_none_valid,
    "plca_cass": cass,
    "plca_cass_no_agg": cass_no_agg,
    "plca_cass_agg_norm": cass_agg_norm,
    "plca_lsr": lsr_case,
    "plca_objective": objective,
}
