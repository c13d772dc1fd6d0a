/* loader.c: the background loader. Worker threads load, augment and normalise samples
 * straight into a ring of `prefetch` batch slots; batches are handed out in order.
 *
 * Determinism: the stream is a sequence of positions p = 0, 1, ...; epoch e = p / L and
 * k = p % L. The dataset index of p comes from the epoch's order (computed under the
 * lock, in epoch order) and all randomness of the sample from (seed, e, k), so the
 * batches do not depend on the number of threads or on scheduling. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

#define CB_SUB_EPOCH 3000   /* SDCA's SUB_EPOCH_SIZE */
#define RNG_TAG_ORDER 0x6f72646572ull

static const float caffe_mean_bgr[3] = {104.00698793f, 116.66876762f, 122.67891434f};
static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
static const float imagenet_std[3] = {0.229f, 0.224f, 0.225f};

void seg_data_normalize(float *x, int n, int h, int w, enum seg_norm mode)
{
    size_t plane = (size_t)h * w;
    for (int b = 0; b < n; b++) {
        float *r = x + (size_t)b * 3 * plane, *g = r + plane, *bl = g + plane;
        if (mode == SEG_NORM_DEEPLAB) {
            for (size_t i = 0; i < plane; i++) {
                float t = r[i];
                r[i] = bl[i] - caffe_mean_bgr[0];
                g[i] -= caffe_mean_bgr[1];
                bl[i] = t - caffe_mean_bgr[2];
            }
        } else if (mode == SEG_NORM_IMAGENET) {
            float *ch[3] = {r, g, bl};
            for (int k = 0; k < 3; k++)
                for (size_t i = 0; i < plane; i++)
                    ch[k][i] = (ch[k][i] / 255.0f - imagenet_mean[k]) / imagenet_std[k];
        }
    }
}

void seg_data_denormalize(float *x, int n, int h, int w, enum seg_norm mode)
{
    size_t plane = (size_t)h * w;
    for (int b = 0; b < n; b++) {
        float *r = x + (size_t)b * 3 * plane, *g = r + plane, *bl = g + plane;
        if (mode == SEG_NORM_DEEPLAB) {
            for (size_t i = 0; i < plane; i++) {
                float t = r[i];
                r[i] = bl[i] + caffe_mean_bgr[2];
                g[i] += caffe_mean_bgr[1];
                bl[i] = t + caffe_mean_bgr[0];
            }
        } else if (mode == SEG_NORM_IMAGENET) {
            float *ch[3] = {r, g, bl};
            for (int k = 0; k < 3; k++)
                for (size_t i = 0; i < plane; i++)
                    ch[k][i] = (ch[k][i] * imagenet_std[k] + imagenet_mean[k]) * 255.0f;
        }
    }
}

enum seg_status seg_data_batch_image(const struct seg_data_batch *b, int i, enum seg_norm norm,
                                     struct seg_image *out)
{
    if (i < 0 || i >= b->n)
        return seg_error(SEG_STATUS_INVALID, "batch: item %d out of range [0, %d)", i, b->n);
    size_t plane = (size_t)b->h * b->w;
    float *tmp = malloc(3 * plane * sizeof *tmp);
    if (!tmp)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "batch: out of host memory");
    memcpy(tmp, b->images + (size_t)i * 3 * plane, 3 * plane * sizeof *tmp);
    seg_data_denormalize(tmp, 1, b->h, b->w, norm);
    enum seg_status st = seg_image_alloc(out, b->w, b->h, 3);
    if (st == SEG_STATUS_OK)
        for (size_t p = 0; p < plane; p++)
            for (int k = 0; k < 3; k++)
                out->data[3 * p + k] = seg_clamp_u8(tmp[k * plane + p]);
    free(tmp);
    return st;
}

void seg_loader_opts_defaults(struct seg_loader_opts *o)
{
    memset(o, 0, sizeof *o);
    seg_augment_defaults(&o->aug);
    o->batch = 1;
    o->workers = 2;
    o->prefetch = 2;
    o->seed = 1;
    o->repeat = true;
}

struct slot {
    struct seg_data_batch b;
    size_t          img_cap, lbl_cap;   /* elements allocated */
    int64_t         id;                 /* batch number this slot holds */
    int             nitems, done;
    bool            ready, released;
    enum seg_status st;
    char            err[1024];
};

struct seg_loader {
    struct seg_loader_opts o;              /* o.batch: this shard's items a batch */
    int64_t                gbatch;         /* the unsharded batch */
    struct seg_dataset    *ds;
    int64_t                epoch_len, total;   /* total < 0: endless */
    int                    fixed_w, fixed_h;   /* 0: per-sample size (batch 1) */
    int                    fixed_lw, fixed_lh; /* labels */
    pthread_mutex_t        mu;
    pthread_cond_t         work_cv, done_cv;
    pthread_t             *tids;
    int                    nthreads;
    bool                   stop;
    int64_t                next_pos, base, consumed;
    struct slot           *slots;
    int                    nslots;
    enum seg_status        failed;
    char                   failed_msg[1024];
    /* sampling */
    int64_t                order_epoch;
    int                   *order;
    int                   *order_class;    /* RARE_CLASS: the class each draw was for */
    double                *rcs_prob;       /* RARE_CLASS: the class distribution */
    int                  **cls_files;
    int                   *cls_count, *cls_next;
    struct seg_data_rng    cb_rng;
};

static void slot_assign(struct seg_loader *l, struct slot *s, int64_t id)
{
    s->id = id;
    s->done = 0;
    s->ready = s->released = false;
    s->st = SEG_STATUS_OK;
    s->err[0] = '\0';
    int64_t first = id * l->o.batch, left = l->total < 0 ? l->o.batch : l->total - first;
    s->nitems = (int)(left < 0 ? 0 : left < l->o.batch ? left : l->o.batch);
}

/* The unsharded stream position of this shard's position p. */
static int64_t global_pos(const struct seg_loader *l, int64_t p)
{
    int64_t b = l->o.batch;
    return p / b * l->gbatch + (int64_t)l->o.shard_rank * b + p % b;
}

/* ---- epoch orders ---- */

static void shuffle(int *v, int n, struct seg_data_rng *r)
{
    for (int i = n - 1; i > 0; i--) {
        int j = seg_data_rng_int(r, i + 1), t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* The class that u in [0, sum of w) falls on, walking the weights in order; classes
 * without files never come (rounding at the top end falls back to the last with files). */
static int draw_class(const double *w, const int *count, int k, double u)
{
    int c = 0;
    while (c < k - 1 && (u >= w[c] || !count[c])) {
        u -= w[c];
        c++;
    }
    while (!count[c])
        c--;
    return c;
}

/* SDCA's class-balanced draws for one sub-epoch; per-class file lists and their cursors
 * carry over between sub-epochs. */
static void class_balanced_epoch(struct seg_loader *l)
{
    int k = l->ds->num_classes;
    double dist[32] = {0}, sum = 0, w[32];
    for (int64_t i = 0; i < l->epoch_len; i++) {
        double tot = 0;
        for (int c = 0; c < k; c++) {
            w[c] = l->cls_count[c] ? 1.0 / log(1.01 + (sum > 0 ? dist[c] / sum : 0.0)) : 0.0;
            tot += w[c];
        }
        int c = draw_class(w, l->cls_count, k, seg_data_rng_uniform(&l->cb_rng) * tot);
        if (l->cls_next[c] >= l->cls_count[c]) {
            shuffle(l->cls_files[c], l->cls_count[c], &l->cb_rng);
            l->cls_next[c] = 0;
        }
        int f = l->cls_files[c][l->cls_next[c]++];
        l->order[i] = f;
        uint32_t m = l->o.presence[f];
        for (int cc = 0; cc < k; cc++)
            if (m & (1u << cc)) {
                dist[cc] += 1;
                sum += 1;
            }
    }
}

/* DAFormer's rare-class draws for one sub-epoch: a class from the fixed distribution,
 * then a file uniformly among those holding enough of it. */
static void rare_class_epoch(struct seg_loader *l)
{
    int k = l->ds->num_classes;
    for (int64_t i = 0; i < l->epoch_len; i++) {
        int c = draw_class(l->rcs_prob, l->cls_count, k, seg_data_rng_uniform(&l->cb_rng));
        int j = seg_data_rng_int(&l->cb_rng, l->cls_count[c]);
        l->order[i] = l->cls_files[c][j];
        l->order_class[i] = c;
    }
}

/* Under the lock. Positions only grow, so epochs are asked for in order. */
static int order_lookup(struct seg_loader *l, int64_t pos, int *cls)
{
    int64_t e = pos / l->epoch_len;
    while (l->order_epoch < e) {
        int64_t ne = l->order_epoch + 1;
        if (l->o.sampling == SEG_SAMPLING_CLASS_BALANCED) {
            class_balanced_epoch(l);
        } else if (l->o.sampling == SEG_SAMPLING_RARE_CLASS) {
            rare_class_epoch(l);
        } else if (l->o.sampling == SEG_SAMPLING_SHUFFLE) {
            struct seg_data_rng r;
            seg_data_rng_init(&r, l->o.seed, (uint64_t)ne, RNG_TAG_ORDER);
            for (int i = 0; i < l->ds->n; i++)
                l->order[i] = i;
            shuffle(l->order, l->ds->n, &r);
        }
        l->order_epoch = ne;
    }
    *cls = l->o.sampling == SEG_SAMPLING_RARE_CLASS ? l->order_class[pos % l->epoch_len] : -1;
    if (l->o.sampling == SEG_SAMPLING_SEQUENTIAL)
        return (int)(pos % l->epoch_len);
    return l->order[pos % l->epoch_len];
}

/* ---- producing one item ---- */

static enum seg_status ensure_cap(struct slot *s, int h, int w, int lh, int lw, bool labels)
{
    size_t need = (size_t)s->nitems * 3 * h * w;
    if (need > s->img_cap) {
        float *p = realloc(s->b.images, need * sizeof *p);
        if (!p)
            return seg_error(SEG_STATUS_OUT_OF_MEMORY, "loader: out of host memory");
        s->b.images = p;
        s->img_cap = need;
    }
    need = (size_t)s->nitems * lh * lw;
    if (labels && need > s->lbl_cap) {
        int32_t *p = realloc(s->b.labels, need * sizeof *p);
        if (!p)
            return seg_error(SEG_STATUS_OUT_OF_MEMORY, "loader: out of host memory");
        s->b.labels = p;
        s->lbl_cap = need;
    }
    return SEG_STATUS_OK;
}

/* Pixels of class c in a label image. */
static int64_t class_pixels_in(const struct seg_image *lb, int c)
{
    int64_t n = 0;
    for (size_t p = 0; p < (size_t)lb->w * lb->h; p++)
        n += lb->data[p] == c;
    return n;
}

static enum seg_status produce(struct seg_loader *l, struct slot *s, int j, int64_t pos, int idx, int cls)
{
    const struct seg_dataset *ds = l->ds;
    struct seg_data_rng rng;
    int64_t e = pos / l->epoch_len, k = pos % l->epoch_len;
    seg_data_rng_init(&rng, l->o.seed, (uint64_t)e, (uint64_t)k);
    struct seg_image im = {0}, lb = {0};
    enum seg_status st = SEG_STATUS_OK;
    for (int attempt = 0; attempt < ds->n; attempt++) {
        st = seg_dataset_load(ds, idx, &im, ds->has_labels ? &lb : NULL);
        if (st == SEG_STATUS_OK || !ds->skip_bad)
            break;
        seg_data_warn("skipping %s: %s", ds->names[idx], seg_last_error());
        atomic_fetch_add(&((struct seg_dataset *)ds)->skipped, 1);
        idx = (idx + 1) % ds->n;
    }
    if (st == SEG_STATUS_OK)
        st = seg_augment_apply(&l->o.aug, &rng, &im, ds->has_labels ? &lb : NULL);
    /* rare-class sampling: another random crop of the same file while this one holds too
     * little of the class it was drawn for (DAFormer: up to 10 crops in all) */
    for (int tries = 1; st == SEG_STATUS_OK && cls >= 0 && ds->has_labels && l->o.rcs_min_crop_ratio > 0 &&
                        tries < 10 &&
                        (double)class_pixels_in(&lb, cls) <= l->o.rcs_min_pixels * (double)l->o.rcs_min_crop_ratio;
         tries++) {
        seg_image_free(&im);
        seg_image_free(&lb);
        st = seg_dataset_load(ds, idx, &im, &lb);
        if (st == SEG_STATUS_OK)
            st = seg_augment_apply(&l->o.aug, &rng, &im, &lb);
    }
    if (st != SEG_STATUS_OK)
        goto done;
    int h = im.h, w = im.w, lh = ds->has_labels ? lb.h : h, lw = ds->has_labels ? lb.w : w;
    if (l->fixed_w) {
        if (w != l->fixed_w || h != l->fixed_h || lw != l->fixed_lw || lh != l->fixed_lh) {
            st = seg_error(SEG_STATUS_FORMAT,
                           "loader: %s came out %dx%d (labels %dx%d) where the batch is %dx%d (labels %dx%d)",
                           ds->images[idx], w, h, lw, lh, l->fixed_w, l->fixed_h, l->fixed_lw, l->fixed_lh);
            goto done;
        }
    } else if ((st = ensure_cap(s, h, w, lh, lw, ds->has_labels)) != SEG_STATUS_OK) {
        goto done;
    }
    if (!l->fixed_w) { /* batch 1: this item alone sets the size */
        s->b.h = h;
        s->b.w = w;
        s->b.lh = lh;
        s->b.lw = lw;
    }
    size_t plane = (size_t)h * w;
    float *dst = s->b.images + (size_t)j * 3 * plane;
    for (size_t p = 0; p < plane; p++)
        for (int c = 0; c < 3; c++)
            dst[c * plane + p] = im.data[3 * p + c];
    seg_data_normalize(dst, 1, h, w, l->o.norm);
    if (ds->has_labels) {
        int32_t *ld = s->b.labels + (size_t)j * lh * lw;
        for (size_t p = 0; p < (size_t)lh * lw; p++)
            ld[p] = lb.data[p];
    }
    s->b.indices[j] = idx;
done:
    seg_image_free(&im);
    seg_image_free(&lb);
    return st;
}

static void item_done(struct seg_loader *l, struct slot *s, enum seg_status st)
{
    if (st != SEG_STATUS_OK && s->st == SEG_STATUS_OK) {
        s->st = st;
        snprintf(s->err, sizeof s->err, "%s", seg_last_error());
    }
    if (++s->done == s->nitems) {
        s->ready = true;
        pthread_cond_broadcast(&l->done_cv);
    }
}

static bool can_hand_out(const struct seg_loader *l)
{
    return (l->total < 0 || l->next_pos < l->total) &&
           l->next_pos / l->o.batch < l->base + l->nslots;
}

static void *worker(void *arg)
{
    struct seg_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        if (!can_hand_out(l)) {
            pthread_cond_wait(&l->work_cv, &l->mu);
            continue;
        }
        int64_t pos = l->next_pos++;
        int cls, idx = order_lookup(l, global_pos(l, pos), &cls);
        struct slot *s = &l->slots[(pos / l->o.batch) % l->nslots];
        pthread_mutex_unlock(&l->mu);
        enum seg_status st = produce(l, s, (int)(pos % l->o.batch), global_pos(l, pos), idx, cls);
        pthread_mutex_lock(&l->mu);
        item_done(l, s, st);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ---- public ---- */

/* The per-class file lists of the class-driven samplings: class-balanced (files where the
 * class is present) and rare-class (files with more than rcs_min_pixels of it, and the
 * class distribution softmax((1 - f_c) / T) over the classes that have such files). */
static enum seg_status setup_class_sampling(struct seg_loader *l)
{
    int k = l->ds->num_classes, n = l->ds->n;
    bool rare = l->o.sampling == SEG_SAMPLING_RARE_CLASS;
    if (!rare && !l->o.presence)
        return seg_error(SEG_STATUS_INVALID, "loader: class-balanced sampling needs class presence masks");
    if (rare && (!l->o.class_pixels || !(l->o.rcs_temperature > 0)))
        return seg_error(SEG_STATUS_INVALID, "loader: rare-class sampling needs class pixel counts and a positive "
                                             "temperature");
    l->cls_files = calloc((size_t)k, sizeof *l->cls_files);
    l->cls_count = calloc((size_t)k, sizeof *l->cls_count);
    l->cls_next = calloc((size_t)k, sizeof *l->cls_next);
    l->rcs_prob = calloc((size_t)k, sizeof *l->rcs_prob);
    if (!l->cls_files || !l->cls_count || !l->cls_next || !l->rcs_prob)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "loader: out of host memory");
    bool any = false;
    double total = 0, top = -1e300, z = 0; /* rcs_prob holds each class's pixels until the softmax */
    for (int c = 0; c < k; c++) {
        l->cls_files[c] = malloc((size_t)n * sizeof **l->cls_files);
        if (!l->cls_files[c])
            return seg_error(SEG_STATUS_OUT_OF_MEMORY, "loader: out of host memory");
        for (int i = 0; i < n; i++) {
            bool has = rare ? l->o.class_pixels[(size_t)i * k + c] > (uint32_t)l->o.rcs_min_pixels
                            : (l->o.presence[i] & (1u << c)) != 0;
            if (has)
                l->cls_files[c][l->cls_count[c]++] = i;
            if (rare)
                l->rcs_prob[c] += l->o.class_pixels[(size_t)i * k + c];
        }
        total += l->rcs_prob[c];
        any |= l->cls_count[c] > 0;
    }
    if (!any && rare)
        return seg_error(SEG_STATUS_INVALID, "loader: no image holds more than %d pixels of any class (rare-class "
                                             "sampling, data.rcs_min_pixels)", l->o.rcs_min_pixels);
    if (!any)
        return seg_error(SEG_STATUS_INVALID, "loader: no image contains any class (class-balanced sampling)");
    if (rare) { /* softmax of (1 - f_c) / T, max-subtracted */
        for (int c = 0; c < k; c++) {
            l->rcs_prob[c] = (1.0 - (total > 0 ? l->rcs_prob[c] / total : 0.0)) / l->o.rcs_temperature;
            if (l->cls_count[c] && l->rcs_prob[c] > top)
                top = l->rcs_prob[c];
        }
        for (int c = 0; c < k; c++) {
            l->rcs_prob[c] = l->cls_count[c] ? exp(l->rcs_prob[c] - top) : 0.0;
            z += l->rcs_prob[c];
        }
        for (int c = 0; c < k; c++)
            l->rcs_prob[c] /= z;
    }
    seg_data_rng_init(&l->cb_rng, l->o.seed, 0, RNG_TAG_ORDER + 1);
    return SEG_STATUS_OK;
}

/* Frees the batch slots, the sampling tables and l itself (threads already joined). */
static void loader_free(struct seg_loader *l)
{
    if (l->slots)
        for (int i = 0; i < l->nslots; i++) {
            free(l->slots[i].b.images);
            free(l->slots[i].b.labels);
            free(l->slots[i].b.indices);
        }
    free(l->slots);
    free(l->order);
    if (l->cls_files)
        for (int c = 0; c < l->ds->num_classes; c++)
            free(l->cls_files[c]);
    free(l->cls_files);
    free(l->cls_count);
    free(l->cls_next);
    free(l->rcs_prob);
    free(l->order_class);
    free(l);
}

enum seg_status seg_loader_create(const struct seg_loader_opts *o, struct seg_loader **out)
{
    *out = NULL;
    if (!o->ds || o->ds->n < 1)
        return seg_error(SEG_STATUS_INVALID, "loader: no dataset");
    if (o->batch < 1 || o->workers < 0 || o->workers > 256 || o->prefetch < 1 || o->prefetch > 64)
        return seg_error(SEG_STATUS_INVALID, "loader: batch %d, workers %d, prefetch %d out of range",
                         o->batch, o->workers, o->prefetch);
    enum seg_status st = seg_augment_check(&o->aug);
    if (st != SEG_STATUS_OK)
        return st;
    int shards = o->shard_count > 1 ? o->shard_count : 1;
    if (o->batch % shards || o->shard_rank < 0 || o->shard_rank >= shards)
        return seg_error(SEG_STATUS_INVALID, "loader: a batch of %d cannot be split into %d equal shards (rank %d)",
                         o->batch, shards, o->shard_rank);
    struct seg_loader *l = calloc(1, sizeof *l);
    if (!l)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "loader: out of host memory");
    l->o = *o;
    l->gbatch = o->batch;
    l->o.batch = o->batch / shards;
    l->o.shard_rank = shards > 1 ? o->shard_rank : 0;
    o = &l->o;
    l->ds = o->ds;
    const struct seg_augment *a = &o->aug;
    bool random_size = a->short_min > 0 || a->nscale_choices > 0 || a->scale_max > a->scale_min;
    if (a->crop_w) {
        l->fixed_w = l->fixed_lw = a->crop_w;
        l->fixed_h = l->fixed_lh = a->crop_h;
    } else if (o->batch > 1) {
        if (random_size) {
            int b = o->batch;
            free(l);
            return seg_error(SEG_STATUS_INVALID, "loader: batches of %d with random sizes need a crop", b);
        }
        /* sizes are deterministic: take them from the first sample; any other size fails */
        st = SEG_STATUS_OK;
        struct seg_image im, lb = {0};
        struct seg_data_rng r;
        seg_data_rng_init(&r, 0, 0, 0);
        for (int i = 0; i < o->ds->n; i++) { /* the first sample that loads */
            st = seg_dataset_load(o->ds, i, &im, o->ds->has_labels ? &lb : NULL);
            if (st == SEG_STATUS_OK || !o->ds->skip_bad)
                break;
        }
        if (st == SEG_STATUS_OK)
            st = seg_augment_apply(a, &r, &im, o->ds->has_labels ? &lb : NULL);
        l->fixed_w = im.w;
        l->fixed_h = im.h;
        l->fixed_lw = o->ds->has_labels ? lb.w : im.w;
        l->fixed_lh = o->ds->has_labels ? lb.h : im.h;
        seg_image_free(&im);
        seg_image_free(&lb);
        if (st != SEG_STATUS_OK) {
            free(l);
            return st;
        }
    }
    l->epoch_len = o->sampling == SEG_SAMPLING_CLASS_BALANCED || o->sampling == SEG_SAMPLING_RARE_CLASS
                       ? (o->epoch_size > 0 ? o->epoch_size : CB_SUB_EPOCH)
                       : o->ds->n;
    l->total = o->repeat ? -1 : l->epoch_len;
    if (l->total >= 0) { /* this shard's items of the one-epoch stream */
        int64_t rem = l->total % l->gbatch - (int64_t)o->shard_rank * o->batch;
        l->total = l->total / l->gbatch * o->batch + (rem < 0 ? 0 : rem > o->batch ? o->batch : rem);
    }
    l->order_epoch = -1;
    l->nslots = o->prefetch;
    l->order = malloc((size_t)l->epoch_len * sizeof *l->order);
    l->slots = calloc((size_t)l->nslots, sizeof *l->slots);
    if (!l->order || !l->slots) {
        st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "loader: out of host memory");
        goto fail;
    }
    if (o->sampling == SEG_SAMPLING_RARE_CLASS &&
        !(l->order_class = malloc((size_t)l->epoch_len * sizeof *l->order_class))) {
        st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "loader: out of host memory");
        goto fail;
    }
    if ((o->sampling == SEG_SAMPLING_CLASS_BALANCED || o->sampling == SEG_SAMPLING_RARE_CLASS) &&
        (st = setup_class_sampling(l)) != SEG_STATUS_OK)
        goto fail;
    for (int i = 0; i < l->nslots; i++) {
        struct slot *s = &l->slots[i];
        slot_assign(l, s, i);
        s->nitems = o->batch; /* capacity; reassigned below */
        s->b.indices = calloc((size_t)o->batch, sizeof *s->b.indices);
        if (!s->b.indices) {
            st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "loader: out of host memory");
            goto fail;
        }
        if (l->fixed_w && (st = ensure_cap(s, l->fixed_h, l->fixed_w, l->fixed_lh, l->fixed_lw,
                                           o->ds->has_labels)) != SEG_STATUS_OK)
            goto fail;
        s->b.h = l->fixed_h;
        s->b.w = l->fixed_w;
        s->b.lh = l->fixed_lh;
        s->b.lw = l->fixed_lw;
        slot_assign(l, s, i);
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->work_cv, NULL);
    pthread_cond_init(&l->done_cv, NULL);
    if (o->workers > 0) {
        l->tids = calloc((size_t)o->workers, sizeof *l->tids);
        if (!l->tids) {
            st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "loader: out of host memory");
            l->nthreads = 0;
            seg_loader_destroy(l);
            return st;
        }
        for (int i = 0; i < o->workers; i++) {
            if (pthread_create(&l->tids[i], NULL, worker, l) != 0) {
                st = seg_error(SEG_STATUS_BACKEND, "loader: cannot start worker thread %d", i);
                seg_loader_destroy(l);
                return st;
            }
            l->nthreads++;
        }
    }
    *out = l;
    return SEG_STATUS_OK;
fail:
    loader_free(l);
    return st;
}

int64_t seg_loader_batches(const struct seg_loader *l)
{
    return l->total < 0 ? -1 : (l->total + l->o.batch - 1) / l->o.batch;
}

enum seg_status seg_loader_next(struct seg_loader *l, struct seg_data_batch **out)
{
    *out = NULL;
    pthread_mutex_lock(&l->mu);
    enum seg_status st = SEG_STATUS_OK;
    int64_t b = l->consumed;
    if (l->failed != SEG_STATUS_OK) {
        st = seg_error(l->failed, "%s", l->failed_msg);
        goto out;
    }
    if (l->total >= 0 && b * l->o.batch >= l->total)
        goto out;
    if (b >= l->base + l->nslots) {
        st = seg_error(SEG_STATUS_INVALID, "loader: release a batch before asking for more than %d",
                       l->nslots);
        goto out;
    }
    struct slot *s = &l->slots[b % l->nslots];
    if (l->nthreads == 0) {
        while (l->next_pos < (b + 1) * l->o.batch && can_hand_out(l)) {
            int64_t pos = l->next_pos++;
            int64_t g = global_pos(l, pos);
            int cls, idx = order_lookup(l, g, &cls);
            item_done(l, s, produce(l, s, (int)(pos % l->o.batch), g, idx, cls));
        }
    }
    while (!s->ready)
        pthread_cond_wait(&l->done_cv, &l->mu);
    if (s->st != SEG_STATUS_OK) {
        l->failed = s->st;
        snprintf(l->failed_msg, sizeof l->failed_msg, "%s", s->err);
        st = seg_error(s->st, "%s", s->err);
        goto out;
    }
    s->b.n = s->nitems;
    s->b.position = global_pos(l, b * l->o.batch);
    s->b.epoch = s->b.position / l->epoch_len;
    if (!l->ds->has_labels)
        s->b.labels = NULL;
    l->consumed++;
    *out = &s->b;
out:
    pthread_mutex_unlock(&l->mu);
    return st;
}

void seg_loader_release(struct seg_loader *l, struct seg_data_batch *b)
{
    if (!l || !b)
        return;
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < l->nslots; i++)
        if (&l->slots[i].b == b)
            l->slots[i].released = true;
    for (;;) {
        struct slot *s = &l->slots[l->base % l->nslots];
        if (!s->released || s->id != l->base)
            break;
        slot_assign(l, s, l->base + l->nslots);
        l->base++;
    }
    pthread_cond_broadcast(&l->work_cv);
    pthread_mutex_unlock(&l->mu);
}

void seg_loader_destroy(struct seg_loader *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_broadcast(&l->work_cv);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->nthreads; i++)
        pthread_join(l->tids[i], NULL);
    free(l->tids);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->work_cv);
    pthread_cond_destroy(&l->done_cv);
    loader_free(l);
}
