/* cmd_demo.c: `segda demo`: the synthetic domain-shift benchmark end to end: source-only
 * training, each adaptation method from that checkpoint on the same schedule, and a
 * target-trained oracle; a table of target mIoU and colorized predictions. */
#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "app/run_log.h"
#include "data/data.h"
#include "train/config.h"
#include "train/evaluate.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: segda demo [--dir DIR] [--device D] [--iters N] [--seeds K] [--split val|dev]\n"
               "                  [--json FILE] [--size WxH] [--methods A,B] [--reuse] [--jobs N]\n\n"
               "Generates the synthetic benchmark in DIR/synth if absent (segda synth), then trains the\n"
               "tiny DeepLab-v2 on it: source-only, each adaptation method starting from the source-only\n"
               "weights for the same number of iterations, and an oracle trained on target labels, each\n"
               "with K training seeds. Prints the target mIoU of each (mean and standard deviation over\n"
               "the seeds), writes DIR/<method>/seed<k>/ (checkpoints, metrics) and DIR/<method>/grid_*.png\n"
               "(input | ground truth | prediction, seed 1).\n\n"
               "A fair comparison: every run shares one schedule (N iterations, batch 4, LR 0.01 poly,\n"
               "trainable BN); each method keeps its paper defaults, with three scaling rules applied\n"
               "to all alike: a length counted in iterations (BiDA's round, MIC's warm-up) keeps its\n"
               "share of the paper's schedule, a length in pixels (MIC's ignored rows and mask\n"
               "blocks) its share of the paper's crop height, and a discriminator's width scales\n"
               "with the backbone (tiny: 8 of ResNet's 64). Nothing is tuned on the split reported (val); --split dev reports the\n"
               "benchmark's dev split instead, for trying settings.\n\n"
               "Defaults: DIR demo, device auto, N 200, K 3, split val. --json FILE (default DIR/demo.json)\n"
               "writes {\"device\", \"methods\": {name: {miou (the mean), miou_seeds, miou_std}}, \"oracle\"};\n"
               "DIR/summary.png (and .svg) shows it (tools/plot_demo.py; python3-matplotlib).\n"
               "--methods runs only the listed adaptation methods (default: all); --reuse keeps the\n"
               "source-only and oracle runs already in DIR instead of training them again. --jobs N\n"
               "trains N runs at a time in child processes (default: 2 on the cpu device, each with one\n"
               "BLAS thread; 1 on a GPU).\n");
}

/* The adaptation methods the demo runs, each from the source-only weights. Every method key
 * is at its default (the paper's value); `model` is the paper config's network for the
 * method; `period_key` is a length counted in iterations, scaled to the demo's schedule;
 * `pixel_keys` ("key=value;...") are lengths in pixels of the paper's crop height
 * `paper_crop`, scaled to the demo's image height. */
static const struct demo_method {
    const char *name;
    const char *model;      /* "key=value;key=value" from configs/<method>_gta5_to_cityscapes.ini */
    const char *d_width_key; /* discriminator width: scaled with the backbone */
    const char *period_key;
    long        period, paper_iters;
    const char *pixel_keys;
    int         paper_crop;
} demo_methods[] = {
    {"adaptsegnet", "", "adaptsegnet.d_width", NULL, 0, 0, NULL, 0},
    {"sdca", "model.multi_level=false", NULL, NULL, 0, 0, NULL, 0},
    {"plca", "model.multi_level=false;model.classifier_bias=false", NULL, NULL, 0, 0, NULL, 0},
    {"bida", "model.multi_level=false", NULL, "bida.static_every", 10000, 100000, NULL, 0},
    /* the paper's stage I (AdaptSegNet) is the first half of the same budget, stage II the
     * second: its two rounds (pixintra.round_split) are shares of the run already */
    {"pixintra", "pixintra.inter_share=0.5", "pixintra.d_width", NULL, 0, 0, NULL, 0},
    /* DAFormer's warm-up (1500 of 40k iterations); its ignored pseudo-label rows and MIC's
     * mask blocks are lengths in its 512-pixel crops. The source-only network's four ASPP
     * branches stay (DAFormer's head has two: dropping two would halve the start's logits) */
    {"mic", "model.multi_level=false", NULL, "solver.warmup_iters", 1500, 40000,
     "mic.ignore_top=15;mic.ignore_bottom=120;mic.mask_block=32", 512},
};
#define NDEMO_METHODS ((int)(sizeof demo_methods / sizeof demo_methods[0]))
#define DEMO_MAX_SEEDS 10

/* The paper's discriminator base width (ndf 64) on a ResNet of base 64, scaled to the tiny
 * model's base 8. */
enum { DEMO_D_WIDTH = 64 * 8 / 64 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct demo_result {
    const char *name;
    double      miou, seconds;
    int         rc;
};

static enum seg_status set(struct seg_config *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static enum seg_status set(struct seg_config *c, const char *fmt, ...)
{
    char kv[4200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(kv, sizeof kv, fmt, ap);
    va_end(ap);
    return seg_config_set(c, kv);
}

/* Grids (input | ground truth | prediction) for the first n val images. */
static enum seg_status write_grids(const char *weights, const char *target, const char *device,
                                   const char *outdir, int n)
{
    struct seg_backend *be = NULL;
    struct seg_model *m = NULL;
    struct seg_ag *ag = NULL;
    struct seg_dataset *ds = NULL;
    struct seg_dataset_opts o = {0};
    o.kind = SEG_DATASET_CITYSCAPES;
    o.root = target;
    o.split = "val";
    o.num_classes = 19;
    o.labels = true;
    o.max_items = n;
    enum seg_status st = seg_app_open_model(weights, device, &be, &m);
    if (!st) st = seg_ag_create(be, &ag);
    if (!st) st = seg_dataset_open(&o, &ds);
    for (int i = 0; !st && i < ds->n && i < n; i++) {
        struct seg_image im = {0}, lab = {0};
        st = seg_dataset_load(ds, i, &im, &lab);
        size_t px = (size_t)im.w * im.h;
        float *x = st ? NULL : malloc(3 * px * sizeof *x);
        int32_t *pred = st ? NULL : malloc(px * sizeof *pred), *gt = st ? NULL : malloc(px * sizeof *gt);
        if (!st && (!x || !pred || !gt))
            st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "out of host memory");
        if (!st) {
            for (int k = 0; k < 3; k++)
                for (size_t p = 0; p < px; p++)
                    x[k * px + p] = im.data[p * 3 + k];
            for (size_t p = 0; p < px; p++)
                gt[p] = lab.data[p];
            seg_data_normalize(x, 1, im.h, im.w, SEG_NORM_DEEPLAB);
            st = seg_predict_batch(m, ag, x, 1, im.h, im.w, im.h, im.w, false, pred, NULL);
        }
        char path[4400];
        snprintf(path, sizeof path, "%.4200s/grid_%d.png", outdir, i);
        if (!st) st = seg_grid_write(path, &im, gt, im.w, im.h, pred, im.w, im.h, 19);
        free(x);
        free(pred);
        free(gt);
        seg_image_free(&im);
        seg_image_free(&lab);
    }
    seg_dataset_close(ds);
    seg_ag_destroy(ag);
    seg_model_destroy(m);
    seg_backend_destroy(be);
    return st;
}

/* One training run: a baseline or a method, with one seed. */
struct demo_job {
    const char               *name, *method;
    const struct demo_method *m;        /* NULL for the baselines */
    bool                      oracle;
    int                       seed;
};

/* DIR/<name>/seed<k>: the run's folder. */
static void run_dir(char *out, size_t n, const char *dir, const struct demo_job *j)
{
    snprintf(out, n, "%.2000s/%.200s/seed%d", dir, j->name, j->seed);
}

/* DIR/<name>/seed<k>/demo_result.txt: "miou seconds", read back by --reuse and by the parent
 * of --jobs. */
static void write_result(const char *rdir, const struct demo_result *r)
{
    char path[4300];
    snprintf(path, sizeof path, "%.4200s/demo_result.txt", rdir);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%.6f %.3f\n", r->miou, r->seconds);
        fclose(f);
    }
}

static bool read_result(const char *rdir, const char *name, struct demo_result *r, bool say)
{
    char path[4300], weights[4300];
    snprintf(path, sizeof path, "%.4200s/demo_result.txt", rdir);
    snprintf(weights, sizeof weights, "%.4200s/final.safetensors", rdir);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fscanf(f, "%lf %lf", &r->miou, &r->seconds) == 2 && access(weights, R_OK) == 0;
    fclose(f);
    if (ok) {
        r->rc = 0;
        if (say)
            fprintf(stderr, "segda demo: %s: reusing %s (target mIoU %.2f)\n", name, rdir, 100 * r->miou);
    }
    return ok;
}

/* The settings every run shares, then the method's own. */
static enum seg_status demo_config(struct seg_config *c, const struct demo_job *j, const char *synth,
                                   const char *device, long iters, const char *init, const char *split, int w,
                                   int h, const char *out)
{
    enum seg_status st = set(c, "method.name=%s", j->method);
    if (!st) st = set(c, "model.arch=deeplabv2_tiny");
    if (!st) st = set(c, "model.init=%s", init ? init : "");
    if (!st) st = set(c, "data.source=%s", j->oracle ? "cityscapes" : "gta5");
    if (!st) st = set(c, "data.source_root=%s/%s", synth, j->oracle ? "target" : "source");
    if (!st) st = set(c, "data.target=cityscapes");
    if (!st) st = set(c, "data.target_root=%s/target", synth);
    if (!st) st = set(c, "data.val_split=%s", split);
    if (!st) st = set(c, "data.source_size=%dx%d", w, h);
    if (!st) st = set(c, "data.target_size=%dx%d", w, h);
    if (!st) st = set(c, "data.eval_size=%dx%d", w, h);
    if (!st) st = set(c, "data.batch=4");
    if (!st) st = set(c, "solver.iterations=%ld", iters);
    if (!st) st = set(c, "solver.lr=%s", "0.01");
    if (!st) st = set(c, "solver.head_lr_mult=1");
    if (!st) st = set(c, "model.bn=trainable");
    if (!st) st = set(c, "train.seed=%d", j->seed);
    const struct demo_method *m = j->m;
    for (const char *o = m ? m->model : ""; !st && *o;) {
        size_t len = strcspn(o, ";");
        st = set(c, "%.*s", (int)len, o);
        o += len + (o[len] == ';');
    }
    if (!st && m && m->d_width_key)
        st = set(c, "%s=%d", m->d_width_key, DEMO_D_WIDTH);
    if (!st && m && m->period_key) { /* the same share of the run as in the paper, at least 1 */
        long p = (long)llround((double)m->period * (double)iters / (double)m->paper_iters);
        st = set(c, "%s=%ld", m->period_key, p > 0 ? p : 1);
    }
    for (const char *o = m && m->pixel_keys ? m->pixel_keys : ""; !st && *o;) { /* the same share of the crop, >= 1 */
        size_t len = strcspn(o, ";"), eq = strcspn(o, "=");
        long v = strtol(o + eq + 1, NULL, 10), px = (long)llround((double)v * h / m->paper_crop);
        st = set(c, "%.*s=%ld", (int)eq, o, px > 0 ? px : 1);
        o += len + (o[len] == ';');
    }
    if (!st) st = set(c, "train.eval_every=%ld", iters);
    if (!st) st = set(c, "train.save_every=%ld", iters);
    if (!st) st = set(c, "train.log_every=%ld", iters / 10 > 0 ? iters / 10 : 1);
    if (!st) st = set(c, "train.device=%s", device);
    if (!st) st = set(c, "train.out=%s", out);
    return st;
}

struct demo_setup {
    const char *dir, *synth, *device, *split;
    long        iters;
    int         w, h;
};

static struct demo_result run_job(const struct demo_job *j, const struct demo_setup *d, bool reuse)
{
    struct demo_result r = {j->name, NAN, 0, SEG_EXIT_FAIL};
    char out[4300], init[4300];
    run_dir(out, sizeof out, d->dir, j);
    if (reuse && read_result(out, j->name, &r, true))
        return r;
    /* the methods start from the same seed's source-only weights */
    snprintf(init, sizeof init, "%.2000s/source_only/seed%d/final.safetensors", d->dir, j->seed);
    bool have_init = j->m && access(init, R_OK) == 0;
    struct seg_config c;
    enum seg_status st = seg_config_init(&c);
    if (!st) st = demo_config(&c, j, d->synth, d->device, d->iters, have_init ? init : NULL, d->split, d->w, d->h, out);
    if (st) {
        fprintf(stderr, "segda demo: %s\n", seg_last_error());
        seg_config_free(&c);
        return r;
    }
    fprintf(stderr, "segda demo: training %s, seed %d (%ld iterations)...\n", j->name, j->seed, d->iters);
    double t0 = now_s();
    r.rc = seg_train_run(&c, NULL, true, &r.miou, NULL);
    r.seconds = now_s() - t0;
    seg_config_free(&c);
    if (r.rc == 0)
        write_result(out, &r);
    char weights[4400], target[4200], grids[4300];
    snprintf(weights, sizeof weights, "%s/final.safetensors", out);
    snprintf(target, sizeof target, "%s/target", d->synth);
    snprintf(grids, sizeof grids, "%.2000s/%.200s", d->dir, j->name);
    if (r.rc == 0 && j->seed == 1 && write_grids(weights, target, d->device, grids, 4))
        fprintf(stderr, "segda demo: grids for %s: %s\n", j->name, seg_last_error());
    if (r.rc == 0)
        fprintf(stderr, "segda demo: %s, seed %d: target mIoU %.2f in %.0f s\n", j->name, j->seed, 100 * r.miou,
                r.seconds);
    else
        fprintf(stderr, "segda demo: %s, seed %d: %s after %.0f s (exit code %d)\n", j->name, j->seed,
                r.rc == SEG_EXIT_INTERRUPTED ? "interrupted" : "failed", r.seconds, r.rc);
    return r;
}

/* Runs jobs[0..n) at most `par` at a time, each in a child `segda demo --one NAME --seed-of-one K`
 * with one BLAS thread (two single-threaded trainings beat one two-threaded one on small GEMMs).
 * Results come back through the run folder's demo_result.txt. */
static void run_parallel(const struct demo_job *jobs, int n, int par, const struct demo_setup *d, bool reuse,
                         struct demo_result *res)
{
    extern char **environ;
    int nenv = 0;
    while (environ[nenv])
        nenv++;
    char **env = calloc((size_t)nenv + 3, sizeof *env);
    int k = 0;
    for (int i = 0; env && i < nenv; i++)
        if (strncmp(environ[i], "OPENBLAS_NUM_THREADS=", 21) && strncmp(environ[i], "OMP_NUM_THREADS=", 16))
            env[k++] = environ[i];
    if (env) {
        env[k++] = "OPENBLAS_NUM_THREADS=1";
        env[k++] = "OMP_NUM_THREADS=1";
    }
    pid_t pids[16];
    int slot_job[16], running = 0, next = 0;
    char its[32], size[32];
    snprintf(its, sizeof its, "%ld", d->iters);
    snprintf(size, sizeof size, "%dx%d", d->w, d->h);
    for (int i = 0; i < n; i++) {
        res[i] = (struct demo_result){jobs[i].name, NAN, 0, SEG_EXIT_FAIL};
        char rdir[4300];
        run_dir(rdir, sizeof rdir, d->dir, &jobs[i]);
        if (reuse && read_result(rdir, jobs[i].name, &res[i], true))
            res[i].name = jobs[i].name;
    }
    while ((next < n || running > 0) && env) {
        while (next < n && running < par) {
            int i = next++;
            if (res[i].rc == 0) /* reused */
                continue;
            char path[4400], rdir[4300], seed[16];
            run_dir(rdir, sizeof rdir, d->dir, &jobs[i]);
            snprintf(path, sizeof path, "%.4200s/demo_result.txt", rdir);
            unlink(path); /* a failed child must not leave an older result to be read */
            snprintf(seed, sizeof seed, "%d", jobs[i].seed);
            char *argv[] = {"segda", "demo", "--dir", (char *)d->dir, "--device", (char *)d->device, "--iters", its,
                            "--size", size, "--split", (char *)d->split, "--one", (char *)jobs[i].name,
                            "--seed-of-one", seed, NULL};
            pid_t pid;
            if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, env) != 0) {
                fprintf(stderr, "segda demo: cannot start a child for %s: %s\n", jobs[i].name, strerror(errno));
                continue;
            }
            pids[running] = pid;
            slot_job[running++] = i;
        }
        if (running == 0)
            break;
        int status = 0;
        pid_t done = wait(&status);
        for (int s = 0; s < running; s++)
            if (pids[s] == done) {
                int i = slot_job[s];
                char rdir[4300];
                run_dir(rdir, sizeof rdir, d->dir, &jobs[i]);
                if (!read_result(rdir, jobs[i].name, &res[i], false))
                    res[i].rc = WIFEXITED(status) && WEXITSTATUS(status) ? WEXITSTATUS(status) : SEG_EXIT_FAIL;
                if (res[i].rc == SEG_EXIT_INTERRUPTED || WIFSIGNALED(status))
                    next = n; /* interrupted: start nothing more, let the running ones finish */
                res[i].name = jobs[i].name;
                pids[s] = pids[running - 1];
                slot_job[s] = slot_job[--running];
                break;
            }
    }
    free(env);
}

/* One row of the table: a run's results over the seeds. */
struct demo_row {
    const char *name;
    double      miou[DEMO_MAX_SEEDS], mean, std, seconds;
    int         nseeds, rc;
};

static void row_stats(struct demo_row *r)
{
    double sum = 0, ss = 0;
    int n = 0;
    for (int k = 0; k < r->nseeds; k++)
        if (isfinite(r->miou[k])) {
            sum += r->miou[k];
            n++;
        }
    r->mean = n ? sum / n : NAN;
    for (int k = 0; k < r->nseeds; k++)
        if (isfinite(r->miou[k]))
            ss += (r->miou[k] - r->mean) * (r->miou[k] - r->mean);
    r->std = n > 1 ? sqrt(ss / (n - 1)) : (n == 1 ? 0 : NAN); /* sample standard deviation */
}

static void json_row(FILE *f, const struct demo_row *r)
{
    fprintf(f, "{\"miou\": %.4f, \"miou_std\": %.4f, \"miou_seeds\": [", r->mean, r->std);
    for (int k = 0; k < r->nseeds; k++)
        fprintf(f, isfinite(r->miou[k]) ? "%s%.4f" : "%snull", k ? ", " : "", r->miou[k]);
    fprintf(f, "], \"seconds\": %.1f}", r->seconds);
}

static bool write_json(const char *json, const char *spec, const char *name, const struct demo_setup *d,
                       int nseeds, const struct demo_row *rows, int nrows)
{
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%.4200s.tmp.%ld", json, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "segda demo: cannot write %s: %s\n", json, strerror(errno));
        return false;
    }
    fprintf(f, "{\"device\": \"%s\", \"device_name\": \"%s\", \"iterations\": %ld, \"seeds\": %d, \"split\": \"%s\",\n"
               " \"methods\": {", spec, name, d->iters, nseeds, d->split);
    for (int i = 0; i < nrows - 1; i++) {
        fprintf(f, "%s\"%s\": ", i ? ",\n  " : "", rows[i].name);
        json_row(f, &rows[i]);
    }
    fprintf(f, "},\n \"oracle\": ");
    json_row(f, &rows[nrows - 1]);
    fprintf(f, "}\n");
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, json)) {
        fprintf(stderr, "segda demo: cannot write %s: %s\n", json, strerror(errno));
        unlink(tmp);
        return false;
    }
    return true;
}

int seg_cmd_demo(int argc, char **argv)
{
    const char *dir = "demo", *device = "auto", *json = NULL, *split = "val";
    long iters = 200, nseeds = 3, seed_of_one = 1;
    int w = 128, h = 64;
    const char *size = NULL, *only = NULL, *one = NULL;
    bool reuse = false;
    long jobs = 0;
    const struct seg_arg args[] = {
        {"--dir", SEG_ARG_STR, &dir},     {"--device", SEG_ARG_STR, &device},
        {"--iters", SEG_ARG_LONG, &iters}, {"--json", SEG_ARG_STR, &json},
        {"--size", SEG_ARG_STR, &size},   {"--methods", SEG_ARG_STR, &only},
        {"--reuse", SEG_ARG_FLAG, &reuse}, {"--jobs", SEG_ARG_LONG, &jobs},
        {"--seeds", SEG_ARG_LONG, &nseeds}, {"--split", SEG_ARG_STR, &split},
        {"--one", SEG_ARG_STR, &one}, /* internal: the child of --jobs */
        {"--seed-of-one", SEG_ARG_LONG, &seed_of_one},
    };
    int rc = seg_args_parse("demo", argc, argv, args, (int)(sizeof args / sizeof args[0]), usage);
    if (rc >= 0)
        return rc;
    if (size && sscanf(size, "%dx%d", &w, &h) != 2) {
        fprintf(stderr, "segda demo: --size expects WxH\n");
        return SEG_EXIT_USAGE;
    }
    if (strcmp(split, "val") && strcmp(split, "dev")) {
        fprintf(stderr, "segda demo: --split must be val (reported) or dev (for tuning), not '%s'\n", split);
        return SEG_EXIT_USAGE;
    }
    if (nseeds < 1 || nseeds > DEMO_MAX_SEEDS) {
        fprintf(stderr, "segda demo: --seeds must be 1 to %d (got %ld)\n", DEMO_MAX_SEEDS, nseeds);
        return SEG_EXIT_USAGE;
    }
    bool run[NDEMO_METHODS];
    for (int i = 0; i < NDEMO_METHODS; i++)
        run[i] = !only;
    for (const char *o = only; o && *o;) {
        size_t len = strcspn(o, ",");
        int found = -1;
        for (int i = 0; i < NDEMO_METHODS; i++)
            if (strlen(demo_methods[i].name) == len && !strncmp(demo_methods[i].name, o, len))
                found = i;
        if (found < 0) {
            fprintf(stderr, "segda demo: --methods: unknown method '%.*s' (available:", (int)len, o);
            for (int i = 0; i < NDEMO_METHODS; i++)
                fprintf(stderr, " %s", demo_methods[i].name);
            fprintf(stderr, ")\n");
            return SEG_EXIT_USAGE;
        }
        run[found] = true;
        o += len + (o[len] == ',');
    }
    if (iters < 1) {
        fprintf(stderr, "segda demo: --iters must be positive\n");
        return SEG_EXIT_USAGE;
    }
    char synth[4200], marker[4300];
    snprintf(synth, sizeof synth, "%s/synth", dir);
    snprintf(marker, sizeof marker, "%s/target/dev.txt", synth);
    enum seg_status st = seg_dir_create(dir);
    if (!st && access(marker, F_OK) != 0) {
        fprintf(stderr, "segda demo: generating the synthetic benchmark in %s\n", synth);
        struct seg_synth_opts so;
        seg_synth_defaults(&so);
        so.out = synth;
        so.w = w;
        so.h = h;
        st = seg_synth_generate(&so);
    }
    struct seg_backend *be = NULL;
    if (!st) st = seg_app_backend_create(device, &be);
    char spec[64] = "", name[160] = "";
    if (!st) {
        snprintf(spec, sizeof spec, "%s", seg_backend_device(be)->spec);
        snprintf(name, sizeof name, "%s", seg_backend_device(be)->name);
        seg_backend_destroy(be);
    }
    if (st) {
        fprintf(stderr, "segda demo: %s\n", seg_last_error());
        return seg_exit_code(st);
    }
    const struct demo_setup d = {dir, synth, spec, split, iters, w, h};
    /* rows: source-only, the methods, the oracle; jobs: the baselines of every seed first (the
     * methods start from source-only), then the methods */
    struct demo_job row_job[NDEMO_METHODS + 2];
    int nrows = 0;
    row_job[nrows++] = (struct demo_job){"source_only", "source_only", NULL, false, 0};
    for (int i = 0; i < NDEMO_METHODS; i++)
        if (run[i] || one)
            row_job[nrows++] = (struct demo_job){demo_methods[i].name, demo_methods[i].name, &demo_methods[i], false, 0};
    row_job[nrows++] = (struct demo_job){"oracle", "source_only", NULL, true, 0};
    if (one) { /* a child of --jobs: this run alone */
        for (int i = 0; i < nrows; i++)
            if (!strcmp(row_job[i].name, one)) {
                struct demo_job j = row_job[i];
                j.seed = (int)seed_of_one;
                return run_job(&j, &d, false).rc;
            }
        fprintf(stderr, "segda demo: --one: unknown run '%s'\n", one);
        return SEG_EXIT_USAGE;
    }
    struct demo_job all[(NDEMO_METHODS + 2) * DEMO_MAX_SEEDS];
    int row_of[(NDEMO_METHODS + 2) * DEMO_MAX_SEEDS], nall = 0, nbase = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < nrows; i++)
            for (int k = 1; k <= nseeds; k++)
                if ((row_job[i].m != NULL) == (pass == 1)) {
                    all[nall] = row_job[i];
                    all[nall].seed = k;
                    row_of[nall++] = i;
                    nbase += pass == 0;
                }
    if (jobs <= 0)
        jobs = !strncmp(spec, "cpu", 3) ? 2 : 1;
    if (jobs > 16)
        jobs = 16;
    fprintf(stderr, "segda demo: device %s (%s), %d runs (%ld seed%s), %ld at a time\n", spec, name, nall, nseeds,
            nseeds > 1 ? "s" : "", jobs);
    struct demo_result got[(NDEMO_METHODS + 2) * DEMO_MAX_SEEDS];
    double t_start = now_s();
    for (int phase = 0; phase < 2; phase++) { /* baselines (reusable), then the methods */
        int lo = phase ? nbase : 0, hi = phase ? nall : nbase;
        bool ph_reuse = reuse && phase == 0;
        if (jobs > 1)
            run_parallel(all + lo, hi - lo, (int)jobs, &d, ph_reuse, got + lo);
        for (int i = lo; i < hi; i++) {
            if (jobs <= 1)
                got[i] = run_job(&all[i], &d, ph_reuse);
            if (got[i].rc == SEG_EXIT_INTERRUPTED) /* Ctrl-C / SIGTERM: the run saved its state */
                return SEG_EXIT_INTERRUPTED;
        }
    }
    struct demo_row rows[NDEMO_METHODS + 2];
    for (int i = 0; i < nrows; i++)
        rows[i] = (struct demo_row){.name = row_job[i].name, .nseeds = (int)nseeds};
    for (int i = 0; i < nall; i++) {
        struct demo_row *r = &rows[row_of[i]];
        r->miou[all[i].seed - 1] = got[i].rc == 0 ? got[i].miou : NAN;
        r->seconds += got[i].seconds;
        if (got[i].rc && !r->rc)
            r->rc = got[i].rc;
    }
    for (int i = 0; i < nrows; i++)
        row_stats(&rows[i]);
    printf("\n| method | target mIoU (19 classes), %s, mean +- std over %ld seed%s | vs source-only | seeds | "
           "seconds |\n|---|---|---|---|---|\n", split, nseeds, nseeds > 1 ? "s" : "");
    for (int i = 0; i < nrows; i++) {
        printf("| %s%s | %.2f +- %.2f | ", rows[i].name, i > 0 && i < nrows - 1 ? " (from source_only)" : "",
               100 * rows[i].mean, 100 * rows[i].std);
        if (i > 0)
            printf("%+.2f", 100 * (rows[i].mean - rows[0].mean));
        printf(" |");
        for (int k = 0; k < rows[i].nseeds; k++)
            printf(" %.2f", 100 * rows[i].miou[k]);
        printf(" | %.0f |\n", rows[i].seconds);
    }
    printf("\ndevice %s (%s), %ld run%s at a time: %.0f s in all; predictions: %s/<method>/grid_*.png\n", spec,
           name, jobs, jobs > 1 ? "s" : "", now_s() - t_start, dir);
    char json_default[4300];
    if (!json) {
        snprintf(json_default, sizeof json_default, "%.4200s/demo.json", dir);
        json = json_default;
    }
    bool json_ok = write_json(json, spec, name, &d, (int)nseeds, rows, nrows);
    char summary[4300];
    snprintf(summary, sizeof summary, "%.4200s/summary", dir);
    if (json_ok && seg_run_plot_demo(json, summary))
        fprintf(stderr, "segda demo: summary plot: %s\n", seg_last_error());
    for (int i = 0; i < nrows; i++)
        if (rows[i].rc)
            return rows[i].rc;
    return SEG_EXIT_OK;
}
