/* cpu_loss.c: per-pixel cross-entropy terms and their gradient. */
#include <math.h>

#include "cpu/cpu.h"

/* log-sum-exp over the C logits of pixel p of image n. */
static double pixel_lse(const float *x, int64_t c, int64_t np, int64_t p)
{
    float mx = -INFINITY;
    for (int64_t k = 0; k < c; k++)
        mx = x[k * np + p] > mx ? x[k * np + p] : mx;
    double s = 0.0;
    for (int64_t k = 0; k < c; k++)
        s += exp((double)x[k * np + p] - mx);
    return mx + log(s);
}

CPU_KERNEL(cpu_cross_entropy)
{
    int64_t n = a->ip[0], c = a->ip[1], np = a->ip[2];
    int32_t ignore = a->ip[3];
    const float *x = CPU_F32(a->src[0]), *w = CPU_F32(a->src[2]);
    const int32_t *y = CPU_I32(a->src[1]);
    float *d = CPU_F32(a->dst[0]);
    int64_t total = n * np;
    for (int64_t b = 0; b < n; b++)
        for (int64_t p = 0; p < np; p++) {
            int32_t t = y[b * np + p];
            int64_t o = b * np + p;
            if (t == ignore || t < 0 || t >= c) {
                d[o] = 0.0f;
                d[total + o] = 0.0f;
                continue;
            }
            const float *xb = x + b * c * np;
            float wt = w ? w[t] : 1.0f;
            d[o] = (float)(wt * (pixel_lse(xb, c, np, p) - xb[t * np + p]));
            d[total + o] = wt;
        }
    return SEG_STATUS_OK;
}

CPU_KERNEL(cpu_cross_entropy_bwd)
{
    int64_t n = a->ip[0], c = a->ip[1], np = a->ip[2];
    int32_t ignore = a->ip[3];
    const float *x = CPU_F32(a->src[0]), *w = CPU_F32(a->src[2]);
    const int32_t *y = CPU_I32(a->src[1]);
    float scale = CPU_F32(a->src[3])[0];
    float *d = CPU_F32(a->dst[0]);
    for (int64_t b = 0; b < n; b++)
        for (int64_t p = 0; p < np; p++) {
            int32_t t = y[b * np + p];
            const float *xb = x + b * c * np;
            float *db = d + b * c * np;
            if (t == ignore || t < 0 || t >= c) {
                for (int64_t k = 0; k < c; k++)
                    db[k * np + p] = 0.0f;
                continue;
            }
            double lse = pixel_lse(xb, c, np, p);
            double s = (double)scale * (w ? w[t] : 1.0f);
            for (int64_t k = 0; k < c; k++)
                db[k * np + p] = (float)(s * (exp(xb[k * np + p] - lse) - (k == t ? 1.0 : 0.0)));
        }
    return SEG_STATUS_OK;
}
