/* augment.c: training-time augmentation: resize / random shorter side / random scale,
 * random crop with padding, horizontal flip, and SDCA's photometric augmentation (colour
 * jitter in a random order as torchvision's ColorJitter, random grayscale, gaussian blur
 * with reflect padding). Photometric steps work on 8-bit pixels, as PIL does. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

void seg_augment_defaults(struct seg_augment *a)
{
    memset(a, 0, sizeof *a);
    a->scale_min = a->scale_max = 1.0f;
}

void seg_augment_sdca_photometric(struct seg_augment *a)
{
    a->photometric = true;
    a->brightness = a->contrast = a->saturation = 0.5f;
    a->hue = 0.2f;
    a->gray_p = 0.2f;
    a->blur_kernel = 3;
    a->blur_sigma_min = 0.1f;
    a->blur_sigma_max = 2.0f;
}

enum seg_status seg_augment_check(const struct seg_augment *a)
{
    if (a->resize_w < 0 || a->resize_h < 0 || (!a->resize_w != !a->resize_h))
        return seg_error(SEG_STATUS_INVALID, "augment: resize needs both width and height > 0");
    if (a->short_min < 0 || a->short_max < a->short_min || (a->short_min && a->resize_w))
        return seg_error(SEG_STATUS_INVALID,
                         "augment: shorter side range [%d, %d] is invalid or combined with a resize",
                         a->short_min, a->short_max);
    if (!(a->scale_min > 0) || a->scale_max < a->scale_min || a->scale_max > 16)
        return seg_error(SEG_STATUS_INVALID, "augment: scale range [%g, %g] is invalid",
                         a->scale_min, a->scale_max);
    if (a->nscale_choices < 0 || a->nscale_choices > SEG_AUGMENT_MAX_SCALES)
        return seg_error(SEG_STATUS_INVALID, "augment: at most %d scale choices", SEG_AUGMENT_MAX_SCALES);
    if (a->nscale_choices > 0 && (a->scale_min != 1.0f || a->scale_max != 1.0f))
        return seg_error(SEG_STATUS_INVALID, "augment: scale choices and a scale range [%g, %g] are exclusive",
                         a->scale_min, a->scale_max);
    for (int i = 0; i < a->nscale_choices; i++)
        if (!(a->scale_choices[i] > 0) || a->scale_choices[i] > 16)
            return seg_error(SEG_STATUS_INVALID, "augment: scale choice %g is invalid",
                             a->scale_choices[i]);
    if (a->crop_w < 0 || a->crop_h < 0 || (!a->crop_w != !a->crop_h))
        return seg_error(SEG_STATUS_INVALID, "augment: crop needs both width and height > 0");
    if (a->label_full_res && (a->crop_w || a->flip || a->short_min || a->nscale_choices ||
                              a->scale_min != 1.0f || a->scale_max != 1.0f))
        return seg_error(SEG_STATUS_INVALID,
                         "augment: full-resolution labels go with a plain resize only");
    if (a->photometric) {
        if (a->brightness < 0 || a->contrast < 0 || a->saturation < 0 || a->hue < 0 ||
            a->hue > 0.5f || a->gray_p < 0 || a->gray_p > 1)
            return seg_error(SEG_STATUS_INVALID, "augment: photometric parameters out of range");
        if (a->blur_kernel < 0 || (a->blur_kernel && !(a->blur_kernel & 1)) ||
            (a->blur_kernel && !(a->blur_sigma_min > 0 && a->blur_sigma_max >= a->blur_sigma_min)))
            return seg_error(SEG_STATUS_INVALID, "augment: blur needs an odd kernel and sigma > 0");
    }
    return SEG_STATUS_OK;
}

void seg_image_flip(struct seg_image *im)
{
    int c = im->c;
    for (int y = 0; y < im->h; y++) {
        uint8_t *row = im->data + (size_t)y * im->w * c;
        for (int a = 0, b = im->w - 1; a < b; a++, b--)
            for (int k = 0; k < c; k++) {
                uint8_t t = row[a * c + k];
                row[a * c + k] = row[b * c + k];
                row[b * c + k] = t;
            }
    }
}

static inline float luma(const uint8_t *p)
{
    return (p[0] * 299 + p[1] * 587 + p[2] * 114) / 1000.0f; /* PIL's "L" */
}

void seg_image_grayscale(struct seg_image *im)
{
    size_t n = (size_t)im->w * im->h;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = im->data + 3 * i;
        uint8_t l = (uint8_t)((p[0] * 299 + p[1] * 587 + p[2] * 114) / 1000);
        p[0] = p[1] = p[2] = l;
    }
}

static void blend_to_const(struct seg_image *im, float factor, float value)
{
    size_t n = (size_t)im->w * im->h * 3;
    for (size_t i = 0; i < n; i++)
        im->data[i] = seg_clamp_u8(value + factor * (im->data[i] - value));
}

static void rgb_to_hsv(float r, float g, float b, float *h, float *s, float *v)
{
    float mx = fmaxf(r, fmaxf(g, b)), mn = fminf(r, fminf(g, b)), d = mx - mn;
    *v = mx;
    *s = mx > 0 ? d / mx : 0;
    if (d <= 0) {
        *h = 0;
        return;
    }
    float hh;
    if (mx == r)
        hh = (g - b) / d;
    else if (mx == g)
        hh = 2.0f + (b - r) / d;
    else
        hh = 4.0f + (r - g) / d;
    hh /= 6.0f;
    *h = hh < 0 ? hh + 1.0f : hh;
}

static void hsv_to_rgb(float h, float s, float v, float *r, float *g, float *b)
{
    float h6 = h * 6.0f;
    int i = (int)floorf(h6);
    float f = h6 - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    switch (((i % 6) + 6) % 6) {
    case 0: *r = v, *g = t, *b = p; break;
    case 1: *r = q, *g = v, *b = p; break;
    case 2: *r = p, *g = v, *b = t; break;
    case 3: *r = p, *g = q, *b = v; break;
    case 4: *r = t, *g = p, *b = v; break;
    default: *r = v, *g = p, *b = q; break;
    }
}

static void adjust_hue(struct seg_image *im, float shift)
{
    size_t n = (size_t)im->w * im->h;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = im->data + 3 * i;
        float h, s, v, r, g, b;
        rgb_to_hsv(p[0] / 255.0f, p[1] / 255.0f, p[2] / 255.0f, &h, &s, &v);
        h += shift;
        h -= floorf(h);
        hsv_to_rgb(h, s, v, &r, &g, &b);
        p[0] = seg_clamp_u8(r * 255.0f);
        p[1] = seg_clamp_u8(g * 255.0f);
        p[2] = seg_clamp_u8(b * 255.0f);
    }
}

static void adjust_saturation(struct seg_image *im, float factor)
{
    size_t n = (size_t)im->w * im->h;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = im->data + 3 * i;
        float l = (float)(uint8_t)((p[0] * 299 + p[1] * 587 + p[2] * 114) / 1000);
        for (int k = 0; k < 3; k++)
            p[k] = seg_clamp_u8(l + factor * (p[k] - l));
    }
}

static void adjust_contrast(struct seg_image *im, float factor)
{
    size_t n = (size_t)im->w * im->h;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (uint8_t)(luma(im->data + 3 * i));
    float mean = floorf((float)(sum / (double)n) + 0.5f);
    blend_to_const(im, factor, mean);
}

void seg_image_color_jitter(struct seg_image *im, struct seg_data_rng *rng, float brightness,
                            float contrast, float saturation, float hue)
{
    float bf = (float)seg_data_rng_range(rng, fmaxf(0, 1 - brightness), 1 + brightness);
    float cf = (float)seg_data_rng_range(rng, fmaxf(0, 1 - contrast), 1 + contrast);
    float sf = (float)seg_data_rng_range(rng, fmaxf(0, 1 - saturation), 1 + saturation);
    float hf = (float)seg_data_rng_range(rng, -hue, hue);
    int order[4] = {0, 1, 2, 3};
    for (int i = 3; i > 0; i--) {
        int j = seg_data_rng_int(rng, i + 1);
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int i = 0; i < 4; i++) {
        switch (order[i]) {
        case 0: if (brightness > 0) blend_to_const(im, bf, 0.0f); break;
        case 1: if (contrast > 0) adjust_contrast(im, cf); break;
        case 2: if (saturation > 0) adjust_saturation(im, sf); break;
        default: if (hue > 0) adjust_hue(im, hf); break;
        }
    }
}

static inline int reflect(int i, int n)
{
    if (n == 1)
        return 0;
    while (i < 0 || i >= n)
        i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
}

enum seg_status seg_image_gaussian_blur(struct seg_image *im, int kernel, float sigma)
{
    if (kernel <= 1)
        return SEG_STATUS_OK;
    if (!(kernel & 1) || kernel > 63 || !(sigma > 0))
        return seg_error(SEG_STATUS_INVALID, "blur: kernel %d / sigma %g is invalid", kernel, sigma);
    float k[63];
    int r = kernel / 2;
    float sum = 0;
    for (int i = -r; i <= r; i++)
        sum += k[i + r] = expf(-(float)(i * i) / (2 * sigma * sigma));
    for (int i = 0; i < kernel; i++)
        k[i] /= sum;
    int w = im->w, h = im->h, c = im->c;
    float *tmp = malloc((size_t)w * h * c * sizeof *tmp);
    if (!tmp)
        return seg_error(SEG_STATUS_OUT_OF_MEMORY, "blur: out of host memory");
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < c; ch++) {
                float acc = 0;
                for (int i = -r; i <= r; i++)
                    acc += k[i + r] * im->data[((size_t)y * w + reflect(x + i, w)) * c + ch];
                tmp[((size_t)y * w + x) * c + ch] = acc;
            }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < c; ch++) {
                float acc = 0;
                for (int i = -r; i <= r; i++)
                    acc += k[i + r] * tmp[((size_t)reflect(y + i, h) * w + x) * c + ch];
                im->data[((size_t)y * w + x) * c + ch] = seg_clamp_u8(acc);
            }
    free(tmp);
    return SEG_STATUS_OK;
}

static void replace(struct seg_image *dst, struct seg_image *src)
{
    seg_image_free(dst);
    *dst = *src;
    memset(src, 0, sizeof *src);
}

/* Pads to at least (cw, ch) with fill at the right and bottom, then crops (x0, y0). */
static enum seg_status pad_crop(struct seg_image *im, int x0, int y0, int cw, int ch, uint8_t fill)
{
    struct seg_image out;
    enum seg_status st = seg_image_alloc(&out, cw, ch, im->c);
    if (st != SEG_STATUS_OK)
        return st;
    memset(out.data, fill, (size_t)cw * ch * im->c);
    for (int y = 0; y < ch && y0 + y < im->h; y++) {
        int n = im->w - x0 < cw ? im->w - x0 : cw;
        if (n > 0)
            memcpy(out.data + (size_t)y * cw * im->c,
                   im->data + ((size_t)(y0 + y) * im->w + x0) * im->c, (size_t)n * im->c);
    }
    replace(im, &out);
    return SEG_STATUS_OK;
}

enum seg_status seg_augment_apply(const struct seg_augment *a, struct seg_data_rng *rng,
                                  struct seg_image *image, struct seg_image *labels)
{
    bool lab = labels && labels->data;
    enum seg_status st;
    if (lab && !a->label_full_res && (labels->w != image->w || labels->h != image->h))
        return seg_error(SEG_STATUS_INVALID, "augment: labels %dx%d differ from the image %dx%d",
                         labels->w, labels->h, image->w, image->h);
    /* sizes: base resize, then one random factor; resampled once */
    double tw = image->w, th = image->h;
    if (a->short_min > 0) {
        int s = a->short_min + seg_data_rng_int(rng, a->short_max - a->short_min + 1);
        if (image->w < image->h) {
            tw = s;
            th = (double)image->h * s / image->w;
        } else {
            th = s;
            tw = (double)image->w * s / image->h;
        }
    } else if (a->resize_w > 0) {
        tw = a->resize_w;
        th = a->resize_h;
    }
    double f = a->scale_min;
    if (a->nscale_choices > 0)
        f = a->scale_choices[seg_data_rng_int(rng, a->nscale_choices)];
    else if (a->scale_max > a->scale_min)
        f = seg_data_rng_range(rng, a->scale_min, a->scale_max);
    int nw = (int)lround(tw * f), nh = (int)lround(th * f);
    if (nw < 1)
        nw = 1;
    if (nh < 1)
        nh = 1;
    if (nw != image->w || nh != image->h) {
        struct seg_image r;
        if ((st = seg_image_resize_bilinear(image, nw, nh, &r)) != SEG_STATUS_OK)
            return st;
        replace(image, &r);
        if (lab && !a->label_full_res) {
            if ((st = seg_image_resize_nearest(labels, nw, nh, &r)) != SEG_STATUS_OK)
                return st;
            replace(labels, &r);
        }
    }
    if (a->crop_w > 0) {
        int pw = nw > a->crop_w ? nw : a->crop_w, ph = nh > a->crop_h ? nh : a->crop_h;
        int x0 = seg_data_rng_int(rng, pw - a->crop_w + 1);
        int y0 = seg_data_rng_int(rng, ph - a->crop_h + 1);
        if ((st = pad_crop(image, x0, y0, a->crop_w, a->crop_h, 0)) != SEG_STATUS_OK)
            return st;
        if (lab && (st = pad_crop(labels, x0, y0, a->crop_w, a->crop_h, SEG_IGNORE)) != SEG_STATUS_OK)
            return st;
    }
    if (a->flip && seg_data_rng_uniform(rng) < 0.5) {
        seg_image_flip(image);
        if (lab)
            seg_image_flip(labels);
    }
    if (a->photometric && image->c == 3) {
        if (a->brightness > 0 || a->contrast > 0 || a->saturation > 0 || a->hue > 0)
            seg_image_color_jitter(image, rng, a->brightness, a->contrast, a->saturation, a->hue);
        if (a->gray_p > 0 && seg_data_rng_uniform(rng) < a->gray_p)
            seg_image_grayscale(image);
        if (a->blur_kernel > 1) {
            float sigma = (float)seg_data_rng_range(rng, a->blur_sigma_min, a->blur_sigma_max);
            if ((st = seg_image_gaussian_blur(image, a->blur_kernel, sigma)) != SEG_STATUS_OK)
                return st;
        }
    }
    return SEG_STATUS_OK;
}
