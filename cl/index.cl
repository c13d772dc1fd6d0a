/* index.cl: ONE_HOT, GATHER, SCATTER_ADD, SLICE / SLICE_ASSIGN (row copies), PERMUTE. */
#include "common.h"

/* dst [N, C, P] = (labels[n][p] == c). */
__kernel void one_hot_f32(__global float *d, int doff, __global const int *lab, int loff, int C,
                          int P, int total)
{
    const int g = SEG_GID();
    if (g >= total) return;
    const int p = g % P;
    const int c = (g / P) % C;
    const int n = g / (P * C);
    d[doff + g] = lab[loff + n * P + p] == c ? 1.0f : 0.0f;
}

/* dst[o][j][i] = src[o][idx[o][j][i]][i] (0 outside [0, n)). */
__kernel void gather_u32(__global uint *d, int doff, __global const uint *s, int soff,
                         __global const int *ix, int ixoff, int n, int m, int inner, int total)
{
    const int g = SEG_GID();
    if (g >= total) return;
    const int i = g % inner;
    const int o = g / (inner * m);
    const int k = ix[ixoff + g];
    d[doff + g] = (k >= 0 && k < n) ? s[soff + (o * n + k) * inner + i] : 0u;
}

/* Gather form: dst[o][k][i] = sum over j (in order) of src[o][j][i] where idx == k. */
__kernel void scatter_add_f32(__global float *d, int doff, __global const float *s, int soff,
                              __global const int *ix, int ixoff, int n, int m, int inner,
                              int total)
{
    const int g = SEG_GID();
    if (g >= total) return;
    const int i = g % inner;
    const int k = (g / inner) % n;
    const int o = g / (inner * n);
    const int b = o * m * inner + i;
    float acc = 0.0f;
    for (int j = 0; j < m; j++) {
        const int q = b + j * inner;
        if (ix[ixoff + q] == k) acc += s[soff + q];
    }
    d[doff + g] = acc;
}

/* Distinct indices along m: each source element writes its destination directly
 * (after the destination was zero-filled). */
__kernel void scatter_unique_f32(__global float *d, int doff, __global const float *s, int soff,
                                 __global const int *ix, int ixoff, int n, int m, int inner,
                                 int total)
{
    const int g = SEG_GID();
    if (g >= total) return;
    const int i = g % inner;
    const int o = g / (inner * m);
    const int k = ix[ixoff + g];
    if (k >= 0 && k < n) d[doff + (o * n + k) * inner + i] = s[soff + g];
}

/* dst[o][dstart + j][i] = src[o][sstart + j][i] for j < len; rows of dn / sn along the axis. */
__kernel void copy_rows_u32(__global uint *d, int doff, __global const uint *s, int soff,
                            int dn, int dstart, int sn, int sstart, int len, int inner, int total)
{
    const int g = SEG_GID();
    if (g >= total) return;
    const int i = g % inner;
    const int j = (g / inner) % len;
    const int o = g / (inner * len);
    d[doff + (o * dn + dstart + j) * inner + i] = s[soff + (o * sn + sstart + j) * inner + i];
}

/* dst shape [d0, d1, d2, d3]; p0..p3: the source strides of the dst dims (host-permuted). */
__kernel void permute_u32(__global uint *d, int doff, __global const uint *s, int soff, int d1,
                          int d2, int d3, int p0, int p1, int p2, int p3, int total)
{
    const int g = SEG_GID();
    if (g >= total) return;
    int r = g;
    const int i3 = r % d3; r /= d3;
    const int i2 = r % d2; r /= d2;
    const int i1 = r % d1;
    const int i0 = r / d1;
    d[doff + g] = s[soff + i0 * p0 + i1 * p1 + i2 * p2 + i3 * p3];
}
