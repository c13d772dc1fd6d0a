/* suites.c: the bench suites: peak bandwidth, GEMM, DeepLab-v2 convolutions, memory-bound
 * ops and a full training step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"
#include "core/ops.h"
#include "model/model.h"
#include "model/optim.h"

#define TRY(expr) SEG_TRY(expr)

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum seg_status bench_time(struct seg_backend *be, const struct bench_opts *o, bench_fn fn,
                           void *ctx, struct bench_record *r)
{
    double times[64], dev[64];
    int n = 0, want = o->runs < 1 ? 1 : (o->runs > 64 ? 64 : o->runs);
    /* Device timestamps bracket each run where the backend has them; a timer failure falls
     * back to wall clock only (the record's ms_device stays 0). */
    bool timed = seg_device_timer_available(be);
    /* Warm-up: kernel compilation (the timer's too), pool and cache fill are not measured. */
    double d = 0.0;
    if (timed && seg_device_timer_start(be) != SEG_STATUS_OK)
        timed = false;
    TRY(fn(ctx));
    if (timed && seg_device_timer_stop(be, &d) != SEG_STATUS_OK)
        timed = false;
    TRY(seg_backend_sync(be));
    double start = now_ms();
    while (n < want) {
        double t0 = now_ms();
        d = 0.0;
        if (timed && seg_device_timer_start(be) != SEG_STATUS_OK)
            timed = false;
        TRY(fn(ctx));
        if (timed && seg_device_timer_stop(be, &d) != SEG_STATUS_OK)
            timed = false;
        TRY(seg_backend_sync(be));
        times[n] = now_ms() - t0;
        dev[n++] = d;
        if (n >= 3 && (now_ms() - start) / 1e3 > o->budget_s)
            break;
    }
    qsort(times, (size_t)n, sizeof *times, cmp_double);
    qsort(dev, (size_t)n, sizeof *dev, cmp_double);
    r->ms_median = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
    r->ms_min = times[0];
    r->ms_max = times[n - 1];
    r->ms_device = !timed ? 0.0 : n % 2 ? dev[n / 2] : 0.5 * (dev[n / 2 - 1] + dev[n / 2]);
    double s = r->ms_median / 1e3;
    r->gflops = r->flops > 0 ? r->flops / s / 1e9 : 0;
    r->gbps = r->bytes > 0 ? r->bytes / s / 1e9 : 0;
    return SEG_STATUS_OK;
}

struct bench_record *bench_add(struct bench_list *l, struct seg_backend *be, const char *suite,
                               const char *op, const char *shape, double flops, double bytes)
{
    if (l->filter && !strstr(op, l->filter) && !strstr(shape, l->filter))
        return NULL;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        struct bench_record *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v)
            return NULL;
        l->v = v;
        l->cap = cap;
    }
    struct bench_record *r = &l->v[l->n++];
    memset(r, 0, sizeof *r);
    const struct seg_device_info *d = seg_backend_device(be);
    snprintf(r->suite, sizeof r->suite, "%s", suite);
    snprintf(r->backend, sizeof r->backend, "%s", d->backend);
    snprintf(r->device, sizeof r->device, "%s", d->name);
    snprintf(r->driver, sizeof r->driver, "%s", d->driver);
    snprintf(r->op, sizeof r->op, "%s", op);
    snprintf(r->shape, sizeof r->shape, "%s", shape);
    r->flops = flops;
    r->bytes = bytes;
    r->tuned = seg_backend_tuned(be)[0] != '\0';
    return r;
}

static enum seg_status random_tensor(struct seg_backend *be, int ndim, const int64_t *shape,
                                     uint32_t seed, struct seg_tensor **out)
{
    TRY(seg_tensor_new(be, SEG_DTYPE_F32, ndim, shape, out));
    enum seg_status st = seg_rng_uniform(*out, seed, 0);
    if (st) {
        seg_tensor_free(*out);
        *out = NULL;
    }
    return st;
}

/* ---- peak ----------------------------------------------------------------------------- */

struct copy_ctx {
    struct seg_tensor *a, *b, *c;
};

static enum seg_status run_copy(void *p)
{
    struct copy_ctx *c = p;
    return seg_tensor_copy(c->b, c->a);
}

static enum seg_status run_add(void *p)
{
    struct copy_ctx *c = p;
    struct seg_tensor *y = NULL;
    enum seg_status st = seg_binary(SEG_BINARY_ADD, c->a, c->b, &y);
    seg_tensor_free(y);
    return st;
}

enum seg_status bench_suite_peak(struct seg_backend *be, const struct bench_opts *o, struct bench_list *l)
{
    int64_t n = o->full ? (64 << 20) : (16 << 20); /* floats: 256 MiB or 64 MiB a buffer */
    struct copy_ctx c = {0};
    enum seg_status st = random_tensor(be, 1, &n, 1, &c.a);
    if (!st)
        st = random_tensor(be, 1, &n, 2, &c.b);
    char shape[64];
    snprintf(shape, sizeof shape, "%lld floats", (long long)n);
    struct bench_record *r;
    if (!st && (r = bench_add(l, be, "peak", "copy", shape, 0, 8.0 * n))) {
        st = bench_time(be, o, run_copy, &c, r);
        if (!st)
            l->peak_gbps = fmax(l->peak_gbps, r->gbps);
    }
    if (!st && (r = bench_add(l, be, "peak", "add (a+b)", shape, 0, 12.0 * n))) {
        st = bench_time(be, o, run_add, &c, r);
        if (!st)
            l->peak_gbps = fmax(l->peak_gbps, r->gbps);
    }
    seg_tensor_free(c.a);
    seg_tensor_free(c.b);
    return st ? st : bench_fma_peak(be, o, l);
}

/* FP32 FMA peak: PEAK_FMA over 1M elements (8 chains each), its iteration count raised until
 * one run takes 20 ms (clpeak-style calibration), then timed like every test. */
struct fma_ctx {
    struct seg_tensor *x;
    int                iters;
};

static enum seg_status run_fma(void *p)
{
    struct fma_ctx *c = p;
    struct seg_tensor *y = NULL;
    enum seg_status st = seg_peak_fma(c->x, c->iters, 0.999f, 0.001f, &y);
    seg_tensor_free(y);
    return st;
}

enum seg_status bench_fma_peak(struct seg_backend *be, const struct bench_opts *o, struct bench_list *l)
{
    int64_t n = 1 << 20;
    struct fma_ctx c = {NULL, 64};
    /* measured whatever --filter says: GEMM and conv records are rated against it */
    const char *filter = l->filter;
    l->filter = NULL;
    enum seg_status st = random_tensor(be, 1, &n, 8, &c.x);
    if (st) {
        l->filter = filter;
        return st;
    }
    st = run_fma(&c); /* compile */
    if (!st)
        st = seg_backend_sync(be);
    while (!st && c.iters < (1 << 15)) { /* at most 2^15: drivers with a loop limit */
        double t0 = now_ms();
        st = run_fma(&c);
        if (!st)
            st = seg_backend_sync(be);
        double ms = now_ms() - t0;
        if (st || ms >= 20.0)
            break;
        c.iters = c.iters * (ms < 2.0 ? 8 : 2) > (1 << 15) ? 1 << 15 : c.iters * (ms < 2.0 ? 8 : 2);
    }
    char shape[96];
    /* the iteration count (calibrated per device) stays out of the shape: compare keys on it */
    snprintf(shape, sizeof shape, "%lld elements x 8 chains", (long long)n);
    struct bench_record *r;
    if (!st && (r = bench_add(l, be, "peak", "fp32 fma", shape, 16.0 * (double)n * c.iters, 0))) {
        st = bench_time(be, o, run_fma, &c, r);
        if (!st)
            l->peak_gflops = fmax(l->peak_gflops, r->gflops);
    }
    seg_tensor_free(c.x);
    l->filter = filter;
    return st;
}

/* ---- gemm ------------------------------------------------------------------------------ */

struct gemm_ctx {
    struct seg_tensor *a, *b, *c;
};

static enum seg_status run_gemm(void *p)
{
    struct gemm_ctx *g = p;
    return seg_matmul(g->a, g->b, false, false, 1.0f, 0.0f, &g->c);
}

static enum seg_status gemm_one(struct seg_backend *be, const struct bench_opts *o,
                                struct bench_list *l, const char *op, int64_t m, int64_t n, int64_t k)
{
    struct gemm_ctx g = {0};
    int64_t as[2] = {m, k}, bs[2] = {k, n}, cs[2] = {m, n};
    enum seg_status st = random_tensor(be, 2, as, 3, &g.a);
    if (!st) st = random_tensor(be, 2, bs, 4, &g.b);
    if (!st) st = seg_tensor_new(be, SEG_DTYPE_F32, 2, cs, &g.c);
    char shape[96];
    snprintf(shape, sizeof shape, "m=%lld n=%lld k=%lld", (long long)m, (long long)n, (long long)k);
    struct bench_record *r;
    if (!st && (r = bench_add(l, be, "gemm", op, shape, 2.0 * m * n * k, 4.0 * (m * k + k * n + m * n))))
        st = bench_time(be, o, run_gemm, &g, r);
    seg_tensor_free(g.a);
    seg_tensor_free(g.b);
    seg_tensor_free(g.c);
    return st;
}

/* The convolutions of DeepLab-v2 ResNet-101 on one image of h x w. */
struct conv_shape {
    int cin, cout, k, stride, dil, h, w;
    const char *where;
};

static int deeplab_convs(int64_t h, int64_t w, struct conv_shape *out, int max)
{
    int n = 0;
#define ADD(ci, co, kk, s, d, hh, ww, name)                                                  \
    do {                                                                                     \
        struct conv_shape c_ = {ci, co, kk, s, d, (int)(hh), (int)(ww), name};               \
        bool dup_ = false;                                                                   \
        for (int i_ = 0; i_ < n; i_++)                                                       \
            dup_ |= !memcmp(&out[i_], &c_, offsetof(struct conv_shape, where));              \
        if (!dup_ && n < max)                                                                \
            out[n++] = c_;                                                                   \
    } while (0)
    ADD(3, 64, 7, 2, 1, h, w, "conv1");
    int64_t ch = seg_conv2d_out_size(h, 7, 2, 3, 1), cw = seg_conv2d_out_size(w, 7, 2, 3, 1);
    int64_t ph = seg_pool2d_out_size(ch, 3, 2, 1, true), pw = seg_pool2d_out_size(cw, 3, 2, 1, true);
    static const char *const names[4] = {"layer1", "layer2", "layer3", "layer4"};
    static const int strides[4] = {1, 2, 1, 1}, dils[4] = {1, 1, 2, 4};
    int inplanes = 64;
    for (int l = 0; l < 4; l++) {
        int planes = 64 << l, s = strides[l], d = dils[l];
        int64_t oh = seg_conv2d_out_size(ph, 1, s, 0, 1), ow = seg_conv2d_out_size(pw, 1, s, 0, 1);
        ADD(inplanes, planes, 1, s, 1, ph, pw, names[l]);        /* first conv1 */
        ADD(inplanes, planes * 4, 1, s, 1, ph, pw, names[l]);    /* downsample */
        ADD(planes * 4, planes, 1, 1, 1, oh, ow, names[l]);      /* later conv1 */
        ADD(planes, planes, 3, 1, d, oh, ow, names[l]);          /* conv2 */
        ADD(planes, planes * 4, 1, 1, 1, oh, ow, names[l]);      /* conv3 */
        inplanes = planes * 4;
        ph = oh;
        pw = ow;
    }
    for (int r = 6; r <= 24; r += 6) {
        ADD(2048, 19, 3, 1, r, ph, pw, "layer6 (ASPP)");
        ADD(1024, 19, 3, 1, r, ph, pw, "layer5 (ASPP)");
    }
#undef ADD
    return n;
}

int bench_deeplab_gemm_shapes(bool bwd, struct seg_tune_shape *out, int max)
{
    struct conv_shape cs[64];
    int n = deeplab_convs(321, 321, cs, 64), count = 0;
    for (int i = 0; i < n; i++) {
        int pad = cs[i].k / 2 * cs[i].dil;
        int p = (int)(seg_conv2d_out_size(cs[i].h, cs[i].k, cs[i].stride, pad, cs[i].dil) *
                      seg_conv2d_out_size(cs[i].w, cs[i].k, cs[i].stride, pad, cs[i].dil));
        int k = cs[i].cin * cs[i].k * cs[i].k;
        /* forward W[co,k] col[k,p]; backward data W^T dY; backward weight dY col^T */
        struct seg_tune_shape v[3] = {{cs[i].cout, p, k, false, false},
                                      {k, p, cs[i].cout, true, false},
                                      {cs[i].cout, k, p, false, true}};
        for (int d = 0; d < (bwd ? 3 : 1); d++) {
            bool dup = false;
            for (int j = 0; j < count; j++)
                dup |= out[j].m == v[d].m && out[j].n == v[d].n && out[j].k == v[d].k &&
                       out[j].trans_a == v[d].trans_a && out[j].trans_b == v[d].trans_b;
            if (!dup && count < max)
                out[count++] = v[d];
        }
    }
    return count;
}

/* The suite's shapes, each op named with prefix ("" or "coopmat "). */
static enum seg_status gemm_shapes(struct seg_backend *be, const struct bench_opts *o, struct bench_list *l,
                                   const char *prefix)
{
    int sizes[] = {256, 512, 1024, 2048};
    int nsizes = o->full ? 4 : 3;
    char op[64];
    snprintf(op, sizeof op, "%ssgemm square", prefix);
    for (int i = 0; i < nsizes; i++)
        TRY(gemm_one(be, o, l, op, sizes[i], sizes[i], sizes[i]));
    /* Each distinct GEMM once (the four ASPP dilations share one), named by its first conv. */
    struct conv_shape cs[64];
    int n = deeplab_convs(321, 321, cs, 64);
    int64_t done[64][3];
    int ndone = 0;
    for (int i = 0; i < n; i++) {
        int pad = cs[i].k / 2 * cs[i].dil;
        int64_t oh = seg_conv2d_out_size(cs[i].h, cs[i].k, cs[i].stride, pad, cs[i].dil);
        int64_t ow = seg_conv2d_out_size(cs[i].w, cs[i].k, cs[i].stride, pad, cs[i].dil);
        int64_t m = cs[i].cout, nn = oh * ow, k = (int64_t)cs[i].cin * cs[i].k * cs[i].k;
        bool dup = false;
        for (int j = 0; j < ndone; j++)
            dup |= done[j][0] == m && done[j][1] == nn && done[j][2] == k;
        if (dup || ndone == 64)
            continue;
        done[ndone][0] = m;
        done[ndone][1] = nn;
        done[ndone++][2] = k;
        snprintf(op, sizeof op, "%sconv gemm %s", prefix, cs[i].where);
        TRY(gemm_one(be, o, l, op, m, nn, k));
    }
    return SEG_STATUS_OK;
}

enum seg_status bench_suite_gemm(struct seg_backend *be, const struct bench_opts *o, struct bench_list *l)
{
    TRY(gemm_shapes(be, o, l, ""));
    /* Matrix hardware (Vulkan cooperative matrices, fp16 inputs) in the same run, where the
     * device has it and MATMUL does not already run on it. Its self-test runs in the first
     * warm-up; should it fail, MATMUL is back on the SIMT kernel and nothing is recorded. */
    const char *kernel = seg_backend_gemm_kernel(be);
    if (!seg_backend_device(be)->matrix[0] || !strncmp(kernel, "gemm_coopmat.comp fp16", 22))
        return SEG_STATUS_OK;
    TRY(seg_backend_set_matrix_gemm(be, true));
    int before = l->n;
    enum seg_status st = gemm_shapes(be, o, l, "coopmat ");
    if (!strstr(seg_backend_gemm_kernel(be), "self-test passed")) {
        l->n = before;
        fprintf(stderr, "segda bench: %s: no cooperative-matrix GEMM records (%s)\n", seg_backend_device(be)->spec,
                seg_backend_gemm_kernel(be));
    }
    enum seg_status back = seg_backend_set_matrix_gemm(be, false);
    return st ? st : back;
}

/* ---- conv --------------------------------------------------------------------------------- */

struct conv_ctx {
    struct seg_tensor       *x, *w, *dy;
    struct seg_conv2d_params p;
    int                      dir; /* 0 forward, 1 direct forward, 2 backward-data, 3 backward-weight,
                                   * 4 forward as seg_conv2d chooses */
};

static enum seg_status run_conv(void *p)
{
    struct conv_ctx *c = p;
    struct seg_tensor *y = NULL, *dw = NULL;
    enum seg_status st;
    if (c->dir == 0) /* im2col + GEMM, whatever the backend would choose */
        st = seg_conv2d_im2col(c->x, c->w, NULL, &c->p, &y);
    else if (c->dir == 1)
        st = seg_conv2d_direct(c->x, c->w, NULL, &c->p, &y);
    else if (c->dir == 4) /* what training runs: the backend's choice for this shape */
        st = seg_conv2d(c->x, c->w, NULL, &c->p, &y);
    else if (c->dir == 2)
        st = seg_conv2d_bwd_data(c->dy, c->w, c->x->shape, &c->p, &y);
    else
        st = seg_conv2d_bwd_weight(c->x, c->dy, c->w->shape, &c->p, &dw, NULL);
    seg_tensor_free(y);
    seg_tensor_free(dw);
    return st;
}

static enum seg_status conv_suite_at(struct seg_backend *be, const struct bench_opts *o,
                                     struct bench_list *l, int64_t h, int64_t w)
{
    struct conv_shape cs[64];
    int n = deeplab_convs(h, w, cs, 64);
    /* fwd = im2col + GEMM (src/core/nn.c), fwd-direct = CONV2D_DIRECT (implicit GEMM),
     * fwd-chosen = what training runs (src/core/conv_algo.c: measured at first use, cached) */
    static const char *const dirs[5] = {"fwd", "fwd-direct", "fwd-chosen", "bwd-data", "bwd-weight"};
    static const int order[5] = {0, 1, 4, 2, 3};
    for (int i = 0; i < n; i++) {
        struct conv_ctx c = {0};
        int pad = cs[i].k / 2 * cs[i].dil;
        c.p = (struct seg_conv2d_params){cs[i].stride, cs[i].stride, pad, pad, cs[i].dil, cs[i].dil};
        int64_t xs[4] = {1, cs[i].cin, cs[i].h, cs[i].w}, ws[4] = {cs[i].cout, cs[i].cin, cs[i].k, cs[i].k};
        int64_t oh = seg_conv2d_out_size(cs[i].h, cs[i].k, cs[i].stride, pad, cs[i].dil);
        int64_t ow = seg_conv2d_out_size(cs[i].w, cs[i].k, cs[i].stride, pad, cs[i].dil);
        int64_t ys[4] = {1, cs[i].cout, oh, ow};
        enum seg_status st = random_tensor(be, 4, xs, 5, &c.x);
        if (!st) st = random_tensor(be, 4, ws, 6, &c.w);
        if (!st) st = random_tensor(be, 4, ys, 7, &c.dy);
        double flops = 2.0 * cs[i].cout * oh * ow * cs[i].cin * cs[i].k * cs[i].k;
        char shape[96];
        snprintf(shape, sizeof shape, "%s x=[1,%d,%d,%d] k=%d s=%d d=%d co=%d", cs[i].where, cs[i].cin,
                 cs[i].h, cs[i].w, cs[i].k, cs[i].stride, cs[i].dil, cs[i].cout);
        for (int d = 0; d < 5 && !st; d++) {
            c.dir = order[d];
            struct bench_record *r = bench_add(l, be, "conv", dirs[d], shape, flops, 0);
            if (r && c.dir == 4) { /* which algorithm, and how it was chosen (measuring now if new) */
                enum seg_conv_algo a;
                char how[96];
                st = seg_conv2d_algo(c.x, c.w, &c.p, &a, how, sizeof how);
                snprintf(r->algo, sizeof r->algo, "%s", seg_conv_algo_name(a));
                snprintf(r->algo_how, sizeof r->algo_how, "%s", how);
            } else if (r) { /* the backward passes' route (src/core/nn.c) */
                bool pw = cs[i].k == 1 && cs[i].stride == 1, conv = seg_conv2d_bwd_as_conv(be);
                const char *bd = conv ? (pw ? "conv1x1(w^T)" : "conv1x1(w^T)+col2im") : (pw ? "gemm" : "gemm+col2im");
                snprintf(r->algo, sizeof r->algo, "%s",
                         c.dir == 0 ? "im2col" : c.dir == 1 ? "direct" : c.dir == 2 ? bd
                                               : conv ? "conv1x1(col^T)" : "gemm");
            }
            if (r && !st)
                st = bench_time(be, o, run_conv, &c, r);
            if (st == SEG_STATUS_UNSUPPORTED && d == 1) { /* a size the direct kernel refuses */
                l->n--;
                st = SEG_STATUS_OK;
            }
        }
        seg_tensor_free(c.x);
        seg_tensor_free(c.w);
        seg_tensor_free(c.dy);
        TRY(st);
    }
    return SEG_STATUS_OK;
}

enum seg_status bench_suite_conv(struct seg_backend *be, const struct bench_opts *o, struct bench_list *l)
{
    TRY(conv_suite_at(be, o, l, 321, 321));
    return o->full ? conv_suite_at(be, o, l, 512, 1024) : SEG_STATUS_OK;
}

/* ---- memory-bound ---------------------------------------------------------------------------- */

struct mem_ctx {
    struct seg_tensor *a, *b, *mean, *var;
    int                op;
    int64_t            oh, ow;
};

static enum seg_status run_mem(void *p)
{
    struct mem_ctx *c = p;
    struct seg_tensor *y = NULL;
    enum seg_status st;
    switch (c->op) {
    case 0: st = seg_softmax(c->a, 1, false, &y); break;
    case 1: st = seg_resize_bilinear(c->a, c->oh, c->ow, true, &y); break;
    case 2: st = seg_batchnorm(c->a, c->mean, c->var, NULL, NULL, 1e-5f, &y); break;
    default: st = seg_binary(SEG_BINARY_ADD, c->a, c->b, &y); break;
    }
    seg_tensor_free(y);
    return st;
}

enum seg_status bench_suite_memory(struct seg_backend *be, const struct bench_opts *o, struct bench_list *l)
{
    int64_t s = o->full ? 513 : 321;
    int64_t lo = (s - 1) / 8 + 1;
    struct {
        const char *name;
        int         op;
        int64_t     shape[4];
        double      bytes;
    } cases[4] = {
        {"softmax", 0, {1, 19, s, s}, 8.0 * 19 * s * s},
        {"resize_bilinear", 1, {1, 19, lo, lo}, 4.0 * 19 * (lo * lo + s * s)},
        {"batchnorm", 2, {1, 256, (s + 3) / 4, (s + 3) / 4}, 8.0 * 256 * ((s + 3) / 4) * ((s + 3) / 4)},
        {"add", 3, {1, 256, (s + 3) / 4, (s + 3) / 4}, 12.0 * 256 * ((s + 3) / 4) * ((s + 3) / 4)},
    };
    for (int i = 0; i < 4; i++) {
        struct mem_ctx c = {0};
        c.op = cases[i].op;
        c.oh = c.ow = s;
        int64_t ch = cases[i].shape[1];
        enum seg_status st = random_tensor(be, 4, cases[i].shape, 8, &c.a);
        if (!st) st = random_tensor(be, 4, cases[i].shape, 9, &c.b);
        if (!st) st = random_tensor(be, 1, &ch, 10, &c.mean);
        if (!st) st = random_tensor(be, 1, &ch, 11, &c.var);
        char shape[96];
        snprintf(shape, sizeof shape, "[1,%lld,%lld,%lld]%s", (long long)cases[i].shape[1],
                 (long long)cases[i].shape[2], (long long)cases[i].shape[3], c.op == 1 ? " -> full" : "");
        struct bench_record *r;
        if (!st && (r = bench_add(l, be, "memory", cases[i].name, shape, 0, cases[i].bytes)))
            st = bench_time(be, o, run_mem, &c, r);
        seg_tensor_free(c.a);
        seg_tensor_free(c.b);
        seg_tensor_free(c.mean);
        seg_tensor_free(c.var);
        TRY(st);
    }
    return SEG_STATUS_OK;
}

