/* losses_sdca.c: SDCA's terms (tests/loss_ref/sdca.py): the distribution estimator, the
 * target mask and the contrastive upper bound (diagonal and full covariance), built with
 * src/train/sdca_dist.c. */
#include <string.h>

#include "losses.h"
#include "train/sdca.h"


static enum seg_status keep(struct lt_ctx *c, const char *name, struct seg_tensor *t, struct seg_var **v)
{
    TRY(seg_ag_const(lt_ag(c), t, v));
    return lt_output(c, name, *v);
}

static enum seg_status copy_of(struct lt_ctx *c, const char *name, struct seg_tensor **out)
{
    const struct seg_tensor *t = lt_tensor(c, name);
    NEED(t);
    return seg_clone(t, out);
}

/* Updated mean, var and count as outputs; loss = scale * (sum mean + sum var). */
static enum seg_status update(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_ag *ag = lt_ag(c);
    const struct seg_tensor *x = lt_tensor(c, "x"), *lab = lt_tensor(c, "labels");
    struct seg_var *scale = lt_var(c, "scale"), *m, *v, *n, *sm, *sv, *s;
    struct seg_tensor *mean = NULL, *var = NULL, *count = NULL, *oh = NULL;
    NEED(x && lab && scale);
    /* the tape owns the copies (updated in place, read after the update) */
    TRY(copy_of(c, "mean", &mean));
    TRY(seg_ag_const(ag, mean, &m));
    TRY(copy_of(c, "var", &var));
    TRY(seg_ag_const(ag, var, &v));
    TRY(copy_of(c, "count", &count));
    TRY(seg_ag_const(ag, count, &n));
    TRY(seg_sdca_source_onehot(lab, x->shape[2], x->shape[3], (int)lt_param(c, "num_classes", 0), &oh));
    enum seg_status st = seg_sdca_update(ag, x, oh, mean, var, count, NULL);
    seg_tensor_free(oh);
    TRY(st);
    TRY(lt_output(c, "mean", m));
    TRY(lt_output(c, "var", v));
    TRY(lt_output(c, "count", n));
    TRY(seg_ag_sum_all(ag, m, &sm));
    TRY(seg_ag_sum_all(ag, v, &sv));
    TRY(seg_ag_add(ag, sm, sv, &s));
    return seg_ag_mul(ag, scale, s, loss);
}

static void opts_of(struct lt_ctx *c, struct seg_sdca_opts *o)
{
    o->tau = (float)lt_param(c, "tau", 100);
    o->normalize = lt_param(c, "normalize", 1) != 0;
    o->var_l2 = !strcmp(lt_param_str(c, "var_norm", "none"), "l2");
}

/* Source pixels: labels downsampled to the features, then L-bar. */
static enum seg_status bound(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *x = lt_var(c, "x");
    const struct seg_tensor *lab = lt_tensor(c, "labels"), *mean = lt_tensor(c, "mean"), *var = lt_tensor(c, "var");
    struct seg_tensor *oh = NULL;
    struct seg_sdca_opts o;
    NEED(x && lab && mean && var);
    opts_of(c, &o);
    TRY(seg_sdca_source_onehot(lab, x->value->shape[2], x->value->shape[3], (int)lt_param(c, "num_classes", 0), &oh));
    enum seg_status st = seg_sdca_loss(lt_ag(c), x, oh, mean, var, &o, loss);
    seg_tensor_free(oh);
    return st;
}

/* Target pixels: the confident argmax of the logits (output "mask"), then L-bar. */
static enum seg_status target(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *x = lt_var(c, "x"), *mv;
    const struct seg_tensor *logits = lt_tensor(c, "logits"), *mean = lt_tensor(c, "mean"), *var = lt_tensor(c, "var");
    struct seg_tensor *lab = NULL, *labf = NULL, *oh = NULL;
    struct seg_sdca_opts o;
    NEED(x && logits && mean && var);
    opts_of(c, &o);
    TRY(seg_sdca_target_labels(logits, (float)lt_param(c, "delta", 0.9), &lab));
    enum seg_status st = seg_cast(lab, SEG_DTYPE_F32, &labf);
    if (!st) st = keep(c, "mask", labf, &mv);
    if (!st) st = seg_sdca_onehot(lab, (int)lt_param(c, "num_classes", 0), &oh);
    if (!st) st = seg_sdca_loss(lt_ag(c), x, oh, mean, var, &o, loss);
    seg_tensor_free(lab);
    seg_tensor_free(oh);
    return st;
}

const struct lt_case lt_cases_sdca[] = {
    {"sdca_update_first", update},
    {"sdca_update_merge", update},
    {"sdca_loss_paper", bound},
    {"sdca_loss_code", bound},
    {"sdca_loss_raw", bound},
    {"sdca_loss_out_level", bound},
    {"sdca_target_loss", target},
    {"sdca_target_none", target},
    /* sdca.covariance = full: "var" holds [C, A, A] matrices */
    {"sdca_update_full_first", update},
    {"sdca_update_full_merge", update},
    {"sdca_loss_full", bound},
    {"sdca_loss_full_raw", bound},
    {"sdca_loss_full_out_level", bound},
    {"sdca_loss_full_many", bound},
    {NULL, NULL},
};
