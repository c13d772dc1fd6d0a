/* bida_terms.c: BiDA's prototypes, contrastive terms, calibration, dynamic / hybrid /
 * static pseudo labels and EMA updates (equations in bida.h and method_bida.c), built
 * from ops so that they run on every backend. */
#include "train/bida.h"

/* Temporaries of one function, freed together (outputs are not added). */
#define SCRATCH_MAX 48
struct scratch {
    struct seg_tensor *t[SCRATCH_MAX];
    int                n;
};

static struct seg_tensor *keep(struct scratch *s, struct seg_tensor *t)
{
    if (t && s->n < SCRATCH_MAX)
        s->t[s->n++] = t;
    return t;
}

static void scratch_free(struct scratch *s)
{
    for (int i = 0; i < s->n; i++)
        seg_tensor_free(s->t[i]);
    s->n = 0;
}

/* Runs an op writing a new tensor into out (freed with the scratch) while st is OK. */
#define OP(out, call)                                                                        \
    do {                                                                                     \
        if (!st) {                                                                           \
            out = NULL;                                                                      \
            st = (call);                                                                     \
            keep(&sc, out);                                                                  \
        }                                                                                    \
    } while (0)

static enum seg_status full(struct seg_backend *be, int ndim, const int64_t *shape, float v,
                            struct seg_tensor **out)
{
    enum seg_status st = seg_tensor_new(be, SEG_DTYPE_F32, ndim, shape, out);
    if (!st)
        st = seg_fill(*out, v);
    return st;
}

static enum seg_status view(const struct seg_tensor *t, int ndim, const int64_t *shape,
                            struct seg_tensor **out)
{
    return seg_tensor_reshape((struct seg_tensor *)t, ndim, shape, out);
}

enum seg_status bida_labels_to_grid(const struct seg_tensor *labels, int64_t h, int64_t w,
                                    struct seg_tensor **out)
{
    *out = NULL;
    if (labels->ndim != 3 || labels->dtype != SEG_DTYPE_I32)
        return seg_error(SEG_STATUS_INVALID, "bida: labels must be I32 [N, H, W]");
    struct seg_tensor *r = NULL;
    enum seg_status st = seg_resize_nearest(labels, h, w, &r);
    int64_t s[2] = {labels->shape[0], h * w};
    if (!st)
        st = seg_tensor_set_shape(r, 2, s);
    if (st)
        seg_tensor_free(r);
    else
        *out = r;
    return st;
}

enum seg_status bida_prototypes(struct seg_ag *ag, struct seg_var *feat, const struct seg_tensor *labels,
                                int num_classes, struct seg_var **rho, struct seg_tensor **present)
{
    *rho = NULL;
    *present = NULL;
    if (feat->value->ndim != 3 || labels->ndim != 2 || labels->shape[0] != feat->value->shape[0] ||
        labels->shape[1] != feat->value->shape[2])
        return seg_error(SEG_STATUS_INVALID, "bida: prototypes need features [N, D, P] and labels [N, P]");
    struct scratch sc = {{0}, 0};
    enum seg_status st = SEG_STATUS_OK;
    struct seg_tensor *oh = NULL, *cnt_n = NULL, *cnt = NULL, *zero = NULL, *den = NULL, *dv = NULL;
    struct seg_var *y, *sums_n, *sums, *d;
    int64_t one[1] = {1}, ds[2] = {num_classes, 1};
    OP(oh, seg_one_hot(labels, num_classes, &oh));                 /* [N, C, P] */
    OP(cnt_n, seg_reduce(SEG_REDUCE_SUM, oh, 2, false, &cnt_n));   /* [N, C] */
    OP(cnt, seg_reduce(SEG_REDUCE_SUM, cnt_n, 0, false, &cnt));    /* [C] */
    const struct seg_collective *coll = seg_ag_collective(ag); /* data-parallel: the global batch's */
    if (!st && coll) st = coll->sum(coll->ctx, cnt);
    OP(zero, full(oh ? oh->be : feat->value->be, 1, one, 0.0f, &zero));
    OP(den, seg_unary(SEG_UNARY_CLAMP, cnt, 1.0f, 3.0e38f, &den)); /* max(n_c, 1) */
    OP(dv, view(den, 2, ds, &dv));
    if (!st) st = seg_binary(SEG_BINARY_GT, cnt, zero, present);
    /* the tape's constants are copies: the scratch keeps its own */
    struct seg_tensor *ohc = NULL, *dc = NULL;
    if (!st) st = seg_clone(oh, &ohc);
    if (!st) st = seg_ag_const(ag, ohc, &y);
    else seg_tensor_free(ohc);
    if (!st) st = seg_clone(dv, &dc);
    if (!st) st = seg_ag_const(ag, dc, &d);
    else seg_tensor_free(dc);
    if (!st) st = seg_ag_matmul(ag, y, feat, false, true, &sums_n); /* [N, C, D] */
    if (!st) st = seg_ag_reduce(ag, SEG_REDUCE_SUM, sums_n, 0, false, &sums);
    if (!st) st = seg_ag_allreduce_sum(ag, sums, &sums);
    if (!st) st = seg_ag_div(ag, sums, d, rho);
    scratch_free(&sc);
    if (st) {
        seg_tensor_free(*present);
        *present = NULL;
    }
    return st;
}

/* x / sqrt(sum over axis of x^2 + eps) */
static enum seg_status normalize(struct seg_ag *ag, struct seg_var *x, int axis, struct seg_var **out)
{
    struct seg_var *sq, *s, *n;
    enum seg_status st = seg_ag_unary(ag, SEG_UNARY_SQUARE, x, 0, 0, &sq);
    if (!st) st = seg_ag_reduce(ag, SEG_REDUCE_SUM, sq, axis, true, &s);
    if (!st) st = seg_ag_unary(ag, SEG_UNARY_AFFINE, s, 1.0f, BIDA_NORM_EPS, &n);
    if (!st) st = seg_ag_unary(ag, SEG_UNARY_SQRT, n, 0, 0, &s);
    if (!st) st = seg_ag_div(ag, x, s, out);
    return st;
}

enum seg_status bida_cosine(struct seg_ag *ag, struct seg_var *feat, struct seg_var *rho,
                            struct seg_var **sim)
{
    struct seg_var *fn, *rn;
    if (feat->value->ndim != 3 || rho->value->ndim != 2 || rho->value->shape[1] != feat->value->shape[1])
        return seg_error(SEG_STATUS_INVALID, "bida: cosine needs features [N, D, P] and prototypes [C, D]");
    enum seg_status st = normalize(ag, feat, 1, &fn);
    if (!st) st = normalize(ag, rho, 1, &rn);
    if (!st) st = seg_ag_matmul(ag, rn, fn, false, false, sim); /* [C, D] x [N, D, P] */
    return st;
}

/* Labels whose class is not present become 255; *n ([1] F32 on the device, NULL: not
 * wanted) counts the rest. */
static enum seg_status mask_labels(const struct seg_tensor *labels, const struct seg_tensor *present,
                                   struct seg_tensor **out, struct seg_tensor **n)
{
    struct scratch sc = {{0}, 0};
    enum seg_status st = SEG_STATUS_OK;
    int64_t c = present->shape[0], ps[3] = {1, c, 1};
    struct seg_tensor *oh = NULL, *pv = NULL, *m = NULL, *has = NULL, *lf = NULL, *ign = NULL, *res = NULL;
    OP(oh, seg_one_hot(labels, (int)c, &oh));
    OP(pv, view(present, 3, ps, &pv));
    OP(m, seg_binary(SEG_BINARY_MUL, oh, pv, &m));
    OP(has, seg_reduce(SEG_REDUCE_SUM, m, 1, false, &has)); /* [N, P] */
    OP(lf, seg_cast(labels, SEG_DTYPE_F32, &lf));
    OP(ign, full(labels->be, labels->ndim, labels->shape, 255.0f, &ign));
    OP(res, seg_where(has, lf, ign, &res));
    if (!st && n) st = seg_reduce_all(SEG_REDUCE_SUM, has, n);
    if (!st) st = seg_cast(res, SEG_DTYPE_I32, out);
    scratch_free(&sc);
    return st;
}

enum seg_status bida_contrast(struct seg_ag *ag, struct seg_var *feat, struct seg_var *rho,
                              const struct seg_tensor *present, const struct seg_tensor *labels,
                              float tau, struct seg_var **loss, struct seg_tensor **npix)
{
    struct scratch sc = {{0}, 0};
    enum seg_status st = SEG_STATUS_OK;
    struct seg_tensor *lab = NULL, *off = NULL, *pv = NULL;
    struct seg_var *sim, *scaled, *o, *logits;
    int64_t ps[3] = {1, present->shape[0], 1};
    if (npix)
        *npix = NULL;
    OP(lab, mask_labels(labels, present, &lab, npix));
    if (!st) st = bida_cosine(ag, feat, rho, &sim);
    if (!st) st = seg_ag_affine(ag, sim, 1.0f / tau, 0.0f, &scaled);
    /* absent classes: logit + BIDA_ABSENT_LOGIT ((present - 1) * -BIDA_ABSENT_LOGIT) */
    OP(pv, view(present, 3, ps, &pv));
    if (!st) st = seg_unary(SEG_UNARY_AFFINE, pv, -BIDA_ABSENT_LOGIT, BIDA_ABSENT_LOGIT, &off);
    if (!st) st = seg_ag_const(ag, off, &o);
    if (!st) st = seg_ag_add(ag, scaled, o, &logits);
    /* nothing to contrast gives 0 */
    if (!st) st = seg_ag_cross_entropy_or_zero(ag, logits, lab, NULL, 255, loss);
    scratch_free(&sc);
    return st;
}

enum seg_status bida_calibrate(const struct seg_tensor *rho, const struct seg_tensor *mu_s,
                               const struct seg_tensor *mu_t, const struct seg_tensor *seen,
                               struct seg_tensor **out)
{
    struct scratch sc = {{0}, 0};
    enum seg_status st = SEG_STATUS_OK;
    int64_t c = rho->shape[0], cs[2] = {c, 1};
    struct seg_tensor *s0 = NULL, *s1 = NULL, *both = NULL, *bv = NULL, *xi = NULL, *xim = NULL;
    OP(s0, seg_slice(seen, 0, 0, 1, &s0));
    OP(s1, seg_slice(seen, 0, 1, 1, &s1));
    OP(both, seg_binary(SEG_BINARY_MUL, s0, s1, &both)); /* [1, C] */
    OP(bv, view(both, 2, cs, &bv));
    OP(xi, seg_binary(SEG_BINARY_SUB, mu_t, mu_s, &xi));   /* eq. (6) */
    OP(xim, seg_binary(SEG_BINARY_MUL, xi, bv, &xim));
    if (!st) st = seg_binary(SEG_BINARY_ADD, rho, xim, out); /* eq. (7) */
    scratch_free(&sc);
    return st;
}

/* Plain-tensor x / sqrt(sum over axis of x^2 + eps). */
static enum seg_status normalize_t(const struct seg_tensor *x, int axis, struct seg_tensor **out)
{
    struct scratch sc = {{0}, 0};
    enum seg_status st = SEG_STATUS_OK;
    struct seg_tensor *sq = NULL, *s = NULL, *n = NULL, *r = NULL;
    OP(sq, seg_unary(SEG_UNARY_SQUARE, x, 0, 0, &sq));
    OP(s, seg_reduce(SEG_REDUCE_SUM, sq, axis, true, &s));
    OP(n, seg_unary(SEG_UNARY_AFFINE, s, 1.0f, BIDA_NORM_EPS, &n));
    OP(r, seg_unary(SEG_UNARY_SQRT, n, 0, 0, &r));
    if (!st) st = seg_binary(SEG_BINARY_DIV, x, r, out);
    scratch_free(&sc);
    return st;
}

enum seg_status bida_dynamic_labels(const struct seg_tensor *feat, const struct seg_tensor *proto,
                                    const struct seg_tensor *present, float thr,
                                    struct seg_tensor **labels)
{
    *labels = NULL;
    if (feat->ndim != 3 || proto->ndim != 2 || proto->shape[1] != feat->shape[1])
        return seg_error(SEG_STATUS_INVALID, "bida: dynamic labels need features [N, D, P] and prototypes [C, D]");
    struct scratch sc = {{0}, 0};
    enum seg_status st = SEG_STATUS_OK;
    int64_t ps[3] = {1, present->shape[0], 1}, one[1] = {1};
    struct seg_tensor *fn = NULL, *pn = NULL, *sim = NULL, *pv = NULL, *off = NULL, *msim = NULL,
                      *best = NULL, *arg = NULL, *argf = NULL, *tt = NULL, *ok = NULL, *ign = NULL, *res = NULL;
    OP(fn, normalize_t(feat, 1, &fn));
    OP(pn, normalize_t(proto, 1, &pn));
    OP(sim, seg_matmul(pn, fn, false, false, 1.0f, 0.0f, &sim)); /* [N, C, P] */
    OP(pv, view(present, 3, ps, &pv));
    OP(off, seg_unary(SEG_UNARY_AFFINE, pv, -BIDA_ABSENT_LOGIT, BIDA_ABSENT_LOGIT, &off));
    OP(msim, seg_binary(SEG_BINARY_ADD, sim, off, &msim));
    OP(best, seg_reduce(SEG_REDUCE_MAX, msim, 1, false, &best)); /* [N, P] */
    OP(arg, seg_argreduce(false, msim, 1, false, &arg));
    OP(argf, seg_cast(arg, SEG_DTYPE_F32, &argf));
    OP(tt, full(feat->be, 1, one, thr, &tt));
    OP(ok, seg_binary(SEG_BINARY_GT, best, tt, &ok));             /* eq. (8) */
    OP(ign, full(feat->be, argf ? argf->ndim : 1, argf ? argf->shape : one, 255.0f, &ign));
    OP(res, seg_where(ok, argf, ign, &res));
    if (!st) st = seg_cast(res, SEG_DTYPE_I32, labels);
    scratch_free(&sc);
    return st;
}

enum seg_status bida_hybrid_labels(const struct seg_tensor *dyn, const struct seg_tensor *stat,
                                   struct seg_tensor **out)
{
    struct scratch sc = {{0}, 0};
    enum seg_status st = SEG_STATUS_OK;
    int64_t one[1] = {1};
    struct seg_tensor *df = NULL, *sf = NULL, *ign = NULL, *has = NULL, *res = NULL;
    if (!seg_tensor_same_shape(dyn, stat))
        return seg_error(SEG_STATUS_INVALID, "bida: dynamic and static labels differ in shape");
    OP(df, seg_cast(dyn, SEG_DTYPE_F32, &df));
    OP(sf, seg_cast(stat, SEG_DTYPE_F32, &sf));
    OP(ign, full(dyn->be, 1, one, 255.0f, &ign));
    OP(has, seg_binary(SEG_BINARY_NE, df, ign, &has));
    OP(res, seg_where(has, df, sf, &res));                        /* eq. (10) */
    if (!st) st = seg_cast(res, SEG_DTYPE_I32, out);
    scratch_free(&sc);
    return st;
}

enum seg_status bida_ema_update(struct seg_tensor *mu, struct seg_tensor *seen, const struct seg_tensor *rho,
                                const struct seg_tensor *present, float lambda)
{
    struct scratch sc = {{0}, 0};
    enum seg_status st = SEG_STATUS_OK;
    int64_t c = mu->shape[0], cs[2] = {c, 1}, flat[1] = {c};
    struct seg_tensor *a = NULL, *b = NULL, *ema = NULL, *sv = NULL, *pv = NULL, *d1 = NULL, *m1 = NULL,
                      *tgt = NULL, *d2 = NULL, *m2 = NULL, *nmu = NULL, *sf = NULL, *ns = NULL;
    OP(a, seg_unary(SEG_UNARY_AFFINE, mu, lambda, 0.0f, &a));
    OP(b, seg_unary(SEG_UNARY_AFFINE, rho, 1.0f - lambda, 0.0f, &b));
    OP(ema, seg_binary(SEG_BINARY_ADD, a, b, &ema));              /* eq. (4) / (5) */
    OP(sv, view(seen, 2, cs, &sv));
    OP(pv, view(present, 2, cs, &pv));
    /* tgt = seen ? ema : rho; mu += present * (tgt - mu) */
    OP(d1, seg_binary(SEG_BINARY_SUB, ema, rho, &d1));
    OP(m1, seg_binary(SEG_BINARY_MUL, d1, sv, &m1));
    OP(tgt, seg_binary(SEG_BINARY_ADD, rho, m1, &tgt));
    OP(d2, seg_binary(SEG_BINARY_SUB, tgt, mu, &d2));
    OP(m2, seg_binary(SEG_BINARY_MUL, d2, pv, &m2));
    OP(nmu, seg_binary(SEG_BINARY_ADD, mu, m2, &nmu));
    OP(sf, view(seen, 1, flat, &sf));
    OP(ns, seg_binary(SEG_BINARY_MAX, sf, present, &ns));
    if (!st) st = seg_tensor_copy(mu, nmu);
    if (!st) st = seg_tensor_copy(seen, ns);
    scratch_free(&sc);
    return st;
}

enum seg_status bida_class_thresholds(const struct seg_tensor *prob, float portion,
                                      struct seg_tensor **thr, struct seg_tensor **present)
{
    *thr = NULL;
    *present = NULL;
    if (prob->ndim != 3)
        return seg_error(SEG_STATUS_INVALID, "bida: thresholds need probabilities [N, C, P]");
    struct scratch sc = {{0}, 0};
    enum seg_status st = SEG_STATUS_OK;
    int64_t c = prob->shape[1], np = prob->shape[0] * prob->shape[2];
    int64_t row[2] = {1, np}, cp[2] = {c, np}, c1[2] = {c, 1}, flat[1] = {c}, one[1] = {1};
    struct seg_tensor *conf = NULL, *pred = NULL, *pr = NULL, *cr = NULL, *oh = NULL, *ohv = NULL, *c1p = NULL,
                      *m = NULL, *masked = NULL, *vals = NULL, *idx = NULL, *cnt = NULL, *k = NULL, *ki = NULL,
                      *kf = NULL, *k1 = NULL, *kc = NULL, *kidx = NULL, *g = NULL, *zero = NULL;
    OP(conf, seg_reduce(SEG_REDUCE_MAX, prob, 1, false, &conf)); /* [N, P] */
    OP(pred, seg_argreduce(false, prob, 1, false, &pred));
    OP(pr, view(pred, 2, row, &pr));
    OP(cr, view(conf, 2, row, &cr));
    OP(oh, seg_one_hot(pr, (int)c, &oh));                          /* [1, C, NP] */
    OP(ohv, view(oh, 2, cp, &ohv));
    /* the confidences of class k's pixels, -1 elsewhere, sorted descending */
    OP(c1p, seg_unary(SEG_UNARY_AFFINE, cr, 1.0f, 1.0f, &c1p));
    OP(m, seg_binary(SEG_BINARY_MUL, ohv, c1p, &m));
    OP(masked, seg_unary(SEG_UNARY_AFFINE, m, 1.0f, -1.0f, &masked));
    if (!st) {
        st = seg_sort(masked, true, &vals, &idx);
        keep(&sc, vals);
        keep(&sc, idx);
    }
    OP(cnt, seg_reduce(SEG_REDUCE_SUM, ohv, 1, false, &cnt));       /* [C] */
    OP(k, seg_unary(SEG_UNARY_AFFINE, cnt, portion, 0.0f, &k));
    OP(ki, seg_cast(k, SEG_DTYPE_I32, &ki));                         /* floor (k >= 0) */
    OP(kf, seg_cast(ki, SEG_DTYPE_F32, &kf));
    OP(k1, seg_unary(SEG_UNARY_AFFINE, kf, 1.0f, -1.0f, &k1));
    OP(kc, seg_unary(SEG_UNARY_CLAMP, k1, 0.0f, (float)(np - 1), &kc));
    OP(kidx, seg_cast(kc, SEG_DTYPE_I32, &kidx));
    if (!st) st = seg_tensor_set_shape(kidx, 2, c1);
    OP(g, seg_gather(vals, 1, kidx, &g));                            /* [C, 1] */
    if (!st) st = seg_tensor_set_shape(g, 1, flat);
    OP(zero, full(prob->be, 1, one, 0.0f, &zero));
    if (!st) st = seg_clone(g, thr);
    if (!st) st = seg_binary(SEG_BINARY_GT, cnt, zero, present);
    scratch_free(&sc);
    if (st) {
        seg_tensor_free(*thr);
        *thr = NULL;
    }
    return st;
}

enum seg_status bida_static_labels(const struct seg_tensor *prob, const struct seg_tensor *thr,
                                   struct seg_tensor **labels)
{
    *labels = NULL;
    if (prob->ndim != 3)
        return seg_error(SEG_STATUS_INVALID, "bida: static labels need probabilities [N, C, P]");
    struct scratch sc = {{0}, 0};
    enum seg_status st = SEG_STATUS_OK;
    int64_t n = prob->shape[0], p = prob->shape[2], np1[2] = {n * p, 1}, c1[2] = {prob->shape[1], 1};
    struct seg_tensor *conf = NULL, *pred = NULL, *pv = NULL, *tv = NULL, *tp = NULL, *tpv = NULL,
                      *ok = NULL, *pf = NULL, *ign = NULL, *res = NULL;
    OP(conf, seg_reduce(SEG_REDUCE_MAX, prob, 1, false, &conf)); /* [N, P] */
    OP(pred, seg_argreduce(false, prob, 1, false, &pred));
    OP(pv, view(pred, 2, np1, &pv));
    OP(tv, view(thr, 2, c1, &tv));
    OP(tp, seg_gather(tv, 0, pv, &tp));                             /* thr[pred] [NP, 1] */
    OP(tpv, view(tp, conf ? conf->ndim : 1, conf ? conf->shape : np1, &tpv));
    OP(ok, seg_binary(SEG_BINARY_GE, conf, tpv, &ok));
    OP(pf, seg_cast(pred, SEG_DTYPE_F32, &pf));
    OP(ign, full(prob->be, 2, conf ? conf->shape : np1, 255.0f, &ign));
    OP(res, seg_where(ok, pf, ign, &res));
    if (!st) st = seg_cast(res, SEG_DTYPE_I32, labels);
    scratch_free(&sc);
    return st;
}

enum seg_status bida_prior_update(struct seg_tensor *counts, const struct seg_tensor *labels,
                                  const struct seg_collective *coll)
{
    if (labels->ndim != 2 || counts->ndim != 2 || labels->shape[1] != counts->shape[1])
        return seg_error(SEG_STATUS_INVALID, "bida: the prior needs labels [N, P] and counts [C, P]");
    struct scratch sc = {{0}, 0};
    enum seg_status st = SEG_STATUS_OK;
    struct seg_tensor *oh = NULL, *sum = NULL, *acc = NULL;
    OP(oh, seg_one_hot(labels, (int)counts->shape[0], &oh)); /* [N, C, P]; 255: no class */
    OP(sum, seg_reduce(SEG_REDUCE_SUM, oh, 0, false, &sum));   /* [C, P] */
    if (!st && coll) st = coll->sum(coll->ctx, sum);
    OP(acc, seg_binary(SEG_BINARY_ADD, counts, sum, &acc));
    if (!st) st = seg_tensor_copy(counts, acc);
    scratch_free(&sc);
    return st;
}

enum seg_status bida_prior_weights(const struct seg_tensor *counts, struct seg_tensor **q)
{
    *q = NULL;
    if (counts->ndim != 2)
        return seg_error(SEG_STATUS_INVALID, "bida: prior counts must be [C, P]");
    struct scratch sc = {{0}, 0};
    enum seg_status st = SEG_STATUS_OK;
    struct seg_tensor *mx = NULL, *num = NULL, *den = NULL;
    OP(mx, seg_reduce(SEG_REDUCE_MAX, counts, 1, true, &mx)); /* [C, 1] */
    OP(num, seg_unary(SEG_UNARY_AFFINE, counts, 1.0f, 1.0f, &num));
    OP(den, seg_unary(SEG_UNARY_AFFINE, mx, 1.0f, 1.0f, &den));
    if (!st) st = seg_binary(SEG_BINARY_DIV, num, den, q);
    scratch_free(&sc);
    return st;
}

enum seg_status bida_apply_prior(const struct seg_tensor *prob, const struct seg_tensor *q, int64_t gh, int64_t gw,
                                 int64_t h, int64_t w, struct seg_tensor **out)
{
    *out = NULL;
    int64_t c = q->ndim == 2 ? q->shape[0] : 0;
    if (prob->ndim != 3 || q->ndim != 2 || prob->shape[1] != c || q->shape[1] != gh * gw || prob->shape[2] != h * w)
        return seg_error(SEG_STATUS_INVALID, "bida: the prior needs prob [N, C, h*w] and q [C, gh*gw]");
    struct scratch sc = {{0}, 0};
    enum seg_status st = SEG_STATUS_OK;
    int64_t grid[4] = {1, c, gh, gw}, flat[3] = {1, c, h * w};
    struct seg_tensor *qv = NULL, *up = NULL, *uv = NULL;
    OP(qv, view(q, 4, grid, &qv));
    OP(up, seg_resize_bilinear(qv, h, w, true, &up));
    OP(uv, view(up, 3, flat, &uv));
    if (!st) st = seg_binary(SEG_BINARY_MUL, prob, uv, out);
    scratch_free(&sc);
    return st;
}

enum seg_status bida_density(const struct seg_tensor *labels, struct seg_tensor **density)
{
    struct scratch sc = {{0}, 0};
    enum seg_status st = SEG_STATUS_OK;
    int64_t one[1] = {1};
    struct seg_tensor *lf = NULL, *ign = NULL, *has = NULL;
    OP(lf, seg_cast(labels, SEG_DTYPE_F32, &lf));
    OP(ign, full(labels->be, 1, one, 255.0f, &ign));
    OP(has, seg_binary(SEG_BINARY_NE, lf, ign, &has));
    if (!st) st = seg_reduce_all(SEG_REDUCE_MEAN, has, density);
    scratch_free(&sc);
    return st;
}

enum seg_status bida_distill_kl(struct seg_ag *ag, const struct seg_tensor *teacher, struct seg_var *student,
                                struct seg_var **loss)
{
    struct seg_tensor *p = NULL, *lp = NULL;
    struct seg_var *pv, *lpv, *lq, *d, *m, *s;
    if (!seg_tensor_same_shape(teacher, student->value))
        return seg_error(SEG_STATUS_INVALID, "bida: teacher and student logits differ in shape");
    enum seg_status st = seg_softmax(teacher, 1, false, &p);
    if (!st) st = seg_softmax(teacher, 1, true, &lp);
    if (st) {
        seg_tensor_free(p);
        seg_tensor_free(lp);
        return st;
    }
    if ((st = seg_ag_const(ag, p, &pv))) {
        seg_tensor_free(lp);
        return st;
    }
    st = seg_ag_const(ag, lp, &lpv);
    if (!st) st = seg_ag_softmax(ag, student, 1, true, &lq);
    if (!st) st = seg_ag_sub(ag, lpv, lq, &d);
    if (!st) st = seg_ag_mul(ag, pv, d, &m);
    if (!st) st = seg_ag_reduce(ag, SEG_REDUCE_SUM, m, 1, false, &s);
    if (!st) st = seg_ag_mean_all(ag, s, loss);
    return st;
}

enum seg_status bida_entropy_double_softmax(struct seg_ag *ag, struct seg_var *logits, struct seg_var **loss)
{
    struct seg_var *p, *lq, *m, *s, *mean;
    if (logits->value->ndim < 2)
        return seg_error(SEG_STATUS_INVALID, "bida: entropy needs logits [N, C, ...]");
    enum seg_status st = seg_ag_softmax(ag, logits, 1, false, &p);
    if (!st) st = seg_ag_softmax(ag, p, 1, true, &lq); /* softmax of the probabilities: the released code's */
    if (!st) st = seg_ag_mul(ag, p, lq, &m);
    if (!st) st = seg_ag_reduce(ag, SEG_REDUCE_SUM, m, 1, false, &s);
    if (!st) st = seg_ag_mean_all(ag, s, &mean);
    if (!st) st = seg_ag_affine(ag, mean, -1.0f, 0.0f, loss);
    return st;
}
