/* mic_terms.c: the DAFormer / MIC recipe's pieces (mic.h): the EMA teacher, pseudo labels,
 * class mixing, block masking, the weighted cross-entropy and the feature distance. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "train/mic.h"

#define TRY(expr) SEG_TRY(expr)

double seg_mic_ema_alpha(int64_t iter, double alpha)
{
    double a = 1.0 - 1.0 / (double)(iter + 1);
    return a < alpha ? a : alpha;
}

enum seg_status seg_mic_ema_tensor(struct seg_tensor *t, const struct seg_tensor *s, float alpha)
{
    struct seg_tensor *a = NULL, *b = NULL, *sum = NULL;
    enum seg_status st = seg_unary(SEG_UNARY_AFFINE, t, alpha, 0.0f, &a);
    if (!st) st = seg_unary(SEG_UNARY_AFFINE, s, 1.0f - alpha, 0.0f, &b);
    if (!st) st = seg_binary(SEG_BINARY_ADD, a, b, &sum);
    if (!st) st = seg_tensor_copy(t, sum);
    seg_tensor_free(a);
    seg_tensor_free(b);
    seg_tensor_free(sum);
    return st;
}

enum seg_status seg_mic_ema_update(struct seg_model *teacher, const struct seg_model *student, float alpha)
{
    if (teacher->nparams != student->nparams)
        return seg_error(SEG_STATUS_INVALID, "mic: teacher and student differ (%d and %d tensors)", teacher->nparams,
                         student->nparams);
    for (int i = 0; i < student->nparams; i++)
        if (!student->params[i].is_buffer)
            TRY(seg_mic_ema_tensor(teacher->params[i].var->value, student->params[i].var->value, alpha));
    return SEG_STATUS_OK;
}

enum seg_status seg_mic_pseudo_labels(const struct seg_tensor *logits, float thr, int ignore_top, int ignore_bottom,
                                      struct seg_tensor **labels, struct seg_tensor **weight,
                                      struct seg_tensor **quality)
{
    *labels = *weight = NULL;
    if (quality)
        *quality = NULL;
    if (logits->ndim != 4)
        return seg_error(SEG_STATUS_INVALID, "mic pseudo labels: logits must be [N, C, H, W]");
    int64_t n = logits->shape[0], h = logits->shape[2], w = logits->shape[3];
    struct seg_tensor *p = NULL, *pmax = NULL, *conf = NULL, *share = NULL, *rows = NULL, *wt = NULL;
    enum seg_status st = seg_softmax(logits, 1, false, &p);
    if (!st) st = seg_reduce(SEG_REDUCE_MAX, p, 1, true, &pmax);
    if (!st) st = seg_argreduce(false, logits, 1, false, labels);
    /* confident share over the batch: mean of (pmax >= thr) */
    struct seg_tensor *thr_t = NULL;
    int64_t one = 1;
    if (!st) st = seg_tensor_new(logits->be, SEG_DTYPE_F32, 1, &one, &thr_t);
    if (!st) st = seg_fill(thr_t, thr);
    if (!st) st = seg_binary(SEG_BINARY_GE, pmax, thr_t, &conf);
    if (!st) st = seg_reduce_all(SEG_REDUCE_MEAN, conf, &share);
    /* the row mask [1, 1, H, 1]: 0 on the ignored top and bottom rows */
    float *rm = st ? NULL : malloc((size_t)h * sizeof *rm);
    if (!st && !rm)
        st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "mic pseudo labels: out of host memory");
    int64_t rs[4] = {1, 1, h, 1}, ws[4] = {n, 1, h, w};
    if (!st) {
        for (int64_t r = 0; r < h; r++)
            rm[r] = r < ignore_top || r >= h - ignore_bottom ? 0.0f : 1.0f;
        st = seg_tensor_new(logits->be, SEG_DTYPE_F32, 4, rs, &rows);
    }
    if (!st) st = seg_tensor_write(rows, rm, (size_t)h * sizeof *rm);
    free(rm);
    if (!st) st = seg_binary(SEG_BINARY_MUL, rows, share, &wt);
    if (!st) st = seg_expand(wt, 4, ws, weight);
    if (!st && quality)
        st = seg_clone(share, quality);
    struct seg_tensor *tmp[] = {p, pmax, conf, share, rows, wt, thr_t};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++)
        seg_tensor_free(tmp[i]);
    if (st) {
        seg_tensor_free(*labels);
        seg_tensor_free(*weight);
        *labels = *weight = NULL;
    }
    return st;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

double seg_mic_uniform(uint64_t *rng)
{
    return (double)(rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
}

void seg_mic_choose_classes(const int32_t *labels, int64_t n, int64_t hw, uint64_t *rng, float *rows)
{
    bool present[256] = {false};
    int values[256], nv = 0;
    for (int64_t p = 0; p < n * hw; p++)
        present[labels[p] & 255] = true;
    for (int v = 0; v < 256; v++)
        if (present[v])
            values[nv++] = v;
    int k = (nv + nv % 2) / 2;
    for (int64_t b = 0; b < n; b++) {
        float *row = rows + b * 256;
        for (int v = 0; v < 256; v++)
            row[v] = 0.0f;
        for (int i = 0; i < k; i++) { /* a partial Fisher-Yates shuffle: k draws without replacement */
            int j = i + (int)(rng_next(rng) % (uint64_t)(nv - i)), t = values[i];
            values[i] = values[j];
            values[j] = t;
            row[values[i]] = 1.0f;
        }
    }
}

enum seg_status seg_mic_class_mask(const struct seg_tensor *labels, const struct seg_tensor *table,
                                   struct seg_tensor **mask)
{
    *mask = NULL;
    if (labels->ndim != 3 || labels->dtype != SEG_DTYPE_I32 || table->ndim != 2 || table->shape[1] != 256 ||
        table->shape[0] != labels->shape[0])
        return seg_error(SEG_STATUS_INVALID, "mic class mask: labels I32 [N, H, W] and a table [N, 256]");
    int64_t n = labels->shape[0], h = labels->shape[1], w = labels->shape[2];
    struct seg_tensor *idx = NULL, *tab = NULL, *g = NULL;
    int64_t is[3] = {n, h * w, 1}, ts[3] = {n, 256, 1}, ms[4] = {n, 1, h, w};
    /* labels are 0..255 (255 = ignore), so they index the table directly */
    enum seg_status st = seg_clone(labels, &idx);
    if (!st) st = seg_tensor_set_shape(idx, 3, is);
    if (!st) st = seg_clone(table, &tab);
    if (!st) st = seg_tensor_set_shape(tab, 3, ts);
    if (!st) st = seg_gather(tab, 1, idx, &g);
    if (!st) st = seg_tensor_set_shape(g, 4, ms);
    seg_tensor_free(idx);
    seg_tensor_free(tab);
    if (st)
        seg_tensor_free(g);
    else
        *mask = g;
    return st;
}

enum seg_status seg_mic_mix(const struct seg_tensor *mask, const struct seg_tensor *a, const struct seg_tensor *b,
                            struct seg_tensor **out)
{
    /* b + mask (a - b), mask broadcast over channels */
    struct seg_tensor *d = NULL, *md = NULL;
    *out = NULL;
    enum seg_status st = seg_binary(SEG_BINARY_SUB, a, b, &d);
    if (!st) st = seg_binary(SEG_BINARY_MUL, mask, d, &md);
    if (!st) st = seg_binary(SEG_BINARY_ADD, b, md, out);
    seg_tensor_free(d);
    seg_tensor_free(md);
    return st;
}

enum seg_status seg_mic_mix_labels(const struct seg_tensor *mask, const struct seg_tensor *a,
                                   const struct seg_tensor *b, struct seg_tensor **out)
{
    struct seg_tensor *fa = NULL, *fb = NULL, *fm = NULL;
    *out = NULL;
    enum seg_status st = seg_cast(a, SEG_DTYPE_F32, &fa);
    if (!st) st = seg_cast(b, SEG_DTYPE_F32, &fb);
    if (!st) st = seg_where(mask, fa, fb, &fm);
    if (!st) st = seg_cast(fm, SEG_DTYPE_I32, out);
    if (!st) st = seg_tensor_set_shape(*out, a->ndim, a->shape);
    seg_tensor_free(fa);
    seg_tensor_free(fb);
    seg_tensor_free(fm);
    return st;
}

enum seg_status seg_mic_block_uniforms(struct seg_backend *be, int64_t n, int64_t h, int64_t w, int block,
                                       uint32_t seed, uint32_t stream, struct seg_tensor **u)
{
    int64_t bh = (int64_t)llround((double)h / block), bw = (int64_t)llround((double)w / block);
    int64_t s[4] = {n, 1, bh > 0 ? bh : 1, bw > 0 ? bw : 1};
    TRY(seg_tensor_new(be, SEG_DTYPE_F32, 4, s, u));
    enum seg_status st = seg_rng_uniform(*u, seed, stream);
    if (st) {
        seg_tensor_free(*u);
        *u = NULL;
    }
    return st;
}

enum seg_status seg_mic_block_mask(const struct seg_tensor *u, float ratio, int64_t h, int64_t w,
                                   struct seg_tensor **mask)
{
    struct seg_tensor *r = NULL, *keep = NULL;
    int64_t one = 1;
    *mask = NULL;
    enum seg_status st = seg_tensor_new(u->be, SEG_DTYPE_F32, 1, &one, &r);
    if (!st) st = seg_fill(r, ratio);
    if (!st) st = seg_binary(SEG_BINARY_GT, u, r, &keep);
    if (!st) st = seg_resize_nearest(keep, h, w, mask);
    seg_tensor_free(r);
    seg_tensor_free(keep);
    return st;
}

enum seg_status seg_mic_weighted_ce(struct seg_ag *ag, struct seg_var *logits, const struct seg_tensor *labels,
                                    const struct seg_tensor *weight, struct seg_var **loss)
{
    const struct seg_tensor *x = logits->value;
    if (x->ndim != 4 || labels->ndim != 3 || labels->shape[0] != x->shape[0] || labels->shape[1] != x->shape[2] ||
        labels->shape[2] != x->shape[3])
        return seg_error(SEG_STATUS_INVALID, "mic cross-entropy: logits [N, C, H, W] and labels [N, H, W]");
    int64_t n = x->shape[0], h = x->shape[2], w = x->shape[3], is[4] = {n, 1, h, w};
    struct seg_var *lp, *picked, *weighted, *sum;
    struct seg_tensor *idx = NULL;
    TRY(seg_ag_softmax(ag, logits, 1, true, &lp));
    TRY(seg_clone(labels, &idx)); /* 255 (ignore) falls outside [0, C): GATHER gives 0 */
    enum seg_status st = seg_tensor_set_shape(idx, 4, is);
    if (!st) st = seg_ag_gather(ag, lp, 1, idx, &picked);
    seg_tensor_free(idx);
    if (st)
        return st;
    weighted = picked;
    if (weight) {
        struct seg_tensor *wc = NULL;
        struct seg_var *wv;
        TRY(seg_clone(weight, &wc));
        TRY(seg_ag_const(ag, wc, &wv));
        TRY(seg_ag_mul(ag, picked, wv, &weighted));
    }
    TRY(seg_ag_sum_all(ag, weighted, &sum));
    return seg_ag_affine(ag, sum, (float)(-1.0 / (double)(n * h * w)), 0.0f, loss);
}

void seg_mic_thing_mask(const int32_t *labels, int n, int H, int W, int h, int w, float min_ratio, int nclasses,
                        const unsigned char *is_thing, float *mask)
{
    int counts[256];
    for (int b = 0; b < n; b++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) {
                int r0 = (int)((int64_t)i * H / h), r1 = (int)((int64_t)(i + 1) * H / h);
                int c0 = (int)((int64_t)j * W / w), c1 = (int)((int64_t)(j + 1) * W / w);
                if (r1 <= r0) r1 = r0 + 1;
                if (c1 <= c0) c1 = c0 + 1;
                memset(counts, 0, sizeof counts);
                for (int r = r0; r < r1 && r < H; r++)
                    for (int c = c0; c < c1 && c < W; c++) {
                        int v = labels[((int64_t)b * H + r) * W + c];
                        if (v >= 0 && v < nclasses)
                            counts[v]++;
                    }
                int best = 0;
                for (int c = 1; c < nclasses; c++)
                    if (counts[c] > counts[best])
                        best = c;
                int cell = (r1 - r0) * (c1 - c0);
                bool keep = counts[best] > 0 && (float)counts[best] >= min_ratio * (float)cell;
                mask[((int64_t)b * h + i) * w + j] = keep && is_thing[best] ? 1.0f : 0.0f;
            }
}

enum seg_status seg_mic_feature_distance(struct seg_ag *ag, struct seg_var *f, const struct seg_tensor *fi,
                                         const struct seg_tensor *mask, struct seg_var **loss)
{
    struct seg_tensor *fc = NULL, *mc = NULL, *cnt = NULL, *den = NULL;
    struct seg_var *fiv, *d, *sq, *ss, *dist, *md, *num, *denv;
    TRY(seg_clone(fi, &fc));
    TRY(seg_ag_const(ag, fc, &fiv));
    TRY(seg_ag_sub(ag, f, fiv, &d));
    TRY(seg_ag_unary(ag, SEG_UNARY_SQUARE, d, 0, 0, &sq));
    TRY(seg_ag_reduce(ag, SEG_REDUCE_SUM, sq, 1, true, &ss));
    /* the epsilon keeps the gradient finite where f = fi (iteration 0: the student is the
     * ImageNet model), as torch.norm's backward gives 0 there */
    TRY(seg_ag_affine(ag, ss, 1.0f, 1e-12f, &ss));
    TRY(seg_ag_unary(ag, SEG_UNARY_SQRT, ss, 0, 0, &dist));
    TRY(seg_clone(mask, &mc));
    struct seg_var *mv;
    TRY(seg_ag_const(ag, mc, &mv));
    TRY(seg_ag_mul(ag, dist, mv, &md));
    TRY(seg_ag_sum_all(ag, md, &num));
    TRY(seg_reduce_all(SEG_REDUCE_SUM, mask, &cnt));
    enum seg_status st = seg_unary(SEG_UNARY_CLAMP, cnt, 1.0f, 3.0e38f, &den);
    seg_tensor_free(cnt);
    if (st)
        return st;
    TRY(seg_ag_const(ag, den, &denv));
    return seg_ag_div(ag, num, denv, loss);
}
