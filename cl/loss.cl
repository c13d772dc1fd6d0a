/* loss.cl: CROSS_ENTROPY and CROSS_ENTROPY_BWD. logits [N, C, P] are reduced over C with
 * the row layout of common.h (outer = N, n = C, inner = P): one column per pixel. */
#include "common.h"

/* The row's max logit and sum of exp(logit - max) over its n classes (the work-group's y
 * lanes share the row; every lane must call it, `use` or not, for the barriers). */
float ce_row_max_sumexp(__local float *l, __global const float *row, int inner, int n, int x, int lx,
                               int y, int ly, bool use, float *sum_out)
{
    float m = -INFINITY;
    if (use)
        for (int j = y; j < n; j += ly) m = fmax(m, row[j * inner]);
    m = seg_local_max(l, x, lx, y, ly, m);
    float sum = 0.0f;
    if (use)
        for (int j = y; j < n; j += ly) sum += exp(row[j * inner] - m);
    *sum_out = seg_local_sum(l, x, lx, y, ly, sum);
    return m;
}

/* dst [2, N*P]: row 0 = w[y] * -log_softmax(logits)[y], row 1 = w[y]; 0 when ignored. */
__kernel void cross_entropy_f32(__global float *d, int doff, __global const float *s, int soff,
                                __global const int *lab, int loff, __global const float *w,
                                int woff, int has_w, int outer, int n, int inner, int ignore)
{
    __local float l[SEG_RED_WG];
    SEG_ROW_SETUP();
    const int pix = o * inner + (valid ? i : 0);
    const int label = valid ? lab[loff + pix] : ignore;
    const bool use = valid && label != ignore && label >= 0 && label < n;
    float sum;
    const float m = ce_row_max_sumexp(l, s + soff + base, inner, n, x, lx, y, ly, use, &sum);
    if (!valid || y != 0) return;
    const int np = outer * inner;
    if (!use) {
        d[doff + pix] = 0.0f;
        d[doff + np + pix] = 0.0f;
        return;
    }
    const float wy = has_w ? w[woff + label] : 1.0f;
    const float nll = -(s[soff + base + label * inner] - m - log(sum));
    d[doff + pix] = wy * nll;
    d[doff + np + pix] = wy;
}

/* dst [N, C, P] = scale * w[y] * (softmax - onehot(y)); 0 at ignored pixels. */
__kernel void cross_entropy_bwd_f32(__global float *d, int doff, __global const float *s,
                                    int soff, __global const int *lab, int loff,
                                    __global const float *w, int woff, int has_w,
                                    __global const float *scale, int scoff, int outer, int n,
                                    int inner, int ignore)
{
    __local float l[SEG_RED_WG];
    SEG_ROW_SETUP();
    const int pix = o * inner + (valid ? i : 0);
    const int label = valid ? lab[loff + pix] : ignore;
    const bool use = valid && label != ignore && label >= 0 && label < n;
    float sum;
    const float m = ce_row_max_sumexp(l, s + soff + base, inner, n, x, lx, y, ly, use, &sum);
    if (!valid) return;
    if (!use) {
        for (int j = y; j < n; j += ly) d[doff + base + j * inner] = 0.0f;
        return;
    }
    const float f = scale[scoff] * (has_w ? w[woff + label] : 1.0f);
    for (int j = y; j < n; j += ly) {
        const float p = exp(s[soff + base + j * inner] - m) / sum;
        d[doff + base + j * inner] = f * (p - (j == label ? 1.0f : 0.0f));
    }
}
