/* losses_base.c: the loss terms every method shares (tests/loss_ref/base.py). */
#include "losses.h"
#include "train/methods.h"


static enum seg_status entropy(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *x = lt_var(c, "logits");
    NEED(x);
    return seg_ag_entropy(lt_ag(c), x, loss);
}

static enum seg_status kl(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *lq = lt_var(c, "log_q"), *p = lt_var(c, "p");
    NEED(lq && p);
    return seg_ag_kl_div(lt_ag(c), lq, p, loss);
}

static enum seg_status bce(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *x = lt_var(c, "x");
    const struct seg_tensor *y = lt_tensor(c, "target");
    NEED(x && y);
    return seg_ag_bce_with_logits(lt_ag(c), x, y, loss);
}

static enum seg_status lovasz(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *x = lt_var(c, "logits"), *p;
    const struct seg_tensor *y = lt_tensor(c, "labels");
    NEED(x && y);
    enum seg_status st = seg_ag_softmax(lt_ag(c), x, 1, false, &p);
    if (!st)
        st = seg_ag_lovasz_softmax(lt_ag(c), p, y, (int)lt_param(c, "ignore_index", 255), loss);
    return st;
}

/* The supervised loss every method starts from (seg_supervised_terms): logits upsampled to the
 * labels, CE(main) + aux_weight CE(aux) + source_lovasz Lovasz(softmax(main)). */
static enum seg_status supervised(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *m = lt_var(c, "main"), *a = lt_var(c, "aux"), *terms[3];
    const struct seg_tensor *y = lt_tensor(c, "labels");
    NEED(m && a && y);
    TRY(seg_supervised_terms(lt_ag(c), m, a, y, lt_param(c, "aux_weight", 0), lt_param(c, "source_lovasz", 0), terms,
                             loss));
    TRY(lt_output(c, "ce", terms[0]));
    return terms[2] ? lt_output(c, "lovasz", terms[2]) : SEG_STATUS_OK;
}

/* sum(gather(x, 1, idx) * r): the gradient scatter-adds over repeated indices. */
static enum seg_status gather(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *x = lt_var(c, "x"), *r = lt_var(c, "r"), *y, *p;
    const struct seg_tensor *idx = lt_tensor(c, "idx");
    NEED(x && r && idx);
    TRY(seg_ag_gather(lt_ag(c), x, 1, idx, &y));
    TRY(lt_output(c, "y", y));
    TRY(seg_ag_mul(lt_ag(c), y, r, &p));
    return seg_ag_sum_all(lt_ag(c), p, loss);
}

const struct lt_case lt_cases_base[] = {
    {"base_entropy", entropy},
    {"base_kl_div", kl},
    {"base_bce_with_logits", bce},
    {"base_lovasz_softmax", lovasz},
    {"base_supervised", supervised},
    {"base_supervised_lovasz", supervised},
    {"base_gather", gather},
    {NULL, NULL},
};
