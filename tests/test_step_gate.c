/* test_step_gate.c: the device-side non-finite test (NONFINITE_ANY) and the skip flag of the
 * optimizer steps, on one backend, against hand-computed values:
 *   test_step_gate -b cpu|opencl|vulkan
 * The trainer relies on them to keep one host sync a step: a NaN or infinite loss term sets
 * the flag on the device and every optimizer update of that step becomes a no-op. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "segda.h"
#include "backend_open.h"

static int fails;

#define CHECK(cond, ...) TEST_CHECK(fails, cond, __VA_ARGS__)

static struct seg_tensor *upload(struct seg_backend *be, const float *v, int64_t n)
{
    struct seg_tensor *t = NULL;
    if (seg_tensor_new(be, SEG_DTYPE_F32, 1, &n, &t) || seg_tensor_write(t, v, (size_t)n * sizeof *v)) {
        printf("FAIL: upload: %s\n", seg_last_error());
        exit(1);
    }
    return t;
}

static float read1(const struct seg_tensor *t)
{
    float v = -1;
    if (seg_tensor_read(t, &v, sizeof v))
        printf("FAIL: read: %s\n", seg_last_error());
    return v;
}

/* flag of v[0..n) computed on the device; want is the hand-made answer. */
static void nonfinite_case(struct seg_backend *be, const char *what, const float *v, int64_t n, float want)
{
    struct seg_tensor *x = upload(be, v, n), *flag = upload(be, (float[]){-7.0f}, 1);
    enum seg_status st = seg_nonfinite_any(x, flag);
    CHECK(!st, "%s: %s", what, seg_last_error());
    float got = read1(flag);
    CHECK(got == want, "%s: flag %g, want %g", what, got, want);
    seg_tensor_free(x);
    seg_tensor_free(flag);
}

static void test_nonfinite(struct seg_backend *be)
{
    float one[3] = {1.0f, -2.0f, 3.0f};
    nonfinite_case(be, "finite", one, 3, 0.0f);
    float edge[4] = {FLT_MAX, -FLT_MAX, 1e-45f, -0.0f}; /* largest, denormal, signed zero */
    nonfinite_case(be, "finite extremes", edge, 4, 0.0f);
    nonfinite_case(be, "NaN", (float[]){1.0f, NAN}, 2, 1.0f);
    nonfinite_case(be, "+Inf", (float[]){INFINITY}, 1, 1.0f);
    nonfinite_case(be, "-Inf", (float[]){-INFINITY, 0.0f}, 2, 1.0f);
    enum { N = 70001 }; /* more elements than one work-group's width, many times over */
    float *big = malloc(N * sizeof *big);
    for (int i = 0; i < N; i++)
        big[i] = (float)(i % 97) - 48.0f;
    nonfinite_case(be, "70001 finite", big, N, 0.0f);
    big[N - 1] = NAN;
    nonfinite_case(be, "70001, NaN last", big, N, 1.0f);
    big[N - 1] = 0.0f;
    big[12345] = -INFINITY;
    nonfinite_case(be, "70001, -Inf inside", big, N, 1.0f);
    free(big);
}

/* SGD and Adam: an unset flag (and no flag) gives the hand-computed update; a set flag
 * leaves parameter and state bit-identical. */
static void test_skip(struct seg_backend *be)
{
    const float p0[2] = {1.0f, -2.0f}, g[2] = {0.5f, 0.25f}, m0[2] = {0.1f, 0.2f};
    const float lr = 0.1f, mom = 0.9f, wd = 0.01f;
    for (int mode = 0; mode < 3; mode++) { /* 0: no flag, 1: flag 0, 2: flag 1 */
        struct seg_tensor *p = upload(be, p0, 2), *buf = upload(be, m0, 2), *gt = upload(be, g, 2);
        struct seg_tensor *flag = mode ? upload(be, (float[]){mode == 2 ? 1.0f : 0.0f}, 1) : NULL;
        enum seg_status st = seg_sgd_step(p, buf, gt, lr, mom, wd, false, flag);
        CHECK(!st, "sgd: %s", seg_last_error());
        float pv[2], bv[2];
        seg_tensor_read(p, pv, sizeof pv);
        seg_tensor_read(buf, bv, sizeof bv);
        for (int i = 0; i < 2; i++) {
            float gi = g[i] + wd * p0[i], b = mom * m0[i] + gi, want = p0[i] - lr * b;
            if (mode == 2)
                CHECK(pv[i] == p0[i] && bv[i] == m0[i], "sgd skipped: p %g buf %g changed", pv[i], bv[i]);
            else
                CHECK(fabsf(pv[i] - want) <= 1e-6f && fabsf(bv[i] - b) <= 1e-6f,
                      "sgd mode %d: p %.8g want %.8g, buf %.8g want %.8g", mode, pv[i], want, bv[i], b);
        }
        seg_tensor_free(p);
        seg_tensor_free(buf);
        seg_tensor_free(gt);
        seg_tensor_free(flag);
    }
    const float b1 = 0.9f, b2 = 0.99f, eps = 1e-8f, v0[2] = {0.01f, 0.04f};
    for (int mode = 0; mode < 3; mode++) {
        struct seg_tensor *p = upload(be, p0, 2), *m = upload(be, m0, 2), *v = upload(be, v0, 2);
        struct seg_tensor *gt = upload(be, g, 2);
        struct seg_tensor *flag = mode ? upload(be, (float[]){mode == 2 ? 1.0f : 0.0f}, 1) : NULL;
        enum seg_status st = seg_adam_step(p, m, v, gt, lr, b1, b2, eps, 0.0f, 0.0f, 2, flag);
        CHECK(!st, "adam: %s", seg_last_error());
        float pv[2], mv[2], vv[2];
        seg_tensor_read(p, pv, sizeof pv);
        seg_tensor_read(m, mv, sizeof mv);
        seg_tensor_read(v, vv, sizeof vv);
        for (int i = 0; i < 2; i++) {
            double mi = b1 * m0[i] + (1 - b1) * g[i], vi = b2 * v0[i] + (1 - b2) * g[i] * g[i];
            double bc1 = 1 - pow(b1, 2), bc2 = 1 - pow(b2, 2);
            double want = p0[i] - lr / bc1 * mi / (sqrt(vi) / sqrt(bc2) + eps);
            if (mode == 2)
                CHECK(pv[i] == p0[i] && mv[i] == m0[i] && vv[i] == v0[i], "adam skipped: state changed");
            else
                CHECK(fabs(pv[i] - want) <= 1e-5 && fabs(mv[i] - mi) <= 1e-6 && fabs(vv[i] - vi) <= 1e-6,
                      "adam mode %d: p %.8g want %.8g", mode, pv[i], want);
        }
        seg_tensor_free(p);
        seg_tensor_free(m);
        seg_tensor_free(v);
        seg_tensor_free(gt);
        seg_tensor_free(flag);
    }
}

int main(int argc, char **argv)
{
    const char *backend;
    int rc = 0;
    if (!test_backend_arg(argc, argv, "test_step_gate", &backend, &rc))
        return rc;
    struct seg_backend *be = NULL;
    rc = test_backend_open(backend, &be);
    if (rc)
        return rc;
    printf("step gate on %s (%s)\n", seg_backend_device(be)->spec, seg_backend_device(be)->name);
    test_nonfinite(be);
    test_skip(be);
    seg_backend_destroy(be);
    printf("%s\n", fails ? "FAILED" : "all passed");
    return fails ? 1 : 0;
}
