/* sort_scan.cl: SORT (bitonic over rows padded to a power of two P) and CUMSUM.
 *
 * Sort keys are (value, original index): ties order by the smaller index, and padding
 * elements (index >= n) order after every real element in both directions, so the first n
 * of a sorted row are the answer. Rows of up to SEG_SORT_LOCAL elements sort entirely in
 * local memory; longer rows sort SEG_SORT_LOCAL-element chunks locally, then run the
 * remaining bitonic stages with one global launch per step of distance >= SEG_SORT_LOCAL
 * and a local-memory merge for the shorter distances. */
#include "common.h"

/* True when (va, ia) must come before (vb, ib). */
bool seg_before(float va, int ia, float vb, int ib, int n, int desc)
{
    const bool pa = ia >= n, pb = ib >= n;
    if (pa || pb) return pa == pb ? ia < ib : pb;
    if (va == vb) return ia < ib;
    return desc ? va > vb : va < vb;
}

/* Steps j = jmax, jmax/2, .., 1 of bitonic stage k on cnt local elements whose first has
 * row position gbase. Ends with a barrier. */
void seg_bitonic_local(__local float *lk, __local int *li, int cnt, int gbase, int k, int jmax,
                       int n, int desc)
{
    const int lid = (int)get_local_id(0), lsz = (int)get_local_size(0);
    for (int j = jmax; j > 0; j >>= 1) {
        for (int t = lid; t < cnt / 2; t += lsz) {
            const int i = (t / j) * 2 * j + (t & (j - 1));
            const int l = i + j;
            const bool asc = ((gbase + i) & k) == 0;
            const float vi = lk[i], vl = lk[l];
            const int ii = li[i], il = li[l];
            const bool sw = asc ? seg_before(vl, il, vi, ii, n, desc)
                                : seg_before(vi, ii, vl, il, n, desc);
            if (sw) {
                lk[i] = vl;
                lk[l] = vi;
                li[i] = il;
                li[l] = ii;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

/* Loads cnt elements of a source row starting at position gbase (padding past n). */
void seg_sort_load(__local float *lk, __local int *li, __global const float *s, int cnt,
                   int gbase, int n)
{
    const int lid = (int)get_local_id(0), lsz = (int)get_local_size(0);
    for (int t = lid; t < cnt; t += lsz) {
        const int j = gbase + t;
        lk[t] = j < n ? s[j] : 0.0f;
        li[t] = j;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}

/* Whole row (P <= SEG_SORT_LOCAL) in local memory: one work-group per row (dim 1). */
__kernel void sort_local_f32(__global float *dv, int dvoff, __global int *di, int dioff,
                             __global const float *s, int soff, int n, int P, int desc)
{
    __local float lk[SEG_SORT_LOCAL];
    __local int li[SEG_SORT_LOCAL];
    const int row = (int)get_group_id(1);
    const int lid = (int)get_local_id(0), lsz = (int)get_local_size(0);
    seg_sort_load(lk, li, s + soff + row * n, P, 0, n);
    for (int k = 2; k <= P; k <<= 1) seg_bitonic_local(lk, li, P, 0, k, k >> 1, n, desc);
    for (int t = lid; t < n; t += lsz) {
        dv[dvoff + row * n + t] = lk[t];
        di[dioff + row * n + t] = li[t];
    }
}

/* Sorts chunk get_group_id(0) (SEG_SORT_LOCAL elements) of each row into the scratch keys
 * (k, koff) and indices (x, xoff), rows of P, as stages 2 .. SEG_SORT_LOCAL of the network. */
__kernel void sort_chunks_f32(__global float *k_, int koff, __global int *x_, int xoff,
                              __global const float *s, int soff, int n, int P, int desc)
{
    __local float lk[SEG_SORT_LOCAL];
    __local int li[SEG_SORT_LOCAL];
    const int row = (int)get_group_id(1);
    const int gbase = (int)get_group_id(0) * SEG_SORT_LOCAL;
    const int lid = (int)get_local_id(0), lsz = (int)get_local_size(0);
    seg_sort_load(lk, li, s + soff + row * n, SEG_SORT_LOCAL, gbase, n);
    for (int k = 2; k <= SEG_SORT_LOCAL; k <<= 1)
        seg_bitonic_local(lk, li, SEG_SORT_LOCAL, gbase, k, k >> 1, n, desc);
    for (int t = lid; t < SEG_SORT_LOCAL; t += lsz) {
        k_[koff + row * P + gbase + t] = lk[t];
        x_[xoff + row * P + gbase + t] = li[t];
    }
}

/* One compare-exchange step (stage k, distance j >= SEG_SORT_LOCAL) in global memory:
 * work-item t of dim 0 handles pair t of row get_global_id(1). */
__kernel void sort_step_f32(__global float *k_, int koff, __global int *x_, int xoff, int n,
                            int P, int k, int j, int desc)
{
    const int t = (int)get_global_id(0);
    if (t >= P / 2) return;
    const int row = (int)get_global_id(1);
    const int i = (t / j) * 2 * j + (t & (j - 1));
    const int l = i + j;
    const int b = row * P;
    const float vi = k_[koff + b + i], vl = k_[koff + b + l];
    const int ii = x_[xoff + b + i], il = x_[xoff + b + l];
    const bool asc = (i & k) == 0;
    const bool sw = asc ? seg_before(vl, il, vi, ii, n, desc) : seg_before(vi, ii, vl, il, n, desc);
    if (sw) {
        k_[koff + b + i] = vl;
        k_[koff + b + l] = vi;
        x_[xoff + b + i] = il;
        x_[xoff + b + l] = ii;
    }
}

/* The steps j < SEG_SORT_LOCAL of stage k, one chunk per work-group, in local memory. */
__kernel void sort_merge_f32(__global float *k_, int koff, __global int *x_, int xoff, int n,
                             int P, int k, int desc)
{
    __local float lk[SEG_SORT_LOCAL];
    __local int li[SEG_SORT_LOCAL];
    const int row = (int)get_group_id(1);
    const int gbase = (int)get_group_id(0) * SEG_SORT_LOCAL;
    const int lid = (int)get_local_id(0), lsz = (int)get_local_size(0);
    const int b = row * P + gbase;
    for (int t = lid; t < SEG_SORT_LOCAL; t += lsz) {
        lk[t] = k_[koff + b + t];
        li[t] = x_[xoff + b + t];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    seg_bitonic_local(lk, li, SEG_SORT_LOCAL, gbase, k, SEG_SORT_LOCAL >> 1, n, desc);
    for (int t = lid; t < SEG_SORT_LOCAL; t += lsz) {
        k_[koff + b + t] = lk[t];
        x_[xoff + b + t] = li[t];
    }
}

/* The first n of each sorted scratch row to the outputs. */
__kernel void sort_output_f32(__global float *dv, int dvoff, __global int *di, int dioff,
                              __global const float *k_, int koff, __global const int *x_,
                              int xoff, int n, int P)
{
    const int t = (int)get_global_id(0);
    if (t >= n) return;
    const int row = (int)get_global_id(1);
    dv[dvoff + row * n + t] = k_[koff + row * P + t];
    di[dioff + row * n + t] = x_[xoff + row * P + t];
}

/* ---- CUMSUM (inclusive) along n of [outer, n, inner]; rev: from the end ---- */

/* Wide inner: one column per work-item, sequential along n (coalesced across i). */
__kernel void cumsum_cols_f32(__global float *d, int doff, __global const float *s, int soff,
                              int rev, int n, int inner)
{
    const int i = (int)get_global_id(0);
    if (i >= inner) return;
    const int o = (int)get_global_id(1);
    const int b = o * n * inner + i;
    float acc = 0.0f;
    for (int t = 0; t < n; t++) {
        const int k = b + (rev ? n - 1 - t : t) * inner;
        acc += s[soff + k];
        d[doff + k] = acc;
    }
}

/* Narrow inner: one work-group per column (o, i), scanning chunks of SEG_SCAN_WG elements
 * (Hillis-Steele in local memory) with a running carry. */
__kernel void cumsum_rows_f32(__global float *d, int doff, __global const float *s, int soff,
                              int rev, int n, int inner)
{
    __local float l[SEG_SCAN_WG];
    const int col = (int)get_group_id(0);
    const int i = col % inner, o = col / inner;
    const int lid = (int)get_local_id(0), lsz = (int)get_local_size(0);
    const int b = o * n * inner + i;
    float carry = 0.0f;
    for (int c0 = 0; c0 < n; c0 += lsz) {
        const int t = c0 + lid;
        const int k = b + (rev ? n - 1 - t : t) * inner;
        float v = t < n ? s[soff + k] : 0.0f;
        l[lid] = v;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int off = 1; off < lsz; off <<= 1) {
            const float add = lid >= off ? l[lid - off] : 0.0f;
            barrier(CLK_LOCAL_MEM_FENCE);
            v += add;
            l[lid] = v;
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        if (t < n) d[doff + k] = carry + v;
        carry += l[lsz - 1];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}
