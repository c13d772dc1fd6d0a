#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require
#extension GL_EXT_control_flow_attributes : require
/* MATMUL (and with -DCONV the implicit-GEMM CONV2D_DIRECT) as a register GEMM without
 * shared memory or barriers: the variant for devices whose "GPU" is a CPU's SIMD unit
 * (llvmpipe), where a subgroup is one vector register and shared memory is ordinary
 * memory behind the same caches as the buffers. Same bindings and parameters as
 * gemm.comp (see there), same K split (ip[9], ip[10] / ip[15], fp[0]).
 *
 * A workgroup is one subgroup of S lanes (S = -DS, the device's subgroup size; the host
 * checks it) and computes an (MV*S) x (TN*S) block of C. Per k it loads MV vectors of A
 * (lane l holds row m0 + v*S + l) and TN vectors of B (lane l holds column n0 + l + j*S),
 * then broadcasts each A element to the whole subgroup and accumulates MV*S*TN products
 * per lane: the broadcast-A, vector-B micro-kernel of CPU BLAS. Loads per k: MV + TN
 * vectors for MV*S*TN FMAs per lane.
 *
 * CONV: the lane's TN output positions (oh, ow) are decoded once per tile, and (c, kh, kw)
 * advance with k as counters, so the loop does no integer division. */
#include "common.glsl"

#if S != 4 && S != 8 && S != 16
#error S must be 4, 8 or 16
#endif

layout(local_size_x = S, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 1) const uint MV = 1;
layout(constant_id = 2) const uint TN = 2;

BUF_F(0, Cm)
BUF_RF(1, Am)
BUF_RF(2, Bm)
#ifdef CONV
BUF_RF(3, bias)
#endif
/* SPEC_FN 1: read A and B through the texel views of their blocks (bindings 8, 9), which
 * llvmpipe gathers in one vector instruction; else from the storage buffers. */
DECLARE_FN()
layout(binding = 8) uniform samplerBuffer At;
layout(binding = 9) uniform samplerBuffer Bt;
const bool TEXEL = SPEC_FN == 1;
#define LOAD_A(i) (TEXEL ? texelFetch(At, int(i)).x : Am[i])
#define LOAD_B(i) (TEXEL ? texelFetch(Bt, int(i)).x : Bm[i])

#define ACC(v, i, j) acc[((v) * S + (i)) * TN + (j)]
/* One broadcast row i of every A vector times the lane's B values. */
#define ROW(i)                                                        \
    [[unroll]] for (uint v = 0u; v < MV; ++v) {                                  \
        float ai = subgroupBroadcast(av[v], (i));                     \
        [[unroll]] for (uint j = 0u; j < TN; ++j)                                \
            ACC(v, (i), j) = fma(ai, bv[j], ACC(v, (i), j));          \
    }

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
#else
    uint batch = UP(0), M = UP(1), N = UP(2), K = UP(3);
    bool ta = IP(4) != 0, tb = IP(5) != 0;
    uint sa = UP(6), sb = UP(7), sc = UP(8);
    float alpha = FP(0), beta = FP(1);
    uint kbeg = UP(9), kend = min(K, UP(10));
#endif
    uint l = gl_LocalInvocationID.x;
    uint BM = MV * S, BN = TN * S;
    uint tiles_m = (M + BM - 1u) / BM, tiles_n = (N + BN - 1u) / BN;

    for (uint b = gl_WorkGroupID.z; b < batch; b += gl_NumWorkGroups.z)
    for (uint bm = gl_WorkGroupID.y; bm < tiles_m; bm += gl_NumWorkGroups.y)
    for (uint bn = gl_WorkGroupID.x; bn < tiles_n; bn += gl_NumWorkGroups.x) {
        uint m0 = bm * BM, n0 = bn * BN;
        uint abase = OFF(1) + b * sa, bbase = OFF(2) + b * sb;
        float acc[MV * S * TN];
        [[unroll]] for (uint q = 0u; q < MV * S * TN; ++q) acc[q] = 0.0;

        /* per vector: the lane's A address at k = kbeg and its step along k */
        uint aaddr[MV];
        bool arow[MV];
        uint astep = ta ? M : 1u;
        [[unroll]] for (uint v = 0u; v < MV; ++v) {
            uint gm = m0 + v * S + l;
            arow[v] = gm < M;
            gm = min(gm, M - 1u); /* rows past M load row M - 1, then count as 0 */
            aaddr[v] = abase + (ta ? kbeg * M + gm : gm * K + kbeg);
        }
#ifdef CONV
        int ih0[TN], iw0[TN];
        bool bcol[TN];
        [[unroll]] for (uint j = 0u; j < TN; ++j) {
            uint gn = n0 + l + j * S;
            bcol[j] = gn < N;
            ih0[j] = int(gn / OW) * SH - PH;
            iw0[j] = int(gn % OW) * SW - PW;
        }
        uint c = kbeg / KK, r = kbeg % KK;
        uint kh = r / KW, kw = r % KW;
        uint cbase_x = bbase + c * H * W;
#else
        uint baddr[TN];
        bool bcol[TN];
        uint bstep = tb ? 1u : N;
        [[unroll]] for (uint j = 0u; j < TN; ++j) {
            uint gn = n0 + l + j * S;
            bcol[j] = gn < N;
            gn = min(gn, N - 1u);
            baddr[j] = bbase + (tb ? gn * K + kbeg : kbeg * N + gn);
        }
#endif
        for (uint k = kbeg; k < kend; ++k) {
            float av[MV], bv[TN];
            [[unroll]] for (uint v = 0u; v < MV; ++v) {
                float x = LOAD_A(aaddr[v]);
                av[v] = arow[v] ? x : 0.0;
                aaddr[v] += astep;
            }
#ifdef CONV
            int dh = int(kh) * DH, dw = int(kw) * DW;
            [[unroll]] for (uint j = 0u; j < TN; ++j) {
                int ih = ih0[j] + dh, iw = iw0[j] + dw;
                bool inb = bcol[j] && ih >= 0 && ih < int(H) && iw >= 0 && iw < int(W);
                float x = LOAD_B(inb ? cbase_x + uint(ih) * W + uint(iw) : cbase_x);
                bv[j] = inb ? x : 0.0;
            }
            if (++kw == KW) {
                kw = 0u;
                if (++kh == KH) {
                    kh = 0u;
                    cbase_x += H * W;
                }
            }
#else
            [[unroll]] for (uint j = 0u; j < TN; ++j) {
                float x = LOAD_B(baddr[j]);
                bv[j] = bcol[j] ? x : 0.0;
                baddr[j] += bstep;
            }
#endif
            ROW(0u) ROW(1u) ROW(2u) ROW(3u)
#if S > 4
            ROW(4u) ROW(5u) ROW(6u) ROW(7u)
#endif
#if S > 8
            ROW(8u) ROW(9u) ROW(10u) ROW(11u) ROW(12u) ROW(13u) ROW(14u) ROW(15u)
#endif
        }

        uint cbase = OFF(0) + b * sc;
        [[unroll]] for (uint v = 0u; v < MV; ++v)
            [[unroll]] for (uint i = 0u; i < S; ++i) {
                uint gm = m0 + v * S + i;
                if (gm >= M) continue;
#ifdef CONV
                float b0 = accumulate ? 0.0 : (has_bias ? bias[OFF(3) + gm] : 0.0);
#endif
                [[unroll]] for (uint j = 0u; j < TN; ++j) {
                    uint gn = n0 + l + j * S;
                    if (gn >= N) continue;
                    uint ci = cbase + gm * N + gn;
#ifdef CONV
                    Cm[ci] = accumulate ? Cm[ci] + ACC(v, i, j) : ACC(v, i, j) + b0;
#else
                    float rr = alpha * ACC(v, i, j);
                    if (beta != 0.0) rr += beta * Cm[ci];
                    Cm[ci] = rr;
#endif
                }
            }
    }
}
