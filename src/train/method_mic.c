/* method_mic.c: the self-training recipe of DAFormer (Hoyer et al., CVPR 2022) with MIC's
 * masked image consistency (Hoyer et al., CVPR 2023), on DeepLab-v2. Every part is a switch
 * (mic.*), so the ablations can be rerun; the values and where they come from are in
 * README.md ("MIC: the modern self-training recipe") and the config files.
 *
 * One iteration, per sub-batch of the source and target batches (DAFormer's
 * mmseg/models/uda/dacs.py order):
 *  1. the mean teacher (aux0) is the student's EMA: a copy at the start, after that
 *     teacher <- a teacher + (1 - a) student with a = min(1 - 1/(iter + 1), mic.alpha), on
 *     the device (parameters only, as DAFormer's _update_ema);
 *  2. the teacher on the target image (grad off, batch-norm mode as the student's training
 *     mode, DAFormer runs it in train mode): logits upsampled to the crop (half-pixel
 *     bilinear, mmseg's align_corners=False), pseudo labels = argmax, weight = the batch's
 *     share of pixels with top probability >= mic.pseudo_threshold, 0 on the first
 *     mic.ignore_top and last mic.ignore_bottom rows;
 *  3. source: CE on the source label (mmseg's mean over all pixels) plus, with
 *     mic.fdist_lambda > 0, lambda x the thing-class feature distance between the student's
 *     layer4 features and those of a frozen copy of the initial network (aux1, eval mode);
 *     backward;
 *  4. DACS class mix (mic.mix): for each source image, half the classes present in the
 *     source batch (255 too: DACS takes torch.unique of the batch's labels) pasted onto the
 *     paired target image; label = source label
 *     there, pseudo label elsewhere; weight 1 there, the pseudo weight elsewhere; CE weighted
 *     by it; backward;
 *  5. MIC (mic.mask): the target image with round(H/b) x round(W/b) blocks (b = mic.mask_block)
 *     zeroed at ratio mic.mask_ratio, CE against the teacher's pseudo labels of the unmasked
 *     image with the same weight, times mic.mask_lambda; backward;
 *  6. one SGD step over the summed gradients (the schedule's linear warm-up is
 *     solver.warmup_iters).
 * Rare-class sampling of the source is data.source_sampling = rare_class.
 * The mixed image and MIC's target image get DACS's strong augmentation (mic.aug: colour
 * jitter in 80% of the iterations, blur in 50%; mic.h says where it differs from kornia's).
 * Not implemented: HRDA's multi-resolution training (README says why). */
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "train/methods.h"
#include "train/mic.h"

struct mic {
    bool   mix, mask, fdist, aug;
    double jitter_p, jitter_s, blur_p;
    enum seg_mic_norm norm;
    double alpha, thr, fd_lambda, fd_ratio, mask_ratio, mask_lambda;
    long   ignore_top, ignore_bottom, mask_block;
    unsigned char things[256];
};

static enum seg_status parse_classes(const char *s, int nclasses, unsigned char *things)
{
    memset(things, 0, 256);
    for (const char *p = s; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v >= nclasses || (*end && *end != ','))
            return seg_error(SEG_STATUS_INVALID, "config mic.fdist_classes = '%s': class ids 0 to %d, comma-separated",
                             s, nclasses - 1);
        things[v] = 1;
        p = *end ? end + 1 : end;
    }
    return SEG_STATUS_OK;
}

/* A frozen copy of the student as the next aux model. */
static enum seg_status frozen_copy(struct seg_trainer *t)
{
    struct seg_model *m;
    TRY(seg_trainer_add_frozen(t, &m));
    return seg_model_copy(m, t->model);
}

static enum seg_status mic_init(struct seg_trainer *t)
{
    struct mic *m = calloc(1, sizeof *m);
    if (!m)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "mic: out of host memory");
    t->priv = m;
    const struct seg_config *c = &t->cfg;
    TRY(seg_config_bool(c, "mic.mix", &m->mix));
    TRY(seg_config_bool(c, "mic.mask", &m->mask));
    TRY(seg_config_float(c, "mic.alpha", &m->alpha));
    TRY(seg_config_float(c, "mic.pseudo_threshold", &m->thr));
    TRY(seg_config_int(c, "mic.ignore_top", &m->ignore_top));
    TRY(seg_config_int(c, "mic.ignore_bottom", &m->ignore_bottom));
    TRY(seg_config_float(c, "mic.fdist_lambda", &m->fd_lambda));
    TRY(seg_config_float(c, "mic.fdist_min_ratio", &m->fd_ratio));
    TRY(seg_config_float(c, "mic.mask_ratio", &m->mask_ratio));
    TRY(seg_config_float(c, "mic.mask_lambda", &m->mask_lambda));
    TRY(seg_config_int(c, "mic.mask_block", &m->mask_block));
    TRY(seg_config_bool(c, "mic.aug", &m->aug));
    TRY(seg_config_float(c, "mic.jitter_p", &m->jitter_p));
    TRY(seg_config_float(c, "mic.jitter_strength", &m->jitter_s));
    TRY(seg_config_float(c, "mic.blur_p", &m->blur_p));
    const char *norm = seg_config_str(c, "data.norm");
    m->norm = !strcmp(norm, "imagenet") ? SEG_MIC_NORM_IMAGENET : SEG_MIC_NORM_DEEPLAB;
    if (!(m->jitter_p >= 0 && m->jitter_p <= 1) || !(m->blur_p >= 0 && m->blur_p <= 1) ||
        !(m->jitter_s >= 0 && m->jitter_s <= 0.5))
        return seg_error(SEG_STATUS_INVALID, "config mic: jitter_p and blur_p in [0, 1], jitter_strength in [0, 0.5]");
    TRY(parse_classes(seg_config_str(c, "mic.fdist_classes"), t->model->cfg.num_classes, m->things));
    struct { const char *key; double v; bool ok; const char *want; } checks[] = {
        {"mic.alpha", m->alpha, m->alpha >= 0 && m->alpha < 1, "0 <= alpha < 1"},
        {"mic.pseudo_threshold", m->thr, m->thr >= 0 && m->thr <= 1, "0 to 1"},
        {"mic.ignore_top", (double)m->ignore_top, m->ignore_top >= 0, ">= 0"},
        {"mic.ignore_bottom", (double)m->ignore_bottom, m->ignore_bottom >= 0, ">= 0"},
        {"mic.fdist_lambda", m->fd_lambda, m->fd_lambda >= 0, ">= 0"},
        {"mic.fdist_min_ratio", m->fd_ratio, m->fd_ratio >= 0 && m->fd_ratio <= 1, "0 to 1"},
        {"mic.mask_ratio", m->mask_ratio, m->mask_ratio >= 0 && m->mask_ratio < 1, "0 <= ratio < 1"},
        {"mic.mask_block", (double)m->mask_block, m->mask_block >= 1, ">= 1 pixel"},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
        if (!checks[i].ok)
            return seg_error(SEG_STATUS_INVALID, "config %s = %g: %s", checks[i].key, checks[i].v, checks[i].want);
    m->fdist = m->fd_lambda > 0;
    TRY(frozen_copy(t)); /* aux0: the mean teacher (the student at iteration 0) */
    if (m->fdist)        /* aux1: the frozen initial (ImageNet) network */
        TRY(frozen_copy(t));
    return SEG_STATUS_OK;
}

static void mic_destroy(struct seg_trainer *t)
{
    free(t->priv);
    t->priv = NULL;
}

/* The teacher's pseudo labels and weight for the target images xt [N, 3, H, W]. */
static enum seg_status teacher_labels(struct seg_trainer *t, const struct mic *m, struct seg_tensor *xt,
                                      struct seg_tensor **pl, struct seg_tensor **pw, struct seg_losses *losses)
{
    struct seg_model_out o;
    struct seg_var *x, *up;
    struct seg_tensor *xc = NULL, *q = NULL;
    bool g = seg_ag_set_grad_enabled(t->ag, false);
    enum seg_status st = seg_clone(xt, &xc);
    if (!st) st = seg_ag_const(t->ag, xc, &x);
    if (!st) st = seg_model_forward(t->ag, t->aux[0], x, true, &o);
    if (!st) st = seg_ag_resize_bilinear(t->ag, o.main, xt->shape[2], xt->shape[3], false, &up);
    if (!st) st = seg_mic_pseudo_labels(up->value, (float)m->thr, (int)m->ignore_top, (int)m->ignore_bottom, pl, pw, &q);
    if (!st) st = seg_losses_add_dev(losses, "pseudo_quality", q, 1.0);
    seg_tensor_free(q);
    seg_ag_set_grad_enabled(t->ag, g);
    seg_ag_reset(t->ag);
    return st;
}

/* The mixing mask [N, 1, H, W] from the host source labels. */
static enum seg_status mix_mask(struct seg_trainer *t, const struct seg_batch *src, const struct seg_tensor *labels,
                                struct seg_tensor **mask)
{
    int64_t n = src->n, hw = (int64_t)src->h * src->w, s[2] = {n, 256};
    float *rows = malloc((size_t)n * 256 * sizeof *rows);
    if (!rows)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "mic: out of host memory");
    seg_mic_choose_classes(src->labels, n, hw, &t->rng, rows);
    struct seg_tensor *table = NULL;
    enum seg_status st = seg_tensor_new(t->be, SEG_DTYPE_F32, 2, s, &table);
    if (!st) st = seg_tensor_write(table, rows, (size_t)n * 256 * sizeof *rows);
    free(rows);
    if (!st) st = seg_mic_class_mask(labels, table, mask);
    seg_tensor_free(table);
    return st;
}

/* Source CE (+ the feature distance), backward. */
static enum seg_status source_pass(struct seg_trainer *t, const struct mic *m, const struct seg_batch *src,
                                   struct seg_tensor *xs, const struct seg_tensor *ys, float share,
                                   struct seg_losses *losses)
{
    struct seg_model_out o, oi;
    struct seg_var *x, *up, *ce, *loss, *fd;
    struct seg_tensor *xc = NULL;
    TRY(seg_clone(xs, &xc));
    TRY(seg_ag_const(t->ag, xc, &x));
    TRY(seg_model_forward_source(t->ag, t->model, x, true, &o));
    TRY(seg_ag_resize_bilinear(t->ag, o.main, xs->shape[2], xs->shape[3], false, &up));
    TRY(seg_mic_weighted_ce(t->ag, up, ys, NULL, &ce));
    TRY(seg_losses_add_var(losses, "seg", ce));
    loss = ce;
    if (m->fdist) {
        bool g = seg_ag_set_grad_enabled(t->ag, false);
        enum seg_status st = seg_model_forward_source(t->ag, t->aux[1], x, false, &oi);
        seg_ag_set_grad_enabled(t->ag, g);
        TRY(st);
        const struct seg_tensor *f = o.features->value;
        int64_t n = f->shape[0], h = f->shape[2], w = f->shape[3], ms[4] = {n, 1, h, w};
        float *mh = malloc((size_t)(n * h * w) * sizeof *mh);
        if (!mh)
            return seg_error(SEG_STATUS_OUT_OF_MEMORY, "mic: out of host memory");
        seg_mic_thing_mask(src->labels, (int)n, src->h, src->w, (int)h, (int)w, (float)m->fd_ratio,
                           t->model->cfg.num_classes, m->things, mh);
        struct seg_tensor *mask = NULL;
        st = seg_tensor_new(t->be, SEG_DTYPE_F32, 4, ms, &mask);
        if (!st) st = seg_tensor_write(mask, mh, (size_t)(n * h * w) * sizeof *mh);
        free(mh);
        if (!st) st = seg_mic_feature_distance(t->ag, o.features, oi.features->value, mask, &fd);
        seg_tensor_free(mask);
        TRY(st);
        TRY(seg_losses_add_var(losses, "feat_dist", fd));
        TRY(seg_ag_affine(t->ag, fd, (float)m->fd_lambda, 0.0f, &fd));
        TRY(seg_ag_add(t->ag, loss, fd, &loss));
    }
    if (share != 1.0f)
        TRY(seg_ag_affine(t->ag, loss, share, 0.0f, &loss));
    return seg_ag_backward(t->ag, loss);
}

/* *x <- DACS's strong augmentation of it (mic.aug), fresh draws. */
static enum seg_status strong_aug(struct seg_trainer *t, const struct mic *m, struct seg_tensor **x)
{
    if (!m->aug)
        return SEG_STATUS_OK;
    struct seg_mic_aug a;
    struct seg_tensor *y = NULL;
    seg_mic_draw_aug(&t->rng, (*x)->shape[0], (float)m->jitter_p, (float)m->jitter_s, (float)m->blur_p, &a);
    TRY(seg_mic_strong_aug(*x, m->norm, &a, &y));
    seg_tensor_free(*x);
    *x = y;
    return SEG_STATUS_OK;
}

/* A weighted CE pass of the student on image x (taken over), backward. */
static enum seg_status target_pass(struct seg_trainer *t, struct seg_tensor *x, const struct seg_tensor *labels,
                                   const struct seg_tensor *weight, float factor, const char *name,
                                   struct seg_losses *losses)
{
    struct seg_model_out o;
    struct seg_var *xv, *up, *ce, *loss;
    int64_t h = x->shape[2], w = x->shape[3];
    TRY(seg_ag_const(t->ag, x, &xv));
    TRY(seg_model_forward(t->ag, t->model, xv, true, &o));
    TRY(seg_ag_resize_bilinear(t->ag, o.main, h, w, false, &up));
    TRY(seg_mic_weighted_ce(t->ag, up, labels, weight, &ce));
    TRY(seg_losses_add_var(losses, name, ce));
    TRY(seg_ag_affine(t->ag, ce, factor, 0.0f, &loss));
    return seg_ag_backward(t->ag, loss);
}

static enum seg_status mic_part(struct seg_trainer *t, const struct mic *m, const struct seg_batch *src,
                                const struct seg_batch *tgt, float share, uint32_t stream, struct seg_losses *losses)
{
    struct seg_var *xsv, *xtv;
    struct seg_tensor *ys = NULL, *xs = NULL, *xt = NULL, *pl = NULL, *pw = NULL;
    struct seg_tensor *mask = NULL, *xm = NULL, *ym = NULL, *ones = NULL, *wm = NULL, *u = NULL, *bm = NULL,
                      *xk = NULL;
    losses->weight = share;
    enum seg_status st = seg_batch_upload(t, src, &xsv, &ys);
    if (!st) st = seg_clone(xsv->value, &xs);
    if (!st) st = seg_batch_upload(t, tgt, &xtv, NULL);
    if (!st) st = seg_clone(xtv->value, &xt);
    seg_ag_reset(t->ag);
    if (!st) st = teacher_labels(t, m, xt, &pl, &pw, losses);
    if (!st) st = source_pass(t, m, src, xs, ys, share, losses);
    seg_ag_reset(t->ag);
    if (!st && m->mix) {
        st = mix_mask(t, src, ys, &mask);
        if (!st) st = seg_mic_mix(mask, xs, xt, &xm);
        if (!st) st = strong_aug(t, m, &xm);
        if (!st) st = seg_mic_mix_labels(mask, ys, pl, &ym);
        if (!st) st = seg_tensor_new_like(pw, &ones);
        if (!st) st = seg_fill(ones, 1.0f);
        if (!st) st = seg_mic_mix(mask, ones, pw, &wm);
        if (!st) {
            st = target_pass(t, xm, ym, wm, share, "mix", losses);
            xm = NULL; /* taken over by the tape */
        }
        seg_ag_reset(t->ag);
    }
    if (!st && m->mask) {
        st = seg_mic_block_uniforms(t->be, xt->shape[0], xt->shape[2], xt->shape[3], (int)m->mask_block,
                                    (uint32_t)(t->rng >> 32) ^ (uint32_t)t->iter, stream, &u);
        if (!st) st = seg_mic_block_mask(u, (float)m->mask_ratio, xt->shape[2], xt->shape[3], &bm);
        /* MIC's 'separatetrgaug': the target batch with its own strong augmentation, masked */
        if (!st) st = strong_aug(t, m, &xt);
        if (!st) st = seg_binary(SEG_BINARY_MUL, xt, bm, &xk);
        if (!st) {
            st = target_pass(t, xk, pl, pw, share * (float)m->mask_lambda, "masked", losses);
            xk = NULL;
        }
        seg_ag_reset(t->ag);
    }
    struct seg_tensor *tmp[] = {ys, xs, xt, pl, pw, mask, xm, ym, ones, wm, u, bm, xk};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++)
        seg_tensor_free(tmp[i]);
    losses->weight = 1.0;
    return st;
}

static enum seg_status mic_step(struct seg_trainer *t, const struct seg_batch *src, const struct seg_batch *tgt,
                                struct seg_losses *losses)
{
    const struct mic *m = t->priv;
    if (!src->labels)
        return seg_error(SEG_STATUS_INVALID, "mic: the source batch has no labels");
    /* iteration 0: the teacher is the student still (copied at init, or broadcast from rank 0
     * with it) */
    if (t->iter > 0)
        TRY(seg_mic_ema_update(t->aux[0], t->model, (float)seg_mic_ema_alpha(t->iter, m->alpha)));
    /* the host stream that draws the classes and the block masks moves on each step */
    t->rng = t->rng * 6364136223846793005ull + 1442695040888963407ull;
    seg_model_zero_grad(t->model);
    float share = 1.0f / (float)t->accumulate;
    for (int c = 0; c < t->accumulate; c++) {
        struct seg_batch sp, tp;
        seg_batch_part(t, src, c, &sp);
        seg_batch_part(t, tgt, c, &tp);
        TRY(mic_part(t, m, &sp, &tp, share, (uint32_t)c, losses));
    }
    TRY(seg_check_finite(t, losses));
    return seg_optim_step(t->opt, (float)t->lr);
}

const struct seg_method seg_method_mic = {"mic", mic_init, mic_step, mic_destroy};
