/* resize.c: image resampling with PIL's semantics: bilinear (triangle filter whose support
 * widens when shrinking, i.e. antialiased) for images and nearest for label maps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

struct taps {
    int   *start, *count;
    float *w;      /* n x ksize */
    int    ksize;
};

static void taps_free(struct taps *t)
{
    free(t->start);
    free(t->count);
    free(t->w);
}

/* Weights of output pixels 0..out-1 over input 0..in-1 (PIL's precompute_coeffs). */
static enum seg_status taps_init(struct taps *t, int in, int out)
{
    double scale = (double)in / out, fs = scale > 1.0 ? scale : 1.0, support = fs;
    t->ksize = (int)ceil(support) * 2 + 1;
    t->start = malloc((size_t)out * sizeof *t->start);
    t->count = malloc((size_t)out * sizeof *t->count);
    t->w = calloc((size_t)out * t->ksize, sizeof *t->w);
    if (!t->start || !t->count || !t->w) {
        taps_free(t);
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "resize: out of host memory");
    }
    for (int x = 0; x < out; x++) {
        double center = (x + 0.5) * scale;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0)
            lo = 0;
        if (hi > in)
            hi = in;
        if (hi - lo > t->ksize)
            hi = lo + t->ksize;
        double sum = 0;
        float *w = t->w + (size_t)x * t->ksize;
        for (int j = lo; j < hi; j++) {
            double d = fabs((j - center + 0.5) / fs);
            double v = d < 1.0 ? 1.0 - d : 0.0;
            w[j - lo] = (float)v;
            sum += v;
        }
        if (sum > 0)
            for (int j = 0; j < hi - lo; j++)
                w[j] = (float)(w[j] / sum);
        else if (hi > lo)
            w[0] = 1.0f;
        t->start[x] = lo;
        t->count[x] = hi - lo;
    }
    return SEG_STATUS_OK;
}

enum seg_status seg_image_resize_bilinear(const struct seg_image *in, int w, int h,
                                          struct seg_image *out)
{
    enum seg_status st = seg_image_alloc(out, w, h, in->c);
    if (st != SEG_STATUS_OK)
        return st;
    if (w == in->w && h == in->h) {
        memcpy(out->data, in->data, (size_t)w * h * in->c);
        return SEG_STATUS_OK;
    }
    int c = in->c;
    struct taps tx = {0}, ty = {0};
    float *tmp = malloc((size_t)in->h * w * c * sizeof *tmp);
    if (!tmp || (st = taps_init(&tx, in->w, w)) != SEG_STATUS_OK ||
        (st = taps_init(&ty, in->h, h)) != SEG_STATUS_OK) {
        free(tmp);
        taps_free(&tx);
        seg_image_free(out);
        return st != SEG_STATUS_OK ? st : seg_error(SEG_STATUS_OUT_OF_MEMORY, "resize: out of host memory");
    }
    for (int y = 0; y < in->h; y++) {
        const uint8_t *row = in->data + (size_t)y * in->w * c;
        float *dst = tmp + (size_t)y * w * c;
        for (int x = 0; x < w; x++) {
            const float *wt = tx.w + (size_t)x * tx.ksize;
            const uint8_t *src = row + (size_t)tx.start[x] * c;
            for (int k = 0; k < c; k++) {
                float acc = 0;
                for (int j = 0; j < tx.count[x]; j++)
                    acc += wt[j] * src[j * c + k];
                dst[x * c + k] = acc;
            }
        }
    }
    for (int y = 0; y < h; y++) {
        const float *wt = ty.w + (size_t)y * ty.ksize;
        uint8_t *dst = out->data + (size_t)y * w * c;
        for (int i = 0; i < w * c; i++) {
            float acc = 0;
            for (int j = 0; j < ty.count[y]; j++)
                acc += wt[j] * tmp[(size_t)(ty.start[y] + j) * w * c + i];
            dst[i] = seg_clamp_u8(acc);
        }
    }
    free(tmp);
    taps_free(&tx);
    taps_free(&ty);
    return SEG_STATUS_OK;
}

enum seg_status seg_image_resize_nearest(const struct seg_image *in, int w, int h,
                                         struct seg_image *out)
{
    enum seg_status st = seg_image_alloc(out, w, h, in->c);
    if (st != SEG_STATUS_OK)
        return st;
    int c = in->c;
    int *xs = malloc((size_t)w * sizeof *xs);
    if (!xs) {
        seg_image_free(out);
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "resize: out of host memory");
    }
    double sx = (double)in->w / w, sy = (double)in->h / h;
    for (int x = 0; x < w; x++) {
        int v = (int)floor((x + 0.5) * sx);
        xs[x] = v < in->w ? v : in->w - 1;
    }
    for (int y = 0; y < h; y++) {
        int yy = (int)floor((y + 0.5) * sy);
        if (yy >= in->h)
            yy = in->h - 1;
        const uint8_t *src = in->data + (size_t)yy * in->w * c;
        uint8_t *dst = out->data + (size_t)y * w * c;
        if (c == 1)
            for (int x = 0; x < w; x++)
                dst[x] = src[xs[x]];
        else
            for (int x = 0; x < w; x++)
                memcpy(dst + (size_t)x * c, src + (size_t)xs[x] * c, (size_t)c);
    }
    free(xs);
    return SEG_STATUS_OK;
}
