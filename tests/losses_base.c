/* losses_base.c: the loss terms every method shares (tests/loss_ref/base.py). */
#include "losses.h"


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

const struct lt_case lt_cases_base[] = {
    {"base_entropy", entropy},
    {"base_kl_div", kl},
    {"base_bce_with_logits", bce},
    {"base_lovasz_softmax", lovasz},
    {NULL, NULL},
};
