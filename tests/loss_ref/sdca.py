"""References for SDCA's terms (Li, Xie et al., shared/papers/sdca.txt), written from the
paper: the online semantic distribution estimate (Eq. 2-4, with the covariance restricted to
its diagonal as the released code does, and in full: estimate_full), the target mask (Eq. 5)
and the closed-form upper bound of the expected contrastive loss (Eq. 13/14; bound_full with
the covariance matrices), per pixel and averaged (Eq. 15).
Normalisations: features and class means on the unit sphere (Sec. 3.2.1) when "normalize";
the released code's unit-norm variance vectors when var_norm == "l2"."""
import torch
import torch.nn.functional as F

from common import labels, rand


def nearest(lab, h, w):
    """Labels [N, H, W] to [N, h, w], nearest neighbour (source index floor(o * in / out))."""
    return F.interpolate(lab[:, None].double(), size=(h, w), mode="nearest")[:, 0].int()


def estimate(x, lab, mean, var, count):
    """Eq. 3 and the diagonal of Eq. 4 for every class k present in lab (255 skipped): the
    diagonal of estimate_full, whose merge keeps the diagonal to itself."""
    mean, cov, count = estimate_full(x, lab, mean, torch.diag_embed(var), count)
    return mean, torch.diagonal(cov, dim1=1, dim2=2).clone(), count


def bound(x, lab, mean, var, tau, normalize, var_norm):
    """Mean over labelled pixels of L-bar_i (Eq. 14): positives ~ N(mu_y, S_y), negatives
    ~ N(mu_j, S_j), j != y; 0 when no pixel is labelled."""
    a = x.shape[1]
    q = x.permute(0, 2, 3, 1).reshape(-1, a)
    y = lab.reshape(-1).long()
    keep = y != 255
    q, y = q[keep], y[keep]
    if q.shape[0] == 0:
        return (x * 0).sum()
    mu, s = mean, var
    if normalize:
        q = F.normalize(q, dim=1)
        mu = F.normalize(mu, dim=1)
    if var_norm == "l2":
        s = F.normalize(s, dim=1)
    total = 0
    for i in range(q.shape[0]):
        qi = q[i]
        # exponent of E[exp(q.q'/tau)] for q' ~ N(mu_k, S_k): q.mu_k/tau + q'S_k q/(2 tau^2) (Eq. 12)
        expo = torch.stack([qi @ mu[k] / tau + (qi * s[k] * qi).sum() / (2 * tau ** 2)
                            for k in range(mu.shape[0])])
        k = y[i]
        pos = expo[k]
        # Eq. 14: -log(e^pos / sum_k e^expo_k) + q'S_y q / (2 tau^2)
        total = total - (pos - torch.logsumexp(expo, 0)) + (qi * s[k] * qi).sum() / (2 * tau ** 2)
    return total / q.shape[0]


def estimate_full(x, lab, mean, cov, count):
    """Eq. 3 and Eq. 4 as written: per class k present in lab, the covariance matrix of this
    batch's pixels S'_k (biased: 1/m) merged with the running S_k, plus the outer product of
    the mean shift."""
    a = x.shape[1]
    feats = x.permute(0, 2, 3, 1).reshape(-1, a)
    lab = lab.reshape(-1).long()
    mean, cov, count = mean.clone(), cov.clone(), count.clone()
    for k in range(mean.shape[0]):
        sel = feats[lab == k]
        m = sel.shape[0]
        if m == 0:
            continue
        mu_b = sel.mean(0)                                  # Eq. 2
        cov_b = (sel - mu_b).T @ (sel - mu_b) / m           # Sigma'_k
        n = count[k]
        mu_old = mean[k].clone()
        dm = (mu_old - mu_b)[:, None]
        mean[k] = (n * mu_old + m * mu_b) / (n + m)                                        # Eq. 3
        cov[k] = (n * cov[k] + m * cov_b) / (n + m) + n * m * (dm @ dm.T) / (n + m) ** 2   # Eq. 4
        count[k] = n + m
    return mean, cov, count


def bound_full(x, lab, mean, cov, tau, normalize):
    """Eq. 14 with full covariance matrices: the exponents q.mu_k/tau + q'Sigma_k q/(2 tau^2)
    (Eq. 12, a = q/tau) and the positive's q'Sigma_y q/(2 tau^2) term."""
    a = x.shape[1]
    q = x.permute(0, 2, 3, 1).reshape(-1, a)
    y = lab.reshape(-1).long()
    keep = y != 255
    q, y = q[keep], y[keep]
    if q.shape[0] == 0:
        return (x * 0).sum()
    mu = F.normalize(mean, dim=1) if normalize else mean
    if normalize:
        q = F.normalize(q, dim=1)
    total = 0
    for i in range(q.shape[0]):
        qi = q[i]
        quad = torch.stack([qi @ cov[k] @ qi for k in range(mu.shape[0])]) / (2 * tau ** 2)
        expo = mu @ qi / tau + quad
        k = y[i]
        total = total - (expo[k] - torch.logsumexp(expo, 0)) + quad[k]
    return total / q.shape[0]


def spd(gen, c, a):
    """c random symmetric positive definite [a, a] matrices (float32-representable)."""
    b = rand(gen, c, a, a, lo=-1, hi=1)
    return (b @ b.transpose(1, 2) / a + 0.1 * torch.eye(a)).float().double()


def update_full_first(gen):
    return update_case(gen, True, full=True)


def update_full_merge(gen):
    return update_case(gen, False, full=True)


def loss_full_case(gen, tau, normalize, a=8, scale=1.0, c=5):
    x = (rand(gen, 2, a, 3, 4, lo=-1, hi=2) * scale).requires_grad_()
    full = labels(gen, 2, 6, 8, classes=c, ignore=0.15)
    mean, _, _ = stats(gen, c, a)
    cov = spd(gen, c, a)
    loss = bound_full(x, nearest(full, 3, 4), mean, cov, tau, normalize)
    return ({"x": x, "labels": full, "mean": mean, "var": cov}, {"loss": loss},
            {"tau": float(tau), "normalize": int(normalize), "var_norm": "none", "num_classes": c, "tol": 1e-4})


def loss_full(gen):
    # tau small enough that the quadratic forms move the softmax
    return loss_full_case(gen, 0.5, True)


def loss_full_raw(gen):
    return loss_full_case(gen, 3.0, False, scale=0.7)


def loss_full_out_level(gen):
    return loss_full_case(gen, 1.0, True, a=5, scale=3.0)


def loss_full_many(gen):
    # more classes than one concat joins (6): the per-class quadratic forms in groups
    return loss_full_case(gen, 1.0, True, a=4, c=13)


def target_mask(logits, delta):
    """Eq. 5: argmax of the softmax where its maximum reaches delta, else 255."""
    p = F.softmax(logits, 1)
    conf, arg = p.max(1)
    return torch.where(conf >= delta, arg, torch.full_like(arg, 255)).int()


def stats(gen, c, a, empty=False):
    mean = rand(gen, c, a, lo=-1, hi=2)
    var = rand(gen, c, a, lo=0.05, hi=1.5)
    count = torch.tensor([0.0 if empty else float(v) for v in torch.randint(1, 60, (c,), generator=gen)])
    if empty:
        mean, var = mean * 0, var * 0
    return mean, var, count


def update_case(gen, empty, full=False):
    """The estimator's update (Eq. 3-4), diagonal or full covariance."""
    c, a = 5, 6
    x = rand(gen, 2, a, 3, 4, lo=-1, hi=3)
    labs = labels(gen, 2, 6, 8, classes=c - 1, ignore=0.15)  # class c-1 never present
    mean, var, count = stats(gen, c, a, empty)
    if full:
        var = spd(gen, c, a) * (0 if empty else 1)
    if not empty:
        count[1] = 0.0  # a class seen for the first time
        mean[1], var[1] = 0.0, 0.0
    m2, v2, n2 = (estimate_full if full else estimate)(x, nearest(labs, 3, 4), mean, var, count)
    # the estimator takes no gradient; "scale" (1) only gives the summary a leaf to check
    scale = torch.ones(1).requires_grad_()
    ins = {"x": x, "labels": labs, "mean": mean, "var": var, "count": count, "scale": scale}
    outs = {"loss": scale[0] * (m2.sum() + v2.sum()), "mean": m2, "var": v2, "count": n2}
    return ins, outs, {"num_classes": c, "tol": 1e-5}


def update_first(gen):
    return update_case(gen, True)


def update_merge(gen):
    return update_case(gen, False)


def loss_case(gen, tau, normalize, var_norm, a=8, scale=1.0):
    c = 5
    x = (rand(gen, 2, a, 3, 4, lo=-1, hi=2) * scale).requires_grad_()
    full = labels(gen, 2, 6, 8, classes=c, ignore=0.15)
    mean, var, _ = stats(gen, c, a)
    loss = bound(x, nearest(full, 3, 4), mean, var, tau, normalize, var_norm)
    return ({"x": x, "labels": full, "mean": mean, "var": var}, {"loss": loss},
            {"tau": float(tau), "normalize": int(normalize), "var_norm": var_norm, "num_classes": c, "tol": 1e-4})


def loss_paper(gen):
    return loss_case(gen, 100.0, True, "none")


def loss_code(gen):
    return loss_case(gen, 0.5, True, "l2")


def loss_raw(gen):
    return loss_case(gen, 3.0, False, "none", scale=0.7)


def loss_out_level(gen):
    # the output level: pixel representations are the C logits themselves
    return loss_case(gen, 1.0, True, "none", a=5, scale=3.0)


def target_case(gen, delta):
    c, a = 4, 6
    x = rand(gen, 2, a, 3, 5, lo=-1, hi=2).requires_grad_()
    logits = rand(gen, 2, c, 3, 5, lo=-4, hi=4)
    mean, var, _ = stats(gen, c, a)
    y = target_mask(logits, delta)
    loss = bound(x, y, mean, var, 2.0, True, "none")
    return ({"x": x, "logits": logits, "mean": mean, "var": var},
            {"loss": loss, "mask": y.double()},
            {"delta": delta, "tau": 2.0, "normalize": 1, "var_norm": "none", "num_classes": c, "tol": 1e-4})


def target_loss(gen):
    return target_case(gen, 0.6)


def target_none(gen):
    return target_case(gen, 0.9999)


CASES = {
    "sdca_update_first": update_first,
    "sdca_update_merge": update_merge,
    "sdca_loss_paper": loss_paper,
    "sdca_loss_code": loss_code,
    "sdca_loss_raw": loss_raw,
    "sdca_loss_out_level": loss_out_level,
    "sdca_target_loss": target_loss,
    "sdca_target_none": target_none,
    "sdca_update_full_first": update_full_first,
    "sdca_update_full_merge": update_full_merge,
    "sdca_loss_full": loss_full,
    "sdca_loss_full_raw": loss_full_raw,
    "sdca_loss_full_out_level": loss_full_out_level,
    "sdca_loss_full_many": loss_full_many,
}
