/* optim.cl: SGD_STEP and ADAM_STEP, in place, one work-item per parameter. */
#include "common.h"

__kernel void sgd_step_f32(__global float *p, int poff, __global float *buf, int boff,
                           __global const float *g, int goff, int n, float lr, float mom,
                           float wd, int first)
{
    const int t = SEG_GID();
    if (t >= n) return;
    const float pi = p[poff + t];
    const float gi = g[goff + t] + wd * pi;
    const float b = first ? gi : mom * buf[boff + t] + gi;
    buf[boff + t] = b;
    p[poff + t] = pi - lr * b;
}

__kernel void adam_step_f32(__global float *p, int poff, __global float *m, int moff,
                            __global float *v, int voff, __global const float *g, int goff, int n,
                            float lr, float b1, float b2, float eps, float wd, float bc1,
                            float bc2)
{
    const int t = SEG_GID();
    if (t >= n) return;
    const float pi = p[poff + t];
    const float gi = g[goff + t] + wd * pi;
    const float mi = b1 * m[moff + t] + (1.0f - b1) * gi;
    const float vi = b2 * v[voff + t] + (1.0f - b2) * gi * gi;
    m[moff + t] = mi;
    v[voff + t] = vi;
    p[poff + t] = pi - lr / bc1 * mi / (sqrt(vi) / sqrt(bc2) + eps);
}
