/* test_schedule.c: the learning-rate schedule in rounds (solver.rounds) against hand-computed
 * rates, and the optimizer reset at a round boundary against a freshly built optimizer, on
 * one backend:
 *   test_schedule -b cpu|opencl|vulkan
 * A reset optimizer's next step must equal a new optimizer's first step bit for bit (same
 * kernels, same inputs), and differ from the step the un-reset optimizer takes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/autograd.h"
#include "model/model.h"
#include "model/optim.h"
#include "segda.h"
#include "backend_open.h"

static int fails;

#define CHECK(cond, ...) TEST_CHECK(fails, cond, __VA_ARGS__)

/* want[i] = rate / base at iteration i, worked out by hand from the rounds' bounds. */
static void lr_case(const char *what, struct seg_lr_schedule s, const double *want, int n)
{
    for (int i = 0; i < n; i++) {
        double got = seg_schedule_lr(&s, 2.0f, i) / 2.0;
        CHECK(fabs(got - want[i]) <= 1e-6 * fmax(1.0, fabs(want[i])), "%s: iteration %d: rate %.9g, want %.9g",
              what, i, got, want[i]);
    }
}

static void test_rates(void)
{
    /* 8 iterations, 2 rounds of 4, halving, power 1: linear decay to 0 within each round */
    lr_case("2 rounds", (struct seg_lr_schedule){8, 1.0f, 2, 0.5f, 1.0f, 0, 0},
            (double[]){1, 0.75, 0.5, 0.25, 0.5, 0.375, 0.25, 0.125, 0}, 9);
    /* horizon 2: each round decays over twice its length (half-way down at its end) */
    lr_case("horizon 2", (struct seg_lr_schedule){8, 1.0f, 2, 0.5f, 2.0f, 0, 0},
            (double[]){1, 0.875, 0.75, 0.625, 0.5, 0.4375, 0.375, 0.3125, 0}, 9);
    /* 7 iterations, 3 rounds: [0, 2) [2, 4) [4, 7), factor 0.5 */
    lr_case("uneven rounds", (struct seg_lr_schedule){7, 1.0f, 3, 0.5f, 1.0f, 0, 0},
            (double[]){1, 0.5, 0.5, 0.25, 0.25, 0.25 * 2 / 3, 0.25 / 3, 0}, 8);
    /* one round: the plain poly schedule, (1 - 5/10)^0.9 = 0.535886731, (1 - 3/10)^0.9 = 0.725417847 */
    struct seg_lr_schedule one = {10, 0.9f, 1, 0.5f, 1.0f, 0, 0};
    CHECK(fabs(seg_schedule_lr(&one, 1.0f, 5) - 0.535886731) < 1e-6, "one round: %.9g", seg_schedule_lr(&one, 1.0f, 5));
    CHECK(fabs(seg_schedule_lr(&one, 1.0f, 3) - 0.725417847) < 1e-6, "one round: %.9g", seg_schedule_lr(&one, 1.0f, 3));
    for (int i = 0; i <= 10; i++)
        CHECK(seg_schedule_lr(&one, 2.5e-4f, i) == seg_poly_lr(2.5e-4f, i, 10, 0.9f), "one round, iteration %d: "
              "not seg_poly_lr's value", i);
    /* linear warm-up over 4 of 10 iterations from ratio 0.1 (mmcv's): the poly rate (power 1)
     * times 1 - (1 - i/4)(1 - 0.1): i = 0: 1 * 0.1, 1: 0.9 * 0.325, 2: 0.8 * 0.55, 3: 0.7 * 0.775 */
    lr_case("warm-up", (struct seg_lr_schedule){10, 1.0f, 1, 0.5f, 1.0f, 4, 0.1f},
            (double[]){0.1, 0.9 * 0.325, 0.8 * 0.55, 0.7 * 0.775, 0.6, 0.5}, 6);
    int64_t begin = -1;
    struct seg_lr_schedule three = {7, 1.0f, 3, 0.5f, 1.0f, 0, 0};
    CHECK(seg_schedule_round(&three, 3, &begin) == 1 && begin == 2, "round of iteration 3: begin %lld", (long long)begin);
    CHECK(seg_schedule_round(&three, 6, &begin) == 2 && begin == 4, "round of iteration 6: begin %lld", (long long)begin);
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* A gradient for every trainable parameter, from seed. */
static void set_grads(struct seg_model *m, uint32_t seed)
{
    for (int i = 0; i < m->nparams; i++) {
        struct seg_var *v = m->params[i].var;
        if (m->params[i].is_buffer || !v->requires_grad)
            continue;
        int64_t n = seg_tensor_numel(v->value);
        float *g = malloc((size_t)n * sizeof *g);
        uint32_t s = seed + (uint32_t)i * 7919u;
        for (int64_t k = 0; k < n; k++)
            g[k] = (float)lcg(&s) / (float)(1u << 24) - 0.5f;
        if (!v->grad && seg_tensor_new_like(v->value, &v->grad))
            printf("FAIL: grad: %s\n", seg_last_error());
        if (seg_tensor_write(v->grad, g, (size_t)n * sizeof *g))
            printf("FAIL: grad: %s\n", seg_last_error());
        free(g);
    }
}

/* max |a - b| over the trainable parameters of two models of one architecture */
static double max_diff(const struct seg_model *a, const struct seg_model *b)
{
    double d = 0;
    for (int i = 0; i < a->nparams; i++) {
        int64_t n = seg_tensor_numel(a->params[i].var->value);
        float *x = malloc((size_t)n * 4), *y = malloc((size_t)n * 4);
        if (seg_tensor_read(a->params[i].var->value, x, (size_t)n * 4) ||
            seg_tensor_read(b->params[i].var->value, y, (size_t)n * 4))
            d = INFINITY;
        for (int64_t k = 0; k < n; k++)
            d = fmax(d, fabs((double)x[k] - y[k]));
        free(x);
        free(y);
    }
    return d;
}

static void copy_params(struct seg_model *dst, const struct seg_model *src)
{
    for (int i = 0; i < dst->nparams; i++)
        if (seg_tensor_copy(dst->params[i].var->value, src->params[i].var->value))
            printf("FAIL: copy: %s\n", seg_last_error());
}

/* Two steps, a reset, one more step: against the same weights stepped by a new optimizer,
 * and against the optimizer not reset. */
static void reset_case(struct seg_backend *be, const char *what, const struct seg_optim_config *oc)
{
    struct seg_model_config mc = {SEG_ARCH_DEEPLABV2_TINY, 3, false, true, SEG_BN_POLICY_FROZEN_AFFINE, 9, 4, false, false, {0}};
    struct seg_model *a = NULL, *fresh = NULL, *kept = NULL;
    struct seg_optim *oa = NULL, *ofresh = NULL, *okept = NULL;
    if (seg_model_create(be, &mc, &a) || seg_model_create(be, &mc, &fresh) || seg_model_create(be, &mc, &kept) ||
        seg_optim_create(a, oc, &oa) || seg_optim_create(fresh, oc, &ofresh) || seg_optim_create(kept, oc, &okept)) {
        printf("FAIL: %s: setup: %s\n", what, seg_last_error());
        exit(1);
    }
    for (int s = 0; s < 2; s++) {
        set_grads(a, 11u + s);
        CHECK(!seg_optim_step(oa, oc->lr), "%s: step: %s", what, seg_last_error());
    }
    copy_params(kept, a); /* kept continues a's optimizer without the reset */
    for (int i = 0; i < a->nparams; i++) {
        for (int k = 0; k < 2; k++) {
            struct seg_tensor *src = k ? oa->state2[i] : oa->state1[i], **dst = k ? &okept->state2[i] : &okept->state1[i];
            if (src && !seg_tensor_new_like(src, dst))
                CHECK(!seg_tensor_copy(*dst, src), "%s", seg_last_error());
        }
    }
    okept->step = oa->step;

    seg_optim_reset(oa);
    bool empty = oa->step == 0;
    for (int i = 0; i < a->nparams; i++)
        empty &= !oa->state1[i] && !oa->state2[i];
    CHECK(empty, "%s: optimizer state left after the reset", what);
    copy_params(fresh, a);
    set_grads(a, 99u);
    set_grads(fresh, 99u);
    set_grads(kept, 99u);
    CHECK(!seg_optim_step(oa, oc->lr), "%s", seg_last_error());
    CHECK(!seg_optim_step(ofresh, oc->lr), "%s", seg_last_error());
    CHECK(!seg_optim_step(okept, oc->lr), "%s", seg_last_error());
    double same = max_diff(a, fresh), apart = max_diff(a, kept);
    printf("%s: after the reset |reset - fresh| = %.3g, |reset - not reset| = %.3g\n", what, same, apart);
    CHECK(same == 0, "%s: the first step after a reset differs from a new optimizer's by %.3g", what, same);
    CHECK(apart > 0, "%s: the reset changed nothing (no state to drop?)", what);
    seg_optim_destroy(oa);
    seg_optim_destroy(ofresh);
    seg_optim_destroy(okept);
    seg_model_destroy(a);
    seg_model_destroy(fresh);
    seg_model_destroy(kept);
}

int main(int argc, char **argv)
{
    const char *spec;
    int rc = 0;
    if (!test_backend_arg(argc, argv, "test_schedule", &spec, &rc))
        return rc;
    struct seg_backend *be;
    rc = test_backend_open(spec, &be);
    if (rc)
        return rc;
    test_rates();
    struct seg_optim_config sgd = {SEG_OPTIM_SGD, 1e-2f, 0.9f, 5e-4f, 0, 0, 0, {1.0f, 10.0f}};
    struct seg_optim_config adam = {SEG_OPTIM_ADAM, 1e-3f, 0, 0, 0.9f, 0.99f, 1e-8f, {1.0f, 1.0f}};
    reset_case(be, "sgd", &sgd);
    reset_case(be, "adam", &adam);
    seg_backend_destroy(be);
    printf("%s: schedule on %s\n", fails ? "FAIL" : "ok", spec);
    return fails ? 1 : 0;
}
