/* sdca_dist.c: SDCA's semantic distribution estimator and its contrastive loss bound
 * (see sdca.h and the header of method_sdca.c), composed from ops so that every step runs
 * on the device of the tensors. Class masks are one-hot [N, C, h, w]; pixels are columns. */
#include <float.h>
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

static enum seg_status check_shapes(const struct seg_tensor *x, const struct seg_tensor *onehot,
                                    const struct seg_tensor *mean, const struct seg_tensor *var)
{
    if (x->ndim != 4 || onehot->ndim != 4 || onehot->shape[0] != x->shape[0] ||
        onehot->shape[2] != x->shape[2] || onehot->shape[3] != x->shape[3] || mean->ndim != 2 ||
        mean->shape[0] != onehot->shape[1] || mean->shape[1] != x->shape[1] || var->ndim != 2 ||
        var->shape[0] != mean->shape[0] || var->shape[1] != mean->shape[1])
        return seg_error(SEG_STATUS_INVALID,
                         "sdca: shapes disagree: x [N, A, h, w], mask [N, C, h, w], statistics [C, A]");
    return SEG_STATUS_OK;
}

static enum seg_status update(struct seg_ag *ag, const struct seg_tensor *xt, const struct seg_tensor *oht,
                              struct seg_tensor *mean, struct seg_tensor *var, struct seg_tensor *count)
{
    int64_t n = xt->shape[0], a = xt->shape[1], p = xt->shape[2] * xt->shape[3], c = oht->shape[1];
    static const int swap01[3] = {1, 0, 2};
    struct seg_var *x, *oh, *m, *mc, *s1, *mb, *mp, *d, *s2, *vb, *cnt, *tot, *w, *mu, *v, *dmu, *t,
        *mu_new, *omw, *t1, *t2, *t3, *v_new;
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
    TRY(seg_ag_unary(ag, SEG_UNARY_CLAMP, m, 1.0f, FLT_MAX, &mc));
    TRY(seg_ag_matmul(ag, oh, x, false, true, &s1));                        /* [C, A] */
    TRY(seg_ag_div(ag, s1, mc, &mb));
    TRY(seg_ag_matmul(ag, mb, oh, true, false, &mp));                       /* [A, NP] */
    TRY(seg_ag_sub(ag, x, mp, &d));
    seg_var_done(mp);
    TRY(seg_ag_unary(ag, SEG_UNARY_SQUARE, d, 0, 0, &d));
    TRY(seg_ag_matmul(ag, oh, d, false, true, &s2));
    seg_var_done(d);
    TRY(seg_ag_div(ag, s2, mc, &vb));
    /* merge: w = m / (n + m); absent classes (m = 0) keep their statistics */
    TRY(const_copy(ag, count, &cnt));
    TRY(reshape2(ag, cnt, c, 1, &cnt));
    TRY(seg_ag_add(ag, cnt, m, &tot));
    TRY(seg_ag_unary(ag, SEG_UNARY_CLAMP, tot, 1.0f, FLT_MAX, &t));
    TRY(seg_ag_div(ag, m, t, &w));
    TRY(const_copy(ag, mean, &mu));
    TRY(const_copy(ag, var, &v));
    TRY(seg_ag_sub(ag, mb, mu, &dmu));
    TRY(seg_ag_mul(ag, w, dmu, &t));
    TRY(seg_ag_add(ag, mu, t, &mu_new));
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
                                struct seg_tensor *mean, struct seg_tensor *var, struct seg_tensor *count)
{
    TRY(check_shapes(x, onehot, mean, var));
    if (count->ndim != 1 || count->shape[0] != mean->shape[0])
        return seg_error(SEG_STATUS_INVALID, "sdca: class counts must be [C]");
    bool prev = seg_ag_set_grad_enabled(ag, false);
    enum seg_status st = update(ag, x, onehot, mean, var, count);
    seg_ag_set_grad_enabled(ag, prev);
    return st;
}

enum seg_status seg_sdca_loss(struct seg_ag *ag, struct seg_var *x, const struct seg_tensor *onehot,
                              const struct seg_tensor *mean, const struct seg_tensor *var,
                              const struct seg_sdca_opts *o, struct seg_var **loss)
{
    TRY(check_shapes(x->value, onehot, mean, var));
    if (!(o->tau > 0))
        return seg_error(SEG_STATUS_INVALID, "sdca: the temperature must be positive (%g)", o->tau);
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
    TRY(const_copy(ag, var, &s));
    if (o->var_l2)
        TRY(l2_normalize(ag, s, 1, &s));
    TRY(const_copy(ag, onehot, &oh));
    TRY(reshape3(ag, oh, n, c, p, &oh));
    /* logit_c = q.mu_c / tau + q' Sigma_c q / (2 tau^2), Sigma_c = diag(var_c) */
    TRY(seg_ag_matmul(ag, mu, q, false, false, &l1));                  /* [N, C, P] */
    TRY(seg_ag_unary(ag, SEG_UNARY_SQUARE, q, 0, 0, &q2));
    TRY(seg_ag_matmul(ag, s, q2, false, false, &l2));
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
