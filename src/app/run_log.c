/* run_log.c: OUT/run.json and the TensorBoard events of a training run (run_log.h). */
#include <errno.h>
#include <inttypes.h>
#include <spawn.h>
#include <sys/wait.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "app/data_setup.h"
#include "app/run_log.h"
#include "model/autograd.h"
#include "segda_version.h" /* generated at configure time: SEGDA_VERSION, SEGDA_GIT_COMMIT */
#include "train/evaluate.h"
#include "train/tb_events.h"

const char *seg_version_string(void) { return SEGDA_VERSION " (git " SEGDA_GIT_COMMIT ")"; }

/* A growing string. */
struct text {
    char  *p;
    size_t n, cap;
    bool   oom;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
    for (int tries = 0; !t->oom && tries < 2; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(t->p ? t->p + t->n : NULL, t->p ? t->cap - t->n : 0, fmt, ap);
        va_end(ap);
        if (m < 0) {
            t->oom = true;
            return;
        }
        if (t->p && t->n + (size_t)m < t->cap) {
            t->n += (size_t)m;
            return;
        }
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->n + (size_t)m + 1)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->oom = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
}

/* s as a JSON string literal. */
static void put_json_str(struct text *t, const char *s)
{
    put(t, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            put(t, "\\%c", *c);
        else if (*c == '\n')
            put(t, "\\n");
        else if (*c == '\t')
            put(t, "\\t");
        else if (*c < 0x20)
            put(t, "\\u%04x", *c);
        else
            put(t, "%c", *c);
    }
    put(t, "\"");
}

/* s quoted for a POSIX shell when it needs it, so the line can be pasted back. */
static void put_shell_word(struct text *t, const char *s)
{
    bool plain = s[0] != '\0';
    for (const char *c = s; *c && plain; c++)
        plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./=:,+-@%", *c) != NULL;
    if (plain) {
        put(t, "%s", s);
        return;
    }
    put(t, "'");
    for (const char *c = s; *c; c++)
        if (*c == '\'')
            put(t, "'\\''");
        else
            put(t, "%c", *c);
    put(t, "'");
}

/* The process's own command line (Linux: /proc/self/cmdline, NUL-separated), as a JSON
 * array in argv and a shell line in line; neither is touched when it cannot be read. */
static void command_line(struct text *argv, struct text *line)
{
    /* a /proc file has no size to stat: read it in blocks */
    FILE *f = fopen("/proc/self/cmdline", "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    while (f && n < (1u << 20)) {
        if (n == cap) {
            char *p = realloc(buf, cap = cap ? 2 * cap : 4096);
            if (!p)
                break;
            buf = p;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (!got)
            break;
    }
    if (f)
        fclose(f);
    if (!n || n == cap) { /* unreadable, or too long to keep whole */
        free(buf);
        return;
    }
    put(argv, "[");
    for (size_t i = 0, k = 0; i < n; k++) {
        const char *a = buf + i;
        size_t len = strnlen(a, n - i);
        char *word = strndup(a, len);
        if (!word)
            break;
        put(argv, "%s", k ? ", " : "");
        put_json_str(argv, word);
        if (k)
            put(line, " ");
        put_shell_word(line, word);
        free(word);
        i += len + 1;
    }
    put(argv, "]");
    free(buf);
}

static uint64_t fnv1a64(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void iso_utc(char *buf, size_t n)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* run.json: the start fields, then the end ones (end == NULL: still running). */
static enum seg_status write_run_json(const struct seg_run_log *l, const char *end, int exit_code, int64_t iter)
{
    struct text t = {0};
    put(&t, "{\n%s", l->fields);
    if (!end) {
        put(&t, ",\n  \"end_time\": null,\n  \"end_iteration\": null,\n  \"exit_code\": null,\n"
                "  \"status\": \"running\"\n}\n");
    } else {
        const char *status = exit_code == SEG_EXIT_OK            ? "completed"
                             : exit_code == SEG_EXIT_INTERRUPTED ? "interrupted"
                             : exit_code == SEG_EXIT_DIVERGED    ? "diverged"
                                                                 : "failed";
        put(&t, ",\n  \"end_time\": \"%s\",\n  \"end_iteration\": %" PRId64 ",\n  \"exit_code\": %d,\n"
                "  \"status\": \"%s\"\n}\n", end, iter, exit_code, status);
    }
    enum seg_status st = t.oom ? seg_error(SEG_STATUS_OUT_OF_MEMORY, "%s: out of host memory", l->path)
                               : seg_file_write_atomic(l->path, t.p, t.n);
    free(t.p);
    return st;
}

enum seg_status seg_run_log_start(struct seg_run_log *l, const struct seg_trainer *t, const struct seg_backend *be,
                                  int nranks)
{
    memset(l, 0, sizeof *l);
    const char *out = seg_config_str(&t->cfg, "train.out");
    char path[4200];
    snprintf(path, sizeof path, "%.4000s/config.ini", out);
    snprintf(l->path, sizeof l->path, "%.4000s/run.json", out);
    uint8_t *ini = NULL;
    size_t ini_n = 0;
    long seed = 0;
    bool tensorboard = true;
    enum seg_status st = seg_file_read(path, 16 << 20, &ini, &ini_n);
    if (!st) st = seg_config_int(&t->cfg, "train.seed", &seed);
    if (!st) st = seg_config_bool(&t->cfg, "train.tensorboard", &tensorboard);
    if (!st && tensorboard) st = seg_tb_open(out, &l->tb);
    if (!st && t->iter > 0) st = seg_tb_session_start(l->tb, t->iter + 1); /* resumed */
    if (st) {
        free(ini);
        seg_tb_close(l->tb);
        l->tb = NULL;
        return st;
    }
    char host[256] = "unknown", start[32];
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    iso_utc(start, sizeof start);
    const struct seg_device_info *dev = seg_backend_device(be);
    struct text f = {0}, argv = {0}, line = {0};
    command_line(&argv, &line);
    put(&f, "  \"segda_version\": \"%s\",\n  \"git_commit\": \"%s\",\n  \"command_line\": ", SEGDA_VERSION,
        SEGDA_GIT_COMMIT);
    put_json_str(&f, line.p ? line.p : "unknown");
    put(&f, ",\n  \"argv\": %s,\n  \"method\": ", argv.p ? argv.p : "[]");
    put_json_str(&f, t->method->name);
    put(&f, ",\n  \"backend\": ");
    put_json_str(&f, dev->backend);
    put(&f, ",\n  \"device\": ");
    put_json_str(&f, dev->spec);
    put(&f, ",\n  \"device_name\": ");
    put_json_str(&f, dev->name);
    put(&f, ",\n  \"driver\": ");
    put_json_str(&f, dev->driver);
    /* every tensor the trainer computes with is F32 */
    put(&f, ",\n  \"precision\": \"fp32\",\n  \"ranks\": %d,\n  \"config\": \"config.ini\",\n"
            "  \"config_fnv1a64\": \"%016" PRIx64 "\",\n  \"seed\": %ld,\n  \"host\": ",
        nranks, fnv1a64(ini, ini_n), seed);
    put_json_str(&f, host);
    put(&f, ",\n  \"tensorboard\": ");
    if (l->tb) {
        const char *name = strrchr(seg_tb_path(l->tb), '/');
        put_json_str(&f, name ? name + 1 : seg_tb_path(l->tb));
    } else {
        put(&f, "null");
    }
    put(&f, ",\n  \"start_iteration\": %" PRId64 ",\n  \"start_time\": \"%s\"", t->iter, start);
    free(ini);
    free(argv.p);
    free(line.p);
    if (f.oom) {
        free(f.p);
        seg_tb_close(l->tb);
        l->tb = NULL;
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "%s: out of host memory", l->path);
    }
    l->fields = f.p;
    l->active = true;
    st = write_run_json(l, NULL, 0, 0);
    if (st) {
        seg_tb_close(l->tb);
        free(l->fields);
        memset(l, 0, sizeof *l);
    }
    return st;
}

/* A failed event write turns the events off: the run itself goes on. */
static enum seg_status tb_failed(struct seg_run_log *l, enum seg_status st)
{
    if (st) {
        seg_tb_close(l->tb);
        l->tb = NULL;
    }
    return st;
}

enum seg_status seg_run_log_step(struct seg_run_log *l, const struct seg_trainer *t, double it_s,
                                 const struct seg_losses *losses)
{
    if (!l->active || !l->tb)
        return SEG_STATUS_OK;
    char names[SEG_MAX_TERMS][80];
    const char *tags[SEG_MAX_TERMS + 4];
    float v[SEG_MAX_TERMS + 4];
    int n = 0;
    /* the values metrics.jsonl's line has, with the same expressions */
    tags[n] = "train/lr", v[n++] = (float)t->lr;
    if (t->naux)
        tags[n] = "train/lr_aux", v[n++] = (float)t->lr_aux;
    tags[n] = "train/it_s", v[n++] = (float)it_s;
    tags[n] = "train/mem_mb", v[n++] = (float)((double)seg_backend_mem_peak(t->be) / (1 << 20));
    for (int i = 0; i < losses->n && i < SEG_MAX_TERMS; i++) {
        snprintf(names[i], sizeof names[i], "loss/%s", losses->name[i]);
        tags[n] = names[i], v[n++] = (float)losses->value[i];
    }
    return tb_failed(l, seg_tb_scalars(l->tb, t->iter, n, tags, v));
}

static const char *class_name(int k, int i, char *buf, size_t n)
{
    if (seg_labels_space_valid(k))
        return seg_labels_class_name(k, i);
    snprintf(buf, n, "class%d", i);
    return buf;
}

void seg_run_log_jsonl_iou(FILE *f, const struct seg_metrics_report *rep)
{
    char buf[32];
    fprintf(f, ", \"iou\": {");
    for (int i = 0; i < rep->k; i++) {
        fprintf(f, "%s\"%s\": ", i ? ", " : "", class_name(rep->k, i, buf, sizeof buf));
        if (isnan(rep->iou[i]))
            fprintf(f, "null");
        else
            fprintf(f, "%.4f", rep->iou[i]);
    }
    fprintf(f, "}");
}

/* The grid of the first val image (as evaluated: data.eval_size, the loader's
 * normalization) PNG-encoded into *png. */
static enum seg_status eval_grid(const struct seg_trainer *t, uint8_t **png, size_t *size, int *gw, int *gh)
{
    long seed = 0, nc = 19;
    struct seg_domain val = {0};
    struct seg_data_batch *b = NULL;
    struct seg_ag *ag = NULL;
    struct seg_image im = {0}, grid = {0};
    int32_t *pred = NULL;
    struct seg_eval_opts eo = {0};
    enum seg_status st = seg_config_int(&t->cfg, "train.seed", &seed);
    if (!st) st = seg_config_int(&t->cfg, "model.num_classes", &nc);
    if (!st) st = seg_eval_opts_from_config(&t->cfg, &eo);
    if (!st) st = seg_domain_open(&t->cfg, SEG_ROLE_VAL, (uint64_t)seed, &val);
    if (!st) st = seg_loader_next(val.loader, &b);
    if (!st && (!b || !b->labels))
        st = seg_error(SEG_STATUS_INVALID, "tensorboard grid: the validation set has no labelled image");
    if (!st) st = seg_ag_create(t->be, &ag);
    if (!st && !(pred = malloc((size_t)b->h * b->w * sizeof *pred)))
        st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "tensorboard grid: out of host memory");
    if (!st) st = seg_predict_batch_opts(t->model, ag, b->images, 1, b->h, b->w, b->h, b->w, &eo, pred, NULL);
    if (!st) st = seg_data_batch_image(b, 0, val.norm, &im);
    if (!st) st = seg_grid_compose(&im, b->labels, b->lw, b->lh, pred, b->w, b->h, (int)nc, &grid);
    if (!st) st = seg_png_encode(grid.data, grid.w, grid.h, 3, 8, NULL, 0, png, size);
    *gw = grid.w;
    *gh = grid.h;
    seg_image_free(&grid);
    seg_image_free(&im);
    free(pred);
    seg_ag_destroy(ag);
    if (b)
        seg_loader_release(val.loader, b);
    seg_domain_close(&val);
    return st;
}

enum seg_status seg_run_log_eval(struct seg_run_log *l, const struct seg_trainer *t,
                                 const struct seg_metrics_report *rep)
{
    if (!l->active || !l->tb)
        return SEG_STATUS_OK;
    char names[SEG_METRICS_MAX_VIEWS + SEG_METRICS_MAX_CLASSES][80], buf[32];
    const char *tags[SEG_METRICS_MAX_VIEWS + SEG_METRICS_MAX_CLASSES + 1];
    float v[SEG_METRICS_MAX_VIEWS + SEG_METRICS_MAX_CLASSES + 1];
    int n = 0;
    for (int i = 0; i < rep->nviews && i < SEG_METRICS_MAX_VIEWS; i++) {
        snprintf(names[n], sizeof names[n], "eval/%s", rep->view_name[i]);
        tags[n] = names[n], v[n] = (float)rep->view_miou[i], n++;
    }
    tags[n] = "eval/pixel_acc", v[n++] = (float)rep->pixel_acc;
    for (int i = 0; i < rep->k && i < SEG_METRICS_MAX_CLASSES; i++)
        if (!isnan(rep->iou[i])) { /* a class absent from ground truth and prediction has none */
            snprintf(names[n], sizeof names[n], "iou/%s", class_name(rep->k, i, buf, sizeof buf));
            tags[n] = names[n], v[n] = (float)rep->iou[i], n++;
        }
    enum seg_status st = tb_failed(l, seg_tb_scalars(l->tb, t->iter, n, tags, v));
    uint8_t *png = NULL;
    size_t size = 0;
    int gw = 0, gh = 0;
    if (!st) st = eval_grid(t, &png, &size, &gw, &gh);
    if (!st) st = tb_failed(l, seg_tb_image(l->tb, t->iter, "eval/grid", gw, gh, 3, png, size));
    free(png);
    return st;
}

enum seg_status seg_run_log_end(struct seg_run_log *l, int exit_code, int64_t iter)
{
    if (!l->active)
        return SEG_STATUS_OK;
    char end[32];
    iso_utc(end, sizeof end);
    enum seg_status st = write_run_json(l, end, exit_code, iter);
    seg_tb_close(l->tb);
    free(l->fields);
    memset(l, 0, sizeof *l);
    return st;
}

enum seg_status seg_run_plot_demo(const char *json, const char *prefix)
{
    char script[4200];
    snprintf(script, sizeof script, "%s/tools/plot_demo.py", SEGDA_SOURCE_DIR);
    if (access(script, R_OK) != 0) {
        fprintf(stderr, "segda demo: no summary plot: %s not found (the source tree this segda was built from)\n",
                script);
        return SEG_STATUS_OK;
    }
    /* Debian's python3 first: matplotlib comes from python3-matplotlib */
    const char *python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    char *argv[] = {(char *)python, script, (char *)json, "--out", (char *)prefix, NULL};
    extern char **environ;
    pid_t pid;
    int status = 0;
    if (posix_spawnp(&pid, python, NULL, NULL, argv, environ) != 0 || waitpid(pid, &status, 0) != pid) {
        fprintf(stderr, "segda demo: no summary plot: cannot run %s\n", python);
        return SEG_STATUS_OK;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 3) /* the script said matplotlib is missing */
        return SEG_STATUS_OK;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return seg_error(SEG_STATUS_IO, "%s %s failed (exit %d)", python, script,
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return SEG_STATUS_OK;
}
