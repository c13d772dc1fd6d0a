/* method_adaptsegnet.c: AdaptSegNet's multi-level output-space adversarial training
 * (Tsai et al. 2018; facts in methods.md section 7):
 * - two fully-convolutional discriminators, on the softmax of the auxiliary and the main
 *   output upsampled to the input size; domain labels source = 0, target = 1;
 * - G step: segmentation loss on the source, then the target's outputs are pushed towards
 *   "source" with weights lambda_adv_aux = 0.0002 and lambda_adv_main = 0.001 (the
 *   discriminators get no gradient from it);
 * - D step: BCE on detached source (label 0) and target (label 1) outputs, each halved;
 *   Adam (lr 1e-4, betas 0.9/0.99), poly-decayed over the same horizon as G.
 * solver.accumulate: every sub-batch adds G's and D's gradients; the steps come after the
 * last (D's gradients use G's detached outputs and D's weights, which the G step does not
 * change), so with frozen BN in G the update equals the full batch's.
 * The released classifier sums only its first two ASPP branches (6, 12): model.aspp_rates. */
#include <string.h>

#include "train/methods.h"

static enum seg_status adaptsegnet_init(struct seg_trainer *t)
{
    double lr_d;
    long width;
    TRY(seg_config_float(&t->cfg, "adaptsegnet.lr_d", &lr_d));
    TRY(seg_config_int(&t->cfg, "adaptsegnet.d_width", &width));
    struct seg_model_config dc = {SEG_ARCH_DISCRIMINATOR, t->model->cfg.num_classes, false, true,
                                  SEG_BN_POLICY_TRAINABLE, t->model->cfg.seed + 17, (int)width, false, false, {0}};
    struct seg_optim_config oc = {SEG_OPTIM_ADAM, (float)lr_d, 0, 0, 0.9f, 0.99f, 1e-8f, {1.0f, 1.0f}};
    for (int i = 0; i < 2; i++) { /* aux[0] on the auxiliary output, aux[1] on the main one */
        dc.seed += (uint32_t)i;
        TRY(seg_model_create(t->be, &dc, &t->aux[i]));
        t->naux = i + 1;
        TRY(seg_optim_create(t->aux[i], &oc, &t->aux_opt[i]));
    }
    return SEG_STATUS_OK;
}

static void set_requires_grad(struct seg_model *m, bool on)
{
    for (int i = 0; i < m->nparams; i++)
        if (!m->params[i].is_buffer)
            m->params[i].var->requires_grad = on;
}

/* BCE of discriminator d on softmax(upsampled logits) against a constant domain label. */
static enum seg_status adversarial(struct seg_trainer *t, struct seg_model *d, struct seg_var *logits,
                                   int64_t h, int64_t w, float domain, struct seg_var **loss)
{
    struct seg_var *up, *p;
    struct seg_model_out o;
    TRY(seg_ag_resize_bilinear(t->ag, logits, h, w, true, &up));
    TRY(seg_ag_softmax(t->ag, up, 1, false, &p));
    TRY(seg_model_forward(t->ag, d, p, true, &o));
    return seg_ag_bce_with_logits_const(t->ag, o.main, domain, loss);
}

struct adv_weights {
    double lam_main, lam_aux;
};

/* One sub-batch: the G gradients (segmentation on the source, weighted by its share of the
 * labelled pixels; adversarial on the target) and the D gradients (on the detached
 * outputs), each a 1/k share of the batch mean. D's gradients need G's outputs only, not
 * its update, so every optimizer step can wait for the last sub-batch. */
static enum seg_status adaptsegnet_part(struct seg_trainer *t, const struct adv_weights *aw,
                                        const struct seg_batch *src_all, const struct seg_batch *src,
                                        const struct seg_batch *tgt, struct seg_losses *losses)
{
    double share = 1.0 / t->accumulate, lam_aux = aw->lam_aux;
    struct seg_var *xs, *loss, *xt, *adv_main, *adv_aux = NULL, *a1, *a2, *adv;
    struct seg_tensor *labels = NULL, *src_out[2] = {NULL, NULL}, *tgt_out[2] = {NULL, NULL};
    struct seg_model_out so, to;
    /* G on the source: segmentation loss. Its outputs are kept (detached) for D. */
    double ws = seg_batch_label_share(t, src, src_all);
    losses->weight = ws;
    TRY(seg_batch_upload(t, src, &xs, &labels));
    enum seg_status st = seg_segmentation_loss(t, xs, labels, &so, &loss, losses);
    seg_tensor_free(labels);
    if (!st && ws != 1.0) st = seg_ag_affine(t->ag, loss, (float)ws, 0.0f, &loss);
    if (!st) st = seg_clone(so.main->value, &src_out[1]);
    if (!st && so.aux) st = seg_clone(so.aux->value, &src_out[0]);
    if (!st) st = seg_ag_backward(t->ag, loss);
    seg_ag_reset(t->ag);

    /* G on the target: fool both discriminators (their parameters get no gradient). */
    losses->weight = share;
    for (int i = 0; i < t->naux; i++)
        set_requires_grad(t->aux[i], false);
    if (!st) st = seg_batch_upload(t, tgt, &xt, NULL);
    if (!st) st = seg_model_forward(t->ag, t->model, xt, true, &to);
    if (!st) st = seg_clone(to.main->value, &tgt_out[1]);
    if (!st && to.aux) st = seg_clone(to.aux->value, &tgt_out[0]);
    if (!st) st = adversarial(t, t->aux[1], to.main, tgt->h, tgt->w, 0.0f, &adv_main);
    if (!st) st = seg_losses_add_var(losses, "adv", adv_main);
    if (!st) st = seg_ag_affine(t->ag, adv_main, (float)(aw->lam_main * share), 0.0f, &adv);
    if (!st && to.aux && lam_aux != 0.0) {
        st = adversarial(t, t->aux[0], to.aux, tgt->h, tgt->w, 0.0f, &adv_aux);
        if (!st) st = seg_losses_add_var(losses, "adv_aux", adv_aux);
        if (!st) st = seg_ag_affine(t->ag, adv_aux, (float)(lam_aux * share), 0.0f, &a1);
        if (!st) st = seg_ag_add(t->ag, adv, a1, &a2);
        if (!st) adv = a2;
    }
    if (!st) st = seg_ag_backward(t->ag, adv);
    seg_ag_reset(t->ag);
    for (int i = 0; i < t->naux; i++)
        set_requires_grad(t->aux[i], true);

    /* D: detached source outputs are "source" (0), target outputs "target" (1). */
    static const char *const dnames[2][2] = {{"d_aux_src", "d_aux_tgt"}, {"d_src", "d_tgt"}};
    for (int level = 1; !st && level >= 0; level--) {
        if (!src_out[level] || !tgt_out[level] || (level == 0 && lam_aux == 0.0))
            continue;
        for (int dom = 0; dom < 2 && !st; dom++) {
            struct seg_var *v, *l, *half;
            struct seg_tensor *copy = NULL;
            const struct seg_batch *b = dom ? tgt : src;
            st = seg_clone(dom ? tgt_out[level] : src_out[level], &copy);
            if (!st) st = seg_ag_const(t->ag, copy, &v);
            if (!st) st = adversarial(t, t->aux[level], v, b->h, b->w, (float)dom, &l);
            if (!st) st = seg_losses_add_var(losses, dnames[level][dom], l);
            if (!st) st = seg_ag_affine(t->ag, l, (float)(0.5 * share), 0.0f, &half);
            if (!st) st = seg_ag_backward(t->ag, half);
            seg_ag_reset(t->ag);
        }
    }
    for (int i = 0; i < 2; i++) {
        seg_tensor_free(src_out[i]);
        seg_tensor_free(tgt_out[i]);
    }
    losses->weight = 1.0;
    return st;
}

static enum seg_status adaptsegnet_step(struct seg_trainer *t, const struct seg_batch *src,
                                        const struct seg_batch *tgt, struct seg_losses *losses)
{
    struct adv_weights aw;
    TRY(seg_config_float(&t->cfg, "adaptsegnet.lambda_adv_main", &aw.lam_main));
    TRY(seg_config_float(&t->cfg, "adaptsegnet.lambda_adv_aux", &aw.lam_aux));
    if (!t->model->cfg.multi_level)
        aw.lam_aux = 0.0;
    seg_model_zero_grad(t->model);
    for (int i = 0; i < t->naux; i++)
        seg_model_zero_grad(t->aux[i]);
    for (int c = 0; c < t->accumulate; c++) {
        struct seg_batch sp, tp;
        seg_batch_part(t, src, c, &sp);
        seg_batch_part(t, tgt, c, &tp);
        TRY(adaptsegnet_part(t, &aw, src, &sp, &tp, losses));
    }
    TRY(seg_check_finite(t, losses));
    TRY(seg_optim_step(t->opt, (float)t->lr));
    for (int level = 1; level >= 0; level--) /* a discriminator without gradient is not stepped */
        if (level == 1 || (t->model->cfg.multi_level && aw.lam_aux != 0.0))
            TRY(seg_optim_step(t->aux_opt[level], (float)t->lr_aux));
    return SEG_STATUS_OK;
}

const struct seg_method seg_method_adaptsegnet = {"adaptsegnet", adaptsegnet_init, adaptsegnet_step, NULL};
