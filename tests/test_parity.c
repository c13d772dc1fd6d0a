/* test_parity.c: DeepLab-v2 in segda against the PyTorch reference (tools/deeplab_torch.py,
 * run in float64): forward logits, the loss, the gradient of every trainable parameter after
 * one cross-entropy backward, and the parameters after one SGD step; with running statistics
 * also evaluation's upsampled softmax, corners aligned or not (eval.align_corners). The
 * inputs' aspp_rates give model.aspp_rates (the reference sums that many branches). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/model.h"
#include "model/optim.h"
#include "model/safetensors.h"
#include "train/evaluate.h"

static const char *g_backend = "cpu", *g_dir = ".";
static double g_tol = 1e-3;
/* Gradients: max |a - r| / max |r| (default) or ||a - r||_2 / ||r||_2 (--l2), the latter
 * for deep networks where a pre-activation within one float32 ulp of zero flips a ReLU. */
static bool g_l2 = false;
static bool g_expect_chunked = false;

struct worst {
    double err;
    char   name[96];
};

/* Relative error max|a - r| / max|r| of a device tensor against a float32 reference. */
static double rel_error(const struct seg_tensor *t, const struct seg_st_tensor *ref)
{
    int64_t n = seg_tensor_numel(t);
    if ((size_t)n * 4 != ref->nbytes)
        return INFINITY;
    float *a = malloc((size_t)n * 4);
    if (seg_tensor_read(t, a, (size_t)n * 4)) {
        free(a);
        return INFINITY;
    }
    const float *r = ref->data;
    double maxe = 0, maxr = 1e-12, se = 0, sr = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - r[i]);
        if (!(e <= maxe))
            maxe = e; /* NaN sticks */
        maxr = fmax(maxr, fabs(r[i]));
        se += e * e;
        sr += (double)r[i] * r[i];
    }
    free(a);
    return g_l2 ? sqrt(se / sr) : maxe / maxr;
}

static void note(struct worst *w, double e, const char *name)
{
    if (!(e <= w->err)) {
        w->err = e;
        snprintf(w->name, sizeof w->name, "%s", name);
    }
}

static void test_parity(void **state)
{
    char path[1024];
    struct seg_backend *be = NULL;
    if (seg_backend_create(g_backend, &be))
        fail_msg("backend %s: %s", g_backend, seg_last_error());
    struct seg_model_config cfg;
    snprintf(path, sizeof path, "%s/weights.safetensors", g_dir);
    assert_int_equal(seg_model_config_from_file(path, &cfg), SEG_STATUS_OK);
    struct seg_st_file in, ex;
    char ipath[1024], epath[1024];
    snprintf(ipath, sizeof ipath, "%s/inputs.safetensors", g_dir);
    snprintf(epath, sizeof epath, "%s/expected.safetensors", g_dir);
    if (seg_st_read(ipath, &in) || seg_st_read(epath, &ex))
        fail_msg("%s", seg_last_error());
    const char *bn = seg_st_meta_get(&in, "bn");
    bool batch = bn && !strcmp(bn, "batch");
    cfg.bn = batch ? SEG_BN_POLICY_FROZEN_AFFINE : SEG_BN_POLICY_FROZEN;
    const char *rates = seg_st_meta_get(&in, "aspp_rates");
    if (rates && seg_aspp_rates_parse(rates, cfg.aspp_rates))
        fail_msg("%s", seg_last_error());
    struct seg_model *m = NULL;
    if (seg_model_create(be, &cfg, &m) || seg_model_load(m, path, true))
        fail_msg("%s", seg_last_error());

    const struct seg_st_tensor *xs = seg_st_find(&in, "x"), *ls = seg_st_find(&in, "labels");
    assert_non_null(xs);
    assert_non_null(ls);
    struct seg_tensor *x = NULL, *labels = NULL;
    assert_int_equal(seg_tensor_new(be, SEG_DTYPE_F32, 4, xs->shape, &x), 0);
    assert_int_equal(seg_tensor_write(x, xs->data, xs->nbytes), 0);
    assert_int_equal(seg_tensor_new(be, SEG_DTYPE_I32, 3, ls->shape, &labels), 0);
    assert_int_equal(seg_tensor_write(labels, ls->data, ls->nbytes), 0);
    int64_t h = xs->shape[2], w = xs->shape[3];

    struct seg_ag *ag = NULL;
    assert_int_equal(seg_ag_create(be, &ag), 0);
    struct seg_var *xv, *up, *upa, *l1, *l2, *l2s, *loss;
    struct seg_model_out out;
    enum seg_status st = seg_ag_const(ag, x, &xv);
    if (!st) st = seg_model_forward(ag, m, xv, batch, &out);
    if (!st) st = seg_ag_resize_bilinear(ag, out.main, h, w, true, &up);
    if (!st) st = seg_ag_cross_entropy(ag, up, labels, NULL, 255, &l1);
    loss = l1;
    if (!st && out.aux) {
        st = seg_ag_resize_bilinear(ag, out.aux, h, w, true, &upa);
        if (!st) st = seg_ag_cross_entropy(ag, upa, labels, NULL, 255, &l2);
        if (!st) st = seg_ag_affine(ag, l2, 0.1f, 0.0f, &l2s);
        if (!st) st = seg_ag_add(ag, l1, l2s, &loss);
    }
    if (st)
        fail_msg("forward on %s: %s", g_backend, seg_last_error());
    seg_var_keep(out.main);
    if (out.aux)
        seg_var_keep(out.aux);
    seg_var_keep(loss);
    seg_backend_mem_peak_reset(be);
    if (seg_ag_backward(ag, loss))
        fail_msg("backward on %s: %s", g_backend, seg_last_error());
    printf("[%s] peak device memory of the step's backward: %.1f MiB\n", g_backend,
           (double)seg_backend_mem_peak(be) / (1 << 20));

    double e_logits = rel_error(out.main->value, seg_st_find(&ex, "logits"));
    const struct seg_st_tensor *aux_ref = seg_st_find(&ex, "aux");
    if (!out.aux != !aux_ref)
        fail_msg("auxiliary output present on one side only");
    double e_aux = out.aux ? rel_error(out.aux->value, aux_ref) : 0.0;
    double e_loss = rel_error(loss->value, seg_st_find(&ex, "loss"));
    struct worst wg = {0, ""}, ws = {0, ""}, wr = {0, ""};
    int ngrad = 0;
    for (int i = 0; i < m->nparams; i++) {
        struct seg_param *p = &m->params[i];
        char name[128];
        snprintf(name, sizeof name, "grad.%s", p->name);
        const struct seg_st_tensor *ref = seg_st_find(&ex, name);
        if (p->is_buffer || !p->var->requires_grad) {
            if (ref)
                fail_msg("%s is trainable in PyTorch but not here", p->name);
            continue;
        }
        if (!ref || !p->var->grad)
            fail_msg("no gradient for %s", p->name);
        double e = rel_error(p->var->grad, ref);
        if (getenv("SEGDA_PARITY_VERBOSE"))
            printf("  grad %-40s %.2e\n", p->name, e);
        note(&wg, e, p->name);
        ngrad++;
    }
    /* Evaluation's path (seg_predict_batch_opts) from the same input and weights (before the
     * SGD step), both upsamplings. */
    double e_eval[2] = {0, 0};
    for (int k = 0; k < 2 && seg_st_find(&ex, "eval_probs_ac1"); k++) {
        struct seg_tensor *probs = NULL;
        struct seg_eval_opts eo = {0};
        eo.half_pixel = k == 0;
        eo.probs = &probs;
        int32_t *pred = malloc((size_t)xs->shape[0] * h * w * sizeof *pred);
        if (seg_predict_batch_opts(m, ag, xs->data, (int)xs->shape[0], (int)h, (int)w, (int)h, (int)w, &eo, pred, NULL))
            fail_msg("eval on %s: %s", g_backend, seg_last_error());
        e_eval[k] = rel_error(probs, seg_st_find(&ex, k ? "eval_probs_ac1" : "eval_probs_ac0"));
        seg_tensor_free(probs);
        free(pred);
    }
    struct seg_optim_config oc = {SEG_OPTIM_SGD, 2.5e-4f, 0.9f, 5e-4f, 0, 0, 0, {1.0f, 10.0f}};
    struct seg_optim *opt = NULL;
    assert_int_equal(seg_optim_create(m, &oc, &opt), 0);
    if (seg_optim_step(opt, 2.5e-4f))
        fail_msg("sgd on %s: %s", g_backend, seg_last_error());
    for (int i = 0; i < m->nparams; i++) {
        struct seg_param *p = &m->params[i];
        char name[128];
        snprintf(name, sizeof name, "sgd.%s", p->name);
        const struct seg_st_tensor *ref = seg_st_find(&ex, name);
        if (ref)
            note(&ws, rel_error(p->var->value, ref), p->name);
        snprintf(name, sizeof name, "running.%s", p->name);
        if ((ref = seg_st_find(&ex, name)))
            note(&wr, rel_error(p->var->value, ref), p->name);
    }
    printf("[%s] %s bn=%s aspp %s: logits %.2e, aux %.2e, loss %.2e, grads of %d parameters %.2e (worst %s), "
           "after SGD %.2e (worst %s)%s%.2e, eval softmax align_corners false %.2e / true %.2e\n",
           g_backend, seg_arch_name(cfg.arch), batch ? "batch" : "frozen", rates ? rates : "6,12,18,24", e_logits,
           e_aux, e_loss, ngrad, wg.err, wg.name, ws.err, ws.name, batch ? ", running stats " : "",
           batch ? wr.err : 0.0, e_eval[0], e_eval[1]);
    /* The forward is held to 1e-3 whatever --tol says (that is for the gradients). */
    double ftol = g_tol < 1e-3 ? g_tol : 1e-3;
    assert_true(e_logits <= ftol);
    assert_true(e_aux <= ftol);
    assert_true(e_loss <= ftol);
    assert_true(e_eval[0] <= ftol);
    assert_true(e_eval[1] <= ftol);
    assert_true(wg.err <= g_tol);
    assert_true(ws.err <= g_tol);
    assert_true(wr.err <= g_tol);
    /* Under SEGDA_MAX_BUFFER_MB the same step must have run its big convolutions in pieces. */
    uint64_t chunked = seg_backend_counts(be)->chunked;
    if (g_expect_chunked) {
        printf("[%s] %llu convolutions ran in chunks under a %.2f MiB buffer limit\n", g_backend,
               (unsigned long long)chunked, seg_backend_max_buffer(be) / 1048576.0);
        assert_true(chunked > 0);
    }
    seg_optim_destroy(opt);
    seg_ag_destroy(ag);
    seg_tensor_free(labels);
    seg_model_destroy(m);
    seg_st_free(&in);
    seg_st_free(&ex);
    seg_backend_destroy(be);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-b") && i + 1 < argc)
            g_backend = argv[++i];
        else if (!strcmp(argv[i], "-d") && i + 1 < argc)
            g_dir = argv[++i];
        else if (!strcmp(argv[i], "--tol") && i + 1 < argc)
            g_tol = atof(argv[++i]);
        else if (!strcmp(argv[i], "--l2"))
            g_l2 = true;
        else if (!strcmp(argv[i], "--expect-chunked"))
            g_expect_chunked = true;
        else {
            printf("usage: test_parity [-b BACKEND] [-d DIR] [--tol T] [--l2] [--expect-chunked]\n"
                   "  DIR holds weights/inputs/expected.safetensors from tools/deeplab_torch.py\n"
                   "  --expect-chunked: fail unless some convolution ran in chunks (SEGDA_MAX_BUFFER_MB)\n");
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    char bname[32];
    snprintf(bname, sizeof bname, "%s", g_backend);
    char *colon = strchr(bname, ':');
    if (colon)
        *colon = '\0';
    struct seg_backend *probe = NULL;
    if (!seg_backend_compiled(bname) || seg_backend_create(g_backend, &probe)) {
        const char *req = getenv("SEGDA_REQUIRE");
        if (req && strstr(req, bname)) {
            fprintf(stderr, "FAIL: backend %s required but unavailable: %s\n", g_backend, seg_last_error());
            return 1;
        }
        printf("SKIP: backend %s unavailable\n", g_backend);
        return 77;
    }
    seg_backend_destroy(probe);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_parity)};
    char group[64];
    snprintf(group, sizeof group, "parity-%s", bname);
    return _cmocka_run_group_tests(group, tests, 1, NULL, NULL);
}
