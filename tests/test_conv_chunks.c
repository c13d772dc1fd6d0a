/* test_conv_chunks.c: convolutions whose im2col columns exceed the largest buffer run in
 * pieces (src/core/nn.c): a few images at a time, or one image in bands of output rows.
 * For each case and both forward algorithms (im2col; direct, where backward-data's columns
 * come from a 1x1 conv), forward, backward-data and backward-weight (and the bias gradient) under a
 * lowered SEGDA_MAX_BUFFER_MB must equal the same backend without a limit (to float
 * reordering) and the cpu backend, and the backend's count of chunked convolutions must
 * show that the pieces were taken. Cases: every DeepLab-v2 dilation, strides, odd sizes,
 * padding wider than a band, batch 3.
 *   test_conv_chunks -b BACKEND */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_open.h"
#include "core/ops.h"

struct conv_case {
    const char *name;
    int64_t     n, c, h, w, co;
    int         k, stride, pad, dil;
    double      limit_mb; /* lowered limit: below one image's columns -> bands */
};

static const struct conv_case cases[] = {
    {"3x3 d2 bands", 3, 5, 13, 11, 6, 3, 1, 2, 2, 0.004},
    {"3x3 d1 images", 3, 4, 9, 10, 5, 3, 1, 1, 1, 0.02},
    {"7x7 s2 p3 bands", 2, 3, 17, 15, 4, 7, 2, 3, 1, 0.006},
    {"3x3 d6 p6 bands", 2, 4, 11, 12, 3, 3, 1, 6, 6, 0.004},
    {"3x3 d12 p12 bands", 1, 3, 9, 9, 2, 3, 1, 12, 12, 0.002},
    {"3x3 d24 p24 bands", 2, 2, 7, 8, 3, 3, 1, 24, 24, 0.001},
    {"3x3 s2 p1 odd", 3, 3, 15, 13, 4, 3, 2, 1, 1, 0.004},
    {"1x1 s2 images", 3, 16, 17, 17, 4, 1, 2, 0, 1, 0.008},
};

static uint32_t g_rng = 12345;
static float frand(void)
{
    g_rng = g_rng * 1664525u + 1013904223u;
    return (float)((g_rng >> 8) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;
}

static struct seg_tensor *upload(struct seg_backend *be, int ndim, const int64_t *shape, const float *v)
{
    struct seg_tensor *t = NULL;
    if (seg_tensor_new(be, SEG_DTYPE_F32, ndim, shape, &t) ||
        seg_tensor_write(t, v, seg_tensor_nbytes(t))) {
        fprintf(stderr, "FAIL: upload: %s\n", seg_last_error());
        exit(1);
    }
    return t;
}

static float *download(const struct seg_tensor *t)
{
    float *v = malloc(seg_tensor_nbytes(t));
    if (!v || seg_tensor_read(t, v, seg_tensor_nbytes(t))) {
        fprintf(stderr, "FAIL: download: %s\n", seg_last_error());
        exit(1);
    }
    return v;
}

/* The four results of one case on one backend: y, dx, dw, db (host copies). */
struct results {
    float  *r[4];
    int64_t n[4];
    uint64_t chunked;
};

static void run_case(struct seg_backend *be, enum seg_conv_algo algo, const struct conv_case *cc, const float *x,
                     const float *w, const float *b, const float *dy, struct results *out)
{
    struct seg_conv2d_params p = {cc->stride, cc->stride, cc->pad, cc->pad, cc->dil, cc->dil};
    int64_t xs[4] = {cc->n, cc->c, cc->h, cc->w}, ws[4] = {cc->co, cc->c, cc->k, cc->k}, bs[1] = {cc->co};
    int64_t oh = seg_conv2d_out_size(cc->h, cc->k, cc->stride, cc->pad, cc->dil);
    int64_t ow = seg_conv2d_out_size(cc->w, cc->k, cc->stride, cc->pad, cc->dil);
    int64_t ys[4] = {cc->n, cc->co, oh, ow};
    struct seg_tensor *tx = upload(be, 4, xs, x), *tw = upload(be, 4, ws, w), *tb = upload(be, 1, bs, b);
    struct seg_tensor *tdy = upload(be, 4, ys, dy), *y = NULL, *dx = NULL, *dw = NULL, *db = NULL;
    /* im2col: the forward with columns; direct: backward-data's columns come from a 1x1
     * conv of dy with w^T (src/core/nn.c bwd_cols) */
    seg_backend_set_conv_algo(be, algo);
    uint64_t before = seg_backend_counts(be)->chunked;
    if (seg_conv2d(tx, tw, tb, &p, &y) || seg_conv2d_bwd_data(tdy, tw, xs, &p, &dx) ||
        seg_conv2d_bwd_weight(tx, tdy, ws, &p, &dw, &db)) {
        fprintf(stderr, "FAIL: %s on %s: %s\n", cc->name, seg_backend_name(be), seg_last_error());
        exit(1);
    }
    out->chunked = seg_backend_counts(be)->chunked - before;
    struct seg_tensor *r[4] = {y, dx, dw, db};
    for (int i = 0; i < 4; i++) {
        out->r[i] = download(r[i]);
        out->n[i] = seg_tensor_numel(r[i]);
        seg_tensor_free(r[i]);
    }
    seg_tensor_free(tx);
    seg_tensor_free(tw);
    seg_tensor_free(tb);
    seg_tensor_free(tdy);
}

/* max |a - r| / max(1, max |r|) */
static double rel(const float *a, const float *r, int64_t n)
{
    double e = 0.0, m = 1.0;
    for (int64_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)a[i] - r[i]));
        m = fmax(m, fabs((double)r[i]));
    }
    return e / m;
}

static struct seg_backend *open_with_limit(const char *spec, double mb)
{
    char v[32];
    if (mb > 0) {
        snprintf(v, sizeof v, "%.6f", mb);
        setenv("SEGDA_MAX_BUFFER_MB", v, 1);
    } else {
        unsetenv("SEGDA_MAX_BUFFER_MB");
    }
    struct seg_backend *be = NULL;
    int rc = test_backend_open(spec, &be);
    if (rc)
        exit(rc);
    return be;
}

int main(int argc, char **argv)
{
    const char *spec;
    int rc = 0;
    if (!test_backend_arg(argc, argv, "test_conv_chunks", &spec, &rc))
        return rc;
    static const char *what[4] = {"y", "dx", "dw", "db"};
    int failures = 0;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const struct conv_case *cc = &cases[ci];
        int64_t oh = seg_conv2d_out_size(cc->h, cc->k, cc->stride, cc->pad, cc->dil);
        int64_t ow = seg_conv2d_out_size(cc->w, cc->k, cc->stride, cc->pad, cc->dil);
        size_t nx = (size_t)(cc->n * cc->c * cc->h * cc->w), nw = (size_t)(cc->co * cc->c * cc->k * cc->k);
        size_t ny = (size_t)(cc->n * cc->co * oh * ow);
        float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *b = malloc((size_t)cc->co * sizeof *b);
        float *dy = malloc(ny * sizeof *dy);
        for (size_t i = 0; i < nx; i++) x[i] = frand();
        for (size_t i = 0; i < nw; i++) w[i] = frand();
        for (int64_t i = 0; i < cc->co; i++) b[i] = frand();
        for (size_t i = 0; i < ny; i++) dy[i] = frand();

        struct results whole, piece, ref;
        struct seg_backend *be = open_with_limit("cpu", 0);
        run_case(be, SEG_CONV_ALGO_IM2COL, cc, x, w, b, dy, &ref);
        seg_backend_destroy(be);
        for (int a = 0; a < 2; a++) {
            enum seg_conv_algo algo = a ? SEG_CONV_ALGO_DIRECT : SEG_CONV_ALGO_IM2COL;
            be = open_with_limit(spec, 0);
            run_case(be, algo, cc, x, w, b, dy, &whole);
            seg_backend_destroy(be);
            be = open_with_limit(spec, cc->limit_mb);
            run_case(be, algo, cc, x, w, b, dy, &piece);
            seg_backend_destroy(be);

            /* 1x1 stride-2 convolutions have columns of their own (a strided im2col); forward
             * (im2col only: the direct forward has no columns), backward-data and
             * backward-weight each chunk once */
            bool ok = piece.chunked >= (a ? 2u : 3u) && whole.chunked == 0;
            printf("%-20s %-6s chunked %llu/%llu:", cc->name, seg_conv_algo_name(algo),
                   (unsigned long long)piece.chunked, (unsigned long long)whole.chunked);
            for (int i = 0; i < 4; i++) {
                double e_same = rel(piece.r[i], whole.r[i], whole.n[i]), e_cpu = rel(piece.r[i], ref.r[i], ref.n[i]);
                bool good = piece.n[i] == whole.n[i] && e_same <= 1e-5 && e_cpu <= 1e-4;
                printf(" %s %.1e (cpu %.1e)%s", what[i], e_same, e_cpu, good ? "" : " FAIL");
                ok &= good;
            }
            printf("%s\n", ok ? "" : "  <-- FAIL");
            failures += !ok;
            for (int i = 0; i < 4; i++) {
                free(whole.r[i]);
                free(piece.r[i]);
            }
        }
        for (int i = 0; i < 4; i++)
            free(ref.r[i]);
        free(x);
        free(w);
        free(b);
        free(dy);
    }
    if (failures)
        fprintf(stderr, "FAIL: %d of %zu cases\n", failures, sizeof cases / sizeof cases[0]);
    return failures ? 1 : 0;
}
