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

/* CONV2D_DIRECT: the convolution as an implicit GEMM, y_n[co][p] = sum_k w[co][k] * col_n[k][p]
 * with col read straight from x (k = (c*KH + kh)*KW + kw, p = oh*OW + ow), no im2col buffer.
 * A work-group computes a CD_BM x CD_BN block (output channels x pixels) of one image in
 * CD_BK-deep local-memory tiles; work-item (tx, ty) owns the CD_TM x CD_TN outputs
 * (ty + i*LY, tx + j*LX), so local loads and global stores are contiguous across items.
 * Global size: (ceil(P / CD_BN) * LX, ceil(CO / CD_BM) * LY, N). */
/* Fully unrolled loops keep accumulator arrays in registers (PoCL leaves an indexed private
 * array in memory otherwise). */
#define SEG_UNROLL _Pragma("unroll")

#ifndef CD_BM
#define CD_BM 64
#define CD_BN 64
#define CD_BK 16
#define CD_TM 4
#define CD_TN 4
#endif
#define CD_LX (CD_BN / CD_TN)
#define CD_LY (CD_BM / CD_TM)

__kernel __attribute__((reqd_work_group_size(CD_LX, CD_LY, 1)))
void conv2d_direct_f32(__global float *y, int yoff, __global const float *x, int xoff,
                       __global const float *wt, int woff, __global const float *bias, int boff,
                       int has_bias, SEG_CONV_ARGS, int CO)
{
    __local float As[CD_BK][CD_BM + 1];
    __local float Bs[CD_BK][CD_BN + 1];
    const int tx = (int)get_local_id(0), ty = (int)get_local_id(1);
    const int tid = ty * CD_LX + tx, T = CD_LX * CD_LY;
    const int p0 = (int)get_group_id(0) * CD_BN, m0 = (int)get_group_id(1) * CD_BM;
    const int img = (int)get_group_id(2);
    const int P = OH * OW, KK = KH * KW, K = C * KK;
    const int xbase = xoff + img * C * H * W;
    float acc[CD_TM][CD_TN];
    SEG_UNROLL
    for (int i = 0; i < CD_TM; i++)
        SEG_UNROLL
        for (int j = 0; j < CD_TN; j++) acc[i][j] = 0.0f;

    for (int k0 = 0; k0 < K; k0 += CD_BK) {
        for (int l = tid; l < CD_BM * CD_BK; l += T) {
            const int mm = l / CD_BK, kk = l % CD_BK;
            const int gm = m0 + mm, gk = k0 + kk;
            As[kk][mm] = (gm < CO && gk < K) ? wt[woff + gm * K + gk] : 0.0f;
        }
        for (int l = tid; l < CD_BN * CD_BK; l += T) {
            const int kk = l / CD_BN, nn = l % CD_BN;
            const int gk = k0 + kk, gp = p0 + nn;
            float v = 0.0f;
            if (gk < K && gp < P) {
                const int c = gk / KK, r = gk % KK, kh = r / KW, kw = r % KW;
                const int ih = (gp / OW) * SH - PH + kh * DH, iw = (gp % OW) * SW - PW + kw * DW;
                if (ih >= 0 && ih < H && iw >= 0 && iw < W) v = x[xbase + (c * H + ih) * W + iw];
            }
            Bs[kk][nn] = v;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int kk = 0; kk < CD_BK; kk++) {
            float av[CD_TM], bv[CD_TN];
            SEG_UNROLL
            for (int i = 0; i < CD_TM; i++) av[i] = As[kk][ty + i * CD_LY];
            SEG_UNROLL
            for (int j = 0; j < CD_TN; j++) bv[j] = Bs[kk][tx + j * CD_LX];
            SEG_UNROLL
            for (int i = 0; i < CD_TM; i++)
                SEG_UNROLL
                for (int j = 0; j < CD_TN; j++) acc[i][j] = fma(av[i], bv[j], acc[i][j]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    SEG_UNROLL
    for (int i = 0; i < CD_TM; i++) {
        const int gm = m0 + ty + i * CD_LY;
        if (gm >= CO) continue;
        const float b0 = has_bias ? bias[boff + gm] : 0.0f;
        SEG_UNROLL
        for (int j = 0; j < CD_TN; j++) {
            const int gp = p0 + tx + j * CD_LX;
            if (gp < P) y[yoff + (img * CO + gm) * P + gp] = acc[i][j] + b0;
        }
    }
}

/* CONV2D_DIRECT for CPU devices: no local memory, no barrier, explicit vectors (PoCL and the
 * like vectorize across work-items only when the kernel body has no loop). A work-item
 * computes CDC_TM output channels (grid dimension 1, times CDC_TM) of CDC_VW consecutive
 * pixels of one output row (grid dimension 0: oh * ceil(OW / CDC_VW) blocks), accumulating
 * float8 vectors; input rows are read with vload8 where the 8 inputs are contiguous and in
 * the image, element by element otherwise. Global size: (OH * ceil(OW / 8), ceil(CO / CDC_TM), N). */
#define CDC_TM 16
#define CDC_VW 8

__kernel void conv2d_direct_cpu_f32(__global float *y, int yoff, __global const float *x, int xoff,
                                    __global const float *wt, int woff, __global const float *bias,
                                    int boff, int has_bias, SEG_CONV_ARGS, int CO)
{
    /* 1x1, stride 1, no padding: x is the column matrix; blocks run over all P pixels */
    const bool pointwise = KH == 1 && KW == 1 && SH == 1 && SW == 1 && PH == 0 && PW == 0;
    const int P = OH * OW, K = C * KH * KW;
    const int nb = pointwise ? (P + CDC_VW - 1) / CDC_VW : (OW + CDC_VW - 1) / CDC_VW;
    const int g = (int)get_global_id(0), co0 = (int)get_global_id(1) * CDC_TM;
    const int img = (int)get_global_id(2);
    if (g >= (pointwise ? 1 : OH) * nb || co0 >= CO) return;
    const int oh = pointwise ? 0 : g / nb, ow0 = (g % nb) * CDC_VW;
    const int nw = min(CDC_VW, (pointwise ? P : OW) - ow0), ncl = min(CDC_TM, CO - co0) - 1;
    const int wlim = pointwise ? P : W; /* a pointwise tail block reads the plane as one row */
    __global const float *xb = x + xoff + img * C * H * W;
    __global const float *wb = wt + woff + co0 * K;
    float8 acc[CDC_TM];
    int wo[CDC_TM]; /* row offsets of the weights (the last channel repeated past CO) */
    SEG_UNROLL
    for (int i = 0; i < CDC_TM; i++) {
        acc[i] = (float8)(0.0f);
        wo[i] = min(i, ncl) * K;
    }
    if (pointwise && nw == CDC_VW) {
        for (int c = 0; c < C; c++) {
            const float8 v = vload8(0, xb + c * P + ow0);
            SEG_UNROLL
            for (int i = 0; i < CDC_TM; i++) acc[i] = fma((float8)(wb[wo[i] + c]), v, acc[i]);
        }
    } else for (int c = 0; c < C; c++)
        for (int kh = 0; kh < KH; kh++) {
            const int ih = oh * SH - PH + kh * DH;
            if (ih < 0 || ih >= H) continue; /* a zero row adds nothing */
            __global const float *xr = xb + (c * H + ih) * W;
            for (int kw = 0; kw < KW; kw++) {
                const int iw0 = ow0 * SW - PW + kw * DW;
                float8 v;
                if (SW == 1 && nw == CDC_VW && iw0 >= 0 && iw0 + CDC_VW <= wlim) {
                    v = vload8(0, xr + iw0);
                } else {
                    float t[CDC_VW];
                    SEG_UNROLL
                    for (int e = 0; e < CDC_VW; e++) {
                        const int iw = iw0 + e * SW;
                        t[e] = e < nw && iw >= 0 && iw < wlim ? xr[iw] : 0.0f;
                    }
                    v = vload8(0, t);
                }
                __global const float *wk = wb + (c * KH + kh) * KW + kw;
                SEG_UNROLL
                for (int i = 0; i < CDC_TM; i++) acc[i] = fma((float8)(wk[wo[i]]), v, acc[i]);
            }
        }
    SEG_UNROLL
    for (int i = 0; i < CDC_TM; i++) {
        if (i > ncl) break;
        float8 r = acc[i] + (float8)(has_bias ? bias[boff + co0 + i] : 0.0f);
        __global float *yr = y + yoff + (img * CO + co0 + i) * P + oh * OW + ow0;
        if (nw == CDC_VW) {
            vstore8(r, 0, yr);
        } else {
            float t[CDC_VW];
            vstore8(r, 0, t);
            for (int e = 0; e < nw; e++) yr[e] = t[e];
        }
    }
}
