/* test_dist.c: data-parallel training, run under `mpirun -np 2`. For every method, a tiny
 * DeepLab (trainable BN, so synchronized BN is exercised) trains a few steps on random
 * global batches of 2 source and 2 target images, each rank on its half:
 *  - every rank must end with the same bits in every weight, optimizer state and method
 *    state (SDCA's class statistics, BiDA's EMA prototypes and thresholds, PixIntraDA's
 *    class thresholds);
 *  - for the methods whose every global quantity is combined over the ranks, rank 0 also
 *    trains the same steps alone on the whole batch, and the weights must agree within
 *    --tol (relative L2 norm per tensor): the 2-rank job is the 1-rank job.
 * usage: mpirun -np 2 test_dist -b BACKEND [-m METHOD,...] [--steps N] [--tol T] [--bucket BYTES]
 * (--bucket: gradient bucket size; CI uses 64 KiB so that the tiny model spans many buckets
 * and the pipelined reduction is exercised)
 * Tolerance: the weights agree to 1e-6..4e-6 on every backend at the test's learning rate
 * (10x the paper's); at 40x, float noise grows chaotically through AdaptSegNet's Adam-trained
 * discriminator (6.6e-3 on Vulkan after 4 steps, 1e-6 after 1), which says nothing of the
 * data parallelism, so the rate is kept moderate. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "dist/dist.h"
#include "train/trainer.h"

#define NC 5
#define H 32
#define W 64
#define NGLOBAL 2

/* Methods whose 2-rank training is the 1-rank training: everything global is summed over
 * the ranks and every loss is a mean over a fixed number of pixels a rank. Not here: sdca
 * and bida, whose losses are means over the pixels a rank's shard selects (labelled, or
 * confident), as a per-GPU mean in PyTorch's DistributedDataParallel, so their gradients
 * differ from one process's when the shards select different counts, and plca, whose cycle
 * association pairs the images each rank holds, as the paper's per-GPU batches do. */
static const char *const equivalent[] = {"source_only", "adaptsegnet", "pixintra"};
/* Methods whose global statistics after one step (from the same starting weights) must be
 * the one-process statistics of the whole batch; bida_thr is the mean of the per-batch CBST
 * quantiles, each rank's batch counting as one. */
static const char *const state_equivalent[] = {"sdca", "bida", "pixintra"};

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Step s's global batch: images in [-1, 1], labels in blocks with a few ignored pixels. */
static void make_batch(int step, bool target, float *img, int32_t *lab)
{
    uint64_t s = (uint64_t)step * 7919u + (target ? 104729u : 1u);
    for (int i = 0; i < NGLOBAL * 3 * H * W; i++)
        img[i] = (float)((double)(splitmix(&s) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    int shift = (int)(splitmix(&s) % NC);
    for (int n = 0; n < NGLOBAL; n++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int v = (x / 16 + y / 8 + n + shift) % NC;
                lab[(n * H + y) * W + x] = (x + y) % 29 == 0 ? 255 : v;
                img[((n * 3 + v % 3) * H + y) * W + x] += 0.5f * (float)v; /* learnable */
            }
}

static enum seg_status set_all(struct seg_config *c, const char *method)
{
    char kv[128];
    const char *common[] = {"model.arch=deeplabv2_tiny", "model.bn=trainable", "model.num_classes=5",
                            "model.multi_level=true", "data.batch=2", "solver.iterations=20",
                            "solver.lr=0.0025", "adaptsegnet.d_width=8", "pixintra.d_width=8",
                            "pixintra.inter_share=0", "bida.static_every=2", "sdca.tau=10"};
    snprintf(kv, sizeof kv, "method.name=%s", method);
    SEG_TRY(seg_config_set(c, kv));
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
        SEG_TRY(seg_config_set(c, common[i]));
    return SEG_STATUS_OK;
}

/* Trains `steps` steps; this process takes items [first, first + n) of each global batch. */
static enum seg_status train(struct seg_trainer *t, int steps, int first, int n)
{
    static float simg[NGLOBAL * 3 * H * W], timg[NGLOBAL * 3 * H * W];
    static int32_t slab[NGLOBAL * H * W], tlab[NGLOBAL * H * W];
    for (int s = 0; s < steps; s++) {
        make_batch(s, false, simg, slab);
        make_batch(s, true, timg, tlab);
        struct seg_batch sb = {n, H, W, simg + (size_t)first * 3 * H * W, slab + (size_t)first * H * W};
        struct seg_batch tb = {n, H, W, timg + (size_t)first * 3 * H * W, NULL};
        struct seg_losses l;
        SEG_TRY(seg_trainer_step(t, &sb, &tb, &l));
    }
    return SEG_STATUS_OK;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}

static enum seg_status hash_tensor(const struct seg_tensor *x, uint64_t *h)
{
    size_t nb = seg_tensor_nbytes(x);
    void *buf = malloc(nb ? nb : 1);
    if (!buf)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "test_dist: out of memory");
    enum seg_status st = seg_tensor_read(x, buf, nb);
    *h = fnv(*h, buf, nb);
    free(buf);
    return st;
}

/* Every weight, optimizer state and method state of t, in order. */
static enum seg_status hash_trainer(const struct seg_trainer *t, uint64_t *h)
{
    *h = 0xCBF29CE484222325ull;
    const struct seg_model *ms[1 + SEG_MAX_AUX_MODELS] = {t->model};
    const struct seg_optim *os[1 + SEG_MAX_AUX_MODELS] = {t->opt};
    for (int i = 0; i < t->naux; i++) {
        ms[1 + i] = t->aux[i];
        os[1 + i] = t->aux_opt[i];
    }
    for (int k = 0; k <= t->naux; k++)
        for (int i = 0; i < ms[k]->nparams; i++) {
            SEG_TRY(hash_tensor(ms[k]->params[i].var->value, h));
            if (os[k]->state1[i]) SEG_TRY(hash_tensor(os[k]->state1[i], h));
            if (os[k]->state2[i]) SEG_TRY(hash_tensor(os[k]->state2[i], h));
        }
    for (int i = 0; i < t->nstate; i++)
        SEG_TRY(hash_tensor(t->state[i], h));
    return SEG_STATUS_OK;
}

/* ||b - a|| / ||a|| over two tensors of the same shape. */
static enum seg_status rel_l2(const struct seg_tensor *a, const struct seg_tensor *b, double *rel)
{
    size_t ne = (size_t)seg_tensor_numel(a);
    float *x = malloc(ne * sizeof *x), *y = malloc(ne * sizeof *y);
    enum seg_status st = !x || !y ? seg_error(SEG_STATUS_OUT_OF_MEMORY, "test_dist: out of memory")
                                  : seg_tensor_read(a, x, ne * sizeof *x);
    if (!st) st = seg_tensor_read(b, y, ne * sizeof *y);
    double num = 0, den = 0;
    for (size_t j = 0; !st && j < ne; j++) {
        num += ((double)x[j] - y[j]) * ((double)x[j] - y[j]);
        den += (double)x[j] * x[j];
    }
    free(x);
    free(y);
    *rel = sqrt(num) / fmax(sqrt(den), 1e-12);
    return st;
}

/* The worst relative L2 error over the main model's tensors, b against a. */
static enum seg_status compare_models(const struct seg_model *a, const struct seg_model *b, double *worst,
                                      char *where, size_t n)
{
    *worst = 0;
    for (int i = 0; i < a->nparams; i++) {
        double rel;
        SEG_TRY(rel_l2(a->params[i].var->value, b->params[i].var->value, &rel));
        if (rel > *worst) {
            *worst = rel;
            snprintf(where, n, "%s", a->params[i].name);
        }
    }
    return SEG_STATUS_OK;
}

/* The worst relative L2 error over the method states of b against a (but `skip`). */
static enum seg_status compare_states(const struct seg_trainer *a, const struct seg_trainer *b, const char *skip,
                                      double *worst, char *where, size_t n)
{
    *worst = 0;
    for (int i = 0; i < a->nstate; i++) {
        double rel;
        if (skip && !strcmp(a->state_name[i], skip))
            continue;
        SEG_TRY(rel_l2(a->state[i], b->state[i], &rel));
        if (rel >= *worst) {
            *worst = rel;
            snprintf(where, n, "%s", a->state_name[i]);
        }
    }
    return SEG_STATUS_OK;
}

static bool in_list(const char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], name))
            return true;
    return false;
}

/* One method: 0 pass, 1 fail. */
static int run_method(struct seg_dist *d, struct seg_backend *be, const char *method, int steps, double tol)
{
    int rank = seg_dist_rank(d), nranks = seg_dist_size(d), per = NGLOBAL / nranks;
    struct seg_config cfg;
    struct seg_trainer *t = NULL, *alone = NULL;
    enum seg_status st = seg_config_init(&cfg);
    if (!st) st = set_all(&cfg, method);
    if (!st) st = seg_trainer_create_dist(&cfg, be, d, &t);
    if (!st) st = train(t, steps, rank * per, per);
    uint64_t h = 0, h0 = 0;
    if (!st) st = hash_trainer(t, &h);
    h0 = h;
    if (!st) st = seg_dist_bcast(d, &h0, sizeof h0, 0);
    bool same = !st && h == h0;
    bool all_same = same;
    if (!st) st = seg_dist_all(d, &all_same);
    int fail = 0;
    if (st) {
        fprintf(stderr, "FAIL %s: rank %d: %s\n", method, rank, seg_last_error());
        fail = 1;
    } else if (rank == 0) {
        printf("%-12s %d ranks x %d image(s), %d steps: weights, optimizer and method state %s on every rank (hash %016llx)\n",
               method, nranks, per, steps, all_same ? "bit-identical" : "DIFFER", (unsigned long long)h);
        fail |= !all_same;
    }
    bool check = in_list(equivalent, sizeof equivalent / sizeof equivalent[0], method);
    if (!st && rank == 0 && check) { /* the same job in one process, the whole batch */
        double worst = 0;
        char where[96] = "";
        st = seg_trainer_create(&cfg, be, &alone);
        if (!st) st = train(alone, steps, 0, NGLOBAL);
        if (!st) st = compare_models(alone->model, t->model, &worst, where, sizeof where);
        if (st) {
            fprintf(stderr, "FAIL %s: one-process run: %s\n", method, seg_last_error());
            fail = 1;
        } else {
            printf("%-12s %d ranks vs 1 process, batch %d: worst relative L2 error %.2e (%s), tolerance %.0e: %s\n",
                   method, nranks, NGLOBAL, worst, where, tol, worst <= tol ? "ok" : "FAIL");
            fail |= !(worst <= tol);
        }
    }
    seg_trainer_destroy(alone);
    seg_trainer_destroy(t);
    t = alone = NULL;
    if (!st && in_list(state_equivalent, sizeof state_equivalent / sizeof state_equivalent[0], method)) {
        st = seg_trainer_create_dist(&cfg, be, d, &t); /* one step from the same weights */
        if (!st) st = train(t, 1, rank * per, per);
        if (!st && rank == 0) {
            double worst = 0;
            char where[96] = "-";
            st = seg_trainer_create(&cfg, be, &alone);
            if (!st) st = train(alone, 1, 0, NGLOBAL);
            if (!st) st = compare_states(alone, t, "bida_thr", &worst, where, sizeof where);
            if (!st) {
                printf("%-12s %d ranks vs 1 process, one step: method statistics worst relative L2 error %.2e (%s): %s\n",
                       method, nranks, worst, where, worst <= tol ? "ok" : "FAIL");
                fail |= !(worst <= tol);
            }
        }
        if (st) {
            fprintf(stderr, "FAIL %s: statistics check: %s\n", method, seg_last_error());
            fail = 1;
        }
    }
    seg_trainer_destroy(alone);
    seg_trainer_destroy(t);
    seg_config_free(&cfg);
    return fail;
}

/* Gradient averaging with a parameter that only rank 0 has a gradient for (a loss term
 * rank 1's shard gave no pixel to): both ranks must end with half of rank 0's gradient, and
 * a parameter without a gradient anywhere must stay without one. */
static int check_grad_union(struct seg_dist *d, struct seg_backend *be)
{
    struct seg_model_config mc = {SEG_ARCH_DEEPLABV2_TINY, NC, false, true, SEG_BN_POLICY_TRAINABLE, 7, 0, false, false, {0}};
    struct seg_model *m = NULL;
    int rank = seg_dist_rank(d), fail = 0, target = -1, untouched = -1;
    enum seg_status st = seg_model_create(be, &mc, &m);
    for (int i = 0; !st && i < m->nparams; i++) {
        struct seg_param *p = &m->params[i];
        if (p->is_buffer || !p->var->requires_grad)
            continue;
        if (target < 0)
            target = i;
        else if (untouched < 0)
            untouched = i;
        else if (rank == 0 || i % 2) { /* the rest: every rank, or rank 0 alone for the even ones */
            st = seg_tensor_new_like(p->var->value, &p->var->grad);
            if (!st) st = seg_fill(p->var->grad, (float)(rank + 1));
        }
    }
    if (!st && rank == 0) {
        st = seg_tensor_new_like(m->params[target].var->value, &m->params[target].var->grad);
        if (!st) st = seg_fill(m->params[target].var->grad, 3.0f);
    }
    if (!st) st = seg_dist_average_grads(d, m);
    float v = 0;
    if (!st && !m->params[target].var->grad)
        st = seg_error(SEG_STATUS_INVALID, "rank %d got no gradient for %s", rank, m->params[target].name);
    if (!st) { /* every element: 3 on rank 0, nothing (zeros) on rank 1 -> 1.5 */
        size_t ne = (size_t)seg_tensor_numel(m->params[target].var->grad);
        float *g = malloc(ne * sizeof *g);
        st = g ? seg_tensor_read(m->params[target].var->grad, g, ne * sizeof *g)
               : seg_error(SEG_STATUS_OUT_OF_MEMORY, "test_dist: out of memory");
        for (size_t j = 0; !st && j < ne; j++)
            if (j == 0 || g[j] != 1.5f)
                v = g[j];
        free(g);
    }
    if (st) {
        fprintf(stderr, "FAIL gradient union: rank %d: %s\n", rank, seg_last_error());
        fail = 1;
    } else if (v != 1.5f || m->params[untouched].var->grad) {
        fprintf(stderr, "FAIL gradient union: rank %d: %s = %g (want 1.5), %s %s a gradient\n", rank,
                m->params[target].name, v, m->params[untouched].name, m->params[untouched].var->grad ? "has" : "has no");
        fail = 1;
    } else if (rank == 0) {
        printf("gradient union: a gradient on rank 0 alone is averaged with zeros on rank 1 (%g); "
               "none anywhere stays none: ok\n", v);
    }
    seg_model_destroy(m);
    return fail;
}

int main(int argc, char **argv)
{
    struct seg_dist *d = NULL;
    if (seg_dist_init(&argc, &argv, &d)) {
        fprintf(stderr, "test_dist: %s\n", seg_last_error());
        return 1;
    }
    /* One conv algorithm for every run compared: the measured choice (SEGDA_CONV_ALGO=auto) is
     * per shape, batch included, so the 1-process batch-2 reference and the ranks' batch-1
     * steps could run different kernels, and PixIntraDA's thresholds turn their rounding
     * differences into different pixel selections. */
    setenv("SEGDA_CONV_ALGO", "im2col", 0);
    const char *backend = "cpu", *methods = "source_only,adaptsegnet,sdca,pixintra,bida,plca";
    int steps = 4;
    double tol = 1e-4;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-b") && i + 1 < argc)
            backend = argv[++i];
        else if (!strcmp(argv[i], "-m") && i + 1 < argc)
            methods = argv[++i];
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tol") && i + 1 < argc)
            tol = atof(argv[++i]);
        else if (!strcmp(argv[i], "--bucket") && i + 1 < argc)
            seg_dist_set_bucket_bytes(d, (size_t)atol(argv[++i]));
        else {
            fprintf(stderr, "usage: mpirun -np 2 test_dist -b BACKEND [-m METHOD,...] [--steps N] [--tol T] [--bucket BYTES]\n");
            seg_dist_finalize(d);
            return 2;
        }
    }
    int rank = seg_dist_rank(d), nranks = seg_dist_size(d);
    if (nranks != 2) { /* the point is two ranks: one is a configuration error, not a pass */
        fprintf(stderr, "FAIL: test_dist needs 2 ranks (mpirun -np 2), got %d\n", nranks);
        seg_dist_finalize(d);
        return 1;
    }
    struct seg_backend *be = NULL;
    if (seg_backend_create(backend, &be)) {
        fprintf(stderr, "FAIL: rank %d: backend %s: %s\n", rank, backend, seg_last_error());
        seg_dist_abort(d, 1);
        return 1;
    }
    if (rank == 0) {
        char job[256];
        printf("data-parallel training on %s (%s), %s\n", seg_backend_device(be)->spec, seg_backend_device(be)->name,
               seg_dist_describe(d, job, sizeof job));
    }
    int fails = check_grad_union(d, be);
    char list[512];
    snprintf(list, sizeof list, "%s", methods);
    for (char *save = NULL, *m = strtok_r(list, ",", &save); m; m = strtok_r(NULL, ",", &save))
        fails += run_method(d, be, m, steps, tol);
    seg_backend_destroy(be);
    bool ok = fails == 0;
    seg_dist_all(d, &ok);
    seg_dist_finalize(d);
    if (rank == 0)
        printf("%s\n", ok ? "all methods pass" : "FAILURES");
    return ok ? 0 : 1;
}
