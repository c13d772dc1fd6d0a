/* datasets.c: GTA5, SYNTHIA-RAND-CITYSCAPES, Cityscapes and Cross-City (NTHU) file lists
 * (from the official list files or a sorted folder scan), sample loading with the label
 * maps, and per-image class presence for class-balanced sampling. */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

struct list_entry_set {
    struct seg_strv a, b; /* first and second field of each line */
};

/* Reads a list file: one path, or "image label", per non-blank line. */
static enum seg_status read_list(const char *path, struct list_entry_set *out)
{
    uint8_t *buf;
    size_t n;
    enum seg_status st = seg_file_read(path, (size_t)256 << 20, &buf, &n);
    if (st != SEG_STATUS_OK)
        return st;
    int fields_seen = 0, line = 0;
    size_t pos = 0;
    while (pos < n && st == SEG_STATUS_OK) {
        size_t end = pos;
        while (end < n && buf[end] != '\n')
            end++;
        line++;
        char *f[3] = {0};
        int nf = 0;
        size_t i = pos;
        while (i < end && st == SEG_STATUS_OK) {
            while (i < end && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r'))
                i++;
            if (i >= end)
                break;
            size_t s = i;
            while (i < end && buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\r') {
                if (buf[i] < 32 || buf[i] == 127)
                    st = seg_error(SEG_STATUS_FORMAT, "%s: line %d: malformed (control byte 0x%02x)",
                                   path, line, buf[i]);
                i++;
            }
            if (nf < 3) {
                f[nf] = malloc(i - s + 1);
                if (f[nf]) {
                    memcpy(f[nf], buf + s, i - s);
                    f[nf][i - s] = '\0';
                }
            }
            nf++;
        }
        if (st == SEG_STATUS_OK && nf > 2)
            st = seg_error(SEG_STATUS_FORMAT,
                           "%s: line %d: malformed (expected a path or 'image label', found %d fields)",
                           path, line, nf);
        if (st == SEG_STATUS_OK && nf > 0) {
            if (fields_seen && nf != fields_seen)
                st = seg_error(SEG_STATUS_FORMAT,
                               "%s: line %d: malformed (%d fields where earlier lines have %d)", path,
                               line, nf, fields_seen);
            fields_seen = nf;
        }
        if (st == SEG_STATUS_OK && nf > 0) {
            st = seg_strv_push_owned(&out->a, f[0]);
            f[0] = NULL;
            if (st == SEG_STATUS_OK && nf == 2) {
                st = seg_strv_push_owned(&out->b, f[1]);
                f[1] = NULL;
            }
        }
        for (int k = 0; k < 3; k++)
            free(f[k]);
        pos = end + 1;
    }
    free(buf);
    if (st == SEG_STATUS_OK && out->a.n == 0)
        st = seg_error(SEG_STATUS_FORMAT, "%s: list has no entries", path);
    return st;
}

/* "dir/name.ext" -> "name" */
static char *stem(const char *path, const char *strip_suffix)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    char *s = seg_strdup(b);
    if (!s)
        return NULL;
    if (strip_suffix && seg_str_ends_with(s, strip_suffix)) {
        s[strlen(s) - strlen(strip_suffix)] = '\0';
        return s;
    }
    char *dot = strrchr(s, '.');
    if (dot && dot != s)
        *dot = '\0';
    return s;
}

static bool is_image_name(const char *s)
{
    return seg_str_ends_with(s, ".png") || seg_str_ends_with(s, ".jpg") ||
           seg_str_ends_with(s, ".jpeg") || seg_str_ends_with(s, ".PNG") || seg_str_ends_with(s, ".JPG");
}

struct builder {
    const struct seg_dataset_opts *o;
    struct seg_strv images, labels, names;
    const char *source;  /* list path or scanned folder, for messages */
};

/* Adds one sample, checking that its files exist. */
static enum seg_status add(struct builder *b, char *image, char *label, char *name)
{
    enum seg_status st = SEG_STATUS_OK;
    if (!image || (b->o->labels && !label) || !name) {
        st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "dataset: out of host memory");
        goto fail;
    }
    const char *missing = !seg_path_is_file(image) ? image
                          : (label && b->o->labels && !seg_path_is_file(label)) ? label
                                                                                 : NULL;
    if (missing) {
        if (b->o->skip_bad) {
            seg_data_warn("%s: skipping '%s': %s does not exist", b->source, name, missing);
            goto fail;
        }
        st = seg_error(SEG_STATUS_IO, "%s: %s %s does not exist", b->source,
                       missing == image ? "image" : "label", missing);
        goto fail;
    }
    if ((st = seg_strv_push_owned(&b->images, image)) != SEG_STATUS_OK) {
        free(label);
        free(name);
        return st;
    }
    if (b->o->labels) {
        if ((st = seg_strv_push_owned(&b->labels, label)) != SEG_STATUS_OK) {
            free(name);
            return st;
        }
    } else {
        free(label);
    }
    return seg_strv_push_owned(&b->names, name);
fail:
    free(image);
    free(label);
    free(name);
    return st;
}

static char *replace_suffix(const char *s, const char *suffix, const char *with)
{
    size_t n = strlen(s) - strlen(suffix), m = strlen(with);
    char *r = malloc(n + m + 1);
    if (!r)
        return NULL;
    memcpy(r, s, n);
    memcpy(r + n, with, m + 1);
    return r;
}

static enum seg_status build_gta5_synthia(struct builder *b, const char *root)
{
    const struct seg_dataset_opts *o = b->o;
    const char *img_sub = "images", *lbl_sub = "labels";
    char *base = seg_strdup(root);
    if (o->kind == SEG_DATASET_SYNTHIA) {
        img_sub = "RGB";
        lbl_sub = "GT/LABELS";
        char *probe = seg_path_join(root, "RGB");
        if (probe && !seg_path_is_dir(probe)) {
            free(base);
            base = seg_path_join(root, "RAND_CITYSCAPES");
        }
        free(probe);
    }
    char *img_dir = base ? seg_path_join(base, img_sub) : NULL;
    char *lbl_dir = base ? seg_path_join(base, lbl_sub) : NULL;
    enum seg_status st = SEG_STATUS_OK;
    if (!img_dir || !lbl_dir) {
        st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "dataset: out of host memory");
        goto done;
    }
    if (o->list && o->list[0]) {
        struct list_entry_set l = {0};
        b->source = o->list;
        if ((st = read_list(o->list, &l)) == SEG_STATUS_OK) {
            for (int i = 0; i < l.a.n && st == SEG_STATUS_OK; i++) {
                if (l.b.n)
                    st = add(b, seg_path_join(root, l.a.v[i]), seg_path_join(root, l.b.v[i]),
                             stem(l.a.v[i], NULL));
                else
                    st = add(b, seg_path_join(img_dir, l.a.v[i]), seg_path_join(lbl_dir, l.a.v[i]),
                             stem(l.a.v[i], NULL));
            }
        }
        seg_strv_free(&l.a);
        seg_strv_free(&l.b);
    } else {
        struct seg_strv files = {0};
        b->source = img_dir;
        if (!seg_path_is_dir(img_dir)) {
            st = seg_error(SEG_STATUS_IO, "%s dataset: folder %s does not exist (root %s)",
                           seg_dataset_kind_name(o->kind), img_dir, root);
            goto done;
        }
        if ((st = seg_dir_list(img_dir, false, true, &files)) == SEG_STATUS_OK)
            for (int i = 0; i < files.n && st == SEG_STATUS_OK; i++)
                if (is_image_name(files.v[i])) {
                    char *lname = o->kind == SEG_DATASET_GTA5 && !seg_str_ends_with(files.v[i], ".png")
                                      ? replace_suffix(files.v[i], strrchr(files.v[i], '.'), ".png")
                                      : seg_strdup(files.v[i]);
                    st = add(b, seg_path_join(img_dir, files.v[i]),
                             lname ? seg_path_join(lbl_dir, lname) : NULL, stem(files.v[i], NULL));
                    free(lname);
                }
        seg_strv_free(&files);
    }
done:
    free(base);
    free(img_dir);
    free(lbl_dir);
    return st;
}

static enum seg_status build_cityscapes(struct builder *b, const char *root)
{
    const struct seg_dataset_opts *o = b->o;
    const char *split = o->split && o->split[0] ? o->split : NULL;
    /* dev: not a Cityscapes split; segda synth's held-out tuning split */
    if (!split || (strcmp(split, "train") && strcmp(split, "val") && strcmp(split, "test") && strcmp(split, "dev")))
        return seg_error(SEG_STATUS_INVALID,
                         "cityscapes dataset: split must be train, val, test or dev (got '%s')", split ? split : "");
    static const char img_suffix[] = "_leftImg8bit.png", lbl_suffix[] = "_gtFine_labelIds.png";
    char *img_base = seg_path_join3(root, "leftImg8bit", split);
    char *lbl_base = seg_path_join3(root, "gtFine", split);
    enum seg_status st = SEG_STATUS_OK;
    if (!img_base || !lbl_base) {
        st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "dataset: out of host memory");
        goto done;
    }
    if (o->list && o->list[0]) {
        struct list_entry_set l = {0};
        b->source = o->list;
        if ((st = read_list(o->list, &l)) == SEG_STATUS_OK) {
            for (int i = 0; i < l.a.n && st == SEG_STATUS_OK; i++) {
                const char *e = l.a.v[i];
                if (l.b.n) {
                    st = add(b, seg_path_join(root, e), seg_path_join(root, l.b.v[i]), stem(e, img_suffix));
                    continue;
                }
                if (!seg_str_ends_with(e, img_suffix)) {
                    st = seg_error(SEG_STATUS_FORMAT, "%s: line %d: '%s' is not a <city>/..._leftImg8bit.png name",
                                   o->list, i + 1, e);
                    break;
                }
                char *rel_lbl = replace_suffix(e, img_suffix, lbl_suffix);
                char *name = replace_suffix(e, img_suffix, "");
                st = add(b, seg_path_join(img_base, e), rel_lbl ? seg_path_join(lbl_base, rel_lbl) : NULL, name);
                free(rel_lbl);
            }
        }
        seg_strv_free(&l.a);
        seg_strv_free(&l.b);
        goto done;
    }
    b->source = img_base;
    if (!seg_path_is_dir(img_base)) {
        st = seg_error(SEG_STATUS_IO, "cityscapes dataset: folder %s does not exist (root %s)", img_base, root);
        goto done;
    }
    struct seg_strv cities = {0};
    if ((st = seg_dir_list(img_base, true, false, &cities)) != SEG_STATUS_OK) {
        seg_strv_free(&cities);
        goto done;
    }
    for (int c = 0; c < cities.n && st == SEG_STATUS_OK; c++) {
        char *dir = seg_path_join(img_base, cities.v[c]);
        struct seg_strv files = {0};
        st = dir ? seg_dir_list(dir, false, true, &files)
                 : seg_error(SEG_STATUS_OUT_OF_MEMORY, "dataset: out of host memory");
        for (int i = 0; i < files.n && st == SEG_STATUS_OK; i++) {
            if (!seg_str_ends_with(files.v[i], img_suffix))
                continue;
            char *rel = seg_path_join(cities.v[c], files.v[i]);
            char *rel_lbl = rel ? replace_suffix(rel, img_suffix, lbl_suffix) : NULL;
            char *name = rel ? replace_suffix(rel, img_suffix, "") : NULL;
            st = add(b, rel ? seg_path_join(img_base, rel) : NULL,
                     rel_lbl ? seg_path_join(lbl_base, rel_lbl) : NULL, name);
            free(rel);
            free(rel_lbl);
        }
        seg_strv_free(&files);
        free(dir);
    }
    seg_strv_free(&cities);
done:
    free(img_base);
    free(lbl_base);
    return st;
}

static enum seg_status build_crosscity(struct builder *b, const char *root)
{
    const struct seg_dataset_opts *o = b->o;
    const char *split = o->split && o->split[0] ? o->split : "";
    bool train = !strcmp(split, "train");
    if (!train && strcmp(split, "test") && strcmp(split, "val"))
        return seg_error(SEG_STATUS_INVALID, "crosscity dataset: split must be train or test (got '%s')", split);
    if (!o->city || !o->city[0])
        return seg_error(SEG_STATUS_INVALID, "crosscity dataset: a city is required (Rio, Rome, Taipei, Tokyo)");
    if (train && o->labels)
        return seg_error(SEG_STATUS_INVALID,
                         "crosscity dataset: the train split has no labels (open it unlabelled, or use test)");
    char *base = seg_path_join(root, o->city);
    if (base && !seg_path_is_dir(base)) {
        char *probe = seg_path_join(root, "Images");
        if (probe && seg_path_is_dir(probe)) { /* root is the city folder itself */
            free(base);
            base = seg_strdup(root);
        }
        free(probe);
    }
    const char *sp = train ? "Train" : "Test";
    char *img_dir = base ? seg_path_join3(base, "Images", sp) : NULL;
    char *lbl_dir = base ? seg_path_join3(base, "Labels", "Test") : NULL;
    enum seg_status st = SEG_STATUS_OK;
    struct seg_strv ids = {0};
    if (!img_dir || !lbl_dir) {
        st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "dataset: out of host memory");
        goto done;
    }
    if (o->list && o->list[0]) {
        struct list_entry_set l = {0};
        b->source = o->list;
        if ((st = read_list(o->list, &l)) == SEG_STATUS_OK && l.b.n) {
            for (int i = 0; i < l.a.n && st == SEG_STATUS_OK; i++) {
                char *s = stem(l.a.v[i], NULL);
                char *name = s ? seg_path_join(o->city, s) : NULL;
                free(s);
                st = add(b, seg_path_join(root, l.a.v[i]), seg_path_join(root, l.b.v[i]), name);
            }
        } else if (st == SEG_STATUS_OK) {
            for (int i = 0; i < l.a.n && st == SEG_STATUS_OK; i++)
                st = seg_strv_push(&ids, l.a.v[i]);
        }
        seg_strv_free(&l.a);
        seg_strv_free(&l.b);
        if (st != SEG_STATUS_OK || b->images.n)
            goto done;
    } else {
        b->source = img_dir;
        if (!seg_path_is_dir(img_dir)) {
            st = seg_error(SEG_STATUS_IO, "crosscity dataset: folder %s does not exist (root %s)", img_dir, root);
            goto done;
        }
        struct seg_strv files = {0};
        st = seg_dir_list(img_dir, false, true, &files);
        for (int i = 0; i < files.n && st == SEG_STATUS_OK; i++)
            if (is_image_name(files.v[i]))
                st = seg_strv_push(&ids, files.v[i]);
        seg_strv_free(&files);
    }
    for (int i = 0; i < ids.n && st == SEG_STATUS_OK; i++) {
        const char *e = ids.v[i];
        char *file = malloc(strlen(e) + 5);
        if (file)
            sprintf(file, is_image_name(e) ? "%s" : "%s.jpg", e);
        char *id = stem(e, NULL);
        char *lbl_file = NULL;
        if (id) {
            lbl_file = malloc(strlen(id) + 16);
            if (lbl_file)
                sprintf(lbl_file, "%s_eval.png", id);
        }
        st = add(b, file ? seg_path_join(img_dir, file) : NULL,
                 lbl_file ? seg_path_join(lbl_dir, lbl_file) : NULL, id ? seg_path_join(o->city, id) : NULL);
        free(file);
        free(id);
        free(lbl_file);
    }
done:
    seg_strv_free(&ids);
    free(base);
    free(img_dir);
    free(lbl_dir);
    return st;
}

void seg_dataset_close(struct seg_dataset *ds)
{
    if (!ds)
        return;
    for (int i = 0; i < ds->n; i++) {
        free(ds->images[i]);
        if (ds->labels)
            free(ds->labels[i]);
        free(ds->names[i]);
    }
    free(ds->images);
    free(ds->labels);
    free(ds->names);
    free(ds->map);
    free(ds);
}

void seg_dataset_flat_name(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s", name);
    for (char *q = out; *q; q++)
        if (*q == '/')
            *q = '_';
}

/* Labels from o->label_dir (class ids, pseudo labels): one file a sample, an identity map. */
static enum seg_status use_label_dir(struct seg_dataset *ds, const struct seg_dataset_opts *o, struct builder *b)
{
    if (!seg_path_is_dir(o->label_dir))
        return seg_error(SEG_STATUS_IO, "label folder %s is not a folder", o->label_dir);
    char **v = calloc((size_t)b->images.n + 1, sizeof *v);
    if (!v)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "dataset: out of host memory");
    for (int i = 0; i < b->images.n; i++) {
        char flat[2048], path[4200];
        seg_dataset_flat_name(b->names.v[i], flat, sizeof flat);
        snprintf(path, sizeof path, "%s/%s.png", o->label_dir, flat);
        if (!(v[i] = strdup(path))) {
            for (int j = 0; j < i; j++)
                free(v[j]);
            free(v);
            return seg_error(SEG_STATUS_OUT_OF_MEMORY, "dataset: out of host memory");
        }
    }
    seg_strv_free(&b->labels);
    b->labels.v = v;
    b->labels.n = b->images.n;
    b->labels.cap = b->images.n + 1;
    struct seg_labelmap *m = ds->map;
    memset(m->lut, SEG_LABELMAP_INVALID, sizeof m->lut);
    for (int c = 0; c < o->num_classes; c++)
        m->lut[c] = (uint8_t)c;
    m->lut[255] = SEG_IGNORE;
    m->max_id = o->num_classes - 1;
    return SEG_STATUS_OK;
}

enum seg_status seg_dataset_open(const struct seg_dataset_opts *o, struct seg_dataset **out)
{
    *out = NULL;
    if (!o->root || !o->root[0])
        return seg_error(SEG_STATUS_INVALID, "dataset: no root folder given");
    if ((unsigned)o->kind >= SEG_DATASET_COUNT)
        return seg_error(SEG_STATUS_INVALID, "dataset: unknown kind %d", (int)o->kind);
    if (!seg_labels_space_valid(o->num_classes))
        return seg_error(SEG_STATUS_INVALID, "%s dataset: %d classes is not a class space (19, 16 or 13)",
                         seg_dataset_kind_name(o->kind), o->num_classes);
    if (!seg_path_is_dir(o->root))
        return seg_error(SEG_STATUS_IO, "%s dataset: root %s is not a folder", seg_dataset_kind_name(o->kind),
                         o->root);
    struct builder b = {.o = o, .source = o->root};
    enum seg_status st;
    switch (o->kind) {
    case SEG_DATASET_CITYSCAPES: st = build_cityscapes(&b, o->root); break;
    case SEG_DATASET_CROSSCITY: st = build_crosscity(&b, o->root); break;
    default: st = build_gta5_synthia(&b, o->root); break;
    }
    if (st == SEG_STATUS_OK && b.images.n == 0)
        st = seg_error(SEG_STATUS_IO, "%s dataset: no samples found in %s", seg_dataset_kind_name(o->kind),
                       b.source);
    struct seg_dataset *ds = NULL;
    if (st == SEG_STATUS_OK) {
        ds = calloc(1, sizeof *ds);
        struct seg_labelmap *map = malloc(sizeof *map);
        if (!ds || !map) {
            free(ds);
            free(map);
            ds = NULL;
            st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "dataset: out of host memory");
        } else {
            ds->map = map;
            st = seg_labelmap_init(map, o->kind, o->num_classes);
        }
    }
    if (st == SEG_STATUS_OK && o->label_dir && o->label_dir[0])
        st = use_label_dir(ds, o, &b);
    if (st != SEG_STATUS_OK) {
        seg_strv_free(&b.images);
        seg_strv_free(&b.labels);
        seg_strv_free(&b.names);
        seg_dataset_close(ds);
        return st;
    }
    int n = b.images.n;
    if (o->max_items > 0 && o->max_items < n) {
        for (int i = o->max_items; i < n; i++) {
            free(b.images.v[i]);
            if (o->labels)
                free(b.labels.v[i]);
            free(b.names.v[i]);
        }
        n = o->max_items;
    }
    ds->kind = o->kind;
    ds->num_classes = o->num_classes;
    ds->n = n;
    ds->has_labels = o->labels || (o->label_dir && o->label_dir[0]);
    ds->skip_bad = o->skip_bad;
    ds->images = b.images.v;
    ds->labels = ds->has_labels ? b.labels.v : NULL;
    ds->names = b.names.v;
    if (!ds->has_labels)
        seg_strv_free(&b.labels);
    atomic_init(&ds->skipped, 0);
    *out = ds;
    return SEG_STATUS_OK;
}

static enum seg_status load_labels(const struct seg_dataset *ds, int i, int expect_w, int expect_h,
                                   struct seg_image *labels)
{
    struct seg_ids ids;
    enum seg_status st = seg_ids_load(ds->labels[i], &ids);
    if (st != SEG_STATUS_OK)
        return st;
    if (expect_w && (ids.w != expect_w || ids.h != expect_h)) {
        st = seg_error(SEG_STATUS_FORMAT, "%s: label is %dx%d but its image %s is %dx%d", ds->labels[i],
                       ids.w, ids.h, ds->images[i], expect_w, expect_h);
    } else if ((st = seg_image_alloc(labels, ids.w, ids.h, 1)) == SEG_STATUS_OK) {
        st = seg_labelmap_apply(ds->map, &ids, ds->labels[i], labels->data);
        if (st != SEG_STATUS_OK)
            seg_image_free(labels);
    }
    seg_ids_free(&ids);
    return st;
}

enum seg_status seg_dataset_load(const struct seg_dataset *ds, int i, struct seg_image *image,
                                 struct seg_image *labels)
{
    memset(image, 0, sizeof *image);
    if (labels)
        memset(labels, 0, sizeof *labels);
    if (i < 0 || i >= ds->n)
        return seg_error(SEG_STATUS_INVALID, "dataset: index %d out of range [0, %d)", i, ds->n);
    enum seg_status st = seg_image_load(ds->images[i], image);
    if (st != SEG_STATUS_OK || !labels || !ds->has_labels)
        return st;
    st = load_labels(ds, i, image->w, image->h, labels);
    if (st != SEG_STATUS_OK)
        seg_image_free(image);
    return st;
}

/* ---- class presence ---- */

struct pixels_job {
    struct seg_dataset *ds;
    uint32_t           *counts; /* [n][num_classes] */
    int                 t, nt;
    enum seg_status     st;
    char                err[1024];
};

static void *pixels_worker(void *arg)
{
    struct pixels_job *j = arg;
    int k = j->ds->num_classes;
    for (int i = j->t; i < j->ds->n; i += j->nt) {
        struct seg_image l;
        uint32_t *row = j->counts + (size_t)i * k;
        enum seg_status st = load_labels(j->ds, i, 0, 0, &l);
        if (st != SEG_STATUS_OK) {
            if (j->ds->skip_bad) {
                seg_data_warn("skipping %s: %s", j->ds->names[i], seg_last_error());
                atomic_fetch_add(&j->ds->skipped, 1);
                memset(row, 0, (size_t)k * sizeof *row);
                continue;
            }
            j->st = st;
            snprintf(j->err, sizeof j->err, "%s", seg_last_error());
            return NULL;
        }
        for (size_t p = 0; p < (size_t)l.w * l.h; p++)
            if (l.data[p] < k)
                row[l.data[p]]++;
        seg_image_free(&l);
    }
    return NULL;
}

static bool pixels_cache_read(const struct seg_dataset *ds, const char *path, uint32_t *counts)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    int k = 0, n = 0;
    bool ok = fscanf(f, "segda class pixels v1 classes %d count %d", &k, &n) == 2 && k == ds->num_classes &&
              n == ds->n;
    char name[4096];
    for (int i = 0; ok && i < n; i++) {
        for (int c = 0; ok && c < k; c++) {
            unsigned v;
            ok = fscanf(f, " %u", &v) == 1;
            counts[(size_t)i * k + c] = v;
        }
        ok = ok && fscanf(f, " %4095s", name) == 1 && !strcmp(name, ds->names[i]);
    }
    fclose(f);
    return ok;
}

static enum seg_status pixels_cache_write(const struct seg_dataset *ds, const char *path, const uint32_t *counts)
{
    int k = ds->num_classes;
    size_t cap = 64 + (size_t)ds->n * (16 + 11 * (size_t)k), len = 0;
    for (int i = 0; i < ds->n; i++)
        cap += strlen(ds->names[i]);
    char *buf = malloc(cap);
    if (!buf)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "%s: out of host memory", path);
    len += (size_t)snprintf(buf, cap, "segda class pixels v1 classes %d count %d\n", k, ds->n);
    for (int i = 0; i < ds->n; i++) {
        for (int c = 0; c < k; c++)
            len += (size_t)snprintf(buf + len, cap - len, "%u ", counts[(size_t)i * k + c]);
        len += (size_t)snprintf(buf + len, cap - len, "%s\n", ds->names[i]);
    }
    enum seg_status st = seg_file_write_atomic(path, buf, len);
    free(buf);
    return st;
}

enum seg_status seg_dataset_class_pixels(struct seg_dataset *ds, const char *cache_path, int threads,
                                         uint32_t **out)
{
    *out = NULL;
    if (!ds->has_labels)
        return seg_error(SEG_STATUS_INVALID, "class statistics: the %s dataset was opened without labels",
                         seg_dataset_kind_name(ds->kind));
    uint32_t *counts = calloc((size_t)ds->n * (size_t)ds->num_classes, sizeof *counts);
    if (!counts)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "class statistics: out of host memory");
    if (cache_path && cache_path[0] && pixels_cache_read(ds, cache_path, counts)) {
        *out = counts;
        return SEG_STATUS_OK;
    }
    if (threads < 1)
        threads = 1;
    if (threads > 64)
        threads = 64;
    struct pixels_job jobs[64];
    pthread_t tid[64];
    for (int t = 0; t < threads; t++)
        jobs[t] = (struct pixels_job){.ds = ds, .counts = counts, .t = t, .nt = threads};
    int started = 1; /* job 0 runs on this thread, and so do jobs whose thread fails to start */
    while (started < threads && pthread_create(&tid[started], NULL, pixels_worker, &jobs[started]) == 0)
        started++;
    pixels_worker(&jobs[0]);
    for (int t = started; t < threads; t++)
        pixels_worker(&jobs[t]);
    for (int t = 1; t < started; t++)
        pthread_join(tid[t], NULL);
    for (int t = 0; t < threads; t++)
        if (jobs[t].st != SEG_STATUS_OK) {
            free(counts);
            return seg_error(jobs[t].st, "%s", jobs[t].err);
        }
    if (cache_path && cache_path[0]) {
        enum seg_status st = pixels_cache_write(ds, cache_path, counts);
        if (st != SEG_STATUS_OK)
            seg_data_warn("class statistics cache not saved: %s", seg_last_error());
    }
    *out = counts;
    return SEG_STATUS_OK;
}

enum seg_status seg_dataset_class_presence(struct seg_dataset *ds, const char *cache_path,
                                           int threads, uint32_t **out)
{
    *out = NULL;
    uint32_t *counts = NULL;
    enum seg_status st = seg_dataset_class_pixels(ds, cache_path, threads, &counts);
    if (st != SEG_STATUS_OK)
        return st;
    uint32_t *masks = calloc((size_t)ds->n, sizeof *masks);
    if (!masks) {
        free(counts);
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "class presence: out of host memory");
    }
    int k = ds->num_classes < 32 ? ds->num_classes : 32;
    for (int i = 0; i < ds->n; i++)
        for (int c = 0; c < k; c++)
            if (counts[(size_t)i * ds->num_classes + c])
                masks[i] |= 1u << c;
    free(counts);
    *out = masks;
    return SEG_STATUS_OK;
}
