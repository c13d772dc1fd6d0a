/* losses_pixintra.c: PixIntraDA's split, thresholds and loss terms (src/train/pixintra.h)
 * against tests/loss_ref/pixintra.py. */
#include <stdlib.h>
#include <string.h>

#include "losses.h"
#include "train/pixintra.h"



/* The number of set pixels of mask, as the device value [1] the loss functions take. */
static enum seg_status count(const struct seg_tensor *mask, struct seg_tensor **n)
{
    return seg_reduce_all(SEG_REDUCE_SUM, mask, n);
}

/* Eq. 2, 3, 7 and the partial CE of Eq. 5 on the resulting pseudo labels. */
static enum seg_status split_seg(struct lt_ctx *c, struct seg_var **loss)
{
    const struct seg_tensor *y = lt_tensor(c, "probs"), *t = lt_tensor(c, "t");
    struct seg_var *x = lt_var(c, "logits");
    NEED(y && t && x);
    struct seg_tensor *thr = NULL, *labels = NULL, *hard = NULL, *z = NULL;
    TRY(seg_unary(SEG_UNARY_AFFINE, t, (float)lt_param(c, "alpha", 1), 0.0f, &thr));
    enum seg_status st = seg_pixintra_split(y, thr, &labels, &hard, &z);
    seg_tensor_free(thr);
    if (!st) st = seg_ag_cross_entropy(lt_ag(c), x, labels, NULL, 255, loss);
    if (!st) st = lt_output_tensor(c, "labels", labels);
    if (!st) st = lt_output_tensor(c, "hard", hard);
    if (!st) st = lt_output_tensor(c, "z", z);
    seg_tensor_free(labels);
    seg_tensor_free(hard);
    seg_tensor_free(z);
    return st;
}

/* t_k from the device histogram, Prop (Eq. 4); loss = sum_k w_k t_k. */
static enum seg_status thresholds(struct lt_ctx *c, struct seg_var **loss)
{
    const struct seg_tensor *y = lt_tensor(c, "probs");
    struct seg_var *w = lt_var(c, "w");
    NEED(y && w);
    int bins = (int)lt_param(c, "bins", 1000), nc = (int)y->shape[1];
    double cap = lt_param(c, "cap", 0.9), alpha = lt_param(c, "alpha", 1);
    float easy = 0;
    struct seg_tensor *easy_t = NULL;
    struct seg_tensor *h = NULL, *tt = NULL, *ta = NULL;
    float *hf = malloc((size_t)nc * bins * sizeof *hf), thr[64], thra[64];
    double *hd = malloc((size_t)nc * bins * sizeof *hd);
    enum seg_status st = !hf || !hd || nc > 64 ? SEG_STATUS_INVALID : seg_pixintra_conf_hist(y, bins, &h);
    if (!st) st = seg_tensor_read(h, hf, (size_t)nc * bins * sizeof *hf);
    for (int i = 0; !st && i < nc * bins; i++)
        hd[i] = hf[i];
    if (!st) seg_pixintra_thresholds(hd, nc, bins, cap, thr);
    free(hf);
    free(hd);
    seg_tensor_free(h);
    int64_t n = nc;
    for (int k = 0; k < nc; k++)
        thra[k] = (float)(alpha * thr[k]);
    if (!st) st = seg_tensor_new(y->be, SEG_DTYPE_F32, 1, &n, &ta);
    if (!st) st = seg_tensor_write(ta, thra, (size_t)nc * sizeof(float));
    if (!st) st = seg_pixintra_easy_count(y, ta, &easy_t);
    if (!st) st = seg_tensor_read(easy_t, &easy, sizeof easy);
    seg_tensor_free(easy_t);
    seg_tensor_free(ta);
    if (!st) st = seg_tensor_new(y->be, SEG_DTYPE_F32, 1, &n, &tt);
    if (!st) st = seg_tensor_write(tt, thr, (size_t)nc * sizeof(float));
    struct seg_var *tv, *prod, *pv;
    if (st) {
        seg_tensor_free(tt);
        return st;
    }
    TRY(seg_ag_const(lt_ag(c), tt, &tv));
    TRY(lt_output(c, "thr", tv));
    TRY(seg_ag_mul(lt_ag(c), w, tv, &prod));
    TRY(seg_ag_sum_all(lt_ag(c), prod, loss));
    struct seg_tensor *pt = NULL;
    int64_t one = 1;
    float prop = (float)(easy / ((double)seg_tensor_numel(y) / nc));
    TRY(seg_tensor_new(y->be, SEG_DTYPE_F32, 1, &one, &pt));
    st = seg_tensor_write(pt, &prop, sizeof prop);
    if (st) {
        seg_tensor_free(pt);
        return st;
    }
    TRY(seg_ag_const(lt_ag(c), pt, &pv));
    return lt_output(c, "prop", pv);
}

static enum seg_status kld(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *x = lt_var(c, "logits");
    const struct seg_tensor *e = lt_tensor(c, "easy");
    struct seg_tensor *n = NULL;
    NEED(x && e);
    TRY(count(e, &n));
    enum seg_status st = seg_pixintra_kld(lt_ag(c), x, e, n, loss);
    seg_tensor_free(n);
    return st;
}

static enum seg_status pla(struct lt_ctx *c, struct seg_var **loss, bool g)
{
    struct seg_var *d = lt_var(c, "d");
    const struct seg_tensor *m = lt_tensor(c, "hard");
    struct seg_tensor *nh = NULL, *ne = NULL;
    NEED(d && m);
    TRY(count(m, &nh));
    bool bce = !strcmp(lt_param_str(c, "form", "sum"), "bce");
    enum seg_status st = seg_unary(SEG_UNARY_AFFINE, nh, -1.0f, (float)seg_tensor_numel(m), &ne);
    if (!st)
        st = g ? seg_pixintra_pla_g(lt_ag(c), d, m, nh, bce, loss) : seg_pixintra_pla_d(lt_ag(c), d, m, nh, ne, bce, loss);
    seg_tensor_free(nh);
    seg_tensor_free(ne);
    return st;
}

static enum seg_status pla_g(struct lt_ctx *c, struct seg_var **loss) { return pla(c, loss, true); }
static enum seg_status pla_d(struct lt_ctx *c, struct seg_var **loss) { return pla(c, loss, false); }

static enum seg_status cts_d(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *d = lt_var(c, "d");
    const struct seg_tensor *z = lt_tensor(c, "z");
    NEED(d && z);
    return seg_pixintra_cts_d(lt_ag(c), d, z, lt_param(c, "sigmoid", 1) != 0, loss);
}

static enum seg_status cts_g(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *d = lt_var(c, "d");
    const struct seg_tensor *m = lt_tensor(c, "hard");
    NEED(d && m);
    return seg_pixintra_cts_g(lt_ag(c), d, m, lt_param(c, "sigmoid", 1) != 0, loss);
}

const struct lt_case lt_cases_pixintra[] = {
    {"pixintra_split_seg", split_seg},
    {"pixintra_thresholds", thresholds},
    {"pixintra_kld", kld},
    {"pixintra_pla_sum_g", pla_g},
    {"pixintra_pla_sum_d", pla_d},
    {"pixintra_pla_bce_g", pla_g},
    {"pixintra_pla_bce_d", pla_d},
    {"pixintra_cts_d", cts_d},
    {"pixintra_cts_d_raw", cts_d},
    {"pixintra_cts_g", cts_g},
    {NULL, NULL},
};
