/* pixintra_loss.c: PixIntraDA's split, thresholds and loss terms (see pixintra.h), composed
 * from device ops so that they run on every backend. */
#include <math.h>
#include <stdlib.h>

#include "train/pixintra.h"

#define TRY(expr) SEG_TRY(expr)

static void free_all(struct seg_tensor **t, int n)
{
    for (int i = 0; i < n; i++)
        seg_tensor_free(t[i]);
}

/* thr [C] as a [1, C, 1, 1] view for broadcasting against [N, C, H, W]. */
static enum seg_status thr_view(const struct seg_tensor *probs, const struct seg_tensor *thr,
                                struct seg_tensor **view)
{
    if (probs->ndim != 4 || seg_tensor_numel(thr) != probs->shape[1])
        return seg_error(SEG_STATUS_INVALID, "pixintra: probabilities [N, C, H, W] and %lld thresholds",
                         (long long)seg_tensor_numel(thr));
    int64_t s[4] = {1, probs->shape[1], 1, 1};
    return seg_tensor_reshape((struct seg_tensor *)thr, 4, s, view);
}

enum seg_status seg_pixintra_split(const struct seg_tensor *probs, const struct seg_tensor *thr,
                                   struct seg_tensor **labels, struct seg_tensor **hard,
                                   struct seg_tensor **z)
{
    /* 0 tv, 1 above, 2 y+1, 3 (y+1)*above, 4 y or -1, 5 easy, 6 argmax, 7 argmax f32, 8 255,
     * 9 labels f32, 10 hard, 11 max prob, 12 1 - max prob */
    struct seg_tensor *w[13] = {NULL};
    enum seg_status st = thr_view(probs, thr, &w[0]);
    if (!st) st = seg_binary(SEG_BINARY_GT, probs, w[0], &w[1]);
    if (!st) st = seg_reduce(SEG_REDUCE_MAX, w[1], 1, true, &w[5]); /* 1: easy (Eq. 2) */
    if (!st && labels) {
        /* Eq. 3: argmax over the classes above their threshold (the others become -1). */
        st = seg_unary(SEG_UNARY_AFFINE, probs, 1.0f, 1.0f, &w[2]);
        if (!st) st = seg_binary(SEG_BINARY_MUL, w[1], w[2], &w[3]);
        if (!st) st = seg_unary(SEG_UNARY_AFFINE, w[3], 1.0f, -1.0f, &w[4]);
        if (!st) st = seg_argreduce(false, w[4], 1, false, &w[6]);
        if (!st) st = seg_cast(w[6], SEG_DTYPE_F32, &w[7]);
        if (!st) st = seg_tensor_new_like(w[7], &w[8]);
        if (!st) st = seg_fill(w[8], 255.0f);
        if (!st) st = seg_where(w[5], w[7], w[8], &w[9]);
        if (!st) st = seg_cast(w[9], SEG_DTYPE_I32, labels);
    }
    if (!st && (hard || z))
        st = seg_unary(SEG_UNARY_AFFINE, w[5], -1.0f, 1.0f, &w[10]);
    if (!st && z) { /* Eq. 7 */
        st = seg_reduce(SEG_REDUCE_MAX, probs, 1, true, &w[11]);
        if (!st) st = seg_unary(SEG_UNARY_AFFINE, w[11], -1.0f, 1.0f, &w[12]);
        if (!st) st = seg_binary(SEG_BINARY_MUL, w[10], w[12], z);
    }
    if (!st && hard) {
        *hard = w[10];
        w[10] = NULL;
    }
    free_all(w, 13);
    return st;
}

enum seg_status seg_pixintra_conf_hist(const struct seg_tensor *probs, int bins, struct seg_tensor **hist)
{
    if (probs->ndim != 4 || bins < 1)
        return seg_error(SEG_STATUS_INVALID, "pixintra: histogram of [N, C, H, W] probabilities, bins >= 1");
    int64_t c = probs->shape[1], px = probs->shape[0] * probs->shape[2] * probs->shape[3];
    if (c * bins >= (1 << 24))
        return seg_error(SEG_STATUS_INVALID, "pixintra: %lld classes x %d bins: too many bins", (long long)c, bins);
    /* 0 conf, 1 class, 2 class f32, 3 conf*bins clamped, 4 bin i32, 5 bin f32, 6 class*bins,
     * 7 index f32, 8 index i32, 9 ones */
    struct seg_tensor *w[10] = {NULL};
    enum seg_status st = seg_reduce(SEG_REDUCE_MAX, probs, 1, false, &w[0]);
    if (!st) st = seg_argreduce(false, probs, 1, false, &w[1]);
    if (!st) st = seg_cast(w[1], SEG_DTYPE_F32, &w[2]);
    if (!st) st = seg_unary(SEG_UNARY_CLAMP, w[0], 0.0f, 1.0f, &w[9]);
    if (!st) { /* conf = 1 goes to the last bin */
        seg_tensor_free(w[0]);
        w[0] = NULL;
        st = seg_unary(SEG_UNARY_AFFINE, w[9], (float)bins, 0.0f, &w[0]);
        seg_tensor_free(w[9]);
        w[9] = NULL;
    }
    if (!st) st = seg_unary(SEG_UNARY_CLAMP, w[0], 0.0f, (float)bins - 0.5f, &w[3]);
    if (!st) st = seg_cast(w[3], SEG_DTYPE_I32, &w[4]); /* truncation: floor of a value >= 0 */
    if (!st) st = seg_cast(w[4], SEG_DTYPE_F32, &w[5]);
    if (!st) st = seg_unary(SEG_UNARY_AFFINE, w[2], (float)bins, 0.0f, &w[6]);
    if (!st) st = seg_binary(SEG_BINARY_ADD, w[6], w[5], &w[7]); /* exact: integers < 2^24 */
    if (!st) st = seg_cast(w[7], SEG_DTYPE_I32, &w[8]);
    if (!st) st = seg_tensor_set_shape(w[8], 1, &px);
    if (!st) st = seg_tensor_new(probs->be, SEG_DTYPE_F32, 1, &px, &w[9]);
    if (!st) st = seg_fill(w[9], 1.0f);
    if (!st) st = seg_scatter_add(w[9], 0, w[8], c * bins, false, hist);
    free_all(w, 10);
    return st;
}

void seg_pixintra_thresholds(const double *hist, int num_classes, int bins, double cap, float *thr)
{
    for (int c = 0; c < num_classes; c++) {
        const double *h = hist + (size_t)c * bins;
        double n = 0, cum = 0, t = cap;
        for (int b = 0; b < bins; b++)
            n += h[b];
        if (n > 0) {
            double r = floor((n - 1) / 2); /* 0-based rank of the lower median */
            for (int b = 0; b < bins; b++) {
                if (cum + h[b] > r) {
                    t = (b + (r - cum + 0.5) / h[b]) / bins;
                    break;
                }
                cum += h[b];
            }
        }
        thr[c] = (float)(cap > 0 && t > cap ? cap : t);
    }
}

enum seg_status seg_pixintra_easy_count(const struct seg_tensor *probs, const struct seg_tensor *thr,
                                        struct seg_tensor **easy)
{
    struct seg_tensor *w[3] = {NULL};
    *easy = NULL;
    enum seg_status st = thr_view(probs, thr, &w[0]);
    if (!st) st = seg_binary(SEG_BINARY_GT, probs, w[0], &w[1]);
    if (!st) st = seg_reduce(SEG_REDUCE_MAX, w[1], 1, false, &w[2]);
    if (!st) st = seg_reduce_all(SEG_REDUCE_SUM, w[2], easy);
    free_all(w, 3);
    return st;
}

/* A tape constant [1]: f(count) with f = max(count, 1) (a safe divisor) or count > 0. */
static enum seg_status count_const(struct seg_ag *ag, const struct seg_tensor *count, enum seg_binary_fn fn,
                                   float rhs, struct seg_var **out)
{
    int64_t one[1] = {1};
    struct seg_tensor *r = NULL, *v = NULL;
    enum seg_status st = seg_tensor_new(count->be, SEG_DTYPE_F32, 1, one, &r);
    if (!st) st = seg_fill(r, rhs);
    if (!st) st = seg_binary(fn, count, r, &v);
    seg_tensor_free(r);
    if (!st) st = seg_ag_const(ag, v, out);
    else seg_tensor_free(v);
    return st;
}

/* term where count > 0, else 0 (and no gradient), without a host read. */
static enum seg_status if_nonempty(struct seg_ag *ag, struct seg_var *term, const struct seg_tensor *count,
                                   struct seg_var **out)
{
    struct seg_var *on;
    TRY(count_const(ag, count, SEG_BINARY_GT, 0.0f, &on));
    return seg_ag_mul(ag, term, on, out);
}

/* A tape constant holding a copy of t. */
static enum seg_status const_copy(struct seg_ag *ag, const struct seg_tensor *t, struct seg_var **out)
{
    struct seg_tensor *c = NULL;
    TRY(seg_clone(t, &c));
    return seg_ag_const(ag, c, out);
}

enum seg_status seg_pixintra_masked_mean(struct seg_ag *ag, struct seg_var *x, const struct seg_tensor *mask,
                                         const struct seg_tensor *count, struct seg_var **out)
{
    struct seg_var *m, *mr, *prod, *sum, *den;
    if (seg_tensor_numel(mask) != seg_tensor_numel(x->value) || seg_tensor_numel(count) != 1)
        return seg_error(SEG_STATUS_INVALID, "pixintra: masked mean: mask and values differ in size, or no count");
    TRY(const_copy(ag, mask, &m));
    TRY(seg_ag_reshape(ag, m, x->value->ndim, x->value->shape, &mr));
    TRY(seg_ag_mul(ag, x, mr, &prod));
    TRY(seg_ag_sum_all(ag, prod, &sum));
    TRY(count_const(ag, count, SEG_BINARY_MAX, 1.0f, &den));
    return seg_ag_div(ag, sum, den, out);
}

enum seg_status seg_pixintra_kld(struct seg_ag *ag, struct seg_var *logits, const struct seg_tensor *easy,
                                 const struct seg_tensor *count, struct seg_var **out)
{
    struct seg_var *ls, *sum, *neg;
    int64_t c = logits->value->shape[1];
    TRY(seg_ag_softmax(ag, logits, 1, true, &ls));
    TRY(seg_ag_reduce(ag, SEG_REDUCE_SUM, ls, 1, true, &sum));
    TRY(seg_ag_affine(ag, sum, -1.0f / (float)c, 0.0f, &neg));
    return seg_pixintra_masked_mean(ag, neg, easy, count, out);
}

/* -log(mean over mask of sigmoid(sign * d) + eps) */
static enum seg_status neg_log_mean_prob(struct seg_ag *ag, struct seg_var *d, float sign,
                                         const struct seg_tensor *mask, const struct seg_tensor *count,
                                         struct seg_var **out)
{
    struct seg_var *sd, *p, *m, *me, *lg, *nl;
    TRY(seg_ag_affine(ag, d, sign, 0.0f, &sd));
    TRY(seg_ag_unary(ag, SEG_UNARY_SIGMOID, sd, 0, 0, &p));
    TRY(seg_pixintra_masked_mean(ag, p, mask, count, &m));
    TRY(seg_ag_affine(ag, m, 1.0f, SEG_PIXINTRA_EPS, &me));
    TRY(seg_ag_unary(ag, SEG_UNARY_LOG, me, 0, 0, &lg));
    TRY(seg_ag_affine(ag, lg, -1.0f, 0.0f, &nl));
    return if_nonempty(ag, nl, count, out);
}

/* mean over mask of softplus(sign * d): BCE with label 1 (sign -1) or 0 (sign +1). */
static enum seg_status mean_softplus(struct seg_ag *ag, struct seg_var *d, float sign,
                                     const struct seg_tensor *mask, const struct seg_tensor *count,
                                     struct seg_var **out)
{
    struct seg_var *sd, *sp;
    TRY(seg_ag_affine(ag, d, sign, 0.0f, &sd));
    TRY(seg_ag_unary(ag, SEG_UNARY_SOFTPLUS, sd, 0, 0, &sp));
    return seg_pixintra_masked_mean(ag, sp, mask, count, out);
}

enum seg_status seg_pixintra_pla_g(struct seg_ag *ag, struct seg_var *d, const struct seg_tensor *hard,
                                   const struct seg_tensor *n_hard, bool bce, struct seg_var **out)
{
    /* G wants D(hard) = 0 ("easy"): 1 - D = sigmoid(-d). */
    return bce ? mean_softplus(ag, d, 1.0f, hard, n_hard, out) : neg_log_mean_prob(ag, d, -1.0f, hard, n_hard, out);
}

enum seg_status seg_pixintra_pla_d(struct seg_ag *ag, struct seg_var *d, const struct seg_tensor *hard,
                                   const struct seg_tensor *n_hard, const struct seg_tensor *n_easy, bool bce,
                                   struct seg_var **out)
{
    struct seg_var *a = NULL, *b = NULL, *sum;
    struct seg_tensor *easy = NULL;
    /* hard pixels are labelled 1 */
    TRY(bce ? mean_softplus(ag, d, -1.0f, hard, n_hard, &a) : neg_log_mean_prob(ag, d, 1.0f, hard, n_hard, &a));
    /* easy pixels 0 */
    TRY(seg_unary(SEG_UNARY_AFFINE, hard, -1.0f, 1.0f, &easy));
    enum seg_status st = bce ? mean_softplus(ag, d, 1.0f, easy, n_easy, &b)
                             : neg_log_mean_prob(ag, d, -1.0f, easy, n_easy, &b);
    seg_tensor_free(easy);
    TRY(st);
    TRY(seg_ag_add(ag, a, b, &sum));
    return seg_ag_affine(ag, sum, 0.5f, 0.0f, out); /* each domain's term halved, as AdaptSegNet */
}

static enum seg_status d_value(struct seg_ag *ag, struct seg_var *d, bool sigmoid, struct seg_var **out)
{
    if (!sigmoid) {
        *out = d;
        return SEG_STATUS_OK;
    }
    return seg_ag_unary(ag, SEG_UNARY_SIGMOID, d, 0, 0, out);
}

enum seg_status seg_pixintra_cts_d(struct seg_ag *ag, struct seg_var *d, const struct seg_tensor *z,
                                   bool sigmoid, struct seg_var **out)
{
    struct seg_var *v, *zc, *zr, *diff, *sq;
    TRY(d_value(ag, d, sigmoid, &v));
    TRY(const_copy(ag, z, &zc));
    TRY(seg_ag_reshape(ag, zc, v->value->ndim, v->value->shape, &zr));
    TRY(seg_ag_sub(ag, v, zr, &diff));
    TRY(seg_ag_unary(ag, SEG_UNARY_SQUARE, diff, 0, 0, &sq));
    return seg_ag_mean_all(ag, sq, out);
}

enum seg_status seg_pixintra_cts_g(struct seg_ag *ag, struct seg_var *d, const struct seg_tensor *hard,
                                   bool sigmoid, struct seg_var **out)
{
    struct seg_var *v, *mc, *mr, *prod, *sq;
    TRY(d_value(ag, d, sigmoid, &v));
    TRY(const_copy(ag, hard, &mc));
    TRY(seg_ag_reshape(ag, mc, v->value->ndim, v->value->shape, &mr));
    TRY(seg_ag_mul(ag, v, mr, &prod));
    TRY(seg_ag_unary(ag, SEG_UNARY_SQUARE, prod, 0, 0, &sq));
    return seg_ag_mean_all(ag, sq, out);
}
