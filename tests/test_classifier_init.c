/* test_classifier_init.c: the ASPP classifier's initial weights have the distribution their
 * rule names, on one backend (the weights are drawn on the host and uploaded):
 *   test_classifier_init -b cpu|opencl|vulkan
 * pytorch (nn.Conv2d's default, PLCA's released code): weight and bias U(-b, b) with
 * b = 1/sqrt(9 C_in); normal (AdaptSegNet, SDCA): weight N(0, 0.01), bias 0. Moments are
 * checked within 6 standard errors of their estimates for the sample size, plus the
 * kurtosis (1.8 uniform, 3 normal) and the extremes, so a normal init of the same variance,
 * a wrong fan-in or a wrong bound all fail. The backbone must not change. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "segda.h"
#include "backend_open.h"

static int fails;

#define CHECK(cond, ...) TEST_CHECK(fails, cond, __VA_ARGS__)

static float *read_param(struct seg_model *m, const char *name, int64_t *n)
{
    struct seg_param *p = seg_model_find(m, name);
    if (!p) {
        CHECK(0, "no parameter %s", name);
        return NULL;
    }
    *n = seg_tensor_numel(p->var->value);
    float *h = malloc((size_t)*n * sizeof *h);
    if (h && seg_tensor_read(p->var->value, h, (size_t)*n * sizeof *h)) {
        CHECK(0, "%s: %s", name, seg_last_error());
        free(h);
        return NULL;
    }
    return h;
}

/* Pools the four convolutions of a head (layer5 or layer6) and checks them against the rule. */
static void check_head(struct seg_model *m, const char *head, bool pytorch)
{
    double s1 = 0, s2 = 0, s4 = 0, mx = 0, n = 0, fan_in = 0, bmax = 0;
    int nonzero_bias = 0, nbias = 0;
    for (int i = 0; i < 4; i++) {
        char name[96];
        int64_t k;
        snprintf(name, sizeof name, "%s.conv2d_list.%d.weight", head, i);
        float *w = read_param(m, name, &k);
        if (!w)
            return;
        fan_in = (double)(seg_model_find(m, name)->var->value->shape[1] * 9);
        for (int64_t j = 0; j < k; j++) {
            double v = w[j];
            s1 += v;
            s2 += v * v;
            s4 += v * v * v * v;
            mx = fmax(mx, fabs(v));
        }
        n += (double)k;
        free(w);
        snprintf(name, sizeof name, "%s.conv2d_list.%d.bias", head, i);
        float *b = read_param(m, name, &k);
        for (int64_t j = 0; b && j < k; j++) {
            bmax = fmax(bmax, fabs(b[j]));
            nonzero_bias += b[j] != 0.0f;
            nbias++;
        }
        free(b);
    }
    double bound = 1.0 / sqrt(fan_in);
    double var = pytorch ? bound * bound / 3.0 : 1e-4, kurt = pytorch ? 1.8 : 3.0;
    double mean = s1 / n, m2 = s2 / n, k4 = s4 / n / (m2 * m2);
    /* standard errors: mean sqrt(var / n); second moment var sqrt((kurt - 1) / n) */
    double se_mean = sqrt(var / n), se_m2 = var * sqrt((kurt - 1.0) / n);
    printf("%s %s: %.0f weights, fan_in %.0f, mean %.3g, var %.4g (want %.4g), kurtosis %.3f (want %.1f), "
           "max |w| %.4g, bound %.4g, max |bias| %.4g\n",
           head, pytorch ? "pytorch" : "normal", n, fan_in, mean, m2, var, k4, kurt, mx, bound, bmax);
    CHECK(fabs(mean) < 6 * se_mean, "%s: mean %g beyond 6 standard errors (%g)", head, mean, se_mean);
    CHECK(fabs(m2 - var) < 6 * se_m2, "%s: variance %g, want %g +- %g", head, m2, var, 6 * se_m2);
    CHECK(fabs(k4 - kurt) < 0.3, "%s: kurtosis %g, want %g", head, k4, kurt);
    if (pytorch) {
        /* every value within the bound, the largest within 20/n of it (P(miss) = e^-20) */
        CHECK(mx <= bound && mx >= bound * (1.0 - 20.0 / n), "%s: max |w| %g, bound %g", head, mx, bound);
        CHECK(bmax <= bound && nonzero_bias == nbias && nbias > 0, "%s: bias max %g over bound %g or zero", head,
              bmax, bound);
        /* 4 x C biases, U(-b, b): their largest is near the bound */
        CHECK(bmax >= bound * 0.5, "%s: bias max %g far below bound %g", head, bmax, bound);
    } else {
        CHECK(nonzero_bias == 0 && nbias > 0, "%s: %d of %d biases not 0", head, nonzero_bias, nbias);
    }
}

static void test_init(struct seg_backend *be)
{
    struct seg_model_config mc = {.arch = SEG_ARCH_DEEPLABV2_TINY, .num_classes = 19, .multi_level = true,
                                  .classifier_bias = true, .bn = SEG_BN_POLICY_FROZEN_AFFINE, .seed = 11};
    struct seg_model *m = NULL, *ref = NULL;
    if (seg_model_create(be, &mc, &m) || seg_model_create(be, &mc, &ref)) {
        CHECK(0, "model: %s", seg_last_error());
        goto out;
    }
    check_head(m, "layer6", false); /* seg_model_create's own */
    check_head(m, "layer5", false);
    if (seg_model_init_classifier(m, SEG_CLASSIFIER_INIT_PYTORCH)) {
        CHECK(0, "init: %s", seg_last_error());
        goto out;
    }
    check_head(m, "layer6", true);
    check_head(m, "layer5", true);
    /* the backbone keeps its values bit for bit; every head parameter changed */
    for (int i = 0; i < m->nparams; i++) {
        int64_t n, nr;
        float *a = read_param(m, m->params[i].name, &n), *b = read_param(ref, m->params[i].name, &nr);
        if (a && b) {
            bool same = n == nr && !memcmp(a, b, (size_t)n * sizeof *a);
            CHECK(same == (m->params[i].group != 1), "%s %s by the classifier init", m->params[i].name,
                  same ? "unchanged" : "changed");
        }
        free(a);
        free(b);
    }
    /* back to normal: the same rule as seg_model_create's, fresh numbers */
    if (seg_model_init_classifier(m, SEG_CLASSIFIER_INIT_NORMAL))
        CHECK(0, "init: %s", seg_last_error());
    check_head(m, "layer6", false);
out:
    seg_model_destroy(m);
    seg_model_destroy(ref);
}

int main(int argc, char **argv)
{
    const char *backend;
    int rc = 0;
    if (!test_backend_arg(argc, argv, "test_classifier_init", &backend, &rc))
        return rc;
    struct seg_backend *be = NULL;
    rc = test_backend_open(backend, &be);
    if (rc)
        return rc;
    printf("classifier init on %s (%s)\n", seg_backend_device(be)->spec, seg_backend_device(be)->name);
    test_init(be);
    seg_backend_destroy(be);
    printf("%s\n", fails ? "FAILED" : "all passed");
    return fails ? 1 : 0;
}
