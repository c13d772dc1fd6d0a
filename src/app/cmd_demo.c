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
    fprintf(f, "usage: segda demo [--dir DIR] [--device D] [--iters N] [--json FILE] [--size WxH]\n"
               "                  [--methods A,B] [--reuse] [--jobs N]\n\n"
               "Generates the synthetic benchmark in DIR/synth if absent (segda synth), then trains the\n"
               "tiny DeepLab-v2 on it: source-only, each adaptation method starting from the source-only\n"
               "weights for the same number of iterations, and an oracle trained on target labels.\n"
               "Prints the target mIoU of each, writes DIR/<method>/ (checkpoints, metrics) and\n"
               "DIR/<method>/grid_*.png (input | ground truth | prediction). Defaults: DIR demo,\n"
               "device auto, N 300. --json FILE (default DIR/demo.json) writes {\"device\", \"methods\": {...},\n"
               "\"oracle\"}; DIR/summary.png (and .svg) shows it (tools/plot_demo.py; python3-matplotlib).\n"
               "--methods runs only the listed adaptation methods (default: all); --reuse keeps the\n"
               "source-only and oracle runs already in DIR instead of training them again. --jobs N\n"
               "trains N runs at a time in child processes (default: 2 on the cpu device, each with one\n"
               "BLAS thread; 1 on a GPU).\n");
}

/* The adaptation methods the demo runs, each from the source-only weights, with the
 * settings that fit the tiny model and the 128x64 benchmark ("key=value;key=value"). */
static const struct demo_method {
    const char *name;
    const char *overrides;
} demo_methods[] = {
    {"adaptsegnet", "adaptsegnet.d_width=16"},
    {"sdca", "sdca.tau=10"}, /* tiny model, 300 iterations: the released tau = 100 barely moves it */
    {"plca", "model.multi_level=false;plca.cass_weight=0.02"}, /* at 0.1 the tiny model's target outputs saturate */
    /* bida: 300 iterations: teacher rounds of 100, a ~10-step prototype EMA; CBST's spatial
     * prior on the static labels (the benchmark's classes swap colours between domains, so the
     * source-only teacher's confident mistakes are what the layout prior filters out) */
    {"bida", "bida.static_every=100;bida.ema=0.9;bida.spatial_prior=true"},
    /* pixintra: the paper's stage I (AdaptSegNet) runs in the first half, stage II from it, on
     * one poly schedule (restarting the LR at each of two 75-iteration rounds costs ~2.7 points) */
    {"pixintra", "pixintra.d_width=16;pixintra.inter_share=0.5;pixintra.alpha=0.7;pixintra.restart_lr=false"},
};
#define NDEMO_METHODS ((int)(sizeof demo_methods / sizeof demo_methods[0]))

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

/* DIR/<name>/demo_result.txt: "miou seconds", read back by --reuse. */
static void write_result(const char *dir, const char *name, const struct demo_result *r)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/%s/demo_result.txt", dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%.6f %.3f\n", r->miou, r->seconds);
        fclose(f);
    }
}

static bool read_result(const char *dir, const char *name, struct demo_result *r, bool say)
{
    char path[4300], weights[4300];
    snprintf(path, sizeof path, "%s/%s/demo_result.txt", dir, name);
    snprintf(weights, sizeof weights, "%s/%s/final.safetensors", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fscanf(f, "%lf %lf", &r->miou, &r->seconds) == 2 && access(weights, R_OK) == 0;
    fclose(f);
    if (ok) {
        r->rc = 0;
        if (say)
            fprintf(stderr, "segda demo: %s: reusing %s/%s (target mIoU %.2f)\n", name, dir, name, 100 * r->miou);
    }
    return ok;
}

static struct demo_result run_one(const char *name, const char *method, const char *overrides,
                                  const char *dir, const char *synth, const char *device, long iters,
                                  const char *init, bool oracle, int w, int h, bool reuse)
{
    struct demo_result r = {name, NAN, 0, SEG_EXIT_FAIL};
    if (reuse && read_result(dir, name, &r, true))
        return r;
    struct seg_config c;
    char out[4200];
    snprintf(out, sizeof out, "%s/%s", dir, name);
    enum seg_status st = seg_config_init(&c);
    if (!st) st = set(&c, "method.name=%s", method);
    if (!st) st = set(&c, "model.arch=deeplabv2_tiny");
    if (!st) st = set(&c, "model.init=%s", init ? init : "");
    if (!st) st = set(&c, "data.source=%s", oracle ? "cityscapes" : "gta5");
    if (!st) st = set(&c, "data.source_root=%s/%s", synth, oracle ? "target" : "source");
    if (!st) st = set(&c, "data.target=cityscapes");
    if (!st) st = set(&c, "data.target_root=%s/target", synth);
    if (!st) st = set(&c, "data.source_size=%dx%d", w, h);
    if (!st) st = set(&c, "data.target_size=%dx%d", w, h);
    if (!st) st = set(&c, "data.eval_size=%dx%d", w, h);
    if (!st) st = set(&c, "data.batch=4");
    if (!st) st = set(&c, "solver.iterations=%ld", iters);
    if (!st) st = set(&c, "solver.lr=%s", "0.01");
    if (!st) st = set(&c, "solver.head_lr_mult=1");
    if (!st) st = set(&c, "model.bn=trainable");
    for (const char *o = overrides ? overrides : ""; !st && *o;) {
        size_t len = strcspn(o, ";");
        st = set(&c, "%.*s", (int)len, o);
        o += len + (o[len] == ';');
    }
    if (!st) st = set(&c, "train.eval_every=%ld", iters);
    if (!st) st = set(&c, "train.save_every=%ld", iters);
    if (!st) st = set(&c, "train.log_every=%ld", iters / 10 > 0 ? iters / 10 : 1);
    if (!st) st = set(&c, "train.device=%s", device);
    if (!st) st = set(&c, "train.out=%s", out);
    if (st) {
        fprintf(stderr, "segda demo: %s\n", seg_last_error());
        seg_config_free(&c);
        return r;
    }
    fprintf(stderr, "segda demo: training %s (%ld iterations)...\n", name, iters);
    double t0 = now_s();
    r.rc = seg_train_run(&c, NULL, true, &r.miou, NULL);
    r.seconds = now_s() - t0;
    seg_config_free(&c);
    if (r.rc == 0)
        write_result(dir, name, &r);
    char weights[4300];
    snprintf(weights, sizeof weights, "%s/final.safetensors", out);
    char target[4200];
    snprintf(target, sizeof target, "%s/target", synth);
    if (r.rc == 0 && write_grids(weights, target, device, out, 4))
        fprintf(stderr, "segda demo: grids for %s: %s\n", name, seg_last_error());
    if (r.rc == 0)
        fprintf(stderr, "segda demo: %s: target mIoU %.2f in %.0f s\n", name, 100 * r.miou, r.seconds);
    else
        fprintf(stderr, "segda demo: %s: %s after %.0f s (exit code %d)\n", name,
                r.rc == SEG_EXIT_INTERRUPTED ? "interrupted" : "failed", r.seconds, r.rc);
    return r;
}

/* One run of the demo: the two baselines and each adaptation method. */
struct demo_job {
    const char *name, *method, *overrides;
    bool        oracle, from_source_only;
};

static struct demo_result run_job(const struct demo_job *j, const char *dir, const char *synth, const char *device,
                                  long iters, int w, int h, bool reuse)
{
    char init[4300];
    snprintf(init, sizeof init, "%s/source_only/final.safetensors", dir);
    bool have_init = j->from_source_only && access(init, R_OK) == 0;
    return run_one(j->name, j->method, j->overrides, dir, synth, device, iters, have_init ? init : NULL, j->oracle,
                   w, h, reuse);
}

/* Runs jobs[0..n) at most `par` at a time, each in a child `segda demo --one NAME` with one
 * BLAS thread (two single-threaded trainings beat one two-threaded one on small GEMMs).
 * Results come back through DIR/<name>/demo_result.txt. */
static void run_parallel(const struct demo_job *jobs, int n, int par, const char *dir, const char *device,
                         long iters, int w, int h, bool reuse, struct demo_result *res)
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
    snprintf(its, sizeof its, "%ld", iters);
    snprintf(size, sizeof size, "%dx%d", w, h);
    for (int i = 0; i < n; i++) {
        res[i] = (struct demo_result){jobs[i].name, NAN, 0, SEG_EXIT_FAIL};
        if (reuse && !jobs[i].from_source_only && read_result(dir, jobs[i].name, &res[i], true))
            res[i].name = jobs[i].name;
    }
    while ((next < n || running > 0) && env) {
        while (next < n && running < par) {
            int i = next++;
            if (res[i].rc == 0) /* reused */
                continue;
            char path[4300];
            snprintf(path, sizeof path, "%s/%s/demo_result.txt", dir, jobs[i].name);
            unlink(path); /* a failed child must not leave an older result to be read */
            char *argv[] = {"segda", "demo", "--dir", (char *)dir, "--device", (char *)device, "--iters", its,
                            "--size", size, "--one", (char *)jobs[i].name, NULL};
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
                if (!read_result(dir, jobs[i].name, &res[i], false))
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

int seg_cmd_demo(int argc, char **argv)
{
    const char *dir = "demo", *device = "auto", *json = NULL;
    long iters = 300;
    int w = 128, h = 64;
    const char *size = NULL, *only = NULL, *one = NULL;
    bool reuse = false;
    long jobs = 0;
    const struct seg_arg args[] = {
        {"--dir", SEG_ARG_STR, &dir},     {"--device", SEG_ARG_STR, &device},
        {"--iters", SEG_ARG_LONG, &iters}, {"--json", SEG_ARG_STR, &json},
        {"--size", SEG_ARG_STR, &size},   {"--methods", SEG_ARG_STR, &only},
        {"--reuse", SEG_ARG_FLAG, &reuse}, {"--jobs", SEG_ARG_LONG, &jobs},
        {"--one", SEG_ARG_STR, &one}, /* internal: the child of --jobs */
    };
    int rc = seg_args_parse("demo", argc, argv, args, (int)(sizeof args / sizeof args[0]), usage);
    if (rc >= 0)
        return rc;
    if (size && sscanf(size, "%dx%d", &w, &h) != 2) {
        fprintf(stderr, "segda demo: --size expects WxH\n");
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
    snprintf(marker, sizeof marker, "%s/target/val.txt", synth);
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
    /* the runs: source-only first (the methods start from it), the oracle, then the methods */
    struct demo_job all[NDEMO_METHODS + 2];
    int nall = 0;
    all[nall++] = (struct demo_job){"source_only", "source_only", NULL, false, false};
    all[nall++] = (struct demo_job){"oracle", "source_only", NULL, true, false};
    for (int i = 0; i < NDEMO_METHODS; i++)
        if (run[i] || one)
            all[nall++] = (struct demo_job){demo_methods[i].name, demo_methods[i].name, demo_methods[i].overrides,
                                            false, true};
    if (one) { /* a child of --jobs: this run alone */
        for (int i = 0; i < nall; i++)
            if (!strcmp(all[i].name, one))
                return run_job(&all[i], dir, synth, spec, iters, w, h, false).rc;
        fprintf(stderr, "segda demo: --one: unknown run '%s'\n", one);
        return SEG_EXIT_USAGE;
    }
    if (jobs <= 0)
        jobs = !strncmp(spec, "cpu", 3) ? 2 : 1;
    if (jobs > 16)
        jobs = 16;
    fprintf(stderr, "segda demo: device %s (%s), %ld run%s at a time\n", spec, name, jobs, jobs > 1 ? "s" : "");
    struct demo_result got[NDEMO_METHODS + 2];
    double t_start = now_s();
    if (jobs > 1) {
        run_parallel(all, 2, (int)jobs, dir, spec, iters, w, h, reuse, got);
        if (got[0].rc == SEG_EXIT_INTERRUPTED || got[1].rc == SEG_EXIT_INTERRUPTED)
            return SEG_EXIT_INTERRUPTED;
        run_parallel(all + 2, nall - 2, (int)jobs, dir, spec, iters, w, h, false, got + 2);
        for (int i = 2; i < nall; i++)
            if (got[i].rc == SEG_EXIT_INTERRUPTED)
                return SEG_EXIT_INTERRUPTED;
    } else {
        for (int i = 0; i < nall; i++) {
            got[i] = run_job(&all[i], dir, synth, spec, iters, w, h, reuse && !all[i].from_source_only);
            if (got[i].rc == SEG_EXIT_INTERRUPTED) /* Ctrl-C / SIGTERM: the run saved its state */
                return SEG_EXIT_INTERRUPTED;
        }
    }
    /* the table: source-only, the methods, the oracle */
    struct demo_result res[NDEMO_METHODS + 2];
    int nres = 0;
    res[nres++] = got[0];
    for (int i = 2; i < nall; i++)
        res[nres++] = got[i];
    res[nres++] = got[1];
    printf("\n| method | target mIoU (19 classes) | vs source-only | seconds |\n|---|---|---|---|\n");
    for (int i = 0; i < nres; i++)
        printf("| %s%s | %.2f | %+.2f | %.0f |\n", res[i].name,
               i > 0 && i < nres - 1 ? " (from source_only)" : "", 100 * res[i].miou,
               100 * (res[i].miou - res[0].miou), res[i].seconds);
    printf("\ndevice %s (%s), %ld run%s at a time: %.0f s in all; predictions: %s/<method>/grid_*.png\n", spec,
           name, jobs, jobs > 1 ? "s" : "", now_s() - t_start, dir);
    char json_default[4300];
    if (!json) {
        snprintf(json_default, sizeof json_default, "%.4200s/demo.json", dir);
        json = json_default;
    }
    bool json_ok = false;
    {
        char tmp[4300];
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", json, (long)getpid());
        FILE *f = fopen(tmp, "w");
        if (f) {
            fprintf(f, "{\"device\": \"%s\", \"device_name\": \"%s\", \"iterations\": %ld,\n \"methods\": {", spec, name, iters);
            for (int i = 0; i < nres - 1; i++)
                fprintf(f, "%s\"%s\": {\"miou\": %.4f, \"seconds\": %.1f}", i ? ", " : "", res[i].name,
                        res[i].miou, res[i].seconds);
            fprintf(f, "},\n \"oracle\": {\"miou\": %.4f, \"seconds\": %.1f}}\n", res[nres - 1].miou,
                    res[nres - 1].seconds);
            bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
            ok = fclose(f) == 0 && ok;
            if (!ok || rename(tmp, json)) {
                fprintf(stderr, "segda demo: cannot write %s: %s\n", json, strerror(errno));
                unlink(tmp);
            } else {
                json_ok = true;
            }
        } else {
            fprintf(stderr, "segda demo: cannot write %s: %s\n", json, strerror(errno));
        }
    }
    char summary[4300];
    snprintf(summary, sizeof summary, "%.4200s/summary", dir);
    if (json_ok && seg_run_plot_demo(json, summary))
        fprintf(stderr, "segda demo: summary plot: %s\n", seg_last_error());
    for (int i = 0; i < nres; i++)
        if (res[i].rc)
            return res[i].rc;
    return SEG_EXIT_OK;
}
