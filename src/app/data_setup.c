/* data_setup.c: configuration keys to datasets and loaders. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/data_setup.h"

enum seg_status seg_source_sampling_config(const struct seg_config *c, struct seg_loader_opts *lo)
{
    const char *sampling = seg_config_str(c, "data.source_sampling");
    long min_pixels;
    double temp, crop_ratio;
    if (strcmp(sampling, "shuffle") && strcmp(sampling, "class_balanced") && strcmp(sampling, "rare_class"))
        return seg_error(SEG_STATUS_INVALID, "config data.source_sampling = '%s': shuffle, class_balanced or rare_class",
                         sampling);
    SEG_TRY(seg_config_int(c, "data.rcs_min_pixels", &min_pixels));
    SEG_TRY(seg_config_float(c, "data.rcs_temperature", &temp));
    SEG_TRY(seg_config_float(c, "data.rcs_min_crop_ratio", &crop_ratio));
    if (!(temp > 0))
        return seg_error(SEG_STATUS_INVALID, "config data.rcs_temperature = %g: must be positive", temp);
    if (min_pixels < 0 || min_pixels > 1000000000L)
        return seg_error(SEG_STATUS_INVALID, "config data.rcs_min_pixels = %ld: 0 to 1e9", min_pixels);
    if (!(crop_ratio >= 0))
        return seg_error(SEG_STATUS_INVALID, "config data.rcs_min_crop_ratio = %g: >= 0", crop_ratio);
    if (lo) {
        lo->sampling = !strcmp(sampling, "rare_class")       ? SEG_SAMPLING_RARE_CLASS
                       : !strcmp(sampling, "class_balanced") ? SEG_SAMPLING_CLASS_BALANCED
                                                             : SEG_SAMPLING_SHUFFLE;
        lo->rcs_temperature = temp;
        lo->rcs_min_pixels = (int)min_pixels;
        lo->rcs_min_crop_ratio = (float)crop_ratio;
    }
    return SEG_STATUS_OK;
}

/* The source's options: SDCA's photometric augmentation and class-balanced sampling, and
 * DAFormer's rare-class sampling (the per-image class pixel counts both derive from are
 * cached in train.out; the tables are owned by the domain). */
static enum seg_status source_extras(const struct seg_config *c, struct seg_domain *d, struct seg_loader_opts *lo)
{
    bool photometric;
    enum seg_status st = seg_config_bool(c, "data.source_photometric", &photometric);
    if (st)
        return st;
    if (photometric)
        seg_augment_sdca_photometric(&lo->aug);
    if ((st = seg_source_sampling_config(c, lo)))
        return st;
    if (lo->sampling == SEG_SAMPLING_SHUFFLE)
        return SEG_STATUS_OK;
    bool rare = lo->sampling == SEG_SAMPLING_RARE_CLASS;
    char cache[4200];
    long workers;
    if ((st = seg_config_int(c, "data.workers", &workers)))
        return st;
    snprintf(cache, sizeof cache, "%s/source_class_pixels.txt", seg_config_str(c, "train.out"));
    if ((st = seg_dir_create(seg_config_str(c, "train.out"))))
        return st;
    int threads = workers > 1 ? (int)workers : 1;
    if (rare) {
        if ((st = seg_dataset_class_pixels(d->ds, cache, threads, &d->class_pixels)))
            return st;
        lo->class_pixels = d->class_pixels;
        return SEG_STATUS_OK;
    }
    if ((st = seg_dataset_class_presence(d->ds, cache, threads, &d->presence)))
        return st;
    lo->presence = d->presence;
    return SEG_STATUS_OK;
}

/* Training geometry of both domains (PLCA, DASS, SDCA's self-training): data.short_side
 * "MIN-MAX" replaces the fixed resize by a random shorter side, data.scale_range "LO,HI" by
 * the file's size times a random factor, data.scales multiplies the resize by one of a list;
 * data.crop "WxH" crops after it. */
static enum seg_status train_geometry(const struct seg_config *c, struct seg_augment *a)
{
    const char *ss = seg_config_str(c, "data.short_side"), *range = seg_config_str(c, "data.scale_range");
    char tail;
    if (ss[0]) {
        if (sscanf(ss, "%d-%d%c", &a->short_min, &a->short_max, &tail) != 2 || a->short_min < 1 ||
            a->short_max < a->short_min)
            return seg_error(SEG_STATUS_INVALID, "config data.short_side = '%s': expected MIN-MAX, e.g. 760-988", ss);
        a->resize_w = a->resize_h = 0;
    }
    if (range[0]) {
        float lh[2];
        int n;
        if (ss[0])
            return seg_error(SEG_STATUS_INVALID, "config data.scale_range = '%s' and data.short_side = '%s' are exclusive "
                             "(both replace the *_size resize): set one", range, ss);
        if (seg_config_floats(c, "data.scale_range", 2, lh, &n) || n != 2 || lh[1] < lh[0])
            return seg_error(SEG_STATUS_INVALID, "config data.scale_range = '%s': expected LO,HI with 0 < LO <= HI <= 16, "
                             "e.g. 0.5,1.5", range);
        a->resize_w = a->resize_h = 0; /* relative to the file's own size */
        a->scale_min = lh[0];
        a->scale_max = lh[1];
    }
    if (seg_config_str(c, "data.scales")[0]) {
        if (range[0])
            return seg_error(SEG_STATUS_INVALID, "config data.scales = '%s' and data.scale_range = '%s' are exclusive: set one",
                             seg_config_str(c, "data.scales"), range);
        enum seg_status st = seg_config_floats(c, "data.scales", SEG_AUGMENT_MAX_SCALES, a->scale_choices,
                                               &a->nscale_choices);
        if (st)
            return st;
    }
    if (seg_config_str(c, "data.crop")[0])
        return seg_config_size(c, "data.crop", &a->crop_w, &a->crop_h);
    return SEG_STATUS_OK;
}

enum seg_status seg_domain_open(const struct seg_config *c, enum seg_domain_role role, uint64_t seed,
                                struct seg_domain *out)
{
    return seg_domain_open_shard(c, role, seed, 0, 1, out);
}

/* The role's dataset as the loader reads it (also what `train --check` opens). */
static enum seg_status domain_dataset(const struct seg_config *c, enum seg_domain_role role, struct seg_dataset **ds,
                                      enum seg_norm *norm_out)
{
    bool src = role == SEG_ROLE_SOURCE;
    bool labelled = role == SEG_ROLE_SOURCE || role == SEG_ROLE_VAL;
    bool pass = role == SEG_ROLE_VAL || role == SEG_ROLE_TARGET_PASS; /* one pass over data.val_split */
    const char *kind = seg_config_str(c, src ? "data.source" : "data.target");
    const char *root = seg_config_str(c, src ? "data.source_root" : "data.target_root");
    const char *list = seg_config_str(c, src ? "data.source_list" : pass ? "data.val_list" : "data.target_list");
    const char *norm = seg_config_str(c, "data.norm");
    int k = seg_dataset_kind_from_name(kind);
    if (k < 0)
        return seg_error(SEG_STATUS_INVALID, "config data.%s = '%s': gta5, synthia, cityscapes or crosscity",
                         src ? "source" : "target", kind);
    if (!root[0])
        return seg_error(SEG_STATUS_INVALID, "config data.%s_root is empty: point it at the dataset folder",
                         src ? "source" : "target");
    long nc;
    enum seg_status st = seg_config_int(c, "model.num_classes", &nc);
    if (st)
        return st;
    if (!strcmp(norm, "deeplab"))
        *norm_out = SEG_NORM_DEEPLAB;
    else if (!strcmp(norm, "imagenet"))
        *norm_out = SEG_NORM_IMAGENET;
    else
        return seg_error(SEG_STATUS_INVALID, "config data.norm = '%s': deeplab or imagenet", norm);
    struct seg_dataset_opts o = {0};
    o.kind = (enum seg_dataset_kind)k;
    o.root = root;
    o.split = pass ? seg_config_str(c, "data.val_split") : "train";
    o.city = seg_config_str(c, "data.city");
    o.list = list[0] ? list : NULL;
    o.num_classes = (int)nc;
    o.labels = labelled;
    if (!pass) /* pseudo labels replacing the training labels (self-training) */
        o.label_dir = seg_config_str(c, src ? "data.source_labels" : "data.target_labels");
    if ((st = seg_config_bool(c, "data.skip_bad", &o.skip_bad)))
        return st;
    return seg_dataset_open(&o, ds);
}

enum seg_status seg_domain_dataset(const struct seg_config *c, enum seg_domain_role role, struct seg_dataset **out)
{
    enum seg_norm norm;
    *out = NULL;
    return domain_dataset(c, role, out, &norm);
}

enum seg_status seg_domain_open_shard(const struct seg_config *c, enum seg_domain_role role, uint64_t seed,
                                      int rank, int nranks, struct seg_domain *out)
{
    memset(out, 0, sizeof *out);
    bool src = role == SEG_ROLE_SOURCE;
    long batch, workers;
    enum seg_status st = seg_config_int(c, "data.batch", &batch);
    if (!st) st = seg_config_int(c, "data.workers", &workers);
    if (!st && role != SEG_ROLE_VAL && role != SEG_ROLE_TARGET_PASS && nranks > 1 && batch % nranks)
        st = seg_error(SEG_STATUS_INVALID, "config data.batch = %ld: the global batch must split evenly over %d ranks",
                       batch, nranks);
    if (!st) st = domain_dataset(c, role, &out->ds, &out->norm);
    if (st)
        return st;
    if (role == SEG_ROLE_TARGET_PASS)
        role = SEG_ROLE_VAL; /* everything else as a validation pass */
    struct seg_loader_opts lo;
    seg_loader_opts_defaults(&lo);
    lo.ds = out->ds;
    lo.batch = role == SEG_ROLE_VAL ? nranks : (int)batch; /* a pass: one image a rank */
    lo.shard_rank = rank;
    lo.shard_count = nranks;

    lo.workers = (int)workers;
    lo.prefetch = 3; /* the trainer holds two (this step's and the next's) */
    lo.seed = seed + (uint64_t)role * 1000003u;
    lo.norm = out->norm;
    lo.repeat = role != SEG_ROLE_VAL;
    lo.sampling = role == SEG_ROLE_VAL ? SEG_SAMPLING_SEQUENTIAL : SEG_SAMPLING_SHUFFLE;
    seg_augment_defaults(&lo.aug);
    const char *size_key = src ? "data.source_size" : role == SEG_ROLE_VAL ? "data.eval_size" : "data.target_size";
    st = seg_config_size(c, size_key, &lo.aug.resize_w, &lo.aug.resize_h);
    if (!st && role != SEG_ROLE_VAL)
        st = seg_config_bool(c, "data.mirror", &lo.aug.flip);
    if (!st && role != SEG_ROLE_VAL)
        st = train_geometry(c, &lo.aug);
    if (!st && src)
        st = source_extras(c, out, &lo);
    lo.aug.label_full_res = role == SEG_ROLE_VAL;
    if (!st)
        st = seg_loader_create(&lo, &out->loader);
    if (st)
        seg_domain_close(out);
    return st;
}

void seg_domain_close(struct seg_domain *d)
{
    seg_loader_destroy(d->loader);
    free(d->presence);
    free(d->class_pixels);
    long skipped = d->ds ? atomic_load(&d->ds->skipped) : 0;
    if (skipped)
        fprintf(stderr, "segda: skipped %ld bad sample%s of %d (data.skip_bad)\n", skipped, skipped == 1 ? "" : "s",
                d->ds->n);
    seg_dataset_close(d->ds);
    memset(d, 0, sizeof *d);
}
