/* cmd_eval.c: `segda eval`: a checkpoint on the target validation set of a configuration, or
 * a folder of prediction PNGs against its labels: per-class IoU and the mIoU the papers
 * report, printed and saved as JSON and CSV. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/data_setup.h"
#include "train/evaluate.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: segda eval --weights W.safetensors --config FILE.ini [--set section.key=value ...]\n"
               "                  [--device D] [--flip] [--max N] [--out DIR]\n"
               "       segda eval --pred-dir P (--config FILE.ini | --gt-dir G) [--set ...]\n"
               "                  [--pred-format auto|trainid|labelid|color] [--max N] [--out DIR]\n\n"
               "Evaluates W on the validation split of the configuration's target (data.target,\n"
               "data.target_root, data.val_split): images resized to data.eval_size, logits upsampled\n"
               "bilinearly to the labels' full resolution, argmax; IoU per class and the mIoU over 19, 16\n"
               "and 13 classes as the papers define them. --flip averages with the mirrored image.\n"
               "Writes DIR/eval.json and DIR/eval.csv (DIR defaults to the current folder).\n\n"
               "--pred-dir scores prediction PNGs (P and its subfolders) instead, with the same classes,\n"
               "table and files: against the labels of the configuration's validation set, or against the\n"
               "label PNGs under G (the *_gtFine_labelIds.png if there are any, else every PNG; raw ids of\n"
               "data.target, default cityscapes, in model.num_classes classes, default 19). Ground truth\n"
               "named S (its file name without _gtFine_labelIds.png, _eval.png or .png, e.g.\n"
               "aachen_000000_000019) is scored with the PNG named S, S_leftImg8bit or S_gtFine_labelIds,\n"
               "each optionally followed by _pred (what segda predict writes), or with the flat name\n"
               "segda pseudo-label writes (aachen_aachen_000000_000019). A missing prediction, one of\n"
               "another size than its ground truth, an unknown id or colour is an error naming the file\n"
               "(exit 4); PNGs that no ground truth names are counted and ignored. --max: the first N.\n"
               "--pred-format: trainid (grey class indices 0..num_classes-1, Cityscapes trainIds for 19\n"
               "classes), labelid (grey Cityscapes labelIds: 7 road ... 33 bicycle), color (RGB, the palette\n"
               "of segda predict); auto (default): RGB PNGs are color; grey and palette PNGs (palette\n"
               "indices) are labelid when every value in the folder is the labelId of a class, else\n"
               "trainid (a trainId map without road, sidewalk, building, sky... is all but impossible).\n");
}

/* The table, then DIR/eval.json and DIR/eval.csv: one report for a checkpoint and for files. */
static enum seg_status report(const struct seg_confusion *conf, const char *out)
{
    struct seg_metrics_report rep;
    char path[4200];
    seg_metrics_compute(conf, &rep);
    seg_metrics_print(&rep, stdout);
    enum seg_status st = seg_dir_create(out);
    snprintf(path, sizeof path, "%s/eval.json", out);
    if (!st) st = seg_metrics_save_json(&rep, path);
    snprintf(path, sizeof path, "%s/eval.csv", out);
    if (!st) st = seg_metrics_save_csv(&rep, path);
    return st;
}

/* --pred-dir: prediction files against the validation set's labels, or --gt-dir's. */
static int eval_pred_dir(const struct seg_config *cfg, const char *pred_dir, const char *gt_dir,
                         const char *format_name, long max, const char *out)
{
    int format = seg_pred_format_from_name(format_name);
    if (format < 0) {
        fprintf(stderr, "segda eval: --pred-format '%s': auto, trainid, labelid or color\n", format_name);
        return SEG_EXIT_USAGE;
    }
    struct seg_dataset *ds = NULL;
    struct seg_gt_files scanned = {0}, gt = {0};
    struct seg_labelmap *own_map = NULL;
    const struct seg_labelmap *map = NULL;
    struct seg_confusion conf = {0};
    struct seg_pred_score info;
    enum seg_status st = SEG_STATUS_OK;
    if (!gt_dir) { /* the validation set a checkpoint's evaluation reads */
        const struct seg_check chk = {.cmd = "eval", .val = true};
        int rc = seg_check_run(cfg, &chk);
        if (rc)
            return rc;
        st = seg_domain_dataset(cfg, SEG_ROLE_VAL, &ds);
        if (!st) {
            gt = (struct seg_gt_files){ds->n, ds->labels, ds->names};
            map = ds->map;
        }
    } else {
        const char *target = seg_config_str(cfg, "data.target");
        int kind = seg_dataset_kind_from_name(target);
        long nc = 0;
        st = seg_config_int(cfg, "model.num_classes", &nc);
        if (!st && kind < 0)
            st = seg_error(SEG_STATUS_INVALID, "config data.target = '%s': gta5, synthia, cityscapes or crosscity",
                           target);
        if (!st && !(own_map = malloc(sizeof *own_map)))
            st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "out of host memory");
        if (!st) st = seg_labelmap_init(own_map, (enum seg_dataset_kind)kind, (int)nc);
        if (!st) st = seg_gt_files_scan(gt_dir, &scanned);
        gt = scanned;
        map = own_map;
    }
    if (!st) st = seg_confusion_init(&conf, map->num_classes);
    if (!st) st = seg_pred_dir_score(pred_dir, (enum seg_pred_format)format, &gt, map, (int)max, &conf, &info);
    if (!st) {
        char what[96], where[4200];
        if (info.color_files && info.id_files)
            snprintf(what, sizeof what, "%d color and %d %s predictions", info.color_files, info.id_files,
                     seg_pred_format_name(info.id_format));
        else
            snprintf(what, sizeof what, "%s predictions",
                     info.color_files ? "color" : seg_pred_format_name(info.id_format));
        if (gt_dir)
            snprintf(where, sizeof where, "%s", gt_dir);
        else
            snprintf(where, sizeof where, "%s (%s)", seg_config_str(cfg, "data.target"),
                     seg_config_str(cfg, "data.val_split"));
        printf("%s on %s, %d images, %s:\n", pred_dir, where, info.images, what);
        st = report(&conf, out);
        if (info.unmatched && !max)
            fprintf(stderr, "segda eval: %d PNG%s in %s match%s no ground-truth image (ignored)\n", info.unmatched,
                    info.unmatched == 1 ? "" : "s", pred_dir, info.unmatched == 1 ? "es" : "");
    }
    if (st)
        fprintf(stderr, "segda eval: %s\n", seg_last_error());
    seg_confusion_free(&conf);
    seg_gt_files_free(&scanned);
    free(own_map);
    seg_dataset_close(ds);
    return seg_exit_code(st);
}

int seg_cmd_eval(int argc, char **argv)
{
    const char *weights = NULL, *config = NULL, *device = NULL, *out = ".";
    const char *pred_dir = NULL, *gt_dir = NULL, *pred_format = "auto";
    struct seg_arg_list sets = {{0}, 0};
    long max = 0;
    bool flip = false;
    const struct seg_arg args[] = {
        {"--weights", SEG_ARG_STR, &weights}, {"--config", SEG_ARG_STR, &config},
        {"--set", SEG_ARG_LIST, &sets},       {"--device", SEG_ARG_STR, &device},
        {"--out", SEG_ARG_STR, &out},         {"--max", SEG_ARG_LONG, &max},
        {"--flip", SEG_ARG_FLAG, &flip},      {"--pred-dir", SEG_ARG_STR, &pred_dir},
        {"--gt-dir", SEG_ARG_STR, &gt_dir},   {"--pred-format", SEG_ARG_STR, &pred_format},
    };
    int rc = seg_args_parse("eval", argc, argv, args, (int)(sizeof args / sizeof args[0]), usage);
    if (rc >= 0)
        return rc;
    if (pred_dir && (weights || device || flip)) {
        fprintf(stderr, "segda eval: --pred-dir scores files: --weights, --device and --flip do not apply\n");
        return SEG_EXIT_USAGE;
    }
    if (pred_dir && !config && !gt_dir) {
        fprintf(stderr, "segda eval: --pred-dir needs --config (its validation set) or --gt-dir\n");
        return SEG_EXIT_USAGE;
    }
    if (!pred_dir && gt_dir) {
        fprintf(stderr, "segda eval: --gt-dir goes with --pred-dir\n");
        return SEG_EXIT_USAGE;
    }
    if (!pred_dir && (!weights || !config)) {
        fprintf(stderr, "segda eval: --weights and --config are required\n");
        usage(stderr);
        return SEG_EXIT_USAGE;
    }
    struct seg_config cfg;
    struct seg_backend *be = NULL;
    struct seg_model *m = NULL;
    struct seg_domain val = {0};
    struct seg_confusion conf = {0};
    enum seg_status st = seg_config_init(&cfg);
    if (!st && config) st = seg_config_load(&cfg, config);
    for (int i = 0; !st && i < sets.n; i++)
        st = seg_config_set(&cfg, sets.v[i]);
    if (!st && pred_dir) {
        rc = eval_pred_dir(&cfg, pred_dir, gt_dir, pred_format, max, out);
        seg_config_free(&cfg);
        return rc;
    }
    if (!st) { /* the validation set's files and first sample, before the model */
        const struct seg_check chk = {.cmd = "eval", .val = true};
        if ((rc = seg_check_run(&cfg, &chk))) {
            seg_config_free(&cfg);
            return rc;
        }
    }
    if (!st) st = seg_app_open_model(weights, device ? device : "auto", &be, &m);
    if (!st) st = seg_domain_open(&cfg, SEG_ROLE_VAL, 0, &val);
    if (!st) st = seg_confusion_init(&conf, m->cfg.num_classes);
    struct seg_eval_opts eo = {.flip = flip, .max_batches = (int)max, .progress = true};
    if (!st) st = seg_eval_opts_from_config(&cfg, &eo); /* PLCA's test-time aggregation */
    if (!st) st = seg_evaluate(m, val.loader, &eo, &conf);
    if (!st) {
        printf("%s on %s (%s), %d images%s:\n", weights, seg_config_str(&cfg, "data.target"),
               seg_config_str(&cfg, "data.val_split"), max && max < val.ds->n ? (int)max : val.ds->n,
               flip ? ", flip" : "");
        st = report(&conf, out);
    }
    if (st)
        fprintf(stderr, "segda eval: %s\n", seg_last_error());
    seg_confusion_free(&conf);
    seg_domain_close(&val);
    seg_model_destroy(m);
    seg_backend_destroy(be);
    seg_config_free(&cfg);
    return seg_exit_code(st);
}
