/* evaluate.c: prediction and evaluation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "train/evaluate.h"
#include "train/plca.h"

#define TRY(expr) SEG_TRY(expr)

/* Softmax of the logits of x upsampled to (oh, ow), [N, C, oh, ow] on the device. With
 * PLCA's aggregation of the softmax outputs, the aggregated probabilities are upsampled. */
static enum seg_status probs_of(struct seg_model *m, struct seg_ag *ag, struct seg_tensor *x,
                                int64_t oh, int64_t ow, const struct seg_eval_opts *eo,
                                struct seg_tensor **probs)
{
    struct seg_var *xv, *y;
    struct seg_model_out o;
    struct seg_tensor *up = NULL;
    int agg = eo ? eo->aggregation : 0;
    TRY(seg_ag_const(ag, x, &xv));
    if (agg)
        TRY(seg_plca_predict(ag, m, xv, eo->agg_alpha, agg == 2, eo->agg_pred_norm, &y));
    else
        TRY(seg_model_forward(ag, m, xv, false, &o));
    bool corners = !(eo && eo->half_pixel);
    TRY(seg_resize_bilinear(agg ? y->value : o.main->value, oh, ow, corners, &up));
    enum seg_status st = SEG_STATUS_OK;
    if (agg == 2) { /* already probabilities */
        *probs = up;
    } else {
        st = seg_softmax(up, 1, false, probs);
        seg_tensor_free(up);
    }
    seg_ag_reset(ag);
    return st;
}

enum seg_status seg_eval_opts_from_config(const struct seg_config *c, struct seg_eval_opts *o)
{
    const char *agg = seg_config_str(c, "plca.test_aggregation");
    double alpha;
    bool corners;
    TRY(seg_config_bool(c, "eval.align_corners", &corners));
    o->half_pixel = !corners;
    o->aggregation = 0;
    TRY(seg_config_floats(c, "eval.scales", SEG_EVAL_MAX_SCALES, o->scales, &o->nscales));
    if (strcmp(seg_config_str(c, "method.name"), "plca") || !strcmp(agg, "none"))
        return SEG_STATUS_OK;
    if (strcmp(agg, "features") && strcmp(agg, "both"))
        return seg_error(SEG_STATUS_INVALID, "config plca.test_aggregation = '%s': none, features or both", agg);
    TRY(seg_config_float(c, "plca.alpha", &alpha));
    TRY(seg_config_bool(c, "plca.pred_agg_norm", &o->agg_pred_norm));
    o->aggregation = strcmp(agg, "both") ? 1 : 2;
    o->agg_alpha = (float)alpha;
    return SEG_STATUS_OK;
}

enum seg_status seg_predict_batch(struct seg_model *m, struct seg_ag *ag, const float *images, int n,
                                  int h, int w, int out_h, int out_w, bool flip, int32_t *pred,
                                  float *prob_max)
{
    struct seg_eval_opts o = {0};
    o.flip = flip;
    return seg_predict_batch_opts(m, ag, images, n, h, w, out_h, out_w, &o, pred, prob_max);
}

/* The probabilities at out_h x out_w of the host images [n, 3, h, w] seen at `scale` times
 * their size (resized on the device, bilinear with half-pixel centres, as image resizes
 * are), averaged with the mirrored image's under eo->flip. */
static enum seg_status probs_at_scale(struct seg_model *m, struct seg_ag *ag, const float *images, int n,
                                      int h, int w, float scale, int out_h, int out_w,
                                      const struct seg_eval_opts *eo, struct seg_tensor **out)
{
    bool flip = eo && eo->flip;
    struct seg_backend *be = m->be;
    int64_t xs[4] = {n, 3, h, w};
    int64_t sh = scale == 1.0f ? h : lround(h * (double)scale), sw = scale == 1.0f ? w : lround(w * (double)scale);
    struct seg_tensor *x = NULL, *p = NULL, *xf = NULL, *pf = NULL, *pfb = NULL, *sum = NULL;
    *out = NULL;
    if (sh < 1 || sw < 1)
        return seg_error(SEG_STATUS_INVALID, "predict: scale %g of a %dx%d input leaves no pixel", scale, w, h);
    enum seg_status st = seg_tensor_new(be, SEG_DTYPE_F32, 4, xs, &x);
    if (!st) st = seg_tensor_write(x, images, (size_t)n * 3 * h * w * sizeof(float));
    if (!st && flip) { /* the mirrored input, through a permutation-free index flip */
        float *mir = malloc((size_t)n * 3 * h * w * sizeof *mir);
        if (!mir)
            st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "predict: out of host memory");
        for (int64_t r = 0; !st && r < (int64_t)n * 3 * h; r++)
            for (int c = 0; c < w; c++)
                mir[r * w + c] = images[r * w + (w - 1 - c)];
        if (!st) st = seg_tensor_new(be, SEG_DTYPE_F32, 4, xs, &xf);
        if (!st) st = seg_tensor_write(xf, mir, (size_t)n * 3 * h * w * sizeof(float));
        free(mir);
    }
    if (!st && scale != 1.0f) { /* the network input at this scale */
        struct seg_tensor *r = NULL;
        st = seg_resize_bilinear(x, sh, sw, false, &r);
        seg_tensor_free(x);
        x = r;
        if (!st && xf) {
            st = seg_resize_bilinear(xf, sh, sw, false, &r);
            seg_tensor_free(xf);
            xf = r;
        }
    }
    struct seg_tensor *xin = x;
    x = NULL; /* handed to the tape */
    if (!st) st = probs_of(m, ag, xin, out_h, out_w, eo, &p);
    else seg_tensor_free(xin);
    if (!st && flip) {
        struct seg_tensor *xfin = xf;
        xf = NULL;
        st = probs_of(m, ag, xfin, out_h, out_w, eo, &pf);
        if (!st) { /* mirror the probabilities back: host round trip, evaluation only */
            size_t nb = seg_tensor_nbytes(pf);
            float *a = malloc(nb), *b = malloc(nb);
            if (!a || !b)
                st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "predict: out of host memory");
            if (!st) st = seg_tensor_read(pf, a, nb);
            int64_t rows = seg_tensor_numel(pf) / out_w;
            for (int64_t r = 0; !st && r < rows; r++)
                for (int c = 0; c < out_w; c++)
                    b[r * out_w + c] = a[r * out_w + (out_w - 1 - c)];
            if (!st) st = seg_tensor_new_like(pf, &pfb);
            if (!st) st = seg_tensor_write(pfb, b, nb);
            if (!st) st = seg_binary(SEG_BINARY_ADD, p, pfb, &sum);
            if (!st) {
                seg_tensor_free(p);
                p = NULL;
                st = seg_unary(SEG_UNARY_AFFINE, sum, 0.5f, 0.0f, &p);
            }
            free(a);
            free(b);
        }
    }
    if (!st) {
        *out = p;
        p = NULL;
    }
    struct seg_tensor *all[] = {x, p, xf, pf, pfb, sum};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        seg_tensor_free(all[i]);
    return st;
}

enum seg_status seg_predict_batch_opts(struct seg_model *m, struct seg_ag *ag, const float *images,
                                       int n, int h, int w, int out_h, int out_w,
                                       const struct seg_eval_opts *eo, int32_t *pred, float *prob_max)
{
    bool prev = seg_ag_set_grad_enabled(ag, false);
    int nscales = eo && eo->nscales > 0 ? eo->nscales : 1;
    struct seg_tensor *p = NULL, *ps = NULL, *sum = NULL, *cls = NULL, *mx = NULL;
    enum seg_status st = SEG_STATUS_OK;
    if (nscales > SEG_EVAL_MAX_SCALES)
        st = seg_error(SEG_STATUS_INVALID, "predict: %d scales, at most %d", nscales, SEG_EVAL_MAX_SCALES);
    /* multi-scale: the mean of the scales' probabilities, summed in the listed order */
    for (int i = 0; !st && i < nscales; i++) {
        st = probs_at_scale(m, ag, images, n, h, w, eo && eo->nscales > 0 ? eo->scales[i] : 1.0f, out_h, out_w,
                            eo, i ? &ps : &p);
        if (!st && i) {
            st = seg_binary(SEG_BINARY_ADD, p, ps, &sum);
            seg_tensor_free(p);
            seg_tensor_free(ps);
            p = sum;
            ps = sum = NULL;
        }
    }
    if (!st && nscales > 1) {
        struct seg_tensor *mean = NULL;
        st = seg_unary(SEG_UNARY_AFFINE, p, 1.0f / (float)nscales, 0.0f, &mean);
        seg_tensor_free(p);
        p = mean;
    }
    if (!st) st = seg_argreduce(false, p, 1, false, &cls);
    if (!st) st = seg_tensor_read(cls, pred, (size_t)n * out_h * out_w * sizeof(int32_t));
    if (!st && prob_max) {
        st = seg_reduce(SEG_REDUCE_MAX, p, 1, false, &mx);
        if (!st) st = seg_tensor_read(mx, prob_max, (size_t)n * out_h * out_w * sizeof(float));
    }
    if (!st && eo && eo->probs) {
        *eo->probs = p;
        p = NULL;
    }
    struct seg_tensor *all[] = {p, ps, sum, cls, mx};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        seg_tensor_free(all[i]);
    seg_ag_set_grad_enabled(ag, prev);
    return st;
}

enum seg_status seg_evaluate(struct seg_model *m, struct seg_loader *val,
                             const struct seg_eval_opts *o, struct seg_confusion *conf)
{
    struct seg_ag *ag = NULL;
    TRY(seg_ag_create(m->be, &ag));
    enum seg_status st = SEG_STATUS_OK;
    int32_t *pred = NULL;
    size_t cap = 0;
    int done = 0;
    int64_t total = seg_loader_batches(val);
    for (;;) {
        if (o && o->max_batches && done >= o->max_batches)
            break;
        struct seg_data_batch *b = NULL;
        st = seg_loader_next(val, &b);
        if (st || !b)
            break;
        if (!b->labels) {
            seg_loader_release(val, b);
            st = seg_error(SEG_STATUS_INVALID, "evaluate: the validation set has no labels");
            break;
        }
        size_t need = (size_t)b->n * b->lh * b->lw;
        if (need > cap) {
            free(pred);
            pred = malloc(need * sizeof *pred);
            cap = pred ? need : 0;
        }
        if (!pred)
            st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "evaluate: out of host memory");
        if (!st)
            st = seg_predict_batch_opts(m, ag, b->images, b->n, b->h, b->w, b->lh, b->lw, o, pred, NULL);
        if (!st)
            st = seg_confusion_add(conf, pred, b->labels, need);
        seg_loader_release(val, b);
        done++;
        if (o && o->progress) {
            fprintf(stderr, "\r  evaluating %d/%lld", done, (long long)(o->max_batches ? o->max_batches : total));
            fflush(stderr);
        }
        if (st)
            break;
    }
    if (o && o->progress)
        fprintf(stderr, "\n");
    free(pred);
    seg_ag_destroy(ag);
    return st;
}
