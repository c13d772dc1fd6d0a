/* optim.cl: SGD_STEP and ADAM_STEP, in place, one work-item per parameter, each skipped
 * where the optional flag is set; NONFINITE_ANY. */
#include "common.h"

__kernel void sgd_step_f32(__global float *p, int poff, __global float *buf, int boff,
                           __global const float *g, int goff, int n, float lr, float mom,
                           float wd, int first, __global const float *skip, int soff, int has_skip)
{
    const int t = SEG_GID();
    if (t >= n || (has_skip && skip[soff] != 0.0f)) return;
    const float pi = p[poff + t];
    const float gi = g[goff + t] + wd * pi;
    const float b = first ? gi : mom * buf[boff + t] + gi;
    buf[boff + t] = b;
    p[poff + t] = pi - lr * b;
}

__kernel void adam_step_f32(__global float *p, int poff, __global float *m, int moff,
                            __global float *v, int voff, __global const float *g, int goff, int n,
                            float lr, float b1, float b2, float eps, float wd, float bc1,
                            float bc2, float decay, __global const float *skip, int soff, int has_skip)
{
    const int t = SEG_GID();
    if (t >= n || (has_skip && skip[soff] != 0.0f)) return;
    const float p0 = p[poff + t];
    const float pi = p0 - decay * p0;
    const float gi = g[goff + t] + wd * pi;
    const float mi = b1 * m[moff + t] + (1.0f - b1) * gi;
    const float vi = b2 * v[voff + t] + (1.0f - b2) * gi * gi;
    m[moff + t] = mi;
    v[voff + t] = vi;
    p[poff + t] = pi - lr / bc1 * mi / (sqrt(vi) / sqrt(bc2) + eps);
}

/* One work-group of 64: each item tests a strided share on the raw bits, then item 0
 * combines the shares. */
__kernel __attribute__((reqd_work_group_size(64, 1, 1)))
void nonfinite_any_f32(__global float *d, int doff, __global const float *x, int xoff, int n)
{
    __local int bad[64];
    const int l = (int)get_local_id(0);
    int b = 0;
    for (int i = l; i < n; i += 64)
        b |= (as_uint(x[xoff + i]) & 0x7F800000u) == 0x7F800000u;
    bad[l] = b;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (l == 0) {
        int any = 0;
        for (int k = 0; k < 64; k++) any |= bad[k];
        d[doff] = any ? 1.0f : 0.0f;
    }
}
