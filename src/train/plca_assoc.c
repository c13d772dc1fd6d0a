/* plca_assoc.c: PLCA's similarities, contrast normalization, spatial aggregation, cycle
 * association loss, label smooth regularization and test-time aggregation (see plca.h,
 * method_plca.c and methods.md section 1). Only device ops: the similarity matrices are
 * batched GEMMs, the cycle (argmax, gather), validity masks and counts (scatter-add) never
 * leave the device. Beyond the P x P similarities (and their gradients) the association
 * keeps O(P) memory: the loss gathers the selected entries. */
#include <float.h>
#include <string.h>

#include "model/losses.h"
#include "train/plca.h"

#define TRY(expr) SEG_TRY(expr)

#define PLCA_LOG_EPS 1e-10f /* inside the logs of the negative KL */
#define PLCA_STD_EPS 1e-10f /* added to the row std */

/* x / max(||x||_2, 1e-12) along axis 1 (F.normalize): the clamp sits under the sqrt so an
 * all-zero pixel gets a finite (zero) gradient. */
static enum seg_status l2_normalize(struct seg_ag *ag, struct seg_var *x, struct seg_var **out)
{
    struct seg_var *sq, *s, *c, *r;
    TRY(seg_ag_unary(ag, SEG_UNARY_SQUARE, x, 0, 0, &sq));
    TRY(seg_ag_reduce(ag, SEG_REDUCE_SUM, sq, 1, true, &s));
    seg_var_done(sq);
    TRY(seg_ag_unary(ag, SEG_UNARY_CLAMP, s, 1e-24f, FLT_MAX, &c));
    seg_var_done(s);
    TRY(seg_ag_unary(ag, SEG_UNARY_SQRT, c, 0, 0, &r));
    seg_var_done(c);
    TRY(seg_ag_div(ag, x, r, out));
    seg_var_done(r);
    return SEG_STATUS_OK;
}

/* log(p + 1e-10) */
static enum seg_status safe_log(struct seg_ag *ag, struct seg_var *p, struct seg_var **out)
{
    struct seg_var *e;
    TRY(seg_ag_affine(ag, p, 1.0f, PLCA_LOG_EPS, &e));
    TRY(seg_ag_unary(ag, SEG_UNARY_LOG, e, 0, 0, out));
    seg_var_done(e);
    return SEG_STATUS_OK;
}

enum seg_status seg_plca_similarity(struct seg_ag *ag, enum seg_plca_metric metric,
                                    struct seg_var *query, struct seg_var *key,
                                    struct seg_var **out)
{
    const struct seg_tensor *q = query->value, *k = key->value;
    if (q->ndim != 3 || k->ndim != 3 || q->shape[0] != k->shape[0] || q->shape[1] != k->shape[1])
        return seg_error(SEG_STATUS_INVALID, "plca: similarity needs [N, C, P] maps of equal N and C");
    if (metric == SEG_PLCA_COSINE) {
        struct seg_var *qn, *kn;
        TRY(l2_normalize(ag, query, &qn));
        if (key == query)
            kn = qn;
        else
            TRY(l2_normalize(ag, key, &kn));
        TRY(seg_ag_matmul(ag, kn, qn, true, false, out)); /* [N, Pk, Pq] */
        seg_var_done(qn);
        if (kn != qn)
            seg_var_done(kn);
        return SEG_STATUS_OK;
    }
    /* -KL(q || k) = sum_c q_c log k_c - sum_c q_c log q_c: a GEMM minus a per-query term. */
    struct seg_var *lq, *lk, *cross, *qlq, *negent;
    TRY(safe_log(ag, query, &lq));
    if (key == query)
        lk = lq;
    else
        TRY(safe_log(ag, key, &lk));
    TRY(seg_ag_matmul(ag, lk, query, true, false, &cross)); /* [N, Pk, Pq] */
    if (lk != lq)
        seg_var_done(lk);
    TRY(seg_ag_mul(ag, query, lq, &qlq));
    seg_var_done(lq);
    TRY(seg_ag_reduce(ag, SEG_REDUCE_SUM, qlq, 1, true, &negent)); /* [N, 1, Pq] */
    seg_var_done(qlq);
    TRY(seg_ag_sub(ag, cross, negent, out));
    seg_var_done(cross);
    seg_var_done(negent);
    return SEG_STATUS_OK;
}

enum seg_status seg_plca_contrast_norm(struct seg_ag *ag, struct seg_var *x, struct seg_var **out)
{
    const struct seg_tensor *v = x->value;
    if (v->ndim != 3 || v->shape[1] < 2)
        return seg_error(SEG_STATUS_INVALID, "plca: contrast normalization needs [N, R >= 2, Q]");
    float inv_r1 = 1.0f / (float)(v->shape[1] - 1);
    struct seg_tensor *mu = NULL, *dc = NULL, *sq = NULL, *ss = NULL, *var = NULL, *sd = NULL, *sde = NULL;
    enum seg_status st = seg_reduce(SEG_REDUCE_MEAN, v, 1, true, &mu);
    if (!st) st = seg_binary(SEG_BINARY_SUB, v, mu, &dc);
    if (!st) st = seg_unary(SEG_UNARY_SQUARE, dc, 0, 0, &sq);
    if (!st) st = seg_reduce(SEG_REDUCE_SUM, sq, 1, true, &ss);
    if (!st) st = seg_unary(SEG_UNARY_AFFINE, ss, inv_r1, 0.0f, &var);
    if (!st) st = seg_unary(SEG_UNARY_SQRT, var, 0, 0, &sd);
    if (!st) st = seg_unary(SEG_UNARY_AFFINE, sd, 1.0f, PLCA_STD_EPS, &sde);
    seg_tensor_free(dc);
    seg_tensor_free(sq);
    seg_tensor_free(ss);
    seg_tensor_free(var);
    seg_tensor_free(sd);
    struct seg_var *muv = NULL, *sdv = NULL, *c;
    if (!st) {
        st = seg_ag_const(ag, mu, &muv);
        mu = NULL;
    }
    if (!st) {
        st = seg_ag_const(ag, sde, &sdv);
        sde = NULL;
    }
    seg_tensor_free(mu);
    seg_tensor_free(sde);
    if (st)
        return st;
    TRY(seg_ag_sub(ag, x, muv, &c));
    seg_var_done(muv);
    TRY(seg_ag_div(ag, c, sdv, out));
    seg_var_done(c);
    seg_var_done(sdv);
    return SEG_STATUS_OK;
}

enum seg_status seg_plca_aggregate(struct seg_ag *ag, enum seg_plca_metric metric, struct seg_var *x,
                                   float alpha, bool norm, struct seg_var **out)
{
    struct seg_var *m, *mn, *at, *xa, *a, *b;
    TRY(seg_plca_similarity(ag, metric, x, x, &m)); /* [N, P(j'), P(j)] */
    if (norm) {
        TRY(seg_plca_contrast_norm(ag, m, &mn));
        seg_var_done(m);
        m = mn;
    }
    TRY(seg_ag_softmax(ag, m, 1, false, &at)); /* column j: the weights w_j. over j' */
    seg_var_done(m);
    TRY(seg_ag_matmul(ag, x, at, false, false, &xa)); /* [N, C, P]: sum_j' x_j' w_jj' */
    seg_var_done(at);
    TRY(seg_ag_affine(ag, x, 1.0f - alpha, 0.0f, &a));
    TRY(seg_ag_affine(ag, xa, alpha, 0.0f, &b));
    seg_var_done(xa);
    TRY(seg_ag_add(ag, a, b, out));
    seg_var_done(a);
    seg_var_done(b);
    return SEG_STATUS_OK;
}

/* The cycle's selected entries and their constant weights, from the two similarity
 * matrices (O(P) each, so the loss gathers P entries instead of masking a P x P matrix):
 * jstar [N, 1, Ps] = j*_i, valid [N, 1, Ps] in {0, 1}: term 1 is sum_i valid_i m1[j*_i, i];
 * istar [N, 1, Pt] = i*(j), cnt [N, 1, Pt] = number of valid i with j*_i = j (a target
 * pixel reached twice counts twice): term 2 is sum_j cnt_j m2[i*(j), j];
 * inv = 1 / max(number of valid pixels, 1). */
struct cycle {
    struct seg_tensor *jstar, *valid, *istar, *cnt, *inv;
};

static void cycle_free(struct cycle *c)
{
    seg_tensor_free(c->jstar);
    seg_tensor_free(c->valid);
    seg_tensor_free(c->istar);
    seg_tensor_free(c->cnt);
    seg_tensor_free(c->inv);
    memset(c, 0, sizeof *c);
}

static enum seg_status cycle_select(const struct seg_tensor *m1, const struct seg_tensor *m2,
                                    const struct seg_tensor *labels, struct cycle *c,
                                    struct seg_tensor **nvalid)
{
    int64_t n = m1->shape[0], pt = m1->shape[1], ps = m1->shape[2];
    if (labels->dtype != SEG_DTYPE_I32 || seg_tensor_numel(labels) != n * ps)
        return seg_error(SEG_STATUS_INVALID, "plca: association labels must be I32 [N, Ps]");
    int64_t s_ps[2] = {n, ps}, s_one[1] = {1}, s_src[3] = {n, 1, ps}, s_tgt[3] = {n, 1, pt};
    struct seg_tensor *lab = NULL, *istar_i = NULL, *ystar = NULL, *yf = NULL, *ysf = NULL,
                      *ign = NULL, *ne = NULL, *eq = NULL, *nv = NULL, *nvc = NULL;
    memset(c, 0, sizeof *c);
    enum seg_status st = seg_tensor_reshape((struct seg_tensor *)labels, 2, s_ps, &lab);
    if (!st) st = seg_argreduce(false, m1, 1, false, &c->jstar); /* [N, Ps]: j*_i */
    if (!st) st = seg_argreduce(false, m2, 1, false, &c->istar); /* [N, Pt]: i*(j) */
    if (!st) st = seg_gather(c->istar, 1, c->jstar, &istar_i);    /* [N, Ps]: i*_i */
    if (!st) st = seg_gather(lab, 1, istar_i, &ystar);
    if (!st) st = seg_cast(lab, SEG_DTYPE_F32, &yf);
    if (!st) st = seg_cast(ystar, SEG_DTYPE_F32, &ysf);
    if (!st) st = seg_tensor_new(m1->be, SEG_DTYPE_F32, 1, s_one, &ign);
    if (!st) st = seg_fill(ign, 255.0f);
    if (!st) st = seg_binary(SEG_BINARY_NE, yf, ign, &ne);
    if (!st) st = seg_binary(SEG_BINARY_EQ, ysf, yf, &eq);
    if (!st) st = seg_binary(SEG_BINARY_MUL, ne, eq, &c->valid); /* [N, Ps] */
    if (!st) st = seg_scatter_add(c->valid, 1, c->jstar, pt, false, &c->cnt); /* [N, Pt] */
    if (!st) st = seg_reduce_all(SEG_REDUCE_SUM, c->valid, &nv);
    if (!st) st = seg_unary(SEG_UNARY_CLAMP, nv, 1.0f, FLT_MAX, &nvc);
    if (!st) st = seg_unary(SEG_UNARY_RECIP, nvc, 0, 0, &c->inv);
    if (!st) st = seg_tensor_set_shape(c->jstar, 3, s_src);
    if (!st) st = seg_tensor_set_shape(c->valid, 3, s_src);
    if (!st) st = seg_tensor_set_shape(c->istar, 3, s_tgt);
    if (!st) st = seg_tensor_set_shape(c->cnt, 3, s_tgt);
    if (!st && nvalid) {
        *nvalid = nv;
        nv = NULL;
    }
    if (st)
        cycle_free(c);
    struct seg_tensor *tmp[] = {lab, istar_i, ystar, yf, ysf, ign, ne, eq, nv, nvc};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++)
        seg_tensor_free(tmp[i]);
    return st;
}

/* sum_q w[q] z[idx[q], q], z = contrastive ? log_softmax_1(norm ? contrast_norm(m) : m) : m;
 * idx, w [N, 1, Q] (w is taken over). */
static enum seg_status selected_sum(struct seg_ag *ag, const struct seg_plca_assoc_opts *o,
                                    struct seg_var *m, const struct seg_tensor *idx,
                                    struct seg_tensor *w, struct seg_var **out)
{
    struct seg_var *z = m, *wv, *g, *p;
    enum seg_status st = seg_ag_const(ag, w, &wv);
    if (st)
        return st;
    if (o->contrastive) {
        struct seg_var *mn, *ls;
        if (o->contrast_norm) {
            TRY(seg_plca_contrast_norm(ag, m, &mn));
            z = mn;
        }
        TRY(seg_ag_softmax(ag, z, 1, true, &ls));
        if (z != m)
            seg_var_done(z);
        z = ls;
    }
    TRY(seg_ag_gather(ag, z, 1, idx, &g));
    if (z != m)
        seg_var_done(z);
    TRY(seg_ag_mul(ag, wv, g, &p));
    seg_var_done(wv);
    seg_var_done(g);
    TRY(seg_ag_sum_all(ag, p, out));
    seg_var_done(p);
    return SEG_STATUS_OK;
}

enum seg_status seg_plca_association(struct seg_ag *ag, const struct seg_plca_assoc_opts *o,
                                     struct seg_var *src, struct seg_var *tgt,
                                     const struct seg_tensor *labels, struct seg_var **loss,
                                     struct seg_tensor **nvalid)
{
    struct seg_var *m1, *m2, *s1, *s2, *tot, *invv, *scaled;
    if (nvalid)
        *nvalid = NULL;
    TRY(seg_plca_similarity(ag, o->metric, src, tgt, &m1)); /* [N, Pt, Ps]: s -> t rows */
    if (o->metric == SEG_PLCA_COSINE) {                     /* symmetric: the transpose */
        static const int perm[3] = {0, 2, 1};
        TRY(seg_ag_permute(ag, m1, perm, &m2));
    } else {
        TRY(seg_plca_similarity(ag, o->metric, tgt, src, &m2)); /* [N, Ps, Pt]: t -> s rows */
    }
    struct cycle c;
    TRY(cycle_select(m1->value, m2->value, labels, &c, nvalid));
    enum seg_status st = selected_sum(ag, o, m1, c.jstar, c.valid, &s1);
    c.valid = NULL;
    if (!st) {
        seg_var_done(m1);
        st = selected_sum(ag, o, m2, c.istar, c.cnt, &s2);
        c.cnt = NULL;
    }
    if (!st) st = seg_ag_const(ag, c.inv, &invv);
    if (!st) c.inv = NULL;
    cycle_free(&c);
    if (st)
        return st;
    seg_var_done(m2);
    TRY(seg_ag_add(ag, s1, s2, &tot));
    TRY(seg_ag_mul(ag, tot, invv, &scaled));
    TRY(seg_ag_affine(ag, scaled, -1.0f, 0.0f, loss));
    return SEG_STATUS_OK;
}

enum seg_status seg_plca_lsr(struct seg_ag *ag, struct seg_var *logits, float lambda,
                             struct seg_var **out)
{
    struct seg_var *ls, *m, *u, *gv, *p;
    struct seg_tensor *g = NULL;
    TRY(seg_ag_softmax(ag, logits, 1, true, &ls));
    TRY(seg_ag_reduce(ag, SEG_REDUCE_MEAN, ls, 1, false, &m));
    seg_var_done(ls);
    TRY(seg_ag_affine(ag, m, -1.0f, 0.0f, &u)); /* cross-entropy to the uniform distribution */
    seg_var_done(m);
    TRY(seg_unary(SEG_UNARY_AFFINE, u->value, 1.0f / lambda, -1.0f, &g)); /* gamma, detached */
    TRY(seg_ag_const(ag, g, &gv));
    TRY(seg_ag_mul(ag, gv, u, &p));
    seg_var_done(u);
    seg_var_done(gv);
    TRY(seg_ag_mean_all(ag, p, out));
    seg_var_done(p);
    return SEG_STATUS_OK;
}

const char *const seg_plca_term_names[SEG_PLCA_NTERMS] = {"seg", "lovasz", "fass", "cass", "lsr_s", "lsr_t"};

/* total += w * term (NULL total: starts the sum); term is kept for the caller. */
static enum seg_status add_term(struct seg_ag *ag, struct seg_var **total, struct seg_var *term, float w,
                                struct seg_plca_terms *t, enum seg_plca_term k)
{
    struct seg_var *sc, *sum;
    seg_var_keep(term);
    t->v[k] = term;
    TRY(seg_ag_affine(ag, term, w, 0.0f, &sc));
    if (!*total) {
        *total = sc;
        return SEG_STATUS_OK;
    }
    TRY(seg_ag_add(ag, *total, sc, &sum));
    seg_var_done(*total);
    seg_var_done(sc);
    *total = sum;
    return SEG_STATUS_OK;
}

/* [N, C, H, W] <-> [N, C, H*W] */
static enum seg_status flatten(struct seg_ag *ag, struct seg_var *x, struct seg_var **out)
{
    const int64_t *s = x->value->shape;
    int64_t shape[3] = {s[0], s[1], s[2] * s[3]};
    return seg_ag_reshape(ag, x, 3, shape, out);
}

static enum seg_status unflatten(struct seg_ag *ag, struct seg_var *x, const int64_t *like,
                                 struct seg_var **out)
{
    int64_t shape[4] = {like[0], x->value->shape[1], like[2], like[3]};
    return seg_ag_reshape(ag, x, 4, shape, out);
}

enum seg_status seg_plca_predict(struct seg_ag *ag, struct seg_model *m, struct seg_var *x,
                                 float alpha, bool probs_too, bool pred_norm, struct seg_var **out)
{
    struct seg_model_out o;
    struct seg_var *f, *fa, *f4, *logits, *p, *pf, *pa;
    TRY(seg_model_forward(ag, m, x, false, &o));
    seg_var_done(o.main);
    seg_var_done(o.aux);
    int64_t like[4];
    for (int d = 0; d < 4; d++)
        like[d] = o.features->value->shape[d];
    TRY(flatten(ag, o.features, &f));
    seg_var_done(o.features);
    TRY(seg_plca_aggregate(ag, SEG_PLCA_COSINE, f, alpha, true, &fa));
    seg_var_done(f);
    TRY(unflatten(ag, fa, like, &f4));
    seg_var_done(fa);
    TRY(seg_model_head(ag, m, f4, &logits));
    seg_var_done(f4);
    if (!probs_too) {
        *out = logits;
        return SEG_STATUS_OK;
    }
    TRY(seg_ag_softmax(ag, logits, 1, false, &p));
    seg_var_done(logits);
    TRY(flatten(ag, p, &pf));
    seg_var_done(p);
    TRY(seg_plca_aggregate(ag, SEG_PLCA_NEG_KL, pf, alpha, pred_norm, &pa));
    seg_var_done(pf);
    return unflatten(ag, pa, like, out);
}

/* Probabilities [N, K, h*w] of logits [N, K, h, w]. */
static enum seg_status flat_softmax(struct seg_ag *ag, struct seg_var *logits, struct seg_var **out)
{
    struct seg_var *p;
    TRY(seg_ag_softmax(ag, logits, 1, false, &p));
    TRY(flatten(ag, p, out));
    seg_var_done(p);
    return SEG_STATUS_OK;
}

/* One association level: the target map aggregated (when on), then the cycle loss. */
static enum seg_status level(struct seg_ag *ag, const struct seg_plca_opts *o, enum seg_plca_metric metric,
                             struct seg_var *s, struct seg_var *t, const struct seg_tensor *lab8,
                             struct seg_var **loss, struct seg_tensor **nvalid)
{
    struct seg_plca_assoc_opts ao = {metric, o->contrast_norm, o->contrastive};
    struct seg_var *ta = t;
    if (o->aggregation)
        TRY(seg_plca_aggregate(ag, metric, t, o->alpha,
                               metric == SEG_PLCA_COSINE ? true : o->pred_agg_norm, &ta));
    TRY(seg_plca_association(ag, &ao, s, ta, lab8, loss, nvalid));
    if (ta != t)
        seg_var_done(ta);
    return SEG_STATUS_OK;
}

static enum seg_status objective(struct seg_ag *ag, const struct seg_plca_opts *o, struct seg_var *sl,
                                 struct seg_var *sf, struct seg_var *tl, struct seg_var *tf,
                                 const struct seg_tensor *labels, struct seg_tensor *lab8,
                                 struct seg_var **total, struct seg_plca_terms *t)
{
    struct seg_var *up, *ce, *l;
    int64_t h = labels->shape[1], w = labels->shape[2];
    TRY(seg_ag_resize_bilinear(ag, sl, h, w, o->align_corners, &up));
    TRY(seg_ag_cross_entropy(ag, up, labels, NULL, 255, &ce));
    TRY(add_term(ag, total, ce, 1.0f, t, SEG_PLCA_SEG));
    if (o->lovasz) {
        struct seg_var *pr;
        TRY(seg_ag_softmax(ag, up, 1, false, &pr));
        TRY(seg_ag_lovasz_softmax(ag, pr, labels, 255, &l));
        seg_var_done(pr);
        TRY(add_term(ag, total, l, o->lovasz_w, t, SEG_PLCA_LOVASZ));
    }
    seg_var_done(up);
    if (o->fass) {
        struct seg_var *fs, *ft;
        TRY(flatten(ag, sf, &fs));
        TRY(flatten(ag, tf, &ft));
        TRY(level(ag, o, SEG_PLCA_COSINE, fs, ft, lab8, &l, &t->nvalid[0]));
        seg_var_done(fs);
        seg_var_done(ft);
        TRY(add_term(ag, total, l, o->fass_w, t, SEG_PLCA_FASS));
    }
    if (o->cass) {
        struct seg_var *ps, *pt;
        TRY(flat_softmax(ag, sl, &ps));
        TRY(flat_softmax(ag, tl, &pt));
        TRY(level(ag, o, SEG_PLCA_NEG_KL, ps, pt, lab8, &l, &t->nvalid[1]));
        seg_var_done(ps);
        seg_var_done(pt);
        TRY(add_term(ag, total, l, o->cass_w, t, SEG_PLCA_CASS));
    }
    if (o->lsr) {
        TRY(seg_plca_lsr(ag, sl, o->lambda, &l));
        TRY(add_term(ag, total, l, o->lsr_w, t, SEG_PLCA_LSR_S));
        TRY(seg_plca_lsr(ag, tl, o->lambda, &l));
        TRY(add_term(ag, total, l, o->lsr_w, t, SEG_PLCA_LSR_T));
    }
    return SEG_STATUS_OK;
}

enum seg_status seg_plca_objective(struct seg_ag *ag, const struct seg_plca_opts *o,
                                   struct seg_var *src_logits, struct seg_var *src_feat,
                                   struct seg_var *tgt_logits, struct seg_var *tgt_feat,
                                   const struct seg_tensor *labels, struct seg_var **total,
                                   struct seg_plca_terms *terms)
{
    memset(terms, 0, sizeof *terms);
    *total = NULL;
    const int64_t *ls = src_logits->value->shape;
    if (src_logits->value->ndim != 4 || labels->ndim != 3 || labels->shape[0] != ls[0] ||
        !seg_tensor_same_shape(src_logits->value, tgt_logits->value) ||
        !seg_tensor_same_shape(src_feat->value, tgt_feat->value))
        return seg_error(SEG_STATUS_INVALID, "plca: source and target outputs must match, labels be [N, H, W]");
    struct seg_tensor *lab8 = NULL;
    int64_t s8[2] = {ls[0], ls[2] * ls[3]};
    enum seg_status st = seg_resize_nearest(labels, ls[2], ls[3], &lab8);
    if (!st) st = seg_tensor_set_shape(lab8, 2, s8);
    if (!st) st = objective(ag, o, src_logits, src_feat, tgt_logits, tgt_feat, labels, lab8, total, terms);
    seg_tensor_free(lab8);
    return st;
}
