/* test_backend_ops.c: every op case on a backend against the cpu reference, and (on the
 * cpu backend) every gradient against central finite differences. Prints the op by
 * backend table. Run with --help for the options. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/backend.h"
#include "harness.h"

struct opts {
    const char *backend; /* cpu | opencl | vulkan (device spec allowed: opencl:0.0) */
    const char *op;      /* only cases of this op name */
    const char *param;   /* only cases whose params contain this */
    bool        grad;    /* gradient mode (cpu) */
    bool        verbose;
};

static struct opts g_opts;
static struct seg_backend *g_cpu, *g_be;
static struct h_case *g_cases;
static int g_ncases;

/* Per op name: results for the table. */
enum verdict { V_NONE, V_PASS, V_FAIL, V_MISSING };
struct op_result {
    const char  *name;
    enum verdict v;
    int          cases, failed;
};
static struct op_result g_results[128];
static int g_nresults;

/* ---- host data ------------------------------------------------------------------------- */

static uint32_t xs_next(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static float xs_unit(uint32_t *s) { return (float)(xs_next(s) >> 8) * (1.0f / 16777216.0f); }

static void *make_host(const struct h_input *in, uint32_t seed, size_t *nbytes)
{
    int64_t n = 1;
    for (int d = 0; d < in->ndim; d++)
        n *= in->shape[d];
    size_t es = seg_dtype_size(in->dtype);
    *nbytes = (size_t)n * es;
    void *p = malloc(*nbytes ? *nbytes : 1);
    uint32_t s = seed | 1u;
    for (int64_t i = 0; i < n; i++) {
        float u = xs_unit(&s);
        switch (in->init) {
        case H_UNIFORM:
        case H_POSITIVE:
            ((float *)p)[i] = in->lo + (in->hi - in->lo) * u;
            break;
        case H_AWAY: {
            float v = in->lo + (in->hi - in->lo) * u;
            if (fabsf(v) < 0.05f)
                v = v < 0 ? -0.05f - u : 0.05f + u;
            ((float *)p)[i] = v;
            break;
        }
        case H_TIES:
            ((float *)p)[i] = (float)(xs_next(&s) % 8) * 0.25f;
            break;
        case H_LABELS:
            ((int32_t *)p)[i] = u < 0.1f ? 255 : (int32_t)(xs_next(&s) % (uint32_t)in->classes);
            break;
        case H_INDEX:
            ((int32_t *)p)[i] = (int32_t)(xs_next(&s) % (uint32_t)in->classes);
            break;
        case H_BYTES:
            ((uint8_t *)p)[i] = (uint8_t)(xs_next(&s) & 255u);
            break;
        case H_PERM:
        case H_DISTINCT:
            break;
        }
    }
    if (in->init == H_PERM) { /* each row a Fisher-Yates shuffle */
        int64_t row = in->shape[in->ndim - 1];
        for (int64_t r = 0; r < n / row; r++) {
            int32_t *q = (int32_t *)p + r * row;
            for (int64_t i = 0; i < row; i++)
                q[i] = (int32_t)i;
            for (int64_t i = row - 1; i > 0; i--) {
                int64_t j = xs_next(&s) % (uint32_t)(i + 1);
                int32_t t = q[i];
                q[i] = q[j];
                q[j] = t;
            }
        }
    }
    if (in->init == H_DISTINCT) {
        int32_t *perm = malloc((size_t)n * sizeof *perm);
        for (int64_t i = 0; i < n; i++)
            perm[i] = (int32_t)i;
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = xs_next(&s) % (uint32_t)(i + 1);
            int32_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        for (int64_t i = 0; i < n; i++)
            ((float *)p)[i] = in->lo + 0.01f * (float)perm[i];
        free(perm);
    }
    return p;
}

static enum seg_status upload(struct seg_backend *be, const struct h_case *c, void **host,
                              size_t *nbytes, struct seg_tensor **in)
{
    for (int i = 0; i < c->nin; i++) {
        enum seg_status st = seg_tensor_new(be, c->in[i].dtype, c->in[i].ndim, c->in[i].shape, &in[i]);
        if (!st)
            st = seg_tensor_write(in[i], host[i], nbytes[i]);
        if (st)
            return st;
    }
    return SEG_STATUS_OK;
}

static void free_all(struct seg_tensor **t, int n)
{
    for (int i = 0; i < n; i++) {
        seg_tensor_free(t[i]);
        t[i] = NULL;
    }
}

/* Reads a tensor as doubles (ints converted). */
static double *read_host(const struct seg_tensor *t, int64_t *n)
{
    *n = seg_tensor_numel(t);
    size_t nb = seg_tensor_nbytes(t);
    void *raw = malloc(nb ? nb : 1);
    double *d = malloc((size_t)*n * sizeof *d + 1);
    if (seg_tensor_read(t, raw, nb)) {
        free(raw);
        free(d);
        return NULL;
    }
    for (int64_t i = 0; i < *n; i++)
        d[i] = t->dtype == SEG_DTYPE_F32 ? ((float *)raw)[i]
               : t->dtype == SEG_DTYPE_I32 ? ((int32_t *)raw)[i] : ((uint8_t *)raw)[i];
    free(raw);
    return d;
}

static void rerun_hint(const struct h_case *c, const char *backend)
{
    fprintf(stderr, "    rerun: test_backend_ops -b %s -o %s -p '%s'\n", backend, c->name, c->params);
}

/* ---- test mode: backend vs cpu ---------------------------------------------------------- */

/* Compares one result of the backend (a) with the cpu reference (r). */
static bool compare_outputs(const struct h_case *c, const char *bname, const char *what, int k,
                            const struct seg_tensor *rt, const struct seg_tensor *at)
{
    int64_t n1, n2;
    double *r = read_host(rt, &n1), *a = read_host(at, &n2);
    bool ok = true;
    if (!r || !a || n1 != n2) {
        fprintf(stderr, "  FAIL %s(%s) [%s]: %s %d unreadable: %s\n", c->name, c->params, bname, what, k,
                seg_last_error());
        ok = false;
    } else if (rt->dtype != SEG_DTYPE_F32) {
        int64_t bad = 0, first = -1;
        for (int64_t i = 0; i < n1; i++)
            if (r[i] != a[i] && bad++ == 0)
                first = i;
        if (bad) {
            fprintf(stderr, "  FAIL %s(%s) [%s]: %s %d: %lld of %lld integers differ (first at %lld: %g vs %g)\n",
                    c->name, c->params, bname, what, k, (long long)bad, (long long)n1, (long long)first,
                    a[first], r[first]);
            ok = false;
        }
    } else {
        double maxr = 0.0, maxe = 0.0;
        int64_t at_i = 0;
        bool nan = false;
        for (int64_t i = 0; i < n1; i++) {
            if (isnan(a[i]) != isnan(r[i]))
                nan = true;
            if (isnan(r[i]))
                continue;
            double e = fabs(a[i] - r[i]);
            if (e > maxe || isnan(e)) {
                maxe = e;
                at_i = i;
            }
            maxr = fmax(maxr, fabs(r[i]));
        }
        /* Gradients sum many products: allow 10x the forward tolerance (at least 1e-5). */
        double tol = strcmp(what, "gradient") ? c->tol : fmax(10.0 * c->tol, 1e-5);
        /* A GEMM on cooperative matrices rounds its inputs to fp16 (2^-11 relative each) */
        if (c->op == SEG_OP_MATMUL && !strncmp(seg_backend_gemm_kernel(g_be), "gemm_coopmat.comp fp16", 22))
            tol = fmax(tol, 5e-3);
        double err = maxe / fmax(1.0, maxr);
        if (nan || err > tol) {
            fprintf(stderr, "  FAIL %s(%s) [%s]: %s %d: error %.3g > %.3g (at %lld: %.7g vs %.7g)%s\n", c->name,
                    c->params, bname, what, k, err, tol, (long long)at_i, a[at_i], r[at_i],
                    nan ? " NaN mismatch" : "");
            ok = false;
        } else if (g_opts.verbose) {
            printf("  ok %s(%s) [%s] %s %d error %.3g\n", c->name, c->params, bname, what, k, err);
        }
    }
    free(r);
    free(a);
    return ok;
}

/* Returns 1 pass, 0 fail, -1 not implemented. */
static int run_case_vs_cpu(const struct h_case *c)
{
    void *host[H_MAX_IN] = {0};
    size_t nb[H_MAX_IN] = {0};
    struct seg_tensor *ic[H_MAX_IN] = {0}, *ib[H_MAX_IN] = {0};
    struct seg_tensor *oc[H_MAX_OUT] = {0}, *ob[H_MAX_OUT] = {0};
    int nc = 0, nbk = 0, result = 1;
    for (int i = 0; i < c->nin; i++)
        host[i] = make_host(&c->in[i], c->seed + 101u * (uint32_t)i, &nb[i]);
    const char *bname = seg_backend_name(g_be);
    enum seg_status st = upload(g_cpu, c, host, nb, ic);
    if (!st)
        st = c->fwd(c, ic, oc, &nc);
    if (st) {
        fprintf(stderr, "  FAIL %s(%s) [cpu reference]: %s\n", c->name, c->params, seg_last_error());
        result = 0;
        goto out;
    }
    st = upload(g_be, c, host, nb, ib);
    if (!st)
        st = c->fwd(c, ib, ob, &nbk);
    if (st == SEG_STATUS_UNSUPPORTED) {
        fprintf(stderr, "  not implemented %s(%s) [%s]: %s\n", c->name, c->params, bname, seg_last_error());
        result = -1;
        goto out;
    }
    if (st) {
        fprintf(stderr, "  FAIL %s(%s) [%s]: %s\n", c->name, c->params, bname, seg_last_error());
        rerun_hint(c, bname);
        result = 0;
        goto out;
    }
    for (int k = 0; k < nc; k++)
        if (!compare_outputs(c, bname, "output", k, oc[k], ob[k]))
            result = 0;
    /* The backward too: the same dy on both backends, every input gradient compared. */
    if (result && c->bwd) {
        struct seg_tensor *dyc = NULL, *dyb = NULL, *gc[H_MAX_IN] = {0}, *gb[H_MAX_IN] = {0};
        int64_t ny = seg_tensor_numel(oc[0]);
        float *dy = malloc((size_t)ny * sizeof *dy);
        uint32_t s = c->seed ^ 0x5EEDu;
        for (int64_t i = 0; i < ny; i++)
            dy[i] = 2.0f * xs_unit(&s) - 1.0f;
        st = seg_tensor_new_like(oc[0], &dyc);
        if (!st) st = seg_tensor_write(dyc, dy, (size_t)ny * sizeof *dy);
        if (!st) st = c->bwd(c, ic, oc, dyc, gc);
        if (!st) st = seg_tensor_new_like(ob[0], &dyb);
        if (!st) st = seg_tensor_write(dyb, dy, (size_t)ny * sizeof *dy);
        if (!st) st = c->bwd(c, ib, ob, dyb, gb);
        if (st) {
            fprintf(stderr, "  FAIL %s(%s) [%s]: backward: %s\n", c->name, c->params, bname, seg_last_error());
            result = 0;
        }
        for (int i = 0; i < c->nin && result; i++) {
            if (!gc[i] != !gb[i]) {
                fprintf(stderr, "  FAIL %s(%s) [%s]: gradient %d present on one backend only\n",
                        c->name, c->params, bname, i);
                result = 0;
            } else if (gc[i] && !compare_outputs(c, bname, "gradient", i, gc[i], gb[i])) {
                result = 0;
            }
        }
        free(dy);
        seg_tensor_free(dyc);
        seg_tensor_free(dyb);
        free_all(gc, H_MAX_IN);
        free_all(gb, H_MAX_IN);
    }
    if (!result)
        rerun_hint(c, bname);
out:
    free_all(ic, c->nin);
    free_all(ib, c->nin);
    free_all(oc, H_MAX_OUT);
    free_all(ob, H_MAX_OUT);
    for (int i = 0; i < c->nin; i++)
        free(host[i]);
    return result;
}

/* ---- grad mode: cpu against central differences ------------------------------------------ */

/* sum(out0 * dy) for the current inputs. */
static double objective(const struct h_case *c, struct seg_tensor **in, const double *dy, bool *ok)
{
    struct seg_tensor *o[H_MAX_OUT] = {0};
    int n = 0;
    double L = 0.0;
    if (c->fwd(c, in, o, &n)) {
        *ok = false;
        return 0.0;
    }
    const float *y = (const float *)((char *)o[0]->buf.handle + o[0]->offset);
    for (int64_t i = 0; i < seg_tensor_numel(o[0]); i++)
        L += (double)y[i] * dy[i];
    free_all(o, H_MAX_OUT);
    return L;
}

static int run_case_grad(const struct h_case *c)
{
    void *host[H_MAX_IN] = {0};
    size_t nb[H_MAX_IN] = {0};
    struct seg_tensor *in[H_MAX_IN] = {0}, *out[H_MAX_OUT] = {0}, *din[H_MAX_IN] = {0}, *dyt = NULL;
    int nout = 0, result = 1;
    double *dy = NULL;
    for (int i = 0; i < c->nin; i++)
        host[i] = make_host(&c->in[i], c->seed + 101u * (uint32_t)i, &nb[i]);
    enum seg_status st = upload(g_cpu, c, host, nb, in);
    if (!st)
        st = c->fwd(c, in, out, &nout);
    if (!st)
        st = seg_tensor_new_like(out[0], &dyt);
    if (st) {
        fprintf(stderr, "  FAIL grad %s(%s): %s\n", c->name, c->params, seg_last_error());
        result = 0;
        goto done;
    }
    int64_t ny = seg_tensor_numel(out[0]);
    dy = malloc((size_t)ny * sizeof *dy);
    float *dyf = (float *)((char *)dyt->buf.handle + dyt->offset);
    uint32_t s = c->seed ^ 0xA5A5A5u;
    for (int64_t i = 0; i < ny; i++) {
        dyf[i] = 2.0f * xs_unit(&s) - 1.0f;
        dy[i] = dyf[i];
    }
    st = c->bwd(c, in, out, dyt, din);
    if (st) {
        fprintf(stderr, "  FAIL grad %s(%s): backward: %s\n", c->name, c->params, seg_last_error());
        result = 0;
        goto done;
    }
    for (int i = 0; i < c->nin && result; i++) {
        if (c->in[i].no_grad || c->in[i].dtype != SEG_DTYPE_F32)
            continue;
        if (!din[i] || seg_tensor_numel(din[i]) != seg_tensor_numel(in[i])) {
            fprintf(stderr, "  FAIL grad %s(%s): no gradient (or wrong size) for input %d\n", c->name,
                    c->params, i);
            result = 0;
            break;
        }
        float *x = (float *)((char *)in[i]->buf.handle + in[i]->offset);
        const float *g = (const float *)((char *)din[i]->buf.handle + din[i]->offset);
        int64_t n = seg_tensor_numel(in[i]);
        double eps = c->grad_eps;
        /* 6 single elements, then 2 random directions over all elements. */
        for (int t = 0; t < 8 && result; t++) {
            double num, ana = 0.0;
            bool ok = true;
            if (t < 6) {
                int64_t j = (int64_t)(xs_next(&s) % (uint32_t)n);
                float x0 = x[j];
                x[j] = (float)(x0 + eps);
                double lp = objective(c, in, dy, &ok);
                x[j] = (float)(x0 - eps);
                double lm = objective(c, in, dy, &ok);
                double h = ((double)(float)(x0 + eps) - (double)(float)(x0 - eps));
                x[j] = x0;
                num = (lp - lm) / h;
                ana = g[j];
            } else {
                float *x0 = malloc((size_t)n * sizeof *x0);
                float *v = malloc((size_t)n * sizeof *v);
                memcpy(x0, x, (size_t)n * sizeof *x0);
                for (int64_t j = 0; j < n; j++) {
                    v[j] = xs_unit(&s) < 0.5f ? -1.0f : 1.0f;
                    ana += (double)g[j] * v[j];
                }
                for (int64_t j = 0; j < n; j++)
                    x[j] = (float)(x0[j] + eps * v[j]);
                double lp = objective(c, in, dy, &ok);
                for (int64_t j = 0; j < n; j++)
                    x[j] = (float)(x0[j] - eps * v[j]);
                double lm = objective(c, in, dy, &ok);
                memcpy(x, x0, (size_t)n * sizeof *x0);
                num = (lp - lm) / (2.0 * eps);
                free(x0);
                free(v);
            }
            double tol = c->grad_tol * fmax(1.0, fmax(fabs(ana), fabs(num)));
            if (!ok || !(fabs(num - ana) <= tol)) {
                fprintf(stderr, "  FAIL grad %s(%s): input %d check %d: analytic %.6g, numeric %.6g%s\n",
                        c->name, c->params, i, t, ana, num, ok ? "" : " (forward failed)");
                result = 0;
            } else if (g_opts.verbose) {
                printf("  ok grad %s(%s) input %d check %d: %.6g vs %.6g\n", c->name, c->params, i, t, ana, num);
            }
        }
    }
    if (!result)
        rerun_hint(c, "cpu --grad");
done:
    free(dy);
    seg_tensor_free(dyt);
    free_all(in, c->nin);
    free_all(out, H_MAX_OUT);
    free_all(din, H_MAX_IN);
    for (int i = 0; i < c->nin; i++)
        free(host[i]);
    return result;
}

/* ---- cmocka glue --------------------------------------------------------------------------- */

static bool case_selected(const struct h_case *c)
{
    if (g_opts.op && strcmp(g_opts.op, c->name))
        return false;
    if (g_opts.param && !strstr(c->params, g_opts.param))
        return false;
    if (g_opts.grad && !c->bwd)
        return false;
    return true;
}

static void test_op(void **state)
{
    struct op_result *r = *state;
    for (int i = 0; i < g_ncases; i++) {
        const struct h_case *c = &g_cases[i];
        if (strcmp(c->name, r->name) || !case_selected(c))
            continue;
        int v = g_opts.grad ? run_case_grad(c) : run_case_vs_cpu(c);
        r->cases++;
        if (v == 0)
            r->failed++;
        if (v < 0)
            r->v = V_MISSING;
    }
    if (r->v != V_MISSING)
        r->v = r->failed ? V_FAIL : V_PASS;
    if (r->v == V_MISSING)
        fail_msg("%s is not implemented on %s", r->name, seg_backend_name(g_be));
    if (r->failed)
        fail_msg("%s: %d of %d cases failed", r->name, r->failed, r->cases);
}

static bool required(const char *backend)
{
    const char *req = getenv("SEGDA_REQUIRE");
    if (!req)
        return false;
    size_t n = strlen(backend);
    for (const char *p = req; (p = strstr(p, backend)); p += n)
        if ((p == req || p[-1] == ',') && (p[n] == '\0' || p[n] == ',' || p[n] == ':'))
            return true;
    return false;
}

static void usage(void)
{
    printf("usage: test_backend_ops [-b BACKEND] [-o OP] [-p PARAMS] [--grad] [-v] [--list]\n"
           "  -b BACKEND  cpu, opencl[:P.D] or vulkan[:N] (default cpu). On cpu the gradient\n"
           "              check runs (every backward against central finite differences);\n"
           "              on the others every case is compared with the cpu backend.\n"
           "  -o OP       only the cases of OP (an ops.def name, or conv2d / concat)\n"
           "  -p TEXT     only the cases whose parameter string contains TEXT\n"
           "  --list      print the cases and exit\n"
           "Environment: SEGDA_REQUIRE=opencl,vulkan turns 'no device' into a failure.\n"
           "Exit status: 0 all passed, 1 failures, 77 skipped (no device, not required).\n");
}

int main(int argc, char **argv)
{
    g_opts.backend = "cpu";
    bool list = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-b") && i + 1 < argc)
            g_opts.backend = argv[++i];
        else if (!strcmp(argv[i], "-o") && i + 1 < argc)
            g_opts.op = argv[++i];
        else if (!strcmp(argv[i], "-p") && i + 1 < argc)
            g_opts.param = argv[++i];
        else if (!strcmp(argv[i], "--grad"))
            g_opts.grad = true;
        else if (!strcmp(argv[i], "-v"))
            g_opts.verbose = true;
        else if (!strcmp(argv[i], "--list"))
            list = true;
        else {
            usage();
            return strcmp(argv[i], "--help") && strcmp(argv[i], "-h") ? 2 : 0;
        }
    }
    g_ncases = h_cases_build(&g_cases);
    if (list) {
        for (int i = 0; i < g_ncases; i++)
            printf("%-20s %s%s\n", g_cases[i].name, g_cases[i].params, g_cases[i].bwd ? "  [grad]" : "");
        return 0;
    }
    char bname[32];
    snprintf(bname, sizeof bname, "%s", g_opts.backend);
    char *colon = strchr(bname, ':');
    if (colon)
        *colon = '\0';
    if (!strcmp(bname, "cpu"))
        g_opts.grad = true;
    if (seg_backend_create("cpu", &g_cpu)) {
        fprintf(stderr, "cannot create the cpu backend: %s\n", seg_last_error());
        return 1;
    }
    if (g_opts.grad) {
        g_be = g_cpu;
    } else if (!seg_backend_compiled(bname) || seg_backend_create(g_opts.backend, &g_be)) {
        const char *why = seg_backend_compiled(bname) ? seg_last_error() : "not compiled in";
        if (required(bname)) {
            fprintf(stderr, "FAIL: backend %s is required (SEGDA_REQUIRE) but unavailable: %s\n",
                    g_opts.backend, why);
            return 1;
        }
        printf("SKIP: backend %s unavailable: %s\n", g_opts.backend, why);
        return 77;
    }
    const struct seg_device_info *dev = seg_backend_device(g_be);
    printf("backend %s: %s (%s)%s\n", dev->spec, dev->name, dev->driver,
           g_opts.grad ? " -- gradient check against finite differences" : " -- against the cpu backend");
    if (seg_backend_gemm_kernel(g_be)[0])
        printf("GEMM: %s\n", seg_backend_gemm_kernel(g_be));

    /* One cmocka test per op name. */
    struct CMUnitTest tests[128];
    int nt = 0;
    for (int i = 0; i < g_ncases && g_nresults < 128; i++) {
        if (!case_selected(&g_cases[i]))
            continue;
        bool seen = false;
        for (int k = 0; k < g_nresults; k++)
            if (!strcmp(g_results[k].name, g_cases[i].name))
                seen = true;
        if (seen)
            continue;
        g_results[g_nresults].name = g_cases[i].name;
        struct CMUnitTest t = {g_cases[i].name, test_op, NULL, NULL, &g_results[g_nresults]};
        tests[nt++] = t;
        g_nresults++;
    }
    char group[64];
    snprintf(group, sizeof group, "ops-%s%s", bname, g_opts.grad ? "-grad" : "");
    int failed = _cmocka_run_group_tests(group, tests, (size_t)nt, NULL, NULL);

    /* The op table: every ops.def row and its verdict on this backend. */
    printf("\n%-22s %-10s %s\n", "OP", bname, "cases");
    int total = 0;
    for (int op = 0; op < SEG_OP_COUNT && !g_opts.grad && !g_opts.op && !g_opts.param; op++) {
        const char *name = seg_op_name((enum seg_op)op);
        const char *v = seg_backend_has_op(g_be, (enum seg_op)op) ? "untested" : "not implemented";
        int cases = 0;
        for (int k = 0; k < g_nresults; k++)
            if (!strcmp(g_results[k].name, name)) {
                v = g_results[k].v == V_PASS ? "pass" : g_results[k].v == V_FAIL ? "FAIL" : "not implemented";
                cases = g_results[k].cases;
            }
        if (!seg_backend_has_op(g_be, (enum seg_op)op) || !strcmp(v, "untested"))
            failed++;
        printf("%-22s %-10s %d\n", name, v, cases);
    }
    for (int k = 0; k < g_nresults; k++) {
        total += g_results[k].cases;
        bool is_op = false;
        for (int op = 0; op < SEG_OP_COUNT; op++)
            if (!strcmp(g_results[k].name, seg_op_name((enum seg_op)op)))
                is_op = true;
        if (!is_op || g_opts.grad || g_opts.op || g_opts.param)
            printf("%-22s %-10s %d\n", g_results[k].name,
                   g_results[k].v == V_PASS ? "pass" : g_results[k].v == V_FAIL ? "FAIL" : "not implemented",
                   g_results[k].cases);
    }
    printf("%d op-%s cases on %s\n", total, g_opts.grad ? "gradient" : "backend", dev->spec);
    if (seg_backend_gemm_kernel(g_be)[0]) /* a kernel may be chosen or turned off at first use */
        printf("GEMM after the cases: %s\n", seg_backend_gemm_kernel(g_be));
    if (g_be != g_cpu)
        seg_backend_destroy(g_be);
    seg_backend_destroy(g_cpu);
    free(g_cases);
    return failed ? 1 : 0;
}
