#version 450
#extension GL_GOOGLE_include_directive : require
/* MATMUL: C_b = alpha * op(A_b) * op(B_b) + beta * C_b, row-major, batched.
 * binding 0 = C, 1 = A, 2 = B. ip/fp as ops.def (ip[0] batch, 1 M, 2 N, 3 K, 4 transA,
 * 5 transB, 6..8 batch strides of A, B, C; fp[0] alpha, fp[1] beta).
 * A workgroup computes a BM x BN block of C through BK-deep shared-memory tiles, double
 * buffered (the next tile is stored while the current one is multiplied); each of
 * its (BN/TN) x (BM/TM) invocations owns a TM x TN micro-tile, strided across the block
 * (rows ty + i*LY, columns tx + j*LX) so that shared loads and global stores coalesce.
 * Tile sizes are specialization constants (the host keeps LX = BN/TN, LY = BM/TM).
 * Host parameters: ip[9], ip[10] = the range of K this dispatch sums over (the host splits
 * K over several dispatches, beta = 1 after the first, where a driver limits loop trips).
 * Split-K: ip[11] = S > 1 slices of ip[12] elements of that range, one per workgroup z
 * (z = b * S + s); slice s of image b writes its partial product (alpha = 1, beta = 0) to
 * C + (s * batch + b) * M * N, a workspace that shaders/gemm_splitk.comp then sums.
 *
 * -DCONV: CONV2D_DIRECT as an implicit GEMM per image b: y_b[co][p] = sum_k w[co][k] *
 * col_b[k][p], col read straight from x (k = (c*KH + kh)*KW + kw, p = oh*OW + ow).
 * binding 0 = y [N, CO, OH, OW], 1 = w [CO, K], 2 = x [N, C, H, W], 3 = bias [CO] or dummy.
 * ip[0..13] as IM2COL, ip[14] = CO; host: ip[15] = first k of this dispatch, fp[0] = the
 * end of its k range (bits of a uint), fp[1] = 1 when there is a bias. A dispatch that does
 * not start at k = 0 adds to y (the K split of drivers with a loop limit). */
#include "common.glsl"

layout(local_size_x_id = 6, local_size_y_id = 7, local_size_z = 1) in;
layout(constant_id = 1) const uint BM = 64;
layout(constant_id = 2) const uint BN = 64;
layout(constant_id = 3) const uint BK = 16;
layout(constant_id = 4) const uint TM = 4;
layout(constant_id = 5) const uint TN = 4;
layout(constant_id = 6) const uint LX = 16;
layout(constant_id = 7) const uint LY = 16;

BUF_F(0, Cm)
BUF_RF(1, Am)
BUF_RF(2, Bm)
#ifdef CONV
BUF_RF(3, bias)
#else
/* the same A and B as vec4s: a tile's rows along the operand's contiguous dimension load four
 * elements at a time where that dimension, the tile and the offsets are multiples of 4 */
layout(std430, binding = 1) readonly buffer BufA4 { vec4 Am4[]; };
layout(std430, binding = 2) readonly buffer BufB4 { vec4 Bm4[]; };
#endif

const uint AS = BM + 1u; /* padded row pitch of the tiles in shared memory */
const uint BS = BN + 1u;
shared float As[2u * BK * AS]; /* two buffers of each tile */
shared float Bs[2u * BK * BS];

void main()
{
#ifdef CONV
    uint batch = UP(0), C = UP(1), H = UP(2), W = UP(3), KH = UP(4), KW = UP(5);
    int SH = IP(6), SW = IP(7), PH = IP(8), PW = IP(9), DH = IP(10), DW = IP(11);
    uint OW = UP(13), M = UP(14), N = UP(12) * OW, KK = KH * KW, K = C * KK;
    uint kbeg = UP(15), kend = min(K, floatBitsToUint(FP(0)));
    bool accumulate = kbeg > 0u, has_bias = FP(1) != 0.0;
    const bool ta = false;
    uint sa = 0u, sb = C * H * W, sc = M * N;
    const uint slices = 1u, slen = 0u;
#else
    uint batch = UP(0), M = UP(1), N = UP(2), K = UP(3);
    bool ta = IP(4) != 0, tb = IP(5) != 0;
    uint sa = UP(6), sb = UP(7), sc = UP(8);
    float alpha = FP(0), beta = FP(1);
    uint kbeg = UP(9), kend = min(K, UP(10));
    uint slices = max(UP(11), 1u), slen = UP(12);
    /* vec4 loads: A along k (untransposed) or m (transposed), B along n or k */
    bool a4 = (ta ? M % 4u == 0u && BM % 4u == 0u : K % 4u == 0u && BK % 4u == 0u && kbeg % 4u == 0u &&
                                                    kend % 4u == 0u && slen % 4u == 0u) &&
              OFF(1) % 4u == 0u && sa % 4u == 0u;
    bool b4 = (tb ? K % 4u == 0u && BK % 4u == 0u && kbeg % 4u == 0u && kend % 4u == 0u && slen % 4u == 0u
                  : N % 4u == 0u && BN % 4u == 0u) &&
              OFF(2) % 4u == 0u && sb % 4u == 0u;
#endif
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint tid = ty * LX + tx, T = LX * LY;
    uint tiles_m = (M + BM - 1u) / BM, tiles_n = (N + BN - 1u) / BN;

    for (uint z = gl_WorkGroupID.z; z < batch * slices; z += gl_NumWorkGroups.z)
    for (uint bm = gl_WorkGroupID.y; bm < tiles_m; bm += gl_NumWorkGroups.y)
    for (uint bn = gl_WorkGroupID.x; bn < tiles_n; bn += gl_NumWorkGroups.x) {
        uint b = z / slices, s = z % slices, m0 = bm * BM, n0 = bn * BN;
        uint klo = kbeg, khi = kend, cbase = OFF(0) + b * sc;
        if (slices > 1u) {
            klo = kbeg + s * slen;
            khi = min(kend, klo + slen);
            cbase = OFF(0) + (s * batch + b) * M * N;
        }
        uint abase = OFF(1) + b * sa, bbase = OFF(2) + b * sb;
        float acc[TM * TN];
        for (uint q = 0u; q < TM * TN; ++q) acc[q] = 0.0;

        /* Double-buffered tiles: step t loads K tile t into buffer t & 1 while it multiplies
         * tile t - 1 from the other buffer, one barrier a step (a buffer is rewritten only
         * after the barrier that ends its last reads). */
        for (uint t = 0u;; ++t) {
            uint k0 = klo + t * BK;
            if (k0 < khi) {
                uint ao = (t & 1u) * BK * AS, bo = (t & 1u) * BK * BS;
#ifndef CONV
                if (a4) {
                    for (uint l = tid; l < BM * BK / 4u; l += T) {
                        uint mm, kk; /* the first of the four */
                        if (ta) { kk = l / (BM / 4u); mm = 4u * (l % (BM / 4u)); }
                        else    { mm = l / (BK / 4u); kk = 4u * (l % (BK / 4u)); }
                        uint gm = m0 + mm, gk = k0 + kk;
                        vec4 v = vec4(0.0); /* M (ta) or K and khi are multiples of 4: all four or none */
                        if (gm < M && gk < khi) v = Am4[(abase + (ta ? gk * M + gm : gm * K + gk)) / 4u];
                        uint at = ao + kk * AS + mm, step = ta ? 1u : AS; /* the four along m or k */
                        As[at] = v.x;
                        As[at + step] = v.y;
                        As[at + 2u * step] = v.z;
                        As[at + 3u * step] = v.w;
                    }
                } else
#endif
                for (uint l = tid; l < BM * BK; l += T) {
                    uint mm, kk;
                    if (ta) { kk = l / BM; mm = l % BM; } else { mm = l / BK; kk = l % BK; }
                    uint gm = m0 + mm, gk = k0 + kk;
                    float v = 0.0;
                    if (gm < M && gk < khi) v = Am[abase + (ta ? gk * M + gm : gm * K + gk)];
                    As[ao + kk * AS + mm] = v;
                }
#ifndef CONV
                if (b4) {
                    for (uint l = tid; l < BN * BK / 4u; l += T) {
                        uint nn, kk; /* the first of the four */
                        if (tb) { nn = l / (BK / 4u); kk = 4u * (l % (BK / 4u)); }
                        else    { kk = l / (BN / 4u); nn = 4u * (l % (BN / 4u)); }
                        uint gn = n0 + nn, gk = k0 + kk;
                        vec4 v = vec4(0.0);
                        if (gn < N && gk < khi) v = Bm4[(bbase + (tb ? gn * K + gk : gk * N + gn)) / 4u];
                        uint at = bo + kk * BS + nn, step = tb ? BS : 1u; /* the four along k or n */
                        Bs[at] = v.x;
                        Bs[at + step] = v.y;
                        Bs[at + 2u * step] = v.z;
                        Bs[at + 3u * step] = v.w;
                    }
                } else
#endif
                for (uint l = tid; l < BN * BK; l += T) {
#ifdef CONV
                    uint kk = l / BN, nn = l % BN;
                    uint gn = n0 + nn, gk = k0 + kk;
                    float v = 0.0;
                    if (gn < N && gk < khi) {
                        uint c = gk / KK, r = gk % KK;
                        int ih = int(gn / OW) * SH - PH + int(r / KW) * DH;
                        int iw = int(gn % OW) * SW - PW + int(r % KW) * DW;
                        if (ih >= 0 && ih < int(H) && iw >= 0 && iw < int(W))
                            v = Bm[bbase + (c * H + uint(ih)) * W + uint(iw)];
                    }
#else
                    uint nn, kk;
                    if (tb) { nn = l / BK; kk = l % BK; } else { kk = l / BN; nn = l % BN; }
                    uint gn = n0 + nn, gk = k0 + kk;
                    float v = 0.0;
                    if (gn < N && gk < khi) v = Bm[bbase + (tb ? gn * K + gk : gk * N + gn)];
#endif
                    Bs[bo + kk * BS + nn] = v;
                }
            }
            if (t > 0u) {
                uint ao = ((t - 1u) & 1u) * BK * AS, bo = ((t - 1u) & 1u) * BK * BS;
                for (uint kk = 0u; kk < BK; ++kk) {
                    float av[TM], bv[TN];
                    for (uint i = 0u; i < TM; ++i) av[i] = As[ao + kk * AS + ty + i * LY];
                    for (uint j = 0u; j < TN; ++j) bv[j] = Bs[bo + kk * BS + tx + j * LX];
                    for (uint i = 0u; i < TM; ++i)
                        for (uint j = 0u; j < TN; ++j) acc[i * TN + j] = fma(av[i], bv[j], acc[i * TN + j]);
                }
            }
            barrier();
            if (k0 >= khi) break;
        }

        for (uint i = 0u; i < TM; ++i) {
            uint gm = m0 + ty + i * LY;
            if (gm >= M) continue;
#ifdef CONV
            float b0 = accumulate ? 0.0 : (has_bias ? bias[OFF(3) + gm] : 0.0);
#endif
            for (uint j = 0u; j < TN; ++j) {
                uint gn = n0 + tx + j * LX;
                if (gn >= N) continue;
                uint ci = cbase + gm * N + gn;
#ifdef CONV
                Cm[ci] = accumulate ? Cm[ci] + acc[i * TN + j] : acc[i * TN + j] + b0;
#else
                float r = alpha * acc[i * TN + j];
                if (beta != 0.0) r += beta * Cm[ci];
                Cm[ci] = r;
#endif
            }
        }
    }
}
