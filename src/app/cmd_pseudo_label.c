/* cmd_pseudo_label.c: `segda pseudo-label`: class-wise confidence thresholds over the
 * target training set (CBST-style, methods.md section 3.2), then label PNGs (255 where a
 * pixel's confidence is under its class's threshold) and confidence maps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/data_setup.h"
#include "dist/dist.h"
#include "train/evaluate.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: segda pseudo-label --weights W.safetensors --config FILE.ini --out DIR\n"
               "                          [--portion P] [--cap C] [--set section.key=value ...]\n"
               "                          [--device D] [--max N] [--report]\n\n"
               "Pass 1 runs W over the target training set (data.target, data.target_root) at\n"
               "data.eval_size and, for each class k, takes the confidence (max softmax) that the top P of\n"
               "the pixels predicted as k reach (CBST/DASS: P = 0.1; SDCA: P = 0.5 with cap 0.9, the\n"
               "median capped at 0.9); the threshold is that value, capped at C when C > 0.\n"
               "Pass 2 writes DIR/<name>.png (8-bit class ids, 255 where confidence < threshold of the\n"
               "predicted class) and DIR/<name>_conf.png (16-bit confidence x 65535), at the label\n"
               "resolution, and DIR/thresholds.txt. --report compares with the target's own labels\n"
               "(when it has them): density and accuracy of the pseudo labels, overall and per class.\n"
               "Defaults: P 0.5, C 0.9.\n"
               "Under mpirun -np N, each rank labels 1/N of the images (--device as in segda train) and\n"
               "the thresholds are those of the whole set: every rank's confidences are gathered.\n");
}

static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

struct conf_bag {
    float *v;
    size_t n, cap;
};

static enum seg_status bag_add(struct conf_bag *b, float x)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        float *v = realloc(b->v, cap * sizeof *v);
        if (!v)
            return seg_error(SEG_STATUS_OUT_OF_MEMORY, "pseudo-label: out of host memory");
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = x;
    return SEG_STATUS_OK;
}

int seg_cmd_pseudo_label(int argc, char **argv)
{
    const char *weights = NULL, *config = NULL, *out = NULL, *device = "auto";
    struct seg_arg_list sets = {{0}, 0};
    double portion = 0.5, cap = 0.9;
    long max = 0;
    bool report = false;
    const struct seg_arg args[] = {
        {"--weights", SEG_ARG_STR, &weights},  {"--config", SEG_ARG_STR, &config},
        {"--out", SEG_ARG_STR, &out},          {"--device", SEG_ARG_STR, &device},
        {"--set", SEG_ARG_LIST, &sets},        {"--portion", SEG_ARG_DOUBLE, &portion},
        {"--cap", SEG_ARG_DOUBLE, &cap},       {"--max", SEG_ARG_LONG, &max},
        {"--report", SEG_ARG_FLAG, &report},
    };
    int rc = seg_args_parse("pseudo-label", argc, argv, args, (int)(sizeof args / sizeof args[0]), usage);
    if (rc >= 0)
        return rc;
    if (!weights || !config || !out || !(portion > 0 && portion <= 1)) {
        fprintf(stderr, "segda pseudo-label: --weights, --config, --out required; 0 < --portion <= 1\n");
        usage(stderr);
        return SEG_EXIT_USAGE;
    }
    struct seg_config cfg;
    struct seg_backend *be = NULL;
    struct seg_model *m = NULL;
    struct seg_ag *ag = NULL;
    struct conf_bag bags[SEG_METRICS_MAX_CLASSES] = {{0}};
    float thr[SEG_METRICS_MAX_CLASSES];
    uint64_t kept[SEG_METRICS_MAX_CLASSES] = {0}, right[SEG_METRICS_MAX_CLASSES] = {0}, total_px = 0;
    enum seg_status st = seg_config_init(&cfg);
    if (!st) st = seg_config_load(&cfg, config);
    for (int i = 0; !st && i < sets.n; i++)
        st = seg_config_set(&cfg, sets.v[i]);
    /* The target training split, labelled when --report asks for accuracy. */
    if (!st) st = seg_config_set(&cfg, "data.val_split=train");
    if (!st) { /* the target's training list, not the validation one */
        char kv[4200];
        snprintf(kv, sizeof kv, "data.val_list=%s", seg_config_str(&cfg, "data.target_list"));
        st = seg_config_set(&cfg, kv);
    }
    if (!st) { /* the target set's files and first sample, before the model */
        const struct seg_check chk = {.cmd = "pseudo-label", .val = report, .target_pass = !report};
        if ((rc = seg_check_run(&cfg, &chk))) {
            seg_config_free(&cfg);
            return rc;
        }
    }
    struct seg_dist *dist = NULL;
    char dev[256];
    if (!st) st = seg_dist_init(&argc, &argv, &dist);
    int rank = seg_dist_rank(dist), nranks = seg_dist_size(dist);
    if (!st) st = seg_app_rank_device(device, dist, dev, sizeof dev);
    if (!st) st = seg_app_open_model(weights, dev, &be, &m);
    if (!st && m->cfg.num_classes > SEG_METRICS_MAX_CLASSES)
        st = seg_error(SEG_STATUS_INVALID, "%s: %d classes (at most %d)", weights, m->cfg.num_classes,
                       SEG_METRICS_MAX_CLASSES);
    if (!st) st = seg_ag_create(be, &ag);
    if (!st) st = seg_dir_create(out);
    int k = m ? m->cfg.num_classes : 0;
    for (int pass = 0; pass < 2 && !st; pass++) {
        struct seg_domain d;
        st = seg_domain_open_shard(&cfg, report ? SEG_ROLE_VAL : SEG_ROLE_TARGET_PASS, 0, rank, nranks, &d);
        int done = 0;
        while (!st && (!max || done < (max + nranks - 1) / nranks)) {
            struct seg_data_batch *b = NULL;
            st = seg_loader_next(d.loader, &b);
            if (st || !b)
                break;
            size_t px = (size_t)b->n * b->lh * b->lw;
            int32_t *pred = malloc(px * sizeof *pred);
            float *conf = malloc(px * sizeof *conf);
            if (!pred || !conf)
                st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "pseudo-label: out of host memory");
            if (!st)
                st = seg_predict_batch(m, ag, b->images, b->n, b->h, b->w, b->lh, b->lw, false, pred, conf);
            if (!st && pass == 0) {
                for (size_t p = 0; p < px && !st; p += 5) /* every 5th pixel, as the released code */
                    st = bag_add(&bags[pred[p]], conf[p]);
            } else if (!st) {
                uint8_t *lab = malloc(px);
                uint16_t *cm = malloc(px * sizeof *cm);
                if (!lab || !cm)
                    st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "pseudo-label: out of host memory");
                for (size_t p = 0; !st && p < px; p++) {
                    int c = pred[p];
                    bool keep = conf[p] >= thr[c];
                    lab[p] = keep ? (uint8_t)c : 255;
                    cm[p] = (uint16_t)lrintf(conf[p] * 65535.0f);
                    if (report && b->labels && b->labels[p] != 255) {
                        total_px++;
                        if (keep) {
                            kept[c]++;
                            right[c] += b->labels[p] == c;
                        }
                    }
                }
                for (int i = 0; !st && i < b->n; i++) {
                    const char *name = d.ds->names[b->indices[i]];
                    char path[5200], flat[1024];
                    seg_dataset_flat_name(name, flat, sizeof flat);
                    size_t off = (size_t)i * b->lh * b->lw;
                    snprintf(path, sizeof path, "%.4000s/%s.png", out, flat);
                    st = seg_png_write(path, lab + off, b->lw, b->lh, 1, 8, NULL, 0);
                    snprintf(path, sizeof path, "%.4000s/%s_conf.png", out, flat);
                    if (!st) st = seg_png_write(path, cm + off, b->lw, b->lh, 1, 16, NULL, 0);
                }
                free(lab);
                free(cm);
            }
            free(pred);
            free(conf);
            seg_loader_release(d.loader, b);
            done++;
            if (rank == 0)
                fprintf(stderr, "\r  pass %d: %d images%s", pass + 1, done * nranks, nranks > 1 ? " (all ranks)" : "");
        }
        if (rank == 0)
            fprintf(stderr, "\n");
        seg_domain_close(&d);
        bool ok = !st; /* every rank reaches the collectives below, or all stop */
        if (seg_dist_all(dist, &ok) || (!ok && !st))
            st = st ? st : seg_error(SEG_STATUS_IO, "pseudo-label: another rank failed");
        for (int c = 0; !st && pass == 0 && nranks > 1 && c < k; c++) { /* the whole set's bags */
            float *all = NULL;
            size_t n = 0;
            st = seg_dist_allgatherv_f32(dist, bags[c].v, bags[c].n, &all, &n);
            if (!st) {
                free(bags[c].v);
                bags[c].v = all;
                bags[c].n = bags[c].cap = n;
            }
        }
        if (!st && pass == 0) { /* thresholds */
            char path[4200];
            snprintf(path, sizeof path, "%s/thresholds.txt", out);
            FILE *f = rank == 0 ? fopen(path, "w") : NULL;
            for (int c = 0; c < k; c++) {
                struct conf_bag *g = &bags[c];
                if (!g->n) {
                    thr[c] = cap > 0 ? (float)cap : 1.0f; /* never predicted: nothing passes below */
                } else {
                    qsort(g->v, g->n, sizeof *g->v, cmp_desc);
                    size_t at = (size_t)floor(portion * (double)g->n);
                    at = at > 0 ? at - 1 : 0;
                    thr[c] = g->v[at < g->n ? at : g->n - 1];
                    if (cap > 0 && thr[c] > cap)
                        thr[c] = (float)cap;
                }
                if (f)
                    fprintf(f, "%d %s %.6f %zu\n", c, seg_labels_class_name(k, c), thr[c], g->n);
            }
            if (f)
                fclose(f);
        }
    }
    if (!st && report && nranks > 1) { /* counts of every rank's images */
        st = seg_dist_sum_i64(dist, (int64_t *)kept, k);
        if (!st) st = seg_dist_sum_i64(dist, (int64_t *)right, k);
        if (!st) st = seg_dist_sum_i64(dist, (int64_t *)&total_px, 1);
    }
    if (!st && report && rank == 0) {
        uint64_t all_kept = 0, all_right = 0;
        printf("%-14s %10s %10s\n", "class", "kept", "accuracy");
        for (int c = 0; c < k; c++) {
            all_kept += kept[c];
            all_right += right[c];
            printf("%-14s %10llu %9.2f%%\n", seg_labels_class_name(k, c), (unsigned long long)kept[c],
                   kept[c] ? 100.0 * right[c] / kept[c] : 0.0);
        }
        printf("pseudo labels: density %.2f%% of labelled pixels, accuracy %.2f%%\n",
               total_px ? 100.0 * all_kept / total_px : 0.0, all_kept ? 100.0 * all_right / all_kept : 0.0);
        if (seg_bida_report_applies(weights))
            st = seg_bida_report(weights, &cfg, m, ag, max);
    }
    if (st)
        fprintf(stderr, "segda pseudo-label: %s\n", seg_last_error());
    else if (rank == 0)
        fprintf(stderr, "segda pseudo-label: labels and confidences in %s\n", out);
    if (st && nranks > 1)
        seg_dist_abort(dist, seg_exit_code(st));
    seg_dist_finalize(dist);
    for (int c = 0; c < SEG_METRICS_MAX_CLASSES; c++)
        free(bags[c].v);
    seg_ag_destroy(ag);
    seg_model_destroy(m);
    seg_backend_destroy(be);
    seg_config_free(&cfg);
    return seg_exit_code(st);
}
