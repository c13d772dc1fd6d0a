/* vk_tune.c: GEMM tuning of the Vulkan backend: the kernel and tile of MATMUL and
 * CONV2D_DIRECT (shaders/gemm.comp: BM, BN, BK, TM, TN; shaders/gemm_reg.comp where the
 * device can run it: MV, TN vectors a lane; specialization constants), and the per-device
 * tuning cache:
 *   <cache>/vulkan/tuned-<hash of device name and driver>.txt
 * with <cache> = $SEGDA_CACHE_DIR, else $XDG_CACHE_HOME/segda, else $HOME/.cache/segda.
 * Text ("gemm_tile BM BN BK TM TN REG", the device and driver it was measured on), written to a
 * temporary name and renamed; ignored for another device or driver, when it does not parse
 * or fit the device, and when SEGDA_NO_TUNED is set (not "0").
 *
 * The search (segda tune) mirrors the OpenCL one: the default tile is timed on every shape
 * and its shapes[0] result kept as the reference; stage 1 times a spread of valid tiles on
 * shapes[0], stage 2 walks from the best one parameter at a time, stage 3 times the best few
 * on every shape. The winner has the best geometric mean of time ratios against the default
 * and must beat it by 3%. A tile whose shapes[0] result differs from the reference (e.g.
 * loops cut short by a driver's loop limit) is dropped. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/ops.h"
#include "vulkan/vk_internal.h"
#include "data/data.h" /* seg_file_write_atomic */

#define TUNE_FORMAT "segda-tune-vulkan-v2" /* v2: the kernel (REG) joined the tile */

/* ---- the tuning cache ---------------------------------------------------------------- */

/* The cache file of this device (false: no cache directory). create: make the directory. */
static bool cache_file(const struct seg_backend *be, bool create, char *out, size_t size)
{
    return seg_backend_cache_path(be, "tuned", create, out, size);
}

static void set_tuned(struct seg_backend *be, const struct vk_gemm_tile *t, const char *how)
{
    char k[64];
    vk_gemm_tile_name(t, k, sizeof k);
    snprintf(be->tuned, sizeof be->tuned, "GEMM %s (%.60s)", k, how);
}

void vk_tune_load(struct seg_backend *be)
{
    char path[1024];
    const char *off = getenv("SEGDA_NO_TUNED");
    if ((off && *off && strcmp(off, "0")) || vk_ctx_of(be)->gemm_force || !cache_file(be, false, path, sizeof path))
        return;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[512], date[64] = "";
    bool format = false, device = false, driver = false, have = false;
    struct vk_gemm_tile t = {0};
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "format ", 7))
            format = !strcmp(line + 7, TUNE_FORMAT);
        else if (!strncmp(line, "device ", 7))
            device = !strcmp(line + 7, be->info.name);
        else if (!strncmp(line, "driver ", 7))
            driver = !strcmp(line + 7, be->info.driver);
        else if (!strncmp(line, "date ", 5))
            snprintf(date, sizeof date, "%.63s", line + 5);
        else if (!strncmp(line, "gemm_tile ", 10))
            have = sscanf(line + 10, "%u %u %u %u %u %u", &t.bm, &t.bn, &t.bk, &t.tm, &t.tn, &t.reg) == 6;
    }
    fclose(f);
    struct vk_ctx *c = vk_ctx_of(be);
    if (!format || !device || !driver || !have || !vk_gemm_tile_ok(c, &t) ||
        vk_gemm_tile_set(c, &t) != SEG_STATUS_OK)
        return;
    char how[96];
    snprintf(how, sizeof how, "segda tune %s", date);
    set_tuned(be, &t, how);
}

static enum seg_status cache_store(struct seg_backend *be, const struct vk_gemm_tile *t, const char *note)
{
    char path[1024], *text = NULL;
    size_t len = 0;
    if (!cache_file(be, true, path, sizeof path))
        return seg_error(SEG_STATUS_IO, "vulkan: no cache directory (set SEGDA_CACHE_DIR or HOME)");
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "vulkan: %s: out of host memory", path);
    time_t now = time(NULL);
    struct tm tmv;
    char date[32] = "";
    if (gmtime_r(&now, &tmv))
        strftime(date, sizeof date, "%Y-%m-%d", &tmv);
    fprintf(f, "# segda tuning cache (written by segda tune; delete to return to the defaults)\n"
               "format %s\ndevice %s\ndriver %s\ndate %s\n# %s\ngemm_tile %u %u %u %u %u %u\n",
            TUNE_FORMAT, be->info.name, be->info.driver, date, note, t->bm, t->bn, t->bk, t->tm, t->tn, t->reg);
    enum seg_status st = fclose(f) == 0 && text ? seg_file_write_atomic(path, text, len)
                                                : seg_error(SEG_STATUS_OUT_OF_MEMORY, "vulkan: %s: out of host memory", path);
    free(text);
    return st;
}

/* ---- measurement ---------------------------------------------------------------------------- */

struct tune_state {
    struct seg_backend         *be;
    struct vk_ctx              *c;
    const struct seg_tune_opts *o;
    struct seg_buf              a, b, out;
    float                      *ref, *got;
    size_t                      nref;
};

static void say(const struct tune_state *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const struct tune_state *t, const char *fmt, ...)
{
    if (!t->o->log)
        return;
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

static struct seg_tensor tensor2(struct seg_backend *be, struct seg_buf *buf, int64_t r, int64_t cols)
{
    struct seg_tensor x = {.be = be, .dtype = SEG_DTYPE_F32, .ndim = 2, .shape = {r, cols}};
    x.buf = *buf;
    return x;
}

static enum seg_status run(struct tune_state *t, const struct seg_tune_shape *s)
{
    int64_t m = s->m, n = s->n, k = s->k;
    struct seg_tensor A = tensor2(t->be, &t->a, s->trans_a ? k : m, s->trans_a ? m : k);
    struct seg_tensor B = tensor2(t->be, &t->b, s->trans_b ? n : k, s->trans_b ? k : n);
    struct seg_tensor C = tensor2(t->be, &t->out, m, n);
    struct seg_op_args a = {.op = SEG_OP_MATMUL};
    a.dst[0] = &C;
    a.src[0] = &A;
    a.src[1] = &B;
    int32_t ip[9] = {1, s->m, s->n, s->k, s->trans_a, s->trans_b, 0, 0, 0};
    memcpy(a.ip, ip, sizeof ip);
    a.fp[0] = 1.0f;
    /* the SIMT tiles being tuned, never the cooperative-matrix kernel */
    enum seg_status st = vk_matmul_simt(t->be, &a);
    return st ? st : vk_sync(t->be);
}

static enum seg_status time_shape(struct tune_state *t, const struct seg_tune_shape *s, double cutoff,
                                  double budget, double *best)
{
    enum seg_status st = run(t, s);
    if (st)
        return st;
    *best = INFINITY;
    double spent = 0.0;
    for (int r = 0; r < 5; r++) {
        double t0 = now_ms();
        if ((st = run(t, s)))
            return st;
        double ms = now_ms() - t0;
        *best = fmin(*best, ms);
        spent += ms;
        if ((cutoff > 0 && ms > cutoff) || spent >= budget)
            break;
    }
    return SEG_STATUS_OK;
}

static bool result_ok(struct tune_state *t)
{
    if (vk_buf_read(t->be, &t->out, 0, t->got, t->nref * sizeof(float)))
        return false;
    double maxr = 0.0, maxe = 0.0;
    for (size_t i = 0; i < t->nref; i++) {
        maxr = fmax(maxr, fabs(t->ref[i]));
        double e = fabs((double)t->got[i] - t->ref[i]);
        if (!(e <= maxe))
            maxe = e;
    }
    return maxe <= 1e-3 * fmax(1.0, maxr);
}

struct cand {
    struct vk_gemm_tile t;
    double              ms, score;
    bool                ok;
};

static bool same(const struct vk_gemm_tile *a, const struct vk_gemm_tile *b)
{
    return a->bm == b->bm && a->bn == b->bn && a->bk == b->bk && a->tm == b->tm && a->tn == b->tn &&
           a->reg == b->reg;
}

/* Tiles worth trying: 32..128 blocks, BK 8..32, 2..8 micro-tiles, 32..512 invocations. */
static bool tile_sane(const struct vk_ctx *c, const struct vk_gemm_tile *t)
{
    if (t->reg)
        return vk_gemm_tile_ok(c, t);
    uint32_t inv = (t->bn / (t->tn ? t->tn : 1)) * (t->bm / (t->tm ? t->tm : 1));
    return t->bm >= 16 && t->bm <= 128 && t->bn >= 16 && t->bn <= 128 && t->bk >= 4 && t->bk <= 32 &&
           t->tm >= 1 && t->tm <= 8 && t->tn >= 1 && t->tn <= 8 && inv >= 32 && inv <= 512 &&
           vk_gemm_tile_ok(c, t);
}

static void try_cand(struct tune_state *t, const struct vk_gemm_tile *g, double best, const char *why,
                     struct cand *out)
{
    out->t = *g;
    out->ms = INFINITY;
    out->ok = false;
    char name[64];
    vk_gemm_tile_name(g, name, sizeof name);
    double t0 = now_ms();
    enum seg_status st = vk_gemm_tile_set(t->c, g);
    if (!st)
        st = time_shape(t, &t->o->shapes[0], isfinite(best) ? 3.0 * best : 0.0, 150.0, &out->ms);
    if (st) {
        say(t, "%-7s %-22s: failed (%s)", why, name, seg_last_error());
        out->ms = INFINITY;
        return;
    }
    if (!result_ok(t)) {
        say(t, "%-7s %-22s: WRONG RESULT, dropped", why, name);
        out->ms = INFINITY;
        return;
    }
    out->ok = true;
    const struct seg_tune_shape *h = &t->o->shapes[0];
    say(t, "%-7s %-22s: %9.2f ms %7.1f GFLOP/s%s (%.1f s)", why, name, out->ms,
        2.0 * h->m * h->n * h->k / (out->ms * 1e6), out->ms < best ? "  *" : "", (now_ms() - t0) / 1e3);
}

static int cmp_cand(const void *a, const void *b)
{
    double x = ((const struct cand *)a)->ms, y = ((const struct cand *)b)->ms;
    return (x > y) - (x < y);
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

enum seg_status vk_tune(struct seg_backend *be, const struct seg_tune_opts *o)
{
    struct vk_ctx *c = vk_ctx_of(be);
    struct tune_state t = {be, c, o, {0}, {0}, {0}, NULL, NULL, 0};
    struct vk_gemm_tile def = vk_gemm_tile_default(c);
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
        st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "vulkan: tune: out of host memory");
        goto done;
    }
    if ((st = vk_buf_alloc(be, na * 4, &t.a)) || (st = vk_buf_alloc(be, nb * 4, &t.b)) ||
        (st = vk_buf_alloc(be, nc * 4, &t.out)))
        goto done;
    uint64_t rs = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < nmax; i++)
        host[i] = (float)(rnd(&rs) >> 40) / 16777216.0f - 0.5f;
    if ((st = vk_buf_write(be, &t.a, 0, host, na * 4)) || (st = vk_buf_write(be, &t.b, 0, host, nb * 4)) ||
        (st = vk_gemm_tile_set(c, &def)))
        goto done;

    int nfirst = o->quick ? 10 : 48, nwalk = o->quick ? 8 : 24, ntop = o->quick ? 3 : 5, n = 0;
    struct seg_tune_clock clk;
    seg_tune_clock_start(&clk, o, nfirst + nwalk, ntop);
    double t0 = now_ms(), base_total = 0.0;
    int nshapes = 0; /* timed with the default tile (all unless the budget cut the pass short) */
    for (int i = 0; i < o->nshapes && !st && seg_tune_clock_base(&clk, i); i++, nshapes++) {
        st = time_shape(&t, &o->shapes[i], 0.0, 300.0, &base[i]);
        if (!st && i == 0)
            st = vk_buf_read(be, &t.out, 0, t.ref, t.nref * sizeof(float));
        base_total += base[i];
    }
    if (st)
        goto done;
    const struct seg_tune_shape *h = &o->shapes[0];
    char dname[64];
    vk_gemm_tile_name(&def, dname, sizeof dname);
    say(&t, "default %s: %dx%dx%d %.2f ms (%.1f GFLOP/s); %d shapes %.1f ms (%.1f s)", dname, h->m, h->n, h->k,
        base[0],
        2.0 * h->m * h->n * h->k / (base[0] * 1e6), nshapes, base_total, (now_ms() - t0) / 1e3);
    seg_tune_clock_pass(&clk, (now_ms() - t0) / 1e3);

    /* Stage 1: every sane tile of the grid, in a fixed shuffled order, up to a budget. */
    static const uint32_t blk[] = {32, 64, 128}, bks[] = {8, 16, 32}, mts[] = {2, 4, 8};
    struct vk_gemm_tile grid[243 + 15];
    int ng = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 3; k++)
                for (int p = 0; p < 3; p++)
                    for (int q = 0; q < 3; q++) {
                        struct vk_gemm_tile g = {blk[i], blk[j], bks[k], mts[p], mts[q], 0};
                        if (tile_sane(c, &g) && !same(&g, &def))
                            grid[ng++] = g;
                    }
    /* and the register GEMM's tiles, where the device can run it */
    for (uint32_t mv = 1; c->reg_lanes && mv <= 4; mv *= 2)
        for (uint32_t tn = 1; tn <= 16; tn *= 2) {
            struct vk_gemm_tile g = vk_gemm_tile_reg(c, mv, tn);
            if (tile_sane(c, &g) && !same(&g, &def))
                grid[ng++] = g;
        }
    for (int i = ng - 1; i > 0; i--) {
        int j = (int)(rnd(&rs) % (uint64_t)(i + 1));
        struct vk_gemm_tile x = grid[i];
        grid[i] = grid[j];
        grid[j] = x;
    }
    if (ng < nfirst)
        clk.planned = ng + nwalk;
    double best = base[0];
    cands[n++] = (struct cand){def, base[0], 0.0, true};
    for (int i = 0; i < ng && i < nfirst && seg_tune_clock_search(&clk); i++) {
        double c0 = seg_tune_now();
        try_cand(&t, &grid[i], best, "grid", &cands[n]);
        seg_tune_clock_tick(&clk, c0);
        best = fmin(best, cands[n].ms);
        n++;
    }
    /* Stage 2: greedy walk (x2, /2 of one parameter), re-centred on every improvement. */
    qsort(cands, (size_t)n, sizeof *cands, cmp_cand);
    struct vk_gemm_tile from = cands[0].t;
    int walked = 0;
    for (int w = 0; w < 10 && walked < nwalk && n < 250; w++) {
        struct vk_gemm_tile g = from;
        uint32_t *f[5] = {&g.tm, &g.tn, &g.bk, &g.bm, &g.bn};
        uint32_t *v = f[w / 2];
        if (g.reg && w >= 4)
            continue; /* the register GEMM's block follows from TM and TN */
        *v = w % 2 ? *v * 2 : *v / 2;
        if (g.reg)
            g = vk_gemm_tile_reg(c, g.tm, g.tn);
        if (!tile_sane(c, &g))
            continue;
        bool dup = false;
        for (int j = 0; j < n; j++)
            dup |= same(&cands[j].t, &g);
        if (dup)
            continue;
        if (!seg_tune_clock_search(&clk))
            break;
        double c0 = seg_tune_now();
        try_cand(&t, &g, best, "walk", &cands[n]);
        seg_tune_clock_tick(&clk, c0);
        walked++;
        if (cands[n].ms < best) {
            best = cands[n].ms;
            from = g;
            w = -1;
        }
        n++;
    }
    qsort(cands, (size_t)n, sizeof *cands, cmp_cand);

    /* Stage 3: the best few on every shape. */
    int winner = -1;
    double best_score = log(0.97);
    for (int i = 0, checked = 0; i < ntop && i < n && cands[i].ok; i++) {
        if (same(&cands[i].t, &def))
            continue;
        if (!seg_tune_clock_final(&clk, checked++))
            break;
        double score = log(cands[i].ms / base[0]), total = cands[i].ms;
        st = vk_gemm_tile_set(c, &cands[i].t);
        int timed = 1;
        for (int s = 1; s < nshapes && !st && seg_tune_clock_shape(&clk, s); s++, timed++) {
            double ms = 0.0;
            st = time_shape(&t, &o->shapes[s], 3.0 * base[s], 300.0, &ms);
            score += log(ms / base[s]);
            total += ms;
        }
        if (st) {
            say(&t, "final   tile %d failed on a shape: %s", i + 1, seg_last_error());
            st = SEG_STATUS_OK;
            continue;
        }
        cands[i].score = score / timed;
        char name[64];
        vk_gemm_tile_name(&cands[i].t, name, sizeof name);
        say(&t, "final   %-22s: %dx%dx%d %.2fx, %d shapes %.2fx (geometric mean), %.1f ms total", name, h->m, h->n,
            h->k, base[0] / cands[i].ms, timed, exp(-cands[i].score), total);
        if (cands[i].score < best_score) {
            best_score = cands[i].score;
            winner = i;
        }
    }
    if (winner < 0) {
        say(&t, "no tile beats the default by 3%%: nothing stored");
        st = vk_gemm_tile_set(c, &def);
        goto done;
    }
    char note[200];
    snprintf(note, sizeof note, "%dx%dx%d: %.2f ms default tile, %.2f ms tuned; %d shapes: %.2fx geometric mean",
             h->m, h->n, h->k, base[0], cands[winner].ms, nshapes, exp(-best_score));
    st = vk_gemm_tile_set(c, &cands[winner].t);
    if (!st)
        st = cache_store(be, &cands[winner].t, note);
    if (!st) {
        char how[64], path[1024];
        snprintf(how, sizeof how, "just tuned, %.2fx on 1024^3", base[0] / cands[winner].ms);
        set_tuned(be, &cands[winner].t, how);
        if (cache_file(be, false, path, sizeof path))
            say(&t, "stored in %s", path);
    }
done:
    vk_gemm_describe(be);
    if (t.a.handle)
        vk_buf_free(be, &t.a);
    if (t.b.handle)
        vk_buf_free(be, &t.b);
    if (t.out.handle)
        vk_buf_free(be, &t.out);
    free(host);
    free(t.ref);
    free(t.got);
    free(cands);
    free(base);
    return st;
}
