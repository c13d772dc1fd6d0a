/* method_source_only.c: supervised training on the source domain only (the baseline every
 * adaptation method starts from): cross-entropy on logits upsampled to the input, plus the
 * auxiliary classifier's loss weighted by loss.aux_weight and a source Lovasz-softmax term
 * weighted by loss.source_lovasz. */
#include "dist/dist.h"
#include "train/methods.h"

enum seg_status seg_supervised_terms(struct seg_ag *ag, struct seg_var *main, struct seg_var *aux,
                                     const struct seg_tensor *labels, double aux_w, double lov_w,
                                     struct seg_var *terms[3], struct seg_var **loss)
{
    int64_t h = labels->shape[1], w = labels->shape[2];
    struct seg_var *up, *upa, *pr, *scaled;
    terms[0] = terms[1] = terms[2] = NULL;
    TRY(seg_ag_resize_bilinear(ag, main, h, w, true, &up));
    TRY(seg_ag_cross_entropy(ag, up, labels, NULL, 255, &terms[0]));
    *loss = terms[0];
    if (aux && aux_w != 0.0) {
        TRY(seg_ag_resize_bilinear(ag, aux, h, w, true, &upa));
        TRY(seg_ag_cross_entropy(ag, upa, labels, NULL, 255, &terms[1]));
        TRY(seg_ag_affine(ag, terms[1], (float)aux_w, 0.0f, &scaled));
        TRY(seg_ag_add(ag, *loss, scaled, loss));
    }
    if (lov_w != 0.0) { /* SDCA's released warm-up: Lovasz-softmax on the source prediction */
        TRY(seg_ag_softmax(ag, up, 1, false, &pr));
        TRY(seg_ag_lovasz_softmax(ag, pr, labels, 255, &terms[2]));
        TRY(seg_ag_affine(ag, terms[2], (float)lov_w, 0.0f, &scaled));
        TRY(seg_ag_add(ag, *loss, scaled, loss));
    }
    return SEG_STATUS_OK;
}

enum seg_status seg_segmentation_loss(struct seg_trainer *t, struct seg_var *images,
                                      const struct seg_tensor *labels, struct seg_model_out *out,
                                      struct seg_var **loss, struct seg_losses *losses)
{
    double aux_w, lov_w;
    struct seg_var *terms[3];
    static const char *const names[3] = {"seg", "seg_aux", "lovasz_src"};
    TRY(seg_config_float(&t->cfg, "loss.aux_weight", &aux_w));
    TRY(seg_config_float(&t->cfg, "loss.source_lovasz", &lov_w));
    TRY(seg_model_forward_source(t->ag, t->model, images, true, out));
    TRY(seg_supervised_terms(t->ag, out->main, out->aux, labels, aux_w, lov_w, terms, loss));
    for (int i = 0; i < 3; i++)
        if (terms[i])
            TRY(seg_losses_add_var(losses, names[i], terms[i]));
    return SEG_STATUS_OK;
}

enum seg_status seg_losses_add_var(struct seg_losses *l, const char *name, struct seg_var *v)
{
    return seg_losses_add_dev(l, name, v->value, 1.0);
}

/* One sub-batch's share of the batch's mean cross-entropy (its labelled pixels' share),
 * backward: the sub-batches' gradients add up to the full batch's. */
static enum seg_status source_only_part(struct seg_trainer *t, const struct seg_batch *src,
                                        const struct seg_batch *part, struct seg_losses *losses)
{
    struct seg_var *x, *loss;
    struct seg_tensor *labels = NULL;
    struct seg_model_out out;
    double w = seg_batch_label_share(t, part, src);
    losses->weight = w;
    TRY(seg_batch_upload(t, part, &x, &labels));
    enum seg_status st = seg_segmentation_loss(t, x, labels, &out, &loss, losses);
    if (!st && w != 1.0)
        st = seg_ag_affine(t->ag, loss, (float)w, 0.0f, &loss);
    if (!st)
        st = seg_ag_backward(t->ag, loss);
    seg_tensor_free(labels);
    seg_ag_reset(t->ag);
    losses->weight = 1.0;
    return st;
}

static enum seg_status source_only_step(struct seg_trainer *t, const struct seg_batch *src,
                                        const struct seg_batch *tgt, struct seg_losses *losses)
{
    (void)tgt;
    seg_model_zero_grad(t->model);
    for (int c = 0; c < t->accumulate; c++) {
        struct seg_batch part;
        seg_batch_part(t, src, c, &part);
        TRY(source_only_part(t, src, &part, losses));
    }
    TRY(seg_check_finite(t, losses));
    return seg_optim_step(t->opt, (float)t->lr);
}

enum seg_status seg_check_finite(const struct seg_trainer *t, struct seg_losses *l)
{
    if (seg_dist_size(t->dist) <= 1)
        return seg_trainer_test_finite(t, l);
    /* ranks stop together: the values come to the host (a sync, as the gradient averaging
     * of a data-parallel step needs anyway) */
    TRY(seg_losses_resolve(l));
    int bad = seg_losses_first_nonfinite(l);
    bool ok = bad < 0;
    TRY(seg_dist_all(t->dist, &ok));
    if (bad >= 0)
        return seg_error(SEG_STATUS_INVALID, "loss term '%s' is %g", l->name[bad], l->value[bad]);
    if (!ok)
        return seg_error(SEG_STATUS_INVALID, "loss term on another rank is not finite");
    return SEG_STATUS_OK;
}

const struct seg_method seg_method_source_only = {"source_only", NULL, source_only_step, NULL};
