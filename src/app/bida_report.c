/* bida_report.c: `segda pseudo-label --report` on a BiDA checkpoint: the density and accuracy
 * of its four kinds of target pseudo labels against the target's own labels, as the paper's
 * Table 4: static (CBST thresholds of the checkpoint's round), dynamic without calibration
 * (pixel-prototype correspondence with the EMA source prototypes mu_S), dynamic with
 * calibration (mu_S + xi, xi = mu_T - mu_S, Eq. 6-7) and hybrid (calibrated dynamic first,
 * static elsewhere, Eq. 10). Labels are compared on the stride-8 grid where BiDA makes them
 * (ground truth resized by nearest neighbour); density = labelled pixels / pixels whose
 * ground truth is not ignored. Layer4 features (bida.feature = layer4) only. A checkpoint
 * trained with bida.spatial_prior weighs the static labels' confidences by its prior, as
 * training did. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/data_setup.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "train/config.h"
#include "train/bida.h"

#define NKINDS 4

static enum seg_status state_tensor(struct seg_backend *be, const struct seg_st_file *f, const char *path,
                                    const char *name, int64_t rows, int64_t cols, struct seg_tensor **out)
{
    const struct seg_st_tensor *s = seg_st_find(f, name);
    if (!s || s->dtype != SEG_ST_F32 || s->nbytes != (size_t)(rows * cols) * 4)
        return seg_error(SEG_STATUS_FORMAT, "%s: %s missing or not F32 [%lld, %lld]", path, name,
                         (long long)rows, (long long)cols);
    int64_t shape[2] = {rows, cols};
    SEG_TRY(seg_tensor_new(be, SEG_DTYPE_F32, 2, shape, out));
    return seg_tensor_write(*out, s->data, s->nbytes);
}

bool seg_bida_report_applies(const char *weights)
{
    struct seg_st_file f;
    if (seg_st_read(weights, &f))
        return false;
    bool yes = seg_st_find(&f, "state.bida_mu_s") != NULL;
    seg_st_free(&f);
    return yes;
}

struct kinds {
    struct seg_tensor *lab[NKINDS];
};

/* CBST-SP's weights of the checkpoint's spatial prior: q [C, gh*gw], or NULL without one. */
struct prior {
    struct seg_tensor *q;
    int                gw, gh;
};

/* One batch: the four label maps [N, P] and the ground truth on the grid. */
static enum seg_status batch_labels(struct seg_model *m, struct seg_ag *ag, const struct seg_data_batch *b,
                                    struct seg_tensor *const state[4], const struct prior *pr, float dyn_thr,
                                    struct kinds *k, struct seg_tensor **gt)
{
    struct seg_backend *be = m->be;
    int nc = m->cfg.num_classes;
    int64_t xs[4] = {b->n, 3, b->h, b->w}, ls[3] = {b->n, b->lh, b->lw};
    struct seg_tensor *x = NULL, *labels = NULL, *prob = NULL, *thr = NULL, *pres = NULL, *cal = NULL;
    struct seg_tensor *feat = NULL, *prob3 = NULL;
    struct seg_var *xv = NULL;
    struct seg_model_out o;
    enum seg_status st = seg_tensor_new(be, SEG_DTYPE_F32, 4, xs, &x);
    if (!st) st = seg_tensor_write(x, b->images, (size_t)b->n * 3 * b->h * b->w * sizeof(float));
    if (!st) st = seg_tensor_new(be, SEG_DTYPE_I32, 3, ls, &labels);
    if (!st) st = seg_tensor_write(labels, b->labels, (size_t)b->n * b->lh * b->lw * sizeof(int32_t));
    if (!st) {
        st = seg_ag_const(ag, x, &xv);
        x = NULL;
    }
    if (!st) st = seg_model_forward(ag, m, xv, false, &o);
    if (!st && !o.features)
        st = seg_error(SEG_STATUS_UNSUPPORTED, "bida report: the model exposes no layer4 features");
    int64_t h = 0, w = 0, d = 0;
    if (!st) {
        h = o.main->value->shape[2];
        w = o.main->value->shape[3];
        d = o.features->value->shape[1];
        int64_t ps[3] = {b->n, nc, h * w}, fs[3] = {b->n, d, h * w};
        st = seg_softmax(o.main->value, 1, false, &prob);
        if (!st) st = seg_tensor_reshape(prob, 3, ps, &prob3);
        if (!st) st = seg_tensor_reshape(o.features->value, 3, fs, &feat);
        if (!st && pr->q) {
            struct seg_tensor *weighted = NULL;
            st = bida_apply_prior(prob3, pr->q, pr->gh, pr->gw, h, w, &weighted);
            seg_tensor_free(prob3);
            prob3 = weighted;
        }
    }
    /* static thresholds: the round's mean CBST threshold per class (none seen: never) */
    float host[2 * 256], t[256], present[256];
    if (!st) st = seg_tensor_read(state[3], host, (size_t)2 * nc * sizeof(float));
    for (int c = 0; !st && c < nc; c++)
        t[c] = host[nc + c] > 0 ? host[c] / host[nc + c] : 2.0f;
    if (!st) st = seg_tensor_read(state[2], host, (size_t)2 * nc * sizeof(float));
    for (int c = 0; !st && c < nc; c++)
        present[c] = host[c] > 0 ? 1.0f : 0.0f;
    int64_t cs[1] = {nc};
    if (!st) st = seg_tensor_new(be, SEG_DTYPE_F32, 1, cs, &thr);
    if (!st) st = seg_tensor_write(thr, t, (size_t)nc * sizeof(float));
    if (!st) st = seg_tensor_new(be, SEG_DTYPE_F32, 1, cs, &pres);
    if (!st) st = seg_tensor_write(pres, present, (size_t)nc * sizeof(float));
    if (!st) st = bida_static_labels(prob3, thr, &k->lab[0]);
    if (!st) st = bida_dynamic_labels(feat, state[0], pres, dyn_thr, &k->lab[1]);
    if (!st) st = bida_calibrate(state[0], state[0], state[1], state[2], &cal);
    if (!st) st = bida_dynamic_labels(feat, cal, pres, dyn_thr, &k->lab[2]);
    if (!st) st = bida_hybrid_labels(k->lab[2], k->lab[0], &k->lab[3]);
    if (!st) st = bida_labels_to_grid(labels, h, w, gt);
    struct seg_tensor *tmp[] = {x, labels, prob, prob3, feat, thr, pres, cal};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++)
        seg_tensor_free(tmp[i]);
    seg_ag_reset(ag);
    return st;
}

enum seg_status seg_bida_report(const char *weights, const struct seg_config *cfg, struct seg_model *m,
                                struct seg_ag *ag, int max_batches)
{
    if (strcmp(seg_config_str(cfg, "bida.feature"), "layer4"))
        return seg_error(SEG_STATUS_UNSUPPORTED, "bida report: bida.feature = %s (layer4 only)",
                         seg_config_str(cfg, "bida.feature"));
    double dyn_thr;
    SEG_TRY(seg_config_float(cfg, "bida.dyn_threshold", &dyn_thr));
    int nc = m->cfg.num_classes;
    struct seg_st_file f;
    SEG_TRY(seg_st_read(weights, &f));
    const struct seg_st_tensor *mu = seg_st_find(&f, "state.bida_mu_s");
    int64_t d = mu && mu->ndim == 2 ? mu->shape[1] : 0;
    struct seg_tensor *state[4] = {NULL, NULL, NULL, NULL}; /* mu_s, mu_t, seen, thr */
    enum seg_status st = state_tensor(m->be, &f, weights, "state.bida_mu_s", nc, d, &state[0]);
    if (!st) st = state_tensor(m->be, &f, weights, "state.bida_mu_t", nc, d, &state[1]);
    if (!st) st = state_tensor(m->be, &f, weights, "state.bida_seen", 2, nc, &state[2]);
    if (!st) st = state_tensor(m->be, &f, weights, "state.bida_thr", 2, nc, &state[3]);
    struct prior pr = {NULL, 0, 0};
    if (!st && seg_st_find(&f, "state.bida_prior")) {
        struct seg_tensor *counts = NULL;
        st = seg_config_size(cfg, "bida.prior_grid", &pr.gw, &pr.gh);
        if (!st) st = state_tensor(m->be, &f, weights, "state.bida_prior", nc, (int64_t)pr.gh * pr.gw, &counts);
        if (!st) st = bida_prior_weights(counts, &pr.q);
        seg_tensor_free(counts);
    }
    seg_st_free(&f);
    struct seg_domain dom;
    bool open = false;
    if (!st) st = seg_domain_open(cfg, SEG_ROLE_VAL, 0, &dom);
    open = !st;
    bool prev = seg_ag_set_grad_enabled(ag, false);
    uint64_t labelled = 0, kept[NKINDS] = {0}, right[NKINDS] = {0};
    for (int done = 0; !st && (!max_batches || done < max_batches); done++) {
        struct seg_data_batch *b = NULL;
        st = seg_loader_next(dom.loader, &b);
        if (st || !b)
            break;
        if (!b->labels) {
            seg_loader_release(dom.loader, b);
            st = seg_error(SEG_STATUS_INVALID, "bida report: the target set has no labels to compare with");
            break;
        }
        struct kinds k = {{NULL}};
        struct seg_tensor *gt = NULL;
        st = batch_labels(m, ag, b, state, &pr, (float)dyn_thr, &k, &gt);
        size_t n = st ? 0 : (size_t)seg_tensor_numel(gt);
        int32_t *g = n ? malloc(n * sizeof *g) : NULL, *l = n ? malloc(n * sizeof *l) : NULL;
        if (!st && (!g || !l))
            st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "bida report: out of host memory");
        if (!st) st = seg_tensor_read(gt, g, n * sizeof *g);
        for (size_t p = 0; !st && p < n; p++)
            labelled += g[p] != 255;
        for (int kind = 0; !st && kind < NKINDS; kind++) {
            st = seg_tensor_read(k.lab[kind], l, n * sizeof *l);
            for (size_t p = 0; !st && p < n; p++)
                if (g[p] != 255 && l[p] != 255) {
                    kept[kind]++;
                    right[kind] += l[p] == g[p];
                }
        }
        free(g);
        free(l);
        seg_tensor_free(gt);
        for (int kind = 0; kind < NKINDS; kind++)
            seg_tensor_free(k.lab[kind]);
        seg_loader_release(dom.loader, b);
    }
    seg_ag_set_grad_enabled(ag, prev);
    if (open)
        seg_domain_close(&dom);
    for (int i = 0; i < 4; i++)
        seg_tensor_free(state[i]);
    seg_tensor_free(pr.q);
    if (st)
        return st;
    static const char *const names[NKINDS] = {"static (CBST)", "dynamic", "dynamic + calibration", "hybrid"};
    printf("\nBiDA pseudo labels on the stride-8 grid (the paper's Table 4), T = %.2f:\n", dyn_thr);
    printf("%-24s %9s %9s\n", "labels", "density", "accuracy");
    for (int kind = 0; kind < NKINDS; kind++)
        printf("%-24s %8.2f%% %8.2f%%\n", names[kind], labelled ? 100.0 * kept[kind] / labelled : 0.0,
               kept[kind] ? 100.0 * right[kind] / kept[kind] : 0.0);
    return SEG_STATUS_OK;
}
