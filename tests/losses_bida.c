/* losses_bida.c: BiDA's terms (src/train/bida_terms.c) against tests/loss_ref/bida.py. */
#include "losses.h"
#include "train/bida.h"


/* A plain tensor as a tape constant (the tape takes a copy). */
static enum seg_status const_of(struct lt_ctx *c, const struct seg_tensor *t, struct seg_var **out)
{
    struct seg_tensor *copy = NULL;
    TRY(seg_clone(t, &copy));
    enum seg_status st = seg_ag_const(lt_ag(c), copy, out);
    if (st)
        seg_tensor_free(copy);
    return st;
}

/* loss = sum(x * w): checks a non-differentiable result once more through d loss / d w. */
static enum seg_status weighted_sum(struct lt_ctx *c, const struct seg_tensor *x, struct seg_var **loss)
{
    struct seg_var *w = lt_var(c, "w"), *xv, *m;
    NEED(w);
    TRY(const_of(c, x, &xv));
    TRY(seg_ag_mul(lt_ag(c), xv, w, &m));
    return seg_ag_sum_all(lt_ag(c), m, loss);
}

static enum seg_status prototypes(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *f = lt_var(c, "feat"), *w = lt_var(c, "w"), *rho, *m;
    const struct seg_tensor *y = lt_tensor(c, "labels");
    struct seg_tensor *present = NULL;
    NEED(f && w && y);
    TRY(bida_prototypes(lt_ag(c), f, y, (int)w->value->shape[0], &rho, &present));
    enum seg_status st = lt_output(c, "rho", rho);
    if (!st) st = lt_output_tensor(c, "present", present);
    seg_tensor_free(present);
    if (!st) st = seg_ag_mul(lt_ag(c), rho, w, &m);
    if (!st) st = seg_ag_sum_all(lt_ag(c), m, loss);
    return st;
}

static enum seg_status cosine(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *f = lt_var(c, "feat"), *rho = lt_var(c, "rho"), *w = lt_var(c, "w"), *sim, *m;
    NEED(f && rho && w);
    TRY(bida_cosine(lt_ag(c), f, rho, &sim));
    TRY(lt_output(c, "sim", sim));
    TRY(seg_ag_mul(lt_ag(c), sim, w, &m));
    return seg_ag_sum_all(lt_ag(c), m, loss);
}

/* forward: target pixels vs source prototypes; backward: source pixels vs target ones. */
static enum seg_status contrast(struct lt_ctx *c, struct seg_var **loss, bool forward)
{
    struct seg_var *fs = lt_var(c, "feat_s"), *ft = lt_var(c, "feat_t"), *rho, *n;
    const struct seg_tensor *ys = lt_tensor(c, "labels_s"), *yt = lt_tensor(c, "labels_t");
    struct seg_tensor *present = NULL, *cnt = NULL;
    NEED(fs && ft && ys && yt);
    int k = 5;
    TRY(bida_prototypes(lt_ag(c), forward ? fs : ft, forward ? ys : yt, k, &rho, &present));
    enum seg_status st = bida_contrast(lt_ag(c), forward ? ft : fs, rho, present, forward ? yt : ys,
                                       (float)lt_param(c, "tau", 0.1), loss, &cnt);
    seg_tensor_free(present);
    if (!st) st = seg_ag_const(lt_ag(c), cnt, &n);
    else seg_tensor_free(cnt);
    if (!st) st = lt_output(c, "npix", n);
    return st;
}

static enum seg_status fcl(struct lt_ctx *c, struct seg_var **loss) { return contrast(c, loss, true); }
static enum seg_status bcl(struct lt_ctx *c, struct seg_var **loss) { return contrast(c, loss, false); }

static enum seg_status dynamic_hybrid(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *fs = lt_var(c, "feat_s"), *rho;
    const struct seg_tensor *ft = lt_tensor(c, "feat_t"), *ys = lt_tensor(c, "labels_s"),
                            *mu_s = lt_tensor(c, "mu_s"), *mu_t = lt_tensor(c, "mu_t"),
                            *seen = lt_tensor(c, "seen"), *yf = lt_tensor(c, "static");
    struct seg_tensor *present = NULL, *rho_st = NULL, *yd = NULL, *yh = NULL;
    NEED(fs && ft && ys && mu_s && mu_t && seen && yf);
    TRY(bida_prototypes(lt_ag(c), fs, ys, (int)mu_s->shape[0], &rho, &present));
    enum seg_status st = bida_calibrate(rho->value, mu_s, mu_t, seen, &rho_st);
    if (!st) st = bida_dynamic_labels(ft, rho_st, present, (float)lt_param(c, "thr", 0.5), &yd);
    if (!st) st = bida_hybrid_labels(yd, yf, &yh);
    if (!st) st = lt_output_tensor(c, "rho_st", rho_st);
    if (!st) st = lt_output_tensor(c, "dynamic", yd);
    if (!st) st = lt_output_tensor(c, "hybrid", yh);
    if (!st) st = weighted_sum(c, rho_st, loss);
    seg_tensor_free(present);
    seg_tensor_free(rho_st);
    seg_tensor_free(yd);
    seg_tensor_free(yh);
    return st;
}

static enum seg_status ema(struct lt_ctx *c, struct seg_var **loss)
{
    const struct seg_tensor *mu0 = lt_tensor(c, "mu"), *rho = lt_tensor(c, "rho"), *seen0 = lt_tensor(c, "seen"),
                            *present = lt_tensor(c, "present");
    struct seg_tensor *mu = NULL, *seen = NULL;
    NEED(mu0 && rho && seen0 && present);
    enum seg_status st = seg_clone(mu0, &mu);
    if (!st) st = seg_clone(seen0, &seen);
    if (!st) st = bida_ema_update(mu, seen, rho, present, (float)lt_param(c, "lambda", 0.9));
    if (!st) st = lt_output_tensor(c, "mu_new", mu);
    if (!st) st = lt_output_tensor(c, "seen_new", seen);
    if (!st) st = weighted_sum(c, mu, loss);
    seg_tensor_free(mu);
    seg_tensor_free(seen);
    return st;
}

static enum seg_status static_cbst(struct lt_ctx *c, struct seg_var **loss)
{
    const struct seg_tensor *prob = lt_tensor(c, "prob");
    struct seg_tensor *thr = NULL, *present = NULL, *lab = NULL;
    NEED(prob);
    enum seg_status st = bida_class_thresholds(prob, (float)lt_param(c, "portion", 0.2), &thr, &present);
    if (!st) st = bida_static_labels(prob, thr, &lab);
    if (!st) st = lt_output_tensor(c, "thr", thr);
    if (!st) st = lt_output_tensor(c, "labels", lab);
    if (!st) st = weighted_sum(c, thr, loss);
    seg_tensor_free(thr);
    seg_tensor_free(present);
    seg_tensor_free(lab);
    return st;
}

static enum seg_status spatial_prior(struct lt_ctx *c, struct seg_var **loss)
{
    const struct seg_tensor *c0 = lt_tensor(c, "counts"), *ys = lt_tensor(c, "labels"), *prob = lt_tensor(c, "prob");
    struct seg_tensor *counts = NULL, *q = NULL, *wp = NULL, *thr = NULL, *present = NULL;
    NEED(c0 && ys && prob);
    enum seg_status st = seg_clone(c0, &counts);
    if (!st) st = bida_prior_update(counts, ys, NULL);
    if (!st) st = bida_prior_weights(counts, &q);
    if (!st)
        st = bida_apply_prior(prob, q, (int64_t)lt_param(c, "grid_h", 0), (int64_t)lt_param(c, "grid_w", 0),
                              (int64_t)lt_param(c, "h", 0), (int64_t)lt_param(c, "w", 0), &wp);
    if (!st) st = bida_class_thresholds(wp, (float)lt_param(c, "portion", 0.2), &thr, &present);
    if (!st) st = lt_output_tensor(c, "counts_new", counts);
    if (!st) st = lt_output_tensor(c, "weighted", wp);
    if (!st) st = lt_output_tensor(c, "thr", thr);
    if (!st) st = weighted_sum(c, wp, loss);
    struct seg_tensor *tmp[] = {counts, q, wp, thr, present};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++)
        seg_tensor_free(tmp[i]);
    return st;
}

static enum seg_status distill_kl(struct lt_ctx *c, struct seg_var **loss)
{
    const struct seg_tensor *t = lt_tensor(c, "teacher");
    struct seg_var *s = lt_var(c, "student");
    NEED(t && s);
    return bida_distill_kl(lt_ag(c), t, s, loss);
}

static enum seg_status entropy_double(struct lt_ctx *c, struct seg_var **loss)
{
    struct seg_var *x = lt_var(c, "logits");
    NEED(x);
    return bida_entropy_double_softmax(lt_ag(c), x, loss);
}

const struct lt_case lt_cases_bida[] = {
    {"bida_prototypes", prototypes},
    {"bida_cosine", cosine},
    {"bida_fcl", fcl},
    {"bida_bcl", bcl},
    {"bida_dynamic_hybrid", dynamic_hybrid},
    {"bida_ema", ema},
    {"bida_static_cbst", static_cbst},
    {"bida_spatial_prior", spatial_prior},
    {"bida_distill_kl", distill_kl},
    {"bida_entropy_double_softmax", entropy_double},
    {NULL, NULL},
};
