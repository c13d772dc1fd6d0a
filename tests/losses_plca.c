/* losses_plca.c: PLCA's terms (src/train/plca.h) against tests/loss_ref/plca.py. The
 * reference keeps the paper's layout (query pixel as the row); segda keeps the transpose,
 * so similarity outputs are permuted back before the comparison. */
#include <string.h>

#include "losses.h"
#include "train/plca.h"


static const int swap12[3] = {0, 2, 1};

/* sum(x * r) with r the case's constant input */
static enum seg_status weighted_sum(struct lt_ctx *c, struct seg_var *x, const char *r_name,
                                    struct seg_var **out)
{
    struct seg_var *r = lt_var(c, r_name), *p;
    NEED(r);
    TRY(seg_ag_mul(lt_ag(c), x, r, &p));
    return seg_ag_sum_all(lt_ag(c), p, out);
}

static enum seg_status cosine_sim(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *s = lt_var(c, "src"), *t = lt_var(c, "tgt"), *m, *d;
    NEED(s && t);
    TRY(seg_plca_similarity(lt_ag(c), SEG_PLCA_COSINE, s, t, &m));
    TRY(seg_ag_permute(lt_ag(c), m, swap12, &d));
    TRY(lt_output(c, "sim", d));
    return weighted_sum(c, d, "r", loss);
}

static enum seg_status kl_sim(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_ag *ag = lt_ag(c);
    struct seg_var *ls = lt_var(c, "logits_s"), *lt = lt_var(c, "logits_t"), *ps, *pt, *m1, *m2, *d1, *d2, *a, *b;
    NEED(ls && lt);
    TRY(seg_ag_softmax(ag, ls, 1, false, &ps));
    TRY(seg_ag_softmax(ag, lt, 1, false, &pt));
    TRY(seg_plca_similarity(ag, SEG_PLCA_NEG_KL, ps, pt, &m1)); /* [N, Pt, Ps] */
    TRY(seg_plca_similarity(ag, SEG_PLCA_NEG_KL, pt, ps, &m2)); /* [N, Ps, Pt] */
    TRY(seg_ag_permute(ag, m1, swap12, &d1));
    TRY(seg_ag_permute(ag, m2, swap12, &d2));
    TRY(lt_output(c, "sim_st", d1));
    TRY(lt_output(c, "sim_ts", d2));
    TRY(weighted_sum(c, d1, "r1", &a));
    TRY(weighted_sum(c, d2, "r2", &b));
    return seg_ag_add(ag, a, b, loss);
}

static enum seg_status contrast_norm(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *x = lt_var(c, "x"), *xt, *zt, *z;
    NEED(x);
    TRY(seg_ag_permute(lt_ag(c), x, swap12, &xt)); /* rows of the reference along axis 1 */
    TRY(seg_plca_contrast_norm(lt_ag(c), xt, &zt));
    TRY(seg_ag_permute(lt_ag(c), zt, swap12, &z));
    TRY(lt_output(c, "z", z));
    return weighted_sum(c, z, "r", loss);
}

static enum seg_status agg_features(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *x = lt_var(c, "x"), *y;
    NEED(x);
    TRY(seg_plca_aggregate(lt_ag(c), SEG_PLCA_COSINE, x, (float)lt_param(c, "alpha", 0.5), true, &y));
    TRY(lt_output(c, "agg", y));
    return weighted_sum(c, y, "r", loss);
}

static enum seg_status agg_pred(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *l = lt_var(c, "logits"), *p, *y;
    NEED(l);
    TRY(seg_ag_softmax(lt_ag(c), l, 1, false, &p));
    TRY(seg_plca_aggregate(lt_ag(c), SEG_PLCA_NEG_KL, p, (float)lt_param(c, "alpha", 0.5),
                           lt_param(c, "norm", 0) != 0, &y));
    TRY(lt_output(c, "agg", y));
    return weighted_sum(c, y, "r", loss);
}

/* The cycle association of either level, with the aggregation of the target first. */
static enum seg_status association(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_ag *ag = lt_ag(c);
    bool kl = !strcmp(lt_param_str(c, "metric", "cosine"), "neg_kl");
    struct seg_plca_assoc_opts o = {kl ? SEG_PLCA_NEG_KL : SEG_PLCA_COSINE,
                                    lt_param(c, "contrast_norm", 1) != 0, lt_param(c, "contrastive", 1) != 0};
    const struct seg_tensor *y = lt_tensor(c, "labels");
    struct seg_var *s, *t, *ta, *nv;
    struct seg_tensor *nvalid = NULL;
    NEED(y);
    if (kl) {
        struct seg_var *ls = lt_var(c, "logits_s"), *lt = lt_var(c, "logits_t");
        NEED(ls && lt);
        TRY(seg_ag_softmax(ag, ls, 1, false, &s));
        TRY(seg_ag_softmax(ag, lt, 1, false, &t));
    } else {
        s = lt_var(c, "src");
        t = lt_var(c, "tgt");
        NEED(s && t);
    }
    ta = t;
    if (lt_param(c, "aggregation", 1) != 0)
        TRY(seg_plca_aggregate(ag, o.metric, t, (float)lt_param(c, "alpha", 0.5),
                               kl ? lt_param(c, "pred_agg_norm", 0) != 0 : true, &ta));
    TRY(seg_plca_association(ag, &o, s, ta, y, loss, &nvalid));
    TRY(seg_ag_const(ag, nvalid, &nv));
    return lt_output(c, "nvalid", nv);
}

static enum seg_status lsr(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *x = lt_var(c, "logits");
    NEED(x);
    return seg_plca_lsr(lt_ag(c), x, (float)lt_param(c, "lambda", 10), loss);
}

static enum seg_status objective(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *sl = lt_var(c, "src_logits"), *tl = lt_var(c, "tgt_logits");
    struct seg_var *sf = lt_var(c, "src_feat"), *tf = lt_var(c, "tgt_feat");
    const struct seg_tensor *y = lt_tensor(c, "labels");
    NEED(sl && tl && sf && tf && y);
    struct seg_plca_opts o = {true, true, true, true, true, false, true, true, false,
                              0.75f, 0.1f, 0.1f, 0.01f, 10.0f, 0.5f};
    struct seg_plca_terms t;
    enum seg_status st = seg_plca_objective(lt_ag(c), &o, sl, sf, tl, tf, y, loss, &t);
    seg_tensor_free(t.nvalid[0]);
    seg_tensor_free(t.nvalid[1]);
    for (int k = 0; !st && k < SEG_PLCA_NTERMS; k++)
        st = lt_output(c, seg_plca_term_names[k], t.v[k]);
    return st;
}

const struct lt_case lt_cases_plca[] = {
    {"plca_cosine_sim", cosine_sim},
    {"plca_kl_sim", kl_sim},
    {"plca_contrast_norm", contrast_norm},
    {"plca_agg_features", agg_features},
    {"plca_agg_pred", agg_pred},
    {"plca_agg_pred_norm", agg_pred},
    {"plca_fass", association},
    {"plca_fass_no_agg", association},
    {"plca_fass_sim_plca", association},
    {"plca_fass_no_contrast_norm", association},
    {"plca_fass_none_valid", association},
    {"plca_cass", association},
    {"plca_cass_no_agg", association},
    {"plca_cass_agg_norm", association},
    {"plca_lsr", lsr},
    {"plca_objective", objective},
    {NULL, NULL},
};
