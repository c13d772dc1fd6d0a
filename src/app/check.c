/* check.c: what `segda train --check` verifies, and the part of it that the start of train,
 * eval and pseudo-label repeats, before any long work: every file and folder the
 * configuration names, the first sample of each dataset, the device, and a rough memory
 * estimate of one training step. Each problem is one line naming the key and the path;
 * the exit code says its kind (2 a value, 3 the device, 4 a file or its data). Also the
 * clean-up of temporaries that a killed run left in its folder. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/app.h"
#include "app/data_setup.h"
#include "train/trainer.h"

struct problems {
    const char *cmd;
    int         n;
    int         code; /* the exit code: the first of 2, 3, 4 met in that order of precedence */
    char        last_value[512]; /* the last bad value named (each role's dataset meets it again) */
};

static void problem(struct problems *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void problem(struct problems *p, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "segda %s: ", p->cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    p->n++;
    /* a wrong value is fixed first, then the device, then the files */
    if (!p->code || code < p->code)
        p->code = code;
}

static int status_code(enum seg_status st)
{
    int c = seg_exit_code(st);
    return c == SEG_EXIT_FAIL ? SEG_EXIT_BAD_INPUT : c;
}

/* One path key: present (when set or required), of the right kind, readable. */
static bool check_path(struct problems *p, const struct seg_config *cfg, const char *key, bool folder, bool required)
{
    const char *path = seg_config_str(cfg, key);
    if (!path[0]) {
        if (required)
            problem(p, SEG_EXIT_USAGE, "%s is empty: it must name a %s", key, folder ? "folder" : "file");
        return !required;
    }
    struct stat sb;
    if (stat(path, &sb) != 0) {
        problem(p, SEG_EXIT_BAD_INPUT, "%s = %s: %s", key, path,
                errno == ENOENT ? (folder ? "no such folder" : "no such file") : strerror(errno));
        return false;
    }
    if (folder != !!S_ISDIR(sb.st_mode)) {
        problem(p, SEG_EXIT_BAD_INPUT, "%s = %s: not a %s", key, path, folder ? "folder" : "file");
        return false;
    }
    if (access(path, folder ? R_OK | X_OK : R_OK) != 0) {
        problem(p, SEG_EXIT_BAD_INPUT, "%s = %s: not readable: %s", key, path, strerror(errno));
        return false;
    }
    return true;
}

/* The dataset of a role opens and its first sample decodes with labels of its size and ids. */
static void check_dataset(struct problems *p, const struct seg_config *cfg, enum seg_domain_role role)
{
    static const char *const what[] = {"source", "target", "target validation", "target"};
    const char *key = role == SEG_ROLE_SOURCE ? "data.source_root" : "data.target_root";
    struct seg_dataset *ds = NULL;
    enum seg_status st = seg_domain_dataset(cfg, role, &ds);
    if (st == SEG_STATUS_INVALID) { /* a value, not a file: once */
        if (strcmp(p->last_value, seg_last_error())) {
            snprintf(p->last_value, sizeof p->last_value, "%s", seg_last_error());
            problem(p, SEG_EXIT_USAGE, "%s", p->last_value);
        }
        return;
    }
    if (st) {
        problem(p, status_code(st), "%s = %s (%s set): %s", key, seg_config_str(cfg, key), what[role],
                seg_last_error());
        return;
    }
    /* with data.skip_bad a bad sample is skipped: the first good one of the first few will do */
    int tries = ds->skip_bad ? (ds->n < 8 ? ds->n : 8) : 1;
    for (int i = 0; i < tries; i++) {
        struct seg_image im = {0}, lab = {0};
        st = seg_dataset_load(ds, i, &im, ds->has_labels ? &lab : NULL);
        seg_image_free(&im);
        seg_image_free(&lab);
        if (!st)
            break;
        if (i + 1 < tries)
            fprintf(stderr, "segda %s: %s set, sample %d will be skipped (data.skip_bad): %s\n", p->cmd, what[role],
                    i, seg_last_error());
    }
    if (st)
        problem(p, status_code(st), "%s = %s (%s set): %s: %s", key, seg_config_str(cfg, key), what[role],
                tries > 1 ? "no good sample among the first" : "first sample", seg_last_error());
    seg_dataset_close(ds);
}

static void paths_and_data(struct problems *pp, const struct seg_config *cfg, const struct seg_check *o)
{
    struct problems p = *pp;
    if (o->init)
        check_path(&p, cfg, "model.init", false, false);
    bool src_ok = true, tgt_ok = true;
    if (o->source) {
        src_ok = check_path(&p, cfg, "data.source_root", true, true);
        src_ok &= check_path(&p, cfg, "data.source_list", false, false);
        src_ok &= check_path(&p, cfg, "data.source_labels", true, false);
    }
    if (o->target || o->val || o->target_pass) {
        tgt_ok = check_path(&p, cfg, "data.target_root", true, true);
        if (o->target || o->target_pass)
            tgt_ok &= check_path(&p, cfg, o->target ? "data.target_list" : "data.val_list", false, false);
        if (o->target)
            tgt_ok &= check_path(&p, cfg, "data.target_labels", true, false);
    }
    bool val_ok = tgt_ok && (!o->val || check_path(&p, cfg, "data.val_list", false, false));
    const char *method = seg_config_str(cfg, "method.name");
    if (o->init && !strcmp(method, "bida") && !strcmp(seg_config_str(cfg, "bida.stage"), "distill"))
        check_path(&p, cfg, "bida.distill_teacher", false, true);
    if (o->init && !strcmp(method, "pixintra"))
        check_path(&p, cfg, "pixintra.inter_weights", false, false);
    /* the data only where its files are there (each missing one is already named) */
    if (o->source && src_ok)
        check_dataset(&p, cfg, SEG_ROLE_SOURCE);
    if (o->target && tgt_ok)
        check_dataset(&p, cfg, SEG_ROLE_TARGET);
    if (o->target_pass && tgt_ok)
        check_dataset(&p, cfg, SEG_ROLE_TARGET_PASS);
    if (o->val && val_ok)
        check_dataset(&p, cfg, SEG_ROLE_VAL);
    *pp = p;
}

int seg_check_run(const struct seg_config *cfg, const struct seg_check *o)
{
    struct problems p = {o->cmd, 0, 0, ""};
    paths_and_data(&p, cfg, o);
    if (p.n)
        fprintf(stderr, "segda %s: %d problem%s with the configuration's files (exit %d; segda train --check "
                        "checks everything)\n", o->cmd, p.n, p.n == 1 ? "" : "s", p.code);
    return p.code;
}

/* The roles a training run reads: the source, the target (adaptation methods) and the
 * validation set (when it evaluates). */
void seg_check_for_training(const struct seg_config *cfg, struct seg_check *o)
{
    long eval_every = 0;
    seg_config_int(cfg, "train.eval_every", &eval_every);
    memset(o, 0, sizeof *o);
    o->cmd = "train";
    o->init = true;
    o->source = true;
    o->target = strcmp(seg_config_str(cfg, "method.name"), "source_only") != 0;
    o->val = eval_every > 0;
}

static double gib(double bytes) { return bytes / (1024.0 * 1024.0 * 1024.0); }

/* Parameters, gradients and optimizer state of a model: exact. */
static double model_bytes(const struct seg_model *m, const struct seg_optim *opt)
{
    double all = (double)seg_model_num_params(m, false), train = (double)seg_model_num_params(m, true);
    int states = !opt ? 0 : opt->cfg.kind == SEG_OPTIM_ADAM ? 2 : opt->cfg.momentum != 0.0f ? 1 : 0;
    return 4.0 * (all + train * (1 + states));
}

/* The training input size of a role: the crop when there is one, else the resize. */
static enum seg_status train_size(const struct seg_config *cfg, bool src, int *w, int *h)
{
    if (seg_config_str(cfg, "data.crop")[0])
        return seg_config_size(cfg, "data.crop", w, h);
    return seg_config_size(cfg, src ? "data.source_size" : "data.target_size", w, h);
}

/* Activation bytes of one training forward of the segmentation model on one image of w x h:
 * measured on t's backend at a reduced size (about 128x128 pixels) and scaled by the pixel
 * count, which convolutions' activations follow. */
static enum seg_status activation_bytes(struct seg_trainer *t, int w, int h, double *out)
{
    double f = fmax(1.0, sqrt((double)w * h / (128.0 * 128.0)));
    int mw = (int)fmax(33, w / f), mh = (int)fmax(33, h / f);
    float *img = calloc((size_t)3 * mw * mh, sizeof *img);
    if (!img)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "check: out of host memory");
    struct seg_batch b = {1, mh, mw, img, NULL};
    struct seg_var *x = NULL;
    struct seg_model_out mo = {0};
    seg_backend_mem_peak_reset(t->be);
    size_t before = seg_backend_mem_in_use(t->be);
    enum seg_status st = seg_batch_upload(t, &b, &x, NULL);
    if (!st) st = seg_model_forward_source(t->ag, t->model, x, true, &mo);
    if (!st) st = seg_backend_sync(t->be);
    size_t peak = seg_backend_mem_peak(t->be);
    seg_ag_reset(t->ag);
    free(img);
    *out = (double)(peak - before) * ((double)w * h / ((double)mw * mh));
    return st;
}

static void memory(struct problems *p, struct seg_trainer *t, const struct seg_device_info *dev)
{
    const struct seg_config *cfg = &t->cfg;
    int sw, sh, tw, th;
    long batch;
    enum seg_status st = seg_config_int(cfg, "data.batch", &batch);
    if (!st) st = train_size(cfg, true, &sw, &sh);
    if (!st) st = train_size(cfg, false, &tw, &th);
    double fixed = model_bytes(t->model, t->opt), act_src = 0, act_tgt = 0;
    for (int i = 0; i < t->naux; i++)
        fixed += model_bytes(t->aux[i], t->aux_opt[i]);
    if (!st) st = activation_bytes(t, sw, sh, &act_src);
    bool adapt = strcmp(t->method->name, "source_only") != 0;
    if (!st && adapt) st = activation_bytes(t, tw, th, &act_tgt);
    if (st) {
        problem(p, SEG_EXIT_FAIL, "memory estimate: %s", seg_last_error());
        return;
    }
    double total = fixed + (double)batch * (act_src + act_tgt);
    printf("memory (rough estimate): %.2f GiB a step = weights, gradients and optimizer state %.2f GiB (exact) + "
           "activations %.2f GiB (one training forward measured at a reduced size on the cpu, scaled by pixels, "
           "x %ld image%s x %s); backward temporaries, the full-resolution loss, the discriminators' activations and "
           "method buffers are not counted\n",
           gib(total), gib(fixed), gib((double)batch * (act_src + act_tgt)), batch, batch == 1 ? "" : "s",
           adapt ? "source and target" : "source");
    if (dev->memory_bytes) {
        printf("device %s (%s): %.2f GiB\n", dev->spec, dev->name, gib((double)dev->memory_bytes));
        if (total > (double)dev->memory_bytes)
            problem(p, SEG_EXIT_USAGE,
                    "memory: a step needs about %.2f GiB (rough estimate), more than %s's %.2f GiB: lower data.batch "
                    "or the training sizes (data.source_size, data.target_size, data.crop)",
                    gib(total), dev->spec, gib((double)dev->memory_bytes));
    }
}

/* A temporary of seg_st_save / seg_file_write_atomic: NAME.tmp.PID. */
static bool tmp_pid(const char *name, long *pid)
{
    const char *t = strstr(name, ".tmp.");
    if (!t || t == name)
        return false;
    char *end;
    *pid = strtol(t + 5, &end, 10);
    return *pid > 0 && end != t + 5 && !*end;
}

void seg_clean_stale_temporaries(const char *cmd, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    long self = (long)getpid();
    for (struct dirent *e; (e = readdir(d));) {
        long pid;
        if (!tmp_pid(e->d_name, &pid) || pid == self)
            continue;
        /* a process of that id still running may be another run writing here: leave it */
        if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
            continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0)
            fprintf(stderr, "segda %s: removed %s, a temporary left by process %ld (no longer running)\n", cmd, path,
                    pid);
        else
            fprintf(stderr, "segda %s: cannot remove the stale temporary %s: %s\n", cmd, path, strerror(errno));
    }
    closedir(d);
}

int seg_train_check(struct seg_config *cfg, const char *name, bool full)
{
    name = name ? name : "defaults";
    struct problems p = {"train", 0, 0, ""};
    struct seg_check o;
    seg_check_for_training(cfg, &o);
    if (full)
        paths_and_data(&p, cfg, &o);
    /* the models on the cpu: every key's value and the initial weights when they are there */
    struct seg_backend *be = NULL, *dev = NULL;
    struct seg_trainer *t = NULL;
    const char *init = seg_config_str(cfg, "model.init");
    struct stat sb;
    enum seg_status st = SEG_STATUS_OK;
    if (!full || !init[0] || stat(init, &sb) != 0 || access(init, R_OK) != 0)
        st = seg_config_set(cfg, "model.init="); /* (a missing file is named above) */
    if (!st) st = seg_source_sampling_config(cfg, NULL);
    if (!st) st = seg_backend_create("cpu", &be);
    if (!st) st = seg_trainer_create(cfg, be, &t);
    if (st)
        problem(&p, status_code(st) == SEG_EXIT_BAD_INPUT ? SEG_EXIT_BAD_INPUT : SEG_EXIT_USAGE, "%s: %s", name,
                seg_last_error());
    if (full) {
        const char *spec = seg_config_str(cfg, "train.device");
        if (seg_app_backend_create(spec, &dev))
            problem(&p, SEG_EXIT_NO_DEVICE, "train.device = %s: %s", spec, seg_last_error());
    }
    if (full && t && dev)
        memory(&p, t, seg_backend_device(dev));
    if (!p.n)
        printf("%s: ok (%s, %s, %lld trainable parameters%s)\n", name, t->method->name,
               seg_arch_name(t->model->cfg.arch), (long long)seg_model_num_params(t->model, true),
               full ? "; files, first samples and device checked" : "; files and data not checked (--check does)");
    else
        fprintf(stderr, "segda train: %s: %d problem%s (exit %d)\n", name, p.n, p.n == 1 ? "" : "s", p.code);
    seg_trainer_destroy(t);
    seg_backend_destroy(be);
    seg_backend_destroy(dev);
    return p.n ? p.code : SEG_EXIT_OK;
}
