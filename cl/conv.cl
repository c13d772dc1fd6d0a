/* conv.cl: IM2COL and COL2IM. Geometry (ip of ops.def) passed as arguments:
 * N C H W KH KW SH SW PH PW DH DW OH OW. */
#include "common.h"

#define SEG_CONV_ARGS                                                                   \
    int N, int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int DH, \
        int DW, int OH, int OW

/* One work-item per column entry: col[n][(c*KH + kh)*KW + kw][oh*OW + ow]. */
__kernel void im2col_f32(__global float *d, int doff, __global const float *s, int soff,
                         SEG_CONV_ARGS, int total)
{
    const int g = SEG_GID();
    if (g >= total) return;
    int r = g;
    const int ow = r % OW; r /= OW;
    const int oh = r % OH; r /= OH;
    const int kw = r % KW; r /= KW;
    const int kh = r % KH; r /= KH;
    const int c = r % C;
    const int n = r / C;
    const int h = oh * SH - PH + kh * DH;
    const int w = ow * SW - PW + kw * DW;
    float v = 0.0f;
    if (h >= 0 && h < H && w >= 0 && w < W) v = s[soff + ((n * C + c) * H + h) * W + w];
    d[doff + g] = v;
}

/* Gather form of the adjoint: each x element sums the column entries that read it, in the
 * order (kh, kw) a scatter over the columns would add them. No atomics. */
__kernel void col2im_f32(__global float *d, int doff, __global const float *s, int soff,
                         SEG_CONV_ARGS, int total)
{
    const int g = SEG_GID();
    if (g >= total) return;
    int r = g;
    const int w = r % W; r /= W;
    const int h = r % H; r /= H;
    const int c = r % C;
    const int n = r / C;
    const int P = OH * OW;
    float acc = 0.0f;
    for (int kh = 0; kh < KH; kh++) {
        const int th = h + PH - kh * DH;
        if (th < 0 || th % SH != 0) continue;
        const int oh = th / SH;
        if (oh >= OH) continue;
        for (int kw = 0; kw < KW; kw++) {
            const int tw = w + PW - kw * DW;
            if (tw < 0 || tw % SW != 0) continue;
            const int ow = tw / SW;
            if (ow >= OW) continue;
            const int row = (c * KH + kh) * KW + kw;
            acc += s[soff + (n * C * KH * KW + row) * P + oh * OW + ow];
        }
    }
    d[doff + g] = acc;
}
