/* losses.c: losses built from differentiable ops (see losses.h). */
#include <stdlib.h>

#include "backend/backend.h"
#include "model/losses.h"

#define TRY(expr) SEG_TRY(expr)

/* A tape-owned constant of n elements (shape given) filled with v. */
static enum seg_status const_fill(struct seg_ag *ag, int ndim, const int64_t *shape, float v,
                                  struct seg_var **out)
{
    struct seg_tensor *t = NULL;
    TRY(seg_tensor_new(seg_ag_backend(ag), SEG_DTYPE_F32, ndim, shape, &t));
    enum seg_status st = seg_fill(t, v);
    if (st) {
        seg_tensor_free(t);
        return st;
    }
    return seg_ag_const(ag, t, out);
}

static enum seg_status scalar(struct seg_ag *ag, float v, struct seg_var **out)
{
    int64_t one = 1;
    return const_fill(ag, 1, &one, v, out);
}

/* Wraps the result of a front-end op as a tape constant. */
static enum seg_status konst(struct seg_ag *ag, enum seg_status st, struct seg_tensor *t,
                             struct seg_var **out)
{
    if (st) {
        seg_tensor_free(t);
        return st;
    }
    return seg_ag_const(ag, t, out);
}

enum seg_status seg_ag_bce_with_logits(struct seg_ag *ag, struct seg_var *x,
                                       const struct seg_tensor *target, struct seg_var **out)
{
    struct seg_var *sp, *t, *xt, *d;
    struct seg_tensor *tc = NULL;
    TRY(seg_ag_unary(ag, SEG_UNARY_SOFTPLUS, x, 0, 0, &sp));
    enum seg_status st = seg_clone(target, &tc);
    TRY(konst(ag, st, tc, &t));
    TRY(seg_ag_mul(ag, x, t, &xt));
    TRY(seg_ag_sub(ag, sp, xt, &d));
    return seg_ag_mean_all(ag, d, out);
}

enum seg_status seg_ag_bce_with_logits_const(struct seg_ag *ag, struct seg_var *x, float target,
                                             struct seg_var **out)
{
    struct seg_var *sp, *xt, *d;
    TRY(seg_ag_unary(ag, SEG_UNARY_SOFTPLUS, x, 0, 0, &sp));
    TRY(seg_ag_affine(ag, x, target, 0.0f, &xt));
    TRY(seg_ag_sub(ag, sp, xt, &d));
    return seg_ag_mean_all(ag, d, out);
}

enum seg_status seg_ag_mse(struct seg_ag *ag, struct seg_var *a, struct seg_var *b,
                           struct seg_var **out)
{
    struct seg_var *d, *sq;
    TRY(seg_ag_sub(ag, a, b, &d));
    TRY(seg_ag_unary(ag, SEG_UNARY_SQUARE, d, 0, 0, &sq));
    return seg_ag_mean_all(ag, sq, out);
}

enum seg_status seg_ag_kl_div(struct seg_ag *ag, struct seg_var *log_q, struct seg_var *p,
                              struct seg_var **out)
{
    struct seg_var *lp, *d, *m;
    TRY(seg_ag_unary(ag, SEG_UNARY_LOG, p, 0, 0, &lp));
    TRY(seg_ag_sub(ag, lp, log_q, &d));
    TRY(seg_ag_mul(ag, p, d, &m));
    return seg_ag_mean_all(ag, m, out);
}

enum seg_status seg_ag_entropy(struct seg_ag *ag, struct seg_var *logits, struct seg_var **out)
{
    struct seg_var *p, *lp, *m, *s, *mean;
    TRY(seg_ag_softmax(ag, logits, 1, false, &p));
    TRY(seg_ag_softmax(ag, logits, 1, true, &lp));
    TRY(seg_ag_mul(ag, p, lp, &m));
    TRY(seg_ag_reduce(ag, SEG_REDUCE_SUM, m, 1, false, &s));
    TRY(seg_ag_mean_all(ag, s, &mean));
    return seg_ag_affine(ag, mean, -1.0f, 0.0f, out);
}

enum seg_status seg_ag_dropout(struct seg_ag *ag, struct seg_var *x, float p, uint32_t seed,
                               uint32_t stream, struct seg_var **out)
{
    if (p <= 0.0f) {
        *out = x;
        return SEG_STATUS_OK;
    }
    if (p >= 1.0f)
        return seg_error(SEG_STATUS_INVALID, "dropout: p = %g must be below 1", (double)p);
    struct seg_tensor *u = NULL, *keep = NULL, *scaled = NULL;
    struct seg_var *pv, *mask;
    TRY(scalar(ag, p, &pv));
    TRY(seg_tensor_new_like(x->value, &u));
    enum seg_status st = seg_rng_uniform(u, seed, stream);
    if (!st)
        st = seg_binary(SEG_BINARY_GE, u, pv->value, &keep);
    if (!st)
        st = seg_unary(SEG_UNARY_AFFINE, keep, 1.0f / (1.0f - p), 0.0f, &scaled);
    seg_tensor_free(u);
    seg_tensor_free(keep);
    TRY(konst(ag, st, scaled, &mask));
    return seg_ag_mul(ag, x, mask, out);
}

/* The Lovasz extension's gradient for each row of sorted ground truth fg [C, P]:
 * g = J - shift(J), J = 1 - (gts - cumsum(fg)) / (gts + cumsum(1 - fg)). A constant. */
static enum seg_status lovasz_grad(struct seg_ag *ag, const struct seg_tensor *fg_sorted,
                                   const struct seg_tensor *gts, struct seg_tensor **g)
{
    struct seg_backend *be = seg_ag_backend(ag);
    int64_t c = fg_sorted->shape[0], p = fg_sorted->shape[1];
    struct seg_tensor *cs = NULL, *ones = NULL, *pos = NULL, *inter = NULL, *u1 = NULL,
                      *uni = NULL, *ratio = NULL, *jac = NULL, *head = NULL, *shifted = NULL;
    int64_t row[2] = {1, p};
    enum seg_status st = seg_cumsum(fg_sorted, 1, false, &cs);
    if (!st) st = seg_tensor_new(be, SEG_DTYPE_F32, 2, row, &ones);
    if (!st) st = seg_fill(ones, 1.0f);
    if (!st) st = seg_cumsum(ones, 1, false, &pos);             /* 1, 2, ..., P */
    if (!st) st = seg_binary(SEG_BINARY_SUB, gts, cs, &inter);  /* gts - cumsum(fg) */
    if (!st) st = seg_binary(SEG_BINARY_ADD, gts, pos, &u1);
    if (!st) st = seg_binary(SEG_BINARY_SUB, u1, cs, &uni);     /* gts + cumsum(1 - fg) */
    if (!st) st = seg_binary(SEG_BINARY_DIV, inter, uni, &ratio);
    if (!st) st = seg_unary(SEG_UNARY_AFFINE, ratio, -1.0f, 1.0f, &jac);
    if (!st && p > 1) {
        int64_t zs[2] = {c, p};
        st = seg_tensor_new(be, SEG_DTYPE_F32, 2, zs, &shifted);
        if (!st) st = seg_fill(shifted, 0.0f);
        if (!st) st = seg_slice(jac, 1, 0, p - 1, &head);
        if (!st) st = seg_slice_assign(shifted, 1, 1, head);
        if (!st) st = seg_binary(SEG_BINARY_SUB, jac, shifted, g);
    } else if (!st) {
        st = seg_clone(jac, g);
    }
    struct seg_tensor *tmp[] = {cs, ones, pos, inter, u1, uni, ratio, jac, head, shifted};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++)
        seg_tensor_free(tmp[i]);
    return st;
}

enum seg_status seg_ag_lovasz_softmax(struct seg_ag *ag, struct seg_var *probs,
                                      const struct seg_tensor *labels, int ignore_index,
                                      struct seg_var **out)
{
    struct seg_backend *be = seg_ag_backend(ag);
    const struct seg_tensor *pr = probs->value;
    if (pr->ndim < 2 || labels->dtype != SEG_DTYPE_I32)
        return seg_error(SEG_STATUS_INVALID, "lovasz_softmax: probs [N, C, ...] and I32 labels");
    int64_t n = pr->shape[0], c = pr->shape[1], p = seg_tensor_numel(pr) / (n * c);
    if (seg_tensor_numel(labels) != n * p)
        return seg_error(SEG_STATUS_INVALID, "lovasz_softmax: labels do not match the probabilities");
    int64_t s3[3] = {n, c, p}, m3[3] = {n, 1, p}, cp[2] = {c, n * p};
    int perm[3] = {1, 0, 2};
    struct seg_tensor *fg = NULL, *lf = NULL, *ign = NULL, *valid = NULL, *fgp = NULL,
                      *fgs = NULL, *gts = NULL, *g = NULL, *present = NULL, *npres = NULL,
                      *one = NULL, *denom = NULL;
    struct seg_var *fgv, *validv, *pr3, *diff, *err, *errm, *errp, *err2, *sorted, *idx, *gv,
        *prod, *lc, *presv, *weighted, *total, *denv;
    /* Constants: one-hot ground truth and the valid-pixel mask. */
    enum seg_status st = seg_one_hot(labels, (int)c, &fg);
    if (!st) st = seg_tensor_set_shape(fg, 3, s3);
    if (!st) st = seg_cast(labels, SEG_DTYPE_F32, &lf);
    int64_t one_shape = 1;
    if (!st) st = seg_tensor_new(be, SEG_DTYPE_F32, 1, &one_shape, &ign);
    if (!st) st = seg_fill(ign, (float)ignore_index);
    if (!st) st = seg_binary(SEG_BINARY_NE, lf, ign, &valid);
    if (!st) st = seg_tensor_set_shape(valid, 3, m3);
    seg_tensor_free(lf);
    seg_tensor_free(ign);
    if (st) {
        seg_tensor_free(fg);
        seg_tensor_free(valid);
        return st;
    }
    TRY(seg_ag_const(ag, fg, &fgv));
    TRY(seg_ag_const(ag, valid, &validv));
    /* Errors |fg - p| on valid pixels (0 elsewhere, which sorts them last and adds 0). */
    TRY(seg_ag_reshape(ag, probs, 3, s3, &pr3));
    TRY(seg_ag_sub(ag, fgv, pr3, &diff));
    TRY(seg_ag_unary(ag, SEG_UNARY_ABS, diff, 0, 0, &err));
    TRY(seg_ag_mul(ag, err, validv, &errm));
    TRY(seg_ag_permute(ag, errm, perm, &errp));
    TRY(seg_ag_reshape(ag, errp, 2, cp, &err2));
    TRY(seg_ag_sort(ag, err2, true, &sorted, &idx));
    /* The ground truth in the same order, and the Lovasz gradient (constants). */
    st = seg_permute(fgv->value, perm, &fgp);
    if (!st) st = seg_tensor_set_shape(fgp, 2, cp);
    if (!st) st = seg_gather(fgp, 1, idx->value, &fgs);
    if (!st) st = seg_reduce(SEG_REDUCE_SUM, fgp, 1, true, &gts); /* [C, 1] */
    if (!st) st = lovasz_grad(ag, fgs, gts, &g);
    if (!st) st = seg_tensor_new(be, SEG_DTYPE_F32, 1, &one_shape, &one);
    if (!st) st = seg_fill(one, 0.0f);
    if (!st) st = seg_binary(SEG_BINARY_GT, gts, one, &present); /* classes present */
    if (!st) st = seg_tensor_set_shape(present, 1, &c);
    if (!st) st = seg_reduce_all(SEG_REDUCE_SUM, present, &npres);
    if (!st) st = seg_fill(one, 1.0f);
    if (!st) st = seg_binary(SEG_BINARY_MAX, npres, one, &denom); /* none present: loss 0 */
    seg_tensor_free(fgp);
    seg_tensor_free(fgs);
    seg_tensor_free(gts);
    seg_tensor_free(npres);
    seg_tensor_free(one);
    if (st) {
        seg_tensor_free(g);
        seg_tensor_free(present);
        seg_tensor_free(denom);
        return st;
    }
    TRY(seg_ag_const(ag, g, &gv));
    TRY(seg_ag_const(ag, present, &presv));
    TRY(seg_ag_const(ag, denom, &denv));
    TRY(seg_ag_mul(ag, sorted, gv, &prod));
    TRY(seg_ag_reduce(ag, SEG_REDUCE_SUM, prod, 1, false, &lc)); /* [C] */
    TRY(seg_ag_mul(ag, lc, presv, &weighted));
    TRY(seg_ag_sum_all(ag, weighted, &total));
    return seg_ag_div(ag, total, denv, out);
}

enum seg_status seg_topk(const struct seg_tensor *x, int64_t k, struct seg_tensor **values,
                         struct seg_tensor **indices)
{
    int64_t n = x->shape[x->ndim - 1];
    if (k < 1 || k > n)
        return seg_error(SEG_STATUS_INVALID, "topk: k = %lld for a row of %lld", (long long)k,
                         (long long)n);
    struct seg_tensor *v = NULL, *ix = NULL;
    TRY(seg_sort(x, true, &v, &ix));
    enum seg_status st = seg_slice(v, -1, 0, k, values);
    if (!st)
        st = seg_slice(ix, -1, 0, k, indices);
    seg_tensor_free(v);
    seg_tensor_free(ix);
    return st;
}
