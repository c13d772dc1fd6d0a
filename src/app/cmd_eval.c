/* cmd_eval.c: `segda eval`: a checkpoint on the target validation set of a configuration:
 * per-class IoU and the mIoU the papers report, printed and saved as JSON and CSV. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "app/data_setup.h"
#include "train/evaluate.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: segda eval --weights W.safetensors --config FILE.ini [--set section.key=value ...]\n"
               "                  [--device D] [--flip] [--max N] [--out DIR]\n\n"
               "Evaluates W on the validation split of the configuration's target (data.target,\n"
               "data.target_root, data.val_split): images resized to data.eval_size, logits upsampled\n"
               "bilinearly to the labels' full resolution, argmax; IoU per class and the mIoU over 19, 16\n"
               "and 13 classes as the papers define them. --flip averages with the mirrored image.\n"
               "Writes DIR/eval.json and DIR/eval.csv (DIR defaults to the current folder).\n");
}

int seg_cmd_eval(int argc, char **argv)
{
    const char *weights = NULL, *config = NULL, *device = "auto", *out = ".";
    struct seg_arg_list sets = {{0}, 0};
    long max = 0;
    bool flip = false;
    const struct seg_arg args[] = {
        {"--weights", SEG_ARG_STR, &weights}, {"--config", SEG_ARG_STR, &config},
        {"--set", SEG_ARG_LIST, &sets},       {"--device", SEG_ARG_STR, &device},
        {"--out", SEG_ARG_STR, &out},         {"--max", SEG_ARG_LONG, &max},
        {"--flip", SEG_ARG_FLAG, &flip},
    };
    int rc = seg_args_parse("eval", argc, argv, args, (int)(sizeof args / sizeof args[0]), usage);
    if (rc >= 0)
        return rc;
    if (!weights || !config) {
        fprintf(stderr, "segda eval: --weights and --config are required\n");
        usage(stderr);
        return SEG_EXIT_USAGE;
    }
    struct seg_config cfg;
    struct seg_backend *be = NULL;
    struct seg_model *m = NULL;
    struct seg_domain val = {0};
    struct seg_confusion conf = {0};
    struct seg_metrics_report rep;
    char path[4200];
    enum seg_status st = seg_config_init(&cfg);
    if (!st) st = seg_config_load(&cfg, config);
    for (int i = 0; !st && i < sets.n; i++)
        st = seg_config_set(&cfg, sets.v[i]);
    if (!st) { /* the validation set's files and first sample, before the model */
        const struct seg_check chk = {.cmd = "eval", .val = true};
        if ((rc = seg_check_run(&cfg, &chk))) {
            seg_config_free(&cfg);
            return rc;
        }
    }
    if (!st) st = seg_app_open_model(weights, device, &be, &m);
    if (!st) st = seg_domain_open(&cfg, SEG_ROLE_VAL, 0, &val);
    if (!st) st = seg_confusion_init(&conf, m->cfg.num_classes);
    struct seg_eval_opts eo = {.flip = flip, .max_batches = (int)max, .progress = true};
    if (!st) st = seg_eval_opts_from_config(&cfg, &eo); /* PLCA's test-time aggregation */
    if (!st) st = seg_evaluate(m, val.loader, &eo, &conf);
    if (!st) {
        seg_metrics_compute(&conf, &rep);
        printf("%s on %s (%s), %d images%s:\n", weights, seg_config_str(&cfg, "data.target"),
               seg_config_str(&cfg, "data.val_split"), max && max < val.ds->n ? (int)max : val.ds->n,
               flip ? ", flip" : "");
        seg_metrics_print(&rep, stdout);
        st = seg_dir_create(out);
        snprintf(path, sizeof path, "%s/eval.json", out);
        if (!st) st = seg_metrics_save_json(&rep, path);
        snprintf(path, sizeof path, "%s/eval.csv", out);
        if (!st) st = seg_metrics_save_csv(&rep, path);
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
