/* cl_tune.c: GEMM tuning of the OpenCL backend: a search over the parameters of CLBlast's
 * Xgemm kernel (the indirect GEMM that every large MATMUL runs), applied through
 * CLBlastOverrideParameters, and the per-device tuning cache:
 *   <cache>/opencl/tuned-<hash of device name and driver>.txt
 * with <cache> = $SEGDA_CACHE_DIR, else $XDG_CACHE_HOME/segda, else $HOME/.cache/segda.
 * The file is text (one "Xgemm NAME=VALUE ..." line, the device and driver it was measured
 * on), written to a temporary name and renamed; a file for another device or driver, or one
 * that does not parse, is ignored, and so is every file when SEGDA_NO_TUNED is set (not "0").
 *
 * The search (segda tune): the untuned GEMM is timed on every shape first and its 1024^3
 * result kept as the reference. Stage 1 times known-good seeds and random valid points of
 * the Xgemm space on the headline shape (shapes[0]), stage 2 walks from the best one
 * parameter at a time, stage 3 times the best few on every shape; the winner has the best
 * geometric mean of time ratios against the untuned GEMM and must beat it by 3%. Every
 * candidate's 1024^3 result is compared with the reference (a parameter set that computes
 * wrongly on some driver is dropped). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <clblast_c.h>

#include "core/ops.h"
#include "opencl/cl_internal.h"
#include "data/data.h" /* seg_file_write_atomic */

#define TUNE_FORMAT "segda-tune-opencl-v1"

enum { GEMMK, KREG, KWG, KWI, MDIMA, MDIMC, MWG, NDIMB, NDIMC, NWG, SA, SB, STRM, STRN, VWM, VWN, NXG };
static const char *const xg_names[NXG] = {"GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC",
                                          "MWG",   "NDIMB", "NDIMC", "NWG", "SA", "SB",
                                          "STRM",  "STRN", "VWM", "VWN"};

struct xg {
    size_t v[NXG];
};

/* ---- the tuning cache ---------------------------------------------------------------- */

/* The cache file of this device (false: no cache directory). create: make the directory. */
static bool cache_file(const struct seg_backend *be, bool create, char *out, size_t size)
{
    return seg_backend_cache_path(be, "tuned", create, out, size);
}

static enum seg_status xg_apply(struct seg_cl_ctx *c, const struct xg *p)
{
    CLBlastStatusCode s = CLBlastOverrideParameters(c->device, "Xgemm", CLBlastPrecisionSingle, NXG,
                                                    (const char **)xg_names, p->v);
    if (s != CLBlastSuccess)
        return seg_error(SEG_STATUS_BACKEND, "opencl: CLBlastOverrideParameters(Xgemm) failed (%d)", (int)s);
    return SEG_STATUS_OK;
}

static void xg_format(const struct xg *p, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < NXG && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%s=%zu", i ? " " : "", xg_names[i], p->v[i]);
}

/* A short form for be->tuned and the log (the parameters that vary). */
static void xg_short(const struct xg *p, char *out, size_t size)
{
    const size_t *v = p->v;
    snprintf(out, size, "MWG=%zu NWG=%zu KWG=%zu MDIMC=%zu NDIMC=%zu MDIMA=%zu NDIMB=%zu KWI=%zu VWM=%zu VWN=%zu "
             "STRM=%zu STRN=%zu SA=%zu SB=%zu", v[MWG], v[NWG], v[KWG], v[MDIMC], v[NDIMC], v[MDIMA],
             v[NDIMB], v[KWI], v[VWM], v[VWN], v[STRM], v[STRN], v[SA], v[SB]);
}

static bool xg_parse(const char *line, struct xg *p)
{
    bool seen[NXG] = {false};
    char buf[512];
    snprintf(buf, sizeof buf, "%.511s", line);
    for (char *save = NULL, *tok = strtok_r(buf, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) continue;
        *eq = '\0';
        for (int i = 0; i < NXG; i++)
            if (!strcmp(tok, xg_names[i])) {
                char *end;
                unsigned long v = strtoul(eq + 1, &end, 10);
                if (*end || v > 4096) return false;
                p->v[i] = v;
                seen[i] = true;
            }
    }
    for (int i = 0; i < NXG; i++)
        if (!seen[i]) return false;
    return true;
}

static void set_tuned(struct seg_backend *be, const struct xg *p, const char *how)
{
    char s[160];
    xg_short(p, s, sizeof s);
    snprintf(be->tuned, sizeof be->tuned, "CLBlast Xgemm %.100s (%.40s)", s, how);
}

void seg_cl_tune_load(struct seg_backend *be)
{
    char path[1024];
    const char *off = getenv("SEGDA_NO_TUNED");
    if ((off && *off && strcmp(off, "0")) || !cache_file(be, false, path, sizeof path)) return;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[1024], date[64] = "";
    bool format = false, device = false, driver = false, have = false;
    struct xg p;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "format ", 7)) format = !strcmp(line + 7, TUNE_FORMAT);
        else if (!strncmp(line, "device ", 7)) device = !strcmp(line + 7, be->info.name);
        else if (!strncmp(line, "driver ", 7)) driver = !strcmp(line + 7, be->info.driver);
        else if (!strncmp(line, "date ", 5)) snprintf(date, sizeof date, "%.63s", line + 5);
        else if (!strncmp(line, "Xgemm ", 6)) have = xg_parse(line + 6, &p);
    }
    fclose(f);
    if (!format || !device || !driver || !have) return; /* another device, driver or format */
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    if (xg_apply(c, &p) != SEG_STATUS_OK) return;
    c->gemm_tuned = true;
    char how[96];
    snprintf(how, sizeof how, "segda tune %s", date);
    set_tuned(be, &p, how);
}

static enum seg_status cache_store(struct seg_backend *be, const struct xg *p, const char *note)
{
    char path[1024], params[512], *text = NULL;
    size_t len = 0;
    if (!cache_file(be, true, path, sizeof path))
        return seg_error(SEG_STATUS_IO, "opencl: no cache directory (set SEGDA_CACHE_DIR or HOME)");
    FILE *f = open_memstream(&text, &len);
    if (!f) return seg_error(SEG_STATUS_OUT_OF_MEMORY, "opencl: %s: out of host memory", path);
    time_t now = time(NULL);
    struct tm tmv;
    char date[32] = "";
    if (gmtime_r(&now, &tmv)) strftime(date, sizeof date, "%Y-%m-%d", &tmv);
    xg_format(p, params, sizeof params);
    fprintf(f, "# segda tuning cache (written by segda tune; delete to return to the defaults)\n"
               "format %s\ndevice %s\ndriver %s\ndate %s\n# %s\nXgemm %s\n",
            TUNE_FORMAT, be->info.name, be->info.driver, date, note, params);
    enum seg_status st = fclose(f) == 0 && text ? seg_file_write_atomic(path, text, len)
                                                : seg_error(SEG_STATUS_OUT_OF_MEMORY, "opencl: %s: out of host memory", path);
    free(text);
    return st;
}

/* ---- the search space ------------------------------------------------------------------- */

static bool xg_valid(const struct seg_cl_ctx *c, const struct xg *p)
{
    const size_t *v = p->v;
    if (v[GEMMK] != 0 || v[KREG] != 1 || !v[KWI] || !v[MDIMA] || !v[NDIMB]) return false;
    if (v[KWG] % v[KWI]) return false;
    if (v[MWG] % (v[MDIMC] * v[VWM]) || v[NWG] % (v[NDIMC] * v[VWN])) return false;
    if (v[MWG] % (v[MDIMA] * v[VWM]) || v[NWG] % (v[NDIMB] * v[VWN])) return false;
    size_t t = v[MDIMC] * v[NDIMC];
    if (t % v[MDIMA] || t % v[NDIMB] || v[KWG] % (t / v[MDIMA]) || v[KWG] % (t / v[NDIMB])) return false;
    if (t > c->max_wg || t > 1024) return false;
    /* At most 256 accumulators per work-item (more only spills and takes minutes to compile). */
    if (v[MWG] > 128 || v[NWG] > 128 || (v[MWG] / v[MDIMC]) * (v[NWG] / v[NDIMC]) > 256) return false;
    size_t local = 4 * (v[SA] * v[KWG] * v[MWG] + v[SB] * v[KWG] * v[NWG]);
    return local <= c->local_mem && local <= 48 * 1024;
}

/* xorshift64*: the search is reproducible (fixed seed). */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static const size_t opt_wg[] = {16, 32, 64, 128};
static const size_t opt_kwg[] = {16, 32};
static const size_t opt_dim[] = {4, 8, 16, 32};
static const size_t opt_vw[] = {1, 2, 4, 8};
static const size_t opt_bit[] = {0, 1};
#define PICK(a, s) (a)[rnd(s) % (sizeof(a) / sizeof((a)[0]))]

static bool xg_random(const struct seg_cl_ctx *c, uint64_t *s, struct xg *p)
{
    for (int tries = 0; tries < 20000; tries++) {
        size_t *v = p->v;
        v[GEMMK] = 0;
        v[KREG] = 1;
        v[KWI] = 2;
        v[MWG] = PICK(opt_wg, s);
        v[NWG] = PICK(opt_wg, s);
        v[KWG] = PICK(opt_kwg, s);
        v[MDIMC] = PICK(opt_dim, s);
        v[NDIMC] = PICK(opt_dim, s);
        v[MDIMA] = PICK(opt_dim, s);
        v[NDIMB] = PICK(opt_dim, s);
        v[VWM] = PICK(opt_vw, s);
        v[VWN] = PICK(opt_vw, s);
        v[STRM] = PICK(opt_bit, s);
        v[STRN] = PICK(opt_bit, s);
        v[SA] = PICK(opt_bit, s);
        v[SB] = PICK(opt_bit, s);
        if (xg_valid(c, p)) return true;
    }
    return false;
}

/* Seeds: CLBlast's generic defaults and entries its database has for CPUs and GPUs
 * (KWG KWI MDIMA MDIMC MWG NDIMB NDIMC NWG SA SB STRM STRN VWM VWN). */
static const size_t seeds[][14] = {
    {32, 2, 8, 8, 32, 16, 16, 32, 1, 1, 0, 0, 4, 2},     /* all devices' default */
    {32, 2, 8, 8, 32, 8, 8, 64, 0, 0, 0, 0, 4, 4},       /* Intel CPU default */
    {32, 8, 32, 32, 64, 32, 16, 64, 1, 1, 1, 0, 2, 2},   /* Core i5-6200U */
    {32, 2, 32, 8, 128, 8, 8, 128, 1, 1, 1, 1, 2, 8},    /* Core i7-3770 */
    {16, 2, 8, 8, 128, 8, 8, 128, 1, 1, 1, 0, 1, 8},     /* Core i7-4790K */
    {32, 2, 16, 16, 64, 8, 8, 64, 1, 1, 0, 0, 4, 4},     /* NVIDIA SM6.1 default */
    {16, 2, 16, 16, 64, 16, 8, 128, 1, 1, 1, 0, 4, 8},   /* GeForce GTX 980 */
    {32, 2, 16, 16, 64, 16, 16, 64, 1, 1, 0, 0, 4, 4},
};

static struct xg xg_seed(int i)
{
    const size_t *s = seeds[i];
    struct xg p = {{0}};
    p.v[GEMMK] = 0;
    p.v[KREG] = 1;
    p.v[KWG] = s[0];
    p.v[KWI] = s[1];
    p.v[MDIMA] = s[2];
    p.v[MDIMC] = s[3];
    p.v[MWG] = s[4];
    p.v[NDIMB] = s[5];
    p.v[NDIMC] = s[6];
    p.v[NWG] = s[7];
    p.v[SA] = s[8];
    p.v[SB] = s[9];
    p.v[STRM] = s[10];
    p.v[STRN] = s[11];
    p.v[VWM] = s[12];
    p.v[VWN] = s[13];
    return p;
}

/* ---- measurement ---------------------------------------------------------------------------- */

struct tune_state {
    struct seg_backend         *be;
    struct seg_cl_ctx          *c;
    const struct seg_tune_opts *o;
    cl_mem                      a, b, out;
    float                      *ref, *got; /* shapes[0]'s result: untuned, candidate */
    size_t                      nref;
};

static void say(const struct tune_state *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const struct tune_state *t, const char *fmt, ...)
{
    if (!t->o->log) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    t->o->log(t->o->user, line);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static enum seg_status run(struct tune_state *t, const struct seg_tune_shape *s)
{
    size_t m = (size_t)s->m, n = (size_t)s->n, k = (size_t)s->k;
    CLBlastStatusCode r = CLBlastSgemm(CLBlastLayoutRowMajor, s->trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                                       s->trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, 1.0f, t->a, 0,
                                       s->trans_a ? m : k, t->b, 0, s->trans_b ? k : n, 0.0f, t->out, 0, n,
                                       &t->c->queue, NULL);
    if (r != CLBlastSuccess)
        return seg_error(SEG_STATUS_BACKEND, "opencl: CLBlastSgemm failed (%d) on %dx%dx%d", (int)r, s->m, s->n, s->k);
    SEG_CL_CALL(clFinish, "tune", t->c->queue);
    return SEG_STATUS_OK;
}

/* The best of a few runs of shape s after one untimed run (compilation, allocations). Stops
 * early past `cutoff` ms (a candidate already far slower than the best) and once the runs
 * add up to about `budget` ms. */
static enum seg_status time_shape(struct tune_state *t, const struct seg_tune_shape *s, double cutoff,
                                  double budget, double *best)
{
    SEG_CL_TRY(run(t, s));
    *best = INFINITY;
    double spent = 0.0;
    for (int r = 0; r < 5; r++) {
        double t0 = now_ms();
        SEG_CL_TRY(run(t, s));
        double ms = now_ms() - t0;
        *best = fmin(*best, ms);
        spent += ms;
        if ((cutoff > 0 && ms > cutoff) || spent >= budget) break;
    }
    return SEG_STATUS_OK;
}

/* shapes[0]'s result against the untuned reference. */
static bool result_ok(struct tune_state *t)
{
    if (clEnqueueReadBuffer(t->c->queue, t->out, CL_TRUE, 0, t->nref * sizeof(float), t->got, 0, NULL,
                            NULL) != CL_SUCCESS)
        return false;
    double maxr = 0.0, maxe = 0.0;
    for (size_t i = 0; i < t->nref; i++) {
        maxr = fmax(maxr, fabs(t->ref[i]));
        double e = fabs((double)t->got[i] - t->ref[i]);
        if (!(e <= maxe)) maxe = e; /* NaN counts as an error */
    }
    return maxe <= 1e-3 * fmax(1.0, maxr);
}

struct cand {
    struct xg p;
    double    ms;     /* shapes[0] */
    double    score;  /* stage 3: geometric mean of time ratios against untuned */
    bool      ok;
};

static bool same(const struct xg *a, const struct xg *b) { return !memcmp(a->v, b->v, sizeof a->v); }

/* Times candidate p on shapes[0] and checks its result; ms = INFINITY when it fails. */
static void try_cand(struct tune_state *t, const struct xg *p, double best, const char *why, struct cand *out)
{
    out->p = *p;
    out->ms = INFINITY;
    out->ok = false;
    char s[256];
    xg_short(p, s, sizeof s);
    double t0 = now_ms();
    enum seg_status st = xg_apply(t->c, p);
    if (!st) st = time_shape(t, &t->o->shapes[0], isfinite(best) ? 3.0 * best : 0.0, 150.0, &out->ms);
    if (!st && !result_ok(t)) {
        say(t, "%-7s %s: WRONG RESULT, dropped", why, s);
        out->ms = INFINITY;
        return;
    }
    if (st) {
        say(t, "%-7s %s: failed (%s)", why, s, seg_last_error());
        out->ms = INFINITY;
        return;
    }
    out->ok = true;
    const struct seg_tune_shape *h = &t->o->shapes[0];
    double gf = 2.0 * h->m * h->n * h->k / (out->ms * 1e6);
    say(t, "%-7s %s: %8.2f ms %7.1f GFLOP/s%s (%.1f s)", why, s, out->ms, gf, out->ms < best ? "  *" : "",
        (now_ms() - t0) / 1e3);
}

static int cmp_cand(const void *a, const void *b)
{
    double x = ((const struct cand *)a)->ms, y = ((const struct cand *)b)->ms;
    return (x > y) - (x < y);
}

enum seg_status seg_cl_tune(struct seg_backend *be, const struct seg_tune_opts *o)
{
    struct seg_cl_ctx *c = seg_cl_ctx_of(be);
    if (c->gemm_tuned)
        return seg_error(SEG_STATUS_INVALID,
                         "opencl: tuned parameters are loaded (CLBlast keeps overrides for the process): "
                         "tune from a backend created with SEGDA_NO_TUNED=1");
    struct tune_state t = {be, c, o, NULL, NULL, NULL, NULL, NULL, 0};
    size_t na, nb, nc;
    seg_tune_max_sizes(o, &na, &nb, &nc);
    size_t nmax = na > nb ? na : nb;
    t.nref = (size_t)o->shapes[0].m * o->shapes[0].n;
    float *host = malloc(nmax * sizeof *host);
    t.ref = malloc(t.nref * sizeof *t.ref);
    t.got = malloc(t.nref * sizeof *t.got);
    struct cand *cands = calloc(256, sizeof *cands);
    double *base = calloc((size_t)o->nshapes, sizeof *base);
    enum seg_status st = SEG_STATUS_OK;
    if (!host || !t.ref || !t.got || !cands || !base) {
        st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "opencl: tune: out of host memory");
        goto done;
    }
    cl_int err = CL_SUCCESS;
    t.a = clCreateBuffer(c->context, CL_MEM_READ_WRITE, na * sizeof(float), NULL, &err);
    if (err == CL_SUCCESS) t.b = clCreateBuffer(c->context, CL_MEM_READ_WRITE, nb * sizeof(float), NULL, &err);
    if (err == CL_SUCCESS) t.out = clCreateBuffer(c->context, CL_MEM_READ_WRITE, nc * sizeof(float), NULL, &err);
    if (err != CL_SUCCESS) {
        st = seg_cl_fail(err, "clCreateBuffer", "tune");
        goto done;
    }
    uint64_t rs = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < nmax; i++) host[i] = (float)(rnd(&rs) >> 40) / 16777216.0f - 0.5f;
    err = clEnqueueWriteBuffer(c->queue, t.a, CL_TRUE, 0, na * sizeof(float), host, 0, NULL, NULL);
    if (err == CL_SUCCESS)
        err = clEnqueueWriteBuffer(c->queue, t.b, CL_TRUE, 0, nb * sizeof(float), host, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        st = seg_cl_fail(err, "clEnqueueWriteBuffer", "tune");
        goto done;
    }

    /* The untuned GEMM: reference result and times. */
    int nseeds = (int)(sizeof seeds / sizeof seeds[0]), nrand = o->quick ? 2 : 40, nwalk = o->quick ? 12 : 40;
    int ntop = o->quick ? 3 : 5, n = 0;
    struct seg_tune_clock clk;
    seg_tune_clock_start(&clk, o, nseeds + nrand + nwalk, ntop);
    double t0 = now_ms(), base_total = 0.0;
    int nshapes = 0; /* timed untuned (all unless the budget cut the pass short) */
    for (int i = 0; i < o->nshapes && !st && seg_tune_clock_base(&clk, i); i++, nshapes++) {
        st = time_shape(&t, &o->shapes[i], 0.0, 300.0, &base[i]);
        if (!st && i == 0)
            st = clEnqueueReadBuffer(c->queue, t.out, CL_TRUE, 0, t.nref * sizeof(float), t.ref, 0, NULL, NULL) ==
                         CL_SUCCESS ? SEG_STATUS_OK : seg_error(SEG_STATUS_BACKEND, "opencl: tune: read failed");
        base_total += base[i];
    }
    if (st) goto done;
    const struct seg_tune_shape *h = &o->shapes[0];
    say(&t, "untuned: %dx%dx%d %.2f ms (%.1f GFLOP/s); %d shapes %.1f ms (%.1f s)", h->m, h->n, h->k, base[0],
        2.0 * h->m * h->n * h->k / (base[0] * 1e6), nshapes, base_total, (now_ms() - t0) / 1e3);
    seg_tune_clock_pass(&clk, (now_ms() - t0) / 1e3);

    /* Stage 1: seeds and random points. */
    double best = base[0];
    for (int i = 0; i < nseeds + nrand && n < 200 && seg_tune_clock_search(&clk); i++) {
        struct xg p;
        if (i < nseeds) {
            p = xg_seed(i);
            if (!xg_valid(c, &p)) continue;
        } else if (!xg_random(c, &rs, &p)) {
            break;
        }
        bool dup = false;
        for (int j = 0; j < n; j++) dup |= same(&cands[j].p, &p);
        if (dup) continue;
        double c0 = seg_tune_now();
        try_cand(&t, &p, best, i < nseeds ? "seed" : "random", &cands[n]);
        seg_tune_clock_tick(&clk, c0);
        best = fmin(best, cands[n].ms);
        n++;
    }
    /* Stage 2: a greedy walk from the best, one parameter at a time to a neighbouring value
     * (work-item layout and vector widths first: the cheapest to compile and, on CPUs and
     * GPUs alike, what decides how the kernel vectorizes), re-centred on every improvement. */
    qsort(cands, (size_t)n, sizeof *cands, cmp_cand);
    static const int walk_params[] = {MDIMA, NDIMB, MDIMC, NDIMC, VWM, VWN, KWG, MWG, NWG, SA, SB, STRM, STRN, KWI};
    const int nparams = (int)(sizeof walk_params / sizeof walk_params[0]);
    int walked = 0;
    struct xg from = cands[0].p;
    for (int w = 0; w < 2 * nparams && walked < nwalk && n < 250 && n > 0 && cands[0].ok; w++) {
        int k = walk_params[w / 2];
        bool up = w % 2 != 0;
        struct xg p = from;
        if (k == SA || k == SB || k == STRM || k == STRN) {
            if (up) continue;
            p.v[k] = !p.v[k];
        } else {
            p.v[k] = up ? p.v[k] * 2 : p.v[k] / 2;
        }
        if (!p.v[k] || !xg_valid(c, &p)) continue;
        bool dup = false;
        for (int j = 0; j < n; j++) dup |= same(&cands[j].p, &p);
        if (dup) continue;
        if (!seg_tune_clock_search(&clk)) break;
        double c0 = seg_tune_now();
        try_cand(&t, &p, best, "walk", &cands[n]);
        seg_tune_clock_tick(&clk, c0);
        walked++;
        if (cands[n].ms < best) {
            best = cands[n].ms;
            from = p;
            w = -1; /* start over around the new best */
        }
        n++;
    }
    qsort(cands, (size_t)n, sizeof *cands, cmp_cand);

    /* Stage 3: the best few on every shape. */
    int winner = -1;
    double best_score = log(0.97); /* must beat the untuned GEMM by 3% */
    for (int i = 0; i < ntop && i < n && cands[i].ok && seg_tune_clock_final(&clk, i); i++) {
        double score = log(cands[i].ms / base[0]), total = cands[i].ms;
        st = xg_apply(c, &cands[i].p);
        int timed = 1;
        for (int s = 1; s < nshapes && !st && seg_tune_clock_shape(&clk, s); s++, timed++) {
            double ms = 0.0;
            st = time_shape(&t, &o->shapes[s], 3.0 * base[s], 300.0, &ms);
            score += log(ms / base[s]);
            total += ms;
        }
        if (st) {
            say(&t, "final   candidate %d failed on a shape: %s", i + 1, seg_last_error());
            st = SEG_STATUS_OK;
            continue;
        }
        cands[i].score = score / timed;
        char s[256];
        xg_short(&cands[i].p, s, sizeof s);
        say(&t, "final   %s: %dx%dx%d %.2fx, %d shapes %.2fx (geometric mean), %.1f ms total", s, h->m, h->n,
            h->k, base[0] / cands[i].ms, timed, exp(-cands[i].score), total);
        if (cands[i].score < best_score) {
            best_score = cands[i].score;
            winner = i;
        }
    }
    if (winner < 0) {
        say(&t, "no candidate beats the untuned GEMM by 3%%: nothing stored");
        /* The last override stays for this process only; later runs load nothing. */
        goto done;
    }
    char note[200];
    snprintf(note, sizeof note, "%dx%dx%d: %.2f ms untuned, %.2f ms tuned; %d shapes: %.2fx geometric mean",
             h->m, h->n, h->k, base[0], cands[winner].ms, nshapes, exp(-best_score));
    st = xg_apply(c, &cands[winner].p);
    if (!st) st = cache_store(be, &cands[winner].p, note);
    if (!st) {
        c->gemm_tuned = true;
        char how[64];
        snprintf(how, sizeof how, "just tuned, %.2fx on 1024^3", base[0] / cands[winner].ms);
        set_tuned(be, &cands[winner].p, how);
        char path[1024];
        if (cache_file(be, false, path, sizeof path)) say(&t, "stored in %s", path);
    }
done:
    if (t.a) clReleaseMemObject(t.a);
    if (t.b) clReleaseMemObject(t.b);
    if (t.out) clReleaseMemObject(t.out);
    free(host);
    free(t.ref);
    free(t.got);
    free(cands);
    free(base);
    return st;
}
