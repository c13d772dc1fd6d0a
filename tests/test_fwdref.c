/* test_fwdref.c: forward values of the ops that the op harness (test_backend_ops) checks
 * against nothing independent on the cpu backend, against NumPy references written from
 * src/core/ops.def by tests/fwdref_gen.py:
 *   test_fwdref -b cpu|opencl|vulkan -d DIR [-k SUBSTRING] [-v]
 * DIR holds cases.txt ("NAME OP NIN NOUT RTOL ATOL" a line) and NAME.in<k>.npy,
 * NAME.p.npy (float64 parameters), NAME.out<k>.npy. Integer outputs must match exactly;
 * float outputs bit-exactly where RTOL = ATOL = 0, else within RTOL * |want| +
 * ATOL * max|want|. Exit 77: the backend is unavailable (a failure when SEGDA_REQUIRE
 * names it). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "segda.h"
#include "backend_open.h"

#define MAXIO 4

static int g_fails;
static bool g_verbose;

/* ---- .npy (version 1-3, little-endian, C order): only what fwdref_gen.py writes ---------- */

struct arr {
    char    kind;  /* 'f' float32, 'd' float64, 'i' int32, 'u' uint8 */
    int     ndim;
    int64_t shape[SEG_MAX_DIMS];
    int64_t n;
    void   *data;
};

static bool npy_read(const char *path, struct arr *a)
{
    memset(a, 0, sizeof *a);
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("FAIL: cannot open %s\n", path);
        return false;
    }
    unsigned char pre[12];
    bool ok = fread(pre, 1, 10, f) == 10 && !memcmp(pre, "\x93NUMPY", 6);
    size_t hlen = ok ? (size_t)pre[8] | (size_t)pre[9] << 8 : 0;
    if (ok && pre[6] >= 2) { /* version 2/3: a 4-byte header length */
        ok = fread(pre + 10, 1, 2, f) == 2;
        hlen |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    }
    char *h = ok ? calloc(1, hlen + 1) : NULL;
    ok = h && fread(h, 1, hlen, f) == hlen;
    const char *descr = ok ? strstr(h, "'descr': '") : NULL, *shape = ok ? strstr(h, "'shape': (") : NULL;
    ok = descr && shape && strstr(h, "'fortran_order': False");
    size_t es = 0;
    if (ok) {
        descr += 10;
        static const struct { const char *d; char kind; size_t es; } types[] = {
            {"<f4'", 'f', 4}, {"<f8'", 'd', 8}, {"<i4'", 'i', 4}, {"|u1'", 'u', 1}};
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
            if (!strncmp(descr, types[t].d, 4)) {
                a->kind = types[t].kind;
                es = types[t].es;
            }
        ok = es != 0;
    }
    a->n = 1;
    for (const char *s = shape ? shape + 10 : ""; ok && *s != ')';) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || a->ndim == SEG_MAX_DIMS) {
            ok = false;
            break;
        }
        a->shape[a->ndim++] = v;
        a->n *= v;
        s = end;
        while (*s == ',' || *s == ' ')
            s++;
    }
    if (ok && a->ndim == 0) /* a 0-d array: store as [1] */
        a->shape[a->ndim++] = 1;
    if (ok) {
        a->data = malloc((size_t)a->n * es + 1);
        ok = a->data && fread(a->data, es, (size_t)a->n, f) == (size_t)a->n;
    }
    free(h);
    fclose(f);
    if (!ok)
        printf("FAIL: %s: not a .npy this test reads\n", path);
    return ok;
}

static size_t kind_size(char kind) { return kind == 'd' ? 8 : kind == 'u' ? 1 : 4; }

static enum seg_dtype kind_dtype(char kind)
{
    return kind == 'i' ? SEG_DTYPE_I32 : kind == 'u' ? SEG_DTYPE_U8 : SEG_DTYPE_F32;
}

static struct seg_tensor *upload(struct seg_backend *be, const struct arr *a)
{
    struct seg_tensor *t = NULL;
    if (seg_tensor_new(be, kind_dtype(a->kind), a->ndim, a->shape, &t) ||
        seg_tensor_write(t, a->data, (size_t)a->n * kind_size(a->kind))) {
        printf("FAIL: upload: %s\n", seg_last_error());
        seg_tensor_free(t);
        return NULL;
    }
    return t;
}

/* ---- the ops: in[] uploaded inputs, p[] parameters; out[] what is compared ----------------- */

/* Steps s of a [steps, n] gradient tensor as views (their offsets exercise the kernels'). */
static enum seg_status step_view(struct seg_tensor *g, int64_t s, struct seg_tensor **v)
{
    int64_t n = g->shape[1];
    return seg_tensor_view(g, s * n, 1, &n, v);
}

static enum seg_status run_op(const char *op, struct seg_tensor **in, int nin, const double *p,
                              struct seg_tensor **out)
{
    struct seg_conv2d_params cp;
    struct seg_tensor *v = NULL;
    enum seg_status st = SEG_STATUS_OK;
    if (!strcmp(op, "fill")) { /* p: bits, start, len; out: the whole tensor */
        uint32_t bits = (uint32_t)p[0];
        float f;
        memcpy(&f, &bits, 4);
        int64_t len = (int64_t)p[2];
        st = seg_tensor_view(in[0], (int64_t)p[1], 1, &len, &v);
        if (!st)
            st = in[0]->dtype == SEG_DTYPE_F32 ? seg_fill(v, f) : seg_fill_i32(v, (int32_t)bits);
        out[0] = in[0];
    } else if (!strcmp(op, "cast")) {
        st = seg_cast(in[0], (enum seg_dtype)(int)p[0], &out[0]);
    } else if (!strcmp(op, "argreduce")) {
        st = seg_argreduce(p[0] != 0, in[0], (int)p[1], p[2] != 0, &out[0]);
    } else if (!strcmp(op, "one_hot")) {
        st = seg_one_hot(in[0], (int)p[0], &out[0]);
    } else if (!strcmp(op, "resize_nearest")) {
        st = seg_resize_nearest(in[0], (int64_t)p[0], (int64_t)p[1], &out[0]);
    } else if (!strcmp(op, "sgd")) { /* p: lr, momentum, wd, first (applies to step 0) */
        for (int64_t s = 0; !st && s < in[2]->shape[0]; s++) {
            st = step_view(in[2], s, &v);
            if (!st)
                st = seg_sgd_step(in[0], in[1], v, (float)p[0], (float)p[1], (float)p[2],
                                  s == 0 && p[3] != 0, NULL);
            seg_tensor_free(v);
            v = NULL;
        }
        out[0] = in[0];
        out[1] = in[1];
    } else if (!strcmp(op, "adam")) { /* p: lr, b1, b2, eps, wd, first step number, decoupled decay */
        for (int64_t s = 0; !st && s < in[3]->shape[0]; s++) {
            st = step_view(in[3], s, &v);
            if (!st)
                st = seg_adam_step(in[0], in[1], in[2], v, (float)p[0], (float)p[1], (float)p[2],
                                   (float)p[3], (float)p[4], (float)p[6], (int)p[5] + (int)s, NULL);
            seg_tensor_free(v);
            v = NULL;
        }
        for (int k = 0; k < 3; k++)
            out[k] = in[k];
    } else if (!strcmp(op, "conv2d_direct")) { /* p: SH, SW, PH, PW, DH, DW */
        cp = (struct seg_conv2d_params){(int)p[0], (int)p[1], (int)p[2], (int)p[3], (int)p[4], (int)p[5]};
        st = seg_conv2d_direct(in[0], in[1], nin > 2 ? in[2] : NULL, &cp, &out[0]);
    } else if (!strcmp(op, "rng")) {
        st = seg_rng_uniform(in[0], (uint32_t)p[0], (uint32_t)p[1]);
        out[0] = in[0];
    } else if (!strcmp(op, "sort")) {
        st = seg_sort(in[0], p[0] != 0, &out[0], &out[1]);
    } else if (!strcmp(op, "cumsum")) {
        st = seg_cumsum(in[0], (int)p[0], p[1] != 0, &out[0]);
    } else if (!strcmp(op, "gather")) {
        st = seg_gather(in[0], (int)p[0], in[1], &out[0]);
    } else if (!strcmp(op, "scatter_add")) {
        st = seg_scatter_add(in[0], (int)p[0], in[1], (int64_t)p[1], p[2] != 0, &out[0]);
    } else if (!strcmp(op, "permute")) {
        int perm[SEG_MAX_DIMS];
        for (int d = 0; d < in[0]->ndim; d++)
            perm[d] = (int)p[d];
        st = seg_permute(in[0], perm, &out[0]);
    } else if (!strcmp(op, "slice")) {
        st = seg_slice(in[0], (int)p[0], (int64_t)p[1], (int64_t)p[2], &out[0]);
    } else if (!strcmp(op, "slice_assign")) {
        st = seg_slice_assign(in[0], (int)p[0], (int64_t)p[1], in[1]);
        out[0] = in[0];
    } else if (!strcmp(op, "bn_stats")) {
        st = seg_batchnorm_stats(in[0], &out[0], &out[1]);
    } else if (!strcmp(op, "peak_fma")) {
        st = seg_peak_fma(in[0], (int)p[0], (float)p[1], (float)p[2], &out[0]);
    } else {
        return seg_error(SEG_STATUS_INVALID, "unknown op %s", op);
    }
    seg_tensor_free(v);
    return st;
}

/* ---- comparison ------------------------------------------------------------------------- */

/* Prints at most a few mismatches; returns whether t matches want. */
static bool compare(const char *name, int k, const struct seg_tensor *t, const struct arr *want,
                    double rtol, double atol)
{
    if (!t) {
        printf("FAIL %s out%d: no output\n", name, k);
        return false;
    }
    bool shape_ok = t->ndim == want->ndim && t->dtype == kind_dtype(want->kind);
    for (int d = 0; shape_ok && d < t->ndim; d++)
        shape_ok = t->shape[d] == want->shape[d];
    if (!shape_ok) {
        char s[96];
        printf("FAIL %s out%d: got %s, want %d dims of %s\n", name, k, seg_tensor_shape_str(t, s, sizeof s),
               want->ndim, seg_dtype_name(kind_dtype(want->kind)));
        return false;
    }
    size_t nb = (size_t)want->n * kind_size(want->kind);
    void *got = malloc(nb + 1);
    if (seg_tensor_read(t, got, nb)) {
        printf("FAIL %s out%d: read: %s\n", name, k, seg_last_error());
        free(got);
        return false;
    }
    double scale = 0, worst = 0;
    if (want->kind == 'f')
        for (int64_t i = 0; i < want->n; i++) {
            double w = fabs(((const float *)want->data)[i]);
            if (isfinite(w) && w > scale)
                scale = w;
        }
    int bad = 0;
    for (int64_t i = 0; i < want->n; i++) {
        bool ok;
        double g = 0, w = 0;
        if (want->kind == 'u') {
            g = ((const uint8_t *)got)[i];
            w = ((const uint8_t *)want->data)[i];
            ok = g == w;
        } else if (want->kind == 'i') {
            g = ((const int32_t *)got)[i];
            w = ((const int32_t *)want->data)[i];
            ok = g == w;
        } else {
            float gf = ((const float *)got)[i], wf = ((const float *)want->data)[i];
            g = gf;
            w = wf;
            if (rtol == 0 && atol == 0) { /* bit patterns: -0.0, denormals, NaN payloads */
                ok = !memcmp(&gf, &wf, 4);
            } else {
                double err = fabs(g - w);
                ok = g == w || err <= rtol * fabs(w) + atol * scale;
                if (isfinite(err) && err > worst)
                    worst = err;
            }
        }
        if (!ok && bad++ < 5) {
            printf("FAIL %s out%d[%lld]: got %.9g, want %.9g", name, k, (long long)i, g, w);
            if (want->kind == 'f') {
                uint32_t gb, wb;
                memcpy(&gb, (const float *)got + i, 4);
                memcpy(&wb, (const float *)want->data + i, 4);
                printf(" (bits 0x%08x, 0x%08x)", (unsigned)gb, (unsigned)wb);
            }
            printf("\n");
        }
    }
    if (bad > 5)
        printf("FAIL %s out%d: %d of %lld elements differ\n", name, k, bad, (long long)want->n);
    if (g_verbose && !bad)
        printf("ok   %s out%d (%lld elements, max abs err %.3g)\n", name, k, (long long)want->n, worst);
    free(got);
    return bad == 0;
}

static void free_arr(struct arr *a)
{
    free(a->data);
    a->data = NULL;
}

/* One line of cases.txt: load, run, compare, free. */
static void run_case(struct seg_backend *be, const char *dir, const char *name, const char *op,
                     int nin, int nout, double rtol, double atol)
{
    char path[4096];
    struct arr ain[MAXIO] = {{0}}, aout[MAXIO] = {{0}}, ap = {0};
    struct seg_tensor *in[MAXIO] = {0}, *out[MAXIO] = {0};
    bool ok = nin <= MAXIO && nout <= MAXIO;
    for (int k = 0; ok && k < nin; k++) {
        snprintf(path, sizeof path, "%s/%s.in%d.npy", dir, name, k);
        ok = npy_read(path, &ain[k]) && (in[k] = upload(be, &ain[k])) != NULL;
    }
    for (int k = 0; ok && k < nout; k++) {
        snprintf(path, sizeof path, "%s/%s.out%d.npy", dir, name, k);
        ok = npy_read(path, &aout[k]);
    }
    if (ok) {
        snprintf(path, sizeof path, "%s/%s.p.npy", dir, name);
        ok = npy_read(path, &ap) && ap.kind == 'd';
    }
    bool pass = false;
    if (ok) {
        enum seg_status st = run_op(op, in, nin, ap.data, out);
        if (st)
            printf("FAIL %s: %s\n", name, seg_last_error());
        pass = !st;
        for (int k = 0; !st && k < nout; k++)
            pass = compare(name, k, out[k], &aout[k], rtol, atol) && pass;
    }
    if (!pass)
        g_fails++;
    for (int k = 0; k < MAXIO; k++) {
        bool is_input = false; /* in-place ops return their inputs */
        for (int j = 0; j < MAXIO; j++)
            is_input |= out[k] && out[k] == in[j];
        if (!is_input)
            seg_tensor_free(out[k]);
    }
    for (int k = 0; k < MAXIO; k++) {
        seg_tensor_free(in[k]);
        free_arr(&ain[k]);
        free_arr(&aout[k]);
    }
    free_arr(&ap);
}

int main(int argc, char **argv)
{
    const char *backend = "cpu", *dir = NULL, *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-b") && i + 1 < argc)
            backend = argv[++i];
        else if (!strcmp(argv[i], "-d") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "-k") && i + 1 < argc) /* only cases whose name contains it */
            only = argv[++i];
        else if (!strcmp(argv[i], "-v"))
            g_verbose = true;
        else {
            fprintf(stderr, "usage: test_fwdref -b cpu|opencl|vulkan -d DIR [-k SUBSTRING] [-v]\n");
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "test_fwdref: -d DIR (written by tests/fwdref_gen.py) is required\n");
        return 2;
    }
    struct seg_backend *be = NULL;
    int rc = test_backend_open(backend, &be);
    if (rc)
        return rc;
    printf("forward references on %s (%s)\n", seg_backend_device(be)->spec, seg_backend_device(be)->name);
    char path[4096];
    snprintf(path, sizeof path, "%s/cases.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("FAIL: cannot open %s (run tests/fwdref_gen.py)\n", path);
        seg_backend_destroy(be);
        return 1;
    }
    char line[512], name[200], op[64];
    int ncases = 0;
    while (fgets(line, sizeof line, f)) {
        int nin, nout;
        double rtol, atol;
        if (sscanf(line, "%199s %63s %d %d %lf %lf", name, op, &nin, &nout, &rtol, &atol) != 6 ||
            (only && !strstr(name, only)))
            continue;
        run_case(be, dir, name, op, nin, nout, rtol, atol);
        ncases++;
    }
    fclose(f);
    seg_backend_destroy(be);
    if (ncases == 0) {
        printf("FAIL: no cases in %s\n", path);
        return 1;
    }
    printf("%d cases, %d failed: %s\n", ncases, g_fails, g_fails ? "FAILED" : "all passed");
    return g_fails ? 1 : 0;
}
