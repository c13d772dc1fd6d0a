/* test_conv_algo.c: the forward convolution algorithm chosen per shape by measurement
 * (src/core/conv_algo.c). On one backend, with SEG_CONV_ALGO_AUTO and a private cache dir:
 *  - a new shape is measured, the conv's result equals both algorithms' results (and the
 *    cpu backend's), and the choice is written to the device's cache file;
 *  - a new backend reads the choice back ("cached"), for any batch of the same geometry, and
 *    obeys an edited cache file (so the choice really comes from the file, not from measuring
 *    again);
 *  - a corrupt line is skipped with a warning and its shape measured again, the file
 *    rewritten whole; a file of another format is ignored;
 *  - a set algorithm is used as set; SEGDA_CONV_ALGO with a bad value is an error naming it;
 *    without a cache directory nothing is measured;
 *  - a pointwise conv's backward-data (a 1x1 conv of dy with w^T where the algorithm is not
 *    pinned to im2col) equals the cpu backend's.
 *   test_conv_algo -b BACKEND */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend_open.h"
#include "backend/backend.h"
#include "core/ops.h"

static int g_fail = 0;
#define CHECK(cond, ...) TEST_CHECK(g_fail, cond, __VA_ARGS__)

static void need(enum seg_status st, const char *what)
{
    if (st) {
        printf("FAIL: %s: %s\n", what, seg_last_error());
        exit(1);
    }
}

static uint32_t g_rng = 777;
static float frand(void)
{
    g_rng = g_rng * 1664525u + 1013904223u;
    return (float)((g_rng >> 8) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;
}

struct shape {
    int64_t n, c, h, w, co;
    int     k, stride, pad, dil;
};

static const struct shape shapes[] = {
    {1, 8, 13, 11, 6, 3, 1, 2, 2},  /* 3x3 dilated */
    {2, 16, 9, 7, 12, 1, 1, 0, 1},  /* pointwise */
    {1, 3, 17, 15, 5, 7, 2, 3, 1},  /* conv1-like */
};
#define NSHAPES (int)(sizeof shapes / sizeof shapes[0])

struct host_case {
    float  *x, *w, *dy;
    int64_t xs[4], ws[4], ys[4];
    struct seg_conv2d_params p;
};

static int64_t numel(const int64_t *s) { return s[0] * s[1] * s[2] * s[3]; }

static void make_case(const struct shape *s, struct host_case *hc)
{
    hc->p = (struct seg_conv2d_params){s->stride, s->stride, s->pad, s->pad, s->dil, s->dil};
    int64_t oh = seg_conv2d_out_size(s->h, s->k, s->stride, s->pad, s->dil);
    int64_t ow = seg_conv2d_out_size(s->w, s->k, s->stride, s->pad, s->dil);
    int64_t xs[4] = {s->n, s->c, s->h, s->w}, ws[4] = {s->co, s->c, s->k, s->k}, ys[4] = {s->n, s->co, oh, ow};
    memcpy(hc->xs, xs, sizeof xs);
    memcpy(hc->ws, ws, sizeof ws);
    memcpy(hc->ys, ys, sizeof ys);
    float **bufs[3] = {&hc->x, &hc->w, &hc->dy};
    const int64_t *shp[3] = {hc->xs, hc->ws, hc->ys};
    for (int i = 0; i < 3; i++) {
        *bufs[i] = malloc((size_t)numel(shp[i]) * sizeof(float));
        for (int64_t j = 0; j < numel(shp[i]); j++)
            (*bufs[i])[j] = frand();
    }
}

static struct seg_tensor *upload(struct seg_backend *be, const int64_t *shape, const float *v)
{
    struct seg_tensor *t = NULL;
    need(seg_tensor_new(be, SEG_DTYPE_F32, 4, shape, &t), "tensor_new");
    need(seg_tensor_write(t, v, seg_tensor_nbytes(t)), "tensor_write");
    return t;
}

static double max_diff(const struct seg_tensor *a, const float *ref)
{
    size_t n = (size_t)seg_tensor_numel(a);
    float *v = malloc(n * sizeof(float));
    need(seg_tensor_read(a, v, n * sizeof(float)), "tensor_read");
    double d = 0;
    for (size_t i = 0; i < n; i++)
        d = fmax(d, fabs((double)v[i] - ref[i]));
    free(v);
    return d;
}

static float *to_host(const struct seg_tensor *t)
{
    float *v = malloc(seg_tensor_nbytes(t));
    need(seg_tensor_read(t, v, seg_tensor_nbytes(t)), "tensor_read");
    return v;
}

static struct seg_backend *open_auto(const char *spec)
{
    struct seg_backend *be = NULL;
    need(seg_backend_create(spec, &be), "backend_create");
    seg_backend_set_conv_algo(be, SEG_CONV_ALGO_AUTO);
    return be;
}

/* The choice seg_conv2d_algo reports for case i. */
static enum seg_conv_algo algo_of(struct seg_backend *be, const struct host_case *hc, char *how, size_t n)
{
    struct seg_tensor *x = upload(be, hc->xs, hc->x), *w = upload(be, hc->ws, hc->w);
    enum seg_conv_algo a = SEG_CONV_ALGO_AUTO;
    need(seg_conv2d_algo(x, w, &hc->p, &a, how, n), "conv2d_algo");
    seg_tensor_free(x);
    seg_tensor_free(w);
    return a;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        printf("FAIL: cannot write %s\n", path);
        exit(1);
    }
}

/* The line of case hc in the cache text ("conv C H W Cout KH KW sh sw ph pw dh dw"). */
static void key_line(const struct host_case *hc, char *out, size_t n)
{
    snprintf(out, n, "conv %lld %lld %lld %lld %lld %lld %d %d %d %d %d %d ", (long long)hc->xs[1],
             (long long)hc->xs[2], (long long)hc->xs[3], (long long)hc->ws[0],
             (long long)hc->ws[2], (long long)hc->ws[3], hc->p.stride_h, hc->p.stride_w, hc->p.pad_h, hc->p.pad_w,
             hc->p.dil_h, hc->p.dil_w);
}

int main(int argc, char **argv)
{
    const char *spec;
    int rc = 0;
    if (!test_backend_arg(argc, argv, "test_conv_algo", &spec, &rc))
        return rc;
    char dir[] = "/tmp/segda-conv-algo-XXXXXX";
    if (!mkdtemp(dir)) {
        printf("FAIL: mkdtemp\n");
        return 1;
    }
    setenv("SEGDA_CACHE_DIR", dir, 1);
    unsetenv("SEGDA_CONV_ALGO");
    struct seg_backend *be = NULL, *cpu = NULL;
    rc = test_backend_open(spec, &be);
    if (rc)
        return rc;
    need(seg_backend_create("cpu", &cpu), "cpu backend");
    char path[1024], line[256], how[128];
    if (!seg_backend_cache_path(be, "conv", false, path, sizeof path)) {
        printf("FAIL: no cache path under %s\n", dir);
        return 1;
    }
    if (!seg_backend_has_op(be, SEG_OP_CONV2D_DIRECT)) {
        printf("FAIL: %s has no CONV2D_DIRECT: nothing to choose between\n", spec);
        return 1;
    }
    seg_backend_set_conv_algo(be, SEG_CONV_ALGO_AUTO);

    /* 1. first use: measured; the result equals both algorithms' and the cpu backend's */
    struct host_case hc[NSHAPES];
    enum seg_conv_algo chosen[NSHAPES];
    for (int i = 0; i < NSHAPES; i++) {
        make_case(&shapes[i], &hc[i]);
        struct seg_tensor *x = upload(be, hc[i].xs, hc[i].x), *w = upload(be, hc[i].ws, hc[i].w);
        struct seg_tensor *cx = upload(cpu, hc[i].xs, hc[i].x), *cw = upload(cpu, hc[i].ws, hc[i].w);
        struct seg_tensor *y = NULL, *yd = NULL, *yi = NULL, *yc = NULL;
        need(seg_conv2d(x, w, NULL, &hc[i].p, &y), "conv2d (measuring)");
        need(seg_conv2d_direct(x, w, NULL, &hc[i].p, &yd), "conv2d_direct");
        need(seg_conv2d_im2col(x, w, NULL, &hc[i].p, &yi), "conv2d_im2col");
        need(seg_conv2d(cx, cw, NULL, &hc[i].p, &yc), "cpu conv2d");
        float *ref = to_host(yc), *vd = to_host(yd), *vi = to_host(yi);
        chosen[i] = algo_of(be, &hc[i], how, sizeof how);
        CHECK(!strncmp(how, "cached", 6), "shape %d: after its first use, expected 'cached', got '%s'", i, how);
        CHECK(chosen[i] == SEG_CONV_ALGO_DIRECT || chosen[i] == SEG_CONV_ALGO_IM2COL, "shape %d: algo %d", i,
              chosen[i]);
        /* the kept output is the winner's own (bit-identical to running it again) */
        double same = max_diff(y, chosen[i] == SEG_CONV_ALGO_DIRECT ? vd : vi);
        CHECK(same <= 1e-6, "shape %d: the measured conv's output differs from %s's by %g", i,
              seg_conv_algo_name(chosen[i]), same);
        double dref = max_diff(y, ref), dother = max_diff(yd, vi);
        CHECK(dref <= 1e-4, "shape %d: differs from the cpu backend by %g", i, dref);
        CHECK(dother <= 1e-4, "shape %d: direct and im2col differ by %g", i, dother);
        printf("shape %d: %s (%s), vs cpu %.2g\n", i, seg_conv_algo_name(chosen[i]), how, dref);
        free(ref);
        free(vd);
        free(vi);
        seg_tensor_free(y);
        seg_tensor_free(yd);
        seg_tensor_free(yi);
        seg_tensor_free(yc);
        seg_tensor_free(x);
        seg_tensor_free(w);
        seg_tensor_free(cx);
        seg_tensor_free(cw);
    }
    char *text = slurp(path);
    CHECK(text && strstr(text, "format segda-conv-v2"), "no cache file %s with its format line", path);
    for (int i = 0; text && i < NSHAPES; i++) {
        key_line(&hc[i], line, sizeof line);
        const char *at = strstr(text, line);
        CHECK(at && !strncmp(at + strlen(line), seg_conv_algo_name(chosen[i]), strlen(seg_conv_algo_name(chosen[i]))),
              "shape %d: the cache file lacks '%s%s'", i, line, seg_conv_algo_name(chosen[i]));
    }
    seg_backend_destroy(be);

    /* 2. a new backend reads the file; an edited file is obeyed */
    be = open_auto(spec);
    enum seg_conv_algo again = algo_of(be, &hc[0], how, sizeof how);
    CHECK(again == chosen[0] && !strncmp(how, "cached", 6), "reopened: got %s (%s), expected cached %s",
          seg_conv_algo_name(again), how, seg_conv_algo_name(chosen[0]));
    { /* the batch is not part of the key: batch 3 of shape 0's geometry is already known */
        int64_t xs3[4] = {3, hc[0].xs[1], hc[0].xs[2], hc[0].xs[3]};
        struct seg_tensor *x3 = NULL, *w = upload(be, hc[0].ws, hc[0].w);
        enum seg_conv_algo a3 = SEG_CONV_ALGO_AUTO;
        need(seg_tensor_new(be, SEG_DTYPE_F32, 4, xs3, &x3), "tensor_new");
        need(seg_fill(x3, 0.5f), "fill");
        need(seg_conv2d_algo(x3, w, &hc[0].p, &a3, how, sizeof how), "conv2d_algo, batch 3");
        CHECK(a3 == chosen[0] && !strncmp(how, "cached", 6), "batch 3: got %s (%s), expected cached %s",
              seg_conv_algo_name(a3), how, seg_conv_algo_name(chosen[0]));
        seg_tensor_free(x3);
        seg_tensor_free(w);
    }
    seg_backend_destroy(be);
    text = slurp(path);
    key_line(&hc[0], line, sizeof line);
    char *at = text ? strstr(text, line) : NULL;
    enum seg_conv_algo flipped = chosen[0] == SEG_CONV_ALGO_DIRECT ? SEG_CONV_ALGO_IM2COL : SEG_CONV_ALGO_DIRECT;
    if (at) {
        char edited[65536], *rest = strchr(at, '\n');
        snprintf(edited, sizeof edited, "%.*s%s%s 1 1%s", (int)(at - text), text, line, seg_conv_algo_name(flipped),
                 rest ? rest : "\n");
        write_text(path, edited);
    }
    be = open_auto(spec);
    again = algo_of(be, &hc[0], how, sizeof how);
    CHECK(again == flipped, "edited cache: got %s (%s), expected %s", seg_conv_algo_name(again), how,
          seg_conv_algo_name(flipped));
    seg_backend_destroy(be);

    /* 3. a corrupt line: skipped (warning), its shape measured again, the file rewritten */
    text = slurp(path);
    key_line(&hc[1], line, sizeof line);
    at = text ? strstr(text, line) : NULL;
    if (at) {
        char edited[65536], *rest = strchr(at, '\n');
        snprintf(edited, sizeof edited, "%.*sconv 16 nine%s", (int)(at - text), text, rest ? rest : "\n");
        write_text(path, edited);
    }
    be = open_auto(spec);
    again = algo_of(be, &hc[1], how, sizeof how);
    CHECK(!strncmp(how, "measured", 8), "corrupt line: expected its shape measured again, got '%s'", how);
    again = algo_of(be, &hc[2], how, sizeof how);
    CHECK(again == chosen[2] && !strncmp(how, "cached", 6), "corrupt line elsewhere: shape 2 got %s (%s)",
          seg_conv_algo_name(again), how);
    seg_backend_destroy(be);
    text = slurp(path);
    CHECK(text && !strstr(text, "nine"), "the corrupt line is still in %s", path);
    key_line(&hc[1], line, sizeof line);
    CHECK(text && strstr(text, line), "the re-measured shape is not in %s", path);

    /* another format: ignored whole */
    write_text(path, "format segda-conv-v1\nconv 1 8 13 11 6 3 3 1 1 2 2 2 2 direct 1 1\n");
    be = open_auto(spec);
    algo_of(be, &hc[0], how, sizeof how);
    CHECK(!strncmp(how, "measured", 8), "another format: expected measuring, got '%s'", how);
    /* 4. a set algorithm is used as set */
    seg_backend_set_conv_algo(be, SEG_CONV_ALGO_IM2COL);
    again = algo_of(be, &hc[0], how, sizeof how);
    CHECK(again == SEG_CONV_ALGO_IM2COL && !strcmp(how, "set"), "set im2col: got %s (%s)",
          seg_conv_algo_name(again), how);
    seg_backend_set_conv_algo(be, SEG_CONV_ALGO_DIRECT);
    again = algo_of(be, &hc[0], how, sizeof how);
    CHECK(again == SEG_CONV_ALGO_DIRECT, "set direct: got %s (%s)", seg_conv_algo_name(again), how);

    /* 5. pointwise backward-data through the conv route equals the cpu backend's */
    seg_backend_set_conv_algo(be, SEG_CONV_ALGO_AUTO);
    {
        struct seg_tensor *w = upload(be, hc[1].ws, hc[1].w), *dy = upload(be, hc[1].ys, hc[1].dy), *dx = NULL;
        struct seg_tensor *cw = upload(cpu, hc[1].ws, hc[1].w), *cdy = upload(cpu, hc[1].ys, hc[1].dy), *cdx = NULL;
        need(seg_conv2d_bwd_data(dy, w, hc[1].xs, &hc[1].p, &dx), "bwd_data");
        need(seg_conv2d_bwd_data(cdy, cw, hc[1].xs, &hc[1].p, &cdx), "cpu bwd_data");
        float *ref = to_host(cdx);
        double d = max_diff(dx, ref);
        CHECK(d <= 1e-4, "pointwise bwd-data differs from the cpu backend by %g", d);
        printf("pointwise bwd-data vs cpu: %.2g\n", d);
        free(ref);
        seg_tensor_free(w);
        seg_tensor_free(dy);
        seg_tensor_free(dx);
        seg_tensor_free(cw);
        seg_tensor_free(cdy);
        seg_tensor_free(cdx);
    }
    seg_backend_destroy(be);

    /* 6. SEGDA_CONV_ALGO: a bad value is an error naming it; im2col is obeyed */
    setenv("SEGDA_CONV_ALGO", "fastest", 1);
    be = NULL;
    enum seg_status st = seg_backend_create(spec, &be);
    CHECK(st != SEG_STATUS_OK && !be && strstr(seg_last_error(), "fastest"),
          "SEGDA_CONV_ALGO=fastest: expected an error naming it, got status %d '%s'", st, seg_last_error());
    seg_backend_destroy(be);
    setenv("SEGDA_CONV_ALGO", "im2col", 1);
    need(seg_backend_create(spec, &be), "backend with SEGDA_CONV_ALGO=im2col");
    CHECK(seg_backend_conv_algo(be) == SEG_CONV_ALGO_IM2COL, "SEGDA_CONV_ALGO=im2col not applied");
    seg_backend_destroy(be);
    unsetenv("SEGDA_CONV_ALGO");

    /* 7. no cache directory: nothing measured, the backend's default */
    unsetenv("SEGDA_CACHE_DIR");
    unsetenv("XDG_CACHE_HOME");
    unsetenv("HOME");
    be = open_auto(spec);
    algo_of(be, &hc[0], how, sizeof how);
    CHECK(!strncmp(how, "no cache directory", 18), "no cache directory: got '%s'", how);
    seg_backend_destroy(be);
    seg_backend_destroy(cpu);

    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir); /* the backends' program caches live there too */
    if (system(cmd) != 0)
        printf("note: could not remove %s\n", dir);
    for (int i = 0; i < NSHAPES; i++) {
        free(hc[i].x);
        free(hc[i].w);
        free(hc[i].dy);
    }
    printf(g_fail ? "FAIL\n" : "PASS\n");
    return g_fail;
}
