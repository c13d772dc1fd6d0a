/* cmd_pseudo_label.c: `segda pseudo-label`: class-wise confidence thresholds over the
 * target training set (CBST-style, methods.md section 3.2), then label PNGs (255 where a
 * pixel's confidence is under its class's threshold, or DASS's rule: app/pseudo_dass.h)
 * and confidence maps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/data_setup.h"
#include "app/pseudo_dass.h"
#include "dist/dist.h"
#include "train/evaluate.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: segda pseudo-label --weights W.safetensors --config FILE.ini --out DIR\n"
               "                          [--mode cbst|dass] [--portion P] [--cap C] [--image-portion Q]\n"
               "                          [--unit-thresholds K,K,..] [--set section.key=value ...]\n"
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
               "--mode dass: the static labels of BiDA's released code (cvlab-yonsei/DASS gene_thres,\n"
               "save_pred): pass 1 at the input size (data.eval_size), each image's confidences of a class\n"
               "sorted and every 5th kept; class k's threshold is the floor(P n_k)-th largest (no cap;\n"
               "P defaults to 0.1). Pass 2 at the label resolution: a pixel keeps its argmax where any\n"
               "class c has probability >= c's threshold, or where its confidence is strictly above the\n"
               "image's own top-Q cut (the value at rank floor(Q HW) - 1, Q = P unless given); else 255.\n"
               "--unit-thresholds sets those classes' thresholds to 1 (DASS for SYNTHIA: 9,14,16); a\n"
               "class never predicted gets 2 (nothing passes it).\n"
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

/* DASS pass 1: each image's confidences of each class, sorted, every 5th into the bags. */
static enum seg_status dass_bag_batch(struct conf_bag *bags, int k, const int32_t *pred, const float *conf, int n,
                                      size_t px)
{
    float *v = malloc(px * sizeof *v);
    enum seg_status st = v ? SEG_STATUS_OK : seg_error(SEG_STATUS_OUT_OF_MEMORY, "pseudo-label: out of host memory");
    for (int i = 0; !st && i < n; i++)
        for (int c = 0; !st && c < k; c++) {
            size_t m = 0;
            for (size_t p = (size_t)i * px; p < (size_t)(i + 1) * px; p++)
                if (pred[p] == c)
                    v[m++] = conf[p];
            m = seg_dass_sample(v, m);
            for (size_t j = 0; !st && j < m; j++)
                st = bag_add(&bags[c], v[j]);
        }
    free(v);
    return st;
}

/* DASS pass 2: every class's probabilities at the label resolution, then its rule per image;
 * *lab (allocated) receives the labels. */
static enum seg_status dass_batch(struct seg_model *m, struct seg_ag *ag, const struct seg_data_batch *b, int k,
                                  const float *thr, double image_portion, int32_t *pred, float *conf, uint8_t **lab)
{
    struct seg_tensor *probs = NULL;
    struct seg_eval_opts o = {0};
    o.probs = &probs;
    size_t px = (size_t)b->lh * b->lw, all = (size_t)b->n * k * px;
    float *host = malloc(all * sizeof *host);
    *lab = malloc((size_t)b->n * px);
    enum seg_status st = host && *lab ? SEG_STATUS_OK
                                      : seg_error(SEG_STATUS_OUT_OF_MEMORY, "pseudo-label: out of host memory");
    if (!st) st = seg_predict_batch_opts(m, ag, b->images, b->n, b->h, b->w, b->lh, b->lw, &o, pred, conf);
    if (!st) st = seg_tensor_read(probs, host, all * sizeof *host);
    for (int i = 0; !st && i < b->n; i++)
        st = seg_dass_labels(host + (size_t)i * k * px, k, px, thr, image_portion, *lab + (size_t)i * px,
                             pred + (size_t)i * px, conf + (size_t)i * px);
    seg_tensor_free(probs);
    free(host);
    return st;
}

int seg_cmd_pseudo_label(int argc, char **argv)
{
    const char *weights = NULL, *config = NULL, *out = NULL, *device = "auto", *mode = "cbst", *units = "";
    struct seg_arg_list sets = {{0}, 0};
    double portion = -1, cap = 0.9, image_portion = -1;
    long max = 0;
    bool report = false;
    const struct seg_arg args[] = {
        {"--weights", SEG_ARG_STR, &weights},  {"--config", SEG_ARG_STR, &config},
        {"--out", SEG_ARG_STR, &out},          {"--device", SEG_ARG_STR, &device},
        {"--set", SEG_ARG_LIST, &sets},        {"--portion", SEG_ARG_DOUBLE, &portion},
        {"--cap", SEG_ARG_DOUBLE, &cap},       {"--max", SEG_ARG_LONG, &max},
        {"--report", SEG_ARG_FLAG, &report},   {"--mode", SEG_ARG_STR, &mode},
        {"--image-portion", SEG_ARG_DOUBLE, &image_portion}, {"--unit-thresholds", SEG_ARG_STR, &units},
    };
    int rc = seg_args_parse("pseudo-label", argc, argv, args, (int)(sizeof args / sizeof args[0]), usage);
    if (rc >= 0)
        return rc;
    bool dass = !strcmp(mode, "dass");
    if (!dass && strcmp(mode, "cbst")) {
        fprintf(stderr, "segda pseudo-label: --mode '%s': cbst or dass\n", mode);
        return SEG_EXIT_USAGE;
    }
    if (portion < 0)
        portion = dass ? 0.1 : 0.5; /* DASS's cb_prop; SDCA's median */
    if (image_portion < 0)
        image_portion = portion;
    if (!weights || !config || !out || !(portion > 0 && portion <= 1) || !(image_portion > 0 && image_portion <= 1)) {
        fprintf(stderr, "segda pseudo-label: --weights, --config, --out required; 0 < --portion, --image-portion <= 1\n");
        usage(stderr);
        return SEG_EXIT_USAGE;
    }
    bool unit[SEG_METRICS_MAX_CLASSES] = {false};
    for (const char *u = units; *u;) { /* "9,14,16" */
        char *end;
        long c = strtol(u, &end, 10);
        if (end == u || c < 0 || c >= SEG_METRICS_MAX_CLASSES || (*end && *end != ',')) {
            fprintf(stderr, "segda pseudo-label: --unit-thresholds '%s': class ids 0-%d separated by commas\n", units,
                    SEG_METRICS_MAX_CLASSES - 1);
            return SEG_EXIT_USAGE;
        }
        unit[c] = true;
        u = *end ? end + 1 : end;
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
            /* DASS: the thresholds' pass at the input size (its model upsamples the logits to it) */
            int oh = dass && pass == 0 ? b->h : b->lh, ow = dass && pass == 0 ? b->w : b->lw;
            size_t px = (size_t)b->n * oh * ow;
            int32_t *pred = malloc(px * sizeof *pred);
            float *conf = malloc(px * sizeof *conf);
            uint8_t *lab = NULL;
            if (!pred || !conf)
                st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "pseudo-label: out of host memory");
            if (!st && dass && pass == 1)
                st = dass_batch(m, ag, b, k, thr, image_portion, pred, conf, &lab);
            else if (!st)
                st = seg_predict_batch(m, ag, b->images, b->n, b->h, b->w, oh, ow, false, pred, conf);
            if (!st && pass == 0 && dass) {
                st = dass_bag_batch(bags, k, pred, conf, b->n, (size_t)oh * ow);
            } else if (!st && pass == 0) {
                for (size_t p = 0; p < px && !st; p += 5) /* every 5th pixel, as the released code */
                    st = bag_add(&bags[pred[p]], conf[p]);
            } else if (!st) {
                if (!lab && (lab = malloc(px))) /* CBST: the predicted class's threshold */
                    for (size_t p = 0; p < px; p++)
                        lab[p] = conf[p] >= thr[pred[p]] ? (uint8_t)pred[p] : 255;
                uint16_t *cm = malloc(px * sizeof *cm);
                if (!lab || !cm)
                    st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "pseudo-label: out of host memory");
                for (size_t p = 0; !st && p < px; p++) {
                    int c = pred[p];
                    bool keep = lab[p] != 255;
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
                free(cm);
            }
            free(lab);
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
                if (dass) {
                    thr[c] = unit[c] ? 1.0f : g->n ? seg_dass_class_threshold(g->v, g->n, portion) : SEG_DASS_NEVER;
                } else if (!g->n) {
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
