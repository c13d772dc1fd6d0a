/* sdca_dist.c: SDCA's semantic distribution estimator and its contrastive loss bound
 * (see sdca.h and the header of method_sdca.c), composed from ops so that every step runs
 * on the device of the tensors. Class masks are one-hot [N, C, h, w]; pixels are columns. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "train/methods.h"
#include "train/sdca.h"

enum seg_status seg_sdca_onehot(const struct seg_tensor *labels, int num_classes, struct seg_tensor **onehot)
{
    return seg_one_hot(labels, num_classes, onehot);
}

enum seg_status seg_sdca_source_onehot(const struct seg_tensor *labels, int64_t h, int64_t w,
                                       int num_classes, struct seg_tensor **onehot)
{
    struct seg_tensor *small = NULL;
    *onehot = NULL;
    if (labels->ndim != 3 || labels->dtype != SEG_DTYPE_I32)
        return seg_error(SEG_STATUS_INVALID, "sdca: source labels must be I32 [N, H, W]");
    TRY(seg_resize_nearest(labels, h, w, &small));
    enum seg_status st = seg_one_hot(small, num_classes, onehot);
    seg_tensor_free(small);
    return st;
}

enum seg_status seg_sdca_target_labels(const struct seg_tensor *logits, float delta, struct seg_tensor **labels)
{
    struct seg_tensor *p = NULL, *mx = NULL, *am = NULL, *amf = NULL, *thr = NULL, *ok = NULL,
                      *ign = NULL, *lf = NULL;
    int64_t one = 1;
    *labels = NULL;
    if (logits->ndim != 4)
        return seg_error(SEG_STATUS_INVALID, "sdca: target logits must be [N, C, h, w]");
    enum seg_status st = seg_softmax(logits, 1, false, &p);
    if (!st) st = seg_reduce(SEG_REDUCE_MAX, p, 1, false, &mx);
    if (!st) st = seg_argreduce(false, p, 1, false, &am);
    if (!st) st = seg_cast(am, SEG_DTYPE_F32, &amf);
    if (!st) st = seg_tensor_new(logits->be, SEG_DTYPE_F32, 1, &one, &thr);
    if (!st) st = seg_fill(thr, delta);
    if (!st) st = seg_binary(SEG_BINARY_GE, mx, thr, &ok);
    if (!st) st = seg_tensor_new_like(amf, &ign);
    if (!st) st = seg_fill(ign, 255.0f);
    if (!st) st = seg_where(ok, amf, ign, &lf);
    if (!st) st = seg_cast(lf, SEG_DTYPE_I32, labels);
    seg_tensor_free(p);
    seg_tensor_free(mx);
    seg_tensor_free(am);
    seg_tensor_free(amf);
    seg_tensor_free(thr);
    seg_tensor_free(ok);
    seg_tensor_free(ign);
    seg_tensor_free(lf);
    return st;
}

/* A tape constant holding a copy of t. */
static enum seg_status const_copy(struct seg_ag *ag, const struct seg_tensor *t, struct seg_var **out)
{
    struct seg_tensor *c = NULL;
    TRY(seg_clone(t, &c));
    return seg_ag_const(ag, c, out);
}

static enum seg_status reshape3(struct seg_ag *ag, struct seg_var *x, int64_t a, int64_t b, int64_t c,
                                struct seg_var **out)
{
    int64_t s[3] = {a, b, c};
    return seg_ag_reshape(ag, x, 3, s, out);
}

static enum seg_status reshape2(struct seg_ag *ag, struct seg_var *x, int64_t a, int64_t b, struct seg_var **out)
{
    int64_t s[2] = {a, b};
    return seg_ag_reshape(ag, x, 2, s, out);
}

/* x / max-like(||x||) along axis: x / sqrt(sum x^2 + 1e-24), F.normalize up to 1e-24. */
static enum seg_status l2_normalize(struct seg_ag *ag, struct seg_var *x, int axis, struct seg_var **out)
{
    struct seg_var *sq, *s, *n;
    TRY(seg_ag_unary(ag, SEG_UNARY_SQUARE, x, 0, 0, &sq));
    TRY(seg_ag_reduce(ag, SEG_REDUCE_SUM, sq, axis, true, &s));
    TRY(seg_ag_affine(ag, s, 1.0f, 1e-24f, &n));
    TRY(seg_ag_unary(ag, SEG_UNARY_SQRT, n, 0, 0, &n));
    return seg_ag_div(ag, x, n, out);
}

/* var is [C, A] (diagonal) or [C, A, A] (full covariance). */
static enum seg_status check_shapes(const struct seg_tensor *x, const struct seg_tensor *onehot,
                                    const struct seg_tensor *mean, const struct seg_tensor *var)
{
    if (x->ndim != 4 || onehot->ndim != 4 || onehot->shape[0] != x->shape[0] ||
        onehot->shape[2] != x->shape[2] || onehot->shape[3] != x->shape[3] || mean->ndim != 2 ||
        mean->shape[0] != onehot->shape[1] || mean->shape[1] != x->shape[1] ||
        (var->ndim != 2 && var->ndim != 3) || var->shape[0] != mean->shape[0] ||
        var->shape[1] != mean->shape[1] || (var->ndim == 3 && var->shape[2] != mean->shape[1]))
        return seg_error(SEG_STATUS_INVALID, "sdca: shapes disagree: x [N, A, h, w], mask [N, C, h, w], "
                                             "mean [C, A], variance [C, A] or covariance [C, A, A]");
    return SEG_STATUS_OK;
}

/* Class k's [A, A] block of the covariance state, as a tape constant. */
static enum seg_status cov_block(struct seg_ag *ag, const struct seg_tensor *cov, int64_t k, struct seg_var **out)
{
    struct seg_tensor *b = NULL;
    TRY(seg_slice(cov, 0, k, 1, &b));
    TRY(seg_ag_const(ag, b, out));
    return reshape2(ag, *out, cov->shape[1], cov->shape[2], out);
}

/* The full form of Eq. 4, class by class (classes absent from the batch, m = 0, keep their
 * matrix), written into cov in place:
 *   S_k <- (1 - w) S_k + w S'_k + w (1 - w) (mu_k - mu'_k)(mu_k - mu'_k)',  w = m / (n + m),
 * S'_k = D_k D_k' / m with D_k the class's centred pixels (columns of d outside the class
 * are masked out). w [C, 1], dmu = mu'_k - mu_k [C, A], d [A, NP], oh [C, NP]. */
static enum seg_status update_full(struct seg_ag *ag, struct seg_var *w, struct seg_var *dmu, struct seg_var *d,
                                   struct seg_var *oh, struct seg_var *m, struct seg_tensor *cov,
                                   const struct seg_collective *coll)
{
    int64_t c = cov->shape[0], a = cov->shape[1];
    float *mh = malloc((size_t)c * sizeof *mh);
    if (!mh)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "sdca: out of host memory");
    /* the class sizes on the host, to skip absent classes (C floats) */
    enum seg_status st = seg_tensor_read(m->value, mh, (size_t)c * sizeof *mh);
    for (int64_t k = 0; !st && k < c; k++) {
        if (!(mh[k] > 0))
            continue;
        struct seg_var *ohk, *dk, *s, *wk, *omw, *dmk, *outer, *sig, *t1, *t2, *t3, *nw;
        int64_t shape3[3] = {1, a, a};
        st = seg_ag_slice(ag, oh, 0, k, 1, &ohk);
        if (!st) st = seg_ag_mul(ag, d, ohk, &dk);                       /* [A, NP] */
        if (!st) st = seg_ag_matmul(ag, dk, d, false, true, &s);          /* m S'_k [A, A] */
        if (!st && coll) st = coll->sum(coll->ctx, s->value);
        if (!st) seg_var_done(dk);
        if (!st) st = seg_ag_affine(ag, s, 1.0f / mh[k], 0.0f, &s);
        if (!st) st = seg_ag_slice(ag, w, 0, k, 1, &wk);                 /* [1, 1] */
        if (!st) st = seg_ag_affine(ag, wk, -1.0f, 1.0f, &omw);
        if (!st) st = seg_ag_slice(ag, dmu, 0, k, 1, &dmk);              /* [1, A] */
        if (!st) st = seg_ag_matmul(ag, dmk, dmk, true, false, &outer);   /* [A, A] */
        if (!st) st = cov_block(ag, cov, k, &sig);
        if (!st) st = seg_ag_mul(ag, sig, omw, &t1);
        if (!st) seg_var_done(sig);
        if (!st) st = seg_ag_mul(ag, s, wk, &t2);
        if (!st) seg_var_done(s);
        if (!st) st = seg_ag_mul(ag, outer, wk, &t3);
        if (!st) seg_var_done(outer);
        if (!st) st = seg_ag_mul(ag, t3, omw, &t3);
        if (!st) st = seg_ag_add(ag, t1, t2, &nw);
        if (!st) {
            seg_var_done(t1);
            seg_var_done(t2);
        }
        if (!st) st = seg_ag_add(ag, nw, t3, &nw);
        if (!st) seg_var_done(t3);
        if (!st) st = seg_ag_reshape(ag, nw, 3, shape3, &nw);
        if (!st) st = seg_slice_assign(cov, 0, k, nw->value);
        if (!st) seg_var_done(nw);
    }
    free(mh);
    return st;
}

static enum seg_status update(struct seg_ag *ag, const struct seg_tensor *xt, const struct seg_tensor *oht,
                              struct seg_tensor *mean, struct seg_tensor *var, struct seg_tensor *count,
                              const struct seg_collective *coll)
{
    int64_t n = xt->shape[0], a = xt->shape[1], p = xt->shape[2] * xt->shape[3], c = oht->shape[1];
    static const int swap01[3] = {1, 0, 2};
    struct seg_var *x, *oh, *m, *mc, *s1, *mb, *mp, *d, *d2, *s2, *vb = NULL, *cnt, *tot, *w, *mu, *v, *dmu,
        *t, *mu_new, *omw, *t1, *t2, *t3, *v_new;
    /* X [A, N*P] and OH [C, N*P]: pixels as columns. */
    TRY(const_copy(ag, xt, &x));
    TRY(reshape3(ag, x, n, a, p, &x));
    TRY(seg_ag_permute(ag, x, swap01, &x));
    TRY(reshape2(ag, x, a, n * p, &x));
    TRY(const_copy(ag, oht, &oh));
    TRY(reshape3(ag, oh, n, c, p, &oh));
    TRY(seg_ag_permute(ag, oh, swap01, &oh));
    TRY(reshape2(ag, oh, c, n * p, &oh));
    /* this batch: m pixels a class, their mean m' and biased variance v' (two passes) */
    TRY(seg_ag_reduce(ag, SEG_REDUCE_SUM, oh, 1, true, &m));               /* [C, 1] */
    TRY(seg_ag_matmul(ag, oh, x, false, true, &s1));                        /* [C, A] */
    if (coll) { /* the global batch's counts and sums; then centred on its means */
        TRY(coll->sum(coll->ctx, m->value));
        TRY(coll->sum(coll->ctx, s1->value));
    }
    TRY(seg_ag_unary(ag, SEG_UNARY_CLAMP, m, 1.0f, FLT_MAX, &mc));
    TRY(seg_ag_div(ag, s1, mc, &mb));
    TRY(seg_ag_matmul(ag, mb, oh, true, false, &mp));                       /* [A, NP] */
    TRY(seg_ag_sub(ag, x, mp, &d));
    seg_var_done(mp);
    if (var->ndim == 2) {
        TRY(seg_ag_unary(ag, SEG_UNARY_SQUARE, d, 0, 0, &d2));
        TRY(seg_ag_matmul(ag, oh, d2, false, true, &s2));
        seg_var_done(d2);
        if (coll)
            TRY(coll->sum(coll->ctx, s2->value));
        TRY(seg_ag_div(ag, s2, mc, &vb));
    }
    /* merge: w = m / (n + m); absent classes (m = 0) keep their statistics */
    TRY(const_copy(ag, count, &cnt));
    TRY(reshape2(ag, cnt, c, 1, &cnt));
    TRY(seg_ag_add(ag, cnt, m, &tot));
    TRY(seg_ag_unary(ag, SEG_UNARY_CLAMP, tot, 1.0f, FLT_MAX, &t));
    TRY(seg_ag_div(ag, m, t, &w));
    TRY(const_copy(ag, mean, &mu));
    TRY(seg_ag_sub(ag, mb, mu, &dmu));
    TRY(seg_ag_mul(ag, w, dmu, &t));
    TRY(seg_ag_add(ag, mu, t, &mu_new));
    if (var->ndim == 3) {
        TRY(update_full(ag, w, dmu, d, oh, m, var, coll));
        TRY(seg_tensor_copy(mean, mu_new->value));
        return seg_tensor_copy(count, tot->value);
    }
    seg_var_done(d);
    TRY(const_copy(ag, var, &v));
    TRY(seg_ag_affine(ag, w, -1.0f, 1.0f, &omw));
    TRY(seg_ag_mul(ag, omw, v, &t1));
    TRY(seg_ag_mul(ag, w, vb, &t2));
    TRY(seg_ag_unary(ag, SEG_UNARY_SQUARE, dmu, 0, 0, &t3));
    TRY(seg_ag_mul(ag, t3, omw, &t3));
    TRY(seg_ag_mul(ag, t3, w, &t3));
    TRY(seg_ag_add(ag, t1, t2, &v_new));
    TRY(seg_ag_add(ag, v_new, t3, &v_new));
    TRY(seg_tensor_copy(mean, mu_new->value));
    TRY(seg_tensor_copy(var, v_new->value));
    return seg_tensor_copy(count, tot->value);
}

enum seg_status seg_sdca_update(struct seg_ag *ag, const struct seg_tensor *x, const struct seg_tensor *onehot,
                                struct seg_tensor *mean, struct seg_tensor *var, struct seg_tensor *count,
                                const struct seg_collective *coll)
{
    if (coll && coll->nranks < 2)
        coll = NULL;
    TRY(check_shapes(x, onehot, mean, var));
    if (count->ndim != 1 || count->shape[0] != mean->shape[0])
        return seg_error(SEG_STATUS_INVALID, "sdca: class counts must be [C]");
    bool prev = seg_ag_set_grad_enabled(ag, false);
    enum seg_status st = update(ag, x, onehot, mean, var, count, coll);
    seg_ag_set_grad_enabled(ag, prev);
    return st;
}

/* q' Sigma_k q for every class k and pixel of q [N, A, P] against cov [C, A, A]: [N, C, P].
 * One class at a time (sum over A of (Sigma_k q) * q) so that no [N, C, A, P] tensor exists. */
static enum seg_status quad_full(struct seg_ag *ag, struct seg_var *q, const struct seg_tensor *cov,
                                 struct seg_var **out)
{
    int64_t c = cov->shape[0];
    struct seg_var **parts = calloc((size_t)c, sizeof *parts);
    if (!parts)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "sdca: out of host memory");
    enum seg_status st = SEG_STATUS_OK;
    for (int64_t k = 0; !st && k < c; k++) {
        struct seg_var *sig, *sq;
        st = cov_block(ag, cov, k, &sig);
        if (!st) st = seg_ag_matmul(ag, sig, q, false, false, &sq);      /* [N, A, P] */
        if (!st) st = seg_ag_mul(ag, sq, q, &sq);
        if (!st) st = seg_ag_reduce(ag, SEG_REDUCE_SUM, sq, 1, true, &parts[k]); /* [N, 1, P] */
    }
    /* concat takes at most 6 inputs: join in groups of 6 until one is left */
    for (int64_t n = c; !st && n > 1;) {
        int64_t g = 0;
        for (int64_t i = 0; !st && i < n; i += 6, g++) {
            int len = (int)(n - i < 6 ? n - i : 6);
            struct seg_var *joined = parts[i]; /* not into parts: concat reads its inputs late */
            if (len > 1)
                st = seg_ag_concat(ag, parts + i, len, 1, &joined);
            parts[g] = joined;
        }
        n = g;
    }
    if (!st)
        *out = parts[0];
    free(parts);
    return st;
}

enum seg_status seg_sdca_loss(struct seg_ag *ag, struct seg_var *x, const struct seg_tensor *onehot,
                              const struct seg_tensor *mean, const struct seg_tensor *var,
                              const struct seg_sdca_opts *o, struct seg_var **loss)
{
    TRY(check_shapes(x->value, onehot, mean, var));
    if (!(o->tau > 0))
        return seg_error(SEG_STATUS_INVALID, "sdca: the temperature must be positive (%g)", o->tau);
    if (var->ndim == 3 && o->var_l2)
        return seg_error(SEG_STATUS_INVALID, "sdca: var_norm = l2 (unit-norm variance vectors) is for the "
                                             "diagonal estimator only, not the full covariance");
    int64_t n = x->value->shape[0], a = x->value->shape[1], c = onehot->shape[1];
    int64_t p = x->value->shape[2] * x->value->shape[3];
    struct seg_var *q, *mu, *s, *oh, *l1, *q2, *l2, *vt, *logits, *ls, *per, *sum, *cnt;
    struct seg_tensor *cnt_t = NULL, *cnt_c = NULL;
    TRY(reshape3(ag, x, n, a, p, &q));
    if (o->normalize)
        TRY(l2_normalize(ag, q, 1, &q));
    TRY(const_copy(ag, mean, &mu));
    if (o->normalize)
        TRY(l2_normalize(ag, mu, 1, &mu));
    TRY(const_copy(ag, onehot, &oh));
    TRY(reshape3(ag, oh, n, c, p, &oh));
    /* logit_c = q.mu_c / tau + q' Sigma_c q / (2 tau^2), Sigma_c = diag(var_c) or full */
    TRY(seg_ag_matmul(ag, mu, q, false, false, &l1));                  /* [N, C, P] */
    if (var->ndim == 3) {
        TRY(quad_full(ag, q, var, &l2));
    } else {
        TRY(const_copy(ag, var, &s));
        if (o->var_l2)
            TRY(l2_normalize(ag, s, 1, &s));
        TRY(seg_ag_unary(ag, SEG_UNARY_SQUARE, q, 0, 0, &q2));
        TRY(seg_ag_matmul(ag, s, q2, false, false, &l2));
    }
    TRY(seg_ag_affine(ag, l2, 0.5f / (o->tau * o->tau), 0.0f, &vt));
    TRY(seg_ag_affine(ag, l1, 1.0f / o->tau, 0.0f, &l1));
    TRY(seg_ag_add(ag, l1, vt, &logits));
    TRY(seg_ag_softmax(ag, logits, 1, true, &ls));
    /* Eq. 14: -log softmax_y + q' Sigma_y q / (2 tau^2), at the selected pixels */
    TRY(seg_ag_sub(ag, vt, ls, &per));
    TRY(seg_ag_mul(ag, per, oh, &per));
    TRY(seg_ag_sum_all(ag, per, &sum));
    TRY(seg_reduce_all(SEG_REDUCE_SUM, onehot, &cnt_t));
    enum seg_status st = seg_unary(SEG_UNARY_CLAMP, cnt_t, 1.0f, FLT_MAX, &cnt_c);
    seg_tensor_free(cnt_t);
    if (st)
        return st;
    TRY(seg_ag_const(ag, cnt_c, &cnt));
    return seg_ag_div(ag, sum, cnt, loss);
}
