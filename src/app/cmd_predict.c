/* cmd_predict.c: `segda predict`: colorized predictions (and overlays) for an image, a
 * folder or a list file. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "app/app.h"
#include "data/data.h"
#include "train/evaluate.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: segda predict --weights W.safetensors --input IMG|DIR|LIST.txt --out DIR\n"
               "                     [--size WxH] [--device D] [--overlay] [--flip] [--norm deeplab|imagenet]\n"
               "                     [--config FILE.ini]\n\n"
               "Writes DIR/<name>_pred.png (Cityscapes palette) for every image (PNG or JPEG; a folder is\n"
               "read in sorted order, a .txt list holds one path a line), and with --overlay also\n"
               "DIR/<name>_overlay.png (the image blended with its prediction). The network sees the\n"
               "image resized to --size (default: its own size); the prediction is at the image's size.\n"
               "--config applies a training configuration's test-time options (PLCA: plca.test_aggregation).\n");
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool is_image(const char *n)
{
    const char *d = strrchr(n, '.');
    return d && (!strcasecmp(d, ".png") || !strcasecmp(d, ".jpg") || !strcasecmp(d, ".jpeg"));
}

/* The inputs: one image, every image of a folder (sorted) or the lines of a list. */
static enum seg_status collect(const char *input, char ***paths, int *n)
{
    struct stat sb;
    *paths = NULL;
    *n = 0;
    if (stat(input, &sb) != 0)
        return seg_error(SEG_STATUS_IO, "%s: no such file or folder", input);
    int cap = 64;
    char **v = malloc((size_t)cap * sizeof *v);
    if (!v)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "out of host memory");
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(input);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (!is_image(e->d_name))
                continue;
            if (*n == cap)
                v = realloc(v, (size_t)(cap *= 2) * sizeof *v);
            size_t len = strlen(input) + strlen(e->d_name) + 2;
            v[*n] = malloc(len);
            snprintf(v[(*n)++], len, "%s/%s", input, e->d_name);
        }
        if (d)
            closedir(d);
        qsort(v, (size_t)*n, sizeof *v, cmp_str);
    } else if (!is_image(input)) {
        FILE *f = fopen(input, "r");
        char line[4096];
        while (f && fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = '\0';
            if (!line[0])
                continue;
            if (*n == cap)
                v = realloc(v, (size_t)(cap *= 2) * sizeof *v);
            v[(*n)++] = strdup(line);
        }
        if (f)
            fclose(f);
    } else {
        v[(*n)++] = strdup(input);
    }
    *paths = v;
    if (*n == 0)
        return seg_error(SEG_STATUS_INVALID, "%s: no images found", input);
    return SEG_STATUS_OK;
}

int seg_cmd_predict(int argc, char **argv)
{
    const char *weights = NULL, *input = NULL, *out = NULL, *device = "auto", *size = NULL, *config = NULL;
    enum seg_norm norm = SEG_NORM_DEEPLAB;
    bool overlay = false, flip = false;
    const char *norm_name = "deeplab";
    const struct seg_arg args[] = {
        {"--weights", SEG_ARG_STR, &weights}, {"--input", SEG_ARG_STR, &input},
        {"--out", SEG_ARG_STR, &out},         {"--device", SEG_ARG_STR, &device},
        {"--size", SEG_ARG_STR, &size},       {"--overlay", SEG_ARG_FLAG, &overlay},
        {"--flip", SEG_ARG_FLAG, &flip},      {"--norm", SEG_ARG_STR, &norm_name},
        {"--config", SEG_ARG_STR, &config},
    };
    int rc = seg_args_parse("predict", argc, argv, args, (int)(sizeof args / sizeof args[0]), usage);
    if (rc >= 0)
        return rc;
    norm = !strcmp(norm_name, "imagenet") ? SEG_NORM_IMAGENET : SEG_NORM_DEEPLAB;
    if (!weights || !input || !out) {
        fprintf(stderr, "segda predict: --weights, --input and --out are required\n");
        usage(stderr);
        return SEG_EXIT_USAGE;
    }
    int sw = 0, sh = 0;
    if (size && sscanf(size, "%dx%d", &sw, &sh) != 2) {
        fprintf(stderr, "segda predict: --size '%s': expected WxH\n", size);
        return SEG_EXIT_USAGE;
    }
    char **paths = NULL;
    int n = 0;
    struct seg_backend *be = NULL;
    struct seg_model *m = NULL;
    struct seg_ag *ag = NULL;
    struct seg_eval_opts eo = {0};
    eo.flip = flip;
    enum seg_status st = SEG_STATUS_OK;
    if (config) { /* test-time options of a training configuration */
        struct seg_config cfg;
        st = seg_config_init(&cfg);
        if (!st) st = seg_config_load(&cfg, config);
        if (!st) st = seg_eval_opts_from_config(&cfg, &eo);
        seg_config_free(&cfg);
    }
    if (!st) st = collect(input, &paths, &n);
    if (!st) st = seg_app_open_model(weights, device, &be, &m);
    if (!st) st = seg_ag_create(be, &ag);
    if (!st) st = seg_dir_create(out);
    for (int i = 0; !st && i < n; i++) {
        struct seg_image im = {0}, net = {0}, col = {0}, ov = {0};
        st = seg_image_load(paths[i], &im);
        int w = sw ? sw : im.w, h = sh ? sh : im.h;
        if (!st) st = seg_image_resize_bilinear(&im, w, h, &net);
        float *x = NULL;
        int32_t *pred = NULL;
        if (!st) {
            x = malloc((size_t)3 * w * h * sizeof *x);
            pred = malloc((size_t)im.w * im.h * sizeof *pred);
            if (!x || !pred)
                st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "out of host memory");
        }
        if (!st) {
            for (int k = 0; k < 3; k++)
                for (int p = 0; p < w * h; p++)
                    x[(size_t)k * w * h + p] = net.data[(size_t)p * 3 + k];
            seg_data_normalize(x, 1, h, w, norm);
            st = seg_predict_batch_opts(m, ag, x, 1, h, w, im.h, im.w, &eo, pred, NULL);
        }
        char base[1024], path[4200];
        const char *slash = strrchr(paths[i], '/');
        snprintf(base, sizeof base, "%s", slash ? slash + 1 : paths[i]);
        char *dot = strrchr(base, '.');
        if (dot)
            *dot = '\0';
        if (!st) st = seg_colorize(pred, im.w, im.h, m->cfg.num_classes, &col);
        snprintf(path, sizeof path, "%s/%s_pred.png", out, base);
        if (!st) st = seg_image_write_png(path, &col);
        if (!st && overlay) {
            st = seg_overlay(&im, &col, 0.5f, &ov);
            snprintf(path, sizeof path, "%s/%s_overlay.png", out, base);
            if (!st) st = seg_image_write_png(path, &ov);
        }
        if (!st)
            fprintf(stderr, "\r  %d/%d %s", i + 1, n, paths[i]);
        free(x);
        free(pred);
        seg_image_free(&im);
        seg_image_free(&net);
        seg_image_free(&col);
        seg_image_free(&ov);
    }
    if (!st)
        fprintf(stderr, "\nsegda predict: %d predictions in %s\n", n, out);
    else
        fprintf(stderr, "\nsegda predict: %s\n", seg_last_error());
    for (int i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    seg_ag_destroy(ag);
    seg_model_destroy(m);
    seg_backend_destroy(be);
    return seg_exit_code(st);
}
