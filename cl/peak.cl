/* peak.cl: PEAK_FMA (ops.def): eight independent FMA chains per element. One kernel per
 * vector width W: a work-item takes W consecutive elements as floatW vectors (CPU devices,
 * where the compiler vectorizes only across explicit vectors once the body has a loop);
 * GPUs use W = 1. Arguments: d, doff, s, soff, n, iters, b, c. */
#include "common.h"

static float peak_one(float x, int iters, float b, float c)
{
    float a0 = x, a1 = x + 0.125f, a2 = x + 0.25f, a3 = x + 0.375f;
    float a4 = x + 0.5f, a5 = x + 0.625f, a6 = x + 0.75f, a7 = x + 0.875f;
    for (int t = 0; t < iters; t++) {
        a0 = fma(a0, b, c); a1 = fma(a1, b, c); a2 = fma(a2, b, c); a3 = fma(a3, b, c);
        a4 = fma(a4, b, c); a5 = fma(a5, b, c); a6 = fma(a6, b, c); a7 = fma(a7, b, c);
    }
    return ((((((a0 + a1) + a2) + a3) + a4) + a5) + a6) + a7;
}

__kernel void peak_fma_1(__global float *d, int doff, __global const float *s, int soff,
                         int n, int iters, float b, float c)
{
    const int i = SEG_GID();
    if (i < n) d[doff + i] = peak_one(s[soff + i], iters, b, c);
}

#define PEAK_VEC_KERNEL(W)                                                                  \
__kernel void peak_fma_##W(__global float *d, int doff, __global const float *s, int soff, \
                           int n, int iters, float b, float c)                             \
{                                                                                           \
    const int i = SEG_GID() * W;                                                            \
    if (i >= n) return;                                                                     \
    if (n - i < W) {                                                                        \
        for (int e = i; e < n; e++) d[doff + e] = peak_one(s[soff + e], iters, b, c);       \
        return;                                                                             \
    }                                                                                       \
    const float##W x = vload##W(0, s + soff + i), bv = (float##W)(b), cv = (float##W)(c);  \
    float##W a0 = x, a1 = x + 0.125f, a2 = x + 0.25f, a3 = x + 0.375f;                      \
    float##W a4 = x + 0.5f, a5 = x + 0.625f, a6 = x + 0.75f, a7 = x + 0.875f;               \
    for (int t = 0; t < iters; t++) {                                                       \
        a0 = fma(a0, bv, cv); a1 = fma(a1, bv, cv); a2 = fma(a2, bv, cv);                   \
        a3 = fma(a3, bv, cv); a4 = fma(a4, bv, cv); a5 = fma(a5, bv, cv);                   \
        a6 = fma(a6, bv, cv); a7 = fma(a7, bv, cv);                                         \
    }                                                                                       \
    vstore##W(((((((a0 + a1) + a2) + a3) + a4) + a5) + a6) + a7, 0, d + doff + i);          \
}

PEAK_VEC_KERNEL(4)
PEAK_VEC_KERNEL(8)
PEAK_VEC_KERNEL(16)

/* The device timer's mark (src/opencl/cl_timer.c): an empty kernel whose profiled start
 * and end bracket the commands queued between two marks (profiling of markers is optional
 * in OpenCL 1.2; of kernels it is not). */
__kernel void seg_timer_mark(void) {}
