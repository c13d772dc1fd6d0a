/* cmd_predict.c: `segda predict`: predictions (colorized, trainIds or labelIds) and overlays
 * for an image, a folder or a list file. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "app/app.h"
#include "data/data.h"
#include "model/safetensors.h"
#include "train/evaluate.h"
#include "train/pixintra.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: segda predict --weights W.safetensors --input IMG|DIR|LIST.txt --out DIR\n"
               "                     [--size WxH] [--device D] [--overlay] [--flip] [--norm deeplab|imagenet]\n"
               "                     [--config FILE.ini] [--easy-hard THRESHOLDS] [--alpha A]\n"
               "                     [--format color|trainid|labelid]\n\n"
               "Writes DIR/<name>_pred.png for every image (PNG or JPEG; a folder is read in sorted order,\n"
               "a .txt list holds one path a line): --format color (default) in the Cityscapes palette,\n"
               "trainid as grey class indices (Cityscapes trainIds for 19 classes), labelid as grey\n"
               "Cityscapes labelIds (the benchmark's format; 19, 16 or 13-class models); segda eval\n"
               "--pred-dir scores any of them. With --overlay also\n"
               "DIR/<name>_overlay.png (the image blended with its prediction). The network sees the\n"
               "image resized to --size (default: its own size); the prediction is at the image's size.\n"
               "--config applies a training configuration's test-time options (PLCA: plca.test_aggregation).\n"
               "--easy-hard also writes DIR/<name>_easyhard.png, PixIntraDA's pixel split (white: hard,\n"
               "no class above alpha * t_k; black: easy) with t_k from THRESHOLDS: a thresholds.txt of\n"
               "`segda pseudo-label`, or a pixintra checkpoint (its state.pixintra); --alpha default 0.85.\n");
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

/* PixIntraDA's class thresholds t_k: "k name t count" lines (segda pseudo-label's
 * thresholds.txt) or the state.pixintra tensor of a pixintra checkpoint ([round, t_0..]). */
static enum seg_status read_thresholds(const char *path, int num_classes, float *thr)
{
    struct seg_st_file f;
    size_t len = strlen(path);
    if (len > 12 && !strcmp(path + len - 12, ".safetensors")) {
        enum seg_status st = seg_st_read(path, &f);
        if (st)
            return st;
        const struct seg_st_tensor *t = seg_st_find(&f, "state.pixintra");
        if (!t || t->dtype != SEG_ST_F32 || t->nbytes < (size_t)(num_classes + 1) * 4)
            st = seg_error(SEG_STATUS_FORMAT, "%s: no PixIntraDA thresholds (state.pixintra) for %d classes", path,
                           num_classes);
        else if (((const float *)t->data)[0] < 1)
            st = seg_error(SEG_STATUS_FORMAT, "%s: its PixIntraDA thresholds were never computed", path);
        else
            memcpy(thr, (const float *)t->data + 1, (size_t)num_classes * sizeof *thr);
        seg_st_free(&f);
        return st;
    }
    FILE *in = fopen(path, "r");
    if (!in)
        return seg_error(SEG_STATUS_IO, "%s: cannot open the thresholds", path);
    int got = 0, k;
    char line[256];
    while (fgets(line, sizeof line, in)) { /* class names may hold spaces: t is the next-to-last field */
        char *end = line + strcspn(line, "\r\n");
        *end = '\0';
        char *last = strrchr(line, ' ');
        if (!last || sscanf(line, "%d", &k) != 1 || k < 0 || k >= num_classes)
            continue;
        *last = '\0';
        char *prev = strrchr(line, ' ');
        float t = prev ? strtof(prev + 1, NULL) : -1.0f;
        if (t >= 0 && t <= 1) {
            thr[k] = t;
            got++;
        }
    }
    fclose(in);
    if (got != num_classes)
        return seg_error(SEG_STATUS_FORMAT, "%s: expected %d threshold lines 'k name t count', found %d", path,
                         num_classes, got);
    return SEG_STATUS_OK;
}

/* DIR/<base>_easyhard.png from the probabilities at thresholds alpha * t_k. */
static enum seg_status write_easy_hard(const struct seg_tensor *probs, const float *thr, int nc, float alpha,
                                       const char *path)
{
    int64_t ts[1] = {nc};
    float scaled[256];
    for (int k = 0; k < nc; k++)
        scaled[k] = alpha * thr[k];
    struct seg_tensor *t = NULL, *hard = NULL;
    int64_t h = probs->shape[2], w = probs->shape[3];
    float *m = malloc((size_t)(h * w) * sizeof *m);
    struct seg_image im = {0};
    enum seg_status st = m ? seg_tensor_new(probs->be, SEG_DTYPE_F32, 1, ts, &t)
                           : seg_error(SEG_STATUS_OUT_OF_MEMORY, "out of host memory");
    if (!st) st = seg_tensor_write(t, scaled, (size_t)nc * sizeof *scaled);
    if (!st) st = seg_pixintra_split(probs, t, NULL, &hard, NULL);
    if (!st) st = seg_tensor_read(hard, m, (size_t)(h * w) * sizeof *m);
    if (!st) st = seg_image_alloc(&im, (int)w, (int)h, 3);
    for (int64_t p = 0; !st && p < h * w; p++)
        im.data[p * 3] = im.data[p * 3 + 1] = im.data[p * 3 + 2] = m[p] > 0.5f ? 255 : 0;
    if (!st) st = seg_image_write_png(path, &im);
    seg_image_free(&im);
    seg_tensor_free(hard);
    seg_tensor_free(t);
    free(m);
    return st;
}

int seg_cmd_predict(int argc, char **argv)
{
    const char *weights = NULL, *input = NULL, *out = NULL, *device = "auto", *size = NULL, *config = NULL;
    enum seg_norm norm = SEG_NORM_DEEPLAB;
    bool overlay = false, flip = false;
    const char *norm_name = "deeplab", *easy_hard = NULL, *format_name = "color";
    double alpha = 0.85;
    const struct seg_arg args[] = {
        {"--weights", SEG_ARG_STR, &weights}, {"--input", SEG_ARG_STR, &input},
        {"--out", SEG_ARG_STR, &out},         {"--device", SEG_ARG_STR, &device},
        {"--size", SEG_ARG_STR, &size},       {"--overlay", SEG_ARG_FLAG, &overlay},
        {"--flip", SEG_ARG_FLAG, &flip},      {"--norm", SEG_ARG_STR, &norm_name},
        {"--config", SEG_ARG_STR, &config},   {"--easy-hard", SEG_ARG_STR, &easy_hard},
        {"--alpha", SEG_ARG_DOUBLE, &alpha},  {"--format", SEG_ARG_STR, &format_name},
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
    int format = seg_pred_format_from_name(format_name);
    if (format < 0 || format == SEG_PRED_AUTO) {
        fprintf(stderr, "segda predict: --format '%s': color, trainid or labelid\n", format_name);
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
    float thr[256];
    struct seg_tensor *probs = NULL;
    if (!st && easy_hard) {
        st = read_thresholds(easy_hard, m->cfg.num_classes, thr);
        eo.probs = &probs;
    }
    for (int i = 0; !st && i < n; i++) {
        struct seg_image im = {0}, net = {0}, col = {0}, ov = {0}, ids = {0};
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
        if (!st && (format == SEG_PRED_COLOR || overlay))
            st = seg_colorize(pred, im.w, im.h, m->cfg.num_classes, &col);
        if (!st && format != SEG_PRED_COLOR)
            st = seg_pred_encode(pred, im.w, im.h, m->cfg.num_classes, (enum seg_pred_format)format, &ids);
        snprintf(path, sizeof path, "%s/%s_pred.png", out, base);
        if (!st) st = seg_image_write_png(path, format == SEG_PRED_COLOR ? &col : &ids);
        if (!st && overlay) {
            st = seg_overlay(&im, &col, 0.5f, &ov);
            snprintf(path, sizeof path, "%s/%s_overlay.png", out, base);
            if (!st) st = seg_image_write_png(path, &ov);
        }
        if (!st && probs) {
            snprintf(path, sizeof path, "%s/%s_easyhard.png", out, base);
            st = write_easy_hard(probs, thr, m->cfg.num_classes, (float)alpha, path);
        }
        seg_tensor_free(probs);
        probs = NULL;
        if (!st)
            fprintf(stderr, "\r  %d/%d %s", i + 1, n, paths[i]);
        free(x);
        free(pred);
        seg_image_free(&im);
        seg_image_free(&net);
        seg_image_free(&col);
        seg_image_free(&ov);
        seg_image_free(&ids);
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
