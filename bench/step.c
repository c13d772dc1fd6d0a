/* step.c: the step suite: one training iteration of every registered method (the
 * trainer's own step: forward, every loss term, backward, every optimizer update) on a
 * random source and target batch, with the method's default configuration. source_only
 * comes first: bench/compare_torch.py reads it as the model's plain training step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "train/trainer.h"

struct step_ctx {
    struct seg_trainer *t;
    struct seg_batch    src, tgt;
};

static enum seg_status run_step(void *p)
{
    struct step_ctx *c = p;
    struct seg_losses losses = {0};
    return seg_trainer_step(c->t, &c->src, &c->tgt, &losses);
}

/* Images uniform in [-60, 60] (the scale of mean-subtracted pixels), labels in [0, 19). */
static enum seg_status fill_batch(struct seg_batch *b, int h, int w, uint64_t seed, bool labelled)
{
    size_t npix = (size_t)h * w;
    b->n = 1;
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
        b->labels[i] = (int32_t)(((i % (size_t)w) / 16 + (i / (size_t)w) / 16 * 3) % 19);
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
    if (!st) st = fill_batch(&c.src, o->step_h, o->step_w, 11, true);
    if (!st) st = fill_batch(&c.tgt, o->step_h, o->step_w, 12, false);
    seg_backend_mem_peak_reset(be);
    if (!st) st = seg_trainer_create(&cfg, be, &c.t);
    if (!st) st = bench_time(be, o, run_step, &c, r);
    r->mem_mb = (double)seg_backend_mem_peak(be) / (1 << 20);
    seg_trainer_destroy(c.t);
    seg_config_free(&cfg);
    free(c.src.images);
    free(c.src.labels);
    free(c.tgt.images);
    if (st) /* one method's failure does not hide the others' figures */
        l->n--;
    return st;
}

enum seg_status bench_suite_step(struct seg_backend *be, const struct bench_opts *o, struct bench_list *l)
{
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
