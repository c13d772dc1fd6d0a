/* method_bida.c: BiDA, bi-directional pixel-prototype contrastive learning with dynamic
 * pseudo labels (Lee et al., ECCV 2022, "Bi-directional Contrastive Learning for Domain
 * Adaptive Semantic Segmentation"; facts in methods.md section 3). The paper's behaviour
 * is the default; the released code (cvlab-yonsei/DASS) is reachable through the keys.
 *
 * One iteration (stage "adapt"), a source batch (x_S, y_S) and a target batch x_T:
 *  - features f_S, f_T [N, D, h*w] at stride 8 (bida.feature: layer4, the paper's
 *    "pixel-level features" of the encoder; or aspp, the released code's concatenation of
 *    the main ASPP's rate outputs, 4C channels with the four default model.aspp_rates),
 *    labels taken to the feature grid by nearest resizing (as the released code);
 *  - eq. (1) prototypes by masked average pooling over the batch:
 *      rho_S(c) = sum_p f_S(p) y_S(p,c) / sum_p y_S(p,c),  rho_T likewise with y_T;
 *  - eq. (4)-(5) EMA prototypes mu_S, mu_T (momentum lambda = bida.ema; a class's first
 *    prototype initialises its mu); eq. (6)-(7) calibration xi = mu_T - mu_S,
 *    rho_S->T = rho_S + xi (classes whose two mu exist; bida.calibrate);
 *  - eq. (8)-(9) dynamic labels: y_D(p) = argmax_c s(f_T(p), rho_S->T(c)) where that cosine
 *    exceeds T = bida.dyn_threshold (bida.dynamic);
 *  - static labels y_F (CBST [58]): a frozen teacher, the model at the start of each round
 *    of bida.static_every iterations (round 0: the initial model, i.e. the source-only
 *    checkpoint, as the maintainers say for the released code), predicts the target; class
 *    k keeps its pixels whose confidence reaches the CBST threshold, the confidence at the
 *    top bida.static_portion of the pixels predicted k. The threshold is estimated online:
 *    the mean over the round's batches of each batch's CBST quantile (the paper computes it
 *    over the whole target set every 10k iterations; `segda pseudo-label` does that offline,
 *    `--mode dass` with the released rule, and bida.static_source = target_labels trains on
 *    such a folder, data.target_labels, the labels cropped and flipped with their images);
 *    with bida.spatial_prior, CBST's spatial priors ([58]'s CBST-SP): the teacher's
 *    probabilities are weighted by q(c, p) = (n(c, p) + 1) / (max_p n(c, p) + 1), n the
 *    counts of source labels of class c at each position of a bida.prior_grid grid (positions
 *    relative to the image), accumulated over the source batches trained on so far (so the
 *    prior sees the same crops and flips as the target batches), and the CBST thresholds and
 *    labels are taken on the weighted confidences;
 *  - eq. (10) hybrid labels y_T: y_D where defined, else y_F;
 *  - eq. (2) FCL = CE over classes of s(f_T(p), rho_S(c)) / tau against y_T, eq. (3)
 *    BCL = the same for s(f_S(p), rho_T(c)) against y_S; cosine similarity, tau = bida.tau;
 *  - eq. (11)-(12): L = l_seg_s CE_S + l_seg_t CE_T(y_F) + l_ent_s Ent_S + l_ent_t Ent_T
 *    + l_fc FCL + l_bc BCL; one SGD step.
 * Stage "distill" (the paper's self-distillation "following ProDA [52] and SEED [11]";
 * methods.md 3.3): a student (model.init) learns from the adapted teacher
 * (bida.distill_teacher): CE_S + CE_T on the teacher's hard labels with confidence >=
 * bida.distill_threshold + bida.distill_kl * KL(p_teacher || p_student) on the target.
 *
 * Choices the sources leave open (the supplement with the paper's values is not
 * available), all keys:
 *  - tau = 0.1 and l_fc = l_bc = 0.2, l_seg_s = 1, l_seg_t = 0.3, l_ent_s = 0.4,
 *    l_ent_t = 0.12: the released code's (methods.md 3.1); the entropy is the true one
 *    (the code applies softmax twice: bida.entropy_double_softmax), over the stride-8
 *    logits (the code's are upsampled to the crop inside the model);
 *  - lambda = 0.99, T = 0.8 (cosine; the code's unused variant thresholds softmax(10 cos)
 *    at 0.8): not given anywhere;
 *  - prototypes pool every image of the batch (the code pairs single images); gradients
 *    flow through the prototypes (nothing says they are detached); a class without a
 *    prototype is left out of the softmax and its pixels are skipped (the code sets its
 *    cosine to -1 and zero-weights classes absent from either image);
 *  - the contrastive CE is a mean over labelled feature-grid pixels (eq. 2-3 write a sum;
 *    the code upsamples the cosine map to the crop and takes the mean);
 *  - ||f|| = sqrt(sum f^2 + 1e-8), so an all-zero feature (ReLU) has cosine 0;
 *  - CE_T uses the static labels (bida.seg_t_labels = static | hybrid | none), as the
 *    paper's baseline and the released code; CBST portion 0.2 (CBST's first round; the
 *    code's cb_prop is 0.1);
 *  - distillation: the KL is taken at stride 8 on the same (weakly augmented) target
 *    batch; ProDA uses strongly augmented images at 1/4 resolution and a SimCLR student
 *    init, neither of which this data pipeline provides;
 *  - the spatial prior (off by default: the released code has none, and the paper names
 *    only "the method of [58]", which proposes CBST with and without it): [58] counts the
 *    source labels over the whole source set at full resolution and smooths them with a
 *    Gaussian; here the counts grow online on a coarse grid (64x32 by default) and the
 *    bilinear upsampling is the smoothing; its normalisation (each class's peak is 1, +1
 *    counts) is our choice: a class is never penalised where the source shows it most, and
 *    is damped where the source never shows it.
 * The released code's domain-specific stem (model.target_stem = true): target images run
 * through their own conv1/bn1/layer1 (layer2-4 and the heads shared), started from the
 * shared stem of model.init; source passes use the shared stem, the teacher and every
 * inference on the target the target one.
 * solver.accumulate = k: each sub-batch is one pass of the above with every term weighed
 * 1/k (CE too, unlike source_only's labelled-pixel share): its prototypes rho_S, rho_T
 * pool the sub-batch only (the gradient through them does not split), the EMA prototypes
 * take k updates a step, the CBST threshold mean counts each sub-batch as a batch, and the
 * spatial prior counts add up exactly; the teacher is copied at the first sub-batch of a
 * round. So BiDA's accumulated step is not the full batch's, even with frozen BN.
 * The released schedule (trainer/damnet_trainer.py): 10 rounds, a new SGD each round, poly
 * restarted per round over 6/5 of it, the base rate halved after each: solver.rounds = 10,
 * solver.round_lr_factor = 0.5, solver.round_horizon = 1.2 (the trainer's, any method).
 * Ablation (paper Table 3): L_base = bida.lambda_fc=0 bida.lambda_bc=0 bida.dynamic=false;
 * +FCL: bida.lambda_fc; +BCL: bida.lambda_bc; +y_D w/o cal.: bida.dynamic=true
 * bida.calibrate=false; w/ cal.: bida.calibrate=true. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/bida.h"
#include "train/methods.h"

enum bida_seg_t { SEG_T_STATIC, SEG_T_HYBRID, SEG_T_NONE };

struct bida {
    bool   distill, aspp_feature, dynamic, calibrate, use_static, spatial_prior, ent_double;
    bool   static_loaded; /* y_F read with the target batch (data.target_labels), not from the teacher */
    int    prior_w, prior_h; /* the spatial prior's grid */
    double lambda_fc, lambda_bc, tau, ema, dyn_thr, portion;
    double l_seg_s, l_seg_t, l_ent_s, l_ent_t;
    double distill_thr, distill_kl;
    long   static_every;
    enum bida_seg_t seg_t;
    /* method state (owned by the trainer): mu_S, mu_T [C, D]; seen [2, C]; the round's
     * CBST threshold sums (row 0) and counts (row 1) [2, C] */
    struct seg_tensor *mu_s, *mu_t, *seen, *thr_acc;
    struct seg_tensor *prior; /* [C, prior_h * prior_w] source label counts (CBST-SP) */
};

static enum seg_status state_zeros(struct seg_trainer *t, const char *name, int64_t a, int64_t b,
                                   struct seg_tensor **out)
{
    int64_t s[2] = {a, b};
    TRY(seg_tensor_new(t->be, SEG_DTYPE_F32, 2, s, out));
    enum seg_status st = seg_fill(*out, 0.0f);
    if (st) {
        seg_tensor_free(*out);
        return st;
    }
    return seg_trainer_add_state(t, name, *out);
}

/* Channels of the contrast feature: one small forward in eval mode, without gradients. */
static enum seg_status feature_dim(struct seg_trainer *t, bool aspp, int64_t *d)
{
    int64_t xs[4] = {1, 3, 33, 33};
    struct seg_tensor *x = NULL;
    struct seg_var *xv;
    struct seg_model_out o;
    TRY(seg_tensor_new(t->be, SEG_DTYPE_F32, 4, xs, &x));
    enum seg_status st = seg_fill(x, 0.0f);
    if (st) {
        seg_tensor_free(x);
        return st;
    }
    bool g = seg_ag_set_grad_enabled(t->ag, false);
    st = seg_ag_const(t->ag, x, &xv);
    if (!st) st = seg_model_forward(t->ag, t->model, xv, false, &o);
    if (!st)
        *d = aspp ? seg_aspp_rates_of(&t->model->cfg, (int[SEG_ASPP_MAX]){0}) * o.main->value->shape[1]
                  : o.features->value->shape[1];
    seg_ag_set_grad_enabled(t->ag, g);
    seg_ag_reset(t->ag);
    return st;
}

static enum seg_status bida_init(struct seg_trainer *t)
{
    struct bida *b = calloc(1, sizeof *b);
    if (!b)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "bida: out of host memory");
    t->priv = b;
    const struct seg_config *c = &t->cfg;
    const char *stage = seg_config_str(c, "bida.stage"), *feat = seg_config_str(c, "bida.feature");
    const char *segt = seg_config_str(c, "bida.seg_t_labels"), *ssrc = seg_config_str(c, "bida.static_source");
    if (strcmp(stage, "adapt") && strcmp(stage, "distill"))
        return seg_error(SEG_STATUS_INVALID, "config bida.stage = '%s': adapt or distill", stage);
    if (strcmp(feat, "layer4") && strcmp(feat, "aspp"))
        return seg_error(SEG_STATUS_INVALID, "config bida.feature = '%s': layer4 or aspp", feat);
    b->distill = !strcmp(stage, "distill");
    b->aspp_feature = !strcmp(feat, "aspp");
    if (!strcmp(segt, "static"))
        b->seg_t = SEG_T_STATIC;
    else if (!strcmp(segt, "hybrid"))
        b->seg_t = SEG_T_HYBRID;
    else if (!strcmp(segt, "none"))
        b->seg_t = SEG_T_NONE;
    else
        return seg_error(SEG_STATUS_INVALID, "config bida.seg_t_labels = '%s': static, hybrid or none", segt);
    if (!strcmp(ssrc, "target_labels"))
        b->static_loaded = true;
    else if (strcmp(ssrc, "teacher"))
        return seg_error(SEG_STATUS_INVALID, "config bida.static_source = '%s': teacher or target_labels", ssrc);
    TRY(seg_config_bool(c, "bida.dynamic", &b->dynamic));
    TRY(seg_config_bool(c, "bida.calibrate", &b->calibrate));
    TRY(seg_config_bool(c, "bida.static_labels", &b->use_static));
    TRY(seg_config_bool(c, "bida.spatial_prior", &b->spatial_prior));
    TRY(seg_config_bool(c, "bida.entropy_double_softmax", &b->ent_double));
    TRY(seg_config_size(c, "bida.prior_grid", &b->prior_w, &b->prior_h));
    TRY(seg_config_float(c, "bida.lambda_fc", &b->lambda_fc));
    TRY(seg_config_float(c, "bida.lambda_bc", &b->lambda_bc));
    TRY(seg_config_float(c, "bida.tau", &b->tau));
    TRY(seg_config_float(c, "bida.ema", &b->ema));
    TRY(seg_config_float(c, "bida.dyn_threshold", &b->dyn_thr));
    TRY(seg_config_float(c, "bida.static_portion", &b->portion));
    TRY(seg_config_int(c, "bida.static_every", &b->static_every));
    TRY(seg_config_float(c, "bida.lambda_seg_s", &b->l_seg_s));
    TRY(seg_config_float(c, "bida.lambda_seg_t", &b->l_seg_t));
    TRY(seg_config_float(c, "bida.lambda_ent_s", &b->l_ent_s));
    TRY(seg_config_float(c, "bida.lambda_ent_t", &b->l_ent_t));
    TRY(seg_config_float(c, "bida.distill_threshold", &b->distill_thr));
    TRY(seg_config_float(c, "bida.distill_kl", &b->distill_kl));
    if (!(b->tau > 0) || !(b->ema >= 0 && b->ema < 1) || !(b->portion > 0 && b->portion <= 1) ||
        b->static_every < 1)
        return seg_error(SEG_STATUS_INVALID, "config bida: tau > 0, 0 <= ema < 1, 0 < static_portion <= 1 and "
                                             "static_every >= 1 are required");
    if (!b->distill && !b->dynamic && !b->use_static)
        return seg_error(SEG_STATUS_INVALID, "config bida: target labels need bida.dynamic or bida.static_labels");
    if (!b->distill && b->spatial_prior && !b->use_static)
        return seg_error(SEG_STATUS_INVALID, "config bida.spatial_prior = true weights the static labels: it needs "
                                             "bida.static_labels = true");
    if (!b->distill && b->static_loaded && (!b->use_static || b->spatial_prior || !seg_config_str(c, "data.target_labels")[0]))
        return seg_error(SEG_STATUS_INVALID, "config bida.static_source = target_labels reads the static labels from "
                                             "data.target_labels (e.g. segda pseudo-label --mode dass): it needs that "
                                             "folder and bida.static_labels = true, and excludes bida.spatial_prior");
    if (!b->distill && b->seg_t == SEG_T_STATIC && !b->use_static && b->l_seg_t != 0)
        return seg_error(SEG_STATUS_INVALID, "config bida.seg_t_labels = static needs bida.static_labels = true");

    /* the teacher (static labels, or the distillation's adapted model), aux0 */
    struct seg_model *teacher_model;
    TRY(seg_trainer_add_frozen(t, &teacher_model));
    if (b->distill) {
        const char *teacher = seg_config_str(c, "bida.distill_teacher");
        if (!teacher[0])
            return seg_error(SEG_STATUS_INVALID, "config bida.stage = distill needs bida.distill_teacher "
                                                 "(the adapted model's .safetensors)");
        return seg_model_load(teacher_model, teacher, true);
    }
    t->model->expose_branches = b->aspp_feature;
    int64_t d = 0, k = t->model->cfg.num_classes;
    TRY(feature_dim(t, b->aspp_feature, &d));
    TRY(state_zeros(t, "bida_mu_s", k, d, &b->mu_s));
    TRY(state_zeros(t, "bida_mu_t", k, d, &b->mu_t));
    TRY(state_zeros(t, "bida_seen", 2, k, &b->seen));
    TRY(state_zeros(t, "bida_thr", 2, k, &b->thr_acc));
    if (b->spatial_prior)
        TRY(state_zeros(t, "bida_prior", k, (int64_t)b->prior_h * b->prior_w, &b->prior));
    return SEG_STATUS_OK;
}

static void bida_destroy(struct seg_trainer *t)
{
    free(t->priv);
    t->priv = NULL;
}

/* *prob [N, C, h*w] <- *prob times the spatial prior's weights q at h x w. */
static enum seg_status weigh(const struct seg_tensor *q, const struct bida *b, int64_t h, int64_t w,
                             struct seg_tensor **prob)
{
    struct seg_tensor *out = NULL;
    TRY(bida_apply_prior(*prob, q, b->prior_h, b->prior_w, h, w, &out));
    seg_tensor_free(*prob);
    *prob = out;
    return SEG_STATUS_OK;
}

/* The teacher on x: softmax at stride 8 [N, C, h*w] (small), at the input size
 * [N, C, H*W] (big), its stride-8 logits [N, C, h, w]; each optional. With prior (the
 * spatial prior's weights [C, grid]), small and big are weighted by it (CBST-SP). */
static enum seg_status teacher_probs(struct seg_trainer *t, struct seg_var *x, const struct seg_tensor *prior,
                                     struct seg_tensor **small, struct seg_tensor **big, struct seg_tensor **logits)
{
    const struct bida *b = t->priv;
    struct seg_model_out o;
    struct seg_tensor *up = NULL;
    int64_t n = x->value->shape[0], hh = x->value->shape[2], ww = x->value->shape[3];
    bool g = seg_ag_set_grad_enabled(t->ag, false);
    enum seg_status st = seg_model_forward(t->ag, t->aux[0], x, false, &o);
    const struct seg_tensor *lg = st ? NULL : o.main->value;
    int64_t k = lg ? lg->shape[1] : 0, sp[3] = {n, k, lg ? lg->shape[2] * lg->shape[3] : 0},
            bp[3] = {n, k, hh * ww};
    if (!st && small) {
        st = seg_softmax(lg, 1, false, small);
        if (!st) st = seg_tensor_set_shape(*small, 3, sp);
        if (!st && prior) st = weigh(prior, b, lg->shape[2], lg->shape[3], small);
    }
    if (!st && logits)
        st = seg_clone(lg, logits);
    if (!st && big) {
        st = seg_resize_bilinear(lg, hh, ww, true, &up);
        if (!st) st = seg_softmax(up, 1, false, big);
        if (!st) st = seg_tensor_set_shape(*big, 3, bp);
        if (!st && prior) st = weigh(prior, b, hh, ww, big);
    }
    seg_tensor_free(up);
    seg_ag_set_grad_enabled(t->ag, g);
    return st;
}

/* Adds the batch's CBST thresholds to the round's running means; *thr = the means. */
static enum seg_status round_thresholds(struct bida *b, const struct seg_tensor *prob_small, float portion,
                                        const struct seg_collective *coll, struct seg_tensor **thr)
{
    struct seg_tensor *bt = NULL, *pres = NULL, *sum = NULL, *cnt = NULL, *m = NULL, *ns = NULL, *nc = NULL,
                      *den = NULL;
    enum seg_status st = bida_class_thresholds(prob_small, portion, &bt, &pres);
    if (!st) st = seg_slice(b->thr_acc, 0, 0, 1, &sum);
    if (!st) st = seg_slice(b->thr_acc, 0, 1, 1, &cnt);
    if (!st) st = seg_binary(SEG_BINARY_MUL, bt, pres, &m);
    /* data-parallel: every rank's batch is one more batch of the round's mean */
    if (!st && coll) st = coll->sum(coll->ctx, m);
    if (!st && coll) st = coll->sum(coll->ctx, pres);
    if (!st) st = seg_binary(SEG_BINARY_ADD, sum, m, &ns);
    if (!st) st = seg_binary(SEG_BINARY_ADD, cnt, pres, &nc);
    if (!st) st = seg_slice_assign(b->thr_acc, 0, 0, ns);
    if (!st) st = seg_slice_assign(b->thr_acc, 0, 1, nc);
    if (!st) st = seg_unary(SEG_UNARY_CLAMP, nc, 1.0f, 3.0e38f, &den);
    if (!st) st = seg_binary(SEG_BINARY_DIV, ns, den, thr);
    if (!st) {
        int64_t s[1] = {(*thr)->shape[1]};
        st = seg_tensor_set_shape(*thr, 1, s);
    }
    struct seg_tensor *tmp[] = {bt, pres, sum, cnt, m, ns, nc, den};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++)
        seg_tensor_free(tmp[i]);
    return st;
}

/* [N, C, h, w] or [N, D, h, w] variable -> [N, D, h*w]. */
static enum seg_status flat_features(struct seg_trainer *t, struct bida *b, struct seg_model_out *o,
                                     struct seg_var **out)
{
    struct seg_var *f = o->features;
    if (b->aspp_feature) {
        if (!o->branches[0])
            return seg_error(SEG_STATUS_INVALID, "bida: the model did not expose its ASPP branches");
        int n = 0;
        while (n < SEG_ASPP_MAX && o->branches[n])
            n++;
        TRY(seg_ag_concat(t->ag, o->branches, n, 1, &f)); /* one per model.aspp_rates entry */
    }
    int64_t s[3] = {f->value->shape[0], f->value->shape[1], f->value->shape[2] * f->value->shape[3]};
    return seg_ag_reshape(t->ag, f, 3, s, out);
}

/* total += w * term (total may be NULL: starts at w * term). */
static enum seg_status accumulate(struct seg_ag *ag, struct seg_var **total, struct seg_var *term, double w)
{
    struct seg_var *s, *sum;
    if (w == 0.0)
        return SEG_STATUS_OK;
    TRY(seg_ag_affine(ag, term, (float)w, 0.0f, &s));
    if (!*total) {
        *total = s;
        return SEG_STATUS_OK;
    }
    TRY(seg_ag_add(ag, *total, s, &sum));
    *total = sum;
    return SEG_STATUS_OK;
}

/* CE of the bilinearly upsampled logits against labels [N, H, W] (skipped when empty). */
/* Empty pseudo labels give 0 (decided on the device). */
static enum seg_status target_ce(struct seg_trainer *t, struct seg_var *logits, const struct seg_tensor *labels,
                                 struct seg_var **loss)
{
    struct seg_var *up;
    TRY(seg_ag_resize_bilinear(t->ag, logits, labels->shape[1], labels->shape[2], true, &up));
    return seg_ag_cross_entropy_or_zero(t->ag, up, labels, NULL, 255, loss);
}

/* Ent_S / Ent_T: the true entropy, or the released code's softmax-twice variant. */
static enum seg_status entropy(struct seg_trainer *t, const struct bida *b, struct seg_var *logits,
                               struct seg_var **loss)
{
    if (b->ent_double)
        return bida_entropy_double_softmax(t->ag, logits, loss);
    return seg_ag_entropy(t->ag, logits, loss);
}

/* Logs the fraction of labelled pixels (a device value, read at the end of the step). */
static enum seg_status log_density(struct seg_losses *losses, const char *name, const struct seg_tensor *labels)
{
    struct seg_tensor *d = NULL;
    enum seg_status st = bida_density(labels, &d);
    if (!st) st = seg_losses_add_dev(losses, name, d, 1.0);
    seg_tensor_free(d);
    return st;
}

struct step_tensors {
    struct seg_tensor *ys, *ps, *yf, *yf_grid, *ys_grid, *rho_st, *yd, *yt, *yt_full, *thr, *pres_s, *pres_t,
        *seen_s, *seen_t, *ys_prior, *q;
};

static void step_tensors_free(struct step_tensors *s)
{
    struct seg_tensor **p = (struct seg_tensor **)s;
    for (size_t i = 0; i < sizeof *s / sizeof *p; i++)
        seg_tensor_free(p[i]);
}

/* The sub-batch's total, a 1/k share of the step, backward (the step follows the last). */
static enum seg_status part_backward(struct seg_trainer *t, struct seg_var *loss)
{
    if (t->accumulate > 1)
        TRY(seg_ag_affine(t->ag, loss, 1.0f / (float)t->accumulate, 0.0f, &loss));
    return seg_ag_backward(t->ag, loss);
}

static enum seg_status adapt_step(struct seg_trainer *t, struct bida *b, int part, const struct seg_batch *src,
                                  const struct seg_batch *tgt, struct seg_losses *losses, struct step_tensors *k)
{
    int nc = t->model->cfg.num_classes;
    struct seg_var *xs, *xt, *loss, *fs, *ft, *rho_s = NULL, *rho_t = NULL, *term;
    struct seg_model_out so, to;

    /* a new round: the teacher becomes the current model, the thresholds start again */
    if (b->use_static && !b->static_loaded && t->iter % b->static_every == 0 && part == 0) {
        TRY(seg_model_copy(t->aux[0], t->model));
        TRY(seg_fill(b->thr_acc, 0.0f));
    }
    TRY(seg_batch_upload(t, src, &xs, &k->ys));
    TRY(seg_batch_upload(t, tgt, &xt, b->static_loaded ? &k->yf : NULL)); /* offline y_F: cropped and flipped with the image */
    if (b->spatial_prior) { /* CBST-SP: this batch's source labels join the prior */
        TRY(bida_labels_to_grid(k->ys, b->prior_h, b->prior_w, &k->ys_prior));
        TRY(bida_prior_update(b->prior, k->ys_prior, seg_ag_collective(t->ag)));
        TRY(bida_prior_weights(b->prior, &k->q));
    }
    if (b->static_loaded) {
        TRY(log_density(losses, "dens_static", k->yf));
    } else if (b->use_static) { /* y_F */
        struct seg_tensor *big = NULL;
        enum seg_status st = teacher_probs(t, xt, k->q, &k->ps, &big, NULL);
        if (!st) st = round_thresholds(b, k->ps, (float)b->portion, seg_ag_collective(t->ag), &k->thr);
        if (!st) st = bida_static_labels(big, k->thr, &k->yf);
        seg_tensor_free(big);
        TRY(st);
        int64_t s[3] = {tgt->n, tgt->h, tgt->w};
        TRY(seg_tensor_set_shape(k->yf, 3, s));
        TRY(log_density(losses, "dens_static", k->yf));
    }
    TRY(seg_segmentation_loss(t, xs, k->ys, &so, &loss, losses));
    if (b->l_seg_s != 1.0)
        TRY(seg_ag_affine(t->ag, loss, (float)b->l_seg_s, 0.0f, &loss));
    TRY(seg_model_forward(t->ag, t->model, xt, true, &to));
    TRY(flat_features(t, b, &so, &fs));
    TRY(flat_features(t, b, &to, &ft));
    int64_t h = so.main->value->shape[2], w = so.main->value->shape[3];
    TRY(bida_labels_to_grid(k->ys, h, w, &k->ys_grid));
    TRY(bida_prototypes(t->ag, fs, k->ys_grid, nc, &rho_s, &k->pres_s));
    if (b->use_static)
        TRY(bida_labels_to_grid(k->yf, h, w, &k->yf_grid));
    if (b->dynamic) { /* y_D from the (calibrated) source prototypes */
        if (b->calibrate)
            TRY(bida_calibrate(rho_s->value, b->mu_s, b->mu_t, b->seen, &k->rho_st));
        else
            TRY(seg_clone(rho_s->value, &k->rho_st));
        TRY(bida_dynamic_labels(ft->value, k->rho_st, k->pres_s, (float)b->dyn_thr, &k->yd));
        TRY(log_density(losses, "dens_dyn", k->yd));
    }
    if (b->dynamic && b->use_static)
        TRY(bida_hybrid_labels(k->yd, k->yf_grid, &k->yt));
    else
        TRY(seg_clone(b->dynamic ? k->yd : k->yf_grid, &k->yt));
    TRY(log_density(losses, "dens_hybrid", k->yt));
    TRY(bida_prototypes(t->ag, ft, k->yt, nc, &rho_t, &k->pres_t));
    if (b->lambda_fc != 0.0) { /* eq. (2): target pixels vs source prototypes */
        TRY(bida_contrast(t->ag, ft, rho_s, k->pres_s, k->yt, (float)b->tau, &term, NULL));
        TRY(seg_losses_add_var(losses, "fcl", term));
        TRY(accumulate(t->ag, &loss, term, b->lambda_fc));
    }
    if (b->lambda_bc != 0.0) { /* eq. (3): source pixels vs target prototypes */
        TRY(bida_contrast(t->ag, fs, rho_t, k->pres_t, k->ys_grid, (float)b->tau, &term, NULL));
        TRY(seg_losses_add_var(losses, "bcl", term));
        TRY(accumulate(t->ag, &loss, term, b->lambda_bc));
    }
    if (b->l_seg_t != 0.0 && b->seg_t != SEG_T_NONE) {
        const struct seg_tensor *lab = k->yf;
        if (b->seg_t == SEG_T_HYBRID) {
            int64_t s[3] = {tgt->n, h, w};
            TRY(seg_tensor_reshape(k->yt, 3, s, &k->yt_full));
            struct seg_tensor *full = NULL;
            TRY(seg_resize_nearest(k->yt_full, tgt->h, tgt->w, &full));
            seg_tensor_free(k->yt_full);
            k->yt_full = full;
            lab = full;
        }
        TRY(target_ce(t, to.main, lab, &term));
        TRY(seg_losses_add_var(losses, "seg_t", term));
        TRY(accumulate(t->ag, &loss, term, b->l_seg_t));
    }
    if (b->l_ent_s != 0.0) {
        TRY(entropy(t, b, so.main, &term));
        TRY(seg_losses_add_var(losses, "ent_s", term));
        TRY(accumulate(t->ag, &loss, term, b->l_ent_s));
    }
    if (b->l_ent_t != 0.0) {
        TRY(entropy(t, b, to.main, &term));
        TRY(seg_losses_add_var(losses, "ent_t", term));
        TRY(accumulate(t->ag, &loss, term, b->l_ent_t));
    }
    /* eq. (4)-(5), after this step's calibration used the previous mu */
    int64_t one[1] = {nc};
    TRY(seg_tensor_view(b->seen, 0, 1, one, &k->seen_s));
    TRY(seg_tensor_view(b->seen, nc, 1, one, &k->seen_t));
    TRY(bida_ema_update(b->mu_s, k->seen_s, rho_s->value, k->pres_s, (float)b->ema));
    TRY(bida_ema_update(b->mu_t, k->seen_t, rho_t->value, k->pres_t, (float)b->ema));
    return part_backward(t, loss);
}

static enum seg_status distill_step(struct seg_trainer *t, struct bida *b, const struct seg_batch *src,
                                    const struct seg_batch *tgt, struct seg_losses *losses, struct step_tensors *k)
{
    struct seg_var *xs, *xt, *loss, *term;
    struct seg_model_out so, to;
    struct seg_tensor *big = NULL;
    TRY(seg_batch_upload(t, src, &xs, &k->ys));
    TRY(seg_batch_upload(t, tgt, &xt, NULL));
    enum seg_status st = teacher_probs(t, xt, NULL, NULL, &big, &k->ps);
    int64_t one[1] = {t->model->cfg.num_classes};
    if (!st) st = seg_tensor_new(t->be, SEG_DTYPE_F32, 1, one, &k->thr);
    if (!st) st = seg_fill(k->thr, (float)b->distill_thr);
    if (!st) st = bida_static_labels(big, k->thr, &k->yf); /* one threshold for every class */
    seg_tensor_free(big);
    TRY(st);
    int64_t s3[3] = {tgt->n, tgt->h, tgt->w};
    TRY(seg_tensor_set_shape(k->yf, 3, s3));
    TRY(log_density(losses, "dens_teacher", k->yf));
    TRY(seg_segmentation_loss(t, xs, k->ys, &so, &loss, losses));
    TRY(seg_model_forward(t->ag, t->model, xt, true, &to));
    TRY(target_ce(t, to.main, k->yf, &term));
    TRY(seg_losses_add_var(losses, "seg_t", term));
    TRY(accumulate(t->ag, &loss, term, 1.0));
    if (b->distill_kl != 0.0) {
        TRY(bida_distill_kl(t->ag, k->ps, to.main, &term));
        TRY(seg_losses_add_var(losses, "kl", term));
        TRY(accumulate(t->ag, &loss, term, b->distill_kl));
    }
    return part_backward(t, loss);
}

static enum seg_status bida_step(struct seg_trainer *t, const struct seg_batch *src,
                                 const struct seg_batch *tgt, struct seg_losses *losses)
{
    struct bida *b = t->priv;
    seg_model_zero_grad(t->model);
    losses->weight = 1.0 / t->accumulate;
    for (int c = 0; c < t->accumulate; c++) {
        struct step_tensors k;
        struct seg_batch sp, tp;
        memset(&k, 0, sizeof k);
        seg_batch_part(t, src, c, &sp);
        seg_batch_part(t, tgt, c, &tp);
        enum seg_status st = b->distill ? distill_step(t, b, &sp, &tp, losses, &k)
                                        : adapt_step(t, b, c, &sp, &tp, losses, &k);
        step_tensors_free(&k);
        seg_ag_reset(t->ag);
        TRY(st);
    }
    losses->weight = 1.0;
    TRY(seg_check_finite(t, losses));
    return seg_optim_step(t->opt, (float)t->lr);
}

const struct seg_method seg_method_bida = {"bida", bida_init, bida_step, bida_destroy};
