/* norm.cl: BATCHNORM_STATS, BATCHNORM, BATCHNORM_BWD on x [N, C, P].
 * The per-channel sums use one work-group of SEG_RED_WG items per channel. */
#include "common.h"

/* Element m of channel c (m over N * P). */
#define SEG_BN_AT(m) ((((m) / P) * C + c) * P + (m) % P)

__kernel void bn_stats_f32(__global float *mean, int moff, __global float *var, int voff,
                           __global const float *x, int xoff, int N, int C, int P)
{
    __local float l[SEG_RED_WG];
    const int c = (int)get_group_id(0);
    const int t = (int)get_local_id(0), nt = (int)get_local_size(0);
    const int M = N * P;
    float acc = 0.0f;
    for (int m = t; m < M; m += nt) acc += x[xoff + SEG_BN_AT(m)];
    const float mu = seg_group_sum(l, acc) / (float)M;
    acc = 0.0f;
    for (int m = t; m < M; m += nt) {
        const float v = x[xoff + SEG_BN_AT(m)] - mu;
        acc += v * v;
    }
    const float s2 = seg_group_sum(l, acc) / (float)M;
    if (t == 0) {
        mean[moff + c] = mu;
        var[voff + c] = s2;
    }
}

__kernel void bn_forward_f32(__global float *d, int doff, __global const float *x, int xoff,
                             __global const float *mean, int moff, __global const float *var,
                             int voff, __global const float *gamma, int goff, int has_gamma,
                             __global const float *beta, int boff, int has_beta, int C, int P,
                             int total, float eps)
{
    const int g = SEG_GID();
    if (g >= total) return;
    const int c = (g / P) % C;
    const float ga = has_gamma ? gamma[goff + c] : 1.0f;
    const float be = has_beta ? beta[boff + c] : 0.0f;
    /* The reference's exact order: the ReLU / max-pool decisions downstream amplify ulps. */
    const float inv = 1.0f / sqrt(var[voff + c] + eps);
    d[doff + g] = (x[xoff + g] - mean[moff + c]) * inv * ga + be;
}

/* One work-group per channel: dbeta = sum(dy), dgamma = sum(dy * xhat); then dx. */
__kernel void bn_backward_f32(__global float *dx, int dxoff, int has_dx, __global float *dg,
                              int dgoff, int has_dg, __global float *db, int dboff, int has_db,
                              __global const float *x, int xoff, __global const float *dy,
                              int dyoff, __global const float *mean, int moff,
                              __global const float *var, int voff, __global const float *gamma,
                              int goff, int has_gamma, int N, int C, int P, int batch_stats,
                              float eps)
{
    __local float l[SEG_RED_WG];
    const int c = (int)get_group_id(0);
    const int t = (int)get_local_id(0), nt = (int)get_local_size(0);
    const int M = N * P;
    const float mu = mean[moff + c];
    const float invstd = 1.0f / sqrt(var[voff + c] + eps);
    const bool sums = has_dg || has_db || (has_dx && batch_stats);
    /* The barriers of the sums stay outside any branch (some compilers mishandle
     * barriers under uniform conditions); without sums the loop is empty. */
    float a0 = 0.0f, a1 = 0.0f;
    for (int m = sums ? t : M; m < M; m += nt) {
        const int k = SEG_BN_AT(m);
        const float g = dy[dyoff + k];
        a0 += g;
        a1 += g * ((x[xoff + k] - mu) * invstd);
    }
    const float sdy = seg_group_sum(l, a0);
    const float sdyx = seg_group_sum(l, a1);
    if (t == 0) {
        if (has_db) db[dboff + c] = sdy;
        if (has_dg) dg[dgoff + c] = sdyx;
    }
    if (!has_dx) return;
    const float scale = (has_gamma ? gamma[goff + c] : 1.0f) * invstd;
    const float fm = (float)M;
    for (int m = t; m < M; m += nt) {
        const int k = SEG_BN_AT(m);
        const float g = dy[dyoff + k];
        if (batch_stats) {
            const float xhat = (x[xoff + k] - mu) * invstd;
            dx[dxoff + k] = scale * (g - sdy / fm - xhat * sdyx / fm);
        } else {
            dx[dxoff + k] = scale * g;
        }
    }
}
