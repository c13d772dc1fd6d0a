/* cmd_train.c: `segda train`: the training loop with progress, metrics (JSON Lines),
 * periodic evaluation keeping the best checkpoint, atomic checkpoints (every N iterations
 * and on SIGINT/SIGTERM), exact resume, and a stop with a report on a non-finite loss. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "app/data_setup.h"
#include "app/run_log.h"
#include "dist/dist.h"
#include "train/evaluate.h"
#include "train/trainer.h"

/* The only mutable global of the program: set by the signal handler, read by the loop. */
static volatile sig_atomic_t g_stop_signal;

static void on_signal(int sig) { g_stop_signal = sig; }

static void usage(FILE *f)
{
    fprintf(f, "usage: segda train --config FILE.ini [--set section.key=value ...] [--resume CKPT|auto]\n"
               "                   [--device D] [--out DIR] [--quiet] [--check | --check-config]\n"
               "       segda train --help-config      list every configuration key with its default\n"
               "--check verifies, without training: every key's value; every file and folder the configuration\n"
               "names (model.init, data.*_root, data.*_list, data.*_labels, the method's weight files) exists\n"
               "and is readable; the first sample of each dataset decodes, its labels of its image's size with\n"
               "known ids; the device exists; and a rough estimate of a step's peak device memory against the\n"
               "device's. Each problem is one line naming the key and the path; exit 2 (a value, or the\n"
               "estimate exceeds the device), 3 (no such device) or 4 (a file or its data), the first of\n"
               "these in that order. --check-config checks the values and builds the models alone (no files,\n"
               "no device). A run starts with the file and first-sample checks of --check.\n\n"
               "Trains the method of the configuration (method.name: %s).\n"
               "The effective configuration is printed and saved as OUT/config.ini. OUT gets\n"
               "last.safetensors (every train.save_every iterations, on SIGINT/SIGTERM and at the\n"
               "end; weights, optimizer state, iteration and RNG: --resume continues exactly),\n"
               "best.safetensors (best target mIoU), metrics.jsonl, eval JSON/CSV tables, run.json (version,\n"
               "device, command line, config hash, times) and TensorBoard events (train.tensorboard).\n"
               "Exit codes: 0 done, 2 bad configuration, 3 no device, 4 bad data, 5 a loss or gradient\n"
               "became NaN/Inf (the last good checkpoint is kept), 130 interrupted (state saved).\n\n"
               "Several GPUs or machines: mpirun -np N segda train ... runs N data-parallel ranks; each\n"
               "takes 1/N of every data.batch, gradients are averaged, BN is synchronized\n"
               "(train.sync_bn); --device opencl (or vulkan, auto) gives each rank its own device of the\n"
               "machine, or list one a local rank: --device vulkan:0,vulkan:1. Rank 0 writes every file.\n",
            seg_method_names());
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void to_batch(const struct seg_data_batch *d, struct seg_batch *b)
{
    b->n = d->n;
    b->h = d->h;
    b->w = d->w;
    b->images = d->images;
    b->labels = d->labels;
}

struct run {
    struct seg_trainer *t;
    struct seg_dist    *dist;
    bool                root;      /* rank 0: prints, logs, writes */
    struct seg_domain   src, tgt, val;
    bool                has_val;
    const char         *out;
    FILE               *metrics;
    struct seg_run_log  log;       /* run.json and TensorBoard events */
    int                 num_classes;
    double              best;
};

static void path_in(char *buf, size_t n, const char *dir, const char *name)
{
    snprintf(buf, n, "%s/%s", dir, name);
}

static enum seg_status evaluate_now(struct run *r, bool progress, struct seg_metrics_report *rep)
{
    long eval_max;
    enum seg_status st = seg_config_int(&r->t->cfg, "train.eval_max", &eval_max);
    struct seg_confusion conf;
    if (!st) st = seg_confusion_init(&conf, r->num_classes);
    if (st)
        return st;
    struct seg_domain val;
    long seed = 0;
    seg_config_int(&r->t->cfg, "train.seed", &seed);
    int nranks = seg_dist_size(r->dist);
    /* a fresh pass; in a data-parallel job each rank evaluates its share of the images and
     * the confusion matrices are summed (exact) */
    st = seg_domain_open_shard(&r->t->cfg, SEG_ROLE_VAL, (uint64_t)seed, seg_dist_rank(r->dist), nranks, &val);
    struct seg_eval_opts eo = {.flip = false, .max_batches = eval_max > 0 ? (int)((eval_max + nranks - 1) / nranks) : 0,
                               .progress = progress && r->root};
    if (!st) st = seg_eval_opts_from_config(&r->t->cfg, &eo); /* PLCA's test-time aggregation */
    if (!st) st = seg_evaluate(r->t->model, val.loader, &eo, &conf);
    bool ok = !st;
    enum seg_status st2 = seg_dist_all(r->dist, &ok);
    if (!st && !ok)
        st = seg_error(SEG_STATUS_IO, "evaluation failed on another rank");
    if (!st) st = st2;
    if (!st) st = seg_dist_sum_i64(r->dist, (int64_t *)conf.m, conf.k * conf.k);
    if (!st) seg_metrics_compute(&conf, rep);
    seg_domain_close(&val);
    seg_confusion_free(&conf);
    return st;
}

static void log_losses(FILE *f, const struct seg_losses *l)
{
    fprintf(f, "{");
    for (int i = 0; i < l->n; i++)
        fprintf(f, "%s\"%s\": %.6g", i ? ", " : "", l->name[i], l->value[i]);
    fprintf(f, "}");
}

static void progress_line(struct run *r, const struct seg_losses *l, double it_s, bool tty, int64_t total)
{
    int64_t it = r->t->iter;
    double eta = it_s > 0 ? (double)(total - it) / it_s : 0;
    char losses[256] = "";
    size_t used = 0;
    for (int i = 0; i < l->n && i < 4 && used < sizeof losses; i++)
        used += (size_t)snprintf(losses + used, sizeof losses - used, " %s %.4f", l->name[i], l->value[i]);
    if (tty) {
        int width = 24, fill = total ? (int)(width * it / total) : 0;
        char bar[32];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "\r[%s] %" PRId64 "/%" PRId64 " %.2f it/s ETA %02d:%02d:%02d lr %.2e%s  ", bar, it, total,
                it_s, (int)(eta / 3600), (int)(eta / 60) % 60, (int)eta % 60, r->t->lr, losses);
    } else {
        fprintf(stderr, "iter %" PRId64 "/%" PRId64 " %.2f it/s eta %.0fs lr %.2e%s\n", it, total, it_s, eta,
                r->t->lr, losses);
    }
    fflush(stderr);
}

int seg_cmd_train(int argc, char **argv)
{
    const char *config = NULL, *resume = NULL, *device = NULL, *out = NULL;
    struct seg_arg_list sets = {{0}, 0};
    bool quiet = false, check = false, check_config = false, help_config = false;
    const struct seg_arg args[] = {
        {"--config", SEG_ARG_STR, &config}, {"--set", SEG_ARG_LIST, &sets},
        {"--resume", SEG_ARG_STR, &resume}, {"--device", SEG_ARG_STR, &device},
        {"--out", SEG_ARG_STR, &out},       {"--quiet", SEG_ARG_FLAG, &quiet},
        {"--check", SEG_ARG_FLAG, &check},  {"--help-config", SEG_ARG_FLAG, &help_config},
        {"--check-config", SEG_ARG_FLAG, &check_config},
    };
    int rc = seg_args_parse("train", argc, argv, args, (int)(sizeof args / sizeof args[0]), usage);
    if (rc >= 0)
        return rc;
    if (help_config) {
        int n;
        const struct seg_config_key *k = seg_config_keys(&n);
        for (int j = 0; j < n; j++)
            printf("%-30s %-22s %s\n", k[j].name, k[j].def[0] ? k[j].def : "\"\"", k[j].help);
        return SEG_EXIT_OK;
    }
    struct seg_config cfg;
    enum seg_status st = seg_config_init(&cfg);
    if (!st && config) st = seg_config_load(&cfg, config);
    for (int i = 0; !st && i < sets.n; i++)
        st = seg_config_set(&cfg, sets.v[i]);
    char kv[4200];
    if (!st && device) {
        snprintf(kv, sizeof kv, "train.device=%s", device);
        st = seg_config_set(&cfg, kv);
    }
    if (!st && out) {
        snprintf(kv, sizeof kv, "train.out=%s", out);
        st = seg_config_set(&cfg, kv);
    }
    if (st) {
        fprintf(stderr, "segda train: %s\n", seg_last_error());
        seg_config_free(&cfg);
        return seg_exit_code(st);
    }
    if (check || check_config) {
        rc = seg_train_check(&cfg, config, check);
        seg_config_free(&cfg);
        return rc;
    }
    struct seg_dist *dist = NULL;
    st = seg_dist_init(&argc, &argv, &dist);
    if (st) {
        fprintf(stderr, "segda train: %s\n", seg_last_error());
        seg_config_free(&cfg);
        return seg_exit_code(st);
    }
    rc = seg_train_run(&cfg, resume, quiet, NULL, dist);
    seg_config_free(&cfg);
    /* A divergence or an interruption stops every rank together; any other failure may be
     * one rank's alone, and the others would wait for it in their next collective. */
    if (rc != SEG_EXIT_OK && rc != SEG_EXIT_DIVERGED && rc != SEG_EXIT_INTERRUPTED && seg_dist_size(dist) > 1) {
        fprintf(stderr, "segda train: rank %d failed (exit %d); stopping every rank\n", seg_dist_rank(dist), rc);
        seg_dist_abort(dist, rc);
    }
    seg_dist_finalize(dist);
    return rc;
}

static enum seg_status next_batches(struct run *r, struct seg_data_batch **sb, struct seg_data_batch **tb)
{
    *sb = *tb = NULL;
    enum seg_status st = seg_loader_next(r->src.loader, sb);
    if (!st && r->tgt.loader)
        st = seg_loader_next(r->tgt.loader, tb);
    return st;
}

static void release_batches(struct run *r, struct seg_data_batch *sb, struct seg_data_batch *tb)
{
    if (sb)
        seg_loader_release(r->src.loader, sb);
    if (tb)
        seg_loader_release(r->tgt.loader, tb);
}

int seg_train_run(const struct seg_config *cfg, const char *resume, bool quiet, double *best_miou,
                  struct seg_dist *dist)
{
    struct run r = {0};
    struct seg_backend *be = NULL;
    r.best = -1.0;
    r.dist = dist;
    r.root = seg_dist_rank(dist) == 0;
    quiet = quiet || !r.root;
    r.out = seg_config_str(cfg, "train.out");
    long seed = 0, stop = 0, save_every = 0, eval_every = 0, log_every = 1, nc = 19;
    enum seg_status st = SEG_STATUS_OK;
    const char *key[] = {"train.seed", "solver.stop", "train.save_every", "train.eval_every",
                         "train.log_every", "model.num_classes"};
    long *dst[] = {&seed, &stop, &save_every, &eval_every, &log_every, &nc};
    for (int i = 0; !st && i < 6; i++)
        st = seg_config_int(cfg, key[i], dst[i]);
    r.num_classes = (int)nc;
    if (!st) { /* the files and first samples, before the folder and the device */
        struct seg_check chk;
        seg_check_for_training(cfg, &chk);
        int crc = seg_check_run(cfg, &chk);
        if (crc)
            return crc;
    }
    char path[4200];
    if (!st && r.root) st = seg_dir_create(r.out);
    if (!st && r.root)
        seg_clean_stale_temporaries("train", r.out);
    if (!st && r.root) {
        if (!quiet) {
            printf("; segda train: effective configuration\n");
            seg_config_print(cfg, stdout);
            fflush(stdout);
        }
        path_in(path, sizeof path, r.out, "config.ini");
        st = seg_config_save(cfg, path);
    }
    char device[256];
    if (!st) st = seg_app_rank_device(seg_config_str(cfg, "train.device"), dist, device, sizeof device);
    if (!st) st = seg_app_backend_create(device, &be);
    if (!st) st = seg_trainer_create_dist(cfg, be, dist, &r.t);
    if (!st && resume && r.root) { /* rank 0 reads the checkpoint, then hands it out */
        if (!strcmp(resume, "auto"))
            path_in(path, sizeof path, r.out, "last.safetensors");
        else
            snprintf(path, sizeof path, "%s", resume);
        if (!strcmp(resume, "auto") && access(path, F_OK) != 0) {
            if (!quiet)
                fprintf(stderr, "segda train: no %s yet, starting from scratch\n", path);
        } else {
            st = seg_trainer_resume(r.t, path);
            if (!st && !quiet)
                fprintf(stderr, "segda train: resumed from %s at iteration %" PRId64 "\n", path, r.t->iter);
        }
    }
    if (!st && resume) st = seg_trainer_sync_from_root(r.t);
    int rank = seg_dist_rank(dist), nranks = seg_dist_size(dist);
    if (!st) st = seg_domain_open_shard(cfg, SEG_ROLE_SOURCE, (uint64_t)seed, rank, nranks, &r.src);
    bool needs_target = strcmp(r.t ? r.t->method->name : "", "source_only") != 0;
    if (!st && needs_target) st = seg_domain_open_shard(cfg, SEG_ROLE_TARGET, (uint64_t)seed, rank, nranks, &r.tgt);
    if (st) {
        fprintf(stderr, "segda train: %s\n", seg_last_error());
        goto done;
    }
    if (!quiet) {
        char job[256];
        fprintf(stderr, "segda train: %s on %s (%s), %s, %lld trainable parameters, %d source images, %s\n",
                r.t->method->name, seg_backend_device(be)->spec, seg_backend_device(be)->name,
                seg_arch_name(r.t->model->cfg.arch), (long long)seg_model_num_params(r.t->model, true),
                r.src.ds->n, seg_dist_describe(dist, job, sizeof job));
    }
    /* The data order continues exactly: the loaders replay the batches already consumed. */
    for (int64_t i = 0; i < r.t->iter && !st; i++) {
        struct seg_data_batch *b = NULL;
        st = seg_loader_next(r.src.loader, &b);
        if (b) seg_loader_release(r.src.loader, b);
        if (!st && r.tgt.loader) {
            st = seg_loader_next(r.tgt.loader, &b);
            if (b) seg_loader_release(r.tgt.loader, b);
        }
    }
    path_in(path, sizeof path, r.out, "metrics.jsonl");
    if (r.root && !st) {
        r.metrics = fopen(path, r.t->iter ? "a" : "w");
        if (!r.metrics)
            st = seg_error(SEG_STATUS_IO, "%s: %s", path, strerror(errno));
    }
    if (r.root && !st) st = seg_run_log_start(&r.log, r.t, be, nranks);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    g_stop_signal = 0;
    int64_t end = stop > 0 && stop < r.t->iterations ? stop : r.t->iterations;
    bool tty = isatty(STDERR_FILENO) && !quiet;
    double t0 = now_s(), last_log = t0;
    int64_t it0 = r.t->iter;
    struct seg_losses losses = {0};
    /* this iteration's batches, fetched one iteration ahead so that the trainer uploads
     * them while the previous step still runs */
    struct seg_data_batch *sb = NULL, *tb = NULL;
    for (;;) {
        /* every rank stops at the same iteration (a signal reaches the ranks at different times) */
        bool go = !st && r.t->iter < end && !g_stop_signal;
        if (!st && nranks > 1) {
            enum seg_status s2 = seg_dist_all(dist, &go);
            if (s2) st = s2;
            if (!go && !g_stop_signal && r.t->iter < end)
                g_stop_signal = SIGTERM; /* another rank was interrupted */
        }
        if (!go)
            break;
        struct seg_data_batch *nsb = NULL, *ntb = NULL;
        struct seg_batch s, t, ns, nt;
        if (!sb)
            st = next_batches(&r, &sb, &tb);
        if (!st && r.t->iter + 1 < end)
            st = next_batches(&r, &nsb, &ntb);
        if (st)
            break;
        to_batch(sb, &s);
        if (tb)
            to_batch(tb, &t);
        if (nsb) {
            to_batch(nsb, &ns);
            if (ntb)
                to_batch(ntb, &nt);
            seg_trainer_prefetch(r.t, &ns, ntb ? &nt : &ns);
        }
        st = seg_trainer_step(r.t, &s, tb ? &t : &s, &losses);
        release_batches(&r, sb, tb);
        sb = nsb;
        tb = ntb;
        if (st == SEG_STATUS_INVALID && strstr(seg_last_error(), "loss term")) {
            char msg[1100];
            snprintf(msg, sizeof msg, "%s", seg_last_error());
            path_in(path, sizeof path, r.out, "last.safetensors");
            if (r.root) { /* every rank stops here together (seg_check_finite is collective) */
                enum seg_status s2 = seg_trainer_save(r.t, path);
                fprintf(stderr, "\nsegda train: diverged at iteration %" PRId64 ": %s; last good state %s %s\n",
                        r.t->iter + 1, msg, s2 ? "could not be saved:" : "saved in", s2 ? seg_last_error() : path);
                fprintf(r.metrics, "{\"iter\": %" PRId64 ", \"diverged\": \"%s\"}\n", r.t->iter + 1, msg);
                fclose(r.metrics);
                r.metrics = NULL;
            }
            seg_run_log_end(&r.log, SEG_EXIT_DIVERGED, r.t->iter);
            release_batches(&r, sb, tb);
            seg_trainer_destroy(r.t);
            r.t = NULL;
            seg_domain_close(&r.src);
            seg_domain_close(&r.tgt);
            seg_backend_destroy(be);
            return SEG_EXIT_DIVERGED;
        }
        if (st)
            break;
        double now = now_s(), it_s = (double)(r.t->iter - it0) / fmax(now - t0, 1e-9);
        if (r.metrics && (r.t->iter % log_every == 0 || r.t->iter == end)) {
            fprintf(r.metrics, "{\"iter\": %" PRId64 ", \"lr\": %.6g, \"it_s\": %.4g, \"mem_mb\": %.1f, \"loss\": ",
                    r.t->iter, r.t->lr, it_s, (double)seg_backend_mem_peak(be) / (1 << 20));
            log_losses(r.metrics, &losses);
            if (r.t->naux)
                fprintf(r.metrics, ", \"lr_aux\": %.6g", r.t->lr_aux);
            fprintf(r.metrics, "}\n");
            fflush(r.metrics);
            if (seg_run_log_step(&r.log, r.t, it_s, &losses))
                fprintf(stderr, "segda train: tensorboard events off: %s\n", seg_last_error());
        }
        if (!quiet && (tty ? now - last_log > 0.2 : r.t->iter % log_every == 0)) {
            progress_line(&r, &losses, it_s, tty, end);
            last_log = now;
        }
        if (r.root && save_every > 0 && r.t->iter % save_every == 0) {
            path_in(path, sizeof path, r.out, "last.safetensors");
            st = seg_trainer_save(r.t, path);
        }
        if (!st && eval_every > 0 && (r.t->iter % eval_every == 0 || r.t->iter == end)) {
            struct seg_metrics_report rep;
            if (tty)
                fprintf(stderr, "\n");
            st = evaluate_now(&r, tty, &rep);
            if (!st && r.root) {
                double miou = rep.nviews ? rep.view_miou[0] : NAN;
                fprintf(r.metrics, "{\"iter\": %" PRId64 ", \"eval\": {", r.t->iter);
                for (int v = 0; v < rep.nviews; v++)
                    fprintf(r.metrics, "%s\"%s\": %.4f", v ? ", " : "", rep.view_name[v], rep.view_miou[v]);
                fprintf(r.metrics, ", \"pixel_acc\": %.4f}", rep.pixel_acc);
                seg_run_log_jsonl_iou(r.metrics, &rep);
                fprintf(r.metrics, "}\n");
                fflush(r.metrics);
                if (seg_run_log_eval(&r.log, r.t, &rep))
                    fprintf(stderr, "segda train: tensorboard: %s\n", seg_last_error());
                if (!quiet)
                    fprintf(stderr, "segda train: iteration %" PRId64 ": target %s %.2f (best %.2f)\n", r.t->iter,
                            rep.nviews ? rep.view_name[0] : "mIoU", 100 * miou, 100 * fmax(r.best, miou));
                if (miou > r.best) {
                    r.best = miou;
                    path_in(path, sizeof path, r.out, "best.safetensors");
                    const char *meta[] = {"method", r.t->method->name};
                    st = seg_model_save(r.t->model, path, meta, 1);
                    path_in(path, sizeof path, r.out, "best_eval.json");
                    if (!st) st = seg_metrics_save_json(&rep, path);
                    path_in(path, sizeof path, r.out, "best_eval.csv");
                    if (!st) st = seg_metrics_save_csv(&rep, path);
                }
            }
        }
    }
    release_batches(&r, sb, tb);
    if (tty)
        fprintf(stderr, "\n");
    if (r.root && r.t && (!st || g_stop_signal)) {
        enum seg_status s2;
        path_in(path, sizeof path, r.out, "last.safetensors");
        s2 = seg_trainer_save(r.t, path);
        if (!st)
            st = s2;
        path_in(path, sizeof path, r.out, "final.safetensors");
        const char *meta[] = {"method", r.t->method->name};
        if (!st) st = seg_model_save(r.t->model, path, meta, 1);
    }
    if (st)
        fprintf(stderr, "segda train: %s\n", seg_last_error());
    else if (g_stop_signal && !quiet)
        fprintf(stderr, "segda train: interrupted at iteration %" PRId64 "; state saved in %s/last.safetensors\n",
                r.t->iter, r.out);
done:
    if (best_miou)
        *best_miou = r.best;
    if (r.metrics)
        fclose(r.metrics);
    int rc = !st && g_stop_signal ? SEG_EXIT_INTERRUPTED : seg_exit_code(st);
    if (seg_run_log_end(&r.log, rc, r.t ? r.t->iter : 0))
        fprintf(stderr, "segda train: %s\n", seg_last_error());
    seg_domain_close(&r.src);
    seg_domain_close(&r.tgt);
    seg_trainer_destroy(r.t);
    seg_backend_destroy(be);
    return rc;
}
