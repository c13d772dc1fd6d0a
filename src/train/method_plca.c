/* method_plca.c: PLCA, pixel-level cycle association (Kang et al., NeurIPS 2020; facts from
 * the released code in methods.md section 1). One stage, no extra parameters.
 *
 * Per iteration, source image n is paired with target image n; both go through the network
 * in separate forward passes (trainable BN: statistics per domain batch). At stride 8:
 *   L_fass (Eq. 1-6):  feature level, L2-normalized layer4 features, cosine similarity;
 *   L_cass (Eq. 9-10): prediction level, softmax outputs, D_kl(p, q) = -KL(p || q), the
 *                      s->t and t->s matrices computed separately (KL is asymmetric);
 *   both: contrast normalization of every similarity row (row mean and unbiased std,
 *   detached), row softmax; cycle i -> j* = argmax_j -> i* = argmax_i'; loss = mean over
 *   the valid source pixels (label(i) != 255 and label(i*) == label(i); 255 at i* is a
 *   mismatch) of -log(P_s->t(i, j*) P_t->s(j*, i*)), 0 when none is valid;
 *   spatial aggregation (Eq. 7-8) of the target map before association, alpha = 0.5:
 *   features with contrast-normalized cosine self-similarity, probabilities with the
 *   plain softmax of the negative-KL self-similarity; gradients through both the map and
 *   the affinity.
 *   L_lsr (Eq. 13): stopgrad(u / lambda - 1) * u, u = -mean_c log p_c, lambda = 10, on the
 *   source and the target logits at stride 8 (no ignore mask), each weighted beta3.
 * Source: CE on the logits upsampled bilinearly to the crop (align_corners false, as the
 * released code) and the Lovasz-softmax on their softmax (present classes, whole batch).
 *   L = CE + beta1 * s * L_lov + beta2 * (L_fass + L_cass) + beta3 * (L_lsr^s + L_lsr^t)
 * with beta1 0.75, beta2 0.1 (one key per level: plca.fass_weight, plca.cass_weight),
 * beta3 0.01 and s = plca.lovasz_scale (1, the paper; the
 * released 2-GPU code multiplies by world_size * iter_size = 4, effectively 3.0).
 *
 * Choices where the sources leave things open or disagree (paper = default, code = key):
 * - The aggregation of the probabilities uses a plain softmax (released code, and the
 *   lead's reading of the paper, which only says "we also adopt spatial aggregation");
 *   plca.pred_agg_norm = true contrast-normalizes it as the features.
 * - The aggregation self-similarity of probabilities is D_kl(q_j, q_j') with pixel j (the
 *   one being aggregated) first, the same direction as the association's query.
 * - Test time (plca.test_aggregation): the paper aggregates the layer4 features (Eq. 7)
 *   before the classifier ("features", default); the released code also aggregates the
 *   softmax outputs ("both"); "none" disables it.
 * - Evaluation upsamples with align_corners false in the released tools/test.py:
 *   eval.align_corners = false (default true, segda's behaviour before the key).
 * - The loss is a mean over the valid pixels of the whole (sub-)batch; a target pixel
 *   reached from k source pixels counts k times in the t->s term (Eq. 4 sums over i).
 * - Batch: the paper's 8 is 8 source + 8 target images per update; the released code
 *   runs 2 GPUs x 2 images (SyncBN over 4) with 2 accumulation steps: data.batch = 8 and
 *   solver.accumulate = 2 (alias plca.iter_size; BN statistics over each sub-batch of 4,
 *   losses averaged). The association, the Lovasz term and every mean over valid pixels
 *   are per sub-batch, as the released code's, so even with frozen BN accumulation is
 *   not the full-batch step.
 * - Ablation (Table 1): plca.lovasz, plca.fass, plca.cass, plca.lsr, "Sim-PLCA"
 *   (plca.contrastive = false: -D(i, j*) - D(j*, i*) on raw similarities) and "w/o SAGG"
 *   (plca.aggregation = false); plca.contrast_norm switches Eq. 5 off.
 * - L2 normalization divides by max(||f||, 1e-12) (F.normalize); logs take p + 1e-10. */
#include <math.h>
#include <string.h>

#include "train/methods.h"
#include "train/plca.h"

struct plca_params {
    struct seg_plca_opts o;
};

static enum seg_status read_params(const struct seg_config *c, struct plca_params *p)
{
    struct seg_plca_opts *o = &p->o;
    double lovasz_w, lovasz_scale, fass_w, cass_w, lsr_w, lambda, alpha;
    TRY(seg_config_bool(c, "plca.lovasz", &o->lovasz));
    TRY(seg_config_bool(c, "plca.fass", &o->fass));
    TRY(seg_config_bool(c, "plca.cass", &o->cass));
    TRY(seg_config_bool(c, "plca.lsr", &o->lsr));
    TRY(seg_config_bool(c, "plca.aggregation", &o->aggregation));
    TRY(seg_config_bool(c, "plca.pred_agg_norm", &o->pred_agg_norm));
    TRY(seg_config_bool(c, "plca.contrastive", &o->contrastive));
    TRY(seg_config_bool(c, "plca.contrast_norm", &o->contrast_norm));
    TRY(seg_config_bool(c, "plca.ce_align_corners", &o->align_corners));
    TRY(seg_config_float(c, "plca.lovasz_weight", &lovasz_w));
    TRY(seg_config_float(c, "plca.lovasz_scale", &lovasz_scale));
    TRY(seg_config_float(c, "plca.fass_weight", &fass_w));
    TRY(seg_config_float(c, "plca.cass_weight", &cass_w));
    TRY(seg_config_float(c, "plca.lsr_weight", &lsr_w));
    TRY(seg_config_float(c, "plca.lsr_lambda", &lambda));
    TRY(seg_config_float(c, "plca.alpha", &alpha));
    if (!(alpha > 0 && alpha < 1))
        return seg_error(SEG_STATUS_INVALID, "config plca.alpha = %g: must lie in (0, 1)", alpha);
    if (!(lambda > 0))
        return seg_error(SEG_STATUS_INVALID, "config plca.lsr_lambda = %g: must be positive", lambda);
    const char *ta = seg_config_str(c, "plca.test_aggregation");
    if (strcmp(ta, "none") && strcmp(ta, "features") && strcmp(ta, "both"))
        return seg_error(SEG_STATUS_INVALID, "config plca.test_aggregation = '%s': none, features or both", ta);
    o->lovasz_w = (float)(lovasz_w * lovasz_scale);
    o->fass_w = (float)fass_w;
    o->cass_w = (float)cass_w;
    o->lsr_w = (float)lsr_w;
    o->lambda = (float)lambda;
    o->alpha = (float)alpha;
    return SEG_STATUS_OK;
}

static enum seg_status plca_init(struct seg_trainer *t)
{
    struct plca_params p;
    return read_params(&t->cfg, &p); /* solver.accumulate (alias plca.iter_size): the trainer */
}

/* Logged per iteration (averaged over the sub-batches): the unweighted terms, then the
 * fraction of source pixels whose cycle was valid at each level. */
static const char *const valid_name[2] = {"fass_valid", "cass_valid"};

/* One sub-batch: forward of each domain (BN statistics per domain), the objective,
 * backward of total / k (gradients accumulate in the parameters; every term, CE included,
 * weighs 1/k as the released code's loss / iter_size). */
static enum seg_status chunk_step(struct seg_trainer *t, const struct plca_params *p,
                                  const struct seg_batch *src, const struct seg_batch *tgt,
                                  struct seg_losses *losses)
{
    struct seg_ag *ag = t->ag;
    struct seg_var *xs, *xt, *total = NULL, *scaled;
    struct seg_tensor *labels = NULL;
    struct seg_model_out so, to;
    struct seg_plca_terms terms;
    memset(&terms, 0, sizeof terms);
    TRY(seg_batch_upload(t, src, &xs, &labels));
    enum seg_status st = seg_model_forward_source(ag, t->model, xs, true, &so);
    if (!st) st = seg_batch_upload(t, tgt, &xt, NULL);
    if (!st) st = seg_model_forward(ag, t->model, xt, true, &to);
    if (!st) {
        seg_var_done(so.aux);
        seg_var_done(to.aux);
        st = seg_plca_objective(ag, &p->o, so.main, so.features, to.main, to.features, labels, &total, &terms);
    }
    /* the logged values are the mean over the sub-batches (losses->weight = 1/k) */
    for (int k = 0; !st && k < SEG_PLCA_NTERMS; k++)
        if (terms.v[k])
            st = seg_losses_add_dev(losses, seg_plca_term_names[k], terms.v[k]->value, 1.0);
    double npx = (double)src->n * so.main->value->shape[2] * so.main->value->shape[3];
    for (int k = 0; !st && k < 2; k++)
        if (terms.nvalid[k])
            st = seg_losses_add_dev(losses, valid_name[k], terms.nvalid[k], 1.0 / npx);
    seg_tensor_free(terms.nvalid[0]);
    seg_tensor_free(terms.nvalid[1]);
    seg_tensor_free(labels);
    if (!st) st = seg_ag_affine(ag, total, 1.0f / (float)t->accumulate, 0.0f, &scaled);
    if (!st) st = seg_ag_backward(ag, scaled);
    seg_ag_reset(ag);
    return st;
}

static enum seg_status plca_step(struct seg_trainer *t, const struct seg_batch *src,
                                 const struct seg_batch *tgt, struct seg_losses *losses)
{
    struct plca_params p;
    TRY(read_params(&t->cfg, &p));
    int k = t->accumulate;
    if (src->n != tgt->n || src->n % k)
        return seg_error(SEG_STATUS_INVALID, "plca: %d source and %d target images do not split into %d pairs of sub-batches",
                         src->n, tgt->n, k);
    seg_model_zero_grad(t->model);
    losses->weight = 1.0 / k;
    for (int c = 0; c < k; c++) {
        struct seg_batch sb, tb;
        seg_batch_part(t, src, c, &sb);
        seg_batch_part(t, tgt, c, &tb);
        TRY(chunk_step(t, &p, &sb, &tb, losses));
    }
    losses->weight = 1.0;
    TRY(seg_check_finite(t, losses));
    return seg_optim_step(t->opt, (float)t->lr);
}

const struct seg_method seg_method_plca = {"plca", plca_init, plca_step, NULL};
