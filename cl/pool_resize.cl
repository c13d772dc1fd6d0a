/* pool_resize.cl: MAXPOOL2D(_BWD), RESIZE_BILINEAR(_BWD), RESIZE_NEAREST.
 * Backward kernels gather (one work-item per input element): deterministic, no atomics. */
#include "common.h"

#define SEG_POOL_ARGS                                                                         \
    int N, int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int OH, int OW

/* Padding counts as -inf; ties: the first in row-major window order. */
__kernel void maxpool2d_f32(__global float *d, int doff, __global int *ix, int ixoff,
                            __global const float *s, int soff, SEG_POOL_ARGS, int total)
{
    const int g = SEG_GID();
    if (g >= total) return;
    const int ow = g % OW;
    const int oh = (g / OW) % OH;
    const int pl = g / (OW * OH);
    __global const float *xp = s + soff + pl * H * W;
    float best = -INFINITY;
    int bi = -1;
    for (int u = 0; u < KH; u++) {
        const int r = oh * SH - PH + u;
        if (r < 0 || r >= H) continue;
        for (int v = 0; v < KW; v++) {
            const int q = ow * SW - PW + v;
            if (q < 0 || q >= W) continue;
            const float val = xp[r * W + q];
            if (bi < 0 || val > best) {
                best = val;
                bi = r * W + q;
            }
        }
    }
    d[doff + g] = best;
    ix[ixoff + g] = bi;
}

/* dx[h][w] = sum of dy over the windows that contain (h, w) and whose index names it. */
__kernel void maxpool2d_bwd_f32(__global float *d, int doff, __global const float *dy,
                                int dyoff, __global const int *ix, int ixoff, SEG_POOL_ARGS,
                                int total)
{
    const int g = SEG_GID();
    if (g >= total) return;
    const int w = g % W;
    const int h = (g / W) % H;
    const int pl = g / (W * H);
    const int me = h * W + w;
    const int th = h + PH - KH + 1, tw = w + PW - KW + 1;
    const int oh0 = th <= 0 ? 0 : (th + SH - 1) / SH;
    const int ow0 = tw <= 0 ? 0 : (tw + SW - 1) / SW;
    const int oh1 = min((h + PH) / SH, OH - 1);
    const int ow1 = min((w + PW) / SW, OW - 1);
    const int pb = pl * OH * OW;
    float acc = 0.0f;
    for (int oh = oh0; oh <= oh1; oh++)
        for (int ow = ow0; ow <= ow1; ow++) {
            const int k = pb + oh * OW + ow;
            if (ix[ixoff + k] == me) acc += dy[dyoff + k];
        }
    d[doff + g] = acc;
}

/* PyTorch's source coordinate (ops.def), exactly as the CPU reference computes it. */
float seg_bilinear_s(int o, int in, int out, int align)
{
    float s;
    if (align) {
        s = out > 1 ? (float)o * ((float)(in - 1) / (float)(out - 1)) : 0.0f;
    } else {
        s = ((float)in / (float)out) * ((float)o + 0.5f) - 0.5f;
        if (s < 0.0f) s = 0.0f;
    }
    return s;
}

int seg_bilinear_i0(float s, int in) { return min((int)s, in - 1); }

__kernel void resize_bilinear_f32(__global float *d, int doff, __global const float *s, int soff,
                                  int NC, int H, int W, int OH, int OW, int align, int total)
{
    const int g = SEG_GID();
    if (g >= total) return;
    const int j = g % OW;
    const int i = (g / OW) % OH;
    const int p = g / (OW * OH);
    const float sy = seg_bilinear_s(i, H, OH, align), sx = seg_bilinear_s(j, W, OW, align);
    const int r0 = seg_bilinear_i0(sy, H), c0 = seg_bilinear_i0(sx, W);
    const int r1 = r0 < H - 1 ? r0 + 1 : r0, c1 = c0 < W - 1 ? c0 + 1 : c0;
    const float ly = sy - (float)r0, lx = sx - (float)c0;
    __global const float *xp = s + soff + p * H * W;
    const float top = (1.0f - lx) * xp[r0 * W + c0] + lx * xp[r0 * W + c1];
    const float bot = (1.0f - lx) * xp[r1 * W + c0] + lx * xp[r1 * W + c1];
    d[doff + g] = (1.0f - ly) * top + ly * bot;
}

/* The first output index o in [0, out] whose i0 is >= target (i0 is non-decreasing in o). */
int seg_bilinear_lower(int target, int in, int out, int align)
{
    int lo = 0, hi = out;
    while (lo < hi) {
        const int mid = (lo + hi) >> 1;
        if (seg_bilinear_i0(seg_bilinear_s(mid, in, out, align), in) >= target) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

/* Weight of input index h in output o's interpolation along one axis. */
float seg_bilinear_w(int o, int h, int in, int out, int align)
{
    const float s = seg_bilinear_s(o, in, out, align);
    const int i0 = seg_bilinear_i0(s, in);
    const int i1 = i0 < in - 1 ? i0 + 1 : i0;
    const float l1 = s - (float)i0;
    return (i0 == h ? 1.0f - l1 : 0.0f) + (i1 == h ? l1 : 0.0f);
}

/* Adjoint, gathered: input (h, w) receives from outputs whose i0 is h - 1 or h per axis. */
__kernel void resize_bilinear_bwd_f32(__global float *d, int doff, __global const float *dy,
                                      int dyoff, int NC, int H, int W, int OH, int OW, int align,
                                      int total)
{
    const int g = SEG_GID();
    if (g >= total) return;
    const int w = g % W;
    const int h = (g / W) % H;
    const int p = g / (W * H);
    const int y0 = seg_bilinear_lower(h - 1, H, OH, align);
    const int y1 = seg_bilinear_lower(h + 1, H, OH, align);
    const int x0 = seg_bilinear_lower(w - 1, W, OW, align);
    const int x1 = seg_bilinear_lower(w + 1, W, OW, align);
    __global const float *gp = dy + dyoff + p * OH * OW;
    float acc = 0.0f;
    for (int i = y0; i < y1; i++) {
        const float wy = seg_bilinear_w(i, h, H, OH, align);
        if (wy == 0.0f) continue;
        float row = 0.0f;
        for (int j = x0; j < x1; j++) {
            const float wx = seg_bilinear_w(j, w, W, OW, align);
            row += wx * gp[i * OW + j];
        }
        acc += wy * row;
    }
    d[doff + g] = acc;
}

/* 4-byte: i = min((int)floor(o * ((float)in / (float)out)), in - 1). */
__kernel void resize_nearest_u32(__global uint *d, int doff, __global const uint *s, int soff,
                                 int NC, int H, int W, int OH, int OW, int total)
{
    const int g = SEG_GID();
    if (g >= total) return;
    const int j = g % OW;
    const int i = (g / OW) % OH;
    const int p = g / (OW * OH);
    const float sy = (float)H / (float)OH, sx = (float)W / (float)OW;
    const int r = min((int)floor((float)i * sy), H - 1);
    const int q = min((int)floor((float)j * sx), W - 1);
    d[doff + g] = s[soff + (p * H + r) * W + q];
}
