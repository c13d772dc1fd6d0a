/* step.c: the step suite: one training iteration of every registered method (the
 * trainer's own step: forward, every loss term, backward, every optimizer update) on a
 * random source and target batch, with the method's default configuration. source_only
 * comes first: bench/compare_torch.py reads it as the model's plain training step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "dist/dist.h"
#include "train/trainer.h"

struct step_ctx {
    struct seg_trainer *t;
    struct seg_batch    src, tgt;
};

static void step_ctx_free(struct step_ctx *c)
{
    seg_trainer_destroy(c->t);
    free(c->src.images);
    free(c->src.labels);
    free(c->tgt.images);
}

static enum seg_status run_step(void *p)
{
    struct step_ctx *c = p;
    struct seg_losses losses = {0};
    return seg_trainer_step(c->t, &c->src, &c->tgt, &losses);
}

/* Images uniform in [-60, 60] (the scale of mean-subtracted pixels), labels in [0, 19). */
static enum seg_status fill_batch(struct seg_batch *b, int n, int h, int w, uint64_t seed, bool labelled)
{
    size_t npix = (size_t)n * h * w;
    b->n = n;
    b->h = h;
    b->w = w;
    b->images = malloc(3 * npix * sizeof *b->images);
    b->labels = labelled ? malloc(npix * sizeof *b->labels) : NULL;
    if (!b->images || (labelled && !b->labels))
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "bench step: out of host memory");
    for (size_t i = 0; i < 3 * npix; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        b->images[i] = (float)((seed >> 40) * (1.0 / (1 << 24))) * 120.0f - 60.0f;
    }
    for (size_t i = 0; labelled && i < npix; i++) /* blocks of one class, like a scene */
        b->labels[i] = (int32_t)(((i % (size_t)w) / 16 + (i / (size_t)w % (size_t)h) / 16 * 3) % 19);
    return SEG_STATUS_OK;
}

/* What steps cost the host after warm-up: two more steps back to back (each ends with the
 * trainer's own readback; the timed runs add the bench's syncs, so they are not counted). */
static enum seg_status step_counts(struct seg_backend *be, struct step_ctx *c, struct bench_record *r)
{
    const int n = 2;
    struct seg_exec_counts a = *seg_backend_counts(be);
    for (int i = 0; i < n; i++)
        SEG_TRY(run_step(c));
    const struct seg_exec_counts *b = seg_backend_counts(be);
    r->syncs = (double)(b->host_syncs - a.host_syncs) / n;
    r->dispatches = (double)(b->dispatches - a.dispatches) / n;
    r->barriers = (double)(b->barriers - a.barriers) / n;
    r->has_counts = true;
    return SEG_STATUS_OK;
}

static enum seg_status step_one(struct seg_backend *be, const struct bench_opts *o, struct bench_list *l,
                                const char *method, const char *shape)
{
    struct bench_record *r = bench_add(l, be, "step", method, shape, 0, 0);
    if (!r)
        return SEG_STATUS_OK; /* filtered out */
    struct seg_config cfg;
    struct step_ctx c = {0};
    char kv[160];
    enum seg_status st = seg_config_init(&cfg);
    snprintf(kv, sizeof kv, "method.name=%s", method);
    if (!st) st = seg_config_set(&cfg, kv);
    snprintf(kv, sizeof kv, "model.arch=%s", o->step_arch);
    if (!st) st = seg_config_set(&cfg, kv);
    if (!st) st = fill_batch(&c.src, 1, o->step_h, o->step_w, 11, true);
    if (!st) st = fill_batch(&c.tgt, 1, o->step_h, o->step_w, 12, false);
    seg_backend_mem_peak_reset(be);
    if (!st) st = seg_trainer_create(&cfg, be, &c.t);
    if (!st) st = bench_time(be, o, run_step, &c, r);
    if (!st) st = step_counts(be, &c, r);
    r->mem_mb = (double)seg_backend_mem_peak(be) / (1 << 20);
    step_ctx_free(&c);
    seg_config_free(&cfg);
    if (st) /* one method's failure does not hide the others' figures */
        l->n--;
    return st;
}

/* One source-only step of a global batch of `global` images: rank 0 alone (dist NULL; the
 * other ranks wait), or every rank of o->dist with its share. Rank 0 records it. */
static enum seg_status scaling_one(struct seg_backend *be, const struct bench_opts *o, struct bench_list *l,
                                   struct seg_dist *dist, int global, const char *shape, double *comm_ms)
{
    int rank = seg_dist_rank(o->dist), nranks = seg_dist_size(dist), per = global / nranks;
    char op[48];
    snprintf(op, sizeof op, "source_only %d rank%s", nranks, nranks > 1 ? "s" : "");
    struct bench_record dummy, *r = rank == 0 ? bench_add(l, be, "step", op, shape, 0, 0) : &dummy;
    if (!r)
        return SEG_STATUS_OK;
    struct seg_config cfg;
    struct step_ctx c = {0};
    char kv[160];
    /* a fixed number of runs: every rank must take the same number of steps */
    struct bench_opts fixed = *o;
    fixed.budget_s = 1e9;
    enum seg_status st = seg_config_init(&cfg);
    snprintf(kv, sizeof kv, "model.arch=%s", o->step_arch);
    if (!st) st = seg_config_set(&cfg, kv);
    if (!st) st = fill_batch(&c.src, per, o->step_h, o->step_w, 11, true);
    if (!st) st = fill_batch(&c.tgt, per, o->step_h, o->step_w, 12, false);
    seg_backend_mem_peak_reset(be);
    if (!st) st = seg_trainer_create_dist(&cfg, be, dist, &c.t);
    seg_dist_take_comm_seconds(dist);
    if (!st) st = bench_time(be, &fixed, run_step, &c, r);
    *comm_ms = 1e3 * seg_dist_take_comm_seconds(dist) / (fixed.runs + 1); /* + the warm-up */
    r->mem_mb = (double)seg_backend_mem_peak(be) / (1 << 20);
    step_ctx_free(&c);
    seg_config_free(&cfg);
    if (st && rank == 0)
        l->n--;
    return st;
}

/* Under mpirun: steps per second of one source-only step on a global batch of N images
 * (N = the rank count), rank 0 alone and then every rank with one image each: the same
 * work, so the ratio is the strong-scaling speedup. */
static enum seg_status step_scaling(struct seg_backend *be, const struct bench_opts *o, struct bench_list *l)
{
    int rank = seg_dist_rank(o->dist), nranks = seg_dist_size(o->dist);
    char shape[96];
    snprintf(shape, sizeof shape, "%s %dx3x%dx%d", o->step_arch, nranks, o->step_h, o->step_w);
    int before = l->n;
    double comm_ms = 0;
    enum seg_status st = SEG_STATUS_OK;
    if (rank == 0)
        st = scaling_one(be, o, l, NULL, nranks, shape, &comm_ms);
    bool ok = !st; /* the others wait, asleep: rank 0 may need their cores */
    enum seg_status s2 = seg_dist_barrier(o->dist);
    if (!s2) s2 = seg_dist_all(o->dist, &ok);
    if (!st && (s2 || !ok))
        return s2 ? s2 : seg_error(SEG_STATUS_BACKEND, "bench step: rank 0's one-rank run failed");
    if (st)
        return st;
    SEG_TRY(scaling_one(be, o, l, o->dist, nranks, shape, &comm_ms));
    if (rank == 0 && l->n == before + 2) {
        double one = l->v[before].ms_median, many = l->v[before + 1].ms_median;
        printf("# scaling: %s, global batch %d: 1 rank %.3f steps/s, %d ranks %.3f steps/s: speedup %.2fx "
               "(%.0f%% efficiency); gradient averaging %.0f ms a step\n", shape, nranks, 1e3 / one, nranks,
               1e3 / many, one / many, 100.0 * one / many / nranks, comm_ms);
    }
    return SEG_STATUS_OK;
}

enum seg_status bench_suite_step(struct seg_backend *be, const struct bench_opts *o, struct bench_list *l)
{
    if (seg_dist_size(o->dist) > 1)
        return step_scaling(be, o, l);
    int arch = seg_arch_from_name(o->step_arch);
    if (arch < 0 || arch == SEG_ARCH_DISCRIMINATOR)
        return seg_error(SEG_STATUS_INVALID, "bench step: unknown architecture '%s'", o->step_arch);
    char shape[96];
    snprintf(shape, sizeof shape, "%s 1x3x%dx%d", o->step_arch, o->step_h, o->step_w);
    enum seg_status first = SEG_STATUS_OK;
    for (int i = 0; i < seg_method_count(); i++) {
        const char *name = seg_method_at(i)->name;
        enum seg_status st = step_one(be, o, l, name, shape);
        if (st) {
            fprintf(stderr, "segda bench: step %s on %s: %s\n", name, seg_backend_device(be)->spec,
                    seg_last_error());
            if (!first)
                first = st;
        }
    }
    return first;
}
