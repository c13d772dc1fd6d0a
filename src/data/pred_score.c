/* pred_score.c: a folder of prediction PNGs scored against ground truth: files matched by
 * name, each checked against its ground truth's size, ids or colours turned into classes and
 * counted in a confusion matrix, pixel for pixel what an evaluation of the model counts. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data/data_internal.h"

#define MAX_DEPTH 8   /* subfolder levels searched (Cityscapes: <split>/<city>/) */

static bool is_png_name(const char *n)
{
    size_t len = strlen(n);
    return len > 4 && !strcasecmp(n + len - 4, ".png");
}

/* Every PNG below dir (hidden entries skipped), full paths, folder by folder in sorted order. */
static enum seg_status list_pngs(const char *dir, int depth, struct seg_strv *out)
{
    struct seg_strv e = {0};
    enum seg_status st = seg_dir_list(dir, false, false, &e);
    for (int i = 0; !st && i < e.n; i++) {
        if (e.v[i][0] == '.')
            continue;
        char *full = seg_path_join(dir, e.v[i]);
        if (!full)
            st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "%s: out of host memory", dir);
        else if (seg_path_is_dir(full)) {
            if (depth < MAX_DEPTH)
                st = list_pngs(full, depth + 1, out);
            free(full);
        } else if (is_png_name(e.v[i]))
            st = seg_strv_push_owned(out, full);
        else
            free(full);
    }
    seg_strv_free(&e);
    return st;
}

/* Removes suffix from s when s ends with it. */
static bool strip(char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    if (n <= m || strcasecmp(s + n - m, suffix))
        return false;
    s[n - m] = '\0';
    return true;
}

/* The name a file is matched by: its last path component without .png, then without a
 * trailing _pred (segda predict's outputs), then without _leftImg8bit or _gtFine_labelIds. */
static void match_key(const char *path, char *out, size_t n)
{
    const char *b = strrchr(path, '/');
    snprintf(out, n, "%s", b ? b + 1 : path);
    strip(out, ".png");
    strip(out, "_pred");
    if (!strip(out, "_leftImg8bit"))
        strip(out, "_gtFine_labelIds");
}

void seg_gt_files_free(struct seg_gt_files *g)
{
    for (int i = 0; i < g->n; i++) {
        free(g->paths[i]);
        free(g->names[i]);
    }
    free(g->paths);
    free(g->names);
    memset(g, 0, sizeof *g);
}

enum seg_status seg_gt_files_scan(const char *dir, struct seg_gt_files *out)
{
    memset(out, 0, sizeof *out);
    if (!seg_path_is_dir(dir))
        return seg_error(SEG_STATUS_IO, "ground-truth folder %s does not exist", dir);
    static const char cs_suffix[] = "_gtFine_labelIds.png";
    struct seg_strv all = {0}, paths = {0}, names = {0};
    enum seg_status st = list_pngs(dir, 0, &all);
    bool cityscapes = false; /* a gtFine folder also holds colour, instance and trainId PNGs */
    for (int i = 0; !st && i < all.n && !cityscapes; i++)
        cityscapes = seg_str_ends_with(all.v[i], cs_suffix);
    size_t skip = strlen(dir);
    for (int i = 0; !st && i < all.n; i++) {
        if (cityscapes && !seg_str_ends_with(all.v[i], cs_suffix))
            continue;
        const char *rel = all.v[i] + skip;
        while (*rel == '/')
            rel++;
        char *name = seg_strdup(rel);
        if (name) {
            strip(name, ".png");
            if (!strip(name, "_gtFine_labelIds"))
                strip(name, "_eval");
        }
        st = seg_strv_push_owned(&names, name);
        if (!st) st = seg_strv_push(&paths, all.v[i]);
    }
    seg_strv_free(&all);
    if (!st && !paths.n)
        st = seg_error(SEG_STATUS_IO, "ground-truth folder %s holds no PNG", dir);
    if (st) {
        seg_strv_free(&paths);
        seg_strv_free(&names);
        return st;
    }
    out->n = paths.n;
    out->paths = paths.v;
    out->names = names.v;
    return SEG_STATUS_OK;
}

struct pred_file {
    char       *key;
    const char *path;
    bool        used;
};

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const struct pred_file *)a)->key, ((const struct pred_file *)b)->key);
}

/* Where a grey value first occurs, for the error naming it. */
struct first_seen {
    bool seen;
    int  file, x, y;
};

struct scorer {
    const struct seg_labelmap *map;
    enum seg_pred_format       format;
    int                        k;
    struct seg_pred_codec      codec;
    struct pred_file          *files;
    int                        nfiles;
    uint64_t                  *hist;      /* [256][k]: grey value x ground-truth class */
    struct first_seen          first[256];
    struct seg_confusion      *conf;
    struct seg_pred_score     *info;
};

static int find_file(const struct scorer *s, const char *key)
{
    struct pred_file probe = {.key = (char *)key};
    const struct pred_file *f = bsearch(&probe, s->files, (size_t)s->nfiles, sizeof probe, cmp_file);
    return f ? (int)(f - s->files) : -1;
}

static enum seg_status bad_id(const struct scorer *s, const char *path, unsigned v, int x, int y,
                              enum seg_pred_format f)
{
    const char *why = s->format == SEG_PRED_AUTO ? " (auto read the folder's grey PNGs as trainIds: not all "
                                                   "their values are labelIds of classes)"
                                                 : "";
    if (f == SEG_PRED_TRAINID)
        return seg_error(SEG_STATUS_FORMAT, "%s: value %u at pixel (%d, %d) is not a trainId of the %d classes (0..%d)%s",
                         path, v, x, y, s->k, s->k - 1, why);
    return seg_error(SEG_STATUS_FORMAT,
                     "%s: value %u at pixel (%d, %d) is not the Cityscapes labelId of one of the %d classes", path,
                     v, x, y, s->k);
}

/* Ground truth gt_path against prediction file fi. */
static enum seg_status score_one(struct scorer *s, const char *gt_path, int fi)
{
    const char *pp = s->files[fi].path;
    struct seg_ids gids = {0}, pids = {0};
    struct seg_image rgb = {0};
    uint8_t *labels = NULL, *buf = NULL;
    int32_t *pred = NULL, *lab = NULL;
    size_t size = 0;
    enum seg_status st = seg_ids_load(gt_path, &gids);
    size_t n = (size_t)gids.w * gids.h;
    if (!st) st = (labels = malloc(n)) ? SEG_STATUS_OK : seg_error(SEG_STATUS_OUT_OF_MEMORY, "out of host memory");
    if (!st) st = seg_labelmap_apply(s->map, &gids, gt_path, labels);
    if (!st) st = seg_file_read(pp, 0, &buf, &size);
    if (!st) st = seg_ids_decode(buf, size, pp, &pids);
    if (!st && (pids.w != gids.w || pids.h != gids.h))
        st = seg_error(SEG_STATUS_FORMAT, "%s: prediction is %dx%d but its ground truth %s is %dx%d", pp, pids.w,
                       pids.h, gt_path, gids.w, gids.h);
    bool is_rgb = pids.channels >= 3;
    bool color = s->format == SEG_PRED_COLOR || (s->format == SEG_PRED_AUTO && is_rgb);
    if (!st && !color && is_rgb)
        st = seg_error(SEG_STATUS_FORMAT, "%s: an RGB PNG, but %s predictions are grey (or palette-index) PNGs; "
                       "--pred-format color or auto reads colours", pp, seg_pred_format_name(s->format));
    if (!st && color) {
        st = seg_image_decode(buf, size, pp, &rgb);
        pred = malloc(n * sizeof *pred);
        lab = malloc(n * sizeof *lab);
        if (!st && (!pred || !lab))
            st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "out of host memory");
        int last = 0; /* runs of one colour: try the previous pixel's class first */
        for (size_t p = 0; !st && p < n; p++) {
            const uint8_t *c = rgb.data + 3 * p;
            int cls = !memcmp(s->codec.color[last], c, 3) ? last : seg_pred_codec_color_class(&s->codec, c);
            if (cls < 0)
                st = seg_error(SEG_STATUS_FORMAT,
                               "%s: colour (%u, %u, %u) at pixel (%zu, %zu) is not the colour of one of the %d classes",
                               pp, c[0], c[1], c[2], p % (size_t)gids.w, p / (size_t)gids.w, s->k);
            else
                last = cls;
            pred[p] = cls;
            lab[p] = labels[p];
        }
        if (!st) st = seg_confusion_add(s->conf, pred, lab, n);
        if (!st) s->info->color_files++;
    } else if (!st) {
        const uint8_t *lut = s->format == SEG_PRED_TRAINID ? s->codec.trainid
                             : s->format == SEG_PRED_LABELID ? s->codec.labelid : NULL;
        for (size_t p = 0; !st && p < n; p++) {
            unsigned v = pids.data[p];
            int x = (int)(p % (size_t)gids.w), y = (int)(p / (size_t)gids.w);
            if (v > 255 && !lut)
                st = seg_error(SEG_STATUS_FORMAT, "%s: value %u at pixel (%d, %d) is neither a trainId nor a labelId",
                               pp, v, x, y);
            else if (lut && (v > 255 || lut[v] == SEG_PRED_NONE))
                st = bad_id(s, pp, v, x, y, s->format);
            else {
                if (!s->first[v].seen)
                    s->first[v] = (struct first_seen){true, fi, x, y};
                if (labels[p] != SEG_IGNORE)
                    s->hist[(size_t)v * s->k + labels[p]]++;
            }
        }
        if (!st) s->info->id_files++;
    }
    seg_ids_free(&gids);
    seg_ids_free(&pids);
    seg_image_free(&rgb);
    free(labels);
    free(buf);
    free(pred);
    free(lab);
    return st;
}

/* The ids into the confusion matrix, once the folder says how to read them (auto). */
static enum seg_status finish_ids(struct scorer *s)
{
    enum seg_pred_format f = s->format;
    if (f == SEG_PRED_AUTO) { /* a weak model's labelIds may all lie below k (road 7, building 11),
                                 while trainIds without 0..6, 9, 10 and 14..16 hardly occur */
        bool all_labelids = true;
        for (int v = 0; v < 256; v++)
            if (s->first[v].seen && s->codec.labelid[v] == SEG_PRED_NONE)
                all_labelids = false;
        f = all_labelids && s->codec.has_labelids ? SEG_PRED_LABELID : SEG_PRED_TRAINID;
    }
    const uint8_t *lut = f == SEG_PRED_TRAINID ? s->codec.trainid : s->codec.labelid;
    for (int v = 0; v < 256; v++)
        if (s->first[v].seen && lut[v] == SEG_PRED_NONE)
            return bad_id(s, s->files[s->first[v].file].path, (unsigned)v, s->first[v].x, s->first[v].y, f);
    for (int v = 0; v < 256; v++)
        for (int l = 0; l < s->k; l++)
            if (s->hist[(size_t)v * s->k + l])
                s->conf->m[(size_t)l * s->k + lut[v]] += s->hist[(size_t)v * s->k + l];
    s->info->id_format = f;
    return SEG_STATUS_OK;
}

enum seg_status seg_pred_dir_score(const char *dir, enum seg_pred_format format,
                                   const struct seg_gt_files *gt, const struct seg_labelmap *map,
                                   int max_items, struct seg_confusion *conf,
                                   struct seg_pred_score *info)
{
    memset(info, 0, sizeof *info);
    if (conf->k != map->num_classes)
        return seg_error(SEG_STATUS_INVALID, "predictions: a %d-class confusion matrix for %d classes", conf->k,
                         map->num_classes);
    if (!seg_path_is_dir(dir))
        return seg_error(SEG_STATUS_IO, "prediction folder %s does not exist", dir);
    struct scorer *s = calloc(1, sizeof *s);
    if (!s)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "predictions: out of host memory");
    s->map = map;
    s->format = format;
    s->k = map->num_classes;
    s->conf = conf;
    s->info = info;
    struct seg_strv pngs = {0};
    enum seg_status st = seg_pred_codec_init(&s->codec, s->k);
    if (!st && format == SEG_PRED_LABELID && !s->codec.has_labelids)
        st = seg_error(SEG_STATUS_INVALID, "predictions: labelid needs a 19, 16 or 13-class space");
    if (!st) st = list_pngs(dir, 0, &pngs);
    if (!st) {
        s->hist = calloc((size_t)256 * s->k, sizeof *s->hist);
        s->files = calloc((size_t)pngs.n + 1, sizeof *s->files);
        if (!s->hist || !s->files)
            st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "predictions: out of host memory");
    }
    char key[1024];
    for (int i = 0; !st && i < pngs.n; i++) {
        match_key(pngs.v[i], key, sizeof key);
        s->files[i].path = pngs.v[i];
        if (!(s->files[i].key = seg_strdup(key)))
            st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "predictions: out of host memory");
        s->nfiles = i + 1;
    }
    if (!st)
        qsort(s->files, (size_t)s->nfiles, sizeof *s->files, cmp_file);
    for (int i = 1; !st && i < s->nfiles; i++)
        if (!strcmp(s->files[i - 1].key, s->files[i].key))
            st = seg_error(SEG_STATUS_FORMAT, "%s and %s are both the prediction of %s", s->files[i - 1].path,
                           s->files[i].path, s->files[i].key);
    int n = max_items > 0 && max_items < gt->n ? max_items : gt->n;
    for (int i = 0; !st && i < n; i++) {
        char flat[1024], flat_key[1024];
        match_key(gt->names[i], key, sizeof key);
        int fi = find_file(s, key);
        if (fi < 0 && strchr(gt->names[i], '/')) { /* pseudo-label's names: aachen_aachen_000000_000019 */
            seg_dataset_flat_name(gt->names[i], flat, sizeof flat);
            match_key(flat, flat_key, sizeof flat_key);
            fi = find_file(s, flat_key);
        }
        if (fi < 0) {
            st = seg_error(SEG_STATUS_IO,
                           "%s: no prediction for ground truth %s (expected %s.png, %s_leftImg8bit.png or %s_pred.png "
                           "there or in a subfolder)", dir, gt->paths[i], key, key, key);
            break;
        }
        s->files[fi].used = true;
        st = score_one(s, gt->paths[i], fi);
        info->images = i + 1;
    }
    if (!st && info->id_files)
        st = finish_ids(s);
    for (int i = 0; i < s->nfiles; i++) {
        info->unmatched += !s->files[i].used;
        free(s->files[i].key);
    }
    seg_strv_free(&pngs);
    free(s->files);
    free(s->hist);
    free(s);
    return st;
}
