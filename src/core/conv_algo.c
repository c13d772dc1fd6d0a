/* conv_algo.c: which forward algorithm a convolution runs, direct (CONV2D_DIRECT) or
 * im2col + GEMM. Neither wins everywhere: on PoCL the direct kernel is faster on most
 * ResNet-101 shapes, on GPUs a tuned GEMM library usually is, and the balance moves with
 * the shape. With SEG_CONV_ALGO_AUTO each new shape (channels, size, kernel, stride, padding,
 * dilation; not the batch) is timed both ways at its first use on the device itself, and the
 * faster is kept in memory and in the device's cache file
 *   <cache>/<backend>/conv-<hash of device name and driver>.txt   (seg_backend_cache_path)
 * so that later runs make the same choice without measuring (which also keeps a resumed run
 * bit-exact with the run it continues). Where there is no cache directory nothing is
 * measured and the backend's default is used: a choice that could differ between two runs
 * of the same training would make resume inexact.
 *
 * The measurement costs one warm-up and one timed run of each algorithm (two, the faster of
 * each kept, unless one is 1.5x the other: a single run on a busy machine can mislead); the
 * output of the winner's last run is the conv's result, so a new shape costs three to five
 * extra convolutions, once per device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "core/ops.h"
#include "data/data.h" /* seg_file_write_atomic */

#define CONV_FORMAT "segda-conv-v2"
#define KEYLEN 12

struct conv_choice {
    int64_t            key[KEYLEN];
    enum seg_conv_algo algo;
    double             ms_direct, ms_im2col; /* as measured (0: unknown) */
};

struct seg_conv_choices {
    struct conv_choice *v;
    int                 n, cap;
    bool                loaded;       /* path resolved and the file read (once per backend) */
    bool                no_cache;     /* no cache directory: nothing is measured */
    bool                store_failed; /* reported once; later shapes are not written */
    char                path[1024];   /* the device's cache file */
};

void seg_conv_choices_free(struct seg_conv_choices *c)
{
    if (!c)
        return;
    free(c->v);
    free(c);
}

const char *seg_conv_algo_name(enum seg_conv_algo algo)
{
    return algo == SEG_CONV_ALGO_DIRECT ? "direct" : algo == SEG_CONV_ALGO_IM2COL ? "im2col" : "auto";
}

enum seg_conv_algo seg_backend_conv_algo(const struct seg_backend *be) { return be->conv_algo; }

void seg_backend_set_conv_algo(struct seg_backend *be, enum seg_conv_algo algo)
{
    if (!seg_backend_has_op(be, SEG_OP_CONV2D_DIRECT))
        algo = SEG_CONV_ALGO_IM2COL;
    be->conv_algo = algo;
}

static void make_key(const struct seg_tensor *x, const struct seg_tensor *w, const struct seg_conv2d_params *p,
                     int64_t *k)
{
    /* not the batch: each image costs the same in both algorithms whatever the batch, and a
     * choice per image geometry keeps evaluation (batch 1) and training on the same kernels */
    int64_t v[KEYLEN] = {x->shape[1], x->shape[2], x->shape[3], w->shape[0], w->shape[2], w->shape[3],
                         p->stride_h, p->stride_w, p->pad_h, p->pad_w, p->dil_h, p->dil_w};
    memcpy(k, v, sizeof v);
}

static struct conv_choice *find(struct seg_conv_choices *c, const int64_t *key)
{
    for (int i = 0; i < c->n; i++)
        if (!memcmp(c->v[i].key, key, sizeof c->v[i].key))
            return &c->v[i];
    return NULL;
}

static struct conv_choice *add(struct seg_conv_choices *c, const struct conv_choice *e)
{
    struct conv_choice *have = find(c, e->key);
    if (have)
        return have;
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 32;
        struct conv_choice *v = realloc(c->v, (size_t)cap * sizeof *v);
        if (!v)
            return NULL;
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n] = *e;
    return &c->v[c->n++];
}

/* Reads the cache file's entries into c (those it already has stay). A line it cannot read
 * is reported once and skipped: it is measured again and the file rewritten without it. */
static void load_file(const struct seg_backend *be, const char *path, struct seg_conv_choices *c, bool warn)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[512];
    int lineno = 0;
    bool format = false, device = true;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        if (!strncmp(line, "format ", 7)) {
            format = !strcmp(line + 7, CONV_FORMAT);
            if (!format && warn)
                fprintf(stderr, "segda: warning: %s:%d: format '%s' is not %s; measuring again\n", path, lineno,
                        line + 7, CONV_FORMAT);
            continue;
        }
        if (!strncmp(line, "device ", 7)) {
            device = !strcmp(line + 7, be->info.name);
            continue;
        }
        if (!strncmp(line, "driver ", 7)) {
            device = device && !strcmp(line + 7, be->info.driver);
            continue;
        }
        if (!format || !device)
            break;
        struct conv_choice e;
        memset(&e, 0, sizeof e);
        long long k[KEYLEN];
        char algo[16];
        int used = 0;
        int got = sscanf(line, "conv %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %15s %lf %lf%n",
                         &k[0], &k[1], &k[2], &k[3], &k[4], &k[5], &k[6], &k[7], &k[8], &k[9], &k[10], &k[11],
                         algo, &e.ms_direct, &e.ms_im2col, &used);
        bool ok = got == KEYLEN + 3 && !line[used] && (!strcmp(algo, "direct") || !strcmp(algo, "im2col"));
        for (int i = 0; ok && i < KEYLEN; i++)
            ok = k[i] >= 0 && k[i] < (1LL << 31);
        if (!ok) {
            if (warn)
                fprintf(stderr, "segda: warning: %s:%d: cannot read '%.80s'; that shape is measured again\n", path,
                        lineno, line);
            continue;
        }
        for (int i = 0; i < KEYLEN; i++)
            e.key[i] = k[i];
        e.algo = !strcmp(algo, "direct") ? SEG_CONV_ALGO_DIRECT : SEG_CONV_ALGO_IM2COL;
        if (!add(c, &e))
            break;
    }
    fclose(f);
}

/* Writes every known choice (with what other processes added meanwhile) over the cache
 * file (seg_file_write_atomic: a temporary, then renamed). */
static enum seg_status store(struct seg_backend *be, struct seg_conv_choices *c)
{
    char dir[1024], *text = NULL;
    const char *path = c->path;
    size_t len = 0;
    if (!seg_cache_dir(be->iface->name, true, dir, sizeof dir))
        return seg_error(SEG_STATUS_IO, "%s: cannot create the cache folder of %s", be->iface->name, path);
    load_file(be, path, c, false);
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "%s: out of host memory", path);
    fprintf(f, "# segda: the faster forward convolution algorithm of each shape on this device, measured\n"
               "# at its first use (delete the file to measure again; SEGDA_CONV_ALGO overrides it).\n"
               "# conv C H W Cout KH KW stride_h stride_w pad_h pad_w dil_h dil_w algo ms_direct ms_im2col\n"
               "# (the times are of the batch it was first met at)\n"
               "format %s\ndevice %s\ndriver %s\n",
            CONV_FORMAT, be->info.name, be->info.driver);
    for (int i = 0; i < c->n; i++) {
        const int64_t *k = c->v[i].key;
        fprintf(f, "conv");
        for (int j = 0; j < KEYLEN; j++)
            fprintf(f, " %lld", (long long)k[j]);
        fprintf(f, " %s %.4g %.4g\n", seg_conv_algo_name(c->v[i].algo), c->v[i].ms_direct, c->v[i].ms_im2col);
    }
    enum seg_status st = fclose(f) == 0 && text ? seg_file_write_atomic(path, text, len)
                                                : seg_error(SEG_STATUS_OUT_OF_MEMORY, "%s: out of host memory", path);
    free(text);
    return st;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One run of one algorithm, waited for. *y: its output (the previous one is freed). */
static enum seg_status timed_run(const struct seg_tensor *x, const struct seg_tensor *w, const struct seg_tensor *b,
                                 const struct seg_conv2d_params *p, bool direct, double *ms, struct seg_tensor **y)
{
    seg_tensor_free(*y);
    *y = NULL;
    SEG_TRY(seg_backend_sync(x->be));
    double t0 = now_ms();
    enum seg_status st = direct ? seg_conv2d_direct(x, w, b, p, y) : seg_conv2d_im2col(x, w, b, p, y);
    if (!st)
        st = seg_backend_sync(x->be);
    *ms = now_ms() - t0;
    return st;
}

/* Times both algorithms on this conv. keep: the winner's output is wanted (else freed). */
static enum seg_status measure(const struct seg_tensor *x, const struct seg_tensor *w, const struct seg_tensor *b,
                               const struct seg_conv2d_params *p, struct conv_choice *e, struct seg_tensor **keep)
{
    struct seg_tensor *yd = NULL, *yi = NULL;
    double td = 0, ti = 0, t;
    enum seg_status st = timed_run(x, w, b, p, true, &t, &yd); /* warm-up: kernels built, pool filled */
    bool direct_ok = st == SEG_STATUS_OK;
    if (st == SEG_STATUS_UNSUPPORTED) { /* a size the direct kernel refuses */
        seg_error_clear();
        st = SEG_STATUS_OK;
    }
    if (!st)
        st = timed_run(x, w, b, p, false, &t, &yi);
    for (int round = 0; !st && round < 2; round++) {
        if (direct_ok) {
            st = timed_run(x, w, b, p, true, &t, &yd);
            td = round && td < t ? td : t;
        }
        if (!st) {
            st = timed_run(x, w, b, p, false, &t, &yi);
            ti = round && ti < t ? ti : t;
        }
        if (!direct_ok || td > 1.5 * ti || ti > 1.5 * td)
            break; /* a clear winner after one timed run each */
    }
    if (!st) {
        e->algo = direct_ok && td < ti ? SEG_CONV_ALGO_DIRECT : SEG_CONV_ALGO_IM2COL;
        e->ms_direct = direct_ok ? td : 0;
        e->ms_im2col = ti;
        if (keep) {
            *keep = e->algo == SEG_CONV_ALGO_DIRECT ? yd : yi;
            if (e->algo == SEG_CONV_ALGO_DIRECT)
                yd = NULL;
            else
                yi = NULL;
        }
    }
    seg_tensor_free(yd);
    seg_tensor_free(yi);
    return st;
}

/* The choice for this conv; with keep, *keep may receive its output (already computed while
 * measuring) or stay NULL. */
static enum seg_status choose(const struct seg_tensor *x, const struct seg_tensor *w, const struct seg_tensor *b,
                              const struct seg_conv2d_params *p, enum seg_conv_algo *algo, char *how,
                              size_t how_size, struct seg_tensor **keep)
{
    struct seg_backend *be = x->be;
    char dummy[8];
    if (!how) {
        how = dummy;
        how_size = sizeof dummy;
    }
    if (be->conv_algo != SEG_CONV_ALGO_AUTO || !seg_backend_has_op(be, SEG_OP_CONV2D_DIRECT)) {
        *algo = seg_backend_has_op(be, SEG_OP_CONV2D_DIRECT) ? be->conv_algo : SEG_CONV_ALGO_IM2COL;
        snprintf(how, how_size, "set");
        return SEG_STATUS_OK;
    }
    if (!be->conv_choices) {
        be->conv_choices = calloc(1, sizeof *be->conv_choices);
        if (!be->conv_choices)
            return seg_error(SEG_STATUS_OUT_OF_MEMORY, "conv2d: out of memory");
    }
    struct seg_conv_choices *c = be->conv_choices;
    if (!c->loaded) { /* once: this runs for every convolution of every step */
        c->loaded = true;
        c->no_cache = !seg_backend_cache_path(be, "conv", false, c->path, sizeof c->path);
        if (!c->no_cache)
            load_file(be, c->path, c, true);
    }
    if (c->no_cache) {
        *algo = be->conv_direct_default ? SEG_CONV_ALGO_DIRECT : SEG_CONV_ALGO_IM2COL;
        snprintf(how, how_size, "no cache directory: the backend's default");
        return SEG_STATUS_OK;
    }
    struct conv_choice e;
    memset(&e, 0, sizeof e);
    make_key(x, w, p, e.key);
    struct conv_choice *have = find(c, e.key);
    if (have) {
        *algo = have->algo;
        snprintf(how, how_size, "cached (direct %.3g ms, im2col %.3g ms)", have->ms_direct, have->ms_im2col);
        return SEG_STATUS_OK;
    }
    SEG_TRY(measure(x, w, b, p, &e, keep));
    if (!add(c, &e))
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "conv2d: out of memory");
    *algo = e.algo;
    snprintf(how, how_size, "measured: direct %.3g ms, im2col %.3g ms", e.ms_direct, e.ms_im2col);
    if (!c->store_failed && store(be, c) != SEG_STATUS_OK) {
        /* the choices still hold for this run; the next one measures again */
        fprintf(stderr, "segda: warning: %s (convolution algorithms are measured again next run)\n",
                seg_last_error());
        seg_error_clear();
        c->store_failed = true;
    }
    return SEG_STATUS_OK;
}

enum seg_status seg_conv2d_algo(const struct seg_tensor *x, const struct seg_tensor *w,
                                const struct seg_conv2d_params *p, enum seg_conv_algo *algo, char *how,
                                size_t how_size)
{
    return choose(x, w, NULL, p, algo, how, how_size, NULL);
}

enum seg_status seg_conv2d(const struct seg_tensor *x, const struct seg_tensor *w, const struct seg_tensor *b,
                           const struct seg_conv2d_params *p, struct seg_tensor **y)
{
    *y = NULL;
    enum seg_conv_algo algo = SEG_CONV_ALGO_IM2COL;
    if (x->ndim == 4 && w->ndim == 4 && w->shape[1] == x->shape[1]) {
        SEG_TRY(choose(x, w, b, p, &algo, NULL, 0, y));
        if (*y)
            return SEG_STATUS_OK; /* computed while measuring */
    }
    return algo == SEG_CONV_ALGO_DIRECT ? seg_conv2d_direct(x, w, b, p, y) : seg_conv2d_im2col(x, w, b, p, y);
}
