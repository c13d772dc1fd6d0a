/* mic_aug.c: DACS's strong photometric augmentation of mixed and masked images (mic.h),
 * on the device: colour jitter and Gaussian blur in [0, 1] RGB space, between the
 * normalisation's inverse and itself. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "train/mic.h"

#define TRY(expr) SEG_TRY(expr)

/* Per-channel scale and shift from the stored values to [0, 1] RGB (in the stored channel
 * order), and whether the stored order is BGR. */
static void norm_affine(enum seg_mic_norm norm, float scale[3], float shift[3], bool *bgr)
{
    static const float caffe_bgr[3] = {104.00698793f, 116.66876762f, 122.67891434f};
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
    for (int c = 0; c < 3; c++) {
        if (norm == SEG_MIC_NORM_DEEPLAB) { /* BGR 0..255 minus the caffe mean */
            scale[c] = 1.0f / 255.0f;
            shift[c] = caffe_bgr[c] / 255.0f;
        } else if (norm == SEG_MIC_NORM_IMAGENET) {
            scale[c] = sd[c];
            shift[c] = mean[c];
        } else { /* RGB 0..255 */
            scale[c] = 1.0f / 255.0f;
            shift[c] = 0.0f;
        }
    }
    *bgr = norm == SEG_MIC_NORM_DEEPLAB;
}

static enum seg_status const3(struct seg_backend *be, const float v[3], struct seg_tensor **out)
{
    int64_t s[4] = {1, 3, 1, 1};
    TRY(seg_tensor_new(be, SEG_DTYPE_F32, 4, s, out));
    return seg_tensor_write(*out, v, 3 * sizeof(float));
}

/* x * a + b with per-channel a, b [1, 3, 1, 1]. */
static enum seg_status channel_affine(const struct seg_tensor *x, const float a[3], const float b[3],
                                      struct seg_tensor **out)
{
    struct seg_tensor *ta = NULL, *tb = NULL, *m = NULL;
    enum seg_status st = const3(x->be, a, &ta);
    if (!st) st = const3(x->be, b, &tb);
    if (!st) st = seg_binary(SEG_BINARY_MUL, x, ta, &m);
    if (!st) st = seg_binary(SEG_BINARY_ADD, m, tb, out);
    seg_tensor_free(ta);
    seg_tensor_free(tb);
    seg_tensor_free(m);
    return st;
}

/* The step's result: *x becomes y when st is OK (the old value freed), else y is dropped. */
static enum seg_status replace(struct seg_tensor **x, struct seg_tensor *y, enum seg_status st)
{
    if (st) {
        seg_tensor_free(y);
        return st;
    }
    seg_tensor_free(*x);
    *x = y;
    return SEG_STATUS_OK;
}

/* *x <- clamp(M_n x, 0, 1) per image, M [N, 3, 3] on the host (row-major). */
static enum seg_status color_matrix(struct seg_tensor **x, const float *m)
{
    int64_t n = (*x)->shape[0], h = (*x)->shape[2], w = (*x)->shape[3], ms[3] = {n, 3, 3}, fs[3] = {n, 3, h * w},
            is[4] = {n, 3, h, w};
    struct seg_tensor *tm = NULL, *y = NULL, *c = NULL;
    enum seg_status st = seg_tensor_new((*x)->be, SEG_DTYPE_F32, 3, ms, &tm);
    if (!st) st = seg_tensor_write(tm, m, (size_t)n * 9 * sizeof *m);
    if (!st) st = seg_tensor_set_shape(*x, 3, fs);
    if (!st) st = seg_matmul(tm, *x, false, false, 1.0f, 0.0f, &y);
    if (!st) st = seg_tensor_set_shape(y, 4, is);
    if (!st) st = seg_unary(SEG_UNARY_CLAMP, y, 0.0f, 1.0f, &c);
    seg_tensor_free(tm);
    seg_tensor_free(y);
    return replace(x, c, st);
}

/* *x <- clamp(c_n x + (1 - c_n) mean(gray(x_n)), 0, 1): torchvision's adjust_contrast. */
static enum seg_status contrast(struct seg_tensor **x, const float *cf, const float luma[3])
{
    int64_t n = (*x)->shape[0], h = (*x)->shape[2], w = (*x)->shape[3], ls[3] = {1, 1, 3}, fs[3] = {n, 3, h * w},
            is[4] = {n, 3, h, w}, cs[3] = {n, 1, 1};
    struct seg_tensor *tl = NULL, *gray = NULL, *mean = NULL, *tc = NULL, *tk = NULL, *a = NULL, *b = NULL,
                      *s = NULL, *out = NULL;
    float *k = malloc((size_t)n * sizeof *k);
    enum seg_status st = k ? seg_tensor_new((*x)->be, SEG_DTYPE_F32, 3, ls, &tl)
                           : seg_error(SEG_STATUS_OUT_OF_MEMORY, "mic augmentation: out of host memory");
    for (int64_t i = 0; k && i < n; i++)
        k[i] = 1.0f - cf[i];
    if (!st) st = seg_tensor_write(tl, luma, 3 * sizeof *luma);
    if (!st) st = seg_tensor_set_shape(*x, 3, fs);
    if (!st) st = seg_matmul(tl, *x, false, false, 1.0f, 0.0f, &gray); /* [N, 1, HW] */
    if (!st) st = seg_reduce(SEG_REDUCE_MEAN, gray, 2, true, &mean);   /* [N, 1, 1] */
    if (!st) st = seg_tensor_new((*x)->be, SEG_DTYPE_F32, 3, cs, &tc);
    if (!st) st = seg_tensor_write(tc, cf, (size_t)n * sizeof *cf);
    if (!st) st = seg_tensor_new((*x)->be, SEG_DTYPE_F32, 3, cs, &tk);
    if (!st) st = seg_tensor_write(tk, k, (size_t)n * sizeof *k);
    if (!st) st = seg_binary(SEG_BINARY_MUL, *x, tc, &a);
    if (!st) st = seg_binary(SEG_BINARY_MUL, mean, tk, &b);
    if (!st) st = seg_binary(SEG_BINARY_ADD, a, b, &s);
    if (!st) st = seg_tensor_set_shape(s, 4, is);
    if (!st) st = seg_unary(SEG_UNARY_CLAMP, s, 0.0f, 1.0f, &out);
    if (!st) st = seg_tensor_set_shape(*x, 4, is);
    free(k);
    struct seg_tensor *tmp[] = {tl, gray, mean, tc, tk, a, b, s};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++)
        seg_tensor_free(tmp[i]);
    return replace(x, out, st);
}

/* The 1-D Gaussian of sigma over `taps` taps (odd), summing to 1. */
static void gaussian(float sigma, int taps, float *g)
{
    double s = 0;
    for (int i = 0; i < taps; i++) {
        double d = i - taps / 2;
        g[i] = (float)exp(-d * d / (2.0 * sigma * sigma));
        s += g[i];
    }
    for (int i = 0; i < taps; i++)
        g[i] = (float)(g[i] / s);
}

/* y = the separable Gaussian of x [C, 1, H, W] with zero padding (kernel g of taps taps). */
static enum seg_status blur_planes(const struct seg_tensor *x, const float *g, int taps, struct seg_tensor **y)
{
    int64_t vs[4] = {1, 1, taps, 1}, hs[4] = {1, 1, 1, taps};
    struct seg_tensor *kv = NULL, *kh = NULL, *t = NULL;
    struct seg_conv2d_params pv = {1, 1, taps / 2, 0, 1, 1}, ph = {1, 1, 0, taps / 2, 1, 1};
    enum seg_status st = seg_tensor_new(x->be, SEG_DTYPE_F32, 4, vs, &kv);
    if (!st) st = seg_tensor_write(kv, g, (size_t)taps * sizeof *g);
    if (!st) st = seg_tensor_new(x->be, SEG_DTYPE_F32, 4, hs, &kh);
    if (!st) st = seg_tensor_write(kh, g, (size_t)taps * sizeof *g);
    if (!st) st = seg_conv2d(x, kv, NULL, &pv, &t);
    if (!st) st = seg_conv2d(t, kh, NULL, &ph, y);
    seg_tensor_free(kv);
    seg_tensor_free(kh);
    seg_tensor_free(t);
    return st;
}

int seg_mic_blur_taps(int64_t height, float sigma)
{
    /* DACS: ceil(0.1 H), made odd by taking one off an even one (51 at 512) */
    int k = (int)ceil(0.1 * (double)height);
    if (k % 2 == 0)
        k--;
    /* taps past 4 sigma weigh < 3.4e-4 of the centre: dropped */
    int k4 = 2 * (int)ceil(4.0 * sigma) + 1;
    k = k < k4 ? k : k4;
    return k < 1 ? 1 : k;
}

/* *x <- per image its Gaussian blur of sigma[n], normalised by the blur of ones, so that the
 * border keeps its brightness (kornia pads by reflection; the two agree but for the few
 * border pixels). */
static enum seg_status blur(struct seg_tensor **x, const float *sigma)
{
    int64_t n = (*x)->shape[0], h = (*x)->shape[2], w = (*x)->shape[3], plane = h * w, ps[4] = {3, 1, h, w},
            os[4] = {1, 1, h, w};
    struct seg_tensor *out = NULL;
    TRY(seg_tensor_new_like(*x, &out));
    enum seg_status st = SEG_STATUS_OK;
    for (int64_t i = 0; !st && i < n; i++) {
        int taps = seg_mic_blur_taps(h, sigma[i]);
        float *g = malloc((size_t)taps * sizeof *g);
        if (!g) {
            st = seg_error(SEG_STATUS_OUT_OF_MEMORY, "mic augmentation: out of host memory");
            break;
        }
        gaussian(sigma[i], taps, g);
        struct seg_tensor *xi = NULL, *yi = NULL, *ones = NULL, *norm = NULL, *q = NULL, *dst = NULL;
        st = seg_tensor_view(*x, i * 3 * plane, 4, ps, &xi);
        if (!st) st = blur_planes(xi, g, taps, &yi);
        if (!st) st = seg_tensor_new((*x)->be, SEG_DTYPE_F32, 4, os, &ones);
        if (!st) st = seg_fill(ones, 1.0f);
        if (!st) st = blur_planes(ones, g, taps, &norm);
        if (!st) st = seg_binary(SEG_BINARY_DIV, yi, norm, &q);
        if (!st) st = seg_tensor_view(out, i * 3 * plane, 4, ps, &dst);
        if (!st) st = seg_tensor_copy(dst, q);
        free(g);
        struct seg_tensor *tmp[] = {xi, yi, ones, norm, q, dst};
        for (size_t k = 0; k < sizeof tmp / sizeof tmp[0]; k++)
            seg_tensor_free(tmp[k]);
    }
    return replace(x, out, st);
}

/* inv = a^-1 (3 x 3, by cofactors): the YIQ matrix's exact inverse, so that a zero hue
 * shift is the identity. */
static void invert3(const double a[3][3], double inv[3][3])
{
    double det = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
                 a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++) {
            int r1 = (c + 1) % 3, r2 = (c + 2) % 3, c1 = (r + 1) % 3, c2 = (r + 2) % 3;
            inv[r][c] = (a[r1][c1] * a[r2][c2] - a[r1][c2] * a[r2][c1]) / det;
        }
}

/* Fills a [3, 3] matrix in the stored channel order from one in RGB order. */
static void to_stored(const double rgb[3][3], bool bgr, float *m)
{
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++)
            m[r * 3 + c] = (float)rgb[bgr ? 2 - r : r][bgr ? 2 - c : c];
}

void seg_mic_draw_aug(uint64_t *rng, int64_t n, float p_jitter, float strength, float p_blur,
                      struct seg_mic_aug *aug)
{
    /* one draw each of whether to jitter and whether to blur for the batch (DACS: per
     * iteration), factors and sigmas per image */
    double u = seg_mic_uniform(rng);
    aug->jitter = u > p_jitter;
    u = seg_mic_uniform(rng);
    aug->blur = u > p_blur;
    aug->n = (int)n;
    for (int64_t i = 0; i < n && i < SEG_MIC_MAX_BATCH; i++) {
        aug->brightness[i] = (float)(1.0 - strength + 2.0 * strength * seg_mic_uniform(rng));
        aug->contrast[i] = (float)(1.0 - strength + 2.0 * strength * seg_mic_uniform(rng));
        aug->saturation[i] = (float)(1.0 - strength + 2.0 * strength * seg_mic_uniform(rng));
        aug->hue[i] = (float)(-strength + 2.0 * strength * seg_mic_uniform(rng));
        aug->sigma[i] = (float)(0.15 + seg_mic_uniform(rng));
    }
}

enum seg_status seg_mic_strong_aug(const struct seg_tensor *x, enum seg_mic_norm norm, const struct seg_mic_aug *aug,
                                   struct seg_tensor **out)
{
    *out = NULL;
    int64_t n = x->shape[0];
    if (x->ndim != 4 || x->shape[1] != 3 || n > SEG_MIC_MAX_BATCH || n != aug->n)
        return seg_error(SEG_STATUS_INVALID, "mic augmentation: images [N <= %d, 3, H, W] with N draws",
                         SEG_MIC_MAX_BATCH);
    if (!aug->jitter && !aug->blur)
        return seg_clone(x, out);
    float scale[3], shift[3], inv_a[3], inv_b[3];
    bool bgr;
    norm_affine(norm, scale, shift, &bgr);
    for (int c = 0; c < 3; c++) {
        inv_a[c] = 1.0f / scale[c];
        inv_b[c] = -shift[c] / scale[c];
    }
    /* luma (ITU-R 601) and the hue rotation in YIQ, in RGB order */
    static const double luma[3] = {0.299, 0.587, 0.114};
    static const double yiq[3][3] = {{0.299, 0.587, 0.114}, {0.596, -0.274, -0.322}, {0.211, -0.523, 0.312}};
    double iyiq[3][3];
    invert3(yiq, iyiq);
    float lum[3];
    for (int c = 0; c < 3; c++)
        lum[c] = (float)luma[bgr ? 2 - c : c];
    struct seg_tensor *y = NULL;
    TRY(channel_affine(x, scale, shift, &y));
    float *m = malloc((size_t)n * 9 * sizeof *m);
    enum seg_status st = m ? SEG_STATUS_OK : seg_error(SEG_STATUS_OUT_OF_MEMORY, "mic augmentation: out of host memory");
    if (!st && aug->jitter) { /* brightness, contrast, saturation, hue (torchvision's operations, in this order) */
        for (int64_t i = 0; i < n; i++) {
            double b[3][3] = {{aug->brightness[i], 0, 0}, {0, aug->brightness[i], 0}, {0, 0, aug->brightness[i]}};
            to_stored(b, bgr, m + i * 9);
        }
        st = color_matrix(&y, m);
        if (!st) st = contrast(&y, aug->contrast, lum);
        for (int64_t i = 0; !st && i < n; i++) {
            double s = aug->saturation[i], sm[3][3];
            for (int r = 0; r < 3; r++)
                for (int c = 0; c < 3; c++)
                    sm[r][c] = (r == c ? s : 0.0) + (1.0 - s) * luma[c];
            to_stored(sm, bgr, m + i * 9);
        }
        if (!st) st = color_matrix(&y, m);
        for (int64_t i = 0; !st && i < n; i++) {
            double a = 2.0 * M_PI * aug->hue[i], ca = cos(a), sa = sin(a);
            double rot[3][3] = {{1, 0, 0}, {0, ca, -sa}, {0, sa, ca}}, t[3][3], hm[3][3];
            for (int r = 0; r < 3; r++)
                for (int c = 0; c < 3; c++) {
                    t[r][c] = 0;
                    for (int k = 0; k < 3; k++)
                        t[r][c] += rot[r][k] * yiq[k][c];
                }
            for (int r = 0; r < 3; r++)
                for (int c = 0; c < 3; c++) {
                    hm[r][c] = 0;
                    for (int k = 0; k < 3; k++)
                        hm[r][c] += iyiq[r][k] * t[k][c];
                }
            to_stored(hm, bgr, m + i * 9);
        }
        if (!st) st = color_matrix(&y, m);
    }
    free(m);
    if (!st && aug->blur)
        st = blur(&y, aug->sigma);
    if (!st) st = channel_affine(y, inv_a, inv_b, out);
    seg_tensor_free(y);
    return st;
}
