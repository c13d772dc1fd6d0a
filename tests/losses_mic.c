/* losses_mic.c: the DAFormer / MIC recipe's pieces (src/train/mic.h) against
 * tests/loss_ref/mic.py. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "losses.h"
#include "train/mic.h"

/* *loss = the sum of x's elements (a constant: these cases have no gradient). */
static enum seg_status sum_loss(struct lt_ctx *c, const struct seg_tensor *x, struct seg_var **loss)
{
    struct seg_tensor *s = NULL;
    TRY(seg_reduce_all(SEG_REDUCE_SUM, x, &s));
    return seg_ag_const(lt_ag(c), s, loss);
}

static enum seg_status ema(struct lt_ctx *c, struct seg_var **loss)
{
    const struct seg_tensor *t = lt_tensor(c, "teacher"), *s = lt_tensor(c, "student");
    NEED(t && s);
    double a = seg_mic_ema_alpha((int64_t)lt_param(c, "iter", 0), lt_param(c, "alpha_max", 0.999));
    if (!(fabs(a - lt_param(c, "alpha", -1)) < 1e-12))
        return seg_error(SEG_STATUS_INVALID, "mic_ema: momentum %.12g, reference %.12g", a, lt_param(c, "alpha", -1));
    struct seg_tensor *tc = NULL;
    TRY(seg_clone(t, &tc));
    enum seg_status st = seg_mic_ema_tensor(tc, s, (float)a);
    if (!st) st = sum_loss(c, tc, loss);
    if (!st) st = lt_output_tensor(c, "teacher", tc);
    seg_tensor_free(tc);
    return st;
}

static enum seg_status pseudo(struct lt_ctx *c, struct seg_var **loss)
{
    const struct seg_tensor *x = lt_tensor(c, "logits");
    NEED(x);
    struct seg_tensor *lab = NULL, *w = NULL, *q = NULL;
    TRY(seg_mic_pseudo_labels(x, (float)lt_param(c, "thr", 0), (int)lt_param(c, "top", 0),
                              (int)lt_param(c, "bottom", 0), &lab, &w, &q));
    enum seg_status st = sum_loss(c, w, loss);
    if (!st) st = lt_output_tensor(c, "labels", lab);
    if (!st) st = lt_output_tensor(c, "weight", w);
    if (!st) st = lt_output_tensor(c, "quality", q);
    seg_tensor_free(lab);
    seg_tensor_free(w);
    seg_tensor_free(q);
    return st;
}

/* The host class choice: for each image, (k + k % 2) / 2 of the k values present in the
 * batch, each present; over repeated draws every present value is chosen sometimes. */
static enum seg_status check_choice(const struct seg_tensor *labels)
{
    int64_t n = labels->shape[0], hw = labels->shape[1] * labels->shape[2];
    int32_t *y = malloc((size_t)(n * hw) * sizeof *y);
    float *rows = malloc((size_t)n * 256 * sizeof *rows);
    if (!y || !rows) {
        free(y);
        free(rows);
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "mic_class_mix: out of host memory");
    }
    enum seg_status st = seg_tensor_read(labels, y, (size_t)(n * hw) * sizeof *y);
    bool present[256] = {false}, ever[256] = {false};
    int np = 0;
    for (int64_t p = 0; p < n * hw; p++)
        present[y[p] & 255] = true;
    for (int v = 0; v < 256; v++)
        np += present[v];
    uint64_t rng = 12345;
    for (int rep = 0; !st && rep < 20; rep++) {
        seg_mic_choose_classes(y, n, hw, &rng, rows);
        for (int64_t i = 0; !st && i < n; i++) {
            int chosen = 0;
            for (int v = 0; v < 256; v++) {
                bool c = rows[i * 256 + v] != 0.0f;
                chosen += c;
                ever[v] |= c;
                if (c && !present[v])
                    st = seg_error(SEG_STATUS_INVALID, "mic_class_mix: value %d chosen but absent", v);
            }
            if (!st && chosen != (np + np % 2) / 2)
                st = seg_error(SEG_STATUS_INVALID, "mic_class_mix: %d of %d values chosen", chosen, np);
        }
    }
    for (int v = 0; !st && v < 256; v++)
        if (present[v] && !ever[v])
            st = seg_error(SEG_STATUS_INVALID, "mic_class_mix: value %d never chosen in 20 draws", v);
    free(y);
    free(rows);
    return st;
}

static enum seg_status class_mix(struct lt_ctx *c, struct seg_var **loss)
{
    const struct seg_tensor *ys = lt_tensor(c, "src_labels"), *table = lt_tensor(c, "table"), *xs = lt_tensor(c, "xs"),
                            *xt = lt_tensor(c, "xt"), *pl = lt_tensor(c, "pl"), *pw = lt_tensor(c, "pw");
    NEED(ys && table && xs && xt && pl && pw);
    TRY(check_choice(ys));
    struct seg_tensor *mask = NULL, *img = NULL, *lab = NULL, *ones = NULL, *w = NULL, *a = NULL, *b = NULL,
                      *s = NULL;
    enum seg_status st = seg_mic_class_mask(ys, table, &mask);
    if (!st) st = seg_mic_mix(mask, xs, xt, &img);
    if (!st) st = seg_mic_mix_labels(mask, ys, pl, &lab);
    if (!st) st = seg_tensor_new_like(pw, &ones);
    if (!st) st = seg_fill(ones, 1.0f);
    if (!st) st = seg_mic_mix(mask, ones, pw, &w);
    if (!st) st = seg_reduce_all(SEG_REDUCE_SUM, img, &a);
    if (!st) st = seg_reduce_all(SEG_REDUCE_SUM, w, &b);
    if (!st) st = seg_binary(SEG_BINARY_ADD, a, b, &s);
    if (!st) st = seg_ag_const(lt_ag(c), s, loss);
    else seg_tensor_free(s);
    struct seg_tensor *outs[] = {mask, img, lab, w};
    const char *names[] = {"mask", "image", "labels", "weight"};
    for (int i = 0; i < 4; i++) {
        if (!st) st = lt_output_tensor(c, names[i], outs[i]);
        seg_tensor_free(outs[i]);
    }
    seg_tensor_free(ones);
    seg_tensor_free(a);
    seg_tensor_free(b);
    return st;
}

static enum seg_status block_mask(struct lt_ctx *c, struct seg_var **loss)
{
    const struct seg_tensor *u = lt_tensor(c, "u");
    NEED(u);
    int64_t h = (int64_t)lt_param(c, "h", 0), w = (int64_t)lt_param(c, "w", 0);
    /* the generator's block grid for this size and a block of 7: the reference's 3 x 4 */
    struct seg_tensor *g = NULL, *m = NULL;
    TRY(seg_mic_block_uniforms(u->be, 2, h, w, 7, 1, 2, &g));
    bool grid = g->shape[2] == u->shape[2] && g->shape[3] == u->shape[3];
    seg_tensor_free(g);
    if (!grid)
        return seg_error(SEG_STATUS_INVALID, "mic_block_mask: block grid differs from round(h / block)");
    TRY(seg_mic_block_mask(u, (float)lt_param(c, "ratio", 0), h, w, &m));
    enum seg_status st = sum_loss(c, m, loss);
    if (!st) st = lt_output_tensor(c, "mask", m);
    seg_tensor_free(m);
    return st;
}

static enum seg_status weighted_ce(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *x = lt_var(c, "logits");
    const struct seg_tensor *y = lt_tensor(c, "labels"), *w = lt_tensor(c, "weight");
    NEED(x && y && w);
    return seg_mic_weighted_ce(lt_ag(c), x, y, w, loss);
}

static enum seg_status feat_dist(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *f = lt_var(c, "features");
    const struct seg_tensor *fi = lt_tensor(c, "imnet"), *y = lt_tensor(c, "labels");
    NEED(f && fi && y);
    int n = (int)y->shape[0], H = (int)y->shape[1], W = (int)y->shape[2];
    int h = (int)f->value->shape[2], w = (int)f->value->shape[3], classes = (int)lt_param(c, "classes", 0);
    unsigned char things[256] = {0};
    for (const char *p = lt_param_str(c, "things", ""); *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 255)
            break;
        things[v] = 1;
        p = *end ? end + 1 : end;
    }
    int32_t *yh = malloc((size_t)n * H * W * sizeof *yh);
    float *mh = malloc((size_t)n * h * w * sizeof *mh);
    enum seg_status st = !yh || !mh ? seg_error(SEG_STATUS_OUT_OF_MEMORY, "mic_feat_dist: out of host memory")
                                    : seg_tensor_read(y, yh, (size_t)n * H * W * sizeof *yh);
    if (!st)
        seg_mic_thing_mask(yh, n, H, W, h, w, (float)lt_param(c, "min_ratio", 0), classes, things, mh);
    struct seg_tensor *mask = NULL;
    int64_t ms[4] = {n, 1, h, w};
    if (!st) st = seg_tensor_new(y->be, SEG_DTYPE_F32, 4, ms, &mask);
    if (!st) st = seg_tensor_write(mask, mh, (size_t)n * h * w * sizeof *mh);
    free(yh);
    free(mh);
    if (!st) st = seg_mic_feature_distance(lt_ag(c), f, fi, mask, loss);
    if (!st) st = lt_output_tensor(c, "mask", mask);
    seg_tensor_free(mask);
    return st;
}

/* The strong augmentation with the reference's draws; the kernel sizes as seg_mic_blur_taps. */
static enum seg_status strong_aug(struct lt_ctx *c, struct seg_var **loss)
{
    const struct seg_tensor *x = lt_tensor(c, "x");
    NEED(x);
    struct seg_mic_aug a = {.jitter = true, .blur = true, .n = 2};
    char key[16];
    for (int i = 0; i < 2; i++) {
        const char *names[5] = {"b", "c", "s", "h", "sigma"};
        float *dst[5] = {&a.brightness[i], &a.contrast[i], &a.saturation[i], &a.hue[i], &a.sigma[i]};
        for (int k = 0; k < 5; k++) {
            snprintf(key, sizeof key, "%s%d", names[k], i);
            *dst[k] = (float)lt_param(c, key, 0);
        }
        snprintf(key, sizeof key, "taps%d", i);
        if (seg_mic_blur_taps(x->shape[2], a.sigma[i]) != (int)lt_param(c, key, -1))
            return seg_error(SEG_STATUS_INVALID, "mic_strong_aug: %d taps for sigma %g, reference %d",
                             seg_mic_blur_taps(x->shape[2], a.sigma[i]), a.sigma[i], (int)lt_param(c, key, -1));
    }
    enum seg_mic_norm norm = !strcmp(lt_param_str(c, "norm", ""), "imagenet") ? SEG_MIC_NORM_IMAGENET
                                                                               : SEG_MIC_NORM_DEEPLAB;
    struct seg_tensor *y = NULL;
    TRY(seg_mic_strong_aug(x, norm, &a, &y));
    enum seg_status st = sum_loss(c, y, loss);
    if (!st) st = lt_output_tensor(c, "image", y);
    seg_tensor_free(y);
    return st;
}

const struct lt_case lt_cases_mic[] = {
    {"mic_ema", ema},
    {"mic_pseudo", pseudo},
    {"mic_class_mix", class_mix},
    {"mic_block_mask", block_mask},
    {"mic_weighted_ce", weighted_ce},
    {"mic_feat_dist", feat_dist},
    {"mic_strong_aug_imagenet", strong_aug},
    {"mic_strong_aug_deeplab", strong_aug},
    {NULL, NULL},
};
