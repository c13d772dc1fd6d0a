/* reduce.cl: REDUCE, ARGREDUCE, SOFTMAX, SOFTMAX_BWD over n of [outer, n, inner].
 * Launch: 2-D, local (lx, ly), global (ceil(inner / lx) * lx, outer * ly); see SEG_ROW_SETUP. */
#include "common.h"

/* Rows may be split into `chunks` pieces of chunk_len along n (a first pass over few, long
 * rows): work-group (gx, o * chunks + ch) reduces n range [ch * chunk_len, ..) into
 * d[(o * chunks + ch) * inner + i]. MEAN divides by `count` (the full n). */
__kernel void reduce_f32(__global float *d, int doff, __global const float *s, int soff,
                         int fn, int outer, int n, int inner, int chunks, int chunk_len, int count)
{
    __local float l[SEG_RED_WG];
    const int x = (int)get_local_id(0), lx = (int)get_local_size(0);
    const int y = (int)get_local_id(1), ly = (int)get_local_size(1);
    const int i = (int)get_global_id(0);
    const int row = (int)get_group_id(1);
    const int o = row / chunks, ch = row % chunks;
    const bool valid = i < inner;
    const int base = o * n * inner + (valid ? i : 0);
    const int jend = min(n, (ch + 1) * chunk_len);
    const bool is_max = fn == SEG_REDUCE_MAX, is_min = fn == SEG_REDUCE_MIN;
    float acc = is_max ? -INFINITY : (is_min ? INFINITY : 0.0f);
    if (valid) {
        for (int j = ch * chunk_len + y; j < jend; j += ly) {
            const float v = s[soff + base + j * inner];
            acc = is_max ? fmax(acc, v) : (is_min ? fmin(acc, v) : acc + v);
        }
    }
    float r = seg_local_reduce(l, x, lx, y, ly, acc,
                               is_max ? SEG_OP_MAX : (is_min ? SEG_OP_MIN : SEG_OP_SUM));
    if (fn == SEG_REDUCE_MEAN) r = r / (float)count;
    if (valid && y == 0) d[doff + row * inner + i] = r;
}

/* (value, index) pairs; ties: the smaller index. is_min flips the comparison. */
__kernel void argreduce_f32(__global int *d, int doff, __global const float *s, int soff,
                            int is_min, int outer, int n, int inner)
{
    __local float lv[SEG_RED_WG];
    __local int li[SEG_RED_WG];
    SEG_ROW_SETUP();
    float best = is_min ? INFINITY : -INFINITY;
    int bi = n; /* larger than any index: loses every tie */
    if (valid) {
        for (int j = y; j < n; j += ly) {
            const float v = s[soff + base + j * inner];
            if (bi == n || (is_min ? v < best : v > best)) {
                best = v;
                bi = j;
            }
        }
    }
    const int me = y * lx + x;
    lv[me] = best;
    li[me] = bi;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int st = ly >> 1; st > 0; st >>= 1) {
        if (y < st) {
            const int other = (y + st) * lx + x;
            const float ov = lv[other];
            const int oi = li[other];
            const float mv = lv[me];
            const int mi = li[me];
            bool take;
            if (oi >= n) take = false;
            else if (mi >= n) take = true;
            else if (ov == mv) take = oi < mi;
            else take = is_min ? ov < mv : ov > mv;
            if (take) {
                lv[me] = ov;
                li[me] = oi;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (valid && y == 0) {
        const int r = li[x];
        d[doff + o * inner + i] = r >= n ? 0 : r;
    }
}

/* ip[0] log: y = x - max - log(sum exp(x - max)); else exp(x - max) / sum. */
__kernel void softmax_f32(__global float *d, int doff, __global const float *s, int soff,
                          int is_log, int outer, int n, int inner)
{
    __local float l[SEG_RED_WG];
    SEG_ROW_SETUP();
    float m = -INFINITY;
    if (valid)
        for (int j = y; j < n; j += ly) m = fmax(m, s[soff + base + j * inner]);
    m = seg_local_max(l, x, lx, y, ly, m);
    float sum = 0.0f;
    if (valid)
        for (int j = y; j < n; j += ly) sum += exp(s[soff + base + j * inner] - m);
    sum = seg_local_sum(l, x, lx, y, ly, sum);
    if (!valid) return;
    if (is_log) {
        const float lse = log(sum);
        for (int j = y; j < n; j += ly)
            d[doff + base + j * inner] = s[soff + base + j * inner] - m - lse;
    } else {
        const float inv = 1.0f / sum;
        for (int j = y; j < n; j += ly)
            d[doff + base + j * inner] = exp(s[soff + base + j * inner] - m) * inv;
    }
}

/* softmax: dx = y * (dy - sum(dy * y)); log_softmax: dx = dy - exp(y) * sum(dy). */
__kernel void softmax_bwd_f32(__global float *d, int doff, __global const float *yv, int yoff,
                              __global const float *dy, int dyoff, int is_log, int outer, int n,
                              int inner)
{
    __local float l[SEG_RED_WG];
    SEG_ROW_SETUP();
    float acc = 0.0f;
    if (valid) {
        for (int j = y; j < n; j += ly) {
            const float g = dy[dyoff + base + j * inner];
            acc += is_log ? g : g * yv[yoff + base + j * inner];
        }
    }
    acc = seg_local_sum(l, x, lx, y, ly, acc);
    if (!valid) return;
    for (int j = y; j < n; j += ly) {
        const int k = base + j * inner;
        const float g = dy[dyoff + k], v = yv[yoff + k];
        d[doff + k] = is_log ? g - exp(v) * acc : v * (g - acc);
    }
}
