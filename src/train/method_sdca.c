/* method_sdca.c: SDCA, semantic distribution-aware contrastive adaptation (Li, Xie et al.;
 * paper: shared/papers/sdca.txt, facts from the released code: methods.md section 2).
 *
 * Semantic distributions (Sec. 3.2.2). Per class k, at two levels (the layer4 / fc7
 * features F, A channels, and the raw classifier logits O, C channels, both at stride 8),
 * a mean mu_k, a DIAGONAL covariance (per-dimension variance, as the released code and its
 * maintainer: BIT-DA/SDCA#1; the paper's full matrices with sdca.covariance = full) and a
 * pixel count n_k. Every iteration, before the loss, the
 * detached source pixels of class k (labels downsampled to the feature map by nearest
 * neighbour, 255 skipped), m_k of them with mean mu'_k and biased variance S'_k, update
 *     mu_k <- (n mu_k + m mu'_k) / (n + m)                                      (Eq. 3)
 *     S_k  <- (n S_k + m S'_k) / (n + m) + n m (mu_k - mu'_k)^2 / (n + m)^2      (Eq. 4, diag)
 *     n_k  <- n_k + m;  absent classes are unchanged.
 * Initialisation (Algorithm 1, line 2): sdca.init = source_pass runs the model (eval mode,
 * no augmentation, data.source_size) once over the whole source set before the first
 * iteration, accumulating the same estimator from zero (semantic_dist_init.py); online
 * starts from zero and lets the first batch set the statistics.
 *
 * Loss (Sec. 3.2.3, the closed-form upper bound of the expected InfoNCE loss with infinitely
 * many positives from N(mu_y, S_y) and negatives from the other classes' distributions):
 *     a_k(q) = q.mu_k / tau + q' S_k q / (2 tau^2)
 *     L(q)   = -log softmax_y(a(q)) + q' S_y q / (2 tau^2)                      (Eq. 14)
 * with the positive class in the denominator (Eq. 14). Gradients flow through q only.
 *     L_feat = mean_{source px} L + mean_{target px} L  (separate means, Eq. 15); L_out the
 *     same on the logits with the output-level statistics (Eq. 16), a term 0 when no pixel
 *     is selected. Target pixels: y = argmax softmax(O_t) where max >= delta (Eq. 5).
 *     Total (Eq. 18): CE(source, logits upsampled) + lambda_lov Lovasz-softmax(source)
 *     + lambda_feat L_feat + lambda_out L_out (+ loss.aux_weight CE(aux) when the model has
 *     an auxiliary classifier; SDCA's own has none: model.multi_level = false).
 *
 * Choices the paper leaves open, taken from the released code (keys in brackets):
 * - tau = 100 [sdca.tau]; delta = 0.9 [sdca.delta]; weights 0.75 / 1 / 1.
 * - q and the class means are L2-normalised per pixel / per class [sdca.normalize]
 *   (the paper's Sec. 3.2.1 puts embeddings on the unit sphere); the statistics are those
 *   of the raw features.
 * - The code also L2-normalises each class variance vector to unit norm; that heuristic
 *   is not in the paper, so it is an option [sdca.var_norm = l2], default none (S as
 *   estimated). With raw variances the variance terms grow as 1/tau^2: on the demo's tiny
 *   model tau <= 2 collapsed or diverged, tau = 10 worked best (its demo setting).
 * - Classes not yet seen (n_k = 0) keep zero statistics and stay in the softmax.
 * - The target mask uses the logits of the same (training-mode) forward, detached.
 * - Counts are F32 on the device (exact up to 2^24 pixels a class, then relative error
 *   ~1e-7 in w = m / (n + m)).
 * - Covariance [sdca.covariance]: diagonal (default, as released: S_k a vector, the
 *   quadratic form sum(q^2 S_k)) or full (the paper's Eq. 4 with the outer product
 *   (mu_k - mu'_k)(mu_k - mu'_k)' and S'_k = D_k D_k' / m, and q' Sigma_k q in Eq. 14),
 *   one A x A matrix a class: 19 x 2048^2 floats = 318 MB at layer4, the update and the
 *   loss each C matmuls of A x A by the pixels (the loss keeps C [N, A, P] products for
 *   backward). Full excludes var_norm = l2; states sdca.feat_cov / sdca.out_cov.
 * Ablation (Tables 5/6) switches: sdca.use_lovasz, sdca.use_feat, sdca.use_out (multi-level);
 * L_ssl is the separate pseudo-label and self-training stage (segda pseudo-label).
 * Source photometric augmentation and class-balanced sampling are data keys
 * (data.source_photometric, data.source_sampling), set in the configs.
 * solver.accumulate = k: the source sub-batches run first, each updating the statistics
 * before its loss (Eq. 3/4 merge exactly, so after the step they are the full batch's up to
 * float rounding, but sub-batch c's source loss sees the statistics of sub-batches 1..c
 * only); then the target sub-batches, whose loss sees the full batch's statistics as in
 * the one-batch step. The Lovasz term and the per-pixel means are per sub-batch (1/k each);
 * the CE weighs each sub-batch by its share of the labelled pixels (exact). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "dist/dist.h"
#include "train/methods.h"
#include "train/sdca.h"

enum { FEAT_MEAN, FEAT_VAR, FEAT_COUNT, OUT_MEAN, OUT_VAR, OUT_COUNT, NSTATE };

struct sdca {
    int  base;        /* index of FEAT_MEAN in t->state */
    bool init_checked;
};

struct sdca_params {
    struct seg_sdca_opts o;
    double delta, lam_lov, lam_feat, lam_out;
    bool use_lov, use_feat, use_out, target, full;
};

static enum seg_status params(const struct seg_config *c, struct sdca_params *p)
{
    double tau;
    const char *vn = seg_config_str(c, "sdca.var_norm"), *cv = seg_config_str(c, "sdca.covariance");
    TRY(seg_config_float(c, "sdca.tau", &tau));
    TRY(seg_config_float(c, "sdca.delta", &p->delta));
    TRY(seg_config_float(c, "sdca.lambda_lov", &p->lam_lov));
    TRY(seg_config_float(c, "sdca.lambda_feat", &p->lam_feat));
    TRY(seg_config_float(c, "sdca.lambda_out", &p->lam_out));
    TRY(seg_config_bool(c, "sdca.use_lovasz", &p->use_lov));
    TRY(seg_config_bool(c, "sdca.use_feat", &p->use_feat));
    TRY(seg_config_bool(c, "sdca.use_out", &p->use_out));
    TRY(seg_config_bool(c, "sdca.target", &p->target));
    TRY(seg_config_bool(c, "sdca.normalize", &p->o.normalize));
    if (!(tau > 0))
        return seg_error(SEG_STATUS_INVALID, "config sdca.tau = %g: must be positive", tau);
    if (!(p->delta >= 0 && p->delta <= 1))
        return seg_error(SEG_STATUS_INVALID, "config sdca.delta = %g: a probability in [0, 1]", p->delta);
    if (strcmp(vn, "none") && strcmp(vn, "l2"))
        return seg_error(SEG_STATUS_INVALID, "config sdca.var_norm = '%s': none or l2", vn);
    if (strcmp(cv, "diagonal") && strcmp(cv, "full"))
        return seg_error(SEG_STATUS_INVALID, "config sdca.covariance = '%s': diagonal or full", cv);
    p->o.tau = (float)tau;
    p->o.var_l2 = !strcmp(vn, "l2");
    p->full = !strcmp(cv, "full");
    if (p->full && p->o.var_l2)
        return seg_error(SEG_STATUS_INVALID, "config sdca.var_norm = l2 is for sdca.covariance = diagonal only");
    return SEG_STATUS_OK;
}

static struct seg_tensor *st_of(struct seg_trainer *t, int i)
{
    return t->state[((struct sdca *)t->priv)->base + i];
}

static enum seg_status zeros(struct seg_trainer *t, int ndim, int64_t a, int64_t b, const char *name)
{
    int64_t shape[3] = {a, b, b}; /* ndim 3: [a, b, b] */
    struct seg_tensor *x = NULL;
    TRY(seg_tensor_new(t->be, SEG_DTYPE_F32, ndim, shape, &x));
    enum seg_status st = seg_fill(x, 0.0f);
    if (st) {
        seg_tensor_free(x);
        return st;
    }
    return seg_trainer_add_state(t, name, x);
}

static enum seg_status sdca_init(struct seg_trainer *t)
{
    struct sdca_params p;
    TRY(params(&t->cfg, &p));
    const char *init = seg_config_str(&t->cfg, "sdca.init");
    if (strcmp(init, "source_pass") && strcmp(init, "online"))
        return seg_error(SEG_STATUS_INVALID, "config sdca.init = '%s': source_pass or online", init);
    struct seg_param *cls = seg_model_find(t->model, "layer6.conv2d_list.0.weight");
    if (!cls)
        return seg_error(SEG_STATUS_INVALID, "sdca: the model has no layer6 classifier");
    int64_t a = cls->var->value->shape[1], c = t->model->cfg.num_classes;
    struct sdca *s = calloc(1, sizeof *s);
    if (!s)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "sdca: out of host memory");
    s->base = t->nstate;
    t->priv = s;
    /* full covariance under other names: resuming across the two forms fails clearly */
    int vd = p.full ? 3 : 2;
    TRY(zeros(t, 2, c, a, "sdca.feat_mean"));
    TRY(zeros(t, vd, c, a, p.full ? "sdca.feat_cov" : "sdca.feat_var"));
    TRY(zeros(t, 1, c, 0, "sdca.feat_count"));
    TRY(zeros(t, 2, c, c, "sdca.out_mean"));
    TRY(zeros(t, vd, c, c, p.full ? "sdca.out_cov" : "sdca.out_var"));
    return zeros(t, 1, c, 0, "sdca.out_count");
}

static void sdca_destroy(struct seg_trainer *t)
{
    free(t->priv);
    t->priv = NULL;
}

/* Both levels' statistics from one forward's detached features and logits. */
static enum seg_status update_both(struct seg_trainer *t, const struct seg_model_out *o,
                                   const struct seg_tensor *labels, const struct seg_collective *coll)
{
    const struct seg_tensor *f = o->features->value;
    struct seg_tensor *oh = NULL;
    TRY(seg_sdca_source_onehot(labels, f->shape[2], f->shape[3], t->model->cfg.num_classes, &oh));
    enum seg_status st = seg_sdca_update(t->ag, f, oh, st_of(t, FEAT_MEAN), st_of(t, FEAT_VAR),
                                         st_of(t, FEAT_COUNT), coll);
    if (!st)
        st = seg_sdca_update(t->ag, o->main->value, oh, st_of(t, OUT_MEAN), st_of(t, OUT_VAR),
                             st_of(t, OUT_COUNT), coll);
    seg_tensor_free(oh);
    return st;
}

/* semantic_dist_init: one pass of the model in eval mode over the source set (plain
 * resize to data.source_size, no flip or photometric augmentation). */
static enum seg_status init_pass(struct seg_trainer *t)
{
    const struct seg_config *c = &t->cfg;
    struct seg_dataset_opts o = {0};
    struct seg_loader_opts lo;
    long batch, workers, seed;
    const char *norm = seg_config_str(c, "data.norm"), *list = seg_config_str(c, "data.source_list");
    int k = seg_dataset_kind_from_name(seg_config_str(c, "data.source"));
    if (k < 0)
        return seg_error(SEG_STATUS_INVALID, "config data.source = '%s': unknown dataset",
                         seg_config_str(c, "data.source"));
    TRY(seg_config_int(c, "data.batch", &batch));
    TRY(seg_config_int(c, "data.workers", &workers));
    TRY(seg_config_int(c, "train.seed", &seed));
    o.kind = (enum seg_dataset_kind)k;
    o.root = seg_config_str(c, "data.source_root");
    o.split = "train";
    o.city = seg_config_str(c, "data.city");
    o.list = list[0] ? list : NULL;
    o.num_classes = t->model->cfg.num_classes;
    o.labels = true;
    seg_loader_opts_defaults(&lo);
    seg_augment_defaults(&lo.aug);
    TRY(seg_config_size(c, "data.source_size", &lo.aug.resize_w, &lo.aug.resize_h));
    lo.batch = (int)batch / t->accumulate; /* no gradient: bounded by the training sub-batch */
    lo.workers = (int)workers;
    lo.prefetch = 2;
    lo.seed = (uint64_t)seed;
    lo.sampling = SEG_SAMPLING_SEQUENTIAL;
    lo.repeat = false;
    lo.norm = !strcmp(norm, "imagenet") ? SEG_NORM_IMAGENET : SEG_NORM_DEEPLAB;
    struct seg_dataset *ds = NULL;
    struct seg_loader *ld = NULL;
    TRY(seg_dataset_open(&o, &ds));
    lo.ds = ds;
    enum seg_status st = seg_loader_create(&lo, &ld);
    if (!st)
        fprintf(stderr, "sdca: initialising the class distributions over %d source images\n", ds->n);
    bool prev = seg_ag_set_grad_enabled(t->ag, false);
    while (!st) {
        struct seg_data_batch *db = NULL;
        st = seg_loader_next(ld, &db);
        if (st || !db)
            break;
        struct seg_batch b = {db->n, db->h, db->w, db->images, db->labels};
        struct seg_var *x;
        struct seg_tensor *labels = NULL;
        struct seg_model_out out;
        st = seg_batch_upload(t, &b, &x, &labels);
        if (!st) st = seg_model_forward_source(t->ag, t->model, x, false, &out);
        if (!st) st = update_both(t, &out, labels, NULL); /* every rank the whole pass */
        seg_tensor_free(labels);
        seg_ag_reset(t->ag);
        seg_loader_release(ld, db);
    }
    seg_ag_set_grad_enabled(t->ag, prev);
    seg_loader_destroy(ld);
    seg_dataset_close(ds);
    return st;
}

/* Runs the initial pass once, unless the statistics hold data (a resumed run). */
static enum seg_status maybe_init(struct seg_trainer *t)
{
    struct sdca *s = t->priv;
    if (s->init_checked)
        return SEG_STATUS_OK;
    s->init_checked = true;
    if (strcmp(seg_config_str(&t->cfg, "sdca.init"), "source_pass"))
        return SEG_STATUS_OK;
    if (!seg_config_str(&t->cfg, "data.source_root")[0]) { /* no dataset (bench step): online */
        fprintf(stderr, "sdca: no data.source_root: class distributions start online\n");
        return SEG_STATUS_OK;
    }
    struct seg_tensor *sum = NULL;
    float n = 0;
    TRY(seg_reduce_all(SEG_REDUCE_SUM, st_of(t, FEAT_COUNT), &sum));
    enum seg_status st = seg_tensor_read(sum, &n, sizeof n);
    seg_tensor_free(sum);
    if (st || n > 0)
        return st;
    st = init_pass(t);
    for (int i = 0; !st && i < t->nstate; i++) /* the ranks' passes agree; rank 0's bits win */
        st = seg_dist_bcast_tensor(t->dist, t->state[i], 0);
    return st;
}

/* lambda * term added to *acc (term recorded under name). */
static enum seg_status add_term(struct seg_trainer *t, struct seg_losses *l, const char *name,
                                struct seg_var *term, double lambda, struct seg_var **acc)
{
    struct seg_var *s;
    TRY(seg_losses_add_var(l, name, term));
    TRY(seg_ag_affine(t->ag, term, (float)lambda, 0.0f, &s));
    if (!*acc) {
        *acc = s;
        return SEG_STATUS_OK;
    }
    return seg_ag_add(t->ag, *acc, s, acc);
}

/* lambda_feat L(features) + lambda_out L(logits) of one domain's selected pixels. */
static enum seg_status contrast(struct seg_trainer *t, const struct sdca_params *p, const struct seg_model_out *o,
                                const struct seg_tensor *oh, bool target, struct seg_losses *l,
                                struct seg_var **acc)
{
    struct seg_var *lf, *lo;
    if (p->use_feat) {
        TRY(seg_sdca_loss(t->ag, o->features, oh, st_of(t, FEAT_MEAN), st_of(t, FEAT_VAR), &p->o, &lf));
        TRY(add_term(t, l, target ? "feat_tgt" : "feat_src", lf, p->lam_feat, acc));
    }
    if (p->use_out) {
        TRY(seg_sdca_loss(t->ag, o->main, oh, st_of(t, OUT_MEAN), st_of(t, OUT_VAR), &p->o, &lo));
        TRY(add_term(t, l, target ? "out_tgt" : "out_src", lo, p->lam_out, acc));
    }
    return SEG_STATUS_OK;
}

/* One source sub-batch: CE weighted by its share of the batch's labelled pixels, the other
 * terms by 1/k (losses->weight says so to the log). */
static enum seg_status source_part(struct seg_trainer *t, const struct sdca_params *p, const struct seg_batch *all,
                                   const struct seg_batch *src, struct seg_losses *losses)
{
    struct seg_var *xs, *loss, *up, *pr, *lov;
    struct seg_tensor *labels = NULL, *oh = NULL;
    struct seg_model_out so = {0};
    double share = 1.0 / t->accumulate, ws = seg_batch_label_share(t, src, all);
    TRY(seg_batch_upload(t, src, &xs, &labels));
    losses->weight = ws;
    enum seg_status st = seg_segmentation_loss(t, xs, labels, &so, &loss, losses);
    losses->weight = share;
    if (!st && ws != share) /* the CE's weight relative to the other terms' 1/k */
        st = seg_ag_affine(t->ag, loss, (float)(ws / share), 0.0f, &loss);
    if (!st && !so.features)
        st = seg_error(SEG_STATUS_INVALID, "sdca: the model gives no features");
    /* the distributions first, from this batch's detached pixels */
    if (!st) st = update_both(t, &so, labels, seg_dist_collective(t->dist));
    if (!st && p->use_lov) {
        st = seg_ag_resize_bilinear(t->ag, so.main, src->h, src->w, true, &up);
        if (!st) st = seg_ag_softmax(t->ag, up, 1, false, &pr);
        if (!st) st = seg_ag_lovasz_softmax(t->ag, pr, labels, 255, &lov);
        if (!st) st = add_term(t, losses, "lovasz", lov, p->lam_lov, &loss);
    }
    const struct seg_tensor *f = so.features ? so.features->value : NULL;
    if (!st && f)
        st = seg_sdca_source_onehot(labels, f->shape[2], f->shape[3], t->model->cfg.num_classes, &oh);
    if (!st) st = contrast(t, p, &so, oh, false, losses, &loss);
    if (!st && share != 1.0) st = seg_ag_affine(t->ag, loss, (float)share, 0.0f, &loss);
    if (!st) st = seg_ag_backward(t->ag, loss);
    seg_tensor_free(labels);
    seg_tensor_free(oh);
    seg_ag_reset(t->ag);
    losses->weight = 1.0;
    return st;
}

static enum seg_status target_part(struct seg_trainer *t, const struct sdca_params *p, const struct seg_batch *tgt,
                                   struct seg_losses *losses)
{
    struct seg_var *xt, *loss = NULL;
    struct seg_tensor *labels = NULL, *oh = NULL, *sel = NULL;
    struct seg_model_out to = {0};
    double share = 1.0 / t->accumulate;
    losses->weight = share;
    TRY(seg_batch_upload(t, tgt, &xt, NULL));
    enum seg_status st = seg_model_forward(t->ag, t->model, xt, true, &to);
    if (!st) st = seg_sdca_target_labels(to.main->value, (float)p->delta, &labels);
    if (!st) st = seg_sdca_onehot(labels, t->model->cfg.num_classes, &oh);
    if (!st) st = seg_reduce_all(SEG_REDUCE_SUM, oh, &sel);
    if (!st) st = seg_losses_add_dev(losses, "tgt_conf", sel, 1.0 / (double)seg_tensor_numel(labels));
    if (!st) st = contrast(t, p, &to, oh, true, losses, &loss);
    if (!st && loss && share != 1.0) st = seg_ag_affine(t->ag, loss, (float)share, 0.0f, &loss);
    if (!st && loss) st = seg_ag_backward(t->ag, loss);
    seg_tensor_free(labels);
    seg_tensor_free(oh);
    seg_tensor_free(sel);
    seg_ag_reset(t->ag);
    losses->weight = 1.0;
    return st;
}

static enum seg_status sdca_step(struct seg_trainer *t, const struct seg_batch *src, const struct seg_batch *tgt,
                                 struct seg_losses *losses)
{
    struct sdca_params p;
    TRY(params(&t->cfg, &p));
    TRY(maybe_init(t));
    seg_model_zero_grad(t->model);
    struct seg_batch part;
    for (int c = 0; c < t->accumulate; c++) {
        seg_batch_part(t, src, c, &part);
        TRY(source_part(t, &p, src, &part, losses));
    }
    for (int c = 0; p.target && (p.use_feat || p.use_out) && c < t->accumulate; c++) {
        seg_batch_part(t, tgt, c, &part);
        TRY(target_part(t, &p, &part, losses));
    }
    TRY(seg_check_finite(t, losses));
    return seg_optim_step(t->opt, (float)t->lr);
}

const struct seg_method seg_method_sdca = {"sdca", sdca_init, sdca_step, sdca_destroy};
